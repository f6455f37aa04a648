/*
 * fuzz_entry.c - the log entry, value struct, value pointer and log header
 * decoders (kvengine/log/entry.c) on raw bytes.
 *
 * Input: mode byte, then the bytes.  Checks: entry_decode_header and
 * entry_decode agree on the length and fields; a decoded entry, value
 * struct or header re-encodes to the same bytes when its varints were
 * minimal.
 */
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "fuzz.h"
#include "sett.h"

static void check_entry(const uint8_t *p, size_t n)
{
	entry h, e;
	size_t hlen = 0, total = 0;
	int hr = entry_decode_header(p, n, &h, &hlen, &total);
	long r = entry_decode(p, n, &e);
	FUZZ_CHECK(hr == 1 || hr == 0 || hr == SETT_ECORRUPT);
	FUZZ_CHECK(r >= 0 || r == SETT_ECORRUPT);
	if (hr != 1) {
		FUZZ_CHECK(r == hr);
		return;
	}
	FUZZ_CHECK(hlen <= total && total == hlen + h.key.n + h.value.n + ENTRY_CHECKSUM);
	if (r <= 0)
		return;
	FUZZ_CHECK((size_t)r == total && total <= n);
	FUZZ_CHECK(e.key.p == p + hlen && e.key.n == h.key.n && e.value.n == h.value.n);
	FUZZ_CHECK(e.meta == h.meta && e.user_meta == h.user_meta &&
		   e.expires_at == h.expires_at);
	FUZZ_CHECK(e.key.n >= 8 && e.key.n <= SETT_MAX_KEY_SIZE + 8);
	FUZZ_CHECK(e.value.n <= SETT_MAX_VALUE_SIZE);
	if (entry_encoded_len(&e) == total) {
		uint8_t *out = malloc(total);
		FUZZ_CHECK(out && entry_encode(out, &e) == total);
		FUZZ_CHECK(memcmp(out, p, total) == 0);
		free(out);
	}
}

static void check_vstruct(const uint8_t *p, size_t n)
{
	vstruct v;
	if (vstruct_decode(p, n, &v) != 0)
		return;
	FUZZ_CHECK(v.data.p >= p && v.data.p + v.data.n == p + n);
	FUZZ_CHECK(!(v.meta & META_VALUE_POINTER) || v.data.n == VPTR_SIZE);
	if (vstruct_encoded_len(&v) == n) {
		uint8_t *out = malloc(n);
		FUZZ_CHECK(out && vstruct_encode(out, &v) == n);
		FUZZ_CHECK(memcmp(out, p, n) == 0);
		free(out);
	}
	if (v.meta & META_VALUE_POINTER) {
		vptr vp;
		uint8_t out[VPTR_SIZE];
		FUZZ_CHECK(vptr_decode(v.data.p, v.data.n, &vp) == 0);
		vptr_encode(out, &vp);
		FUZZ_CHECK(memcmp(out, v.data.p, VPTR_SIZE) == 0);
	}
}

static void check_header(const uint8_t *p, size_t n, const char *magic)
{
	uint32_t fid;
	int r = log_header_decode(p, n, magic, &fid);
	FUZZ_CHECK(r == 0 || r == SETT_ECORRUPT || r == SETT_EFORMAT);
	if (r == 0) {
		uint8_t out[LOG_HEADER_SIZE];
		log_header_encode(out, magic, fid);
		FUZZ_CHECK(memcmp(out, p, LOG_HEADER_SIZE) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, NULL, &mode, &n);
	if (!p)
		return 0;
	/* mode bit 1 picks which checksum to repair: the header's or the entry's */
	if ((mode & FUZZ_FIX_SUMS) && (mode & 2) && n >= LOG_HEADER_SIZE)
		put_le64(p + 16, sett_hash(p, 16));
	else if (mode & FUZZ_FIX_SUMS)
		fuzz_fix_entry(p, n);
	check_entry(p, n);
	check_vstruct(p, n);
	check_header(p, n, "SETTWAL\0");
	check_header(p, n, "SETTVLOG");
	free(p);
	return 0;
}
