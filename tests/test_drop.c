/*
 * test_drop.c - prefix drops: keys inside the prefix are gone and those
 * outside intact, with writers and readers running meanwhile and after a
 * reopen; writes after the drop survive it; pins and incremental backups
 * see through it correctly; compaction and GC give the space back and
 * the drop's MANIFEST mark is retired.
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "sett.h"
#include "db_impl.h"
#include "manifest.h"

#define BIG 4096

static void drop_options(sett_options *o)
{
	sett_options_init(o);
	o->mem_table_size = 256u << 10;
	o->value_threshold = 512;
	o->value_log_file_size = 1u << 20;
	o->base_table_size = 32u << 10;
	o->base_level_size = 128u << 10;
	o->num_level_zero_tables = 2;
	o->num_level_zero_tables_stall = 8;
	o->block_cache_size = 1u << 20;
	o->gc_discard_ratio = 0;
}

static sett_db *open_store(const char *dir)
{
	sett_options o;
	drop_options(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	return db;
}

static void put(sett_db *db, const char *space, uint32_t i, uint32_t round)
{
	char k[64];
	snprintf(k, sizeof k, "%s%06u", space, i);
	uint8_t v[BIG];
	size_t n = i % 2 ? BIG : 20;
	memset(v, (int)(round + i), n);
	ck_assert_int_eq(sett_put(db, (sett_val){ strlen(k), k }, (sett_val){ n, v }), 0);
}

/* 1: present with round's value, 0: absent (at rv). */
static int get(sett_db *db, const char *space, uint32_t i, uint32_t round, uint64_t rv)
{
	char k[64];
	snprintf(k, sizeof k, "%s%06u", space, i);
	void *v;
	size_t n;
	int r = sett_get(db, (sett_val){ strlen(k), k }, rv, &v, &n);
	if (r == SETT_ENOTFOUND)
		return 0;
	ck_assert_msg(r == 0, "%s: %s", k, sett_strerror(r));
	ck_assert_uint_eq(n, i % 2 ? BIG : 20);
	ck_assert_msg(((uint8_t *)v)[0] == (uint8_t)(round + i), "%s: wrong value", k);
	free(v);
	return 1;
}

static uint32_t count_prefix(sett_db *db, const char *prefix, uint64_t rv)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.prefix = (sett_val){ strlen(prefix), prefix };
	io.read_version = rv;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	uint32_t n = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it))
		n++;
	ck_assert_int_eq(sett_iter_error(it), 0);
	/* the same backwards */
	sett_iter_free(it);
	io.reverse = 1;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	uint32_t m = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it))
		m++;
	sett_iter_free(it);
	ck_assert_uint_eq(n, m);
	return n;
}

static size_t drop_marks(sett_db *db)
{
	manifest_mark *mk;
	size_t n, d = 0;
	ck_assert_int_eq(manifest_marks(db->man, &mk, &n), 0);
	for (size_t i = 0; i < n; i++)
		d += mk[i].kind == MANIFEST_MARK_DROP;
	manifest_marks_free(mk, n);
	return d;
}

static void gc_all(sett_db *db)
{
	ck_assert_int_eq(sett_flatten(db), 0);
	int r;
	for (int i = 0; i < 50 && (r = sett_gc(db, 0.01)) == 0; i++)
		;
	ck_assert(r == 0 || r == SETT_ENOREWRITE);
}

typedef struct worker {
	sett_db *db;
	int stop;   /* atomic */
	uint32_t n; /* atomic: rounds done */
} worker;

/* Writes b/ keys and checks c/ keys, while the drop runs. */
static void *writer_main(void *p)
{
	worker *w = p;
	for (uint32_t round = 1; !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); round++) {
		for (uint32_t i = 0; i < 200; i++)
			put(w->db, "b/", i, round);
		for (uint32_t i = 0; i < 300; i += 7)
			ck_assert(get(w->db, "c/", i, 1, 0));
		__atomic_fetch_add(&w->n, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void wait_rounds(worker *w, uint32_t n)
{
	while (__atomic_load_n(&w->n, __ATOMIC_ACQUIRE) < n)
		sched_yield();
}

START_TEST(test_drop_prefix_with_writers)
{
	char *dir = tu_tmpdir("drop");
	sett_db *db = open_store(dir);
	for (uint32_t i = 0; i < 3000; i++)
		put(db, "a/", i, 1);
	for (uint32_t i = 0; i < 300; i++)
		put(db, "c/", i, 1);
	ck_assert_int_eq(sett_flatten(db), 0);
	for (uint32_t i = 0; i < 3000; i += 3)
		put(db, "a/", i, 2); /* some in the memtable */
	uint64_t before = tu_dir_bytes(dir);

	worker w = { .db = db };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	wait_rounds(&w, 1);
	ck_assert_int_eq(sett_drop_prefix(db, (sett_val){ 2, "a/" }), 0);
	/* reads see the drop as soon as it returns */
	ck_assert_uint_eq(count_prefix(db, "a/", 0), 0);
	for (uint32_t i = 0; i < 3000; i += 11)
		ck_assert(!get(db, "a/", i, 1, 0));
	/* a write after the drop is kept */
	put(db, "a/", 7, 9);
	wait_rounds(&w, __atomic_load_n(&w.n, __ATOMIC_ACQUIRE) + 2);
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);

	for (int pass = 0; pass < 3; pass++) {
		ck_assert_uint_eq(count_prefix(db, "a/", 0), 1);
		ck_assert(get(db, "a/", 7, 9, 0));
		ck_assert_uint_eq(count_prefix(db, "c/", 0), 300);
		ck_assert_uint_eq(count_prefix(db, "b/", 0), 200);
		for (uint32_t i = 0; i < 300; i++)
			ck_assert(get(db, "c/", i, 1, 0));
		if (pass == 1)
			gc_all(db);
		ck_assert_int_eq(sett_close(db), 0);
		db = open_store(dir);
	}
	/* the space of a/ came back, and the drop's mark is gone */
	gc_all(db);
	uint64_t after = tu_dir_bytes(dir);
	ck_assert_msg(after * 2 < before, "store %llu bytes after the drop, %llu before",
		      (unsigned long long)after, (unsigned long long)before);
	ck_assert_uint_eq(drop_marks(db), 0);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_drop_all)
{
	char *dir = tu_tmpdir("drop-all");
	sett_db *db = open_store(dir);
	for (uint32_t i = 0; i < 2000; i++)
		put(db, i % 2 ? "x/" : "y/", i, 1);
	ck_assert_int_eq(sett_drop_all(db), 0);
	ck_assert_uint_eq(count_prefix(db, "", 0), 0);
	put(db, "z/", 1, 1);
	ck_assert_int_eq(sett_close(db), 0);
	db = open_store(dir);
	ck_assert_uint_eq(count_prefix(db, "", 0), 1);
	ck_assert(get(db, "z/", 1, 1, 0));
	gc_all(db);
	ck_assert_uint_eq(count_prefix(db, "", 0), 1);
	ck_assert_uint_eq(drop_marks(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A pin below the drop still sees the dropped keys, until it is released. */
START_TEST(test_drop_under_pin)
{
	char *dir = tu_tmpdir("drop-pin");
	sett_db *db = open_store(dir);
	for (uint32_t i = 0; i < 1000; i++)
		put(db, "a/", i, 1);
	uint64_t pv;
	ck_assert_int_eq(sett_pin(db, "snap", 0, &pv), 0);
	ck_assert_int_eq(sett_drop_prefix(db, (sett_val){ 2, "a/" }), 0);
	for (int pass = 0; pass < 2; pass++) {
		gc_all(db);
		ck_assert_uint_eq(count_prefix(db, "a/", 0), 0);
		ck_assert_uint_eq(count_prefix(db, "a/", pv), 1000);
		for (uint32_t i = 0; i < 1000; i += 9)
			ck_assert(get(db, "a/", i, 1, pv));
		ck_assert_uint_eq(drop_marks(db), 1);
		ck_assert_int_eq(sett_close(db), 0);
		db = open_store(dir);
	}
	ck_assert_int_eq(sett_unpin(db, "snap"), 0);
	gc_all(db);
	ck_assert_uint_eq(drop_marks(db), 0);
	ck_assert_uint_eq(count_prefix(db, "a/", 0), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

static int mem_write(void *arg, const void *p, size_t n)
{
	buf *b = arg;
	return buf_append(b, p, n);
}

typedef struct reader {
	buf *b;
	size_t pos;
} reader;

static long mem_read(void *arg, void *p, size_t n)
{
	reader *r = arg;
	if (n > r->b->n - r->pos)
		n = r->b->n - r->pos;
	memcpy(p, r->b->p + r->pos, n);
	r->pos += n;
	return (long)n;
}

/* An incremental backup taken across a drop deletes the keys in the target. */
START_TEST(test_drop_in_incremental)
{
	char *sdir = tu_tmpdir("drop-src"), *tdir = tu_tmpdir("drop-dst");
	sett_db *src = open_store(sdir), *dst = open_store(tdir);
	for (uint32_t i = 0; i < 500; i++) {
		put(src, "a/", i, 1);
		put(src, "b/", i, 1);
	}
	sett_backup_options o;
	sett_backup_options_init(&o);
	o.pin = "bk";
	sett_backup_result res;
	buf full = { 0 }, inc = { 0 };
	ck_assert_int_eq(sett_backup(src, &o, mem_write, &full, &res), 0);
	ck_assert_int_eq(sett_drop_prefix(src, (sett_val){ 2, "a/" }), 0);
	put(src, "a/", 3, 5);
	gc_all(src);
	o.since = res.version;
	ck_assert_int_eq(sett_backup(src, &o, mem_write, &inc, &res), 0);
	reader r1 = { &full, 0 }, r2 = { &inc, 0 };
	sett_load_result lr;
	ck_assert_int_eq(sett_load(dst, mem_read, &r1, NULL, NULL, &lr), 0);
	ck_assert_uint_eq(count_prefix(dst, "a/", 0), 500);
	ck_assert_int_eq(sett_load(dst, mem_read, &r2, NULL, NULL, &lr), 0);
	ck_assert_uint_eq(count_prefix(dst, "a/", 0), 1);
	ck_assert(get(dst, "a/", 3, 5, 0));
	ck_assert_uint_eq(count_prefix(dst, "b/", 0), 500);
	ck_assert_int_eq(sett_close(dst), 0);
	ck_assert_int_eq(sett_close(src), 0);
	buf_free(&full);
	buf_free(&inc);
	tu_rmrf(sdir);
	tu_rmrf(tdir);
	free(sdir);
	free(tdir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("drop");
	TCase *tc = tcase_create("drop");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_drop_prefix_with_writers);
	tcase_add_test(tc, test_drop_all);
	tcase_add_test(tc, test_drop_under_pin);
	tcase_add_test(tc, test_drop_in_incremental);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
