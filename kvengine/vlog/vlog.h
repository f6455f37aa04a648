/*
 * vlog.h - the value log: append-only NNNNNN.vlog files of log entries.
 *
 * Each file starts with a 24-byte header (magic "SETTVLOG", u32 LE version,
 * u32 LE fid, u64 LE XXH3-64 of the first 16 bytes; doc/FORMAT.md, "Value
 * log") and holds log entries (entry.h).  Values of at least
 * value_threshold bytes are appended here by the writer thread; the LSM
 * stores the vptr {fid, len, offset}.  A file is rotated when it would pass
 * value_log_file_size or value_log_max_entries.
 *
 * On open every file is found; the last (writable) one is scanned.  A bad
 * stretch at its end that looks like an interrupted write (an entry cut
 * short by the end of the file, garbage, or an all-zero sector, and no valid
 * entry after it) is a torn tail and is cut off.  Anything else is damage:
 * the file is kept whole, reads of the bad entry fail with SETT_ECORRUPT
 * (file and offset in `why`), vlog_iterate reports it, and the next append
 * starts a new file instead of writing after it.  Otherwise a new file is
 * started only when the last one is full.  With no file at all,
 * 000001.vlog is created (unless read-only).  A file is created durably
 * (header and directory entry fsynced) and fsynced when it is rotated away
 * from, so only the head ever has unsynced bytes.
 *
 * Reads take a reference on the file so that GC can delete it only when no
 * reader uses it (vlog_file_remove defers the unlink to the last unref).
 *
 * Thread safety: vlog_append from one writer thread (append, sync and
 * rotate are serialised by an internal lock, so vlog_sync and vlog_rotate may
 * come from other threads); vlog_read, vlog_iterate, vlog_list and
 * vlog_file_remove from any thread.  vlog_close only when nothing else runs.
 */
#ifndef SETT_VLOG_H
#define SETT_VLOG_H

#include "cipher.h"
#include "entry.h"

typedef struct vlog vlog;

/*
 * Encryption (doc/FORMAT.md, "Encrypted value log"): with cipher.key set,
 * every file the log creates is encrypted with it, each entry a sealed
 * record whose nonce comes from the file's salt and the record's offset,
 * so a value is still read alone by its pointer (whose len is then the
 * record's length).  Files naming a key are read with the one keys finds
 * (none: SETT_EKEY at open).  An encrypted head found at open is never
 * appended to, nor a file whose write failed: the next append starts a
 * new file, so no offset of a file is sealed twice.
 */
typedef struct vlog_options {
	uint64_t file_size;    /* rotate at this size */
	uint32_t max_entries;  /* ... or this many entries */
	int read_only;
	int verify_checksum;
	sett_cipher cipher;    /* for new files; key NULL: plaintext */
	sett_keys keys;        /* for files that name a key */
} vlog_options;

int vlog_open(const char *dir, const vlog_options *o, vlog **vp, char *why, size_t whylen);
int vlog_close(vlog *v);

/*
 * Appends n entries (keys are internal keys) and fills out[i] with their
 * pointers.  Rotates files as needed.  Does not fsync (except the file
 * being rotated away from).  -EROFS when read-only, SETT_ETOOBIG for a key
 * or value beyond the limits.  A failed write is cut off the file again
 * (if that fails too, see vlog_error).
 */
int vlog_append(vlog *v, const entry *e, int n, vptr *out);
/* fsync the files written since the last sync.  Safe from any thread. */
int vlog_sync(vlog *v);
/*
 * fsync the head as vlog_sync does, but without holding up appends
 * meanwhile (they may or may not be covered), so that a vlog_sync after it
 * has little left to write.  A failure breaks the log as vlog_sync's does.
 * Safe from any thread.
 */
int vlog_presync(vlog *v);
/*
 * Non-zero once the log's state on disk is uncertain: a failed write could
 * not be cut off again, or an fsync failed.  Every later append and sync
 * then fails with it.  Any other failed append left the files as they were.
 */
int vlog_error(vlog *v);

/*
 * Reads the entry at p; checks it (checksum when verify is on, and always
 * that its user key equals expect_ukey when expect_ukey.p is non-NULL) and
 * appends its value to out.  SETT_ECORRUPT (with file name and offset in
 * `why`) on a bad entry or a pointer outside the file; -ENOENT if file fid
 * does not exist (e.g. removed by GC).  Without verify_checksum the entry's
 * structure and lengths are still checked.
 */
int vlog_read(vlog *v, const vptr *p, slice expect_ukey, buf *out, char *why,
	      size_t whylen);

/* The fid currently written to. */
uint32_t vlog_head_fid(vlog *v);
/* Lists the fids of all files in ascending order (malloc'ed array). */
int vlog_list(vlog *v, uint32_t **fids, int *n);
/* Size in bytes of file fid (0 if unknown). */
uint64_t vlog_file_size(vlog *v, uint32_t fid);

/*
 * Iterates every entry of file fid, in order: fn(arg, entry, vptr).
 * A non-zero return from fn stops and is returned.  A corrupt entry
 * yields SETT_ECORRUPT.
 */
typedef int (*vlog_iter_fn)(void *arg, const entry *e, const vptr *p);
int vlog_iterate(vlog *v, uint32_t fid, vlog_iter_fn fn, void *arg);

/*
 * Checks every entry of file fid as vlog_iterate does (reading the file
 * with pread), and its header, going on past damage: each bad record is
 * passed to cb->fault with its offset, the bytes up to where a valid
 * record starts again, the internal key it holds when its header and key
 * can be read (key.p NULL otherwise; in an encrypted file never) and `why`
 * (file and offset).  A non-zero return from fault ends the walk with that
 * value; so does one from cb->read (may be NULL), called after each read
 * of n bytes.  With drop_cache the system's cached pages are dropped
 * before they are read.  The file's entries up to its size at the call are
 * checked.  0, SETT_ECORRUPT (a fault was reported), -ENOENT (no such
 * file), or an error.
 */
typedef struct vlog_scrub_cb {
	int (*fault)(void *arg, uint64_t off, uint64_t len, slice key, const char *why);
	int (*read)(void *arg, uint64_t n);
	void *arg;
	int drop_cache;
} vlog_scrub_cb;
int vlog_scrub(vlog *v, uint32_t fid, const vlog_scrub_cb *cb);

/*
 * Closes the head file and starts a new one (so GC can rewrite the old
 * head).  Serialised with vlog_append by the vlog's internal lock.
 */
int vlog_rotate(vlog *v);

/*
 * Removes file fid (not the head: -EBUSY; unknown: -ENOENT); the unlink
 * waits for readers to finish.  The file is gone from vlog_list at once.
 */
int vlog_file_remove(vlog *v, uint32_t fid);

#endif
