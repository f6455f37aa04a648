/*
 * data.c - file data and attributes of settfs: read, write, truncate,
 * setattr, fallocate, SEEK_DATA/SEEK_HOLE, fsync.
 *
 * A file's bytes are cut into chunks of the store's chunk size; chunk i
 * holds bytes [i*cs, (i+1)*cs) under key C+ino+i, short when the data ends
 * earlier, absent for a hole.  Bytes past a chunk's stored length (below the
 * file size) read as zeros.  No chunk lies past the end of file.
 *
 * Writes go to per-inode chunk buffers (sfs_chunk) so that small writes into
 * one chunk are combined; the buffers are committed with the inode (size,
 * mtime, blocks) in one batch on flush, fsync, release, or when the inode
 * or the whole filesystem holds too many buffered bytes.  Reads see the
 * buffers directly.  Everything here runs under the node lock.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sfs_chunk *find_chunk(sfs_node *n, uint64_t idx)
{
	for (size_t i = 0; i < n->nchunks; i++)
		if (n->chunks[i].idx == idx)
			return &n->chunks[i];
	return NULL;
}

/* Read a stored chunk into buf (cs bytes, zero-filled past its length). */
static int load_chunk(settfs *fs, uint64_t ino, uint64_t idx, uint8_t *buf, uint32_t *len)
{
	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t vn = 0;
	int r = sett_get(fs->db, sfs_val(k, sfs_key_chunk(k, ino, idx)), 0, &v, &vn);
	if (r == SETT_ENOTFOUND) {
		*len = 0;
		memset(buf, 0, fs->chunk_size);
		return 0;
	}
	if (r)
		return sfs_errno(r);
	if (vn > fs->chunk_size) {
		free(v);
		return -EIO;
	}
	if (vn)
		memcpy(buf, v, vn);
	memset(buf + vn, 0, fs->chunk_size - vn);
	free(v);
	*len = (uint32_t)vn;
	return 0;
}

static int get_chunk_buffer(settfs *fs, sfs_node *n, uint64_t idx, sfs_chunk **cp)
{
	sfs_chunk *c = find_chunk(n, idx);
	if (c) {
		*cp = c;
		return 0;
	}
	if (n->nchunks == n->capchunks) {
		size_t cap = n->capchunks ? n->capchunks * 2 : 8;
		sfs_chunk *nc = realloc(n->chunks, cap * sizeof *nc);
		if (!nc)
			return -ENOMEM;
		n->chunks = nc;
		n->capchunks = cap;
	}
	uint8_t *buf = malloc(fs->chunk_size);
	if (!buf)
		return -ENOMEM;
	uint32_t len = 0;
	int r = 0;
	/* no chunk exists at or past the end of file */
	if (idx * fs->chunk_size < n->in.size)
		r = load_chunk(fs, n->ino, idx, buf, &len);
	else
		memset(buf, 0, fs->chunk_size);
	if (r) {
		free(buf);
		return r;
	}
	c = &n->chunks[n->nchunks++];
	c->idx = idx;
	c->len = c->stored_len = len;
	c->buf = buf;
	atomic_fetch_add(&fs->dirty_bytes, (long long)fs->chunk_size);
	*cp = c;
	return 0;
}

static int node_get_reg(settfs *fs, uint64_t ino, sfs_node **np)
{
	int r = sfs_node_get(fs, ino, np);
	if (r)
		return r;
	if (!S_ISREG((*np)->in.mode)) {
		r = S_ISDIR((*np)->in.mode) ? -EISDIR : -EINVAL;
		sfs_node_put(fs, *np);
		return r;
	}
	return 0;
}

ssize_t settfs_write(settfs *fs, uint64_t ino, off_t off, const void *buf, size_t size,
		     int append)
{
	sfs_node *n;
	int r = node_get_reg(fs, ino, &n);
	if (r)
		return r;
	if (append)
		off = (off_t)n->in.size;
	if (off < 0 || (uint64_t)off + size > (uint64_t)INT64_MAX) {
		sfs_node_put(fs, n);
		return off < 0 ? -EINVAL : -EFBIG;
	}
	const uint8_t *src = buf;
	uint64_t pos = (uint64_t)off, end = pos + size, cs = fs->chunk_size;
	while (pos < end) {
		uint64_t idx = pos / cs;
		uint32_t coff = (uint32_t)(pos - idx * cs);
		uint32_t cend = (uint32_t)((end - idx * cs) < cs ? end - idx * cs : cs);
		sfs_chunk *c;
		r = get_chunk_buffer(fs, n, idx, &c);
		if (r)
			break;
		memcpy(c->buf + coff, src, cend - coff);
		if (cend > c->len)
			c->len = cend;
		src += cend - coff;
		pos = idx * cs + cend;
	}
	if (pos > (uint64_t)off) {
		if (pos > n->in.size)
			n->in.size = pos;
		n->in.mtime = n->in.ctime = sfs_now();
		n->meta_dirty = 1;
	}
	if (r == 0 && (n->nchunks * cs >= fs->inode_dirty_limit ||
		       (size_t)atomic_load(&fs->dirty_bytes) > fs->dirty_limit))
		r = sfs_node_flush(fs, n, 0);
	sfs_node_put(fs, n);
	if (pos > (uint64_t)off && r == 0)
		return (ssize_t)(pos - (uint64_t)off);
	return r ? r : 0;
}

ssize_t settfs_read(settfs *fs, uint64_t ino, off_t off, size_t size, void *buf)
{
	sfs_node *n;
	int r = node_get_reg(fs, ino, &n);
	if (r)
		return r;
	if (off < 0) {
		sfs_node_put(fs, n);
		return -EINVAL;
	}
	uint64_t fsize = n->in.size;
	if ((uint64_t)off >= fsize || size == 0) {
		sfs_node_put(fs, n);
		return 0;
	}
	if (size > fsize - (uint64_t)off)
		size = (size_t)(fsize - (uint64_t)off);
	uint8_t *dst = buf;
	uint64_t pos = (uint64_t)off, end = pos + size, cs = fs->chunk_size;
	uint8_t k[SFS_KEY_MAX];
	while (pos < end && r == 0) {
		uint64_t idx = pos / cs;
		uint64_t coff = pos - idx * cs;
		uint64_t cend = end - idx * cs < cs ? end - idx * cs : cs;
		size_t want = (size_t)(cend - coff);
		sfs_chunk *c = find_chunk(n, idx);
		if (c) {
			size_t have = c->len > coff ? c->len - coff : 0;
			if (have > want)
				have = want;
			memcpy(dst, c->buf + coff, have);
			memset(dst + have, 0, want - have);
		} else {
			void *v = NULL;
			size_t vn = 0;
			int g = sett_get(fs->db, sfs_val(k, sfs_key_chunk(k, ino, idx)), 0, &v, &vn);
			if (g == SETT_ENOTFOUND) {
				memset(dst, 0, want);
			} else if (g) {
				r = sfs_errno(g);
			} else if (vn > cs) {
				r = -EIO;
			} else {
				size_t have = vn > coff ? vn - coff : 0;
				if (have > want)
					have = want;
				memcpy(dst, (uint8_t *)v + coff, have);
				memset(dst + have, 0, want - have);
			}
			free(v);
		}
		dst += want;
		pos += want;
	}
	if (r == 0) {
		/* relatime */
		int64_t now = sfs_now();
		if (n->in.atime <= n->in.mtime || n->in.atime <= n->in.ctime ||
		    now - n->in.atime > 86400LL * 1000000000) {
			n->in.atime = now;
			n->meta_dirty = 1;
		}
	}
	sfs_node_put(fs, n);
	return r ? r : (ssize_t)size;
}

/*
 * Chunk deletions beyond fs->max_batch_deletes are committed in intermediate batches
 * (with the inode's block count, size unchanged) so that a batch always
 * fits the engine's memtable.  A crash between them leaves the old size with
 * zeros where deleted chunks were: the bytes the truncate was dropping.
 */
static int commit_partial(settfs *fs, uint64_t ino, sfs_inode *in, sett_batch *b,
			  uint64_t *freed)
{
	sfs_inode tmp = *in;
	tmp.blocks = *freed > tmp.blocks ? 0 : tmp.blocks - *freed;
	int r = sfs_batch_inode(b, ino, &tmp);
	if (r == 0)
		r = sfs_errno(sett_write(fs->db, b, 0, NULL));
	sett_batch_clear(b);
	if (r == 0) {
		in->blocks = tmp.blocks;
		*freed = 0;
	}
	return r;
}

int sfs_truncate_batch(settfs *fs, uint64_t ino, sfs_inode *in, uint64_t size,
		       sett_batch *b)
{
	uint64_t cs = fs->chunk_size;
	if (size >= in->size) {
		in->size = size;
		return 0;
	}
	uint8_t k[SFS_KEY_MAX], p[9];
	uint64_t first = (size + cs - 1) / cs; /* chunks from here on go */
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	io.prefix = sfs_val(p, sfs_key_ino_prefix(p, SFS_TAG_CHUNK, ino));
	sett_iter *it;
	int r = sfs_errno(sett_iter_new(fs->db, &io, &it));
	if (r)
		return r;
	uint64_t freed = 0;
	size_t deletes = 0;
	for (sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, ino, first)));
	     r == 0 && sett_iter_valid(it); sett_iter_next(it)) {
		if (size > 0) {
			/* to keep the block count exact; truncating to 0 zeroes it */
			sett_val v;
			r = sfs_errno(sett_iter_value(it, &v));
			if (r)
				break;
			freed += v.size;
		}
		r = sfs_errno(sett_batch_delete(b, sett_iter_key(it)));
		if (r == 0 && ++deletes % fs->max_batch_deletes == 0)
			r = commit_partial(fs, ino, in, b, &freed);
	}
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	if (r)
		return r;
	if (size % cs) {
		/* cut the chunk that holds the new end */
		uint64_t idx = size / cs;
		uint32_t keep = (uint32_t)(size % cs);
		void *v = NULL;
		size_t vn = 0;
		size_t kn = sfs_key_chunk(k, ino, idx);
		int g = sett_get(fs->db, sfs_val(k, kn), 0, &v, &vn);
		if (g == 0 && vn > keep) {
			r = sfs_errno(sett_batch_set(b, sfs_val(k, kn), sfs_val(v, keep)));
			freed += vn - keep;
		} else if (g && g != SETT_ENOTFOUND) {
			r = sfs_errno(g);
		}
		free(v);
	}
	if (r == 0) {
		in->blocks = size == 0 || freed > in->blocks ? 0 : in->blocks - freed;
		in->size = size;
	}
	return r;
}

/* Truncate to `size` in one commit, with mtime/ctime now.  Node locked. */
static int truncate_node(settfs *fs, sfs_node *n, uint64_t size)
{
	int r = sfs_node_flush(fs, n, 0);
	if (r)
		return r;
	sett_batch *b;
	r = sfs_errno(sett_batch_new(&b));
	if (r)
		return r;
	sfs_inode tmp = n->in;
	r = sfs_truncate_batch(fs, n->ino, &tmp, size, b);
	tmp.mtime = tmp.ctime = sfs_now();
	if (r == 0)
		r = sfs_batch_inode(b, n->ino, &tmp);
	if (r == 0)
		r = sfs_errno(sett_write(fs->db, b, 0, NULL));
	sett_batch_free(b);
	if (r == 0)
		n->in = tmp;
	return r;
}

int settfs_file_open(settfs *fs, uint64_t ino, int flags)
{
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	if (S_ISDIR(n->in.mode) && (flags & O_ACCMODE) != O_RDONLY)
		r = -EISDIR;
	else if ((flags & O_TRUNC) && S_ISREG(n->in.mode) && (flags & O_ACCMODE) != O_RDONLY)
		r = truncate_node(fs, n, 0);
	if (r == 0)
		sfs_node_ref(fs, n, 0, 1);
	sfs_node_put(fs, n);
	return r;
}

int settfs_flush(settfs *fs, uint64_t ino)
{
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	r = sfs_node_flush(fs, n, 0);
	sfs_node_put(fs, n);
	return r;
}

int settfs_release(settfs *fs, uint64_t ino)
{
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	r = sfs_node_flush(fs, n, 0);
	sfs_node_ref(fs, n, 0, -1);
	sfs_node_put(fs, n); /* reclaims an unlinked file at its last close */
	return r;
}

int settfs_fsync(settfs *fs, uint64_t ino, int datasync)
{
	(void)datasync; /* data needs the size in the inode: same commit */
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	r = sfs_node_flush(fs, n, 1);
	sfs_node_put(fs, n);
	return r;
}

/* May the caller keep set-group-ID on a file of group gid? */
static int in_group(const settfs_ctx *ctx, uint32_t gid)
{
	if (ctx->uid == 0 || ctx->gid == gid)
		return 1;
	for (int i = 0; i < ctx->ngroups; i++)
		if (ctx->groups && ctx->groups[i] == gid)
			return 1;
	return 0;
}

int settfs_setattr(settfs *fs, const settfs_ctx *ctx, uint64_t ino, const struct stat *attr,
		   int to_set, struct stat *st)
{
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	if (to_set & SETTFS_SET_SIZE) {
		if (S_ISDIR(n->in.mode))
			r = -EISDIR;
		else if (!S_ISREG(n->in.mode))
			r = -EINVAL;
		else if (attr->st_size < 0)
			r = -EINVAL;
	}
	/* the inode is written whole: commit buffered data with it first */
	if (r == 0)
		r = sfs_node_flush(fs, n, 0);
	sett_batch *b = NULL;
	if (r == 0)
		r = sfs_errno(sett_batch_new(&b));
	if (r) {
		sfs_node_put(fs, n);
		return r;
	}
	int64_t now = sfs_now();
	sfs_inode tmp = n->in;
	if (to_set & SETTFS_SET_SIZE) {
		r = sfs_truncate_batch(fs, ino, &tmp, (uint64_t)attr->st_size, b);
		tmp.mtime = now;
	}
	if (to_set & (SETTFS_SET_UID | SETTFS_SET_GID)) {
		if (!S_ISDIR(tmp.mode)) {
			tmp.mode &= ~(uint32_t)S_ISUID;
			if (tmp.mode & S_IXGRP)
				tmp.mode &= ~(uint32_t)S_ISGID;
		}
		if (to_set & SETTFS_SET_UID)
			tmp.uid = (uint32_t)attr->st_uid;
		if (to_set & SETTFS_SET_GID)
			tmp.gid = (uint32_t)attr->st_gid;
	}
	if (to_set & SETTFS_SET_MODE) {
		tmp.mode = (tmp.mode & S_IFMT) | ((uint32_t)attr->st_mode & 07777);
		if ((tmp.mode & S_ISGID) && ctx && !in_group(ctx, tmp.gid))
			tmp.mode &= ~(uint32_t)S_ISGID;
	}
	if (to_set & SETTFS_SET_ATIME_NOW)
		tmp.atime = now;
	else if (to_set & SETTFS_SET_ATIME)
		tmp.atime = (int64_t)attr->st_atim.tv_sec * 1000000000 + attr->st_atim.tv_nsec;
	if (to_set & SETTFS_SET_MTIME_NOW)
		tmp.mtime = now;
	else if (to_set & SETTFS_SET_MTIME)
		tmp.mtime = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
	if (to_set & SETTFS_SET_CTIME)
		tmp.ctime = (int64_t)attr->st_ctim.tv_sec * 1000000000 + attr->st_ctim.tv_nsec;
	else
		tmp.ctime = now;
	if (r == 0)
		r = sfs_batch_inode(b, ino, &tmp);
	if (r == 0)
		r = sfs_errno(sett_write(fs->db, b, 0, NULL));
	sett_batch_free(b);
	if (r == 0) {
		n->in = tmp;
		n->meta_dirty = 0;
		sfs_fill_stat(fs, ino, &n->in, st);
	}
	sfs_node_put(fs, n);
	return r;
}

/* Zero [from, to) of the stored chunk idx (node flushed); adds to b. */
static int punch_partial(settfs *fs, uint64_t ino, uint64_t idx, uint32_t from, uint32_t to,
			 sett_batch *b, uint64_t *freed)
{
	uint8_t k[SFS_KEY_MAX];
	size_t kn = sfs_key_chunk(k, ino, idx);
	void *v = NULL;
	size_t vn = 0;
	int g = sett_get(fs->db, sfs_val(k, kn), 0, &v, &vn);
	if (g == SETT_ENOTFOUND)
		return 0;
	if (g)
		return sfs_errno(g);
	int r = 0;
	if (vn > fs->chunk_size) {
		r = -EIO;
	} else if (from < vn) {
		if (to >= vn) {
			/* the hole reaches the stored end: shorten the chunk */
			*freed += vn - from;
			vn = from;
		} else {
			memset((uint8_t *)v + from, 0, to - from);
		}
		if (vn == 0)
			r = sfs_errno(sett_batch_delete(b, sfs_val(k, kn)));
		else
			r = sfs_errno(sett_batch_set(b, sfs_val(k, kn), sfs_val(v, vn)));
	}
	free(v);
	return r;
}

static int punch_hole(settfs *fs, sfs_node *n, uint64_t off, uint64_t len)
{
	uint64_t cs = fs->chunk_size, end = off + len;
	if (end > n->in.size)
		end = n->in.size;
	if (off >= end)
		return 0;
	int r = sfs_node_flush(fs, n, 0);
	sett_batch *b = NULL;
	if (r == 0)
		r = sfs_errno(sett_batch_new(&b));
	if (r)
		return r;
	uint64_t freed = 0;
	uint64_t first = off / cs, last = (end - 1) / cs;
	uint8_t k[SFS_KEY_MAX];
	for (uint64_t idx = first; idx <= last && r == 0; idx++) {
		uint64_t cstart = idx * cs;
		uint32_t from = (uint32_t)(off > cstart ? off - cstart : 0);
		uint32_t to = (uint32_t)(end - cstart < cs ? end - cstart : cs);
		if (from == 0 && to == cs) {
			/* whole chunk: delete it (its size is needed for blocks) */
			void *v = NULL;
			size_t vn = 0;
			size_t kn = sfs_key_chunk(k, n->ino, idx);
			int g = sett_get(fs->db, sfs_val(k, kn), 0, &v, &vn);
			free(v);
			if (g == 0) {
				freed += vn;
				r = sfs_errno(sett_batch_delete(b, sfs_val(k, kn)));
				if (r == 0 && sett_batch_count(b) >= fs->max_batch_deletes)
					r = commit_partial(fs, n->ino, &n->in, b, &freed);
			} else if (g != SETT_ENOTFOUND) {
				r = sfs_errno(g);
			}
		} else {
			r = punch_partial(fs, n->ino, idx, from, to, b, &freed);
		}
	}
	sfs_inode tmp = n->in;
	tmp.blocks = freed > tmp.blocks ? 0 : tmp.blocks - freed;
	tmp.mtime = tmp.ctime = sfs_now();
	if (r == 0)
		r = sfs_batch_inode(b, n->ino, &tmp);
	if (r == 0)
		r = sfs_errno(sett_write(fs->db, b, 0, NULL));
	sett_batch_free(b);
	if (r == 0)
		n->in = tmp;
	return r;
}

int settfs_fallocate(settfs *fs, uint64_t ino, int mode, off_t off, off_t len)
{
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((uint64_t)off + (uint64_t)len > (uint64_t)INT64_MAX)
		return -EFBIG;
	sfs_node *n;
	int r = node_get_reg(fs, ino, &n);
	if (r)
		return r;
	if (mode == 0) {
		/* space is not reserved: chunks are written when data arrives */
		uint64_t end = (uint64_t)off + (uint64_t)len;
		if (end > n->in.size)
			r = truncate_node(fs, n, end);
	} else if (mode == FALLOC_FL_KEEP_SIZE) {
		r = 0;
	} else if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		r = punch_hole(fs, n, (uint64_t)off, (uint64_t)len);
	} else {
		r = -EOPNOTSUPP;
	}
	sfs_node_put(fs, n);
	return r;
}

off_t settfs_lseek(settfs *fs, uint64_t ino, off_t off, int whence)
{
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	sfs_node *n;
	int r = node_get_reg(fs, ino, &n);
	if (r)
		return r;
	uint64_t size = n->in.size, cs = fs->chunk_size;
	if (off < 0 || (uint64_t)off >= size) {
		sfs_node_put(fs, n);
		return -ENXIO;
	}
	r = sfs_node_flush(fs, n, 0);
	sett_iter *it = NULL;
	uint8_t k[SFS_KEY_MAX], p[9];
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	io.prefix = sfs_val(p, sfs_key_ino_prefix(p, SFS_TAG_CHUNK, ino));
	if (r == 0)
		r = sfs_errno(sett_iter_new(fs->db, &io, &it));
	if (r) {
		sfs_node_put(fs, n);
		return r;
	}
	uint64_t pos = (uint64_t)off;
	off_t result = -ENXIO;
	sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, ino, pos / cs)));
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it), v;
		if (key.size != 17)
			continue;
		uint64_t idx = sfs_get_be64((const uint8_t *)key.data + 9);
		if (sett_iter_value(it, &v) != 0)
			break;
		uint64_t dstart = idx * cs, dend = dstart + v.size;
		if (dend > size)
			dend = size;
		if (v.size == 0 || dend <= pos)
			continue;
		if (whence == SEEK_DATA) {
			result = (off_t)(dstart > pos ? dstart : pos);
			break;
		}
		if (dstart > pos)
			break; /* pos is in a hole */
		pos = dend;
		if (dend < dstart + cs)
			break; /* short chunk: hole after it */
	}
	if (whence == SEEK_HOLE)
		result = (off_t)(pos < size ? pos : size);
	r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	sfs_node_put(fs, n);
	return r ? r : result;
}
