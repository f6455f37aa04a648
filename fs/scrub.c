/*
 * scrub.c - online scrub of a mounted store (scrub.h): the daemon's scrub
 * thread, the naming of damaged files, and `settfs scrub`.
 *
 * The thread runs sett_scrub; each fault is kept (the first
 * SFS_SCRUB_MAX_FAULTS) with the keys it hits.  When the walk ends, the
 * faults are turned into paths: a key's tag says whose it is (`C`, `I`,
 * `X`, `O` keys carry the inode, a `D` key its directory); a block's key
 * range from one inode to another covers every inode between, which one
 * scan of the directory entries finds (with a name for each).  A path is
 * built upwards: a directory's inode records its parent, and the parent's
 * entries name it.  The live filesystem's entries are scanned first, then
 * each snapshot's (at its pinned version): a file deleted since a
 * snapshot is named by its path there.  An inode no entry names is
 * "(unlinked)".
 *
 * The status records are read under the scrub's lock, which the thread
 * holds only to add a fault or to finish: a status request never waits
 * for I/O.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "schema.h"
#include "scrub.h"

enum { ST_NONE, ST_RUNNING, ST_CLEAN, ST_DAMAGED, ST_STOPPED, ST_FAILED };
static const char *const state_names[] = { "none", "running", "clean", "damaged", "stopped",
					   "failed" };

#define MAX_PATHS 64 /* files named per fault */

typedef struct fault {
	char *msg;
	int keys; /* enum sett_fault_keys */
	uint8_t *lo, *hi;
	size_t lon, hin;
	char **paths; /* what it hits, once named */
	int npaths, more; /* more: files are hit that are not listed */
} fault;

struct sfs_scrub {
	settfs *fs;
	pthread_mutex_t mu;
	pthread_t thread;
	int have_thread;
	int stop;                /* atomic: ends a running scrub */
	int state;               /* ST_* (mu) */
	int64_t started, ended;  /* unix seconds (mu) */
	uint64_t rate;           /* (mu) */
	uint64_t done, total;    /* atomic */
	uint64_t nfaults;        /* every fault found (mu) */
	fault *faults;           /* the first SFS_SCRUB_MAX_FAULTS (mu) */
	int nkept, naming;       /* naming: faults are being named (mu) */
	char error[256];         /* ST_FAILED: why (mu) */
};

/* ---- the scrub thread --------------------------------------------------- */

static void fault_free(fault *f)
{
	free(f->msg);
	free(f->lo);
	free(f->hi);
	for (int i = 0; i < f->npaths; i++)
		free(f->paths[i]);
	free(f->paths);
}

static void clear_faults(sfs_scrub *s)
{
	for (int i = 0; i < s->nkept; i++)
		fault_free(&s->faults[i]);
	free(s->faults);
	s->faults = NULL;
	s->nkept = 0;
	s->nfaults = 0;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

static void on_fault(void *arg, const sett_fault *sf)
{
	sfs_scrub *s = arg;
	pthread_mutex_lock(&s->mu);
	s->nfaults++;
	if (s->nkept < SFS_SCRUB_MAX_FAULTS) {
		if (!s->faults)
			s->faults = calloc(SFS_SCRUB_MAX_FAULTS, sizeof *s->faults);
		fault *f = s->faults ? &s->faults[s->nkept] : NULL;
		if (f) {
			memset(f, 0, sizeof *f);
			f->msg = strdup(sf->msg);
			f->keys = sf->keys;
			f->lo = dup_bytes(sf->key_lo, sf->key_lo_len);
			f->hi = dup_bytes(sf->key_hi, sf->key_hi_len);
			f->lon = sf->key_lo_len;
			f->hin = sf->key_hi_len;
			if (f->msg && f->lo && f->hi)
				s->nkept++;
			else
				fault_free(f);
		}
	}
	pthread_mutex_unlock(&s->mu);
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	sfs_scrub *s = arg;
	__atomic_store_n(&s->total, total, __ATOMIC_RELAXED);
	__atomic_store_n(&s->done, done, __ATOMIC_RELAXED);
}

/* The inode a key names, with its tag, or 0: a key no inode owns. */
static uint64_t key_ino(const uint8_t *k, size_t n, char *tag)
{
	*tag = n ? (char)k[0] : 0;
	if (n < 9 || !strchr("CDIXO", *tag))
		return 0;
	return sfs_get_be64(k + 1);
}

/*
 * The inodes a fault hits, as [lo, hi] per tag: what a scan of the entries
 * tests.  A range that runs from one tag into another covers the tags
 * between whole.  dir: the range is of directory entries (`D`), which
 * name their directory.
 */
typedef struct span {
	uint64_t lo, hi;
	int dir;  /* of directory entries: names their directory */
	int data; /* of chunk keys: only files and symlinks have them */
} span;

static int spans_of(const fault *f, span *out, int max)
{
	char tl, th;
	uint64_t il = key_ino(f->lo, f->lon, &tl), ih = key_ino(f->hi, f->hin, &th);
	int n = 0;
	static const char tags[] = "CDIOX"; /* in key order */
	if (f->keys != SETT_FAULT_KEY && f->keys != SETT_FAULT_RANGE)
		return 0;
	for (const char *t = tags; *t && n < max; t++) {
		if (*t < tl || *t > th)
			continue;
		uint64_t lo = 1, hi = UINT64_MAX;
		if (*t == tl && f->lon >= 9)
			lo = il ? il : 1;
		if (*t == th && f->hin < 9)
			continue; /* the tag alone: it sorts before the tag's keys */
		if (*t == th)
			hi = ih;
		if (lo <= hi)
			out[n++] = (span){ lo, hi, *t == 'D', *t == 'C' };
	}
	return n;
}

/* what a single key is, for the message: "data bytes A-B", "xattr N" */
static void key_detail(const fault *f, uint32_t chunk, char *out, size_t n)
{
	out[0] = 0;
	const uint8_t *k = f->lo;
	if (f->keys != SETT_FAULT_KEY && !(f->lon == f->hin && !memcmp(f->lo, f->hi, f->lon)))
		return;
	if (f->lon == SFS_CHUNK_KEY_LEN && k[0] == SFS_TAG_CHUNK) {
		uint64_t idx = sfs_get_be64(k + 9);
		snprintf(out, n, " (data, bytes %" PRIu64 "-%" PRIu64 ")", idx * chunk,
			 (idx + 1) * chunk - 1);
	} else if (f->lon == SFS_PAGE_KEY_LEN && k[0] == SFS_TAG_CHUNK) {
		uint64_t idx = sfs_get_be64(k + 9);
		uint32_t pg = sfs_get_be32(k + 17);
		uint64_t at = idx * chunk + (uint64_t)pg * SFS_PAGE_SIZE;
		snprintf(out, n, " (data, bytes %" PRIu64 "-%" PRIu64 ")", at,
			 at + SFS_PAGE_SIZE - 1);
	} else if (f->lon > 9 && k[0] == SFS_TAG_XATTR) {
		snprintf(out, n, " (xattr %.*s)", (int)(f->lon - 9), (const char *)k + 9);
	} else if (f->lon > 9 && k[0] == SFS_TAG_DENTRY) {
		snprintf(out, n, " (its entry %.*s)", (int)(f->lon - 9), (const char *)k + 9);
	} else if (f->lon == 9 && k[0] == SFS_TAG_INODE) {
		snprintf(out, n, " (its inode)");
	}
}

/* An inode to name: where an entry names it. */
typedef struct named {
	uint64_t ino, parent;
	char *name;
} named;

/* What one view of the filesystem (the live one, or a snapshot's) names. */
typedef struct namer {
	sett_db *db;
	uint64_t rv;       /* the version it reads (0: the newest) */
	char prefix[300];  /* of its paths: "" or "/.snapshots/NAME" */
	named *v;
	size_t n, cap;
	int scan_err;
} namer;

static named *find_named(namer *nm, uint64_t ino)
{
	for (size_t i = 0; i < nm->n; i++)
		if (nm->v[i].ino == ino)
			return &nm->v[i];
	return NULL;
}

static named *want(namer *nm, uint64_t ino)
{
	named *d = find_named(nm, ino);
	if (d)
		return d;
	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? 2 * nm->cap : 64;
		named *v = realloc(nm->v, cap * sizeof *v);
		if (!v)
			return NULL;
		nm->v = v;
		nm->cap = cap;
	}
	d = &nm->v[nm->n++];
	*d = (named){ ino, 0, NULL };
	return d;
}

/* An entry (parent, name) -> ino seen by a scan: remember it if wanted. */
static void saw_entry(namer *nm, uint64_t parent, const uint8_t *name, size_t len, uint64_t ino)
{
	named *d = find_named(nm, ino);
	if (d && !d->name && (d->name = malloc(len + 1))) {
		memcpy(d->name, name, len);
		d->name[len] = 0;
		d->parent = parent;
	}
}

/* Scans the entries under prefix (of length pn): fn for each. */
static int scan_entries(sett_db *db, uint64_t rv, const uint8_t *prefix, size_t pn,
			int (*fn)(void *, uint64_t, const uint8_t *, size_t, uint64_t, uint32_t),
			void *arg)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.prefix = (sett_val){ pn, prefix };
	io.read_version = rv;
	sett_iter *it;
	int r = sett_iter_new(db, &io, &it);
	if (r)
		return r;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v;
		uint64_t ino;
		uint32_t type;
		if (k.size <= 9 || sett_iter_value(it, &v) ||
		    sfs_dentry_decode(v.data, v.size, &ino, &type))
			continue;
		const uint8_t *kp = k.data;
		if ((r = fn(arg, sfs_get_be64(kp + 1), kp + 9, k.size - 9, ino, type)))
			break;
	}
	if (!r)
		r = sett_iter_error(it);
	sett_iter_free(it);
	return r;
}

/* the faults' spans, for the one scan of every entry */
typedef struct hit_scan {
	const int *stop; /* an unmount does not wait for the rest of the scan */
	namer *nm;
	fault *faults;
	int nfaults;
	span (*spans)[8];
	int *nspans;
} hit_scan;

static int add_path_ino(fault *f, uint64_t ino);

static int on_any_entry(void *arg, uint64_t parent, const uint8_t *name, size_t len,
			uint64_t ino, uint32_t type)
{
	hit_scan *h = arg;
	if (__atomic_load_n(h->stop, __ATOMIC_RELAXED))
		return -ECANCELED;
	for (int i = 0; i < h->nfaults; i++) {
		if (h->faults[i].more)
			continue; /* its list is full */
		for (int j = 0; j < h->nspans[i]; j++) {
			const span *sp = &h->spans[i][j];
			if (sp->data && S_ISDIR(type))
				continue;
			uint64_t who = sp->dir ? parent : ino;
			if (who >= sp->lo && who <= sp->hi && add_path_ino(&h->faults[i], who) == 0)
				want(h->nm, who);
		}
	}
	saw_entry(h->nm, parent, name, len, ino);
	return 0;
}

/* f->paths holds inode numbers as "#N" until they are named */
static int add_path_ino(fault *f, uint64_t ino)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, "#%" PRIu64, ino);
	for (int i = 0; i < f->npaths; i++)
		if (!strcmp(f->paths[i], tmp))
			return 1;
	if (f->npaths == MAX_PATHS) {
		f->more = 1;
		return 1;
	}
	if (!f->paths && !(f->paths = calloc(MAX_PATHS, sizeof *f->paths)))
		return -1;
	if (!(f->paths[f->npaths] = strdup(tmp)))
		return -1;
	f->npaths++;
	return 0;
}

struct find_child {
	uint64_t child;
	char name[256];
};

static int on_dir_entry(void *arg, uint64_t parent, const uint8_t *name, size_t len,
			uint64_t ino, uint32_t type)
{
	(void)parent;
	(void)type;
	struct find_child *c = arg;
	if (ino != c->child)
		return 0;
	snprintf(c->name, sizeof c->name, "%.*s", (int)len, (const char *)name);
	return 1;
}

/* The path of directory d ("" for the root) at version rv, or NULL: not reachable. */
static char *dir_path(sett_db *db, uint64_t rv, uint64_t d, int depth)
{
	if (d == 1)
		return strdup("");
	if (depth > 4096)
		return NULL;
	uint8_t k[SFS_KEY_MAX];
	size_t kn = sfs_key_inode(k, d);
	void *v;
	size_t vn;
	if (sett_get(db, (sett_val){ kn, k }, rv, &v, &vn))
		return NULL;
	sfs_inode in;
	int r = sfs_inode_decode(v, vn, &in);
	free(v);
	if (r)
		return NULL;
	uint64_t parent = in.parent;
	sfs_inode_free(&in);
	if (!parent || parent == d)
		return NULL;
	struct find_child c = { d, "" };
	kn = sfs_key_dentry(k, parent, NULL, 0);
	if (scan_entries(db, rv, k, kn, on_dir_entry, &c) != 1)
		return NULL;
	char *up = dir_path(db, rv, parent, depth + 1), *p = NULL;
	if (up && asprintf(&p, "%s/%s", up, c.name) < 0)
		p = NULL;
	free(up);
	return p;
}

/* The path of ino in nm's view, or NULL: no entry there names it, or its
 * directory's path cannot be found. */
static char *path_in(const namer *nm, uint64_t ino)
{
	const named *d = find_named((namer *)nm, ino);
	char *p = NULL;
	if (ino == 1) {
		if (asprintf(&p, "%s/", nm->prefix) < 0)
			p = NULL;
		return p;
	}
	char *up = d && d->name ? dir_path(nm->db, nm->rv, d->parent, 0) : NULL;
	if (up && asprintf(&p, "%s%s/%s", nm->prefix, up, d->name) < 0)
		p = NULL;
	free(up);
	return p;
}

/* The path of ino: in the live filesystem, else in the first snapshot that
 * holds it; else what is known of it. */
static char *path_of(const namer *nm, size_t nnm, uint64_t ino)
{
	for (size_t i = 0; i < nnm; i++) {
		char *p = path_in(&nm[i], ino);
		if (p)
			return p;
	}
	char *p = NULL;
	int r = 0, err = 0;
	const named *d = NULL;
	for (size_t i = 0; i < nnm; i++) {
		err |= nm[i].scan_err;
		if (!d && (d = find_named((namer *)&nm[i], ino)) && !d->name)
			d = NULL;
	}
	if (d)
		r = asprintf(&p, "inode %" PRIu64 " (%s in directory inode %" PRIu64
				 ", whose path is not known)", ino, d->name, d->parent);
	else if (err)
		r = asprintf(&p, "inode %" PRIu64 " (not all directory entries could be read)", ino);
	else
		r = asprintf(&p, "(unlinked) inode %" PRIu64, ino);
	return r < 0 ? NULL : p;
}

/* What a fault that hits no inode holds. */
static const char *no_file(const fault *f, int scan_err)
{
	if (f->keys == SETT_FAULT_NO_KEYS)
		return "(no file: the store's list of tables)";
	if (f->keys == SETT_FAULT_ANY_KEY)
		return "(not known which: any file may be hit)";
	if (scan_err)
		return "(not known: not all directory entries could be read)";
	if (f->keys == SETT_FAULT_KEY && f->lon && f->lo[0] == SFS_TAG_SUPER)
		return "(no file: the superblock)";
	if (f->keys == SETT_FAULT_KEY && f->lon && f->lo[0] == SFS_TAG_NEXTINO)
		return "(no file: the inode counter)";
	if (f->keys == SETT_FAULT_KEY && f->lon && f->lo[0] == SFS_TAG_SNAP)
		return "(no file: a snapshot's record)";
	return "(no file: filesystem metadata)";
}

/* Every inode the faults name so far is wanted by nm. */
static void want_all(namer *nm, const fault *work, int nf)
{
	for (int i = 0; i < nf; i++)
		for (int j = 0; j < work[i].npaths; j++)
			want(nm, strtoull(work[i].paths[j] + 1, NULL, 10));
}

/* Names the files of s's faults (the scrub thread, after the walk). */
static void name_faults(sfs_scrub *s)
{
	sett_db *db = settfs_engine(s->fs);
	uint32_t chunk = settfs_chunk_size(s->fs);
	pthread_mutex_lock(&s->mu);
	int nf = s->nkept;
	fault *faults = s->faults;
	s->naming = 1;
	pthread_mutex_unlock(&s->mu);
	/* the live view first, then each snapshot's: a file deleted since a
	 * snapshot still has its keys, and a name, there */
	settfs_snap_info *snaps = NULL;
	size_t nsnaps = 0;
	if (nf && settfs_snapshot_list(s->fs, &snaps, &nsnaps))
		nsnaps = 0;
	size_t nnm = 0;
	namer *nm = calloc(nsnaps + 1, sizeof *nm);
	/* the faults' own lists are the thread's until it publishes them */
	fault *work = nf ? calloc((size_t)nf, sizeof *work) : NULL;
	span (*spans)[8] = nf ? calloc((size_t)nf, sizeof *spans) : NULL;
	int *nspans = nf ? calloc((size_t)nf, sizeof *nspans) : NULL;
	if (!nm || (nf && (!work || !spans || !nspans)))
		goto out;
	nm[nnm++] = (namer){ .db = db };
	for (size_t i = 0; i < nsnaps; i++) {
		if (snaps[i].damaged)
			continue;
		namer *n = &nm[nnm++];
		*n = (namer){ .db = db, .rv = snaps[i].version };
		snprintf(n->prefix, sizeof n->prefix, "/%s/%s", SETTFS_SNAPDIR_NAME, snaps[i].name);
	}
	for (int i = 0; i < nf; i++) {
		work[i].keys = faults[i].keys;
		nspans[i] = spans_of(&faults[i], spans[i], 8);
		/* one inode: no range to test the entries against */
		if (nspans[i] == 1 && spans[i][0].lo == spans[i][0].hi) {
			add_path_ino(&work[i], spans[i][0].lo);
			nspans[i] = 0;
		}
		for (int j = 0; j < nspans[i]; j++)
			if (!spans[i][j].dir && spans[i][j].lo <= 1)
				add_path_ino(&work[i], 1); /* the root: no entry names it */
	}
	uint8_t d = SFS_TAG_DENTRY;
	/* every entry of each view once: the inodes in the ranges, and the
	 * names of all wanted */
	for (size_t k = 0; nf && k < nnm; k++) {
		want_all(&nm[k], work, nf);
		hit_scan h = { &s->stop, &nm[k], work, nf, spans, nspans };
		nm[k].scan_err = scan_entries(db, nm[k].rv, &d, 1, on_any_entry, &h);
	}
	int scan_err = 0;
	for (size_t k = 0; k < nnm; k++)
		scan_err |= nm[k].scan_err;
	for (int i = 0; i < nf; i++) {
		char detail[300];
		key_detail(&faults[i], chunk, detail, sizeof detail);
		for (int j = 0; j < work[i].npaths; j++) {
			uint64_t ino = strtoull(work[i].paths[j] + 1, NULL, 10);
			char *p = path_of(nm, nnm, ino), *q = NULL;
			if (p && asprintf(&q, "%s%s", p, detail) < 0)
				q = NULL;
			free(p);
			free(work[i].paths[j]);
			work[i].paths[j] = q ? q : strdup("?");
		}
		int any = faults[i].keys == SETT_FAULT_NO_KEYS || faults[i].keys == SETT_FAULT_ANY_KEY;
		if ((any || !work[i].npaths) && add_path_ino(&work[i], 0) == 0) {
			free(work[i].paths[work[i].npaths - 1]);
			work[i].paths[work[i].npaths - 1] = strdup(no_file(&faults[i], scan_err));
		}
	}
out:
	pthread_mutex_lock(&s->mu);
	for (int i = 0; work && i < nf; i++) {
		s->faults[i].paths = work[i].paths;
		s->faults[i].npaths = work[i].npaths;
		s->faults[i].more = work[i].more;
	}
	s->naming = 0;
	pthread_mutex_unlock(&s->mu);
	free(work);
	free(spans);
	free(nspans);
	for (size_t k = 0; k < nnm; k++) {
		for (size_t i = 0; i < nm[k].n; i++)
			free(nm[k].v[i].name);
		free(nm[k].v);
	}
	free(nm);
	free(snaps);
}

static void *run(void *arg)
{
	sfs_scrub *s = arg;
	sett_scrub_options o = { 0 };
	pthread_mutex_lock(&s->mu);
	o.rate = s->rate;
	pthread_mutex_unlock(&s->mu);
	o.drop_cache = 1;
	o.stop = &s->stop;
	o.fault_fn = on_fault;
	o.progress_fn = on_progress;
	o.arg = s;
	int r = sett_scrub(settfs_engine(s->fs), &o);
	if (r == 0 || r == SETT_ECORRUPT)
		name_faults(s);
	pthread_mutex_lock(&s->mu);
	s->ended = (int64_t)time(NULL);
	s->state = r == 0 ? ST_CLEAN : r == SETT_ECORRUPT ? ST_DAMAGED
		 : r == -ECANCELED ? ST_STOPPED : ST_FAILED;
	if (s->state == ST_FAILED)
		snprintf(s->error, sizeof s->error, "%s", sett_strerror(r));
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* ---- the control requests ------------------------------------------------ */

sfs_scrub *sfs_scrub_new(settfs *fs)
{
	sfs_scrub *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->fs = fs;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void sfs_scrub_free(sfs_scrub *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
	if (s->have_thread)
		pthread_join(s->thread, NULL);
	clear_faults(s);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int start(sfs_scrub *s, uint64_t rate)
{
	pthread_mutex_lock(&s->mu);
	if (s->state == ST_RUNNING) {
		pthread_mutex_unlock(&s->mu);
		return -EBUSY;
	}
	if (s->have_thread)
		pthread_join(s->thread, NULL); /* ended: its state says so */
	s->have_thread = 0;
	clear_faults(s);
	s->state = ST_RUNNING;
	s->started = (int64_t)time(NULL);
	s->ended = 0;
	s->rate = rate;
	s->error[0] = 0;
	__atomic_store_n(&s->done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->total, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->stop, 0, __ATOMIC_RELAXED);
	int r = -pthread_create(&s->thread, NULL, run, s);
	if (r)
		s->state = ST_NONE;
	else
		s->have_thread = 1;
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* the scrub.* records; REQUIRES: mu */
static void put_summary(sfs_scrub *s, ctl_buf *b)
{
	ctl_put_str(b, "scrub.state", state_names[s->state]);
	if (s->state == ST_NONE)
		return;
	ctl_put_u64(b, "scrub.started", (uint64_t)s->started);
	if (s->ended)
		ctl_put_u64(b, "scrub.ended", (uint64_t)s->ended);
	ctl_put_u64(b, "scrub.rate_bytes", s->rate);
	ctl_put_u64(b, "scrub.done_bytes", __atomic_load_n(&s->done, __ATOMIC_RELAXED));
	ctl_put_u64(b, "scrub.total_bytes", __atomic_load_n(&s->total, __ATOMIC_RELAXED));
	ctl_put_u64(b, "scrub.faults", s->nfaults);
	if (s->naming)
		ctl_put_u64(b, "scrub.naming", 1);
	if (s->error[0])
		ctl_put_str(b, "scrub.error", s->error);
}

void sfs_scrub_summary(sfs_scrub *s, ctl_buf *b)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	put_summary(s, b);
	/* the first few faults, each with the first file it hits */
	for (int i = 0; i < s->nkept && i < 10; i++) {
		char name[32], *line = NULL;
		const fault *f = &s->faults[i];
		snprintf(name, sizeof name, "scrub.fault.%d", i + 1);
		int has = f->npaths && f->paths[0];
		if (asprintf(&line, "%s%s%s%s", f->msg, has ? " (" : "", has ? f->paths[0] : "",
			     has ? ")" : "") < 0)
			line = NULL;
		ctl_put_str(b, name, line ? line : f->msg);
		free(line);
	}
	pthread_mutex_unlock(&s->mu);
}

static int fill_status(sfs_scrub *s, ctl_buf *b)
{
	ctl_put_i64(b, "status", 0);
	pthread_mutex_lock(&s->mu);
	put_summary(s, b);
	for (int i = 0; i < s->nkept; i++) {
		const fault *f = &s->faults[i];
		ctl_put_str(b, "fault", f->msg);
		for (int j = 0; j < f->npaths; j++)
			if (f->paths[j]) /* NULL: no memory when it was named */
				ctl_put_str(b, "fault.path", f->paths[j]);
		if (f->more)
			ctl_put_u64(b, "fault.more", 1);
	}
	pthread_mutex_unlock(&s->mu);
	return b->err;
}

int sfs_scrub_request(sfs_scrub *s, const ctl_header *h, const uint8_t *body, size_t n,
		      ctl_buf *reply)
{
	if (!s)
		return -ENOMEM;
	if (h->type == CTL_SCRUB_STATUS)
		return fill_status(s, reply);
	ctl_rec r;
	int k = ctl_find(body, n, "rate", &r);
	if (k < 0 || (k == 1 && r.kind != CTL_U64))
		return -EPROTO;
	int e = start(s, k == 1 ? r.u : SFS_SCRUB_RATE);
	if (e)
		return e;
	ctl_put_i64(reply, "status", 0);
	return reply->err;
}

/* ---- settfs scrub --------------------------------------------------------- */

static void put_time(FILE *out, const char *what, uint64_t t)
{
	char h[64];
	cli_time(h, sizeof h, t);
	fprintf(out, "  %-8s %s\n", what, h);
}

int sfs_scrub_print(const uint8_t *body, size_t n, const char *mountpoint, FILE *out, int *state)
{
	ctl_cursor c;
	ctl_rec r;
	int k;
	uint64_t done = 0, total = 0, faults = 0, started = 0, ended = 0, rate = 0;
	char st[32] = "none", h1[32], h2[32];
	*state = 4;
	ctl_cursor_init(&c, body, n);
	while ((k = ctl_next(&c, &r)) == 1) {
		if (r.kind == CTL_STR && !strcmp(r.name, "scrub.state"))
			snprintf(st, sizeof st, "%.*s", (int)r.slen, (const char *)r.s);
		else if (r.kind == CTL_U64 && !strcmp(r.name, "scrub.done_bytes"))
			done = r.u;
		else if (r.kind == CTL_U64 && !strcmp(r.name, "scrub.total_bytes"))
			total = r.u;
		else if (r.kind == CTL_U64 && !strcmp(r.name, "scrub.faults"))
			faults = r.u;
		else if (r.kind == CTL_U64 && !strcmp(r.name, "scrub.started"))
			started = r.u;
		else if (r.kind == CTL_U64 && !strcmp(r.name, "scrub.ended"))
			ended = r.u;
		else if (r.kind == CTL_U64 && !strcmp(r.name, "scrub.rate_bytes"))
			rate = r.u;
	}
	if (k < 0)
		return k;
	*state = !strcmp(st, "clean") ? 0 : !strcmp(st, "damaged") ? 1
	       : !strcmp(st, "running") ? 3 : !strcmp(st, "none") ? 4 : 2;
	fprintf(out, "scrub: %s\n", st);
	if (*state == 4)
		return 0;
	cli_human(h1, sizeof h1, done);
	cli_human(h2, sizeof h2, total);
	fprintf(out, "  checked  %s of %s (%.0f %%)\n", h1, h2,
		total ? 100.0 * (double)done / (double)total : 100.0);
	if (rate) {
		cli_human(h1, sizeof h1, rate);
		fprintf(out, "  rate     at most %s/s\n", h1);
	} else {
		fprintf(out, "  rate     no limit\n");
	}
	if (started)
		put_time(out, "started", started);
	if (ended)
		put_time(out, "ended", ended);
	fprintf(out, "  faults   %" PRIu64 "\n", faults);
	ctl_cursor_init(&c, body, n);
	while (ctl_next(&c, &r) == 1) {
		if (r.kind == CTL_STR && !strcmp(r.name, "scrub.error"))
			fprintf(out, "  error    %.*s\n", (int)r.slen, (const char *)r.s);
		else if (r.kind == CTL_STR && !strcmp(r.name, "fault"))
			fprintf(out, "  %.*s\n", (int)r.slen, (const char *)r.s);
		else if (r.kind == CTL_STR && !strcmp(r.name, "fault.path"))
			fprintf(out, "    %s%.*s\n", r.slen && r.s[0] == '/' ? mountpoint : "",
				(int)r.slen, (const char *)r.s);
		else if (r.kind == CTL_U64 && !strcmp(r.name, "fault.more") && r.u)
			fprintf(out, "    ... and more\n");
	}
	return 0;
}

static int call(const char *store, uint16_t type, uint64_t rate, int with_rate, uint8_t **body,
		size_t *n)
{
	ctl_buf q = { 0 };
	ctl_begin(&q, type);
	if (with_rate)
		ctl_put_u64(&q, "rate", rate);
	int r = ctl_end(&q);
	if (!r)
		r = ctl_call(store, &q, body, n);
	ctl_buf_free(&q);
	return r;
}

static const char *call_error(int r)
{
	return r == -ENOENT	? "its daemon does not answer (no control path)"
	       : r == -EACCES	? "refused: only root and the mount's owner may scrub"
	       : r == -EPERM	? "the control endpoint is not served by the store's daemon"
	       : r == -EBUSY	? "a scrub is running already (settfs scrub --status)"
	       : r == -EOPNOTSUPP ? "its daemon does not scrub (an older settfs)"
				  : strerror(-r);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: settfs scrub [-n|--no-wait] [-r|--rate MB/s] MOUNTPOINT\n"
		     "       settfs scrub --status MOUNTPOINT\n"
		     "Reads and verifies every checksum of the mounted store in the background\n"
		     "(at most --rate MB/s, default %llu; 0: no limit) and names the damaged\n"
		     "files.  Exit 0: clean; 1: damage found; 2: failed.\n",
		(unsigned long long)(SFS_SCRUB_RATE >> 20));
}

int sfs_scrub_command(int argc, char **argv)
{
	int wait = 1, status = 0;
	uint64_t rate = SFS_SCRUB_RATE;
	int i = 2;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-n") || !strcmp(a, "--no-wait")) {
			wait = 0;
		} else if (!strcmp(a, "--status") || !strcmp(a, "-s")) {
			status = 1;
		} else if ((!strcmp(a, "-r") || !strcmp(a, "--rate")) && i + 1 < argc) {
			char *end;
			double mb = strtod(argv[++i], &end);
			if (*end || end == argv[i] || mb < 0 || mb > 1e9) {
				fprintf(stderr, "settfs scrub: bad rate '%s' (MB/s)\n", argv[i]);
				return 2;
			}
			rate = (uint64_t)(mb * (1 << 20));
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "settfs scrub: unknown option '%s' (see --help)\n", a);
			return 2;
		}
	}
	if (i + 1 != argc) {
		usage(stderr);
		return 2;
	}
	const char *arg = argv[i];
	char store[4096], mnt[4096];
	if (ctl_store_of_mount(arg, store, sizeof store, mnt, sizeof mnt) != 0) {
		fprintf(stderr, "settfs scrub: %s: not a settfs mount\n", arg);
		return 2;
	}
	if (!strcmp(mnt, "/"))
		mnt[0] = 0;
	uint8_t *body = NULL;
	size_t n = 0;
	int r;
	if (!status) {
		r = call(store, CTL_SCRUB, rate, 1, &body, &n);
		free(body);
		body = NULL;
		if (r) {
			fprintf(stderr, "settfs scrub: %s: %s\n", arg, call_error(r));
			return 2;
		}
		if (!wait) {
			printf("settfs scrub: %s: started (settfs scrub --status %s)\n", arg, arg);
			return 0;
		}
	}
	progress p;
	progress_open(&p, "settfs scrub", arg, -1);
	int state;
	for (;;) {
		r = call(store, CTL_SCRUB_STATUS, 0, 0, &body, &n);
		if (r) {
			progress_clear(&p);
			fprintf(stderr, "settfs scrub: %s: %s\n", arg, call_error(r));
			return 2;
		}
		ctl_rec d, t, s;
		int running = ctl_find(body, n, "scrub.state", &s) == 1 && s.kind == CTL_STR &&
			      s.slen == 7 && !memcmp(s.s, "running", 7);
		if (!running || status)
			break;
		if (ctl_find(body, n, "scrub.done_bytes", &d) == 1 &&
		    ctl_find(body, n, "scrub.total_bytes", &t) == 1)
			progress_set(&p, 1, "bytes", d.u, t.u);
		free(body);
		body = NULL;
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	progress_clear(&p);
	r = sfs_scrub_print(body, n, mnt, stdout, &state);
	free(body);
	if (r || fflush(stdout) != 0) {
		fprintf(stderr, "settfs scrub: %s: %s\n", arg, r ? "malformed reply" : strerror(errno));
		return 2;
	}
	return state == 0 || state == 3 || state == 4 ? 0 : state == 1 ? 1 : 2;
}
