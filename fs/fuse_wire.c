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
#include <unistd.h>

#include "fuse_wire.h"

static _Thread_local int kill_suidgid, acl_kill_sgid;

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
	ssize_t n = read(fd, buf, len);
	kill_suidgid = acl_kill_sgid = 0;
	if (n < (ssize_t)sizeof(struct fuse_in_header))
		return n;
	char *b = buf;
	size_t got = (size_t)n;
	struct fuse_in_header h;
	memcpy(&h, b, sizeof h);
	if (h.opcode == FUSE_INIT) {
		uint32_t flags = body32(b, got, offsetof(struct fuse_init_in, flags));
		w->init_unique = h.unique;
		w->init_seen = 1;
		w->offers_v2 = !!(flags & FUSE_HANDLE_KILLPRIV_V2);
		w->offers_setxattr_ext = !!(flags & FUSE_SETXATTR_EXT);
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

ssize_t sfs_wire_writev(int fd, struct iovec *iov, int count, struct sfs_wire *w)
{
	int init_reply = 0;
	if (w->init_seen && count > 0 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		struct fuse_out_header oh;
		memcpy(&oh, iov[0].iov_base, sizeof oh);
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
			memcpy(p, &flags, sizeof flags);
		}
	}
	ssize_t n = writev(fd, iov, count);
	if (init_reply && n >= 0 && w->after_init)
		w->after_init(w->after_init_arg);
	return n;
}
