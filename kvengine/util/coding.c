/* coding.c - the out-of-line part of coding.h: the record checksum. */
#include "coding.h"

#include <xxhash.h>

uint64_t sett_hash(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}
