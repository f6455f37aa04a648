/*
 * xattr.c - extended attributes of settfs: keys X+ino+name.
 *
 * Each change commits the attribute together with the inode's new ctime
 * (and, as every inode commit, the inode's buffered writes).
 * The node caches whether the inode has any attribute at all, so the
 * kernel's getxattr("security.capability") before every write is answered
 * without touching the store.
 *
 * POSIX ACLs (acl.h) are attributes with rules: their values are checked,
 * an access ACL and the mode are kept in agreement (a chmod rewrites the
 * ACL, setting the ACL rewrites the mode, both in one commit), and a new
 * inode inherits its directory's default ACL.  The kernel enforces them.
 */
#include "acl.h"
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static int check_xname(const char *name, size_t *len)
{
	*len = strlen(name);
	if (*len == 0 || *len > SETTFS_XATTR_NAME_MAX)
		return -ERANGE;
	return 0;
}

/* Under the node lock: learn whether any attribute exists. */
static int xattr_state(settfs *fs, sfs_node *n)
{
	if (n->xattrs >= 0)
		return n->xattrs;
	uint8_t p[9];
	sett_iter *it;
	int r = sfs_prefix_iter(fs, p, sfs_key_ino_prefix(p, SFS_TAG_XATTR, n->ino), 0, &it);
	if (r)
		return r;
	sett_iter_rewind(it);
	r = sett_iter_valid(it) ? 1 : 0;
	int e = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	if (e)
		return e;
	n->xattrs = r;
	return r;
}

/* Under the node lock: the stored value of `name` (malloc'ed), -ENODATA if absent. */
static int get_xattr(settfs *fs, sfs_node *n, const char *name, void **v, size_t *vn)
{
	*v = NULL;
	*vn = 0;
	int r = xattr_state(fs, n);
	if (r <= 0)
		return r < 0 ? r : -ENODATA;
	uint8_t k[SFS_KEY_MAX];
	int g = sett_get(fs->db, sfs_val(k, sfs_key_xattr(k, n->ino, name, strlen(name))),
			 fs->read_version, v, vn);
	if (g) {
		free(*v);
		*v = NULL;
	}
	return g == SETT_ENOTFOUND ? -ENODATA : sfs_errno(g);
}

/* A stored ACL of node n (malloc'ed, checked), -ENODATA if absent, -EIO if damaged. */
static int get_acl(settfs *fs, sfs_node *n, const char *name, uint8_t **acl, size_t *size)
{
	void *v;
	int r = get_xattr(fs, n, name, &v, size);
	if (r == 0 && sfs_acl_check(v, *size) < 0)
		r = -EIO;
	if (r)
		free(v);
	*acl = r ? NULL : v;
	return r;
}

static int batch_xattr(sett_batch *b, uint64_t ino, const char *name, const void *value,
		       size_t size)
{
	uint8_t k[SFS_KEY_MAX];
	sett_val key = sfs_val(k, sfs_key_xattr(k, ino, name, strlen(name)));
	return sfs_errno(value ? sett_batch_set(b, key, sfs_val(value, size))
			       : sett_batch_delete(b, key));
}

/*
 * Set (remove 0) or remove an attribute.  An ACL is checked (-EINVAL) and
 * stored in its canonical form; an access ACL sets the permission bits of
 * the mode in the same commit, and one the mode says all of is stored as
 * the mode alone (Linux's posix_acl_update_mode).
 */
static int change_xattr(settfs *fs, uint64_t ino, const char *name, const void *value,
			size_t size, int flags, int remove)
{
	size_t nl;
	int r = check_xname(name, &nl);
	if (r)
		return r;
	if (!remove && size > SETTFS_XATTR_SIZE_MAX)
		return -E2BIG;
	if (!remove && !value)
		value = ""; /* below, a NULL value means deletion */
	int acl = sfs_acl_type(name);
	if (acl && fs->no_acl)
		return -EOPNOTSUPP;
	uint8_t *copy = NULL;
	if (acl && !remove) {
		copy = malloc(size ? size : 1);
		if (!copy)
			return -ENOMEM;
		if (size)
			memcpy(copy, value, size);
		if (sfs_acl_check(copy, size) < 0) {
			free(copy);
			return -EINVAL;
		}
		value = copy;
	}
	if (!remove && (r = sfs_space_admit(fs, SFS_INODE_ESTIMATE + nl + size))) {
		free(copy);
		return r;
	}
	sfs_node *n;
	r = sfs_node_get(fs, ino, &n);
	if (r) {
		free(copy);
		return r;
	}
	int exists = 0;
	void *old = NULL;
	size_t oldn;
	int g = get_xattr(fs, n, name, &old, &oldn);
	free(old);
	if (g == 0)
		exists = 1;
	else if (g != -ENODATA)
		r = g;
	sfs_inode tmp = n->in;
	tmp.ctime = sfs_now();
	/* put: the key is written (value) or deleted (value NULL) */
	int put = 1;
	if (r == 0 && acl) {
		/* as Linux: no flags for ACLs, and removing none is no error */
		if (acl == SFS_ACL_DEFAULT && !S_ISDIR(tmp.mode))
			r = remove ? 0 : -EACCES;
		if (remove) {
			put = exists;
		} else if (acl == SFS_ACL_ACCESS) {
			/* the mode follows; an ACL the mode says all of is not kept */
			if (!sfs_acl_equiv_mode(value, size, &tmp.mode)) {
				value = NULL;
				put = exists;
			}
			if (flags & SETTFS_XATTR_KILL_SGID)
				tmp.mode &= ~(uint32_t)S_ISGID;
		}
		if (r == 0 && !put && remove)
			goto out; /* nothing to remove */
	} else if (r == 0) {
		if (remove && !exists)
			r = -ENODATA;
		else if ((flags & XATTR_CREATE) && exists)
			r = -EEXIST;
		else if ((flags & XATTR_REPLACE) && !exists)
			r = -ENODATA;
	}
	if (remove)
		value = NULL;
	sett_batch *b = NULL;
	if (r == 0)
		r = sfs_errno(sett_batch_new(&b));
	if (value)
		tmp.flags |= SFS_IFLAG_XATTRS; /* in the batch that writes one */
	if (r == 0 && put)
		r = batch_xattr(b, ino, name, value, size);
	if (r == 0)
		r = sfs_commit_node(fs, b, n, &tmp, 0);
	sett_batch_free(b);
	if (r == 0 && put)
		n->xattrs = value ? 1 : -1;
out:
	sfs_node_put(fs, n);
	free(copy);
	return r;
}

int sfs_acl_chmod_batch(settfs *fs, sfs_node *n, uint32_t mode, sett_batch *b)
{
	uint8_t *acl;
	size_t size;
	int r = fs->no_acl ? -ENODATA : get_acl(fs, n, SFS_ACL_ACCESS_NAME, &acl, &size);
	if (r)
		return r == -ENODATA ? 0 : r;
	if (sfs_acl_chmod(acl, size, mode))
		r = batch_xattr(b, n->ino, SFS_ACL_ACCESS_NAME, acl, size);
	free(acl);
	return r;
}

int sfs_acl_inherit(settfs *fs, sfs_node *p, uint64_t ino, uint32_t *mode, uint32_t umask,
		    sett_batch *b)
{
	uint8_t *acl;
	size_t size;
	int r = fs->no_acl ? -ENODATA : get_acl(fs, p, SFS_ACL_DEFAULT_NAME, &acl, &size);
	if (r == -ENODATA) {
		*mode &= ~(umask & 0777u);
		return 0;
	}
	if (r)
		return r;
	int added = 0;
	if (S_ISDIR(*mode)) {
		r = batch_xattr(b, ino, SFS_ACL_DEFAULT_NAME, acl, size);
		added = 1;
	}
	if (r == 0 && sfs_acl_create_masq(acl, size, mode)) {
		r = batch_xattr(b, ino, SFS_ACL_ACCESS_NAME, acl, size);
		added = 1;
	}
	free(acl);
	return r ? r : added;
}

int settfs_setxattr(settfs *fs, uint64_t ino, const char *name, const void *value,
		    size_t size, int flags)
{
	if (sfs_is_snap_ino(fs, ino))
		return -EROFS;
	/* a reclaim for space runs before the freeze, not under it */
	int r = sfs_space_admit(fs, SFS_INODE_ESTIMATE + strlen(name) + size);
	if (r)
		return r;
	sfs_freeze_enter(fs);
	r = change_xattr(fs, ino, name, value, size, flags, 0);
	sfs_freeze_exit(fs);
	return r;
}

int settfs_removexattr(settfs *fs, uint64_t ino, const char *name)
{
	if (sfs_is_snap_ino(fs, ino))
		return -EROFS;
	sfs_freeze_enter(fs);
	int r = change_xattr(fs, ino, name, NULL, 0, 0, 1);
	sfs_freeze_exit(fs);
	return r;
}

ssize_t settfs_getxattr(settfs *fs, uint64_t ino, const char *name, void *buf, size_t size)
{
	size_t nl;
	int r = check_xname(name, &nl);
	if (r)
		return r;
	if (fs->no_acl && sfs_acl_type(name))
		return -EOPNOTSUPP;
	if (ino == SETTFS_SNAPDIR_INO && !fs->live)
		return -ENODATA;
	SFS_IN_VIEW(fs, ino, settfs_getxattr(v_, i_, name, buf, size));
	sfs_node *n;
	r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	void *v;
	size_t vn;
	ssize_t res = get_xattr(fs, n, name, &v, &vn);
	if (res == 0) {
		if (size == 0)
			res = (ssize_t)vn;
		else if (vn > size)
			res = -ERANGE;
		else {
			if (vn)
				memcpy(buf, v, vn);
			res = (ssize_t)vn;
		}
	}
	free(v);
	sfs_node_put(fs, n);
	return res;
}

ssize_t settfs_listxattr(settfs *fs, uint64_t ino, char *buf, size_t size)
{
	if (ino == SETTFS_SNAPDIR_INO && !fs->live)
		return 0;
	SFS_IN_VIEW(fs, ino, settfs_listxattr(v_, i_, buf, size));
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	uint8_t p[9];
	sett_iter *it;
	ssize_t total = 0;
	r = sfs_prefix_iter(fs, p, sfs_key_ino_prefix(p, SFS_TAG_XATTR, ino), 0, &it);
	if (r == 0) {
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
			sett_val key = sett_iter_key(it);
			if (key.size <= 9)
				continue;
			size_t nl = key.size - 9;
			if (size) {
				if ((size_t)total + nl + 1 > size) {
					r = -ERANGE;
					break;
				}
				memcpy(buf + total, (const uint8_t *)key.data + 9, nl);
				buf[total + (ssize_t)nl] = 0;
			}
			total += (ssize_t)nl + 1;
		}
		if (r == 0)
			r = sfs_errno(sett_iter_error(it));
		sett_iter_free(it);
		if (r == 0)
			n->xattrs = total > 0;
	}
	sfs_node_put(fs, n);
	return r ? r : total;
}
