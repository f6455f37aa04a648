/*
 * fuzz_send.c - the send stream decoder (fs/send.c: sfs_send_check, what
 * `settfs receive` verifies before it changes anything) on arbitrary bytes.
 *
 * Input: mode byte, then the stream (FUZZ_FIX_SUMS: the backup stream's
 * checksums are recomputed, so the send header and the record checks
 * behind them get fuzzed).  Checks: decoding never crashes or leaks;
 * reading the same bytes in pieces of different sizes gives the same
 * result and the same offset of a fault; an accepted stream has a send
 * header that re-encodes to a valid one with the same fields, versions
 * that agree with the backup header, and a refused one says why.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "send.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_backup, &mode, &n);
	if (!p)
		return 0;
	sfs_recv_result *r1 = malloc(sizeof *r1), *r2 = malloc(sizeof *r2);
	FUZZ_CHECK(r1 && r2);
	fuzz_src a = { p, n, 0, 1u << 20 }, b = { p, n, 0, 1 + (size % 13) };
	int e1 = sfs_send_check(fuzz_src_read, &a, r1);
	int e2 = sfs_send_check(fuzz_src_read, &b, r2);
	FUZZ_CHECK(e1 == e2);
	FUZZ_CHECK(e1 <= 0 && e1 > -4096);
	FUZZ_CHECK(r1->load.offset == r2->load.offset);
	if (e1 == 0) {
		const sfs_send_meta *m = &r1->meta;
		FUZZ_CHECK(r1->load.since == m->from_version && r1->load.version == m->version);
		uint8_t enc[SFS_SEND_META_MAX];
		size_t k = sfs_send_meta_encode(m, enc);
		sfs_send_meta back;
		FUZZ_CHECK(sfs_send_meta_decode(enc, k, &back) == 0);
		FUZZ_CHECK(!memcmp(&back, m, sizeof back));
		FUZZ_CHECK(!memcmp(&r2->meta, m, sizeof *m));
	} else {
		FUZZ_CHECK(r1->why[0] != 0);
		FUZZ_CHECK(r1->load.offset <= n);
	}
	free(r1);
	free(r2);
	free(p);
	return 0;
}
