/*
 * wal.h - the write-ahead log of one memtable (NNNNN.mem).
 *
 * File: a 24-byte header (magic "SETTWAL\0", u32 LE format version 1, u32 LE
 * file id, u64 LE XXH3-64 of the first 16 bytes; doc/FORMAT.md, "WAL")
 * followed by log entries (entry.h).  Entries
 * of a multi-entry batch carry META_TXN, the last one META_TXN|META_FIN_TXN;
 * replay applies a batch only when its FIN entry is seen.
 *
 * Replay: entries are read to the last valid one.  A bad or incomplete
 * entry is a torn tail when log_torn() says so and no valid entry starts
 * after it: the file is truncated there (unless read-only) and replay
 * succeeds.  Any other bad entry (a complete entry that fails its checksum,
 * or one followed by a valid entry) is corruption: replay fails with
 * SETT_ECORRUPT and reports the file name and offset through `why`.
 *
 * Thread safety: one writer (the db's writer thread); replay happens before
 * the db is shared.  wal_size may be called from any thread.
 */
#ifndef SETT_WAL_H
#define SETT_WAL_H

#include "entry.h"

#include "cipher.h"

typedef struct wal wal;

/*
 * The torn-tail rule shared by the WAL and the MANIFEST (doc/FORMAT.md,
 * "Torn tails").  A crash can leave a log file that ends inside its last
 * append: the append's bytes are missing past some point, or read as zeros
 * where the file's size reached the disk and its data did not (from where
 * the append started, or from a 512-byte sector boundary on).  A record
 * that fails to decode is a torn tail only when that explains it:
 * log_torn(p, n, off, end) says whether a record starting at `off` and
 * claiming to end at `end` (where its length field says, or the end of its
 * damaged header) in the n bytes at p ends past what was written: `end` is
 * past the end of the file, or every byte from `off` on is zero, or every
 * byte from a sector boundary before `end` on is zero.  A complete record
 * that fails its checksum with written bytes up to its end is corruption.
 */
#define LOG_SECTOR 512
int log_torn(const uint8_t *p, size_t n, size_t off, uint64_t end);


/*
 * Creates a new, empty WAL file at path (fails if it exists).  Nothing is
 * fsynced yet: the first wal_sync makes the file and its directory entry
 * durable.  (A crash before that leaves a file that replays as empty.)
 */
int wal_create(const char *path, uint32_t fid, wal **wp);
/*
 * As wal_create; with cipher_on(c) the file is encrypted with c's key
 * (doc/FORMAT.md, "Encrypted WAL"): each append is one sealed record
 * under a fresh per-file salt and a per-file counter.
 */
int wal_create_enc(const char *path, uint32_t fid, const sett_cipher *c, wal **wp);

/*
 * Opens an existing WAL and replays it: `apply` is called for every entry of
 * every complete batch, in order.  A non-zero return from apply stops replay
 * and is returned.  If writable, the WAL is left open for appends at its
 * valid end.  On corruption, `why` (if not NULL, `whylen` bytes) receives
 * "FILE: corrupt entry at offset N".  A bad header is SETT_EFORMAT (magic
 * or version) or SETT_ECORRUPT (checksum); a file shorter than the
 * header (a crash inside wal_create) replays as empty and, if writable, gets
 * a fresh header.
 */
typedef int (*wal_apply_fn)(void *arg, const entry *e);
int wal_open_replay(const char *path, int writable, wal_apply_fn apply, void *arg,
		    wal **wp, char *why, size_t whylen);

/*
 * As wal_open_replay, and `check` sees every entry of a complete batch
 * before any of them is applied.  It returns 0 (go on), an error (stops
 * replay and is returned), or WAL_REPLAY_TORN: the batch and everything
 * after it are treated as a torn tail (not applied, cut off if writable).
 */
#define WAL_REPLAY_TORN 1
int wal_open_replay_checked(const char *path, int writable, wal_apply_fn check,
			    wal_apply_fn apply, void *arg, wal **wp, char *why, size_t whylen);
/*
 * As wal_open_replay_checked, for a store whose data keys `keys` finds and
 * whose new files c seals (either NULL: unencrypted).  An encrypted WAL is
 * read with the key its header names: none found is SETT_EKEY; a record
 * that fails its tag follows the torn-tail rule as a whole (torn, or
 * SETT_ECORRUPT naming its offset).  An encrypted WAL with records is not
 * appended to after replay (wal_append: -EBADF), as its last nonces may
 * have sealed a write that did not survive; one left without a header gets
 * a fresh one, under c when c is on.
 */
int wal_open_replay_enc(const char *path, int writable, const sett_cipher *c,
			const sett_keys *keys,
			wal_apply_fn check, wal_apply_fn apply, void *arg, wal **wp, char *why,
			size_t whylen);

/*
 * Appends encoded entries (a byte string of whole entries) at the end.  If
 * the write fails, the file is cut back to its previous end so that no part
 * of the failed write can be replayed; if even that fails, every later
 * append fails too (wal_error).
 */
int wal_append(wal *w, const void *p, size_t n);
/* fsync the file (and, the first time, its directory). */
int wal_sync(wal *w);
/*
 * Non-zero once the file's state on disk is uncertain (a failed append
 * could not be cut back, or an fsync failed); every later append and sync
 * fails with it.  Any other failed append left the file as it was.
 */
int wal_error(const wal *w);
uint64_t wal_size(const wal *w);
uint32_t wal_fid(const wal *w);
const char *wal_path(const wal *w);
/* Closes; with `remove`, also deletes the file. */
int wal_close(wal *w, int remove);

#endif
