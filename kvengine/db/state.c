/*
 * state.c - the state the writer, the flusher, the compactors, value-log GC
 * and readers share: table paths and ids, background and stall errors,
 * read versions, views of the LSM (memtables + version), point lookups,
 * the installation of version edits and the disk's free space.  It sits
 * below the write path and the background jobs (kvengine/README.md) and
 * calls none of them.
 *
 * Thread safety: any thread may call any function here; db->mu guards the
 * read versions, views and errors, db->install_mu serialises installs
 * (db_impl.h says which lock covers which field).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "db_impl.h"
#include "drop.h"
#include "fileio.h"
#include "ikey.h"
#include "pin.h"

void db_table_path(const sett_db *db, uint64_t id, char *out, size_t n)
{
	snprintf(out, n, "%s/%06llu.sst", db->dir, (unsigned long long)id);
}

/* Table ids the MANIFEST allocates at a time (doc/FORMAT.md, "MANIFEST"). */
#define TABLE_ID_RESERVE 16

/*
 * A table id, recorded in the MANIFEST as allocated (a NEXT_ID change) before
 * the caller creates its file, so that a crash leftover of that file is
 * provably the engine's own.  If the record cannot be written the id is
 * still returned: its file is then one the MANIFEST does not account for,
 * quarantined rather than deleted if a crash leaves it behind.
 */
uint64_t db_new_table_id(sett_db *db)
{
	uint64_t id = __atomic_fetch_add(&db->next_table_id, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&db->install_mu);
	if (id >= db->table_id_limit) {
		manifest_change c = { .op = MANIFEST_NEXT_ID, .id = id + TABLE_ID_RESERVE };
		if (manifest_apply(db->man, &c, 1) == 0)
			db->table_id_limit = c.id;
	}
	pthread_mutex_unlock(&db->install_mu);
	return id;
}

void db_set_bg_error(sett_db *db, int err)
{
	pthread_mutex_lock(&db->mu);
	/* written under mu, read without it by the write path (atomic loads) */
	if (!db->bg_error)
		__atomic_store_n(&db->bg_error, err, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&db->cv_room);
	pthread_cond_broadcast(&db->cv_flush);
	pthread_cond_broadcast(&db->cv_bg);
	pthread_mutex_unlock(&db->mu);
}

void db_set_stall_error(sett_db *db, int which, int err)
{
	pthread_mutex_lock(&db->mu);
	db->stall_error[which] = err;
	pthread_cond_broadcast(&db->cv_room);
	pthread_mutex_unlock(&db->mu);
}

/* ---- read versions ---- */

/* REQUIRES: mu held. */
static void reader_add_locked(sett_db *db, uint64_t v)
{
	if (db->nreaders == db->capreaders) {
		size_t cap = db->capreaders ? db->capreaders * 2 : 16;
		uint64_t *p = realloc(db->readers, cap * sizeof *p);
		if (p) {
			db->readers = p;
			db->capreaders = cap;
		}
	}
	if (db->nreaders < db->capreaders)
		db->readers[db->nreaders++] = v;
}

void db_reader_add(sett_db *db, uint64_t v)
{
	pthread_mutex_lock(&db->mu);
	reader_add_locked(db, v);
	pthread_mutex_unlock(&db->mu);
}

void db_reader_remove(sett_db *db, uint64_t v)
{
	pthread_mutex_lock(&db->mu);
	for (size_t i = 0; i < db->nreaders; i++) {
		if (db->readers[i] == v) {
			db->readers[i] = db->readers[--db->nreaders];
			break;
		}
	}
	pthread_mutex_unlock(&db->mu);
}

/* REQUIRES: mu held. */
static uint64_t pick_read_version(sett_db *db, uint64_t requested)
{
	uint64_t cur = __atomic_load_n(&db->last_version, __ATOMIC_ACQUIRE);
	if (db->opt.managed && requested)
		return requested; /* the caller's versions may run ahead of commits */
	return requested && requested < cur ? requested : cur;
}

uint64_t db_reader_begin(sett_db *db, uint64_t requested)
{
	pthread_mutex_lock(&db->mu);
	uint64_t rv = pick_read_version(db, requested);
	reader_add_locked(db, rv);
	pthread_mutex_unlock(&db->mu);
	return rv;
}

uint64_t db_oldest_read_version(sett_db *db)
{
	pthread_mutex_lock(&db->mu);
	uint64_t m = __atomic_load_n(&db->last_version, __ATOMIC_ACQUIRE);
	/* Managed mode: the caller's discard version, below which it reads
	 * nothing (a read at it still sees the newest version <= it). */
	if (db->opt.managed)
		m = __atomic_load_n(&db->orc.discard_version, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < db->nreaders; i++)
		if (db->readers[i] < m)
			m = db->readers[i];
	pthread_mutex_unlock(&db->mu);
	return m;
}

int sett_set_discard_version(sett_db *db, uint64_t v)
{
	if (!db->opt.managed)
		return -EINVAL;
	uint64_t cur = __atomic_load_n(&db->orc.discard_version, __ATOMIC_ACQUIRE);
	while (v > cur &&
	       !__atomic_compare_exchange_n(&db->orc.discard_version, &cur, v, 0, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE))
		;
	return 0;
}

uint64_t sett_current_version(sett_db *db)
{
	return __atomic_load_n(&db->last_version, __ATOMIC_ACQUIRE);
}

/* ---- views and lookups ---- */

static void view_get_locked(sett_db *db, db_view *vw);

void db_view_get(sett_db *db, db_view *vw)
{
	pthread_mutex_lock(&db->mu);
	view_get_locked(db, vw);
	pthread_mutex_unlock(&db->mu);
}

/*
 * A view for a reader that keeps a snapshot: its read version is chosen,
 * registered and paired with the view in one critical section, so no
 * compaction can drop a version in between.
 */
void db_view_get_reader(sett_db *db, db_view *vw, uint64_t requested, uint64_t *rv)
{
	pthread_mutex_lock(&db->mu);
	*rv = pick_read_version(db, requested);
	reader_add_locked(db, *rv);
	view_get_locked(db, vw);
	pthread_mutex_unlock(&db->mu);
}

/* REQUIRES: mu held. */
static void view_get_locked(sett_db *db, db_view *vw)
{
	vw->nmts = 0;
	if (db->active.mt) {
		memtable_ref(db->active.mt);
		vw->mts[vw->nmts++] = db->active.mt;
	}
	for (int i = db->nimm - 1; i >= 0; i--) {
		memtable_ref(db->imm[i].mt);
		vw->mts[vw->nmts++] = db->imm[i].mt;
	}
	vw->v = db->current;
	version_ref(vw->v);
}

void db_view_release(db_view *vw)
{
	for (int i = 0; i < vw->nmts; i++)
		memtable_unref(vw->mts[i]);
	vw->nmts = 0;
	version_unref(vw->v);
	vw->v = NULL;
}

/* Index of the first table of a sorted level whose largest key >= ik. */
static int level_find(table **ts, int n, slice ik)
{
	int lo = 0, hi = n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (ikey_cmp(table_largest(ts[mid]), ik) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The largest version a source after the one found can hold: memtables
 * after memtable `mi` (mi < 0: none of them), L0 tables after `ti` (only
 * when `level` is 0), and the levels below `level`.
 */
static uint64_t later_max(const db_view *vw, int mi, int ti, int level)
{
	uint64_t m = 0;
	for (int i = mi + 1; mi >= 0 && i < vw->nmts; i++)
		if (memtable_max_version(vw->mts[i]) > m)
			m = memtable_max_version(vw->mts[i]);
	const lsm_version *v = vw->v;
	for (int i = ti + 1; level == 0 && i < v->ntables[0]; i++)
		if (table_max_version(v->tables[0][i]) > m)
			m = table_max_version(v->tables[0][i]);
	for (int l = level + 1; l < MAX_LEVELS; l++)
		if (v->max_version[l] > m)
			m = v->max_version[l];
	return m;
}

/*
 * The newest version <= rv of ukey.  Sources are searched newest first
 * (memtables, L0 tables, levels 1..); a hit is the answer unless a later
 * source may hold a newer version (its largest version is above the hit:
 * never so for a store's own commits in order, whose older sources hold
 * older versions, but so in managed mode, where a commit may carry a
 * version below one already flushed): then the later sources are searched
 * too and the newest hit wins, as an iterator's merge would have it.
 */
static int lookup_in_view(db_view *vw, slice ukey, uint64_t rv, uint64_t *version, buf *vs)
{
	char why[256];
	uint64_t best = 0;
	int have = 0, r = 0;
	buf tmp = { 0 };
	for (int i = 0; i < vw->nmts; i++) {
		slice s;
		uint64_t ver;
		if (memtable_get(vw->mts[i], ukey, rv, &ver, &s) && (!have || ver > best)) {
			vs->n = 0;
			if (buf_append(vs, s.p, s.n))
				return -ENOMEM;
			best = ver;
			*version = ver;
			have = 1;
			if (later_max(vw, i, -1, 0) <= best)
				return 1;
		}
	}
	uint64_t h = sett_hash(ukey.p, ukey.n);
	lsm_version *v = vw->v;
	for (int i = 0; i < v->ntables[0]; i++) {
		table *t = v->tables[0][i];
		if (have && table_max_version(t) <= best)
			continue;
		if (!table_may_contain(t, h))
			continue;
		uint64_t ver;
		tmp.n = 0;
		r = table_get(t, ukey, rv, &ver, &tmp, why, sizeof why);
		if (r < 0)
			goto out;
		if (r > 0 && (!have || ver > best)) {
			buf t2 = *vs;
			*vs = tmp;
			tmp = t2;
			best = ver;
			*version = ver;
			have = 1;
			if (later_max(vw, -1, i, 0) <= best)
				goto out;
		}
	}
	uint8_t stackkey[256];
	uint8_t *ik = ukey.n + IKEY_SUFFIX <= sizeof stackkey ? stackkey : malloc(ukey.n + IKEY_SUFFIX);
	if (!ik) {
		r = -ENOMEM;
		goto out;
	}
	ikey_make(ik, ukey.p, ukey.n, rv);
	slice seek = slice_make(ik, ukey.n + IKEY_SUFFIX);
	int found = 0;
	for (int l = 1; l < MAX_LEVELS && found >= 0; l++) {
		if (have && v->max_version[l] <= best)
			continue;
		int n = v->ntables[l], trusted = 0;
		uint64_t ver = 0;
		tmp.n = 0;
		found = 0;
		/* A user key's versions may straddle two adjacent tables. */
		for (int i = level_find(v->tables[l], n, seek); i < n; i++) {
			table *t = v->tables[l][i];
			slice lo = ikey_user(table_smallest(t)), hi = ikey_user(table_largest(t));
			if (slice_cmp(lo, ukey) > 0)
				break;
			if (table_may_contain(t, h))
				found = table_get(t, ukey, rv, &ver, &tmp, why, sizeof why);
			/*
			 * With a damaged table somewhere in the level, the answer
			 * holds only for a key above t's first one (newer versions
			 * of which the table before t may hold) and below its last
			 * one (older versions: the table after), or found.
			 */
			trusted |= slice_cmp(lo, ukey) < 0 && (found > 0 || slice_cmp(hi, ukey) > 0);
			if (found || slice_cmp(hi, ukey) != 0)
				break;
		}
		if (found >= 0 && v->damaged[l] && !trusted) {
			tmp.n = 0;
			found = table_get(v->damaged[l], ukey, rv, &ver, &tmp, why, sizeof why);
		}
		if (found > 0 && (!have || ver > best)) {
			buf t2 = *vs;
			*vs = tmp;
			tmp = t2;
			best = ver;
			*version = ver;
			have = 1;
			if (later_max(vw, -1, -1, l) <= best)
				break;
		}
	}
	if (ik != stackkey)
		free(ik);
	r = found < 0 ? found : 0;
out:
	buf_free(&tmp);
	return r < 0 ? r : have;
}

int db_lookup(sett_db *db, slice ukey, uint64_t read_version, uint64_t *version, buf *vs)
{
	db_view vw;
	db_view_get(db, &vw);
	int r = lookup_in_view(&vw, ukey, read_version, version, vs);
	db_view_release(&vw);
	if (r == 1 && drops_hide(db, ukey, *version, read_version, NULL))
		r = 0; /* under a prefix drop: absent */
	return r;
}

void db_report_corrupt(void *arg, const char *why)
{
	sett_db *db = arg;
	if (db->opt.corruption_fn && why && why[0])
		db->opt.corruption_fn(db->opt.corruption_arg, why);
}

int db_resolve_value(sett_db *db, slice ukey, const vstruct *v, buf *out)
{
	out->n = 0;
	if (!(v->meta & META_VALUE_POINTER))
		return buf_append(out, v->data.p, v->data.n);
	vptr p;
	if (vptr_decode(v->data.p, v->data.n, &p))
		return SETT_ECORRUPT;
	char why[512];
	why[0] = 0;
	int r = vlog_read(db->vl, &p, ukey, out, why, sizeof why);
	if (r == SETT_ECORRUPT)
		db_report_corrupt(db, why);
	return r;
}

static int is_expired(const vstruct *v)
{
	return v->expires_at && v->expires_at <= (uint64_t)time(NULL);
}

int sett_get_ex(sett_db *db, sett_val key, uint64_t read_version, void **value, size_t *size,
		uint64_t *version, uint8_t *user_meta)
{
	if (key.size > SETT_MAX_KEY_SIZE)
		return SETT_ENOTFOUND;
	uint64_t rv = read_version ? read_version : sett_current_version(db);
	slice ukey = slice_make(key.data, key.size);
	buf vs = { 0 }, out = { 0 };
	uint64_t ver = 0;
	int r;
	/* Value-log GC may move the value and delete its file between the
	 * lookup and the read: the file is then gone, and a new lookup finds
	 * the value's new place. */
	for (int attempt = 0;; attempt++) {
		r = db_lookup(db, ukey, rv, &ver, &vs);
		if (r == 1) {
			vstruct v;
			r = vstruct_decode(vs.p, vs.n, &v);
			if (r == 0 && ((v.meta & META_DELETE) || is_expired(&v)))
				r = SETT_ENOTFOUND;
			if (r == 0)
				r = db_resolve_value(db, ukey, &v, &out);
			if (r == 0 && user_meta)
				*user_meta = v.user_meta;
		} else if (r == 0) {
			r = SETT_ENOTFOUND;
		}
		if (r != -ENOENT || attempt == 3)
			break;
	}
	buf_free(&vs);
	if (r) {
		buf_free(&out);
		return r;
	}
	if (out.n == 0)
		buf_free(&out);
	*value = out.p;
	*size = out.n;
	if (version)
		*version = ver;
	return 0;
}

int sett_get(sett_db *db, sett_val key, uint64_t read_version, void **value, size_t *size)
{
	return sett_get_ex(db, key, read_version, value, size, NULL, NULL);
}

/* ---- installing new shapes ---- */

int db_install_edit(sett_db *db, const version_edit *e)
{
	manifest_change *ch = calloc(e->nadd + e->ndel + 1, sizeof *ch);
	if (!ch)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < e->nadd; i++)
		ch[n++] = (manifest_change){ .op = MANIFEST_CREATE, .level = e->add_levels[i],
					     .compression = (uint8_t)db->opt.compression,
					     .id = table_id(e->add[i]) };
	for (size_t i = 0; i < e->ndel; i++)
		ch[n++] = (manifest_change){ .op = MANIFEST_DELETE, .id = e->del_ids[i] };
	pthread_mutex_lock(&db->install_mu);
	/*
	 * The entries of the tables leaving the tree may hold the newest
	 * version used (a deleted key dropped at the last level, a dropped
	 * prefix): the MANIFEST keeps it, so that no reopen reuses a version
	 * a pin, a drop, a backup or a reader has already seen.
	 */
	uint64_t gone = 0;
	pthread_mutex_lock(&db->mu);
	for (int l = 0; l < MAX_LEVELS && e->ndel; l++)
		for (int i = 0; i < db->current->ntables[l]; i++)
			for (size_t k = 0; k < e->ndel; k++)
				if (table_id(db->current->tables[l][i]) == e->del_ids[k] &&
				    table_max_version(db->current->tables[l][i]) > gone)
					gone = table_max_version(db->current->tables[l][i]);
	pthread_mutex_unlock(&db->mu);
	if (gone > manifest_max_version(db->man))
		ch[n++] = (manifest_change){ .op = MANIFEST_MAX_VERSION, .id = gone };
	int r = manifest_apply(db->man, ch, n);
	free(ch);
	if (r) {
		pthread_mutex_unlock(&db->install_mu);
		/* A cleanly failed append (full disk) changed nothing. */
		if (manifest_error(db->man))
			db_set_bg_error(db, r);
		return r;
	}
	lsm_version *nv;
	pthread_mutex_lock(&db->mu);
	lsm_version *old = db->current;
	r = version_apply(old, e, &nv);
	if (r == 0) {
		/* Tables leaving the tree are deleted once no reader holds them. */
		for (int l = 0; l < MAX_LEVELS; l++)
			for (int i = 0; i < old->ntables[l]; i++)
				for (size_t k = 0; k < e->ndel; k++)
					if (table_id(old->tables[l][i]) == e->del_ids[k])
						table_mark_obsolete(old->tables[l][i]);
		db->current = nv;
		pthread_cond_broadcast(&db->cv_room);
		pthread_cond_broadcast(&db->cv_bg);
	}
	pthread_mutex_unlock(&db->mu);
	pthread_mutex_unlock(&db->install_mu);
	if (r == 0)
		version_unref(old);
	else
		db_set_bg_error(db, r); /* the MANIFEST names what memory does not */
	return r;
}

void db_kick_compaction(sett_db *db)
{
	pthread_mutex_lock(&db->mu);
	db->compaction_kicks++;
	pthread_cond_broadcast(&db->cv_bg);
	pthread_mutex_unlock(&db->mu);
}

/* ---- introspection ---- */

int sett_disk_space(sett_db *db, sett_space *out)
{
	struct statvfs sv;
	if (statvfs(db->dir, &sv) != 0)
		return -errno;
	out->disk_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	out->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	out->reserve = db->opt.disk_reserve >= 0 ? (uint64_t)db->opt.disk_reserve
						 : sett_default_reserve(out->disk_bytes);
	return 0;
}
