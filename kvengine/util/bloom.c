/*
 * bloom.c - the per-table bloom filter over user keys.
 *
 * A table answers "may this user key be here?" without touching a data
 * block, so a point read skips most tables of a level stack.  The filter is
 * built once, at table finish, from the XXH3 hashes of every distinct user
 * key, and probed with the same hash.  Double hashing (h1 + i*h2) derives
 * all k probes from one 64-bit hash, so a lookup hashes the key once.
 *
 * Encoding (doc/FORMAT.md, "Sorted table"): nbytes of bit array (bit j is
 * bit j%8 of byte j/8), then one byte k.  A filter whose k byte is outside
 * 1..30 (written by a future format) matches everything, which is always a
 * safe answer for a filter.
 */
#include "bloom.h"

#define BLOOM_MAX_PROBES 30
#define BLOOM_LN2 0.69314718055994530942

/*
 * Natural logarithm of x > 0, without libm (the engine links nothing but
 * zstd and xxhash): x = m * 2^e with m in [1, 2), ln m by the atanh series.
 */
static double bloom_ln(double x)
{
	int e = 0;
	while (x >= 2.0) {
		x /= 2.0;
		e++;
	}
	while (x < 1.0) {
		x *= 2.0;
		e--;
	}
	double y = (x - 1.0) / (x + 1.0), y2 = y * y, term = y, sum = 0.0;
	for (int i = 1; i < 60; i += 2) {
		sum += term / i;
		term *= y2;
	}
	return 2.0 * sum + e * BLOOM_LN2;
}

static uint32_t bloom_bits_per_key(double fp)
{
	if (!(fp > 0.0) || fp >= 1.0)
		fp = 0.01;
	double bpk = -bloom_ln(fp) / (BLOOM_LN2 * BLOOM_LN2);
	if (bpk > 100)
		bpk = 100;
	uint32_t n = (uint32_t)bpk;
	if ((double)n < bpk)
		n++; /* ceil */
	return n ? n : 1;
}

int bloom_build(const uint64_t *hashes, size_t n, double fp, buf *out)
{
	uint32_t bpk = bloom_bits_per_key(fp);
	int k = (int)(bpk * BLOOM_LN2 + 0.5);
	if (k < 1)
		k = 1;
	if (k > BLOOM_MAX_PROBES)
		k = BLOOM_MAX_PROBES;

	/* At least 64 bits: a tiny filter would have a high false-positive rate. */
	uint64_t nbits = (uint64_t)n * bpk;
	if (nbits < 64)
		nbits = 64;
	size_t nbytes = (size_t)((nbits + 7) / 8);
	nbits = (uint64_t)nbytes * 8;

	int r = buf_reserve(out, nbytes + 1);
	if (r)
		return r;
	uint8_t *bits = out->p + out->n;
	memset(bits, 0, nbytes);
	for (size_t i = 0; i < n; i++) {
		uint64_t h1 = hashes[i] & 0xffffffffu, h2 = hashes[i] >> 32;
		for (int j = 0; j < k; j++) {
			uint64_t bit = (h1 + (uint64_t)j * h2) % nbits;
			bits[bit / 8] |= (uint8_t)(1u << (bit % 8));
		}
	}
	bits[nbytes] = (uint8_t)k;
	out->n += nbytes + 1;
	return 0;
}

int bloom_may_contain(slice filter, uint64_t hash)
{
	if (filter.n < 2)
		return 1;
	int k = filter.p[filter.n - 1];
	if (k < 1 || k > BLOOM_MAX_PROBES)
		return 1;
	uint64_t nbits = (uint64_t)(filter.n - 1) * 8;
	uint64_t h1 = hash & 0xffffffffu, h2 = hash >> 32;
	for (int j = 0; j < k; j++) {
		uint64_t bit = (h1 + (uint64_t)j * h2) % nbits;
		if (!(filter.p[bit / 8] & (1u << (bit % 8))))
			return 0;
	}
	return 1;
}
