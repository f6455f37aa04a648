/*
 * fuse_main.c - the settfs daemon: libfuse3 low-level glue and main().
 *
 *   settfs [-f] [-d] [-o opt,...] STORE MOUNTPOINT
 *
 * Every request is mapped onto one call of the FUSE-free core (settfs.h);
 * this file only converts arguments and replies.  Since this daemon is the
 * only writer of its store, the kernel may cache entries and attributes
 * (SFS_CACHE_TIMEOUT) and the writeback cache may merge writes: the core's
 * answers stay correct because every change passes through the kernel.
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <linux/falloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "control.h"
#include "fileio.h"
#include "fuse_wire.h"
#include "fuse_fill.h"
#include "fuse_inval.h"
#include "fuse_uring.h"
#include "key.h"
#include "settfs.h"
#include "sendctl.h"
#include "scrub.h"
#include "status.h"

/*
 * How long the kernel may keep entries (names, and names that do not
 * exist) and attributes: a day, as good as forever.  Only this daemon
 * changes the store (the store is locked; fsck runs unmounted), and every
 * change it makes is asked for by the kernel, which updates or expires
 * what it cached itself:
 * - create, mknod, mkdir, symlink, link: the reply carries the new
 *   inode's attributes; the kernel expires the parent's (fuse_dir_changed).
 *   Hard links share one kernel inode per inode number, so the nlink a
 *   link reply carries is seen through every name.
 * - unlink, rmdir, rename: the kernel drops the name, lowers the nlink of
 *   the inode unlinked or replaced by a rename (fuse_entry_unlinked, also
 *   for an open file) and expires its attributes, the renamed inode's
 *   ctime and both parents' attributes.
 * - setattr: the reply carries the attributes; the kernel forgets its
 *   cached ACLs, which chmod may have rewritten.
 * - setxattr/removexattr: the kernel expires ctime; of a POSIX ACL, which
 *   may change the mode (and clear set-group-ID), all attributes.
 * - read, readdir: the kernel expires atime (relatime updates here).
 * - write, fallocate, O_TRUNC: the kernel keeps or expires size, times and
 *   blocks itself.
 * What the kernel does not see are the daemon's own changes: set-user-ID/
 * set-group-ID cleared by a WRITE, an OPEN or a FALLOCATE (mode_changed),
 * and st_blocks, which moves when buffered data is committed (at a FLUSH,
 * a RELEASE, by the writeback thread, when the buffers fill), not at the
 * WRITE (attr_changed, called by the core).  Both expire the inode's
 * attributes with a notification.  -o entry_timeout=, attr_timeout= and
 * timeout= (both) shorten them.
 */
#define SFS_CACHE_TIMEOUT 86400.0

struct sfs_cfg {
	char *store;
	int nonopts;
	int sync_writes;
	size_t value_threshold;
	size_t mem_table_size;
	unsigned chunk_size;
	double entry_timeout, attr_timeout;
	int writeback;
	unsigned threads;
	int clone_fd;
	int dirty_ratio;      /* -1: leave the kernel's setting */
	int readahead_kb;     /* -1: leave the kernel's setting */
	int readdirplus_auto; /* let the kernel choose READDIR or READDIRPLUS */
	int nofill;
	int suid, dev;        /* -o suid/nosuid, dev/nodev; -1: libfuse's nosuid,nodev */
	int noacl;            /* -o noacl: no POSIX ACLs */
	int nosnapdir;        /* -o nosnapdir: no /.snapshots */
	char *reserve;        /* -o reserve=SIZE; NULL: the default rule */
	char *compression;    /* -o compression=none|zstd[:LEVEL]; NULL: the store's */
	double dirty_expire;  /* seconds a buffered write may wait (0: no limit) */
	int ro;               /* -o ro: the store is opened read-only */
	int io_uring;         /* -o io_uring / no_io_uring; -1: the default */
	char *key_file;       /* -o key_file=F: the master key of an encrypted store */
	char *pass_file;      /* -o passphrase_file=F: its passphrase */
	int show_help, show_version;
};

struct sfs_conn;

struct sfs_fuse {
	settfs *fs;
	struct sfs_cfg *cfg;
	int writeback; /* negotiated */
	int acl;       /* negotiated: POSIX ACLs (with DONT_MASK: create modes arrive
			* without the umask applied) */
	struct sfs_wire wire;
	struct fuse_session *se;
	sfs_filler *filler; /* NULL: no page-cache fill */
	sfs_inval *inval;   /* replies to direct writes; NULL: in place */
	/*
	 * Shutting down: the main thread answers requests while the helper
	 * threads stop (stop_helpers).  It must not wait for a page lock
	 * whose READ only it would answer, so replies that follow an
	 * invalidation are sent without it: the connection ends right after.
	 */
	int stopping;
	sfs_control *control; /* settfs status; NULL: none */
	sfs_uring *uring;     /* requests over io_uring; NULL: /dev/fuse only */
	struct sfs_conn *conn;
	size_t page_size;
};

static struct sfs_fuse *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * Every fuse_reply_* frees req, whatever it returns (-ENOENT: the kernel
 * no longer waits for the request, because it was interrupted or because
 * the connection was aborted, after which every reply fails so): what an
 * operation needs after its reply it takes from req before.
 */
static settfs *fs_of(fuse_req_t req)
{
	return ctx_of(req)->fs;
}

/*
 * After the daemon cleared set-user-ID/set-group-ID on a WRITE or an OPEN,
 * whose replies carry no attributes, the kernel would go on showing the
 * old mode until its attribute timeout: expire its attributes now, before
 * the reply.
 */
static void mode_changed(fuse_req_t req, fuse_ino_t ino)
{
	fuse_lowlevel_notify_inval_inode(ctx_of(req)->se, ino, -1, 0);
}

/* settfs_set_attr_fn: the core changed st_blocks at a commit */
static void attr_changed(void *arg, uint64_t ino)
{
	fuse_lowlevel_notify_inval_inode(((struct sfs_fuse *)arg)->se, ino, -1, 0);
}

/* settfs_set_entry_fn: a snapshot was taken or deleted through the control path */
static void entry_changed(void *arg, uint64_t parent, const char *name)
{
	fuse_lowlevel_notify_inval_entry(((struct sfs_fuse *)arg)->se, parent, name, strlen(name));
}

static settfs_ctx creds_of(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	settfs_ctx s = { (uint32_t)c->uid, (uint32_t)c->gid, NULL, 0,
			 ctx_of(req)->acl ? (uint32_t)c->umask : 0 };
	return s;
}

/* creds_of with the caller's supplementary groups (at most 64) in g */
static settfs_ctx creds_with_groups(fuse_req_t req, uint32_t g[64])
{
	settfs_ctx c = creds_of(req);
	gid_t groups[64];
	int n = c.uid != 0 ? fuse_req_getgroups(req, 64, groups) : 0;
	for (int i = 0; i < n && i < 64; i++)
		g[i] = (uint32_t)groups[i];
	c.groups = g;
	c.ngroups = n < 0 ? 0 : n > 64 ? 64 : n;
	return c;
}

/*
 * The flags of a data change (write, fallocate) by a caller without
 * CAP_FSETID: SETTFS_WRITE_KILL_SUIDGID, and SETTFS_WRITE_KILL_SGID when
 * the file is set-group-ID without group execute and the caller is not in
 * its group (Linux drops the bit then too; FUSE's kill flags predate that).
 */
static unsigned kill_flags(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;
	if (settfs_getattr(fs_of(req), ino, &st) != 0 || (st.st_mode & (S_ISGID | S_IXGRP)) != S_ISGID)
		return SETTFS_WRITE_KILL_SUIDGID;
	uint32_t g[64];
	settfs_ctx c = creds_with_groups(req, g);
	int member = c.gid == st.st_gid;
	for (int i = 0; i < c.ngroups && !member; i++)
		member = g[i] == st.st_gid;
	return SETTFS_WRITE_KILL_SUIDGID | (member ? 0 : SETTFS_WRITE_KILL_SGID);
}

static void reply_entry(fuse_req_t req, int r, const struct stat *st)
{
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	e.ino = st->st_ino;
	e.attr = *st;
	e.attr_timeout = ctx_of(req)->cfg->attr_timeout;
	e.entry_timeout = ctx_of(req)->cfg->entry_timeout;
	settfs *fs = fs_of(req); /* the reply frees req (see fs_of) */
	if (fuse_reply_entry(req, &e) == -ENOENT)
		settfs_forget(fs, st->st_ino, 1); /* interrupted, or the connection aborted */
}

/*
 * libfuse drops a request read after the session was told to exit (a
 * signal): the kernel would wait for its reply until the connection ends,
 * and the process that made it with it - a READ so dropped holds its
 * pages locked, and a push or an invalidation at shutdown waits for them.
 * Such a request is answered here, on the thread that read it (not for a
 * cloned descriptor: its replies must go back through it).
 */
static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	struct sfs_fuse *f = userdata;
	ssize_t n = sfs_wire_read(fd, buf, len, &f->wire);
	if (n > 0 && f->se && fd == fuse_session_fd(f->se) && fuse_session_exited(f->se)) {
		int old;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old); /* the loop cancels readers */
		struct fuse_buf b = { .size = (size_t)n, .mem = buf };
		fuse_session_process_buf(f->se, &b);
		pthread_setcancelstate(old, NULL);
	}
	return n;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	return sfs_wire_writev(fd, iov, count, &((struct sfs_fuse *)userdata)->wire);
}

static const struct fuse_custom_io wire_io = { .writev = wire_writev, .read = wire_read };

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sfs_fuse *f = userdata;
	if (f->cfg->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		f->writeback = 1;
	}
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/*
	 * Always "plus" unless asked: entries and attributes come from the
	 * same store, and a plain READDIR makes rm -r, rsync and find LOOKUP
	 * every name they then touch.
	 */
	if (f->cfg->readdirplus_auto && (conn->capable & FUSE_CAP_READDIRPLUS_AUTO))
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	else
		conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	/*
	 * File handles (name_to_handle_at, NFS export): the kernel looks a
	 * forgotten inode up as "." in it and a directory's parent as "..",
	 * which settfs_lookup answers from the store; inode numbers are never
	 * reused, so generation 0 makes a handle of a deleted file stale.
	 */
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	/* locks are left to the kernel: correct for a single-host mount */
	conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
	/*
	 * Privileges are killed under FUSE_HANDLE_KILLPRIV_V2, which
	 * fuse_wire.c adds to the reply when the kernel offers it (libfuse
	 * 3.14 does not know it).  The old HANDLE_KILLPRIV is not taken.
	 */
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
	/*
	 * POSIX ACLs: the kernel enforces them (with default_permissions)
	 * and caches them; settfs stores them, keeps them in step with the
	 * mode and applies default ACLs to new inodes.  That needs the
	 * create mode before the umask (DONT_MASK: the kernel passes the
	 * umask along instead), since a default ACL replaces the umask.
	 */
	if (!f->cfg->noacl && (conn->capable & FUSE_CAP_POSIX_ACL) &&
	    (conn->capable & FUSE_CAP_DONT_MASK)) {
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
		f->acl = 1;
	}
	conn->max_write = 1u << 20;
	/* FUSE's default, stated: fuse_inval.c keeps writeback a slot of it */
	conn->max_background = SFS_MAX_BACKGROUND;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int r = settfs_lookup(fs_of(req), parent, name, &st);
	if (r == -ENOENT) {
		/* negative entry: only this daemon creates names */
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		e.entry_timeout = ctx_of(req)->cfg->entry_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, r, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	settfs_forget(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *list)
{
	for (size_t i = 0; i < count; i++)
		settfs_forget(fs_of(req), list[i].ino, list[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = settfs_getattr(fs_of(req), ino, &st);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ctx_of(req)->cfg->attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
		       struct fuse_file_info *fi)
{
	int set = 0;
	if (valid & FUSE_SET_ATTR_MODE)
		set |= SETTFS_SET_MODE;
	if (valid & FUSE_SET_ATTR_UID)
		set |= SETTFS_SET_UID;
	if (valid & FUSE_SET_ATTR_GID)
		set |= SETTFS_SET_GID;
	if (valid & FUSE_SET_ATTR_SIZE)
		set |= SETTFS_SET_SIZE;
	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		set |= SETTFS_SET_ATIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		set |= SETTFS_SET_ATIME;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		set |= SETTFS_SET_MTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		set |= SETTFS_SET_MTIME;
	if (valid & FUSE_SET_ATTR_CTIME)
		set |= SETTFS_SET_CTIME;
	if ((valid & FUSE_SET_ATTR_SIZE) && sfs_wire_kill_suidgid())
		set |= SETTFS_SET_KILL_SUIDGID;
	settfs_ctx c = creds_of(req);
	uint32_t g32[64];
	/* chmod g+s, or a truncate's kill, by a non-member drops set-group-ID */
	if (((valid & FUSE_SET_ATTR_MODE) && (attr->st_mode & S_ISGID)) ||
	    (set & SETTFS_SET_KILL_SUIDGID))
		c = creds_with_groups(req, g32);
	struct stat st;
	int r = settfs_setattr(fs_of(req), &c, ino, attr, set, &st);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ctx_of(req)->cfg->attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[SETTFS_SYMLINK_MAX + 1];
	int r = settfs_readlink(fs_of(req), ino, buf, sizeof buf - 1);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	buf[r] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	settfs_ctx c = creds_of(req);
	struct stat st;
	reply_entry(req, settfs_mknod(fs_of(req), &c, parent, name, mode, rdev, &st), &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	settfs_ctx c = creds_of(req);
	struct stat st;
	reply_entry(req, settfs_mkdir(fs_of(req), &c, parent, name, mode, &st), &st);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	settfs_ctx c = creds_of(req);
	struct stat st;
	reply_entry(req, settfs_symlink(fs_of(req), &c, parent, name, link, &st), &st);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct stat st;
	reply_entry(req, settfs_link(fs_of(req), ino, newparent, newname, &st), &st);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -settfs_unlink(fs_of(req), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -settfs_rmdir(fs_of(req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	unsigned f = 0;
	if (flags & RENAME_NOREPLACE)
		f |= SETTFS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= SETTFS_RENAME_EXCHANGE;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -settfs_rename(fs_of(req), parent, name, newparent, newname, f));
}

/*
 * fi->fh of a file: 1 when the daemon must append itself (O_APPEND without
 * the writeback cache; with it the kernel positions appends).  The writeback
 * cache may also read files opened O_WRONLY: harmless here, since the core
 * has no per-open descriptors with access modes.
 */
static void set_file_flags(fuse_req_t req, struct fuse_file_info *fi)
{
	fi->fh = (fi->flags & O_APPEND) && !ctx_of(req)->writeback;
	fi->keep_cache = 1; /* data changes only through this mount */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int r = 0;
	if (sfs_wire_kill_suidgid()) {
		/* O_TRUNC by a caller without CAP_FSETID; cleared before the truncate */
		struct stat a, st;
		memset(&a, 0, sizeof a);
		uint32_t g32[64];
		settfs_ctx c = creds_with_groups(req, g32);
		r = settfs_setattr(fs_of(req), &c, ino, &a, SETTFS_SET_KILL_SUIDGID, &st);
		if (r == 0)
			mode_changed(req, ino);
	}
	if (r == 0)
		r = settfs_file_open(fs_of(req), ino, fi->flags);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	set_file_flags(req, fi);
	settfs *fs = fs_of(req);
	if (fuse_reply_open(req, fi) == -ENOENT)
		settfs_release(fs, ino, fi->flags);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	settfs_ctx c = creds_of(req);
	struct stat st;
	int r = settfs_create(fs_of(req), &c, parent, name, mode, fi->flags, &st);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	set_file_flags(req, fi);
	struct fuse_entry_param e;
	memset(&e, 0, sizeof e);
	e.ino = st.st_ino;
	e.attr = st;
	e.attr_timeout = ctx_of(req)->cfg->attr_timeout;
	e.entry_timeout = ctx_of(req)->cfg->entry_timeout;
	settfs *fs = fs_of(req);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		settfs_release(fs, st.st_ino, fi->flags);
		settfs_forget(fs, st.st_ino, 1);
	}
}

/*
 * A READ smaller than a chunk (a page the kernel misses, with no readahead)
 * is served from the whole chunk: the engine loads and checks the chunk
 * whole anyway.  The reply takes the asked bytes and the filler pushes the
 * chunk's other pages inside the end of file into the page cache.  The fill
 * token (and the size it goes with) is taken before the read, so a change
 * of the file that overlaps it cancels the push.  Returns 0 when it replied, -1 to leave the request
 * to the plain path.
 */
static int read_chunk_and_fill(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off)
{
	struct sfs_fuse *f = ctx_of(req);
	uint64_t cs = settfs_chunk_size(f->fs);
	uint64_t cstart = (uint64_t)off / cs * cs, token, fsize;
	if (!f->filler || off < 0 || size >= cs || (uint64_t)off + size > cstart + cs ||
	    !sfs_filler_has_room(f->filler))
		return -1; /* the plain read: no push would follow */
	if (settfs_fill_token(f->fs, ino, &token, &fsize) != 0)
		return -1; /* a writable handle is open, or not a regular file */
	uint8_t *buf = malloc(cs);
	if (!buf)
		return -1;
	ssize_t n = settfs_read(f->fs, ino, (off_t)cstart, cs, buf);
	if (n < 0) {
		free(buf);
		fuse_reply_err(req, (int)-n);
		return 0;
	}
	size_t len = (size_t)n, skip = (size_t)((uint64_t)off - cstart);
	size_t have = len > skip ? len - skip : 0;
	fuse_reply_buf(req, (char *)buf + skip, have < size ? have : size);
	/*
	 * The pages the reply touches are the kernel's to fill; the others
	 * are pushed whole.  Never the page that holds the last byte: a store
	 * that ends at the kernel's file size makes it mark the whole folio
	 * uptodate, and when the store began inside a large folio (Linux 6.18)
	 * the folio's head, never filled, became readable as file data.
	 */
	size_t pg = f->page_size;
	uint64_t last = (fsize - 1) / pg * pg;
	if (cstart + len > last)
		len = last > cstart ? (size_t)(last - cstart) : 0;
	size_t from = skip / pg * pg, to = (skip + size + pg - 1) / pg * pg;
	if (to > len)
		to = len;
	if (from > len)
		from = len;
	sfs_filler_queue(f->filler, ino, token, cstart, buf, len, from, to);
	return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (read_chunk_and_fill(req, ino, size, off) == 0)
		return;
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = settfs_read(fs_of(req), ino, off, size, buf);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* sfs_inval_then, or at shutdown the reply alone (sfs_fuse.stopping) */
static void inval_then(fuse_req_t req, uint64_t ino, uint64_t off, uint64_t len, int slot,
		       sfs_inval_done done, uint64_t a, uint64_t b)
{
	struct sfs_fuse *f = ctx_of(req);
	if (f->stopping)
		done(req, ino, a, b);
	else
		sfs_inval_then(f->inval, f->se, req, ino, off, len, slot, done, a, b);
}

static void reply_written(fuse_req_t req, uint64_t ino, uint64_t n, uint64_t unused)
{
	(void)ino;
	(void)unused;
	fuse_reply_write(req, (size_t)n);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	unsigned flags = fi->fh ? SETTFS_WRITE_APPEND : 0;
	if (sfs_wire_kill_suidgid())
		flags |= kill_flags(req, ino);
	ssize_t n = settfs_write(fs_of(req), ino, off, buf, size, flags);
	if (flags & SETTFS_WRITE_KILL_SUIDGID)
		mode_changed(req, ino);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (n > 0 && !fi->writepage && (fi->flags & O_DIRECT) &&
		 __atomic_load_n(&ctx_of(req)->wire.async_dio, __ATOMIC_ACQUIRE))
		/* past the page cache: the kernel may hold older bytes (fuse_inval.h) */
		inval_then(req, ino, (uint64_t)off, (uint64_t)n, 1, reply_written, (uint64_t)n, 0);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -settfs_flush(fs_of(req), ino));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -settfs_release(fs_of(req), ino, fi->flags));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -settfs_fsync(fs_of(req), ino, datasync));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	settfs_dir *d;
	int r = settfs_opendir(fs_of(req), ino, &d);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	settfs *fs = fs_of(req);
	if (fuse_reply_open(req, fi) == -ENOENT)
		settfs_releasedir(fs, d);
}

struct dirbuf {
	fuse_req_t req;
	char *p;
	size_t size, used;
	int plus;
	double entry_timeout, attr_timeout;
};

static int fill_dir(void *arg, const char *name, const struct stat *st, off_t next)
{
	struct dirbuf *b = arg;
	size_t need;
	if (b->plus) {
		struct fuse_entry_param e;
		memset(&e, 0, sizeof e);
		int dot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
		e.ino = dot ? 0 : st->st_ino;
		e.attr = *st;
		e.attr_timeout = b->attr_timeout;
		e.entry_timeout = b->entry_timeout;
		need = fuse_add_direntry_plus(b->req, b->p + b->used, b->size - b->used, name, &e,
					      next);
	} else {
		need = fuse_add_direntry(b->req, b->p + b->used, b->size - b->used, name, st, next);
	}
	if (need > b->size - b->used)
		return 1;
	b->used += need;
	return 0;
}

static void do_readdir(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi,
		       int plus)
{
	struct dirbuf b = { req, malloc(size ? size : 1), size, 0, plus,
			    ctx_of(req)->cfg->entry_timeout, ctx_of(req)->cfg->attr_timeout };
	if (!b.p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	settfs_dir *d = (settfs_dir *)(uintptr_t)fi->fh;
	int r = settfs_readdir(fs_of(req), d, off, plus, fill_dir, &b);
	if (r && b.used == 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, b.p, b.used);
	free(b.p);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	settfs_releasedir(fs_of(req), (settfs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -settfs_fsyncdir(fs_of(req), ino, datasync));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int r = settfs_statfs(fs_of(req), &sv);
	if (r)
		fuse_reply_err(req, -r);
	else
		fuse_reply_statfs(req, &sv);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	/* without FUSE_POSIX_ACL the kernel would not enforce them: refused */
	if (!ctx_of(req)->acl && strncmp(name, "system.posix_acl_", 17) == 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	flags &= XATTR_CREATE | XATTR_REPLACE;
	if (sfs_wire_acl_kill_sgid())
		flags |= SETTFS_XATTR_KILL_SGID;
	fuse_reply_err(req, -settfs_setxattr(fs_of(req), ino, name, value, size, flags));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* `getfattr -n settfs.stats MNT`: the text of `settfs status` */
	struct sfs_fuse *f = ctx_of(req);
	ssize_t n = ino == FUSE_ROOT_ID && f->control && !strcmp(name, "settfs.stats")
			    ? sfs_control_xattr(f->control, fuse_req_ctx(req)->uid, buf, size)
			    : settfs_getxattr(fs_of(req), ino, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = settfs_listxattr(fs_of(req), ino, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -settfs_removexattr(fs_of(req), ino, name));
}

/*
 * FUSE_FALLOCATE carries no kill flag and the kernel clears nothing
 * itself: as for a write, a caller without CAP_FSETID (taken to be every
 * uid but 0) clears set-user-ID/set-group-ID.
 */
static unsigned fallocate_flags(fuse_req_t req, fuse_ino_t ino)
{
	return fuse_req_ctx(req)->uid != 0 ? kill_flags(req, ino) : 0;
}

/*
 * COLLAPSE_RANGE / INSERT_RANGE (Linux 6.18's FUSE client refuses both
 * before sending them; this is for one that does not).  They move every
 * byte from off to the end of file, so the kernel's pages there must go:
 * the range is invalidated before (which writes dirty pages back, into
 * the buffers the move commits first), the move runs on the invalidation
 * thread, and the range is invalidated again (pages read meanwhile hold
 * the old bytes) before the reply.
 */
static void move_then_reply(fuse_req_t req, uint64_t ino, uint64_t off, uint64_t len, int mode)
{
	unsigned flags = fallocate_flags(req, ino);
	int r = settfs_fallocate(fs_of(req), ino, mode, (off_t)off, (off_t)len, flags);
	if (!ctx_of(req)->stopping)
		fuse_lowlevel_notify_inval_inode(ctx_of(req)->se, ino, (off_t)off, 0);
	if (flags)
		mode_changed(req, ino);
	fuse_reply_err(req, -r);
}

static void collapse_then_reply(fuse_req_t req, uint64_t ino, uint64_t off, uint64_t len)
{
	move_then_reply(req, ino, off, len, FALLOC_FL_COLLAPSE_RANGE);
}

static void insert_then_reply(fuse_req_t req, uint64_t ino, uint64_t off, uint64_t len)
{
	move_then_reply(req, ino, off, len, FALLOC_FL_INSERT_RANGE);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	if ((mode == FALLOC_FL_COLLAPSE_RANGE || mode == FALLOC_FL_INSERT_RANGE) && off >= 0 &&
	    len > 0) {
		inval_then(req, ino, (uint64_t)off, 0, 0,
			   mode == FALLOC_FL_COLLAPSE_RANGE ? collapse_then_reply : insert_then_reply,
			   (uint64_t)off, (uint64_t)len);
		return;
	}
	/*
	 * FUSE_FALLOCATE carries no kill flag and the kernel clears nothing
	 * itself: as for a write, a caller without CAP_FSETID (taken to be
	 * every uid but 0) clears set-user-ID/set-group-ID.  The kernel
	 * expires only size, times and blocks after a fallocate: the mode too.
	 */
	unsigned flags = fallocate_flags(req, ino);
	int r = settfs_fallocate(fs_of(req), ino, mode, off, len, flags);
	if (flags)
		mode_changed(req, ino);
	fuse_reply_err(req, -r);
}

static void reply_lseek(fuse_req_t req, uint64_t ino, uint64_t off, uint64_t whence)
{
	off_t r = settfs_lseek(fs_of(req), ino, (off_t)off, (int)whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

/*
 * The kernel does not write its dirty pages back before LSEEK.  It can
 * hold some only while the file has a writable handle (settfs_fill_token
 * says -EBUSY): then the reply waits until the range from off on has been
 * invalidated, which writes them back (fuse_inval.h).
 */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	(void)fi;
	uint64_t token, size;
	if (off >= 0 && (whence == SEEK_DATA || whence == SEEK_HOLE) &&
	    settfs_fill_token(fs_of(req), ino, &token, &size) == -EBUSY)
		inval_then(req, ino, (uint64_t)off, 0, 0, reply_lseek, (uint64_t)off,
			   (uint64_t)whence);
	else
		reply_lseek(req, ino, (uint64_t)off, (uint64_t)whence);
}

static const struct fuse_lowlevel_ops sfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
};

/* ---- the mount in sysfs ------------------------------------------------ */

/* The mount's device number.  0 if found. */
static int mount_dev(const char *mountpoint, unsigned *maj, unsigned *min)
{
	char *mp = realpath(mountpoint, NULL);
	struct sfs_mount_ent *m = malloc(sizeof *m);
	int r = mp && m ? sfs_mount_find(mp, NULL, m) : -1;
	if (r == 0) {
		*maj = m->maj;
		*min = m->min;
	}
	free(m);
	free(mp);
	return r;
}

/* Best effort: a daemon that may not write sysfs leaves the kernel's value. */
static void sysfs_write(const char *path, long value)
{
	FILE *f = value < 0 ? NULL : fopen(path, "w");
	if (f) {
		fprintf(f, "%ld\n", value);
		fclose(f);
	}
}

/*
 * This daemon's FUSE connection, found once at INIT (the kernel has made
 * the mount by then): its number names it in fusectl
 * (/sys/fs/fuse/connections/N, N the superblock's device number) and the
 * mount's bdi (/sys/class/bdi/MAJ:MIN).  The kernel states it for the
 * /dev/fuse descriptor ("fuse_connection:" in /proc/self/fdinfo, Linux
 * 6.x), whichever way the daemon got it: mounted itself, or handed a
 * mounted descriptor as "/dev/fd/N" (mount.fuse3 -o drop_privileges).
 * Without that line it is the device of the mount found by its mount
 * point or, for /dev/fd/N, by its source "settfs:STORE", which its
 * mounter must have set as fsname (mount.settfs does).
 */
struct sfs_conn {
	const char *mountpoint; /* as given: a path, or /dev/fd/N */
	const char *source;     /* "settfs:STORE" */
	const struct sfs_cfg *cfg;
	int fd;                 /* the session's /dev/fuse descriptor */
	int found;
	unsigned maj, min;
};

/* The connection of /dev/fuse descriptor fd, from its fdinfo.  0 if stated. */
static int fdinfo_conn(int fd, unsigned *maj, unsigned *min)
{
	char p[64], line[128];
	snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(p, "re");
	int r = -1;
	unsigned long dev;
	while (f && r && fgets(line, sizeof line, f))
		if (sscanf(line, "fuse_connection: %lu", &dev) == 1) {
			*maj = (unsigned)(dev >> 20);
			*min = (unsigned)(dev & 0xfffff);
			r = 0;
		}
	if (f)
		fclose(f);
	return r;
}

static int conn_is_devfd(const struct sfs_conn *c)
{
	int fd;
	return sscanf(c->mountpoint, "/dev/fd/%d", &fd) == 1;
}

/*
 * Fail every request the kernel still has for this mount (its connection's
 * "abort" in fusectl): the way out for a push that waits on a READ no one
 * will answer.
 */
static void abort_connection(void *arg)
{
	const struct sfs_conn *c = arg;
	char p[128];
	if (!c->found)
		return;
	snprintf(p, sizeof p, "/sys/fs/fuse/connections/%u/abort", (c->maj << 20) | c->min);
	sysfs_write(p, 1);
}

/*
 * Two limits of the kernel's defaults for a FUSE mount, raised for this
 * one (in /sys/class/bdi/MAJ:MIN) when the daemon runs as root:
 * - dirty pages: at most 1% of the kernel's dirty page limit (strictlimit,
 *   max_ratio 1), a protection against daemons that cannot be trusted
 *   with memory.  Past it, writers wait for every page to make its round
 *   trip and the writeback cache hardly merges anything: random 4 KiB
 *   writes run at the daemon's per-request rate.  The global limits
 *   (vm.dirty_ratio) still hold.
 * - readahead: 128 KiB, while one READ may carry 1 MiB (max_write/
 *   max_pages): sequential reads make 8x the round trips they need.
 * Called after INIT: the kernel sets the readahead from the INIT reply.
 */
static void tune_bdi(const struct sfs_conn *c)
{
	char p[128];
	snprintf(p, sizeof p, "/sys/class/bdi/%u:%u/max_ratio", c->maj, c->min);
	sysfs_write(p, c->cfg->dirty_ratio > 100 ? 100 : c->cfg->dirty_ratio);
	snprintf(p, sizeof p, "/sys/class/bdi/%u:%u/read_ahead_kb", c->maj, c->min);
	sysfs_write(p, c->cfg->readahead_kb);
}

/* After the INIT reply: find the mount, then tune it. */
static void conn_init(void *arg)
{
	struct sfs_conn *c = arg;
	struct sfs_mount_ent *m = malloc(sizeof *m);
	c->found = fdinfo_conn(c->fd, &c->maj, &c->min) == 0;
	if (!conn_is_devfd(c)) {
		if (!c->found)
			c->found = mount_dev(c->mountpoint, &c->maj, &c->min) == 0;
	} else if (m && sfs_mount_find(NULL, c->source, m) == 0) {
		if (!c->found) {
			c->maj = m->maj;
			c->min = m->min;
			c->found = 1;
		}
	} else {
		fprintf(stderr, "settfs: the mount of %s is not named %s (its mounter must set "
				"fsname=%s): `settfs umount` will not find it\n", c->mountpoint,
			c->source, c->source);
	}
	free(m);
	if (c->found)
		tune_bdi(c);
}

/* ---- stopping the helper threads ------------------------------------ */

struct stopper {
	sfs_filler *filler;
	sfs_inval *inval;
	struct sfs_conn *conn;
	int done[2]; /* a pipe: written when both have stopped (or given up) */
	int stuck;
};

static void *stopper_main(void *arg)
{
	struct stopper *s = arg;
	s->stuck = sfs_filler_stop(s->filler, abort_connection, s->conn) != 0;
	s->stuck |= sfs_inval_stop(s->inval, abort_connection, s->conn) != 0;
	char c = 1;
	while (write(s->done[1], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/*
 * Until stop_fd is readable, answer what the kernel still sends (the
 * session loop has ended, by a signal, while the mount is there): a push
 * or an invalidation being stopped may wait for a READ, or the writeback
 * of dirty pages, that only an answer ends.  Ends serving when the
 * connection goes.
 */
static void serve_until(struct fuse_session *se, int stop_fd)
{
	struct fuse_buf buf;
	memset(&buf, 0, sizeof buf);
	int serving = 1;
	fuse_session_reset(se);
	for (;;) {
		struct pollfd pf[2] = { { stop_fd, POLLIN, 0 }, { fuse_session_fd(se), POLLIN, 0 } };
		if (poll(pf, serving ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents)
			break;
		if (!(pf[1].revents & POLLIN)) {
			serving = !pf[1].revents;
			continue;
		}
		int r = fuse_session_receive_buf(se, &buf);
		if (r > 0)
			fuse_session_process_buf(se, &buf);
		else if (r != -EINTR && r != -EAGAIN)
			serving = 0; /* unmounted, aborted, or a second signal */
	}
	free(buf.mem);
}

/*
 * Stop the filler and the invalidation thread while this thread answers
 * requests (without pushes or invalidations meanwhile: sfs_fuse.stopping).
 * 1 if one of them is stuck: then the session and the store's nodes must
 * stay as they are (sfs_filler_stop).
 */
static int stop_helpers(struct sfs_fuse *f, struct sfs_conn *conn)
{
	struct stopper s = { f->filler, f->inval, conn, { -1, -1 }, 0 };
	if (!s.filler && !s.inval)
		return 0;
	f->filler = NULL;
	f->inval = NULL;
	f->stopping = 1;
	pthread_t t;
	int started = pipe2(s.done, O_CLOEXEC) == 0;
	if (started && pthread_create(&t, NULL, stopper_main, &s) != 0) {
		close(s.done[0]);
		close(s.done[1]);
		started = 0;
	}
	if (!started) { /* stop them here, answering nothing meanwhile */
		int a = sfs_filler_stop(s.filler, abort_connection, conn);
		return sfs_inval_stop(s.inval, abort_connection, conn) || a;
	}
	serve_until(f->se, s.done[0]);
	pthread_join(t, NULL);
	close(s.done[0]);
	close(s.done[1]);
	return s.stuck;
}

/* After the INIT reply: the mount, then the io_uring queues. */
static void after_init(void *arg)
{
	struct sfs_fuse *f = arg;
	conn_init(f->conn);
	if (f->wire.uring)
		sfs_uring_go(f->uring);
}

/* ---- bounded-time writeback ------------------------------------------ */

/*
 * The kernel sends no request for sync(2) or syncfs(2) (FUSE_SYNCFS only
 * reaches virtiofs servers), so nothing tells the daemon to write its
 * buffers out.  Instead a thread calls settfs_writeback() a few times per
 * expiry period: what the daemon holds is committed within about
 * dirty_expire seconds and durable within about twice that.
 */
struct sfs_flusher {
	settfs *fs;
	unsigned age_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
};

static void *flusher_main(void *arg)
{
	struct sfs_flusher *w = arg;
	unsigned tick_ms = w->age_ms / 5;
	if (tick_ms < 100)
		tick_ms = 100;
	if (tick_ms > 1000)
		tick_ms = 1000;
	int last = 0;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)(tick_ms % 1000) * 1000000;
		ts.tv_sec += tick_ms / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == 0 || w->stop)
			continue;
		pthread_mutex_unlock(&w->lock);
		int r = settfs_writeback(w->fs, w->age_ms);
		if (r && r != last) /* once per kind: a failed store fails every tick */
			fprintf(stderr, "settfs: background writeback: %s\n", strerror(-r));
		last = r;
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static struct sfs_flusher *flusher_start(settfs *fs, double seconds)
{
	if (seconds <= 0)
		return NULL;
	struct sfs_flusher *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->fs = fs;
	w->age_ms = seconds * 1000 > 86400000 ? 86400000 : (unsigned)(seconds * 1000);
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->thread, NULL, flusher_main, w) != 0) {
		fprintf(stderr, "settfs: no background writeback thread\n");
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

static void flusher_stop(struct sfs_flusher *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* ---- io_uring ------------------------------------------------------- */

/*
 * Requests through io_uring queues where the kernel offers them
 * (fuse_uring.h), from the INIT reply on, unless -o no_io_uring.  With
 * -o io_uring a kernel that does not offer them gets a line on stderr,
 * as does, always, a failure to set the queues up.  Not with -s: the
 * queues have threads of their own.
 */
static void uring_setup(struct sfs_fuse *f, int singlethread)
{
	int asked = f->cfg->io_uring > 0;
	if (f->cfg->io_uring == 0)
		return; /* -o no_io_uring */
	if (singlethread) {
		if (asked)
			fprintf(stderr, "settfs: io_uring is not used with -s; requests go "
					"through /dev/fuse\n");
		return;
	}
	char why[256];
	f->uring = sfs_uring_new(f->se, fuse_session_fd(f->se), &f->wire,
				 f->cfg->threads ? f->cfg->threads : 10, !asked, why, sizeof why);
	if (!f->uring) {
		if (asked)
			fprintf(stderr, "settfs: io_uring: %s; requests go through /dev/fuse\n",
				why);
		return;
	}
	f->wire.uring_prepare = sfs_uring_prepare;
	f->wire.uring_reply = sfs_uring_reply;
	f->wire.uring_arg = f->uring;
	f->wire.want_uring = 1;
}

static void uring_free(struct sfs_fuse *f)
{
	if (!f->uring)
		return;
	sfs_uring_stop(f->uring, NULL, NULL); /* a no-op after the loop's stop */
	__atomic_store_n(&f->wire.uring, 0, __ATOMIC_RELEASE);
	sfs_uring_free(f->uring);
	f->uring = NULL;
}

/* ---- command line ---------------------------------------------------- */

#define SFS_OPT(t, p, v) { t, offsetof(struct sfs_cfg, p), v }
enum { KEY_RO = 1, KEY_RW, KEY_SUID, KEY_NOSUID, KEY_DEV, KEY_NODEV };

static const struct fuse_opt sfs_opts[] = {
	SFS_OPT("sync_writes", sync_writes, 1),
	SFS_OPT("value_threshold=%zu", value_threshold, 0),
	SFS_OPT("mem_table_size=%zu", mem_table_size, 0),
	SFS_OPT("chunk_size=%u", chunk_size, 0),
	SFS_OPT("timeout=%lf", entry_timeout, 0),
	SFS_OPT("timeout=%lf", attr_timeout, 0),
	SFS_OPT("entry_timeout=%lf", entry_timeout, 0),
	SFS_OPT("attr_timeout=%lf", attr_timeout, 0),
	SFS_OPT("writeback_cache", writeback, 1),
	SFS_OPT("no_writeback_cache", writeback, 0),
	SFS_OPT("threads=%u", threads, 0),
	SFS_OPT("clone_fd", clone_fd, 1),
	SFS_OPT("dirty_ratio=%d", dirty_ratio, 0),
	SFS_OPT("readahead_kb=%d", readahead_kb, 0),
	SFS_OPT("readdirplus_auto", readdirplus_auto, 1),
	SFS_OPT("nofill", nofill, 1),
	SFS_OPT("noacl", noacl, 1),
	SFS_OPT("nosnapdir", nosnapdir, 1),
	SFS_OPT("reserve=%s", reserve, 0),
	SFS_OPT("compression=%s", compression, 0),
	SFS_OPT("dirty_expire=%lf", dirty_expire, 0),
	SFS_OPT("io_uring", io_uring, 1),
	SFS_OPT("no_io_uring", io_uring, 0),
	SFS_OPT("key_file=%s", key_file, 0),
	SFS_OPT("passphrase_file=%s", pass_file, 0),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("suid", KEY_SUID),
	FUSE_OPT_KEY("allow_suid", KEY_SUID),
	FUSE_OPT_KEY("nosuid", KEY_NOSUID),
	FUSE_OPT_KEY("dev", KEY_DEV),
	FUSE_OPT_KEY("allow_dev", KEY_DEV),
	FUSE_OPT_KEY("nodev", KEY_NODEV),
	SFS_OPT("-h", show_help, 1),
	SFS_OPT("--help", show_help, 1),
	SFS_OPT("-V", show_version, 1),
	SFS_OPT("--version", show_version, 1),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct sfs_cfg *c = data;
	if (key == KEY_RO || key == KEY_RW)
		c->ro = key == KEY_RO; /* and the kernel mounts it so */
	/* the last of suid/nosuid and of dev/nodev counts (main hands it on
	 * after the parse); allow_suid and allow_dev are suid and dev under
	 * names mount(8) passes on (it hands a helper neither: its defaults) */
	if (key == KEY_SUID || key == KEY_NOSUID) {
		c->suid = key == KEY_SUID;
		return 0;
	}
	if (key == KEY_DEV || key == KEY_NODEV) {
		c->dev = key == KEY_DEV;
		return 0;
	}
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (c->nonopts++ == 0) {
		/* settfs:/STORE, the mount's source in /proc/mounts, names STORE */
		if (strncmp(arg, "settfs:/", 8) == 0)
			arg += 7;
		c->store = strdup(arg);
		return 0; /* keep STORE out of the FUSE arguments */
	}
	return 1;
}

/* settfs(8) and settfs(5) (man/) document the same options: tests/man.sh checks. */
static void usage(void)
{
	printf("usage: settfs [options] STORE MOUNTPOINT\n"
	       "       settfs umount [-t SECONDS] MOUNTPOINT\n"
	       "       settfs status [--json] MOUNTPOINT\n"
	       "       settfs snapshot create|delete MOUNTPOINT NAME\n"
	       "       settfs snapshot list [--space] MOUNTPOINT\n"
	       "       settfs rollback [--key-file F | --passphrase-file F] STORE NAME\n"
	       "       settfs send [-v] [-i FROM] MOUNTPOINT NAME > FILE\n"
	       "       settfs receive [-v] [--key-file F | --passphrase-file F] STORE < FILE\n"
	       "       settfs scrub [-n|--no-wait] [-r|--rate MB/s] [--status] MOUNTPOINT\n\n"
	       "Mount the settfs filesystem kept in the sett store directory STORE\n"
	       "at MOUNTPOINT.  A missing or empty STORE directory is made a new filesystem\n"
	       "(a missing one with mode 0700); a non-empty one that holds no store is\n"
	       "refused.  A store mounted by another daemon is refused at once; one still\n"
	       "being released is waited for (30 s).\n"
	       "`settfs umount` unmounts and returns once the daemon has flushed and\n"
	       "released the store (exit 0; 1: not a settfs mount; 2: unmount failed;\n"
	       "3: still held after SECONDS, default 60).\n"
	       "`settfs status` shows the live figures of a mounted store (root and the\n"
	       "mount's owner only; exit 0; 1: not a settfs mount; 2: refused or no answer).\n"
	       "`settfs snapshot` takes, lists and deletes snapshots of a mounted store\n"
	       "(also: mkdir/rmdir MOUNTPOINT/.snapshots/NAME); they are browsable read-only\n"
	       "at MOUNTPOINT/.snapshots/NAME.  `settfs rollback` makes an unmounted store's\n"
	       "filesystem what a snapshot holds (its snapshots are kept).\n"
	       "`settfs send` writes a stream of snapshot NAME (-i: only the changes since\n"
	       "snapshot FROM) of a mounted filesystem; `settfs receive` verifies a stream\n"
	       "whole, then applies it to an unmounted (or new) STORE and recreates the\n"
	       "snapshot there (exit 0; 1: usage; 2: refused or failed).\n"
	       "`settfs scrub` reads and verifies every checksum of a mounted store in the\n"
	       "background (at most 64 MB/s by default) and names the damaged files; it\n"
	       "shows progress until it ends, or with --no-wait returns at once; --status\n"
	       "shows the running or last scrub (root and the mount's owner only; exit 0:\n"
	       "clean; 1: damage found; 2: failed, refused or not a settfs mount).\n\n"
	       "general options:\n"
	       "    -h, --help               print this help\n"
	       "    -V, --version            print the version (then libfuse's)\n"
	       "    -f                       stay in the foreground\n"
	       "    -d, -o debug             print every FUSE request (implies -f)\n"
	       "    -s                       serve requests in one thread\n\n"
	       "settfs options:\n"
	       "    -o ro                    mount read-only; the store is opened read-only\n"
	       "    -o sync_writes           make every commit durable before replying\n"
	       "    -o value_threshold=N     values of N bytes or more go to the value log (2048)\n"
	       "    -o mem_table_size=N      engine memtable size in bytes (64 MiB)\n"
	       "    -o chunk_size=N          data chunk size of a new store (65536)\n"
	       "    -o timeout=S             entry and attribute cache timeout in seconds\n"
	       "    -o entry_timeout=S       entry cache timeout (86400: changes are announced)\n"
	       "    -o attr_timeout=S        attribute cache timeout (86400)\n"
	       "    -o no_writeback_cache    do not let the kernel buffer writes\n"
	       "    -o threads=N             maximum worker threads (10)\n"
	       "    -o clone_fd              one /dev/fuse descriptor per thread\n"
	       "    -o dirty_ratio=N         share of the kernel's dirty page limit, in percent,\n"
	       "                             this mount may hold (50; -1 keeps FUSE's 1%%)\n"
	       "    -o readahead_kb=N        kernel readahead of this mount (1024; -1 keeps 128)\n"
	       "    -o readdirplus_auto      let the kernel choose plain READDIR after the first\n"
	       "                             call of a directory listing (default: always plus)\n"
	       "    -o nofill                do not push the rest of a chunk read for a small\n"
	       "                             READ into the kernel's page cache\n"
	       "    -o noacl                 no POSIX ACLs (setting one fails with EOPNOTSUPP)\n"
	       "    -o nosnapdir             no /.snapshots directory (the snapshot commands\n"
	       "                             still work)\n"
	       "    -o compression=none|zstd[:LEVEL]\n"
	       "                             how data written from now on is stored (zstd\n"
	       "                             level 1..19, 3); kept in the store for later\n"
	       "                             mounts (default: the store's setting)\n"
	       "    -o reserve=SIZE          disk space kept free for deletes and GC: writes\n"
	       "                             fail with ENOSPC below it (bytes, or K, M, G;\n"
	       "                             default 2%% of the disk, 32 MiB..1 GiB, <= 1/8)\n"
	       "    -o dirty_expire=S        commit writes buffered for S seconds, and make\n"
	       "                             commits durable every S seconds (5; 0: never)\n"
	       "    -o io_uring              serve requests through io_uring queues when the\n"
	       "                             kernel offers them (Linux 6.14, fuse module\n"
	       "                             parameter enable_uring=1), else /dev/fuse; the\n"
	       "                             default, but silent (-o io_uring says why not)\n"
	       "    -o no_io_uring           always /dev/fuse\n"
	       "    -o key_file=F            the store is encrypted with the master key in F\n"
	       "                             (32 bytes or 64 hex digits; F: mode 0600 or\n"
	       "                             stricter, else refused); a new store is made so\n"
	       "    -o passphrase_file=F     the same with the passphrase on F's first line\n\n"
	       "mount options (passed to the kernel or libfuse):\n"
	       "    -o nosuid,nodev          the default, as mount.settfs gives it too;\n"
	       "    -o suid, -o dev          allow set-user-ID files and devices (root only)\n"
	       "    -o allow_suid,allow_dev  the same, as mount(8) and fstab must spell them\n"
	       "    -o allow_other           allow access by all users (see fuse(8))\n"
	       "    -o allow_root            allow access by root\n"
	       "    -o auto_unmount          unmount when the daemon ends\n"
	       "    -o max_idle_threads=N    idle worker threads kept (libfuse's default)\n\n"
	       "See settfs(8) and settfs(5).\n");
}

/* "123", "64K", "32M", "2G" (powers of 1024) -> bytes. */
static int parse_size(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno)
		return -1;
	int shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end || v > ((unsigned long long)INT64_MAX >> shift))
		return -1;
	*out = (int64_t)(v << shift);
	return 0;
}

/* Table files the engine could not account for are kept in STORE/quarantine. */
static void warn_quarantine(const char *store)
{
	char q[4200];
	snprintf(q, sizeof q, "%s/quarantine", store);
	DIR *d = opendir(q);
	if (!d)
		return;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	if (n)
		fprintf(stderr, "settfs: %s holds %d file%s the store could not account for; "
				"they are not used (see fsck.settfs)\n", q, n, n == 1 ? "" : "s");
}

/*
 * A read met damage: say where (the store file and offset), on stderr in
 * the foreground and to syslog (a daemon's stderr is /dev/null).  The same
 * message again in a row is said once.
 */
static void log_corruption(void *arg, const char *why)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static char last[512];
	(void)arg;
	pthread_mutex_lock(&mu);
	if (strcmp(last, why) != 0) {
		snprintf(last, sizeof last, "%s", why);
		fprintf(stderr, "settfs: damaged data, read fails with EIO: %s\n", why);
		syslog(LOG_ERR, "damaged data, read fails with EIO: %s", why);
	}
	pthread_mutex_unlock(&mu);
}

/*
 * Opens the store.  Held by a daemon still mounted (a settfs mount of the
 * store is in mountinfo): fails at once, naming it.  Held otherwise (a
 * daemon that was unmounted and is still flushing, or a `sett` or
 * fsck.settfs run): waits up to 30 s for it to be released, so "umount &&
 * mount" works.  `own` is set once this process mounted the store itself.
 */
static int open_store(const char *store, const settfs_options *o, int own, settfs **fs)
{
	int said = 0;
	char src[4200];
	snprintf(src, sizeof src, "settfs:%s", store);
	for (int waited_ms = 0;; waited_ms += 100) {
		o->engine.error_buf[0] = 0;
		int r = settfs_open(store, o, fs);
		struct sfs_mount_ent m;
		if (r == -EBUSY && !own && sfs_mount_find(NULL, src, &m) == 0) {
			fprintf(stderr, "settfs: %s is in use: mounted at %s by pid %ld\n", store,
				m.mountpoint, sett_lock_holder(store));
			return r;
		}
		if (r == -EKEYREJECTED) {
			int keyed = o->engine.encryption_key || o->engine.encryption_passphrase;
			fprintf(stderr, "settfs: cannot open store %s: %s\n", store, key_refused(keyed));
			if (o->engine.error_buf[0])
				fprintf(stderr, "settfs: %s\n", o->engine.error_buf);
			if (!keyed)
				fprintf(stderr, "settfs: give its key with -o key_file=F or "
						"-o passphrase_file=F\n");
			return r;
		}
		if (r && (r != -EBUSY || waited_ms >= 30000)) {
			fprintf(stderr, "settfs: cannot open store %s: %s\n", store,
				o->engine.error_buf[0] ? o->engine.error_buf : strerror(-r));
			if (r == -EIO)
				fprintf(stderr, "settfs: nothing was changed; `fsck.settfs %s` "
						"reports what the store holds\n", store);
		}
		if (r == 0)
			warn_quarantine(store);
		if (r == 0 && settfs_degraded(*fs) && !o->engine.open_damaged)
			fprintf(stderr, "settfs: %s is damaged: %s\n"
					"settfs: mounting it read-only: what is undamaged reads as "
					"written, damaged data fails with EIO; `fsck.settfs %s` "
					"reports what is lost\n",
				store, o->engine.error_buf[0] ? o->engine.error_buf : "corrupt", store);
		if (r != -EBUSY || waited_ms >= 30000)
			return r;
		/* a release that takes a moment (umount; mount) is waited for silently */
		if (waited_ms >= 2000 && !said++)
			fprintf(stderr, "settfs: %s is in use by pid %ld (not mounted), waiting up to "
					"30 s for it to be released\n", store, sett_lock_holder(store));
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/*
 * Closes the descriptors above stderr this process inherited (say, the
 * lock of `flock FILE settfs ...`, which the daemon would otherwise hold
 * until unmount) except `keep`, a /dev/fuse descriptor handed over as
 * the mountpoint /dev/fd/N.  Every one, however high: close_range(2), or
 * where the kernel lacks it, each one /proc/self/fd lists.
 */
static void close_inherited(int keep)
{
	int lo = 3;
	if (keep >= lo && close_range((unsigned)lo, (unsigned)keep - 1, 0) == 0 &&
	    close_range((unsigned)keep + 1, ~0u, 0) == 0)
		return;
	if (keep < lo && close_range((unsigned)lo, ~0u, 0) == 0)
		return;
	for (;;) {
		DIR *d = opendir("/proc/self/fd");
		if (!d)
			return;
		int fds[256], n = 0;
		struct dirent *de;
		while ((de = readdir(d)) && n < 256) {
			int fd = atoi(de->d_name);
			if (fd >= lo && fd != keep && fd != dirfd(d))
				fds[n++] = fd;
		}
		closedir(d);
		for (int i = 0; i < n; i++)
			close(fds[i]);
		if (n < 256)
			return; /* else list again: there were more */
	}
}

/*
 * settfs umount [-t SECONDS] MOUNTPOINT: unmounts and returns once the
 * daemon has flushed and released the store.  Exit status: 0 done;
 * 1 bad usage, or MOUNTPOINT is not a settfs mount; 2 the unmount failed
 * (busy, not permitted); 3 unmounted, but the store was still held after
 * SECONDS (60), or its LOCK could not be opened to wait on.
 */
static int cmd_umount(int argc, char **argv)
{
	double secs = 60;
	int i = 2;
	if (i + 1 < argc && strcmp(argv[i], "-t") == 0) {
		char *end;
		secs = strtod(argv[i + 1], &end);
		if (*end || secs < 0) {
			fprintf(stderr, "settfs umount: bad -t %s (seconds)\n", argv[i + 1]);
			return 1;
		}
		i += 2;
	}
	int help = i + 1 == argc && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"));
	if (!help && i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-t") == 0)
			fprintf(stderr, "settfs umount: option '-t' needs a value (seconds)\n");
		else
			fprintf(stderr, "settfs umount: unknown option '%s' (see --help)\n", argv[i]);
		return 1;
	}
	if (help || i + 1 != argc) {
		fprintf(help ? stdout : stderr, "usage: settfs umount [-t SECONDS] MOUNTPOINT\n");
		return !help;
	}
	const char *arg = argv[i];
	char *mp = realpath(arg, NULL);
	struct sfs_mount_ent m;
	if (!mp || sfs_mount_find(mp, NULL, &m) != 0 || strncmp(m.source, "settfs:", 7) != 0) {
		fprintf(stderr, "settfs umount: %s: not a settfs mount\n", arg);
		free(mp);
		return 1;
	}
	const char *store = m.source + 7;
	unsigned maj = m.maj, min = m.min;
	char lock[4200];
	snprintf(lock, sizeof lock, "%s/LOCK", store);
	int fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "settfs umount: %s: %s; the release cannot be waited for\n", lock,
			strerror(errno));
	long pid = sett_lock_holder(store);
	int r;
	if (geteuid() == 0) {
		r = umount2(mp, 0) == 0 ? 0 : -errno;
		if (r)
			fprintf(stderr, "settfs umount: %s: %s\n", arg, strerror(-r));
	} else {
		pid_t c = fork();
		if (c == 0) {
			execlp("fusermount3", "fusermount3", "-u", "--", mp, (char *)NULL);
			fprintf(stderr, "settfs umount: fusermount3: %s\n", strerror(errno));
			_exit(127);
		}
		int st = 0;
		r = c < 0 || waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? -1 : 0;
	}
	/* another mount of the filesystem (a bind mount) keeps the daemon serving */
	if (r == 0 && sfs_mount_find(NULL, NULL, &m) == 0) {
		if (fd >= 0)
			close(fd);
		free(mp);
		return 0;
	}
	if (r == 0 && fd < 0)
		r = 3;
	/*
	 * The last unmount ends the FUSE connection, at once or as soon as the
	 * last deferred reference to the mount goes (moments: with io_uring
	 * queues it was seen still there right after umount2 returned).  Still
	 * there after a grace period while the store is held: a mount
	 * namespace made while it was mounted holds a copy of the mount, which
	 * the daemon goes on serving (and so holds the store) until that copy
	 * is unmounted too.
	 */
	char conn[64];
	snprintf(conn, sizeof conn, "/sys/fs/fuse/connections/%u", (maj << 20) | min);
	const double grace = secs < 2 ? secs : 2;
	for (double waited = 0; r == 0; waited += 0.05) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			flock(fd, LOCK_UN);
			break; /* released */
		}
		if (waited >= grace && access(conn, F_OK) == 0) {
			fprintf(stderr, "settfs umount: %s is unmounted here, but the filesystem is "
					"still mounted elsewhere (a copy in another mount namespace, or "
					"a lazily detached mount still in use; FUSE connection %u): pid "
					"%ld goes on serving it and holds %s until the last copy is "
					"unmounted\n", arg, (maj << 20) | min, pid, store);
			r = 3;
		} else if (waited >= secs) {
			fprintf(stderr, "settfs umount: %s is unmounted, but pid %ld still holds %s "
					"after %g s (still flushing?)\n", arg, pid, store, secs);
			r = 3;
		} else {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	if (fd >= 0)
		close(fd);
	free(mp);
	return r == 0 ? 0 : r == 3 ? 3 : 2;
}

/*
 * Test-only power cut (tests/integration/powercut.sh): with
 * SETTFS_TEST_POWERCUT_FIFO=PATH in the environment, a thread waits for a
 * byte on that FIFO, then drops every byte the engine has not fsynced
 * (sio_fault_powercut: each file is cut to its last fsynced length) and
 * kills the daemon at once, as a power cut would: no reply is sent and
 * nothing buffered is flushed.
 */
static void *powercut_thread(void *arg)
{
	const char *path = arg;
	for (;;) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return NULL;
		char c;
		ssize_t k = read(fd, &c, 1);
		close(fd);
		if (k == 1)
			break;
	}
	sio_fault_powercut();
	kill(getpid(), SIGKILL);
	return NULL;
}

static void powercut_arm(void)
{
	const char *path = getenv("SETTFS_TEST_POWERCUT_FIFO");
	pthread_t t;
	if (!path || !*path)
		return;
	sio_fault_powercut_arm();
	if (pthread_create(&t, NULL, powercut_thread, (void *)path) == 0)
		pthread_detach(t);
}

static int log_no_debug; /* while fuse_options_known asks its throwaway session */

/* libfuse's errors and warnings under this program's name ("fuse: " dropped). */
static void log_fuse(enum fuse_log_level level, const char *fmt, va_list ap)
{
	static int mid_line; /* libfuse writes some lines in pieces */
	char m[2048];
	if (log_no_debug && level == FUSE_LOG_DEBUG)
		return;
	vsnprintf(m, sizeof m, fmt, ap);
	if (level > FUSE_LOG_WARNING || mid_line)
		fputs(m, stderr);
	else
		fprintf(stderr, "settfs: %s", strncmp(m, "fuse: ", 6) == 0 ? m + 6 : m);
	size_t n = strlen(m);
	mid_line = n && m[n - 1] != '\n';
}

/*
 * Are the options left for libfuse and the kernel all known?  Asked of a
 * session that is made and dropped at once, before the store is touched;
 * libfuse names an unknown one.
 */
static int fuse_options_known(const struct fuse_args *args)
{
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	for (int i = 0; i < args->argc; i++)
		if (fuse_opt_add_arg(&copy, args->argv[i]) != 0)
			return 0;
	static const struct fuse_lowlevel_ops none;
	log_no_debug = 1;
	struct fuse_session *se = fuse_session_new(&copy, &none, sizeof none, NULL);
	if (se)
		fuse_session_destroy(se);
	log_no_debug = 0;
	fuse_opt_free_args(&copy);
	return se != NULL;
}

/* The key of -o key_file / passphrase_file, kept until the daemon's own open. */
static key_material store_key;

static void forget_key(settfs_options *o)
{
	key_wipe(&store_key);
	o->engine.encryption_key = NULL;
	o->engine.encryption_passphrase = NULL;
}

/* Frees what main() has parsed so far (and wipes the key); returns ret. */
static int main_done(int ret, struct fuse_args *args, struct sfs_cfg *cfg, char *mountpoint,
		     char *store)
{
	key_wipe(&store_key);
	free(store);
	free(mountpoint);
	free(cfg->store);
	free(cfg->reserve);
	free(cfg->compression);
	free(cfg->key_file);
	free(cfg->pass_file);
	fuse_opt_free_args(args);
	return ret;
}


int main(int argc, char *argv[])
{
	fuse_set_log_func(log_fuse);
	if (argc >= 2 && strcmp(argv[1], "umount") == 0)
		return cmd_umount(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return sfs_status_command(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "snapshot") == 0)
		return sfs_snapshot_command(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "rollback") == 0)
		return sfs_rollback_command(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "send") == 0)
		return sfs_send_command(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "receive") == 0)
		return sfs_receive_command(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "scrub") == 0)
		return sfs_scrub_command(argc, argv);
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct sfs_cfg cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.entry_timeout = cfg.attr_timeout = SFS_CACHE_TIMEOUT;
	cfg.writeback = 1;
	cfg.threads = 10;
	cfg.dirty_ratio = 50;
	cfg.readahead_kb = 1024;
	cfg.dirty_expire = 5;
	cfg.io_uring = -1;
	cfg.suid = cfg.dev = -1;
	if (fuse_opt_parse(&args, &cfg, sfs_opts, opt_proc) == -1 ||
	    (cfg.suid >= 0 && fuse_opt_add_arg(&args, cfg.suid ? "-osuid" : "-onosuid")) ||
	    (cfg.dev >= 0 && fuse_opt_add_arg(&args, cfg.dev ? "-odev" : "-onodev")))
		return main_done(1, &args, &cfg, NULL, NULL);
	if (cfg.show_version) {
		printf("settfs %s (sett %s)\nFUSE library version %s\n", SETT_VERSION,
		       SETT_VERSION_STRING, fuse_pkgversion());
		fflush(stdout); /* before what fusermount3 prints itself */
		fuse_lowlevel_version();
		return main_done(0, &args, &cfg, NULL, NULL);
	}
	if (cfg.show_help) {
		usage();
		return main_done(0, &args, &cfg, NULL, NULL);
	}
	struct fuse_cmdline_opts opts;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return main_done(1, &args, &cfg, NULL, NULL);
	if (!cfg.store || !opts.mountpoint) {
		fprintf(stderr, "settfs: need STORE and MOUNTPOINT (see --help)\n");
		return main_done(1, &args, &cfg, opts.mountpoint, NULL);
	}
	if (!fuse_options_known(&args))
		return main_done(1, &args, &cfg, opts.mountpoint, NULL);
	/* before anything is created, and before inherited descriptors
	 * (passphrase_file=/dev/fd/N) are closed */
	if (key_load("settfs", cfg.key_file, cfg.pass_file, &store_key))
		return main_done(1, &args, &cfg, opts.mountpoint, NULL);
	int devfd = -1;
	if (sscanf(opts.mountpoint, "/dev/fd/%d", &devfd) != 1)
		devfd = -1;
	close_inherited(devfd);
	char *store = realpath(cfg.store, NULL);
	if (!store && cfg.ro) {
		fprintf(stderr, "settfs: %s: %s\n", cfg.store, strerror(errno));
		return main_done(1, &args, &cfg, opts.mountpoint, NULL);
	}
	if (!store) {
		/* created on first use */
		store = strdup(cfg.store);
		if (mkdir(store, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "settfs: cannot create store %s: %s\n", store, strerror(errno));
			return main_done(1, &args, &cfg, opts.mountpoint, store);
		}
		free(store);
		store = realpath(cfg.store, NULL);
		if (!store) {
			fprintf(stderr, "settfs: %s: %s\n", cfg.store, strerror(errno));
			return main_done(1, &args, &cfg, opts.mountpoint, NULL);
		}
	}

	settfs_options o;
	settfs_options_init(&o);
	o.engine.sync_writes = cfg.sync_writes;
	o.no_acl = cfg.noacl;
	o.no_snapdir = cfg.nosnapdir;
	o.engine.read_only = cfg.ro;
	if (cfg.ro)
		o.engine.create_if_missing = 0;
	if (cfg.value_threshold)
		o.engine.value_threshold = cfg.value_threshold;
	if (cfg.mem_table_size)
		o.engine.mem_table_size = cfg.mem_table_size;
	if (cfg.chunk_size)
		o.chunk_size = cfg.chunk_size;
	if (cfg.compression) {
		int bad = settfs_parse_compression(cfg.compression, &o) != 0;
		if (bad)
			fprintf(stderr, "settfs: bad -o compression=%s (none, zstd or zstd:LEVEL, "
				"LEVEL 1..19)\n", cfg.compression);
		free(cfg.compression); /* fuse_opt's copy */
		cfg.compression = NULL;
		if (bad)
			return main_done(1, &args, &cfg, opts.mountpoint, store);
	}
	if (cfg.reserve) {
		int bad = parse_size(cfg.reserve, &o.engine.disk_reserve) != 0;
		if (bad)
			fprintf(stderr, "settfs: bad -o reserve=%s (bytes, or a number with K, M or G)\n",
				cfg.reserve);
		free(cfg.reserve); /* fuse_opt's copy */
		cfg.reserve = NULL;
		if (bad)
			return main_done(1, &args, &cfg, opts.mountpoint, store);
	}

	key_apply(&store_key, &o.engine);

	/*
	 * Open once in the foreground so errors reach the terminal; the engine's
	 * threads would not survive the daemon's fork, so it is opened again
	 * after it (the key is wiped once the store is open for good).
	 */
	settfs *fs = NULL;
	char why[1024];
	o.engine.error_buf = why;
	o.engine.error_buf_size = sizeof why;
	o.engine.corruption_fn = log_corruption;
	int r = open_store(store, &o, 0, &fs);
	if (r) {
		forget_key(&o);
		return main_done(1, &args, &cfg, opts.mountpoint, store);
	}
	int degraded = settfs_degraded(fs);
	if (degraded) {
		/* the daemon's own open goes straight to the same state */
		o.engine.read_only = 1;
		o.engine.open_damaged = 1;
	}
	if (!opts.foreground) {
		settfs_close(fs);
		fs = NULL;
	} else {
		forget_key(&o);
	}

	/* default mount options; fsname shows the store in mount/df output */
	char *mo = NULL;
	const char *s;
	size_t len = 0;
	for (s = store; *s; s++)
		len += (*s == ',' || *s == '\\') ? 2 : 1;
	char *esc = malloc(len + 1), *e = esc;
	for (s = store; *s; s++) {
		if (*s == ',' || *s == '\\')
			*e++ = '\\';
		*e++ = *s;
	}
	*e = 0;
	if (asprintf(&mo, "-odefault_permissions,subtype=settfs,fsname=settfs:%s%s", esc,
		     degraded ? ",ro" : "") < 0)
		return 1;
	free(esc);
	fuse_opt_insert_arg(&args, 1, mo);

	char *source = NULL; /* the mount's source in mountinfo */
	if (asprintf(&source, "settfs:%s", store) < 0)
		return 1;
	struct sfs_fuse f = { .fs = fs, .cfg = &cfg, .page_size = (size_t)sysconf(_SC_PAGESIZE) };
	struct fuse_session *se = fuse_session_new(&args, &sfs_ops, sizeof sfs_ops, &f);
	f.se = se;
	int ret = 1;
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	struct sfs_conn conn = { opts.mountpoint, source, &cfg, fuse_session_fd(se), 0, 0, 0 };
	f.conn = &conn;
	f.wire.after_init = after_init;
	f.wire.after_init_arg = &f;
	if (fuse_session_custom_io(se, &wire_io, fuse_session_fd(se)) != 0)
		goto out_unmount;
	uring_setup(&f, opts.singlethread);
	fuse_daemonize(opts.foreground);
	if (!f.fs) {
		key_relock(&store_key); /* the daemon is a forked child */
		r = open_store(store, &o, 1, &f.fs);
		forget_key(&o);
		if (r)
			goto out_unmount;
	}
	powercut_arm();
	/*
	 * Chunks of whole pages only: a push never reaches past a chunk.  Not
	 * with one request thread: a writable open of the file being pushed
	 * waits for the push, which may wait for a READ only that thread
	 * would answer.
	 */
	uint32_t cs = settfs_chunk_size(f.fs);
	if (!cfg.nofill && !opts.singlethread && f.page_size && cs > f.page_size &&
	    cs % f.page_size == 0)
		f.filler = sfs_filler_start(se, f.fs);
	f.inval = sfs_inval_start(se);
	settfs_set_attr_fn(f.fs, attr_changed, &f);
	settfs_set_entry_fn(f.fs, entry_changed, &f);
	f.control = sfs_control_start(f.fs, &f.wire, store, opts.mountpoint, argc, argv);
	struct sfs_flusher *flusher = flusher_start(f.fs, cfg.dirty_expire);
	int lr;
	if (opts.singlethread) {
		lr = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *lc = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(lc, (unsigned)cfg.clone_fd);
		fuse_loop_cfg_set_max_threads(lc, cfg.threads ? cfg.threads : 10);
		lr = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	/* the loop reports the signal that ended it: a clean shutdown */
	ret = !(lr == 0 || lr == SIGTERM || lr == SIGINT || lr == SIGHUP);
	/* no request is served through the rings once the loop has ended */
	sfs_uring_stop(f.uring, abort_connection, &conn);
	/* before the session and the store go: they use both */
	int stuck = stop_helpers(&f, &conn);
	flusher_stop(flusher);
	sfs_control_stop(f.control);
	f.control = NULL;
	settfs_set_attr_fn(f.fs, NULL, NULL); /* the session goes first */
	settfs_set_entry_fn(f.fs, NULL, NULL);
	if (stuck) {
		fprintf(stderr, "settfs: a page-cache notification is stuck in the kernel and the "
				"connection could not be aborted (fusectl): committing the store and "
				"exiting without it\n");
		r = settfs_close(f.fs);
		if (r)
			fprintf(stderr, "settfs: closing store %s: %s\n", store, strerror(-r));
		_exit(r ? 1 : ret);
	}
out_unmount:
	/* the rings hold /dev/fuse open: closed before, the unmount aborts what is left */
	uring_free(&f);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	if (f.fs) {
		r = settfs_close(f.fs);
		if (r) {
			fprintf(stderr, "settfs: closing store %s: %s\n", store, strerror(-r));
			ret = 1;
		}
	}
	free(mo);
	free(source);
	free(store);
	free(cfg.store);
	free(cfg.key_file);
	free(cfg.pass_file);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	forget_key(&o);
	return ret;
}
