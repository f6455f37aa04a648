/*
 * fuzz_discard.c - the DISCARD file decoder (kvengine/vlog/discard.c).
 *
 * Input: mode byte, then the file.  Checks: a file that decodes is written
 * back by discard_persist so that it decodes to the same statistics (plus
 * what was added meanwhile); the read-only and writable opens agree.
 */
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "discard.h"
#include "fuzz.h"
#include "sett.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_discard, &mode, &n);
	if (!p)
		return 0;
	const char *dir = fuzz_dir();
	fuzz_write(dir, "DISCARD", p, n);

	char why[512];
	discard *d;
	int r1 = discard_open(dir, 1, &d, why, sizeof why);
	FUZZ_CHECK(r1 <= 0);
	if (r1) {
		free(p);
		return 0;
	}
	uint64_t total = discard_total(d);
	/* the fids named in the file (row i at 16 + 12 i) */
	size_t rows = n >= 24 ? (n - 24) / 12 : 0;
	uint64_t sum = 0;
	for (size_t i = 0; i < rows; i++)
		sum += discard_get(d, get_le32(p + 16 + 12 * i));
	FUZZ_CHECK(sum == total);
	discard_close(d);

	FUZZ_CHECK(discard_open(dir, 0, &d, why, sizeof why) == 0);
	FUZZ_CHECK(discard_total(d) == total);
	uint32_t fid = rows ? get_le32(p + 16) : 7;
	uint64_t before = discard_get(d, fid);
	discard_add(d, fid, 5);
	FUZZ_CHECK(discard_close(d) == 0);
	FUZZ_CHECK(discard_open(dir, 1, &d, why, sizeof why) == 0);
	FUZZ_CHECK(discard_get(d, fid) == before + 5 && discard_total(d) == total + 5);
	discard_close(d);
	free(p);
	return 0;
}
