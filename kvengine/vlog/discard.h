/*
 * discard.h - per value-log file discard statistics (the DISCARD file).
 *
 * For every value-log file, the number of bytes of log entries that no
 * reader will ever need again: compaction adds the length of every value
 * pointer it drops (an overwritten, deleted or expired version).  Value-log
 * GC compares discard bytes with the file size to pick files worth
 * rewriting, and removes a file's statistics when the file goes.
 *
 * The statistics are advisory.  They are persisted as a whole file
 * (doc/FORMAT.md, "DISCARD") periodically and at close, so after a crash
 * they may lag behind; GC therefore also measures liveness directly by
 * scanning files, and a DISCARD file that fails its checksum is ignored by
 * the engine (discard_open reports it; the caller starts empty).
 *
 * Thread safety: every function may be called from any thread (an internal
 * mutex protects the table; discard_persist serialises its file writes).
 */
#ifndef SETT_DISCARD_H
#define SETT_DISCARD_H

#include <stddef.h>
#include <stdint.h>

typedef struct discard discard;

/*
 * Loads dir/DISCARD (an absent file is an empty table).  On a damaged file
 * returns SETT_ECORRUPT with the file name and offset in `why` and no
 * object.  read_only: discard_persist never writes.
 */
int discard_open(const char *dir, int read_only, discard **dp, char *why, size_t whylen);
/* Starts an empty table (used when the file was damaged). */
int discard_new(const char *dir, int read_only, discard **dp);
/* Persists (if changed) and frees. */
int discard_close(discard *d);

void discard_add(discard *d, uint32_t fid, uint64_t bytes);
uint64_t discard_get(discard *d, uint32_t fid);
/* Replaces fid's figure (GC measured the file). */
void discard_set(discard *d, uint32_t fid, uint64_t bytes);
/* Forgets fid (its file was deleted). */
void discard_remove(discard *d, uint32_t fid);
/* Forgets every file not in fids[0..n) (ascending): files deleted meanwhile. */
void discard_retain(discard *d, const uint32_t *fids, size_t n);
/* Sum over all files. */
uint64_t discard_total(discard *d);

/*
 * Discards collected while a flush or compaction runs, added to the table
 * only once its result is installed (a failed one counts nothing).
 */
typedef struct discard_acc {
	struct {
		uint32_t fid;
		uint64_t bytes;
	} *rows;
	size_t n, cap;
} discard_acc;

void discard_acc_add(discard_acc *a, uint32_t fid, uint64_t bytes);
void discard_acc_apply(discard *d, const discard_acc *a);
void discard_acc_free(discard_acc *a);

/* Writes DISCARD atomically (tmp file, fsync, rename, fsync dir) if changed. */
int discard_persist(discard *d);

#endif
