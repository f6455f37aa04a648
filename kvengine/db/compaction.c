/*
 * compaction.c - the levels controller: leveled compaction of L0..L6.
 *
 * Shape (Badger / RocksDB dynamic level bytes): the last level's size sets
 * the targets, each level up is 1/level_size_multiplier of the one below,
 * and levels whose target falls below base_level_size are skipped, so L0
 * compacts straight into the base level.  A small store has base level L6;
 * as it grows the base level moves up.  Table sizes grow by
 * TABLE_SIZE_MULTIPLIER per level below the base level.
 *
 * Scores: L0 = tables / num_level_zero_tables, Li = bytes / target.  A
 * level's score is divided by the next level's when that one is over its
 * target too, which favours pushing data out of the lower levels first.
 * The highest adjusted score >= 1 is compacted first; worker 0 always
 * tries L0 first so that writers are not stalled by L0 for long.
 *
 * Parallelism: num_compactors threads.  A compaction registers the user
 * key hull of its inputs at both of its levels; another compaction may only
 * start if its hull is disjoint at each level it touches (and only one L0
 * compaction runs at a time).  The picking is done under db->mu (so the
 * version cannot change under it) and cs->mu (the registry).  Lock order:
 * db->mu before cs->mu; cs->mu is never held while taking db->mu.
 *
 * Version GC (what a compaction drops): with D = the oldest read version in
 * use, every version newer than D is kept; of the versions <= D only the
 * newest is kept, and even that one is dropped when it is a tombstone or
 * an expired entry and nothing below the output level overlaps the key
 * range (the "bottom").  Pinned versions (pin.h) below D are kept the same
 * way: of the versions each pin sees, the newest stays.  Every dropped value pointer adds its length to
 * the discard statistics of its value-log file (after the new version is
 * installed, so a failed compaction counts nothing).
 *
 * Output: the merged stream is cut into tables of the output level's
 * target size, only at user-key boundaries (a key's versions never span two
 * tables of a level).  The result is installed with db_install_edit, which
 * records the whole change in the MANIFEST as one change set; input tables
 * are marked obsolete there and their files go with the last reference.
 */
#include "compaction.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "discard.h"
#include "drop.h"
#include "fileio.h"
#include "ikey.h"
#include "pin.h"

#define MAX_RUNNING 64
#define MAX_COMPACTORS 16

typedef struct running_slot {
	int used;
	int levels[2];
	buf lo, hi; /* user-key hull */
} running_slot;

typedef struct compactor_arg {
	sett_db *db;
	int idx;
} compactor_arg;

struct compactor_state {
	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cv;  /* finished compactions, stop (kicks: db->cv_bg) */
	int stop;           /* atomic reads outside mu */
	int l0_busy;
	running_slot running[MAX_RUNNING];

	int nthreads;
	pthread_t threads[MAX_COMPACTORS];
	compactor_arg args[MAX_COMPACTORS];

	uint64_t last_persist_ms;

	/* idle compaction of L0 (worker 0 only) */
	uint64_t idle_version;   /* last_version when seen last */
	uint64_t idle_since_ms;  /* since when it has not moved */
	uint64_t idle_done;      /* last_version of the last idle compaction */
	uint64_t idle_flushed;   /* last_version of the last idle memtable flush */
};

/*
 * A store that stops being written keeps its active memtable and its last
 * few L0 tables: no level is over its target, so nothing merges them, and
 * the versions they shadow (the values of deleted files, of a file
 * rewritten in place: all of it) are never counted as garbage, so
 * value-log GC never picks their files.  After this long without a
 * commit, the active memtable is flushed and L0 is merged down once, which
 * drops the shadowed versions, counts them in the discard statistics and
 * feeds value-log GC.
 */
#define IDLE_COMPACT_MS 5000

/* Targets of one version. */
typedef struct level_targets {
	int base;
	uint64_t target[MAX_LEVELS];
	uint64_t file_size[MAX_LEVELS];
	double score[MAX_LEVELS];    /* raw */
	double adjusted[MAX_LEVELS];
} level_targets;

/* A picked compaction. */
typedef struct cjob {
	int from, to;
	table **in; /* inputs: the `from` tables first (L0: newest first), then `to` */
	int nin, ntop;
	buf lo, hi;
	int bottom;
	uint64_t file_size;
	int slot;
} cjob;


static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static slice tab_lo(const table *t) { return ikey_user(table_smallest(t)); }
static slice tab_hi(const table *t) { return ikey_user(table_largest(t)); }

static int ranges_overlap(slice alo, slice ahi, slice blo, slice bhi)
{
	return !(slice_cmp(ahi, blo) < 0 || slice_cmp(bhi, alo) < 0);
}

static int buf_set(buf *b, slice s)
{
	b->n = 0;
	return buf_append(b, s.p, s.n);
}

static slice buf_slice(const buf *b) { return slice_make(b->p, b->n); }

/* Widens the hull [lo, hi] to cover [slo, shi]; the first call sets it. */
static int hull_extend(buf *lo, buf *hi, int *empty, slice slo, slice shi)
{
	int r = 0;
	if (*empty || slice_cmp(slo, buf_slice(lo)) < 0)
		r = buf_set(lo, slo);
	if (!r && (*empty || slice_cmp(shi, buf_slice(hi)) > 0))
		r = buf_set(hi, shi);
	*empty = 0;
	return r;
}

/* ---- level targets and scores ---- */

static void levels_targets(const sett_db *db, const lsm_version *v, level_targets *t)
{
	const int last = MAX_LEVELS - 1;
	uint64_t base_size = db->opt.base_level_size ? db->opt.base_level_size : (10u << 20);
	uint64_t mult = db->opt.level_size_multiplier > 1 ? (uint64_t)db->opt.level_size_multiplier : 10;
	uint64_t bytes[MAX_LEVELS];
	for (int i = 0; i < MAX_LEVELS; i++)
		bytes[i] = version_level_bytes(v, i);

	memset(t, 0, sizeof *t);
	uint64_t sz = bytes[last];
	for (int i = last; i > 0; i--) {
		uint64_t lt = sz > base_size ? sz : base_size;
		t->target[i] = lt;
		if (t->base == 0 && lt <= base_size)
			t->base = i;
		sz /= mult;
	}
	if (t->base == 0)
		t->base = 1;

	uint64_t tsz = db->opt.base_table_size ? db->opt.base_table_size : (2u << 20);
	t->file_size[0] = tsz;
	for (int i = 1; i < MAX_LEVELS; i++) {
		if (i > t->base)
			tsz *= TABLE_SIZE_MULTIPLIER;
		t->file_size[i] = tsz;
	}

	/* Bring the base level down to the last empty level above the data. */
	for (int i = t->base + 1; i < last; i++) {
		if (bytes[i] > 0)
			break;
		t->base = i;
	}
	int b = t->base;
	if (b < last && bytes[b] == 0 && bytes[b + 1] < t->target[b + 1])
		t->base = b + 1;

	int l0_trigger = db->opt.num_level_zero_tables > 0 ? db->opt.num_level_zero_tables : 5;
	t->score[0] = (double)v->ntables[0] / l0_trigger;
	for (int i = 1; i < last; i++)
		t->score[i] = t->target[i] ? (double)bytes[i] / (double)t->target[i] : 0;
	t->score[last] = 0; /* nothing below to compact into */
	for (int i = 0; i < MAX_LEVELS; i++)
		t->adjusted[i] = t->score[i];
	if (t->score[t->base] >= 1 && t->score[0] >= 1)
		t->adjusted[0] = t->score[0] / t->score[t->base];
	for (int i = 1; i < last - 1; i++)
		if (t->score[i + 1] >= 1 && t->score[i] >= 1)
			t->adjusted[i] = t->score[i] / t->score[i + 1];
}

/* ---- the registry of running compactions (cs->mu held) ---- */

static int running_conflict(const struct compactor_state *cs, int level, slice lo, slice hi)
{
	for (int i = 0; i < MAX_RUNNING; i++) {
		const running_slot *s = &cs->running[i];
		if (!s->used || (s->levels[0] != level && s->levels[1] != level))
			continue;
		if (ranges_overlap(lo, hi, buf_slice(&s->lo), buf_slice(&s->hi)))
			return 1;
	}
	return 0;
}

static int running_register(struct compactor_state *cs, cjob *j)
{
	for (int i = 0; i < MAX_RUNNING; i++) {
		running_slot *s = &cs->running[i];
		if (s->used)
			continue;
		if (buf_set(&s->lo, buf_slice(&j->lo)) || buf_set(&s->hi, buf_slice(&j->hi)))
			return -ENOMEM;
		s->used = 1;
		s->levels[0] = j->from;
		s->levels[1] = j->to;
		j->slot = i;
		if (j->from == 0)
			cs->l0_busy = 1;
		return 0;
	}
	return -EBUSY;
}

static void running_unregister(struct compactor_state *cs, cjob *j)
{
	pthread_mutex_lock(&cs->mu);
	if (j->slot >= 0)
		cs->running[j->slot].used = 0;
	if (j->from == 0)
		cs->l0_busy = 0;
	j->slot = -1;
	pthread_cond_broadcast(&cs->cv);
	pthread_mutex_unlock(&cs->mu);
}

/* ---- picking (db->mu and cs->mu held) ---- */

static void job_discard_unpicked(cjob *j);

static void job_release(cjob *j)
{
	for (int i = 0; i < j->nin; i++)
		table_unref(j->in[i]);
	job_discard_unpicked(j);
}

/*
 * Completes a job whose `from` inputs and hull are set: adds the tables of
 * level `to` that overlap the hull (widening it), checks the registry, and
 * registers.  Returns 1 if the job is ready, 0 if it conflicts, <0 on error.
 */
static int job_complete(struct compactor_state *cs, const lsm_version *v,
			const level_targets *t, cjob *j)
{
	int empty = 0;
	int r;
	for (int k = 0; k < v->ntables[j->to]; k++) {
		table *tb = v->tables[j->to][k];
		if (!ranges_overlap(tab_lo(tb), tab_hi(tb), buf_slice(&j->lo), buf_slice(&j->hi)))
			continue;
		j->in[j->nin++] = tb;
	}
	/* Widen after collecting: the level is sorted and non-overlapping. */
	for (int k = j->ntop; k < j->nin; k++)
		if ((r = hull_extend(&j->lo, &j->hi, &empty, tab_lo(j->in[k]), tab_hi(j->in[k]))))
			return r;
	if ((j->from != 0 && running_conflict(cs, j->from, buf_slice(&j->lo), buf_slice(&j->hi))) ||
	    running_conflict(cs, j->to, buf_slice(&j->lo), buf_slice(&j->hi)))
		return 0;
	j->bottom = 1;
	for (int l = j->to + 1; l < MAX_LEVELS && j->bottom; l++)
		for (int k = 0; k < v->ntables[l]; k++)
			if (ranges_overlap(tab_lo(v->tables[l][k]), tab_hi(v->tables[l][k]),
					   buf_slice(&j->lo), buf_slice(&j->hi))) {
				j->bottom = 0;
				break;
			}
	j->file_size = t->file_size[j->to];
	if ((r = running_register(cs, j)))
		return r == -EBUSY ? 0 : r;
	for (int k = 0; k < j->nin; k++)
		table_ref(j->in[k]);
	return 1;
}

static int job_alloc(cjob *j, const lsm_version *v, int from, int to)
{
	memset(j, 0, sizeof *j);
	j->slot = -1;
	j->from = from;
	j->to = to;
	j->in = calloc((size_t)v->ntables[from] + (size_t)v->ntables[to] + 1, sizeof *j->in);
	return j->in ? 0 : -ENOMEM;
}

static void job_discard_unpicked(cjob *j)
{
	free(j->in);
	buf_free(&j->lo);
	buf_free(&j->hi);
	memset(j, 0, sizeof *j);
	j->slot = -1;
}

/* L0 (all of it: the oldest tables must go first, and L0 tables overlap) into `to`. */
static int pick_l0(struct compactor_state *cs, const lsm_version *v, const level_targets *t,
		   int to, cjob *j)
{
	if (cs->l0_busy || v->ntables[0] == 0)
		return 0;
	int r = job_alloc(j, v, 0, to);
	if (r)
		return r;
	int empty = 1;
	for (int k = 0; k < v->ntables[0]; k++) {
		table *tb = v->tables[0][k];
		j->in[j->nin++] = tb;
		if ((r = hull_extend(&j->lo, &j->hi, &empty, tab_lo(tb), tab_hi(tb))))
			break;
	}
	j->ntop = j->nin;
	if (!r)
		r = job_complete(cs, v, t, j);
	if (r <= 0)
		job_discard_unpicked(j);
	return r;
}

static int cmp_by_max_version(const void *a, const void *b)
{
	uint64_t x = table_max_version(*(table *const *)a);
	uint64_t y = table_max_version(*(table *const *)b);
	return x < y ? -1 : x > y;
}

/* One table of level `from` (oldest data first) into `to`. */
static int pick_level(struct compactor_state *cs, const lsm_version *v, const level_targets *t,
		      int from, int to, cjob *j)
{
	int n = v->ntables[from];
	if (n == 0)
		return 0;
	table **order = malloc((size_t)n * sizeof *order);
	if (!order)
		return -ENOMEM;
	memcpy(order, v->tables[from], (size_t)n * sizeof *order);
	qsort(order, (size_t)n, sizeof *order, cmp_by_max_version);
	int r = 0;
	for (int k = 0; k < n; k++) {
		table *tb = order[k];
		if (running_conflict(cs, from, tab_lo(tb), tab_hi(tb)))
			continue;
		if ((r = job_alloc(j, v, from, to)))
			break;
		int empty = 1;
		j->in[j->nin++] = tb;
		j->ntop = 1;
		r = hull_extend(&j->lo, &j->hi, &empty, tab_lo(tb), tab_hi(tb));
		if (!r)
			r = job_complete(cs, v, t, j);
		if (r > 0)
			break;
		job_discard_unpicked(j);
		if (r < 0)
			break;
	}
	free(order);
	return r;
}

/* Table `id` of `level` rewritten into the same level (drops what no reader needs). */
static int pick_self(struct compactor_state *cs, const lsm_version *v, const level_targets *t,
		     int level, uint64_t id, cjob *j)
{
	table *tb = NULL;
	for (int k = 0; k < v->ntables[level] && !tb; k++)
		if (table_id(v->tables[level][k]) == id)
			tb = v->tables[level][k];
	if (!tb)
		return 0;
	if (running_conflict(cs, level, tab_lo(tb), tab_hi(tb)))
		return 0;
	int r = job_alloc(j, v, level, level);
	if (r)
		return r;
	int empty = 1;
	j->in[j->nin++] = tb;
	j->ntop = 1;
	r = hull_extend(&j->lo, &j->hi, &empty, tab_lo(tb), tab_hi(tb));
	if (!r) {
		j->bottom = level == MAX_LEVELS - 1;
		j->file_size = t->file_size[level];
		r = running_register(cs, j);
		r = r == -EBUSY ? 0 : (r ? r : 1);
	}
	if (r > 0)
		table_ref(tb);
	else
		job_discard_unpicked(j);
	return r;
}

/* ---- running a compaction ---- */

typedef struct outputs {
	table **t;
	size_t n, cap;
} outputs;

static int outputs_push(outputs *o, table *t)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		table **p = realloc(o->t, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		o->t = p;
		o->cap = cap;
	}
	o->t[o->n++] = t;
	return 0;
}

static int start_table(sett_db *db, table_builder **bp, uint64_t *idp)
{
	char path[4096];
	*idp = db_new_table_id(db);
	db_table_path(db, *idp, path, sizeof path);
	return table_builder_new(path, &db->topt, bp);
}

static int finish_table(sett_db *db, table_builder *b, uint64_t id, outputs *o)
{
	if (table_builder_count(b) == 0) {
		table_builder_abandon(b);
		return 0;
	}
	int r = table_builder_finish(b);
	if (r)
		return r;
	char path[4096], why[256];
	db_table_path(db, id, path, sizeof path);
	table *t;
	r = table_open_enc(path, id, db->bcache, &db->keys, &t, why, sizeof why);
	if (r) {
		sio_unlink(path);
		return r;
	}
	table_set_reporter(t, db_report_corrupt, db);
	r = outputs_push(o, t);
	if (r) {
		table_mark_obsolete(t);
		table_unref(t);
	}
	return r;
}

static int entry_expired(const vstruct *vs, uint64_t now)
{
	return vs->expires_at != 0 && vs->expires_at <= now;
}

static int run_job(sett_db *db, struct compactor_state *cs, cjob *j)
{
	sit **children = calloc((size_t)j->nin, sizeof *children);
	if (!children)
		return -ENOMEM;
	int bad = 0;
	for (int i = 0; i < j->nin; i++)
		bad |= (children[i] = table_iter_new(j->in[i])) == NULL;
	sit *m = NULL;
	if (!bad)
		m = merge_iter_new(children, j->nin);
	else
		for (int i = 0; i < j->nin; i++)
			sit_free(children[i]);
	free(children);
	if (!m)
		return -ENOMEM;

	uint64_t discard_point = db_oldest_read_version(db);
	uint64_t *pins = NULL; /* pinned versions below the discard point, newest first */
	size_t npins = 0, bucket = 0;
	if (pin_points(db, discard_point, &pins, &npins)) {
		sit_free(m);
		return -ENOMEM;
	}
	uint64_t now = (uint64_t)time(NULL);
	uint64_t drop_gen = drops_generation(db);
	discard_acc acc = { 0 };
	outputs out = { 0 };
	table_builder *b = NULL;
	uint64_t bid = 0;
	buf last = { 0 };
	int have_last = 0, seen_le = 0, r = 0, kept_hidden = 0;

	for (sit_first(m); sit_valid(m); sit_next(m)) {
		if (__atomic_load_n(&cs->stop, __ATOMIC_RELAXED)) {
			r = SETT_ECLOSED;
			break;
		}
		slice ik = sit_key(m), vsb = sit_value(m);
		if (ik.n < IKEY_SUFFIX) {
			r = SETT_ECORRUPT;
			break;
		}
		slice uk = ikey_user(ik);
		uint64_t ver = ikey_version(ik);
		int newkey = !have_last || slice_cmp(uk, buf_slice(&last)) != 0;
		if (newkey) {
			if ((r = buf_set(&last, uk)))
				break;
			have_last = 1;
			seen_le = 0;
		}
		vstruct vs;
		if ((r = vstruct_decode(vsb.p, vsb.n, &vs)))
			break;
		int keep = 1;
		/* under a prefix drop (drop.h): gone once no reader or pin sees it */
		int hidden = drops_compact(db, uk, ver, discard_point, pins, npins);
		if (hidden == 1)
			keep = 0;
		kept_hidden |= hidden == 2;
		if (keep && ver <= discard_point) {
			/*
			 * The discard point and the pins below it cut the old
			 * versions into buckets: bucket b holds the versions
			 * that pins[b-1] (b = 0: the discard point) sees and
			 * pins[b] does not.  The newest of a bucket is what its
			 * snapshot reads; the rest no one can see.  A tombstone
			 * at the bottom goes only from the last bucket: above
			 * it, it hides what an older pin keeps.
			 */
			size_t bk = pin_bucket(pins, npins, ver);
			if (seen_le && bk == bucket)
				keep = 0;
			else if (j->bottom && bk == npins &&
				 ((vs.meta & META_DELETE) || entry_expired(&vs, now)))
				keep = 0;
			seen_le = 1;
			bucket = bk;
		}
		if (!keep) {
			vptr p;
			if ((vs.meta & META_VALUE_POINTER) && vptr_decode(vs.data.p, vs.data.n, &p) == 0)
				discard_acc_add(&acc, p.fid, p.len);
			continue;
		}
		if (b && newkey && table_builder_size(b) >= j->file_size) {
			r = finish_table(db, b, bid, &out);
			b = NULL;
			if (r)
				break;
		}
		if (!b && (r = start_table(db, &b, &bid)))
			break;
		if ((r = table_builder_add(b, ik, vsb)))
			break;
	}
	if (!r)
		r = sit_error(m);
	sit_free(m);
	free(pins);
	buf_free(&last);
	if (b) {
		if (r)
			table_builder_abandon(b);
		else
			r = finish_table(db, b, bid, &out);
	}

	int installed_unknown = 0;
	if (!r)
		r = sio_sync_dir(db->dir);
	if (!r) {
		version_edit e;
		memset(&e, 0, sizeof e);
		uint64_t *del = calloc((size_t)j->nin, sizeof *del);
		uint8_t *lv = calloc(out.n + 1, 1);
		if (!del || !lv) {
			r = -ENOMEM;
		} else {
			for (int i = 0; i < j->nin; i++)
				del[i] = table_id(j->in[i]);
			for (size_t i = 0; i < out.n; i++)
				lv[i] = (uint8_t)j->to;
			e.del_ids = del;
			e.ndel = (size_t)j->nin;
			e.add = out.t;
			e.add_levels = lv;
			e.nadd = out.n;
			if (kept_hidden || drops_generation(db) != drop_gen)
				drops_note_kept(db); /* before a retirement can look */
			r = db_install_edit(db, &e);
			/* If the MANIFEST may name the outputs even though the
			 * install failed (db_install_edit then set bg_error), keep
			 * their files: the next open deletes the tables the
			 * MANIFEST does not name. */
			if (r && __atomic_load_n(&db->bg_error, __ATOMIC_ACQUIRE))
				installed_unknown = 1;
		}
		free(del);
		free(lv);
	}
	for (size_t i = 0; i < out.n; i++) {
		if (r && !installed_unknown)
			table_mark_obsolete(out.t[i]);
		table_unref(out.t[i]);
	}
	free(out.t);
	if (!r) {
		discard_acc_apply(db->discard, &acc);
		/* db_install_edit has woken writers waiting for room */
		__atomic_fetch_add(&db->stat_compactions, 1, __ATOMIC_RELAXED);
		drops_maybe_retire(db);
	}
	discard_acc_free(&acc);
	return r;
}

static int slice_has_prefix(slice k, slice p)
{
	return k.n >= p.n && (p.n == 0 || memcmp(k.p, p.p, p.n) == 0);
}

/* Adds the value pointers of table t to acc. */
static int acc_table(discard_acc *acc, table *t)
{
	sit *it = table_iter_new(t);
	if (!it)
		return -ENOMEM;
	for (sit_first(it); sit_valid(it); sit_next(it)) {
		vstruct vs;
		vptr p;
		slice v = sit_value(it);
		if (vstruct_decode(v.p, v.n, &vs) == 0 && (vs.meta & META_VALUE_POINTER) &&
		    vptr_decode(vs.data.p, vs.data.n, &p) == 0)
			discard_acc_add(acc, p.fid, p.len);
	}
	int r = sit_error(it);
	sit_free(it);
	return r;
}

int compaction_drop_tables(sett_db *db, slice prefix, uint64_t version)
{
	struct compactor_state *cs = db->compactors;
	if (!cs)
		return 0;
	uint64_t *pins;
	size_t npins;
	if (pin_points(db, version + 1, &pins, &npins))
		return -ENOMEM;
	free(pins);
	if (npins || db_oldest_read_version(db) <= version)
		return 0; /* someone may read at or below the drop: compaction does it */
	int r = 0;
	for (int l = 0; l < MAX_LEVELS && !r; l++) {
		cjob j;
		memset(&j, 0, sizeof j);
		j.slot = -1;
		j.from = j.to = l;
		int empty = 1;
		size_t n = 0;
		pthread_mutex_lock(&db->mu);
		lsm_version *v = db->current;
		pthread_mutex_lock(&cs->mu);
		int nt = v->ntables[l];
		uint64_t *ids = calloc((size_t)nt + 1, sizeof *ids);
		table **tabs = calloc((size_t)nt + 1, sizeof *tabs);
		if (!ids || !tabs)
			r = -ENOMEM;
		for (int i = 0; !r && i < nt && !(l == 0 && cs->l0_busy); i++) {
			table *t = v->tables[l][i];
			if (table_is_damaged(t) || table_max_version(t) > version ||
			    !slice_has_prefix(tab_lo(t), prefix) || !slice_has_prefix(tab_hi(t), prefix) ||
			    running_conflict(cs, l, tab_lo(t), tab_hi(t)))
				continue;
			if ((r = hull_extend(&j.lo, &j.hi, &empty, tab_lo(t), tab_hi(t))))
				break;
			table_ref(t);
			ids[n] = table_id(t);
			tabs[n++] = t;
		}
		/* held like a running compaction while the edit is installed */
		if (!r && n)
			r = running_register(cs, &j);
		pthread_mutex_unlock(&cs->mu);
		pthread_mutex_unlock(&db->mu);
		if (!r && n) {
			version_edit e = { .del_ids = ids, .ndel = n };
			r = db_install_edit(db, &e);
			running_unregister(cs, &j);
			discard_acc acc = { 0 };
			for (size_t i = 0; !r && i < n; i++)
				(void)acc_table(&acc, tabs[i]); /* advisory */
			discard_acc_apply(db->discard, &acc);
			discard_acc_free(&acc);
		}
		for (size_t i = 0; i < n; i++)
			table_unref(tabs[i]);
		free(ids);
		free(tabs);
		buf_free(&j.lo);
		buf_free(&j.hi);
		if (r == -EBUSY)
			r = 0; /* the registry is full: compaction does it */
	}
	return r;
}

/* ---- scheduling ---- */

/*
 * Picks the most urgent compaction this worker may run.  Returns 1 with *j
 * filled (registered, inputs referenced), 0 if there is nothing to do.
 * Sets *flush when the store is idle and the active memtable should be
 * flushed first (see IDLE_COMPACT_MS).
 */
static int pick_compaction(sett_db *db, struct compactor_state *cs, int worker, cjob *j,
			   int *flush)
{
	level_targets t;
	int r = 0;
	pthread_mutex_lock(&db->mu);
	lsm_version *v = db->current;
	if (!v) {
		pthread_mutex_unlock(&db->mu);
		return 0;
	}
	levels_targets(db, v, &t);
	int order[MAX_LEVELS], n = 0;
	for (int i = 0; i < MAX_LEVELS - 1; i++)
		if (t.score[i] >= 1.0)
			order[n++] = i;
	/* Highest adjusted score first (insertion sort: at most 6 levels). */
	for (int a = 1; a < n; a++)
		for (int b = a; b > 0 && t.adjusted[order[b]] > t.adjusted[order[b - 1]]; b--) {
			int x = order[b];
			order[b] = order[b - 1];
			order[b - 1] = x;
		}
	if (worker == 0)
		for (int a = 0; a < n; a++)
			if (order[a] == 0) {
				memmove(order + 1, order, (size_t)a * sizeof *order);
				order[0] = 0;
				break;
			}
	pthread_mutex_lock(&cs->mu);
	for (int a = 0; a < n && r == 0; a++) {
		int l = order[a];
		if (l == 0)
			r = pick_l0(cs, v, &t, t.base, j);
		else
			r = pick_level(cs, v, &t, l, l + 1, j);
	}
	if (worker == 0 && n == 0 && r == 0) {
		uint64_t lv = __atomic_load_n(&db->last_version, __ATOMIC_RELAXED), now = now_ms();
		if (lv != cs->idle_version) {
			cs->idle_version = lv;
			cs->idle_since_ms = now;
		} else if (now - cs->idle_since_ms >= IDLE_COMPACT_MS && lv != cs->idle_done) {
			if (cs->idle_flushed != lv && db->active.mt && memtable_count(db->active.mt)) {
				cs->idle_flushed = lv;
				*flush = 1;
			} else if (db->nimm == 0 && v->ntables[0] > 0) {
				r = pick_l0(cs, v, &t, t.base, j);
				if (r > 0)
					cs->idle_done = lv;
			}
		}
	}
	pthread_mutex_unlock(&cs->mu);
	pthread_mutex_unlock(&db->mu);
	return r;
}

static void maybe_persist_discard(sett_db *db, struct compactor_state *cs)
{
	uint64_t t = now_ms();
	if (t - cs->last_persist_ms >= 1000) {
		cs->last_persist_ms = t;
		discard_persist(db->discard); /* advisory: a failure is retried later */
	}
}

/*
 * A failure is retried.  Writers stalled on a deep L0 wait for L0's
 * compactions alone, so stall_error[STALL_L0] is the result of the last
 * compaction out of L0: its failure makes them fail meanwhile, and only its
 * success clears that (a compaction of another level says nothing about L0).
 */
static int compaction_run_job(sett_db *db, struct compactor_state *cs, cjob *j)
{
	int from = j->from;
	int r = run_job(db, cs, j);
	running_unregister(cs, j);
	job_release(j);
	if (r == SETT_ECORRUPT)
		db_set_bg_error(db, r);
	else if (r != SETT_ECLOSED && from == 0)
		db_set_stall_error(db, STALL_L0, r);
	return r;
}

static void *compactor_main(void *arg)
{
	compactor_arg *a = arg;
	sett_db *db = a->db;
	struct compactor_state *cs = db->compactors;
	long backoff = 0;
	for (;;) {
		pthread_mutex_lock(&db->mu);
		int stop = __atomic_load_n(&cs->stop, __ATOMIC_RELAXED);
		uint64_t kicks = db->compaction_kicks;
		pthread_mutex_unlock(&db->mu);
		if (stop)
			break;
		cjob j;
		memset(&j, 0, sizeof j);
		j.slot = -1;
		int flush = 0;
		int r = __atomic_load_n(&db->bg_error, __ATOMIC_RELAXED)
				? 0
				: pick_compaction(db, cs, a->idx, &j, &flush);
		if (flush && db_rotate_memtable(db) == 0)
			continue; /* the flusher kicks us when the table is in L0 */
		if (r > 0) {
			r = compaction_run_job(db, cs, &j);
			if (a->idx == 0)
				maybe_persist_discard(db, cs);
			if (r == 0) {
				backoff = 0;
				continue;
			}
			/* An I/O error (full disk...): retry later, not in a loop. */
			backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 100;
		}
		if (a->idx == 0)
			maybe_persist_discard(db, cs);
		pthread_mutex_lock(&db->mu);
		struct timespec ts;
		deadline_in(&ts, backoff ? backoff : 1000);
		while (!__atomic_load_n(&cs->stop, __ATOMIC_RELAXED) &&
		       (backoff || db->compaction_kicks == kicks))
			if (pthread_cond_timedwait(&db->cv_bg, &db->mu, &ts) == ETIMEDOUT)
				break;
		pthread_mutex_unlock(&db->mu);
	}
	return NULL;
}

/* ---- hooks ---- */

int compaction_start(sett_db *db)
{
	if (db->opt.read_only || db->compactors)
		return 0;
	struct compactor_state *cs = calloc(1, sizeof *cs);
	if (!cs)
		return -ENOMEM;
	pthread_mutex_init(&cs->mu, NULL);
	pthread_cond_init(&cs->cv, NULL);
	int r;
	cs->last_persist_ms = now_ms();
	pthread_mutex_lock(&db->mu);
	db->compactors = cs;
	pthread_mutex_unlock(&db->mu);
	int n = db->opt.num_compactors;
	if (n < 0)
		n = 0;
	if (n > MAX_COMPACTORS)
		n = MAX_COMPACTORS;
	for (int i = 0; i < n; i++) {
		cs->args[i].db = db;
		cs->args[i].idx = i;
		r = pthread_create(&cs->threads[i], NULL, compactor_main, &cs->args[i]);
		if (r) {
			compaction_stop(db);
			return -r;
		}
		cs->nthreads++;
	}
	return 0;
}

void compaction_stop(sett_db *db)
{
	struct compactor_state *cs = db->compactors;
	if (!cs)
		return;
	/* The caller has stopped GC, which may be waiting for a compaction. */
	pthread_mutex_lock(&cs->mu);
	__atomic_store_n(&cs->stop, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&cs->cv);
	pthread_mutex_unlock(&cs->mu);
	pthread_mutex_lock(&db->mu);
	pthread_cond_broadcast(&db->cv_bg);
	pthread_mutex_unlock(&db->mu);
	for (int i = 0; i < cs->nthreads; i++)
		pthread_join(cs->threads[i], NULL);
	pthread_mutex_lock(&db->mu);
	db->compactors = NULL;
	pthread_mutex_unlock(&db->mu);
	for (int i = 0; i < MAX_RUNNING; i++) {
		buf_free(&cs->running[i].lo);
		buf_free(&cs->running[i].hi);
	}
	pthread_cond_destroy(&cs->cv);
	pthread_mutex_destroy(&cs->mu);
	free(cs);
}


void compaction_level_info(sett_db *db, sett_level_info *levels)
{
	level_targets t;
	pthread_mutex_lock(&db->mu);
	lsm_version *v = db->current;
	memset(levels, 0, sizeof(sett_level_info) * SETT_MAX_LEVELS);
	if (v) {
		levels_targets(db, v, &t);
		for (int i = 0; i < MAX_LEVELS && i < SETT_MAX_LEVELS; i++) {
			levels[i].tables = v->ntables[i];
			levels[i].bytes = version_level_bytes(v, i);
			levels[i].target_bytes = i == 0 ? 0 : (i < t.base ? 0 : t.target[i]);
			levels[i].score = t.score[i];
		}
	}
	pthread_mutex_unlock(&db->mu);
}

void compaction_fill_stats(sett_db *db, sett_stats *st)
{
	sett_level_info lv[SETT_MAX_LEVELS];
	compaction_level_info(db, lv);
	for (int i = 0; i < SETT_MAX_LEVELS; i++) {
		st->levels[i].target_bytes = lv[i].target_bytes;
		st->levels[i].score = lv[i].score;
		st->compactions_pending += lv[i].score >= 1.0;
	}
	struct compactor_state *cs = db->compactors;
	if (!cs)
		return;
	pthread_mutex_lock(&cs->mu);
	for (int i = 0; i < MAX_RUNNING; i++)
		st->compactions_running += cs->running[i].used;
	pthread_mutex_unlock(&cs->mu);
}

/* ---- sett_flatten ---- */

/*
 * Flush, then compact every level down until L0..L5 are empty, then
 * rewrite each L6 table once: all data ends in L6, where tombstones,
 * expired entries and versions no reader can see are dropped.
 */
/*
 * sett_flatten, and with rewrite_last 0 only its first phase (everything
 * above the last level pushed down: tombstones meet what they hide).  Stops
 * with SETT_ECLOSED when the compactors stop or *stop is set.
 */
static int flatten(sett_db *db, int rewrite_last, const int *stop)
{
	if (db->opt.read_only)
		return -EROFS;
	struct compactor_state *cs = db->compactors;
	if (!cs)
		return SETT_ECLOSED;
	int r = sett_flush(db); /* waits for the flush */
	if (r)
		return r;
	uint64_t *self_ids = NULL;
	size_t nself = 0, iself = 0;
	int phase = 0; /* 0: push down, 1: rewrite L6 */
	for (long round = 0; round < 1000000; round++) {
		if (__atomic_load_n(&cs->stop, __ATOMIC_RELAXED) ||
		    (stop && __atomic_load_n(stop, __ATOMIC_RELAXED))) {
			r = SETT_ECLOSED;
			break;
		}
		cjob j;
		memset(&j, 0, sizeof j);
		j.slot = -1;
		level_targets t;
		int picked = 0, done = 0;
		pthread_mutex_lock(&db->mu);
		lsm_version *v = db->current;
		if ((r = db->bg_error) != 0) {
			pthread_mutex_unlock(&db->mu);
			break;
		}
		levels_targets(db, v, &t);
		int from = -1;
		for (int l = 0; l < MAX_LEVELS - 1 && from < 0; l++)
			if (v->ntables[l])
				from = l;
		if (phase == 0 && from < 0 && !rewrite_last) {
			pthread_mutex_unlock(&db->mu);
			break;
		}
		if (phase == 0 && from < 0) {
			phase = 1;
			int last = MAX_LEVELS - 1;
			nself = (size_t)v->ntables[last];
			self_ids = calloc(nself + 1, sizeof *self_ids);
			if (!self_ids)
				r = -ENOMEM;
			for (size_t k = 0; k < nself && self_ids; k++)
				self_ids[k] = table_id(v->tables[last][k]);
		}
		pthread_mutex_lock(&cs->mu);
		if (r) {
			/* fall through to the unlock */
		} else if (phase == 0) {
			int to = from + 1;
			while (to < MAX_LEVELS - 1 && v->ntables[to] == 0)
				to++;
			picked = from == 0 ? pick_l0(cs, v, &t, to, &j) : pick_level(cs, v, &t, from, to, &j);
		} else if (iself < nself) {
			picked = pick_self(cs, v, &t, MAX_LEVELS - 1, self_ids[iself], &j);
			/* A table already gone was rewritten by someone else. */
			int present = 0;
			for (int k = 0; k < v->ntables[MAX_LEVELS - 1] && !present; k++)
				present = table_id(v->tables[MAX_LEVELS - 1][k]) == self_ids[iself];
			if (picked > 0 || !present)
				iself++;
			if (!present)
				picked = 2; /* nothing to run; go on */
		} else {
			done = 1;
		}
		pthread_mutex_unlock(&cs->mu);
		pthread_mutex_unlock(&db->mu);
		if (r || done)
			break;
		if (picked < 0) {
			r = picked;
			break;
		}
		if (picked == 2)
			continue;
		if (picked == 0) {
			/* A background compaction holds the range: wait for it. */
			pthread_mutex_lock(&cs->mu);
			struct timespec ts;
			deadline_in(&ts, 100);
			pthread_cond_timedwait(&cs->cv, &cs->mu, &ts);
			pthread_mutex_unlock(&cs->mu);
			continue;
		}
		if ((r = compaction_run_job(db, cs, &j)))
			break;
	}
	free(self_ids);
	return r;
}

int sett_flatten(sett_db *db)
{
	return flatten(db, 1, NULL);
}

int compaction_push_down(sett_db *db, const int *stop)
{
	return flatten(db, 0, stop);
}

int compaction_flatten(sett_db *db, const int *stop)
{
	return flatten(db, 1, stop);
}
