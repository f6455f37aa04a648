/*
 * test_gc.c - value-log GC: disk space comes back after overwrites and
 * deletes (with the store open), the background thread collects by itself,
 * deleted keys never come back, open iterators keep the files they need,
 * and a corrupt value is never copied.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "sett.h"
#include "db_impl.h"
#include "fileio.h"

#define VAL (64u << 10)

static void key_of(char *k, size_t n, uint32_t i) { snprintf(k, n, "chunk%06u", i); }

static void val_of(uint8_t *v, uint32_t i, uint32_t round)
{
	uint64_t s = ((uint64_t)i << 20) ^ round ^ 99;
	tu_fill_random(&s, v, VAL);
}

static void put_chunk(sett_db *db, uint8_t *v, uint32_t i, uint32_t round)
{
	char k[32];
	key_of(k, sizeof k, i);
	val_of(v, i, round);
	ck_assert_int_eq(sett_put(db, (sett_val){ strlen(k), k }, (sett_val){ VAL, v }), 0);
}

static void check_chunk(sett_db *db, uint8_t *v, uint32_t i, uint32_t round)
{
	char k[32];
	key_of(k, sizeof k, i);
	void *got;
	size_t n;
	int r = sett_get(db, (sett_val){ strlen(k), k }, 0, &got, &n);
	if (!round) {
		ck_assert_msg(r == SETT_ENOTFOUND, "%s: deleted key came back (%d)", k, r);
		return;
	}
	ck_assert_msg(r == 0, "%s: %s", k, sett_strerror(r));
	val_of(v, i, round);
	ck_assert_msg(n == VAL && memcmp(got, v, VAL) == 0, "%s: wrong value", k);
	free(got);
}

/* Write N chunks, overwrite all twice, delete half. */
static void churn(sett_db *db, uint8_t *v, uint32_t n)
{
	for (uint32_t round = 1; round <= 3; round++)
		for (uint32_t i = 0; i < n; i++)
			put_chunk(db, v, i, round);
	for (uint32_t i = 0; i < n; i += 2) {
		char k[32];
		key_of(k, sizeof k, i);
		ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
	}
}

/* Write n chunks, then delete them all. */
static void put_then_delete(sett_db *db, uint8_t *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		put_chunk(db, v, i, 1);
	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		key_of(k, sizeof k, i);
		ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
	}
}

/* 64 MiB of 64 KiB values, overwritten twice, half deleted: space comes back. */
START_TEST(test_space_reclaimed)
{
	char *dir = tu_tmpdir("gc-space");
	sett_options o;
	tu_small_options(&o, 8u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 1024;
	churn(db, v, n);
	uint64_t before = tu_dir_bytes(dir);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(sett_gc(db, 0.1), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	uint64_t after = tu_dir_bytes(dir);
	uint64_t live = (uint64_t)(n / 2) * VAL;
	double ratio = (double)after / (double)live;
	ck_assert_msg(ratio <= 1.2,
		      "after GC the store uses %.1f MiB for %.1f MiB of live data: %.3fx (limit 1.2x; "
		      "before GC %.1f MiB)",
		      after / 1048576.0, live / 1048576.0, ratio, before / 1048576.0);
	(void)t1;
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert(st.gc_runs >= 1 && st.gc_files_rewritten >= 1);
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, i % 2 ? 3 : 0);
	/* Nothing more to do now. */
	ck_assert_int_eq(sett_gc(db, 0.5), SETT_ENOREWRITE);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	for (uint32_t i = 0; i < n; i += 3)
		check_chunk(db, v, i, i % 2 ? 3 : 0);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * sett_reclaim gives back what deletions hold right after a reopen (the
 * tombstones still above the data), and then says there is nothing more.
 */
START_TEST(test_reclaim)
{
	char *dir = tu_tmpdir("gc-reclaim");
	sett_options o;
	tu_small_options(&o, 8u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 256;
	put_then_delete(db, v, n);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint64_t before = tu_dir_bytes(dir);
	ck_assert_int_eq(sett_reclaim(db), 0);
	uint64_t after = tu_dir_bytes(dir);
	ck_assert_msg(after < (uint64_t)n * VAL / 4, "store %.1f MiB after reclaim (before %.1f MiB)",
		      after / 1048576.0, before / 1048576.0);
	ck_assert_int_eq(sett_reclaim(db), SETT_ENOREWRITE);
	for (uint32_t i = 0; i < n; i += 7)
		check_chunk(db, v, i, 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * With the disk low on space (reclaim_below above the free space), the GC
 * thread gives back what deletions hold by itself, before any writer is
 * refused: the tombstones still in the memtable reach the data in the last
 * level and both go, and the value log shrinks.  No compactor threads: no
 * other background work would move the tombstones.
 */
START_TEST(test_background_reclaim_low_space)
{
	char *dir = tu_tmpdir("gc-low");
	sett_options o;
	tu_small_options(&o, 8u << 20);
	o.gc_discard_ratio = 0.5;
	o.gc_interval_ms = 20;
	o.num_compactors = 0;
	o.reclaim_below = INT64_MAX; /* the disk is always low */
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 256;
	put_then_delete(db, v, n);
	sett_stats st;
	int tables = 1;
	uint64_t size = 0;
	for (int t = 0; t < 60000 && (tables || size >= (uint64_t)n * VAL / 4); t += 50) {
		usleep(50000);
		ck_assert_int_eq(sett_get_stats(db, &st), 0);
		tables = 0;
		for (int l = 0; l < SETT_MAX_LEVELS; l++)
			tables += st.levels[l].tables;
		tables += st.memtable_bytes >= 1024; /* an empty one: a few hundred */
		size = tu_dir_bytes(dir);
	}
	ck_assert_msg(tables == 0, "the tombstones are still in the memtable or the tables "
				   "(%d tables, %llu memtable bytes)", tables - (st.memtable_bytes >= 1024),
		      (unsigned long long)st.memtable_bytes);
	ck_assert_msg(size < (uint64_t)n * VAL / 4, "store %.1f MiB after the background reclaim",
		      size / 1048576.0);
	ck_assert_uint_ge(st.background_reclaims, 1);
	for (uint32_t i = 0; i < n; i += 7)
		check_chunk(db, v, i, 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* The GC thread collects by itself (no sett_gc, no flush needed). */
START_TEST(test_gc_thread_runs_by_itself)
{
	char *dir = tu_tmpdir("gc-auto");
	sett_options o;
	tu_small_options(&o, 8u << 20);
	o.gc_discard_ratio = 0.3;
	o.gc_interval_ms = 20;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 256; /* 16 MiB per round */
	churn(db, v, n);
	uint64_t live = (uint64_t)(n / 2) * VAL;
	double ratio = 0;
	for (int i = 0; i < 3000; i++) { /* up to a minute on a loaded machine */
		ratio = (double)tu_dir_bytes(dir) / (double)live;
		if (ratio < 1.6)
			break;
		usleep(20000);
	}
	ck_assert_msg(ratio < 1.6, "the GC thread left %.2fx of the live data on disk", ratio);
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, i % 2 ? 3 : 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Waits (bounded) until the store takes at most `limit` bytes; returns its size. */
static uint64_t wait_size_below(const char *dir, uint64_t limit, int max_wait_ms)
{
	uint64_t b = tu_dir_bytes(dir);
	for (int t = 0; b > limit && t < max_wait_ms; t += 50) {
		usleep(50000);
		b = tu_dir_bytes(dir);
	}
	return b;
}

/*
 * The GC thread alone (no sett_gc, no flush) brings a store whose garbage
 * is spread thinly over every file (30 % each: below gc_discard_ratio)
 * within 1.25x of its live data, and a store whose keys are all deleted
 * (the head file included) to a few files' headers.
 */
START_TEST(test_gc_thread_garbage_share)
{
	char *dir = tu_tmpdir("gc-share");
	sett_options o;
	tu_small_options(&o, 8u << 20);
	o.gc_discard_ratio = 0.5;
	o.gc_garbage_share = 0.15;
	o.gc_interval_ms = 20;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 480; /* 30 MiB: three sealed files and the head */
	for (uint32_t i = 0; i < n; i++)
		put_chunk(db, v, i, 1);
	uint32_t live_n = 0;
	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		key_of(k, sizeof k, i);
		if (i % 10 < 3)
			ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
		else
			live_n++;
	}
	uint64_t live = (uint64_t)live_n * VAL;
	uint64_t b = wait_size_below(dir, live + live / 4, 60000);
	ck_assert_msg(b <= live + live / 4, "GC left %.2fx of the live data on disk",
		      (double)b / (double)live);
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert(st.gc_bytes_rewritten > 0);
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, i % 10 < 3 ? 0 : 1);

	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		key_of(k, sizeof k, i);
		if (i % 10 >= 3)
			ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
	}
	uint64_t small = live / 20 + (1u << 20);
	b = wait_size_below(dir, small, 60000);
	ck_assert_msg(b <= small, "after deleting everything the store takes %.1f MiB",
		      b / 1048576.0);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Small inline writes over a few keys, until told to stop: the store is
 * never idle, but its value log does not grow. */
typedef struct small_writer {
	sett_db *db;
	int stop;
	int rc;
	long n;
} small_writer;

static void *small_writes(void *p)
{
	small_writer *w = p;
	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		char k[32], v[100];
		snprintf(k, sizeof k, "small%03ld", w->n % 500);
		memset(v, 'a' + (int)(w->n % 26), sizeof v);
		if ((w->rc = sett_put(w->db, (sett_val){ strlen(k), k }, (sett_val){ sizeof v, v })))
			break;
		w->n++;
		usleep(500);
	}
	return NULL;
}

/* While writes go on (the store is never idle), the GC thread still brings
 * a store with garbage spread thinly over every file within 1.25x of its
 * live data. */
START_TEST(test_gc_thread_while_writing)
{
	char *dir = tu_tmpdir("gc-busy");
	sett_options o;
	tu_small_options(&o, 8u << 20);
	o.mem_table_size = 4u << 20; /* the small writes do not fill it soon */
	o.gc_discard_ratio = 0.5;
	o.gc_interval_ms = 20;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 480;
	for (uint32_t i = 0; i < n; i++)
		put_chunk(db, v, i, 1);
	small_writer w = { .db = db };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, small_writes, &w), 0);
	uint32_t live_n = 0;
	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		key_of(k, sizeof k, i);
		if (i % 10 < 3)
			ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
		else
			live_n++;
	}
	uint64_t live = (uint64_t)live_n * VAL;
	uint64_t b = wait_size_below(dir, live + live / 4, 90000);
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ck_assert_msg(w.rc == 0 && w.n > 0, "the writer failed: %s", sett_strerror(w.rc));
	ck_assert_msg(b <= live + live / 4, "GC left %.2fx of the live data on disk while writing",
		      (double)b / (double)live);
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, i % 10 < 3 ? 0 : 1);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* GC racing with deletes and overwrites never resurrects a key. */
typedef struct race_arg {
	sett_db *db;
	int stop;
} race_arg;

static void *gc_loop(void *p)
{
	race_arg *a = p;
	while (!__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
		int r = sett_gc(a->db, 0.0);
		if (r && r != SETT_ENOREWRITE)
			return (void *)(intptr_t)r;
	}
	return NULL;
}

START_TEST(test_no_resurrection)
{
	char *dir = tu_tmpdir("gc-race");
	sett_options o;
	tu_small_options(&o, 1u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 64;
	uint32_t model[64] = { 0 };
	race_arg a = { db, 0 };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, gc_loop, &a), 0);
	uint64_t rs = 3;
	for (int op = 0; op < 3000; op++) {
		uint32_t i = (uint32_t)(tu_rand(&rs) % n);
		if (tu_rand(&rs) % 3 == 0) {
			char k[32];
			key_of(k, sizeof k, i);
			ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
			model[i] = 0;
		} else {
			put_chunk(db, v, i, (uint32_t)op + 1);
			model[i] = (uint32_t)op + 1;
		}
		if (op % 500 == 0)
			ck_assert_int_eq(sett_flush(db), 0);
	}
	__atomic_store_n(&a.stop, 1, __ATOMIC_RELAXED);
	void *res;
	pthread_join(th, &res);
	ck_assert_msg(res == NULL, "sett_gc failed: %s", sett_strerror((int)(intptr_t)res));
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, model[i]);
	ck_assert_int_eq(sett_flatten(db), 0);
	int g = sett_gc(db, 0.0);
	ck_assert(g == 0 || g == SETT_ENOREWRITE);
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, model[i]);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, model[i]);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* An open iterator keeps the value-log files its snapshot needs. */
START_TEST(test_iterator_keeps_files)
{
	char *dir = tu_tmpdir("gc-iter");
	sett_options o;
	tu_small_options(&o, 1u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 64;
	for (uint32_t i = 0; i < n; i++)
		put_chunk(db, v, i, 1);
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, NULL, &it), 0);
	for (uint32_t i = 0; i < n; i++)
		put_chunk(db, v, i, 2);
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(sett_gc(db, 0.1), 0); /* rewrites, but must not delete yet */
	uint32_t seen = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it), seen++) {
		sett_val vv;
		ck_assert_int_eq(sett_iter_value(it, &vv), 0);
		val_of(v, seen, 1);
		ck_assert_msg(vv.size == VAL && memcmp(vv.data, v, VAL) == 0,
			      "iterator value %u changed or vanished under GC", seen);
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	ck_assert_uint_eq(seen, n);
	uint64_t held = tu_dir_bytes(dir);
	sett_iter_free(it);
	sett_gc(db, 0.1); /* now the old files can go */
	uint64_t freed = tu_dir_bytes(dir);
	ck_assert_msg(freed + (2u << 20) < held, "files not deleted after the iterator closed "
		      "(%llu -> %llu bytes)", (unsigned long long)held, (unsigned long long)freed);
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, 2);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A corrupt entry is never copied: the file is left alone and reads fail loudly. */
START_TEST(test_corrupt_value_not_copied)
{
	char *dir = tu_tmpdir("gc-corrupt");
	sett_options o;
	tu_small_options(&o, 1u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	for (uint32_t i = 0; i < 8; i++)
		put_chunk(db, v, i, 1);
	for (uint32_t i = 4; i < 40; i++)
		put_chunk(db, v, i, 2);
	ck_assert_int_eq(sett_close(db), 0);
	/* Damage the value of chunk 1 (still live) in file 1. */
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.vlog", dir);
	ck_assert(tu_file_size(path) > 3 * (long long)VAL);
	tu_flip_byte(path, 16 + VAL + VAL / 2);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	int g = sett_gc(db, 0.1);
	ck_assert(g == 0 || g == SETT_ENOREWRITE);
	ck_assert_msg(tu_file_size(path) > 0, "GC deleted a file it could not read");
	char k[32];
	key_of(k, sizeof k, 1);
	void *got;
	size_t n;
	ck_assert_int_eq(sett_get(db, (sett_val){ strlen(k), k }, 0, &got, &n), SETT_ECORRUPT);
	check_chunk(db, v, 0, 1);
	check_chunk(db, v, 5, 2);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* The value-log position of key i's newest version. */
static vptr pointer_of(sett_db *db, uint32_t i)
{
	char k[32];
	key_of(k, sizeof k, i);
	buf vs = { 0 };
	uint64_t ver;
	ck_assert_int_eq(db_lookup(db, slice_make(k, strlen(k)), UINT64_MAX, &ver, &vs), 1);
	vstruct v;
	vptr p;
	ck_assert_int_eq(vstruct_decode(vs.p, vs.n, &v), 0);
	ck_assert(v.meta & META_VALUE_POINTER);
	ck_assert_int_eq(vptr_decode(v.data.p, v.data.n, &p), 0);
	buf_free(&vs);
	return p;
}

#define MAX_FILES 64

/* Waits (bounded) until every file's discard is want[fid]; 1 if it got there. */
static int wait_discard(sett_db *db, const uint64_t *want, int max_wait_ms)
{
	for (int t = 0;; t += 50) {
		sett_vlog_info vi[MAX_FILES];
		int n = sett_vlog_files(db, vi, MAX_FILES), same = 1;
		ck_assert(n > 0 && n <= MAX_FILES);
		for (int i = 0; i < n; i++)
			same &= vi[i].discard_bytes == want[vi[i].fid];
		if (same || t >= max_wait_ms)
			return same;
		usleep(50000);
	}
}

static void print_discard(sett_db *db, const uint64_t *want)
{
	sett_vlog_info vi[MAX_FILES];
	int n = sett_vlog_files(db, vi, MAX_FILES);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "  %06u.vlog %llu bytes: discard %llu, expected %llu\n", vi[i].fid,
			(unsigned long long)vi[i].bytes, (unsigned long long)vi[i].discard_bytes,
			(unsigned long long)want[vi[i].fid]);
}

/*
 * Deleting and overwriting keys whose values are in the value log raises
 * the discard of exactly the files that held those values, by their entry
 * lengths, without a flush or a compaction being asked for (the store only
 * goes idle), and a read-only open (sett info) shows the same figures.
 */
START_TEST(test_discard_accounting)
{
	char *dir = tu_tmpdir("gc-discard");
	sett_options o;
	tu_small_options(&o, 8u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 400; /* 25 MiB: three sealed files and the head */
	vptr *at = calloc(n, sizeof *at);
	for (uint32_t i = 0; i < n; i++)
		put_chunk(db, v, i, 1);
	for (uint32_t i = 0; i < n; i++)
		at[i] = pointer_of(db, i);
	ck_assert(at[n - 1].fid >= 3);
	uint64_t want[MAX_FILES] = { 0 };
	/* Delete every key of the first file and every third key of the others;
	 * overwrite every fifth key left. */
	for (uint32_t i = 0; i < n; i++) {
		char k[32];
		key_of(k, sizeof k, i);
		if (at[i].fid == at[0].fid || i % 3 == 0) {
			ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
			want[at[i].fid] += at[i].len;
		} else if (i % 5 == 0) {
			put_chunk(db, v, i, 2);
			want[at[i].fid] += at[i].len;
		}
	}
	int ok = wait_discard(db, want, 60000);
	if (!ok)
		print_discard(db, want);
	ck_assert_msg(ok, "the discard statistics do not match the deletes and overwrites");
	ck_assert_int_eq(sett_close(db), 0);

	o.read_only = 1;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ok = wait_discard(db, want, 0);
	if (!ok)
		print_discard(db, want);
	ck_assert_msg(ok, "a read-only open shows other discard statistics");
	for (uint32_t i = 0; i < n; i++)
		check_chunk(db, v, i, at[i].fid == at[0].fid || i % 3 == 0 ? 0 : i % 5 == 0 ? 2 : 1);
	ck_assert_int_eq(sett_close(db), 0);
	free(at);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * GC may delete a value-log file only once the writes that made its
 * entries dead are durable.  Here the overwrite that kills the only entry
 * of file 1 is not synced; a power cut after GC must still find the old,
 * durable value (or the new one), never a pointer into a deleted file.
 */
START_TEST(test_gc_waits_for_durable_overwrite)
{
	char *dir = tu_tmpdir("gc-durable");
	sett_options o;
	tu_small_options(&o, 64u << 10);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t v1[8192], v2[8192];
	memset(v1, 'a', sizeof v1);
	memset(v2, 'b', sizeof v2);
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	ck_assert_int_eq(sett_batch_set(b, (sett_val){ 3, "key" }, (sett_val){ sizeof v1, v1 }), 0);
	ck_assert_int_eq(sett_write(db, b, 1, NULL), 0);
	int g = sett_gc(db, 0); /* the head rotates; file 1 holds a live value */
	ck_assert(g == 0 || g == SETT_ENOREWRITE);
	ck_assert_int_eq(sett_put(db, (sett_val){ 3, "key" }, (sett_val){ sizeof v2, v2 }), 0);
	g = sett_gc(db, 0); /* file 1 is all dead now */
	ck_assert(g == 0 || g == SETT_ENOREWRITE);
	sio_fault_powercut();
	sett_close(db); /* fails: the "machine" is off */
	sio_fault_reset();
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	void *got;
	size_t n;
	int r = sett_get(db, (sett_val){ 3, "key" }, 0, &got, &n);
	ck_assert_msg(r == 0, "acknowledged synced value lost after GC and power cut: %s",
		      sett_strerror(r));
	ck_assert_uint_eq(n, sizeof v1);
	ck_assert(memcmp(got, v1, n) == 0 || memcmp(got, v2, n) == 0);
	free(got);
	ck_assert_int_eq(sett_close(db), 0);
	sett_batch_free(b);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* One call of fn on another thread; done once it returned. */
typedef struct bg_call {
	sett_db *db;
	int (*fn)(sett_db *db);
	int done;
	int rc;
} bg_call;

static void *bg_run(void *p)
{
	bg_call *a = p;
	a->rc = a->fn(a->db);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int gc_all(sett_db *db)
{
	return sett_gc(db, 0);
}

static void *sync_put(void *p)
{
	sett_db *db = p;
	uint8_t v2[8192];
	memset(v2, 'b', sizeof v2);
	sett_batch *b;
	sett_batch_new(&b);
	sett_batch_set(b, (sett_val){ 3, "key" }, (sett_val){ sizeof v2, v2 });
	intptr_t r = sett_write(db, b, 1, NULL);
	sett_batch_free(b);
	return (void *)r;
}

/*
 * GC judges liveness at the published version.  An overwrite that is in
 * the memtable but not yet acknowledged (here frozen in its WAL fsync,
 * which then fails) must not make GC take the old value's file for dead:
 * readers still see the old value, and after the failure it stays the
 * newest.
 */
/* A store without compactors (the faults count only the test's own I/O)
 * holding "key" = v1 (8 KiB, in the value log). */
static sett_db *open_with_key(const char *dir, sett_options *o, uint64_t vlog_size, uint8_t *v1)
{
	tu_small_options(o, vlog_size);
	o->num_compactors = 0;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, o, &db), 0);
	memset(v1, 'a', 8192);
	ck_assert_int_eq(sett_put(db, (sett_val){ 3, "key" }, (sett_val){ 8192, v1 }), 0);
	return db;
}

/* Whether *flag was set within 30 s. */
static int set_within(const int *flag)
{
	for (int i = 0; i < 30000 && !__atomic_load_n(flag, __ATOMIC_ACQUIRE); i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* "key" holds v1 (8 KiB; v1 NULL: any 8 KiB). */
static void check_key(sett_db *db, const uint8_t *v1, const char *when)
{
	void *got;
	size_t n;
	int r = sett_get(db, (sett_val){ 3, "key" }, 0, &got, &n);
	ck_assert_msg(r == 0, "%s: %s", when, sett_strerror(r));
	ck_assert(n == 8192 && (!v1 || memcmp(got, v1, n) == 0));
	free(got);
}

START_TEST(test_gc_ignores_unpublished_group)
{
	char *dir = tu_tmpdir("gc-unpub");
	sett_options o;
	uint8_t v1[8192];
	sett_db *db = open_with_key(dir, &o, 64u << 10, v1);
	ck_assert_int_eq(sett_sync(db), 0);
	int g = sett_gc(db, 0); /* the head rotates; file 1 holds the live value */
	ck_assert(g == 0 || g == SETT_ENOREWRITE);

	/* The overwrite's writes: value log, WAL, value-log fsync, WAL fsync. */
	sio_fault_pause_nth(4);
	pthread_t wt, gt;
	ck_assert_int_eq(pthread_create(&wt, NULL, sync_put, db), 0);
	sio_fault_wait_paused();
	bg_call a = { .db = db, .fn = gc_all };
	ck_assert_int_eq(pthread_create(&gt, NULL, bg_run, &a), 0);
	int gc_done = set_within(&a.done);
	sio_fault_resume(EIO); /* the overwrite's fsync fails */
	void *wr;
	pthread_join(wt, &wr);
	pthread_join(gt, NULL);
	ck_assert_msg(gc_done, "GC took file 1 for dead on an unacknowledged overwrite (it "
			       "waited for that group to become durable)");
	ck_assert_int_eq((int)(intptr_t)wr, -EIO);

	check_key(db, v1, "the acknowledged value is gone");
	sett_close(db); /* fails: the store stopped at the failed fsync */
	sio_fault_reset();
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	/* the failed overwrite may have reached the disk: either value */
	check_key(db, NULL, "after reopen");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

static int put_next(sett_db *db)
{
	uint8_t v[8192];
	memset(v, 'p', sizeof v);
	return sett_put(db, (sett_val){ 4, "next" }, (sett_val){ sizeof v, v });
}

/*
 * A sync's bulk fsync (the value log a GC rewrite or a file's data filled)
 * runs on the syncing thread, not on the writer: while it is frozen,
 * another thread's write still goes through.  What was written before
 * the sync survives a power cut after it.
 */
START_TEST(test_sync_leaves_writer_free)
{
	char *dir = tu_tmpdir("gc-presync");
	sett_options o;
	uint8_t v1[8192];
	sett_db *db = open_with_key(dir, &o, 1u << 20, v1);

	sio_fault_pause_nth(1); /* the value log's fsync */
	pthread_t st, pt;
	bg_call sa = { .db = db, .fn = sett_sync }, pa = { .db = db, .fn = put_next };
	ck_assert_int_eq(pthread_create(&st, NULL, bg_run, &sa), 0);
	sio_fault_wait_paused();
	ck_assert_int_eq(pthread_create(&pt, NULL, bg_run, &pa), 0);
	int put_done = set_within(&pa.done);
	ck_assert_int_eq(__atomic_load_n(&sa.done, __ATOMIC_ACQUIRE), 0);
	sio_fault_resume(0);
	pthread_join(st, NULL);
	pthread_join(pt, NULL);
	ck_assert_msg(put_done, "a write waited for another thread's sync to reach the disk");
	ck_assert_int_eq(sa.rc, 0);
	ck_assert_int_eq(pa.rc, 0);

	sio_fault_powercut();
	sett_close(db); /* fails: I/O after the cut does */
	sio_fault_reset();
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	check_key(db, v1, "synced value lost");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gc");
	TCase *tc = tcase_create("gc");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_discard_accounting);
	tcase_add_test(tc, test_corrupt_value_not_copied);
	tcase_add_test(tc, test_gc_waits_for_durable_overwrite);
	tcase_add_test(tc, test_gc_ignores_unpublished_group);
	tcase_add_test(tc, test_sync_leaves_writer_free);
	tcase_add_test(tc, test_iterator_keeps_files);
	tcase_add_test(tc, test_no_resurrection);
	tcase_add_test(tc, test_gc_thread_runs_by_itself);
	tcase_add_test(tc, test_gc_thread_garbage_share);
	tcase_add_test(tc, test_gc_thread_while_writing);
	tcase_add_test(tc, test_space_reclaimed);
	tcase_add_test(tc, test_reclaim);
	tcase_add_test(tc, test_background_reclaim_low_space);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
