/*
 * test_cache.c - the block cache: hits and misses, the byte bound, handles
 * that outlive eviction, replacement, erasing a table's blocks, and use
 * from several threads at once.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "testutil.h"

/* A block whose bytes say which (id, off) it belongs to. */
static void *make_block(uint64_t id, uint64_t off, size_t n)
{
	uint8_t *p = malloc(n);
	if (!p) /* plain check: this also runs on worker threads */
		abort();
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(id * 31 + off * 7 + i);
	return p;
}

static int block_ok(const void *data, uint64_t id, uint64_t off, size_t n)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(id * 31 + off * 7 + i))
			return 0;
	return 1;
}

START_TEST(test_hit_miss)
{
	cache *c;
	ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	ck_assert_ptr_null(cache_lookup(c, 1, 0));
	cache_handle *h = cache_insert(c, 1, 0, make_block(1, 0, 100), 100, 100);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(cache_size_of(h), 100);
	cache_release(c, h);
	for (int i = 0; i < 5; i++) {
		h = cache_lookup(c, 1, 0);
		ck_assert_ptr_nonnull(h);
		ck_assert(block_ok(cache_data(h), 1, 0, 100));
		cache_release(c, h);
	}
	ck_assert_ptr_null(cache_lookup(c, 1, 1)); /* other offset */
	ck_assert_ptr_null(cache_lookup(c, 2, 0)); /* other table */
	cache_stats st;
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.hits, 5);
	ck_assert_uint_eq(st.misses, 3);
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_eq(st.bytes, 100);

	/* replacing an entry: the new data is returned, the count stays */
	h = cache_insert(c, 1, 0, make_block(1, 0, 50), 50, 50);
	cache_release(c, h);
	h = cache_lookup(c, 1, 0);
	ck_assert_uint_eq(cache_size_of(h), 50);
	cache_release(c, h);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_eq(st.bytes, 50);
	cache_free(c);
}
END_TEST

START_TEST(test_byte_bound)
{
	const size_t cap = 64 << 10;
	cache *c;
	ck_assert_int_eq(cache_new(cap, &c), 0);
	cache_stats st;
	for (uint64_t i = 0; i < 5000; i++) {
		size_t n = 100 + i % 900;
		cache_release(c, cache_insert(c, 7, i, make_block(7, i, n), n, n));
		cache_get_stats(c, &st);
		if (st.bytes > cap)
			ck_abort_msg("cache holds %llu bytes, bound %zu", (unsigned long long)st.bytes,
				     cap);
	}
	ck_assert_uint_gt(st.bytes, cap / 2); /* it does keep things */
	/* the oldest are gone, the newest are there */
	int old_hits = 0, new_hits = 0;
	for (uint64_t i = 0; i < 20; i++) {
		cache_handle *h = cache_lookup(c, 7, i);
		old_hits += h != NULL;
		cache_release(c, h);
		h = cache_lookup(c, 7, 4999 - i);
		new_hits += h != NULL;
		cache_release(c, h);
	}
	ck_assert_int_eq(old_hits, 0);
	ck_assert_int_ge(new_hits, 15);

	/* recently used entries survive: keep touching one while inserting */
	cache_release(c, cache_insert(c, 8, 0, make_block(8, 0, 200), 200, 200));
	for (uint64_t i = 0; i < 3000; i++) {
		cache_handle *h = cache_lookup(c, 8, 0);
		ck_assert_ptr_nonnull(h);
		cache_release(c, h);
		cache_release(c, cache_insert(c, 9, i, make_block(9, i, 300), 300, 300));
	}

	/* an entry bigger than a shard is handed back but not kept */
	cache_handle *h = cache_insert(c, 10, 0, make_block(10, 0, cap), cap, cap);
	ck_assert_ptr_nonnull(h);
	ck_assert(block_ok(cache_data(h), 10, 0, cap));
	cache_release(c, h);
	ck_assert_ptr_null(cache_lookup(c, 10, 0));
	cache_free(c);

	/* capacity 0 keeps nothing */
	ck_assert_int_eq(cache_new(0, &c), 0);
	h = cache_insert(c, 1, 1, make_block(1, 1, 10), 10, 10);
	ck_assert(block_ok(cache_data(h), 1, 1, 10));
	ck_assert_ptr_null(cache_lookup(c, 1, 1));
	cache_release(c, h);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.bytes, 0);
	cache_free(c);
}
END_TEST

START_TEST(test_handle_outlives_eviction)
{
	cache *c;
	ck_assert_int_eq(cache_new(16 << 10, &c), 0);
	cache_handle *kept = cache_insert(c, 1, 0, make_block(1, 0, 500), 500, 500);
	cache_handle *same = cache_lookup(c, 1, 0);
	ck_assert_ptr_eq(same, kept);
	for (uint64_t i = 1; i < 2000; i++)
		cache_release(c, cache_insert(c, 1, i, make_block(1, i, 500), 500, 500));
	ck_assert_ptr_null(cache_lookup(c, 1, 0)); /* evicted ... */
	ck_assert(block_ok(cache_data(kept), 1, 0, 500)); /* ... but still readable */
	cache_release(c, kept);
	ck_assert(block_ok(cache_data(same), 1, 0, 500));
	cache_release(c, same); /* freed here (ASan would see a leak or double free) */

	/* replaced and erased entries also stay readable while held */
	cache_handle *a = cache_insert(c, 5, 0, make_block(5, 0, 64), 64, 64);
	cache_release(c, cache_insert(c, 5, 0, make_block(5, 0, 32), 32, 32));
	cache_handle *b = cache_insert(c, 5, 64, make_block(5, 64, 64), 64, 64);
	cache_release(c, cache_insert(c, 6, 0, make_block(6, 0, 64), 64, 64));
	cache_erase_id(c, 5);
	ck_assert_ptr_null(cache_lookup(c, 5, 0));
	ck_assert_ptr_null(cache_lookup(c, 5, 64));
	cache_handle *other = cache_lookup(c, 6, 0); /* other tables untouched */
	ck_assert_ptr_nonnull(other);
	cache_release(c, other);
	ck_assert(block_ok(cache_data(a), 5, 0, 64));
	ck_assert(block_ok(cache_data(b), 5, 64, 64));
	cache_release(c, a);
	cache_release(c, b);
	cache_free(c);
}
END_TEST

typedef struct worker {
	cache *c;
	uint64_t seed;
	long lookups, bad;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < 100000; i++) {
		uint64_t id = tu_rand(&w->seed) % 4, off = tu_rand(&w->seed) % 1000;
		size_t n = 64 + (size_t)(off % 200);
		cache_handle *h = cache_lookup(w->c, id, off);
		w->lookups++;
		if (!h)
			h = cache_insert(w->c, id, off, make_block(id, off, n), n, n);
		if (cache_size_of(h) != n || !block_ok(cache_data(h), id, off, n))
			w->bad++;
		cache_release(w->c, h);
		if (i % 20000 == 19999)
			cache_erase_id(w->c, id);
	}
	return NULL;
}

START_TEST(test_threads)
{
	const size_t cap = 128 << 10; /* well below the ~660 KiB working set */
	cache *c;
	ck_assert_int_eq(cache_new(cap, &c), 0);
	pthread_t th[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){ c, (uint64_t)i * 977 + 1, 0, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	long lookups = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].bad, 0);
		lookups += w[i].lookups;
	}
	cache_stats st;
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.hits + st.misses, (uint64_t)lookups);
	ck_assert_uint_gt(st.hits, 0);
	ck_assert_uint_gt(st.misses, 0);
	ck_assert_uint_le(st.bytes, cap);
	cache_free(c);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("cache");
	add(s, "hit_miss", test_hit_miss);
	add(s, "byte_bound", test_byte_bound);
	add(s, "handle_outlives_eviction", test_handle_outlives_eviction);
	add(s, "threads", test_threads);
	return tu_run(s);
}
