/*
 * dir.c - directory listing of settfs.
 *
 * A directory's entries are the keys D+ino+name, so a listing is a prefix
 * scan in name order.  Cookies count entries: 1 is ".", 2 is "..", n > 2
 * the (n-2)th entry.  The handle remembers the name of the last entry it
 * returned, so the usual sequential listing resumes with one seek instead
 * of rescanning, and never holds more than one batch of entries in memory;
 * an arbitrary seekdir() cookie is honoured by counting from the start.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* 0 if ino is a directory of fs (the mount's number: a view's is routed) */
static int check_dir(settfs *fs, uint64_t ino)
{
	if (ino == SETTFS_SNAPDIR_INO && !fs->live)
		return 0;
	SFS_IN_VIEW(fs, ino, check_dir(v_, i_));
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	if (!S_ISDIR(n->in.mode))
		r = -ENOTDIR;
	sfs_node_put(fs, n);
	return r;
}

/* Handles belong to the live filesystem and hold the mount's inode number. */
int settfs_opendir(settfs *fs, uint64_t ino, settfs_dir **dp)
{
	int r = check_dir(fs, ino);
	if (r)
		return r;
	settfs_dir *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	d->ino = ino;
	pthread_mutex_lock(&fs->tab_lock);
	d->next = fs->open_dirs;
	if (d->next)
		d->next->prev = d;
	fs->open_dirs = d;
	pthread_mutex_unlock(&fs->tab_lock);
	*dp = d;
	return 0;
}

void settfs_releasedir(settfs *fs, settfs_dir *d)
{
	pthread_mutex_lock(&fs->tab_lock);
	if (d->prev)
		d->prev->next = d->next;
	else
		fs->open_dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&fs->tab_lock);
	free(d);
}

int settfs_fsyncdir(settfs *fs, uint64_t ino, int datasync)
{
	(void)datasync;
	if (sfs_is_snap_ino(fs, ino))
		return 0;
	/* entries are committed when made: make them durable */
	return sfs_errno(sett_sync(fs->db));
}

static int stat_of(settfs *fs, uint64_t ino, int plus, uint32_t type, struct stat *st,
		   sfs_node **np)
{
	if (!plus) {
		memset(st, 0, sizeof *st);
		st->st_ino = sfs_ino_out(fs, ino);
		st->st_mode = type;
		return 0;
	}
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	sfs_fill_stat(fs, ino, &n->in, st);
	*np = n;
	return 0;
}

static int readdir_in(settfs *fs, uint64_t ino, settfs_dir *d, off_t off, int plus,
		      settfs_fill_fn fill, void *arg);

int settfs_readdir(settfs *fs, settfs_dir *d, off_t off, int plus, settfs_fill_fn fill,
		   void *arg)
{
	if (off < 0)
		return -EINVAL;
	if (d->ino == SETTFS_SNAPDIR_INO && !fs->live)
		return sfs_snapdir_readdir(fs, off, plus, fill, arg);
	SFS_IN_VIEW(fs, d->ino, readdir_in(v_, i_, d, off, plus, fill, arg));
	return readdir_in(fs, d->ino, d, off, plus, fill, arg);
}

/* settfs_readdir of directory ino of fs (a view's own number in a view) */
static int readdir_in(settfs *fs, uint64_t ino, settfs_dir *d, off_t off, int plus,
		      settfs_fill_fn fill, void *arg)
{
	pthread_rwlock_rdlock(&fs->ns_lock);
	struct stat st;
	sfs_node *dn;
	int r = sfs_node_get(fs, ino, &dn);
	if (r) {
		pthread_rwlock_unlock(&fs->ns_lock);
		return r;
	}
	if (dn->in.nlink == 0) {
		/* removed while open: empty */
		sfs_node_put(fs, dn);
		pthread_rwlock_unlock(&fs->ns_lock);
		return 0;
	}
	uint64_t up = dn->in.parent ? dn->in.parent : SETTFS_ROOT_INO;
	if (off == 0) {
		sfs_fill_stat(fs, ino, &dn->in, &st);
		if (fill(arg, ".", &st, 1))
			goto done_dir;
		off = 1;
	}
	sfs_node_put(fs, dn);
	dn = NULL;
	if (off == 1) {
		sfs_node *pn = NULL;
		if (fs->live && ino == SETTFS_ROOT_INO) /* a snapshot's root: in the snapshot directory */
			r = sfs_snapdir_stat(fs->live, &st);
		else
			r = stat_of(fs, up, plus, S_IFDIR, &st, &pn);
		if (pn)
			sfs_node_put(fs, pn);
		if (r)
			goto out;
		if (fill(arg, "..", &st, 2))
			goto out;
		off = 2;
	}

	uint8_t k[SFS_KEY_MAX], p[9];
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = fs->read_version;
	io.prefix = sfs_val(p, sfs_key_dentry(p, ino, NULL, 0));
	sett_iter *it;
	r = sfs_errno(sett_iter_new(fs->db, &io, &it));
	if (r)
		goto out;
	off_t count = 2;
	if (off > 2 && off == d->last_off && d->last_len) {
		sett_iter_seek(it, sfs_val(k, sfs_key_dentry(k, ino, d->last_name, d->last_len)));
		if (sett_iter_valid(it)) {
			sett_val key = sett_iter_key(it);
			if (key.size == 9 + d->last_len &&
			    memcmp((const uint8_t *)key.data + 9, d->last_name, d->last_len) == 0)
				sett_iter_next(it);
		}
		count = off;
	} else {
		sett_iter_rewind(it);
		while (count < off && sett_iter_valid(it)) {
			sett_iter_next(it);
			count++;
		}
	}
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it), val;
		if (key.size <= 9 || key.size > 9 + SETTFS_NAME_MAX) {
			r = -EIO;
			break;
		}
		r = sfs_errno(sett_iter_value(it, &val));
		uint64_t cino;
		uint32_t type;
		if (r == 0)
			r = sfs_dentry_decode(val.data, val.size, &cino, &type);
		if (r)
			break;
		char name[SETTFS_NAME_MAX + 1];
		size_t nl = key.size - 9;
		memcpy(name, (const uint8_t *)key.data + 9, nl);
		name[nl] = 0;
		if (sfs_is_snapdir_name(fs, ino, name)) {
			/* an entry of that name from before snapshots: the snapshot
			 * directory shadows it (counted, so cookies stay put) */
			count++;
			d->last_off = count;
			memcpy(d->last_name, name, nl + 1);
			d->last_len = nl;
			continue;
		}
		sfs_node *cn = NULL;
		r = stat_of(fs, cino, plus, type, &st, &cn);
		if (r == -ENOENT) {
			r = 0; /* a dangling entry: fsck reports it */
			continue;
		}
		if (r)
			break;
		int full = fill(arg, name, &st, count + 1);
		if (cn) {
			if (!full)
				sfs_node_ref(fs, cn, 1, 0);
			sfs_node_put(fs, cn);
		}
		if (full)
			break;
		count++;
		d->last_off = count;
		memcpy(d->last_name, name, nl + 1);
		d->last_len = nl;
	}
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	goto out;
done_dir:
	sfs_node_put(fs, dn);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return r;
}
