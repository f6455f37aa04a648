/*
 * scrub.c - sett_scrub and sett_verify: every checksum of an open store,
 * read from the files.
 *
 * One walk serves both: the tables of one version (table_scrub), the
 * damaged tables that open_damaged kept below L0, the value-log files
 * (vlog_scrub), the WALs of the memtables and the MANIFEST (replayed
 * read-only, as open would).  Each fault goes to the caller with the file,
 * offset and keys it hits, and the walk goes on.  sett_verify is the walk
 * without a rate limit, reporting each fault's message.
 *
 * Rate: after each read the walk sleeps until start + bytes / rate, in
 * steps of at most 100 ms so that a stop request is seen soon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_impl.h"
#include "ikey.h"
#include "manifest.h"
#include "vlog.h"
#include "wal.h"

typedef struct scrub {
	sett_db *db;
	const sett_scrub_options *o;
	uint64_t done, total;
	struct timespec t0;
	const char *file, *area; /* the file being walked */
	int faults;
} scrub;

static double since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static int stopped(const scrub *s)
{
	return s->o->stop && __atomic_load_n(s->o->stop, __ATOMIC_RELAXED);
}

/* after n bytes were read: progress, stop, and the rate limit */
static int on_read(void *arg, uint64_t n)
{
	scrub *s = arg;
	s->done += n;
	if (s->done > s->total)
		s->total = s->done; /* a file grew since the start */
	if (s->o->progress_fn)
		s->o->progress_fn(s->o->arg, s->done, s->total);
	for (;;) {
		if (stopped(s))
			return -ECANCELED;
		if (!s->o->rate)
			return 0;
		double ahead = (double)s->done / (double)s->o->rate - since(&s->t0);
		if (ahead <= 0)
			return 0;
		if (ahead > 0.1)
			ahead = 0.1;
		struct timespec d = { 0, (long)(ahead * 1e9) };
		nanosleep(&d, NULL);
	}
}

static void emit(scrub *s, uint64_t off, uint64_t len, int keys, slice lo, slice hi,
		 const char *why)
{
	s->faults++;
	if (!s->o->fault_fn)
		return;
	sett_fault f = { s->file, s->area, off, len, why, keys, lo.p, hi.p, lo.n, hi.n };
	s->o->fault_fn(s->o->arg, &f);
}

static int on_table_fault(void *arg, uint64_t off, uint64_t len, slice lo, slice hi,
			  const char *why)
{
	scrub *s = arg;
	if (!lo.n || !hi.n)
		emit(s, off, len, SETT_FAULT_ANY_KEY, slice_make(NULL, 0), slice_make(NULL, 0), why);
	else
		emit(s, off, len, SETT_FAULT_RANGE, ikey_user(lo), ikey_user(hi), why);
	return stopped(s) ? -ECANCELED : 0;
}

static int on_vlog_fault(void *arg, uint64_t off, uint64_t len, slice key, const char *why)
{
	scrub *s = arg;
	if (key.p)
		emit(s, off, len, SETT_FAULT_KEY, ikey_user(key), ikey_user(key), why);
	else
		emit(s, off, len, SETT_FAULT_ANY_KEY, key, key, why);
	return stopped(s) ? -ECANCELED : 0;
}

static int scrub_table(scrub *s, table *t)
{
	char path[4096];
	db_table_path(s->db, table_id(t), path, sizeof path);
	s->file = path;
	s->area = "table";
	table_scrub_cb cb = { on_table_fault, on_read, s, s->o->drop_cache };
	int r = table_scrub(t, &cb);
	return r == SETT_ECORRUPT ? 0 : r;
}

static int no_apply(void *arg, const entry *e)
{
	(void)arg;
	(void)e;
	return 0;
}

/* The WAL fids of the memtables now (malloc'ed). */
static int wal_ids(sett_db *db, uint32_t **ids, int *n)
{
	pthread_mutex_lock(&db->mu);
	int cap = 0;
	const memslot *slots[MAX_MEMTABLES + 1];
	int ns = 0;
	if (db->active.w)
		slots[ns++] = &db->active;
	for (int i = 0; i < db->nimm; i++)
		slots[ns++] = &db->imm[i];
	for (int i = 0; i < ns; i++)
		cap += 1 + slots[i]->nmore;
	*ids = malloc(((size_t)cap + 1) * sizeof **ids);
	*n = 0;
	for (int i = 0; *ids && i < ns; i++) {
		if (slots[i]->w)
			(*ids)[(*n)++] = wal_fid(slots[i]->w);
		for (int k = 0; k < slots[i]->nmore; k++)
			(*ids)[(*n)++] = wal_fid(slots[i]->more[k]);
	}
	pthread_mutex_unlock(&db->mu);
	return *ids ? 0 : -ENOMEM;
}

static uint64_t file_bytes(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
	fclose(f);
	return n > 0 ? (uint64_t)n : 0;
}

/* Replays a log file read-only, as open would: a fault names its offset. */
static int scrub_log(scrub *s, const char *path, const char *area)
{
	char why[1024] = "";
	int r;
	uint64_t n = file_bytes(path);
	s->file = path;
	s->area = area;
	if (!strcmp(area, "WAL")) {
		r = wal_open_replay_enc(path, 0, NULL, &s->db->keys, NULL, no_apply, NULL, NULL, why,
					sizeof why);
	} else {
		manifest *m;
		manifest_table *t;
		size_t nt;
		r = manifest_open_enc(s->db->dir, 1, NULL, &s->db->keys, &m, &t, &nt, why,
				      sizeof why);
		if (!r) {
			free(t);
			manifest_close(m);
		}
	}
	if (r == -ENOENT)
		return 0; /* flushed, or rewritten, since it was listed */
	if (r == SETT_ECORRUPT || r == SETT_EFORMAT) {
		unsigned long long off = 0;
		const char *at = strstr(why, "offset ");
		if (at)
			off = strtoull(at + 7, NULL, 10);
		if (!why[0])
			snprintf(why, sizeof why, "%s: %s", path, sett_strerror(r));
		emit(s, off, 0, !strcmp(area, "WAL") ? SETT_FAULT_ANY_KEY : SETT_FAULT_NO_KEYS,
		     slice_make(NULL, 0), slice_make(NULL, 0), why);
		r = 0;
	}
	return r ? r : on_read(s, n);
}

int sett_scrub(sett_db *db, const sett_scrub_options *o)
{
	scrub s = { db, o, 0, 0, { 0, 0 }, NULL, NULL, 0 };
	clock_gettime(CLOCK_MONOTONIC, &s.t0);
	pthread_mutex_lock(&db->mu);
	lsm_version *v = db->current;
	version_ref(v);
	pthread_mutex_unlock(&db->mu);
	uint32_t *fids = NULL, *wals = NULL;
	int nf = 0, nw = 0;
	int r = vlog_list(db->vl, &fids, &nf);
	if (!r)
		r = wal_ids(db, &wals, &nw);
	char path[4096];

	/* the total: every file's size now */
	uint64_t ntables = 0, done = 0;
	for (int l = 0; l < MAX_LEVELS; l++) {
		ntables += (uint64_t)v->ntables[l];
		for (int i = 0; i < v->ntables[l]; i++)
			s.total += table_file_size(v->tables[l][i]);
	}
	for (int i = 0; i < nf; i++)
		s.total += vlog_file_size(db->vl, fids[i]);
	for (int i = 0; i < nw; i++) {
		snprintf(path, sizeof path, "%s/%05u.mem", db->dir, wals[i]);
		s.total += file_bytes(path);
	}
	snprintf(path, sizeof path, "%s/MANIFEST", db->dir);
	s.total += file_bytes(path);

	for (int l = 0; !r && l < MAX_LEVELS; l++) {
		for (int i = 0; !r && i < v->ntables[l]; i++) {
			if (db->opt.progress_fn)
				db->opt.progress_fn(db->opt.progress_arg, "tables", done++, ntables);
			r = scrub_table(&s, v->tables[l][i]);
		}
	}
	version_unref(v);
	for (int i = 0; !r && i < db->ndamaged_below_l0; i++)
		r = scrub_table(&s, db->damaged_below_l0[i]);
	if (!r && db->opt.progress_fn)
		db->opt.progress_fn(db->opt.progress_arg, "tables", ntables, ntables);
	for (int i = 0; !r && i < nf; i++) {
		if (db->opt.progress_fn)
			db->opt.progress_fn(db->opt.progress_arg, "value log", (uint64_t)i,
					    (uint64_t)nf);
		snprintf(path, sizeof path, "%s/%06u.vlog", db->dir, fids[i]);
		s.file = path;
		s.area = "value log";
		vlog_scrub_cb cb = { on_vlog_fault, on_read, &s, o->drop_cache };
		r = vlog_scrub(db->vl, fids[i], &cb);
		if (r == -ENOENT || r == SETT_ECORRUPT)
			r = 0; /* GC deleted it since the list was taken; or reported */
	}
	if (!r && db->opt.progress_fn)
		db->opt.progress_fn(db->opt.progress_arg, "value log", (uint64_t)nf, (uint64_t)nf);
	for (int i = 0; !r && i < nw; i++) {
		snprintf(path, sizeof path, "%s/%05u.mem", db->dir, wals[i]);
		r = scrub_log(&s, path, "WAL");
	}
	if (!r) {
		snprintf(path, sizeof path, "%s/MANIFEST", db->dir);
		r = scrub_log(&s, path, "MANIFEST");
	}
	free(fids);
	free(wals);
	if (!r && o->progress_fn)
		o->progress_fn(o->arg, s.total, s.total);
	return r ? r : s.faults ? SETT_ECORRUPT : 0;
}

struct verify_report {
	sett_report_fn report;
	void *arg;
};

static void report_msg(void *arg, const sett_fault *f)
{
	struct verify_report *v = arg;
	if (v->report)
		v->report(v->arg, f->msg);
}

int sett_verify(sett_db *db, sett_report_fn report, void *arg)
{
	struct verify_report v = { report, arg };
	sett_scrub_options o = { 0 };
	o.fault_fn = report_msg;
	o.arg = &v;
	return sett_scrub(db, &o);
}
