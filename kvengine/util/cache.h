/*
 * cache.h - the block cache: a sharded LRU with a byte bound.
 *
 * Holds decoded (checksum-verified, decompressed) table blocks, table
 * indexes and bloom filters, keyed by (table id, offset).  Entries are
 * reference counted: a lookup returns a handle the caller releases; an
 * entry evicted while in use is freed at its last release.
 *
 * Thread safety: all functions may be called from any thread.
 */
#ifndef SETT_CACHE_H
#define SETT_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cache cache;
typedef struct cache_handle cache_handle;

/* capacity 0 makes a cache that keeps nothing (every insert is freed at release). */
int cache_new(size_t capacity, cache **cp);
void cache_free(cache *c);

/* Looks up (id, off); NULL on a miss. */
cache_handle *cache_lookup(cache *c, uint64_t id, uint64_t off);
/*
 * Inserts data (ownership passes to the cache; freed with free()) of
 * `charge` bytes and returns a handle to it.  An existing entry for the key
 * is replaced.
 */
cache_handle *cache_insert(cache *c, uint64_t id, uint64_t off, void *data, size_t size,
			   size_t charge);
void *cache_data(const cache_handle *h);
size_t cache_size_of(const cache_handle *h);
void cache_release(cache *c, cache_handle *h);
/* Drops every entry of table id (when the table is deleted). */
void cache_erase_id(cache *c, uint64_t id);

typedef struct cache_stats {
	uint64_t hits, misses, bytes, entries;
} cache_stats;
void cache_get_stats(cache *c, cache_stats *st);

#endif
