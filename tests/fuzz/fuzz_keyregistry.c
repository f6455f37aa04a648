/*
 * fuzz_keyregistry.c - the KEYREGISTRY decoder (kvengine/log/keyregistry.c).
 *
 * Input: mode byte, then the file.  Mode bit 2 clear: through sett_open of
 * a store that has an empty MANIFEST and the fuzzed KEYREGISTRY; a
 * read-only and a writable open agree, and neither changes the file.
 * Mode bit 2 set: keyreg_decode under fuzz_master_key (a registry with keys
 * is what this reaches); a registry that decodes encodes again to one that
 * decodes to the same keys, and every failure is a sett error code.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyregistry.h"
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

static void decode(const uint8_t *p, size_t n)
{
	keyreg_master m = { .key = fuzz_master_key };
	char why[256];
	keyreg *kr;
	int r = keyreg_decode(p, n, &m, &kr, why, sizeof why);
	FUZZ_CHECK(r == 0 || r == SETT_ECORRUPT || r == SETT_EFORMAT || r == SETT_EKEY);
	FUZZ_CHECK(r == 0 || kr == NULL);
	if (!kr)
		return;
	FUZZ_CHECK(kr->n >= 1 && kr->n <= KEYREG_MAX_KEYS);
	uint8_t *q;
	size_t qn;
	FUZZ_CHECK(keyreg_encode(kr, &q, &qn) == 0);
	FUZZ_CHECK(qn == n);
	keyreg *back;
	FUZZ_CHECK(keyreg_decode(q, qn, &m, &back, why, sizeof why) == 0);
	FUZZ_CHECK(back->n == kr->n);
	for (size_t i = 0; i < kr->n; i++) {
		FUZZ_CHECK(back->keys[i].id == kr->keys[i].id);
		FUZZ_CHECK(back->keys[i].created == kr->keys[i].created);
		FUZZ_CHECK(memcmp(back->keys[i].key, kr->keys[i].key, CRYPT_KEY_SIZE) == 0);
	}
	keyreg_free(back);
	keyreg_free(kr);
	free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_keyregistry, &mode, &n);
	if (!p)
		return 0;
	if (mode & 2) {
		decode(p, n);
		free(p);
		return 0;
	}
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
