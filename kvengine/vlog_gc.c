/*
 * vlog_gc.c - value-log garbage collection.
 *
 * A value-log file holds the values of many versions; once those versions
 * are overwritten, deleted or expired, the file is mostly garbage.  GC
 * rewrites the live entries of such a file to the head of the log and
 * deletes the file.
 *
 * Which files: the discard statistics (discard.h, kept by compaction) give
 * a cheap first estimate, but they only count versions compaction has
 * already dropped, so data still in memtables (a small store that keeps
 * overwriting) would never qualify.  GC therefore measures liveness
 * directly: pass 1 reads every entry of the file (vlog_iterate checks each
 * entry's checksum) and asks the LSM for the key's newest version at the
 * published version (a group not yet acknowledged decides nothing); an
 * entry is live iff that version is the entry's version, is not a
 * tombstone, has not expired, and points at exactly this file and offset.
 * sett_gc() measures every file but the head; the background thread
 * measures the files the statistics point at plus one more file per wake
 * (a cycle over all files, restarted whenever the store changed), so a
 * daemon's store shrinks without anyone calling sett_gc().
 *
 * Rewrite: pass 2 reads the live values again (vlog_read checks the user
 * key) and hands them in batches to db_gc_rewrite, which re-checks
 * liveness on the writer thread and writes the value under the same
 * version: a compare-and-set, so a key deleted or overwritten meanwhile is
 * skipped and never comes back.  sett_sync() then makes the rewrite, and
 * every overwrite or delete that made the file's entries dead, durable
 * before the file is scheduled for deletion (also when nothing was live).
 *
 * Delete: readers (iterators) at a read version older than the end of the
 * rewrite may still need old versions in the file, so the file is deleted
 * only once db_oldest_read_version() reaches that point; until then it is
 * kept on a pending list that every pass (and the thread) retries.  The
 * vlog itself defers the unlink until in-flight reads let go of the file.
 *
 * The head file is rotated (vlog_rotate) when it qualifies, so it can be
 * collected too; sett_gc() rotates a head that holds at least 1/16 of
 * value_log_file_size.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compaction.h"
#include "db_impl.h"
#include "discard.h"
#include "ikey.h"

#define GC_BATCH_BYTES (4u << 20)
#define GC_BATCH_ENTRIES 1024
/* Time between the end of a rewrite and the unlink, so a point read that
 * looked up the old pointer just before the rewrite can still read it. */
#define GC_GRACE_MS 20

typedef struct pending_removal {
	uint32_t fid;
	uint64_t after_version; /* readers older than this may need the file */
	uint64_t not_before_ms;
} pending_removal;

struct gc_state {
	pthread_mutex_t run_mu; /* one pass at a time (thread or sett_gc) */
	pthread_mutex_t mu;     /* stop, pending */
	pthread_cond_t cv;
	int stop;
	pthread_t th;
	int have_thread;
	pending_removal *pend;
	size_t npend, cappend;
	/*
	 * Direct measurement by the thread (run_mu held): a cycle measures
	 * every file once, one per wake; a new cycle starts when the store
	 * changed since the last one started.
	 */
	int cycle_active;
	uint32_t scan_cursor;
	uint64_t cycle_version;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int gc_stopping(struct gc_state *gs)
{
	return __atomic_load_n(&gs->stop, __ATOMIC_RELAXED);
}

/* ---- pending removals ---- */

static int pending_has(struct gc_state *gs, uint32_t fid)
{
	int has = 0;
	pthread_mutex_lock(&gs->mu);
	for (size_t i = 0; i < gs->npend && !has; i++)
		has = gs->pend[i].fid == fid;
	pthread_mutex_unlock(&gs->mu);
	return has;
}

static int pending_add(struct gc_state *gs, uint32_t fid, uint64_t after, uint64_t not_before)
{
	pthread_mutex_lock(&gs->mu);
	if (gs->npend == gs->cappend) {
		size_t cap = gs->cappend ? gs->cappend * 2 : 8;
		pending_removal *p = realloc(gs->pend, cap * sizeof *p);
		if (!p) {
			pthread_mutex_unlock(&gs->mu);
			return -ENOMEM;
		}
		gs->pend = p;
		gs->cappend = cap;
	}
	gs->pend[gs->npend++] = (pending_removal){ fid, after, not_before };
	pthread_mutex_unlock(&gs->mu);
	return 0;
}

/* Deletes the pending files no reader can need any more; returns how many. */
static int pending_process(sett_db *db, struct gc_state *gs, int wait_grace)
{
	int removed = 0;
	uint64_t oldest = db_oldest_read_version(db);
	discard *dc = compaction_discard(db);
	pthread_mutex_lock(&gs->mu);
	for (size_t i = 0; i < gs->npend;) {
		pending_removal p = gs->pend[i];
		if (oldest < p.after_version) {
			i++;
			continue;
		}
		uint64_t t = now_ms();
		if (t < p.not_before_ms) {
			if (!wait_grace) {
				i++;
				continue;
			}
			struct timespec ts = { 0, (long)(p.not_before_ms - t) * 1000000L };
			pthread_mutex_unlock(&gs->mu);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&gs->mu);
			continue; /* the list may have changed: look at index i again */
		}
		gs->pend[i] = gs->pend[--gs->npend];
		pthread_mutex_unlock(&gs->mu);
		int r = vlog_file_remove(db->vl, p.fid);
		if (r == 0 || r == -ENOENT) {
			if (dc)
				discard_remove(dc, p.fid);
			__atomic_fetch_add(&db->stat_gc_files, 1, __ATOMIC_RELAXED);
			removed++;
		} else {
			pending_add(gs, p.fid, p.after_version, p.not_before_ms);
		}
		pthread_mutex_lock(&gs->mu);
		if (r && r != -ENOENT)
			break; /* retried by the next pass */
	}
	pthread_mutex_unlock(&gs->mu);
	return removed;
}

/* ---- pass 1: which entries of a file are live ---- */

typedef struct live_entry {
	size_t koff;   /* internal key in live_set.keys */
	size_t klen;
	vptr p;
	uint8_t user_meta;
	uint64_t expires_at;
} live_entry;

typedef struct live_set {
	sett_db *db;
	struct gc_state *gs;
	uint32_t fid;
	uint64_t read_version; /* liveness is judged at this published version */
	uint64_t now;
	live_entry *e;
	size_t n, cap;
	buf keys;
	buf vs;
	uint64_t live_bytes;
} live_set;

static int live_scan_entry(void *arg, const entry *e, const vptr *p)
{
	live_set *ls = arg;
	if (gc_stopping(ls->gs))
		return SETT_ECLOSED;
	if (e->key.n < IKEY_SUFFIX || p->fid != ls->fid)
		return SETT_ECORRUPT;
	if (e->meta & META_DELETE)
		return 0;
	slice uk = ikey_user(e->key);
	uint64_t ver = ikey_version(e->key), cur = 0;
	int r = db_lookup(ls->db, uk, ls->read_version, &cur, &ls->vs);
	if (r < 0)
		return r;
	if (r == 0 || cur != ver)
		return 0;
	vstruct v;
	vptr at;
	if (vstruct_decode(ls->vs.p, ls->vs.n, &v) || !(v.meta & META_VALUE_POINTER) ||
	    (v.meta & META_DELETE) || vptr_decode(v.data.p, v.data.n, &at) || at.fid != p->fid ||
	    at.offset != p->offset || at.len != p->len)
		return 0;
	if (v.expires_at && v.expires_at <= ls->now)
		return 0;
	if (ls->n == ls->cap) {
		size_t cap = ls->cap ? ls->cap * 2 : 256;
		live_entry *ne = realloc(ls->e, cap * sizeof *ne);
		if (!ne)
			return -ENOMEM;
		ls->e = ne;
		ls->cap = cap;
	}
	live_entry *le = &ls->e[ls->n];
	le->koff = ls->keys.n;
	le->klen = e->key.n;
	le->p = *p;
	le->user_meta = v.user_meta;
	le->expires_at = v.expires_at;
	if ((r = buf_append(&ls->keys, e->key.p, e->key.n)))
		return r;
	ls->n++;
	ls->live_bytes += p->len;
	return 0;
}

static void live_set_free(live_set *ls)
{
	free(ls->e);
	buf_free(&ls->keys);
	buf_free(&ls->vs);
}

/* ---- pass 2: rewrite ---- */

static int rewrite_batch(sett_db *db, live_set *ls, size_t from, size_t to, buf *vals,
			 size_t *voff, entry *ents, uint64_t *vers, vptr *olds)
{
	int n = 0;
	for (size_t i = from; i < to; i++, n++) {
		live_entry *le = &ls->e[i];
		slice ik = slice_make(ls->keys.p + le->koff, le->klen);
		ents[n] = (entry){ .key = ik, .meta = 0, .user_meta = le->user_meta,
				   .expires_at = le->expires_at };
		vers[n] = ikey_version(ik);
		olds[n] = le->p;
		ents[n].value = slice_make(vals->p + voff[n], voff[n + 1] - voff[n]);
	}
	return db_gc_rewrite(db, ents, vers, olds, n);
}

static int rewrite_live(sett_db *db, struct gc_state *gs, live_set *ls)
{
	entry *ents = malloc(GC_BATCH_ENTRIES * sizeof *ents);
	uint64_t *vers = malloc(GC_BATCH_ENTRIES * sizeof *vers);
	vptr *olds = malloc(GC_BATCH_ENTRIES * sizeof *olds);
	size_t *voff = malloc((GC_BATCH_ENTRIES + 1) * sizeof *voff);
	buf vals = { 0 };
	char why[512];
	int r = 0;
	if (!ents || !vers || !olds || !voff)
		r = -ENOMEM;
	size_t start = 0;
	for (size_t i = 0; i < ls->n && !r; i++) {
		if (gc_stopping(gs)) {
			r = SETT_ECLOSED;
			break;
		}
		if (i == start) {
			vals.n = 0;
			voff[0] = 0;
		}
		live_entry *le = &ls->e[i];
		slice uk = ikey_user(slice_make(ls->keys.p + le->koff, le->klen));
		r = vlog_read(db->vl, &le->p, uk, &vals, why, sizeof why);
		if (r)
			break;
		voff[i - start + 1] = vals.n;
		if (i + 1 == ls->n || i + 1 - start == GC_BATCH_ENTRIES || vals.n >= GC_BATCH_BYTES) {
			r = rewrite_batch(db, ls, start, i + 1, &vals, voff, ents, vers, olds);
			start = i + 1;
		}
	}
	free(ents);
	free(vers);
	free(olds);
	free(voff);
	buf_free(&vals);
	return r;
}

/*
 * Measures file fid and rewrites it when at least `ratio` of it is dead.
 * Returns 1 if the file was rewritten (and scheduled for deletion), 0 if
 * it did not qualify, <0 on error.
 */
static int gc_file(sett_db *db, struct gc_state *gs, uint32_t fid, double ratio,
		   uint64_t read_version)
{
	uint64_t size = vlog_file_size(db->vl, fid);
	live_set ls = { .db = db, .gs = gs, .fid = fid, .read_version = read_version,
			.now = (uint64_t)time(NULL) };
	int r = vlog_iterate(db->vl, fid, live_scan_entry, &ls);
	if (r) {
		live_set_free(&ls);
		return r;
	}
	uint64_t payload = size > LOG_HEADER_SIZE ? size - LOG_HEADER_SIZE : 0;
	uint64_t dead = payload > ls.live_bytes ? payload - ls.live_bytes : 0;
	int qualifies = ls.n == 0 || (dead > 0 && (double)dead >= ratio * (double)size);
	if (!qualifies) {
		live_set_free(&ls);
		return 0;
	}
	if (ls.n)
		r = rewrite_live(db, gs, &ls);
	/*
	 * Whatever made the file's entries dead (an overwrite, a delete, this
	 * rewrite) must be durable before the file can go: a power cut must
	 * not bring back a durable pointer into a deleted file.  The writes
	 * seen at ls.read_version were all acknowledged before this sync.
	 */
	if (!r)
		r = sett_sync(db);
	live_set_free(&ls);
	if (r)
		return r;
	r = pending_add(gs, fid, sett_current_version(db), now_ms() + GC_GRACE_MS);
	return r ? r : 1;
}

/*
 * One GC pass.  explicit_call: measure every file (sett_gc); otherwise the
 * statistics' candidates plus one round-robin file.  Returns the number of
 * files rewritten or removed, or <0 on error.
 */
static int gc_pass(sett_db *db, struct gc_state *gs, double ratio, int explicit_call)
{
	int done = 0, r = 0;
	pthread_mutex_lock(&gs->run_mu);
	__atomic_fetch_add(&db->stat_gc_runs, 1, __ATOMIC_RELAXED);
	discard *dc = compaction_discard(db);
	done += pending_process(db, gs, explicit_call);

	uint32_t head = vlog_head_fid(db->vl);
	uint64_t head_size = vlog_file_size(db->vl, head);
	uint64_t rotate_min = db->opt.value_log_file_size / 16;
	if (head_size > LOG_HEADER_SIZE && head_size >= rotate_min) {
		uint64_t d = dc ? discard_get(dc, head) : 0;
		if (explicit_call || (double)d >= ratio * (double)head_size) {
			if ((r = vlog_rotate(db->vl)))
				goto out;
			head = vlog_head_fid(db->vl);
		}
	}

	/*
	 * Files a group being written points into are not published yet.
	 * Liveness is judged at the version published when the group in
	 * flight (if any) was seen: a group still in the memtable but not
	 * published (its fsync may yet fail) must not decide anything, and a
	 * group that wrote into a file below `head` was published before it
	 * cleared inflight_fid (write.c), so `lv` covers it.
	 */
	uint32_t busy = __atomic_load_n(&db->inflight_fid, __ATOMIC_SEQ_CST);
	if (busy < head)
		head = busy;
	uint64_t lv = sett_current_version(db);

	uint32_t *fids = NULL;
	int n = 0;
	if ((r = vlog_list(db->vl, &fids, &n)))
		goto out;
	if (dc)
		discard_retain(dc, fids, (size_t)n);

	/* The thread measures one extra file per wake (see cycle_active). */
	uint32_t scan_extra = UINT32_MAX;
	if (!explicit_call) {
		if (!gs->cycle_active && lv != gs->cycle_version) {
			gs->cycle_active = 1;
			gs->cycle_version = lv;
			gs->scan_cursor = 0;
		}
		if (gs->cycle_active) {
			for (int i = 0; i < n && scan_extra == UINT32_MAX; i++)
				if ((gs->scan_cursor == 0 || fids[i] > gs->scan_cursor) && fids[i] < head)
					scan_extra = fids[i];
			if (scan_extra == UINT32_MAX)
				gs->cycle_active = 0;
			else
				gs->scan_cursor = scan_extra;
		}
	}

	for (int i = 0; i < n && !r; i++) {
		uint32_t fid = fids[i];
		if (fid >= head || pending_has(gs, fid))
			continue;
		if (gc_stopping(gs) || __atomic_load_n(&db->bg_error, __ATOMIC_RELAXED)) {
			r = SETT_ECLOSED;
			break;
		}
		if (!explicit_call && fid != scan_extra) {
			uint64_t size = vlog_file_size(db->vl, fid);
			uint64_t d = dc ? discard_get(dc, fid) : 0;
			if (size > LOG_HEADER_SIZE && (double)d < ratio * (double)size)
				continue;
		}
		int g = gc_file(db, gs, fid, ratio, lv);
		if (g > 0)
			done++;
		else if (g < 0 && g != SETT_ECORRUPT)
			r = g; /* a corrupt file is left alone; sett_verify reports it */
	}
	free(fids);
	done += pending_process(db, gs, explicit_call);
	if (dc)
		discard_persist(dc);
out:
	pthread_mutex_unlock(&gs->run_mu);
	return r ? r : done;
}

static void *gc_main(void *arg)
{
	sett_db *db = arg;
	struct gc_state *gs = db->gc;
	int interval = db->opt.gc_interval_ms > 0 ? db->opt.gc_interval_ms : 10000;
	for (;;) {
		pthread_mutex_lock(&gs->mu);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += interval / 1000;
		ts.tv_nsec += (long)(interval % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!gs->stop)
			if (pthread_cond_timedwait(&gs->cv, &gs->mu, &ts) == ETIMEDOUT)
				break;
		int stop = gs->stop;
		pthread_mutex_unlock(&gs->mu);
		if (stop)
			break;
		gc_pass(db, gs, db->opt.gc_discard_ratio, 0);
	}
	return NULL;
}

/* ---- hooks and API ---- */

int gc_start(sett_db *db)
{
	if (db->opt.read_only || db->gc)
		return 0;
	struct gc_state *gs = calloc(1, sizeof *gs);
	if (!gs)
		return -ENOMEM;
	pthread_mutex_init(&gs->run_mu, NULL);
	pthread_mutex_init(&gs->mu, NULL);
	pthread_cond_init(&gs->cv, NULL);
	db->gc = gs;
	if (db->opt.gc_discard_ratio > 0 && db->opt.gc_interval_ms > 0) {
		int r = pthread_create(&gs->th, NULL, gc_main, db);
		if (r) {
			gc_stop(db);
			return -r;
		}
		gs->have_thread = 1;
	}
	return 0;
}

void gc_stop(sett_db *db)
{
	struct gc_state *gs = db->gc;
	if (!gs)
		return;
	pthread_mutex_lock(&gs->mu);
	__atomic_store_n(&gs->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&gs->cv);
	pthread_mutex_unlock(&gs->mu);
	if (gs->have_thread)
		pthread_join(gs->th, NULL);
	/* Wait for a sett_gc() in progress (it sees stop and returns). */
	pthread_mutex_lock(&gs->run_mu);
	pending_process(db, gs, 0);
	pthread_mutex_unlock(&gs->run_mu);
	db->gc = NULL;
	pthread_mutex_destroy(&gs->run_mu);
	pthread_mutex_destroy(&gs->mu);
	pthread_cond_destroy(&gs->cv);
	free(gs->pend);
	free(gs);
}

int sett_gc(sett_db *db, double discard_ratio)
{
	if (db->opt.read_only)
		return -EROFS;
	if (!(discard_ratio >= 0 && discard_ratio <= 1))
		return -EINVAL;
	struct gc_state *gs = db->gc;
	if (!gs)
		return SETT_ECLOSED;
	int r = gc_pass(db, gs, discard_ratio, 1);
	if (r < 0)
		return r;
	return r > 0 ? 0 : SETT_ENOREWRITE;
}

int sett_vlog_files(sett_db *db, sett_vlog_info *out, int max)
{
	uint32_t *fids;
	int n;
	int r = vlog_list(db->vl, &fids, &n);
	if (r)
		return r;
	discard *dc = compaction_discard(db);
	for (int i = 0; i < n && i < max; i++) {
		out[i].fid = fids[i];
		out[i].bytes = vlog_file_size(db->vl, fids[i]);
		out[i].discard_bytes = dc ? discard_get(dc, fids[i]) : 0;
	}
	free(fids);
	return n;
}
