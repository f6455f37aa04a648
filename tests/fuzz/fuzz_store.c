/*
 * fuzz_store.c - opening a whole store (kvengine/api/open.c): the KEYREGISTRY
 * decoder, and every other file's decoder in the order and combination
 * sett_open uses them (MANIFEST, tables, value log, WAL replay with its
 * value-pointer checks, DISCARD), then reads through the public API.
 *
 * Input: mode byte, then records u8 kind | uvarint id | uvarint len | bytes,
 * one per file (fuzz.h, FUZZ_F_*).  Checks, when sett_verify finds no
 * fault: every key the iterator yields reads back through sett_get with the
 * same value.  Always: a writable open of a store that opened read-only
 * serves the same keys and values.
 */
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "fuzz.h"
#include "sett.h"

#define MAX_GETS 64

static void report(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int open_store(const char *dir, int read_only, sett_db **db)
{
	sett_options o;
	fuzz_sett_options(&o, read_only);
	char why[512];
	o.error_buf = why;
	o.error_buf_size = sizeof why;
	int r = sett_open(dir, &o, db);
	FUZZ_CHECK(r <= 0);
	return r;
}

/*
 * Hash of every (key, value) in order; with `strict` (the store verified
 * clean), every get agrees with the iterator.
 */
static int scan(sett_db *db, int strict, uint64_t *h, size_t *count)
{
	sett_iter *it;
	*h = FUZZ_HASH_INIT;
	*count = 0;
	if (sett_iter_new(db, NULL, &it))
		return -1;
	int r = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v;
		if ((r = sett_iter_value(it, &v)) != 0)
			break;
		*h = fuzz_hash(*h, k.data, k.size);
		*h = fuzz_hash(*h, v.data, v.size);
		if (*count < MAX_GETS) {
			void *g;
			size_t gn;
			if (sett_get(db, k, 0, &g, &gn) == 0) {
				FUZZ_CHECK(!strict || (gn == v.size && (!gn || memcmp(g, v.data, gn) == 0)));
				free(g);
			}
		}
		(*count)++;
	}
	if (!r)
		r = sett_iter_error(it);
	sett_iter_free(it);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const uint8_t *q = data + 1, *end = data + size;
	const char *dir = fuzz_dir();
	while (q < end) {
		unsigned kind = *q++;
		uint64_t id, len;
		size_t m = varint_get(q, end, &id);
		if (!m)
			break;
		q += m;
		if (!(m = varint_get(q, end, &len)) || len > (uint64_t)(end - q - m))
			break;
		q += m;
		char name[32];
		if (fuzz_file_name(kind, id, name, sizeof name) == 0) {
			uint8_t *p = fuzz_dup(q, (size_t)len);
			if (mode & FUZZ_FIX_SUMS) {
				switch (kind) {
				case FUZZ_F_MANIFEST: fuzz_fix_manifest(p, len); break;
				case FUZZ_F_KEYREGISTRY: fuzz_fix_keyregistry(p, len); break;
				case FUZZ_F_DISCARD: fuzz_fix_discard(p, len); break;
				case FUZZ_F_WAL: case FUZZ_F_VLOG: fuzz_fix_log(p, len, mode); break;
				case FUZZ_F_TABLE: fuzz_fix_table(p, len); break;
				}
			}
			fuzz_write(dir, name, p, (size_t)len);
			free(p);
		}
		q += len;
	}

	sett_db *db;
	if (open_store(dir, 1, &db))
		return 0;
	uint64_t h1 = 0, h2 = 0;
	size_t c1 = 0, c2 = 0;
	int clean = sett_verify(db, report, NULL) == 0;
	int s1 = scan(db, clean, &h1, &c1);
	FUZZ_CHECK(sett_close(db) == 0);
	if (s1)
		return 0;

	if (open_store(dir, 0, &db))
		return 0;
	int s2 = scan(db, clean, &h2, &c2);
	FUZZ_CHECK(s2 == 0 && c1 == c2 && h1 == h2);
	sett_close(db);
	return 0;
}
