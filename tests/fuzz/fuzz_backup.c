/*
 * fuzz_backup.c - the backup stream decoder (kvengine/api/backup.c, the pass 1
 * and pass 2 of sett_load) on arbitrary bytes.
 *
 * Input: mode byte, then the stream.  Checks: decoding never crashes or
 * leaks; reading the same bytes in pieces of different sizes gives the same
 * result, the same entries and the same offset of a fault; an accepted
 * stream's entries are within the format's limits and as many as its
 * trailer says.
 */
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "fuzz.h"

typedef struct seen {
	uint64_t h, n;
} seen;

static int on_frame(void *arg, const sett_kv *kv, size_t n)
{
	seen *s = arg;
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(kv[i].key.size <= SETT_MAX_KEY_SIZE);
		FUZZ_CHECK(!kv[i].deleted || kv[i].value.size == 0);
		s->h = fuzz_hash(s->h, kv[i].key.data, kv[i].key.size);
		s->h = fuzz_hash(s->h, kv[i].value.data, kv[i].value.size);
		s->h = fuzz_hash(s->h, &kv[i].version, sizeof kv[i].version);
		s->h = fuzz_hash(s->h, &kv[i].deleted, 1);
	}
	s->n += n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_backup, &mode, &n);
	if (!p)
		return 0;
	sett_load_result r1, r2;
	seen s1 = { FUZZ_HASH_INIT, 0 }, s2 = { FUZZ_HASH_INIT, 0 };
	fuzz_src a = { p, n, 0, 1u << 20 }, b = { p, n, 0, 1 + (size % 13) };
	int e1 = backup_decode(fuzz_src_read, &a, NULL, on_frame, &s1, &r1);
	int e2 = backup_decode(fuzz_src_read, &b, NULL, on_frame, &s2, &r2);
	FUZZ_CHECK(e1 == e2);
	FUZZ_CHECK(e1 == 0 || e1 == SETT_ECORRUPT || e1 == SETT_EFORMAT);
	FUZZ_CHECK(r1.offset == r2.offset);
	if (e1 == 0) {
		FUZZ_CHECK(s1.h == s2.h && s1.n == s2.n);
		FUZZ_CHECK(r1.records == s1.n);
		FUZZ_CHECK(r1.since <= r1.version);
	} else {
		FUZZ_CHECK(r1.why[0] != 0);
		FUZZ_CHECK(r1.offset <= n);
	}
	free(p);
	return 0;
}
