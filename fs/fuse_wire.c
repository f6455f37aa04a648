/*
 * fuse_wire.c - request/reply hooks on the /dev/fuse channel (see fuse_wire.h).
 *
 * Only fixed-layout fields of <linux/fuse.h> are read, and only when the
 * message is long enough to hold them: a short or unknown message passes
 * through untouched and libfuse answers it as before.  The one message
 * changed is SETXATTR under FUSE_SETXATTR_EXT, cut to the layout libfuse
 * reads.
 */
#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuse_wire.h"

static _Thread_local int kill_suidgid, acl_kill_sgid;
/* the request this thread read last, until its reply is written */
static _Thread_local struct {
	uint64_t unique;
	uint64_t t0;
	uint32_t opcode;
	int pending;
} cur;

static const char *const op_names[SFS_WIRE_NOPS] = {
	[FUSE_LOOKUP] = "lookup", [FUSE_FORGET] = "forget", [FUSE_GETATTR] = "getattr",
	[FUSE_SETATTR] = "setattr", [FUSE_READLINK] = "readlink", [FUSE_SYMLINK] = "symlink",
	[FUSE_MKNOD] = "mknod", [FUSE_MKDIR] = "mkdir", [FUSE_UNLINK] = "unlink",
	[FUSE_RMDIR] = "rmdir", [FUSE_RENAME] = "rename", [FUSE_LINK] = "link",
	[FUSE_OPEN] = "open", [FUSE_READ] = "read", [FUSE_WRITE] = "write",
	[FUSE_STATFS] = "statfs", [FUSE_RELEASE] = "release", [FUSE_FSYNC] = "fsync",
	[FUSE_SETXATTR] = "setxattr", [FUSE_GETXATTR] = "getxattr",
	[FUSE_LISTXATTR] = "listxattr", [FUSE_REMOVEXATTR] = "removexattr",
	[FUSE_FLUSH] = "flush", [FUSE_INIT] = "init", [FUSE_OPENDIR] = "opendir",
	[FUSE_READDIR] = "readdir", [FUSE_RELEASEDIR] = "releasedir",
	[FUSE_FSYNCDIR] = "fsyncdir", [FUSE_GETLK] = "getlk", [FUSE_SETLK] = "setlk",
	[FUSE_SETLKW] = "setlkw", [FUSE_ACCESS] = "access", [FUSE_CREATE] = "create",
	[FUSE_INTERRUPT] = "interrupt", [FUSE_BMAP] = "bmap", [FUSE_DESTROY] = "destroy",
	[FUSE_IOCTL] = "ioctl", [FUSE_POLL] = "poll", [FUSE_NOTIFY_REPLY] = "notify_reply",
	[FUSE_BATCH_FORGET] = "batch_forget", [FUSE_FALLOCATE] = "fallocate",
	[FUSE_READDIRPLUS] = "readdirplus", [FUSE_RENAME2] = "rename2", [FUSE_LSEEK] = "lseek",
	[FUSE_COPY_FILE_RANGE] = "copy_file_range", [FUSE_SYNCFS] = "syncfs",
};

const char *sfs_wire_op_name(unsigned opcode)
{
	return opcode < SFS_WIRE_NOPS ? op_names[opcode] : NULL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sfs_wire_op_stats(const struct sfs_wire *w, struct sfs_op_stat out[SFS_WIRE_NOPS])
{
	for (int i = 0; i < SFS_WIRE_NOPS; i++) {
		out[i].count = __atomic_load_n(&w->ops[i].count, __ATOMIC_RELAXED);
		out[i].timed = __atomic_load_n(&w->ops[i].timed, __ATOMIC_RELAXED);
		out[i].sum_ns = __atomic_load_n(&w->ops[i].sum_ns, __ATOMIC_RELAXED);
		out[i].max_ns = __atomic_load_n(&w->ops[i].max_ns, __ATOMIC_RELAXED);
	}
}

/* the reply to this thread's request `unique` is being written: time it */
static void op_done(struct sfs_wire *w, uint64_t unique)
{
	if (!cur.pending || cur.unique != unique)
		return;
	cur.pending = 0;
	struct sfs_op_stat *s = &w->ops[cur.opcode];
	uint64_t d = mono_ns() - cur.t0;
	__atomic_fetch_add(&s->timed, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->sum_ns, d, __ATOMIC_RELAXED);
	uint64_t m = __atomic_load_n(&s->max_ns, __ATOMIC_RELAXED);
	while (d > m && !__atomic_compare_exchange_n(&s->max_ns, &m, d, 1, __ATOMIC_RELAXED,
						     __ATOMIC_RELAXED))
		;
}

/* where each request that can carry it has its kill flag */
static const struct {
	uint32_t opcode;
	size_t off;
	uint32_t mask;
} kill_fields[] = {
	{ FUSE_WRITE, offsetof(struct fuse_write_in, write_flags), FUSE_WRITE_KILL_SUIDGID },
	{ FUSE_SETATTR, offsetof(struct fuse_setattr_in, valid), FATTR_KILL_SUIDGID },
	{ FUSE_OPEN, offsetof(struct fuse_open_in, open_flags), FUSE_OPEN_KILL_SUIDGID },
	/*
	 * Not CREATE: the kernel sends it for a name it found missing, so an
	 * O_TRUNC there meets an existing file only if one appeared meanwhile.
	 */
};

int sfs_wire_kill_suidgid(void)
{
	return kill_suidgid;
}

int sfs_wire_acl_kill_sgid(void)
{
	return acl_kill_sgid;
}

static uint32_t get32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

/* the flag word of a request body at `off`, 0 when the body is too short */
static uint32_t body32(const char *buf, size_t len, size_t off)
{
	off += sizeof(struct fuse_in_header);
	return len >= off + 4 ? get32(buf + off) : 0;
}

ssize_t sfs_wire_read(int fd, void *buf, size_t len, struct sfs_wire *w)
{
	return sfs_wire_received(buf, read(fd, buf, len), w);
}

ssize_t sfs_wire_received(void *buf, ssize_t n, struct sfs_wire *w)
{
	kill_suidgid = acl_kill_sgid = 0;
	if (n < (ssize_t)sizeof(struct fuse_in_header))
		return n;
	char *b = buf;
	size_t got = (size_t)n;
	struct fuse_in_header h;
	memcpy(&h, b, sizeof h);
	cur.pending = 0;
	if (h.opcode < SFS_WIRE_NOPS) {
		__atomic_fetch_add(&w->ops[h.opcode].count, 1, __ATOMIC_RELAXED);
		cur.unique = h.unique;
		cur.opcode = h.opcode;
		cur.t0 = mono_ns();
		cur.pending = 1;
	}
	if (h.opcode == FUSE_INIT) {
		uint32_t flags = body32(b, got, offsetof(struct fuse_init_in, flags));
		w->init_unique = h.unique;
		w->init_seen = 1;
		w->offers_v2 = !!(flags & FUSE_HANDLE_KILLPRIV_V2);
		w->offers_setxattr_ext = !!(flags & FUSE_SETXATTR_EXT);
		uint32_t flags2 = (flags & FUSE_INIT_EXT)
					  ? body32(b, got, offsetof(struct fuse_init_in, flags2))
					  : 0;
		w->offers_uring = !!(flags2 & (uint32_t)(SFS_FUSE_OVER_IO_URING >> 32));
		return n;
	}
	const size_t hs = sizeof(struct fuse_in_header), ext = sizeof(struct fuse_setxattr_in),
		     compat = FUSE_COMPAT_SETXATTR_IN_SIZE;
	if (h.opcode == FUSE_SETXATTR && w->setxattr_ext && got >= hs + ext && h.len == got) {
		/* hand libfuse the compatible layout: size and flags, then the name */
		acl_kill_sgid = !!(body32(b, got, offsetof(struct fuse_setxattr_in, setxattr_flags)) &
				   FUSE_SETXATTR_ACL_KILL_SGID);
		memmove(b + hs + compat, b + hs + ext, got - hs - ext);
		h.len -= (uint32_t)(ext - compat);
		memcpy(b, &h, sizeof h);
		return n - (ssize_t)(ext - compat);
	}
	for (size_t i = 0; w->killpriv_v2 && i < sizeof kill_fields / sizeof *kill_fields; i++)
		if (kill_fields[i].opcode == h.opcode)
			kill_suidgid = !!(body32(b, got, kill_fields[i].off) & kill_fields[i].mask);
	return n;
}

/* pointer to byte `off` of the message in iov, if 4 bytes there are contiguous */
static char *iov_at(struct iovec *iov, int count, size_t off)
{
	for (int i = 0; i < count; i++) {
		if (off < iov[i].iov_len)
			return off + 4 <= iov[i].iov_len ? (char *)iov[i].iov_base + off : NULL;
		off -= iov[i].iov_len;
	}
	return NULL;
}

/* bytes of the message in iov */
static ssize_t msg_len(const struct iovec *iov, int count)
{
	size_t n = 0;
	for (int i = 0; i < count; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}

/* the INIT reply's limits: the largest body a request or reply may carry */
static size_t init_payload(struct iovec *iov, int count, size_t len)
{
	size_t hs = sizeof(struct fuse_out_header);
	char *mw = len >= hs + offsetof(struct fuse_init_out, max_write) + 4
			   ? iov_at(iov, count, hs + offsetof(struct fuse_init_out, max_write))
			   : NULL;
	char *fl = iov_at(iov, count, hs + offsetof(struct fuse_init_out, flags));
	char *mp = len >= hs + offsetof(struct fuse_init_out, max_pages) + 4
			   ? iov_at(iov, count, hs + offsetof(struct fuse_init_out, max_pages))
			   : NULL;
	size_t max_write = mw ? get32(mw) : 4096, pages = 32; /* the kernel's default */
	if (fl && mp && (get32(fl) & FUSE_MAX_PAGES)) {
		uint16_t p16;
		memcpy(&p16, mp, sizeof p16);
		pages = p16 ? p16 : 1;
	}
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096, n = pages * page;
	if (n < max_write)
		n = max_write;
	if (n < 8192) /* FUSE_MIN_READ_BUFFER */
		n = 8192;
	return (n + page - 1) / page * page;
}

ssize_t sfs_wire_writev(int fd, struct iovec *iov, int count, struct sfs_wire *w)
{
	int init_reply = 0;
	struct fuse_out_header oh;
	int have_oh = count > 0 && iov[0].iov_len >= sizeof oh;
	if (have_oh) {
		memcpy(&oh, iov[0].iov_base, sizeof oh);
		op_done(w, oh.unique);
		if (oh.unique && __atomic_load_n(&w->uring, __ATOMIC_ACQUIRE) && w->uring_reply(w->uring_arg, iov, count))
			return msg_len(iov, count);
	}
	if (w->init_seen && have_oh) {
		if (oh.unique == w->init_unique) {
			init_reply = oh.error == 0;
			w->init_seen = 0;
		}
		char *p = NULL;
		if (init_reply && oh.len >= sizeof oh + offsetof(struct fuse_init_out, flags) + 4)
			p = iov_at(iov, count, sizeof oh + offsetof(struct fuse_init_out, flags));
		if (p) {
			uint32_t flags = get32(p);
			if (w->offers_v2) {
				flags |= FUSE_HANDLE_KILLPRIV_V2;
				/* V1 asks the daemon to kill privileges on its own terms: not both */
				flags &= ~(uint32_t)FUSE_HANDLE_KILLPRIV;
				w->killpriv_v2 = 1;
			}
			if (w->offers_setxattr_ext && (flags & FUSE_POSIX_ACL)) {
				/* with ACLs: the kernel's set-group-ID verdict on SETXATTR */
				flags |= FUSE_SETXATTR_EXT;
				w->setxattr_ext = 1;
			}
			char *p2 = oh.len >= sizeof oh + offsetof(struct fuse_init_out, flags2) + 4
					   ? iov_at(iov, count,
						    sizeof oh + offsetof(struct fuse_init_out, flags2))
					   : NULL;
			int offered = w->offers_uring && p2 && (flags & FUSE_INIT_EXT);
			if (w->want_uring &&
			    w->uring_prepare(w->uring_arg, offered,
					     offered ? init_payload(iov, count, oh.len) : 0) == 0 &&
			    offered) {
				uint32_t flags2 = get32(p2) | (uint32_t)(SFS_FUSE_OVER_IO_URING >> 32);
				memcpy(p2, &flags2, sizeof flags2);
				__atomic_store_n(&w->uring, 1, __ATOMIC_RELEASE);
				/*
				 * No asynchronous direct I/O over the rings: an
				 * asynchronous direct write would hold a background
				 * slot until its invalidation (fuse_inval.h) is done,
				 * and a ring queue's waiting background requests move
				 * only when one of that queue's own ends, so the
				 * writeback the invalidation waits for could stay
				 * behind it.  Synchronous, the kernel invalidates
				 * after the write itself.
				 */
				flags &= ~(uint32_t)FUSE_ASYNC_DIO;
			}
			__atomic_store_n(&w->async_dio, !!(flags & FUSE_ASYNC_DIO), __ATOMIC_RELEASE);
			memcpy(p, &flags, sizeof flags);
		}
	}
	ssize_t n = writev(fd, iov, count);
	if (init_reply && n >= 0 && w->after_init)
		w->after_init(w->after_init_arg);
	return n;
}
