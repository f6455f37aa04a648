/*
 * cache.c - the block cache: a sharded LRU hash map with a byte bound.
 *
 * Sixteen shards, each with its own mutex, hash table and LRU list, so
 * readers on different blocks rarely contend.  The byte capacity is split
 * evenly across shards; a shard evicts from the cold end of its LRU list
 * until its charged bytes fit.  Eviction does not wait for readers: an entry
 * evicted (or replaced, or erased) while a handle to it is held leaves the
 * table at once and is freed at its last cache_release(), so the bytes the
 * cache counts never exceed its capacity.
 *
 * Each entry counts its references: one for being in the table, one per
 * handle.  An entry whose charge exceeds its shard's capacity is never put
 * in the table; the caller's handle is its only reference.
 */
#include "cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define CACHE_SHARD_BITS 4
#define CACHE_SHARDS (1u << CACHE_SHARD_BITS)

struct cache_handle {
	struct cache_handle *hnext;            /* hash chain */
	struct cache_handle *lprev, *lnext;    /* LRU list, most recent at head */
	uint64_t id, off, hash;
	void *data;
	size_t size, charge;
	uint32_t refs;
	int in_table;
};

typedef struct cache_shard {
	pthread_mutex_t mu;
	cache_handle **buckets;
	size_t nbuckets, count;
	size_t capacity, usage;
	cache_handle lru; /* sentinel: lru.lnext is the most recent */
} cache_shard;

struct cache {
	cache_shard shards[CACHE_SHARDS];
	_Atomic uint64_t hits, misses, bytes, entries;
};

static uint64_t cache_hash(uint64_t id, uint64_t off)
{
	/* splitmix64 finaliser over both halves of the key */
	uint64_t x = id * 0x9e3779b97f4a7c15ULL ^ off;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static cache_shard *cache_shard_of(cache *c, uint64_t hash)
{
	return &c->shards[hash >> (64 - CACHE_SHARD_BITS)];
}

int cache_new(size_t capacity, cache **cp)
{
	cache *c = calloc(1, sizeof *c);
	if (!c)
		return -12;
	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		cache_shard *s = &c->shards[i];
		s->nbuckets = 64;
		s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
		if (!s->buckets || pthread_mutex_init(&s->mu, NULL) != 0) {
			free(s->buckets);
			s->buckets = NULL;
			for (unsigned j = 0; j < i; j++) {
				pthread_mutex_destroy(&c->shards[j].mu);
				free(c->shards[j].buckets);
			}
			free(c);
			return -12;
		}
		s->capacity = capacity / CACHE_SHARDS + (i < capacity % CACHE_SHARDS);
		s->lru.lprev = s->lru.lnext = &s->lru;
	}
	*cp = c;
	return 0;
}

static void entry_free(cache_handle *e)
{
	free(e->data);
	free(e);
}

static cache_handle **shard_slot(cache_shard *s, uint64_t id, uint64_t off, uint64_t hash)
{
	cache_handle **pp = &s->buckets[hash & (s->nbuckets - 1)];
	while (*pp && ((*pp)->id != id || (*pp)->off != off))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(cache_handle *e)
{
	e->lprev->lnext = e->lnext;
	e->lnext->lprev = e->lprev;
}

static void lru_push_front(cache_shard *s, cache_handle *e)
{
	e->lnext = s->lru.lnext;
	e->lprev = &s->lru;
	e->lnext->lprev = e;
	s->lru.lnext = e;
}

/*
 * Takes e (at *pp) out of the table.  Returns 1 if that dropped its last
 * reference, so the caller frees it after unlocking.
 */
static int shard_remove(cache *c, cache_shard *s, cache_handle **pp)
{
	cache_handle *e = *pp;
	*pp = e->hnext;
	lru_unlink(e);
	e->in_table = 0;
	s->count--;
	s->usage -= e->charge;
	atomic_fetch_sub(&c->bytes, e->charge);
	atomic_fetch_sub(&c->entries, 1);
	return --e->refs == 0;
}

/* Doubles the bucket array when chains grow long; failure only costs speed. */
static void shard_grow(cache_shard *s)
{
	size_t n = s->nbuckets * 2;
	cache_handle **nb = calloc(n, sizeof *nb);
	if (!nb)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		cache_handle *e = s->buckets[i];
		while (e) {
			cache_handle *next = e->hnext;
			e->hnext = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(s->buckets);
	s->buckets = nb;
	s->nbuckets = n;
}

cache_handle *cache_lookup(cache *c, uint64_t id, uint64_t off)
{
	uint64_t h = cache_hash(id, off);
	cache_shard *s = cache_shard_of(c, h);
	pthread_mutex_lock(&s->mu);
	cache_handle *e = *shard_slot(s, id, off, h);
	if (e) {
		e->refs++;
		lru_unlink(e);
		lru_push_front(s, e);
	}
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add(e ? &c->hits : &c->misses, 1);
	return e;
}

cache_handle *cache_insert(cache *c, uint64_t id, uint64_t off, void *data, size_t size,
			   size_t charge)
{
	cache_handle *e = calloc(1, sizeof *e);
	if (!e) {
		free(data);
		return NULL;
	}
	e->id = id;
	e->off = off;
	e->hash = cache_hash(id, off);
	e->data = data;
	e->size = size;
	e->charge = charge;
	e->refs = 1; /* the caller's handle */

	cache_shard *s = cache_shard_of(c, e->hash);
	cache_handle *dead = NULL; /* freed after unlocking, chained by hnext */
	pthread_mutex_lock(&s->mu);
	cache_handle **pp = shard_slot(s, id, off, e->hash);
	if (*pp) {
		cache_handle *old = *pp;
		if (shard_remove(c, s, pp)) {
			old->hnext = dead;
			dead = old;
		}
	}
	if (charge <= s->capacity) {
		while (s->usage + charge > s->capacity && s->lru.lprev != &s->lru) {
			cache_handle *victim = s->lru.lprev;
			cache_handle **vp = shard_slot(s, victim->id, victim->off, victim->hash);
			if (shard_remove(c, s, vp)) {
				victim->hnext = dead;
				dead = victim;
			}
		}
		e->refs++;
		e->in_table = 1;
		pp = shard_slot(s, id, off, e->hash);
		e->hnext = NULL;
		*pp = e;
		lru_push_front(s, e);
		s->count++;
		s->usage += charge;
		atomic_fetch_add(&c->bytes, charge);
		atomic_fetch_add(&c->entries, 1);
		if (s->count > s->nbuckets)
			shard_grow(s);
	}
	pthread_mutex_unlock(&s->mu);
	while (dead) {
		cache_handle *next = dead->hnext;
		entry_free(dead);
		dead = next;
	}
	return e;
}

void *cache_data(const cache_handle *h)
{
	return h->data;
}

size_t cache_size_of(const cache_handle *h)
{
	return h->size;
}

void cache_release(cache *c, cache_handle *h)
{
	if (!h)
		return;
	cache_shard *s = cache_shard_of(c, h->hash);
	pthread_mutex_lock(&s->mu);
	int last = --h->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (last)
		entry_free(h);
}

void cache_erase_id(cache *c, uint64_t id)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		cache_shard *s = &c->shards[i];
		cache_handle *dead = NULL;
		pthread_mutex_lock(&s->mu);
		for (size_t b = 0; b < s->nbuckets; b++) {
			cache_handle **pp = &s->buckets[b];
			while (*pp) {
				cache_handle *e = *pp;
				if (e->id != id) {
					pp = &e->hnext;
					continue;
				}
				if (shard_remove(c, s, pp)) { /* advances *pp */
					e->hnext = dead;
					dead = e;
				}
			}
		}
		pthread_mutex_unlock(&s->mu);
		while (dead) {
			cache_handle *next = dead->hnext;
			entry_free(dead);
			dead = next;
		}
	}
}

void cache_get_stats(cache *c, cache_stats *st)
{
	st->hits = atomic_load(&c->hits);
	st->misses = atomic_load(&c->misses);
	st->bytes = atomic_load(&c->bytes);
	st->entries = atomic_load(&c->entries);
}

/* Every handle must have been released. */
void cache_free(cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CACHE_SHARDS; i++) {
		cache_shard *s = &c->shards[i];
		for (size_t b = 0; b < s->nbuckets; b++) {
			cache_handle **pp = &s->buckets[b];
			while (*pp) {
				cache_handle *e = *pp;
				if (shard_remove(c, s, pp))
					entry_free(e);
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}
