/*
 * entry.h - the log entry (WAL and value log) and the LSM value encodings.
 *
 * Log entry (doc/FORMAT.md, "Log entry"):
 *   u8 meta | u8 user_meta | uvarint klen | uvarint vlen | uvarint expires_at
 *   | key (internal key, klen bytes) | value (vlen bytes)
 *   | u64 LE XXH3-64 of everything before it.
 *
 * LSM value ("value struct"), as stored in memtables and tables:
 *   u8 meta | u8 user_meta | uvarint expires_at | data
 * where data is the value itself, or a 12-byte value pointer when meta has
 * META_VALUE_POINTER.
 */
#ifndef SETT_ENTRY_H
#define SETT_ENTRY_H

#include "coding.h"

enum {
	META_DELETE = 1,        /* tombstone */
	META_VALUE_POINTER = 2, /* data is a vptr into the value log */
	META_TXN = 64,          /* part of a multi-entry batch ... */
	META_FIN_TXN = 128      /* ... and the batch's last entry */
};

/* Meta bits that are stored in the LSM (the txn bits are log-only). */
#define META_LSM_MASK (META_DELETE | META_VALUE_POINTER)

typedef struct entry {
	slice key;  /* internal key */
	slice value;
	uint8_t meta;
	uint8_t user_meta;
	uint64_t expires_at; /* unix seconds, 0 = never */
} entry;

/* Largest possible header: 2 + 3 varints. */
#define ENTRY_HEADER_MAX (2 + 3 * VARINT_MAX)
#define ENTRY_CHECKSUM 8

size_t entry_encoded_len(const entry *e);
/* Encodes e at out (entry_encoded_len(e) bytes); returns the length. */
size_t entry_encode(uint8_t *out, const entry *e);
/* Appends the encoding of e to b. */
int entry_append(buf *b, const entry *e);

/*
 * Decodes one entry from [p, p+n).  On success returns the encoded length
 * and fills e (slices point into p).  Returns 0 if the bytes do not hold a
 * complete entry (truncated), SETT_ECORRUPT if the checksum or a field is
 * bad.
 */
long entry_decode(const uint8_t *p, size_t n, entry *e);

/* Value pointer: where a value lives in the value log. */
typedef struct vptr {
	uint32_t fid;
	uint32_t len;    /* whole encoded entry, header to checksum */
	uint32_t offset; /* of the entry in file fid */
} vptr;

#define VPTR_SIZE 12
void vptr_encode(uint8_t *out, const vptr *v);
int vptr_decode(const uint8_t *p, size_t n, vptr *v);

/* LSM value struct. */
typedef struct vstruct {
	uint8_t meta;
	uint8_t user_meta;
	uint64_t expires_at;
	slice data;
} vstruct;

size_t vstruct_encoded_len(const vstruct *v);
size_t vstruct_encode(uint8_t *out, const vstruct *v);
int vstruct_append(buf *b, const vstruct *v);
/* 0 or SETT_ECORRUPT. */
int vstruct_decode(const uint8_t *p, size_t n, vstruct *v);

#endif
