/*
 * hash_avx2.c - sett_hash (XXH3-64) compiled for AVX2.
 *
 * The system's xxhash library is built for the baseline x86-64 (SSE2);
 * on long inputs XXH3's AVX2 code runs about three times as fast (16 KiB:
 * ~55 GB/s against ~18 GB/s on one core here), and a checksum over every
 * value read from the value log and every table block is on the read
 * path.  Same functions, same results, other instructions (sett_hash2:
 * the hash of two pieces, streaming); coding.c calls these only where the
 * CPU has AVX2 (tests/test_coding.c compares them with the library's over
 * many lengths and alignments).
 *
 * Thread safety: a pure function.
 */
#include "coding.h"

#ifdef SETT_HASH_AVX2
#pragma GCC target("avx2")
#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t sett_hash_avx2(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

uint64_t sett_hash2_avx2(const void *a, size_t na, const void *b, size_t nb)
{
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, a, na);
	XXH3_64bits_update(&st, b, nb);
	return XXH3_64bits_digest(&st);
}
#else
typedef int sett_no_hash_avx2; /* an empty file is not ISO C */
#endif
