/*
 * fuzz_keyregistry.c - the KEYREGISTRY decoder (kvengine/db.c), through
 * sett_open of a store that has an empty MANIFEST and the fuzzed
 * KEYREGISTRY.
 *
 * Input: mode byte, then the file.  Checks: a read-only and a writable open
 * agree, and neither changes the file.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "manifest.h"
#include "sett.h"

static int open_close(const char *dir, int read_only)
{
	sett_options o;
	fuzz_sett_options(&o, read_only);
	char why[512];
	o.error_buf = why;
	o.error_buf_size = sizeof why;
	sett_db *db;
	int r = sett_open(dir, &o, &db);
	FUZZ_CHECK(r <= 0);
	if (r == 0)
		FUZZ_CHECK(sett_close(db) == 0);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_keyregistry, &mode, &n);
	if (!p)
		return 0;
	const char *dir = fuzz_dir();
	/* an empty MANIFEST, as the engine writes it */
	FUZZ_CHECK(manifest_create(dir) == 0);
	fuzz_write(dir, "KEYREGISTRY", p, n);

	int r1 = open_close(dir, 1);
	int r2 = open_close(dir, 0);
	FUZZ_CHECK(r1 == r2);
	uint8_t *after;
	size_t an;
	FUZZ_CHECK(fuzz_read(dir, "KEYREGISTRY", &after, &an) == 0);
	FUZZ_CHECK(an == n && (!n || memcmp(after, p, n) == 0));
	free(after);
	free(p);
	return 0;
}
