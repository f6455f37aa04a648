/*
 * bloom.h - per-table bloom filter over user keys (versions stripped).
 *
 * Encoding: the bit array, then one byte k (number of probes).  Probes use
 * double hashing of the 64-bit XXH3 of the user key (h1 = low 32 bits,
 * h2 = high 32 bits; probe i tests bit (h1 + i*h2) mod nbits).
 * bits per key = ceil(-ln(fp) / ln(2)^2), k = round(bits_per_key * ln 2).
 *
 * Thread safety: a filter under construction belongs to one thread; a built
 * filter is read-only and may be probed from any thread.
 */
#ifndef SETT_BLOOM_H
#define SETT_BLOOM_H

#include "coding.h"

/* Builds a filter for n key hashes (sett_hash of each user key) into out. */
int bloom_build(const uint64_t *hashes, size_t n, double fp, buf *out);
/* 1 if the key with this hash may be in the filter, 0 if surely not. */
int bloom_may_contain(slice filter, uint64_t hash);

#endif
