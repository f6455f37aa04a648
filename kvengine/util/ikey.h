/*
 * ikey.h - internal keys.
 *
 * An internal key is the user key followed by 8 bytes: the big-endian
 * encoding of (UINT64_MAX - version).  Internal keys order by user key
 * (bytewise, shorter first) and then by version, newest first.  All of the
 * LSM (memtable, tables, merge iterators) orders by ikey_cmp().
 *
 * Thread safety: pure functions.
 */
#ifndef SETT_IKEY_H
#define SETT_IKEY_H

#include "coding.h"

#define IKEY_SUFFIX 8

/* Writes ukey+version to out (ulen + 8 bytes). */
static inline void ikey_make(uint8_t *out, const void *ukey, size_t ulen, uint64_t version)
{
	if (ulen)
		memcpy(out, ukey, ulen);
	put_be64(out + ulen, UINT64_MAX - version);
}

static inline slice ikey_user(slice ik)
{
	return slice_make(ik.p, ik.n - IKEY_SUFFIX);
}

static inline uint64_t ikey_version(slice ik)
{
	return UINT64_MAX - get_be64(ik.p + ik.n - IKEY_SUFFIX);
}

static inline int ikey_cmp(slice a, slice b)
{
	int c = slice_cmp(ikey_user(a), ikey_user(b));
	if (c)
		return c;
	return memcmp(a.p + a.n - IKEY_SUFFIX, b.p + b.n - IKEY_SUFFIX, IKEY_SUFFIX);
}

#endif
