/*
 * node.c - the in-memory inode table of settfs.
 *
 * Nodes are reference counted three ways: lookup references held by the
 * kernel, open handles, and transient references of requests in flight.
 * A node is freed when all three reach zero, so memory follows what the
 * kernel holds rather than what the store contains.  The last reference to
 * an unlinked inode reclaims its keys.  Buffered writes (sfs_chunk) live
 * here too, and every commit of an inode carries them (sfs_batch_node).
 */
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The time of a change.  The kernel stamps the changes it times itself
 * (writes and utime(NULL) with the writeback cache) from its coarse clock,
 * current_time(): the daemon reads the same clock, so that a later change
 * never carries an earlier time than one the daemon stamped.
 */
int64_t sfs_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sfs_errno(int err)
{
	if (err >= 0)
		return err;
	if (err > -4096)
		return err;
	switch (err) {
	case SETT_ENOTFOUND:
		return -ENOENT;
	case SETT_ETOOBIG:
		return -EFBIG;
	case SETT_ELOCKED:
		return -EBUSY;
	case SETT_ECLOSED:
		return -ESHUTDOWN;
	case SETT_EKEY:
		return -EKEYREJECTED; /* wrong or missing key: not damage */
	default:
		return -EIO;
	}
}

int sfs_prefix_iter(settfs *fs, const void *p, size_t n, int reverse, sett_iter **it)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = fs->read_version;
	io.key_only = 1;
	io.reverse = reverse;
	io.prefix = sfs_val(p, n);
	return sfs_errno(sett_iter_new(fs->db, &io, it));
}

static size_t bucket_of(const settfs *fs, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 20) & (fs->nbuckets - 1);
}

static sfs_node **slot_of(settfs *fs, uint64_t ino)
{
	sfs_node **pp = &fs->buckets[bucket_of(fs, ino)];
	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->hnext;
	return pp;
}

sfs_node *sfs_node_find_locked(settfs *fs, uint64_t ino)
{
	return *slot_of(fs, ino);
}

static void grow_table(settfs *fs)
{
	size_t nb = fs->nbuckets * 2;
	sfs_node **b = calloc(nb, sizeof *b);
	if (!b)
		return; /* keep the longer chains */
	sfs_node **old = fs->buckets;
	size_t onb = fs->nbuckets;
	fs->buckets = b;
	fs->nbuckets = nb;
	for (size_t i = 0; i < onb; i++) {
		sfs_node *n = old[i];
		while (n) {
			sfs_node *next = n->hnext;
			size_t j = bucket_of(fs, n->ino);
			n->hnext = b[j];
			b[j] = n;
			n = next;
		}
	}
	free(old);
}

static int load_inode(settfs *fs, uint64_t ino, sfs_inode *in)
{
	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t vn = 0;
	int r = sett_get(fs->db, sfs_val(k, sfs_key_inode(k, ino)), fs->read_version, &v, &vn);
	if (r < 0)
		return sfs_errno(r);
	r = sfs_inode_decode(v, vn, in);
	free(v);
	return r;
}

/*
 * Find or add the node of ino and take a transient reference; with
 * `change`, its fill_lock too (before node->lock, see fs_int.h).
 */
static int node_get(settfs *fs, uint64_t ino, int change, sfs_node **np)
{
	if (ino == 0)
		return -ENOENT;
	pthread_mutex_lock(&fs->tab_lock);
	sfs_node **pp = slot_of(fs, ino);
	sfs_node *n = *pp;
	if (!n) {
		n = calloc(1, sizeof *n);
		if (!n) {
			pthread_mutex_unlock(&fs->tab_lock);
			return -ENOMEM;
		}
		n->ino = ino;
		n->xattrs = -1;
		n->ovl_void = UINT64_MAX;
		pthread_mutex_init(&n->lock, NULL);
		pthread_mutex_init(&n->fill_lock, NULL);
		n->data_gen = atomic_fetch_add(&fs->data_gen_next, 1) + 1;
		*pp = n;
		if (++fs->nnodes > fs->nbuckets * 2)
			grow_table(fs);
	}
	n->refs++;
	pthread_mutex_unlock(&fs->tab_lock);

	if (change)
		pthread_mutex_lock(&n->fill_lock);
	pthread_mutex_lock(&n->lock);
	int r = 0;
	if (n->gone)
		r = -ENOENT;
	else if (!n->loaded) {
		r = load_inode(fs, ino, &n->in);
		if (r == 0) {
			n->loaded = 1;
			/* counted by the count at open, or by the node it was before */
			n->counted = S_ISREG(n->in.mode) ? n->in.size : 0;
			n->counted_blocks = S_ISREG(n->in.mode) ? n->in.blocks : 0;
			if (fs->xattr_flag && !(n->in.flags & SFS_IFLAG_XATTRS))
				n->xattrs = 0;
		}
		else
			sfs_inode_free(&n->in);
	}
	if (r) {
		if (change)
			pthread_mutex_unlock(&n->fill_lock);
		sfs_node_put(fs, n);
		return r;
	}
	*np = n;
	return 0;
}

int sfs_node_get(settfs *fs, uint64_t ino, sfs_node **np)
{
	return node_get(fs, ino, 0, np);
}

int sfs_node_get_change(settfs *fs, uint64_t ino, sfs_node **np)
{
	return node_get(fs, ino, 1, np);
}

void sfs_node_put_change(settfs *fs, sfs_node *n)
{
	/* our reference keeps n alive until sfs_node_put */
	pthread_mutex_unlock(&n->fill_lock);
	sfs_node_put(fs, n);
}

void sfs_node_data_changed(settfs *fs, sfs_node *n)
{
	n->data_gen = atomic_fetch_add(&fs->data_gen_next, 1) + 1;
}

void sfs_node_ref(settfs *fs, sfs_node *n, int64_t dlookup, int64_t dopen)
{
	pthread_mutex_lock(&fs->tab_lock);
	if (dlookup < 0 && (uint64_t)-dlookup > n->nlookup)
		n->nlookup = 0;
	else
		n->nlookup += (uint64_t)dlookup;
	if (dopen < 0 && (uint64_t)-dopen > n->nopen)
		n->nopen = 0;
	else
		n->nopen += (uint64_t)dopen;
	pthread_mutex_unlock(&fs->tab_lock);
}

/* fs->logical_bytes and stored_bytes follow the node's size and blocks (a regular file's) */
static void account_size(settfs *fs, sfs_node *n)
{
	int reg = n->loaded && !n->gone && S_ISREG(n->in.mode);
	uint64_t now = reg ? n->in.size : 0, blocks = reg ? n->in.blocks : 0;
	if (now != n->counted) {
		atomic_fetch_add(&fs->logical_bytes, (long long)(now - n->counted));
		n->counted = now;
	}
	if (blocks != n->counted_blocks) {
		atomic_fetch_add(&fs->stored_bytes, (long long)(blocks - n->counted_blocks));
		n->counted_blocks = blocks;
	}
}

void sfs_node_put(settfs *fs, sfs_node *n)
{
	pthread_mutex_lock(&fs->tab_lock);
	int idle = n->nlookup == 0 && n->nopen == 0;
	pthread_mutex_unlock(&fs->tab_lock);
	account_size(fs, n);

	if (idle && n->loaded && !n->gone && !fs->read_version) { /* a view changes nothing */
		if (n->in.nlink == 0) {
			/* nothing can reach it any more: no dentry, no reference */
			sfs_node_drop_chunks(fs, n);
			if (sfs_reclaim(fs, n->ino, &n->in, n->xattrs) == 0) {
				n->gone = 1;
				n->loaded = 0;
				sfs_ovl_free(n);
				n->meta_dirty = 0;
				atomic_store(&n->dirty_since, 0);
				sfs_inode_free(&n->in);
				account_size(fs, n);
			}
		} else if (n->meta_dirty || n->nchunks || n->npages) {
			sfs_node_flush(fs, n, 0);
		}
	}
	pthread_mutex_unlock(&n->lock);

	pthread_mutex_lock(&fs->tab_lock);
	int free_it = --n->refs == 0 && n->nlookup == 0 && n->nopen == 0 &&
		      !n->meta_dirty && !n->nchunks && !n->npages;
	if (free_it) {
		sfs_node **pp = slot_of(fs, n->ino);
		if (*pp == n)
			*pp = n->hnext;
		fs->nnodes--;
	}
	pthread_mutex_unlock(&fs->tab_lock);
	if (free_it)
		sfs_node_destroy(fs, n);
}

void sfs_node_destroy(settfs *fs, sfs_node *n)
{
	sfs_node_drop_chunks(fs, n);
	sfs_inode_free(&n->in);
	free(n->chunks);
	free(n->pages);
	sfs_ovl_free(n);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->fill_lock);
	free(n);
}

int sfs_batch_new_inode(sett_batch *b, uint64_t ino, const sfs_inode *in)
{
	uint8_t k[SFS_KEY_MAX];
	uint8_t *v;
	size_t vn;
	int r = sfs_inode_encode(in, &v, &vn);
	if (r)
		return r;
	r = sett_batch_set(b, sfs_val(k, sfs_key_inode(k, ino)), sfs_val(v, vn));
	free(v);
	return sfs_errno(r);
}

/*
 * The one place an existing inode is added to a batch.  Its in-memory
 * size (and mtime) already cover the buffered writes, so the buffers go
 * into the same batch: a crash leaves the inode with the data its size
 * promises, or the old inode with the old data.
 */
int sfs_batch_node(settfs *fs, sett_batch *b, sfs_node *n, sfs_inode *in)
{
	int r = 0;
	n->npend = 0;
	if (n->nchunks || n->npages) {
		if (n->npages)
			in->flags |= SFS_IFLAG_OVERLAYS; /* in the batch that writes them */
		r = sfs_data_batch(fs, n, b, &in->blocks);
	}
	return r ? r : sfs_batch_new_inode(b, n->ino, in);
}

int sfs_commit_node(settfs *fs, sett_batch *b, sfs_node *n, sfs_inode *in, int sync)
{
	int r = sfs_batch_node(fs, b, n, in);
	if (r == 0)
		r = sfs_errno(sett_write(fs->db, b, sync, NULL));
	if (r == 0)
		sfs_node_committed(fs, n, in);
	return r;
}

void settfs_set_attr_fn(settfs *fs, void (*fn)(void *arg, uint64_t ino), void *arg)
{
	fs->attr_fn = fn;
	fs->attr_arg = arg;
}

void sfs_node_committed(settfs *fs, sfs_node *n, const sfs_inode *in)
{
	if (in->blocks != n->in.blocks && fs->attr_fn)
		fs->attr_fn(fs->attr_arg, n->ino); /* settfs_set_attr_fn */
	n->in = *in;
	n->meta_dirty = 0;
	sfs_ovl_committed(fs, n);
	sfs_node_drop_chunks(fs, n);
	atomic_store(&n->dirty_since, 0);
}

int64_t sfs_mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sfs_node_dirtied(sfs_node *n, int what)
{
	n->meta_dirty |= what;
	if (atomic_load(&n->dirty_since) == 0)
		atomic_store(&n->dirty_since, sfs_mono_now());
}

void sfs_node_drop_chunks(settfs *fs, sfs_node *n)
{
	for (size_t i = 0; i < n->nchunks; i++)
		if (!n->chunks[i].borrowed)
			free(n->chunks[i].buf);
	for (size_t i = 0; i < n->npages; i++)
		free(n->pages[i].buf);
	atomic_fetch_sub(&fs->dirty_bytes, (long long)(n->nchunks * fs->chunk_size +
						       n->npages * SFS_PAGE_SIZE));
	n->nchunks = 0;
	n->npages = 0;
}

int sfs_node_flush(settfs *fs, sfs_node *n, int sync)
{
	if (n->gone || !n->loaded)
		return 0;
	if (!n->nchunks && !n->npages && !n->meta_dirty)
		return sync ? sfs_errno(sett_sync(fs->db)) : 0;
	int atime_only = !n->nchunks && !n->npages && n->meta_dirty == SFS_DIRTY_ATIME;
	sett_batch *b;
	int r = sfs_errno(sett_batch_new(&b));
	if (r)
		return r;
	sfs_inode tmp = n->in;
	r = sfs_commit_node(fs, b, n, &tmp, sync);
	sett_batch_free(b);
	if (r != 0 && atime_only && !sync) {
		/* best effort (SFS_DIRTY_ATIME) */
		n->meta_dirty = 0;
		atomic_store(&n->dirty_since, 0);
		r = 0;
	}
	return r;
}

int sfs_flush_nodes(settfs *fs, int64_t min_age_ns, int drop_failed)
{
	int64_t now = sfs_mono_now();
	pthread_mutex_lock(&fs->tab_lock);
	size_t n = 0, cap = fs->nnodes;
	uint64_t *inos = malloc((cap ? cap : 1) * sizeof *inos);
	for (size_t i = 0; inos && i < fs->nbuckets; i++)
		for (sfs_node *x = fs->buckets[i]; x && n < cap; x = x->hnext) {
			int64_t since = atomic_load(&x->dirty_since);
			if (since && now - since >= min_age_ns)
				inos[n++] = x->ino;
		}
	pthread_mutex_unlock(&fs->tab_lock);
	if (!inos)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		sfs_node *x;
		int r = sfs_node_get(fs, inos[i], &x);
		if (r == 0) {
			r = sfs_node_flush(fs, x, 0);
			if (r && drop_failed) {
				/* the data is lost either way: let the node go */
				sfs_node_drop_chunks(fs, x);
				x->meta_dirty = 0;
				atomic_store(&x->dirty_since, 0);
			}
			sfs_node_put(fs, x);
		}
		if (r && !rc && r != -ENOENT)
			rc = r;
	}
	free(inos);
	return rc;
}

/* Add b to the store when it holds max_batch_deletes entries, and empty it. */
static int commit_if_full(settfs *fs, sett_batch *b)
{
	if (sett_batch_count(b) < fs->max_batch_deletes)
		return 0;
	int r = sfs_errno(sett_write(fs->db, b, 0, NULL));
	sett_batch_clear(b);
	return r;
}

/* Add a deletion of every key under `tag`+ino to b (seeking it). */
static int delete_prefix(settfs *fs, sett_iter *it, char tag, uint64_t ino, sett_batch *b)
{
	uint8_t p[9];
	size_t pn = sfs_key_ino_prefix(p, tag, ino);
	int r = 0;
	for (sett_iter_seek(it, sfs_val(p, pn)); r == 0 && sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it);
		if (k.size < pn || memcmp(k.data, p, pn) != 0)
			break;
		r = sfs_errno(sett_batch_delete(b, k));
		if (r == 0)
			r = commit_if_full(fs, b);
	}
	return r ? r : sfs_errno(sett_iter_error(it));
}

/*
 * Chunks a regular file can have, when they can be named without a scan:
 * no overlay pages and at most 16 chunks (else -1).  A file without
 * stored bytes has none (no chunk is ever empty).
 */
static int64_t known_chunks(const settfs *fs, const sfs_inode *in)
{
	if (!in || !S_ISREG(in->mode) || (in->flags & SFS_IFLAG_OVERLAYS))
		return -1;
	if (in->blocks == 0)
		return 0;
	uint64_t n = (in->size + fs->chunk_size - 1) / fs->chunk_size;
	return n <= 16 ? (int64_t)n : -1;
}

/*
 * Delete every key of an unlinked inode in as few commits as fit a
 * memtable (usually one): chunks and overlay pages (named, or found with
 * one key-only iterator that also finds the xattrs), then the inode and
 * its O key.  The O key goes in the last commit, so a crash in the middle
 * leaves an orphan that the next open finishes.
 */
int sfs_reclaim(settfs *fs, uint64_t ino, const sfs_inode *in, int xattrs)
{
	uint8_t k[SFS_KEY_MAX];
	int64_t nchunks = known_chunks(fs, in);
	sett_batch *b;
	int r = sfs_errno(sett_batch_new(&b));
	if (r)
		return r;
	sett_iter *it = NULL;
	if (nchunks < 0 || xattrs != 0) {
		sett_iter_options io;
		sett_iter_options_init(&io);
		io.read_version = fs->read_version;
		io.key_only = 1;
		r = sfs_errno(sett_iter_new(fs->db, &io, &it));
	}
	for (int64_t i = 0; r == 0 && i < nchunks; i++)
		r = sfs_errno(sett_batch_delete(b, sfs_val(k, sfs_key_chunk(k, ino, (uint64_t)i))));
	if (r == 0 && nchunks < 0)
		r = delete_prefix(fs, it, SFS_TAG_CHUNK, ino, b);
	if (r == 0 && xattrs != 0)
		r = delete_prefix(fs, it, SFS_TAG_XATTR, ino, b);
	sett_iter_free(it);
	if (r == 0)
		r = sfs_errno(sett_batch_delete(b, sfs_val(k, sfs_key_inode(k, ino))));
	if (r == 0)
		r = sfs_errno(sett_batch_delete(b, sfs_val(k, sfs_key_orphan(k, ino))));
	if (r == 0)
		r = sfs_errno(sett_write(fs->db, b, 0, NULL));
	sett_batch_free(b);
	if (r == 0)
		atomic_fetch_sub(&fs->used_inodes, 1);
	return r;
}

void sfs_fill_stat(const settfs *fs, uint64_t ino, const sfs_inode *in, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = sfs_ino_out(fs, ino);
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)in->size;
	st->st_blksize = fs->chunk_size;
	st->st_blocks = (blkcnt_t)((in->blocks + 511) / 512);
	st->st_atim.tv_sec = in->atime / 1000000000;
	st->st_atim.tv_nsec = in->atime % 1000000000;
	st->st_mtim.tv_sec = in->mtime / 1000000000;
	st->st_mtim.tv_nsec = in->mtime % 1000000000;
	st->st_ctim.tv_sec = in->ctime / 1000000000;
	st->st_ctim.tv_nsec = in->ctime % 1000000000;
	if (st->st_atim.tv_nsec < 0) {
		st->st_atim.tv_sec--;
		st->st_atim.tv_nsec += 1000000000;
	}
	if (st->st_mtim.tv_nsec < 0) {
		st->st_mtim.tv_sec--;
		st->st_mtim.tv_nsec += 1000000000;
	}
	if (st->st_ctim.tv_nsec < 0) {
		st->st_ctim.tv_sec--;
		st->st_ctim.tv_nsec += 1000000000;
	}
}
