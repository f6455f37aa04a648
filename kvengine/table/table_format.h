/*
 * table_format.h - constants and helpers shared by the table builder and
 * reader (private to them).  The layout is in doc/FORMAT.md, "Sorted table
 * (NNNNNN.sst)"; this file is its one code-side statement.
 *
 * Thread safety: constants and pure functions.
 */
#ifndef SETT_TABLE_FORMAT_H
#define SETT_TABLE_FORMAT_H

#include "cipher.h"
#include "coding.h"

#define TABLE_MAGIC "SETTSST1"
#define TABLE_FORMAT_VERSION 1u

/* Every block on disk: payload | u8 type | u64 LE XXH3(payload | type). */
#define TABLE_BLOCK_TRAILER 9
enum { TABLE_BLOCK_RAW = 0, TABLE_BLOCK_ZSTD = 1 };

/*
 * An encrypted table (doc/FORMAT.md, "Encrypted table"): every block is a
 * sealed record (cipher.h) of payload | u8 type, whose nonce is the
 * table's salt XORed with the block's offset, so a block is
 * TABLE_ENC_TRAILER bytes longer than its payload.  The footer adds the
 * key head (key id | salt | key check) and has its own magic:
 * u64 x 6 | u32 version | key head | u64 XXH3 of the 88 bytes before | magic.
 */
#define TABLE_ENC_MAGIC "SETTSSTE"
#define TABLE_ENC_TRAILER (CIPHER_REC_OVERHEAD + 1)
#define TABLE_ENC_FOOTER_HASH (TABLE_FOOTER_FIELDS + CIPHER_HEAD_SIZE)
#define TABLE_ENC_FOOTER_SIZE (TABLE_ENC_FOOTER_HASH + 8 + 8)

/* A restart point (an entry with shared == 0) every this many entries. */
#define TABLE_RESTART_INTERVAL 16

/*
 * Footer: u64 bloom_off, bloom_size, index_off, index_size, props_off,
 * props_size | u32 version | u64 XXH3 of the 52 bytes before it | magic.
 */
#define TABLE_FOOTER_FIELDS 52
#define TABLE_FOOTER_SIZE (TABLE_FOOTER_FIELDS + 8 + 8)

/*
 * Bound on a decompressed block: one entry of the largest key and value
 * struct plus the prefix lengths and restart array, rounded up generously.
 */
#define TABLE_MAX_BLOCK ((uint64_t)(1u << 30) + (1u << 24))

/* Checksum of a block's payload and type byte. */
static inline uint64_t table_block_checksum(const uint8_t *payload, size_t n)
{
	/* payload and type are contiguous on disk and in the builder's buffer */
	return sett_hash(payload, n + 1);
}

#endif
