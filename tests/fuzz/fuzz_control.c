/*
 * fuzz_control.c - the control protocol's decoder (fs/control.c) and the
 * renderers of a status reply (fs/status.c), as `settfs status` runs them
 * and of a scrub status reply (fs/scrub.c), as `settfs status` and
 * `settfs scrub` run them on what a daemon (or anything bound to its
 * socket name) sends.
 *
 * Input: mode byte, then a message (header and body).  The protocol has
 * no checksums; with FUZZ_FIX_SUMS the header's magic, version and body
 * length are set to match the input, so the records get fuzzed rather
 * than the header checks.  Checks: every record decoded re-encodes to the
 * same bytes (the encoding is canonical), and the renderers accept every
 * body the decoder accepts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fuzz.h"
#include "scrub.h"
#include "status.h"

static void fix_header(uint8_t *p, size_t n)
{
	if (n < CTL_HEADER_SIZE)
		return;
	memcpy(p, CTL_MAGIC, 4);
	p[4] = CTL_VERSION;
	p[5] = 0;
	uint32_t len = (uint32_t)(n - CTL_HEADER_SIZE);
	for (int i = 0; i < 4; i++)
		p[8 + i] = (uint8_t)(len >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fix_header, &mode, &n);
	if (!p)
		return 0;
	ctl_header h;
	int r = ctl_header_decode(p, n, CTL_MAX_REPLY, &h);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EPROTO || r == -EMSGSIZE);
	if (r || h.len > n - CTL_HEADER_SIZE) {
		free(p);
		return 0;
	}
	const uint8_t *body = p + CTL_HEADER_SIZE;
	ctl_cursor c;
	ctl_rec rec;
	ctl_cursor_init(&c, body, h.len);
	size_t start = 0;
	int k;
	while ((k = ctl_next(&c, &rec)) == 1) {
		FUZZ_CHECK(c.off > start && c.off <= h.len);
		ctl_buf b = { 0 };
		ctl_begin(&b, h.type);
		switch (rec.kind) {
		case CTL_U64: ctl_put_u64(&b, rec.name, rec.u); break;
		case CTL_I64: ctl_put_i64(&b, rec.name, rec.i); break;
		case CTL_F64: ctl_put_f64(&b, rec.name, rec.f); break;
		default: ctl_put_bytes(&b, rec.name, rec.s, rec.slen); break;
		}
		FUZZ_CHECK(ctl_end(&b) == 0);
		/* an unknown kind was written back as a string: compare the rest */
		FUZZ_CHECK(b.n - CTL_HEADER_SIZE == c.off - start);
		FUZZ_CHECK(memcmp(b.p + CTL_HEADER_SIZE + 1, body + start + 1, c.off - start - 1) == 0);
		ctl_buf_free(&b);
		start = c.off;
	}
	FUZZ_CHECK(k == 0 || k == -EPROTO);
	FILE *f = fopen("/dev/null", "w");
	if (f) {
		int t = sfs_status_print(body, h.len, 0, f);
		int j = sfs_status_print(body, h.len, 1, f);
		int state;
		int sc = sfs_scrub_print(body, h.len, "/mnt", f, &state);
		FUZZ_CHECK(t == k && j == k && sc == k);
		FUZZ_CHECK(sc < 0 || (state >= 0 && state <= 4));
		fclose(f);
	}
	free(p);
	return 0;
}
