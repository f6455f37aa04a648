/*
 * fuse_uring.h - the settfs daemon's FUSE requests over io_uring.
 *
 * With FUSE_OVER_IO_URING (Linux 6.14, when the fuse module's
 * enable_uring parameter is set) the kernel hands requests to the daemon
 * in buffers the daemon registered on io_uring queues, one queue per
 * possible CPU, and takes the reply and hands over the next request in
 * one io_uring command (COMMIT_AND_FETCH): one system call per request
 * instead of a read and a write of /dev/fuse.  libfuse 3.14 does not
 * speak it, so this transport sits below libfuse as fuse_wire.c does:
 * a request read from a ring is given to libfuse
 * (fuse_session_process_buf) as it would have been read from /dev/fuse,
 * and its reply, which libfuse writes through fuse_wire's writev, is
 * put into the ring instead.  The requests are served by the same code.
 *
 * What still goes through /dev/fuse, read by libfuse's loop as before:
 * FORGET, INTERRUPT, the requests before the queues are registered, and
 * the notifications the daemon sends (invalidations, page-cache pushes).
 *
 * Threads: each worker thread owns one ring with one entry, so a request
 * is given only to a thread waiting for one, as a read of /dev/fuse is;
 * a worker whose request waits (for another request, for a reply another
 * thread sends) holds no other.  A queue starts with two workers (pinned
 * to the queue's CPU) and gains one whenever none is left waiting, up to
 * `max_threads`, as libfuse's multi-threaded loop does; a worker waiting
 * for a reply another thread sends does not count against max_threads
 * (that reply may wait for a request to the same queue).
 *
 * Thread safety: sfs_uring_reply may be called from any thread; the rest
 * belongs to the thread that runs the session, except sfs_uring_prepare
 * and sfs_uring_go, which fuse_wire calls at the INIT reply.
 */
#ifndef SETTFS_FUSE_URING_H
#define SETTFS_FUSE_URING_H

#include <stddef.h>
#include <sys/uio.h>

struct fuse_session;
struct sfs_wire;
typedef struct sfs_uring sfs_uring;

/*
 * The transport for session se on its /dev/fuse descriptor fd; nothing
 * runs until sfs_uring_prepare.  `quiet` (io_uring not asked for, only
 * taken where offered): no line when the first request comes through a
 * ring, and none for a kernel that does not offer io_uring.  NULL, with
 * the reason in why, if this build has no io_uring (liburing) or memory
 * is short.
 */
sfs_uring *sfs_uring_new(struct fuse_session *se, int fd, struct sfs_wire *w,
			 unsigned max_threads, int quiet, char *why, size_t why_size);
/*
 * sfs_wire.uring_prepare (arg: the sfs_uring): at the INIT reply, starts
 * the first workers with rings and buffers for bodies of `payload`
 * bytes; 0 when they are ready, so that the reply may announce
 * FUSE_OVER_IO_URING.  Otherwise says why on stderr, and when the kernel
 * did not offer it unless quiet (requests then all go through /dev/fuse).
 */
int sfs_uring_prepare(void *arg, int offered, size_t payload);
/* After the INIT reply (which the kernel needs first): register the queues. */
void sfs_uring_go(sfs_uring *u);
/* sfs_wire.uring_reply (arg: the sfs_uring) */
int sfs_uring_reply(void *arg, const struct iovec *iov, int count);
/*
 * Stop the workers once the session loop has ended: a waiting one at
 * once, a serving one after its reply.  If they have not all stopped
 * within two seconds (a reply waits for a request no one serves any
 * more), unblock(arg) is called, which should abort the connection, and
 * the wait goes on.  Replies may still be offered to sfs_uring_reply.
 */
void sfs_uring_stop(sfs_uring *u, void (*unblock)(void *arg), void *arg);
/* After sfs_uring_stop, once no thread can reply any more. */
void sfs_uring_free(sfs_uring *u);

#endif
