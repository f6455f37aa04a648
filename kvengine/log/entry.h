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
 *
 * Thread safety: pure encode/decode functions on caller-owned buffers.
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
/* Writes e's header and key to out (room for header + key); their length.
 * The record goes on with the value and u64 LE sett_hash2(out, that length,
 * value): entry_encode's bytes, for a writer that does not copy the value. */
size_t entry_encode_head(uint8_t *out, const entry *e);
/* Appends the encoding of e to b. */
int entry_append(buf *b, const entry *e);

/*
 * Decodes one entry from [p, p+n).  On success returns the encoded length
 * and fills e (slices point into p).  Returns 0 if the bytes do not hold a
 * complete entry (truncated), SETT_ECORRUPT if the checksum or a field is
 * bad.
 */
long entry_decode(const uint8_t *p, size_t n, entry *e);

/*
 * Decodes only the header of an entry (no checksum): fills e->meta,
 * e->user_meta, e->expires_at, the key and value lengths (e->key.n,
 * e->value.n; the slices' pointers are left NULL), *hlen (header length) and
 * *total (whole encoded length).  Returns 1 on success, 0 if the header is
 * truncated, SETT_ECORRUPT if a field is out of range.  Lets a reader learn
 * how many bytes an entry spans before it reads them.
 */
int entry_decode_header(const uint8_t *p, size_t n, entry *e, size_t *hlen, size_t *total);

/*
 * The search for a valid record after a bad one (WAL, sealed records,
 * value log) verifies every candidate whose header fits in what is left;
 * a tail whose every few bytes claim a record reaching to its end (crafted,
 * or random bytes by chance) would cost the square of its length.  The
 * candidates' lengths are counted against log_search_budget(span of the
 * search): once it is spent the search answers that a valid record may
 * follow, which makes the bad one corruption: the file is kept whole and
 * reported, never cut.  An interrupted append leaves a short file or zeros
 * after the bad record, which have no candidates, far below the budget.
 */
uint64_t log_search_budget(uint64_t span);

/*
 * The value length of an entry that spans `total` encoded bytes with a
 * klen-byte key and expires_at (what a value pointer leaves implicit):
 * 0 and *vlen, or SETT_ECORRUPT when no value length gives that total.
 */
int entry_value_len(size_t total, size_t klen, uint64_t expires_at, size_t *vlen);

/* Smallest possible encoded entry: 2 bytes, 3 one-byte varints, an 8-byte key, checksum. */
#define ENTRY_MIN_LEN (2 + 3 + 8 + ENTRY_CHECKSUM)

/* Value pointer: where a value lives in the value log. */
typedef struct vptr {
	uint32_t fid;
	uint32_t len;    /* whole encoded entry, header to checksum */
	uint32_t offset; /* of the entry in file fid */
} vptr;

#define VPTR_SIZE 12
void vptr_encode(uint8_t *out, const vptr *v);
/* 0, or SETT_ECORRUPT if n < VPTR_SIZE. */
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
/*
 * 0 or SETT_ECORRUPT (truncated, unknown meta bits, or a pointer struct whose
 * data is not exactly VPTR_SIZE bytes).  v->data points into p.
 */
int vstruct_decode(const uint8_t *p, size_t n, vstruct *v);

/*
 * The 24-byte header of a log file (WAL and value log): an 8-byte magic,
 * u32 LE format version (LOG_FORMAT_VERSION), u32 LE file id, u64 LE XXH3-64
 * of the first 16 bytes.
 */
#define LOG_HEADER_SIZE 24
#define LOG_FORMAT_VERSION 1
void log_header_encode(uint8_t *out, const char magic[8], uint32_t fid);
/*
 * 0 and *fid on success; SETT_EFORMAT for another magic or an unknown
 * version, SETT_ECORRUPT for a short header or a bad checksum.
 */
int log_header_decode(const uint8_t *p, size_t n, const char magic[8], uint32_t *fid);

#endif
