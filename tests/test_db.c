/*
 * test_db.c - the engine through its public API: reads and writes,
 * batches and versions, iterators, reopen, a randomized model test, power
 * cuts through the I/O layer and corruption reports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "sett.h"
#include "entry.h"
#include "fileio.h"
#include "ikey.h"
#include "manifest.h"
#include "table.h"
#include "testutil.h"

static sett_val V(const char *s)
{
	sett_val v = { strlen(s), s };
	return v;
}

static sett_val B(const void *p, size_t n)
{
	sett_val v = { n, p };
	return v;
}

static void small_opts(sett_options *o)
{
	sett_options_init(o);
	o->mem_table_size = 64 << 10;
	o->value_threshold = 64;
	o->value_log_file_size = 1 << 20;
	o->gc_discard_ratio = 0;
}

static sett_db *open_db(const char *dir, const sett_options *o)
{
	sett_db *db = NULL;
	int r = sett_open(dir, o, &db);
	ck_assert_msg(r == 0, "open %s: %s", dir, sett_strerror(r));
	return db;
}

static void expect_value(sett_db *db, sett_val k, uint64_t rv, const void *want, size_t wn)
{
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(db, k, rv, &v, &n);
	ck_assert_msg(r == 0, "get %.*s: %s", (int)k.size, (const char *)k.data, sett_strerror(r));
	ck_assert_uint_eq(n, wn);
	ck_assert(wn == 0 || memcmp(v, want, wn) == 0);
	free(v);
}

static void expect_missing(sett_db *db, sett_val k, uint64_t rv)
{
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(db, k, rv, &v, &n);
	ck_assert_msg(r == SETT_ENOTFOUND, "get %.*s: expected not found, got %s", (int)k.size,
		      (const char *)k.data, sett_strerror(r));
}

START_TEST(test_put_get_del_reopen)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o);
	char big[5000];
	memset(big, 'x', sizeof big);
	ck_assert_int_eq(sett_put(db, V("alpha"), V("1")), 0);
	ck_assert_int_eq(sett_put(db, V("beta"), B(big, sizeof big)), 0);
	ck_assert_int_eq(sett_put(db, V("empty"), B(NULL, 0)), 0);
	ck_assert_int_eq(sett_put(db, V("alpha"), V("2")), 0);
	ck_assert_int_eq(sett_del(db, V("gamma")), 0);
	expect_value(db, V("alpha"), 0, "2", 1);
	expect_value(db, V("beta"), 0, big, sizeof big);
	expect_value(db, V("empty"), 0, NULL, 0);
	expect_missing(db, V("gamma"), 0);
	ck_assert_int_eq(sett_del(db, V("alpha")), 0);
	expect_missing(db, V("alpha"), 0);
	ck_assert_int_eq(sett_close(db), 0);

	db = open_db(dir, &o);
	expect_missing(db, V("alpha"), 0);
	expect_value(db, V("beta"), 0, big, sizeof big);
	expect_value(db, V("empty"), 0, NULL, 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * sett_batch_set_ref takes no copy: the bytes written are the value's
 * bytes when sett_write runs, inline (small) and value-log (large) alike,
 * and they are what a reopen reads back.
 */
START_TEST(test_batch_set_ref)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o);
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	static char big[65536];
	char small[3] = "s1";
	memset(big, 'x', sizeof big);
	ck_assert_int_eq(sett_batch_set_ref(b, V("big"), (sett_val){ sizeof big, big }), 0);
	ck_assert_int_eq(sett_batch_set_ref(b, V("small"), (sett_val){ 2, small }), 0);
	ck_assert_int_eq(sett_batch_set(b, V("copied"), V("c1")), 0);
	memset(big, 'y', sizeof big);
	small[1] = '2';
	ck_assert_int_eq(sett_write(db, b, 0, NULL), 0);
	sett_batch_free(b);
	memset(big, 'z', sizeof big);
	small[1] = '3';
	for (int reopen = 0; reopen < 2; reopen++) {
		void *v;
		size_t vn;
		ck_assert_int_eq(sett_get(db, V("big"), 0, &v, &vn), 0);
		ck_assert_uint_eq(vn, sizeof big);
		for (size_t i = 0; i < vn; i++)
			ck_assert_int_eq(((char *)v)[i], 'y');
		free(v);
		expect_value(db, V("small"), 0, "s2", 2);
		expect_value(db, V("copied"), 0, "c1", 2);
		ck_assert_int_eq(sett_close(db), 0);
		db = open_db(dir, &o);
	}
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_batch_versions_snapshots)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o);
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	sett_batch_set(b, V("a"), V("a1"));
	sett_batch_set(b, V("b"), V("b1"));
	uint64_t v1, v2;
	ck_assert_int_eq(sett_write(db, b, 0, &v1), 0);
	sett_batch_clear(b);
	sett_batch_set(b, V("a"), V("a2"));
	sett_batch_delete(b, V("b"));
	ck_assert_int_eq(sett_write(db, b, 1, &v2), 0);
	ck_assert_uint_gt(v2, v1);
	ck_assert_uint_eq(sett_current_version(db), v2);
	expect_value(db, V("a"), v1, "a1", 2);
	expect_value(db, V("b"), v1, "b1", 2);
	expect_value(db, V("a"), 0, "a2", 2);
	expect_missing(db, V("b"), 0);
	/* An iterator at v1 is a snapshot: later writes do not show. */
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = v1;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	sett_put(db, V("c"), V("c1"));
	int n = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val v;
		ck_assert_int_eq(sett_iter_value(it, &v), 0);
		ck_assert_uint_eq(v.size, 2);
		ck_assert(((const char *)v.data)[1] == '1');
		n++;
	}
	ck_assert_int_eq(n, 2);
	sett_iter_free(it);
	/* A flush keeps the versions an open iterator can see... */
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	expect_value(db, V("a"), v1, "a1", 2);
	sett_iter_free(it);
	/* ...and the newest versions survive a reopen (flushed by close). */
	ck_assert_int_eq(sett_close(db), 0);
	db = open_db(dir, &o);
	ck_assert_uint_ge(sett_current_version(db), v2 + 1);
	expect_value(db, V("a"), 0, "a2", 2);
	expect_missing(db, V("b"), 0);
	/* user meta and ttl */
	uint64_t past = (uint64_t)time(NULL) - 10, future = (uint64_t)time(NULL) + 3600;
	sett_batch_clear(b);
	sett_batch_set_ex(b, V("ttl-old"), V("x"), past, 0);
	sett_batch_set_ex(b, V("ttl-new"), V("y"), future, 7);
	ck_assert_int_eq(sett_write(db, b, 0, NULL), 0);
	expect_missing(db, V("ttl-old"), 0);
	void *val;
	size_t vn;
	uint8_t um = 0;
	ck_assert_int_eq(sett_get_ex(db, V("ttl-new"), 0, &val, &vn, NULL, &um), 0);
	ck_assert_int_eq(um, 7);
	free(val);
	sett_batch_free(b);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * sett_iter_value_size gives every value's length without reading it, in
 * the LSM and in the value log, across the varint lengths of both, before
 * and after the memtable is flushed and with or without a TTL.
 */
START_TEST(test_iter_value_size)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o);
	static const size_t sizes[] = { 0, 1, 63, 64, 100, 127, 128, 129, 16383, 16384, 16385,
					70000 };
	static uint8_t v[70000];
	enum { N = sizeof sizes / sizeof *sizes };
	char k[40];
	for (size_t i = 0; i < 2 * N; i++) {
		snprintf(k, sizeof k, "key%03zu%.*s", i, (int)(i % 7) * 4, "xxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		sett_batch *b;
		ck_assert_int_eq(sett_batch_new(&b), 0);
		ck_assert_int_eq(sett_batch_set_ex(b, V(k), B(v, sizes[i % N]),
						   i >= N ? (uint64_t)time(NULL) + 100000 : 0, 0), 0);
		ck_assert_int_eq(sett_write(db, b, 0, NULL), 0);
		sett_batch_free(b);
	}
	for (int pass = 0; pass < 2; pass++) {
		sett_iter_options io;
		sett_iter_options_init(&io);
		io.key_only = 1;
		sett_iter *it;
		ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
		size_t i = 0;
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it), i++) {
			size_t n = 1;
			ck_assert_int_eq(sett_iter_value_size(it, &n), 0);
			ck_assert_msg(n == sizes[i % N], "pass %d, key %zu: %zu, not %zu", pass, i, n,
				      sizes[i % N]);
		}
		ck_assert_int_eq(i, 2 * N);
		sett_iter_free(it);
		ck_assert_int_eq(sett_flush(db), 0);
	}
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_iterators)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o);
	char k[32], v[200];
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof k, "%s%05d", i % 2 ? "odd/" : "even/", i);
		memset(v, 'a' + i % 26, sizeof v);
		ck_assert_int_eq(sett_put(db, V(k), B(v, (size_t)(i % 3 ? 10 : 150))), 0);
	}
	for (int i = 0; i < 3000; i += 10) {
		snprintf(k, sizeof k, "%s%05d", i % 2 ? "odd/" : "even/", i);
		ck_assert_int_eq(sett_del(db, V(k)), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		sett_iter_options io;
		sett_iter_options_init(&io);
		sett_iter *it;
		/* forward, all */
		ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
		int n = 0;
		char prev[64] = "";
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
			sett_val key = sett_iter_key(it);
			char cur[64];
			snprintf(cur, sizeof cur, "%.*s", (int)key.size, (const char *)key.data);
			ck_assert_msg(strcmp(prev, cur) < 0, "order %s then %s", prev, cur);
			strcpy(prev, cur);
			n++;
		}
		ck_assert_int_eq(sett_iter_error(it), 0);
		ck_assert_int_eq(n, 3000 - 300);
		sett_iter_free(it);
		/* reverse with prefix */
		io.reverse = 1;
		io.prefix = V("odd/");
		ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
		n = 0;
		int last = 1 << 30;
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
			sett_val key = sett_iter_key(it);
			ck_assert(key.size == 9 && memcmp(key.data, "odd/", 4) == 0);
			int num = atoi((const char *)key.data + 4);
			ck_assert_int_lt(num, last);
			ck_assert(num % 2 == 1 && num % 10 != 0);
			sett_val val;
			ck_assert_int_eq(sett_iter_value(it, &val), 0);
			ck_assert_uint_eq(val.size, num % 3 ? 10 : 150);
			ck_assert_int_eq(((const char *)val.data)[0], 'a' + num % 26);
			last = num;
			n++;
		}
		ck_assert_int_eq(n, 1500);
		/* seek in reverse: last key <= target */
		ck_assert_int_eq(sett_iter_seek(it, V("odd/01000")), 0);
		ck_assert(sett_iter_valid(it));
		ck_assert(memcmp(sett_iter_key(it).data, "odd/00999", 9) == 0);
		sett_iter_free(it);
		/* forward seek, key only */
		io.reverse = 0;
		io.key_only = 1;
		io.prefix = V("even/");
		ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
		ck_assert_int_eq(sett_iter_seek(it, V("even/01000")), 0);
		ck_assert(sett_iter_valid(it));
		ck_assert(memcmp(sett_iter_key(it).data, "even/01002", 10) == 0);
		sett_iter_free(it);
		/* second pass: everything in tables after a reopen */
		ck_assert_int_eq(sett_close(db), 0);
		db = open_db(dir, &o);
	}
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- model test ---- */

#define MODEL_KEYS 400

typedef struct model {
	uint8_t key[MODEL_KEYS][24];
	size_t klen[MODEL_KEYS];
	uint8_t *val[MODEL_KEYS];
	size_t vlen[MODEL_KEYS];
	int present[MODEL_KEYS];
	int order[MODEL_KEYS]; /* indexes sorted by key */
} model;

static model *sort_model;
static int cmp_idx(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	size_t n = sort_model->klen[x] < sort_model->klen[y] ? sort_model->klen[x] : sort_model->klen[y];
	int c = memcmp(sort_model->key[x], sort_model->key[y], n);
	if (c)
		return c;
	return sort_model->klen[x] < sort_model->klen[y] ? -1 : sort_model->klen[x] > sort_model->klen[y];
}

static void model_check(sett_db *db, model *m, uint64_t *seed)
{
	for (int i = 0; i < MODEL_KEYS; i++) {
		sett_val k = B(m->key[i], m->klen[i]);
		if (m->present[i])
			expect_value(db, k, 0, m->val[i], m->vlen[i]);
		else
			expect_missing(db, k, 0);
	}
	for (int rev = 0; rev < 2; rev++) {
		sett_iter_options io;
		sett_iter_options_init(&io);
		io.reverse = rev;
		io.key_only = tu_rand(seed) % 2;
		sett_iter *it;
		ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
		int pos = rev ? MODEL_KEYS - 1 : 0;
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
			while (pos >= 0 && pos < MODEL_KEYS && !m->present[m->order[pos]])
				pos += rev ? -1 : 1;
			ck_assert_msg(pos >= 0 && pos < MODEL_KEYS, "iterator shows an extra key");
			int i = m->order[pos];
			sett_val k = sett_iter_key(it);
			ck_assert_uint_eq(k.size, m->klen[i]);
			ck_assert(memcmp(k.data, m->key[i], k.size) == 0);
			sett_val v;
			ck_assert_int_eq(sett_iter_value(it, &v), 0);
			ck_assert_uint_eq(v.size, m->vlen[i]);
			ck_assert(v.size == 0 || memcmp(v.data, m->val[i], v.size) == 0);
			pos += rev ? -1 : 1;
		}
		ck_assert_int_eq(sett_iter_error(it), 0);
		while (pos >= 0 && pos < MODEL_KEYS && !m->present[m->order[pos]])
			pos += rev ? -1 : 1;
		ck_assert_msg(pos < 0 || pos >= MODEL_KEYS, "iterator missed keys");
		sett_iter_free(it);
	}
}

static uint64_t iter_entries(sett_db *db)
{
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	return st.iter_entries;
}

/*
 * Iterates prefix "k/" (both directions, at read version rv) and checks
 * that it yields exactly `want` ("key=value" joined by spaces, in forward
 * order), examining fewer than `limit` internal entries each way.
 */
static void expect_scan(sett_db *db, uint64_t rv, const char *want, uint64_t limit)
{
	for (int reverse = 0; reverse < 2; reverse++) {
		sett_iter_options io;
		sett_iter_options_init(&io);
		io.read_version = rv;
		io.reverse = reverse;
		io.prefix = V("k/");
		sett_iter *it;
		uint64_t before = iter_entries(db);
		ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
		char got[256] = "";
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
			sett_val k = sett_iter_key(it), v;
			ck_assert_int_eq(sett_iter_value(it, &v), 0);
			char one[64];
			snprintf(one, sizeof one, "%.*s=%.*s", (int)k.size, (const char *)k.data,
				 (int)v.size, (const char *)v.data);
			char tmp[256];
			if (reverse)
				snprintf(tmp, sizeof tmp, "%s%s%s", one, *got ? " " : "", got);
			else
				snprintf(tmp, sizeof tmp, "%s%s%s", got, *got ? " " : "", one);
			strcpy(got, tmp);
		}
		ck_assert_int_eq(sett_iter_error(it), 0);
		sett_iter_free(it);
		uint64_t n = iter_entries(db) - before;
		ck_assert_msg(strcmp(got, want) == 0, "%s: got \"%s\", want \"%s\"",
			      reverse ? "reverse" : "forward", got, want);
		ck_assert_msg(n < limit, "%s scan examined %llu entries (limit %llu)",
			      reverse ? "reverse" : "forward", (unsigned long long)n,
			      (unsigned long long)limit);
	}
}

/*
 * A key rewritten many times keeps every version in the memtable (and in
 * L0 tables until a compaction): iterators must pass over them with seeks,
 * so that what a scan costs does not grow with how often a key was
 * written; and they must still yield the version of their read version.
 */
START_TEST(test_iter_many_versions)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	o.mem_table_size = 8 << 20;
	o.num_compactors = 0;
	sett_db *db = open_db(dir, &o);
	char v[32];
	uint64_t mid = 0;
	for (int i = 0; i < 2000; i++) {
		snprintf(v, sizeof v, "a%d", i);
		ck_assert_int_eq(sett_put(db, V("k/a"), V(v)), 0);
		snprintf(v, sizeof v, "c%d", i);
		ck_assert_int_eq(sett_put(db, V("k/c"), V(v)), 0);
		if (i == 1000) {
			ck_assert_int_eq(sett_put(db, V("k/b"), V("b")), 0);
			mid = sett_current_version(db);
		}
	}
	ck_assert_int_eq(sett_del(db, V("k/c")), 0);
	ck_assert_int_eq(sett_put(db, V("k/d"), V("d")), 0);
	/* an iterator at mid keeps its versions through the flush */
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = mid;
	sett_iter *pin;
	ck_assert_int_eq(sett_iter_new(db, &io, &pin), 0);
	for (int pass = 0; pass < 2; pass++) {
		/* pass 0: all in the memtable; pass 1: in an L0 table */
		expect_scan(db, 0, "k/a=a1999 k/b=b k/d=d", 100);
		expect_scan(db, mid, "k/a=a1000 k/b=b k/c=c1000", 100);
		ck_assert_int_eq(sett_flush(db), 0);
	}
	sett_iter_free(pin);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A memtable filled with overwrites of a few keys is rotated long before
 * it is full, and its flush leaves out the versions no reader can see,
 * counting their values as discarded (no compaction runs here).
 */
START_TEST(test_overwrites_rotate_and_flush_drops)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	o.mem_table_size = 64 << 20;
	o.num_compactors = 0;
	sett_db *db = open_db(dir, &o);
	char v[100];
	for (int i = 0; i < 20000; i++) {
		memset(v, 'a' + i % 26, sizeof v);
		snprintf(v, sizeof v, "%d", i);
		ck_assert_int_eq(sett_put(db, V(i % 2 ? "k/x" : "k/y"), B(v, sizeof v)), 0);
	}
	ck_assert_int_eq(sett_flush(db), 0);
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert_msg(st.levels[0].tables >= 2, "%d L0 tables: the memtable was not rotated",
		      st.levels[0].tables);
	/* every version but the newest of each key went */
	ck_assert_uint_ge(st.vlog_discard_bytes, 19000 * sizeof v);
	void *got;
	size_t n;
	ck_assert_int_eq(sett_get(db, V("k/x"), 0, &got, &n), 0);
	ck_assert(n == sizeof v && strcmp(got, "19999") == 0);
	free(got);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_model)
{
	char *dir = tu_tmpdir("model");
	sett_options o;
	small_opts(&o);
	model *m = calloc(1, sizeof *m);
	uint64_t seed = 42 + (uint64_t)_i;
	for (int i = 0; i < MODEL_KEYS; i++) {
		/* binary keys of 1..24 bytes, distinct by construction */
		m->klen[i] = 3 + tu_rand(&seed) % 22;
		tu_fill_random(&seed, m->key[i], m->klen[i]);
		m->key[i][0] = (uint8_t)(i >> 8);
		m->key[i][1] = (uint8_t)i;
		m->key[i][2] = 0;
		m->order[i] = i;
	}
	sort_model = m;
	qsort(m->order, MODEL_KEYS, sizeof(int), cmp_idx);
	sett_db *db = open_db(dir, &o);
	sett_batch *b;
	sett_batch_new(&b);
	for (int step = 0; step < 4000; step++) {
		int nops = 1 + (int)(tu_rand(&seed) % 8);
		int idx[8];
		sett_batch_clear(b);
		uint8_t *vals[8];
		size_t vlens[8];
		int dels[8];
		for (int j = 0; j < nops; j++) {
			int i = (int)(tu_rand(&seed) % MODEL_KEYS);
			idx[j] = i;
			dels[j] = tu_rand(&seed) % 5 == 0;
			uint64_t pick = tu_rand(&seed) % 100;
			size_t vn = pick < 5 ? 0 : pick < 60 ? tu_rand(&seed) % 60 : pick < 99 ? 64 + tu_rand(&seed) % 3000 : (1 << 20);
			vals[j] = vn ? malloc(vn) : NULL;
			vlens[j] = vn;
			if (vn)
				tu_fill_random(&seed, vals[j], vn);
			if (dels[j])
				sett_batch_delete(b, B(m->key[i], m->klen[i]));
			else
				sett_batch_set(b, B(m->key[i], m->klen[i]), B(vals[j], vn));
		}
		int r = sett_write(db, b, 0, NULL);
		ck_assert_msg(r == 0, "write: %s", sett_strerror(r));
		for (int j = 0; j < nops; j++) {
			int i = idx[j];
			free(m->val[i]);
			m->val[i] = NULL;
			m->vlen[i] = 0;
			m->present[i] = !dels[j];
			if (!dels[j]) {
				m->val[i] = vals[j];
				m->vlen[i] = vlens[j];
			} else {
				free(vals[j]);
			}
		}
		if (tu_rand(&seed) % 600 == 0) {
			ck_assert_int_eq(sett_close(db), 0);
			db = open_db(dir, &o);
		}
		if (step % 1000 == 999)
			model_check(db, m, &seed);
	}
	model_check(db, m, &seed);
	ck_assert_int_eq(sett_close(db), 0);
	db = open_db(dir, &o);
	model_check(db, m, &seed);
	ck_assert_int_eq(sett_close(db), 0);
	sett_batch_free(b);
	for (int i = 0; i < MODEL_KEYS; i++)
		free(m->val[i]);
	free(m);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_lock_and_errors)
{
	char *dir = tu_tmpdir("lock");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o), *db2 = NULL;
	ck_assert_int_eq(sett_open(dir, &o, &db2), SETT_ELOCKED);
	ck_assert_str_eq(sett_strerror(SETT_ELOCKED), "store is locked by another process");
	char *big = calloc(1, SETT_MAX_KEY_SIZE + 1);
	ck_assert_int_eq(sett_put(db, B(big, SETT_MAX_KEY_SIZE + 1), V("x")), SETT_ETOOBIG);
	free(big);
	ck_assert_int_eq(sett_close(db), 0);
	o.create_if_missing = 0;
	char missing[4200];
	snprintf(missing, sizeof missing, "%s/nope", dir);
	ck_assert_int_eq(sett_open(missing, &o, &db2), -ENOENT);
	o.mem_table_size = 10;
	ck_assert_int_eq(sett_open(dir, &o, &db2), -EINVAL);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * The WAL reached the disk and the value log's tail did not (no sync):
 * the newest WAL's entries that point past the value log are a torn tail,
 * not values that read as corrupt.  Simulated by copying the store while
 * it is open and cutting the copy's value log back to its synced size.
 */
static void copy_file(const char *from, const char *to, long long keep)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	ck_assert(in && out);
	char chunk[65536];
	size_t n;
	long long done = 0;
	while ((n = fread(chunk, 1, sizeof chunk, in)) > 0 && (keep < 0 || done < keep)) {
		if (keep >= 0 && done + (long long)n > keep)
			n = (size_t)(keep - done);
		ck_assert_uint_eq(fwrite(chunk, 1, n, out), n);
		done += (long long)n;
	}
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

START_TEST(test_wal_ahead_of_vlog)
{
	char *dir = tu_tmpdir("ahead"), *copy = tu_tmpdir("ahead-copy");
	sett_options o;
	small_opts(&o);
	o.value_log_file_size = 64 << 20; /* one value-log file */
	sett_db *db = open_db(dir, &o);
	char k[32], v[1000];
	sett_batch *b;
	sett_batch_new(&b);
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.vlog", dir);
	long long synced = -1;
	for (int i = 0; i < 60; i++) {
		snprintf(k, sizeof k, "key%04d", i);
		memset(v, 'a' + i % 26, sizeof v);
		sett_batch_clear(b);
		sett_batch_set(b, V(k), B(v, sizeof v));
		sett_batch_set(b, V(k + 1), V("small")); /* "ey...": inline, same batch */
		ck_assert_int_eq(sett_write(db, b, i == 39, NULL), 0);
		if (i == 39) /* keys 0..39 are durable: the value log's synced size */
			synced = tu_file_size(path);
	}
	ck_assert(synced > 40 * 1000 && synced < tu_file_size(path));
	/* 40..59 reached the file (page cache) but "not the disk" */
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "LOCK"))
			continue;
		char from[4096], to[4096];
		snprintf(from, sizeof from, "%s/%s", dir, de->d_name);
		snprintf(to, sizeof to, "%s/%s", copy, de->d_name);
		copy_file(from, to, strstr(de->d_name, ".vlog") ? synced : -1);
	}
	closedir(d);
	sett_batch_free(b);
	ck_assert_int_eq(sett_close(db), 0);

	db = open_db(copy, &o);
	for (int i = 0; i < 60; i++) {
		snprintf(k, sizeof k, "key%04d", i);
		memset(v, 'a' + i % 26, sizeof v);
		if (i < 40) {
			expect_value(db, V(k), 0, v, sizeof v);
			expect_value(db, V(k + 1), 0, "small", 5);
		} else {
			/* the whole batch is gone, its inline half too */
			expect_missing(db, V(k), 0);
			expect_missing(db, V(k + 1), 0);
		}
	}
	/* new writes go on after the cut */
	ck_assert_int_eq(sett_put(db, V("after"), B(v, sizeof v)), 0);
	ck_assert_int_eq(sett_close(db), 0);
	db = open_db(copy, &o);
	expect_value(db, V("after"), 0, v, sizeof v);
	expect_missing(db, V("key0050"), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	tu_rmrf(copy);
	free(dir);
	free(copy);
}
END_TEST

START_TEST(test_powercut)
{
	char *dir = tu_tmpdir("cut");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o);
	char k[32], v[300];
	sett_batch *b;
	sett_batch_new(&b);
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof k, "key%04d", i);
		memset(v, 'a' + i % 26, sizeof v);
		sett_batch_clear(b);
		sett_batch_set(b, V(k), B(v, (size_t)(i % 2 ? 20 : 300)));
		ck_assert_int_eq(sett_write(db, b, i < 300, NULL), 0);
	}
	sio_fault_powercut();
	sett_close(db); /* fails: the "machine" is off */
	sio_fault_reset();
	db = open_db(dir, &o);
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof k, "key%04d", i);
		void *val;
		size_t n;
		int r = sett_get(db, V(k), 0, &val, &n);
		if (i < 300)
			ck_assert_msg(r == 0, "synced key%04d lost: %s", i, sett_strerror(r));
		if (r == 0) {
			memset(v, 'a' + i % 26, sizeof v);
			ck_assert_uint_eq(n, i % 2 ? 20 : 300);
			ck_assert(memcmp(val, v, n) == 0);
			free(val);
		} else {
			ck_assert_int_eq(r, SETT_ENOTFOUND);
		}
	}
	sett_batch_free(b);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Finds a file of the store by suffix. */
START_TEST(test_corruption_reported)
{
	char *dir = tu_tmpdir("corrupt");
	sett_options o;
	small_opts(&o);
	o.value_log_file_size = 64 << 10;
	sett_db *db = open_db(dir, &o);
	char v[2000], k[32];
	memset(v, 'v', sizeof v);
	ck_assert_int_eq(sett_put(db, V("small"), V("tiny")), 0);
	/* 000001.vlog fills up and is sealed; later values go to 000002. */
	for (int i = 0; i < 60; i++) {
		snprintf(k, sizeof k, "large%02d", i);
		ck_assert_int_eq(sett_put(db, V(k), B(v, sizeof v)), 0);
	}
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	snprintf(path, sizeof path, "%s/000001.vlog", dir);
	/* A byte inside the first value of a sealed file: the read fails with
	 * corruption, never a wrong value, and verify reports it. */
	tu_flip_byte(path, 24 + 40);
	db = open_db(dir, &o);
	void *val;
	size_t n;
	ck_assert_int_eq(sett_get(db, V("large00"), 0, &val, &n), SETT_ECORRUPT);
	expect_value(db, V("large01"), 0, v, sizeof v);
	expect_value(db, V("small"), 0, "tiny", 4);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), SETT_ECORRUPT);
	ck_assert_int_eq(sett_close(db), 0);
	tu_flip_byte(path, 24 + 40);
	/* In the head file, with valid entries after it: not a torn tail, so
	 * open keeps the file; the damaged value reads as corruption and
	 * verify names the file. */
	snprintf(path, sizeof path, "%s/000002.vlog", dir);
	tu_flip_byte(path, 24 + 40);
	char err[512] = "";
	o.error_buf = err;
	o.error_buf_size = sizeof err;
	db = open_db(dir, &o);
	int damaged = 0;
	for (int i = 0; i < 60; i++) {
		snprintf(k, sizeof k, "large%02d", i);
		int r = sett_get(db, V(k), 0, &val, &n);
		if (r == 0) {
			ck_assert(n == sizeof v && memcmp(val, v, n) == 0);
			free(val);
		} else {
			ck_assert_int_eq(r, SETT_ECORRUPT);
			damaged++;
		}
	}
	ck_assert_int_eq(damaged, 1);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), SETT_ECORRUPT);
	ck_assert_int_eq(sett_close(db), 0);
	tu_flip_byte(path, 24 + 40);
	/* A table byte. */
	db = open_db(dir, &o);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert(tu_find_file(dir, ".sst", path, sizeof path));
	tu_flip_byte(path, 5);
	int r = sett_open(dir, &o, &db);
	if (r == 0) {
		r = sett_get(db, V("small"), 0, &val, &n);
		if (r == 0) {
			/* the flipped table did not hold "small": verify must see it */
			free(val);
			r = sett_verify(db, NULL, NULL);
		}
		ck_assert_int_eq(r, SETT_ECORRUPT);
		sett_close(db);
	} else {
		ck_assert_int_eq(r, SETT_ECORRUPT);
		ck_assert_msg(strstr(err, ".sst"), "error: %s", err);
	}
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A store with two tables (one per flush) and values in the value log. */
static void two_table_store(const char *dir, sett_options *o)
{
	small_opts(o);
	o->num_compactors = 0;
	sett_db *db = open_db(dir, o);
	char k[32], v[200];
	memset(v, 'v', sizeof v);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "key%03d", i);
		ck_assert_int_eq(sett_put(db, V(k), B(v, 10 + (size_t)i % 150)), 0);
		if (i == 99)
			ck_assert_int_eq(sett_flush(db), 0);
	}
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
}

static void expect_store(const char *dir, const sett_options *o)
{
	sett_db *db = open_db(dir, o);
	char k[32], v[200];
	memset(v, 'v', sizeof v);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "key%03d", i);
		expect_value(db, V(k), 0, v, 10 + (size_t)i % 150);
	}
	ck_assert_int_eq(sett_close(db), 0);
}

/*
 * A power cut during the MANIFEST append that names a flushed table: the
 * table exists, its record is torn, and its WAL (deleted only after the
 * record is durable) still holds every entry.  The open succeeds, the
 * table goes as a leftover, and nothing is lost (formerly refused: an
 * unnamed table next to a torn record was taken for lost records).
 */
START_TEST(test_torn_manifest_append_opens)
{
	char *dir = tu_tmpdir("db");
	char *crash = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	o.num_compactors = 0;
	sett_db *db = open_db(dir, &o);
	char k[32], v[200], cmd[8600];
	memset(v, 'v', sizeof v);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "key%03d", i);
		ck_assert_int_eq(sett_put(db, V(k), B(v, 10 + (size_t)i % 150)), 0);
	}
	ck_assert_int_eq(sett_sync(db), 0);
	/* The state before the flush: the entries are in the WAL only. */
	snprintf(cmd, sizeof cmd, "cp -a %s/. %s/", dir, crash);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	/* The flush's table, and its MANIFEST record cut short. */
	snprintf(cmd, sizeof cmd, "cp -p %s/*.sst %s/ && cp -p %s/MANIFEST %s/", dir, crash, dir, crash);
	ck_assert_int_eq(system(cmd), 0);
	char leftover[4200];
	snprintf(leftover, sizeof leftover, "%s/000001.sst", crash);
	ck_assert_msg(access(leftover, F_OK) == 0, "the flush wrote another table id");
	ck_assert_int_eq(sett_close(db), 0);
	char man[4200];
	snprintf(man, sizeof man, "%s/MANIFEST", crash);
	ck_assert_int_eq(truncate(man, tu_file_size(man) - 5), 0);
	sett_options ro = o;
	ro.read_only = 1;
	expect_store(crash, &ro);
	/* A writable open deletes the leftover. */
	db = open_db(crash, &o);
	ck_assert_msg(access(leftover, F_OK) != 0, "the leftover table was kept");
	ck_assert_int_eq(sett_close(db), 0);
	expect_store(crash, &o);
	tu_rmrf(dir);
	tu_rmrf(crash);
	free(dir);
	free(crash);
}
END_TEST

/*
 * A torn MANIFEST tail next to a table that an intact record deleted (its
 * file outlived the record: the unlink waits for the last reader) opens:
 * the lost record cannot have named it again, though it holds a version
 * compaction dropped (formerly refused: its contents proved nothing).
 */
START_TEST(test_torn_manifest_deleted_table)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	o.num_compactors = 0;
	sett_db *db = open_db(dir, &o);
	char t1[4200], keep[4200], cmd[8600];
	snprintf(t1, sizeof t1, "%s/000001.sst", dir);
	snprintf(keep, sizeof keep, "%s.t1", dir);
	ck_assert_int_eq(sett_put(db, V("k"), V("one")), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	snprintf(cmd, sizeof cmd, "cp -p %s %s", t1, keep);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(sett_put(db, V("k"), V("two")), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_msg(access(t1, F_OK) != 0, "the flattened table is still there");
	snprintf(cmd, sizeof cmd, "cp -p %s %s && printf 'xy' >> %s/MANIFEST", keep, t1, dir);
	ck_assert_int_eq(system(cmd), 0);
	db = open_db(dir, &o);
	expect_value(db, V("k"), 0, "two", 3);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_msg(access(t1, F_OK) != 0, "the leftover table was kept");
	unlink(keep);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Both a writable and a read-only open fail with `err` and `msg` in the message; nothing on disk changes. */
static void refused(const char *dir, const sett_options *base, int err, const char *msg)
{
	uint64_t before = tu_dir_digest(dir);
	for (int ro = 0; ro <= 1; ro++) {
		sett_options o = *base;
		char why[1024] = "";
		o.read_only = ro;
		o.error_buf = why;
		o.error_buf_size = sizeof why;
		sett_db *db = NULL;
		int r = sett_open(dir, &o, &db);
		ck_assert_msg(r == err, "ro=%d: %s (%s)", ro, sett_strerror(r), why);
		ck_assert_msg(strstr(why, msg) != NULL, "message: %s", why);
		ck_assert_msg(tu_dir_digest(dir) == before, "ro=%d: the store changed", ro);
	}
}

/*
 * Issue 9: a MANIFEST that is missing, cut short or damaged in its last
 * record, while tables exist, is refused with nothing changed on disk
 * (formerly: an empty MANIFEST was created, or the damage taken for a torn
 * append, and every table it no longer named was deleted).
 */
START_TEST(test_damaged_manifest_refused)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	two_table_store(dir, &o);
	char man[4200], keep[4200], cmd[8600];
	snprintf(man, sizeof man, "%s/MANIFEST", dir);
	snprintf(keep, sizeof keep, "%s.keep", dir);
	snprintf(cmd, sizeof cmd, "cp -p %s %s", man, keep);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "cp -p %s %s", keep, man);
	/* NEXT_ID, create 1, create 2: 27 bytes each after the 16-byte header. */
	long long size = tu_file_size(man), last = size - 27;
	char at[64];
	snprintf(at, sizeof at, "MANIFEST: corrupt record at offset %lld", last);

	ck_assert_int_eq(unlink(man), 0);
	refused(dir, &o, SETT_ECORRUPT, "MANIFEST: missing, but the store holds");

	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(truncate(man, 30), 0);
	refused(dir, &o, SETT_ECORRUPT, "MANIFEST: torn record at offset 16, and");

	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(truncate(man, size - 5), 0);
	refused(dir, &o, SETT_ECORRUPT, "000002.sst holds entries");

	ck_assert_int_eq(system(cmd), 0);
	tu_flip_byte(man, size - 5);
	refused(dir, &o, SETT_ECORRUPT, at);

	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(truncate(man, 10), 0);
	refused(dir, &o, SETT_ECORRUPT, "MANIFEST: file too short");

	/* The intact MANIFEST still opens the whole store. */
	ck_assert_int_eq(system(cmd), 0);
	expect_store(dir, &o);
	unlink(keep);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A table file the MANIFEST does not name is deleted only when the
 * MANIFEST recorded its id as allocated (a crash leftover); any other goes
 * to quarantine/.  A read-only open does neither.
 */
START_TEST(test_unnamed_tables)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	two_table_store(dir, &o);
	char cmd[8600], path[4200];
	snprintf(cmd, sizeof cmd, "cp %s/000001.sst %s/000005.sst && cp %s/000001.sst %s/000100.sst",
		 dir, dir, dir, dir);
	ck_assert_int_eq(system(cmd), 0);

	uint64_t before = tu_dir_digest(dir);
	sett_options ro = o;
	ro.read_only = 1;
	expect_store(dir, &ro);
	ck_assert(tu_dir_digest(dir) == before);

	expect_store(dir, &o);
	snprintf(path, sizeof path, "%s/000005.sst", dir);
	ck_assert_int_eq(access(path, F_OK), -1); /* id 5 < 17: a leftover */
	snprintf(path, sizeof path, "%s/000100.sst", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	snprintf(path, sizeof path, "%s/quarantine/000100.sst", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	/* Quarantined again under the same name: the first copy is kept. */
	snprintf(cmd, sizeof cmd, "cp %s/000001.sst %s/000100.sst", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	expect_store(dir, &o);
	snprintf(path, sizeof path, "%s/quarantine/000100.sst.1", dir);
	ck_assert_int_eq(access(path, F_OK), 0);

	/* The next table gets the first id the MANIFEST had not allocated. */
	sett_db *db = open_db(dir, &o);
	ck_assert_int_eq(sett_put(db, V("new"), V("x")), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	snprintf(path, sizeof path, "%s/000017.sst", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	expect_store(dir, &o);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A directory without a MANIFEST and without store data: created only if asked. */
START_TEST(test_create_only_where_nothing_is)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	o.create_if_missing = 0;
	sett_db *db = NULL;
	ck_assert_int_eq(sett_open(dir, &o, &db), -ENOENT);
	o.create_if_missing = 1;
	o.read_only = 1;
	ck_assert_int_eq(sett_open(dir, &o, &db), -ENOENT);
	char path[4200];
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	o.read_only = 0;
	/* A crash inside the creating open leaves a MANIFEST-REWRITE alone:
	 * it names no table, so the next open creates the store (formerly
	 * refused until someone deleted it). */
	char rew[4200];
	snprintf(rew, sizeof rew, "%s/MANIFEST-REWRITE", dir);
	FILE *f = fopen(rew, "w");
	ck_assert(f && fputs("SETT", f) >= 0 && fclose(f) == 0);
	db = open_db(dir, &o);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(access(rew, F_OK), -1);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A table cut to half its size under an open store: reads of keys in the
 * lost half and a full scan fail with SETT_ECORRUPT, the rest still read,
 * and the process lives (reading the mapped table unguarded died of SIGBUS).
 */
START_TEST(test_table_truncated_underneath)
{
	char *dir = tu_tmpdir("trunc");
	sett_options o;
	small_opts(&o);
	o.mem_table_size = 4 << 20; /* one table */
	o.num_compactors = 0;
	sett_db *db = open_db(dir, &o);
	char k[32], v[40];
	const int n = 4000;
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "key%06d", i);
		snprintf(v, sizeof v, "value-of-%06d", i);
		ck_assert_int_eq(sett_put(db, V(k), V(v)), 0);
	}
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	db = open_db(dir, &o);
	char path[4200];
	ck_assert(tu_find_file(dir, ".sst", path, sizeof path));
	ck_assert_int_eq(truncate(path, tu_file_size(path) / 2), 0);
	int good = 0, bad = 0;
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "key%06d", i);
		snprintf(v, sizeof v, "value-of-%06d", i);
		void *val;
		size_t vn;
		int r = sett_get(db, V(k), 0, &val, &vn);
		if (r == 0) {
			ck_assert(vn == strlen(v) && memcmp(val, v, vn) == 0);
			free(val);
			good++;
		} else {
			ck_assert_int_eq(r, SETT_ECORRUPT);
			bad++;
		}
	}
	ck_assert_int_gt(good, 0);
	ck_assert_int_gt(bad, n / 4);
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, NULL, &it), 0);
	int r, seen = 0;
	for (r = sett_iter_rewind(it); !r && sett_iter_valid(it); r = sett_iter_next(it))
		seen++;
	ck_assert_int_lt(seen, n);
	ck_assert_int_eq(sett_iter_error(it), SETT_ECORRUPT);
	sett_iter_free(it);
	sett_close(db);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * sett_close flushes every memtable, so nothing is left to replay: no WAL
 * survives it.  Close starts while the flusher is busy with the memtables
 * the writes filled (the flusher used to exit once it found none left,
 * before close queued the last one).
 */
START_TEST(test_close_flushes_all)
{
	char *dir = tu_tmpdir("closeflush");
	sett_options o;
	small_opts(&o);
	char k[32], v[200];
	memset(v, 'c', sizeof v);
	for (int round = 0; round < 20; round++) {
		sett_db *db = open_db(dir, &o);
		for (int i = 0; i < 2000; i++) {
			snprintf(k, sizeof k, "r%02dk%05d", round, i);
			ck_assert_int_eq(sett_put(db, V(k), B(v, sizeof v)), 0);
		}
		ck_assert_int_eq(sett_close(db), 0);
		char path[4200];
		ck_assert_msg(!tu_find_file(dir, ".mem", path, sizeof path),
			      "round %d: %s left after close", round, path);
	}
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Table dir/0000<id>.sst of keys <c>00..<c>99 = "v<c>NN", version 1. */
static void build_table(const char *dir, uint64_t id, char c)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%06llu.sst", dir, (unsigned long long)id);
	table_options to = { .block_size = 256, .bloom_fp = 0.01 };
	table_builder *b;
	ck_assert_int_eq(table_builder_new(path, &to, &b), 0);
	for (int i = 0; i < 100; i++) {
		uint8_t ik[16], vs[32];
		char k[8], v[8];
		snprintf(k, sizeof k, "%c%02d", c, i);
		snprintf(v, sizeof v, "v%c%02d", c, i);
		ikey_make(ik, k, 3, 1);
		vstruct st = { .data = slice_make(v, 4) };
		size_t n = vstruct_encode(vs, &st);
		ck_assert_int_eq(table_builder_add(b, slice_make(ik, 11), slice_make(vs, n)), 0);
	}
	ck_assert_int_eq(table_builder_finish(b), 0);
}

static int reports;
static char last_report[512];
static void count_report(void *arg, const char *why)
{
	(void)arg;
	reports++;
	snprintf(last_report, sizeof last_report, "%s", why);
}

/*
 * A table the MANIFEST names at L1 whose footer is damaged (issue 9): the
 * store is refused unless opened read-only with open_damaged; then keys
 * inside the other tables' ranges read as written, keys that may be in
 * the damaged table (its range is unknown: any gap of the level) fail with
 * SETT_ECORRUPT naming it, and iterators fail when they reach a gap.
 */
START_TEST(test_damaged_table_open)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	sett_db *db = open_db(dir, &o);
	ck_assert_int_eq(sett_close(db), 0);
	build_table(dir, 10, 'a');
	build_table(dir, 11, 'b');
	build_table(dir, 12, 'c');
	manifest *m;
	manifest_table *mt;
	size_t nmt;
	char why[1024] = "";
	ck_assert_int_eq(manifest_open(dir, 0, &m, &mt, &nmt, why, sizeof why), 0);
	free(mt);
	manifest_change ch[4] = { { .op = MANIFEST_NEXT_ID, .id = 100 },
				  { .op = MANIFEST_CREATE, .id = 10, .level = 1 },
				  { .op = MANIFEST_CREATE, .id = 11, .level = 1 },
				  { .op = MANIFEST_CREATE, .id = 12, .level = 1 } };
	ck_assert_int_eq(manifest_apply(m, ch, 4), 0);
	ck_assert_int_eq(manifest_close(m), 0);
	o.num_compactors = 0;
	db = open_db(dir, &o);
	expect_value(db, V("b50"), 0, "vb50", 4);
	ck_assert_int_eq(sett_close(db), 0);

	char path[4200];
	snprintf(path, sizeof path, "%s/000011.sst", dir);
	tu_flip_byte(path, tu_file_size(path) - 1); /* the footer's magic */
	uint64_t digest = tu_dir_digest(dir);
	o.error_buf = why;
	o.error_buf_size = sizeof why;
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_ECORRUPT);
	ck_assert_msg(strstr(why, "000011.sst"), "why: %s", why);
	o.open_damaged = 1; /* only with read_only */
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_ECORRUPT);
	o.read_only = 1;
	o.corruption_fn = count_report;
	db = open_db(dir, &o);
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert_int_eq(st.damaged_tables, 1);
	expect_value(db, V("a01"), 0, "va01", 4);
	expect_value(db, V("a99"), 0, "va99", 4);
	expect_value(db, V("c42"), 0, "vc42", 4);
	expect_missing(db, V("a5"), 0); /* inside a's range: not in the damaged table */
	void *v;
	size_t n;
	/* in a gap, or the first key of a table (the one before may hold newer versions) */
	const char *gap[] = { "b50", "a99x", "b", "0", "d", "a00", "c00" };
	for (size_t i = 0; i < sizeof gap / sizeof *gap; i++) {
		reports = 0;
		ck_assert_int_eq(sett_get(db, V(gap[i]), 0, &v, &n), SETT_ECORRUPT);
		ck_assert_int_eq(reports, 1);
		ck_assert_msg(strstr(last_report, "000011.sst"), "report: %s", last_report);
	}
	/* an iterator reads a's keys after the first, then fails where the gap begins */
	sett_iter_options io;
	sett_iter_options_init(&io);
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	int count = 0;
	for (sett_iter_seek(it, V("a01")); sett_iter_valid(it); sett_iter_next(it))
		count++;
	ck_assert_int_eq(count, 99);
	ck_assert_int_eq(sett_iter_error(it), SETT_ECORRUPT);
	sett_iter_rewind(it);
	ck_assert(!sett_iter_valid(it));
	ck_assert_int_eq(sett_iter_error(it), SETT_ECORRUPT);
	sett_iter_free(it);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), SETT_ECORRUPT);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert(tu_dir_digest(dir) == digest);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A compaction that meets a bad block fails; it never drops the keys it
 * could not read (issue 9): the damaged table stays named and in place,
 * the engine reports the corruption to writers, and the keys of the
 * table's other blocks still read.
 */
START_TEST(test_compaction_meets_bad_block)
{
	char *dir = tu_tmpdir("db");
	sett_options o;
	small_opts(&o);
	o.num_compactors = 0;
	sett_db *db = open_db(dir, &o);
	char k[32], v[40];
	memset(v, 'v', sizeof v);
	for (int i = 0; i < 400; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		ck_assert_int_eq(sett_put(db, V(k), B(v, sizeof v)), 0);
	}
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	ck_assert(tu_find_file(dir, ".sst", path, sizeof path));
	tu_flip_byte(path, tu_file_size(path) / 3); /* a data block */

	o.num_compactors = 1;
	o.num_level_zero_tables = 2;
	db = open_db(dir, &o);
	int r = 0;
	/* a second L0 table starts the compaction; writers then see its error */
	for (int i = 0; i < 600 && r == 0; i++) {
		snprintf(k, sizeof k, "m%03d", i % 100);
		r = sett_put(db, V(k), B(v, sizeof v));
		if (r == 0 && i % 100 == 99)
			r = sett_flush(db);
		if (r == 0 && i >= 200) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	ck_assert_msg(r == SETT_ECORRUPT, "writes: %s", sett_strerror(r));
	sett_close(db);
	ck_assert_msg(tu_file_size(path) > 0, "the damaged table is gone");
	o.read_only = 1;
	db = open_db(dir, &o);
	int good = 0, bad = 0;
	for (int i = 0; i < 400; i++) {
		void *val;
		size_t n;
		snprintf(k, sizeof k, "k%03d", i);
		r = sett_get(db, V(k), 0, &val, &n);
		if (r == 0) {
			ck_assert(n == sizeof v && memcmp(val, v, n) == 0);
			free(val);
			good++;
		} else {
			ck_assert_int_eq(r, SETT_ECORRUPT);
			bad++;
		}
	}
	ck_assert_int_gt(bad, 0);
	ck_assert_int_gt(good, 300);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_put_get_del_reopen);
	tcase_add_test(tc, test_batch_versions_snapshots);
	tcase_add_test(tc, test_batch_set_ref);
	tcase_add_test(tc, test_iterators);
	tcase_add_test(tc, test_iter_value_size);
	tcase_add_test(tc, test_iter_many_versions);
	tcase_add_test(tc, test_overwrites_rotate_and_flush_drops);
	tcase_add_loop_test(tc, test_model, 0, 2);
	tcase_add_test(tc, test_lock_and_errors);
	tcase_add_test(tc, test_powercut);
	tcase_add_test(tc, test_wal_ahead_of_vlog);
	tcase_add_test(tc, test_corruption_reported);
	tcase_add_test(tc, test_damaged_manifest_refused);
	tcase_add_test(tc, test_torn_manifest_append_opens);
	tcase_add_test(tc, test_torn_manifest_deleted_table);
	tcase_add_test(tc, test_unnamed_tables);
	tcase_add_test(tc, test_create_only_where_nothing_is);
	tcase_add_test(tc, test_damaged_table_open);
	tcase_add_test(tc, test_compaction_meets_bad_block);
	tcase_add_test(tc, test_table_truncated_underneath);
	tcase_add_test(tc, test_close_flushes_all);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
