/*
 * test_pin.c - pinned versions: a pinned version reads as it was through
 * overwrites, deletes, compaction, value-log GC and reopens; releasing the
 * pin gives the space back; pins survive a MANIFEST rewrite; the space only
 * pins hold is reported.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "sett.h"
#include "manifest.h"

#define VAL (16u << 10)
#define NKEYS 256u

static sett_val sv(const char *s) { return (sett_val){ strlen(s), s }; }

/* Value of key i in round r: big (value log) for even i, small (LSM) for odd i. */
static size_t val_of(uint8_t *v, uint32_t i, uint32_t round)
{
	uint64_t s = ((uint64_t)i << 20) ^ round ^ 77;
	size_t n = i % 2 ? 40 : VAL;
	tu_fill_random(&s, v, n);
	return n;
}

static void put_key(sett_db *db, uint8_t *v, uint32_t i, uint32_t round)
{
	char k[32];
	snprintf(k, sizeof k, "key%06u", i);
	size_t n = val_of(v, i, round);
	ck_assert_int_eq(sett_put(db, sv(k), (sett_val){ n, v }), 0);
}

static void del_key(sett_db *db, uint32_t i)
{
	char k[32];
	snprintf(k, sizeof k, "key%06u", i);
	ck_assert_int_eq(sett_del(db, sv(k)), 0);
}

/* Key i reads (at rv) as round `round`'s value, or as absent when round is 0. */
static void check_key(sett_db *db, uint8_t *v, uint32_t i, uint32_t round, uint64_t rv)
{
	char k[32];
	snprintf(k, sizeof k, "key%06u", i);
	void *got = NULL;
	size_t n = 0;
	int r = sett_get(db, sv(k), rv, &got, &n);
	if (!round) {
		ck_assert_msg(r == SETT_ENOTFOUND, "%s at %llu: expected absent, got %d", k,
			      (unsigned long long)rv, r);
		return;
	}
	ck_assert_msg(r == 0, "%s at %llu: %s", k, (unsigned long long)rv, sett_strerror(r));
	size_t want = val_of(v, i, round);
	ck_assert_msg(n == want && memcmp(got, v, n) == 0, "%s at %llu: wrong value", k,
		      (unsigned long long)rv);
	free(got);
}

/* What the pinned version holds: key i at round 1, every 5th key deleted. */
static uint32_t pinned_round(uint32_t i) { return i % 5 == 0 ? 0 : 1; }

static void check_pinned(sett_db *db, uint8_t *v, uint64_t pv)
{
	for (uint32_t i = 0; i < NKEYS; i++)
		check_key(db, v, i, pinned_round(i), pv);
	/* an iterator at the pinned version lists exactly the pinned keys */
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = pv;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	uint32_t want = 0, seen = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		while (want < NKEYS && !pinned_round(want))
			want++;
		char k[32];
		snprintf(k, sizeof k, "key%06u", want);
		sett_val key = sett_iter_key(it);
		ck_assert_msg(key.size == strlen(k) && memcmp(key.data, k, key.size) == 0,
			      "iterator at the pin: expected %s", k);
		want++;
		seen++;
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	sett_iter_free(it);
	uint32_t expect = 0;
	for (uint32_t i = 0; i < NKEYS; i++)
		expect += pinned_round(i) != 0;
	ck_assert_uint_eq(seen, expect);
}

static void compact_and_gc(sett_db *db)
{
	ck_assert_int_eq(sett_flatten(db), 0);
	int r;
	for (int i = 0; i < 20 && (r = sett_gc(db, 0.01)) == 0; i++)
		;
	ck_assert_msg(r == 0 || r == SETT_ENOREWRITE, "gc: %s", sett_strerror(r));
}

START_TEST(test_pin_survives_churn)
{
	char *dir = tu_tmpdir("pin-churn");
	sett_options o;
	tu_small_options(&o, 2u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	for (uint32_t i = 0; i < NKEYS; i++)
		put_key(db, v, i, 1);
	for (uint32_t i = 0; i < NKEYS; i += 5)
		del_key(db, i);
	uint64_t pv;
	ck_assert_int_eq(sett_pin(db, "snap", 0, &pv), 0);
	ck_assert_uint_eq(pv, sett_current_version(db));
	/* heavy overwrite: every key rewritten 6 times, deleted keys come back,
	 * others are deleted, with compaction and GC in between */
	for (uint32_t round = 2; round <= 7; round++) {
		for (uint32_t i = 0; i < NKEYS; i++)
			put_key(db, v, i, round);
		for (uint32_t i = 1; i < NKEYS; i += 7)
			del_key(db, i);
		compact_and_gc(db);
		check_pinned(db, v, pv);
	}
	uint64_t held;
	ck_assert_int_eq(sett_pin_space(db, &held), 0);
	ck_assert_msg(held >= (NKEYS / 2) * 4 / 5 * VAL, "pins hold %llu bytes",
		      (unsigned long long)held);
	ck_assert_int_eq(sett_close(db), 0);

	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	check_pinned(db, v, pv);
	for (uint32_t i = 0; i < NKEYS; i++)
		check_key(db, v, i, i % 7 == 1 ? 0 : 7, 0);
	compact_and_gc(db);
	check_pinned(db, v, pv);
	uint64_t pinned_size = tu_dir_bytes(dir);

	/* release: compaction and GC take the space back */
	ck_assert_int_eq(sett_unpin(db, "snap"), 0);
	compact_and_gc(db);
	compact_and_gc(db);
	uint64_t freed_size = tu_dir_bytes(dir);
	uint64_t live = (NKEYS / 2) * (uint64_t)VAL;
	ck_assert_msg(freed_size + live / 2 < pinned_size,
		      "after unpin the store still takes %llu bytes (pinned: %llu, live ~%llu)",
		      (unsigned long long)freed_size, (unsigned long long)pinned_size,
		      (unsigned long long)live);
	ck_assert_int_eq(sett_pin_space(db, &held), 0);
	ck_assert_uint_eq(held, 0);
	for (uint32_t i = 0; i < NKEYS; i++)
		check_key(db, v, i, i % 7 == 1 ? 0 : 7, 0);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A value-log file that holds a few values only a pin sees among much
 * garbage is still collected: GC moves the pinned values (under their own
 * versions) and removes the file; the pin reads them as before, across a
 * reopen, and current reads are not shadowed by the moved old versions.
 */
START_TEST(test_pin_gc_moves_pinned_values)
{
	char *dir = tu_tmpdir("pin-move");
	sett_options o;
	tu_small_options(&o, 4u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	const uint32_t n = 16; /* 8 big values (even keys), 8 small */
	for (uint32_t i = 0; i < n; i++)
		put_key(db, v, i, 1);
	uint64_t pv;
	ck_assert_int_eq(sett_pin(db, "old", 0, &pv), 0);
	for (uint32_t i = 0; i < n; i++)
		put_key(db, v, i, 2);
	/* garbage no pin sees, in the same file */
	for (uint32_t j = 0; j < 160; j++) {
		char k[32];
		snprintf(k, sizeof k, "junk%06u", j);
		memset(v, (int)j, VAL);
		ck_assert_int_eq(sett_put(db, sv(k), (sett_val){ VAL, v }), 0);
		ck_assert_int_eq(sett_del(db, sv(k)), 0);
	}
	uint64_t before = tu_dir_bytes(dir);
	ck_assert_uint_gt(before, 160u * VAL);
	compact_and_gc(db);
	compact_and_gc(db);
	uint64_t after = tu_dir_bytes(dir);
	ck_assert_msg(after < before - 120u * VAL,
		      "GC left the file a pin holds a little of: %llu bytes before, %llu after",
		      (unsigned long long)before, (unsigned long long)after);
	for (int reopen = 0; reopen < 2; reopen++) {
		for (uint32_t i = 0; i < n; i++) {
			check_key(db, v, i, 1, pv);
			check_key(db, v, i, 2, 0);
		}
		ck_assert_int_eq(sett_verify(db, NULL, NULL), 0);
		ck_assert_int_eq(sett_close(db), 0);
		ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	}
	/* and once released, the moved copies go too */
	ck_assert_int_eq(sett_unpin(db, "old"), 0);
	compact_and_gc(db);
	compact_and_gc(db);
	uint64_t held;
	ck_assert_int_eq(sett_pin_space(db, &held), 0);
	ck_assert_uint_eq(held, 0);
	for (uint32_t i = 0; i < n; i++)
		check_key(db, v, i, 2, 0);
	ck_assert_uint_lt(tu_dir_bytes(dir), after);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

static sett_db *flat_db;
static void *flatten_main(void *arg)
{
	(void)arg;
	sett_flatten(flat_db);
	return NULL;
}

/*
 * A deleted key's value that GC moved for a pin must stay deleted when the
 * pin goes, also when a compaction that drops the tombstone at the bottom
 * runs while the moved copy sits above it (a flatten racing GC and the
 * unpin, at a few timings).
 */
START_TEST(test_pin_moved_value_stays_hidden)
{
	static const int delays_us[] = { 2000, 10000, 30000 };
	for (size_t t = 0; t < sizeof delays_us / sizeof *delays_us; t++) {
		char *dir = tu_tmpdir("pin-hide");
		sett_options o;
		tu_small_options(&o, 1u << 16);
		sett_db *db;
		ck_assert_int_eq(sett_open(dir, &o, &db), 0);
		uint8_t *v = malloc(4096);
		memset(v, 'K', 4096);
		ck_assert_int_eq(sett_put(db, sv("zzz"), (sett_val){ 4096, v }), 0);
		uint64_t pv;
		ck_assert_int_eq(sett_pin(db, "p", 0, &pv), 0);
		ck_assert_int_eq(sett_del(db, sv("zzz")), 0);
		for (int j = 0; j < 40; j++) {
			char k[32];
			snprintf(k, sizeof k, "junk%04d", j);
			memset(v, j, 4096);
			ck_assert_int_eq(sett_put(db, sv(k), (sett_val){ 4096, v }), 0);
			ck_assert_int_eq(sett_del(db, sv(k)), 0);
		}
		char small[100];
		memset(small, 's', sizeof small);
		for (int i = 0; i < 30000; i++) {
			char k[32];
			snprintf(k, sizeof k, "f%08d", i);
			ck_assert_int_eq(sett_put(db, sv(k), (sett_val){ sizeof small, small }), 0);
		}
		ck_assert_int_eq(sett_flatten(db), 0);
		flat_db = db;
		pthread_t th;
		ck_assert_int_eq(pthread_create(&th, NULL, flatten_main, NULL), 0);
		usleep((useconds_t)delays_us[t]);
		for (int i = 0; i < 20 && sett_gc(db, 0.01) == 0; i++)
			;
		void *g = NULL;
		size_t gn = 0;
		ck_assert_int_eq(sett_get(db, sv("zzz"), pv, &g, &gn), 0); /* the pin reads it */
		ck_assert_uint_eq(gn, 4096);
		free(g);
		ck_assert_int_eq(sett_unpin(db, "p"), 0);
		pthread_join(th, NULL);
		for (int round = 0; round < 3; round++) {
			g = NULL;
			ck_assert_msg(sett_get(db, sv("zzz"), 0, &g, &gn) == SETT_ENOTFOUND,
				      "delay %d us, round %d: the deleted key is back", delays_us[t], round);
			if (round == 0)
				ck_assert_int_eq(sett_flatten(db), 0);
			if (round == 1) {
				ck_assert_int_eq(sett_close(db), 0);
				ck_assert_int_eq(sett_open(dir, &o, &db), 0);
			}
		}
		ck_assert_int_eq(sett_close(db), 0);
		free(v);
		tu_rmrf(dir);
		free(dir);
	}
}
END_TEST

/*
 * Two pins on either side of a delete: the tombstone that hides the older
 * value from the newer pin survives a bottom-level compaction.
 */
START_TEST(test_pin_keeps_tombstone)
{
	char *dir = tu_tmpdir("pin-tomb");
	sett_options o;
	tu_small_options(&o, 2u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint64_t a, b;
	ck_assert_int_eq(sett_put(db, sv("k"), sv("one")), 0);
	ck_assert_int_eq(sett_pin(db, "a", 0, &a), 0);
	ck_assert_int_eq(sett_del(db, sv("k")), 0);
	ck_assert_int_eq(sett_pin(db, "b", 0, &b), 0);
	ck_assert_int_eq(sett_put(db, sv("k"), sv("three")), 0);
	ck_assert_int_eq(sett_put(db, sv("k"), sv("four")), 0);
	for (int pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(sett_flatten(db), 0);
		void *got;
		size_t n;
		ck_assert_int_eq(sett_get(db, sv("k"), a, &got, &n), 0);
		ck_assert(n == 3 && memcmp(got, "one", 3) == 0);
		free(got);
		ck_assert_int_eq(sett_get(db, sv("k"), b, &got, &n), SETT_ENOTFOUND);
		ck_assert_int_eq(sett_get(db, sv("k"), 0, &got, &n), 0);
		ck_assert(n == 4 && memcmp(got, "four", 4) == 0);
		free(got);
		ck_assert_int_eq(sett_close(db), 0);
		ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	}
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Versions are never reused: when compaction has dropped the newest
 * entries (deleted keys at the last level), a reopen still continues
 * after the newest version ever used, so a write after it never shows at
 * a pin (or any read version) taken before it.
 */
START_TEST(test_pin_versions_not_reused)
{
	char *dir = tu_tmpdir("pin-reuse");
	sett_options o;
	tu_small_options(&o, 2u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_put(db, sv("k"), sv("one")), 0);
	ck_assert_int_eq(sett_put(db, sv("j"), sv("two")), 0);
	ck_assert_int_eq(sett_del(db, sv("k")), 0);
	ck_assert_int_eq(sett_del(db, sv("j")), 0);
	uint64_t p;
	ck_assert_int_eq(sett_pin(db, "p", 0, &p), 0);
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_uint_ge(sett_current_version(db), p);
	ck_assert_int_eq(sett_put(db, sv("new"), sv("three")), 0);
	ck_assert_uint_gt(sett_current_version(db), p);
	void *got;
	size_t n;
	ck_assert_int_eq(sett_get(db, sv("new"), p, &got, &n), SETT_ENOTFOUND);
	/* with no pin either: the version after a reopen only grows */
	ck_assert_int_eq(sett_unpin(db, "p"), 0);
	ck_assert_int_eq(sett_del(db, sv("new")), 0);
	uint64_t before = sett_current_version(db);
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_uint_ge(sett_current_version(db), before);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Model-based: random puts, deletes (small and value-log values), pins,
 * unpins, flushes and compactions (sett_flatten), value-log GC, reopens
 * and an iterator held open across them; every pinned version, the held
 * iterator's version and the current version read as the model says.
 * SETT_PIN_MODEL_STEPS and SETT_PIN_MODEL_SEED widen the run.
 */
#define MK 12          /* keys */
#define MH 4096        /* history entries per key, at most */
#define MPINS 6
typedef struct { uint64_t ver; int32_t val; } mentry; /* val < 0: deleted */
typedef struct {
	mentry h[MK][MH];
	size_t nh[MK];
	uint64_t pin[MPINS];
	int pinned[MPINS];
} pmodel;

static int model_at(const pmodel *m, int k, uint64_t rv)
{
	int v = -1;
	for (size_t i = 0; i < m->nh[k] && m->h[k][i].ver <= rv; i++)
		v = m->h[k][i].val;
	return v;
}

static size_t model_value(uint8_t *v, int k, int32_t val)
{
	uint64_t s = ((uint64_t)(uint32_t)val << 8) ^ (uint64_t)k ^ 99;
	size_t n = val % 3 ? 30 : 3000;
	tu_fill_random(&s, v, n);
	return n;
}

static void model_check_get(sett_db *db, const pmodel *m, uint8_t *v, uint64_t rv, uint64_t mv)
{
	for (int k = 0; k < MK; k++) {
		char key[16];
		snprintf(key, sizeof key, "m%02d", k);
		void *got = NULL;
		size_t n = 0;
		int r = sett_get(db, sv(key), rv, &got, &n);
		int want = model_at(m, k, mv);
		if (want < 0) {
			ck_assert_msg(r == SETT_ENOTFOUND, "%s at %llu: expected absent, got %d (len %zu)",
				      key, (unsigned long long)mv, r, n);
			continue;
		}
		ck_assert_msg(r == 0, "%s at %llu: %s", key, (unsigned long long)mv, sett_strerror(r));
		size_t wn = model_value(v, k, want);
		ck_assert_msg(n == wn && memcmp(got, v, n) == 0, "%s at %llu: wrong value", key,
			      (unsigned long long)mv);
		free(got);
	}
}

static void model_check_iter(sett_iter *it, const pmodel *m, uint8_t *v, uint64_t mv)
{
	int k = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		while (k < MK && model_at(m, k, mv) < 0)
			k++;
		ck_assert_msg(k < MK, "iterator at %llu: an extra key", (unsigned long long)mv);
		char key[16];
		snprintf(key, sizeof key, "m%02d", k);
		sett_val kk = sett_iter_key(it);
		ck_assert_msg(kk.size == strlen(key) && memcmp(kk.data, key, kk.size) == 0,
			      "iterator at %llu: expected %s", (unsigned long long)mv, key);
		sett_val got;
		ck_assert_int_eq(sett_iter_value(it, &got), 0);
		size_t wn = model_value(v, k, model_at(m, k, mv));
		ck_assert_msg(got.size == wn && memcmp(got.data, v, wn) == 0,
			      "iterator at %llu: %s wrong value", (unsigned long long)mv, key);
		k++;
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	while (k < MK && model_at(m, k, mv) < 0)
		k++;
	ck_assert_msg(k == MK, "iterator at %llu: missing key m%02d", (unsigned long long)mv, k);
}

START_TEST(test_pin_model)
{
	char *dir = tu_tmpdir("pin-model");
	sett_options o;
	tu_small_options(&o, 2u << 20);
	o.mem_table_size = 64u << 10;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	pmodel *m = calloc(1, sizeof *m);
	uint8_t *v = malloc(4096);
	const char *e = getenv("SETT_PIN_MODEL_STEPS");
	int steps = e ? atoi(e) : 1500;
	e = getenv("SETT_PIN_MODEL_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : 12345;
	sett_iter *held = NULL;
	uint64_t held_v = 0;
	int32_t nextval = 1;
	for (int step = 0; step < steps; step++) {
		uint64_t x = tu_rand(&seed) % 100;
		int k = (int)(tu_rand(&seed) % MK);
		char key[16];
		snprintf(key, sizeof key, "m%02d", k);
		if (x < 65) {
			int del = x >= 45;
			int32_t val = nextval++;
			if (del)
				ck_assert_int_eq(sett_del(db, sv(key)), 0);
			else {
				size_t n = model_value(v, k, val);
				ck_assert_int_eq(sett_put(db, sv(key), (sett_val){ n, v }), 0);
			}
			ck_assert_uint_lt(m->nh[k], MH);
			uint64_t ver = sett_current_version(db);
			ck_assert(m->nh[k] == 0 || m->h[k][m->nh[k] - 1].ver < ver);
			m->h[k][m->nh[k]++] = (mentry){ ver, del ? -1 : val };
		} else if (x < 72 && sett_current_version(db)) { /* a read at 0 is a current read */
			int i = (int)(tu_rand(&seed) % MPINS);
			char name[16];
			snprintf(name, sizeof name, "p%d", i);
			if (m->pinned[i])
				ck_assert_int_eq(sett_unpin(db, name), 0);
			else
				ck_assert_int_eq(sett_pin(db, name, 0, &m->pin[i]), 0);
			m->pinned[i] = !m->pinned[i];
		} else if (x < 80) {
			ck_assert_int_eq(sett_flatten(db), 0);
		} else if (x < 84) {
			int r = sett_gc(db, 0.01);
			ck_assert_msg(r == 0 || r == SETT_ENOREWRITE, "gc: %s", sett_strerror(r));
		} else if (x < 87) {
			if (held) {
				model_check_iter(held, m, v, held_v);
				sett_iter_free(held);
				held = NULL;
			}
			ck_assert_int_eq(sett_close(db), 0);
			ck_assert_int_eq(sett_open(dir, &o, &db), 0);
		} else if (x < 91) {
			if (held) {
				model_check_iter(held, m, v, held_v);
				sett_iter_free(held);
				held = NULL;
			} else {
				sett_iter_options io;
				sett_iter_options_init(&io);
				ck_assert_int_eq(sett_iter_new(db, &io, &held), 0);
				held_v = sett_current_version(db);
			}
		} else {
			model_check_get(db, m, v, 0, UINT64_MAX);
			for (int i = 0; i < MPINS; i++)
				if (m->pinned[i])
					model_check_get(db, m, v, m->pin[i], m->pin[i]);
		}
	}
	if (held) {
		model_check_iter(held, m, v, held_v);
		sett_iter_free(held);
	}
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	model_check_get(db, m, v, 0, UINT64_MAX);
	for (int i = 0; i < MPINS; i++)
		if (m->pinned[i])
			model_check_get(db, m, v, m->pin[i], m->pin[i]);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	free(m);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_pin_api)
{
	char *dir = tu_tmpdir("pin-api");
	sett_options o;
	tu_small_options(&o, 2u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_put(db, sv("k"), sv("v")), 0);
	uint64_t cur = sett_current_version(db), got;
	ck_assert_int_eq(sett_pin(db, "", 0, NULL), -EINVAL);
	ck_assert_int_eq(sett_pin(db, "later", cur + 1, NULL), -EINVAL);
	ck_assert_int_eq(sett_pin(db, "zeta", cur, &got), 0);
	ck_assert_uint_eq(got, cur);
	ck_assert_int_eq(sett_pin(db, "zeta", 0, NULL), -EEXIST);
	ck_assert_int_eq(sett_pin(db, "alpha", 0, NULL), 0);
	ck_assert_int_eq(sett_unpin(db, "nope"), SETT_ENOTFOUND);
	sett_pin_info pi[4];
	ck_assert_int_eq(sett_pins(db, pi, 4), 2);
	ck_assert_str_eq(pi[0].name, "alpha");
	ck_assert_str_eq(pi[1].name, "zeta");
	ck_assert_int_eq(sett_unpin(db, "alpha"), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_pins(db, pi, 4), 1);
	ck_assert_str_eq(pi[0].name, "zeta");
	ck_assert_uint_eq(pi[0].version, cur);
	ck_assert_int_eq(sett_close(db), 0);
	/* a read-only open sees the pins and refuses to change them */
	o.read_only = 1;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_pins(db, pi, 4), 1);
	ck_assert_int_eq(sett_pin(db, "x", 0, NULL), -EROFS);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

static uint32_t header_version(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/MANIFEST", dir);
	FILE *f = fopen(p, "rb");
	ck_assert(f != NULL);
	uint8_t h[16];
	ck_assert_uint_eq(fread(h, 1, 16, f), 16);
	fclose(f);
	return (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 |
	       (uint32_t)h[11] << 24;
}

/* Marks in the MANIFEST: version 2 from the first one, kept by a rewrite. */
START_TEST(test_pin_survives_manifest_rewrite)
{
	char *dir = tu_tmpdir("pin-manifest");
	ck_assert_int_eq(manifest_create(dir), 0);
	manifest *m;
	manifest_table *t;
	size_t nt;
	char why[512];
	ck_assert_int_eq(manifest_open(dir, 0, &m, &t, &nt, why, sizeof why), 0);
	free(t);
	ck_assert_uint_eq(header_version(dir), 1);
	manifest_change c = { .op = MANIFEST_CREATE, .id = 1 };
	ck_assert_int_eq(manifest_apply(m, &c, 1), 0);
	ck_assert_uint_eq(header_version(dir), 1);
	manifest_change pin = { .op = MANIFEST_PIN, .id = 42, .name = "daily", .name_len = 5 };
	ck_assert_int_eq(manifest_apply(m, &pin, 1), 0);
	ck_assert_uint_eq(header_version(dir), 2);
	ck_assert_int_eq(manifest_apply(m, &pin, 1), -EINVAL); /* taken */
	manifest_change pin2 = { .op = MANIFEST_PIN, .id = 50, .name = "hourly", .name_len = 6 };
	ck_assert_int_eq(manifest_apply(m, &pin2, 1), 0);
	/* enough creates and deletes to force rewrites */
	for (uint64_t id = 2; id < 1100; id++) {
		manifest_change cd[2] = { { .op = MANIFEST_CREATE, .id = id },
					  { .op = MANIFEST_DELETE, .id = id } };
		ck_assert_int_eq(manifest_apply(m, cd, 2), 0);
	}
	manifest_change un = { .op = MANIFEST_UNPIN, .name = "hourly", .name_len = 6 };
	ck_assert_int_eq(manifest_apply(m, &un, 1), 0);
	ck_assert_int_eq(manifest_close(m), 0);
	char p[4096];
	snprintf(p, sizeof p, "%s/MANIFEST", dir);
	ck_assert_msg(tu_file_size(p) < 1100 * 30, "the MANIFEST was not rewritten");
	ck_assert_int_eq(manifest_open(dir, 1, &m, &t, &nt, why, sizeof why), 0);
	ck_assert_uint_eq(nt, 1);
	free(t);
	manifest_mark *mk;
	size_t nm;
	ck_assert_int_eq(manifest_marks(m, &mk, &nm), 0);
	ck_assert_uint_eq(nm, 1);
	ck_assert_uint_eq(mk[0].kind, MANIFEST_MARK_PIN);
	ck_assert_uint_eq(mk[0].version, 42);
	ck_assert_str_eq((char *)mk[0].name, "daily");
	manifest_marks_free(mk, nm);
	ck_assert_int_eq(manifest_close(m), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Flips a payload byte of the MANIFEST's record number `rec` (0 = first). */
static void damage_manifest_record(const char *dir, int rec)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/MANIFEST", dir);
	FILE *f = fopen(p, "r+b");
	ck_assert(f != NULL);
	long off = 16;
	for (int i = 0;; i++) {
		uint8_t h[4];
		ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
		ck_assert_uint_eq(fread(h, 1, 4, f), 4);
		uint32_t plen = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
				(uint32_t)h[3] << 24;
		if (i == rec) {
			uint8_t b;
			ck_assert_int_eq(fseek(f, off + 12 + 4, SEEK_SET), 0);
			ck_assert_uint_eq(fread(&b, 1, 1, f), 1);
			b ^= 0x40;
			ck_assert_int_eq(fseek(f, off + 12 + 4, SEEK_SET), 0);
			ck_assert_uint_eq(fwrite(&b, 1, 1, f), 1);
			break;
		}
		off += 12 + (long)plen;
	}
	fclose(f);
}

/*
 * sett_repair keeps what the old MANIFEST's intact records say beside the
 * tables: a pin still reads as it was (and compaction and GC after the
 * repair keep it so), a prefix drop not carried out yet still hides its
 * keys, and the version high-water mark keeps versions from being used
 * again.  One record in the middle is damaged: the ones after it count.
 */
START_TEST(test_pin_survives_repair)
{
	char *dir = tu_tmpdir("pin-repair");
	sett_options o;
	tu_small_options(&o, 2u << 20);
	o.num_compactors = 0; /* the drop stays pending */
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	for (uint32_t i = 0; i < NKEYS; i++)
		put_key(db, v, i, 1);
	for (uint32_t i = 0; i < NKEYS; i += 5)
		del_key(db, i);
	uint64_t pv;
	ck_assert_int_eq(sett_pin(db, "snap", 0, &pv), 0); /* rewrites the MANIFEST */
	for (uint32_t i = 0; i < NKEYS; i++)
		put_key(db, v, i, 2);
	ck_assert_int_eq(sett_flush(db), 0); /* record 1: its table */
	ck_assert_int_eq(sett_put(db, sv("drop/a"), sv("x")), 0);
	ck_assert_int_eq(sett_put(db, sv("drop/b"), sv("y")), 0);
	ck_assert_int_eq(sett_put(db, sv("zz"), sv("z")), 0); /* not all of its table is dropped */
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_drop_prefix(db, sv("drop/")), 0);
	for (uint32_t i = 1; i < NKEYS; i += 3)
		del_key(db, i);
	uint64_t before = sett_current_version(db);
	ck_assert_int_eq(sett_close(db), 0);
	damage_manifest_record(dir, 1);
	ck_assert_int_ne(sett_open(dir, &o, &db), 0);

	ck_assert_int_eq(sett_repair(dir, &o, NULL, NULL), 0);
	o.num_compactors = 1;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_uint_ge(sett_current_version(db), before);
	sett_pin_info pi[2];
	ck_assert_int_eq(sett_pins(db, pi, 2), 1);
	ck_assert_str_eq(pi[0].name, "snap");
	ck_assert_uint_eq(pi[0].version, pv);
	check_pinned(db, v, pv);
	void *got;
	size_t n;
	ck_assert_int_eq(sett_get(db, sv("drop/a"), 0, &got, &n), SETT_ENOTFOUND);
	ck_assert_int_eq(sett_get(db, sv("drop/b"), 0, &got, &n), SETT_ENOTFOUND);
	ck_assert_int_eq(sett_get(db, sv("zz"), 0, &got, &n), 0);
	free(got);
	for (uint32_t i = 0; i < NKEYS; i++)
		check_key(db, v, i, i % 3 == 1 ? 0 : 2, 0);
	compact_and_gc(db);
	check_pinned(db, v, pv);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	check_pinned(db, v, pv);
	for (uint32_t i = 0; i < NKEYS; i++)
		check_key(db, v, i, i % 3 == 1 ? 0 : 2, 0);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * With a MANIFEST that does not read at all, the version after a repair
 * starts above the newest version any file holds: here a value-log entry
 * whose key compaction has dropped from every table.
 */
START_TEST(test_repair_version_from_files)
{
	char *dir = tu_tmpdir("pin-repair-ver");
	sett_options o;
	tu_small_options(&o, 2u << 20);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t *v = malloc(VAL);
	ck_assert_int_eq(sett_put(db, sv("keep"), sv("k")), 0);
	put_key(db, v, 0, 1); /* even: into the value log */
	uint64_t in_vlog = sett_current_version(db);
	del_key(db, 0);
	ck_assert_int_eq(sett_flatten(db), 0); /* key 0 leaves the tables */
	ck_assert_int_eq(sett_close(db), 0);
	char p[4096];
	snprintf(p, sizeof p, "%s/MANIFEST", dir);
	FILE *f = fopen(p, "r+b");
	ck_assert(f != NULL);
	ck_assert_uint_eq(fwrite("XXXX", 1, 4, f), 4); /* the magic */
	fclose(f);
	ck_assert_int_eq(sett_repair(dir, &o, NULL, NULL), 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_uint_ge(sett_current_version(db), in_vlog);
	void *got;
	size_t n;
	ck_assert_int_eq(sett_get(db, sv("keep"), 0, &got, &n), 0);
	free(got);
	ck_assert_int_eq(sett_close(db), 0);
	free(v);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pin");
	TCase *tc = tcase_create("pin");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_pin_api);
	tcase_add_test(tc, test_pin_keeps_tombstone);
	tcase_add_test(tc, test_pin_versions_not_reused);
	tcase_add_test(tc, test_pin_model);
	tcase_add_test(tc, test_pin_survives_manifest_rewrite);
	tcase_add_test(tc, test_pin_survives_churn);
	tcase_add_test(tc, test_pin_gc_moves_pinned_values);
	tcase_add_test(tc, test_pin_moved_value_stays_hidden);
	tcase_add_test(tc, test_pin_survives_repair);
	tcase_add_test(tc, test_repair_version_from_files);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
