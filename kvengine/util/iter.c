/*
 * iter.c - the merge iterator and the empty iterator.
 *
 * The merge iterator presents n sorted children as one sorted sequence.  It
 * is the read path's spine: memtables, L0 tables and levels are merged by it,
 * newest source first.  Children may hold the same internal key (a key
 * flushed from a memtable while still in its WAL replay, a table rewritten by
 * compaction while an old iterator still sees the input); the entry of the
 * lowest-numbered (newest) child is returned once and the others are skipped
 * (merge_iter_new_all returns them all, for repair to choose from).
 *
 * Invariant (as in LevelDB's merging iterator): moving forward, every child
 * other than the current one is positioned at a key >= the current key;
 * moving backward, at a key <= it.  Children positioned exactly at the
 * current key are duplicates and move together with the current child.  On a
 * change of direction every other child is first repositioned to the far
 * side of the current key.
 *
 * The smallest/largest child is found by a linear scan: n is small (a few
 * memtables, the L0 tables and one iterator per level, ~20 at most), and a
 * scan over 20 pointers is cheaper than keeping a heap in order.
 */
#include "iter.h"

#include <errno.h>

#include "ikey.h"

/* ---- empty iterator ---- */

typedef struct empty_iter {
	sit base;
	int err;
} empty_iter;

static void ei_pos(sit *it) { (void)it; }
static void ei_seek(sit *it, slice k) { (void)it; (void)k; }
static int ei_valid(const sit *it) { (void)it; return 0; }
static slice ei_none(const sit *it) { (void)it; return slice_make(NULL, 0); }
static int ei_error(const sit *it) { return ((const empty_iter *)it)->err; }
static void ei_free(sit *it) { free(it); }
static void ei_free_static(sit *it) { (void)it; }

static const struct sit_ops empty_ops = {
	.seek = ei_seek, .seek_for_prev = ei_seek, .first = ei_pos, .last = ei_pos,
	.next = ei_pos, .prev = ei_pos, .valid = ei_valid, .key = ei_none,
	.value = ei_none, .error = ei_error, .free = ei_free,
};

/* Returned when even the empty iterator cannot be allocated. */
static const struct sit_ops nomem_ops = {
	.seek = ei_seek, .seek_for_prev = ei_seek, .first = ei_pos, .last = ei_pos,
	.next = ei_pos, .prev = ei_pos, .valid = ei_valid, .key = ei_none,
	.value = ei_none, .error = ei_error, .free = ei_free_static,
};
static empty_iter nomem_iter = { { &nomem_ops }, -ENOMEM };

sit *empty_iter_new(int error)
{
	empty_iter *e = malloc(sizeof *e);
	if (!e)
		return &nomem_iter.base;
	e->base.ops = &empty_ops;
	e->err = error;
	return &e->base;
}

/* ---- merge iterator ---- */

enum { DIR_FORWARD, DIR_BACKWARD };

typedef struct merge_iter {
	sit base;
	int n;
	int cur; /* index of the current child, -1 when not valid */
	int dir;
	int err; /* first child error seen, sticky until repositioned */
	int all; /* forward only: duplicates are returned, not skipped */
	sit **child;
} merge_iter;

/* After any move: record child errors; an error makes the merge invalid. */
static void mi_check_error(merge_iter *m)
{
	m->err = 0;
	for (int i = 0; i < m->n; i++) {
		int e = sit_error(m->child[i]);
		if (e) {
			m->err = e;
			m->cur = -1;
			return;
		}
	}
}

/* Smallest key; ties go to the lowest index (the newest source). */
static void mi_find_smallest(merge_iter *m)
{
	int best = -1;
	slice bk = { NULL, 0 };
	for (int i = 0; i < m->n; i++) {
		sit *c = m->child[i];
		if (!sit_valid(c))
			continue;
		slice k = sit_key(c);
		if (best < 0 || ikey_cmp(k, bk) < 0) {
			best = i;
			bk = k;
		}
	}
	m->cur = best;
	m->dir = DIR_FORWARD;
	mi_check_error(m);
}

/* Largest key; ties go to the lowest index. */
static void mi_find_largest(merge_iter *m)
{
	int best = -1;
	slice bk = { NULL, 0 };
	for (int i = 0; i < m->n; i++) {
		sit *c = m->child[i];
		if (!sit_valid(c))
			continue;
		slice k = sit_key(c);
		if (best < 0 || ikey_cmp(k, bk) > 0) {
			best = i;
			bk = k;
		}
	}
	m->cur = best;
	m->dir = DIR_BACKWARD;
	mi_check_error(m);
}

static void mi_seek(sit *it, slice ikey)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		sit_seek(m->child[i], ikey);
	mi_find_smallest(m);
}

static void mi_seek_for_prev(sit *it, slice ikey)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		sit_seek_for_prev(m->child[i], ikey);
	mi_find_largest(m);
}

static void mi_first(sit *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		sit_first(m->child[i]);
	mi_find_smallest(m);
}

static void mi_last(sit *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		sit_last(m->child[i]);
	mi_find_largest(m);
}

static void mi_next(sit *it)
{
	merge_iter *m = (merge_iter *)it;
	if (m->cur < 0)
		return;
	sit *cur = m->child[m->cur];
	slice key = sit_key(cur); /* valid until cur moves, which is last */

	if (m->dir != DIR_FORWARD) {
		/* Put every other child at its first key > key. */
		for (int i = 0; i < m->n; i++) {
			if (i == m->cur)
				continue;
			sit *c = m->child[i];
			sit_seek(c, key);
			if (sit_valid(c) && ikey_cmp(sit_key(c), key) == 0)
				sit_next(c);
		}
	} else if (!m->all) {
		/* Skip the duplicates of key held by other children. */
		for (int i = 0; i < m->n; i++) {
			sit *c = m->child[i];
			if (i != m->cur && sit_valid(c) && ikey_cmp(sit_key(c), key) == 0)
				sit_next(c);
		}
	}
	sit_next(cur);
	mi_find_smallest(m);
}

static void mi_prev(sit *it)
{
	merge_iter *m = (merge_iter *)it;
	if (m->cur < 0)
		return;
	sit *cur = m->child[m->cur];
	slice key = sit_key(cur);

	if (m->dir != DIR_BACKWARD) {
		/* Put every other child at its last key < key. */
		for (int i = 0; i < m->n; i++) {
			if (i == m->cur)
				continue;
			sit *c = m->child[i];
			sit_seek_for_prev(c, key);
			if (sit_valid(c) && ikey_cmp(sit_key(c), key) == 0)
				sit_prev(c);
		}
	} else {
		for (int i = 0; i < m->n; i++) {
			sit *c = m->child[i];
			if (i != m->cur && sit_valid(c) && ikey_cmp(sit_key(c), key) == 0)
				sit_prev(c);
		}
	}
	sit_prev(cur);
	mi_find_largest(m);
}

static int mi_valid(const sit *it)
{
	return ((const merge_iter *)it)->cur >= 0;
}

static slice mi_key(const sit *it)
{
	const merge_iter *m = (const merge_iter *)it;
	return sit_key(m->child[m->cur]);
}

static slice mi_value(const sit *it)
{
	const merge_iter *m = (const merge_iter *)it;
	return sit_value(m->child[m->cur]);
}

static int mi_error(const sit *it)
{
	return ((const merge_iter *)it)->err;
}

static void mi_free(sit *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		sit_free(m->child[i]);
	free(m->child);
	free(m);
}

static const struct sit_ops merge_ops = {
	.seek = mi_seek,
	.seek_for_prev = mi_seek_for_prev,
	.first = mi_first,
	.last = mi_last,
	.next = mi_next,
	.prev = mi_prev,
	.valid = mi_valid,
	.key = mi_key,
	.value = mi_value,
	.error = mi_error,
	.free = mi_free,
};

static sit *merge_new(sit **children, int n, int all)
{
	if (n == 0)
		return empty_iter_new(0);
	if (n == 1)
		return children[0];
	merge_iter *m = calloc(1, sizeof *m);
	sit **c = malloc((size_t)n * sizeof *c);
	if (!m || !c) {
		free(m);
		free(c);
		for (int i = 0; i < n; i++)
			sit_free(children[i]);
		return empty_iter_new(-ENOMEM);
	}
	memcpy(c, children, (size_t)n * sizeof *c);
	m->base.ops = &merge_ops;
	m->n = n;
	m->cur = -1;
	m->dir = DIR_FORWARD;
	m->all = all;
	m->child = c;
	return &m->base;
}

sit *merge_iter_new(sit **children, int n)
{
	return merge_new(children, n, 0);
}

sit *merge_iter_new_all(sit **children, int n)
{
	return merge_new(children, n, 1);
}
