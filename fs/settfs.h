/*
 * settfs.h - the FUSE-free core of settfs, the filesystem on sett.
 *
 * The core turns filesystem operations on inode numbers into reads and
 * atomic batches of the sett engine, following the key schema of
 * doc/FORMAT.md ("settfs key schema").  It knows nothing about FUSE: the
 * glue in fuse_main.c maps requests onto these calls, and the unit tests
 * call them directly on a temporary store.
 *
 * Conventions: every function returns 0 (or a byte count / offset where
 * documented) on success and a negated errno value on failure.  Engine
 * corruption is reported as -EIO.  Names are single path components of at
 * most SETTFS_NAME_MAX bytes.
 *
 * Lookup counts: settfs_lookup, settfs_mknod, settfs_mkdir, settfs_symlink,
 * settfs_link, settfs_create and every non-dot entry of a readdir "plus"
 * add one reference to the returned inode; settfs_forget drops them.  An
 * unlinked inode keeps its data while it has references or open handles
 * (settfs_file_open/settfs_create to settfs_release); at the last one its
 * keys are deleted.  An `O` key records it meanwhile, and settfs_open
 * reclaims such orphans left by a crash or an unmount without forgets.
 *
 * Thread safety: a settfs may be used from any number of threads at once
 * (namespace changes are serialised by one lock, data operations by a
 * per-inode lock).  A settfs_dir belongs to one thread at a time.
 */
#ifndef SETTFS_H
#define SETTFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "sett.h"

#define SETTFS_ROOT_INO 1
#define SETTFS_NAME_MAX 255
#define SETTFS_SYMLINK_MAX 4095
#define SETTFS_XATTR_NAME_MAX 255
#define SETTFS_XATTR_SIZE_MAX 65536
#define SETTFS_DEFAULT_CHUNK_SIZE 65536u
/* the newest format this settfs reads (doc/FORMAT.md) */
#define SETTFS_FORMAT_VERSION 4
/*
 * Inode numbers of the mount: the live filesystem's are below 2^48; a
 * snapshot's inode i is shown as slot << 48 | i (slot 1..65534, fixed
 * when the snapshot is taken), and the snapshot directory is
 * SETTFS_SNAPDIR_INO.
 */
#define SETTFS_SNAP_INO_SHIFT 48
#define SETTFS_INO_MAX ((1ull << SETTFS_SNAP_INO_SHIFT) - 1)
#define SETTFS_SNAPDIR_INO (0xffffull << SETTFS_SNAP_INO_SHIFT)
#define SETTFS_SNAPDIR_NAME ".snapshots"
#define SETTFS_SNAP_NAME_MAX 240

typedef struct settfs settfs;
typedef struct settfs_dir settfs_dir;

typedef struct settfs_options {
	sett_options engine;   /* engine options; value_threshold [2048] */
	uint32_t chunk_size;   /* [65536] fixed when the store is created */
	size_t dirty_limit;    /* [64 MiB] buffered write bytes before writers flush */
	size_t inode_dirty_limit; /* [1 MiB] buffered bytes per inode before it flushes */
	size_t max_batch_deletes; /* [0: what fits the memtable] deletions per commit of a
				   * large truncate, punch hole or reclaim */
	int no_acl;            /* [0] no POSIX ACLs: settfs_setxattr and settfs_getxattr
				* of them give -EOPNOTSUPP, chmod and creation ignore
				* stored ones (as ext4's noacl) */
	int compression;       /* [SETTFS_COMPRESSION_KEEP] how chunks written from now
				* on are stored: SETTFS_COMPRESSION_NONE or _ZSTD; set at
				* mkfs, or at a writable open, which keeps it in the store
				* for later opens; KEEP: the store's own (none for a new one) */
	int compression_level; /* [0: 3] zstd level, 1..19 */
	int no_snapdir;        /* [0] no SETTFS_SNAPDIR_NAME in the root (the snapshot
				* calls below still work) */
} settfs_options;

#define SETTFS_COMPRESSION_KEEP (-1)
#define SETTFS_COMPRESSION_NONE 0
#define SETTFS_COMPRESSION_ZSTD 1
/*
 * Parse "none", "zstd" or "zstd:LEVEL" into o->compression and
 * o->compression_level; -EINVAL for anything else.
 */
int settfs_parse_compression(const char *s, settfs_options *o);
/* "none", "zstd:3", ... for a setting (buf: at least 16 bytes). */
const char *settfs_compression_name(int compression, int level, char *buf, size_t size);

void settfs_options_init(settfs_options *o);

/*
 * Credentials of the process asking: ownership of new inodes, and the
 * set-group-ID rule of chmod (`groups`: supplementary groups, may be NULL).
 * `umask`: permission bits a new inode (mknod, mkdir, create) does not get
 * when its directory has no default ACL; with one, the default ACL masks
 * the mode instead (POSIX.1e, as Linux does).
 */
typedef struct settfs_ctx {
	uint32_t uid, gid;
	const uint32_t *groups;
	int ngroups;
	uint32_t umask;
} settfs_ctx;

/*
 * Create a filesystem: superblock and root directory (owned by ctx, mode
 * 0755).  Refuses a directory that already holds a store (-EEXIST) unless
 * `force`, which wipes the settfs keys first.
 */
int settfs_mkfs(const char *path, const settfs_options *o, const settfs_ctx *ctx,
		int force);
/*
 * Open a filesystem; with o->engine.create_if_missing an empty store is
 * formatted first.  Reclaims orphans.  -EINVAL for a store that is not a
 * settfs (no superblock), -EIO for a corrupt superblock.
 */
int settfs_open(const char *path, const settfs_options *o, settfs **fsp);
/*
 * 1 when settfs_open met damage (a table the engine cannot open, or a
 * corrupt block its own reads needed) and opened the store read-only
 * instead (engine.read_only and engine.open_damaged): reads that need
 * damaged data fail with -EIO, everything else reads as written.  The
 * damage is described in o->engine.error_buf.
 */
int settfs_degraded(const settfs *fs);
/*
 * Flush buffered writes, make everything durable and close the engine.
 * Directory handles still open are freed (after an aborted FUSE
 * connection no RELEASEDIR comes).
 */
int settfs_close(settfs *fs);
/* Flush every buffered write and make the store durable. */
int settfs_sync(settfs *fs);
/*
 * Bounded-time writeback, for a caller that runs it periodically (the
 * daemon: every second).  Commits the buffered writes of every inode
 * that has been dirty for at least age_ms milliseconds; and when
 * something was committed since the store was last made durable, and
 * that was at least age_ms ago, makes the store durable (sett_sync).  So
 * a write is committed within age_ms plus the period, and durable within
 * about twice that, with no fsync, close or unmount.
 */
int settfs_writeback(settfs *fs, unsigned age_ms);
uint32_t settfs_chunk_size(const settfs *fs);
/*
 * fn(arg, ino) is called whenever the core changes what a stat of ino
 * shows by itself, not as the result of the request that asked for it:
 * st_blocks moves when buffered data is committed (at a flush, a close, by
 * settfs_writeback, or when the buffers fill), not when it was written.  A
 * caller that lets a kernel cache attributes expires them there.  fn runs
 * on any thread with the inode's lock held: it must not call into the
 * core.  Set it (or NULL) while no other call of the core is running.
 */
void settfs_set_attr_fn(settfs *fs, void (*fn)(void *arg, uint64_t ino), void *arg);

/* ---- namespace ------------------------------------------------------ */

int settfs_lookup(settfs *fs, uint64_t parent, const char *name, struct stat *st);
void settfs_forget(settfs *fs, uint64_t ino, uint64_t nlookup);
int settfs_getattr(settfs *fs, uint64_t ino, struct stat *st);

/* to_set bits of settfs_setattr */
enum {
	SETTFS_SET_MODE = 1 << 0,
	SETTFS_SET_UID = 1 << 1,
	SETTFS_SET_GID = 1 << 2,
	SETTFS_SET_SIZE = 1 << 3,
	SETTFS_SET_ATIME = 1 << 4,   /* from attr->st_atim */
	SETTFS_SET_MTIME = 1 << 5,   /* from attr->st_mtim */
	SETTFS_SET_ATIME_NOW = 1 << 6,
	SETTFS_SET_MTIME_NOW = 1 << 7,
	SETTFS_SET_CTIME = 1 << 8,   /* from attr->st_ctim */
	/* clear set-user-ID, and set-group-ID if the group may execute or ctx
	 * is not in the file's group */
	SETTFS_SET_KILL_SUIDGID = 1 << 9
};
/*
 * Change attributes in one atomic commit.  A size change zeroes the tail
 * of the last chunk and deletes chunks past the new end.  Changing the
 * owner of a non-directory clears set-user-ID, and set-group-ID when the
 * group may execute (as Linux does).  A mode change by a caller other than
 * root who is not in the file's group drops set-group-ID.  ctime becomes now.
 */
int settfs_setattr(settfs *fs, const settfs_ctx *ctx, uint64_t ino,
		   const struct stat *attr, int to_set, struct stat *st);

int settfs_mknod(settfs *fs, const settfs_ctx *ctx, uint64_t parent,
		 const char *name, mode_t mode, dev_t rdev, struct stat *st);
int settfs_mkdir(settfs *fs, const settfs_ctx *ctx, uint64_t parent,
		 const char *name, mode_t mode, struct stat *st);
int settfs_symlink(settfs *fs, const settfs_ctx *ctx, uint64_t parent,
		   const char *name, const char *target, struct stat *st);
/* Copies at most size bytes (no NUL); returns the target length. */
int settfs_readlink(settfs *fs, uint64_t ino, char *buf, size_t size);
int settfs_unlink(settfs *fs, uint64_t parent, const char *name);
int settfs_rmdir(settfs *fs, uint64_t parent, const char *name);

#define SETTFS_RENAME_NOREPLACE 1u
#define SETTFS_RENAME_EXCHANGE 2u
int settfs_rename(settfs *fs, uint64_t parent, const char *name,
		  uint64_t newparent, const char *newname, unsigned flags);
int settfs_link(settfs *fs, uint64_t ino, uint64_t newparent,
		const char *newname, struct stat *st);

/* ---- files ---------------------------------------------------------- */

/* Counts an open handle; O_TRUNC truncates a regular file to zero. */
int settfs_file_open(settfs *fs, uint64_t ino, int flags);
/* Create and open (flags as for open(2); O_EXCL -> -EEXIST if present). */
int settfs_create(settfs *fs, const settfs_ctx *ctx, uint64_t parent,
		  const char *name, mode_t mode, int flags, struct stat *st);
/* Returns the number of bytes read (short at end of file). */
ssize_t settfs_read(settfs *fs, uint64_t ino, off_t off, size_t size, void *buf);
/* flags of settfs_write */
#define SETTFS_WRITE_APPEND 1u       /* write at the end of file, ignoring off */
#define SETTFS_WRITE_KILL_SUIDGID 2u /* as SETTFS_SET_KILL_SUIDGID, same commit */
/* with KILL_SUIDGID: the caller is not in the file's group (set-group-ID goes) */
#define SETTFS_WRITE_KILL_SGID 4u
/* Returns size. */
ssize_t settfs_write(settfs *fs, uint64_t ino, off_t off, const void *buf,
		     size_t size, unsigned flags);
/* Commits the inode's buffered writes (not necessarily durable). */
int settfs_flush(settfs *fs, uint64_t ino);
/*
 * Drops an open handle (committing buffered writes); `flags` are those the
 * handle was opened with (its access mode counts writable handles).
 */
int settfs_release(settfs *fs, uint64_t ino, int flags);
/* Makes the inode's data and metadata durable. */
int settfs_fsync(settfs *fs, uint64_t ino, int datasync);
/*
 * mode 0 (allocate, extending the size), FALLOC_FL_KEEP_SIZE,
 * FALLOC_FL_ZERO_RANGE (with or without KEEP_SIZE) or
 * FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE; others: -EOPNOTSUPP.
 * Allocation stores the range's holes as zeros (counted in st_blocks);
 * -ENOSPC when the disk cannot hold them above the reserve.  flags:
 * SETTFS_WRITE_KILL_SUIDGID (the caller lacks CAP_FSETID), same commit.
 */
int settfs_fallocate(settfs *fs, uint64_t ino, int mode, off_t off, off_t len,
		     unsigned flags);
/* SEEK_DATA / SEEK_HOLE; returns the offset or -ENXIO. */
off_t settfs_lseek(settfs *fs, uint64_t ino, off_t off, int whence);
int settfs_statfs(settfs *fs, struct statvfs *sv);

/* Live figures of an open filesystem (`settfs status`); any thread, any time. */
typedef struct settfs_stats {
	uint64_t inodes;       /* inodes in use */
	uint64_t logical_bytes; /* sizes of the regular files (UINT64_MAX: unknown, a
				 * damaged store whose inodes could not all be read) */
	uint64_t stored_bytes; /* what the regular files' data holds in the store (their
				* st_blocks, compressed chunks at their stored size;
				* UINT64_MAX: unknown, as logical_bytes) */
	int compression;       /* SETTFS_COMPRESSION_* of new chunks */
	int compression_level;
	uint64_t dirty_bytes;  /* written, buffered in the daemon, not yet committed */
	uint32_t chunk_size;
	int read_only;         /* the store is open read-only */
	int degraded;          /* settfs_degraded */
	sett_stats engine;
	sett_space space;      /* the store's disk and its reserve */
} settfs_stats;
int settfs_get_stats(settfs *fs, settfs_stats *st);
/* The engine under the filesystem, for read-only introspection (sett info). */
sett_db *settfs_engine(settfs *fs);

/* ---- snapshots ------------------------------------------------------ */

/*
 * A snapshot is a named, read-only image of the whole filesystem at one
 * instant: an engine pin (sett_pin) of the version at which every change
 * made before it was committed, and a record ('P' key, doc/FORMAT.md).
 * It is browsable at /SETTFS_SNAPDIR_NAME/NAME (that directory is not
 * listed by readdir of the root, but can be looked up; mkdir in it takes
 * a snapshot, rmdir deletes one; nothing else in it can be changed: -EROFS).
 *
 * settfs_snapshot_create: every change of the filesystem waits while
 * the buffered writes are committed and the version is pinned, so the
 * snapshot holds exactly the changes made before it (of a change under
 * way, all or nothing).  -EEXIST if the name is taken, -EINVAL for a name
 * that is not a file name or longer than SETTFS_SNAP_NAME_MAX, -ENOSPC when
 * all slots are taken, -EROFS on a read-only store.
 */
typedef struct settfs_snap_info {
	char name[SETTFS_SNAP_NAME_MAX + 1];
	uint64_t version;      /* the engine version it pins */
	int64_t created_ns;
	uint8_t guid[16];
	uint32_t slot;         /* its inodes are slot << SETTFS_SNAP_INO_SHIFT | ino */
	int damaged;           /* its pin is missing (lost by repair): not readable */
	uint64_t held_ns;      /* settfs_snapshot_create: how long changes waited */
} settfs_snap_info;
int settfs_snapshot_create(settfs *fs, const char *name, settfs_snap_info *info);
/* -ENOENT if there is none of that name.  Its space comes back through GC. */
int settfs_snapshot_delete(settfs *fs, const char *name);
/* All snapshots sorted by name in a malloc'ed array (*n of them). */
int settfs_snapshot_list(settfs *fs, settfs_snap_info **out, size_t *n);
/* The bytes the snapshot alone holds (sett_pin_space_of): a scan of the store. */
int settfs_snapshot_space(settfs *fs, const char *name, uint64_t *bytes);
/*
 * fn(arg, parent, name) is called by settfs_snapshot_changed: a caller
 * that took or deleted a snapshot other than through mkdir/rmdir in the
 * snapshot directory tells the kernel that the entry changed.  Set it
 * (or NULL) while no other call of the core is running.
 */
void settfs_set_entry_fn(settfs *fs, void (*fn)(void *arg, uint64_t parent, const char *name),
			 void *arg);
void settfs_snapshot_changed(settfs *fs, const char *name);

/* ---- page-cache fill ------------------------------------------------ */

/*
 * A daemon that read more of a file than was asked (a whole chunk for one
 * page) may push the rest into the kernel's page cache.  A push must never
 * put older bytes over newer ones, in particular over the kernel's dirty
 * pages: so it is only allowed while the file has no writable open handle,
 * and only if nothing changed the file's data since the read began.
 *
 * settfs_fill_token, called before the read, returns in *token the file's
 * data generation and in *size its size, which stays valid as long as the
 * token does: -EBUSY while a writable handle is open, -EISDIR or
 * -EINVAL for a file that is not regular.  Every writable open, truncate,
 * size change and fallocate makes earlier tokens stale, and so does the
 * inode leaving memory (tokens are unique for the life of the settfs).
 * It never waits for settfs_fill_run.
 *
 * settfs_fill_run calls push(arg) if the token is still current and no
 * writable handle is open, and returns its result; otherwise -ESTALE.
 * Until push returns, writable opens, truncates and fallocates of the file
 * wait (reads do not), so the kernel cannot dirty a page meanwhile.  push
 * must not call back into this settfs for the same inode.
 *
 * Only data changes that come with a writable open are tracked for
 * settfs_write: a caller that writes without settfs_file_open must not
 * fill.
 */
int settfs_fill_token(settfs *fs, uint64_t ino, uint64_t *token, uint64_t *size);
int settfs_fill_run(settfs *fs, uint64_t ino, uint64_t token, int (*push)(void *arg),
		    void *arg);

/* ---- directories ---------------------------------------------------- */

int settfs_opendir(settfs *fs, uint64_t ino, settfs_dir **dp);
/*
 * Called per entry; `next_off` is the cookie to resume after this entry.
 * Returns 0 if the entry was taken, non-zero if the caller's buffer is full
 * (the entry is then not counted as returned).
 */
typedef int (*settfs_fill_fn)(void *arg, const char *name, const struct stat *st,
			      off_t next_off);
/*
 * List entries from cookie `off` (0: start).  Offsets are stable for the
 * life of the handle while the directory is not changed.  With `plus`, st
 * holds full attributes and each taken entry but "." and ".." gets a lookup
 * reference; otherwise only st_ino and the type bits of st_mode are set.
 */
int settfs_readdir(settfs *fs, settfs_dir *d, off_t off, int plus,
		   settfs_fill_fn fill, void *arg);
void settfs_releasedir(settfs *fs, settfs_dir *d);
int settfs_fsyncdir(settfs *fs, uint64_t ino, int datasync);

/* ---- extended attributes -------------------------------------------- */

/*
 * flags: XATTR_CREATE / XATTR_REPLACE from <sys/xattr.h>, and
 * SETTFS_XATTR_KILL_SGID.
 *
 * POSIX ACLs, system.posix_acl_access and system.posix_acl_default, hold
 * Linux's ACL xattr encoding (doc/FORMAT.md); a value that is not a valid
 * ACL is refused with -EINVAL, a default ACL on a non-directory with
 * -EACCES; XATTR_CREATE / XATTR_REPLACE do not apply to them, and removing
 * an absent one succeeds.  Setting an access ACL sets the permission bits
 * of the mode from it (the group bits from its mask if it has one), and
 * an ACL the mode expresses entirely (owner, group, other entries only) is
 * kept as the mode alone.  settfs_setattr's mode changes rewrite the
 * access ACL's owner, group class and other entries; mknod, mkdir and
 * create apply the directory's default ACL.  The caller (the kernel)
 * checks that the caller owns the inode.
 */
/* clear set-group-ID when setting an access ACL (a caller outside the
 * file's group without CAP_FSETID, as Linux's posix_acl_update_mode) */
#define SETTFS_XATTR_KILL_SGID 0x100
int settfs_setxattr(settfs *fs, uint64_t ino, const char *name,
		    const void *value, size_t size, int flags);
/* size 0: returns the value size; too small: -ERANGE; absent: -ENODATA. */
ssize_t settfs_getxattr(settfs *fs, uint64_t ino, const char *name, void *buf,
			size_t size);
/* NUL-separated names, same size rules as getxattr. */
ssize_t settfs_listxattr(settfs *fs, uint64_t ino, char *buf, size_t size);
int settfs_removexattr(settfs *fs, uint64_t ino, const char *name);

#endif /* SETTFS_H */
