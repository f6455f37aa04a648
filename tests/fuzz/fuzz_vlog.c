/*
 * fuzz_vlog.c - the value log (kvengine/vlog/vlog.c): opening a head file of
 * arbitrary bytes (header, scan, torn-tail detection), iterating it and
 * reading entries through value pointers, with and without checksum
 * verification, and scrubbing it (vlog_scrub: the walk past damage).
 *
 * Input: mode byte, a 12-byte value pointer to probe, then the file (named
 * after the file id in its header).  With FUZZ_ENC the log reads with the
 * fuzz key ring and its writable open appends under the current key, so
 * encrypted files (sealed records, key heads) are decoded too.  Checks: every entry the iteration
 * yields reads back through its pointer with the same value; a writable
 * open keeps the entries a read-only open iterates, and an entry appended
 * after it reads back; a scrub finds damage exactly when the iteration
 * does, its faults in file order, apart, and inside the file.
 */
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "fuzz.h"
#include "sett.h"
#include "vlog.h"

#define MAX_SEEN 256

typedef struct seen {
	uint64_t h;
	size_t n, limit;
	vptr p[MAX_SEEN];
	uint64_t vh[MAX_SEEN];
} seen;

static int visit(void *arg, const entry *e, const vptr *p)
{
	seen *s = arg;
	if (s->n >= s->limit)
		return 0;
	s->h = fuzz_hash(s->h, e->key.p, e->key.n);
	s->h = fuzz_hash(s->h, e->value.p, e->value.n);
	if (s->n < MAX_SEEN) {
		s->p[s->n] = *p;
		s->vh[s->n] = fuzz_hash(FUZZ_HASH_INIT, e->value.p, e->value.n);
	}
	s->n++;
	return 0;
}

static void read_back(vlog *v, const seen *s)
{
	buf out = { 0 };
	char why[512];
	for (size_t i = 0; i < s->n && i < MAX_SEEN; i++) {
		out.n = 0;
		FUZZ_CHECK(vlog_read(v, &s->p[i], slice_make(NULL, 0), &out, why, sizeof why) == 0);
		FUZZ_CHECK(fuzz_hash(FUZZ_HASH_INIT, out.p, out.n) == s->vh[i]);
	}
	buf_free(&out);
}

static void probe(vlog *v, const vptr *p)
{
	buf out = { 0 };
	char why[512];
	uint8_t uk[8] = "fuzz-key";
	int r = vlog_read(v, p, slice_make(NULL, 0), &out, why, sizeof why);
	FUZZ_CHECK(r <= 0);
	out.n = 0;
	r = vlog_read(v, p, slice_make(uk, sizeof uk), &out, why, sizeof why);
	FUZZ_CHECK(r <= 0);
	buf_free(&out);
}

typedef struct scrubbed {
	uint64_t end, size;
	int n;
} scrubbed;

static int on_scrub_fault(void *arg, uint64_t off, uint64_t len, slice key, const char *why)
{
	scrubbed *s = arg;
	(void)why;
	FUZZ_CHECK(len > 0 && off >= s->end && off + len <= s->size);
	FUZZ_CHECK(!key.p || key.n >= 8);
	s->end = off + len;
	s->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 + VPTR_SIZE)
		return 0;
	unsigned mode = data[0];
	vptr pr;
	vptr_decode(data + 1, VPTR_SIZE, &pr);
	size_t n = size - 1 - VPTR_SIZE;
	uint8_t *p = fuzz_dup(data + 1 + VPTR_SIZE, n);
	if (mode & FUZZ_FIX_SUMS)
		fuzz_fix_log(p, n, mode);
	uint32_t fid = n >= 16 ? get_le32(p + 12) : 1;
	if (fid == 0 || fid > 999999)
		fid = 1;
	pr.fid = fid;
	const char *dir = fuzz_dir();
	char name[32];
	fuzz_file_name(FUZZ_F_VLOG, fid, name, sizeof name);
	fuzz_write(dir, name, p, n);
	free(p);

	vlog_options o = { .file_size = 1 << 20, .max_entries = 1000, .read_only = 1,
			   .verify_checksum = 1 };
	if (mode & FUZZ_ENC) {
		o.keys = fuzz_keys();
		o.cipher = fuzz_cipher();
	}
	char why[512];
	vlog *v;
	static seen ro, rw;
	ro = (seen){ .h = FUZZ_HASH_INIT, .limit = SIZE_MAX };
	int r1 = vlog_open(dir, &o, &v, why, sizeof why);
	FUZZ_CHECK(r1 <= 0);
	if (r1 == 0) {
		int it = vlog_iterate(v, fid, visit, &ro);
		scrubbed sc = { 0, vlog_file_size(v, fid), 0 };
		vlog_scrub_cb cb = { on_scrub_fault, NULL, &sc, 0 };
		int sr = vlog_scrub(v, fid, &cb);
		FUZZ_CHECK(sr == 0 || sr == SETT_ECORRUPT);
		FUZZ_CHECK((sr == SETT_ECORRUPT) == (sc.n > 0));
		FUZZ_CHECK((it == SETT_ECORRUPT) == (sr == SETT_ECORRUPT));
		read_back(v, &ro);
		probe(v, &pr);
		vlog_close(v);
		o.verify_checksum = 0;
		FUZZ_CHECK(vlog_open(dir, &o, &v, why, sizeof why) == 0);
		read_back(v, &ro);
		probe(v, &pr);
		vlog_close(v);
	}

	o.read_only = 0;
	o.verify_checksum = 1;
	int r2 = vlog_open(dir, &o, &v, why, sizeof why);
	FUZZ_CHECK(r1 == r2);
	if (r2)
		return 0;
	rw = (seen){ .h = FUZZ_HASH_INIT, .limit = ro.n };
	vlog_iterate(v, fid, visit, &rw);
	FUZZ_CHECK(rw.n == ro.n && rw.h == ro.h);

	uint8_t key[16] = "fuzz-key\0\0\0\0\0\0\0\1", val[40] = "a value appended after the scan";
	entry e = { .key = slice_make(key, sizeof key), .value = slice_make(val, sizeof val) };
	vptr np;
	FUZZ_CHECK(vlog_append(v, &e, 1, &np) == 0);
	buf out = { 0 };
	FUZZ_CHECK(vlog_read(v, &np, slice_make(key, 8), &out, why, sizeof why) == 0);
	FUZZ_CHECK(out.n == sizeof val && memcmp(out.p, val, sizeof val) == 0);
	buf_free(&out);
	vlog_close(v);
	return 0;
}
