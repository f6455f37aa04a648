/*
 * table.h - sorted table files (NNNNNN.sst): builder and reader.
 *
 * A table holds (internal key, value struct) pairs in ikey_cmp order:
 * data blocks of prefix-compressed entries with restart points, each block
 * optionally zstd-compressed and always followed by an XXH3 checksum; then
 * a bloom filter block, an index block (one entry per data block: its last
 * key, offset and size) and a properties block (smallest and largest key,
 * max version, entry count), and a fixed-size footer with the offsets of
 * those blocks, a format version and a magic number (doc/FORMAT.md).
 *
 * Tables are immutable and reference counted.  A table marked obsolete
 * (table_mark_obsolete) deletes its file when the last reference goes.
 *
 * Thread safety: a builder belongs to one thread.  An open table is shared
 * by every thread (read-only but for its atomic reference count and the
 * atomic bitmap of verified blocks); each iterator belongs to one thread.
 */
#ifndef SETT_TABLE_H
#define SETT_TABLE_H

#include "cache.h"
#include "cipher.h"
#include "coding.h"
#include "iter.h"

/*
 * With cipher.key set the table is encrypted (doc/FORMAT.md, "Encrypted
 * table"): every block is a sealed record whose nonce comes from the
 * table's salt (in the footer, with the key id) and the block's offset.
 */
typedef struct table_options {
	size_t block_size;   /* target uncompressed block size */
	int compression;     /* SETT_COMPRESS_* */
	int zstd_level;
	double bloom_fp;
	sett_cipher cipher;  /* key NULL: plaintext */
} table_options;

typedef struct table_builder table_builder;

/* Creates path (must not exist) and starts a table. */
int table_builder_new(const char *path, const table_options *o, table_builder **bp);
/* Adds an entry; ikeys must be strictly increasing in ikey_cmp order. */
int table_builder_add(table_builder *b, slice ikey, slice vstruct);
/* Bytes the file would have if finished now (approximately). */
uint64_t table_builder_size(const table_builder *b);
uint64_t table_builder_count(const table_builder *b);
/* Writes bloom, index, properties and footer, fsyncs and closes. */
int table_builder_finish(table_builder *b);
/* Stops and deletes the partial file. */
void table_builder_abandon(table_builder *b);

typedef struct table table;

/*
 * Opens and validates a table (footer, properties and index checksums and
 * structure; a bloom block that fails its checksum is left unused and
 * reported by table_verify).  `c` may be NULL (no caching).  On
 * corruption, `why` gets the file name and offset.
 */
int table_open(const char *path, uint64_t id, cache *c, table **tp, char *why, size_t whylen);
/*
 * As table_open; an encrypted table is read with the key `keys` finds for
 * the id its footer names (none, or a failed key check: SETT_EKEY).  The
 * cache holds decrypted blocks.  keys NULL: as table_open.
 */
int table_open_enc(const char *path, uint64_t id, cache *c, const sett_keys *keys, table **tp,
		   char *why, size_t whylen);
/*
 * A table named by the MANIFEST whose footer, index or properties cannot
 * be read (table_open failed with SETT_ECORRUPT; `cause` is its why): it
 * holds no known key, every table_get and every iterator positioning on it
 * fails with SETT_ECORRUPT, table_verify too.  Its key range is unknown:
 * smallest and largest span every key.  It never deletes its file.
 */
int table_open_damaged(const char *path, uint64_t id, const char *cause, table **tp);
int table_is_damaged(const table *t);
/* Called with the why of every SETT_ECORRUPT a read of t meets (or NULL: none). */
void table_set_reporter(table *t, void (*fn)(void *, const char *), void *arg);
void table_ref(table *t);
void table_unref(table *t);
void table_mark_obsolete(table *t);

uint64_t table_id(const table *t);
uint64_t table_file_size(const table *t);
uint64_t table_entry_count(const table *t);
uint64_t table_max_version(const table *t);
slice table_smallest(const table *t); /* internal keys */
slice table_largest(const table *t);

/* Bloom check on a user key hash (sett_hash(ukey)). */
int table_may_contain(table *t, uint64_t ukey_hash);

/*
 * Finds the newest version <= read_version of ukey.  Returns 1 and sets
 * *version and copies the value struct into vs (cleared first), 0 if not
 * present, <0 on error (SETT_ECORRUPT names file and offset in why).
 */
int table_get(table *t, slice ukey, uint64_t read_version, uint64_t *version, buf *vs,
	      char *why, size_t whylen);

/* Iterator over the table (holds a reference). */
sit *table_iter_new(table *t);

/*
 * A forward-only iterator (first, next) that skips damage instead of
 * stopping: for each damaged block, lost(arg, after, last, excl, why) gets
 * the internal keys it covered, from after `after` (empty: the table's
 * start) to `last` (inclusive, or exclusive with excl; empty: the end), and
 * `why` (file and offset).  Used by repair and verify.
 */
typedef void (*table_lost_fn)(void *arg, slice after, slice last, int excl, const char *why);
sit *table_salvage_iter_new(table *t, table_lost_fn lost, void *arg);

/*
 * For repair: opens a table whose footer, index or properties are damaged,
 * by finding its data blocks through their checksums (a raw block starts
 * with a zero byte, a compressed one with the zstd magic; its end is where
 * a type byte and checksum match what comes before).  Only blocks whose
 * entries decode and follow the blocks before are taken; the salvage
 * iterator reports the damaged stretches between and after them.  Only
 * table_salvage_iter_new, table_max_version and table_unref may be used on
 * the result.
 */
int table_open_salvage(const char *path, uint64_t id, table **tp, char *why, size_t whylen);
/*
 * As table_open_salvage, for a table that may be encrypted: its footer
 * (key id and salt) must be intact; blocks are then found by walking their
 * sealed records from offset 0 (a damaged one is skipped by looking for
 * the next offset where a record opens).
 */
int table_open_salvage_enc(const char *path, uint64_t id, const sett_keys *keys, table **tp,
			   char *why, size_t whylen);

/*
 * Reads every block of the file with pread (never the cache or the
 * mapping) and checks it: the data blocks (checksum, decoding, key order,
 * restart points, each key against the properties, the bloom filter and
 * the index), then the bloom, index and properties blocks and the footer
 * again (each must equal what table_open read).  A damaged part is passed
 * to cb->fault with its file range, the internal keys it may hold, from lo
 * to hi inclusive (both empty: unknown, every key), and `why` (file and
 * offset); the walk goes on with the next block unless fault returns
 * non-zero, which ends it with that value.  cb->read (may be NULL) is
 * called after each block is read with its size (for rate limits); its
 * non-zero return ends the walk too.  With drop_cache the system's cached
 * pages of each block are dropped before it is read, so that clean pages
 * come from the disk.  0, SETT_ECORRUPT (a fault was reported) or an error.
 */
typedef struct table_scrub_cb {
	int (*fault)(void *arg, uint64_t off, uint64_t len, slice lo, slice hi, const char *why);
	int (*read)(void *arg, uint64_t n);
	void *arg;
	int drop_cache;
} table_scrub_cb;
int table_scrub(table *t, const table_scrub_cb *cb);

/* table_scrub up to the first fault: 0 or SETT_ECORRUPT with why. */
int table_verify(table *t, char *why, size_t whylen);

#endif
