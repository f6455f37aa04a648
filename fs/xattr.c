/*
 * xattr.c - extended attributes of settfs: keys X+ino+name.
 *
 * Each change commits the attribute together with the inode's new ctime
 * (and, as every inode commit, the inode's buffered writes).
 * The node caches whether the inode has any attribute at all, so the
 * kernel's getxattr("security.capability") before every write is answered
 * without touching the store.
 */
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
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	io.prefix = sfs_val(p, sfs_key_ino_prefix(p, SFS_TAG_XATTR, n->ino));
	sett_iter *it;
	int r = sfs_errno(sett_iter_new(fs->db, &io, &it));
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

static int change_xattr(settfs *fs, uint64_t ino, const char *name, const void *value,
			size_t size, int flags, int remove)
{
	size_t nl;
	int r = check_xname(name, &nl);
	if (r)
		return r;
	if (!remove && size > SETTFS_XATTR_SIZE_MAX)
		return -E2BIG;
	/*
	 * POSIX ACLs would have to be enforced and mirrored into the mode;
	 * refusing them makes cp/rsync fall back to chmod.
	 */
	if (!remove && strncmp(name, "system.posix_acl_", 17) == 0)
		return -EOPNOTSUPP;
	if (!remove && (r = sfs_space_admit(fs, SFS_INODE_ESTIMATE + nl + size)))
		return r;
	sfs_node *n;
	r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	uint8_t k[SFS_KEY_MAX];
	size_t kn = sfs_key_xattr(k, ino, name, nl);
	int exists = 0;
	if (xattr_state(fs, n) != 0) {
		void *v = NULL;
		size_t vn;
		int g = sett_get(fs->db, sfs_val(k, kn), 0, &v, &vn);
		free(v);
		if (g == 0)
			exists = 1;
		else if (g != SETT_ENOTFOUND)
			r = sfs_errno(g);
	}
	if (r == 0) {
		if (remove && !exists)
			r = -ENODATA;
		else if ((flags & XATTR_CREATE) && exists)
			r = -EEXIST;
		else if ((flags & XATTR_REPLACE) && !exists)
			r = -ENODATA;
	}
	sett_batch *b = NULL;
	if (r == 0)
		r = sfs_errno(sett_batch_new(&b));
	sfs_inode tmp = n->in;
	tmp.ctime = sfs_now();
	if (!remove)
		tmp.flags |= SFS_IFLAG_XATTRS; /* in the batch that writes one */
	if (r == 0)
		r = remove ? sfs_errno(sett_batch_delete(b, sfs_val(k, kn)))
			   : sfs_errno(sett_batch_set(b, sfs_val(k, kn), sfs_val(value, size)));
	if (r == 0)
		r = sfs_batch_node(fs, b, n, &tmp);
	if (r == 0)
		r = sfs_errno(sett_write(fs->db, b, 0, NULL));
	sett_batch_free(b);
	if (r == 0) {
		sfs_node_committed(fs, n, &tmp);
		n->xattrs = remove ? -1 : 1;
	}
	sfs_node_put(fs, n);
	return r;
}

int settfs_setxattr(settfs *fs, uint64_t ino, const char *name, const void *value,
		    size_t size, int flags)
{
	return change_xattr(fs, ino, name, value, size, flags, 0);
}

int settfs_removexattr(settfs *fs, uint64_t ino, const char *name)
{
	return change_xattr(fs, ino, name, NULL, 0, 0, 1);
}

ssize_t settfs_getxattr(settfs *fs, uint64_t ino, const char *name, void *buf, size_t size)
{
	size_t nl;
	int r = check_xname(name, &nl);
	if (r)
		return r;
	sfs_node *n;
	r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	r = xattr_state(fs, n);
	ssize_t res;
	if (r < 0) {
		res = r;
	} else if (r == 0) {
		res = -ENODATA;
	} else {
		uint8_t k[SFS_KEY_MAX];
		void *v = NULL;
		size_t vn = 0;
		int g = sett_get(fs->db, sfs_val(k, sfs_key_xattr(k, ino, name, nl)), 0, &v, &vn);
		if (g == SETT_ENOTFOUND)
			res = -ENODATA;
		else if (g)
			res = sfs_errno(g);
		else if (size == 0)
			res = (ssize_t)vn;
		else if (vn > size)
			res = -ERANGE;
		else {
			if (vn)
				memcpy(buf, v, vn);
			res = (ssize_t)vn;
		}
		free(v);
	}
	sfs_node_put(fs, n);
	return res;
}

ssize_t settfs_listxattr(settfs *fs, uint64_t ino, char *buf, size_t size)
{
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	uint8_t p[9];
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	io.prefix = sfs_val(p, sfs_key_ino_prefix(p, SFS_TAG_XATTR, ino));
	sett_iter *it;
	ssize_t total = 0;
	r = sfs_errno(sett_iter_new(fs->db, &io, &it));
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
