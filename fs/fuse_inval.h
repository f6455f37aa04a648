/*
 * fuse_inval.h - the settfs daemon's replies that must follow a page-cache
 * invalidation.
 *
 * Two requests are answered only after the daemon has made the kernel
 * drop (and, for dirty pages, first write back) a range of a file's page
 * cache:
 *
 * - A write that did not come through the page cache (O_DIRECT) changes
 *   bytes the kernel may hold cached.  The kernel drops the range before
 *   it sends such a write, and after a synchronous one, but not after an
 *   asynchronous one (AIO, io_uring): a buffered read running meanwhile
 *   can bring the old bytes back into the cache, where they would stay.
 *   So the daemon invalidates the written range once the write is in the
 *   store, and only then replies: when the writer learns that its write is
 *   done, no cached page holds older bytes.  Only where the kernel may
 *   send direct writes asynchronously (FUSE_ASYNC_DIO, not taken over
 *   io_uring: fuse_wire.c says why).
 * - SEEK_DATA/SEEK_HOLE: the kernel sends LSEEK without writing its dirty
 *   pages back, so data still in the writeback cache (or in dirty mmap
 *   pages) would be reported as a hole.  While the file has a writable
 *   handle the daemon first invalidates the range from the offset on, which
 *   writes dirty pages back, and answers after that.
 *
 * The invalidation waits for the page locks of the range, and a page is
 * locked while its READ waits for a request thread; so it runs on one
 * background thread, which then sends the reply, and the request thread
 * is free meanwhile.
 *
 * Writing dirty pages back takes one of the kernel's background request
 * slots (SFS_MAX_BACKGROUND of them), and so does every asynchronous write
 * until it is answered.  Were all the slots held by direct writes waiting
 * for their invalidation, the writeback it waits for could never be sent:
 * so at most SFS_INVAL_HELD direct writes wait at once; a further one is
 * answered first and its range invalidated after (its writer may then
 * read, through the cache, bytes that its invalidation has still to drop:
 * only with more than SFS_INVAL_HELD asynchronous direct writes in
 * flight).
 *
 * Thread safety: sfs_inval_then may be called from any thread; start and
 * stop belong to the thread that runs the session, and stop must come
 * before the session and the store are destroyed.
 */
#ifndef SETTFS_FUSE_INVAL_H
#define SETTFS_FUSE_INVAL_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sfs_inval sfs_inval;

/* the kernel's limit on background requests, set at FUSE_INIT */
#define SFS_MAX_BACKGROUND 12
/* direct writes that may wait for their invalidation at once (< the limit) */
#define SFS_INVAL_HELD (SFS_MAX_BACKGROUND / 2)

/* Start the thread; NULL if it cannot (replies then invalidate in place). */
sfs_inval *sfs_inval_start(struct fuse_session *se);
/* The reply to req, sent after the invalidation with the arguments given. */
typedef void (*sfs_inval_done)(fuse_req_t req, uint64_t ino, uint64_t a, uint64_t b);
/*
 * Invalidate the kernel's cached pages of [off, off + len) of ino (len 0:
 * to the end), then call done(req, ino, a, b).  With v NULL both happen on
 * the calling thread.  `slot`: req holds a background slot (a write), and
 * with SFS_INVAL_HELD of those waiting done comes first, at once.
 */
void sfs_inval_then(sfs_inval *v, struct fuse_session *se, fuse_req_t req, uint64_t ino,
		    uint64_t off, uint64_t len, int slot, sfs_inval_done done, uint64_t a,
		    uint64_t b);
/*
 * Stop the thread after it has answered everything queued, and free v; 0
 * then.  Once stopping, sfs_inval_then works in place.  If the thread has
 * not stopped within two seconds (an invalidation waits for a request
 * nobody answers), unblock(arg) is called, which should abort the
 * connection; if it has still not stopped ten seconds later, -1: as for
 * sfs_filler_stop, the thread is left where it is and v is not freed.
 */
int sfs_inval_stop(sfs_inval *v, void (*unblock)(void *arg), void *arg);

/*
 * Join t within `secs` seconds, else call unblock(arg) and wait up to
 * `more` seconds again.  0 if joined, -1 if not.
 */
int sfs_join_bounded(pthread_t t, double secs, void (*unblock)(void *arg), void *arg,
		     double more);

#endif
