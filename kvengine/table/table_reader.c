/*
 * table_reader.c - opens, searches and iterates sorted tables.
 *
 * table_open checks the footer and loads the bloom filter, index and
 * properties into memory, where they stay while the table is open (they
 * are small next to the data, and every lookup needs them).  Data blocks
 * are read on demand, and checked when read: a bad data block fails only
 * the reads that need it.  A bloom block that fails its checksum is not
 * used (every key may be in the table) and table_verify reports it; a bad
 * footer, index or properties block fails the open.  The file is mapped
 * read-only when the system allows: an uncompressed block is then used in
 * place, with no copy, no system call and no cache entry; a bitmap
 * remembers which blocks had their checksum checked, so each is hashed
 * once per open table.  A compressed block, any block when the file is
 * not mapped, and every block that table_verify reads, is read with pread
 * into the block cache when the table has one (decoded once, shared by
 * every reader), otherwise into a buffer owned by the reader for as long
 * as it looks at that block.  An encrypted table is not mapped: its blocks
 * are decrypted into the cache when a lookup or seek lands on them, into
 * the cursor's own buffer when a cursor steps to them (see get_block).
 *
 * A mapped page that cannot be read (a media error, or a file cut short
 * under the open table) raises SIGBUS.  Every cursor operation that may
 * touch the mapping therefore runs under map_guarded (mapguard.h): a fault
 * ends the operation with -EIO, or SETT_ECORRUPT naming the file and the
 * first lost block's offset when the file is now shorter than at open.
 * No pointer into the mapping leaves a cursor operation: keys are copied
 * as entries are decoded, and the current value is copied at the end of
 * each operation (into the caller's buffer for table_get).
 *
 * Nothing read from the file is trusted: each block's checksum is checked
 * before anything in it is parsed, a compressed block must decompress to
 * exactly the size its frame claims (bounded), the restart array must lie
 * inside the block in increasing order, and every varint and length is
 * bounds-checked as entries are decoded.  Any failure is SETT_ECORRUPT,
 * with "PATH: corrupt block at offset N" in `why` where the call has one.
 *
 * Thread safety: a table may be used by any number of threads at once
 * (table_get, table_iter_new, table_verify); its state after open is
 * read-only except the atomic reference count and the atomic bitmap of
 * checked blocks.  An iterator belongs to one thread.
 */
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <xxhash.h>
#include <zstd.h>

#include "bloom.h"
#include "entry.h"
#include "fileio.h"
#include "ikey.h"
#include "mapguard.h"
#include "sett.h"
#include "table_format.h"

typedef struct index_entry {
	slice last_key; /* points into table.index_raw */
	uint64_t off, size;
} index_entry;

struct table {
	_Atomic long refs;
	atomic_int obsolete;
	char *path;
	uint64_t id;
	cache *c;
	sfile *f;
	uint64_t file_size;
	const uint8_t *map;             /* the whole file, or NULL: use preads */
	atomic_uint_least64_t *checked; /* with map: bit bi = block bi's checksum held */

	uint8_t *bloom_raw, *index_raw, *props_raw; /* decoded meta blocks */
	slice bloom;
	index_entry *index;
	size_t nblocks;

	slice smallest, largest; /* point into props_raw */
	uint64_t count, min_version, max_version, raw_bytes;

	uint64_t bad_bloom_off; /* a bloom block that failed its checks (not used), or 0 */
	uint64_t meta[6];       /* the footer's offsets and sizes of bloom, index, properties */
	size_t index_n, props_n; /* decoded lengths of index_raw, props_raw */
	uint8_t foot[TABLE_ENC_FOOTER_SIZE]; /* the file's last bytes read at open ... */
	size_t foot_n;                       /* ... and how many (table_scrub compares) */
	char *damaged; /* table_open_damaged: why the table could not be opened */
	void (*report)(void *, const char *);
	void *report_arg;
	/* tables opened by table_open_salvage: gap[bi], damage before block bi;
	 * tail_lost, damage after the last block */
	uint8_t *gap;
	int tail_lost;
	/* an encrypted table: its key and salt; the bytes a block has beyond its payload */
	crypt_key *key;
	uint8_t salt[CIPHER_SALT_SIZE];
	size_t trailer;
};

static int corrupt_at(const table *t, uint64_t off, char *why, size_t whylen)
{
	char own[512];
	if (!why || !whylen) {
		why = own;
		whylen = sizeof own;
	}
	if (t->damaged)
		snprintf(why, whylen, "%s", t->damaged);
	else
		snprintf(why, whylen, "%s: corrupt block at offset %llu", t->path,
			 (unsigned long long)off);
	if (t->report)
		t->report(t->report_arg, why);
	return SETT_ECORRUPT;
}

/* ---------------------------------------------------------------- blocks */

/*
 * Reads the block at [off, off+size) with pread (never through the
 * mapping), checks its trailer and returns its decoded bytes in a
 * malloc'ed buffer: *data (the buffer) and *n (decoded length; the buffer
 * may be longer).  *charge is the buffer's size.
 */
static int read_block_raw(const table *t, uint64_t off, uint64_t size, ZSTD_DCtx **dctx,
			  uint8_t **data, size_t *n, size_t *charge, char *why, size_t whylen)
{
	if (size < t->trailer || off > t->file_size || size > t->file_size - off)
		return corrupt_at(t, off, why, whylen);
	uint8_t *p = malloc(size);
	if (!p)
		return -ENOMEM;
	int r = sfile_pread_full(t->f, p, size, off);
	if (r) {
		free(p);
		return r == SETT_ECORRUPT ? corrupt_at(t, off, why, whylen) : r;
	}
	size_t pn = size - t->trailer;
	if (t->key) {
		/* the tag authenticates payload and type; then they move to the front */
		r = cipher_rec_open(t->key, t->salt, off, p, size, p + CIPHER_REC_HEAD);
		if (r) {
			free(p);
			return r == SETT_ECORRUPT ? corrupt_at(t, off, why, whylen) : r;
		}
		memmove(p, p + CIPHER_REC_HEAD, pn + 1);
	} else if (table_block_checksum(p, pn) != get_le64(p + pn + 1)) {
		free(p);
		return corrupt_at(t, off, why, whylen);
	}
	if (p[pn] == TABLE_BLOCK_RAW) {
		*data = p;
		*n = pn;
		*charge = size;
		return 0;
	}
	if (p[pn] != TABLE_BLOCK_ZSTD) {
		free(p);
		return corrupt_at(t, off, why, whylen);
	}
	unsigned long long rn = ZSTD_getFrameContentSize(p, pn);
	if (rn == ZSTD_CONTENTSIZE_UNKNOWN || rn == ZSTD_CONTENTSIZE_ERROR || rn == 0 ||
	    rn > TABLE_MAX_BLOCK) {
		free(p);
		return corrupt_at(t, off, why, whylen);
	}
	uint8_t *d = malloc(rn);
	if (!d) {
		free(p);
		return -ENOMEM;
	}
	/* A reader that decodes many blocks keeps one context for them all. */
	if (dctx && !*dctx)
		*dctx = ZSTD_createDCtx();
	size_t got = dctx && *dctx ? ZSTD_decompressDCtx(*dctx, d, rn, p, pn)
				   : ZSTD_decompress(d, rn, p, pn);
	free(p);
	if (ZSTD_isError(got) || got != rn) {
		free(d);
		return corrupt_at(t, off, why, whylen);
	}
	*data = d;
	*n = rn;
	*charge = rn;
	return 0;
}

/*
 * Checks the restart array of a decoded data block: a u32 count >= 1 at
 * the end, the offsets before it, the first 0, strictly increasing, all
 * inside the entry area (which must not be empty).
 */
static int check_data_block(const uint8_t *p, size_t n)
{
	if (n < 4)
		return SETT_ECORRUPT;
	uint64_t nrest = get_le32(p + n - 4);
	if (nrest == 0 || (nrest + 1) * 4 > n)
		return SETT_ECORRUPT;
	size_t limit = n - (size_t)(nrest + 1) * 4;
	if (limit == 0)
		return SETT_ECORRUPT;
	const uint8_t *rs = p + limit;
	uint32_t prev = 0;
	for (uint64_t i = 0; i < nrest; i++) {
		uint32_t r = get_le32(rs + 4 * i);
		if ((i == 0 && r != 0) || (i > 0 && r <= prev) || r >= limit)
			return SETT_ECORRUPT;
		prev = r;
	}
	return 0;
}

/* A data block held by a reader: a cache handle or an owned buffer. */
typedef struct blockref {
	const uint8_t *data;
	size_t n;
	cache_handle *h;
	uint8_t *owned;
} blockref;

static void blockref_release(const table *t, blockref *br)
{
	if (br->h)
		cache_release(t->c, br->h);
	free(br->owned);
	memset(br, 0, sizeof *br);
}

/*
 * An uncompressed block of a mapped table, in place: its checksum is
 * checked the first time, its restart array every time (cheap, and it is
 * what keeps the cursor inside the block).
 * Returns 1 with br set, 0 if the block is not uncompressed (the caller
 * takes the general path, which reports a bad type), or <0.
 */
static int get_mapped_raw(const table *t, size_t bi, blockref *br, char *why, size_t whylen)
{
	const index_entry *ie = &t->index[bi];
	const uint8_t *p = t->map + ie->off;
	size_t pn = ie->size - TABLE_BLOCK_TRAILER;
	if (p[pn] != TABLE_BLOCK_RAW)
		return 0;
	atomic_uint_least64_t *w = &t->checked[bi / 64];
	uint64_t bit = (uint64_t)1 << (bi % 64);
	if (!(atomic_load_explicit(w, memory_order_relaxed) & bit)) {
		if (table_block_checksum(p, pn) != get_le64(p + pn + 1))
			return corrupt_at(t, ie->off, why, whylen);
		atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
	}
	if (check_data_block(p, pn))
		return corrupt_at(t, ie->off, why, whylen);
	br->data = p;
	br->n = pn;
	return 1;
}

/*
 * Gets data block bi: in place from the mapping if it is uncompressed,
 * else from the cache if the table has one (and use_cache).  A block read
 * now goes into the cache, except an encrypted table's when !fill: a
 * cursor stepping from block to block reads each once, so it keeps the
 * decrypted block to itself (the next block's buffer reuses its memory,
 * where a cache entry would be new memory touched, copied into and later
 * evicted) and leaves the cache to the blocks that seeks and lookups land
 * on, as an unencrypted table's blocks are used in place and not cached.  use_cache 0
 * means "check the file's bytes now": a pread, whatever was checked or
 * cached before (and no read of the mapping, so no guard is needed).
 */
static int get_block(const table *t, size_t bi, int use_cache, int fill, ZSTD_DCtx **dctx,
		     blockref *br, char *why, size_t whylen)
{
	const index_entry *ie = &t->index[bi];
	memset(br, 0, sizeof *br);
	if (t->map && use_cache) {
		int r = get_mapped_raw(t, bi, br, why, whylen);
		if (r)
			return r < 0 ? r : 0;
	}
	if (use_cache && t->c) {
		cache_handle *h = cache_lookup(t->c, t->id, ie->off);
		if (h) {
			br->h = h;
			br->data = cache_data(h);
			br->n = cache_size_of(h);
			return 0;
		}
	}
	uint8_t *p;
	size_t n, charge;
	int r = read_block_raw(t, ie->off, ie->size, dctx, &p, &n, &charge, why, whylen);
	if (r)
		return r;
	if (check_data_block(p, n)) {
		free(p);
		return corrupt_at(t, ie->off, why, whylen);
	}
	if (use_cache && t->c && (fill || !t->key)) {
		cache_handle *h = cache_insert(t->c, t->id, ie->off, p, n, charge);
		if (!h)
			return -ENOMEM; /* p was freed by the cache */
		br->h = h;
	} else {
		br->owned = p;
	}
	br->data = p;
	br->n = n;
	return 0;
}

/* ------------------------------------------------------- block cursor */

/*
 * Walks the entries of one (restart-array-checked) data block.  cur is the
 * offset of the current entry, or limit when the cursor is not on one.
 */
typedef struct blkcur {
	const uint8_t *data;
	size_t limit; /* start of the restart array = end of the entries */
	const uint8_t *restarts;
	uint32_t nrest;
	size_t cur, next;
	buf key;
	slice val;
	int err;
} blkcur;

static void blk_init(blkcur *bc, const uint8_t *p, size_t n)
{
	bc->nrest = get_le32(p + n - 4);
	bc->limit = n - ((size_t)bc->nrest + 1) * 4;
	bc->restarts = p + bc->limit;
	bc->data = p;
	bc->cur = bc->next = bc->limit;
	bc->key.n = 0;
	bc->err = 0;
}

static int blk_valid(const blkcur *bc)
{
	return bc->data && !bc->err && bc->cur < bc->limit;
}

static size_t blk_restart(const blkcur *bc, uint32_t i)
{
	return get_le32(bc->restarts + 4 * (size_t)i);
}

static void blk_fail(blkcur *bc)
{
	bc->err = SETT_ECORRUPT;
	bc->cur = bc->next = bc->limit;
}

/* Decodes the three prefix varints of the entry at off. */
static int blk_header(const blkcur *bc, size_t off, uint64_t *shared, uint64_t *unshared,
		      uint64_t *vlen, size_t *body)
{
	const uint8_t *p = bc->data + off, *end = bc->data + bc->limit;
	size_t a, b, c;
	if (!(a = varint_get(p, end, shared)) || !(b = varint_get(p + a, end, unshared)) ||
	    !(c = varint_get(p + a + b, end, vlen)))
		return SETT_ECORRUPT;
	size_t left = bc->limit - off - a - b - c;
	if (*unshared > left || *vlen > left - *unshared)
		return SETT_ECORRUPT;
	*body = off + a + b + c;
	return 0;
}

/* Decodes the entry at off, whose predecessor's key is in bc->key. */
static void blk_parse_at(blkcur *bc, size_t off)
{
	uint64_t shared, unshared, vlen;
	size_t body;
	if (blk_header(bc, off, &shared, &unshared, &vlen, &body) || shared > bc->key.n ||
	    shared + unshared < IKEY_SUFFIX) {
		blk_fail(bc);
		return;
	}
	bc->key.n = shared;
	if (buf_append(&bc->key, bc->data + body, unshared)) {
		bc->err = -ENOMEM;
		bc->cur = bc->next = bc->limit;
		return;
	}
	bc->val = slice_make(bc->data + body + unshared, vlen);
	bc->cur = off;
	bc->next = body + unshared + vlen;
}

static void blk_seek_restart(blkcur *bc, uint32_t i)
{
	bc->key.n = 0;
	blk_parse_at(bc, blk_restart(bc, i));
}

static void blk_first(blkcur *bc)
{
	blk_seek_restart(bc, 0);
}

static void blk_next(blkcur *bc)
{
	if (bc->next >= bc->limit) {
		bc->cur = bc->limit;
		return;
	}
	blk_parse_at(bc, bc->next);
}

static void blk_last(blkcur *bc)
{
	blk_seek_restart(bc, bc->nrest - 1);
	while (!bc->err && bc->next < bc->limit)
		blk_parse_at(bc, bc->next);
}

static void blk_prev(blkcur *bc)
{
	size_t orig = bc->cur;
	uint32_t lo = 0, hi = bc->nrest; /* find the last restart < orig */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (blk_restart(bc, mid) < orig)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0) {
		bc->cur = bc->next = bc->limit;
		return;
	}
	blk_seek_restart(bc, lo - 1);
	while (!bc->err && bc->next < orig)
		blk_parse_at(bc, bc->next);
	if (!bc->err && bc->next != orig)
		blk_fail(bc); /* entries do not chain up to where we were */
}

/* Positions at the first entry >= target (invalid if none). */
static void blk_seek(blkcur *bc, slice target)
{
	/* last restart whose key < target */
	uint32_t lo = 0, hi = bc->nrest - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;
		uint64_t shared, unshared, vlen;
		size_t body;
		if (blk_header(bc, blk_restart(bc, mid), &shared, &unshared, &vlen, &body) ||
		    shared != 0 || unshared < IKEY_SUFFIX) {
			blk_fail(bc);
			return;
		}
		if (ikey_cmp(slice_make(bc->data + body, unshared), target) < 0)
			lo = mid;
		else
			hi = mid - 1;
	}
	blk_seek_restart(bc, lo);
	while (blk_valid(bc) && ikey_cmp(slice_make(bc->key.p, bc->key.n), target) < 0)
		blk_next(bc);
}

/* ------------------------------------------------------- table cursor */

/* A position in a table: a data block and a cursor in it. */
typedef struct tcur {
	table *t;
	int use_cache;
	size_t bi; /* current block; nblocks when none */
	blockref br;
	blkcur bc;
	ZSTD_DCtx *dctx; /* made at the first compressed block */
	buf val;         /* the current entry's value, copied (see tc_do) */
	int err;
	char why[320];
} tcur;

static void tc_init(tcur *tc, table *t, int use_cache)
{
	memset(tc, 0, sizeof *tc);
	tc->t = t;
	tc->use_cache = use_cache;
	tc->bi = t->nblocks;
}

static void tc_close(tcur *tc)
{
	blockref_release(tc->t, &tc->br);
	buf_free(&tc->bc.key);
	buf_free(&tc->val);
	ZSTD_freeDCtx(tc->dctx);
}

static int tc_valid(const tcur *tc)
{
	return !tc->err && tc->bi < tc->t->nblocks && blk_valid(&tc->bc);
}

static void tc_invalidate(tcur *tc)
{
	blockref_release(tc->t, &tc->br);
	tc->bi = tc->t->nblocks;
	tc->bc.data = NULL;
}

/* Loads block bi; step: the cursor walked there from the block next to it. */
static int tc_load(tcur *tc, size_t bi, int step)
{
	if (tc->bi == bi && tc->bc.data) {
		blk_init(&tc->bc, tc->br.data, tc->br.n);
		return 0;
	}
	tc_invalidate(tc);
	int r = get_block(tc->t, bi, tc->use_cache, !step, &tc->dctx, &tc->br, tc->why,
			  sizeof tc->why);
	if (r) {
		tc->err = r;
		return r;
	}
	tc->bi = bi;
	blk_init(&tc->bc, tc->br.data, tc->br.n);
	return 0;
}

/* Turns a block cursor error into the table cursor's error. */
static int tc_check(tcur *tc)
{
	if (tc->bc.err && !tc->err) {
		tc->err = tc->bc.err;
		if (tc->err == SETT_ECORRUPT)
			corrupt_at(tc->t, tc->t->index[tc->bi].off, tc->why, sizeof tc->why);
	}
	if (tc->err)
		tc_invalidate(tc);
	return tc->err;
}

static void tc_skip_forward(tcur *tc)
{
	while (!tc_check(tc) && tc->bi < tc->t->nblocks && !blk_valid(&tc->bc)) {
		if (tc->bi + 1 >= tc->t->nblocks) {
			tc_invalidate(tc);
			return;
		}
		if (tc_load(tc, tc->bi + 1, 1))
			return;
		blk_first(&tc->bc);
	}
}

static void tc_skip_backward(tcur *tc)
{
	while (!tc_check(tc) && tc->bi < tc->t->nblocks && !blk_valid(&tc->bc)) {
		if (tc->bi == 0) {
			tc_invalidate(tc);
			return;
		}
		if (tc_load(tc, tc->bi - 1, 1))
			return;
		blk_last(&tc->bc);
	}
}

/* A damaged table has no block to go to: every positioning fails. */
static int tc_damaged(tcur *tc)
{
	if (!tc->t->damaged)
		return 0;
	tc_invalidate(tc);
	tc->err = corrupt_at(tc->t, 0, tc->why, sizeof tc->why);
	return 1;
}

static void tc_first(tcur *tc)
{
	tc->err = 0;
	if (tc_damaged(tc) || tc_load(tc, 0, 0))
		return;
	blk_first(&tc->bc);
	tc_skip_forward(tc);
}

static void tc_last(tcur *tc)
{
	tc->err = 0;
	if (tc_damaged(tc) || tc_load(tc, tc->t->nblocks - 1, 0))
		return;
	blk_last(&tc->bc);
	tc_skip_backward(tc);
}

static void tc_seek(tcur *tc, slice target)
{
	tc->err = 0;
	if (target.n < IKEY_SUFFIX) {
		tc->err = -EINVAL;
		tc_invalidate(tc);
		return;
	}
	if (tc_damaged(tc))
		return;
	const table *t = tc->t;
	size_t lo = 0, hi = t->nblocks; /* first block whose last key >= target */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ikey_cmp(t->index[mid].last_key, target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == t->nblocks) {
		tc_invalidate(tc);
		return;
	}
	if (tc_load(tc, lo, 0))
		return;
	blk_seek(&tc->bc, target);
	tc_skip_forward(tc);
}

static slice tc_key(const tcur *tc)
{
	return slice_make(tc->bc.key.p, tc->bc.key.n);
}

static void tc_seek_for_prev(tcur *tc, slice target)
{
	tc_seek(tc, target);
	if (tc->err)
		return;
	if (!tc_valid(tc))
		tc_last(tc);
	else if (ikey_cmp(tc_key(tc), target) > 0) {
		blk_prev(&tc->bc);
		tc_skip_backward(tc);
	}
}

static void tc_next(tcur *tc)
{
	if (!tc_valid(tc))
		return;
	blk_next(&tc->bc);
	tc_skip_forward(tc);
}

static void tc_prev(tcur *tc)
{
	if (!tc_valid(tc))
		return;
	blk_prev(&tc->bc);
	tc_skip_backward(tc);
}

/*
 * After a SIGBUS in a read of the mapping: the file is shorter than at
 * open (SETT_ECORRUPT at the first block it no longer holds) or could not
 * be read (-EIO).
 */
static int mapped_fault(const table *t, char *why, size_t whylen)
{
	int64_t now = sfile_size(t->f);
	if (now >= 0 && (uint64_t)now < t->file_size) {
		size_t bi = 0;
		while (bi < t->nblocks && t->index[bi].off + t->index[bi].size <= (uint64_t)now)
			bi++;
		return corrupt_at(t, bi < t->nblocks ? t->index[bi].off : (uint64_t)now, why, whylen);
	}
	if (why && whylen)
		snprintf(why, whylen, "%s: I/O error reading the table", t->path);
	return -EIO;
}

enum { OP_SEEK, OP_SEEK_FOR_PREV, OP_FIRST, OP_LAST, OP_NEXT, OP_PREV };

typedef struct tc_call {
	tcur *tc;
	int op;
	slice key;
	buf *out; /* where the value goes */
} tc_call;

static int tc_call_run(void *arg)
{
	tc_call *c = arg;
	tcur *tc = c->tc;
	switch (c->op) {
	case OP_SEEK: tc_seek(tc, c->key); break;
	case OP_SEEK_FOR_PREV: tc_seek_for_prev(tc, c->key); break;
	case OP_FIRST: tc_first(tc); break;
	case OP_LAST: tc_last(tc); break;
	case OP_NEXT: tc_next(tc); break;
	case OP_PREV: tc_prev(tc); break;
	}
	c->out->n = 0;
	if (tc_valid(tc) && buf_append(c->out, tc->bc.val.p, tc->bc.val.n)) {
		tc->err = -ENOMEM;
		tc_invalidate(tc);
	}
	return 0;
}

/*
 * Runs one cursor operation and copies the value it lands on into `out`
 * (tc->val when NULL), guarded when the table is mapped.
 */
static void tc_do(tcur *tc, int op, slice key, buf *out)
{
	tc_call c = { tc, op, key, out ? out : &tc->val };
	if (!tc->t->map) {
		tc_call_run(&c);
	} else if (map_guarded(tc_call_run, &c) == MAPGUARD_FAULT) {
		tc_invalidate(tc);
		tc->err = mapped_fault(tc->t, tc->why, sizeof tc->why);
	}
}

/* ------------------------------------------------------------- open */

static int read_meta(table *t, uint64_t off, uint64_t size, uint8_t **p, size_t *n, char *why,
		     size_t whylen)
{
	size_t charge;
	return read_block_raw(t, off, size, NULL, p, n, &charge, why, whylen);
}

static int parse_props(table *t, size_t n, uint64_t off, char *why, size_t whylen)
{
	const uint8_t *p = t->props_raw, *end = p + n;
	uint64_t v[5], klen;
	size_t k;
	for (int i = 0; i < 5; i++) {
		if (!(k = varint_get(p, end, &v[i])))
			return corrupt_at(t, off, why, whylen);
		p += k;
	}
	t->count = v[0];
	uint64_t nblocks = v[1];
	t->min_version = v[2];
	t->max_version = v[3];
	t->raw_bytes = v[4];
	if (p >= end)
		return corrupt_at(t, off, why, whylen);
	p++; /* compression of the table, informational */
	slice *keys[2] = { &t->smallest, &t->largest };
	for (int i = 0; i < 2; i++) {
		if (!(k = varint_get(p, end, &klen)) || klen > (uint64_t)(end - p - k) ||
		    klen < IKEY_SUFFIX)
			return corrupt_at(t, off, why, whylen);
		*keys[i] = slice_make(p + k, klen);
		p += k + klen;
	}
	if (p != end || nblocks != t->nblocks || t->count < nblocks ||
	    t->min_version > t->max_version || ikey_cmp(t->smallest, t->largest) > 0)
		return corrupt_at(t, off, why, whylen);
	return 0;
}

static int parse_index(table *t, size_t n, uint64_t off, uint64_t data_end, char *why,
		       size_t whylen)
{
	const uint8_t *p = t->index_raw, *end = p + n;
	size_t cap = 0;
	uint64_t next_off = 0;
	while (p < end) {
		uint64_t klen, boff, bsize;
		size_t k;
		if (!(k = varint_get(p, end, &klen)) || klen > (uint64_t)(end - p - k) ||
		    klen < IKEY_SUFFIX)
			return corrupt_at(t, off, why, whylen);
		slice key = slice_make(p + k, klen);
		p += k + klen;
		if (!(k = varint_get(p, end, &boff)))
			return corrupt_at(t, off, why, whylen);
		p += k;
		if (!(k = varint_get(p, end, &bsize)))
			return corrupt_at(t, off, why, whylen);
		p += k;
		/* blocks are contiguous from offset 0 up to the bloom block */
		if (boff != next_off || bsize < t->trailer || bsize > data_end - boff ||
		    (t->nblocks && ikey_cmp(t->index[t->nblocks - 1].last_key, key) >= 0))
			return corrupt_at(t, off, why, whylen);
		next_off = boff + bsize;
		if (t->nblocks == cap) {
			cap = cap ? cap * 2 : 64;
			index_entry *ni = realloc(t->index, cap * sizeof *ni);
			if (!ni)
				return -ENOMEM;
			t->index = ni;
		}
		t->index[t->nblocks++] = (index_entry){ key, boff, bsize };
	}
	if (next_off != data_end || t->nblocks == 0)
		return corrupt_at(t, off, why, whylen);
	return 0;
}

static void table_destroy(table *t)
{
	if (t->f)
		sfile_close(t->f); /* and unmaps */
	free(t->checked);
	free(t->gap);
	free(t->bloom_raw);
	free(t->index_raw);
	free(t->props_raw);
	free(t->index);
	free(t->path);
	free(t->damaged);
	free(t);
}

/* A table with one reference, its id and path (NULL when out of memory). */
static table *table_alloc(const char *path, uint64_t id)
{
	table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	atomic_init(&t->obsolete, 0);
	t->id = id;
	t->trailer = TABLE_BLOCK_TRAILER;
	if (!(t->path = strdup(path))) {
		free(t);
		return NULL;
	}
	return t;
}

/*
 * Decodes the footer at the end of the n bytes at tail (the last bytes of
 * t's file): f gets the six offsets and sizes, *foot_off where the footer
 * starts; an encrypted table's key (from keys) and salt go to t.
 * SETT_ECORRUPT, SETT_EFORMAT or SETT_EKEY, with why.
 */
static int read_footer(table *t, const uint8_t *tail, size_t n, const sett_keys *keys,
		       uint64_t f[6], uint64_t *foot_off, char *why, size_t whylen)
{
	int enc = n >= TABLE_ENC_FOOTER_SIZE && memcmp(tail + n - 8, TABLE_ENC_MAGIC, 8) == 0;
	size_t fs = enc ? TABLE_ENC_FOOTER_SIZE : TABLE_FOOTER_SIZE;
	size_t hashed = fs - 16;
	const uint8_t *foot = tail + n - fs;
	*foot_off = t->file_size - fs;
	if (n < fs || (!enc && memcmp(foot + hashed + 8, TABLE_MAGIC, 8) != 0) ||
	    sett_hash(foot, hashed) != get_le64(foot + hashed)) {
		if (why && whylen)
			snprintf(why, whylen, "%s: corrupt table footer at offset %llu", t->path,
				 (unsigned long long)*foot_off);
		return SETT_ECORRUPT;
	}
	if (get_le32(foot + 48) != TABLE_FORMAT_VERSION) {
		if (why && whylen)
			snprintf(why, whylen, "%s: table format version %u not supported", t->path,
				 (unsigned)get_le32(foot + 48));
		return SETT_EFORMAT;
	}
	for (int i = 0; i < 6; i++)
		f[i] = get_le64(foot + 8 * i);
	if (!enc)
		return cipher_plain_check(keys, t->path, why, whylen);
	uint64_t key_id;
	t->trailer = TABLE_ENC_TRAILER;
	return cipher_head_get(keys, foot, TABLE_FOOTER_FIELDS, t->path, &t->key, &key_id,
			       t->salt, why, whylen);
}

int table_open(const char *path, uint64_t id, cache *c, table **tp, char *why, size_t whylen)
{
	return table_open_enc(path, id, c, NULL, tp, why, whylen);
}

int table_open_enc(const char *path, uint64_t id, cache *c, const sett_keys *keys, table **tp,
		   char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = 0;
	table *t = table_alloc(path, id);
	if (!t)
		return -ENOMEM;
	t->c = c;
	int r = sfile_open(path, O_RDONLY, &t->f);
	if (r)
		goto fail;
	int64_t fsz = sfile_size(t->f);
	if (fsz < 0) {
		r = (int)fsz;
		goto fail;
	}
	t->file_size = (uint64_t)fsz;
	if (t->file_size < TABLE_FOOTER_SIZE + 3 * TABLE_BLOCK_TRAILER) {
		if (why && whylen)
			snprintf(why, whylen, "%s: corrupt table: only %llu bytes", path,
				 (unsigned long long)t->file_size);
		r = SETT_ECORRUPT;
		goto fail;
	}
	uint8_t tail[TABLE_ENC_FOOTER_SIZE];
	size_t tn = t->file_size < sizeof tail ? (size_t)t->file_size : sizeof tail;
	uint64_t f[6], foot_off;
	if ((r = sfile_pread_full(t->f, tail, tn, t->file_size - tn)) ||
	    (r = read_footer(t, tail, tn, keys, f, &foot_off, why, whylen)))
		goto fail;
	/* layout: data | bloom | index | properties | footer, nothing between */
	if (f[0] > foot_off || f[1] > foot_off - f[0] || f[2] != f[0] + f[1] ||
	    f[3] > foot_off - f[2] || f[4] != f[2] + f[3] || f[5] != foot_off - f[4]) {
		if (why && whylen)
			snprintf(why, whylen, "%s: corrupt table footer at offset %llu", path,
				 (unsigned long long)foot_off);
		r = SETT_ECORRUPT;
		goto fail;
	}
	size_t bn, in, pn;
	/* A damaged bloom filter costs lookups, not keys: every key "may be" here. */
	if ((r = read_meta(t, f[0], f[1], &t->bloom_raw, &bn, why, whylen)) == SETT_ECORRUPT) {
		t->bad_bloom_off = f[0];
		t->bloom_raw = NULL;
		bn = 0;
		r = 0;
		if (why && whylen)
			why[0] = 0;
	}
	if (r || (r = read_meta(t, f[2], f[3], &t->index_raw, &in, why, whylen)) ||
	    (r = read_meta(t, f[4], f[5], &t->props_raw, &pn, why, whylen)))
		goto fail;
	t->bloom = slice_make(t->bloom_raw, bn);
	memcpy(t->meta, f, sizeof t->meta);
	t->index_n = in;
	t->props_n = pn;
	memcpy(t->foot, tail, tn);
	t->foot_n = tn;
	if ((r = parse_index(t, in, f[2], f[0], why, whylen)) ||
	    (r = parse_props(t, pn, f[4], why, whylen)))
		goto fail;
	if (ikey_cmp(t->index[t->nblocks - 1].last_key, t->largest) != 0) {
		r = corrupt_at(t, f[4], why, whylen);
		goto fail;
	}
	/*
	 * Without a mapping every block is read with pread: slower, not wrong.
	 * An encrypted table's blocks are decrypted into the cache, never used
	 * in place.
	 */
	t->checked = !t->key && map_guard_init() == 0
			     ? calloc((t->nblocks + 63) / 64, sizeof *t->checked)
			     : NULL;
	if (t->checked && sfile_map(t->f, t->file_size, &t->map) != 0) {
		free(t->checked);
		t->checked = NULL;
	}
	*tp = t;
	return 0;
fail:
	table_destroy(t);
	return r;
}

int table_open_damaged(const char *path, uint64_t id, const char *cause, table **tp)
{
	table *t = table_alloc(path, id);
	if (!t)
		return -ENOMEM;
	/* smallest: the empty key, newest; largest: the longest 0xff key, oldest */
	size_t ln = SETT_MAX_KEY_SIZE + IKEY_SUFFIX;
	t->props_raw = malloc(IKEY_SUFFIX + ln);
	size_t dn = strlen(path) + strlen(cause) + 64;
	t->damaged = malloc(dn);
	if (!t->props_raw || !t->damaged) {
		table_destroy(t);
		return -ENOMEM;
	}
	snprintf(t->damaged, dn, "%s: damaged table, its keys cannot be read (%s)", path,
		 cause[0] ? cause : "corrupt");
	ikey_make(t->props_raw, NULL, 0, UINT64_MAX);
	memset(t->props_raw + IKEY_SUFFIX, 0xff, ln);
	t->smallest = slice_make(t->props_raw, IKEY_SUFFIX);
	t->largest = slice_make(t->props_raw + IKEY_SUFFIX, ln);
	*tp = t;
	return 0;
}

int table_is_damaged(const table *t)
{
	return t->damaged != NULL;
}

void table_set_reporter(table *t, void (*fn)(void *, const char *), void *arg)
{
	t->report = fn;
	t->report_arg = arg;
}

void table_ref(table *t)
{
	atomic_fetch_add(&t->refs, 1);
}

void table_unref(table *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	/* The blocks of a closed table are of no use to anyone. */
	cache_erase_id(t->c, t->id);
	if (atomic_load(&t->obsolete) && !t->damaged) {
		sfile_close(t->f); /* and unmaps */
		t->f = NULL;
		sio_unlink(t->path);
	}
	table_destroy(t);
}

void table_mark_obsolete(table *t)
{
	atomic_store(&t->obsolete, 1);
}

uint64_t table_id(const table *t) { return t->id; }
uint64_t table_file_size(const table *t) { return t->file_size; }
uint64_t table_entry_count(const table *t) { return t->count; }
uint64_t table_max_version(const table *t) { return t->max_version; }
slice table_smallest(const table *t) { return t->smallest; }
slice table_largest(const table *t) { return t->largest; }

int table_may_contain(table *t, uint64_t ukey_hash)
{
	return t->damaged || bloom_may_contain(t->bloom, ukey_hash);
}

/* -------------------------------------------------------------- get */

int table_get(table *t, slice ukey, uint64_t read_version, uint64_t *version, buf *vs,
	      char *why, size_t whylen)
{
	vs->n = 0;
	if (ukey.n > SETT_MAX_KEY_SIZE)
		return 0;
	uint8_t stackkey[256];
	uint8_t *sk = ukey.n + IKEY_SUFFIX <= sizeof stackkey ? stackkey
							       : malloc(ukey.n + IKEY_SUFFIX);
	if (!sk)
		return -ENOMEM;
	ikey_make(sk, ukey.p, ukey.n, read_version);
	tcur tc;
	tc_init(&tc, t, 1);
	tc_do(&tc, OP_SEEK, slice_make(sk, ukey.n + IKEY_SUFFIX), vs);
	int r = 0;
	if (tc.err) {
		r = tc.err;
		if (why && whylen)
			snprintf(why, whylen, "%s", tc.why);
	} else if (tc_valid(&tc)) {
		slice k = tc_key(&tc);
		if (slice_cmp(ikey_user(k), ukey) == 0) {
			*version = ikey_version(k);
			r = 1;
		}
	}
	if (r != 1)
		vs->n = 0;
	tc_close(&tc);
	if (sk != stackkey)
		free(sk);
	return r;
}

/* --------------------------------------------------------- iterator */

typedef struct table_iter {
	sit base;
	tcur tc;
} table_iter;

#define TI(it) ((table_iter *)(it))

static const slice no_key;
static void ti_seek(sit *it, slice k) { tc_do(&TI(it)->tc, OP_SEEK, k, NULL); }
static void ti_seek_for_prev(sit *it, slice k) { tc_do(&TI(it)->tc, OP_SEEK_FOR_PREV, k, NULL); }
static void ti_first(sit *it) { tc_do(&TI(it)->tc, OP_FIRST, no_key, NULL); }
static void ti_last(sit *it) { tc_do(&TI(it)->tc, OP_LAST, no_key, NULL); }
static void ti_next(sit *it) { tc_do(&TI(it)->tc, OP_NEXT, no_key, NULL); }
static void ti_prev(sit *it) { tc_do(&TI(it)->tc, OP_PREV, no_key, NULL); }
static int ti_valid(const sit *it) { return tc_valid(&((const table_iter *)it)->tc); }
static slice ti_key(const sit *it) { return tc_key(&((const table_iter *)it)->tc); }
static slice ti_value(const sit *it)
{
	const buf *v = &((const table_iter *)it)->tc.val;
	return slice_make(v->p, v->n);
}
static int ti_error(const sit *it) { return ((const table_iter *)it)->tc.err; }

static void ti_free(sit *it)
{
	table *t = TI(it)->tc.t;
	tc_close(&TI(it)->tc);
	free(it);
	table_unref(t);
}

static const struct sit_ops table_iter_ops = {
	ti_seek, ti_seek_for_prev, ti_first, ti_last, ti_next, ti_prev,
	ti_valid, ti_key, ti_value, ti_error, ti_free,
};

sit *table_iter_new(table *t)
{
	table_iter *ti = calloc(1, sizeof *ti);
	if (!ti)
		return NULL;
	ti->base.ops = &table_iter_ops;
	table_ref(t);
	tc_init(&ti->tc, t, 1);
	return &ti->base;
}

/* ---------------------------------------------------------- salvage */

/*
 * A forward-only iterator that goes on past damage: a block that fails its
 * checks is reported to `lost` with the keys it covered (after the last key
 * returned, up to the block's last key in the index) and skipped, and so
 * is the rest of a block whose entries stop decoding or go out of order.
 */
typedef struct salvage_iter {
	table_iter ti; /* key and error are the table iterator's */
	table_lost_fn lost;
	void *arg;
	buf prev; /* the last key returned */
	char gap_why[400]; /* damage before the current block: reported at its first key */
	size_t bi;
	int valid;
} salvage_iter;

#define SV(it) ((salvage_iter *)(it))

static void sv_report(salvage_iter *s, const char *why)
{
	if (s->lost)
		s->lost(s->arg, slice_make(s->prev.p, s->prev.n), s->ti.tc.t->index[s->bi].last_key, 0,
			why);
}

/* Positions at the first entry of the first block from bi on that loads;
 * the ones that do not are reported.  0, or an error other than damage. */
static int sv_load_from(salvage_iter *s, size_t bi)
{
	tcur *tc = &s->ti.tc;
	for (s->bi = bi; s->bi < tc->t->nblocks; s->bi++) {
		tc->err = 0;
		if (tc->t->gap && tc->t->gap[s->bi])
			snprintf(s->gap_why, sizeof s->gap_why, "%s: damaged bytes before offset %llu",
				 tc->t->path, (unsigned long long)tc->t->index[s->bi].off);
		if (tc_load(tc, s->bi, 1) == 0) {
			blk_first(&tc->bc);
			return 0;
		}
		if (tc->err != SETT_ECORRUPT)
			return tc->err;
		sv_report(s, tc->why);
	}
	tc->err = 0;
	if (tc->t->tail_lost && s->lost) {
		char why[400];
		snprintf(why, sizeof why, "%s: damaged bytes after offset %llu", tc->t->path,
			 tc->t->nblocks ? (unsigned long long)(tc->t->index[tc->t->nblocks - 1].off +
							     tc->t->index[tc->t->nblocks - 1].size)
					: 0ull);
		s->lost(s->arg, slice_make(s->prev.p, s->prev.n), slice_make(NULL, 0), 0, why);
		tc->t->tail_lost = 0; /* once */
	}
	return 0;
}

/* Settles on the current entry, or moves on to the next good one. */
static void sv_settle(salvage_iter *s)
{
	tcur *tc = &s->ti.tc;
	table *t = tc->t;
	s->valid = 0;
	while (s->bi < t->nblocks) {
		if (blk_valid(&tc->bc)) {
			slice k = tc_key(tc);
			if (!s->prev.n || ikey_cmp(slice_make(s->prev.p, s->prev.n), k) < 0) {
				if (s->gap_why[0] && s->lost)
					s->lost(s->arg, slice_make(s->prev.p, s->prev.n), k, 1, s->gap_why);
				s->gap_why[0] = 0;
				s->prev.n = 0;
				if (buf_append(&s->prev, k.p, k.n)) {
					tc->err = -ENOMEM;
					return;
				}
				s->valid = 1;
				return;
			}
			char why[400];
			snprintf(why, sizeof why, "%s: block at offset %llu: keys out of order",
				 t->path, (unsigned long long)t->index[s->bi].off);
			sv_report(s, why);
		} else if (tc->bc.err == SETT_ECORRUPT) {
			corrupt_at(t, t->index[s->bi].off, tc->why, sizeof tc->why);
			sv_report(s, tc->why);
		} else if (tc->bc.err) {
			tc->err = tc->bc.err;
			return;
		}
		if (sv_load_from(s, s->bi + 1))
			return;
	}
}

static void sv_first(sit *it)
{
	salvage_iter *s = SV(it);
	s->prev.n = 0;
	if (sv_load_from(s, 0) == 0)
		sv_settle(s);
	else
		s->valid = 0;
}

static void sv_next(sit *it)
{
	salvage_iter *s = SV(it);
	if (!s->valid)
		return;
	blk_next(&s->ti.tc.bc);
	sv_settle(s);
}

static void sv_unsupported(sit *it)
{
	SV(it)->valid = 0;
	SV(it)->ti.tc.err = -ENOTSUP;
}
static void sv_seek(sit *it, slice k) { (void)k; sv_unsupported(it); }
static int sv_valid(const sit *it) { return ((const salvage_iter *)it)->valid; }
/* The cursor reads with pread into its own buffers (use_cache 0), never
 * the mapping, so the value is used in place. */
static slice sv_value(const sit *it) { return ((const salvage_iter *)it)->ti.tc.bc.val; }

static void sv_free(sit *it)
{
	table *t = SV(it)->ti.tc.t;
	tc_close(&SV(it)->ti.tc);
	buf_free(&SV(it)->prev);
	free(it);
	table_unref(t);
}

static const struct sit_ops salvage_iter_ops = {
	sv_seek, sv_seek, sv_first, sv_unsupported, sv_next, sv_unsupported,
	sv_valid, ti_key, sv_value, ti_error, sv_free,
};

sit *table_salvage_iter_new(table *t, table_lost_fn lost, void *arg)
{
	salvage_iter *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->ti.base.ops = &salvage_iter_ops;
	s->lost = lost;
	s->arg = arg;
	table_ref(t);
	tc_init(&s->ti.tc, t, 0); /* the file's own bytes, checked now */
	return &s->ti.base;
}

/* ------------------------------------------------- salvage open */

/* Largest block the scan looks for (blocks are near block_size; an entry
 * may add a key of up to 64 KiB). */
#define SCAN_MAX_BLOCK ((size_t)256 << 10)

/*
 * The size (trailer included) of the block that starts at pos, found by
 * its checksum: the first end whose type byte and checksum match.  0: none.
 */
static size_t scan_block_end(const uint8_t *all, size_t n, size_t pos, XXH3_state_t *st)
{
	XXH3_64bits_reset(st);
	size_t fed = pos;
	for (size_t e = pos + 8; e + 1 + 8 <= n && e - pos <= SCAN_MAX_BLOCK; e++) {
		if (all[e] != TABLE_BLOCK_RAW && all[e] != TABLE_BLOCK_ZSTD)
			continue;
		XXH3_64bits_update(st, all + fed, e + 1 - fed);
		fed = e + 1;
		if (XXH3_64bits_digest(st) == get_le64(all + e + 1))
			return e + TABLE_BLOCK_TRAILER - pos;
	}
	return 0;
}

/*
 * Whether decoded block d is a data block whose keys all follow `prev`
 * and whose values decode; then *last is its last key, and count and
 * versions are added up.
 */
static int scan_block_ok(const uint8_t *d, size_t dn, const buf *prev, buf *last, uint64_t *count,
			 uint64_t *maxv)
{
	if (check_data_block(d, dn))
		return 0;
	blkcur bc = { 0 };
	blk_init(&bc, d, dn);
	buf pk = { 0 };
	int ok = 1;
	uint64_t c = 0, mv = 0;
	if (buf_append(&pk, prev->p, prev->n))
		ok = 0;
	for (blk_first(&bc); ok && blk_valid(&bc); blk_next(&bc)) {
		slice k = slice_make(bc.key.p, bc.key.n);
		vstruct v;
		if ((pk.n && ikey_cmp(slice_make(pk.p, pk.n), k) >= 0) ||
		    vstruct_decode(bc.val.p, bc.val.n, &v))
			ok = 0;
		pk.n = 0;
		if (buf_append(&pk, k.p, k.n))
			ok = 0;
		if (ikey_version(k) > mv)
			mv = ikey_version(k);
		c++;
	}
	if (bc.err || !c)
		ok = 0;
	if (ok) {
		last->n = 0;
		ok = !buf_append(last, pk.p, pk.n);
		*count += c;
		if (mv > *maxv)
			*maxv = mv;
	}
	buf_free(&pk);
	buf_free(&bc.key);
	return ok;
}

int table_open_salvage(const char *path, uint64_t id, table **tp, char *why, size_t whylen)
{
	return table_open_salvage_enc(path, id, NULL, tp, why, whylen);
}

int table_open_salvage_enc(const char *path, uint64_t id, const sett_keys *ks, table **tp,
			   char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = 0;
	table *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	atomic_init(&t->refs, 1);
	atomic_init(&t->obsolete, 0);
	t->id = id;
	t->trailer = TABLE_BLOCK_TRAILER;
	t->path = strdup(path);
	int r = t->path ? sfile_open(path, O_RDONLY, &t->f) : -ENOMEM;
	int64_t fsz = r ? 0 : sfile_size(t->f);
	if (!r && fsz < 0)
		r = (int)fsz;
	size_t n = (size_t)fsz;
	uint8_t *all = r ? NULL : malloc(n ? n : 1);
	if (!r && !all)
		r = -ENOMEM;
	if (!r)
		r = sfile_pread_full(t->f, all, n, 0);
	XXH3_state_t *st = r ? NULL : XXH3_createState();
	if (!r && !st)
		r = -ENOMEM;
	if (r)
		goto out;
	t->file_size = n;

	/*
	 * Where the data blocks end, if the footer says so.  An encrypted
	 * table's blocks can be read only with the salt and key its footer
	 * names: without them nothing is found.
	 */
	uint64_t data_end = UINT64_MAX, f[6], foot_off;
	/* in an encrypted store, a table without the encrypted footer is never read */
	if (!(n >= TABLE_ENC_FOOTER_SIZE && memcmp(all + n - 8, TABLE_ENC_MAGIC, 8) == 0) &&
	    (r = cipher_plain_check(ks, path, why, whylen)) != 0)
		goto out;
	if (n >= TABLE_FOOTER_SIZE) {
		r = read_footer(t, all, n, ks, f, &foot_off, why, whylen);
		if (r == SETT_EKEY)
			goto out;
		if (r == 0 || r == SETT_EFORMAT)
			data_end = f[0] <= n ? f[0] : UINT64_MAX;
		r = 0;
		if (why && whylen)
			why[0] = 0;
		if (!t->key && n >= TABLE_ENC_FOOTER_SIZE &&
		    memcmp(all + n - 8, TABLE_ENC_MAGIC, 8) == 0)
			data_end = 0;
	}
	buf keys = { 0 }, last = { 0 };
	size_t cap = 0, *keyoff = NULL;
	uint64_t expect = 0;
	static const uint8_t zmagic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	for (size_t pos = 0; pos + t->trailer < n && pos < data_end && !r;) {
		/* a raw data block starts with shared = 0, zstd with its magic;
		 * right after the data, the bloom block may start anyhow */
		int at_end = pos == expect && t->nblocks && data_end == UINT64_MAX;
		size_t bsize = 0;
		if (t->key) {
			/* a sealed record's length: only a plausible one is opened */
			uint64_t len = (uint64_t)get_le32(all + pos) + CIPHER_REC_OVERHEAD;
			if (len >= TABLE_ENC_TRAILER && len <= SCAN_MAX_BLOCK && len <= data_end - pos)
				bsize = (size_t)len;
		} else if (all[pos] == 0 || (n - pos >= 4 && memcmp(all + pos, zmagic, 4) == 0) ||
			   at_end) {
			bsize = scan_block_end(all, n, pos, st);
		}
		if (!bsize) {
			pos++;
			continue;
		}
		uint8_t *d = NULL;
		size_t dn, charge;
		int ok = read_block_raw(t, pos, bsize, NULL, &d, &dn, &charge, NULL, 0) == 0 &&
			 scan_block_ok(d, dn, &last, &last, &t->count, &t->max_version);
		free(d);
		if (!ok && at_end) {
			/* a checked block right after the data that is not data: the
			 * bloom block, so the data ends here (the footer is lost) */
			data_end = pos;
			break;
		}
		if (!ok) {
			pos++;
			continue;
		}
		if (t->nblocks == cap) {
			cap = cap ? cap * 2 : 64;
			index_entry *ni = realloc(t->index, cap * sizeof *ni);
			size_t *nk = realloc(keyoff, cap * sizeof *nk);
			uint8_t *ng = realloc(t->gap, cap);
			if (ni)
				t->index = ni;
			if (nk)
				keyoff = nk;
			if (ng)
				t->gap = ng;
			if (!ni || !nk || !ng) {
				r = -ENOMEM;
				break;
			}
		}
		t->gap[t->nblocks] = pos != expect;
		keyoff[t->nblocks] = keys.n;
		t->index[t->nblocks++] = (index_entry){ slice_make(NULL, last.n), pos, bsize };
		if ((r = buf_append(&keys, last.p, last.n)))
			break;
		pos += bsize;
		expect = pos;
	}
	t->tail_lost = data_end == UINT64_MAX || expect != data_end;
	if (!r && t->nblocks == 0) {
		if (why && whylen)
			snprintf(why, whylen, "%s: no readable data block", path);
		r = SETT_ECORRUPT;
	}
	if (!r) {
		/* the slices into the keys' buffer, now that it stays where it is */
		t->index_raw = keys.p;
		keys.p = NULL;
		for (size_t i = 0; i < t->nblocks; i++)
			t->index[i].last_key = slice_make(t->index_raw + keyoff[i],
							  t->index[i].last_key.n);
		/* only the salvage iterator reads this table: bounds are not needed */
		t->smallest = t->index[0].last_key;
		t->largest = t->index[t->nblocks - 1].last_key;
	}
	buf_free(&keys);
	buf_free(&last);
	free(keyoff);
out:
	XXH3_freeState(st);
	free(all);
	if (r) {
		table_destroy(t);
		return r;
	}
	*tp = t;
	return 0;
}

/* ----------------------------------------------------------- verify */

/* Checks the entries of the loaded block bi (see table_verify); *count and
 * prev carry on from the block before.  0 or SETT_ECORRUPT with tc->why. */
static int check_block_entries(tcur *tc, size_t bi, buf *prev, uint64_t *count)
{
	table *t = tc->t;
	/*
	 * Seeks and backward steps start at restart points, which the
	 * forward walk never uses: each must be where an entry starts, and
	 * that entry must share nothing with its predecessor.
	 */
	uint32_t ri = 0;
	int r = 0;
	for (blk_first(&tc->bc); blk_valid(&tc->bc); blk_next(&tc->bc)) {
		slice k = tc_key(tc);
		uint64_t shared, unshared, vlen;
		size_t body;
		int restart = ri < tc->bc.nrest && blk_restart(&tc->bc, ri) == tc->bc.cur;
		if (restart)
			ri++;
		if ((*count == 0 && ikey_cmp(k, t->smallest) != 0) ||
		    (*count > 0 && ikey_cmp(slice_make(prev->p, prev->n), k) >= 0) ||
		    /* lookups trust the properties' version range */
		    ikey_version(k) > t->max_version || ikey_version(k) < t->min_version ||
		    /* a get looks at the bloom filter first */
		    !bloom_may_contain(t->bloom, sett_hash(ikey_user(k).p, ikey_user(k).n)) ||
		    (ri < tc->bc.nrest && blk_restart(&tc->bc, ri) <= tc->bc.cur) ||
		    (restart && (blk_header(&tc->bc, tc->bc.cur, &shared, &unshared, &vlen, &body) ||
				 shared != 0)))
			return corrupt_at(t, t->index[bi].off, tc->why, sizeof tc->why);
		prev->n = 0;
		if ((r = buf_append(prev, k.p, k.n)))
			return r;
		(*count)++;
	}
	if ((r = tc_check(tc)))
		return r;
	if (ri != tc->bc.nrest) /* a restart point past the last entry */
		return corrupt_at(t, t->index[bi].off, tc->why, sizeof tc->why);
	/* the index's key for the block must be the block's last key */
	if (ikey_cmp(slice_make(prev->p, prev->n), t->index[bi].last_key) != 0)
		return corrupt_at(t, t->index[bi].off, tc->why, sizeof tc->why);
	return 0;
}

/* Reads the metadata blocks (bloom, index, properties) and the footer
 * from the file again: each must still check and equal what open read. */
static int scrub_meta(table *t, const table_scrub_cb *cb, int *bad)
{
	struct {
		uint64_t off, size;
		const uint8_t *held;
		size_t n;
	} m[3] = { { t->meta[0], t->meta[1], t->bloom_raw, t->bloom.n },
		   { t->meta[2], t->meta[3], t->index_raw, t->index_n },
		   { t->meta[4], t->meta[5], t->props_raw, t->props_n } };
	char why[400];
	int r;
	for (int i = 0; i < 3; i++) {
		if (i == 0 && t->bad_bloom_off)
			continue; /* reported already */
		if (cb->drop_cache)
			sfile_drop_cache(t->f, m[i].off, m[i].size);
		uint8_t *p = NULL;
		size_t n = 0, charge;
		why[0] = 0;
		r = read_block_raw(t, m[i].off, m[i].size, NULL, &p, &n, &charge, why, sizeof why);
		if (!r && (n != m[i].n || (n && memcmp(p, m[i].held, n))))
			r = corrupt_at(t, m[i].off, why, sizeof why);
		free(p);
		if (r && r != SETT_ECORRUPT)
			return r;
		if (r) {
			*bad = 1;
			if ((r = cb->fault(cb->arg, m[i].off, m[i].size, t->smallest, t->largest, why)))
				return r;
		}
		if (cb->read && (r = cb->read(cb->arg, m[i].size)))
			return r;
	}
	uint64_t foff = t->file_size - t->foot_n;
	if (cb->drop_cache)
		sfile_drop_cache(t->f, foff, t->foot_n);
	uint8_t tail[TABLE_ENC_FOOTER_SIZE];
	r = sfile_pread_full(t->f, tail, t->foot_n, foff);
	if (r && r != SETT_ECORRUPT)
		return r;
	if (r || memcmp(tail, t->foot, t->foot_n)) {
		*bad = 1;
		snprintf(why, sizeof why, "%s: corrupt table footer at offset %llu", t->path,
			 (unsigned long long)foff);
		if (t->report)
			t->report(t->report_arg, why);
		if ((r = cb->fault(cb->arg, foff, t->foot_n, t->smallest, t->largest, why)))
			return r;
	}
	return cb->read ? cb->read(cb->arg, t->foot_n) : 0;
}

int table_scrub(table *t, const table_scrub_cb *cb)
{
	char why[400];
	if (t->damaged) {
		corrupt_at(t, 0, why, sizeof why);
		int r = cb->fault(cb->arg, 0, t->file_size, slice_make(NULL, 0), slice_make(NULL, 0),
				  why);
		return r ? r : SETT_ECORRUPT;
	}
	int bad = 0, r = 0;
	if (t->bad_bloom_off) {
		bad = 1;
		corrupt_at(t, t->bad_bloom_off, why, sizeof why);
		if ((r = cb->fault(cb->arg, t->meta[0], t->meta[1], t->smallest, t->largest, why)))
			return r;
	}
	tcur tc;
	tc_init(&tc, t, 0); /* read the file itself, not what the cache holds */
	buf prev = { 0 };
	uint64_t count = 0;
	for (size_t bi = 0; bi < t->nblocks; bi++) {
		const index_entry *ie = &t->index[bi];
		if (cb->drop_cache)
			sfile_drop_cache(t->f, ie->off, ie->size);
		tc.err = 0;
		r = tc_load(&tc, bi, 1);
		if (!r)
			r = check_block_entries(&tc, bi, &prev, &count);
		if (r && r != SETT_ECORRUPT)
			break;
		if (r) {
			/* its keys: after the previous block's last key, to its own last */
			bad = 1;
			slice lo = bi ? t->index[bi - 1].last_key : t->smallest;
			if ((r = cb->fault(cb->arg, ie->off, ie->size, lo, ie->last_key, tc.why)))
				break;
			/* the next block's checks start after this one's last key */
			prev.n = 0;
			if ((r = buf_append(&prev, ie->last_key.p, ie->last_key.n)))
				break;
			count = count ? count : 1; /* no longer the table's first key */
			tc_invalidate(&tc);
		}
		if (cb->read && (r = cb->read(cb->arg, ie->size)))
			break;
	}
	if (!r && !bad && count != t->count) {
		bad = 1;
		snprintf(why, sizeof why, "%s: table holds %llu entries, properties say %llu", t->path,
			 (unsigned long long)count, (unsigned long long)t->count);
		r = cb->fault(cb->arg, t->meta[4], t->meta[5], t->smallest, t->largest, why);
	}
	if (!r)
		r = scrub_meta(t, cb, &bad);
	buf_free(&prev);
	tc_close(&tc);
	return r ? r : bad ? SETT_ECORRUPT : 0;
}

/* table_verify stops at the first fault with its why */
struct first_fault {
	char *why;
	size_t whylen;
};

static int stop_at_fault(void *arg, uint64_t off, uint64_t len, slice lo, slice hi,
			 const char *why)
{
	(void)off;
	(void)len;
	(void)lo;
	(void)hi;
	struct first_fault *f = arg;
	if (f->why && f->whylen)
		snprintf(f->why, f->whylen, "%s", why);
	return SETT_ECORRUPT;
}

int table_verify(table *t, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = 0;
	struct first_fault f = { why, whylen };
	table_scrub_cb cb = { stop_at_fault, NULL, &f, 0 };
	return table_scrub(t, &cb);
}
