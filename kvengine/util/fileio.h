/*
 * fileio.h - the one file I/O layer of sett.
 *
 * Every read, write, fsync, rename and unlink of the engine goes through
 * here, so that tests can inject I/O errors and simulate a power cut.
 *
 * Power-cut model: the layer remembers, per path, how many bytes of the file
 * were made durable by the last sfile_sync().  sio_fault_powercut() truncates
 * every file it knows to that length (dropping every byte not yet fsynced)
 * and makes all later I/O fail with -EIO until sio_fault_reset().  Files are
 * assumed to be written append-only or rewritten whole (which is how sett
 * writes them).
 *
 * Reads may also go through a read-only shared mapping (sfile_map), which
 * saves the copy and the system call of a pread.  Faults are injected on
 * writes only, so reads through a mapping see what preads would.
 *
 * Thread safety: an sfile may be used by several threads for preads at once;
 * writes to one sfile must be serialised by the caller.  sfile_map and
 * sfile_unmap must not race with each other or with sfile_close; reading
 * through a mapping is safe from any thread while it exists.
 */
#ifndef SETT_FILEIO_H
#define SETT_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sfile sfile;

/* flags are open(2) flags (O_RDONLY, O_RDWR|O_CREAT|O_EXCL, ...); mode 0644. */
int sfile_open(const char *path, int flags, sfile **fp);
int sfile_close(sfile *f);
/* Reads up to n bytes at off; returns bytes read (short only at EOF) or <0. */
ssize_t sfile_pread(sfile *f, void *buf, size_t n, uint64_t off);
/* Reads exactly n bytes at off, or returns SETT_ECORRUPT on a short file. */
int sfile_pread_full(sfile *f, void *buf, size_t n, uint64_t off);
/* The same for na bytes at off into a and the nb bytes after them into b
 * (one system call: a record's head to one place, its body to another). */
int sfile_pread2_full(sfile *f, void *a, size_t na, void *b, size_t nb, uint64_t off);
/* Writes all n bytes at off; 0 or <0. */
int sfile_pwrite(sfile *f, const void *buf, size_t n, uint64_t off);
/* Writes the cnt pieces of iov one after the other from off, all of them
 * (one operation to the fault and power-cut models, as sfile_pwrite). */
struct iovec;
int sfile_pwritev(sfile *f, const struct iovec *iov, int cnt, uint64_t off);
int sfile_sync(sfile *f);
int sfile_truncate(sfile *f, uint64_t size);
/* Current size; <0 on error. */
int64_t sfile_size(sfile *f);
const char *sfile_path(const sfile *f);
/* Hint that the pages of [off, off+n) will not be read again soon. */
void sfile_drop_cache(sfile *f, uint64_t off, uint64_t n);
/*
 * Starts the system's write-back of [off, off+n) without waiting for it
 * (sync_file_range SYNC_FILE_RANGE_WRITE), so that a later sfile_sync finds
 * less to write.  A hint only: it makes nothing durable, and the power-cut
 * model counts only what sfile_sync made durable.
 */
void sfile_start_writeback(sfile *f, uint64_t off, uint64_t n);
/*
 * Maps [0, len) of f read-only and sets *p to it; the mapping lives until
 * sfile_unmap or sfile_close.  Touching a page that cannot be read (a
 * media error, or past the end of a file cut short since) raises SIGBUS:
 * read the mapping only under map_guarded (mapguard.h).  A file has
 * at most one mapping (-EBUSY otherwise); len must be > 0 and not past the
 * file's current end (-EINVAL).  Callers keep pread as the fallback when
 * this fails.
 */
int sfile_map(sfile *f, uint64_t len, const uint8_t **p);
void sfile_unmap(sfile *f);

int sio_unlink(const char *path);
int sio_rename(const char *from, const char *to);
int sio_sync_dir(const char *dir);
int sio_mkdir(const char *dir);

/* ---- fault injection (tests only) ---- */

/* The nth write/sync/truncate/rename from now (1 = next) fails with err. */
void sio_fault_fail_nth(long nth, int err);
/* Every later write fails with err once `bytes` more bytes were written. */
void sio_fault_fail_after_bytes(uint64_t bytes, int err);
/* Every later write that would extend a file past max_size bytes fails with
 * err (a per-file limit, like RLIMIT_FSIZE); 0 turns it off. */
void sio_fault_file_size_limit(uint64_t max_size, int err);
/*
 * The nth write/sync/truncate/rename from now blocks until sio_fault_resume,
 * which lets it go on and fail with err (0: it runs).  sio_fault_wait_paused
 * waits until it is blocked.  This freezes a thread inside an operation so
 * that a test can act in that window.
 */
void sio_fault_pause_nth(long nth);
void sio_fault_wait_paused(void);
void sio_fault_resume(int err);
/* Drop every unsynced byte of every known file; later I/O fails (-EIO). */
void sio_fault_powercut(void);
/*
 * Makes a later sio_fault_powercut atomic with respect to operations that
 * other threads have in flight: each completes before the cut (an fsync
 * that succeeded stays durable) or fails with -EIO after it.  Costs a
 * shared lock per operation from then on; for a process that is cut while
 * it serves requests (the daemon's test switch).
 */
void sio_fault_powercut_arm(void);
/* Clear all faults and forget what is known about files. */
void sio_fault_reset(void);
/* Bytes written through the layer since process start (write amplification). */
uint64_t sio_bytes_written(void);
/* Bytes read through the layer with sfile_pread since process start (not mapped reads). */
uint64_t sio_bytes_read(void);

/*
 * ---- recording (tests only) ----
 *
 * While recording, every successful mutating operation is appended to a
 * process-wide log, in the order the operations took effect (the recorder
 * holds one lock across the system call and the append, so concurrent
 * threads are serialised while recording is on).  A crash explorer replays
 * chosen subsets of the log onto a copy of the store taken when recording
 * started (tests/explore.c).  When recording is off the cost is one
 * relaxed load per operation.
 *
 * Start recording only while no file is open for writing (e.g. with the
 * store closed): a write on a file opened earlier cannot be attributed.
 */
enum sio_rec_kind {
	SIO_REC_OPEN,     /* handle, path, created, trunc: a writable open */
	SIO_REC_WRITE,    /* handle, off, len, data */
	SIO_REC_SYNC,     /* handle: fdatasync */
	SIO_REC_TRUNCATE, /* handle, off = new size */
	SIO_REC_RENAME,   /* path -> path2 */
	SIO_REC_UNLINK,   /* path */
	SIO_REC_MKDIR,    /* path: a directory that did not exist */
	SIO_REC_SYNC_DIR, /* path */
	SIO_REC_MARK      /* off = the caller's number (sio_record_mark) */
};

typedef struct sio_rec {
	int kind;
	int created;     /* OPEN: the file did not exist */
	int trunc;       /* OPEN: O_TRUNC */
	uint64_t handle; /* OPEN, WRITE, SYNC, TRUNCATE: one number per open */
	char *path, *path2;
	uint64_t off, len;
	uint8_t *data;
} sio_rec;

/* Starts a new log (dropping an old one not yet taken). */
void sio_record_start(void);
/* Appends a MARK: lets a test place its own events (acknowledgements) in the log. */
void sio_record_mark(uint64_t id);
/* Stops recording and hands over the log; free it with sio_record_free. */
size_t sio_record_stop(sio_rec **recs);
void sio_record_free(sio_rec *recs, size_t n);

#endif
