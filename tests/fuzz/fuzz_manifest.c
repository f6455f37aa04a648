/*
 * fuzz_manifest.c - MANIFEST replay (kvengine/log/manifest.c) on a file of
 * arbitrary bytes.
 *
 * Input: mode byte, then the file.  Checks: a read-only and a writable open
 * agree (result and live tables); after the writable open cut a torn tail,
 * a change set applied to it replays on top of the same tables.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "manifest.h"
#include "sett.h"

static int cmp_table(const void *a, const void *b)
{
	const manifest_table *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int same(manifest_table *a, size_t na, manifest_table *b, size_t nb)
{
	if (na != nb)
		return 0;
	qsort(a, na, sizeof *a, cmp_table);
	qsort(b, nb, sizeof *b, cmp_table);
	for (size_t i = 0; i < na; i++)
		if (a[i].id != b[i].id || a[i].level != b[i].level ||
		    a[i].compression != b[i].compression)
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_manifest, &mode, &n);
	if (!p)
		return 0;
	const char *dir = fuzz_dir();
	fuzz_write(dir, "MANIFEST", p, n);
	free(p);

	char why[512];
	manifest *m;
	manifest_table *a = NULL, *b = NULL, *c = NULL;
	size_t na = 0, nb = 0, nc = 0;
	int r1 = manifest_open(dir, 1, &m, &a, &na, why, sizeof why);
	FUZZ_CHECK(r1 <= 0);
	if (r1 == 0)
		manifest_close(m);
	int r2 = manifest_open(dir, 0, &m, &b, &nb, why, sizeof why);
	FUZZ_CHECK(r1 == r2);
	if (r2) {
		free(a);
		return 0;
	}
	FUZZ_CHECK(same(a, na, b, nb));
	for (size_t i = 0; i < na; i++)
		FUZZ_CHECK(a[i].level < SETT_MAX_LEVELS);

	uint64_t next = 1;
	for (size_t i = 0; i < na; i++)
		if (a[i].id >= next)
			next = a[i].id + 1;
	manifest_change ch = { .op = MANIFEST_CREATE, .level = 0, .compression = 1, .id = next };
	int ra = next ? manifest_apply(m, &ch, 1) : -1;
	manifest_close(m);
	if (ra == 0) {
		a = realloc(a, (na + 1) * sizeof *a);
		FUZZ_CHECK(a != NULL);
		a[na++] = (manifest_table){ .id = next, .level = 0, .compression = 1 };
	}
	FUZZ_CHECK(manifest_open(dir, 1, &m, &c, &nc, why, sizeof why) == 0);
	manifest_close(m);
	FUZZ_CHECK(same(a, na, c, nc));
	free(a);
	free(b);
	free(c);
	return 0;
}
