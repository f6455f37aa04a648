/*
 * db_iter.c - the public iterator (sett_iter) and the internal iterator
 * over a whole view of the store.
 *
 * The internal iterator merges, newest source first: the memtables, the L0
 * tables, and one level iterator per deeper level (its tables do not
 * overlap, so it opens one table at a time).  It yields every version of
 * every key.  sett_iter turns that into what a user sees: for each user key
 * the newest version at the iterator's read version, with deleted and
 * expired keys skipped, optionally limited to a prefix, in either
 * direction (the reverse walk follows LevelDB's DBIter: moving backwards,
 * the newest version of a key is the last one met).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_impl.h"
#include "drop.h"
#include "ikey.h"
#include "txn.h"

/* ---- level iterator: a sorted run of non-overlapping tables ---- */

typedef struct level_iter {
	sit base;
	table **tables; /* referenced by the view's version */
	int n;
	int cur;        /* index of the open table, or -1 */
	sit *it;
	int err;
	table *damaged; /* the level's damaged table (lsm_version.damaged), or NULL */
} level_iter;

/*
 * With a damaged table in the level, the keys between two readable tables
 * (and before the first, after the last) may be in it: a cursor that gets
 * there fails, with the damaged table's error.
 */
static void li_gap(level_iter *li)
{
	sit *it = table_iter_new(li->damaged);
	if (it) {
		sit_first(it);
		li->err = sit_error(it);
		sit_free(it);
	} else {
		li->err = -ENOMEM;
	}
	sit_free(li->it);
	li->it = NULL;
	li->cur = -1;
}

static void li_open(level_iter *li, int i)
{
	if (li->cur == i && li->it)
		return;
	sit_free(li->it);
	li->it = NULL;
	li->cur = -1;
	if (i < 0 || i >= li->n)
		return;
	li->it = table_iter_new(li->tables[i]);
	if (!li->it) {
		li->err = -ENOMEM;
		return;
	}
	li->cur = i;
}

static int li_check(level_iter *li)
{
	if (li->it && sit_error(li->it)) {
		li->err = sit_error(li->it);
		sit_free(li->it);
		li->it = NULL;
		li->cur = -1;
	}
	return li->err;
}

static void li_skip_forward(level_iter *li)
{
	while (li->it && !li_check(li) && !sit_valid(li->it)) {
		if (li->damaged) {
			li_gap(li);
			return;
		}
		if (li->cur + 1 >= li->n) {
			sit_free(li->it);
			li->it = NULL;
			li->cur = -1;
			return;
		}
		li_open(li, li->cur + 1);
		if (li->it)
			sit_first(li->it);
	}
}

static void li_skip_backward(level_iter *li)
{
	while (li->it && !li_check(li) && !sit_valid(li->it)) {
		if (li->damaged) {
			li_gap(li);
			return;
		}
		if (li->cur <= 0) {
			sit_free(li->it);
			li->it = NULL;
			li->cur = -1;
			return;
		}
		li_open(li, li->cur - 1);
		if (li->it)
			sit_last(li->it);
	}
}

static void li_seek(sit *s, slice k)
{
	level_iter *li = (level_iter *)s;
	int lo = 0, hi = li->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (ikey_cmp(table_largest(li->tables[mid]), k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (li->damaged && (lo == li->n || ikey_cmp(k, table_smallest(li->tables[lo])) < 0)) {
		li_gap(li);
		return;
	}
	li_open(li, lo);
	if (li->it)
		sit_seek(li->it, k);
	li_skip_forward(li);
}

static void li_seek_for_prev(sit *s, slice k)
{
	level_iter *li = (level_iter *)s;
	/* Last table whose smallest key <= k. */
	int lo = 0, hi = li->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (ikey_cmp(table_smallest(li->tables[mid]), k) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (li->damaged && (lo == 0 || ikey_cmp(k, table_largest(li->tables[lo - 1])) > 0)) {
		li_gap(li);
		return;
	}
	li_open(li, lo - 1);
	if (li->it)
		sit_seek_for_prev(li->it, k);
	li_skip_backward(li);
}

static void li_first(sit *s)
{
	level_iter *li = (level_iter *)s;
	if (li->damaged) {
		li_gap(li);
		return;
	}
	li_open(li, 0);
	if (li->it)
		sit_first(li->it);
	li_skip_forward(li);
}

static void li_last(sit *s)
{
	level_iter *li = (level_iter *)s;
	if (li->damaged) {
		li_gap(li);
		return;
	}
	li_open(li, li->n - 1);
	if (li->it)
		sit_last(li->it);
	li_skip_backward(li);
}

static void li_next(sit *s)
{
	level_iter *li = (level_iter *)s;
	sit_next(li->it);
	li_skip_forward(li);
}

static void li_prev(sit *s)
{
	level_iter *li = (level_iter *)s;
	sit_prev(li->it);
	li_skip_backward(li);
}

static int li_valid(const sit *s)
{
	const level_iter *li = (const level_iter *)s;
	return !li->err && li->it && sit_valid(li->it);
}

static slice li_key(const sit *s)
{
	return sit_key(((const level_iter *)s)->it);
}

static slice li_value(const sit *s)
{
	return sit_value(((const level_iter *)s)->it);
}

static int li_error(const sit *s)
{
	return ((const level_iter *)s)->err;
}

static void li_free(sit *s)
{
	level_iter *li = (level_iter *)s;
	sit_free(li->it);
	free(li);
}

static const struct sit_ops level_iter_ops = {
	li_seek, li_seek_for_prev, li_first, li_last, li_next, li_prev,
	li_valid, li_key, li_value, li_error, li_free,
};

static sit *level_iter_new(table **tables, int n, table *damaged)
{
	level_iter *li = calloc(1, sizeof *li);
	if (!li)
		return NULL;
	li->base.ops = &level_iter_ops;
	li->tables = tables;
	li->n = n;
	li->cur = -1;
	li->damaged = damaged;
	return &li->base;
}

sit *db_view_iter(sett_db *db, db_view *vw)
{
	(void)db;
	sit *kids[MAX_MEMTABLES + 1 + 64 + MAX_LEVELS];
	int n = 0, cap = (int)(sizeof kids / sizeof kids[0]);
	sit **many = kids;
	int nl0 = vw->v->ntables[0];
	if (vw->nmts + nl0 + MAX_LEVELS > cap) {
		cap = vw->nmts + nl0 + MAX_LEVELS;
		many = malloc((size_t)cap * sizeof *many);
		if (!many)
			return NULL;
	}
	for (int i = 0; i < vw->nmts; i++)
		many[n++] = memtable_iter_new(vw->mts[i]);
	for (int i = 0; i < nl0; i++)
		many[n++] = table_iter_new(vw->v->tables[0][i]);
	for (int l = 1; l < MAX_LEVELS; l++)
		if (vw->v->ntables[l] || vw->v->damaged[l])
			many[n++] = level_iter_new(vw->v->tables[l], vw->v->ntables[l],
						   vw->v->damaged[l]);
	int bad = 0;
	for (int i = 0; i < n; i++)
		bad |= many[i] == NULL;
	sit *m = NULL;
	if (!bad) {
		m = merge_iter_new(many, n);
	} else {
		for (int i = 0; i < n; i++)
			sit_free(many[i]);
	}
	if (many != kids)
		free(many);
	return m;
}

/* ---- the public iterator ---- */

struct sett_iter {
	sett_db *db;
	db_view vw;
	sit *it;
	uint64_t rv;
	int reverse;
	int key_only;
	buf prefix;
	int valid;
	int err;
	int registered;
	int all_versions;
	int deleted;     /* all_versions: the current entry is a delete or expired */
	sett_txn *txn;   /* a transaction's iterator: notes the keys it yields */
	/* Current entry (owned copies: the internal iterator moves on). */
	buf key;     /* user key */
	buf vs;      /* value struct */
	buf value;   /* resolved value */
	int value_loaded;
	uint64_t version;
	uint8_t user_meta;
	buf tmp;
	buf skip;    /* find_next's scratch */
	uint64_t entries; /* internal entries examined (sett_stats.iter_entries) */
};

static int has_prefix(const sett_iter *it, slice ukey)
{
	return ukey.n >= it->prefix.n && (it->prefix.n == 0 || memcmp(ukey.p, it->prefix.p, it->prefix.n) == 0);
}

static int visible(const vstruct *v)
{
	if (v->meta & META_DELETE)
		return 0;
	return !(v->expires_at && v->expires_at <= (uint64_t)time(NULL));
}

static void set_error(sett_iter *it, int err)
{
	if (!it->err)
		it->err = err;
	it->valid = 0;
}

static int save_current(sett_iter *it, slice ik, slice vs)
{
	slice uk = ikey_user(ik);
	it->key.n = 0;
	it->vs.n = 0;
	if (buf_append(&it->key, uk.p, uk.n) || buf_append(&it->vs, vs.p, vs.n))
		return -ENOMEM;
	it->version = ikey_version(ik);
	it->value_loaded = 0;
	return 0;
}

/* Positions the internal iterator at ukey@version (forward: first >=). */
static int make_ikey(sett_iter *it, slice ukey, uint64_t version)
{
	it->tmp.n = 0;
	if (buf_reserve(&it->tmp, ukey.n + IKEY_SUFFIX))
		return -ENOMEM;
	ikey_make(it->tmp.p, ukey.p, ukey.n, version);
	it->tmp.n = ukey.n + IKEY_SUFFIX;
	return 0;
}

/*
 * How many entries of one user key the public iterator steps over before
 * it seeks past the rest instead (as RocksDB's
 * max_sequential_skip_in_iterations).  A key rewritten many times holds
 * one entry per version in the memtables and L0 until a flush or a
 * compaction drops them; stepping over each would make the cost of
 * reading a key grow with how often it was written.  A seek costs one
 * search per source, about as much as this many steps.
 */
#define MAX_SEQUENTIAL_SKIP 8

/*
 * Forward: from the internal position, find the first user key whose
 * newest version <= rv is visible.  `skip_current`: the remaining versions
 * of the current key must be passed over first.
 */
static void find_next(sett_iter *it, int skip_current)
{
	int skipping = skip_current;
	int steps = 0; /* entries of one user key stepped over in a row */
	buf skipkey = it->skip; /* reused between calls: no allocation per entry */
	skipkey.n = 0;
	if (skip_current && buf_append(&skipkey, it->key.p, it->key.n)) {
		it->skip = skipkey;
		set_error(it, -ENOMEM);
		return;
	}
	it->valid = 0;
	while (sit_valid(it->it)) {
		slice ik = sit_key(it->it);
		slice uk = ikey_user(ik);
		it->entries++;
		if (!has_prefix(it, uk)) {
			if (it->prefix.n && slice_cmp(uk, slice_make(it->prefix.p, it->prefix.n)) > 0)
				break; /* past the prefix range */
			sit_next(it->it);
			continue;
		}
		int same = skipping && slice_cmp(uk, slice_make(skipkey.p, skipkey.n)) == 0;
		if (same || ikey_version(ik) > it->rv) {
			if (++steps <= MAX_SEQUENTIAL_SKIP) {
				sit_next(it->it);
				continue;
			}
			/* past every version of the skipped key, or to the newest <= rv */
			steps = 0;
			if (make_ikey(it, uk, same ? 0 : it->rv)) {
				set_error(it, -ENOMEM);
				break;
			}
			sit_seek(it->it, slice_make(it->tmp.p, it->tmp.n));
			continue;
		}
		steps = 0;
		vstruct v;
		slice vs = sit_value(it->it);
		if (vstruct_decode(vs.p, vs.n, &v)) {
			set_error(it, SETT_ECORRUPT);
			break;
		}
		it->deleted = !visible(&v) || drops_hide(it->db, uk, ikey_version(ik), it->rv, NULL);
		if (it->deleted && !it->all_versions) {
			skipkey.n = 0;
			if (buf_append(&skipkey, uk.p, uk.n)) {
				set_error(it, -ENOMEM);
				break;
			}
			skipping = 1;
			sit_next(it->it);
			continue;
		}
		if (save_current(it, ik, vs))
			set_error(it, -ENOMEM);
		else {
			it->user_meta = v.user_meta;
			it->valid = 1;
		}
		break;
	}
	if (sit_error(it->it))
		set_error(it, sit_error(it->it));
	it->skip = skipkey;
	if (it->valid && it->txn)
		txn_note_read(it->txn, slice_make(it->key.p, it->key.n));
}

/* Saves the internal iterator's entry as the candidate; its visibility or <0. */
static int save_candidate(sett_iter *it)
{
	slice ik = sit_key(it->it), vs = sit_value(it->it);
	vstruct v;
	if (vstruct_decode(vs.p, vs.n, &v))
		return SETT_ECORRUPT;
	if (save_current(it, ik, vs))
		return -ENOMEM;
	it->user_meta = v.user_meta;
	return visible(&v) && !drops_hide(it->db, ikey_user(ik), ikey_version(ik), it->rv, NULL);
}

/*
 * Backward: the internal iterator is at or before the entries of the key
 * to produce.  Walk back over all versions of a user key, remembering the
 * newest version <= rv; when the user key changes, the remembered entry is
 * the answer if it is visible.  After MAX_SEQUENTIAL_SKIP entries of one
 * key, the newest version <= rv is found with a forward seek instead, and
 * a seek_for_prev puts the iterator before all of the key's entries.
 */
static void find_prev(sett_iter *it)
{
	it->valid = 0;
	int have = 0;      /* a candidate for the current user key is saved */
	int steps = 0;     /* entries of the current user key met in a row */
	while (sit_valid(it->it)) {
		slice ik = sit_key(it->it);
		slice uk = ikey_user(ik);
		it->entries++;
		if (!has_prefix(it, uk)) {
			if (it->prefix.n && slice_cmp(uk, slice_make(it->prefix.p, it->prefix.n)) < 0)
				break;
			sit_prev(it->it);
			continue;
		}
		if (steps && slice_cmp(uk, slice_make(it->skip.p, it->skip.n)) != 0) {
			steps = 0;
			if (have)
				break; /* the saved key is complete */
		}
		if (!steps) {
			it->skip.n = 0;
			if (buf_append(&it->skip, uk.p, uk.n)) {
				set_error(it, -ENOMEM);
				return;
			}
		}
		if (++steps > MAX_SEQUENTIAL_SKIP) {
			/* the newest version <= rv, then before the key's newest entry */
			slice k = slice_make(it->skip.p, it->skip.n);
			if (make_ikey(it, k, it->rv)) {
				set_error(it, -ENOMEM);
				return;
			}
			sit_seek(it->it, slice_make(it->tmp.p, it->tmp.n));
			have = 0;
			if (sit_valid(it->it) && slice_cmp(ikey_user(sit_key(it->it)), k) == 0) {
				have = save_candidate(it);
				if (have < 0) {
					set_error(it, have);
					return;
				}
			}
			if (make_ikey(it, k, UINT64_MAX)) {
				set_error(it, -ENOMEM);
				return;
			}
			sit_seek_for_prev(it->it, slice_make(it->tmp.p, it->tmp.n));
			if (sit_valid(it->it) && slice_cmp(ikey_user(sit_key(it->it)), k) == 0)
				sit_prev(it->it);
			/* the next entry is of another key: steps stays, so it ends this one */
			continue;
		}
		if (ikey_version(ik) <= it->rv) {
			/* Later (newer) versions of the same key overwrite this. */
			have = save_candidate(it);
			if (have < 0) {
				set_error(it, have);
				return;
			}
		}
		sit_prev(it->it);
	}
	if (sit_error(it->it)) {
		set_error(it, sit_error(it->it));
		return;
	}
	it->valid = have;
	if (it->valid && it->txn)
		txn_note_read(it->txn, slice_make(it->key.p, it->key.n));
}

int db_iter_new_ex(sett_db *db, const sett_iter_options *o, uint64_t read_version, sit *pending,
		   sett_txn *txn, sett_iter **itp)
{
	sett_iter *it = calloc(1, sizeof *it);
	if (!it || (o->all_versions && o->reverse)) {
		free(it);
		sit_free(pending);
		return it ? -EINVAL : -ENOMEM;
	}
	it->db = db;
	it->reverse = o->reverse;
	it->key_only = o->key_only;
	it->all_versions = o->all_versions;
	if (o->prefix.size && buf_append(&it->prefix, o->prefix.data, o->prefix.size)) {
		free(it);
		sit_free(pending);
		return -ENOMEM;
	}
	/* The read version is registered with the view, atomically, so
	 * compaction cannot drop what this iterator may still need. */
	db_view_get_reader(db, &it->vw, read_version, &it->rv);
	it->registered = 1;
	it->it = db_view_iter(db, &it->vw);
	if (it->it && pending) {
		/* The transaction's writes, at its read version, go first: they
		 * hide the store's entries of the same keys (merge_iter_new). */
		sit *two[2] = { pending, it->it };
		it->it = merge_iter_new(two, 2);
		pending = NULL;
	}
	sit_free(pending);
	if (!it->it) {
		sett_iter_free(it);
		return -ENOMEM;
	}
	it->txn = txn;
	*itp = it;
	return 0;
}

int sett_iter_new(sett_db *db, const sett_iter_options *o, sett_iter **itp)
{
	sett_iter_options def;
	if (!o) {
		sett_iter_options_init(&def);
		o = &def;
	}
	return db_iter_new_ex(db, o, o->read_version, NULL, NULL, itp);
}

void sett_iter_free(sett_iter *it)
{
	if (!it)
		return;
	sit_free(it->it);
	if (it->vw.v)
		db_view_release(&it->vw);
	if (it->registered)
		db_reader_remove(it->db, it->rv);
	__atomic_fetch_add(&it->db->stat_iter_entries, it->entries, __ATOMIC_RELAXED);
	if (it->txn)
		txn_iter_closed(it->txn);
	buf_free(&it->prefix);
	buf_free(&it->key);
	buf_free(&it->vs);
	buf_free(&it->value);
	buf_free(&it->tmp);
	buf_free(&it->skip);
	free(it);
}

/* The smallest byte string greater than every string with the prefix. */
static int prefix_successor(const buf *p, buf *out)
{
	out->n = 0;
	size_t n = p->n;
	while (n > 0 && p->p[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0; /* no successor: the end */
	if (buf_append(out, p->p, n))
		return -ENOMEM;
	out->p[n - 1]++;
	return 1;
}

int sett_iter_seek(sett_iter *it, sett_val key)
{
	it->err = 0;
	slice k = slice_make(key.data, key.size);
	if (!it->reverse) {
		if (it->prefix.n && slice_cmp(k, slice_make(it->prefix.p, it->prefix.n)) < 0)
			k = slice_make(it->prefix.p, it->prefix.n);
		if (make_ikey(it, k, UINT64_MAX))
			return -ENOMEM;
		sit_seek(it->it, slice_make(it->tmp.p, it->tmp.n));
		find_next(it, 0);
	} else {
		/* Last entry <= k: every version of k sorts before k@0. */
		if (make_ikey(it, k, 0))
			return -ENOMEM;
		sit_seek_for_prev(it->it, slice_make(it->tmp.p, it->tmp.n));
		find_prev(it);
	}
	return it->err;
}

int sett_iter_rewind(sett_iter *it)
{
	it->err = 0;
	if (!it->reverse) {
		if (it->prefix.n) {
			sett_val p = { it->prefix.n, it->prefix.p };
			return sett_iter_seek(it, p);
		}
		sit_first(it->it);
		find_next(it, 0);
		return it->err;
	}
	buf succ = { 0 };
	int s = it->prefix.n ? prefix_successor(&it->prefix, &succ) : 0;
	if (s < 0)
		return -ENOMEM;
	if (s == 1) {
		/* Last entry before the successor. */
		if (make_ikey(it, slice_make(succ.p, succ.n), UINT64_MAX)) {
			buf_free(&succ);
			return -ENOMEM;
		}
		sit_seek(it->it, slice_make(it->tmp.p, it->tmp.n));
		if (sit_valid(it->it))
			sit_prev(it->it);
		else
			sit_last(it->it);
	} else {
		sit_last(it->it);
	}
	buf_free(&succ);
	find_prev(it);
	return it->err;
}

int sett_iter_valid(const sett_iter *it)
{
	return it->valid && !it->err;
}

int sett_iter_next(sett_iter *it)
{
	if (!it->valid)
		return it->err;
	if (it->all_versions) {
		sit_next(it->it); /* find_next left it at the current entry */
		find_next(it, 0);
	} else if (!it->reverse) {
		find_next(it, 1);
	} else {
		/* find_prev left the internal iterator before the current key. */
		find_prev(it);
	}
	return it->err;
}

sett_val sett_iter_key(const sett_iter *it)
{
	sett_val v = { it->key.n, it->key.p };
	return v;
}

int sett_iter_value(sett_iter *it, sett_val *value)
{
	if (!it->valid)
		return it->err ? it->err : -EINVAL;
	if (!it->value_loaded) {
		vstruct v;
		int r = vstruct_decode(it->vs.p, it->vs.n, &v);
		if (!r)
			r = db_resolve_value(it->db, slice_make(it->key.p, it->key.n), &v, &it->value);
		if (r) {
			set_error(it, r);
			return r;
		}
		it->value_loaded = 1;
	}
	value->size = it->value.n;
	value->data = it->value.p;
	return 0;
}

int sett_iter_value_size(sett_iter *it, size_t *size)
{
	if (!it->valid)
		return it->err ? it->err : -EINVAL;
	if (it->value_loaded) {
		*size = it->value.n;
		return 0;
	}
	vstruct v;
	vptr p;
	int r = vstruct_decode(it->vs.p, it->vs.n, &v);
	if (r == 0 && !(v.meta & META_VALUE_POINTER)) {
		*size = v.data.n;
		return 0;
	}
	/* the pointer's length is the whole log entry's, whose key is the internal key */
	if (r == 0)
		r = vptr_decode(v.data.p, v.data.n, &p);
	if (r == 0)
		r = entry_value_len(p.len, it->key.n + IKEY_SUFFIX, v.expires_at, size);
	if (r)
		set_error(it, r);
	return r;
}

uint64_t sett_iter_version(const sett_iter *it)
{
	return it->version;
}

uint8_t sett_iter_user_meta(const sett_iter *it)
{
	return it->user_meta;
}

int sett_iter_error(const sett_iter *it)
{
	return it->err;
}

int sett_iter_deleted(const sett_iter *it)
{
	return it->valid && it->deleted;
}
