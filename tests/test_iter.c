/* test_iter.c - the merge iterator against a model, over array-backed children. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ikey.h"
#include "iter.h"
#include "testutil.h"

/*
 * A passing ck_assert reports its location to the parent process (a
 * syscall); the hot paths below use this cheaper form.
 */
#define CHECK(cond, ...)                              \
	do {                                          \
		if (!(cond))                          \
			ck_abort_msg(__VA_ARGS__);    \
	} while (0)

/* ---- a sorted array as an internal iterator (test only) ---- */

typedef struct ent {
	uint8_t k[16];
	size_t kn;
	char v[16]; /* "c<child>:<n>": says which child supplied it */
	size_t vn;
} ent;

typedef struct arr_iter {
	sit base;
	const ent *e; /* sorted, unique ikeys; owned */
	long n, pos;  /* pos in [-1, n]; valid when 0 <= pos < n */
	long moves_until_error; /* < 0: never */
	int err;
	int *freed;
} arr_iter;

static int ent_cmp(const ent *a, const ent *b)
{
	return ikey_cmp(slice_make(a->k, a->kn), slice_make(b->k, b->kn));
}

static int ent_cmp_q(const void *a, const void *b)
{
	return ent_cmp(a, b);
}

/* Orders by ikey, then by the child number in the value ("c<child>:<n>"). */
static int ent_child_cmp_q(const void *a, const void *b)
{
	const ent *x = a, *y = b;
	int c = ent_cmp(x, y);
	if (c)
		return c;
	return atoi(x->v + 1) - atoi(y->v + 1);
}

static void ai_moved(arr_iter *a)
{
	if (a->moves_until_error >= 0 && a->moves_until_error-- == 0)
		a->err = -EIO;
	if (a->err)
		a->pos = -1;
}

static long lower_bound(const ent *e, long n, slice k)
{
	long lo = 0, hi = n;
	while (lo < hi) {
		long mid = lo + (hi - lo) / 2;
		if (ikey_cmp(slice_make(e[mid].k, e[mid].kn), k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static long ai_lower_bound(const arr_iter *a, slice k)
{
	return lower_bound(a->e, a->n, k);
}

static void ai_seek(sit *it, slice k)
{
	arr_iter *a = (arr_iter *)it;
	a->pos = ai_lower_bound(a, k);
	ai_moved(a);
}

static void ai_seek_for_prev(sit *it, slice k)
{
	arr_iter *a = (arr_iter *)it;
	long i = ai_lower_bound(a, k);
	if (i < a->n && ikey_cmp(slice_make(a->e[i].k, a->e[i].kn), k) == 0)
		a->pos = i;
	else
		a->pos = i - 1;
	ai_moved(a);
}

static void ai_first(sit *it)
{
	arr_iter *a = (arr_iter *)it;
	a->pos = 0;
	ai_moved(a);
}

static void ai_last(sit *it)
{
	arr_iter *a = (arr_iter *)it;
	a->pos = a->n - 1;
	ai_moved(a);
}

static void ai_next(sit *it)
{
	arr_iter *a = (arr_iter *)it;
	CHECK(a->pos >= 0 && a->pos < a->n, "next on an invalid child");
	a->pos++;
	ai_moved(a);
}

static void ai_prev(sit *it)
{
	arr_iter *a = (arr_iter *)it;
	CHECK(a->pos >= 0 && a->pos < a->n, "prev on an invalid child");
	a->pos--;
	ai_moved(a);
}

static int ai_valid(const sit *it)
{
	const arr_iter *a = (const arr_iter *)it;
	return a->pos >= 0 && a->pos < a->n;
}

static slice ai_key(const sit *it)
{
	const arr_iter *a = (const arr_iter *)it;
	CHECK(ai_valid(it), "key or value of an invalid child");
	return slice_make(a->e[a->pos].k, a->e[a->pos].kn);
}

static slice ai_value(const sit *it)
{
	const arr_iter *a = (const arr_iter *)it;
	CHECK(ai_valid(it), "key or value of an invalid child");
	return slice_make(a->e[a->pos].v, a->e[a->pos].vn);
}

static int ai_error(const sit *it)
{
	return ((const arr_iter *)it)->err;
}

static void ai_free(sit *it)
{
	arr_iter *a = (arr_iter *)it;
	if (a->freed)
		(*a->freed)++;
	free((void *)a->e);
	free(a);
}

static const struct sit_ops arr_ops = {
	.seek = ai_seek, .seek_for_prev = ai_seek_for_prev, .first = ai_first, .last = ai_last,
	.next = ai_next, .prev = ai_prev, .valid = ai_valid, .key = ai_key,
	.value = ai_value, .error = ai_error, .free = ai_free,
};

/* Takes ownership of e (sorted, unique). */
static arr_iter *arr_iter_new(ent *e, long n)
{
	arr_iter *a = calloc(1, sizeof *a);
	a->base.ops = &arr_ops;
	a->e = e;
	a->n = n;
	a->pos = -1;
	a->moves_until_error = -1;
	return a;
}

/* ---- random data ---- */

static void rand_ikey(uint64_t *rs, ent *e, int alphabet, int maxlen, int versions)
{
	char uk[8];
	size_t ul = tu_rand(rs) % (uint64_t)(maxlen + 1);
	for (size_t j = 0; j < ul; j++)
		uk[j] = (char)('a' + tu_rand(rs) % (uint64_t)alphabet);
	ikey_make(e->k, uk, ul, tu_rand(rs) % (uint64_t)versions);
	e->kn = ul + IKEY_SUFFIX;
}

/* Sorts and removes duplicate ikeys; returns the new length. */
static long sort_unique(ent *e, long n)
{
	qsort(e, (size_t)n, sizeof *e, ent_cmp_q);
	long m = 0;
	for (long i = 0; i < n; i++)
		if (m == 0 || ent_cmp(&e[m - 1], &e[i]) != 0)
			e[m++] = e[i];
	return m;
}

typedef struct world {
	int nchild;
	sit *merge;
	ent *model; /* what the merge must yield, in order */
	long n;
} world;

/*
 * nchild children of random sizes over a small key space, so the same ikey
 * often appears in several children.  The model keeps, for each ikey, the
 * entry of the lowest-numbered child, or with `all` every child's entry,
 * lowest-numbered child first (merge_iter_new_all).
 */
static void world_make(world *w, uint64_t *rs, int nchild, int all)
{
	sit *ch[32];
	w->nchild = nchild;
	w->model = malloc(sizeof(ent) * 4096);
	w->n = 0;
	for (int c = 0; c < nchild; c++) {
		long n = (long)(tu_rand(rs) % 120);
		if (tu_rand(rs) % 5 == 0)
			n = 0;
		ent *e = calloc((size_t)n + 1, sizeof *e);
		for (long i = 0; i < n; i++)
			rand_ikey(rs, &e[i], 3, 3, 6);
		n = sort_unique(e, n);
		for (long i = 0; i < n; i++) {
			e[i].vn = (size_t)snprintf(e[i].v, sizeof e[i].v, "c%d:%ld", c, i);
			w->model[w->n++] = e[i];
		}
		ch[c] = &arr_iter_new(e, n)->base;
	}
	/* Keep the lowest child's copy of each ikey: sort by (ikey, child), take the first. */
	qsort(w->model, (size_t)w->n, sizeof(ent), ent_child_cmp_q);
	long m = 0;
	for (long i = 0; i < w->n; i++)
		if (all || m == 0 || ent_cmp(&w->model[m - 1], &w->model[i]) != 0)
			w->model[m++] = w->model[i];
	w->n = m;
	w->merge = all ? merge_iter_new_all(ch, nchild) : merge_iter_new(ch, nchild);
}

static void world_free(world *w)
{
	sit_free(w->merge);
	free(w->model);
}

static void check_at(const world *w, long i)
{
	if (i < 0 || i >= w->n) {
		CHECK(!sit_valid(w->merge), "merge valid at model index %ld of %ld", i, w->n);
		return;
	}
	CHECK(sit_valid(w->merge), "merge invalid at model index %ld of %ld", i, w->n);
	slice k = sit_key(w->merge), v = sit_value(w->merge);
	const ent *e = &w->model[i];
	CHECK(ikey_cmp(k, slice_make(e->k, e->kn)) == 0, "wrong key at model index %ld", i);
	CHECK(v.n == e->vn && memcmp(v.p, e->v, v.n) == 0,
	      "value %.*s, expected %.*s (newest child must win)", (int)v.n, v.p, (int)e->vn,
	      e->v);
}

/* Model positions for seek (first >= t) and seek_for_prev (last <= t). */
static long model_ge(const world *w, const ent *t)
{
	return lower_bound(w->model, w->n, slice_make(t->k, t->kn));
}

static long model_le(const world *w, const ent *t)
{
	long i = model_ge(w, t);
	return i < w->n && ent_cmp(&w->model[i], t) == 0 ? i : i - 1;
}

/* ---- tests ---- */

START_TEST(test_full_scans)
{
	uint64_t rs = 7;
	for (int round = 0; round < 200; round++) {
		world w;
		world_make(&w, &rs, 1 + (int)(tu_rand(&rs) % 20), 0);
		long i = 0;
		for (sit_first(w.merge); sit_valid(w.merge); sit_next(w.merge))
			check_at(&w, i++);
		ck_assert_int_eq(i, w.n);
		i = w.n - 1;
		for (sit_last(w.merge); sit_valid(w.merge); sit_prev(w.merge))
			check_at(&w, i--);
		ck_assert_int_eq(i, -1);
		ck_assert_int_eq(sit_error(w.merge), 0);
		world_free(&w);
	}
}
END_TEST

START_TEST(test_seeks_and_direction_changes)
{
	uint64_t rs = 99;
	for (int round = 0; round < 300; round++) {
		world w;
		world_make(&w, &rs, 1 + (int)(tu_rand(&rs) % 20), 0);
		long i = -1;
		for (int op = 0; op < 300; op++) {
			int what = (int)(tu_rand(&rs) % 10);
			ent t;
			if (what == 0) {
				sit_first(w.merge);
				i = 0;
			} else if (what == 1) {
				sit_last(w.merge);
				i = w.n - 1;
			} else if (what == 2) {
				/* Targets from a larger space: absent keys, past both ends. */
				rand_ikey(&rs, &t, 4, 4, 7);
				sit_seek(w.merge, slice_make(t.k, t.kn));
				i = model_ge(&w, &t);
			} else if (what == 3) {
				rand_ikey(&rs, &t, 4, 4, 7);
				sit_seek_for_prev(w.merge, slice_make(t.k, t.kn));
				i = model_le(&w, &t);
			} else if (i >= 0 && i < w.n) {
				if (what & 1) {
					sit_next(w.merge);
					i++;
				} else {
					sit_prev(w.merge);
					i--;
				}
			} else {
				continue;
			}
			check_at(&w, i);
		}
		world_free(&w);
	}
}
END_TEST

/* merge_iter_new_all: forward scans and seeks return every child's entry. */
START_TEST(test_all_entries)
{
	uint64_t rs = 11;
	for (int round = 0; round < 200; round++) {
		world w;
		world_make(&w, &rs, 1 + (int)(tu_rand(&rs) % 20), 1);
		long i = 0;
		for (sit_first(w.merge); sit_valid(w.merge); sit_next(w.merge))
			check_at(&w, i++);
		ck_assert_int_eq(i, w.n);
		for (int s = 0; s < 20; s++) {
			ent t;
			rand_ikey(&rs, &t, 3, 3, 6);
			sit_seek(w.merge, slice_make(t.k, t.kn));
			for (long j = model_ge(&w, &t); j <= w.n; j++) {
				check_at(&w, j);
				if (j < w.n)
					sit_next(w.merge);
			}
		}
		ck_assert_int_eq(sit_error(w.merge), 0);
		world_free(&w);
	}
}
END_TEST

/* Every child holds the same keys: each must come out exactly once. */
START_TEST(test_identical_children)
{
	enum { NC = 6, NK = 50 };
	sit *ch[NC];
	for (int c = 0; c < NC; c++) {
		ent *e = calloc(NK, sizeof *e);
		for (int i = 0; i < NK; i++) {
			char uk[8];
			snprintf(uk, sizeof uk, "k%03d", i);
			ikey_make(e[i].k, uk, 4, 1);
			e[i].kn = 4 + IKEY_SUFFIX;
			e[i].vn = (size_t)snprintf(e[i].v, sizeof e[i].v, "c%d", c);
		}
		ch[c] = &arr_iter_new(e, NK)->base;
	}
	sit *m = merge_iter_new(ch, NC);
	int n = 0;
	for (sit_first(m); sit_valid(m); sit_next(m)) {
		ck_assert_int_eq(memcmp(sit_value(m).p, "c0", 2), 0);
		n++;
	}
	ck_assert_int_eq(n, NK);
	n = 0;
	for (sit_last(m); sit_valid(m); sit_prev(m))
		n++;
	ck_assert_int_eq(n, NK);
	/* Zig-zag: next, prev, next ... around one key stays on neighbours. */
	sit_first(m);
	sit_next(m);
	for (int j = 0; j < 10; j++) {
		sit_prev(m);
		ck_assert_int_eq(memcmp(ikey_user(sit_key(m)).p, "k000", 4), 0);
		sit_next(m);
		ck_assert_int_eq(memcmp(ikey_user(sit_key(m)).p, "k001", 4), 0);
		ck_assert_int_eq(memcmp(sit_value(m).p, "c0", 2), 0);
	}
	sit_free(m);
}
END_TEST

START_TEST(test_child_error)
{
	uint64_t rs = 5;
	sit *ch[3];
	arr_iter *bad = NULL;
	int freed = 0;
	for (int c = 0; c < 3; c++) {
		ent *e = calloc(40, sizeof *e);
		for (int i = 0; i < 40; i++)
			rand_ikey(&rs, &e[i], 3, 3, 6);
		long n = sort_unique(e, 40);
		arr_iter *a = arr_iter_new(e, n);
		a->freed = &freed;
		if (c == 1)
			bad = a;
		ch[c] = &a->base;
	}
	sit *m = merge_iter_new(ch, 3);
	sit_first(m);
	ck_assert(sit_valid(m));
	ck_assert_int_eq(sit_error(m), 0);
	bad->moves_until_error = 3;
	int steps = 0;
	while (sit_valid(m) && steps < 1000) {
		sit_next(m);
		steps++;
	}
	ck_assert_int_eq(sit_error(m), -EIO);
	ck_assert(!sit_valid(m));
	/* Repositioning keeps reporting the child's error. */
	sit_first(m);
	ck_assert(!sit_valid(m));
	ck_assert_int_eq(sit_error(m), -EIO);
	sit_free(m);
	ck_assert_int_eq(freed, 3);
}
END_TEST

START_TEST(test_degenerate)
{
	sit *m = merge_iter_new(NULL, 0);
	sit_first(m);
	ck_assert(!sit_valid(m));
	ck_assert_int_eq(sit_error(m), 0);
	sit_free(m);

	sit *e = empty_iter_new(-EIO);
	sit_last(e);
	ck_assert(!sit_valid(e));
	ck_assert_int_eq(sit_error(e), -EIO);
	sit_free(e);

	/* One child, and all-empty children. */
	ent *one = calloc(1, sizeof *one);
	ikey_make(one->k, "x", 1, 3);
	one->kn = 9;
	sit *ch[4] = { &arr_iter_new(one, 1)->base };
	m = merge_iter_new(ch, 1);
	sit_last(m);
	ck_assert(sit_valid(m));
	ck_assert_uint_eq(ikey_version(sit_key(m)), 3);
	sit_free(m);
	for (int c = 0; c < 4; c++)
		ch[c] = &arr_iter_new(calloc(1, sizeof(ent)), 0)->base;
	m = merge_iter_new(ch, 4);
	sit_first(m);
	ck_assert(!sit_valid(m));
	sit_last(m);
	ck_assert(!sit_valid(m));
	ck_assert_int_eq(sit_error(m), 0);
	sit_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("iter");
	TCase *tc = tcase_create("merge");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_full_scans);
	tcase_add_test(tc, test_seeks_and_direction_changes);
	tcase_add_test(tc, test_identical_children);
	tcase_add_test(tc, test_all_entries);
	tcase_add_test(tc, test_child_error);
	tcase_add_test(tc, test_degenerate);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
