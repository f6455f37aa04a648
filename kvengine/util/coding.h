/*
 * coding.h - the one set of encode/decode helpers of sett.
 *
 * Every on-disk integer is written through these: fixed-width little-endian
 * (le16/le32/le64), big-endian where byte order must follow numeric order
 * (be64, used in internal keys), and LEB128 unsigned varints.  Decoders take
 * an explicit end pointer and never read past it.  The checksum of every
 * on-disk record is XXH3-64 (sett_hash).
 *
 * Thread safety: pure functions; a buf belongs to one thread.
 */
#ifndef SETT_CODING_H
#define SETT_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

/* A borrowed byte range. */
typedef struct slice {
	const uint8_t *p;
	size_t n;
} slice;

static inline slice slice_make(const void *p, size_t n)
{
	slice s = { (const uint8_t *)p, n };
	return s;
}

/* Three-way compare of two byte strings (memcmp order, shorter first). */
static inline int slice_cmp(slice a, slice b)
{
	size_t n = a.n < b.n ? a.n : b.n;
	int c = n ? memcmp(a.p, b.p, n) : 0;
	if (c)
		return c;
	return a.n < b.n ? -1 : a.n > b.n;
}

/* A growable owned byte buffer. */
typedef struct buf {
	uint8_t *p;
	size_t n, cap;
} buf;

static inline int buf_reserve(buf *b, size_t extra)
{
	if (b->n + extra <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->n + extra)
		cap *= 2;
	uint8_t *p = (uint8_t *)realloc(b->p, cap);
	if (!p)
		return -12; /* -ENOMEM */
	b->p = p;
	b->cap = cap;
	return 0;
}

static inline int buf_append(buf *b, const void *p, size_t n)
{
	int r = buf_reserve(b, n);
	if (r)
		return r;
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

static inline void buf_free(buf *b)
{
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

/* ---- fixed width ---- */

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* ---- varints (LEB128, at most 10 bytes for a u64) ---- */

#define VARINT_MAX 10

static inline size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static inline size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/*
 * Decode a varint from [p, end).  Returns the number of bytes consumed, or 0
 * if the input is truncated or the varint is longer than 10 bytes.
 */
static inline size_t varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (size_t i = 0; i < VARINT_MAX && p + i < end; i++) {
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			if (i == 9 && p[i] > 1)
				return 0; /* overflows 64 bits */
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

/* ---- checksum ---- */

uint64_t sett_hash(const void *p, size_t n);
/* sett_hash of a's na bytes followed by b's nb bytes (as if contiguous). */
uint64_t sett_hash2(const void *a, size_t na, const void *b, size_t nb);

/* The same hash compiled for AVX2 (hash_avx2.c), for CPUs that have it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SETT_HASH_AVX2 1
uint64_t sett_hash_avx2(const void *p, size_t n);
uint64_t sett_hash2_avx2(const void *a, size_t na, const void *b, size_t nb);
#endif

#endif
