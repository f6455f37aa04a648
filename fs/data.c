/*
 * data.c - file data and attributes of settfs: read, write, truncate,
 * setattr, fallocate, SEEK_DATA/SEEK_HOLE, fsync.
 *
 * A file's bytes are cut into chunks of the store's chunk size; chunk i
 * holds bytes [i*cs, (i+1)*cs) under key C+ino+i, short when the data ends
 * earlier, absent for a hole.  A chunk may also have overlay pages, keys
 * C+ino+i+pg: each replaces the 4 KiB page pg of the chunk (bytes past the
 * page's stored length read as zeros).  Bytes past everything stored (below
 * the file size) read as zeros.  No stored byte lies past the end of file.
 *
 * Writes go to per-inode buffers so that small writes are combined: a chunk
 * past the end of file or written whole is buffered whole (sfs_chunk, the
 * sequential case); a smaller write into a stored chunk buffers only the
 * pages it touches (sfs_page), so a 4 KiB random write costs a 4 KiB
 * overlay instead of a read-modify-write of the whole chunk.  When a
 * chunk would have more than half its pages as overlays, the commit folds
 * them: it writes the merged chunk and deletes the overlays in the same
 * batch.  The buffers are committed with the inode (size, mtime, blocks)
 * in one batch on flush, fsync, release, or when the inode or the whole
 * filesystem holds too many buffered bytes.  Reads see the buffers
 * directly.  Chunks a write covers whole past the end of file are not
 * copied: they are committed from the writer's bytes before it returns.
 * Which overlay pages each stored chunk has is kept in the node's overlay
 * map, so that reads and commits name a chunk's keys (point gets) instead
 * of walking them with an iterator, which would step over every deleted
 * overlay and old version too.  Everything here runs under the node lock.
 *
 * Compression (format 4): a chunk's value is stored raw or compressed, as
 * its key's user meta byte says (schema.h); the store's setting (fs->codec)
 * decides for each chunk written, and an incompressible one is stored raw
 * (sfs_chunk_compress probes it first).  Every read decodes the value,
 * whatever the setting is now; a change of part of a compressed chunk
 * (truncate, punch) decodes it and writes it anew under the setting.
 * Overlay pages are always raw.
 *
 * Block accounting (sfs_inode.blocks): a chunk counts its stored length (a
 * compressed one its compressed value), an overlay page counts
 * SFS_PAGE_SIZE whatever its length.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG_BASE UINT32_MAX /* "page" index of a chunk's base key */

static uint32_t pages_per_chunk(const settfs *fs)
{
	return fs->chunk_size / SFS_PAGE_SIZE;
}

/* A chunk with more overlays than this is folded on commit. */
static uint32_t fold_limit(const settfs *fs)
{
	return pages_per_chunk(fs) / 2;
}

static void bit_set(uint64_t *bits, uint32_t i)
{
	bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static int bit_test(const uint64_t *bits, uint32_t i)
{
	return (int)(bits[i / 64] >> (i % 64) & 1);
}

static sfs_chunk *find_chunk(sfs_node *n, uint64_t idx)
{
	for (size_t i = 0; i < n->nchunks; i++)
		if (n->chunks[i].idx == idx)
			return &n->chunks[i];
	return NULL;
}

static sfs_page *find_page(sfs_node *n, uint64_t idx, uint32_t pg)
{
	for (size_t i = 0; i < n->npages; i++)
		if (n->pages[i].idx == idx && n->pages[i].pg == pg)
			return &n->pages[i];
	return NULL;
}

static int has_pages(const sfs_node *n, uint64_t idx)
{
	for (size_t i = 0; i < n->npages; i++)
		if (n->pages[i].idx == idx)
			return 1;
	return 0;
}

/* Key-only iterator over the C keys of ino (values load on demand); p: 9 bytes. */
static int chunk_iter(settfs *fs, uint64_t ino, uint8_t *p, sett_iter **it)
{
	return sfs_prefix_iter(fs, p, sfs_key_ino_prefix(p, SFS_TAG_CHUNK, ino), 0, it);
}

/* Decode a C key of the iterated inode: chunk index and page (PG_BASE). */
static int parse_ckey(const settfs *fs, sett_val key, uint64_t *idx, uint32_t *pg)
{
	const uint8_t *k = key.data;
	if (key.size == SFS_CHUNK_KEY_LEN) {
		*idx = sfs_get_be64(k + 9);
		*pg = PG_BASE;
		return 0;
	}
	if (key.size == SFS_PAGE_KEY_LEN) {
		*idx = sfs_get_be64(k + 9);
		*pg = sfs_get_be32(k + 17);
		if (*pg < pages_per_chunk(fs))
			return 0;
	}
	return -EIO;
}

/*
 * The logical bytes of a base value v with user meta `meta` (*out, *len):
 * v itself when raw, else decompressed into *tmp (malloc'ed, the caller
 * frees it).  -EIO for a value that does not decode.
 */
static int decode_base(const settfs *fs, uint8_t meta, sett_val v, const uint8_t **out,
		       uint32_t *len, uint8_t **tmp)
{
	*tmp = NULL;
	if (meta != SFS_CODEC_RAW && !(*tmp = malloc(fs->chunk_size)))
		return -ENOMEM;
	return sfs_chunk_decode(meta, v.data, v.size, fs->chunk_size, *tmp, out, len);
}

/*
 * Add chunk idx of ino holding buf[0..len) to b, compressed when the
 * store's setting asks for it and it pays; *stored: the bytes its value
 * takes.  `ref`: buf stays unchanged until the batch is written (a raw
 * value is then not copied).
 */
static int put_chunk(settfs *fs, sett_batch *b, uint64_t ino, uint64_t idx, const uint8_t *buf,
		     uint32_t len, int ref, uint64_t *stored)
{
	uint8_t k[SFS_KEY_MAX];
	sett_val key = sfs_val(k, sfs_key_chunk(k, ino, idx));
	if (fs->codec == SFS_CODEC_ZSTD) {
		uint8_t *z = malloc(len);
		long zn = z ? sfs_chunk_compress(fs->zlevel, buf, len, z, len) : 0;
		int r = 0;
		if (zn > 0)
			r = sfs_errno(sett_batch_set_ex(b, key, sfs_val(z, (size_t)zn), 0, SFS_CODEC_ZSTD));
		free(z);
		if (zn > 0) {
			*stored = (uint64_t)zn;
			return r;
		}
		/* no gain, or no memory to try: raw */
	}
	*stored = len;
	return sfs_errno(ref ? sett_batch_set_ref(b, key, sfs_val(buf, len))
			     : sett_batch_set(b, key, sfs_val(buf, len)));
}

/* blocks less `freed` (negative: more), never below 0 */
static uint64_t blocks_less(uint64_t blocks, int64_t freed)
{
	if (freed < 0)
		return blocks + (uint64_t)-freed;
	return (uint64_t)freed > blocks ? 0 : blocks - (uint64_t)freed;
}

/* What a stored chunk consists of. */
typedef struct stored_info {
	int has_base;
	uint32_t base_len;    /* bytes the base value takes in the store */
	uint32_t len;   /* end of the stored data (valid when the whole chunk was read) */
	uint32_t novl;  /* overlay pages */
	uint64_t ovl[SFS_MAX_PAGES / 64];
} stored_info;

/* Does the reach of key pg (PG_BASE: the whole chunk) meet [from, to)? */
static int key_meets(const settfs *fs, uint32_t pg, uint32_t from, uint32_t to)
{
	uint32_t ps = pg == PG_BASE ? 0 : pg * SFS_PAGE_SIZE;
	uint32_t pe = pg == PG_BASE ? fs->chunk_size : ps + SFS_PAGE_SIZE;
	return pe > from && ps < to;
}

/*
 * Apply value v of key pg of a chunk to dst, the bytes [from, to) of the
 * chunk: an overlay replaces its whole page.  Keys go in key order (the
 * base first).
 */
static int apply_value(const settfs *fs, uint32_t pg, uint8_t meta, sett_val v, uint32_t from,
		       uint32_t to, uint8_t *dst, stored_info *si)
{
	uint32_t ps = pg == PG_BASE ? 0 : pg * SFS_PAGE_SIZE;
	uint32_t pe = pg == PG_BASE ? fs->chunk_size : ps + SFS_PAGE_SIZE;
	const uint8_t *bytes = v.data;
	uint32_t vlen = (uint32_t)v.size;
	uint8_t *tmp = NULL;
	if (pg == PG_BASE) {
		int r = decode_base(fs, meta, v, &bytes, &vlen, &tmp);
		if (r) {
			free(tmp);
			return r;
		}
		si->has_base = 1;
		si->base_len = (uint32_t)v.size;
	} else if (meta != SFS_CODEC_RAW || v.size > pe - ps || v.size == 0) {
		return -EIO;
	}
	uint32_t vend = ps + vlen;
	if (vend > si->len)
		si->len = vend;
	uint32_t a = ps > from ? ps : from, e = pe < to ? pe : to;
	memset(dst + (a - from), 0, e - a);
	uint32_t ce = vend < e ? vend : e;
	if (ce > a)
		memcpy(dst + (a - from), bytes + (a - ps), ce - a);
	free(tmp);
	return 0;
}

/*
 * Read bytes [from, to) of stored chunk idx, overlays applied, into dst
 * (to - from bytes, zeros where nothing is stored), walking its keys with
 * `it`, a chunk_iter of ino (a move reads its snapshot so).  Only the
 * values that meet [from, to) are loaded.
 */
static int read_stored(settfs *fs, sett_iter *it, uint64_t ino, uint64_t idx, uint32_t from,
		       uint32_t to, uint8_t *dst, stored_info *si)
{
	uint8_t k[SFS_KEY_MAX];
	int r = 0;
	memset(si, 0, sizeof *si);
	memset(dst, 0, to - from);
	for (sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, ino, idx))); sett_iter_valid(it);
	     sett_iter_next(it)) {
		uint64_t kidx;
		uint32_t pg;
		r = parse_ckey(fs, sett_iter_key(it), &kidx, &pg);
		if (r || kidx != idx)
			break;
		if (pg != PG_BASE) {
			bit_set(si->ovl, pg);
			si->novl++;
		}
		if (!key_meets(fs, pg, from, to))
			continue;
		sett_val v;
		r = sfs_errno(sett_iter_value(it, &v));
		if (r == 0)
			r = apply_value(fs, pg, sett_iter_user_meta(it), v, from, to, dst, si);
		if (r)
			break;
	}
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	return r;
}

/*
 * arr (n elements used, *cap allocated) with room for one more: arr
 * itself, or a larger copy (*cap updated).  NULL when out of memory, arr
 * untouched.
 */
static void *room_for_one(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
	if (n < *cap)
		return arr;
	size_t c = *cap ? *cap * 2 : first;
	void *p = realloc(arr, c * elem);
	if (p)
		*cap = c;
	return p;
}

/*
 * The overlay map (sfs_node.ovl).  Its slots are at most OVL_MAX_SLOTS
 * (160 KiB): when they would be more than half used, the map starts over
 * empty, and chunks are looked up with an iterator again.  Being a cache,
 * it may also lose entries when memory is short.
 */
#define OVL_MAX_SLOTS 4096

static size_t ovl_home(uint64_t idx, size_t cap)
{
	return (size_t)((idx * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
}

static sfs_ovl *ovl_find(sfs_node *n, uint64_t idx)
{
	if (!n->novl)
		return NULL;
	for (size_t i = ovl_home(idx, n->capovl);; i = (i + 1) & (n->capovl - 1)) {
		if (n->ovl[i].idx == idx + 1)
			return &n->ovl[i];
		if (!n->ovl[i].idx)
			return NULL;
	}
}

/* Into a table with a free slot and without idx. */
static void ovl_insert(sfs_ovl *tab, size_t cap, uint64_t idx, const uint64_t *pages)
{
	size_t i = ovl_home(idx, cap);
	while (tab[i].idx)
		i = (i + 1) & (cap - 1);
	tab[i].idx = idx + 1;
	memcpy(tab[i].pages, pages, sizeof tab[i].pages);
}

/* Rebuild the table with cap slots, keeping the chunks outside [lo, hi). */
static void ovl_rebuild(sfs_node *n, size_t cap, uint64_t lo, uint64_t hi)
{
	sfs_ovl *tab = calloc(cap, sizeof *tab);
	size_t kept = 0;
	for (size_t i = 0; tab && i < n->capovl; i++) {
		uint64_t idx = n->ovl[i].idx - 1;
		if (n->ovl[i].idx && (idx < lo || idx >= hi)) {
			ovl_insert(tab, cap, idx, n->ovl[i].pages);
			kept++;
		}
	}
	if (!tab) {
		/* forget everything */
		if (n->ovl)
			memset(n->ovl, 0, n->capovl * sizeof *n->ovl);
		n->novl = 0;
		n->ovl_void = UINT64_MAX;
		return;
	}
	if (lo < hi && hi > n->ovl_void)
		n->ovl_void = hi;
	free(n->ovl);
	n->ovl = tab;
	n->capovl = cap;
	n->novl = kept;
}

/* Note that chunk idx has the overlay pages `pages` in the store. */
static void ovl_put(sfs_node *n, uint64_t idx, const uint64_t *pages)
{
	sfs_ovl *e = ovl_find(n, idx);
	if (e) {
		memcpy(e->pages, pages, sizeof e->pages);
		return;
	}
	if ((n->novl + 1) * 2 > n->capovl) {
		if (n->capovl >= OVL_MAX_SLOTS)
			ovl_rebuild(n, n->capovl, 0, UINT64_MAX);
		else
			ovl_rebuild(n, n->capovl ? n->capovl * 2 : 16, UINT64_MAX, UINT64_MAX);
		if ((n->novl + 1) * 2 > n->capovl) {
			/* out of memory */
			if (idx >= n->ovl_void)
				n->ovl_void = idx + 1;
			return;
		}
	}
	ovl_insert(n->ovl, n->capovl, idx, pages);
	n->novl++;
}

void sfs_ovl_forget(sfs_node *n, uint64_t lo, uint64_t hi)
{
	if (n->novl)
		ovl_rebuild(n, n->capovl, lo, hi);
	else if (lo < hi && hi > n->ovl_void)
		n->ovl_void = hi;
}

void sfs_ovl_free(sfs_node *n)
{
	free(n->ovl);
	free(n->ovl_pend);
	n->ovl = n->ovl_pend = NULL;
	n->novl = n->capovl = n->npend = n->cappend = 0;
	n->ovl_void = UINT64_MAX;
}

/*
 * The batch being built leaves chunk idx with the overlay pages `pages`
 * once committed.  When that cannot be noted, the chunk is forgotten.
 */
static void ovl_pend(sfs_node *n, uint64_t idx, const uint64_t *pages)
{
	sfs_ovl *p = room_for_one(n->ovl_pend, &n->cappend, n->npend, sizeof *p, 16);
	if (!p) {
		sfs_ovl_forget(n, idx, idx + 1);
		return;
	}
	n->ovl_pend = p;
	p[n->npend].idx = idx + 1;
	memcpy(p[n->npend++].pages, pages, sizeof p->pages);
}

void sfs_ovl_committed(settfs *fs, sfs_node *n)
{
	for (size_t i = 0; i < n->npend; i++)
		ovl_put(n, n->ovl_pend[i].idx - 1, n->ovl_pend[i].pages);
	n->npend = 0;
	/* nothing is stored at or past the end of file (n->in is the committed inode) */
	uint64_t end = (n->in.size + fs->chunk_size - 1) / fs->chunk_size;
	if (end < n->ovl_void)
		n->ovl_void = end;
}

/* The overlay pages chunk idx has in the store: from the map, or its keys. */
static int chunk_overlays(settfs *fs, sfs_node *n, uint64_t idx, uint64_t *pages)
{
	sfs_ovl *e = ovl_find(n, idx);
	if (e) {
		memcpy(pages, e->pages, sizeof e->pages);
		return 0;
	}
	memset(pages, 0, SFS_MAX_PAGES / 8);
	if (idx >= n->ovl_void)
		return 0;
	/* the chunk's key is the prefix of its own keys: the walk ends with them */
	uint8_t k[SFS_KEY_MAX];
	sett_iter *it;
	int r = sfs_prefix_iter(fs, k, sfs_key_chunk(k, n->ino, idx), 0, &it);
	if (r)
		return r;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		uint64_t kidx;
		uint32_t pg;
		r = parse_ckey(fs, sett_iter_key(it), &kidx, &pg);
		if (r || kidx != idx)
			break;
		if (pg != PG_BASE)
			bit_set(pages, pg);
	}
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	if (r == 0)
		ovl_put(n, idx, pages);
	return r;
}

/*
 * read_stored() by name: the chunk's overlay pages come from the overlay
 * map, and the keys that meet [from, to) are read with point gets, which
 * do not step over the deleted keys between them.  An overlay the map
 * names but the store does not hold makes it look the chunk up again.
 */
static int read_chunk(settfs *fs, sfs_node *n, uint64_t idx, uint32_t from, uint32_t to,
		      uint8_t *dst, stored_info *si)
{
	uint8_t k[SFS_KEY_MAX];
	for (int again = 0;; again = 1) {
		memset(si, 0, sizeof *si);
		memset(dst, 0, to - from);
		int r = chunk_overlays(fs, n, idx, si->ovl), missing = 0;
		for (uint32_t i = 0; r == 0 && !missing && i <= pages_per_chunk(fs); i++) {
			uint32_t pg = i == 0 ? PG_BASE : i - 1;
			if (pg != PG_BASE) {
				if (!bit_test(si->ovl, pg))
					continue;
				si->novl++;
			}
			if (!key_meets(fs, pg, from, to))
				continue;
			size_t kn = pg == PG_BASE ? sfs_key_chunk(k, n->ino, idx)
						  : sfs_key_page(k, n->ino, idx, pg);
			void *v = NULL;
			size_t vn = 0;
			uint8_t meta = 0;
			int g = sett_get_ex(fs->db, sfs_val(k, kn), fs->read_version, &v, &vn, NULL,
					    &meta);
			if (g == SETT_ENOTFOUND) {
				missing = pg != PG_BASE;
				continue;
			}
			r = g ? sfs_errno(g)
			      : apply_value(fs, pg, meta, sfs_val(v, vn), from, to, dst, si);
			free(v);
		}
		if (r || !missing)
			return r;
		if (again)
			return -EIO;
		sfs_ovl_forget(n, idx, idx + 1);
	}
}

/*
 * read_stored() for a file that never had overlay pages: the chunk is one
 * key, read with a point get (bloom filters, no iterator).
 */
static int read_base(settfs *fs, uint64_t ino, uint64_t idx, uint32_t from, uint32_t to,
		     uint8_t *dst)
{
	uint8_t k[SFS_KEY_MAX], meta = 0, *tmp = NULL;
	void *v = NULL;
	size_t vn = 0;
	memset(dst, 0, to - from);
	int r = sett_get_ex(fs->db, sfs_val(k, sfs_key_chunk(k, ino, idx)), fs->read_version, &v,
			    &vn, NULL, &meta);
	if (r == SETT_ENOTFOUND)
		return 0;
	if (r)
		return sfs_errno(r);
	const uint8_t *bytes = NULL;
	uint32_t len = 0;
	/* a chunk read from its start to past its end decompresses straight into dst */
	if (meta != SFS_CODEC_RAW && from == 0 &&
	    sfs_chunk_len(meta, v, vn, fs->chunk_size, &len) == 0 && len <= to)
		r = sfs_chunk_decode(meta, v, vn, fs->chunk_size, dst, &bytes, &len);
	else
		r = decode_base(fs, meta, sfs_val(v, vn), &bytes, &len, &tmp);
	if (r == 0 && len > from && bytes != dst)
		memcpy(dst, bytes + from, (len < to ? len : to) - from);
	if (r)
		memset(dst, 0, to - from); /* never half-decoded bytes */
	free(tmp);
	free(v);
	return r;
}

/*
 * The buffer of chunk idx; `empty`: the caller knows nothing of it is
 * stored.  `whole`, for an empty chunk: the caller's bytes that fill it
 * all, taken as the buffer without a copy (sfs_chunk.borrowed).
 */
static int chunk_buffer(settfs *fs, sfs_node *n, uint64_t idx, int empty, const uint8_t *whole,
			sfs_chunk **cp)
{
	sfs_chunk *c = find_chunk(n, idx);
	if (c) {
		*cp = c;
		return 0;
	}
	sfs_chunk *nc = room_for_one(n->chunks, &n->capchunks, n->nchunks, sizeof *nc, 8);
	if (!nc)
		return -ENOMEM;
	n->chunks = nc;
	if (empty && whole) {
		c = &n->chunks[n->nchunks++];
		memset(c, 0, sizeof *c);
		c->idx = idx;
		c->len = fs->chunk_size;
		c->buf = (uint8_t *)whole;
		c->borrowed = 1;
		atomic_fetch_add(&fs->dirty_bytes, (long long)fs->chunk_size);
		sfs_node_dirtied(n, SFS_DIRTY_META);
		*cp = c;
		return 0;
	}
	uint8_t *buf = malloc(fs->chunk_size);
	if (!buf)
		return -ENOMEM;
	stored_info si;
	memset(&si, 0, sizeof si);
	int r = 0;
	/* nothing is stored at or past the end of file */
	if (!empty && idx * fs->chunk_size < n->in.size)
		r = read_chunk(fs, n, idx, 0, fs->chunk_size, buf, &si);
	else
		memset(buf, 0, fs->chunk_size);
	if (r) {
		free(buf);
		return r;
	}
	c = &n->chunks[n->nchunks++];
	c->idx = idx;
	c->borrowed = 0;
	c->len = si.len;
	c->stored_len = si.base_len + si.novl * SFS_PAGE_SIZE;
	c->buf = buf;
	memcpy(c->ovl, si.ovl, sizeof c->ovl);
	atomic_fetch_add(&fs->dirty_bytes, (long long)fs->chunk_size);
	sfs_node_dirtied(n, SFS_DIRTY_META);
	*cp = c;
	return 0;
}

/*
 * Borrowed chunk buffers become the node's own copies (when the commit
 * that was to take them failed).  One that cannot be copied is dropped,
 * and its bytes with it: the write reports the error.
 */
static void own_chunks(settfs *fs, sfs_node *n)
{
	for (size_t i = 0; i < n->nchunks; i++) {
		sfs_chunk *c = &n->chunks[i];
		if (!c->borrowed)
			continue;
		uint8_t *buf = malloc(fs->chunk_size);
		if (!buf) {
			n->chunks[i--] = n->chunks[--n->nchunks];
			atomic_fetch_sub(&fs->dirty_bytes, (long long)fs->chunk_size);
			continue;
		}
		memcpy(buf, c->buf, fs->chunk_size);
		c->buf = buf;
		c->borrowed = 0;
	}
}

/*
 * The buffer of page pg of chunk idx, holding the page's current bytes
 * unless the caller overwrites it whole (`whole`).
 */
static int get_page_buffer(settfs *fs, sfs_node *n, uint64_t idx, uint32_t pg, int whole,
			   sfs_page **pp)
{
	sfs_page *p = find_page(n, idx, pg);
	if (p) {
		*pp = p;
		return 0;
	}
	sfs_page *np = room_for_one(n->pages, &n->cappages, n->npages, sizeof *np, 16);
	if (!np)
		return -ENOMEM;
	n->pages = np;
	uint8_t *buf = malloc(SFS_PAGE_SIZE);
	if (!buf)
		return -ENOMEM;
	uint64_t pstart = idx * fs->chunk_size + (uint64_t)pg * SFS_PAGE_SIZE;
	uint32_t len = 0, ps = pg * SFS_PAGE_SIZE;
	int r = 0;
	if (whole || pstart >= n->in.size) {
		memset(buf, 0, SFS_PAGE_SIZE);
	} else {
		stored_info si;
		r = read_chunk(fs, n, idx, ps, ps + SFS_PAGE_SIZE, buf, &si);
		/* the page's data ends where the stored data does */
		if (r == 0 && si.len > ps)
			len = si.len - ps < SFS_PAGE_SIZE ? si.len - ps : SFS_PAGE_SIZE;
	}
	if (r) {
		free(buf);
		return r;
	}
	p = &n->pages[n->npages++];
	p->idx = idx;
	p->pg = pg;
	p->len = len;
	p->buf = buf;
	atomic_fetch_add(&fs->dirty_bytes, (long long)SFS_PAGE_SIZE);
	sfs_node_dirtied(n, SFS_DIRTY_META);
	*pp = p;
	return 0;
}

static int page_cmp(const void *a, const void *b)
{
	const sfs_page *x = a, *y = b;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->pg < y->pg ? -1 : x->pg > y->pg;
}

/*
 * Commit the dirty pages of one chunk (pages[0..np), sorted): as overlay
 * keys, or folded into the chunk when it would have too many overlays.
 */
static int batch_chunk_pages(settfs *fs, sfs_node *n, sfs_page *pages, size_t np, sett_batch *b,
			     uint64_t *blocks)
{
	uint64_t idx = pages[0].idx;
	uint8_t k[SFS_KEY_MAX];
	uint64_t stored[SFS_MAX_PAGES / 64];
	uint32_t nunion = (uint32_t)np;
	/* which overlays exist */
	int r = chunk_overlays(fs, n, idx, stored);
	if (r)
		return r;
	for (uint32_t pg = 0; pg < pages_per_chunk(fs); pg++)
		if (bit_test(stored, pg) && !find_page(n, idx, pg))
			nunion++;
	if (nunion <= fold_limit(fs)) {
		for (size_t i = 0; i < np && r == 0; i++) {
			sfs_page *p = &pages[i];
			r = sfs_errno(sett_batch_set_ref(b, sfs_val(k, sfs_key_page(k, n->ino, idx, p->pg)),
							 sfs_val(p->buf, p->len)));
			if (!bit_test(stored, p->pg))
				*blocks += SFS_PAGE_SIZE;
			bit_set(stored, p->pg);
		}
		if (r == 0)
			ovl_pend(n, idx, stored);
		return r;
	}
	/* fold: merged chunk replaces the base, every overlay goes */
	uint8_t *buf = malloc(fs->chunk_size);
	if (!buf)
		return -ENOMEM;
	stored_info si;
	r = read_chunk(fs, n, idx, 0, fs->chunk_size, buf, &si);
	uint32_t len = si.len;
	for (size_t i = 0; i < np && r == 0; i++) {
		sfs_page *p = &pages[i];
		memcpy(buf + p->pg * SFS_PAGE_SIZE, p->buf, SFS_PAGE_SIZE);
		if (p->pg * SFS_PAGE_SIZE + p->len > len)
			len = p->pg * SFS_PAGE_SIZE + p->len;
	}
	uint64_t held = 0;
	if (r == 0)
		r = put_chunk(fs, b, n->ino, idx, buf, len, 0, &held);
	for (uint32_t pg = 0; pg < pages_per_chunk(fs) && r == 0; pg++)
		if (bit_test(si.ovl, pg))
			r = sfs_errno(sett_batch_delete(b, sfs_val(k, sfs_key_page(k, n->ino, idx, pg))));
	if (r == 0) {
		*blocks = *blocks + held - si.base_len - (uint64_t)si.novl * SFS_PAGE_SIZE;
		memset(stored, 0, sizeof stored);
		ovl_pend(n, idx, stored);
	}
	free(buf);
	return r;
}

int sfs_data_batch(settfs *fs, sfs_node *n, sett_batch *b, uint64_t *blocks)
{
	uint8_t k[SFS_KEY_MAX];
	static const uint64_t none[SFS_MAX_PAGES / 64];
	int r = 0;
	for (size_t i = 0; i < n->nchunks && r == 0; i++) {
		sfs_chunk *c = &n->chunks[i];
		/* never store an empty chunk; the buffers outlive the commit */
		uint64_t stored = 0;
		if (c->len)
			r = put_chunk(fs, b, n->ino, c->idx, c->buf, c->len, 1, &stored);
		for (uint32_t pg = 0; pg < pages_per_chunk(fs) && r == 0; pg++)
			if (bit_test(c->ovl, pg))
				r = sfs_errno(sett_batch_delete(
					b, sfs_val(k, sfs_key_page(k, n->ino, c->idx, pg))));
		*blocks = *blocks + stored - c->stored_len;
		if (r == 0)
			ovl_pend(n, c->idx, none);
	}
	if (r || !n->npages)
		return r;
	qsort(n->pages, n->npages, sizeof *n->pages, page_cmp);
	for (size_t i = 0, j; i < n->npages && r == 0; i = j) {
		for (j = i + 1; j < n->npages && n->pages[j].idx == n->pages[i].idx; j++)
			;
		r = batch_chunk_pages(fs, n, &n->pages[i], j - i, b, blocks);
	}
	return r;
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

/* Write src to bytes [coff, cend) of chunk idx through page buffers. */
static int write_pages(settfs *fs, sfs_node *n, uint64_t idx, uint32_t coff, uint32_t cend,
		       const uint8_t *src)
{
	while (coff < cend) {
		uint32_t pg = coff / SFS_PAGE_SIZE;
		uint32_t poff = coff - pg * SFS_PAGE_SIZE;
		uint32_t pend = cend - pg * SFS_PAGE_SIZE;
		if (pend > SFS_PAGE_SIZE)
			pend = SFS_PAGE_SIZE;
		sfs_page *p;
		int r = get_page_buffer(fs, n, idx, pg, poff == 0 && pend == SFS_PAGE_SIZE, &p);
		if (r)
			return r;
		memcpy(p->buf + poff, src, pend - poff);
		if (pend > p->len)
			p->len = pend;
		src += pend - poff;
		coff = pg * SFS_PAGE_SIZE + pend;
	}
	return 0;
}

/*
 * Clear set-user-ID, and set-group-ID when the group may execute or the
 * caller is not in the file's group (Linux's setattr_should_drop_sgid;
 * set-group-ID without group execute is kept only for a member).
 */
static uint32_t killed_suidgid(uint32_t mode, int not_in_group)
{
	mode &= ~(uint32_t)S_ISUID;
	if ((mode & S_IXGRP) || not_in_group)
		mode &= ~(uint32_t)S_ISGID;
	return mode;
}

/*
 * Every operation that changes a file's data on behalf of a caller without
 * CAP_FSETID (write, truncate, fallocate in every mode) clears the bits;
 * it goes with the operation's own commit.
 */
static void kill_suidgid(sfs_node *n, unsigned flags)
{
	uint32_t mode = killed_suidgid(n->in.mode, (flags & SETTFS_WRITE_KILL_SGID) != 0);
	if (mode == n->in.mode)
		return;
	n->in.mode = mode;
	n->in.ctime = sfs_now();
	sfs_node_dirtied(n, SFS_DIRTY_META);
}

static ssize_t write_frozen(settfs *fs, uint64_t ino, off_t off, const void *buf,
			    size_t size, unsigned flags);

ssize_t settfs_write(settfs *fs, uint64_t ino, off_t off, const void *buf, size_t size,
		     unsigned flags)
{
	if (sfs_is_snap_ino(fs, ino))
		return -EROFS;
	/* admitted before the freeze: a reclaim must not hold off snapshots */
	int r = sfs_space_admit(fs, size);
	if (r)
		return r;
	sfs_freeze_enter(fs);
	ssize_t w = write_frozen(fs, ino, off, buf, size, flags);
	sfs_freeze_exit(fs);
	return w;
}

static ssize_t write_frozen(settfs *fs, uint64_t ino, off_t off, const void *buf,
			    size_t size, unsigned flags)
{
	int r;
	sfs_node *n;
	r = node_get_reg(fs, ino, &n);
	if (r)
		return r;
	if (flags & SETTFS_WRITE_APPEND)
		off = (off_t)n->in.size;
	if (flags & SETTFS_WRITE_KILL_SUIDGID)
		kill_suidgid(n, flags);
	if (off < 0 || (uint64_t)off + size > (uint64_t)INT64_MAX) {
		sfs_node_put(fs, n);
		return off < 0 ? -EINVAL : -EFBIG;
	}
	const uint8_t *src = buf;
	uint64_t pos = (uint64_t)off, end = pos + size, cs = fs->chunk_size;
	int borrowed = 0;
	while (pos < end) {
		uint64_t idx = pos / cs;
		uint32_t coff = (uint32_t)(pos - idx * cs);
		uint32_t cend = (uint32_t)((end - idx * cs) < cs ? end - idx * cs : cs);
		sfs_chunk *c = find_chunk(n, idx);
		/*
		 * A small write into a stored chunk buffers only its pages; one
		 * that reaches the end of file (an append) takes the chunk whole.
		 */
		if (!c && (has_pages(n, idx) ||
			   (idx * cs < n->in.size && end < n->in.size && cs > SFS_PAGE_SIZE &&
			    (coff || cend < cs)))) {
			r = write_pages(fs, n, idx, coff, cend, src);
			if (r)
				break;
		} else if (!c && coff == 0 && cend == cs && idx * cs >= n->in.size) {
			/* a whole chunk past the end: committed from src before returning */
			if ((r = chunk_buffer(fs, n, idx, 1, src, &c)))
				break;
			borrowed = 1;
		} else {
			if (!c && (r = chunk_buffer(fs, n, idx, 0, NULL, &c)))
				break;
			memcpy(c->buf + coff, src, cend - coff);
			if (cend > c->len)
				c->len = cend;
		}
		src += cend - coff;
		pos = idx * cs + cend;
	}
	if (pos > (uint64_t)off) {
		if (pos > n->in.size)
			n->in.size = pos;
		n->in.mtime = n->in.ctime = sfs_now();
		sfs_node_dirtied(n, SFS_DIRTY_META);
	}
	if (r == 0 && (borrowed || n->nchunks * cs + n->npages * SFS_PAGE_SIZE >= fs->inode_dirty_limit ||
		       (size_t)atomic_load(&fs->dirty_bytes) > fs->dirty_limit))
		r = sfs_node_flush(fs, n, 0);
	if (borrowed)
		own_chunks(fs, n); /* what the commit did not take */
	sfs_node_put(fs, n);
	if (pos > (uint64_t)off && r == 0)
		return (ssize_t)(pos - (uint64_t)off);
	return r ? r : 0;
}

ssize_t settfs_read(settfs *fs, uint64_t ino, off_t off, size_t size, void *buf)
{
	SFS_IN_VIEW(fs, ino, settfs_read(v_, i_, off, size, buf));
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
	while (pos < end && r == 0) {
		uint64_t idx = pos / cs;
		uint32_t coff = (uint32_t)(pos - idx * cs);
		uint32_t cend = (uint32_t)(end - idx * cs < cs ? end - idx * cs : cs);
		size_t want = cend - coff;
		sfs_chunk *c = find_chunk(n, idx);
		if (c) {
			size_t have = c->len > coff ? c->len - coff : 0;
			if (have > want)
				have = want;
			memcpy(dst, c->buf + coff, have);
			memset(dst + have, 0, want - have);
		} else {
			stored_info si;
			if (!(n->in.flags & SFS_IFLAG_OVERLAYS))
				r = read_base(fs, ino, idx, coff, cend, dst);
			else
				r = read_chunk(fs, n, idx, coff, cend, dst, &si);
			/* buffered pages on top */
			for (size_t i = 0; i < n->npages && r == 0; i++) {
				sfs_page *pb = &n->pages[i];
				uint32_t ps = pb->pg * SFS_PAGE_SIZE, pe = ps + SFS_PAGE_SIZE;
				if (pb->idx != idx || pe <= coff || ps >= cend)
					continue;
				uint32_t a = ps > coff ? ps : coff, e = pe < cend ? pe : cend;
				memcpy(dst + (a - coff), pb->buf + (a - ps), e - a);
			}
		}
		dst += want;
		pos += want;
	}
	if (r == 0 && !fs->read_only) {
		/* relatime (not on a read-only store) */
		int64_t now = sfs_now();
		if (n->in.atime <= n->in.mtime || n->in.atime <= n->in.ctime ||
		    now - n->in.atime > 86400LL * 1000000000) {
			n->in.atime = now;
			sfs_node_dirtied(n, SFS_DIRTY_ATIME);
		}
	}
	sfs_node_put(fs, n);
	return r ? r : (ssize_t)size;
}

/*
 * A truncate or punch hole that deletes more keys than fit one batch
 * (fs->max_batch_deletes, so that a batch fits the engine's memtable)
 * commits intermediate batches.  Each one must leave a state the file
 * could legally be found in after a crash; see sfs_truncate_batch and
 * punch_hole for which.  commit_mid commits b with the inode as `in` with
 * size `size` and `freed` fewer stored bytes, and makes that the node's
 * state (the node's buffers were flushed before: none go with it).
 */
static int commit_mid(settfs *fs, sfs_node *n, sfs_inode *in, uint64_t size, sett_batch *b,
		      int64_t *freed)
{
	sfs_inode mid = n->in;
	mid.size = size < in->size ? size : in->size;
	mid.blocks = blocks_less(in->blocks, *freed);
	mid.mtime = mid.ctime = sfs_now();
	int r = sfs_commit_node(fs, b, n, &mid, 0);
	sett_batch_clear(b);
	if (r == 0) {
		in->size = mid.size;
		in->blocks = mid.blocks;
		in->mtime = mid.mtime;
		in->ctime = mid.ctime;
		*freed = 0;
	}
	return r;
}

/* Are there more than `max` C keys of ino from chunk `from` on?  1, 0 or <0. */
static int more_keys_than(settfs *fs, uint64_t ino, uint64_t from, size_t max)
{
	uint8_t k[SFS_KEY_MAX], p[9];
	sett_iter *it;
	int r = chunk_iter(fs, ino, p, &it);
	if (r)
		return r;
	size_t nkeys = 0;
	for (sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, ino, from)));
	     sett_iter_valid(it) && nkeys <= max; sett_iter_next(it))
		nkeys++;
	r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	return r ? r : nkeys > max;
}

/*
 * Base value v (user meta `meta`) of chunk idx keeps only its first `keep`
 * bytes, written anew (compressed as the store's setting says) into b
 * when it reaches past them; *freed changes by the stored bytes saved.
 */
static int cut_base(settfs *fs, sett_batch *b, uint64_t ino, uint64_t idx, uint8_t meta,
		    sett_val v, uint32_t keep, int64_t *freed)
{
	const uint8_t *bytes;
	uint32_t len;
	uint8_t *tmp;
	uint64_t stored = 0;
	int r = decode_base(fs, meta, v, &bytes, &len, &tmp);
	if (r == 0 && len > keep) {
		r = put_chunk(fs, b, ino, idx, bytes, keep, 0, &stored);
		*freed += (int64_t)v.size - (int64_t)stored;
	}
	free(tmp);
	return r;
}

/*
 * Truncating down deletes the keys past the new end from the highest
 * chunk down.  When they do not fit one batch, each intermediate batch
 * deletes whole chunks and sets the size to the start of the lowest chunk
 * it deleted: after a crash the file is the old file cut at a size
 * between the new and the old one (never zeros where old data was, never
 * a stored byte past the end of file).  The last part (the chunk that
 * holds the new end is cut) is left in b for the caller's commit with
 * the new size.  Intermediate batches change n->in as well.
 */
int sfs_truncate_batch(settfs *fs, sfs_node *n, sfs_inode *in, uint64_t size, sett_batch *b)
{
	uint64_t cs = fs->chunk_size, ino = n->ino;
	if (size >= in->size) {
		in->size = size;
		return 0;
	}
	/* the chunk that holds the new end keeps `keep` bytes; later ones go */
	uint64_t tail = size / cs;
	uint32_t keep = (uint32_t)(size % cs);
	sfs_ovl_forget(n, tail, UINT64_MAX);
	/*
	 * Intermediate inodes need exact block counts: the deleted chunks'
	 * sizes are taken from their value pointers, without reading them.
	 */
	uint8_t p[9];
	sett_iter *it;
	int r = sfs_prefix_iter(fs, p, sfs_key_ino_prefix(p, SFS_TAG_CHUNK, ino), 1, &it);
	if (r)
		return r;
	int64_t freed = 0; /* stored bytes b frees (negative: adds) */
	uint64_t low = UINT64_MAX; /* lowest chunk whose keys are in b */
	size_t deletes = 0;
	for (sett_iter_rewind(it); r == 0 && sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it), v;
		uint64_t idx;
		uint32_t pg;
		r = parse_ckey(fs, key, &idx, &pg);
		if (r || idx < tail)
			break;
		/* every key of chunks >= low is in b: a legal state to commit */
		if (idx != low && deletes >= fs->max_batch_deletes) {
			r = commit_mid(fs, n, in, low * cs, b, &freed);
			deletes = 0;
			if (r)
				break;
		}
		low = idx;
		uint32_t ps = pg == PG_BASE ? 0 : pg * SFS_PAGE_SIZE;
		if (keep && idx == tail && ps < keep) {
			/* cut what reaches past the new end */
			if (pg != PG_BASE && ps + SFS_PAGE_SIZE <= keep)
				continue;
			r = sfs_errno(sett_iter_value(it, &v));
			if (r == 0 && pg != PG_BASE && ps + v.size > keep)
				r = sfs_errno(sett_batch_set(b, key, sfs_val(v.data, keep - ps)));
			if (r == 0 && pg == PG_BASE)
				r = cut_base(fs, b, ino, idx, sett_iter_user_meta(it), v, keep, &freed);
			continue;
		}
		size_t vn = SFS_PAGE_SIZE;
		if (pg == PG_BASE && (r = sfs_errno(sett_iter_value_size(it, &vn))) != 0)
			break;
		freed += (int64_t)vn;
		r = sfs_errno(sett_batch_delete(b, key));
		deletes++;
	}
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	if (r == 0) {
		in->blocks = size == 0 ? 0 : blocks_less(in->blocks, freed);
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
	r = sfs_truncate_batch(fs, n, &tmp, size, b);
	tmp.mtime = tmp.ctime = sfs_now();
	if (r == 0)
		r = sfs_commit_node(fs, b, n, &tmp, 0);
	sett_batch_free(b);
	return r;
}

static int is_writable(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

static int file_open_node(settfs *fs, uint64_t ino, int flags);

int settfs_file_open(settfs *fs, uint64_t ino, int flags)
{
	int writable = is_writable(flags);
	/* O_RDONLY|O_TRUNC truncates too: the kernel checked write permission
	 * and, with atomic O_TRUNC, leaves the truncate to this open */
	int change = writable || (flags & O_TRUNC);
	if (sfs_is_snap_ino(fs, ino) || fs->live) {
		if (change)
			return -EROFS;
		if (ino == SETTFS_SNAPDIR_INO && !fs->live)
			return 0;
		SFS_IN_VIEW(fs, ino, settfs_file_open(v_, i_, flags));
	}
	/* a truncating open changes the file: the freeze comes before the
	 * node's locks, as for every change (fs_int.h) */
	int trunc = (flags & O_TRUNC) != 0;
	if (trunc)
		sfs_freeze_enter(fs);
	int r = file_open_node(fs, ino, flags);
	if (trunc)
		sfs_freeze_exit(fs);
	return r;
}

static int file_open_node(settfs *fs, uint64_t ino, int flags)
{
	int writable = is_writable(flags);
	int change = writable || (flags & O_TRUNC);
	sfs_node *n;
	int r = change ? sfs_node_get_change(fs, ino, &n) : sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	if (S_ISDIR(n->in.mode) && writable)
		r = -EISDIR;
	else if ((flags & O_TRUNC) && S_ISREG(n->in.mode))
		r = truncate_node(fs, n, 0);
	if (r == 0)
		sfs_node_ref(fs, n, 0, 1);
	if (!writable) {
		if (change) {
			sfs_node_data_changed(fs, n);
			sfs_node_put_change(fs, n);
		} else {
			sfs_node_put(fs, n);
		}
		return r;
	}
	/*
	 * From now on the kernel may hold dirty pages of the file: no fill
	 * until the last writable handle is released, and none of a read
	 * that started before.
	 */
	if (r == 0)
		n->writers++;
	sfs_node_data_changed(fs, n);
	sfs_node_put_change(fs, n);
	return r;
}

void sfs_note_writer(settfs *fs, uint64_t ino)
{
	sfs_node *n;
	if (sfs_node_get_change(fs, ino, &n))
		return;
	n->writers++;
	sfs_node_data_changed(fs, n);
	sfs_node_put_change(fs, n);
}

int settfs_flush(settfs *fs, uint64_t ino)
{
	if (sfs_is_snap_ino(fs, ino))
		return 0; /* a snapshot buffers nothing */
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	r = sfs_node_flush(fs, n, 0);
	sfs_node_put(fs, n);
	return r;
}

int settfs_release(settfs *fs, uint64_t ino, int flags)
{
	if (ino == SETTFS_SNAPDIR_INO && !fs->live)
		return 0;
	SFS_IN_VIEW(fs, ino, settfs_release(v_, i_, flags));
	int writable = is_writable(flags);
	sfs_node *n;
	int r = writable ? sfs_node_get_change(fs, ino, &n) : sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	r = sfs_node_flush(fs, n, 0);
	sfs_node_ref(fs, n, 0, -1);
	if (!writable) {
		sfs_node_put(fs, n); /* reclaims an unlinked file at its last close */
		return r;
	}
	/* the kernel wrote its dirty pages back before releasing the handle */
	if (n->writers)
		n->writers--;
	sfs_node_put_change(fs, n);
	return r;
}

int settfs_fsync(settfs *fs, uint64_t ino, int datasync)
{
	(void)datasync; /* data needs the size in the inode: same commit */
	if (sfs_is_snap_ino(fs, ino))
		return 0; /* a snapshot is durable as it is */
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

static int setattr_once(settfs *fs, const settfs_ctx *ctx, uint64_t ino,
			const struct stat *attr, int to_set, struct stat *st)
{
	int resize = (to_set & SETTFS_SET_SIZE) != 0;
	sfs_node *n;
	int r = resize ? sfs_node_get_change(fs, ino, &n) : sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	if (resize) {
		sfs_node_data_changed(fs, n);
		if (S_ISDIR(n->in.mode))
			r = -EISDIR;
		else if (!S_ISREG(n->in.mode))
			r = -EINVAL;
		else if (attr->st_size < 0)
			r = -EINVAL;
		else if ((uint64_t)attr->st_size > n->in.size)
			r = sfs_space_admit_locked(fs, 0);
	}
	/* a truncate works on stored chunks: commit the buffers first */
	if (r == 0 && resize)
		r = sfs_node_flush(fs, n, 0);
	sett_batch *b = NULL;
	if (r == 0)
		r = sfs_errno(sett_batch_new(&b));
	if (r)
		goto out;
	int64_t now = sfs_now();
	sfs_inode tmp = n->in;
	if (to_set & SETTFS_SET_SIZE) {
		r = sfs_truncate_batch(fs, n, &tmp, (uint64_t)attr->st_size, b);
		tmp.mtime = now;
	}
	if ((to_set & SETTFS_SET_KILL_SUIDGID) && S_ISREG(tmp.mode))
		tmp.mode = killed_suidgid(tmp.mode, ctx && !in_group(ctx, tmp.gid));
	if (to_set & (SETTFS_SET_UID | SETTFS_SET_GID)) {
		if (!S_ISDIR(tmp.mode))
			tmp.mode = killed_suidgid(tmp.mode, 0);
		if (to_set & SETTFS_SET_UID)
			tmp.uid = (uint32_t)attr->st_uid;
		if (to_set & SETTFS_SET_GID)
			tmp.gid = (uint32_t)attr->st_gid;
	}
	if (to_set & SETTFS_SET_MODE) {
		tmp.mode = (tmp.mode & S_IFMT) | ((uint32_t)attr->st_mode & 07777);
		if ((tmp.mode & S_ISGID) && ctx && !in_group(ctx, tmp.gid))
			tmp.mode &= ~(uint32_t)S_ISGID;
		if (r == 0)
			r = sfs_acl_chmod_batch(fs, n, tmp.mode, b);
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
		r = sfs_commit_node(fs, b, n, &tmp, 0);
	sett_batch_free(b);
	if (r == 0)
		sfs_fill_stat(fs, ino, &n->in, st);
out:
	if (resize)
		sfs_node_put_change(fs, n);
	else
		sfs_node_put(fs, n);
	return r;
}

int settfs_setattr(settfs *fs, const settfs_ctx *ctx, uint64_t ino, const struct stat *attr,
		   int to_set, struct stat *st)
{
	if (sfs_is_snap_ino(fs, ino))
		return -EROFS;
	uint64_t gen = sfs_space_reclaim_gen(fs);
	sfs_freeze_enter(fs);
	int r = setattr_once(fs, ctx, ino, attr, to_set, st);
	sfs_freeze_exit(fs);
	if (r == SFS_ERECLAIM) { /* refused under the node's locks: reclaim without them */
		sfs_space_reclaim(fs, gen);
		sfs_freeze_enter(fs);
		r = setattr_once(fs, ctx, ino, attr, to_set, st);
		sfs_freeze_exit(fs);
	}
	return r == SFS_ERECLAIM ? -ENOSPC : r;
}

/*
 * Zero [from, to) of one stored key's bytes (`ps`: where the key's bytes
 * start in the chunk, `pe`: where its reach ends); adds to b.  A key whose
 * bytes all go is deleted, one the hole reaches the end of is shortened.
 */
static int punch_key(settfs *fs, sett_iter *it, sett_batch *b, uint64_t ino, uint64_t idx,
		     uint32_t ps, uint32_t pe, uint32_t from, uint32_t to, int overlay,
		     int64_t *freed, int *deleted)
{
	sett_val key = sett_iter_key(it), v;
	*deleted = 0;
	if (overlay && from <= ps && to >= pe) {
		*freed += SFS_PAGE_SIZE;
		*deleted = 1;
		return sfs_errno(sett_batch_delete(b, key));
	}
	int r = sfs_errno(sett_iter_value(it, &v));
	if (r)
		return r;
	/* a base's logical bytes (decompressed), an overlay's own */
	const uint8_t *bytes = v.data;
	uint32_t len = (uint32_t)v.size;
	uint8_t *tmp = NULL;
	if (!overlay)
		r = decode_base(fs, sett_iter_user_meta(it), v, &bytes, &len, &tmp);
	else if (sett_iter_user_meta(it) != SFS_CODEC_RAW || v.size > pe - ps)
		r = -EIO;
	uint32_t vend = ps + len, a = from > ps ? from - ps : 0;
	uint64_t stored = 0;
	if (r || from >= vend) {
		free(tmp);
		return r;
	}
	if (to >= vend && a == 0) {
		/* the hole takes every stored byte */
		*freed += overlay ? SFS_PAGE_SIZE : (int64_t)v.size;
		*deleted = 1;
		r = sfs_errno(sett_batch_delete(b, key));
	} else if (to >= vend) {
		/* the hole reaches the stored end: shorten */
		if (overlay)
			r = sfs_errno(sett_batch_set(b, key, sfs_val(bytes, a)));
		else
			r = put_chunk(fs, b, ino, idx, bytes, a, 0, &stored);
	} else {
		uint8_t *nv = malloc(len);
		if (!nv) {
			free(tmp);
			return -ENOMEM;
		}
		memcpy(nv, bytes, len);
		memset(nv + a, 0, to - ps - a);
		if (overlay)
			r = sfs_errno(sett_batch_set(b, key, sfs_val(nv, len)));
		else
			r = put_chunk(fs, b, ino, idx, nv, len, 0, &stored);
		free(nv);
	}
	if (r == 0 && !overlay && !*deleted)
		*freed += (int64_t)v.size - (int64_t)stored;
	free(tmp);
	return r;
}

/*
 * Punch [off, off+len) (within the size, which stays).  Keys are visited
 * in key order and each is deleted, shortened or rewritten with zeros in
 * the hole only.  A punch too large for one batch commits intermediate
 * batches in that order, and every state between reads as the old data
 * with some of the hole's bytes already zero and nothing else changed:
 * a chunk's base key sorts before its overlay pages, so an overlay inside
 * the hole is only ever deleted after the base bytes under it were
 * zeroed (else the base's older bytes would show through).  A base never
 * reaches past the length of an overlay of its page, so deleting a short
 * overlay exposes no base bytes either.
 */
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
	uint8_t k[SFS_KEY_MAX], p[9];
	sett_iter *it = NULL;
	r = chunk_iter(fs, n->ino, p, &it);
	int64_t freed = 0;
	uint64_t first = off / cs, last = (end - 1) / cs;
	sfs_ovl_forget(n, first, last + 1);
	if (r == 0)
		sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, n->ino, first)));
	for (; r == 0 && sett_iter_valid(it); sett_iter_next(it)) {
		uint64_t idx;
		uint32_t pg;
		r = parse_ckey(fs, sett_iter_key(it), &idx, &pg);
		if (r || idx > last)
			break;
		uint64_t cstart = idx * cs;
		uint32_t from = (uint32_t)(off > cstart ? off - cstart : 0);
		uint32_t to = (uint32_t)(end - cstart < cs ? end - cstart : cs);
		uint32_t ps = pg == PG_BASE ? 0 : pg * SFS_PAGE_SIZE;
		uint32_t pe = pg == PG_BASE ? (uint32_t)cs : ps + SFS_PAGE_SIZE;
		if (pe <= from || ps >= to)
			continue;
		int deleted;
		r = punch_key(fs, it, b, n->ino, idx, ps, pe, from, to, pg != PG_BASE, &freed,
			      &deleted);
		if (r == 0 && deleted && sett_batch_count(b) >= fs->max_batch_deletes)
			r = commit_mid(fs, n, &n->in, n->in.size, b, &freed);
	}
	if (r == 0 && it)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	sfs_inode tmp = n->in;
	tmp.blocks = blocks_less(tmp.blocks, freed);
	tmp.mtime = tmp.ctime = sfs_now();
	if (r == 0)
		r = sfs_commit_node(fs, b, n, &tmp, 0);
	sett_batch_free(b);
	return r;
}

/*
 * COLLAPSE_RANGE and INSERT_RANGE move the bytes from `off` on by `len`,
 * down (a collapse removes [off, off+len)) or up (an insert opens a hole
 * there).  Every chunk from off's chunk to the new end is written anew
 * from the bytes that land in it, read from a snapshot of the file taken
 * when the move starts (so the order of the writes cannot change what
 * they read):
 * - when off and len are whole chunks, each chunk is an old one unchanged:
 *   its keys (base and overlay pages) are copied under the new index;
 * - otherwise a chunk is put together from pieces of at most two old
 *   chunks, overlays applied, and stored as one base key (its own
 *   overlays deleted), as long as the stored bytes that land in it reach.
 * A chunk that receives no stored byte becomes a hole, and chunks that
 * have no keys and receive none are skipped: a sparse file costs its
 * stored chunks only.  A collapse then deletes the chunks past the new
 * end and sets the new size.
 *
 * It is one commit when it fits one batch (fs->max_batch_deletes entries,
 * fs->max_batch_bytes value bytes): after a crash the file is wholly the
 * old one or wholly the new one.  A larger move commits batches in a
 * fixed order, and each state between keeps every byte before `off`, and
 * from `off` on holds the new bytes on one side of a chunk boundary and
 * the old bytes on the other:
 * - a collapse goes up from off's chunk with the old size, so the file
 *   reads as the new bytes below the boundary (zeros from the new end to
 *   the boundary) and the old ones above it; then the chunks past the new
 *   end go from the top down as in a truncate (the size falls to the start
 *   of the lowest chunk deleted), and the last commit sets the new size;
 * - an insert goes down from the new last chunk with the new size from
 *   the first commit on, so the file reads as the old bytes below the
 *   boundary (zeros past the old end) and the new ones above it.
 * No state has a stored byte past its end of file, and each commits the
 * exact block count of what it stores.
 */
typedef struct shift {
	settfs *fs;
	sfs_node *n;
	sett_iter *it, *rit;  /* forward and reverse over the snapshot */
	uint64_t off, len, new_size;
	int collapse;
	sett_batch *b;
	sfs_inode tmp;        /* the inode the commits carry */
	uint8_t *buf, *old;   /* a chunk each: the new chunk, the old one */
	/* the last two old chunks read whole (each feeds two new chunks) */
	struct {
		uint64_t idx;     /* NO_CHUNK: empty */
		uint32_t len;     /* end of its stored bytes */
		uint8_t *bytes;
	} src[2];
} shift;

#define NO_CHUNK UINT64_MAX

/* The first chunk >= idx with a key in the snapshot (NO_CHUNK: none). */
static int next_stored(shift *s, uint64_t idx, uint64_t *out)
{
	uint8_t k[SFS_KEY_MAX];
	uint32_t pg;
	*out = NO_CHUNK;
	sett_iter_seek(s->it, sfs_val(k, sfs_key_chunk(k, s->n->ino, idx)));
	if (sett_iter_valid(s->it))
		return parse_ckey(s->fs, sett_iter_key(s->it), out, &pg);
	return sfs_errno(sett_iter_error(s->it));
}

/* The last chunk <= idx with a key in the snapshot (NO_CHUNK: none). */
static int prev_stored(shift *s, uint64_t idx, uint64_t *out)
{
	uint8_t k[SFS_KEY_MAX];
	uint32_t pg;
	*out = NO_CHUNK;
	sett_iter_seek(s->rit, sfs_val(k, sfs_key_page(k, s->n->ino, idx, UINT32_MAX)));
	if (sett_iter_valid(s->rit))
		return parse_ckey(s->fs, sett_iter_key(s->rit), out, &pg);
	return sfs_errno(sett_iter_error(s->rit));
}

/* Old chunk idx read whole (overlays applied) into a slot of s->src. */
static int source_chunk(shift *s, uint64_t idx, int *slot)
{
	for (*slot = 0; *slot < 2; (*slot)++)
		if (s->src[*slot].idx == idx)
			return 0;
	/* the one farther from idx goes: the move walks on away from it */
	uint64_t d0 = s->src[0].idx > idx ? s->src[0].idx - idx : idx - s->src[0].idx;
	uint64_t d1 = s->src[1].idx > idx ? s->src[1].idx - idx : idx - s->src[1].idx;
	*slot = s->src[0].idx == NO_CHUNK || (s->src[1].idx != NO_CHUNK && d0 >= d1) ? 0 : 1;
	stored_info si;
	s->src[*slot].idx = NO_CHUNK;
	int r = read_stored(s->fs, s->it, s->n->ino, idx, 0, s->fs->chunk_size, s->src[*slot].bytes,
			    &si);
	if (r == 0) {
		s->src[*slot].idx = idx;
		s->src[*slot].len = si.len;
	}
	return r;
}

/* Commit b with s->tmp (times now) and make that the node's state. */
static int shift_commit(shift *s)
{
	s->tmp.mtime = s->tmp.ctime = sfs_now();
	int r = sfs_commit_node(s->fs, s->b, s->n, &s->tmp, 0);
	sett_batch_clear(s->b);
	return r;
}

/* Copy the keys of old chunk `from` to chunk `to`; *stored: their bytes. */
static int copy_chunk(shift *s, uint64_t from, uint64_t to, int *has_base, uint64_t *ovl,
		      uint64_t *stored)
{
	uint8_t k[SFS_KEY_MAX];
	int r = 0;
	for (sett_iter_seek(s->it, sfs_val(k, sfs_key_chunk(k, s->n->ino, from)));
	     r == 0 && sett_iter_valid(s->it); sett_iter_next(s->it)) {
		uint64_t idx;
		uint32_t pg;
		sett_val v;
		r = parse_ckey(s->fs, sett_iter_key(s->it), &idx, &pg);
		if (r || idx != from)
			break;
		r = sfs_errno(sett_iter_value(s->it, &v));
		if (r)
			break;
		if (pg == PG_BASE) {
			/* a compressed value moves as it is, its codec with it */
			*has_base = 1;
			*stored += v.size;
			r = sfs_errno(sett_batch_set_ex(s->b, sfs_val(k, sfs_key_chunk(k, s->n->ino, to)),
							v, 0, sett_iter_user_meta(s->it)));
		} else {
			bit_set(ovl, pg);
			*stored += SFS_PAGE_SIZE;
			r = sfs_errno(sett_batch_set(s->b, sfs_val(k, sfs_key_page(k, s->n->ino, to, pg)),
						     v));
		}
	}
	return r ? r : sfs_errno(sett_iter_error(s->it));
}

/*
 * The new chunk i into s->buf from the snapshot; *len: where the stored
 * bytes that land in it end (0: none, a hole).
 */
static int compose_chunk(shift *s, uint64_t i, const stored_info *oi, uint32_t *len)
{
	uint64_t cs = s->fs->chunk_size, cstart = i * cs;
	uint64_t cend = cstart + cs < s->new_size ? cstart + cs : s->new_size;
	uint32_t t = 0, tend = (uint32_t)(cend - cstart);
	int r = 0;
	*len = 0;
	memset(s->buf, 0, cs);
	if (cstart < s->off) { /* the bytes before off stay */
		t = (uint32_t)(s->off - cstart);
		memcpy(s->buf, s->old, t);
		*len = oi->len < t ? oi->len : t;
	}
	while (t < tend && r == 0) {
		uint64_t x = cstart + t;
		uint32_t run = tend - t;
		if (!s->collapse && x < s->off + s->len) { /* the inserted hole */
			if (s->off + s->len - x < run)
				run = (uint32_t)(s->off + s->len - x);
			t += run;
			continue;
		}
		uint64_t src = s->collapse ? x + s->len : x - s->len;
		uint64_t sidx = src / cs;
		uint32_t sfrom = (uint32_t)(src - sidx * cs);
		if (run > cs - sfrom)
			run = (uint32_t)(cs - sfrom);
		int slot;
		r = source_chunk(s, sidx, &slot);
		uint32_t slen = s->src[slot].len;
		if (r == 0 && slen > sfrom) {
			uint32_t e = (slen < sfrom + run ? slen : sfrom + run) - sfrom;
			memcpy(s->buf + t, s->src[slot].bytes + sfrom, e);
			if (t + e > *len)
				*len = t + e;
		}
		t += run;
	}
	return r;
}

/* The keys of chunk idx in the snapshot and their bytes, without reading their values. */
static int stored_keys(shift *s, uint64_t idx, stored_info *si)
{
	uint8_t k[SFS_KEY_MAX];
	int r = 0;
	memset(si, 0, sizeof *si);
	for (sett_iter_seek(s->it, sfs_val(k, sfs_key_chunk(k, s->n->ino, idx)));
	     r == 0 && sett_iter_valid(s->it); sett_iter_next(s->it)) {
		uint64_t kidx;
		uint32_t pg;
		size_t vn;
		r = parse_ckey(s->fs, sett_iter_key(s->it), &kidx, &pg);
		if (r || kidx != idx)
			break;
		r = sfs_errno(sett_iter_value_size(s->it, &vn));
		if (r == 0 && pg == PG_BASE) {
			si->has_base = 1;
			si->base_len = (uint32_t)vn;
		} else if (r == 0) {
			bit_set(si->ovl, pg);
			si->novl++;
		}
	}
	return r ? r : sfs_errno(sett_iter_error(s->it));
}

/* Write the new chunk i into s->b and account for it in s->tmp.blocks. */
static int shift_chunk(shift *s, uint64_t i)
{
	settfs *fs = s->fs;
	uint64_t cs = fs->chunk_size, cstart = i * cs, ino = s->n->ino;
	uint8_t k[SFS_KEY_MAX];
	stored_info oi;
	/* the old chunk's bytes are needed only where they stay (before off) */
	int r = cstart < s->off ? read_stored(fs, s->it, ino, i, 0, (uint32_t)cs, s->old, &oi)
				: stored_keys(s, i, &oi);
	if (r)
		return r;
	int has_base = 0;
	uint64_t ovl[SFS_MAX_PAGES / 64] = { 0 }, stored = 0;
	int whole = s->off % cs == 0 && s->len % cs == 0 &&
		    (s->collapse || cstart >= s->off + s->len);
	if (whole) {
		/* an old chunk unchanged (its stored bytes end within the new size) */
		uint64_t l = s->len / cs;
		r = copy_chunk(s, s->collapse ? i + l : i - l, i, &has_base, ovl, &stored);
	} else {
		uint32_t len;
		r = compose_chunk(s, i, &oi, &len);
		if (r == 0 && len) {
			has_base = 1;
			r = put_chunk(fs, s->b, ino, i, s->buf, len, 0, &stored);
		}
	}
	/* the old keys that were not replaced go */
	if (r == 0 && oi.has_base && !has_base)
		r = sfs_errno(sett_batch_delete(s->b, sfs_val(k, sfs_key_chunk(k, ino, i))));
	for (uint32_t pg = 0; pg < pages_per_chunk(fs) && r == 0; pg++)
		if (bit_test(oi.ovl, pg) && !bit_test(ovl, pg))
			r = sfs_errno(sett_batch_delete(s->b, sfs_val(k, sfs_key_page(k, ino, i, pg))));
	if (r)
		return r;
	uint64_t was = oi.base_len + (uint64_t)oi.novl * SFS_PAGE_SIZE;
	s->tmp.blocks = s->tmp.blocks + stored < was ? 0 : s->tmp.blocks + stored - was;
	if (sett_batch_count(s->b) >= fs->max_batch_deletes ||
	    sett_batch_bytes(s->b) >= fs->max_batch_bytes)
		r = shift_commit(s);
	return r;
}

/* A collapse: up from off's chunk to the new last one. */
static int collapse_chunks(shift *s)
{
	uint64_t cs = s->fs->chunk_size, newlast = (s->new_size - 1) / cs;
	int r = 0;
	for (uint64_t i = s->off / cs; r == 0 && i <= newlast; i++) {
		/* the next chunk that has keys or receives stored bytes */
		uint64_t own, src, from = (i * cs > s->off ? i * cs : s->off) + s->len;
		if ((r = next_stored(s, i, &own)) != 0 || (r = next_stored(s, from / cs, &src)) != 0)
			break;
		if (src != NO_CHUNK) /* the first chunk that receives bytes of chunk src */
			src = src * cs > s->len ? (src * cs - s->len) / cs : 0;
		uint64_t next = own < src ? own : src;
		if (next > newlast)
			break;
		if (next > i)
			i = next;
		r = shift_chunk(s, i);
	}
	return r;
}

/* An insert: down from the new last chunk to off's chunk. */
static int insert_chunks(shift *s)
{
	uint64_t cs = s->fs->chunk_size, first = s->off / cs;
	int r = 0;
	for (uint64_t i = (s->new_size - 1) / cs; r == 0; i--) {
		uint64_t own, src = NO_CHUNK, last = i * cs + cs - 1;
		if ((r = prev_stored(s, i, &own)) != 0)
			break;
		if (last >= s->off + s->len && (r = prev_stored(s, (last - s->len) / cs, &src)) != 0)
			break;
		if (src != NO_CHUNK) /* the last chunk that receives bytes of chunk src */
			src = (src * cs + cs - 1 + s->len) / cs;
		uint64_t next = own == NO_CHUNK ? src : src == NO_CHUNK || own > src ? own : src;
		if (next == NO_CHUNK || next < first)
			break;
		if (next < i)
			i = next;
		r = shift_chunk(s, i);
		if (i == first)
			break;
	}
	return r;
}

static int shift_range(settfs *fs, sfs_node *n, uint64_t off, uint64_t len, int collapse)
{
	uint64_t cs = fs->chunk_size, size = n->in.size;
	shift s;
	memset(&s, 0, sizeof s);
	s.fs = fs;
	s.n = n;
	s.off = off;
	s.len = len;
	s.collapse = collapse;
	s.new_size = collapse ? size - len : size + len;
	s.tmp = n->in;
	if (!collapse)
		s.tmp.size = s.new_size; /* with the first commit: the top chunks lie past the old end */
	s.buf = malloc(cs);
	s.old = malloc(cs);
	for (int i = 0; i < 2; i++) {
		s.src[i].idx = NO_CHUNK;
		s.src[i].bytes = malloc(cs);
	}
	int r = s.buf && s.old && s.src[0].bytes && s.src[1].bytes ? sfs_errno(sett_batch_new(&s.b))
								    : -ENOMEM;
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = fs->read_version;
	io.key_only = 1;
	uint8_t p[9];
	io.prefix = sfs_val(p, sfs_key_ino_prefix(p, SFS_TAG_CHUNK, n->ino));
	io.read_version = sett_current_version(fs->db);
	if (r == 0)
		r = sfs_errno(sett_iter_new(fs->db, &io, &s.it));
	io.reverse = 1;
	if (r == 0)
		r = sfs_errno(sett_iter_new(fs->db, &io, &s.rit));
	sfs_ovl_forget(n, off / cs, UINT64_MAX);
	if (r == 0)
		r = collapse ? collapse_chunks(&s) : insert_chunks(&s);
	if (r == 0 && collapse) {
		/* the chunks past the new end go, in this commit if they fit */
		uint64_t cut = ((s.new_size - 1) / cs + 1) * cs;
		size_t count = sett_batch_count(s.b);
		if (count) {
			r = count < fs->max_batch_deletes
				    ? more_keys_than(fs, n->ino, cut / cs, fs->max_batch_deletes - count)
				    : 1;
			if (r > 0)
				r = shift_commit(&s);
		}
		if (r == 0)
			r = sfs_truncate_batch(fs, n, &s.tmp, cut, s.b);
		s.tmp.size = s.new_size;
	}
	if (r == 0)
		r = shift_commit(&s);
	sfs_ovl_forget(n, off / cs, UINT64_MAX);
	sett_iter_free(s.it);
	sett_iter_free(s.rit);
	sett_batch_free(s.b);
	free(s.buf);
	free(s.old);
	free(s.src[0].bytes);
	free(s.src[1].bytes);
	return r;
}

/*
 * fallocate COLLAPSE_RANGE / INSERT_RANGE (node changing, locked), with
 * ext4's rules: offset and length whole blocks (SFS_PAGE_SIZE), a
 * collapse ending before the end of file, an insert starting before it.
 */
static int move_range(settfs *fs, sfs_node *n, int mode, uint64_t off, uint64_t len,
		      unsigned flags)
{
	uint64_t size = n->in.size, cs = fs->chunk_size;
	int collapse = mode == FALLOC_FL_COLLAPSE_RANGE;
	if (off % SFS_PAGE_SIZE || len % SFS_PAGE_SIZE)
		return -EINVAL;
	if (collapse ? off + len >= size : off >= size)
		return -EINVAL;
	if (!collapse && len > (uint64_t)INT64_MAX - size)
		return -EFBIG;
	/* every stored chunk from off's on is written anew */
	uint64_t moved = size - off / cs * cs;
	int r = sfs_space_admit_locked(fs, moved < n->in.blocks ? moved : n->in.blocks);
	/* the move works on stored chunks: commit the buffers first */
	if (r == 0)
		r = sfs_node_flush(fs, n, 0);
	if (r == 0 && (flags & SETTFS_WRITE_KILL_SUIDGID))
		kill_suidgid(n, flags);
	if (r == 0)
		r = shift_range(fs, n, off, len, collapse);
	return r;
}

/*
 * Allocation (fallocate mode 0, KEEP_SIZE and ZERO_RANGE) stores the holes
 * of [off, end) (end within the size: nothing is stored past the end of
 * file) as zeros: each chunk that meets the range is made to reach at
 * least the range's end in it, through the chunk buffers of the write
 * path, which commit it (folding any overlays) and count its bytes in
 * the inode's blocks like written data.  So st_blocks counts what was
 * allocated, and the bytes were taken from the disk when fallocate
 * returned.  Every intermediate commit only turns holes into stored
 * zeros: the file reads the same throughout.  With `need` set the file
 * is not changed and *need gets the bytes the allocation would store.
 *
 * The walk measures each chunk by its stored keys, or by its chunk
 * buffer: so buffers the node holds on entry (page buffers, which the
 * stored keys do not show and which a chunk buffer must never sit
 * beside, and chunk buffers of the range) are committed first.
 */
static int alloc_range(settfs *fs, sfs_node *n, uint64_t off, uint64_t end, uint64_t *need)
{
	uint64_t cs = fs->chunk_size;
	if (off >= end)
		return 0;
	int r = n->nchunks || n->npages ? sfs_node_flush(fs, n, 0) : 0;
	if (r)
		return r;
	uint8_t *scratch = malloc(cs), k[SFS_KEY_MAX], p[9];
	sett_iter *it = NULL;
	r = scratch ? chunk_iter(fs, n->ino, p, &it) : -ENOMEM;
	/*
	 * One walk over the range's keys (seeking to each chunk of a range
	 * just punched would step over all the deletions after it each time):
	 * `next` is the chunk of the next stored key, those before it are holes.
	 */
	uint64_t next = UINT64_MAX;
	if (r == 0)
		sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, n->ino, off / cs)));
	for (uint64_t idx = off / cs; r == 0 && idx * cs < end; idx++) {
		uint32_t to = (uint32_t)(end - idx * cs < cs ? end - idx * cs : cs), pg;
		if (next < idx || next == UINT64_MAX) {
			next = UINT64_MAX;
			if (sett_iter_valid(it) && (r = parse_ckey(fs, sett_iter_key(it), &next, &pg)))
				break;
		}
		stored_info si;
		sfs_chunk *c = find_chunk(n, idx);
		uint32_t len = c ? c->len : 0;
		if (!c && next == idx) {
			r = read_chunk(fs, n, idx, 0, (uint32_t)cs, scratch, &si);
			len = si.len;
			/* the walk goes on past the chunk's keys */
			sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, n->ino, idx + 1)));
		}
		if (r || len >= to)
			continue;
		if (need) {
			*need += to - len;
			continue;
		}
		if (!c && (r = chunk_buffer(fs, n, idx, next != idx, NULL, &c)) != 0)
			break;
		c->len = to; /* the buffer is zero past its data */
		if (n->nchunks * cs >= fs->inode_dirty_limit ||
		    (size_t)atomic_load(&fs->dirty_bytes) > fs->dirty_limit)
			r = sfs_node_flush(fs, n, 0);
	}
	if (r == 0 && it)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	free(scratch);
	if (r == 0 && !need)
		r = sfs_node_flush(fs, n, 0);
	return r;
}

/*
 * Admission of an allocation: the bytes alloc_range will store (for a zero
 * range, whose punch comes first, the whole range within the size), and,
 * for KEEP_SIZE past the end of file (where nothing is stored), the bytes
 * asked for there; ENOSPC when the disk cannot hold them above the reserve.
 */
static int admit_alloc(settfs *fs, sfs_node *n, uint64_t off, uint64_t end, uint64_t size,
		       int zero)
{
	uint64_t need = 0, in_size = end < size ? end : size;
	int r = 0;
	if (zero)
		need = in_size > off ? in_size - off : 0;
	else
		r = alloc_range(fs, n, off, in_size, &need);
	if (r == 0 && end > size)
		need += end - (off > size ? off : size);
	return r ? r : sfs_space_admit_locked(fs, need);
}

static int fallocate_once(settfs *fs, uint64_t ino, int mode, off_t off, off_t len,
			  unsigned flags)
{
	if (off < 0 || len <= 0)
		return -EINVAL;
	if ((uint64_t)off + (uint64_t)len > (uint64_t)INT64_MAX)
		return -EFBIG;
	int keep = (mode & FALLOC_FL_KEEP_SIZE) != 0, kind = mode & ~FALLOC_FL_KEEP_SIZE;
	int move = mode == FALLOC_FL_COLLAPSE_RANGE || mode == FALLOC_FL_INSERT_RANGE;
	if (kind != 0 && kind != FALLOC_FL_ZERO_RANGE && !move &&
	    mode != (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	sfs_node *n;
	int r = sfs_node_get_change(fs, ino, &n);
	if (r)
		return r;
	if (!S_ISREG(n->in.mode)) {
		r = S_ISDIR(n->in.mode) ? -EISDIR : -ENODEV;
		sfs_node_put_change(fs, n);
		return r;
	}
	sfs_node_data_changed(fs, n);
	if (move) {
		r = move_range(fs, n, mode, (uint64_t)off, (uint64_t)len, flags);
		sfs_node_put_change(fs, n);
		return r;
	}
	uint64_t start = (uint64_t)off, end = start + (uint64_t)len;
	uint64_t size = keep || end < n->in.size ? n->in.size : end; /* the size after */
	/* each step commits the buffers it must not meet itself */
	if (kind != FALLOC_FL_PUNCH_HOLE)
		r = admit_alloc(fs, n, start, end, size, kind == FALLOC_FL_ZERO_RANGE);
	if (r == 0 && (flags & SETTFS_WRITE_KILL_SUIDGID))
		kill_suidgid(n, flags);
	/*
	 * ZERO_RANGE punches first (the range reads zeros, some of it as
	 * holes: a state punch_hole's commits may leave anyway), then grows
	 * and allocates like mode 0.
	 */
	if (r == 0 && kind != 0)
		r = punch_hole(fs, n, start, end - start);
	if (r == 0 && kind != FALLOC_FL_PUNCH_HOLE) {
		if (size > n->in.size)
			r = truncate_node(fs, n, size);
		if (r == 0)
			r = alloc_range(fs, n, start, end < size ? end : size, NULL);
	}
	if (r == 0 && n->meta_dirty) /* the mode, when nothing else was committed */
		r = sfs_node_flush(fs, n, 0);
	sfs_node_put_change(fs, n);
	return r;
}

int settfs_fallocate(settfs *fs, uint64_t ino, int mode, off_t off, off_t len, unsigned flags)
{
	if (sfs_is_snap_ino(fs, ino))
		return -EROFS;
	uint64_t gen = sfs_space_reclaim_gen(fs);
	sfs_freeze_enter(fs);
	int r = fallocate_once(fs, ino, mode, off, len, flags);
	sfs_freeze_exit(fs);
	if (r == SFS_ERECLAIM) { /* refused under the node's locks: reclaim without them */
		sfs_space_reclaim(fs, gen);
		sfs_freeze_enter(fs);
		r = fallocate_once(fs, ino, mode, off, len, flags);
		sfs_freeze_exit(fs);
	}
	return r == SFS_ERECLAIM ? -ENOSPC : r;
}

off_t settfs_lseek(settfs *fs, uint64_t ino, off_t off, int whence)
{
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	SFS_IN_VIEW(fs, ino, settfs_lseek(v_, i_, off, whence));
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
	if (r == 0)
		r = chunk_iter(fs, ino, p, &it);
	if (r) {
		sfs_node_put(fs, n);
		return r;
	}
	/*
	 * Every key is an extent of data: a chunk from its start, an overlay
	 * from its page's start, each as long as its value.  Keys come in the
	 * order of their starts; extents may overlap.
	 */
	uint64_t pos = (uint64_t)off;
	off_t result = -ENXIO;
	sett_iter_seek(it, sfs_val(k, sfs_key_chunk(k, ino, pos / cs)));
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val v;
		uint64_t idx;
		uint32_t pg;
		if (parse_ckey(fs, sett_iter_key(it), &idx, &pg) != 0)
			continue;
		uint64_t dstart = idx * cs + (pg == PG_BASE ? 0 : (uint64_t)pg * SFS_PAGE_SIZE);
		if (dstart >= size)
			break;
		if (pg != PG_BASE && dstart + SFS_PAGE_SIZE <= pos)
			continue; /* ends before pos whatever its length */
		if ((r = sfs_errno(sett_iter_value(it, &v))) != 0)
			break;
		uint32_t vlen = (uint32_t)v.size; /* a base's logical length */
		if (pg == PG_BASE &&
		    (r = sfs_chunk_len(sett_iter_user_meta(it), v.data, v.size, fs->chunk_size, &vlen)))
			break;
		uint64_t dend = dstart + vlen;
		if (dend > size)
			dend = size;
		if (vlen == 0 || dend <= pos)
			continue;
		if (whence == SEEK_DATA) {
			result = (off_t)(dstart > pos ? dstart : pos);
			break;
		}
		if (dstart > pos)
			break; /* pos is in a hole */
		pos = dend;
	}
	if (whence == SEEK_HOLE)
		result = (off_t)(pos < size ? pos : size);
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	sfs_node_put(fs, n);
	return r ? r : result;
}
