/*
 * sett.h - the whole public API of sett, an embedded key-value engine.
 *
 * sett follows the WiscKey / Badger design: keys and small values live in an
 * LSM tree (a memtable backed by a write-ahead log, then sorted tables on
 * levels L0..L6); values of at least `value_threshold` bytes are appended to
 * a value log and the LSM stores a value pointer to them.  Every key carries
 * a version (the commit timestamp of its batch), so reads and iterators can
 * run at a fixed read version (a snapshot).
 *
 * Conventions (libuv / LMDB style):
 *  - every handle is opaque; every function returns 0 on success or a
 *    negative error code (a negated errno value, or one of the SETT_E*
 *    codes below); sett_strerror() explains any code;
 *  - keys and values are byte strings of explicit length (sett_val);
 *  - the library never prints and keeps no global state.
 *
 * Thread safety: a sett_db may be used from any number of threads at once.
 * A sett_batch and a sett_iter belong to one thread at a time.
 */
#ifndef SETT_H
#define SETT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SETT_VERSION_STRING "0.1.0"

/* Error codes beyond the negated errno values. */
enum {
	SETT_ENOTFOUND = -10001, /* key not present (or deleted, or expired) */
	SETT_ECORRUPT = -10002,  /* a checksum or a structure check failed */
	SETT_ELOCKED = -10003,   /* the store is opened by another process */
	SETT_ETOOBIG = -10004,   /* batch, key or value exceeds a limit */
	SETT_EFORMAT = -10005,   /* unknown magic or format version */
	SETT_ECLOSED = -10006,   /* the db is closing or was closed */
	SETT_ENOREWRITE = -10007, /* value-log GC found nothing to rewrite */
	SETT_ECONFLICT = -10020,  /* a transaction read a key another one changed since */
	SETT_ETXNTOOBIG = -10021, /* a transaction's writes would not fit one commit */
	SETT_ESUBBEHIND = -10022, /* a subscriber fell behind and was cut off */
	SETT_ENOHISTORY = -10023, /* the versions asked for are no longer kept (no pin) */
	SETT_EKEY = -10024        /* wrong or missing master key of an encrypted store */
};

/* Limits. */
#define SETT_MAX_KEY_SIZE 65000u
#define SETT_MAX_VALUE_SIZE (1u << 30)

/* Bits of the per-entry user meta byte are the caller's own. */

typedef struct sett_val {
	size_t size;
	const void *data;
} sett_val;

typedef struct sett_db sett_db;
typedef struct sett_batch sett_batch;
typedef struct sett_iter sett_iter;

enum sett_compression { SETT_COMPRESS_NONE = 0, SETT_COMPRESS_ZSTD = 1 };

/*
 * Options.  Initialise with sett_options_init(), then change fields.
 * Defaults are given in brackets.
 */
typedef struct sett_options {
	int create_if_missing;      /* [1] create the directory and store (a store is
				     * created only where no store file is) */
	int read_only;              /* [0] open without writing anything */
	int managed;                /* [0] managed mode: the caller assigns read and
				     * commit versions (sett_txn_begin_at/commit_at)
				     * and the discard version; see "transactions" */
	int sync_writes;            /* [0] fsync WAL and value log before acking a write */
	size_t value_threshold;     /* [1024] values of this size or more go to the value log */
	size_t mem_table_size;      /* [64 MiB] a memtable is flushed to L0 at this size */
	int num_memtables;          /* [5] memtables (active + immutable) before writers wait */
	int num_level_zero_tables;  /* [5] L0 tables that trigger an L0 compaction */
	int num_level_zero_tables_stall; /* [15] L0 tables at which writers wait */
	size_t base_table_size;     /* [2 MiB] target table size at the base level */
	size_t base_level_size;     /* [10 MiB] target size of the base level */
	int level_size_multiplier;  /* [10] size ratio between adjacent levels */
	int num_compactors;         /* [2] compaction threads (0: no compaction) */
	size_t block_size;          /* [4096] target uncompressed table block size */
	int compression;            /* [SETT_COMPRESS_NONE] table block compression */
	int zstd_level;             /* [1] zstd level when compression is zstd */
	double bloom_false_positive;/* [0.01] bloom filter target false-positive rate */
	size_t block_cache_size;    /* [64 MiB] byte bound of the block cache (0: none) */
	size_t value_log_file_size; /* [256 MiB] a value log file is rotated at this size
				     * (smaller files let GC return space more exactly) */
	uint32_t value_log_max_entries; /* [1000000] ... or at this many entries */
	double gc_discard_ratio;    /* [0.5] automatic value-log GC threshold (0: no auto GC) */
	int gc_interval_ms;         /* [10000] how often the GC thread looks for work */
	double gc_garbage_share;    /* [0.15] the GC thread also rewrites the file with the
				     * most garbage while the value log's garbage exceeds
				     * this share of its size (0: only gc_discard_ratio) */
	int64_t disk_reserve;       /* [-1] bytes of the store's disk kept for deletes, GC
				     * and compaction (-1: sett_default_reserve of the disk);
				     * the engine reports it (sett_disk_space), its user
				     * refuses growth below it */
	int64_t reclaim_below;      /* [-1] while the disk has less free than this, the
				     * GC thread gives back what deletions hold by
				     * itself (as sett_reclaim, without rewriting the
				     * last level; rate-limited); -1: twice the reserve,
				     * 0: never */
	int verify_value_checksum;  /* [1] verify the checksum of every value-log read */
	size_t memory_budget;       /* [0] if non-zero, bounds memtables + caches together */
	char *error_buf;            /* [NULL] if set, a failed sett_open describes the */
	size_t error_buf_size;      /*   failure here (file name and offset) */
	int open_damaged;           /* [0] with read_only: a table named by the MANIFEST
				     * whose footer, index or properties cannot be read
				     * opens as damaged; every read that may need its keys
				     * fails with SETT_ECORRUPT (sett_stats.damaged_tables) */
	/* [NULL] called with "FILE: what, at offset N" for each SETT_ECORRUPT a
	 * read meets in a table or the value log (from any thread) */
	void (*corruption_fn)(void *arg, const char *why);
	void *corruption_arg;
	/* [NULL] long operations (sett_verify, sett_repair) report how far
	 * they are: `what` names the step ("tables", "value log", ...), `done`
	 * of `total` items (files, or keys with total 0: not known ahead) */
	void (*progress_fn)(void *arg, const char *what, uint64_t done, uint64_t total);
	void *progress_arg;
	/*
	 * Encryption at rest (doc/ENGINE.md).  A master key (32 bytes, e.g.
	 * from sett_key_file_read) or a passphrase (through PBKDF2) wraps the
	 * data keys in KEYREGISTRY, which encrypt every WAL, table, value-log
	 * file and the MANIFEST.  Given when a store is created, it makes the
	 * store encrypted; it is then needed at every open (SETT_EKEY without
	 * it, with the wrong one, or with a key for an unencrypted store).
	 * sett_open does not keep the caller's buffer after it returns.
	 */
	const uint8_t *encryption_key;     /* [NULL] 32-byte master key */
	const char *encryption_passphrase; /* [NULL] or a passphrase */
	int key_rotation_days;      /* [30] a new data key for new files after this */
} sett_options;

void sett_options_init(sett_options *opt);

/* Open (and with create_if_missing, create) the store in directory `path`. */
int sett_open(const char *path, const sett_options *opt, sett_db **dbp);
/* Flush what is buffered, stop background threads, release the store. */
int sett_close(sett_db *db);
/* Make every write acknowledged so far durable (fsync value log and WAL). */
int sett_sync(sett_db *db);

const char *sett_strerror(int err);
/* A master key from a key file: 32 raw bytes, or 64 hex digits (an ending
 * newline allowed).  0, -EINVAL for any other content, or -errno. */
int sett_key_file_read(const char *path, uint8_t key[32]);
/* The process holding the store in `path` open (the flock on its LOCK file),
 * or 0 when none does or it cannot be told. */
long sett_lock_holder(const char *path);

/* ---- writes ---------------------------------------------------------- */

/*
 * A batch collects sets and deletes and commits them atomically: after a
 * crash either all of them or none are visible.  All entries of a batch get
 * the same version (commit timestamp).
 */
int sett_batch_new(sett_batch **bp);
void sett_batch_free(sett_batch *b);
void sett_batch_clear(sett_batch *b);
/* ttl_seconds 0: never expires.  user_meta: one byte kept with the entry. */
int sett_batch_set(sett_batch *b, sett_val key, sett_val value);
int sett_batch_set_ex(sett_batch *b, sett_val key, sett_val value,
		      uint64_t expires_at, uint8_t user_meta);
/*
 * sett_batch_set without a copy of the value: its bytes are read where
 * they are when the batch is written, so they must stay unchanged until
 * sett_write returns (or the batch is cleared or freed).
 */
int sett_batch_set_ref(sett_batch *b, sett_val key, sett_val value);
int sett_batch_delete(sett_batch *b, sett_val key);
size_t sett_batch_count(const sett_batch *b);
size_t sett_batch_bytes(const sett_batch *b);
/*
 * Commit.  `sync`: 1 forces this commit durable before returning even when
 * sync_writes is off.  On success *version (if not NULL) is the batch's
 * version.  The batch may be reused after sett_batch_clear().
 */
int sett_write(sett_db *db, sett_batch *b, int sync, uint64_t *version);

/* Convenience single-key writes. */
int sett_put(sett_db *db, sett_val key, sett_val value);
int sett_del(sett_db *db, sett_val key);

/* ---- reads ----------------------------------------------------------- */

/*
 * Point read of the newest visible version (read_version 0 = latest).
 * On success *value is a malloc'ed buffer the caller frees (NULL for an
 * empty value) and *size its length.  SETT_ENOTFOUND when absent.
 */
int sett_get(sett_db *db, sett_val key, uint64_t read_version, void **value,
	     size_t *size);
/* Like sett_get but also returns the entry's version and user meta. */
int sett_get_ex(sett_db *db, sett_val key, uint64_t read_version, void **value,
		size_t *size, uint64_t *version, uint8_t *user_meta);

/*
 * The newest committed version: a snapshot to pass as read_version.
 * Compaction keeps the versions that open iterators can see; a point read
 * at an older version than every open iterator's may find a newer value
 * or none.  Hold an iterator to keep a snapshot readable.
 */
uint64_t sett_current_version(sett_db *db);

/* ---- iterators ------------------------------------------------------- */

typedef struct sett_iter_options {
	uint64_t read_version; /* [0 = latest at creation] */
	int reverse;           /* [0] iterate from large to small keys */
	int key_only;          /* [0] do not read values (sett_iter_value loads lazily) */
	sett_val prefix;       /* [empty] only keys with this prefix */
	int all_versions;      /* [0] every version <= read_version of each key, newest
				* first, deletes and expired entries included
				* (sett_iter_deleted); forward only (-EINVAL with reverse) */
} sett_iter_options;

void sett_iter_options_init(sett_iter_options *o);
int sett_iter_new(sett_db *db, const sett_iter_options *o, sett_iter **itp);
void sett_iter_free(sett_iter *it);
/* Position at the first key (last key when reverse). */
int sett_iter_rewind(sett_iter *it);
/* Forward: first key >= key.  Reverse: last key <= key. */
int sett_iter_seek(sett_iter *it, sett_val key);
int sett_iter_valid(const sett_iter *it);
int sett_iter_next(sett_iter *it);
/* Key of the current entry; valid until the iterator moves. */
sett_val sett_iter_key(const sett_iter *it);
/* Value of the current entry; valid until the iterator moves. */
int sett_iter_value(sett_iter *it, sett_val *value);
/* Length of the current entry's value, without reading it from the value log. */
int sett_iter_value_size(sett_iter *it, size_t *size);
uint64_t sett_iter_version(const sett_iter *it);
uint8_t sett_iter_user_meta(const sett_iter *it);
/* First error the iterator met (0 if none): iteration stops on an error. */
int sett_iter_error(const sett_iter *it);
/* With all_versions: 1 if the current entry is a delete or has expired. */
int sett_iter_deleted(const sett_iter *it);

/* ---- transactions ------------------------------------------------------ */

/*
 * A transaction reads a snapshot (its read version) and commits its writes
 * atomically at a new version, with serializable snapshot isolation as in
 * Badger: every key a read-write transaction reads (point reads, and each
 * key an iterator of the transaction yields) is remembered as a 64-bit
 * fingerprint; the commit fails with SETT_ECONFLICT when any of them was
 * written by a commit (of a transaction or a plain batch) newer than the
 * read version.  Lost updates and write skew are therefore impossible.
 * Ranges are not remembered: a key that an iterator did not see because
 * it was inserted after the read version (a phantom) is no conflict.  A
 * transaction that read nothing never conflicts.  On SETT_ECONFLICT
 * nothing was written: discard the transaction and retry it.
 *
 * Reads see the transaction's own writes (sets and deletes), in point reads
 * and iterators; its pending entries report the read version as their
 * version.  Writes are buffered in memory; a transaction whose writes could
 * not be committed as one batch (more than half a memtable, as for
 * sett_write) refuses the set or delete that would exceed it with
 * SETT_ETXNTOOBIG and stays usable.
 *
 * Commit versions are given in commit order by the writer thread and the
 * batch goes through the normal write path (group commit, value log,
 * WAL, memtable); the commit returns once it is visible to new readers.
 *
 * Conflict tracking keeps, per key written, the newest commit version, and
 * drops it once no open transaction (and no iterator) has a read version
 * below it: memory is bounded by what open transactions can conflict with.
 *
 * Thread safety: a transaction (and its iterators) is used by one thread
 * at a time; any number of transactions run concurrently.  Free a
 * transaction's iterators before committing or discarding it, and discard
 * every transaction before sett_close.
 *
 * Managed mode (sett_options.managed): the caller assigns versions.
 * sett_txn_begin and sett_txn_commit (and sett_write, sett_put, sett_del,
 * sequences) fail with -EINVAL; use sett_txn_begin_at and
 * sett_txn_commit_at.  A read at version v sees exactly the commits at
 * versions <= v that have returned.  Compaction keeps every version a read
 * at or above the discard version (sett_set_discard_version) can see, and
 * may drop older ones; in normal mode that point is the oldest read version
 * of an open transaction or iterator.  Conflicts are checked in managed
 * mode too, and their records are kept down to the discard version.
 */
typedef struct sett_txn sett_txn;

/* Begins a transaction at the newest committed version.  read_write 0: a
 * read-only transaction (sets and deletes fail with -EPERM). */
int sett_txn_begin(sett_db *db, int read_write, sett_txn **txnp);
/* Managed mode: begins a transaction reading at read_version. */
int sett_txn_begin_at(sett_db *db, int read_write, uint64_t read_version, sett_txn **txnp);
uint64_t sett_txn_read_version(const sett_txn *txn);

/* Point reads, as sett_get / sett_get_ex at the read version. */
int sett_txn_get(sett_txn *txn, sett_val key, void **value, size_t *size);
int sett_txn_get_ex(sett_txn *txn, sett_val key, void **value, size_t *size,
		    uint64_t *version, uint8_t *user_meta);
int sett_txn_set(sett_txn *txn, sett_val key, sett_val value);
int sett_txn_set_ex(sett_txn *txn, sett_val key, sett_val value, uint64_t expires_at,
		    uint8_t user_meta);
int sett_txn_delete(sett_txn *txn, sett_val key);
/* An iterator at the transaction's read version over the store merged with
 * the transaction's writes so far (o->read_version is ignored). */
int sett_txn_iter_new(sett_txn *txn, const sett_iter_options *o, sett_iter **itp);
/*
 * Commits (0, with *version the commit version if not NULL; a transaction
 * without writes commits nothing and returns its read version), or fails
 * with SETT_ECONFLICT or a write error; either way the transaction is over
 * and only sett_txn_discard remains.  `sync` as for sett_write.  -EBUSY
 * while an iterator of the transaction is open.
 */
int sett_txn_commit(sett_txn *txn, int sync, uint64_t *version);
/* Managed mode: commits at commit_version (> the read version). */
int sett_txn_commit_at(sett_txn *txn, uint64_t commit_version, int sync);
/* Ends the transaction (rolling back what was not committed) and frees it. */
void sett_txn_discard(sett_txn *txn);

/* Managed mode: versions below v may be dropped by compaction once newer
 * ones exist (never lowered).  -EINVAL in normal mode. */
int sett_set_discard_version(sett_db *db, uint64_t v);
/* Committed-write records the conflict check keeps now (for tests and stats). */
uint64_t sett_txn_tracked_keys(sett_db *db);

/* ---- subscriptions ----------------------------------------------------- */

/*
 * A subscription receives every entry committed after it was made whose key
 * starts with one of its prefixes (no prefix: every key), in commit order,
 * with its version and user meta; deletes are entries with `deleted` set.
 * Entries are queued by the write path once they are written to the WAL and
 * memtable, just before the commit becomes visible to readers, so a
 * subscriber never sees an entry that failed to commit.  The queue is
 * bounded (max_entries and max_bytes): a subscriber that lets it fill up is
 * cut off, and after the entries queued before that its sett_sub_next fails
 * with SETT_ESUBBEHIND; writers never wait for a subscriber.  Close every
 * subscription before sett_close.  A subscription is read by one thread at
 * a time.
 */
typedef struct sett_sub sett_sub;

typedef struct sett_sub_entry {
	sett_val key;
	sett_val value;        /* empty for a delete */
	uint64_t version;
	uint64_t expires_at;
	uint8_t user_meta;
	uint8_t deleted;
} sett_sub_entry;

typedef struct sett_sub_options {
	size_t max_entries;    /* [65536] queued entries at which the subscriber is cut off */
	size_t max_bytes;      /* [64 MiB] queued key + value bytes, likewise */
} sett_sub_options;

void sett_sub_options_init(sett_sub_options *o);
int sett_subscribe(sett_db *db, const sett_val *prefixes, size_t nprefixes,
		   const sett_sub_options *o, sett_sub **subp);
/*
 * Waits up to timeout_ms (-1: without limit, 0: not at all) for entries and
 * returns how many it hands over (>= 1), 0 when none came in time, or an
 * error (SETT_ESUBBEHIND once cut off and drained).  *entries points to an
 * array owned by the subscription, valid until the next sett_sub_next or
 * sett_sub_close.
 */
int sett_sub_next(sett_sub *sub, const sett_sub_entry **entries, int timeout_ms);
void sett_sub_close(sett_sub *sub);

/* ---- sequences --------------------------------------------------------- */

/*
 * A sequence hands out increasing numbers (from 0) stored under `key`, as
 * Badger's Sequence: it leases `bandwidth` numbers at a time by committing
 * the upper bound of the lease to the key (doc/FORMAT.md), so numbers never
 * repeat, even across crashes; a crash loses at most the rest of a lease.
 * sett_sequence_release gives the unused rest back (writes the next number)
 * and frees the sequence.  Thread safe.  -EINVAL in managed mode.
 */
typedef struct sett_sequence sett_sequence;
int sett_sequence_get(sett_db *db, sett_val key, uint64_t bandwidth, sett_sequence **seqp);
int sett_sequence_next(sett_sequence *seq, uint64_t *out);
int sett_sequence_release(sett_sequence *seq);

/* ---- pinned versions -------------------------------------------------- */

/*
 * A pin is a named, persistent snapshot: until sett_unpin, every read at
 * its version (sett_get's read_version, sett_iter_options.read_version)
 * sees what it saw when the pin was made, across compaction, value-log GC
 * and restarts.  Compaction keeps, of each key, the newest version at or
 * below each pin (tombstones included), and value-log GC moves every value
 * a pin sees (under its own version) before it removes a file; releasing
 * the pin lets both take that space back.  Pins are recorded in the MANIFEST (a store with pins
 * cannot be opened by sett 0.1.0, which predates them).
 *
 * sett_pin: version 0 pins the current version; an explicit version must
 * be committed and no older than the oldest version an open iterator or
 * another pin holds (-EINVAL otherwise: compaction may have dropped what
 * it saw).  *pinned (if not NULL) is the version pinned.  -EEXIST if the
 * name is taken; names are 1..SETT_MAX_PIN_NAME bytes.  sett_repair keeps
 * the pins the old MANIFEST's intact records hold, and what they read.
 */
#define SETT_MAX_PIN_NAME 255
typedef struct sett_pin_info {
	char name[SETT_MAX_PIN_NAME + 1];
	uint64_t version;
} sett_pin_info;
int sett_pin(sett_db *db, const char *name, uint64_t version, uint64_t *pinned);
/* SETT_ENOTFOUND when no pin has that name. */
int sett_unpin(sett_db *db, const char *name);
/* Fills up to max pins sorted by name; returns how many there are. */
int sett_pins(sett_db *db, sett_pin_info *out, int max);
/*
 * Bytes held only by pins: key and value bytes (value-log bytes for a
 * separated value) of every version some pin sees and a current read does
 * not.  Exact for what the LSM holds now; it reads every version of every
 * key (the cost of a scan).
 */
int sett_pin_space(sett_db *db, uint64_t *bytes);
/*
 * The same for one pin: the bytes that pin `name` alone holds (of the
 * versions it sees, those no other pin's version and no current read
 * sees), what releasing only it would give back.  Two pins of one
 * version hold nothing alone.  SETT_ENOTFOUND when no pin has that name.
 */
int sett_pin_space_of(sett_db *db, const char *name, uint64_t *bytes);

/* ---- streams, backup and load ----------------------------------------- */

/* One entry of a stream. */
typedef struct sett_kv {
	sett_val key;
	sett_val value;       /* empty for a delete */
	uint64_t version;     /* the entry's version in the store it came from */
	uint64_t expires_at;
	uint8_t user_meta;
	uint8_t deleted;      /* a tombstone */
} sett_kv;

/*
 * Called with a batch of entries; returns 0 to go on or an error to stop
 * the stream (sett_stream returns it).  Calls never overlap; within one
 * range they come in key order (one key's versions oldest first), and
 * `range` numbers the range (ranges come in no particular order).
 */
typedef int (*sett_stream_fn)(void *arg, int range, const sett_kv *kv, size_t n);

typedef struct sett_stream_options {
	uint64_t read_version; /* [0 = current] */
	uint64_t since;        /* [0] only versions newer than this */
	int all_versions;      /* [0] every version (since, read_version], deletes
				* included; else only the newest of each key */
	int with_deletes;      /* [0] without all_versions: a key whose newest version
				* is a delete (or expired) comes as a delete */
	int threads;           /* [4] */
	sett_val prefix;       /* [empty] only keys with this prefix */
	size_t batch_bytes;    /* [1 MiB] about this much per call */
	uint64_t *skipped;     /* [NULL] if set: old versions skipped because value-log
				* GC had taken their value (all_versions only) */
} sett_stream_options;

void sett_stream_options_init(sett_stream_options *o);
/*
 * A parallel scan of the store at one version, cut into key ranges at table
 * boundaries, `threads` ranges at a time (Badger's Stream).  The version is
 * held (like an open iterator's) for the whole scan; *read_version (if not
 * NULL) is the version read.
 */
int sett_stream(sett_db *db, const sett_stream_options *o, sett_stream_fn fn, void *arg,
		uint64_t *read_version);

/* Writes n bytes (all of them) or returns a negative error. */
typedef int (*sett_write_fn)(void *arg, const void *p, size_t n);
/* Reads up to n bytes: returns how many (0 at the end) or a negative error. */
typedef long (*sett_read_fn)(void *arg, void *p, size_t n);

typedef struct sett_backup_options {
	uint64_t since;      /* [0: a full backup] only what changed after this version */
	int all_versions;    /* [0] every version, not only the newest of each key */
	/*
	 * [NULL] if set, the version the backup is complete to is pinned under
	 * this name when it is done (an older pin of that name is released):
	 * the store then keeps the deletes the next incremental must carry.
	 */
	const char *pin;
	int threads;         /* [4] */
	/*
	 * [0: the current version] read at this older version instead; a pin
	 * at exactly this version must keep what it saw (-EINVAL otherwise).
	 */
	uint64_t read_version;
	/* [NULL] a key for which filter(filter_arg, key) returns 0 is left out */
	int (*filter)(void *arg, sett_val key);
	void *filter_arg;
	/*
	 * [NULL] the caller's description of the stream, written as the meta
	 * frame before the records (at most SETT_BACKUP_MAX_META bytes); its
	 * reader gets it back (sett_load_options.check_meta).
	 */
	const void *meta;
	size_t meta_size;
} sett_backup_options;
#define SETT_BACKUP_MAX_META 65536u

typedef struct sett_backup_result {
	uint64_t version;    /* complete to: the `since` of the next incremental */
	uint64_t records;    /* entries written (deletes included) */
	uint64_t deletes;
	uint64_t bytes;      /* of the stream */
	uint64_t skipped;    /* see sett_stream_options.skipped */
} sett_backup_result;

void sett_backup_options_init(sett_backup_options *o);
/*
 * Writes a backup stream (doc/FORMAT.md, "Backup stream") of every entry
 * changed after `since` at one version, taken while writers go on.  An
 * incremental (since > 0) carries deletes too; it needs a pin at or below
 * `since` (the previous backup's, see `pin`), without which compaction may
 * have dropped a delete: it then fails with SETT_ENOHISTORY.
 */
int sett_backup(sett_db *db, const sett_backup_options *o, sett_write_fn write, void *arg,
		sett_backup_result *res);

typedef struct sett_load_result {
	uint64_t since, version; /* from the stream's header */
	uint64_t records;        /* in the stream */
	uint64_t applied;        /* entries applied to the store */
	uint64_t offset;         /* SETT_ECORRUPT: where in the stream */
	char why[256];           /* SETT_ECORRUPT: what is wrong */
} sett_load_result;

/* Progress of sett_load: bytes read so far, then entries applied of total. */
typedef void (*sett_progress_fn)(void *arg, int phase, uint64_t done, uint64_t total);

/*
 * Applies a backup stream to db.  The whole stream is read and verified
 * first (spooled to an unlinked temporary file in the store's directory):
 * a damaged or truncated stream is SETT_ECORRUPT (res->offset, res->why)
 * and the store is unchanged.  Then it is applied in batches; entries get
 * the store's own versions (each key's versions keep their order).  If
 * applying fails (a full disk), res->applied says how many entries are in;
 * applying the same stream again completes it (a load is idempotent).
 * -EINVAL in managed mode (it commits batches).
 */
int sett_load(sett_db *db, sett_read_fn read, void *arg, sett_progress_fn progress,
	      void *parg, sett_load_result *res);

/*
 * sett_load with hooks for a caller that gives the stream a meaning of its
 * own.  While the stream is verified (nothing applied yet), check_meta is
 * called with the meta frame (meta NULL, n 0 for a stream without one)
 * before any record, and check_record with every record; a non-zero return
 * refuses the stream (sett_load_ex returns it, the store untouched).  Once
 * the whole stream is verified, before_apply is called; a non-zero return
 * stops the load there (nothing of the stream applied), else the records
 * are applied.
 */
typedef struct sett_load_options {
	sett_progress_fn progress;
	int (*check_meta)(void *arg, const void *meta, size_t n, const sett_load_result *res);
	int (*check_record)(void *arg, const sett_kv *kv);
	int (*before_apply)(void *arg, const sett_load_result *res);
	void *arg;           /* of the three hooks */
	void *progress_arg;
} sett_load_options;
int sett_load_ex(sett_db *db, const sett_load_options *o, sett_read_fn read, void *arg,
		 sett_load_result *res);
/*
 * Reads and verifies a whole backup stream without a store (the hooks of
 * `o` but before_apply are called as by sett_load_ex): 0 when it is
 * complete and intact, else as sett_load_ex.
 */
int sett_backup_check(const sett_load_options *o, sett_read_fn read, void *arg,
		      sett_load_result *res);

/* ---- dropping key ranges ----------------------------------------------- */

/*
 * Deletes every key that starts with `prefix` (sett_drop_all: every key)
 * without a tombstone per key: the drop is one MANIFEST record, reads at
 * the current version and later stop seeing those keys at once, whole
 * tables inside the prefix are removed, and compaction drops the rest; the
 * value-log space comes back through GC.  Writes acknowledged before the
 * call are dropped, writes made after it returns are kept; a write racing
 * with it may land on either side.  Older iterators and pins still see the
 * dropped keys (and keep their space) until they go.  -EINVAL in managed
 * mode (the drop commits a batch of its own).
 */
int sett_drop_prefix(sett_db *db, sett_val prefix);
int sett_drop_all(sett_db *db);

/* ---- maintenance and introspection ------------------------------------ */

/*
 * Run value-log GC once over every candidate file whose discard ratio is at
 * least `discard_ratio`.  Returns 0 if it rewrote at least one file,
 * SETT_ENOREWRITE if nothing qualified.
 */
int sett_gc(sett_db *db, double discard_ratio);
/* Flush memtables and compact everything down to the last level, then
 * rewrite each table there once (tombstones and hidden versions go). */
int sett_flatten(sett_db *db);
/* Flush the active memtable to L0 now. */
int sett_flush(sett_db *db);
/*
 * Gives back the space that deletions and overwrites hold, now, rather
 * than when background work gets to it: sett_flatten (tombstones meet the
 * data they hide and the value-log garbage gets counted), then sett_gc
 * at the store's gc_discard_ratio until nothing more qualifies.  Returns 0
 * if GC rewrote or removed at least one value-log file, SETT_ENOREWRITE if
 * there was nothing to reclaim, or an error.
 */
int sett_reclaim(sett_db *db);
/* sett_reclaim that returns SETT_ECLOSED early once *stop is non-zero. */
int sett_reclaim_until(sett_db *db, const int *stop);

typedef struct sett_level_info {
	int tables;
	uint64_t bytes;
	uint64_t target_bytes;
	double score;
} sett_level_info;

#define SETT_MAX_LEVELS 7

typedef struct sett_stats {
	sett_level_info levels[SETT_MAX_LEVELS];
	int memtables;              /* active + immutable */
	uint64_t memtable_bytes;
	int vlog_files;
	uint64_t vlog_bytes;
	uint64_t vlog_discard_bytes;
	uint64_t lsm_bytes;         /* all tables */
	uint64_t wal_bytes;
	uint64_t block_cache_hits;
	uint64_t block_cache_misses;
	uint64_t block_cache_bytes;
	uint64_t last_version;
	uint64_t bytes_written_user;  /* key + value bytes committed */
	uint64_t bytes_written_disk;  /* bytes written to any file */
	uint64_t compactions;
	uint64_t gc_runs;
	uint64_t gc_files_rewritten;
	uint64_t write_stalls;
	uint64_t gc_bytes_measured;   /* value-log bytes GC read to measure liveness */
	uint64_t gc_bytes_rewritten;  /* live value bytes GC copied to the head */
	uint64_t iter_entries;        /* entries (versions, tombstones) iterators examined */
	char gc_activity[96];         /* what value-log GC is doing (or did last) */
	int damaged_tables;         /* opened as damaged (open_damaged) */
	uint64_t write_stall_us;      /* time writers spent waiting in stalls */
	uint64_t gc_bytes_reclaimed;  /* value-log file bytes GC deleted */
	int compactions_running;    /* compactions under way now */
	int compactions_pending;    /* levels at or over their target (score >= 1) */
	uint64_t background_reclaims; /* reclaims the GC thread ran for low disk space */
} sett_stats;

/*
 * Live figures of an open store.  May be called from any thread at any
 * time while the db is open, concurrently with every other call: the
 * counters are read atomically (each one exact, the set not one instant's
 * snapshot), the levels from one version, and only short-held locks are
 * taken (the store's state lock for the memtable and WAL lists, the
 * compactors' and GC's for what they run); it waits for no I/O, no
 * compaction and no GC pass.  Counters count since sett_open.
 */
int sett_get_stats(sett_db *db, sett_stats *st);

/* Per value-log file information, for `sett info`. */
typedef struct sett_vlog_info {
	uint32_t fid;
	uint64_t bytes;
	uint64_t discard_bytes;     /* garbage: entries no reader needs any more */
	uint64_t live_bytes;        /* the rest of the file's entries */
	int gc_picked;              /* the GC thread's rule picks this file now */
} sett_vlog_info;
/* Fills up to `max` entries; returns the number of files (may exceed max). */
int sett_vlog_files(sett_db *db, sett_vlog_info *out, int max);

/*
 * The space of the filesystem that holds the store.  Value-log files are
 * never larger than 1/16 of it (value_log_file_size is lowered at open),
 * so GC can return space in steps a full disk can afford.
 */
typedef struct sett_space {
	uint64_t disk_bytes;        /* size of the filesystem */
	uint64_t free_bytes;        /* free for unprivileged writers (statvfs f_bavail) */
	uint64_t reserve;           /* disk_reserve in effect */
} sett_space;
int sett_disk_space(sett_db *db, sett_space *out);
/* The default reserve: 2 % of the disk, at least 32 MiB, at most 1 GiB, and
 * never more than 1/8 of the disk. */
uint64_t sett_default_reserve(uint64_t disk_bytes);

/*
 * Verify every checksum in the store (tables, WAL, value log).  May run
 * while the store is in use: it checks the tables of one version and the
 * value-log files of the moment it starts (a file GC deletes meanwhile
 * is skipped).
 */
typedef void (*sett_report_fn)(void *arg, const char *msg);
int sett_verify(sett_db *db, sett_report_fn report, void *arg);

/*
 * sett_scrub: what sett_verify checks, on a store that keeps serving, with
 * each fault described by what it hits, and the walk going on past it.
 * Every table (each data block, then its bloom, index and properties
 * blocks and footer, compared with what the open table holds), every
 * value-log file (its header and every record), every WAL of the
 * memtables and the MANIFEST is read from its file with pread, never
 * through the block cache or a mapping; with drop_cache the system's
 * cached clean pages of each range are dropped first, so they come from
 * the disk (pages another reader has mapped stay).  It holds the tables
 * of one version for its duration (tables compacted away meanwhile are
 * deleted only after it), and checks the value-log files of the moment it
 * starts, each up to its size then (a file GC deletes meanwhile is
 * skipped).
 */
enum sett_fault_keys {
	SETT_FAULT_NO_KEYS = 0,  /* the damage holds no key (the MANIFEST) */
	SETT_FAULT_ANY_KEY = 1,  /* which keys it held is not known (every key may be hit) */
	SETT_FAULT_KEY = 2,      /* one key: key_lo (a value-log record) */
	SETT_FAULT_RANGE = 3     /* the keys from key_lo to key_hi, inclusive (a table block) */
};
typedef struct sett_fault {
	const char *file;       /* the store file's path */
	const char *area;       /* "table", "value log", "WAL" or "MANIFEST" */
	uint64_t offset;        /* of the damaged block or record in the file */
	uint64_t length;        /* its bytes (0: not known) */
	const char *msg;        /* "FILE: what, at offset N" (as sett_verify reports it) */
	int keys;               /* enum sett_fault_keys */
	const void *key_lo, *key_hi; /* user keys */
	size_t key_lo_len, key_hi_len;
} sett_fault;
typedef struct sett_scrub_options {
	uint64_t rate;          /* bytes read per second at most (0: no limit) */
	int drop_cache;         /* drop the system's cached pages before reading them */
	const int *stop;        /* if set, non-zero (read atomically) ends the scrub: -ECANCELED */
	void (*fault_fn)(void *arg, const sett_fault *f);
	/* bytes checked so far of the total (the files' sizes at the start) */
	void (*progress_fn)(void *arg, uint64_t done, uint64_t total);
	void *arg;
} sett_scrub_options;
/* 0 clean, SETT_ECORRUPT (faults were reported), -ECANCELED, or an error. */
int sett_scrub(sett_db *db, const sett_scrub_options *o);

/* ---- repair ---------------------------------------------------------- */

/*
 * sett_repair rebuilds a store that does not open or fails sett_verify, the
 * way LevelDB's RepairDB does: from the files themselves, without the
 * MANIFEST.  The store must not be open.  Every table (NNNNNN.sst) is read
 * block by block, skipping blocks that fail their checks; every WAL
 * (NNNNN.mem) is replayed up to its first damaged entry; the newest
 * version of every key is kept, and the newest each pin sees (deleted keys
 * are dropped unless a pin sees an older version), and every value
 * pointer is read back from the value log: one whose entry is damaged or
 * missing is dropped, and the key is reported lost unless another copy of
 * that version (value-log GC leaves one in a newer file) reads back.  The result is written
 * as new tables on the last level and a new MANIFEST naming only them.
 * Then the old tables and WALs are removed, except those that were
 * damaged, which go to quarantine/ in the store with the value-log files
 * that held damaged entries (their good values are copied to the head of
 * the value log first).
 *
 * What cannot come back: keys in damaged table blocks or after a damaged
 * WAL entry, values in damaged value-log entries.  A key in the range of a
 * damaged block that survives in an older table comes back with that
 * older value (reported as SETT_REPAIR_STALE).  A table that a
 * compaction had replaced but that was not yet deleted when the MANIFEST
 * was lost can bring back keys deleted since (the MANIFEST was what said
 * it was dead).  The old MANIFEST's records that pass their checksum give
 * the pins, the prefix drops (sett_drop_prefix) and the version high-water
 * mark, which are kept; a pin or drop in a damaged record is lost (a drop
 * not yet carried out: its keys come back), and without a readable
 * MANIFEST the next version starts above the newest one any table, WAL
 * or value-log file holds.
 *
 * Each thing done or lost is passed to `report` (may be NULL).
 * Returns 0, -ENOENT when the directory holds no store files, or an error.
 */
enum sett_repair_kind {
	SETT_REPAIR_NOTE = 0,       /* what the repair did; nothing lost */
	SETT_REPAIR_LOST_VALUE = 1, /* `key` lost its value: it now reads as absent */
	SETT_REPAIR_LOST_KEYS = 2,  /* the keys from `key` to `key_end` (inclusive; an
				     * empty one: unknown) in a damaged block are gone */
	SETT_REPAIR_STALE = 3       /* `key` was in such a range, and what it holds now
				     * may be older than what the damaged block held */
};
typedef struct sett_repair_event {
	int kind;
	const char *msg;  /* names the store file and offset */
	sett_val key;     /* user keys */
	sett_val key_end;
} sett_repair_event;
typedef void (*sett_repair_fn)(void *arg, const sett_repair_event *ev);
/* Options: the table options (block size, compression) and value log
 * limits of `opt` are used for what is written; NULL: defaults. */
int sett_repair(const char *path, const sett_options *opt, sett_repair_fn report, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* SETT_H */
