/*
 * fuzz_table.c - the sorted table reader (kvengine/table/table_reader.c, bloom.c):
 * footer, properties, index, bloom and data blocks of a file of arbitrary
 * bytes, through table_open, table_verify, iterators and table_get.
 *
 * Input: mode byte (bit 2: open with a block cache; FUZZ_ENC: read with
 * the fuzz key ring, and run repair's salvage walk too), then the file.
 * Checks: when table_verify passes, iteration is in strictly increasing
 * key order forwards and backwards, seeks find every key, the bloom filter
 * lets every key through, and table_get finds every key's version with the
 * iterated value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "fuzz.h"
#include "ikey.h"
#include "sett.h"
#include "table.h"

#define MAX_KEYS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_table, &mode, &n);
	if (!p)
		return 0;
	const char *dir = fuzz_dir();
	fuzz_write(dir, "000001.sst", p, n);
	free(p);
	char path[4200], why[512];
	snprintf(path, sizeof path, "%s/000001.sst", dir);

	cache *c = NULL;
	if ((mode & 4) && cache_new(1 << 20, &c))
		abort();
	table *t;
	sett_keys ring_keys = fuzz_keys();
	const sett_keys *ks = mode & FUZZ_ENC ? &ring_keys : NULL;
	int r = ks ? table_open_salvage_enc(path, 1, ks, &t, why, sizeof why) : -1;
	FUZZ_CHECK(r <= 0);
	if (r == 0) {
		/* repair's reader: whatever it finds, forward, in key order */
		sit *sv = table_salvage_iter_new(t, NULL, NULL);
		FUZZ_CHECK(sv != NULL);
		for (sit_first(sv); sit_valid(sv); sit_next(sv))
			;
		sit_free(sv);
		table_unref(t);
	}
	r = table_open_enc(path, 1, c, ks, &t, why, sizeof why);
	FUZZ_CHECK(r <= 0);
	if (r) {
		cache_free(c);
		return 0;
	}
	int ok = table_verify(t, why, sizeof why) == 0;
	slice sm = table_smallest(t), lg = table_largest(t);
	if (ok)
		FUZZ_CHECK(ikey_cmp(sm, lg) <= 0);

	static buf keys[MAX_KEYS];
	static uint64_t vh[MAX_KEYS];
	size_t nk = 0, count = 0;
	sit *it = table_iter_new(t);
	FUZZ_CHECK(it != NULL);
	for (sit_first(it); sit_valid(it); sit_next(it), count++) {
		slice k = sit_key(it), v = sit_value(it);
		if (ok && nk)
			FUZZ_CHECK(ikey_cmp(slice_make(keys[nk - 1].p, keys[nk - 1].n), k) < 0);
		if (nk < MAX_KEYS) {
			keys[nk].n = 0;
			FUZZ_CHECK(buf_append(&keys[nk], k.p, k.n) == 0);
			vh[nk++] = fuzz_hash(FUZZ_HASH_INIT, v.p, v.n);
		}
	}
	if (ok) {
		FUZZ_CHECK(sit_error(it) == 0);
		FUZZ_CHECK(count == table_entry_count(t));
		size_t back = 0;
		for (sit_last(it); sit_valid(it); sit_prev(it))
			back++;
		FUZZ_CHECK(sit_error(it) == 0 && back == count);
	}
	for (size_t i = 0; i < nk; i++) {
		slice k = slice_make(keys[i].p, keys[i].n);
		sit_seek(it, k);
		if (ok)
			FUZZ_CHECK(sit_valid(it) && slice_cmp(sit_key(it), k) == 0);
		sit_seek_for_prev(it, k);
		if (ok)
			FUZZ_CHECK(sit_valid(it) && slice_cmp(sit_key(it), k) == 0);
		if (k.n < 8)
			continue;
		slice uk = ikey_user(k);
		/* the engine asks the bloom filter before table_get */
		int may = table_may_contain(t, sett_hash(uk.p, uk.n));
		if (ok)
			FUZZ_CHECK(may);
		uint64_t ver = 0;
		buf vs = { 0 };
		r = table_get(t, uk, ikey_version(k), &ver, &vs, why, sizeof why);
		FUZZ_CHECK(r <= 1);
		if (ok) {
			FUZZ_CHECK(r == 1 && ver == ikey_version(k) &&
				   fuzz_hash(FUZZ_HASH_INIT, vs.p, vs.n) == vh[i]);
		}
		buf_free(&vs);
	}
	sit_free(it);
	table_unref(t);
	cache_free(c);
	return 0;
}
