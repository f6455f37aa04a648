/*
 * drop.c - prefix drops (drop.h).
 *
 * sett_drop_prefix(P): V = the current version; the drop goes into memory
 * and into the MANIFEST, then a batch (deleting the key P itself) moves the
 * store past V: reads at versions > V skip what the drop hides;
 * the memtables are flushed, so every entry the drop hides is in a table
 * with an id below t0 = the next table id after that flush.  Then every
 * table whose keys all start with P and whose newest version is <= V is
 * removed from the LSM in one edit (compaction_drop_tables), unless an
 * older reader or a pin below V may still read it.  What is left (tables
 * that straddle P's edges, or held for a reader) is dropped entry by entry
 * by compaction.  A drop is retired (MANIFEST op 7) once no table below its
 * t0 overlaps P; a compaction that had to keep a hidden entry (for a pin),
 * or that started before the drop, moves t0 past its outputs.  A retired
 * drop stays in memory until close, since older views may still read the
 * tables that held what it hides.  At open t0 is the next table id (every table
 * is suspect); a flush of a memtable holding a hidden entry (a WAL replayed
 * at open, written before the drop's own flush) moves t0 past its table.  Values in the value log are freed by GC, whose liveness
 * check reads through db_lookup and so sees the drop.
 */
#include "drop.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "compaction.h"
#include "db_impl.h"
#include "ikey.h"
#include "pin.h"

typedef struct drop {
	uint8_t *prefix;
	size_t len;
	uint64_t version;
	uint64_t t0; /* tables with ids >= t0 hold nothing it hides */
	/* Recorded done in the MANIFEST, but kept (and honoured) until close:
	 * views taken before (iterators, streams, reads in flight) may still
	 * hold tables with entries it hides. */
	int retired;
} drop;

struct drop_state {
	pthread_rwlock_t lock; /* d, n */
	pthread_mutex_t op_mu; /* one drop or retirement at a time */
	drop *d;
	size_t n;
	size_t count; /* = n, atomic: the lock-free fast path */
	uint64_t gen; /* drops made so far, atomic */
};

static void drops_set_unknown_t0(sett_db *db);

static int has_prefix(slice k, const drop *d)
{
	return k.n >= d->len && (d->len == 0 || memcmp(k.p, d->prefix, d->len) == 0);
}

static int drops_add(struct drop_state *ds, const void *p, size_t len, uint64_t v, uint64_t t0)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	if (len)
		memcpy(copy, p, len);
	pthread_rwlock_wrlock(&ds->lock);
	drop *nd = realloc(ds->d, (ds->n + 1) * sizeof *nd);
	if (!nd) {
		pthread_rwlock_unlock(&ds->lock);
		free(copy);
		return -ENOMEM;
	}
	ds->d = nd;
	ds->d[ds->n++] = (drop){ copy, len, v, t0, 0 };
	__atomic_store_n(&ds->count, ds->n, __ATOMIC_RELEASE);
	__atomic_add_fetch(&ds->gen, 1, __ATOMIC_ACQ_REL);
	pthread_rwlock_unlock(&ds->lock);
	return 0;
}

static void drops_remove_at(struct drop_state *ds, size_t i)
{
	free(ds->d[i].prefix);
	ds->d[i] = ds->d[--ds->n];
	__atomic_store_n(&ds->count, ds->n, __ATOMIC_RELEASE);
}

int drops_open(sett_db *db)
{
	struct drop_state *ds = calloc(1, sizeof *ds);
	if (!ds)
		return -ENOMEM;
	pthread_rwlock_init(&ds->lock, NULL);
	pthread_mutex_init(&ds->op_mu, NULL);
	db->drops = ds;
	manifest_mark *mk;
	size_t n;
	int r = manifest_marks(db->man, &mk, &n);
	for (size_t i = 0; i < n && !r; i++)
		if (mk[i].kind == MANIFEST_MARK_DROP)
			r = drops_add(ds, mk[i].name, mk[i].len, mk[i].version, UINT64_MAX);
	if (!r)
		manifest_marks_free(mk, n);
	/* the tables are open: every one of them may hold what a drop hides */
	drops_set_unknown_t0(db);
	return r;
}

void drops_close(sett_db *db)
{
	struct drop_state *ds = db->drops;
	if (!ds)
		return;
	for (size_t i = 0; i < ds->n; i++)
		free(ds->d[i].prefix);
	free(ds->d);
	pthread_rwlock_destroy(&ds->lock);
	pthread_mutex_destroy(&ds->op_mu);
	free(ds);
	db->drops = NULL;
}

int drops_hide(sett_db *db, slice ukey, uint64_t ver, uint64_t rv, uint64_t *v)
{
	struct drop_state *ds = db->drops;
	if (!ds || !__atomic_load_n(&ds->count, __ATOMIC_ACQUIRE))
		return 0;
	int hide = 0;
	pthread_rwlock_rdlock(&ds->lock);
	for (size_t i = 0; i < ds->n; i++) {
		const drop *d = &ds->d[i];
		if (ver <= d->version && rv > d->version && has_prefix(ukey, d)) {
			if (!hide || (v && d->version > *v))
				if (v)
					*v = d->version;
			hide = 1;
		}
	}
	pthread_rwlock_unlock(&ds->lock);
	return hide;
}

int drops_compact(sett_db *db, slice ukey, uint64_t ver, uint64_t D, const uint64_t *pins,
		  size_t npins)
{
	struct drop_state *ds = db->drops;
	if (!ds || !__atomic_load_n(&ds->count, __ATOMIC_ACQUIRE))
		return 0;
	int res = 0;
	pthread_rwlock_rdlock(&ds->lock);
	for (size_t i = 0; i < ds->n && res != 1; i++) {
		const drop *d = &ds->d[i];
		if (ver > d->version || !has_prefix(ukey, d))
			continue;
		/* a read at rv <= V sees it: a reader at D <= V, or a pin */
		int seen = d->version >= D;
		for (size_t k = 0; k < npins && !seen; k++)
			seen = pins[k] >= ver && pins[k] <= d->version;
		res = seen ? 2 : 1;
	}
	pthread_rwlock_unlock(&ds->lock);
	return res;
}

uint64_t drops_generation(sett_db *db)
{
	return db->drops ? __atomic_load_n(&db->drops->gen, __ATOMIC_ACQUIRE) : 0;
}

void drops_note_kept(sett_db *db)
{
	struct drop_state *ds = db->drops;
	if (!ds)
		return;
	uint64_t next = __atomic_load_n(&db->next_table_id, __ATOMIC_RELAXED);
	pthread_rwlock_wrlock(&ds->lock);
	for (size_t i = 0; i < ds->n; i++)
		if (ds->d[i].t0 != UINT64_MAX && ds->d[i].t0 < next)
			ds->d[i].t0 = next;
	pthread_rwlock_unlock(&ds->lock);
}

/* Whether a table with an id below t0 overlaps the keys starting with p. */
static int suspect_tables(const lsm_version *v, const drop *d)
{
	slice p = slice_make(d->prefix, d->len);
	for (int l = 0; l < MAX_LEVELS; l++) {
		for (int i = 0; i < v->ntables[l]; i++) {
			table *t = v->tables[l][i];
			if (table_id(t) >= d->t0)
				continue;
			slice lo = ikey_user(table_smallest(t)), hi = ikey_user(table_largest(t));
			/* [lo, hi] misses P's keys iff hi < P, or lo > every key with P */
			if (slice_cmp(hi, p) < 0)
				continue;
			if (d->len && slice_cmp(lo, p) > 0 &&
			    (lo.n < d->len || memcmp(lo.p, d->prefix, d->len) != 0))
				continue;
			return 1;
		}
		if (v->damaged[l])
			return 1;
	}
	return 0;
}

/* REQUIRES: ds->op_mu held. */
static void retire_locked(sett_db *db)
{
	struct drop_state *ds = db->drops;
	for (;;) {
		/* find one retirable drop, under both locks (the version cannot change) */
		pthread_mutex_lock(&db->mu);
		lsm_version *v = db->current;
		version_ref(v);
		pthread_mutex_unlock(&db->mu);
		pthread_rwlock_rdlock(&ds->lock);
		ssize_t found = -1;
		for (size_t i = 0; i < ds->n && found < 0; i++)
			if (!ds->d[i].retired && ds->d[i].t0 != UINT64_MAX &&
			    !suspect_tables(v, &ds->d[i]))
				found = (ssize_t)i;
		drop d = found >= 0 ? ds->d[found] : (drop){ 0 };
		pthread_rwlock_unlock(&ds->lock);
		version_unref(v);
		if (found < 0)
			break;
		manifest_change c = { .op = MANIFEST_DROP_DONE, .id = d.version, .name = d.prefix,
				      .name_len = (uint16_t)d.len };
		if (manifest_apply(db->man, &c, 1)) {
			if (manifest_error(db->man))
				db_set_bg_error(db, manifest_error(db->man));
			break; /* tried again after the next compaction */
		}
		pthread_rwlock_wrlock(&ds->lock);
		for (size_t i = 0; i < ds->n; i++)
			if (ds->d[i].prefix == d.prefix)
				ds->d[i].retired = 1;
		pthread_rwlock_unlock(&ds->lock);
	}
}

void drops_maybe_retire(sett_db *db)
{
	struct drop_state *ds = db->drops;
	if (!ds || !__atomic_load_n(&ds->count, __ATOMIC_ACQUIRE) || db->opt.read_only)
		return;
	/* A drop under way holds op_mu across a flush, which may wait for
	 * compaction: never wait for it here (the drop retires at its end). */
	if (pthread_mutex_trylock(&ds->op_mu) != 0)
		return;
	retire_locked(db);
	pthread_mutex_unlock(&ds->op_mu);
}

/* Sets the t0 of the drops that have none yet to the next table id. */
static void drops_set_unknown_t0(sett_db *db)
{
	struct drop_state *ds = db->drops;
	uint64_t next = __atomic_load_n(&db->next_table_id, __ATOMIC_RELAXED);
	pthread_rwlock_wrlock(&ds->lock);
	for (size_t i = 0; i < ds->n; i++)
		if (ds->d[i].t0 == UINT64_MAX)
			ds->d[i].t0 = next;
	pthread_rwlock_unlock(&ds->lock);
}

/* ---- the public API ---- */

int sett_drop_prefix(sett_db *db, sett_val prefix)
{
	if (db->opt.read_only)
		return -EROFS;
	if (db->opt.managed)
		return -EINVAL; /* it commits a batch of its own (see sett.h) */
	if (prefix.size > SETT_MAX_KEY_SIZE || (prefix.size && !prefix.data))
		return -EINVAL;
	struct drop_state *ds = db->drops;
	pthread_mutex_lock(&ds->op_mu);
	/* every write acknowledged before this call has a version <= V */
	uint64_t v = sett_current_version(db);
	int r = 0, exists = 0;
	pthread_rwlock_rdlock(&ds->lock);
	for (size_t i = 0; i < ds->n && !exists; i++)
		exists = ds->d[i].version == v && ds->d[i].len == prefix.size &&
			 (!prefix.size || memcmp(ds->d[i].prefix, prefix.data, prefix.size) == 0);
	pthread_rwlock_unlock(&ds->lock);
	if (v == 0 || exists) {
		pthread_mutex_unlock(&ds->op_mu);
		return 0; /* nothing written yet, or dropped already at this version */
	}
	sett_batch *b;
	if ((r = sett_batch_new(&b)) || (r = sett_batch_delete(b, prefix))) {
		sett_batch_free(b);
		pthread_mutex_unlock(&ds->op_mu);
		return r;
	}
	/* in memory first: from here on no read at >= V sees what it hides,
	 * and value-log GC does not rewrite it (t0 unknown: not retirable) */
	r = drops_add(ds, prefix.data, prefix.size, v, UINT64_MAX);
	if (!r) {
		manifest_change c = { .op = MANIFEST_DROP, .id = v, .name = prefix.data,
				      .name_len = (uint16_t)prefix.size };
		r = manifest_apply(db->man, &c, 1);
		if (r) {
			if (manifest_error(db->man))
				db_set_bg_error(db, r);
			pthread_rwlock_wrlock(&ds->lock);
			drops_remove_at(ds, ds->n - 1);
			pthread_rwlock_unlock(&ds->lock);
		}
	}
	/* A version of its own: reads at V (older iterators and pins, and
	 * anyone reading now) still see the keys, reads at the drop's batch
	 * and later do not.  The batch deletes the prefix itself as a key,
	 * which the drop covers anyway.  If it fails, the drop (recorded)
	 * shows from the next write on. */
	if (!r)
		r = sett_write(db, b, 0, NULL);
	sett_batch_free(b);
	/* the hidden entries of the memtables into tables below t0 (op_mu stays
	 * held: another drop's t0 must not be set before its own flush) */
	if (!r)
		r = sett_flush(db);
	if (!r) {
		drops_set_unknown_t0(db);
		r = compaction_drop_tables(db, slice_make(prefix.data, prefix.size), v);
		retire_locked(db);
	}
	pthread_mutex_unlock(&ds->op_mu);
	/* after a failed flush the drop holds (reads honour it) but is not
	 * retired until the next open: its t0 is unknown */
	return r;
}

int sett_drop_all(sett_db *db)
{
	return sett_drop_prefix(db, (sett_val){ 0, NULL });
}
