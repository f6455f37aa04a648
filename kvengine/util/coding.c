/* coding.c - the out-of-line part of coding.h: the record checksum
 * (long inputs through hash_avx2.c where the CPU has AVX2). */
#include "coding.h"

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

/* Inputs at least this long take the AVX2 code where the CPU has it;
 * XXH3 hashes shorter ones with scalar code either way. */
#define HASH_AVX2_MIN 1024

static int avx2(size_t n)
{
#ifdef SETT_HASH_AVX2
	if (n >= HASH_AVX2_MIN) {
		__builtin_cpu_init(); /* cheap after the first call */
		return __builtin_cpu_supports("avx2");
	}
#endif
	(void)n;
	return 0;
}

uint64_t sett_hash(const void *p, size_t n)
{
#ifdef SETT_HASH_AVX2
	if (avx2(n))
		return sett_hash_avx2(p, n);
#endif
	return XXH3_64bits(p, n);
}

uint64_t sett_hash2(const void *a, size_t na, const void *b, size_t nb)
{
#ifdef SETT_HASH_AVX2
	if (avx2(na + nb))
		return sett_hash2_avx2(a, na, b, nb);
#endif
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, a, na);
	XXH3_64bits_update(&st, b, nb);
	return XXH3_64bits_digest(&st);
}
