/* test_memtable.c - the skiplist memtable: lookups by version, iteration, concurrency. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ikey.h"
#include "memtable.h"
#include "testutil.h"

/* A passing ck_assert costs a syscall; hot loops use this. */
#define CHECK(cond, ...)                              \
	do {                                          \
		if (!(cond))                          \
			ck_abort_msg(__VA_ARGS__);    \
	} while (0)

/* An owned internal key + value, for models. */
typedef struct kv {
	uint8_t k[40];
	size_t kn;
	char v[32];
	size_t vn;
} kv;

static size_t make_ikey(uint8_t *out, const char *ukey, uint64_t version)
{
	size_t n = strlen(ukey);
	ikey_make(out, ukey, n, version);
	return n + IKEY_SUFFIX;
}

static void put_str(memtable *mt, const char *ukey, uint64_t version, const char *val)
{
	uint8_t k[64];
	size_t kn = make_ikey(k, ukey, version);
	ck_assert_int_eq(memtable_put(mt, slice_make(k, kn), slice_make(val, strlen(val))), 0);
}

static int get_str(memtable *mt, const char *ukey, uint64_t rv, uint64_t *ver, char *out)
{
	slice vs;
	int r = memtable_get(mt, slice_make(ukey, strlen(ukey)), rv, ver, &vs);
	if (r == 1) {
		memcpy(out, vs.p, vs.n);
		out[vs.n] = 0;
	}
	return r;
}

START_TEST(test_versions)
{
	memtable *mt;
	ck_assert_int_eq(memtable_new(&mt), 0);
	/* key i has versions 10, 20, ..., 10*(i%5+1); values name both. */
	char uk[32], val[32], got[64];
	for (int i = 0; i < 200; i++) {
		snprintf(uk, sizeof uk, "key%05d", i);
		for (int v = 1; v <= i % 5 + 1; v++) {
			snprintf(val, sizeof val, "%s@%d", uk, v * 10);
			put_str(mt, uk, (uint64_t)v * 10, val);
		}
	}
	for (int i = 0; i < 200; i++) {
		snprintf(uk, sizeof uk, "key%05d", i);
		int maxv = (i % 5 + 1) * 10;
		for (uint64_t rv = 0; rv <= 70; rv++) {
			uint64_t ver = 0;
			int r = get_str(mt, uk, rv, &ver, got);
			if (rv < 10) {
				ck_assert_int_eq(r, 0);
				continue;
			}
			uint64_t want = rv / 10 * 10;
			if (want > (uint64_t)maxv)
				want = (uint64_t)maxv;
			ck_assert_int_eq(r, 1);
			ck_assert_uint_eq(ver, want);
			snprintf(val, sizeof val, "%s@%d", uk, (int)want);
			ck_assert_str_eq(got, val);
		}
		/* Absent neighbours: a prefix and an extension of the key. */
		uk[7] = 0;
		ck_assert_int_eq(get_str(mt, uk, 100, NULL, got), 0);
		snprintf(uk, sizeof uk, "key%05dx", i);
		ck_assert_int_eq(get_str(mt, uk, 100, NULL, got), 0);
	}
	ck_assert_int_eq(get_str(mt, "zzz", UINT64_MAX, NULL, got), 0);
	ck_assert_int_eq(get_str(mt, "", UINT64_MAX, NULL, got), 0);
	ck_assert_uint_eq(memtable_count(mt), 200 * 3);
	memtable_unref(mt);
}
END_TEST

START_TEST(test_replace)
{
	memtable *mt;
	ck_assert_int_eq(memtable_new(&mt), 0);
	char got[64];
	uint64_t ver;
	put_str(mt, "a", 5, "first");
	put_str(mt, "a", 3, "older");
	put_str(mt, "a", 5, "second, longer value");
	ck_assert_uint_eq(memtable_count(mt), 2);
	ck_assert_int_eq(get_str(mt, "a", 9, &ver, got), 1);
	ck_assert_uint_eq(ver, 5);
	ck_assert_str_eq(got, "second, longer value");
	ck_assert_int_eq(get_str(mt, "a", 4, &ver, got), 1);
	ck_assert_str_eq(got, "older");

	/* An iterator sees the replaced value once. */
	sit *it = memtable_iter_new(mt);
	int n = 0;
	for (sit_first(it); sit_valid(it); sit_next(it))
		n++;
	ck_assert_int_eq(n, 2);
	sit_first(it);
	slice v = sit_value(it);
	ck_assert_uint_eq(v.n, strlen("second, longer value"));
	ck_assert_int_eq(memcmp(v.p, "second, longer value", v.n), 0);
	/* The iterator holds its own reference. */
	memtable_unref(mt);
	sit_last(it);
	ck_assert(sit_valid(it));
	ck_assert_uint_eq(ikey_version(sit_key(it)), 3);
	sit_free(it);
}
END_TEST

static int cmp_kv(const void *a, const void *b)
{
	const kv *x = a, *y = b;
	return ikey_cmp(slice_make(x->k, x->kn), slice_make(y->k, y->kn));
}

static void check_at(sit *it, const kv *model, long i, long n)
{
	if (i < 0 || i >= n) {
		CHECK(!sit_valid(it), "iterator valid past the end (model index %ld)", i);
		return;
	}
	CHECK(sit_valid(it), "iterator not valid at model index %ld", i);
	slice k = sit_key(it), v = sit_value(it);
	CHECK(ikey_cmp(k, slice_make(model[i].k, model[i].kn)) == 0, "wrong key at %ld", i);
	CHECK(v.n == model[i].vn && memcmp(v.p, model[i].v, v.n) == 0, "wrong value at %ld", i);
}

/*
 * Puts in mostly ascending runs (each a little past the last key, often
 * into the middle of keys already there), broken by random jumps and
 * re-puts of the same key: the list stays sorted and complete whichever
 * way each put searched for its place.
 */
START_TEST(test_ascending_runs_and_jumps)
{
	memtable *mt;
	ck_assert_int_eq(memtable_new(&mt), 0);
	enum { KEYS = 20000, PUTS = 40000 };
	long *last = malloc(KEYS * sizeof *last);
	for (long i = 0; i < KEYS; i++)
		last[i] = -1;
	uint64_t rs = 7;
	long key = 0, distinct = 0;
	for (long p = 0; p < PUTS; p++) {
		uint64_t r = tu_rand(&rs) % 10;
		if (r < 6)
			key += 1 + (long)(tu_rand(&rs) % 3);
		else if (r < 9)
			key = (long)(tu_rand(&rs) % KEYS);
		/* else: the same key again */
		key %= KEYS;
		char uk[16], v[24];
		snprintf(uk, sizeof uk, "%08ld", key);
		snprintf(v, sizeof v, "%ld", p);
		put_str(mt, uk, 1, v);
		distinct += last[key] < 0;
		last[key] = p;
	}
	ck_assert_uint_eq(memtable_count(mt), (size_t)distinct);
	sit *it = memtable_iter_new(mt);
	long prev = -1, seen = 0;
	for (sit_first(it); sit_valid(it); sit_next(it), seen++) {
		slice k = sit_key(it);
		char uk[16];
		CHECK(k.n == 8 + IKEY_SUFFIX, "key length %zu", k.n);
		memcpy(uk, k.p, 8);
		uk[8] = 0;
		long n = atol(uk);
		CHECK(n > prev && n < KEYS && last[n] >= 0, "key %ld after %ld", n, prev);
		slice val = sit_value(it);
		char want[24];
		int wn = snprintf(want, sizeof want, "%ld", last[n]);
		CHECK(val.n == (size_t)wn && memcmp(val.p, want, val.n) == 0, "value of key %ld", n);
		prev = n;
	}
	sit_free(it);
	ck_assert_int_eq(seen, distinct);
	free(last);
	memtable_unref(mt);
}
END_TEST

START_TEST(test_iterate_vs_model)
{
	memtable *mt;
	ck_assert_int_eq(memtable_new(&mt), 0);
	enum { N = 5000 };
	kv *model = calloc(N, sizeof *model);
	uint64_t rs = 42;
	long n = 0;
	while (n < N) {
		kv *e = &model[n];
		char uk[16];
		/* Short random keys from a small alphabet: many shared prefixes and versions. */
		size_t ul = tu_rand(&rs) % 5;
		for (size_t j = 0; j < ul; j++)
			uk[j] = (char)('a' + tu_rand(&rs) % 3);
		uint64_t ver = tu_rand(&rs) % 50;
		ikey_make(e->k, uk, ul, ver);
		e->kn = ul + IKEY_SUFFIX;
		e->vn = (size_t)snprintf(e->v, sizeof e->v, "v%ld", n);
		ck_assert_int_eq(memtable_put(mt, slice_make(e->k, e->kn), slice_make(e->v, e->vn)),
				 0);
		long dup = -1;
		for (long j = 0; j < n && dup < 0; j++)
			if (ikey_cmp(slice_make(model[j].k, model[j].kn), slice_make(e->k, e->kn)) == 0)
				dup = j;
		if (dup < 0) {
			n++;
		} else {
			/* A re-insert replaces the value. */
			memcpy(model[dup].v, e->v, e->vn);
			model[dup].vn = e->vn;
		}
		if (n > 1500)
			break; /* the key space is ~121 user keys x 50 versions */
	}
	qsort(model, (size_t)n, sizeof *model, cmp_kv);
	ck_assert_uint_eq(memtable_count(mt), (size_t)n);

	sit *it = memtable_iter_new(mt);
	long i = 0;
	for (sit_first(it); sit_valid(it); sit_next(it))
		check_at(it, model, i++, n);
	ck_assert_int_eq(i, n);
	i = n - 1;
	for (sit_last(it); sit_valid(it); sit_prev(it))
		check_at(it, model, i--, n);
	ck_assert_int_eq(i, -1);
	ck_assert_int_eq(sit_error(it), 0);

	/* Seeks to random targets, present or not, then a few random steps. */
	for (int t = 0; t < 2000; t++) {
		uint8_t target[40];
		char uk[8];
		size_t ul = tu_rand(&rs) % 6;
		for (size_t j = 0; j < ul; j++)
			uk[j] = (char)('a' + tu_rand(&rs) % 4);
		ikey_make(target, uk, ul, tu_rand(&rs) % 55);
		slice ts = slice_make(target, ul + IKEY_SUFFIX);
		long ge = 0;
		while (ge < n && ikey_cmp(slice_make(model[ge].k, model[ge].kn), ts) < 0)
			ge++;
		long le = ge < n && ikey_cmp(slice_make(model[ge].k, model[ge].kn), ts) == 0 ? ge
											      : ge - 1;
		if (t & 1) {
			sit_seek(it, ts);
			i = ge;
		} else {
			sit_seek_for_prev(it, ts);
			i = le;
		}
		check_at(it, model, i, n);
		for (int s = 0; s < 5 && i >= 0 && i < n; s++) {
			if (tu_rand(&rs) & 1) {
				sit_next(it);
				i++;
			} else {
				sit_prev(it);
				i--;
			}
			check_at(it, model, i, n);
		}
	}
	sit_free(it);
	free(model);
	memtable_unref(mt);
}
END_TEST

START_TEST(test_empty_and_bytes)
{
	memtable *mt;
	ck_assert_int_eq(memtable_new(&mt), 0);
	sit *it = memtable_iter_new(mt);
	sit_first(it);
	ck_assert(!sit_valid(it));
	sit_last(it);
	ck_assert(!sit_valid(it));
	uint8_t k[16];
	ikey_make(k, "x", 1, 1);
	sit_seek(it, slice_make(k, 9));
	ck_assert(!sit_valid(it));
	sit_seek_for_prev(it, slice_make(k, 9));
	ck_assert(!sit_valid(it));
	sit_free(it);

	size_t b0 = memtable_bytes(mt);
	char val[100];
	memset(val, 'v', sizeof val);
	size_t last = b0;
	int grew = 0;
	for (int i = 0; i < 50000; i++) {
		uint8_t ik[32];
		char uk[16];
		int ul = snprintf(uk, sizeof uk, "%08d", i);
		ikey_make(ik, uk, (size_t)ul, 1);
		CHECK(memtable_put(mt, slice_make(ik, (size_t)ul + 8), slice_make(val, 100)) == 0,
		      "put %d", i);
		size_t b = memtable_bytes(mt);
		CHECK(b >= last, "memtable_bytes shrank");
		grew += b > last;
		last = b;
	}
	/* 50k entries of >= 116 payload bytes each: at least that much arena. */
	ck_assert_uint_ge(last - b0, (size_t)50000 * 116);
	ck_assert_int_gt(grew, 3);

	/* A value larger than a chunk lives in its own allocation. */
	size_t big = 3u << 20;
	char *bv = malloc(big);
	memset(bv, 'B', big);
	bv[big - 1] = 'E';
	ikey_make(k, "big", 3, 7);
	size_t before = memtable_bytes(mt);
	ck_assert_int_eq(memtable_put(mt, slice_make(k, 11), slice_make(bv, big)), 0);
	ck_assert_uint_ge(memtable_bytes(mt) - before, big);
	uint64_t ver;
	slice vs;
	ck_assert_int_eq(memtable_get(mt, slice_make("big", 3), 100, &ver, &vs), 1);
	ck_assert_uint_eq(vs.n, big);
	ck_assert_int_eq(memcmp(vs.p, bv, big), 0);
	free(bv);

	/* Keys shorter than the version suffix are refused. */
	ck_assert_int_lt(memtable_put(mt, slice_make("abc", 3), slice_make("", 0)), 0);
	memtable_unref(mt);
}
END_TEST

/* ---- one writer, three readers ---- */

/* "%08x-%07ld" user keys plus the version suffix. */
enum { CONC_N = 200000, CONC_KLEN = 16 + IKEY_SUFFIX };

typedef struct conc {
	memtable *mt;
	long published; /* atomic: entries 0..published-1 are inserted */
	int stop;       /* atomic */
	long reads, scans;
	int failures;
} conc;

static void conc_key(uint8_t *out, long i)
{
	/* Spread insertion order over the key space (multiplicative hash). */
	uint32_t h = (uint32_t)((uint64_t)i * 2654435761u);
	char uk[24];
	int ul = snprintf(uk, sizeof uk, "%08x-%07ld", h, i);
	ikey_make(out, uk, (size_t)ul, (uint64_t)i);
}

static void *conc_reader(void *arg)
{
	conc *c = arg;
	uint64_t rs = (uint64_t)(uintptr_t)&rs;
	sit *it = memtable_iter_new(c->mt);
	long reads = 0, scans = 0;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		long pub = __atomic_load_n(&c->published, __ATOMIC_ACQUIRE);
		if (pub == 0)
			continue;
		/* Point reads of keys inserted before this read began. */
		for (int j = 0; j < 64; j++) {
			long i = (long)(tu_rand(&rs) % (uint64_t)pub);
			uint8_t k[40];
			conc_key(k, i);
			slice ik = slice_make(k, CONC_KLEN);
			uint64_t ver;
			slice vs;
			if (memtable_get(c->mt, ikey_user(ik), UINT64_MAX, &ver, &vs) != 1 ||
			    ver != (uint64_t)i || vs.n != sizeof(long) ||
			    memcmp(vs.p, &i, sizeof i) != 0)
				__atomic_fetch_add(&c->failures, 1, __ATOMIC_RELAXED);
			reads++;
		}
		/* A short ordered scan from a random key, both directions. */
		long i = (long)(tu_rand(&rs) % (uint64_t)pub);
		uint8_t k[40], prevk[40];
		conc_key(k, i);
		sit_seek(it, slice_make(k, CONC_KLEN));
		if (!sit_valid(it) || ikey_cmp(sit_key(it), slice_make(k, CONC_KLEN)) != 0)
			__atomic_fetch_add(&c->failures, 1, __ATOMIC_RELAXED);
		for (int s = 0; s < 100 && sit_valid(it); s++) {
			memcpy(prevk, sit_key(it).p, CONC_KLEN);
			sit_next(it);
			if (sit_valid(it) && ikey_cmp(slice_make(prevk, CONC_KLEN), sit_key(it)) >= 0)
				__atomic_fetch_add(&c->failures, 1, __ATOMIC_RELAXED);
		}
		sit_seek_for_prev(it, slice_make(k, CONC_KLEN));
		for (int s = 0; s < 20 && sit_valid(it); s++) {
			memcpy(prevk, sit_key(it).p, CONC_KLEN);
			sit_prev(it);
			if (sit_valid(it) && ikey_cmp(slice_make(prevk, CONC_KLEN), sit_key(it)) <= 0)
				__atomic_fetch_add(&c->failures, 1, __ATOMIC_RELAXED);
		}
		scans++;
	}
	sit_free(it);
	__atomic_fetch_add(&c->reads, reads, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->scans, scans, __ATOMIC_RELAXED);
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	conc c = { 0 };
	ck_assert_int_eq(memtable_new(&c.mt), 0);
	pthread_t th[3];
	for (int t = 0; t < 3; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, conc_reader, &c), 0);
	for (long i = 0; i < CONC_N; i++) {
		uint8_t k[40];
		conc_key(k, i);
		CHECK(memtable_put(c.mt, slice_make(k, CONC_KLEN), slice_make(&i, sizeof i)) == 0,
		      "put %ld", i);
		__atomic_store_n(&c.published, i + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (int t = 0; t < 3; t++)
		pthread_join(th[t], NULL);
	ck_assert_int_eq(c.failures, 0);
	ck_assert_int_gt(c.reads, 0);
	ck_assert_int_gt(c.scans, 0);
	ck_assert_uint_eq(memtable_count(c.mt), CONC_N);

	/* Afterwards the whole table is in order and complete. */
	sit *it = memtable_iter_new(c.mt);
	long n = 0;
	uint8_t prevk[CONC_KLEN];
	for (sit_first(it); sit_valid(it); sit_next(it)) {
		if (n)
			CHECK(ikey_cmp(slice_make(prevk, CONC_KLEN), sit_key(it)) < 0, "order at %ld", n);
		memcpy(prevk, sit_key(it).p, CONC_KLEN);
		n++;
	}
	ck_assert_int_eq(n, CONC_N);
	sit_free(it);
	memtable_unref(c.mt);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memtable");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_iterate_vs_model);
	tcase_add_test(tc, test_ascending_runs_and_jumps);
	tcase_add_test(tc, test_empty_and_bytes);
	tcase_add_test(tc, test_concurrent_readers);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
