/*
 * vlog_gc.c - value-log garbage collection.
 *
 * A value-log file holds the values of many versions; once those versions
 * are overwritten, deleted or expired, the file is mostly garbage.  GC
 * rewrites the live entries of such a file to the head of the log and
 * deletes the file.
 *
 * Which files: the discard statistics (discard.h) give a cheap estimate:
 * compaction adds every version it drops (an idle store flushes its
 * memtable and merges L0 down, so versions superseded in memory count
 * too), and GC replaces a file's figure by what it measured.  gc_plan
 * turns them into the files to rewrite.  GC confirms by measuring liveness
 * directly: pass 1 reads every entry of the file (vlog_iterate checks each
 * entry's checksum) and asks the LSM for the key's newest version at the
 * published version (a group not yet acknowledged decides nothing); an
 * entry is live iff that version is the entry's version, is not a
 * tombstone, has not expired, and points at exactly this file and offset
 * - or the same holds at a pinned version at or above the entry's (an old
 * version a pin keeps is moved like a current one, under its version, and
 * db_gc_rewrite checks it at that pin).  sett_gc() measures every file but the head; the background thread
 * measures the files gc_plan picks plus one more file per wake (a cycle
 * over all files, restarted whenever the store changed: it catches what
 * the statistics miss while writes go on or after a crash), so a daemon's
 * store shrinks without anyone calling sett_gc().
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compaction.h"
#include "db_impl.h"
#include "discard.h"
#include "ikey.h"
#include "pin.h"

#define GC_BATCH_BYTES (4u << 20)
#define GC_BATCH_ENTRIES 1024
/* Time between the end of a rewrite and the unlink, so a point read that
 * looked up the old pointer just before the rewrite can still read it. */
#define GC_GRACE_MS 20

typedef struct pending_removal {
	uint32_t fid;
	uint64_t after_version; /* readers older than this may need the file */
	uint64_t not_before_ms;
	uint64_t pin_gen;       /* pin_generation() when its liveness was measured */
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
	/*
	 * A cycle ended with no write since it began: the head's garbage is
	 * what no statistics may have counted (values a GC rewrite put there,
	 * dropped unseen when their keys went): the next pass rotates the head
	 * (if it is big enough for a file of its own) and measures it.
	 */
	int rotate_idle_head;
	char activity[96]; /* under mu: what the last or current pass is doing */
	/* background reclaims (thread only) */
	uint64_t reclaim_after_ms;   /* none before */
	uint64_t reclaim_backoff_ms; /* after one that found nothing */
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

static int pending_add(struct gc_state *gs, uint32_t fid, uint64_t after, uint64_t not_before,
		       uint64_t pin_gen)
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
	gs->pend[gs->npend++] = (pending_removal){ fid, after, not_before, pin_gen };
	pthread_mutex_unlock(&gs->mu);
	return 0;
}

/* Deletes the pending files no reader can need any more; returns how many. */
static int pending_process(sett_db *db, struct gc_state *gs, int wait_grace)
{
	int removed = 0;
	uint64_t oldest = db_oldest_read_version(db);
	discard *dc = db->discard;
	pthread_mutex_lock(&gs->mu);
	for (size_t i = 0; i < gs->npend;) {
		pending_removal p = gs->pend[i];
		if (pin_created_since(db, p.pin_gen, p.after_version)) {
			/* a pin its measurement did not know may need the file:
			 * keep it (the next measurement sees the pin) */
			gs->pend[i] = gs->pend[--gs->npend];
			continue;
		}
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
		uint64_t size = vlog_file_size(db->vl, p.fid);
		int r = vlog_file_remove(db->vl, p.fid);
		if (r == 0 || r == -ENOENT) {
			if (r == 0)
				__atomic_fetch_add(&db->stat_gc_bytes_reclaimed, size, __ATOMIC_RELAXED);
			if (dc)
				discard_remove(dc, p.fid);
			__atomic_fetch_add(&db->stat_gc_files, 1, __ATOMIC_RELAXED);
			removed++;
		} else {
			pending_add(gs, p.fid, p.after_version, p.not_before_ms, p.pin_gen);
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
	uint64_t at;   /* 0: current; else the pinned version that sees it */
	uint64_t hider; /* at != 0: the tombstone that hides it now (0: a live version) */
} live_entry;

typedef struct live_set {
	sett_db *db;
	struct gc_state *gs;
	uint32_t fid;
	uint64_t read_version; /* liveness is judged at this published version */
	uint64_t *pins;        /* ... and at these pinned versions (newest first) */
	size_t npins;
	uint64_t pinned_bytes; /* entries a pin sees that cannot move: the file stays */
	uint64_t now;
	live_entry *e;
	size_t n, cap;
	buf keys;
	buf vs;
	uint64_t live_bytes;
} live_set;

/*
 * Whether a read of uk at read_version sees exactly the entry (ver, p):
 * 1 with *v its value struct, 0 if not, <0 on error.
 */
static int read_sees(live_set *ls, slice uk, uint64_t read_version, uint64_t ver, const vptr *p,
		     vstruct *v)
{
	uint64_t cur = 0;
	int r = db_lookup(ls->db, uk, read_version, &cur, &ls->vs);
	if (r <= 0 || cur != ver)
		return r < 0 ? r : 0;
	vptr at;
	if (vstruct_decode(ls->vs.p, ls->vs.n, v) || !(v->meta & META_VALUE_POINTER) ||
	    (v->meta & META_DELETE) || vptr_decode(v->data.p, v->data.n, &at) ||
	    at.fid != p->fid || at.offset != p->offset || at.len != p->len)
		return 0;
	return !(v->expires_at && v->expires_at <= ls->now);
}

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
	uint64_t ver = ikey_version(e->key);
	vstruct v;
	int r = read_sees(ls, uk, ls->read_version, ver, p, &v);
	/* Not current: a pin at or above its version may still see it.  It is
	 * rewritten under its old version too: a read takes the newest version
	 * any source holds, so the copy hides nothing newer (db_gc_rewrite). */
	uint64_t at = 0, hider = 0;
	for (size_t i = 0; r == 0 && i < ls->npins && ls->pins[i] >= ver; i++)
		if ((r = read_sees(ls, uk, ls->pins[i], ver, p, &v)) == 1)
			at = ls->pins[i];
	if (r <= 0)
		return r;
	if (at) {
		/* What hides it from current reads must go with the copy
		 * (db_gc_rewrite): a tombstone is copied too; with an expiring
		 * or no newest version (a prefix drop) it cannot move. */
		uint64_t cur = 0;
		vstruct nv;
		r = db_lookup(ls->db, uk, ls->read_version, &cur, &ls->vs);
		if (r < 0)
			return r;
		if (r == 1 && vstruct_decode(ls->vs.p, ls->vs.n, &nv) == 0 &&
		    ((nv.meta & META_DELETE) || !nv.expires_at)) {
			hider = (nv.meta & META_DELETE) ? cur : 0;
		} else {
			ls->pinned_bytes += p->len;
			return 0;
		}
	}
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
	le->at = at;
	le->hider = hider;
	if ((r = buf_append(&ls->keys, e->key.p, e->key.n)))
		return r;
	ls->n++;
	ls->live_bytes += p->len;
	return 0;
}

static void live_set_free(live_set *ls)
{
	free(ls->pins);
	free(ls->e);
	buf_free(&ls->keys);
	buf_free(&ls->vs);
}

/* ---- pass 2: rewrite ---- */

static int rewrite_batch(sett_db *db, live_set *ls, size_t from, size_t to, buf *vals,
			 size_t *voff, entry *ents, uint64_t *vers, vptr *olds, uint64_t *ats)
{
	int n = 0;
	for (size_t i = from; i < to; i++, n++) {
		live_entry *le = &ls->e[i];
		slice ik = slice_make(ls->keys.p + le->koff, le->klen);
		ents[n] = (entry){ .key = ik, .meta = 0, .user_meta = le->user_meta,
				   .expires_at = le->expires_at };
		vers[n] = ikey_version(ik);
		olds[n] = le->p;
		ats[n] = le->at;
		ents[n].value = slice_make(vals->p + voff[i - from], voff[i - from + 1] - voff[i - from]);
		if (le->at && le->hider) { /* the tombstone that hides it, with it */
			n++;
			ents[n] = (entry){ .key = ik, .meta = META_DELETE };
			vers[n] = le->hider;
			olds[n] = (vptr){ 0 };
			ats[n] = GC_AT_HIDER;
		}
	}
	return db_gc_rewrite(db, ents, vers, olds, ats, n);
}

static int rewrite_live(sett_db *db, struct gc_state *gs, live_set *ls)
{
	/* twice the entries: a moved pinned value may bring its tombstone */
	entry *ents = malloc(2 * GC_BATCH_ENTRIES * sizeof *ents);
	uint64_t *vers = malloc(2 * GC_BATCH_ENTRIES * sizeof *vers);
	vptr *olds = malloc(2 * GC_BATCH_ENTRIES * sizeof *olds);
	uint64_t *ats = malloc(2 * GC_BATCH_ENTRIES * sizeof *ats);
	size_t *voff = malloc((GC_BATCH_ENTRIES + 1) * sizeof *voff);
	buf vals = { 0 };
	char why[512];
	int r = 0;
	if (!ents || !vers || !olds || !ats || !voff)
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
			r = rewrite_batch(db, ls, start, i + 1, &vals, voff, ents, vers, olds, ats);
			start = i + 1;
		}
	}
	free(ents);
	free(vers);
	free(olds);
	free(ats);
	free(voff);
	buf_free(&vals);
	return r;
}

/* What GC is doing, for sett_get_stats (db->gc->activity). */
static void gc_activity(struct gc_state *gs, const char *what, uint32_t fid)
{
	pthread_mutex_lock(&gs->mu);
	if (fid == UINT32_MAX)
		snprintf(gs->activity, sizeof gs->activity, "%s", what);
	else
		snprintf(gs->activity, sizeof gs->activity, "%s %06u.vlog", what, fid);
	pthread_mutex_unlock(&gs->mu);
}

/*
 * Is there room on the disk (the reserve included: GC may use it) to copy
 * `live` bytes to the head, with the tables and logs that go with them?
 * A rewrite that cannot finish only fills the disk further.
 */
static int room_for_rewrite(sett_db *db, uint64_t live)
{
	sett_space sp;
	if (sett_disk_space(db, &sp) != 0)
		return 1; /* unknown: let the write say */
	return sp.free_bytes >= live + live / 8 + (4u << 20);
}

/*
 * Measures file fid and rewrites it when at least `ratio` of it is dead.
 * Returns 1 if the file was rewritten (and scheduled for deletion), 0 if
 * it did not qualify, <0 on error.  The file's discard statistics become
 * the measured garbage: that counts versions still shadowed in memtables
 * (a store being written flushes late), and statistics that overstate (a
 * version measured dead here and dropped by a compaction later is counted
 * twice) do not pick the file again and again.
 */
static int gc_file(sett_db *db, struct gc_state *gs, uint32_t fid, double ratio,
		   uint64_t read_version)
{
	uint64_t size = vlog_file_size(db->vl, fid);
	live_set ls = { .db = db, .gs = gs, .fid = fid, .read_version = read_version,
			.now = (uint64_t)time(NULL) };
	uint64_t pin_gen = pin_generation(db);
	int r = pin_points(db, read_version, &ls.pins, &ls.npins);
	if (r)
		return r;
	gc_activity(gs, "measuring", fid);
	r = vlog_iterate(db->vl, fid, live_scan_entry, &ls);
	__atomic_fetch_add(&db->stat_gc_bytes_measured, size, __ATOMIC_RELAXED);
	if (r) {
		live_set_free(&ls);
		return r;
	}
	uint64_t payload = size > LOG_HEADER_SIZE ? size - LOG_HEADER_SIZE : 0;
	uint64_t dead = payload > ls.live_bytes ? payload - ls.live_bytes : 0;
	int qualifies = ls.n == 0 || (dead > 0 && (double)dead >= ratio * (double)size);
	if (ls.pinned_bytes) {
		/* A pin holds values here that cannot move: the file stays, and
		 * counts no garbage (so the plan does not pick it again) until the
		 * pin is released and compaction drops the versions it kept. */
		qualifies = 0;
		dead = 0;
	}
	if (db->discard)
		discard_set(db->discard, fid, dead);
	if (!qualifies) {
		live_set_free(&ls);
		return 0;
	}
	if (ls.n && !room_for_rewrite(db, ls.live_bytes)) {
		gc_activity(gs, "waiting for disk space to rewrite", fid);
		live_set_free(&ls);
		return 0;
	}
	if (ls.n) {
		gc_activity(gs, "rewriting", fid);
		r = rewrite_live(db, gs, &ls);
		if (r == SETT_ENOREWRITE) {
			/* a pinned value could not move with what hides it (it
			 * changed since the measurement): the file stays for now;
			 * what was copied is only a duplicate */
			live_set_free(&ls);
			return 0;
		}
	}
	/*
	 * Whatever made the file's entries dead (an overwrite, a delete, this
	 * rewrite) must be durable before the file can go: a power cut must
	 * not bring back a durable pointer into a deleted file.  The writes
	 * seen at ls.read_version were all acknowledged before this sync.
	 */
	if (!r)
		r = sett_sync(db);
	if (!r)
		__atomic_fetch_add(&db->stat_gc_bytes_rewritten, ls.live_bytes, __ATOMIC_RELAXED);
	live_set_free(&ls);
	if (r)
		return r;
	r = pending_add(gs, fid, sett_current_version(db), now_ms() + GC_GRACE_MS, pin_gen);
	return r ? r : 1;
}

/*
 * Which files the background GC rewrites, from the discard statistics
 * (garbage g and size s of each file; the head is a file like the others
 * and is rotated when picked):
 *   - every file with g >= gc_discard_ratio * s (mostly garbage);
 *   - while the garbage of the whole value log exceeds gc_garbage_share of
 *     its size (and value_log_file_size / 16), the file with the largest
 *     share of garbage, as long as that share is at least
 *     gc_garbage_share.  Rewriting it takes its garbage out of the store.
 * So the value log holds at most about 1 / (1 - gc_garbage_share) times its
 * live data once GC has caught up, and a rewrite copies at most
 * (1 - share) / share bytes per byte it frees; a store whose garbage is
 * spread thinly below the share is left alone.
 * Files waiting for their deletion do not count.  Sets thr[i] to the
 * ratio at which gc_file must confirm file fids[i] (-1: not picked).
 * Returns the number of files picked.
 */
static int gc_plan(sett_db *db, struct gc_state *gs, const uint32_t *fids, int n, double *thr)
{
	double ratio = db->opt.gc_discard_ratio, share = db->opt.gc_garbage_share;
	discard *dc = db->discard;
	uint64_t *g = calloc((size_t)n + 1, sizeof *g), *sz = calloc((size_t)n + 1, sizeof *sz);
	uint64_t tg = 0, ts = 0;
	int picked = 0;
	for (int i = 0; i < n; i++) {
		thr[i] = -1;
		if (gs && pending_has(gs, fids[i]))
			continue; /* rewritten already: it goes, its live data is at the head */
		uint64_t s = vlog_file_size(db->vl, fids[i]);
		uint64_t payload = s > LOG_HEADER_SIZE ? s - LOG_HEADER_SIZE : 0;
		uint64_t d = dc ? discard_get(dc, fids[i]) : 0;
		if (d > payload)
			d = payload;
		if (g) {
			g[i] = d;
			sz[i] = s;
		}
		tg += d;
		ts += s;
		if (ratio > 0 && d > 0 && (double)d >= ratio * (double)s) {
			thr[i] = ratio;
			picked++;
		}
	}
	if (!g || !sz || share <= 0) {
		free(g);
		free(sz);
		return picked;
	}
	uint64_t floor = db->opt.value_log_file_size / 16;
	for (;;) {
		if (tg <= floor || (double)tg <= share * (double)ts)
			break;
		int best = -1;
		double best_share = 0;
		for (int i = 0; i < n; i++) {
			if (thr[i] >= 0 || !sz[i])
				continue;
			double sh = (double)g[i] / (double)sz[i];
			if (sh >= share && sh > best_share) {
				best = i;
				best_share = sh;
			}
		}
		if (best < 0)
			break;
		thr[best] = share;
		picked++;
		tg -= g[best];
		ts -= g[best]; /* its live data stays, at the head */
	}
	free(g);
	free(sz);
	return picked;
}

/*
 * One GC pass.  explicit_call: measure every file but the head with
 * `ratio` (sett_gc); otherwise the files gc_plan picks plus one file
 * measured directly per pass (see cycle_active), which catches garbage the
 * statistics miss (after a crash they may lag).  Returns the number of
 * files rewritten or removed, or <0 on error.
 */
static int gc_pass(sett_db *db, struct gc_state *gs, double ratio, int explicit_call)
{
	int done = 0, r = 0;
	pthread_mutex_lock(&gs->run_mu);
	__atomic_fetch_add(&db->stat_gc_runs, 1, __ATOMIC_RELAXED);
	discard *dc = db->discard;
	done += pending_process(db, gs, explicit_call);

	uint32_t *fids = NULL;
	double *thr = NULL;
	int n = 0;
	if ((r = vlog_list(db->vl, &fids, &n)))
		goto out;
	if (dc)
		discard_retain(dc, fids, (size_t)n);
	if (!(thr = malloc(((size_t)n + 1) * sizeof *thr))) {
		r = -ENOMEM;
		goto out;
	}
	uint32_t head = vlog_head_fid(db->vl);
	if (explicit_call)
		for (int i = 0; i < n; i++)
			thr[i] = ratio;
	else
		gc_plan(db, gs, fids, n, thr);

	/* The head is rotated when it is picked (sett_gc: when it is big
	 * enough to be worth a file of its own). */
	uint64_t head_size = vlog_file_size(db->vl, head);
	uint64_t rotate_min = db->opt.value_log_file_size / 16;
	int head_picked = 0, idle = !explicit_call && gs->rotate_idle_head;
	gs->rotate_idle_head = 0;
	for (int i = 0; i < n; i++)
		if (fids[i] == head) {
			if (idle && thr[i] < 0)
				thr[i] = ratio;
			head_picked = thr[i] >= 0;
		}
	if (head_size > LOG_HEADER_SIZE && head_size >= rotate_min && head_picked) {
		gc_activity(gs, "rotating", head);
		if ((r = vlog_rotate(db->vl)))
			goto out;
		head = vlog_head_fid(db->vl);
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

	/* The thread measures one extra file per wake (see cycle_active). */
	if (!explicit_call) {
		if (!gs->cycle_active && lv != gs->cycle_version) {
			gs->cycle_active = 1;
			gs->cycle_version = lv;
			gs->scan_cursor = 0;
		}
		if (gs->cycle_active) {
			int extra = -1;
			for (int i = 0; i < n && extra < 0; i++)
				if ((gs->scan_cursor == 0 || fids[i] > gs->scan_cursor) && fids[i] < head)
					extra = i;
			if (extra < 0) {
				gs->cycle_active = 0;
				gs->rotate_idle_head = lv == gs->cycle_version;
			} else {
				gs->scan_cursor = fids[extra];
				if (thr[extra] < 0)
					thr[extra] = ratio;
			}
		}
	}

	for (int i = 0; i < n && !r; i++) {
		uint32_t fid = fids[i];
		if (fid >= head || thr[i] < 0 || pending_has(gs, fid))
			continue;
		if (gc_stopping(gs) || __atomic_load_n(&db->bg_error, __ATOMIC_RELAXED)) {
			r = SETT_ECLOSED;
			break;
		}
		int g = gc_file(db, gs, fid, thr[i], lv);
		if (g > 0)
			done++;
		else if (g < 0 && g != SETT_ECORRUPT)
			r = g; /* a corrupt file is left alone; sett_verify reports it */
	}
	done += pending_process(db, gs, explicit_call);
	if (dc)
		discard_persist(dc);
out:
	free(fids);
	free(thr);
	pthread_mutex_lock(&gs->mu);
	size_t npend = gs->npend;
	pthread_mutex_unlock(&gs->mu);
	if (r)
		gc_activity(gs, sett_strerror(r), UINT32_MAX);
	else if (npend)
		gc_activity(gs, "waiting for readers before deleting files", UINT32_MAX);
	else
		gc_activity(gs, done ? "idle (last pass reclaimed files)" : "idle", UINT32_MAX);
	pthread_mutex_unlock(&gs->run_mu);
	return r ? r : done;
}

/*
 * Reclaims as sett_reclaim does; with rewrite_last 0 the tables of the
 * last level are not rewritten (flatten's costly half: on a store that is
 * mostly there it rewrites the whole store), so what is left is
 * garbage below the last level's tables and versions hidden within them.
 */
static int reclaim(sett_db *db, int rewrite_last, const int *stop)
{
	int r = rewrite_last ? compaction_flatten(db, stop) : compaction_push_down(db, stop);
	if (r)
		return r;
	double ratio = db->opt.gc_discard_ratio > 0 ? db->opt.gc_discard_ratio : 0.5;
	int any = 0;
	/* each pass rewrites every qualifying file; a few catch what the
	 * rewrites themselves leave behind */
	for (int pass = 0; pass < 4; pass++) {
		r = sett_gc(db, ratio);
		if (r == SETT_ENOREWRITE)
			break;
		if (r)
			return r;
		any = 1;
	}
	return any ? 0 : SETT_ENOREWRITE;
}

/*
 * Low disk space (free below reclaim_below): the thread gives back what
 * deletions hold before a writer is refused for it.  Rate limit: after a
 * reclaim that returned space, the next may run RECLAIM_GAP_MS later;
 * after one that found nothing (a disk full of live data) the pause starts
 * at RECLAIM_BACKOFF_MS and doubles up to RECLAIM_BACKOFF_MAX_MS.
 */
#define RECLAIM_GAP_MS 1000
#define RECLAIM_BACKOFF_MS 30000
#define RECLAIM_BACKOFF_MAX_MS (10 * 60 * 1000)

static void maybe_reclaim(sett_db *db, struct gc_state *gs)
{
	sett_space sp;
	if (!db->opt.reclaim_below || now_ms() < gs->reclaim_after_ms ||
	    sett_disk_space(db, &sp) != 0)
		return;
	uint64_t below = db->opt.reclaim_below > 0 ? (uint64_t)db->opt.reclaim_below : 2 * sp.reserve;
	if (sp.free_bytes >= below)
		return;
	gc_activity(gs, "reclaiming (the disk is low on space)", UINT32_MAX);
	int r = reclaim(db, 0, &db->gc->stop);
	if (r == SETT_ECLOSED)
		return;
	__atomic_fetch_add(&db->stat_background_reclaims, 1, __ATOMIC_RELAXED);
	if (r == 0) {
		gs->reclaim_backoff_ms = 0;
		gs->reclaim_after_ms = now_ms() + RECLAIM_GAP_MS;
		return;
	}
	uint64_t b = gs->reclaim_backoff_ms ? gs->reclaim_backoff_ms * 2 : RECLAIM_BACKOFF_MS;
	gs->reclaim_backoff_ms = b > RECLAIM_BACKOFF_MAX_MS ? RECLAIM_BACKOFF_MAX_MS : b;
	gs->reclaim_after_ms = now_ms() + gs->reclaim_backoff_ms;
}

static void *gc_main(void *arg)
{
	sett_db *db = arg;
	struct gc_state *gs = db->gc;
	int base = db->opt.gc_interval_ms > 0 ? db->opt.gc_interval_ms : 10000, interval = base;
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
		maybe_reclaim(db, gs);
		/* After a pass that found work, look again soon: the files it
		 * rewrote are deleted by a later pass, and more may qualify. */
		int did = gc_pass(db, gs, db->opt.gc_discard_ratio, 0);
		pthread_mutex_lock(&gs->mu);
		int soon = did > 0 || gs->npend > 0;
		pthread_mutex_unlock(&gs->mu);
		interval = soon && base > 1000 ? 1000 : base;
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

int sett_reclaim(sett_db *db)
{
	if (db->opt.read_only)
		return -EROFS;
	if (!db->gc)
		return SETT_ECLOSED;
	return reclaim(db, 1, NULL);
}

int sett_reclaim_until(sett_db *db, const int *stop)
{
	if (db->opt.read_only)
		return -EROFS;
	if (!db->gc)
		return SETT_ECLOSED;
	return reclaim(db, 1, stop);
}

void gc_fill_stats(sett_db *db, sett_stats *st)
{
	st->gc_bytes_measured = __atomic_load_n(&db->stat_gc_bytes_measured, __ATOMIC_RELAXED);
	st->gc_bytes_rewritten = __atomic_load_n(&db->stat_gc_bytes_rewritten, __ATOMIC_RELAXED);
	st->iter_entries = __atomic_load_n(&db->stat_iter_entries, __ATOMIC_RELAXED);
	st->gc_bytes_reclaimed = __atomic_load_n(&db->stat_gc_bytes_reclaimed, __ATOMIC_RELAXED);
	st->background_reclaims = __atomic_load_n(&db->stat_background_reclaims, __ATOMIC_RELAXED);
	struct gc_state *gs = db->gc;
	const char *a = !gs ? "not running (store open read-only)"
			    : !gs->have_thread ? "no background thread (explicit sett gc only)" : NULL;
	if (a) {
		snprintf(st->gc_activity, sizeof st->gc_activity, "%s", a);
		return;
	}
	pthread_mutex_lock(&gs->mu);
	snprintf(st->gc_activity, sizeof st->gc_activity, "%s",
		 gs->activity[0] ? gs->activity : "idle (no pass yet)");
	pthread_mutex_unlock(&gs->mu);
}

int sett_vlog_files(sett_db *db, sett_vlog_info *out, int max)
{
	uint32_t *fids;
	int n;
	int r = vlog_list(db->vl, &fids, &n);
	if (r)
		return r;
	discard *dc = db->discard;
	double *thr = malloc(((size_t)n + 1) * sizeof *thr);
	if (thr)
		gc_plan(db, db->gc, fids, n, thr);
	for (int i = 0; i < n && i < max; i++) {
		out[i].fid = fids[i];
		out[i].bytes = vlog_file_size(db->vl, fids[i]);
		out[i].discard_bytes = dc ? discard_get(dc, fids[i]) : 0;
		uint64_t payload = out[i].bytes > LOG_HEADER_SIZE ? out[i].bytes - LOG_HEADER_SIZE : 0;
		out[i].live_bytes = payload > out[i].discard_bytes ? payload - out[i].discard_bytes : 0;
		out[i].gc_picked = thr && thr[i] >= 0;
	}
	free(thr);
	free(fids);
	return n;
}
