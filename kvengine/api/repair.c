/*
 * repair.c - sett_repair: rebuild a store from its own files, the way
 * LevelDB's RepairDB does (sett.h says what it keeps and what it cannot).
 *
 * Nothing here trusts the MANIFEST.  Every NNNNNN.sst found is read through
 * a salvaging iterator (damaged blocks are reported and skipped), every
 * NNNNN.mem is replayed into a memtable up to its first damaged entry, and
 * all of them are merged.  Placing the old tables at levels by their key
 * ranges would not be enough: a point read takes the first table on L0 that
 * holds a key, and a table's id or largest version does not say whether it
 * holds the newest version of each of its keys.  A merge by internal key
 * does, so the newest version of every key is written out as one sorted
 * run on the last level.  A value pointer is read back before it is
 * written: a bad one loses its key (reported) unless another source holds
 * the same version with one that reads back (pick()); a good one into a
 * value-log file that holds any damaged entry is copied to the head of the
 * log, so that the damaged file can leave the store.
 *
 * Order on disk: new tables (fsynced) and the copied values (fsynced), the
 * directory, then the old MANIFEST moved to quarantine/ and the new one
 * renamed into place; only then are the old tables and WALs removed (the
 * damaged ones, and damaged value-log files, are moved to quarantine/).  A
 * crash before the new MANIFEST leaves the old files all there, and repair
 * can run again (the merge drops the duplicates); a crash after it leaves
 * files the MANIFEST does not name, which a repair run again also merges.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db_impl.h"
#include "discard.h"
#include "fileio.h"
#include "ikey.h"
#include "cipher.h"
#include "keyregistry.h"
#include "pin.h"
#include "table_format.h"

#define QUARANTINE "quarantine"

typedef struct src_table {
	uint64_t id;
	table *t;     /* NULL: did not open */
	int damaged;
} src_table;

typedef struct src_wal {
	uint64_t id;
	memtable *mt;
	int damaged;
} src_wal;

/* The user keys of a damaged block, and the newest version its table held. */
typedef struct lost_range {
	buf from, to; /* empty: the table's start, its end */
	int to_excl;  /* `to` itself is not in the range (`from` never is: the
		       * block's entries of that key are older than the one kept) */
	uint64_t max_version;
} lost_range;

typedef struct rep {
	const char *dir;
	sett_options o;
	sett_repair_fn report;
	void *arg;
	vlog *vl;
	uint32_t *bad_fids;
	int nbad;
	uint32_t *fids;   /* every value-log file at the start, ascending */
	uint64_t *live;   /* bytes of entries the new tables point at, per fids[i] */
	int nfids;
	src_table *tables;
	size_t ntables;
	src_wal *wals;
	size_t nwals;
	int *cur_damaged; /* the source being salvaged */
	uint64_t cur_max_version;
	lost_range *ranges;
	size_t nranges;
	uint64_t next_id;
	manifest_table *out;
	size_t nout;
	manifest_mark *marks; /* pins and drops salvaged from the old MANIFEST */
	size_t nmarks;
	uint64_t *pins;       /* the distinct pinned versions, newest first */
	size_t npins;
	uint64_t max_version; /* the newest version any file or mark holds */
	uint64_t kept, lost_values, lost_blocks, moved, stale;
	keyreg *kr; /* an encrypted store's data keys, or NULL */
	cipher_ring *ring;
	/* encryption at rest: the key new files get, and the keys files name */
	sett_cipher cipher;
	sett_keys keys;
} rep;

static void saw_version(rep *r, uint64_t v)
{
	if (v > r->max_version)
		r->max_version = v;
}

static void emit(rep *r, int kind, slice k, slice kend, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void emit(rep *r, int kind, slice k, slice kend, const char *fmt, ...)
{
	if (!r->report)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sett_repair_event ev = { .kind = kind, .msg = msg,
				 .key = { k.n, k.p }, .key_end = { kend.n, kend.p } };
	r->report(r->arg, &ev);
}

static void note(rep *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(rep *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	emit(r, SETT_REPAIR_NOTE, slice_make(NULL, 0), slice_make(NULL, 0), "%s", msg);
}

/* Moves dir/name into dir/quarantine/ (as name, or name.N if taken). */
static int quarantine(rep *r, const char *name)
{
	char qdir[4096], from[4096], to[4200];
	snprintf(qdir, sizeof qdir, "%s/" QUARANTINE, r->dir);
	snprintf(from, sizeof from, "%s/%s", r->dir, name);
	int e = sio_mkdir(qdir);
	if (e)
		return e;
	snprintf(to, sizeof to, "%s/%s", qdir, name);
	struct stat st;
	for (int i = 1; lstat(to, &st) == 0; i++)
		snprintf(to, sizeof to, "%s/%s.%d", qdir, name, i);
	if ((e = sio_rename(from, to)))
		return e;
	return sio_sync_dir(qdir);
}

static int is_bad_fid(const rep *r, uint32_t fid)
{
	for (int i = 0; i < r->nbad; i++)
		if (r->bad_fids[i] == fid)
			return 1;
	return 0;
}

static void progress(rep *r, const char *what, uint64_t done, uint64_t total)
{
	if (r->o.progress_fn)
		r->o.progress_fn(r->o.progress_arg, what, done, total);
}

static int vlog_versions(void *arg, const entry *e, const vptr *p)
{
	(void)p;
	if (e->key.n >= IKEY_SUFFIX)
		saw_version(arg, ikey_version(e->key));
	return 0;
}

/* Finds the value-log files that hold a damaged entry. */
static int scan_vlog(rep *r)
{
	uint32_t *fids = NULL;
	int n = 0;
	int e = vlog_list(r->vl, &fids, &n);
	if (e)
		return e;
	r->bad_fids = calloc((size_t)n + 1, sizeof *r->bad_fids);
	r->live = calloc((size_t)n + 1, sizeof *r->live);
	if (!r->bad_fids || !r->live) {
		free(fids);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		progress(r, "value log", (uint64_t)i, (uint64_t)n);
		e = vlog_iterate(r->vl, fids[i], vlog_versions, r);
		if (e == -ENOMEM)
			break;
		if (e) {
			r->bad_fids[r->nbad++] = fids[i];
			note(r, "%s/%06u.vlog: %s: its readable values are copied, then it goes to "
			     QUARANTINE "/", r->dir, fids[i], sett_strerror(e));
		}
		e = 0;
	}
	r->fids = fids;
	r->nfids = n;
	return e;
}

static void add_live(rep *r, const vptr *p)
{
	int lo = 0, hi = r->nfids;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (r->fids[mid] < p->fid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < r->nfids && r->fids[lo] == p->fid)
		r->live[lo] += p->len;
}

/*
 * DISCARD anew: what the new tables do not point at in each value-log
 * file is garbage (the older versions repair dropped), so GC finds it.
 * Files created by the repair (the copies) hold only live values.
 */
static int write_discard(rep *r)
{
	discard *d;
	int e = discard_new(r->dir, 0, &d);
	if (e)
		return e;
	for (int i = 0; i < r->nfids; i++) {
		uint64_t size = vlog_file_size(r->vl, r->fids[i]);
		if (!is_bad_fid(r, r->fids[i]) && size > LOG_HEADER_SIZE + r->live[i])
			discard_add(d, r->fids[i], size - LOG_HEADER_SIZE - r->live[i]);
	}
	e = discard_persist(d);
	int c = discard_close(d);
	return e ? e : c;
}

static void on_lost_block(void *arg, slice after, slice last, int excl, const char *why)
{
	rep *r = arg;
	*r->cur_damaged = 1;
	r->lost_blocks++;
	slice a = after.n >= IKEY_SUFFIX ? ikey_user(after) : slice_make(NULL, 0);
	slice b = last.n >= IKEY_SUFFIX ? ikey_user(last) : slice_make(NULL, 0);
	emit(r, SETT_REPAIR_LOST_KEYS, a, b, "%s: the keys in it are lost", why);
	lost_range *nr = realloc(r->ranges, (r->nranges + 1) * sizeof *nr);
	if (!nr)
		return; /* the staleness check then misses this block */
	r->ranges = nr;
	lost_range *lr = &r->ranges[r->nranges];
	memset(lr, 0, sizeof *lr);
	lr->max_version = r->cur_max_version;
	lr->to_excl = excl;
	if (buf_append(&lr->from, a.p, a.n) || buf_append(&lr->to, b.p, b.n)) {
		buf_free(&lr->from);
		buf_free(&lr->to);
		return;
	}
	r->nranges++;
}

static int open_tables(rep *r)
{
	uint64_t *ids;
	size_t n;
	int e = db_list_ids(r->dir, ".sst", &ids, &n);
	if (e)
		return e;
	r->tables = calloc(n + 1, sizeof *r->tables);
	if (!r->tables) {
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		progress(r, "tables", i, n);
		src_table *s = &r->tables[r->ntables++];
		char path[4096], why[512] = "";
		s->id = ids[i];
		if (ids[i] >= r->next_id)
			r->next_id = ids[i] + 1;
		snprintf(path, sizeof path, "%s/%06llu.sst", r->dir, (unsigned long long)ids[i]);
		e = table_open_enc(path, ids[i], NULL, &r->keys, &s->t, why, sizeof why);
		if (e == SETT_ECORRUPT) {
			/* the footer, index or properties: find the data blocks */
			char why2[512] = "";
			s->damaged = 1;
			int e2 = table_open_salvage_enc(path, ids[i], &r->keys, &s->t, why2, sizeof why2);
			if (e2 == 0)
				note(r, "%s: does not open (%s); its data blocks are read by their "
				     "checksums, and it goes to " QUARANTINE "/", path, why);
			else
				e = e2 == SETT_ECORRUPT ? e : e2;
			if (e2 == 0)
				e = 0;
		}
		if (e == -ENOMEM)
			break;
		if (!e)
			saw_version(r, table_max_version(s->t));
		if (e) {
			s->t = NULL;
			s->damaged = 1;
			r->lost_blocks++;
			emit(r, SETT_REPAIR_LOST_KEYS, slice_make(NULL, 0), slice_make(NULL, 0),
			     "%s: does not open (%s): its keys are lost (files it held newer versions of "
			     "read as they were before); it goes to " QUARANTINE "/",
			     path, why[0] ? why : sett_strerror(e));
			e = 0;
		}
	}
	free(ids);
	return e;
}

typedef struct wal_ctx {
	rep *r;
	memtable *mt;
} wal_ctx;

static int wal_apply(void *arg, const entry *e)
{
	wal_ctx *c = arg;
	memtable *mt = c->mt;
	if (e->key.n < IKEY_SUFFIX)
		return SETT_ECORRUPT;
	saw_version(c->r, ikey_version(e->key));
	vstruct v = { .meta = e->meta & META_LSM_MASK, .user_meta = e->user_meta,
		      .expires_at = e->expires_at, .data = e->value };
	buf vs = { 0 };
	int rc = vstruct_append(&vs, &v);
	if (!rc)
		rc = memtable_put(mt, e->key, slice_make(vs.p, vs.n));
	buf_free(&vs);
	return rc;
}

static int replay_wals(rep *r)
{
	uint64_t *ids;
	size_t n;
	int e = db_list_ids(r->dir, ".mem", &ids, &n);
	if (e)
		return e;
	r->wals = calloc(n + 1, sizeof *r->wals);
	if (!r->wals) {
		free(ids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && !e; i++) {
		progress(r, "logs", i, n);
		src_wal *s = &r->wals[r->nwals++];
		char path[4096], why[512] = "";
		s->id = ids[i];
		snprintf(path, sizeof path, "%s/%05llu.mem", r->dir, (unsigned long long)ids[i]);
		if ((e = memtable_new(&s->mt)))
			break;
		wal_ctx c = { r, s->mt };
		e = wal_open_replay_enc(path, 0, NULL, &r->keys, NULL, wal_apply, &c, NULL, why,
					sizeof why);
		if (e == -ENOMEM)
			break;
		if (e) {
			/* what came before the damage was applied and is kept */
			s->damaged = 1;
			r->lost_blocks++;
			emit(r, SETT_REPAIR_LOST_KEYS, slice_make(NULL, 0), slice_make(NULL, 0),
			     "%s: %s: the writes logged after it are lost; it goes to " QUARANTINE "/",
			     path, why[0] ? why : sett_strerror(e));
			e = 0;
		}
	}
	free(ids);
	return e;
}

/* A sit child wrapper so the salvage callback knows whose damage it sees. */
typedef struct src_iter {
	sit base;
	sit *in;
	rep *r;
	int *damaged;
	uint64_t max_version;
} src_iter;

#define SRC(it) ((src_iter *)(it))
static void src_enter(src_iter *s)
{
	s->r->cur_damaged = s->damaged;
	s->r->cur_max_version = s->max_version;
}
static void si_seek(sit *it, slice k) { src_enter(SRC(it)); sit_seek(SRC(it)->in, k); }
static void si_seek_prev(sit *it, slice k) { src_enter(SRC(it)); sit_seek_for_prev(SRC(it)->in, k); }
static void si_first(sit *it) { src_enter(SRC(it)); sit_first(SRC(it)->in); }
static void si_last(sit *it) { src_enter(SRC(it)); sit_last(SRC(it)->in); }
static void si_next(sit *it) { src_enter(SRC(it)); sit_next(SRC(it)->in); }
static void si_prev(sit *it) { src_enter(SRC(it)); sit_prev(SRC(it)->in); }
static int si_valid(const sit *it) { return sit_valid(((const src_iter *)it)->in); }
static slice si_key(const sit *it) { return sit_key(((const src_iter *)it)->in); }
static slice si_value(const sit *it) { return sit_value(((const src_iter *)it)->in); }
static int si_error(const sit *it) { return sit_error(((const src_iter *)it)->in); }
static void si_free(sit *it)
{
	sit_free(SRC(it)->in);
	free(it);
}
static const struct sit_ops src_iter_ops = {
	si_seek, si_seek_prev, si_first, si_last, si_next, si_prev,
	si_valid, si_key, si_value, si_error, si_free,
};

static sit *src_iter_new(rep *r, sit *in, int *damaged, uint64_t max_version)
{
	if (!in)
		return NULL;
	src_iter *s = calloc(1, sizeof *s);
	if (!s) {
		sit_free(in);
		return NULL;
	}
	s->base.ops = &src_iter_ops;
	s->in = in;
	s->r = r;
	s->damaged = damaged;
	s->max_version = max_version;
	return &s->base;
}

static int finish_table(rep *r, table_builder *b, uint64_t id, size_t *cap)
{
	int e = table_builder_finish(b);
	if (e)
		return e;
	if (r->nout == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		manifest_table *t = realloc(r->out, *cap * sizeof *t);
		if (!t)
			return -ENOMEM;
		r->out = t;
	}
	r->out[r->nout++] = (manifest_table){ .id = id, .level = MAX_LEVELS - 1,
					      .compression = (uint8_t)r->o.compression };
	return 0;
}

static void remove_outputs(rep *r)
{
	for (size_t i = 0; i < r->nout; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%06llu.sst", r->dir, (unsigned long long)r->out[i].id);
		sio_unlink(path);
	}
	r->nout = 0;
}

/*
 * A key whose newest version kept is not newer than a damaged block that
 * covered it may have lost a newer version there: it reads as that older
 * version (or as deleted), and is reported.
 */
static void check_stale(rep *r, slice uk, uint64_t version)
{
	for (size_t i = 0; i < r->nranges; i++) {
		lost_range *lr = &r->ranges[i];
		if (version > lr->max_version ||
		    (lr->from.n && slice_cmp(uk, slice_make(lr->from.p, lr->from.n)) <= 0) ||
		    (lr->to.n && slice_cmp(uk, slice_make(lr->to.p, lr->to.n)) >= !lr->to_excl))
			continue;
		r->stale++;
		emit(r, SETT_REPAIR_STALE, uk, slice_make(NULL, 0),
		     "a newer version may have been in a damaged block");
		return;
	}
}

/*
 * How much an entry is preferred: a pointer by its value-log file, then
 * anything else that decodes (an inline value, a tombstone), then what
 * does not.
 */
static int64_t rank_of(slice raw)
{
	vstruct v;
	vptr p;
	if (vstruct_decode(raw.p, raw.n, &v))
		return -1;
	if (!(v.meta & META_VALUE_POINTER))
		return 0;
	return vptr_decode(v.data.p, v.data.n, &p) ? -1 : (int64_t)p.fid + 1;
}

#define TRIED INT64_MIN

/* The entries of one internal key, one per source that holds it. */
typedef struct dups {
	struct dup {
		buf v;
		int64_t rank; /* rank_of(v); TRIED once read */
	} *e;
	size_t n, cap;
} dups;

static int dups_add(dups *d, slice v)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4;
		struct dup *ne = realloc(d->e, cap * sizeof *ne);
		if (!ne)
			return -ENOMEM;
		memset(ne + d->cap, 0, (cap - d->cap) * sizeof *ne);
		d->e = ne;
		d->cap = cap;
	}
	struct dup *x = &d->e[d->n++];
	x->v.n = 0;
	x->rank = rank_of(v);
	return buf_append(&x->v, v.p, v.n);
}

static void dups_free(dups *d)
{
	for (size_t i = 0; i < d->cap; i++)
		buf_free(&d->e[i].v);
	free(d->e);
}

/*
 * Chooses among the entries of one internal key.  Sources hold the same
 * key at the same version when value-log GC copied a live value to a newer
 * file: the WAL and then the table it wrote hold the new pointer, an older
 * table may still hold the old one (a compaction can carry that into a
 * table with any id), and once GC has deleted the old file only the new
 * pointer reads back.  So the entry that reads back wins; of several, the
 * pointer into the newest value-log file (a GC copy always goes to a newer
 * one), then one that needs no value log; of equal ranks the first source
 * (they are copies of one entry: same version, same pointer).  The key's
 * value is lost only if none reads back.
 *
 * 0: *v is the entry (for a pointer, *p with its value in val); otherwise
 * the error of the best-ranked entry, and why says what was lost.
 */
static int pick(rep *r, slice uk, dups *d, vstruct *v, vptr *p, buf *val, char *why,
		size_t whylen)
{
	int lost = 0;
	for (;;) {
		struct dup *x = NULL;
		for (size_t i = 0; i < d->n; i++)
			if (d->e[i].rank != TRIED && (!x || d->e[i].rank > x->rank))
				x = &d->e[i];
		if (!x)
			return lost;
		int64_t rank = x->rank;
		x->rank = TRIED;
		int e;
		char at[512] = "";
		if (rank < 0) {
			e = SETT_ECORRUPT;
			if (!lost)
				snprintf(why, whylen, "its value does not decode");
		} else {
			vstruct_decode(x->v.p, x->v.n, v);
			if (rank == 0)
				return 0;
			vptr_decode(v->data.p, v->data.n, p);
			val->n = 0;
			e = vlog_read(r->vl, p, uk, val, at, sizeof at);
			if (e == 0 || e == -ENOMEM)
				return e;
			if (e == -ENOENT)
				snprintf(at, sizeof at, "%s/%06u.vlog: missing", r->dir, p->fid);
			if (!lost)
				snprintf(why, whylen, "its value at %s is lost (%s)",
					 at[0] ? at : "a bad value pointer", sett_strerror(e));
		}
		if (!lost)
			lost = e;
	}
}

/* Merges every source and writes the newest version of each key. */
static int rebuild(rep *r)
{
	size_t nsrc = 0;
	sit **kids = calloc(r->nwals + r->ntables + 1, sizeof *kids);
	if (!kids)
		return -ENOMEM;
	int e = 0;
	for (size_t i = r->nwals; i-- > 0 && !e;) /* newest first */
		if (!(kids[nsrc++] = src_iter_new(r, memtable_iter_new(r->wals[i].mt),
						  &r->wals[i].damaged, UINT64_MAX)))
			e = -ENOMEM;
	for (size_t i = 0; i < r->ntables && !e; i++)
		if (r->tables[i].t &&
		    !(kids[nsrc++] = src_iter_new(r, table_salvage_iter_new(r->tables[i].t,
									   on_lost_block, r),
						  &r->tables[i].damaged,
						  table_max_version(r->tables[i].t))))
			e = -ENOMEM;
	if (e) {
		for (size_t i = 0; i < nsrc; i++)
			sit_free(kids[i]);
		free(kids);
		return e;
	}
	sit *m = merge_iter_new_all(kids, (int)nsrc);
	free(kids);
	if (!m)
		return -ENOMEM;

	table_options to = { .block_size = r->o.block_size, .compression = r->o.compression,
			     .zstd_level = r->o.zstd_level, .bloom_fp = r->o.bloom_false_positive,
			     .cipher = r->cipher };
	table_builder *b = NULL;
	uint64_t bid = 0;
	size_t cap = 0;
	buf ikb = { 0 }, last = { 0 }, val = { 0 }, vs = { 0 };
	dups d = { 0 };
	int have_last = 0;
	size_t bucket = 0; /* of the last version seen of the key `last` */
	time_t now = time(NULL);
	sit_first(m);
	while (!e && sit_valid(m)) {
		ikb.n = 0;
		if ((e = buf_append(&ikb, sit_key(m).p, sit_key(m).n)))
			break;
		slice ik = slice_make(ikb.p, ikb.n);
		slice uk = ikey_user(ik);
		d.n = 0;
		do { /* every source's entry for this key and version */
			if ((e = dups_add(&d, sit_value(m))))
				break;
			sit_next(m);
		} while (sit_valid(m) && ikey_cmp(sit_key(m), ik) == 0);
		if (e)
			break;
		/*
		 * Of each key, the newest version, and the newest that each pin
		 * sees (the buckets of pin.h, with no reader below: the others
		 * are older versions no one reads).
		 */
		size_t bk = pin_bucket(r->pins, r->npins, ikey_version(ik));
		int newest = !have_last || slice_cmp(uk, slice_make(last.p, last.n)) != 0;
		if (!newest && bk == bucket)
			continue; /* an older version */
		bucket = bk;
		if (newest) {
			last.n = 0;
			if ((e = buf_append(&last, uk.p, uk.n)))
				break;
			have_last = 1;
		}
		vstruct v;
		vptr p;
		char why[1024] = "";
		e = pick(r, uk, &d, &v, &p, &val, why, sizeof why);
		if (e == -ENOMEM)
			break;
		if (e) {
			/* no older version comes back in its place: it was overwritten */
			r->lost_values++;
			emit(r, SETT_REPAIR_LOST_VALUE, uk, slice_make(NULL, 0), "%s", why);
			e = 0;
			continue;
		}
		if (newest)
			check_stale(r, uk, ikey_version(ik));
		/* above the oldest pin's bucket it hides what a pin still sees */
		if (bk == r->npins &&
		    ((v.meta & META_DELETE) || (v.expires_at && v.expires_at <= (uint64_t)now)))
			continue; /* nothing below it any more */
		uint8_t pb[VPTR_SIZE];
		if (v.meta & META_VALUE_POINTER) {
			if (is_bad_fid(r, p.fid)) {
				entry en = { .key = ik, .value = slice_make(val.p, val.n),
					     .user_meta = v.user_meta, .expires_at = v.expires_at };
				vptr np;
				if ((e = vlog_append(r->vl, &en, 1, &np)))
					break;
				vptr_encode(pb, &np);
				v.data = slice_make(pb, VPTR_SIZE);
				r->moved++;
			} else {
				add_live(r, &p);
			}
		}
		vs.n = 0;
		if ((e = vstruct_append(&vs, &v)))
			break;
		/* tables end only between keys: a key's versions stay in one */
		if (b && newest && table_builder_size(b) >= r->o.base_table_size) {
			e = finish_table(r, b, bid, &cap);
			b = NULL;
			if (e)
				break;
		}
		if (!b) {
			char path[4096];
			bid = r->next_id++;
			snprintf(path, sizeof path, "%s/%06llu.sst", r->dir, (unsigned long long)bid);
			if ((e = table_builder_new(path, &to, &b)))
				break;
		}
		if ((e = table_builder_add(b, ik, slice_make(vs.p, vs.n))))
			break;
		if (++r->kept % 4096 == 0)
			progress(r, "keys rebuilt", r->kept, 0);
	}
	if (!e)
		e = sit_error(m);
	if (!e && b) {
		e = finish_table(r, b, bid, &cap);
		b = NULL;
	}
	if (b)
		table_builder_abandon(b);
	sit_free(m);
	dups_free(&d);
	buf_free(&ikb);
	buf_free(&last);
	buf_free(&val);
	buf_free(&vs);
	if (!e && r->moved)
		e = vlog_sync(r->vl);
	if (!e)
		e = sio_sync_dir(r->dir);
	if (e)
		remove_outputs(r);
	return e;
}

/*
 * Whether a file of the store carries an encrypted format's magic: the
 * MANIFEST, a WAL or a value-log file at its start, a table at its end
 * (doc/FORMAT.md, "Encryption at rest").  0, 1, or a negative errno.
 */
static int has_encrypted_file(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d)) != NULL) {
		const char *n = de->d_name, *dot = strrchr(n, '.');
		const char *magic = strcmp(n, "MANIFEST") == 0 ? "SETTMANE"
				    : dot && strcmp(dot, ".mem") == 0 ? "SETTWALE"
				    : dot && strcmp(dot, ".vlog") == 0 ? "SETTVLGE"
				    : dot && strcmp(dot, ".sst") == 0 ? TABLE_ENC_MAGIC : NULL;
		char path[4096];
		sfile *f;
		if (!magic || (size_t)snprintf(path, sizeof path, "%s/%s", dir, n) >= sizeof path ||
		    sfile_open(path, O_RDONLY, &f) != 0)
			continue;
		int64_t size = sfile_size(f);
		uint8_t m[8];
		int64_t at = strcmp(magic, TABLE_ENC_MAGIC) == 0 ? size - 8 : 0;
		found = size >= 8 && sfile_pread_full(f, m, 8, (uint64_t)at) == 0 &&
			memcmp(m, magic, 8) == 0;
		sfile_close(f);
	}
	closedir(d);
	return found;
}

/*
 * The data keys come first: every other file may be encrypted with them.
 * An intact registry is kept, whatever it says, and one with data keys
 * needs its master key: without it (or with the wrong one) repair is
 * SETT_EKEY and changes nothing, since every encrypted file would look
 * damaged.  A damaged registry of an unencrypted store (a header that
 * does not check or says no keys, in a file of at most the 24 bytes such
 * a registry has, in a store without an encrypted file) goes to
 * quarantine/, and the next writable open makes a new one; any other
 * damaged one is an encrypted store's, SETT_ECORRUPT with nothing moved:
 * the keys are lost, and with them everything they encrypt.
 */
static int check_keyregistry(rep *r)
{
	char path[4096], why[512] = "";
	snprintf(path, sizeof path, "%s/KEYREGISTRY", r->dir);
	keyreg_master m = { .key = r->o.encryption_key, .passphrase = r->o.encryption_passphrase };
	int e = keyreg_open(r->dir, &m, 1, 0, &r->kr, why, sizeof why);
	if (e == SETT_EKEY || (e && e != SETT_ECORRUPT)) {
		note(r, "%s", why[0] ? why : sett_strerror(e));
		return e;
	}
	if (!e && !(e = cipher_ring_new(r->kr, &r->ring))) {
		r->keys = cipher_ring_keys(r->ring);
		r->cipher = cipher_ring_current(r->ring);
	}
	if (e != SETT_ECORRUPT)
		return e;
	sfile *f;
	uint8_t h[24];
	if ((e = sfile_open(path, O_RDONLY, &f)))
		return e;
	int64_t size = sfile_size(f);
	e = size >= 24 ? sfile_pread_full(f, h, sizeof h, 0) : SETT_ECORRUPT;
	sfile_close(f);
	if (e && e != SETT_ECORRUPT)
		return e;
	if (!e && get_le64(h + 16) == sett_hash(h, 16) && get_le32(h + 12) != 0) {
		note(r, "%s: the store's data keys are lost", why);
		return SETT_ECORRUPT;
	}
	/*
	 * An unencrypted store's registry is 24 bytes: a longer one, or any
	 * in a store with encrypted files, is an encrypted store's, and stays.
	 */
	int enc = size > 24 ? 1 : has_encrypted_file(r->dir);
	if (enc < 0)
		return enc;
	if (enc) {
		note(r, "%s: an encrypted store's registry, damaged (%s): the store's data keys "
			"are lost; nothing is changed", path, why);
		return SETT_ECORRUPT;
	}
	note(r, "%s: damaged; it goes to " QUARANTINE "/ and a new one is made", path);
	return quarantine(r, "KEYREGISTRY");
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

/*
 * The old MANIFEST's pins, prefix drops and version high-water mark, from
 * the records that verify (manifest_salvage): without the pins the rebuild
 * would keep only each key's newest version and what a pin reads would be
 * gone; without the high-water mark, versions compaction dropped could be
 * handed out again.  What cannot be read is reported; the high-water mark
 * is then the newest version the files hold (r->max_version).
 */
static int salvage_marks(rep *r)
{
	char why[512] = "";
	uint64_t maxv = 0;
	size_t skipped = 0;
	int e = manifest_salvage(r->dir, &r->keys, &r->marks, &r->nmarks, &maxv, &skipped, why,
				 sizeof why);
	if (e == -ENOMEM)
		return e;
	if (e == -ENOENT) {
		note(r, "%s/MANIFEST: missing; pins and prefix drops, if there were any, are lost",
		     r->dir);
	} else if (e) {
		note(r, "%s: pins and prefix drops, if there were any, are lost; the version "
		     "high-water mark is the newest version the files hold",
		     why[0] ? why : sett_strerror(e));
	} else if (skipped) {
		note(r, "%s/MANIFEST: %zu damaged records skipped; the pins and prefix drops they "
		     "made or released may be lost or back", r->dir, skipped);
	}
	saw_version(r, maxv);
	r->pins = calloc(r->nmarks + 1, sizeof *r->pins);
	if (!r->pins)
		return -ENOMEM;
	for (size_t i = 0; i < r->nmarks; i++) {
		saw_version(r, r->marks[i].version);
		if (r->marks[i].kind == MANIFEST_MARK_PIN)
			r->pins[r->npins++] = r->marks[i].version;
	}
	qsort(r->pins, r->npins, sizeof *r->pins, cmp_desc);
	size_t n = 0;
	for (size_t i = 0; i < r->npins; i++)
		if (!n || r->pins[n - 1] != r->pins[i])
			r->pins[n++] = r->pins[i];
	r->npins = n;
	return 0;
}

static int lock_store(const char *dir, int *fdp)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/LOCK", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		close(fd);
		return err == EWOULDBLOCK ? SETT_ELOCKED : -err;
	}
	*fdp = fd;
	return 0;
}

static int has_store_files(const char *dir)
{
	static const char *const kinds[] = { ".sst", ".mem", ".vlog" };
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
		uint64_t *ids;
		size_t n;
		if (db_list_ids(dir, kinds[i], &ids, &n) == 0) {
			free(ids);
			if (n)
				return 1;
		}
	}
	return 0;
}

int sett_repair(const char *path, const sett_options *opt, sett_repair_fn report, void *arg)
{
	rep r = { .dir = path, .report = report, .arg = arg, .next_id = 1 };
	if (opt)
		r.o = *opt;
	else
		sett_options_init(&r.o);
	struct stat st;
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!has_store_files(path))
		return -ENOENT;
	int lockfd = -1;
	int e = lock_store(path, &lockfd);
	if (e)
		return e;

	char why[1024] = "";
	if ((e = check_keyregistry(&r)))
		goto out;
	vlog_options vo = { .file_size = r.o.value_log_file_size,
			    .max_entries = r.o.value_log_max_entries,
			    .verify_checksum = 1, .cipher = r.cipher, .keys = r.keys };
	if ((e = vlog_open(path, &vo, &r.vl, why, sizeof why))) {
		note(&r, "the value log does not open: %s", why[0] ? why : sett_strerror(e));
		goto out;
	}
	if ((e = salvage_marks(&r)) || (e = scan_vlog(&r)) || (e = open_tables(&r)) ||
	    (e = replay_wals(&r)))
		goto out;
	if ((e = rebuild(&r)))
		goto out;

	/* the new MANIFEST: the old one (if any) is kept aside */
	char mpath[4096];
	snprintf(mpath, sizeof mpath, "%s/MANIFEST", path);
	if (access(mpath, F_OK) == 0 && (e = quarantine(&r, "MANIFEST"))) {
		remove_outputs(&r);
		goto out;
	}
	if ((e = manifest_write(path, &r.cipher, r.out, r.nout, r.next_id, r.marks, r.nmarks,
				r.max_version)))
		goto out; /* the new tables are there; a new run merges them again */

	/* advisory: a failure leaves GC with less to go on, nothing worse */
	if (write_discard(&r) != 0)
		note(&r, "%s/DISCARD: not rewritten; value-log GC may miss garbage", path);

	/* the old files: their content is in the new tables now */
	for (size_t i = 0; i < r.ntables; i++) {
		src_table *s = &r.tables[i];
		char name[64], fpath[4200];
		snprintf(name, sizeof name, "%06llu.sst", (unsigned long long)s->id);
		snprintf(fpath, sizeof fpath, "%s/%s", path, name);
		if (s->t)
			table_unref(s->t);
		s->t = NULL;
		int q = s->damaged ? quarantine(&r, name) : sio_unlink(fpath);
		if (q && !e)
			e = q;
	}
	for (size_t i = 0; i < r.nwals; i++) {
		char name[64], fpath[4200];
		snprintf(name, sizeof name, "%05llu.mem", (unsigned long long)r.wals[i].id);
		snprintf(fpath, sizeof fpath, "%s/%s", path, name);
		int q = r.wals[i].damaged ? quarantine(&r, name) : sio_unlink(fpath);
		if (q && !e)
			e = q;
	}
	vlog_close(r.vl);
	r.vl = NULL;
	for (int i = 0; i < r.nbad; i++) {
		char name[64];
		snprintf(name, sizeof name, "%06u.vlog", r.bad_fids[i]);
		int q = quarantine(&r, name);
		if (q && !e)
			e = q;
	}
	if (!e)
		e = sio_sync_dir(path);
	if (!e)
		note(&r, "rebuilt %s from %zu tables and %zu logs: %llu keys in %zu tables; "
		     "%llu values copied out of damaged value-log files; %llu values and %llu "
		     "damaged stretches lost; %llu keys may be older than they were",
		     path, r.ntables, r.nwals, (unsigned long long)r.kept, r.nout,
		     (unsigned long long)r.moved, (unsigned long long)r.lost_values,
		     (unsigned long long)r.lost_blocks, (unsigned long long)r.stale);
out:
	for (size_t i = 0; i < r.ntables; i++)
		if (r.tables[i].t)
			table_unref(r.tables[i].t);
	for (size_t i = 0; i < r.nwals; i++)
		if (r.wals[i].mt)
			memtable_unref(r.wals[i].mt);
	for (size_t i = 0; i < r.nranges; i++) {
		buf_free(&r.ranges[i].from);
		buf_free(&r.ranges[i].to);
	}
	free(r.ranges);
	manifest_marks_free(r.marks, r.nmarks);
	free(r.pins);
	free(r.tables);
	free(r.wals);
	free(r.bad_fids);
	free(r.fids);
	free(r.live);
	free(r.out);
	if (r.vl)
		vlog_close(r.vl);
	cipher_ring_free(r.ring);
	keyreg_free(r.kr);
	close(lockfd);
	return e;
}
