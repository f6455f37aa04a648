/*
 * test_compaction.c - the levels controller: a randomized model test with
 * constant flushes, compactions and GC, iterators and snapshots across
 * compaction, tombstone and TTL dropping, the DISCARD file, and crashes
 * (SIGKILL) in the middle of background work.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "sett.h"
#include "db_impl.h"
#include "discard.h"
#include "compaction.h"

/* ---- helpers ---- */

static void small_options(sett_options *o)
{
	sett_options_init(o);
	o->mem_table_size = 256u << 10;
	o->value_threshold = 200;
	o->base_table_size = 64u << 10;
	o->base_level_size = 256u << 10;
	o->level_size_multiplier = 4;
	o->num_level_zero_tables = 2;
	o->num_level_zero_tables_stall = 6;
	o->num_compactors = 2;
	o->block_cache_size = 1u << 20;
	o->value_log_file_size = 1u << 20;
	o->gc_discard_ratio = 0.3;
	o->gc_interval_ms = 50;
}

static void make_key(char *out, size_t n, uint32_t k)
{
	snprintf(out, n, "key%08u", k);
}

/* Value of write `seq` to key k: length and bytes follow from (k, seq). */
static size_t value_len(uint32_t k, uint32_t seq)
{
	uint64_t s = ((uint64_t)k << 32) ^ seq ^ 0xabcdef;
	uint64_t r = tu_rand(&s);
	return (r & 3) == 0 ? 300 + r % 3000 : 1 + r % 150; /* 1/4 go to the value log */
}

static void value_fill(uint32_t k, uint32_t seq, uint8_t *out, size_t n)
{
	uint64_t s = ((uint64_t)k << 32) ^ seq ^ 0x1234567;
	tu_fill_random(&s, out, n);
}

static int put_kv(sett_db *db, uint32_t k, uint32_t seq)
{
	char key[32];
	uint8_t val[4096];
	make_key(key, sizeof key, k);
	size_t n = value_len(k, seq);
	value_fill(k, seq, val, n);
	return sett_put(db, (sett_val){ strlen(key), key }, (sett_val){ n, val });
}

static int del_k(sett_db *db, uint32_t k)
{
	char key[32];
	make_key(key, sizeof key, k);
	return sett_del(db, (sett_val){ strlen(key), key });
}

/* Checks key k against model seq (0: absent). */
static void check_key(sett_db *db, uint32_t k, uint32_t seq, uint64_t rv)
{
	char key[32];
	make_key(key, sizeof key, k);
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(db, (sett_val){ strlen(key), key }, rv, &v, &n);
	if (seq == 0) {
		ck_assert_msg(r == SETT_ENOTFOUND, "%s: expected absent, got %d (%s)", key, r,
			      sett_strerror(r));
		return;
	}
	ck_assert_msg(r == 0, "%s: expected write %u, got %d (%s)", key, seq, r, sett_strerror(r));
	uint8_t exp[4096];
	size_t en = value_len(k, seq);
	value_fill(k, seq, exp, en);
	ck_assert_msg(n == en && memcmp(v, exp, en) == 0, "%s: wrong value (len %zu, want %zu)",
		      key, n, en);
	free(v);
}

/* Walks an iterator and checks it against the model. */
static void check_iter(sett_db *db, const uint32_t *model, uint32_t nkeys, uint64_t rv)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = rv;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	uint32_t next = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val kv = sett_iter_key(it);
		char key[32];
		ck_assert(kv.size < sizeof key);
		memcpy(key, kv.data, kv.size);
		key[kv.size] = 0;
		uint32_t k = (uint32_t)strtoul(key + 3, NULL, 10);
		while (next < k) {
			ck_assert_msg(model[next] == 0, "iterator skipped live key %u", next);
			next++;
		}
		ck_assert_msg(model[k] != 0, "iterator shows deleted key %u", k);
		sett_val vv;
		ck_assert_int_eq(sett_iter_value(it, &vv), 0);
		uint8_t exp[4096];
		size_t en = value_len(k, model[k]);
		value_fill(k, model[k], exp, en);
		ck_assert_msg(vv.size == en && memcmp(vv.data, exp, en) == 0,
			      "iterator: key %u has a wrong value", k);
		next = k + 1;
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	for (; next < nkeys; next++)
		ck_assert_msg(model[next] == 0, "iterator missed live key %u", next);
	sett_iter_free(it);
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	ck_assert(d != NULL);
	int n = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static int total_tables(sett_db *db)
{
	int n = 0;
	pthread_mutex_lock(&db->mu);
	for (int l = 0; l < MAX_LEVELS; l++)
		n += db->current->ntables[l];
	pthread_mutex_unlock(&db->mu);
	return n;
}

static uint64_t total_entries(sett_db *db)
{
	uint64_t n = 0;
	pthread_mutex_lock(&db->mu);
	for (int l = 0; l < MAX_LEVELS; l++)
		for (int i = 0; i < db->current->ntables[l]; i++)
			n += table_entry_count(db->current->tables[l][i]);
	pthread_mutex_unlock(&db->mu);
	return n;
}

/* ---- the model test ---- */

#define MODEL_KEYS 3000
#define MODEL_OPS 200000

START_TEST(test_model_random)
{
	char *dir = tu_tmpdir("compact-model");
	sett_options o;
	small_options(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint32_t *model = calloc(MODEL_KEYS, sizeof *model);
	uint32_t *seqs = calloc(MODEL_KEYS, sizeof *seqs);
	uint64_t rs = 42;
	int reopens = 0;
	for (int op = 0; op < MODEL_OPS; op++) {
		uint32_t k = (uint32_t)(tu_rand(&rs) % MODEL_KEYS);
		uint64_t what = tu_rand(&rs) % 100;
		if (what < 15) {
			ck_assert_int_eq(del_k(db, k), 0);
			model[k] = 0;
		} else if (what < 90) {
			uint32_t seq = ++seqs[k];
			ck_assert_int_eq(put_kv(db, k, seq), 0);
			model[k] = seq;
		} else {
			check_key(db, k, model[k], 0);
		}
		if (op % 20000 == 19999) {
			int g = sett_gc(db, 0.2);
			ck_assert_msg(g == 0 || g == SETT_ENOREWRITE, "sett_gc: %s", sett_strerror(g));
		}
		if (tu_rand(&rs) % 40000 == 0 || (op == MODEL_OPS / 2 && reopens == 0)) {
			ck_assert_int_eq(sett_close(db), 0);
			ck_assert_int_eq(sett_open(dir, &o, &db), 0);
			reopens++;
		}
	}
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert_msg(st.compactions > 0, "no compaction ran");
	for (uint32_t k = 0; k < MODEL_KEYS; k++)
		check_key(db, k, model[k], 0);
	check_iter(db, model, MODEL_KEYS, 0);
	/* Everything must still be there after a flatten and a reopen. */
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	for (uint32_t k = 0; k < MODEL_KEYS; k++)
		check_key(db, k, model[k], 0);
	check_iter(db, model, MODEL_KEYS, 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(model);
	free(seqs);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Dynamic levels: data ends in the last level, and L0 never runs away. */
START_TEST(test_levels_shape)
{
	char *dir = tu_tmpdir("compact-shape");
	sett_options o;
	small_options(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	for (uint32_t i = 0; i < 60000; i++)
		ck_assert_int_eq(put_kv(db, i % 20000, i / 20000 + 1), 0);
	sett_stats st;
	/* Let background compaction settle (up to a minute on a loaded machine). */
	for (int i = 0; i < 1200; i++) {
		ck_assert_int_eq(sett_get_stats(db, &st), 0);
		int busy = 0;
		for (int l = 0; l < MAX_LEVELS - 1; l++)
			busy |= st.levels[l].score >= 1.0;
		if (!busy)
			break;
		usleep(50000);
	}
	ck_assert_msg(st.levels[0].tables < o.num_level_zero_tables_stall,
		      "L0 has %d tables", st.levels[0].tables);
	ck_assert_msg(st.levels[MAX_LEVELS - 1].bytes > 0, "the last level is empty");
	uint64_t above = 0;
	for (int l = 1; l < MAX_LEVELS - 1; l++)
		above += st.levels[l].bytes;
	ck_assert_msg(st.levels[MAX_LEVELS - 1].bytes >= above,
		      "the last level (%llu bytes) should hold most data (levels above: %llu)",
		      (unsigned long long)st.levels[MAX_LEVELS - 1].bytes,
		      (unsigned long long)above);
	ck_assert(st.levels[MAX_LEVELS - 1].target_bytes > 0);
	for (uint32_t k = 0; k < 20000; k += 7)
		check_key(db, k, 3, 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Iterators and snapshot reads keep their view while files are replaced. */
START_TEST(test_iter_snapshot_across_compaction)
{
	char *dir = tu_tmpdir("compact-snap");
	sett_options o;
	small_options(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	const uint32_t nk = 4000;
	uint32_t *m1 = calloc(nk, sizeof *m1), *m2 = calloc(nk, sizeof *m2);
	for (uint32_t k = 0; k < nk; k++) {
		if (k % 5 == 0)
			continue;
		ck_assert_int_eq(put_kv(db, k, 1), 0);
		m1[k] = 1;
	}
	uint64_t snap = sett_current_version(db);
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = snap;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	ck_assert_int_eq(sett_iter_rewind(it), 0);
	/* Overwrite and delete everything several times; compact and GC. */
	for (uint32_t round = 2; round < 6; round++) {
		for (uint32_t k = 0; k < nk; k++) {
			if ((k + round) % 3 == 0) {
				ck_assert_int_eq(del_k(db, k), 0);
				m2[k] = 0;
			} else {
				ck_assert_int_eq(put_kv(db, k, round), 0);
				m2[k] = round;
			}
		}
		int g = sett_gc(db, 0.01);
		ck_assert(g == 0 || g == SETT_ENOREWRITE);
	}
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(sett_gc(db, 0.01) <= 0, 1);
	/* The open iterator still walks the old snapshot. */
	uint32_t next = 0, seen = 0;
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val kv = sett_iter_key(it);
		char key[32];
		memcpy(key, kv.data, kv.size);
		key[kv.size] = 0;
		uint32_t k = (uint32_t)strtoul(key + 3, NULL, 10);
		ck_assert_msg(k >= next && m1[k], "snapshot iterator: unexpected key %u", k);
		sett_val vv;
		ck_assert_int_eq(sett_iter_value(it, &vv), 0);
		uint8_t exp[4096];
		size_t en = value_len(k, 1);
		value_fill(k, 1, exp, en);
		ck_assert_msg(vv.size == en && memcmp(vv.data, exp, en) == 0,
			      "snapshot iterator: key %u changed under it", k);
		next = k + 1;
		seen++;
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	ck_assert_uint_eq(seen, nk - nk / 5);
	/* Point reads at the snapshot too (the iterator keeps its versions alive). */
	for (uint32_t k = 0; k < nk; k += 3)
		check_key(db, k, m1[k], snap);
	check_iter(db, m1, nk, snap);
	sett_iter_free(it);
	for (uint32_t k = 0; k < nk; k++)
		check_key(db, k, m2[k], 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(m1);
	free(m2);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Delete everything and flatten: no table keeps anything. */
START_TEST(test_tombstones_dropped_at_bottom)
{
	char *dir = tu_tmpdir("compact-tomb");
	sett_options o;
	small_options(&o);
	o.gc_discard_ratio = 0; /* no GC thread: only compaction at work */
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	const uint32_t nk = 20000;
	for (uint32_t k = 0; k < nk; k++)
		ck_assert_int_eq(put_kv(db, k, 1), 0);
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_msg(total_entries(db) >= nk, "flatten lost entries");
	for (uint32_t k = 0; k < nk; k++)
		ck_assert_int_eq(del_k(db, k), 0);
	ck_assert_int_eq(sett_flatten(db), 0);
	uint64_t left = total_entries(db);
	ck_assert_msg(left == 0, "%llu entries left in tables after delete-all + flatten",
		      (unsigned long long)left);
	ck_assert_int_eq(total_tables(db), 0);
	ck_assert_int_eq(count_files(dir, ".sst"), 0);
	/* Compaction counted the dropped value pointers. */
	sett_vlog_info vi[64];
	int n = sett_vlog_files(db, vi, 64);
	uint64_t disc = 0;
	for (int i = 0; i < n && i < 64; i++)
		disc += vi[i].discard_bytes;
	ck_assert_msg(disc > 0, "no discard bytes recorded");
	ck_assert_int_eq(sett_close(db), 0);
	/* ... and persisted them. */
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	n = sett_vlog_files(db, vi, 64);
	uint64_t disc2 = 0;
	for (int i = 0; i < n && i < 64; i++)
		disc2 += vi[i].discard_bytes;
	ck_assert_uint_eq(disc2, disc);
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, NULL, &it), 0);
	sett_iter_rewind(it);
	ck_assert(!sett_iter_valid(it));
	sett_iter_free(it);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Expired entries disappear from the tables. */
START_TEST(test_ttl_dropped)
{
	char *dir = tu_tmpdir("compact-ttl");
	sett_options o;
	small_options(&o);
	o.gc_discard_ratio = 0;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint64_t exp = (uint64_t)time(NULL) + 4;
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	for (uint32_t k = 0; k < 4000; k++) {
		char key[32];
		uint8_t val[400];
		make_key(key, sizeof key, k);
		size_t n = k % 2 ? 20 : 400;
		memset(val, (int)k, n);
		ck_assert_int_eq(sett_batch_set_ex(b, (sett_val){ strlen(key), key },
						   (sett_val){ n, val }, k < 3000 ? exp : 0, 7), 0);
		if (sett_batch_count(b) == 100) {
			ck_assert_int_eq(sett_write(db, b, 0, NULL), 0);
			sett_batch_clear(b);
		}
	}
	sett_batch_free(b);
	ck_assert_int_eq(sett_flatten(db), 0);
	/* Not yet expired: all kept (unless a loaded machine took that long). */
	if ((uint64_t)time(NULL) < exp)
		ck_assert_uint_eq(total_entries(db), 4000);
	while ((uint64_t)time(NULL) <= exp)
		usleep(100000);
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_uint_eq(total_entries(db), 1000);
	for (uint32_t k = 2990; k < 3010; k++) {
		char key[32];
		make_key(key, sizeof key, k);
		void *v;
		size_t n;
		int r = sett_get(db, (sett_val){ strlen(key), key }, 0, &v, &n);
		if (k < 3000) {
			ck_assert_int_eq(r, SETT_ENOTFOUND);
		} else {
			ck_assert_int_eq(r, 0);
			free(v);
		}
	}
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Writers stall on a deep L0 and resume once compaction catches up. */
START_TEST(test_l0_stall_resumes)
{
	char *dir = tu_tmpdir("compact-stall");
	sett_options o;
	small_options(&o);
	o.mem_table_size = 64u << 10;
	o.num_level_zero_tables = 1;
	o.num_level_zero_tables_stall = 2;
	o.num_compactors = 1;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	for (uint32_t i = 0; i < 40000; i++)
		ck_assert_int_eq(put_kv(db, i % 10000, i / 10000 + 1), 0);
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert(st.compactions > 0);
	ck_assert_msg(st.levels[0].tables <= 2, "L0 grew to %d tables", st.levels[0].tables);
	for (uint32_t k = 0; k < 10000; k += 13)
		check_key(db, k, 4, 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- DISCARD file ---- */

START_TEST(test_discard_file)
{
	char *dir = tu_tmpdir("discard");
	char why[256];
	discard *d;
	ck_assert_int_eq(discard_open(dir, 0, &d, why, sizeof why), 0);
	discard_add(d, 3, 100);
	discard_add(d, 1, 10);
	discard_add(d, 3, 5);
	discard_add(d, 7, 70);
	ck_assert_uint_eq(discard_get(d, 3), 105);
	ck_assert_uint_eq(discard_get(d, 2), 0);
	discard_remove(d, 1);
	ck_assert_uint_eq(discard_total(d), 175);
	ck_assert_int_eq(discard_close(d), 0);
	ck_assert_int_eq(discard_open(dir, 0, &d, why, sizeof why), 0);
	ck_assert_uint_eq(discard_get(d, 3), 105);
	ck_assert_uint_eq(discard_get(d, 7), 70);
	ck_assert_uint_eq(discard_get(d, 1), 0);
	uint32_t keep[] = { 7 };
	discard_retain(d, keep, 1);
	ck_assert_uint_eq(discard_get(d, 3), 0);
	ck_assert_int_eq(discard_close(d), 0);
	/* Every corrupt byte is detected, with the file name in `why`. */
	char path[4096];
	snprintf(path, sizeof path, "%s/DISCARD", dir);
	long long sz = tu_file_size(path);
	ck_assert_int_eq(sz, 16 + 12 + 8);
	for (long long off = 0; off < sz; off++) {
		tu_flip_byte(path, off);
		why[0] = 0;
		int r = discard_open(dir, 0, &d, why, sizeof why);
		ck_assert_msg(r == SETT_ECORRUPT, "flip at %lld not detected (%d)", off, r);
		ck_assert(strstr(why, "DISCARD") != NULL);
		tu_flip_byte(path, off);
	}
	ck_assert_int_eq(truncate(path, sz - 3), 0);
	ck_assert_int_eq(discard_open(dir, 0, &d, why, sizeof why), SETT_ECORRUPT);
	/* The engine opens anyway (the statistics are advisory). */
	sett_db *db;
	sett_options o;
	small_options(&o);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A store that stops being written merges its last L0 table down after a
 * few idle seconds, so the versions it shadows count as value-log garbage
 * (and GC can reclaim them) without further writes.
 */
START_TEST(test_idle_l0_merged)
{
	char *dir = tu_tmpdir("idle");
	sett_options o;
	small_options(&o);
	o.gc_discard_ratio = 0; /* watch the discard counts, not GC */
	o.num_level_zero_tables = 3;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	/* every key twice, one flush each: 2 L0 tables, under the trigger */
	for (int round = 0; round < 2; round++) {
		for (uint32_t k = 0; k < 200; k++)
			ck_assert_int_eq(put_kv(db, k * 2 + 1, round + 1), 0);
		ck_assert_int_eq(sett_flush(db), 0);
	}
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert_int_eq(st.levels[0].tables, 2);
	ck_assert_uint_eq(st.vlog_discard_bytes, 0);
	/* idle: within a minute L0 is merged down and the old values are garbage */
	for (int i = 0; i < 600; i++) {
		ck_assert_int_eq(sett_get_stats(db, &st), 0);
		if (st.levels[0].tables == 0 && st.vlog_discard_bytes > 0)
			break;
		usleep(100000);
	}
	ck_assert_int_eq(st.levels[0].tables, 0);
	ck_assert_uint_gt(st.vlog_discard_bytes, 0);
	for (uint32_t k = 0; k < 200; k++)
		check_key(db, k * 2 + 1, 2, 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- crash in the middle of background work ---- */

#define CRASH_KEYS 2000

/* The child: op i writes key (i*7919 % CRASH_KEYS) (or deletes it); reports acks on fd. */
static void crash_child(const char *dir, int fd, uint32_t start)
{
	sett_options o;
	small_options(&o);
	o.sync_writes = 1;
	o.gc_interval_ms = 20;
	sett_db *db;
	if (sett_open(dir, &o, &db))
		_exit(2);
	for (uint32_t i = start;; i++) {
		uint32_t k = (i * 7919u) % CRASH_KEYS;
		int r = (i % 11 == 0) ? del_k(db, k) : put_kv(db, k, i + 1);
		if (r)
			_exit(3);
		if (write(fd, &i, sizeof i) != sizeof i)
			_exit(4);
		if (i % 3000 == 0) {
			sett_gc(db, 0.2);
			sett_flatten(db);
		}
	}
}

START_TEST(test_crash_during_background_work)
{
	char *dir = tu_tmpdir("compact-crash");
	uint32_t *model = calloc(CRASH_KEYS, sizeof *model); /* seq+1 of the acked write, 0 absent */
	uint32_t next = 0;
	uint64_t rs = 7;
	for (int round = 0; round < 4; round++) {
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		pid_t pid = fork();
		ck_assert(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(dir, p[1], next);
		}
		close(p[1]);
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		long run_ms = 300 + (long)(tu_rand(&rs) % 1200);
		uint32_t acked;
		int have = 0;
		uint32_t last = 0;
		for (;;) {
			ssize_t n = read(p[0], &acked, sizeof acked);
			if (n != sizeof acked)
				break;
			last = acked;
			have = 1;
			struct timespec t;
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > run_ms)
				break;
		}
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		/* Drain acks that were written before the kill. */
		while (read(p[0], &acked, sizeof acked) == sizeof acked) {
			last = acked;
			have = 1;
		}
		close(p[0]);
		ck_assert_msg(WIFSIGNALED(status), "child exited by itself (status %d)", status);
		uint32_t end = have ? last + 1 : next; /* ops next..end-1 were acked */
		for (uint32_t i = next; i < end; i++) {
			uint32_t k = (i * 7919u) % CRASH_KEYS;
			model[k] = (i % 11 == 0) ? 0 : i + 1;
		}
		/* Op `end` may or may not have landed. */
		uint32_t k_inflight = (end * 7919u) % CRASH_KEYS;
		sett_options o;
		small_options(&o);
		/* No background work while the files are counted: a compaction
		 * started by this open would have outputs not yet installed. */
		o.num_compactors = 0;
		o.gc_discard_ratio = 0;
		sett_db *db;
		ck_assert_int_eq(sett_open(dir, &o, &db), 0);
		for (uint32_t k = 0; k < CRASH_KEYS; k++) {
			if (k == k_inflight) {
				char key[32];
				make_key(key, sizeof key, k);
				void *v;
				size_t n;
				int r = sett_get(db, (sett_val){ strlen(key), key }, 0, &v, &n);
				if (r == 0)
					free(v);
				continue;
			}
			check_key(db, k, model[k], 0);
		}
		/* No orphans: every table file is in the tree, no temporary files.
		 * The WALs replayed at open are flushed by the flusher, which
		 * runs without compactors: count once it has installed them. */
		ck_assert_int_eq(sett_flush(db), 0);
		ck_assert_int_eq(count_files(dir, ".sst"), total_tables(db));
		ck_assert_int_eq(count_files(dir, ".tmp"), 0);
		ck_assert_int_eq(sett_verify(db, NULL, NULL), 0);
		ck_assert_int_eq(sett_close(db), 0);
		/* Settle the in-flight op: rewrite its key to a known state. */
		small_options(&o);
		ck_assert_int_eq(sett_open(dir, &o, &db), 0);
		ck_assert_int_eq(del_k(db, k_inflight), 0);
		model[k_inflight] = 0;
		ck_assert_int_eq(sett_close(db), 0);
		next = end + 1;
	}
	free(model);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("compaction");
	TCase *tc = tcase_create("compaction");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_discard_file);
	tcase_add_test(tc, test_idle_l0_merged);
	tcase_add_test(tc, test_tombstones_dropped_at_bottom);
	tcase_add_test(tc, test_ttl_dropped);
	tcase_add_test(tc, test_levels_shape);
	tcase_add_test(tc, test_l0_stall_resumes);
	tcase_add_test(tc, test_iter_snapshot_across_compaction);
	tcase_add_test(tc, test_crash_during_background_work);
	tcase_add_test(tc, test_model_random);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
