/*
 * fuse_wire.h - the parts of the FUSE protocol settfs handles below libfuse.
 *
 * libfuse 3.14 neither negotiates FUSE_HANDLE_KILLPRIV_V2 nor passes the
 * flags that come with it (FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID,
 * FUSE_OPEN_KILL_SUIDGID) to the filesystem, and the same holds for
 * FUSE_SETXATTR_EXT and FUSE_SETXATTR_ACL_KILL_SGID.  settfs reads and writes the
 * /dev/fuse channel through these functions (fuse_session_custom_io) to
 * add the capability to the INIT reply and to note, for the request the
 * calling thread has just read, whether the kernel asks for set-user-ID
 * and set-group-ID to be cleared.
 *
 * Why it matters: without KILLPRIV_V2 the kernel asks the daemon for
 * "security.capability" before every write(2) to a filesystem that
 * supports xattrs, a synchronous round trip per write even when the data
 * only goes to the page cache.  With it, the kernel marks inodes it has
 * checked S_NOSEC and skips the question until their attributes change.
 */
#ifndef SETTFS_FUSE_WIRE_H
#define SETTFS_FUSE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * Requests by opcode since mount: counted when read; timed (read to
 * reply) when the thread that read a request also writes its reply, as
 * libfuse does for every operation settfs answers synchronously.
 * Updated with relaxed atomics; read with sfs_wire_op_stats.
 */
#define SFS_WIRE_NOPS 64
struct sfs_op_stat {
	uint64_t count;  /* requests read */
	uint64_t timed;  /* of them, replies timed */
	uint64_t sum_ns; /* total time of the timed ones */
	uint64_t max_ns; /* longest */
};

struct sfs_wire {
	struct sfs_op_stat ops[SFS_WIRE_NOPS]; /* by opcode (< SFS_WIRE_NOPS) */
	int killpriv_v2;        /* negotiated: the kernel accepted it */
	unsigned long long init_unique; /* unique of the INIT request */
	int init_seen;          /* INIT read, reply not yet written */
	int offers_v2;          /* the kernel's INIT offered KILLPRIV_V2 */
	int setxattr_ext;       /* negotiated: SETXATTR carries setxattr_flags */
	int offers_setxattr_ext; /* the kernel's INIT offered SETXATTR_EXT */
	int async_dio;          /* negotiated: direct I/O may be asynchronous (atomic) */
	/* called once the kernel has taken the INIT reply (it applies it
	 * while the reply is written), e.g. to tune what INIT resets */
	void (*after_init)(void *arg);
	void *after_init_arg;

	/*
	 * FUSE over io_uring (fuse_uring.h).  With want_uring set, at the
	 * INIT reply uring_prepare(uring_arg, offered, payload) is called:
	 * `offered` whether the kernel's INIT offered FUSE_OVER_IO_URING,
	 * `payload` the largest request or reply body the reply allows.
	 * When it returns 0 the reply takes FUSE_OVER_IO_URING (`uring` is
	 * set); the queues are registered from after_init on.
	 */
	int want_uring;
	int offers_uring;       /* the kernel's INIT offered it */
	int uring;              /* negotiated */
	int (*uring_prepare)(void *arg, int offered, size_t payload);
	/*
	 * Every reply but a notification (unique 0) is first offered to
	 * uring_reply: 1 when it answered a request read from a ring (the
	 * reply went there), 0 to write it to /dev/fuse.
	 */
	int (*uring_reply)(void *arg, const struct iovec *iov, int count);
	void *uring_arg;
	uint64_t uring_requests; /* requests read from rings (relaxed atomics) */
	unsigned uring_queues, uring_threads; /* likewise */
};

/* fuse_custom_io read and writev, given the daemon's struct sfs_wire */
ssize_t sfs_wire_read(int fd, void *buf, size_t len, struct sfs_wire *w);
ssize_t sfs_wire_writev(int fd, struct iovec *iov, int count, struct sfs_wire *w);
/*
 * What sfs_wire_read does with a request of n bytes in buf once read (from
 * /dev/fuse or a ring): counts it, notes its flags for this thread and
 * may shorten it; returns its length for libfuse.
 */
ssize_t sfs_wire_received(void *buf, ssize_t n, struct sfs_wire *w);

/* FUSE_OVER_IO_URING (Linux 6.14, protocol 7.42): bit 41 of the INIT flags */
#define SFS_FUSE_OVER_IO_URING (1ULL << 41)

/* A consistent-enough copy of the counters (each field is read atomically). */
void sfs_wire_op_stats(const struct sfs_wire *w, struct sfs_op_stat out[SFS_WIRE_NOPS]);
/* "write", "lookup", ... for an opcode; NULL for one settfs does not name. */
const char *sfs_wire_op_name(unsigned opcode);

/*
 * 1 if the request this thread read last asks the filesystem to clear
 * set-user-ID and set-group-ID (a WRITE, a SETATTR of the size, an OPEN
 * with O_TRUNC, by a caller without CAP_FSETID).  libfuse calls
 * the operation on the thread that read the request.
 */
int sfs_wire_kill_suidgid(void);

/*
 * 1 if the request this thread read last is a SETXATTR of an ACL for which
 * the kernel asks to clear set-group-ID (FUSE_SETXATTR_ACL_KILL_SGID: the
 * caller is neither in the file's group nor has CAP_FSETID).  The flag
 * comes with FUSE_SETXATTR_EXT, which settfs adds to the INIT reply when
 * it takes POSIX ACLs; libfuse 3.14 reads SETXATTR in the layout without
 * it, so the request is handed on in that layout.
 */
int sfs_wire_acl_kill_sgid(void);

#endif
