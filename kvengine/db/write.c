/*
 * write.c - the writer thread (group commit) and the flusher.
 *
 * Writes are committed one group at a time, as in Badger: callers queue a
 * request and wait; the writer thread takes every queued request at once (a
 * group) and, per group (an uncontended caller writes its own request
 * itself, through the same steps, to save two thread switches):
 *   0. gives each batch its version, in order (admit): a transaction's
 *      commit is checked for conflicts first and fails alone
 *      (SETT_ECONFLICT), and the keys written are recorded (oracle.h);
 *   1. appends the values of at least value_threshold bytes to the value
 *      log, which yields their value pointers;
 *   2. per request, makes room in the memtable (a full memtable becomes
 *      immutable and is handed to the flusher; the writer waits on a
 *      condition variable while too many are queued or L0 is too deep),
 *      appends the request's entries to the WAL and inserts them, and
 *      queues them for subscribers (subscribe.h);
 *   3. fsyncs the value log and then the WAL when any request asked for it;
 *   4. publishes the group's newest version to readers and wakes callers.
 * All entries of one request share one version, and a multi-entry request
 * is framed in the WAL (META_TXN ... META_FIN_TXN) so that replay applies
 * it whole or not at all.
 *
 * Errors (doc/FORMAT.md, "Write results"): each request's result is what
 * replay will find.  A request that fails cleanly fails alone; only a log
 * whose state is uncertain (failed fsync or cut-back) fails the group and
 * sets the sticky bg_error.  Flushes and compactions that fail cleanly are
 * retried; stall_error makes writers that would wait for them fail.
 *
 * The flusher turns the oldest immutable memtable into an L0 table, records
 * it in the MANIFEST, swaps in a new version, and only then deletes the WAL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "db_impl.h"
#include "discard.h"
#include "drop.h"
#include "pin.h"
#include "fileio.h"
#include "ikey.h"

/* ---- requests ---- */

enum { REQ_BATCH, REQ_GC, REQ_ROTATE, REQ_SYNC };

typedef struct write_req {
	int kind;
	const sett_batch *b;
	const txn_commit *tc; /* a transaction's commit (REQ_BATCH), or NULL */
	int conflict;         /* the transaction conflicts: nothing is written */
	/* REQ_GC */
	const entry *gc_entries;
	const uint64_t *gc_versions;
	const vptr *gc_old;
	const uint64_t *gc_at;
	int gc_n;

	int sync;
	int done;
	int result;
	uint64_t version;
	struct write_req *next;
} write_req;

/* Per-entry scratch of one request while the writer handles it. */
typedef struct pending {
	entry e;       /* as it goes to the WAL (value = vptr bytes when separated) */
	uint8_t ikey_small[64];
	uint8_t *ikey; /* ikey_small or heap */
	uint8_t vp[VPTR_SIZE];
	int separated;
	int skip;      /* GC entry whose compare-and-set failed */
} pending;

static void write_group(sett_db *db, write_req *group);

/* Bytes of a group's buffers kept for the next group (sett_db.gwbuf). */
#define GROUP_BUF_KEEP (4u << 20)

/*
 * Gives a batch its version, unless it is a transaction that conflicts
 * (then returns 0 and the request fails with SETT_ECONFLICT).  The check
 * and the records of the batch's keys happen here, on the one thread that
 * assigns versions, so they are atomic with respect to other commits.
 */
static int admit(sett_db *db, write_req *r)
{
	oracle *o = &db->orc;
	const txn_commit *tc = r->tc;
	if (tc && oracle_conflicts(o, tc->reads, tc->nreads, tc->read_version)) {
		r->conflict = 1;
		r->result = SETT_ECONFLICT;
		return 0;
	}
	if (tc && tc->commit_version) {
		r->version = tc->commit_version;
		if (r->version > db->next_version)
			db->next_version = r->version;
	} else {
		r->version = ++db->next_version;
	}
	if (oracle_recording(o, db->opt.managed)) {
		for (size_t i = 0; i < r->b->n; i++)
			oracle_record(o, sett_hash(r->b->data.p + r->b->ops[i].koff,
						   r->b->ops[i].klen),
				      r->version);
	} else {
		oracle_skip(o, r->version);
	}
	if (oracle_held(o))
		oracle_prune(o, db_oldest_read_version(db));
	return 1;
}

/*
 * Queues a request and waits for it.  When no group is being written and
 * nothing is queued, the caller writes its own request at once instead of
 * handing it to the writer thread: an uncontended write then costs no
 * thread switch.  Either way only one group is written at a time, and
 * requests that arrive meanwhile are committed together by the writer.
 */
static int submit(sett_db *db, write_req *r)
{
	pthread_mutex_lock(&db->wmu);
	if (db->closing) {
		pthread_mutex_unlock(&db->wmu);
		return SETT_ECLOSED;
	}
	r->next = NULL;
	if (!db->writing && !db->qhead) {
		db->writing = 1;
		pthread_mutex_unlock(&db->wmu);
		write_group(db, r);
		pthread_mutex_lock(&db->wmu);
		db->writing = 0;
		if (db->qhead || db->closing)
			pthread_cond_signal(&db->wcv);
		pthread_mutex_unlock(&db->wmu);
		return r->result;
	}
	if (db->qtail)
		db->qtail->next = r;
	else
		db->qhead = r;
	db->qtail = r;
	pthread_cond_signal(&db->wcv);
	while (!r->done)
		pthread_cond_wait(&db->done_cv, &db->wmu);
	pthread_mutex_unlock(&db->wmu);
	return r->result;
}

size_t db_entry_lsm_bytes(const sett_db *db, size_t klen, size_t vlen)
{
	return klen + (vlen >= db->opt.value_threshold ? VPTR_SIZE : vlen) + 64;
}

size_t db_batch_limit(const sett_db *db)
{
	return db->opt.mem_table_size / 2;
}

int db_write_ex(sett_db *db, sett_batch *b, const txn_commit *tc, int sync, uint64_t *version)
{
	if (db->opt.read_only)
		return -EROFS;
	if (!b->n)
		return 0;
	/* A request must fit in one memtable (entries are inserted whole). */
	size_t lsm_bytes = 0;
	for (size_t i = 0; i < b->n; i++)
		lsm_bytes += db_entry_lsm_bytes(db, b->ops[i].klen, b->ops[i].vlen);
	if (lsm_bytes > db_batch_limit(db))
		return tc ? SETT_ETXNTOOBIG : SETT_ETOOBIG;
	int err = __atomic_load_n(&db->bg_error, __ATOMIC_ACQUIRE);
	if (err)
		return err;
	/* the value log's fsync for values written before, off the writer */
	int rc = sync ? vlog_presync(db->vl) : 0;
	if (rc)
		return rc;
	write_req r = { .kind = REQ_BATCH, .b = b, .tc = tc, .sync = sync };
	rc = submit(db, &r);
	if (rc == 0 && version)
		*version = r.version;
	return rc;
}

int sett_write(sett_db *db, sett_batch *b, int sync, uint64_t *version)
{
	if (db->opt.managed)
		return -EINVAL; /* versions are the caller's: sett_txn_commit_at */
	return db_write_ex(db, b, NULL, sync, version);
}

int sett_put(sett_db *db, sett_val key, sett_val value)
{
	sett_batch b = { 0 };
	int r = sett_batch_set(&b, key, value);
	if (r == 0)
		r = sett_write(db, &b, 0, NULL);
	buf_free(&b.data);
	free(b.ops);
	return r;
}

int sett_del(sett_db *db, sett_val key)
{
	sett_batch b = { 0 };
	int r = sett_batch_delete(&b, key);
	if (r == 0)
		r = sett_write(db, &b, 0, NULL);
	buf_free(&b.data);
	free(b.ops);
	return r;
}

int db_gc_rewrite(sett_db *db, const entry *entries, const uint64_t *versions, const vptr *old,
		  const uint64_t *at, int n)
{
	if (n <= 0)
		return 0;
	write_req r = { .kind = REQ_GC, .gc_entries = entries, .gc_versions = versions,
			.gc_old = old, .gc_at = at, .gc_n = n };
	return submit(db, &r);
}

/* Asks the writer to turn the active memtable into an immutable one. */
int db_rotate_memtable(sett_db *db)
{
	write_req r = { .kind = REQ_ROTATE };
	return submit(db, &r);
}

/* Makes every write acknowledged before it durable. */
int db_sync_request(sett_db *db)
{
	write_req r = { .kind = REQ_SYNC, .sync = 1 };
	return submit(db, &r);
}


/* ---- the writer thread ---- */

/*
 * Makes the active memtable immutable and starts a new one.  Waits (on
 * cv_room) while the flusher is behind or L0 is too deep; when the flush or
 * compaction it waits for is failing (stall_error, e.g. a full disk), it
 * fails with that error instead of waiting for space to come back.  The
 * retired WAL is fsynced first, after the value log it points into:
 * sett_sync and GC sync only the active WAL, so a retired one must be
 * durable on its own.
 */
static int rotate(sett_db *db)
{
	int r = vlog_sync(db->vl);
	if (!r)
		r = wal_sync(db->active.w);
	if (r)
		return r;
	pthread_mutex_lock(&db->mu);
	int stalled = 0;
	struct timespec stall_t0;
	for (;;) {
		if (db->bg_error) {
			r = db->bg_error;
			pthread_mutex_unlock(&db->mu);
			return r;
		}
		int mem_full = db->nimm >= db->opt.num_memtables - 1 || db->nimm >= MAX_MEMTABLES;
		/* While closing, a deep L0 does not stop the last writes: the
		 * compactors may be failing, and close must not hang on them. */
		int l0_full = !db->stopping && db->compactors && db->opt.num_compactors > 0 &&
			      db->current->ntables[0] >= db->opt.num_level_zero_tables_stall;
		if (!mem_full && !l0_full)
			break;
		r = mem_full ? db->stall_error[STALL_MEMTABLES] : 0;
		if (!r && l0_full)
			r = db->stall_error[STALL_L0];
		if (r) {
			pthread_mutex_unlock(&db->mu);
			return r;
		}
		if (!stalled) {
			stalled = 1;
			__atomic_add_fetch(&db->stat_write_stalls, 1, __ATOMIC_RELAXED);
			clock_gettime(CLOCK_MONOTONIC, &stall_t0);
		}
		pthread_cond_broadcast(&db->cv_flush);
		pthread_cond_wait(&db->cv_room, &db->mu);
	}
	if (stalled) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		int64_t us = (int64_t)(t1.tv_sec - stall_t0.tv_sec) * 1000000 +
			     (t1.tv_nsec - stall_t0.tv_nsec) / 1000;
		__atomic_add_fetch(&db->stat_write_stall_us, (uint64_t)(us > 0 ? us : 0),
				   __ATOMIC_RELAXED);
	}
	memslot s;
	r = db_new_memslot_locked(db, &s);
	if (r) {
		pthread_mutex_unlock(&db->mu);
		return r;
	}
	db->imm[db->nimm++] = db->active;
	db->active = s;
	pthread_cond_broadcast(&db->cv_flush);
	pthread_mutex_unlock(&db->mu);
	return 0;
}

/*
 * A memtable whose entries are mostly older versions of keys rewritten
 * since (a file rewritten in place, a counter) is rotated early: every
 * search and iterator step in it pays for those versions, which only the
 * compaction of its L0 table drops.  So the memtable a read searches holds
 * at most about this many dead versions, whatever its size limit.
 */
#define ROTATE_SHADOWED 4096

static int overwritten(const memtable *mt)
{
	size_t s = memtable_shadowed(mt);
	return s >= ROTATE_SHADOWED && s >= memtable_count(mt) / 2;
}

static int room_for(sett_db *db, size_t need)
{
	if (memtable_bytes(db->active.mt) + need <= db->opt.mem_table_size &&
	    wal_size(db->active.w) + need <= db->opt.mem_table_size && !overwritten(db->active.mt))
		return 0;
	if (memtable_count(db->active.mt) == 0)
		return 0; /* an empty memtable takes any request */
	return rotate(db);
}

static void pending_free(pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].ikey != p[i].ikey_small)
			free(p[i].ikey);
	free(p);
}

/* Builds the entries of a request (internal keys, versions, meta bits). */
static int prepare(sett_db *db, write_req *r, pending **out, size_t *nout)
{
	size_t n = r->kind == REQ_BATCH ? r->b->n : (size_t)r->gc_n;
	pending *p = calloc(n ? n : 1, sizeof *p);
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		slice ukey, val;
		uint64_t ver;
		uint8_t meta = 0, umeta = 0;
		uint64_t exp = 0;
		if (r->kind == REQ_BATCH) {
			const batch_op *op = &r->b->ops[i];
			ukey = slice_make(r->b->data.p + op->koff, op->klen);
			val = slice_make(op->vref ? op->vref : r->b->data.p + op->voff, op->vlen);
			ver = r->version;
			meta = op->del ? META_DELETE : 0;
			umeta = op->user_meta;
			exp = op->expires_at;
		} else {
			const entry *ge = &r->gc_entries[i];
			ukey = ikey_user(ge->key);
			val = ge->value;
			ver = r->gc_versions[i];
			meta = ge->meta & META_LSM_MASK & ~META_VALUE_POINTER;
			umeta = ge->user_meta;
			exp = ge->expires_at;
		}
		size_t iklen = ukey.n + IKEY_SUFFIX;
		p[i].ikey = iklen <= sizeof p[i].ikey_small ? p[i].ikey_small : malloc(iklen);
		if (!p[i].ikey) {
			pending_free(p, i);
			return -ENOMEM;
		}
		ikey_make(p[i].ikey, ukey.p, ukey.n, ver);
		p[i].e.key = slice_make(p[i].ikey, iklen);
		p[i].e.value = val;
		p[i].e.meta = meta;
		p[i].e.user_meta = umeta;
		p[i].e.expires_at = exp;
		p[i].separated = !(meta & META_DELETE) && val.n >= db->opt.value_threshold;
	}
	*out = p;
	*nout = n;
	return 0;
}

/*
 * The compare-and-set of a GC write-back: is old[i] still what a read at
 * version `at` finds?  Earlier requests of the group being written are not
 * published yet; one that overwrote the key only makes the rewrite
 * redundant (its version is newer), never wrong.
 */
static int gc_still_live(sett_db *db, const write_req *r, int i, uint64_t at)
{
	buf vs = { 0 };
	uint64_t ver = 0;
	int live = 0;
	int f = db_lookup(db, ikey_user(r->gc_entries[i].key), at, &ver, &vs);
	if (f == 1 && ver == r->gc_versions[i]) {
		vstruct v;
		vptr cur;
		if (vstruct_decode(vs.p, vs.n, &v) == 0 && (v.meta & META_VALUE_POINTER) &&
		    vptr_decode(v.data.p, v.data.n, &cur) == 0 && cur.fid == r->gc_old[i].fid &&
		    cur.offset == r->gc_old[i].offset)
			live = 1;
	}
	buf_free(&vs);
	return live;
}

/*
 * Entry i of a GC write-back: 1 write it, 0 skip it (dead), -1 the request
 * must fail (a pinned copy without what hides it, db_gc_rewrite).  *hider
 * carries the decision for a GC_AT_HIDER entry from the entry before it.
 */
static int gc_check(sett_db *db, const write_req *r, int i, int *hider)
{
	uint64_t at = r->gc_at ? r->gc_at[i] : 0;
	uint64_t published = __atomic_load_n(&db->last_version, __ATOMIC_ACQUIRE);
	if (at == GC_AT_HIDER) {
		int w = *hider;
		*hider = 0;
		return w;
	}
	*hider = 0;
	if (!at)
		return gc_still_live(db, r, i, published);
	if (!gc_still_live(db, r, i, at))
		return 0; /* the pin is gone, or no longer sees it */
	buf vs = { 0 };
	uint64_t cur = 0;
	int f = db_lookup(db, ikey_user(r->gc_entries[i].key), published, &cur, &vs);
	int res = -1;
	vstruct v;
	if (f == 1 && vstruct_decode(vs.p, vs.n, &v) == 0) {
		if (!(v.meta & META_DELETE) && !v.expires_at) {
			res = 1; /* a live newest version hides the copy */
		} else if ((v.meta & META_DELETE) && i + 1 < r->gc_n &&
			   r->gc_at[i + 1] == GC_AT_HIDER && r->gc_versions[i + 1] == cur &&
			   slice_cmp(ikey_user(r->gc_entries[i + 1].key),
				     ikey_user(r->gc_entries[i].key)) == 0) {
			*hider = 1; /* the tombstone goes with it */
			res = 1;
		}
	}
	buf_free(&vs);
	return res;
}

/*
 * Appends a request's entries to the WAL and inserts them in the memtable.
 * On failure nothing of the request is in either, unless *uncertain is set
 * (the memtable took part of it after the WAL append).
 */
static int apply_request(sett_db *db, write_req *r, pending *p, size_t n, buf *wbuf,
			 buf *vsbuf, int *uncertain)
{
	size_t need = 0;
	for (size_t i = 0; i < n; i++)
		need += p[i].e.key.n + (p[i].separated ? VPTR_SIZE : p[i].e.value.n) + 48;
	int rc = room_for(db, need);
	if (rc)
		return rc;
	size_t live = 0;
	int hider = 0;
	for (size_t i = 0; i < n; i++) {
		int w = r->kind == REQ_GC ? gc_check(db, r, (int)i, &hider) : 1;
		if (w < 0)
			return SETT_ENOREWRITE; /* nothing written yet */
		if (w)
			live++;
		else
			p[i].skip = 1;
	}
	wbuf->n = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i].skip)
			continue;
		entry e = p[i].e;
		if (p[i].separated) {
			e.value = slice_make(p[i].vp, VPTR_SIZE);
			e.meta |= META_VALUE_POINTER;
		}
		if (live > 1)
			e.meta |= ++k == live ? (META_TXN | META_FIN_TXN) : META_TXN;
		if ((rc = entry_append(wbuf, &e)))
			return rc;
	}
	if (!wbuf->n)
		return 0;
	if ((rc = wal_append(db->active.w, wbuf->p, wbuf->n)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (p[i].skip)
			continue;
		vstruct v = { .meta = p[i].e.meta, .user_meta = p[i].e.user_meta,
			      .expires_at = p[i].e.expires_at, .data = p[i].e.value };
		if (p[i].separated) {
			v.meta |= META_VALUE_POINTER;
			v.data = slice_make(p[i].vp, VPTR_SIZE);
		}
		vsbuf->n = 0;
		if ((rc = vstruct_append(vsbuf, &v)) ||
		    (rc = memtable_put(db->active.mt, p[i].e.key, slice_make(vsbuf->p, vsbuf->n)))) {
			*uncertain = 1;
			return rc;
		}
	}
	return 0;
}

/*
 * Writes a group.  Each request's result is what replay will find: a
 * request that fails leaves nothing behind (its WAL append was cut back,
 * its values in the value log are unreferenced garbage), so it fails alone
 * and the others are written, acknowledged and published.  Only when the
 * logs' state is uncertain (a failed fsync, a failed cut-back, a memtable
 * that took part of a request) does the whole group fail, and every later
 * write with it (bg_error): what reached the disk is then what the next
 * open replays.
 */
static void write_group(sett_db *db, write_req *group)
{
	int sync = db->opt.sync_writes;
	size_t nreq = 0;
	for (write_req *r = group; r; r = r->next) {
		sync |= r->sync;
		nreq++;
	}
	pending **ps = calloc(nreq, sizeof *ps);
	size_t *ns = calloc(nreq, sizeof *ns);
	entry *large = NULL;
	vptr *vps = NULL;
	buf wbuf = db->gwbuf, vsbuf = db->gvsbuf;
	wbuf.n = vsbuf.n = 0;
	int rc = (!ps || !ns) ? -ENOMEM : 0;
	int uncertain = 0;
	uint64_t publish = 0;

	/* Versions and entries. */
	size_t j = 0, nlarge = 0;
	if (!rc)
		rc = __atomic_load_n(&db->bg_error, __ATOMIC_ACQUIRE);
	for (write_req *r = group; r && !rc; r = r->next, j++) {
		/* A GC write-back keeps its entries' versions but still takes a
		 * version of its own: readers older than it are then known to GC,
		 * which keeps the old file until they are gone. */
		if (r->kind == REQ_BATCH && !admit(db, r))
			continue;
		if (r->kind == REQ_GC)
			r->version = ++db->next_version;
		if (r->kind == REQ_BATCH || r->kind == REQ_GC)
			rc = prepare(db, r, &ps[j], &ns[j]);
		for (size_t i = 0; !rc && i < ns[j]; i++)
			nlarge += ps[j][i].separated;
	}
	/* 1. The value log.  Until step 4 publishes the group, GC must not
	 * judge the files its pointers go into. */
	if (!rc && nlarge)
		__atomic_store_n(&db->inflight_fid, vlog_head_fid(db->vl), __ATOMIC_SEQ_CST);
	if (!rc && nlarge) {
		large = malloc(nlarge * sizeof *large);
		vps = malloc(nlarge * sizeof *vps);
		if (!large || !vps)
			rc = -ENOMEM;
		size_t k = 0;
		for (size_t q = 0; !rc && q < nreq; q++)
			for (size_t i = 0; i < ns[q]; i++)
				if (ps[q][i].separated)
					large[k++] = ps[q][i].e;
		if (!rc)
			rc = vlog_append(db->vl, large, (int)nlarge, vps);
		k = 0;
		for (size_t q = 0; !rc && q < nreq; q++)
			for (size_t i = 0; i < ns[q]; i++)
				if (ps[q][i].separated)
					vptr_encode(ps[q][i].vp, &vps[k++]);
	}
	/* 2. WAL + memtable, request by request. */
	j = 0;
	for (write_req *r = group; r; r = r->next, j++) {
		if (rc) {
			r->result = rc;
			continue;
		}
		if (r->conflict) {
			continue; /* r->result is SETT_ECONFLICT */
		} else if (r->kind == REQ_ROTATE) {
			r->result = memtable_count(db->active.mt) ? rotate(db) : 0;
		} else if (r->kind == REQ_SYNC) {
			r->result = 0;
		} else {
			r->result = apply_request(db, r, ps[j], ns[j], &wbuf, &vsbuf, &uncertain);
			if (!r->result) {
				/* Managed mode: versions need not come in order. */
				if (r->version > publish)
					publish = r->version;
				if (r->kind == REQ_BATCH) {
					__atomic_add_fetch(&db->stat_user_bytes, r->b->user_bytes,
							   __ATOMIC_RELAXED);
					subs_publish(db, r->b, r->version);
				}
			}
		}
		if (r->result && (uncertain || vlog_error(db->vl) || wal_error(db->active.w)))
			rc = r->result; /* the rest of the group fails too */
	}
	/* 3. Durability: value log before the WAL that points into it. */
	if (!rc && sync) {
		rc = vlog_sync(db->vl);
		if (!rc)
			rc = wal_sync(db->active.w);
		uncertain |= rc != 0; /* a failed fsync: the data may or may not be there */
	}
	if (rc) {
		/* Nothing of the group is published or acknowledged. */
		for (write_req *r = group; r; r = r->next)
			r->result = rc;
		if (uncertain || vlog_error(db->vl) || wal_error(db->active.w))
			db_set_bg_error(db, rc);
		publish = 0;
	}
	/* 4. Publish.  After a background error the db refuses writes, so a
	 * failed group is never made visible by a later one. */
	if (publish > __atomic_load_n(&db->last_version, __ATOMIC_RELAXED))
		__atomic_store_n(&db->last_version, publish, __ATOMIC_RELEASE);
	__atomic_store_n(&db->inflight_fid, UINT32_MAX, __ATOMIC_SEQ_CST);

	for (size_t q = 0; q < nreq; q++)
		if (ps && ps[q])
			pending_free(ps[q], ns[q]);
	free(ps);
	free(ns);
	free(large);
	free(vps);
	/* kept for the next group, unless one group made them large */
	if (wbuf.cap > GROUP_BUF_KEEP)
		buf_free(&wbuf);
	if (vsbuf.cap > GROUP_BUF_KEEP)
		buf_free(&vsbuf);
	db->gwbuf = wbuf;
	db->gvsbuf = vsbuf;
}

void *db_writer_main(void *arg)
{
	sett_db *db = arg;
	pthread_mutex_lock(&db->wmu);
	for (;;) {
		while (db->writing || (!db->qhead && !db->closing))
			pthread_cond_wait(&db->wcv, &db->wmu);
		if (!db->qhead)
			break;
		write_req *group = db->qhead;
		db->qhead = db->qtail = NULL;
		db->writing = 1;
		pthread_mutex_unlock(&db->wmu);

		write_group(db, group);

		pthread_mutex_lock(&db->wmu);
		db->writing = 0;
		for (write_req *r = group, *next; r; r = next) {
			next = r->next;
			r->done = 1;
		}
		pthread_cond_broadcast(&db->done_cv);
	}
	pthread_mutex_unlock(&db->wmu);
	return NULL;
}

/* ---- the flusher thread ---- */

/*
 * Writes memtable mt as a new table; *tp is NULL when the memtable is
 * empty.  Versions no reader can see are left out, by compaction's rule
 * without its bottom case (D = the oldest read version in use: of a key's
 * versions <= D only the newest is kept, even a tombstone: older versions
 * may be in the tables below); the value pointers left out go to *acc, for
 * the discard statistics once the table is installed.  *hides: whether the
 * table holds an entry a prefix drop hides (a WAL replayed at open may hold
 * entries written before the drop).
 */
static int flush_memtable(sett_db *db, memtable *mt, table **tp, discard_acc *acc, int *hides)
{
	char path[4096], why[512] = "";
	*tp = NULL;
	if (memtable_count(mt) == 0)
		return 0;
	/* The table will outlive the WAL: the values it points at must be
	 * durable before it is. */
	int r = vlog_sync(db->vl);
	if (r)
		return r;
	uint64_t id = db_new_table_id(db);
	db_table_path(db, id, path, sizeof path);
	table_builder *b;
	r = table_builder_new(path, &db->topt, &b);
	if (r)
		return r;
	sit *it = memtable_iter_new(mt);
	if (!it) {
		table_builder_abandon(b);
		return -ENOMEM;
	}
	/* compaction's rule (pin.h), without its bottom case: a tombstone
	 * stays, older versions may be in the tables below */
	uint64_t discard_point = db_oldest_read_version(db);
	uint64_t *pins = NULL;
	size_t npins = 0, bucket = 0;
	if (pin_points(db, discard_point, &pins, &npins)) {
		sit_free(it);
		table_builder_abandon(b);
		return -ENOMEM;
	}
	buf last = { 0 };
	int seen_le = 0; /* a version <= discard_point of `last` was kept */
	for (sit_first(it); sit_valid(it) && !r; sit_next(it)) {
		slice ik = sit_key(it), vsb = sit_value(it);
		slice uk = ikey_user(ik);
		if (!last.p || slice_cmp(uk, slice_make(last.p, last.n)) != 0) {
			last.n = 0;
			if ((r = buf_append(&last, uk.p, uk.n)))
				break;
			seen_le = 0;
		}
		uint64_t ver = ikey_version(ik);
		if (ver <= discard_point) {
			size_t bk = pin_bucket(pins, npins, ver);
			vstruct vs;
			if (seen_le && bk == bucket && vstruct_decode(vsb.p, vsb.n, &vs) == 0) {
				vptr p;
				if ((vs.meta & META_VALUE_POINTER) &&
				    vptr_decode(vs.data.p, vs.data.n, &p) == 0)
					discard_acc_add(acc, p.fid, p.len);
				continue;
			}
			seen_le = 1;
			bucket = bk;
		}
		if (!*hides)
			*hides = drops_compact(db, uk, ver, UINT64_MAX, NULL, 0);
		r = table_builder_add(b, ik, vsb);
	}
	free(pins);
	buf_free(&last);
	if (!r)
		r = sit_error(it);
	sit_free(it);
	if (r) {
		table_builder_abandon(b);
		return r;
	}
	if ((r = table_builder_finish(b))) /* fsyncs the table and the directory */
		return r;
	if ((r = table_open_enc(path, id, db->bcache, &db->keys, tp, why, sizeof why)))
		sio_unlink(path);
	return r;
}

/* Waits (mu held) until woken, the final flush, or `ms` have passed. */
static void flusher_backoff(sett_db *db, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (db->stopping != STOP_FLUSHER && !db->bg_error)
		if (pthread_cond_timedwait(&db->cv_flush, &db->mu, &ts) == ETIMEDOUT)
			break;
}

/*
 * A flush that fails without harm (a full disk: the partial table is
 * removed, the MANIFEST is unchanged, the memtable and its WAL stay) is
 * retried with a growing pause; meanwhile stall_error makes writers that
 * wait for a free memtable fail instead of hanging.  When closing, a
 * failed flush is given up: the memtable's WAL is replayed at the next
 * open.  A value log or MANIFEST whose state is uncertain stops the
 * flusher (bg_error).
 */
void *db_flusher_main(void *arg)
{
	sett_db *db = arg;
	long backoff = 0;
	pthread_mutex_lock(&db->mu);
	for (;;) {
		while (db->nimm == 0 && db->stopping != STOP_FLUSHER)
			pthread_cond_wait(&db->cv_flush, &db->mu);
		if (db->nimm == 0 || db->bg_error)
			break;
		memslot s = db->imm[0];
		pthread_mutex_unlock(&db->mu);

		table *t = NULL;
		discard_acc acc = { 0 };
		int hides = 0;
		uint64_t drop_gen = drops_generation(db);
		int r = flush_memtable(db, s.mt, &t, &acc, &hides);
		if (!r && t) {
			uint8_t lvl = 0;
			version_edit e = { .add = &t, .add_levels = &lvl, .nadd = 1 };
			/* a table holding what a drop hides keeps the drop from
			 * being retired (drop.h), as a compaction's outputs do */
			if (hides || drops_generation(db) != drop_gen)
				drops_note_kept(db);
			r = db_install_edit(db, &e);
			if (r && !__atomic_load_n(&db->bg_error, __ATOMIC_ACQUIRE))
				table_mark_obsolete(t); /* not named by the MANIFEST */
			table_unref(t); /* the version holds its own reference */
		}
		if (!r)
			discard_acc_apply(db->discard, &acc);
		discard_acc_free(&acc);
		if (r) {
			if (vlog_error(db->vl))
				db_set_bg_error(db, r);
			else
				db_set_stall_error(db, STALL_MEMTABLES, r);
			pthread_mutex_lock(&db->mu);
			db->flush_failures++;
			pthread_cond_broadcast(&db->cv_room);
			if (db->bg_error || db->stopping == STOP_FLUSHER)
				break;
			backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 100;
			flusher_backoff(db, backoff);
			continue;
		}
		backoff = 0;
		pthread_mutex_lock(&db->mu);
		db->stall_error[STALL_MEMTABLES] = 0;
		memmove(&db->imm[0], &db->imm[1], (size_t)(db->nimm - 1) * sizeof(memslot));
		db->nimm--;
		pthread_cond_broadcast(&db->cv_room);
		pthread_mutex_unlock(&db->mu);

		db_memslot_free(&s, 1);
		db_kick_compaction(db);
		pthread_mutex_lock(&db->mu);
	}
	pthread_cond_broadcast(&db->cv_room);
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/* ---- memtables, sync and flush ---- */

int db_new_memslot_locked(sett_db *db, memslot *s)
{
	char path[4096];
	uint32_t id = db->next_wal_id++;
	snprintf(path, sizeof path, "%s/%05u.mem", db->dir, id);
	*s = (memslot){ 0 };
	int r = memtable_new(&s->mt);
	if (r)
		return r;
	if ((r = wal_create_enc(path, id, &db->topt.cipher, &s->w))) {
		memtable_unref(s->mt);
		s->mt = NULL;
	}
	return r;
}

void db_memslot_free(memslot *s, int remove)
{
	if (s->w)
		wal_close(s->w, remove);
	for (int i = 0; i < s->nmore; i++)
		wal_close(s->more[i], remove);
	free(s->more);
	if (s->mt)
		memtable_unref(s->mt);
	*s = (memslot){ 0 };
}

int db_memslot_sync(memslot *s)
{
	int r = wal_sync(s->w);
	for (int i = 0; !r && i < s->nmore; i++)
		r = wal_sync(s->more[i]);
	return r;
}

uint64_t db_memslot_wal_bytes(memslot *s)
{
	uint64_t n = s->w ? wal_size(s->w) : 0;
	for (int i = 0; i < s->nmore; i++)
		n += wal_size(s->more[i]);
	return n;
}

int sett_sync(sett_db *db)
{
	if (db->opt.read_only)
		return 0;
	/* The sync goes through the writer: that orders it after every write
	 * acknowledged before this call.  The value log's bulk (a file's data,
	 * a GC rewrite) is made durable first, on this thread: the writer's
	 * fsync, during which no write goes on, then has little left. */
	int r = vlog_presync(db->vl);
	return r ? r : db_sync_request(db);
}

int sett_flush(sett_db *db)
{
	if (db->opt.read_only)
		return -EROFS;
	int r = db_rotate_memtable(db);
	if (r)
		return r;
	return db_wait_flushed(db);
}

int db_wait_flushed(sett_db *db)
{
	/* Until the memtables are flushed, or a flush fails (it is retried,
	 * but not waited for: the disk may stay full). */
	pthread_mutex_lock(&db->mu);
	uint64_t fails = db->flush_failures;
	while (db->nimm > 0 && !db->bg_error && !db->stopping && db->flush_failures == fails)
		pthread_cond_wait(&db->cv_room, &db->mu);
	int r = db->bg_error;
	if (!r && db->nimm > 0)
		r = db->stopping ? SETT_ECLOSED
				: db->stall_error[STALL_MEMTABLES] ? db->stall_error[STALL_MEMTABLES] : -EIO;
	pthread_mutex_unlock(&db->mu);
	return r;
}
