/*
 * test_coding.c - integer encodings (coding.h), log entries, value pointers,
 * value structs and log file headers (entry.h): round trips, and that every
 * malformed input is rejected rather than decoded into something wrong.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "entry.h"
#include "ikey.h"
#include "sett.h"
#include "testutil.h"

#include <xxhash.h>

static const uint64_t edge_values[] = {
	0, 1, 127, 128, 255, 256, 16383, 16384, 0xffffffffULL, 0x100000000ULL,
	(1ULL << 56) - 1, 1ULL << 63, UINT64_MAX - 1, UINT64_MAX
};
#define NEDGE (sizeof edge_values / sizeof edge_values[0])

START_TEST(fixed_round_trip)
{
	uint8_t b[8];
	for (size_t i = 0; i < NEDGE; i++) {
		uint64_t v = edge_values[i];
		put_le16(b, (uint16_t)v);
		ck_assert_uint_eq(get_le16(b), (uint16_t)v);
		put_le32(b, (uint32_t)v);
		ck_assert_uint_eq(get_le32(b), (uint32_t)v);
		put_le64(b, v);
		ck_assert_uint_eq(get_le64(b), v);
		put_be64(b, v);
		ck_assert_uint_eq(get_be64(b), v);
	}
	/* Byte order is what FORMAT.md says. */
	put_le32(b, 0x04030201u);
	ck_assert(b[0] == 1 && b[1] == 2 && b[2] == 3 && b[3] == 4);
	put_be64(b, 0x0102030405060708ULL);
	ck_assert(b[0] == 1 && b[7] == 8);
	/* be64 sorts like the numbers. */
	uint8_t x[8], y[8];
	put_be64(x, 255);
	put_be64(y, 256);
	ck_assert_int_lt(memcmp(x, y, 8), 0);
}
END_TEST

START_TEST(varint_round_trip)
{
	uint8_t b[VARINT_MAX + 4];
	uint64_t state = 7;
	for (size_t i = 0; i < NEDGE + 1000; i++) {
		uint64_t v = i < NEDGE ? edge_values[i] : tu_rand(&state) >> (tu_rand(&state) % 64);
		size_t n = varint_put(b, v);
		ck_assert_uint_eq(n, varint_len(v));
		ck_assert_uint_le(n, VARINT_MAX);
		uint64_t got = 0;
		ck_assert_uint_eq(varint_get(b, b + n, &got), n);
		ck_assert_uint_eq(got, v);
		/* Every proper prefix is truncated. */
		for (size_t k = 0; k < n; k++)
			ck_assert_uint_eq(varint_get(b, b + k, &got), 0);
	}
	ck_assert_uint_eq(varint_len(UINT64_MAX), 10);
}
END_TEST

START_TEST(varint_overlong_rejected)
{
	uint8_t b[16];
	uint64_t v;
	/* 11 bytes of continuation: longer than any u64. */
	memset(b, 0x80, sizeof b);
	b[10] = 0;
	ck_assert_uint_eq(varint_get(b, b + 11, &v), 0);
	/* 10 bytes whose last carries bits above 2^64. */
	memset(b, 0xff, 9);
	b[9] = 0x02;
	ck_assert_uint_eq(varint_get(b, b + 10, &v), 0);
	b[9] = 0x01; /* exactly UINT64_MAX */
	ck_assert_uint_eq(varint_get(b, b + 10, &v), 10);
	ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

/* An internal key from a user key and version, in a malloc'ed buffer. */
static uint8_t *make_ikey(const void *ukey, size_t n, uint64_t version)
{
	uint8_t *k = malloc(n + IKEY_SUFFIX);
	ikey_make(k, ukey, n, version);
	return k;
}

static void check_round_trip(const entry *e)
{
	buf b = { 0 };
	ck_assert_int_eq(entry_append(&b, e), 0);
	ck_assert_uint_eq(b.n, entry_encoded_len(e));
	/* Trailing bytes after the entry are not part of it. */
	buf_append(&b, "trailing", 8);
	entry d;
	long n = entry_decode(b.p, b.n, &d);
	ck_assert_int_eq(n, (long)entry_encoded_len(e));
	ck_assert_uint_eq(d.meta, e->meta);
	ck_assert_uint_eq(d.user_meta, e->user_meta);
	ck_assert_uint_eq(d.expires_at, e->expires_at);
	ck_assert_int_eq(slice_cmp(d.key, e->key), 0);
	ck_assert_int_eq(slice_cmp(d.value, e->value), 0);
	/* Every proper prefix is "incomplete", never an entry. */
	size_t step = (size_t)n > 4096 ? 4093 : 1;
	for (size_t k = 0; k < (size_t)n; k += step)
		ck_assert_int_eq(entry_decode(b.p, k, &d), 0);
	ck_assert_int_eq(entry_decode(b.p, (size_t)n - 1, &d), 0);
	buf_free(&b);
}

START_TEST(entry_round_trips)
{
	uint8_t *k1 = make_ikey("hello", 5, 42);
	entry e = { slice_make(k1, 13), slice_make("world", 5), 0, 7, 0 };
	check_round_trip(&e);

	/* Empty value, tombstone, TTL. */
	e.value = slice_make("", 0);
	e.meta = META_DELETE;
	e.expires_at = 1700000000;
	check_round_trip(&e);

	/* Empty user key (the internal key is just the version). */
	uint8_t *k0 = make_ikey("", 0, 1);
	e.key = slice_make(k0, 8);
	e.meta = META_TXN | META_FIN_TXN;
	e.expires_at = UINT64_MAX;
	check_round_trip(&e);

	/* Binary key with zero bytes and 0xff, and a 1 MiB value. */
	uint8_t bin[300];
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (uint8_t)(i * 37);
	bin[0] = 0;
	bin[1] = 0xff;
	uint8_t *kb = make_ikey(bin, sizeof bin, UINT64_MAX);
	size_t big = 1u << 20;
	uint8_t *val = malloc(big);
	uint64_t st = 99;
	tu_fill_random(&st, val, big);
	entry b = { slice_make(kb, sizeof bin + 8), slice_make(val, big), META_VALUE_POINTER,
		    255, 12345 };
	check_round_trip(&b);

	/* The largest key. */
	uint8_t *kmax = calloc(1, SETT_MAX_KEY_SIZE + 8);
	entry m = { slice_make(kmax, SETT_MAX_KEY_SIZE + 8), slice_make("v", 1), 0, 0, 0 };
	check_round_trip(&m);

	free(k1);
	free(k0);
	free(kb);
	free(val);
	free(kmax);
}
END_TEST

/* Flip every byte of an encoded entry in several ways: never a wrong success. */
START_TEST(entry_every_byte_corruption_detected)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0x5a, 0xff };
	uint8_t *k = make_ikey("some-key", 8, 77);
	uint8_t val[200];
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (uint8_t)i;
	entry e = { slice_make(k, 16), slice_make(val, sizeof val), META_TXN, 3, 300 };
	buf b = { 0 };
	ck_assert_int_eq(entry_append(&b, &e), 0);
	int corrupt = 0, incomplete = 0;
	for (size_t pos = 0; pos < b.n; pos++) {
		for (size_t m = 0; m < sizeof masks; m++) {
			b.p[pos] ^= masks[m];
			entry d;
			long r = entry_decode(b.p, b.n, &d);
			ck_assert_msg(r == SETT_ECORRUPT || r == 0,
				      "flip 0x%02x at byte %zu decoded as success (%ld)", masks[m],
				      pos, r);
			corrupt += r == SETT_ECORRUPT;
			incomplete += r == 0;
			b.p[pos] ^= masks[m];
		}
	}
	ck_assert_int_gt(corrupt, 0);
	entry d;
	ck_assert_int_eq(entry_decode(b.p, b.n, &d), (long)b.n);
	buf_free(&b);
	free(k);
}
END_TEST

/* Entries with a valid checksum but impossible fields are rejected. */
START_TEST(entry_bad_fields_rejected)
{
	uint8_t enc[256];
	entry d;
	/* A key shorter than the version suffix. */
	entry e = { slice_make("abc", 3), slice_make("v", 1), 0, 0, 0 };
	size_t n = entry_encode(enc, &e);
	ck_assert_int_eq(entry_decode(enc, n, &d), SETT_ECORRUPT);
	/* Unknown meta bits; FIN without TXN. */
	uint8_t *k = make_ikey("k", 1, 1);
	e.key = slice_make(k, 9);
	e.meta = 0x10;
	n = entry_encode(enc, &e);
	ck_assert_int_eq(entry_decode(enc, n, &d), SETT_ECORRUPT);
	e.meta = META_FIN_TXN;
	n = entry_encode(enc, &e);
	ck_assert_int_eq(entry_decode(enc, n, &d), SETT_ECORRUPT);
	/* A key length above the limit (header only; no need for the bytes). */
	uint8_t h[32] = { 0, 0 };
	size_t hn = 2 + varint_put(h + 2, SETT_MAX_KEY_SIZE + 9);
	hn += varint_put(h + hn, 1);
	hn += varint_put(h + hn, 0);
	ck_assert_int_eq(entry_decode(h, hn, &d), SETT_ECORRUPT);
	/* A value length above the limit. */
	hn = 2 + varint_put(h + 2, 9);
	hn += varint_put(h + hn, (uint64_t)SETT_MAX_VALUE_SIZE + 1);
	ck_assert_int_eq(entry_decode(h, hn + 1, &d), SETT_ECORRUPT);
	/* An overlong length varint. */
	memset(h + 2, 0x80, 12);
	ck_assert_int_eq(entry_decode(h, 20, &d), SETT_ECORRUPT);
	/* Nothing at all is incomplete, not corrupt. */
	ck_assert_int_eq(entry_decode(h, 0, &d), 0);
	ck_assert_int_eq(entry_decode(h, 1, &d), 0);
	free(k);
}
END_TEST

START_TEST(entry_header_lengths)
{
	uint8_t *k = make_ikey("key", 3, 5);
	entry e = { slice_make(k, 11), slice_make("value!", 6), META_DELETE, 9, 1000 };
	uint8_t enc[128];
	size_t n = entry_encode(enc, &e);
	entry h;
	size_t hlen, total;
	ck_assert_int_eq(entry_decode_header(enc, n, &h, &hlen, &total), 1);
	ck_assert_uint_eq(total, n);
	ck_assert_uint_eq(hlen, n - 11 - 6 - ENTRY_CHECKSUM);
	ck_assert_uint_eq(h.key.n, 11);
	ck_assert_uint_eq(h.value.n, 6);
	ck_assert_uint_eq(h.expires_at, 1000);
	ck_assert_int_eq(entry_decode_header(enc, 3, &h, &hlen, &total), 0);
	free(k);
}
END_TEST

START_TEST(vptr_round_trip)
{
	vptr a = { 0xdeadbeef, 4096, 0x12345678 }, b;
	uint8_t enc[VPTR_SIZE];
	vptr_encode(enc, &a);
	ck_assert_int_eq(vptr_decode(enc, sizeof enc, &b), 0);
	ck_assert_uint_eq(b.fid, a.fid);
	ck_assert_uint_eq(b.len, a.len);
	ck_assert_uint_eq(b.offset, a.offset);
	ck_assert_uint_eq(get_le32(enc), 0xdeadbeef); /* fid first, little-endian */
	ck_assert_int_eq(vptr_decode(enc, VPTR_SIZE - 1, &b), SETT_ECORRUPT);
}
END_TEST

START_TEST(vstruct_round_trip)
{
	buf b = { 0 };
	vstruct v = { 0, 42, 1700000000, slice_make("inline value", 12) }, d;
	ck_assert_int_eq(vstruct_append(&b, &v), 0);
	ck_assert_uint_eq(b.n, vstruct_encoded_len(&v));
	ck_assert_int_eq(vstruct_decode(b.p, b.n, &d), 0);
	ck_assert_uint_eq(d.user_meta, 42);
	ck_assert_uint_eq(d.expires_at, 1700000000);
	ck_assert_int_eq(slice_cmp(d.data, v.data), 0);

	/* A tombstone with no data. */
	vstruct t = { META_DELETE, 0, 0, slice_make(NULL, 0) };
	uint8_t enc[64];
	size_t n = vstruct_encode(enc, &t);
	ck_assert_int_eq(vstruct_decode(enc, n, &d), 0);
	ck_assert_uint_eq(d.meta, META_DELETE);
	ck_assert_uint_eq(d.data.n, 0);

	/* A pointer struct carries exactly one vptr. */
	uint8_t pe[VPTR_SIZE];
	vptr p = { 3, 100, 24 }, q;
	vptr_encode(pe, &p);
	vstruct pv = { META_VALUE_POINTER, 0, 0, slice_make(pe, VPTR_SIZE) };
	n = vstruct_encode(enc, &pv);
	ck_assert_int_eq(vstruct_decode(enc, n, &d), 0);
	ck_assert_int_eq(vptr_decode(d.data.p, d.data.n, &q), 0);
	ck_assert_uint_eq(q.fid, 3);
	ck_assert_int_eq(vstruct_decode(enc, n - 1, &d), SETT_ECORRUPT);

	/* Truncated, unknown meta bits, bad varint. */
	ck_assert_int_eq(vstruct_decode(enc, 2, &d), SETT_ECORRUPT);
	uint8_t bad[16] = { 0x20, 0, 0 };
	ck_assert_int_eq(vstruct_decode(bad, 3, &d), SETT_ECORRUPT);
	memset(bad, 0x80, sizeof bad);
	bad[0] = 0;
	ck_assert_int_eq(vstruct_decode(bad, sizeof bad, &d), SETT_ECORRUPT);
	buf_free(&b);
}
END_TEST

/* sett_hash is XXH3-64 whichever code computes it (hash_avx2.c on long
 * inputs): the same results as the system library's, at every length
 * around the thresholds and at every alignment; sett_hash2 over any cut
 * the same as over the whole. */
START_TEST(hash_is_xxh3)
{
	size_t max = 20000 + 64;
	uint8_t *b = malloc(max);
	ck_assert_ptr_nonnull(b);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < max; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b[i] = (uint8_t)x;
	}
	for (size_t n = 0; n <= 20000; n += n < 2100 ? 1 : 97)
		for (size_t off = 0; off < 64; off += n < 2100 ? 31 : 7)
			ck_assert_uint_eq(sett_hash(b + off, n), XXH3_64bits(b + off, n));
	/* two pieces hash as one */
	for (size_t n = 0; n <= 20000; n += n < 600 ? 13 : 1999)
		for (size_t cut = 0; cut <= n; cut += cut < 300 ? 1 + cut / 3 : 4001)
			ck_assert_uint_eq(sett_hash2(b + 3, cut, b + 3 + cut, n - cut),
					  XXH3_64bits(b + 3, n));
	free(b);
}
END_TEST

START_TEST(log_header)
{
	static const char magic[] = "SETTTEST";
	static const char other[] = "SETTOTHR";
	uint8_t h[LOG_HEADER_SIZE];
	uint32_t fid = 0;
	log_header_encode(h, magic, 77);
	ck_assert_int_eq(log_header_decode(h, sizeof h, magic, &fid), 0);
	ck_assert_uint_eq(fid, 77);
	ck_assert_int_eq(log_header_decode(h, sizeof h, other, &fid), SETT_EFORMAT);
	ck_assert_int_eq(log_header_decode(h, sizeof h - 1, magic, &fid), SETT_ECORRUPT);
	for (size_t i = 8; i < sizeof h; i++) {
		h[i] ^= 0x01;
		ck_assert_int_eq(log_header_decode(h, sizeof h, magic, &fid), SETT_ECORRUPT);
		h[i] ^= 0x01;
	}
	/* A future version with a valid checksum is a format error. */
	put_le32(h + 8, 2);
	put_le64(h + 16, sett_hash(h, 16));
	ck_assert_int_eq(log_header_decode(h, sizeof h, magic, &fid), SETT_EFORMAT);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("coding");
	TCase *tc = tcase_create("coding");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, fixed_round_trip);
	tcase_add_test(tc, varint_round_trip);
	tcase_add_test(tc, varint_overlong_rejected);
	tcase_add_test(tc, entry_round_trips);
	tcase_add_test(tc, entry_every_byte_corruption_detected);
	tcase_add_test(tc, entry_bad_fields_rejected);
	tcase_add_test(tc, entry_header_lengths);
	tcase_add_test(tc, vptr_round_trip);
	tcase_add_test(tc, vstruct_round_trip);
	tcase_add_test(tc, log_header);
	tcase_add_test(tc, hash_is_xxh3);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
