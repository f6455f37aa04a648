/*
 * memtable.c - the memtable: a skiplist whose nodes live in an arena.
 *
 * Why a skiplist: it keeps entries sorted for flushing and iteration, and it
 * can be read without locks while one writer inserts.  A node is linked in
 * bottom-up, and each link is published with a release store after the node
 * (key, value record, its own next pointers) is fully written; readers load
 * links with acquire loads, so whatever node they reach is complete.  Nodes
 * are never unlinked or freed before the whole memtable goes away.
 *
 * Why an arena: a memtable holds up to hundreds of thousands of small
 * entries that all die together.  Allocating them from large chunks avoids
 * malloc overhead per entry, frees everything at once and makes the memory
 * accounting for the flush decision (memtable_bytes) exact and cheap.
 *
 * Values are stored as separate {len, bytes} records.  Re-inserting an
 * existing internal key allocates a new record and swings the node's value
 * pointer to it with one release store; a reader sees either the old or the
 * new value, never a mix, and the old record stays valid until the end.
 */
#include "memtable.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>

#include "ikey.h"

#define MT_MAX_HEIGHT 16
#define MT_BRANCHING 4 /* p = 1/4 per level */
#define MT_CHUNK (1u << 20)
/* Allocations larger than this get a chunk of their own (less waste). */
#define MT_BIG (MT_CHUNK / 4)

typedef struct mt_value {
	uint32_t len;
	uint8_t data[];
} mt_value;

typedef struct mt_node {
	const uint8_t *key;
	uint32_t klen;
	uint32_t height;
	mt_value *value; /* atomic: replaced on re-insert */
	struct mt_node *next[]; /* height entries, each atomic */
} mt_node;

typedef struct mt_chunk {
	struct mt_chunk *prev;
	size_t size;
	alignas(16) uint8_t data[];
} mt_chunk;

struct memtable {
	int refs;           /* atomic */
	int height;         /* atomic: current height of the list */
	size_t bytes;       /* atomic: bytes handed out by the arena (the flush decision) */
	size_t count;       /* atomic: distinct internal keys */
	size_t shadowed;    /* atomic: of them, newer versions of a user key already here */
	uint64_t max_version; /* atomic: the largest version put */
	uint64_t rng;       /* writer only */
	mt_chunk *chunks;   /* writer only (freed at the end) */
	uint8_t *cur;       /* writer only: bump pointer in the current chunk */
	size_t left;        /* writer only: bytes left in the current chunk */
	mt_node *head;
	/*
	 * Writer only: the node the last put linked (NULL before the first)
	 * and the rightmost node at or before it at every level; a put of a
	 * larger key searches from there (keys written in order then cost a
	 * compare or two instead of a search from the head).
	 */
	mt_node *tail;
	mt_node *finger[MT_MAX_HEIGHT];
};

/* ---- arena ---- */

/*
 * Chunks of MT_CHUNK bytes that a freed memtable gave back, for the next
 * one: a memtable's arena is tens of MiB that the C library would return
 * to the system and fault in again, page by page, for its successor (a
 * fifth of the CPU of a sequential fill).  At most MT_POOL_MAX chunks are
 * kept, for the whole process; none under AddressSanitizer, which must see
 * every use of a freed memtable's memory.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MT_POOL_MAX 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_POOL_MAX 0
#endif
#endif
#ifndef MT_POOL_MAX
#define MT_POOL_MAX 64
#endif
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static mt_chunk *pool;
static int pool_n;

static mt_chunk *pool_take(void)
{
	pthread_mutex_lock(&pool_mu);
	mt_chunk *c = pool;
	if (c) {
		pool = c->prev;
		pool_n--;
	}
	pthread_mutex_unlock(&pool_mu);
	return c;
}

static void chunk_free(mt_chunk *c)
{
	if (c->size == MT_CHUNK) {
		pthread_mutex_lock(&pool_mu);
		if (pool_n < MT_POOL_MAX) {
			c->prev = pool;
			pool = c;
			pool_n++;
			c = NULL;
		}
		pthread_mutex_unlock(&pool_mu);
	}
	free(c);
}

static mt_chunk *mt_chunk_new(memtable *mt, size_t size)
{
	mt_chunk *c = size == MT_CHUNK ? pool_take() : NULL;
	if (!c)
		c = malloc(sizeof *c + size);
	if (!c)
		return NULL;
	c->prev = mt->chunks;
	c->size = size;
	mt->chunks = c;
	return c;
}

/* Returns n bytes aligned to 8 from the arena, or NULL. */
static void *mt_alloc(memtable *mt, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	/* Count what is used, not the chunks: a memtable is full when its
	 * entries reach mem_table_size, whatever the chunk size. */
	__atomic_fetch_add(&mt->bytes, n, __ATOMIC_RELAXED);
	if (n > MT_BIG) {
		/* Own chunk, linked behind the current one so the bump chunk stays. */
		mt_chunk *c = mt_chunk_new(mt, n);
		if (!c)
			return NULL;
		return c->data;
	}
	if (n > mt->left) {
		mt_chunk *c = mt_chunk_new(mt, MT_CHUNK);
		if (!c)
			return NULL;
		mt->cur = c->data;
		mt->left = MT_CHUNK;
	}
	void *p = mt->cur;
	mt->cur += n;
	mt->left -= n;
	return p;
}

/* ---- skiplist ---- */

static inline mt_node *mt_next(const mt_node *x, int level)
{
	return __atomic_load_n(&x->next[level], __ATOMIC_ACQUIRE);
}

static inline void mt_set_next(mt_node *x, int level, mt_node *n)
{
	__atomic_store_n(&x->next[level], n, __ATOMIC_RELEASE);
}

static inline slice mt_key(const mt_node *x)
{
	return slice_make(x->key, x->klen);
}

static inline int mt_height(const memtable *mt)
{
	return __atomic_load_n(&mt->height, __ATOMIC_RELAXED);
}

static mt_node *mt_node_new(memtable *mt, slice ikey, int height)
{
	size_t nsz = sizeof(mt_node) + (size_t)height * sizeof(mt_node *);
	mt_node *x = mt_alloc(mt, nsz + ikey.n);
	if (!x)
		return NULL;
	uint8_t *k = (uint8_t *)x + nsz;
	if (ikey.n)
		memcpy(k, ikey.p, ikey.n);
	x->key = k;
	x->klen = (uint32_t)ikey.n;
	x->height = (uint32_t)height;
	x->value = NULL;
	for (int i = 0; i < height; i++)
		x->next[i] = NULL;
	return x;
}

static int mt_random_height(memtable *mt)
{
	int h = 1;
	for (;;) {
		uint64_t x = mt->rng;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		mt->rng = x;
		if (h >= MT_MAX_HEIGHT || ((x * 0x2545F4914F6CDD1DULL) >> 32) % MT_BRANCHING)
			return h;
		h++;
	}
}

/*
 * The first node whose key is >= the search key, or NULL.  The search key is
 * given as the user key plus the 8-byte version suffix so that lookups by
 * user key need no buffer.  prev, if given, receives the last node < key at
 * every level.
 */
static int mt_cmp_parts(const mt_node *x, slice ukey, const uint8_t *suffix)
{
	slice k = mt_key(x);
	int c = slice_cmp(ikey_user(k), ukey);
	if (c)
		return c;
	return memcmp(k.p + k.n - IKEY_SUFFIX, suffix, IKEY_SUFFIX);
}

/*
 * With finger (mt->finger, for a key known to be greater than every node
 * of it), each level's search starts at the finger's node when that lies
 * further right than where the level above stopped: a finger node at
 * level i is at or after the one at level i+1, so while the search has not
 * moved past the finger no compare is needed to know it.
 */
static mt_node *mt_find_ge(const memtable *mt, slice ukey, const uint8_t *suffix,
			   mt_node **prev, mt_node *const *finger)
{
	int level = mt_height(mt) - 1;
	mt_node *x = finger ? finger[level] : mt->head;
	int moved = 0; /* x may lie after finger[level] */
	for (;;) {
		mt_node *n = mt_next(x, level);
		if (n && mt_cmp_parts(n, ukey, suffix) < 0) {
			x = n;
			moved = 1;
			continue;
		}
		if (prev)
			prev[level] = x;
		if (level == 0)
			return n;
		level--;
		mt_node *f = finger ? finger[level] : x;
		if (f != x && f != mt->head && (!moved || ikey_cmp(mt_key(f), mt_key(x)) > 0)) {
			x = f;
			moved = 0;
		}
	}
}

static mt_node *mt_find_ge_ikey(const memtable *mt, slice ikey)
{
	return mt_find_ge(mt, ikey_user(ikey), ikey.p + ikey.n - IKEY_SUFFIX, NULL, NULL);
}

/* The last node < ikey (or <= ikey when inclusive), or NULL for none. */
static mt_node *mt_find_lt(const memtable *mt, slice ikey, int inclusive)
{
	mt_node *x = mt->head;
	int level = mt_height(mt) - 1;
	for (;;) {
		mt_node *n = mt_next(x, level);
		if (n) {
			int c = ikey_cmp(mt_key(n), ikey);
			if (c < 0 || (inclusive && c == 0)) {
				x = n;
				continue;
			}
		}
		if (level == 0)
			return x == mt->head ? NULL : x;
		level--;
	}
}

static mt_node *mt_find_last(const memtable *mt)
{
	mt_node *x = mt->head;
	int level = mt_height(mt) - 1;
	for (;;) {
		mt_node *n = mt_next(x, level);
		if (n) {
			x = n;
			continue;
		}
		if (level == 0)
			return x == mt->head ? NULL : x;
		level--;
	}
}

/* ---- public ---- */

int memtable_new(memtable **mtp)
{
	memtable *mt = calloc(1, sizeof *mt);
	if (!mt)
		return -ENOMEM;
	mt->refs = 1;
	mt->height = 1;
	mt->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)mt;
	mt->head = mt_node_new(mt, slice_make(NULL, 0), MT_MAX_HEIGHT);
	if (!mt->head) {
		free(mt);
		return -ENOMEM;
	}
	for (int i = 0; i < MT_MAX_HEIGHT; i++)
		mt->finger[i] = mt->head;
	*mtp = mt;
	return 0;
}

void memtable_ref(memtable *mt)
{
	__atomic_fetch_add(&mt->refs, 1, __ATOMIC_RELAXED);
}

void memtable_unref(memtable *mt)
{
	if (!mt || __atomic_sub_fetch(&mt->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	mt_chunk *c = mt->chunks;
	while (c) {
		mt_chunk *p = c->prev;
		chunk_free(c);
		c = p;
	}
	free(mt);
}

int memtable_put(memtable *mt, slice ikey, slice vstruct)
{
	if (ikey.n < IKEY_SUFFIX || ikey.n > UINT32_MAX || vstruct.n > UINT32_MAX)
		return -EINVAL;

	mt_value *v = mt_alloc(mt, sizeof *v + vstruct.n);
	if (!v)
		return -ENOMEM;
	v->len = (uint32_t)vstruct.n;
	if (vstruct.n)
		memcpy(v->data, vstruct.p, vstruct.n);

	mt_node *prev[MT_MAX_HEIGHT];
	const uint8_t *suffix = ikey.p + ikey.n - IKEY_SUFFIX;
	uint64_t ver = ikey_version(ikey);
	if (ver > __atomic_load_n(&mt->max_version, __ATOMIC_RELAXED))
		__atomic_store_n(&mt->max_version, ver, __ATOMIC_RELEASE);
	int after_tail = mt->tail && mt_cmp_parts(mt->tail, ikey_user(ikey), suffix) < 0;
	mt_node *x = mt_find_ge(mt, ikey_user(ikey), suffix, prev, after_tail ? mt->finger : NULL);
	if (x && ikey_cmp(mt_key(x), ikey) == 0) {
		/* Same version written again: the later write wins. */
		__atomic_store_n(&x->value, v, __ATOMIC_RELEASE);
		return 0;
	}

	if (x && slice_cmp(ikey_user(mt_key(x)), ikey_user(ikey)) == 0)
		__atomic_fetch_add(&mt->shadowed, 1, __ATOMIC_RELAXED);

	int h = mt_random_height(mt);
	int cur = mt_height(mt);
	if (h > cur) {
		for (int i = cur; i < h; i++)
			prev[i] = mt->head;
		/*
		 * A reader that sees the new height before the node is linked
		 * finds NULL at the new levels of head and simply descends.
		 */
		__atomic_store_n(&mt->height, h, __ATOMIC_RELAXED);
	}
	x = mt_node_new(mt, ikey, h);
	if (!x)
		return -ENOMEM;
	x->value = v;
	for (int i = 0; i < h; i++) {
		/* x is not yet reachable: plain stores suffice for its own links. */
		x->next[i] = __atomic_load_n(&prev[i]->next[i], __ATOMIC_RELAXED);
		mt_set_next(prev[i], i, x);
	}
	mt->tail = x;
	for (int i = 0; i < h; i++)
		mt->finger[i] = x;
	for (int i = h; i < cur; i++)
		mt->finger[i] = prev[i];
	__atomic_fetch_add(&mt->count, 1, __ATOMIC_RELAXED);
	return 0;
}

size_t memtable_bytes(const memtable *mt)
{
	return __atomic_load_n(&mt->bytes, __ATOMIC_RELAXED);
}

size_t memtable_count(const memtable *mt)
{
	return __atomic_load_n(&mt->count, __ATOMIC_RELAXED);
}

size_t memtable_shadowed(const memtable *mt)
{
	return __atomic_load_n(&mt->shadowed, __ATOMIC_RELAXED);
}

static slice mt_value_of(const mt_node *x)
{
	const mt_value *v = __atomic_load_n(&x->value, __ATOMIC_ACQUIRE);
	return slice_make(v->data, v->len);
}

int memtable_get(memtable *mt, slice ukey, uint64_t read_version, uint64_t *version,
		 slice *vs)
{
	uint8_t suffix[IKEY_SUFFIX];
	put_be64(suffix, UINT64_MAX - read_version);
	mt_node *x = mt_find_ge(mt, ukey, suffix, NULL, NULL);
	if (!x || slice_cmp(ikey_user(mt_key(x)), ukey) != 0)
		return 0;
	if (version)
		*version = ikey_version(mt_key(x));
	if (vs)
		*vs = mt_value_of(x);
	return 1;
}

/* ---- iterator ---- */

typedef struct mt_iter {
	sit base;
	memtable *mt;
	mt_node *cur;
} mt_iter;

static void mti_seek(sit *it, slice ikey)
{
	mt_iter *i = (mt_iter *)it;
	i->cur = ikey.n >= IKEY_SUFFIX ? mt_find_ge_ikey(i->mt, ikey) : mt_next(i->mt->head, 0);
}

static void mti_seek_for_prev(sit *it, slice ikey)
{
	mt_iter *i = (mt_iter *)it;
	i->cur = ikey.n >= IKEY_SUFFIX ? mt_find_lt(i->mt, ikey, 1) : NULL;
}

static void mti_first(sit *it)
{
	mt_iter *i = (mt_iter *)it;
	i->cur = mt_next(i->mt->head, 0);
}

static void mti_last(sit *it)
{
	mt_iter *i = (mt_iter *)it;
	i->cur = mt_find_last(i->mt);
}

static void mti_next(sit *it)
{
	mt_iter *i = (mt_iter *)it;
	if (i->cur)
		i->cur = mt_next(i->cur, 0);
}

static void mti_prev(sit *it)
{
	mt_iter *i = (mt_iter *)it;
	/* No back links: search for the predecessor from the head. */
	if (i->cur)
		i->cur = mt_find_lt(i->mt, mt_key(i->cur), 0);
}

static int mti_valid(const sit *it)
{
	return ((const mt_iter *)it)->cur != NULL;
}

static slice mti_key(const sit *it)
{
	return mt_key(((const mt_iter *)it)->cur);
}

static slice mti_value(const sit *it)
{
	return mt_value_of(((const mt_iter *)it)->cur);
}

static int mti_error(const sit *it)
{
	(void)it;
	return 0;
}

static void mti_free(sit *it)
{
	mt_iter *i = (mt_iter *)it;
	memtable_unref(i->mt);
	free(i);
}

static const struct sit_ops mt_iter_ops = {
	.seek = mti_seek,
	.seek_for_prev = mti_seek_for_prev,
	.first = mti_first,
	.last = mti_last,
	.next = mti_next,
	.prev = mti_prev,
	.valid = mti_valid,
	.key = mti_key,
	.value = mti_value,
	.error = mti_error,
	.free = mti_free,
};

sit *memtable_iter_new(memtable *mt)
{
	mt_iter *i = calloc(1, sizeof *i);
	if (!i)
		return empty_iter_new(-ENOMEM);
	i->base.ops = &mt_iter_ops;
	memtable_ref(mt);
	i->mt = mt;
	return &i->base;
}

uint64_t memtable_max_version(const memtable *mt)
{
	return __atomic_load_n(&mt->max_version, __ATOMIC_ACQUIRE);
}
