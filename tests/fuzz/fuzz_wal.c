/*
 * fuzz_wal.c - WAL replay (kvengine/log/wal.c) on a file of arbitrary bytes.
 *
 * Input: mode byte, then the file.  Checks: a read-only and a writable
 * replay agree (result and entries); after the writable one cut the torn
 * tail, an appended entry replays right after the same entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "fuzz.h"
#include "sett.h"
#include "wal.h"

typedef struct seen {
	uint64_t h;
	size_t n;
} seen;

static int apply(void *arg, const entry *e)
{
	seen *s = arg;
	FUZZ_CHECK(e->key.n >= 8);
	s->h = fuzz_hash(s->h, e->key.p, e->key.n);
	s->h = fuzz_hash(s->h, e->value.p, e->value.n);
	uint8_t m[2] = { e->meta, e->user_meta };
	s->h = fuzz_hash(s->h, m, 2);
	s->n++;
	return 0;
}

static int replay(const char *path, int writable, wal **w, seen *s)
{
	char why[512] = "";
	*s = (seen){ FUZZ_HASH_INIT, 0 };
	int r = wal_open_replay(path, writable, apply, s, w, why, sizeof why);
	FUZZ_CHECK(r <= 0);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, NULL, &mode, &n);
	if (!p)
		return 0;
	if (mode & FUZZ_FIX_SUMS)
		fuzz_fix_log(p, n, mode);
	const char *dir = fuzz_dir();
	fuzz_write(dir, "00001.mem", p, n);
	free(p);
	char path[4200];
	snprintf(path, sizeof path, "%s/00001.mem", dir);

	seen ro, rw, after;
	wal *w = NULL;
	int r1 = replay(path, 0, NULL, &ro);
	int r2 = replay(path, 1, &w, &rw);
	FUZZ_CHECK(r1 == r2);
	if (r1)
		return 0;
	FUZZ_CHECK(ro.n == rw.n && ro.h == rw.h);

	/* the next append continues at the valid end */
	uint8_t key[16] = "fuzz-key\0\0\0\0\0\0\0\1", val[5] = "value";
	entry e = { .key = slice_make(key, sizeof key), .value = slice_make(val, sizeof val) };
	buf b = { 0 };
	FUZZ_CHECK(entry_append(&b, &e) == 0);
	FUZZ_CHECK(wal_append(w, b.p, b.n) == 0);
	buf_free(&b);
	wal_close(w, 0);
	seen want = rw;
	apply(&want, &e);
	FUZZ_CHECK(replay(path, 0, NULL, &after) == 0);
	FUZZ_CHECK(after.n == want.n && after.h == want.h);
	return 0;
}
