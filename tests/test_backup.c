/*
 * test_backup.c - streams, backup and load: a store rebuilt from a full
 * stream and two incrementals scans equal to the source (deletes and
 * overwrites included), a backup taken while a writer runs is a consistent
 * snapshot, a damaged or truncated stream is refused and changes nothing,
 * and the parallel stream delivers what a sequential scan sees.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "sett.h"

static void small_options(sett_options *o)
{
	sett_options_init(o);
	o->mem_table_size = 256u << 10;
	o->value_threshold = 512;
	o->value_log_file_size = 4u << 20;
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
	small_options(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	return db;
}

/* ---- a memory stream ---- */

/* ---- workload ---- */

static void put(sett_db *db, uint32_t i, uint32_t round)
{
	char k[32];
	snprintf(k, sizeof k, "key%06u", i);
	uint8_t v[2048];
	uint64_t s = ((uint64_t)i << 24) ^ round;
	size_t n = 1 + (size_t)(tu_rand(&s) % (i % 3 ? 100 : 2000)); /* some in the value log */
	tu_fill_random(&s, v, n);
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	ck_assert_int_eq(sett_batch_set_ex(b, (sett_val){ strlen(k), k }, (sett_val){ n, v }, 0,
					   (uint8_t)(round & 0xff)), 0);
	ck_assert_int_eq(sett_write(db, b, 0, NULL), 0);
	sett_batch_free(b);
}

static void del(sett_db *db, uint32_t i)
{
	char k[32];
	snprintf(k, sizeof k, "key%06u", i);
	ck_assert_int_eq(sett_del(db, (sett_val){ strlen(k), k }), 0);
}

/* A digest of everything a scan at rv sees: keys, values, user meta. */
static uint64_t scan_digest(sett_db *db, uint64_t rv, uint64_t *count)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = rv;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	uint64_t h = 1469598103934665603ull, n = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v;
		ck_assert_int_eq(sett_iter_value(it, &v), 0);
		const uint8_t *p = k.data;
		for (size_t i = 0; i < k.size; i++)
			h = (h ^ p[i]) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;
		p = v.data;
		for (size_t i = 0; i < v.size; i++)
			h = (h ^ p[i]) * 1099511628211ull;
		h = (h ^ sett_iter_user_meta(it) ^ 0x100) * 1099511628211ull;
		n++;
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	sett_iter_free(it);
	if (count)
		*count = n;
	return h;
}

static uint64_t backup_to(sett_db *db, tu_mem *m, uint64_t since, int all_versions)
{
	sett_backup_options o;
	sett_backup_options_init(&o);
	o.since = since;
	o.all_versions = all_versions;
	o.pin = "backup";
	sett_backup_result res;
	memset(m, 0, sizeof *m);
	ck_assert_int_eq(sett_backup(db, &o, tu_mem_write, m, &res), 0);
	ck_assert_uint_eq(res.bytes, m->n);
	return res.version;
}

static void load_from(sett_db *db, tu_mem *m)
{
	sett_load_result res;
	m->pos = 0;
	int r = sett_load(db, tu_mem_read, m, NULL, NULL, &res);
	ck_assert_msg(r == 0, "load: %s (%s)", sett_strerror(r), res.why);
	ck_assert_uint_eq(res.applied, res.records);
}

static void round_trip(int all_versions)
{
	char *sdir = tu_tmpdir("bk-src"), *tdir = tu_tmpdir("bk-dst");
	sett_db *src = open_store(sdir), *dst = open_store(tdir);
	const uint32_t n = 3000;
	for (uint32_t i = 0; i < n; i++)
		put(src, i, 1);
	for (uint32_t i = 0; i < n; i += 10)
		del(src, i);
	tu_mem full, inc1, inc2;
	uint64_t v0 = backup_to(src, &full, 0, all_versions);
	/* overwrites, deletes, deleted keys coming back, new keys, compaction */
	for (uint32_t i = 0; i < n; i += 3)
		put(src, i, 2);
	for (uint32_t i = 1; i < n; i += 7)
		del(src, i);
	for (uint32_t i = n; i < n + 200; i++)
		put(src, i, 2);
	ck_assert_int_eq(sett_flatten(src), 0);
	uint64_t v1 = backup_to(src, &inc1, v0, all_versions);
	for (uint32_t i = 0; i < n + 200; i += 5)
		put(src, i, 3);
	for (uint32_t i = 2; i < n + 200; i += 11)
		del(src, i);
	uint64_t v2 = backup_to(src, &inc2, v1, all_versions);
	ck_assert(v0 < v1 && v1 < v2);
	ck_assert_msg(inc2.n < full.n, "incremental %zu bytes, full %zu", inc2.n, full.n);

	load_from(dst, &full);
	ck_assert_uint_eq(scan_digest(dst, 0, NULL), scan_digest(src, v0, NULL));
	load_from(dst, &inc1);
	ck_assert_uint_eq(scan_digest(dst, 0, NULL), scan_digest(src, v1, NULL));
	load_from(dst, &inc2);
	uint64_t cs, cd;
	uint64_t hs = scan_digest(src, 0, &cs);
	ck_assert_uint_eq(scan_digest(dst, 0, &cd), hs);
	ck_assert_uint_eq(cs, cd);
	ck_assert_int_eq(sett_close(dst), 0);
	dst = open_store(tdir);
	ck_assert_uint_eq(scan_digest(dst, 0, NULL), hs);
	ck_assert_int_eq(sett_close(dst), 0);
	ck_assert_int_eq(sett_close(src), 0);
	free(full.p);
	free(inc1.p);
	free(inc2.p);
	tu_rmrf(sdir);
	tu_rmrf(tdir);
	free(sdir);
	free(tdir);
}

START_TEST(test_round_trip_latest) { round_trip(0); }
END_TEST

START_TEST(test_round_trip_all_versions) { round_trip(1); }
END_TEST

/* An incremental needs a pin that kept the deletes since `since`. */
START_TEST(test_incremental_needs_pin)
{
	char *dir = tu_tmpdir("bk-nopin");
	sett_db *db = open_store(dir);
	put(db, 1, 1);
	uint64_t v = sett_current_version(db);
	put(db, 1, 2);
	sett_backup_options o;
	sett_backup_options_init(&o);
	o.since = v;
	tu_mem m = { 0 };
	sett_backup_result res;
	ck_assert_int_eq(sett_backup(db, &o, tu_mem_write, &m, &res), SETT_ENOHISTORY);
	/* an old version not held by anything cannot be pinned after the fact */
	ck_assert_int_eq(sett_pin(db, "p", v, NULL), -EINVAL);
	ck_assert_int_eq(sett_pin(db, "p", 0, &o.since), 0);
	del(db, 1);
	m.n = 0;
	ck_assert_int_eq(sett_backup(db, &o, tu_mem_write, &m, &res), 0);
	ck_assert_uint_eq(res.records, 1);
	ck_assert_uint_eq(res.deletes, 1);
	ck_assert_int_eq(sett_close(db), 0);
	free(m.p);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- damaged streams ---- */

static void expect_refused(sett_db *dst, tu_mem *m, uint64_t digest, uint64_t version,
			   const char *what)
{
	sett_load_result res;
	m->pos = 0;
	int r = sett_load(dst, tu_mem_read, m, NULL, NULL, &res);
	ck_assert_msg(r == SETT_ECORRUPT || r == SETT_EFORMAT, "%s: load returned %d", what, r);
	ck_assert_msg(res.why[0] != 0, "%s: no reason given", what);
	ck_assert_uint_eq(res.applied, 0);
	ck_assert_msg(sett_current_version(dst) == version, "%s: the target was written", what);
	ck_assert_msg(scan_digest(dst, 0, NULL) == digest, "%s: the target changed", what);
}

START_TEST(test_damaged_stream_refused)
{
	char *sdir = tu_tmpdir("bk-dmg-src"), *tdir = tu_tmpdir("bk-dmg-dst");
	sett_db *src = open_store(sdir), *dst = open_store(tdir);
	for (uint32_t i = 0; i < 2000; i++)
		put(src, i, 1);
	tu_mem good;
	memset(&good, 0, sizeof good);
	sett_backup_options o;
	sett_backup_options_init(&o);
	o.threads = 3;
	sett_backup_result bres;
	/* small frames: many frame boundaries to cut at */
	ck_assert_int_eq(sett_backup(src, &o, tu_mem_write, &good, &bres), 0);
	/* the target holds something of its own */
	put(dst, 5, 9);
	put(dst, 99999, 9);
	uint64_t digest = scan_digest(dst, 0, NULL), version = sett_current_version(dst);

	tu_mem bad = { .p = malloc(good.n), .n = good.n, .cap = good.n };
	/* a flipped byte anywhere */
	for (size_t off = 0; off < good.n; off += good.n / 37 + 1) {
		memcpy(bad.p, good.p, good.n);
		bad.p[off] ^= 0x20;
		char what[64];
		snprintf(what, sizeof what, "byte %zu flipped", off);
		expect_refused(dst, &bad, digest, version, what);
	}
	/* truncated: inside the header, at and inside frames, before the trailer's end */
	size_t cuts[] = { 0, 1, 20, 47, 48, 49, 64, good.n / 3, good.n / 2, good.n - 57,
			  good.n - 56, good.n - 40, good.n - 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		memcpy(bad.p, good.p, good.n);
		bad.n = cuts[i];
		char what[64];
		snprintf(what, sizeof what, "cut at %zu of %zu", cuts[i], good.n);
		expect_refused(dst, &bad, digest, version, what);
	}
	/* something after the trailer */
	bad.p = realloc(bad.p, good.n + 1);
	memcpy(bad.p, good.p, good.n);
	bad.p[good.n] = 0;
	bad.n = good.n + 1;
	expect_refused(dst, &bad, digest, version, "a byte after the trailer");
	/* the intact stream still loads */
	load_from(dst, &good);
	ck_assert_int_eq(sett_close(dst), 0);
	ck_assert_int_eq(sett_close(src), 0);
	free(good.p);
	free(bad.p);
	tu_rmrf(sdir);
	tu_rmrf(tdir);
	free(sdir);
	free(tdir);
}
END_TEST

/* ---- a backup while a writer runs ---- */

typedef struct writer_arg {
	sett_db *db;
	int stop;        /* atomic */
	uint32_t rounds; /* atomic */
} writer_arg;

static void *writer_main(void *p)
{
	writer_arg *w = p;
	for (uint32_t round = 10; !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); round++) {
		for (uint32_t i = 0; i < 500; i += 3)
			put(w->db, i, round);
		del(w->db, round % 500);
		__atomic_fetch_add(&w->rounds, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void wait_rounds(writer_arg *w, uint32_t n)
{
	while (__atomic_load_n(&w->rounds, __ATOMIC_ACQUIRE) < n)
		sched_yield();
}

START_TEST(test_backup_while_writing)
{
	char *sdir = tu_tmpdir("bk-live-src"), *tdir = tu_tmpdir("bk-live-dst");
	sett_db *src = open_store(sdir), *dst = open_store(tdir);
	for (uint32_t i = 0; i < 2000; i++)
		put(src, i, 1);
	writer_arg w = { .db = src };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	wait_rounds(&w, 2);
	tu_mem m;
	uint64_t v = backup_to(src, &m, 0, 0);
	wait_rounds(&w, __atomic_load_n(&w.rounds, __ATOMIC_ACQUIRE) + 2);
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	ck_assert(sett_current_version(src) > v);
	load_from(dst, &m);
	/* the backup is the store at v (pinned by the backup, so still readable) */
	ck_assert_uint_eq(scan_digest(dst, 0, NULL), scan_digest(src, v, NULL));
	ck_assert_int_eq(sett_close(dst), 0);
	ck_assert_int_eq(sett_close(src), 0);
	free(m.p);
	tu_rmrf(sdir);
	tu_rmrf(tdir);
	free(sdir);
	free(tdir);
}
END_TEST

/* ---- the parallel stream ---- */

typedef struct collected {
	int nranges;
	tu_mem per_range[256]; /* "key\0" strings, in delivery order */
	uint64_t n;
	int last_range;
} collected;

static int collect(void *arg, int range, const sett_kv *kv, size_t n)
{
	collected *c = arg;
	ck_assert(range >= 0 && range < 256);
	if (range + 1 > c->nranges)
		c->nranges = range + 1;
	for (size_t i = 0; i < n; i++) {
		ck_assert(!kv[i].deleted);
		tu_mem_write(&c->per_range[range], kv[i].key.data, kv[i].key.size);
		tu_mem_write(&c->per_range[range], "", 1);
		c->n++;
	}
	return 0;
}

START_TEST(test_parallel_stream_equals_scan)
{
	char *dir = tu_tmpdir("bk-stream");
	sett_db *db = open_store(dir);
	for (uint32_t i = 0; i < 20000; i++)
		put(db, (i * 7919) % 20000, 1);
	for (uint32_t i = 0; i < 20000; i += 13)
		del(db, i);
	ck_assert_int_eq(sett_flatten(db), 0);
	for (uint32_t i = 0; i < 20000; i += 17)
		put(db, i, 2); /* some in the memtable */
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	int tables = 0;
	for (int l = 0; l < SETT_MAX_LEVELS; l++)
		tables += st.levels[l].tables;
	ck_assert_msg(tables >= 8, "only %d tables", tables);

	collected *c = calloc(1, sizeof *c);
	sett_stream_options so;
	sett_stream_options_init(&so);
	so.threads = 4;
	so.batch_bytes = 4096;
	uint64_t rv;
	ck_assert_int_eq(sett_stream(db, &so, collect, c, &rv), 0);
	ck_assert_msg(c->nranges > 4, "%d ranges", c->nranges);
	/* ranges in order, keys in order within each: the sequential scan */
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = rv;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	sett_iter_rewind(it);
	uint64_t seen = 0;
	for (int r = 0; r < c->nranges; r++) {
		tu_mem *m = &c->per_range[r];
		for (size_t off = 0; off < m->n; off += strlen((char *)m->p + off) + 1) {
			ck_assert(sett_iter_valid(it));
			sett_val k = sett_iter_key(it);
			ck_assert_msg(k.size == strlen((char *)m->p + off) &&
				      memcmp(k.data, m->p + off, k.size) == 0,
				      "range %d: stream and scan differ", r);
			sett_iter_next(it);
			seen++;
		}
		free(m->p);
	}
	ck_assert(!sett_iter_valid(it));
	sett_iter_free(it);
	ck_assert_uint_eq(seen, c->n);
	free(c);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

static int keep_odd(void *arg, sett_val key)
{
	(void)arg;
	return key.size && ((const char *)key.data)[key.size - 1] % 2;
}

struct meta_seen {
	int calls;
	size_t n;
	char text[64];
	uint64_t records;
};

static int on_meta(void *arg, const void *meta, size_t n, const sett_load_result *res)
{
	(void)res;
	struct meta_seen *m = arg;
	m->calls++;
	m->n = n;
	if (meta && n < sizeof m->text)
		memcpy(m->text, meta, n);
	return 0;
}

static int on_record(void *arg, const sett_kv *kv)
{
	struct meta_seen *m = arg;
	m->records++;
	return kv->key.size && ((const char *)kv->key.data)[kv->key.size - 1] % 2 ? 0 : -EBADMSG;
}

/*
 * A backup at an older, pinned version with a key filter and the caller's
 * meta frame: it holds what that version saw of the kept keys, the reader
 * gets the meta frame back first, and its hooks can refuse; an unpinned
 * read version is refused.
 */
START_TEST(test_backup_read_version_filter_meta)
{
	char *dir = tu_tmpdir("bk-meta"), *tdir = tu_tmpdir("bk-meta-dst");
	sett_db *db = open_store(dir);
	for (uint32_t i = 0; i < 200; i++)
		put(db, i, 1);
	uint64_t v;
	ck_assert_int_eq(sett_pin(db, "old", 0, &v), 0);
	for (uint32_t i = 0; i < 200; i += 3)
		put(db, i, 2);
	for (uint32_t i = 1; i < 200; i += 7)
		del(db, i);
	ck_assert_int_eq(sett_flatten(db), 0);

	sett_backup_options o;
	sett_backup_options_init(&o);
	o.read_version = v - 1;
	sett_backup_result res;
	tu_mem m = { 0 };
	ck_assert_int_eq(sett_backup(db, &o, tu_mem_write, &m, &res), -EINVAL); /* not pinned */
	free(m.p);
	memset(&m, 0, sizeof m);
	o.read_version = v;
	o.filter = keep_odd;
	o.meta = "the caller's";
	o.meta_size = 12;
	ck_assert_int_eq(sett_backup(db, &o, tu_mem_write, &m, &res), 0);
	ck_assert_uint_eq(res.version, v);
	ck_assert_uint_eq(res.records, 100);

	struct meta_seen seen = { 0 };
	sett_load_options lo = { .check_meta = on_meta, .check_record = on_record, .arg = &seen };
	sett_load_result lr;
	ck_assert_int_eq(sett_backup_check(&lo, tu_mem_read, &m, &lr), 0);
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_uint_eq(seen.n, 12);
	ck_assert_str_eq(seen.text, "the caller's");
	ck_assert_uint_eq(seen.records, 100);

	/* loaded: exactly the odd keys as the pinned version had them */
	sett_db *dst = open_store(tdir);
	m.pos = 0;
	ck_assert_int_eq(sett_load_ex(dst, &lo, tu_mem_read, &m, &lr), 0);
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = v;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	uint64_t n = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), val;
		if (!keep_odd(NULL, k))
			continue;
		ck_assert_int_eq(sett_iter_value(it, &val), 0);
		void *got;
		size_t gn;
		ck_assert_int_eq(sett_get(dst, k, 0, &got, &gn), 0);
		ck_assert_uint_eq(gn, val.size);
		ck_assert_int_eq(memcmp(got, val.data, gn), 0);
		free(got);
		n++;
	}
	sett_iter_free(it);
	ck_assert_uint_eq(n, 100);
	ck_assert_uint_eq(scan_digest(dst, 0, &n), scan_digest(dst, 0, NULL));
	ck_assert_uint_eq(n, 100);

	/* a hook's refusal is the result; nothing applied */
	uint64_t before = scan_digest(dst, 0, NULL);
	tu_mem all = { 0 };
	o.filter = NULL;
	ck_assert_int_eq(sett_backup(db, &o, tu_mem_write, &all, &res), 0);
	ck_assert_int_eq(sett_load_ex(dst, &lo, tu_mem_read, &all, &lr), -EBADMSG);
	ck_assert_uint_eq(scan_digest(dst, 0, NULL), before);
	/* a stream without the meta flag carries no meta frame: the hook is told so */
	tu_mem plain = { 0 };
	o.meta = NULL;
	o.meta_size = 0;
	ck_assert_int_eq(sett_backup(db, &o, tu_mem_write, &plain, &res), 0);
	seen.calls = 0;
	seen.n = 99;
	lo.check_record = NULL;
	ck_assert_int_eq(sett_backup_check(&lo, tu_mem_read, &plain, &lr), 0);
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_uint_eq(seen.n, 0);
	free(plain.p);
	free(all.p);
	free(m.p);
	ck_assert_int_eq(sett_close(dst), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	tu_rmrf(tdir);
	free(dir);
	free(tdir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("backup");
	TCase *tc = tcase_create("backup");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_round_trip_latest);
	tcase_add_test(tc, test_round_trip_all_versions);
	tcase_add_test(tc, test_incremental_needs_pin);
	tcase_add_test(tc, test_damaged_stream_refused);
	tcase_add_test(tc, test_backup_while_writing);
	tcase_add_test(tc, test_parallel_stream_equals_scan);
	tcase_add_test(tc, test_backup_read_version_filter_meta);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
