/*
 * namei.c - namespace operations of settfs: lookup, create, link, unlink,
 * rename and friends.
 *
 * Each operation runs under fs->ns_lock held for writing (lookups for
 * reading), computes the new state of every inode it touches on copies,
 * commits all keys in one sett batch, and only then updates the in-memory
 * nodes.  So a crash or a failed commit leaves the old state everywhere.
 * An inode's copy includes its buffered writes (size, mtime), and so does
 * the batch: sfs_batch_node adds the buffered data with the inode.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

int sfs_check_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return -ENOENT;
	if (n > SETTFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name, '/'))
		return -EINVAL;
	return 0;
}

static int is_dot(const char *name)
{
	return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

int sfs_dentry_get(settfs *fs, uint64_t parent, const char *name, uint64_t *ino,
		   uint32_t *type)
{
	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(fs->db, sfs_val(k, sfs_key_dentry(k, parent, name, strlen(name))),
			 fs->read_version, &v, &n);
	if (r)
		return sfs_errno(r);
	r = sfs_dentry_decode(v, n, ino, type);
	free(v);
	return r;
}

int sfs_dir_nonempty(settfs *fs, uint64_t ino)
{
	uint8_t p[9];
	sett_iter *it;
	int r = sfs_prefix_iter(fs, p, sfs_key_dentry(p, ino, NULL, 0), 0, &it);
	if (r)
		return r;
	sett_iter_rewind(it);
	r = sett_iter_valid(it) ? 1 : sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	return r;
}

/*
 * The node of directory ino, which must still be linked (entries cannot be
 * added to a removed directory).  On an error nothing is held.
 */
static int get_live_dir(settfs *fs, uint64_t ino, sfs_node **pp)
{
	sfs_node *p;
	int r = sfs_node_get(fs, ino, &p);
	if (r)
		return r;
	r = !S_ISDIR(p->in.mode) ? -ENOTDIR : p->in.nlink == 0 ? -ENOENT : 0;
	if (r) {
		sfs_node_put(fs, p);
		p = NULL;
	}
	*pp = p;
	return r;
}

static int batch_dentry(sett_batch *b, uint64_t parent, const char *name, uint64_t ino,
			uint32_t mode)
{
	uint8_t k[SFS_KEY_MAX], v[SFS_DENTRY_SIZE];
	size_t kn = sfs_key_dentry(k, parent, name, strlen(name));
	if (ino == 0)
		return sfs_errno(sett_batch_delete(b, sfs_val(k, kn)));
	sfs_dentry_encode(ino, mode, v);
	return sfs_errno(sett_batch_set(b, sfs_val(k, kn), sfs_val(v, sizeof v)));
}

static int batch_orphan(sett_batch *b, uint64_t ino)
{
	uint8_t k[9];
	return sfs_errno(sett_batch_set(b, sfs_val(k, sfs_key_orphan(k, ino)), sfs_val("", 0)));
}

static int commit(settfs *fs, sett_batch *b)
{
	return sfs_errno(sett_write(fs->db, b, 0, NULL));
}

/* Under ns_lock (write).  Reserves inode numbers in batches (never reused). */
static int alloc_ino(settfs *fs, uint64_t *ino)
{
	if (fs->next_ino >= fs->ino_limit) {
		/* numbers are never reused; above SETTFS_INO_MAX lie the snapshots' */
		if (fs->next_ino > SETTFS_INO_MAX - SFS_INO_BATCH)
			return -ENOSPC;
		uint8_t k[1], v[8];
		uint64_t lim = fs->next_ino + SFS_INO_BATCH;
		sfs_put_be64(v, lim);
		int r = sfs_errno(sett_put(fs->db, sfs_val(k, sfs_key_nextino(k)), sfs_val(v, 8)));
		if (r)
			return r;
		fs->ino_limit = lim;
	}
	*ino = fs->next_ino++;
	return 0;
}

int settfs_lookup(settfs *fs, uint64_t parent, const char *name, struct stat *st)
{
	int r = sfs_check_name(name);
	if (r)
		return r;
	if (parent == SETTFS_SNAPDIR_INO && !fs->live) {
		if (!strcmp(name, "."))
			return sfs_snapdir_stat(fs, st);
		if (!strcmp(name, ".."))
			return settfs_lookup(fs, SETTFS_ROOT_INO, ".", st);
		return sfs_snapdir_lookup(fs, name, st);
	}
	if (sfs_is_snapdir_name(fs, parent, name))
		return sfs_snapdir_stat(fs, st);
	SFS_IN_VIEW(fs, parent, settfs_lookup(v_, i_, name, st));
	pthread_rwlock_rdlock(&fs->ns_lock);
	uint64_t ino;
	uint32_t type;
	if (strcmp(name, ".") == 0) {
		ino = parent;
	} else if (strcmp(name, "..") == 0) {
		sfs_node *p;
		r = sfs_node_get(fs, parent, &p);
		if (r == 0) {
			ino = p->in.parent ? p->in.parent : SETTFS_ROOT_INO;
			sfs_node_put(fs, p);
		}
	} else {
		r = sfs_dentry_get(fs, parent, name, &ino, &type);
	}
	sfs_node *n;
	if (r == 0)
		r = sfs_node_get(fs, ino, &n);
	if (r == 0) {
		sfs_node_ref(fs, n, 1, 0);
		sfs_fill_stat(fs, ino, &n->in, st);
		sfs_node_put(fs, n);
	}
	pthread_rwlock_unlock(&fs->ns_lock);
	return r;
}

void settfs_forget(settfs *fs, uint64_t ino, uint64_t nlookup)
{
	if (sfs_is_snap_ino(fs, ino)) {
		settfs *v;
		if (ino != SETTFS_SNAPDIR_INO && sfs_route(fs, &ino, &v) == 0) {
			settfs_forget(v, ino, nlookup);
			sfs_route_end(fs, v);
		}
		return;
	}
	pthread_mutex_lock(&fs->tab_lock);
	sfs_node *n = sfs_node_find_locked(fs, ino);
	if (!n) {
		pthread_mutex_unlock(&fs->tab_lock);
		return;
	}
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	n->refs++;
	pthread_mutex_unlock(&fs->tab_lock);
	pthread_mutex_lock(&n->lock);
	sfs_node_put(fs, n);
}

int settfs_getattr(settfs *fs, uint64_t ino, struct stat *st)
{
	if (ino == SETTFS_SNAPDIR_INO && !fs->live)
		return sfs_snapdir_stat(fs, st);
	SFS_IN_VIEW(fs, ino, settfs_getattr(v_, i_, st));
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	sfs_fill_stat(fs, ino, &n->in, st);
	sfs_node_put(fs, n);
	return 0;
}

/*
 * Create an inode and its entry.  `open_it`: count an open handle as well
 * (create).  On EEXIST with `existing`, the existing inode number is
 * returned through it.
 */
static int make_node(settfs *fs, const settfs_ctx *ctx, uint64_t parent, const char *name,
		     mode_t mode, dev_t rdev, const char *target, int open_it,
		     struct stat *st, uint64_t *existing)
{
	int r = sfs_check_name(name);
	if (r)
		return r;
	if (is_dot(name) || sfs_is_snapdir_name(fs, parent, name))
		return -EEXIST;
	if (sfs_is_snap_ino(fs, parent))
		return -EROFS;
	size_t tlen = target ? strlen(target) : 0;
	if (target && (tlen == 0 || tlen > SETTFS_SYMLINK_MAX))
		return tlen ? -ENAMETOOLONG : -ENOENT;

	r = sfs_space_admit(fs, SFS_INODE_ESTIMATE + tlen);
	if (r)
		return r;
	sfs_freeze_enter(fs);
	pthread_rwlock_wrlock(&fs->ns_lock);
	sfs_node *p = NULL, *n = NULL;
	sett_batch *b = NULL;
	r = get_live_dir(fs, parent, &p);
	if (r)
		goto out;
	uint64_t old;
	uint32_t otype;
	r = sfs_dentry_get(fs, parent, name, &old, &otype);
	if (r == 0) {
		if (existing)
			*existing = old;
		r = -EEXIST;
		goto out;
	}
	if (r != -ENOENT)
		goto out;
	uint64_t ino;
	r = alloc_ino(fs, &ino);
	if (r)
		goto out;

	int64_t now = sfs_now();
	sfs_inode in;
	memset(&in, 0, sizeof in);
	in.mode = (uint32_t)mode;
	in.uid = ctx->uid;
	in.gid = ctx->gid;
	if (p->in.mode & S_ISGID) {
		/* BSD group semantics under a set-group-ID directory */
		in.gid = p->in.gid;
		if (S_ISDIR(mode))
			in.mode |= S_ISGID;
	}
	in.nlink = S_ISDIR(mode) ? 2 : 1;
	in.atime = in.mtime = in.ctime = in.btime = now;
	in.rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? (uint64_t)rdev : 0;
	in.parent = S_ISDIR(mode) ? parent : 0;
	in.target = (char *)target;
	in.target_len = tlen;
	in.size = tlen; /* lstat reports the target length */

	sfs_inode pin = p->in;
	pin.mtime = pin.ctime = now;
	if (S_ISDIR(mode))
		pin.nlink++;

	r = sfs_errno(sett_batch_new(&b));
	int acls = 0; /* symlinks have no ACLs and ignore the umask */
	if (r == 0 && !target) {
		acls = sfs_acl_inherit(fs, p, ino, &in.mode, ctx->umask, b);
		r = acls < 0 ? acls : 0;
	}
	if (acls > 0)
		in.flags |= SFS_IFLAG_XATTRS;
	if (r == 0)
		r = sfs_batch_new_inode(b, ino, &in);
	if (r == 0)
		r = batch_dentry(b, parent, name, ino, in.mode);
	if (r == 0)
		r = sfs_batch_node(fs, b, p, &pin);
	if (r == 0)
		r = commit(fs, b);
	if (r)
		goto out;
	sfs_node_committed(fs, p, &pin);
	atomic_fetch_add(&fs->used_inodes, 1);
	r = sfs_node_get(fs, ino, &n);
	if (r)
		goto out;
	sfs_node_ref(fs, n, 1, open_it ? 1 : 0);
	n->xattrs = acls;
	sfs_fill_stat(fs, ino, &n->in, st);
out:
	if (n)
		sfs_node_put(fs, n);
	if (p)
		sfs_node_put(fs, p);
	sett_batch_free(b);
	pthread_rwlock_unlock(&fs->ns_lock);
	sfs_freeze_exit(fs);
	return r;
}

int settfs_mknod(settfs *fs, const settfs_ctx *ctx, uint64_t parent, const char *name,
		 mode_t mode, dev_t rdev, struct stat *st)
{
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		break;
	case S_IFREG: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return make_node(fs, ctx, parent, name, mode & (S_IFMT | 07777), rdev, NULL, 0, st,
			 NULL);
}

int settfs_mkdir(settfs *fs, const settfs_ctx *ctx, uint64_t parent, const char *name,
		 mode_t mode, struct stat *st)
{
	if (parent == SETTFS_SNAPDIR_INO && !fs->live)
		return sfs_snapdir_mkdir(fs, ctx, name, st);
	return make_node(fs, ctx, parent, name, S_IFDIR | (mode & 07777), 0, NULL, 0, st, NULL);
}

int settfs_symlink(settfs *fs, const settfs_ctx *ctx, uint64_t parent, const char *name,
		   const char *target, struct stat *st)
{
	return make_node(fs, ctx, parent, name, S_IFLNK | 0777, 0, target, 0, st, NULL);
}

int settfs_create(settfs *fs, const settfs_ctx *ctx, uint64_t parent, const char *name,
		  mode_t mode, int flags, struct stat *st)
{
	uint64_t existing = 0;
	int r = make_node(fs, ctx, parent, name, S_IFREG | (mode & 07777), 0, NULL, 1, st,
			  &existing);
	if (r == 0 && (flags & O_ACCMODE) != O_RDONLY)
		sfs_note_writer(fs, st->st_ino);
	if (r != -EEXIST || (flags & O_EXCL) || !existing)
		return r;
	/* raced with another creator: open the existing file */
	r = settfs_lookup(fs, parent, name, st);
	if (r)
		return r;
	if (S_ISDIR(st->st_mode)) {
		settfs_forget(fs, st->st_ino, 1);
		return -EISDIR;
	}
	r = settfs_file_open(fs, st->st_ino, flags);
	if (r) {
		settfs_forget(fs, st->st_ino, 1);
		return r;
	}
	return settfs_getattr(fs, st->st_ino, st);
}

int settfs_readlink(settfs *fs, uint64_t ino, char *buf, size_t size)
{
	SFS_IN_VIEW(fs, ino, settfs_readlink(v_, i_, buf, size));
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	if (!S_ISLNK(n->in.mode)) {
		r = -EINVAL;
	} else {
		size_t c = n->in.target_len < size ? n->in.target_len : size;
		memcpy(buf, n->in.target, c);
		r = (int)n->in.target_len;
	}
	sfs_node_put(fs, n);
	return r;
}

/* unlink (dir 0) and rmdir (dir 1) */
static int remove_entry(settfs *fs, uint64_t parent, const char *name, int dir)
{
	if (sfs_is_snap_ino(fs, parent))
		return -EROFS;
	if (sfs_is_snapdir_name(fs, parent, name))
		return -EBUSY;
	int r = sfs_check_name(name);
	if (r)
		return r;
	if (is_dot(name))
		return dir ? (strcmp(name, ".") == 0 ? -EINVAL : -ENOTEMPTY) : -EISDIR;
	sfs_freeze_enter(fs);
	pthread_rwlock_wrlock(&fs->ns_lock);
	sfs_node *p = NULL, *n = NULL;
	sett_batch *b = NULL;
	uint64_t ino;
	uint32_t type;
	r = sfs_dentry_get(fs, parent, name, &ino, &type);
	if (r)
		goto out;
	if (dir && !S_ISDIR(type)) {
		r = -ENOTDIR;
		goto out;
	}
	if (!dir && S_ISDIR(type)) {
		r = -EISDIR;
		goto out;
	}
	if (dir) {
		r = sfs_dir_nonempty(fs, ino);
		if (r) {
			r = r > 0 ? -ENOTEMPTY : r;
			goto out;
		}
	}
	r = sfs_node_get(fs, parent, &p);
	if (r == 0)
		r = sfs_node_get(fs, ino, &n);
	if (r)
		goto out;
	int64_t now = sfs_now();
	sfs_inode pin = p->in, cin = n->in;
	pin.mtime = pin.ctime = now;
	cin.ctime = now;
	if (dir) {
		pin.nlink--;
		cin.nlink = 0;
	} else if (cin.nlink > 0) {
		cin.nlink--;
	}
	r = sfs_errno(sett_batch_new(&b));
	if (r == 0)
		r = batch_dentry(b, parent, name, 0, 0);
	if (r == 0)
		r = sfs_batch_node(fs, b, p, &pin);
	if (r == 0)
		r = sfs_batch_node(fs, b, n, &cin);
	if (r == 0 && cin.nlink == 0)
		r = batch_orphan(b, ino);
	if (r == 0)
		r = commit(fs, b);
	if (r == 0) {
		sfs_node_committed(fs, p, &pin);
		sfs_node_committed(fs, n, &cin);
	}
out:
	if (n)
		sfs_node_put(fs, n); /* reclaims it when nothing references it */
	if (p)
		sfs_node_put(fs, p);
	sett_batch_free(b);
	pthread_rwlock_unlock(&fs->ns_lock);
	sfs_freeze_exit(fs);
	return r;
}

int settfs_unlink(settfs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, 0);
}

int settfs_rmdir(settfs *fs, uint64_t parent, const char *name)
{
	if (parent == SETTFS_SNAPDIR_INO && !fs->live)
		return sfs_snapdir_rmdir(fs, NULL, name);
	return remove_entry(fs, parent, name, 1);
}

int settfs_link(settfs *fs, uint64_t ino, uint64_t newparent, const char *newname,
		struct stat *st)
{
	int r = sfs_check_name(newname);
	if (r)
		return r;
	if (is_dot(newname) || sfs_is_snapdir_name(fs, newparent, newname))
		return -EEXIST;
	if (sfs_is_snap_ino(fs, ino) || sfs_is_snap_ino(fs, newparent))
		return sfs_is_snap_ino(fs, ino) && sfs_is_snap_ino(fs, newparent) ? -EROFS : -EXDEV;
	r = sfs_space_admit(fs, SFS_INODE_ESTIMATE);
	if (r)
		return r;
	sfs_freeze_enter(fs);
	pthread_rwlock_wrlock(&fs->ns_lock);
	sfs_node *p = NULL, *n = NULL;
	sett_batch *b = NULL;
	r = sfs_node_get(fs, ino, &n);
	if (r)
		goto out;
	if (S_ISDIR(n->in.mode)) {
		r = -EPERM;
		goto out;
	}
	if (n->in.nlink == 0) {
		r = -ENOENT;
		goto out;
	}
	if (n->in.nlink >= 65000) {
		r = -EMLINK;
		goto out;
	}
	if (ino == newparent) {
		r = -ENOTDIR;
		goto out;
	}
	r = get_live_dir(fs, newparent, &p);
	if (r)
		goto out;
	uint64_t old;
	uint32_t otype;
	r = sfs_dentry_get(fs, newparent, newname, &old, &otype);
	if (r == 0)
		r = -EEXIST;
	if (r != -ENOENT)
		goto out;
	int64_t now = sfs_now();
	sfs_inode pin = p->in, cin = n->in;
	pin.mtime = pin.ctime = now;
	cin.ctime = now;
	cin.nlink++;
	r = sfs_errno(sett_batch_new(&b));
	if (r == 0)
		r = batch_dentry(b, newparent, newname, ino, cin.mode);
	if (r == 0)
		r = sfs_batch_node(fs, b, p, &pin);
	if (r == 0)
		r = sfs_batch_node(fs, b, n, &cin);
	if (r == 0)
		r = commit(fs, b);
	if (r == 0) {
		sfs_node_committed(fs, p, &pin);
		sfs_node_committed(fs, n, &cin);
		sfs_node_ref(fs, n, 1, 0);
		sfs_fill_stat(fs, ino, &n->in, st);
	}
out:
	if (n)
		sfs_node_put(fs, n);
	if (p)
		sfs_node_put(fs, p);
	sett_batch_free(b);
	pthread_rwlock_unlock(&fs->ns_lock);
	sfs_freeze_exit(fs);
	return r;
}

/* Is `dir` equal to `anc` or below it?  Under ns_lock.  1 yes, 0 no, <0 error. */
static int is_within(settfs *fs, uint64_t dir, uint64_t anc)
{
	for (int depth = 0; depth < 100000; depth++) {
		if (dir == anc)
			return 1;
		if (dir == SETTFS_ROOT_INO)
			return 0;
		sfs_node *n;
		int r = sfs_node_get(fs, dir, &n);
		if (r)
			return r;
		uint64_t up = n->in.parent;
		sfs_node_put(fs, n);
		if (up == 0 || up == dir)
			return -EIO;
		dir = up;
	}
	return -ELOOP;
}

int settfs_rename(settfs *fs, uint64_t parent, const char *name, uint64_t newparent,
		  const char *newname, unsigned flags)
{
	if (flags & ~(SETTFS_RENAME_NOREPLACE | SETTFS_RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & SETTFS_RENAME_NOREPLACE) && (flags & SETTFS_RENAME_EXCHANGE))
		return -EINVAL;
	int r = sfs_check_name(name);
	if (r == 0)
		r = sfs_check_name(newname);
	if (r)
		return r;
	if (is_dot(name) || is_dot(newname) || sfs_is_snapdir_name(fs, parent, name) ||
	    sfs_is_snapdir_name(fs, newparent, newname))
		return -EBUSY;
	if (sfs_is_snap_ino(fs, parent) || sfs_is_snap_ino(fs, newparent))
		return sfs_is_snap_ino(fs, parent) && sfs_is_snap_ino(fs, newparent) ? -EROFS : -EXDEV;
	int exchange = (flags & SETTFS_RENAME_EXCHANGE) != 0;

	sfs_freeze_enter(fs);
	pthread_rwlock_wrlock(&fs->ns_lock);
	sfs_node *sp = NULL, *dp = NULL, *sn = NULL, *dn = NULL;
	sett_batch *b = NULL;
	uint64_t sino, dino = 0;
	uint32_t stype, dtype = 0;
	r = sfs_dentry_get(fs, parent, name, &sino, &stype);
	if (r)
		goto out;
	r = sfs_dentry_get(fs, newparent, newname, &dino, &dtype);
	if (r == -ENOENT) {
		dino = 0;
		r = exchange ? -ENOENT : 0;
	} else if (r == 0 && (flags & SETTFS_RENAME_NOREPLACE)) {
		r = -EEXIST;
	}
	if (r)
		goto out;
	if (dino == sino)
		goto out; /* same inode (also a hard link pair): nothing to do */
	if (dino && !exchange) {
		if (S_ISDIR(stype) && !S_ISDIR(dtype)) {
			r = -ENOTDIR;
			goto out;
		}
		if (!S_ISDIR(stype) && S_ISDIR(dtype)) {
			r = -EISDIR;
			goto out;
		}
		if (S_ISDIR(dtype)) {
			r = sfs_dir_nonempty(fs, dino);
			if (r) {
				r = r > 0 ? -ENOTEMPTY : r;
				goto out;
			}
		}
	}
	/* a directory may not move below itself */
	if (S_ISDIR(stype) && parent != newparent) {
		r = is_within(fs, newparent, sino);
		if (r) {
			r = r > 0 ? -EINVAL : r;
			goto out;
		}
	}
	if (exchange && S_ISDIR(dtype) && parent != newparent) {
		r = is_within(fs, parent, dino);
		if (r) {
			r = r > 0 ? -EINVAL : r;
			goto out;
		}
	}
	r = sfs_node_get(fs, parent, &sp);
	if (r == 0 && newparent != parent)
		r = sfs_node_get(fs, newparent, &dp);
	if (r == 0)
		r = sfs_node_get(fs, sino, &sn);
	if (r == 0 && dino)
		r = sfs_node_get(fs, dino, &dn);
	if (r)
		goto out;
	if (!S_ISDIR((dp ? dp : sp)->in.mode)) {
		r = -ENOTDIR;
		goto out;
	}

	int64_t now = sfs_now();
	sfs_inode spin = sp->in, dpin = dp ? dp->in : sp->in;
	sfs_inode sin = sn->in, din;
	memset(&din, 0, sizeof din);
	if (dn)
		din = dn->in;
	/* when both parents are one directory, work on spin only */
	sfs_inode *dpp = dp ? &dpin : &spin;
	spin.mtime = spin.ctime = now;
	dpp->mtime = dpp->ctime = now;
	sin.ctime = now;
	if (dn)
		din.ctime = now;

	r = sfs_errno(sett_batch_new(&b));
	if (r)
		goto out;
	if (exchange) {
		r = batch_dentry(b, parent, name, dino, dtype);
		if (r == 0)
			r = batch_dentry(b, newparent, newname, sino, stype);
		if (dp) {
			if (S_ISDIR(stype)) {
				spin.nlink--;
				dpin.nlink++;
				sin.parent = newparent;
			}
			if (S_ISDIR(dtype)) {
				dpin.nlink--;
				spin.nlink++;
				din.parent = parent;
			}
		}
	} else {
		r = batch_dentry(b, parent, name, 0, 0);
		if (r == 0)
			r = batch_dentry(b, newparent, newname, sino, stype);
		if (S_ISDIR(stype) && dp) {
			spin.nlink--;
			dpin.nlink++;
		}
		if (S_ISDIR(stype))
			sin.parent = newparent;
		if (dn) {
			if (S_ISDIR(dtype)) {
				din.nlink = 0;
				dpp->nlink--;
			} else if (din.nlink > 0) {
				din.nlink--;
			}
			if (r == 0 && din.nlink == 0)
				r = batch_orphan(b, dino);
		}
	}
	if (r == 0)
		r = sfs_batch_node(fs, b, sp, &spin);
	if (r == 0 && dp)
		r = sfs_batch_node(fs, b, dp, &dpin);
	if (r == 0)
		r = sfs_batch_node(fs, b, sn, &sin);
	if (r == 0 && dn)
		r = sfs_batch_node(fs, b, dn, &din);
	if (r == 0)
		r = commit(fs, b);
	if (r == 0) {
		sfs_node_committed(fs, sp, &spin);
		if (dp)
			sfs_node_committed(fs, dp, &dpin);
		sfs_node_committed(fs, sn, &sin);
		if (dn)
			sfs_node_committed(fs, dn, &din);
	}
out:
	if (dn)
		sfs_node_put(fs, dn);
	if (sn)
		sfs_node_put(fs, sn);
	if (dp)
		sfs_node_put(fs, dp);
	if (sp)
		sfs_node_put(fs, sp);
	sett_batch_free(b);
	pthread_rwlock_unlock(&fs->ns_lock);
	sfs_freeze_exit(fs);
	return r;
}
