/*
 * fuse_fill.h - the settfs daemon's page-cache filler.
 *
 * A READ smaller than a chunk is served from the whole chunk; the filler
 * pushes the chunk's other pages into the kernel's page cache with
 * fuse_lowlevel_notify_store() so the reads that follow are cache hits.
 * The push runs on one background thread: the kernel may make it wait for
 * a page lock whose READ is still queued for this daemon, which would
 * deadlock a request thread.  Pushes are an optimisation only: a full queue
 * drops them, a stale one (settfs_fill_run) is skipped, errors are ignored.
 *
 * Thread safety: sfs_filler_queue may be called from any thread and never
 * waits for a push; start and stop belong to the thread that runs the
 * session, and stop must come before the session and store are destroyed.
 */
#ifndef SETTFS_FUSE_FILL_H
#define SETTFS_FUSE_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "settfs.h"

struct fuse_session;
typedef struct sfs_filler sfs_filler;

/* Start the filler thread; NULL if it cannot (the daemon then just reads). */
sfs_filler *sfs_filler_start(struct fuse_session *se, settfs *fs);
/*
 * Queue a push of bytes [0, len) of buf, which hold the file from offset
 * off, except [skip_from, skip_to) (the pages the READ's reply covers).
 * `token` is the settfs_fill_token taken before buf was read.  Takes
 * ownership of buf, which was allocated with malloc.
 */
void sfs_filler_queue(sfs_filler *f, uint64_t ino, uint64_t token, uint64_t off,
		      void *buf, size_t len, size_t skip_from, size_t skip_to);
/* Whether a push queued now would be kept (a hint: the queue may fill meanwhile). */
int sfs_filler_has_room(sfs_filler *f);
/*
 * Stop the thread, dropping what is queued, and free the filler; 0 then.
 * A push can wait for a page whose READ no worker will answer once the
 * session loop has ended; if the thread has not stopped within two
 * seconds, unblock(arg) is called, which should abort the connection.
 * If it has still not stopped ten seconds later (the abort failed), -1:
 * the thread is left blocked in the kernel and f is not freed, and the
 * caller must not free what it uses either (the session, the store's
 * nodes) - it can only commit the store and exit.
 */
int sfs_filler_stop(sfs_filler *f, void (*unblock)(void *arg), void *arg);

#endif
