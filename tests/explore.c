/*
 * explore.c - crash states from a recorded I/O log (see explore.h).
 *
 * The model, after ALICE (OSDI '14) and CrashMonkey (OSDI '18): a crash
 * at point c of the log means the operations before c were issued and
 * the ones from c on were not.  Of the issued operations, the disk holds:
 *
 *  - data (writes and truncates of one file): everything before the last
 *    fdatasync of that file; of what came after, nothing, everything, or a
 *    prefix of its 4 KiB pieces (in the order they were written); with
 *    reorder on (SETT_EXPLORE_REORDER=1), also any subset of them, as a
 *    writeback in any order leaves (zeros before a piece past the end);
 *  - names (create, rename, unlink, mkdir): every operation followed by an
 *    fsync of its directory before c; each other one independently kept or
 *    lost, except that operations on the same name stay in order (a kept
 *    rename of a file keeps its create).  Names and data are independent,
 *    which includes what ext4's journal allows: an unlink or a rename
 *    durable while the data written before it is not.
 *
 * A file fsync does not make its name durable, only a directory fsync
 * does (POSIX).  A state is materialised by replaying the chosen
 * operations onto the copy of the store taken when recording started.
 * File identity follows opens and renames, so writes to a file that was
 * renamed or unlinked meanwhile land where they belong.
 */
#include "explore.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "testutil.h"

#define XP_BLOCK 4096

typedef struct xfile {
	uint8_t *init; /* content when recording started (NULL: created later) */
	size_t init_len;
	size_t *data, ndata, capdata;    /* log indices of its writes and truncates */
	size_t *syncs, nsyncs, capsyncs; /* log indices of its fdatasyncs */
} xfile;

typedef struct xdirop {
	size_t rec;       /* index in the log */
	int kind;         /* SIO_REC_OPEN (a create), _RENAME, _UNLINK, _MKDIR */
	char *a, *b;      /* paths relative to the store; b: a rename's target */
	long fid;         /* the file concerned (-1: a directory) */
	size_t durable_at; /* index of the directory fsync that makes it durable (n: none) */
	int synced_a, synced_b; /* the directories of a and b were fsynced since */
} xdirop;

typedef struct xname {
	char *path; /* relative to the store */
	long fid;   /* -1: a directory */
} xname;

typedef struct xns {
	xname *v;
	size_t n, cap;
} xns;

struct xp_log {
	char *dir;
	size_t dirlen;
	sio_rec *recs;
	size_t n;
	xfile *files;
	size_t nfiles;
	xns snap;
	xdirop *dops;
	size_t ndops;
	long *rec_fid;         /* per record: the file of a data record or sync */
	uint64_t *mark_before; /* per crash point 0..n: the last mark before it */
	size_t *marks, nmarks, capmarks; /* log indices of the marks */
	char err[512];
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "explore: out of memory\n");
		abort();
	}
	return q;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

#define PUSH(arr, n, cap, val)                                              \
	do {                                                                \
		if ((n) == (cap)) {                                         \
			(cap) = (cap) ? (cap) * 2 : 8;                      \
			(arr) = xrealloc((arr), (cap) * sizeof *(arr));     \
		}                                                           \
		(arr)[(n)++] = (val);                                       \
	} while (0)

/* ---- namespaces ---- */

static long ns_find(const xns *ns, const char *path)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i].path, path) == 0)
			return (long)i;
	return -1;
}

static long ns_get(const xns *ns, const char *path)
{
	long i = ns_find(ns, path);
	return i < 0 ? -2 : ns->v[i].fid;
}

static void ns_set(xns *ns, const char *path, long fid)
{
	long i = ns_find(ns, path);
	if (i >= 0) {
		ns->v[i].fid = fid;
		return;
	}
	xname x = { xstrdup(path), fid };
	PUSH(ns->v, ns->n, ns->cap, x);
}

static void ns_del(xns *ns, const char *path)
{
	long i = ns_find(ns, path);
	if (i < 0)
		return;
	free(ns->v[i].path);
	ns->v[i] = ns->v[--ns->n];
}

static void ns_copy(xns *to, const xns *from)
{
	memset(to, 0, sizeof *to);
	for (size_t i = 0; i < from->n; i++)
		ns_set(to, from->v[i].path, from->v[i].fid);
}

static void ns_free(xns *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].path);
	free(ns->v);
	memset(ns, 0, sizeof *ns);
}

/* ---- recording ---- */

static xp_log *snap_log; /* nftw has no argument pointer */

static long new_file(xp_log *l)
{
	l->files = xrealloc(l->files, (l->nfiles + 1) * sizeof *l->files);
	memset(&l->files[l->nfiles], 0, sizeof *l->files);
	return (long)l->nfiles++;
}

static int snap_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (strlen(p) <= snap_log->dirlen)
		return 0;
	const char *rel = p + snap_log->dirlen + 1;
	if (type == FTW_D) {
		ns_set(&snap_log->snap, rel, -1);
		return 0;
	}
	if (type != FTW_F || !S_ISREG(sb->st_mode))
		return 0;
	long fid = new_file(snap_log);
	xfile *f = &snap_log->files[fid];
	f->init_len = (size_t)sb->st_size;
	f->init = xrealloc(NULL, f->init_len);
	int fd = open(p, O_RDONLY);
	if (fd < 0 || pread(fd, f->init, f->init_len, 0) != (ssize_t)f->init_len) {
		fprintf(stderr, "explore: cannot read %s\n", p);
		abort();
	}
	close(fd);
	ns_set(&snap_log->snap, rel, fid);
	return 0;
}

xp_log *xp_record_start(const char *dir)
{
	xp_log *l = xrealloc(NULL, sizeof *l);
	memset(l, 0, sizeof *l);
	l->dir = xstrdup(dir);
	l->dirlen = strlen(dir);
	while (l->dirlen > 1 && l->dir[l->dirlen - 1] == '/')
		l->dir[--l->dirlen] = 0;
	snap_log = l;
	nftw(l->dir, snap_one, 16, FTW_PHYS);
	snap_log = NULL;
	sio_record_start();
	return l;
}

/* The path relative to the store, or NULL for a path outside it. */
static const char *rel_of(const xp_log *l, const char *path)
{
	if (strncmp(path, l->dir, l->dirlen) != 0)
		return NULL;
	if (path[l->dirlen] == 0)
		return "";
	return path[l->dirlen] == '/' ? path + l->dirlen + 1 : NULL;
}

/* The directory part of a relative path ("" for the store itself). */
static void dir_of(const char *rel, char *out, size_t n)
{
	const char *s = strrchr(rel, '/');
	size_t k = s ? (size_t)(s - rel) : 0;
	if (k >= n)
		k = n - 1;
	memcpy(out, rel, k);
	out[k] = 0;
}

static void log_error(xp_log *l, size_t i, const char *what)
{
	if (!l->err[0])
		snprintf(l->err, sizeof l->err, "record %zu: %s", i, what);
}

static void add_dirop(xp_log *l, size_t i, int kind, const char *a, const char *b, long fid)
{
	l->dops = xrealloc(l->dops, (l->ndops + 1) * sizeof *l->dops);
	xdirop *d = &l->dops[l->ndops++];
	d->rec = i;
	d->kind = kind;
	d->a = xstrdup(a);
	d->b = b ? xstrdup(b) : NULL;
	d->fid = fid;
	d->durable_at = l->n;
	d->synced_a = d->synced_b = 0;
}

/* Resolves handles and names to files, and finds each name change's durability point. */
static void analyse(xp_log *l)
{
	xns cur;
	ns_copy(&cur, &l->snap);
	long *hfid = NULL;
	size_t nh = 0;
	l->rec_fid = xrealloc(NULL, (l->n + 1) * sizeof *l->rec_fid);
	l->mark_before = xrealloc(NULL, (l->n + 1) * sizeof *l->mark_before);
	uint64_t mark = 0;
	for (size_t i = 0; i < l->n; i++) {
		sio_rec *r = &l->recs[i];
		l->rec_fid[i] = -1;
		l->mark_before[i] = mark;
		const char *a = r->path ? rel_of(l, r->path) : "";
		const char *b = r->path2 ? rel_of(l, r->path2) : "";
		if (!a || !b) {
			log_error(l, i, "a path outside the store");
			continue;
		}
		long fid;
		switch (r->kind) {
		case SIO_REC_OPEN:
			if (r->created) {
				fid = new_file(l);
				add_dirop(l, i, SIO_REC_OPEN, a, NULL, fid);
				ns_set(&cur, a, fid);
			} else if ((fid = ns_get(&cur, a)) < 0) {
				log_error(l, i, "open of a file the log does not know");
				continue;
			}
			if (r->handle >= nh) {
				hfid = xrealloc(hfid, (r->handle + 1) * sizeof *hfid);
				while (nh <= r->handle)
					hfid[nh++] = -1;
			}
			hfid[r->handle] = fid;
			l->rec_fid[i] = fid;
			if (r->trunc) {
				xfile *f = &l->files[fid];
				PUSH(f->data, f->ndata, f->capdata, i);
			}
			break;
		case SIO_REC_WRITE:
		case SIO_REC_TRUNCATE:
		case SIO_REC_SYNC:
			if (r->handle == 0 || r->handle >= nh || hfid[r->handle] < 0) {
				log_error(l, i, "I/O on a file opened before recording started");
				continue;
			}
			fid = hfid[r->handle];
			l->rec_fid[i] = fid;
			xfile *f = &l->files[fid];
			if (r->kind == SIO_REC_SYNC)
				PUSH(f->syncs, f->nsyncs, f->capsyncs, i);
			else
				PUSH(f->data, f->ndata, f->capdata, i);
			break;
		case SIO_REC_RENAME:
			if ((fid = ns_get(&cur, a)) < 0) {
				log_error(l, i, "rename of a file the log does not know");
				continue;
			}
			add_dirop(l, i, SIO_REC_RENAME, a, b, fid);
			ns_del(&cur, a);
			ns_set(&cur, b, fid);
			break;
		case SIO_REC_UNLINK:
			fid = ns_get(&cur, a);
			add_dirop(l, i, SIO_REC_UNLINK, a, NULL, fid);
			ns_del(&cur, a);
			break;
		case SIO_REC_MKDIR:
			add_dirop(l, i, SIO_REC_MKDIR, a, NULL, -1);
			ns_set(&cur, a, -1);
			break;
		case SIO_REC_SYNC_DIR:
			/* makes every earlier name change in this directory durable */
			for (size_t k = 0; k < l->ndops; k++) {
				xdirop *d = &l->dops[k];
				char da[4096], db[4096];
				dir_of(d->a, da, sizeof da);
				dir_of(d->b ? d->b : d->a, db, sizeof db);
				if (d->durable_at != l->n)
					continue;
				/* a rename between directories needs both synced */
				d->synced_a |= strcmp(da, a) == 0;
				d->synced_b |= strcmp(db, a) == 0;
				if (d->synced_a && d->synced_b)
					d->durable_at = i;
			}
			break;
		case SIO_REC_MARK:
			mark = r->off;
			PUSH(l->marks, l->nmarks, l->capmarks, i);
			break;
		}
	}
	l->mark_before[l->n] = mark;
	free(hfid);
	ns_free(&cur);
}

void xp_record_stop(xp_log *l)
{
	l->n = sio_record_stop(&l->recs);
	if (!l->recs)
		snprintf(l->err, sizeof l->err, "the recorder ran out of memory");
	else
		analyse(l);
}

size_t xp_nrecs(const xp_log *l)
{
	return l->n;
}

void xp_free(xp_log *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nfiles; i++) {
		free(l->files[i].init);
		free(l->files[i].data);
		free(l->files[i].syncs);
	}
	for (size_t i = 0; i < l->ndops; i++) {
		free(l->dops[i].a);
		free(l->dops[i].b);
	}
	free(l->files);
	free(l->dops);
	ns_free(&l->snap);
	sio_record_free(l->recs, l->n);
	free(l->rec_fid);
	free(l->mark_before);
	free(l->marks);
	free(l->dir);
	free(l);
}

/* ---- one crash state ---- */

typedef struct xbuf {
	uint8_t *p;
	size_t n, cap;
} xbuf;

static void buf_resize(xbuf *b, size_t n)
{
	if (n > b->cap) {
		b->cap = n > 2 * b->cap ? n : 2 * b->cap;
		b->p = xrealloc(b->p, b->cap);
	}
	if (n > b->n)
		memset(b->p + b->n, 0, n - b->n);
	b->n = n;
}

static void buf_write(xbuf *b, uint64_t off, const uint8_t *p, size_t n)
{
	if (off + n > b->n)
		buf_resize(b, off + n);
	memcpy(b->p + off, p, n);
}

/* Applies data record r of a file whole. */
static void apply_rec(xbuf *b, const sio_rec *r)
{
	if (r->kind == SIO_REC_WRITE)
		buf_write(b, r->off, r->data, r->len);
	else if (r->kind == SIO_REC_TRUNCATE)
		buf_resize(b, r->off);
	else if (r->kind == SIO_REC_OPEN) /* O_TRUNC */
		buf_resize(b, 0);
}

/* The number of 4 KiB pieces record r is applied in (a truncate is one). */
static size_t pieces_of(const sio_rec *r)
{
	if (r->kind != SIO_REC_WRITE || r->len == 0)
		return 1;
	uint64_t first = r->off / XP_BLOCK, last = (r->off + r->len - 1) / XP_BLOCK;
	return (size_t)(last - first + 1);
}

static void apply_piece(xbuf *b, const sio_rec *r, size_t k)
{
	if (r->kind != SIO_REC_WRITE || r->len == 0) {
		apply_rec(b, r);
		return;
	}
	uint64_t start = k == 0 ? r->off : (r->off / XP_BLOCK + k) * XP_BLOCK;
	uint64_t end = (r->off / XP_BLOCK + k + 1) * XP_BLOCK;
	if (end > r->off + r->len)
		end = r->off + r->len;
	buf_write(b, start, r->data + (start - r->off), (size_t)(end - start));
}

typedef struct xdesc {
	char s[1536];
	size_t n;
} xdesc;

static void desc_add(xdesc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void desc_add(xdesc *d, const char *fmt, ...)
{
	if (d->n >= sizeof d->s - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(d->s + d->n, sizeof d->s - d->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		d->n += (size_t)k < sizeof d->s - d->n ? (size_t)k : sizeof d->s - 1 - d->n;
}

enum { KEEP_NONE, KEEP_ALL, KEEP_PREFIX, KEEP_SUBSET };
static const char *const keep_name[] = { "none", "all", "prefix", "subset" };

/* Builds the content of file fid at crash point c into b; describes unsynced choices. */
static void file_state(const xp_log *l, long fid, size_t c, int mode, uint64_t *rng,
		       xbuf *b, xdesc *d, const char *name)
{
	const xfile *f = &l->files[fid];
	b->n = 0;
	if (f->init)
		buf_write(b, 0, f->init, f->init_len);
	size_t synced = 0; /* data records before this index are durable */
	for (size_t i = 0; i < f->nsyncs && f->syncs[i] < c; i++)
		synced = f->syncs[i];
	size_t total = 0, i = 0;
	for (; i < f->ndata && f->data[i] < synced; i++)
		apply_rec(b, &l->recs[f->data[i]]);
	size_t first = i;
	for (size_t j = first; j < f->ndata && f->data[j] < c; j++)
		total += pieces_of(&l->recs[f->data[j]]);
	if (total == 0)
		return;
	size_t keep = mode == KEEP_ALL ? total : 0, kept = 0;
	if (mode == KEEP_PREFIX)
		keep = (size_t)(tu_rand(rng) % (total + 1));
	size_t piece = 0;
	for (size_t j = first; j < f->ndata && f->data[j] < c; j++) {
		const sio_rec *r = &l->recs[f->data[j]];
		for (size_t k = 0; k < pieces_of(r); k++, piece++) {
			int take = mode == KEEP_SUBSET ? (int)(tu_rand(rng) & 1) : piece < keep;
			if (take) {
				apply_piece(b, r, k);
				kept++;
			}
		}
	}
	desc_add(d, " %s:%s %zu/%zu", name, keep_name[mode], kept, total);
}

static const char *op_name(int kind)
{
	switch (kind) {
	case SIO_REC_OPEN:
		return "create";
	case SIO_REC_RENAME:
		return "rename";
	case SIO_REC_UNLINK:
		return "unlink";
	default:
		return "mkdir";
	}
}

static int shares_name(const xdirop *x, const xdirop *y)
{
	return strcmp(x->a, y->a) == 0 || (y->b && strcmp(x->a, y->b) == 0) ||
	       (x->b && (strcmp(x->b, y->a) == 0 || (y->b && strcmp(x->b, y->b) == 0)));
}

static void write_file(const char *path, const xbuf *b)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || (b->n && write(fd, b->p, b->n) != (ssize_t)b->n)) {
		fprintf(stderr, "explore: cannot write %s: %s\n", path, strerror(errno));
		abort();
	}
	close(fd);
}

static void mkdirs(char *path)
{
	for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = 0;
		(void)mkdir(path, 0755);
		*s = '/';
	}
	(void)mkdir(path, 0755);
}

/* Draws crash state `seed` and writes it into out; returns the crash point. */
static size_t materialise(const xp_log *l, uint64_t seed, const char *out, xdesc *d)
{
	uint64_t rng = seed | 1;
	tu_rand(&rng);
	/*
	 * The crash point: uniform over the records; or inside a uniformly
	 * chosen stretch between two marks (so that a short operation of the
	 * workload is hit as often as a long one); or just after a sync or a
	 * name change.
	 */
	size_t c = (size_t)(tu_rand(&rng) % (l->n + 1));
	int how = (int)(tu_rand(&rng) % 3);
	if (how == 1 && l->nmarks) {
		size_t k = (size_t)(tu_rand(&rng) % l->nmarks);
		size_t lo = l->marks[k], hi = k + 1 < l->nmarks ? l->marks[k + 1] : l->n;
		c = lo + 1 + (size_t)(tu_rand(&rng) % (hi - lo));
	} else if (how == 2) {
		for (size_t k = c; k < l->n; k++) {
			int kind = l->recs[k].kind;
			if (kind == SIO_REC_SYNC || kind == SIO_REC_SYNC_DIR || kind == SIO_REC_RENAME ||
			    kind == SIO_REC_UNLINK) {
				c = k + 1;
				break;
			}
		}
	}
	/* how unsynced name changes and data fare */
	static const double keep_p[] = { 0.0, 1.0, 0.5, 0.2, 0.8 };
	double pd = keep_p[tu_rand(&rng) % 5];
	int nmodes = getenv("SETT_EXPLORE_REORDER") ? 4 : 3;
	/* 0..nmodes-1: every file alike, else each file its own */
	int data_mode = (int)(tu_rand(&rng) % (uint64_t)(nmodes + 2));
	desc_add(d, "crash at record %zu of %zu (after mark %llu); names kept p=%.1f; data %s;",
		 c, l->n, (unsigned long long)l->mark_before[c], pd,
		 data_mode < nmodes ? keep_name[data_mode] : "per file");

	char *chosen = calloc(l->ndops + 1, 1);
	for (size_t k = 0; k < l->ndops; k++) {
		const xdirop *x = &l->dops[k];
		if (x->rec >= c)
			break;
		double u = (double)(tu_rand(&rng) >> 11) / 9007199254740992.0;
		chosen[k] = x->durable_at < c || u < pd;
	}
	/* operations on one name persist in order */
	for (size_t k = l->ndops; k-- > 0;) {
		if (!chosen[k])
			continue;
		for (size_t j = 0; j < k; j++)
			if (!chosen[j] && shares_name(&l->dops[j], &l->dops[k]))
				chosen[j] = 1;
	}
	xns ns;
	ns_copy(&ns, &l->snap);
	for (size_t k = 0; k < l->ndops && l->dops[k].rec < c; k++) {
		const xdirop *x = &l->dops[k];
		if (x->durable_at >= c)
			desc_add(d, " %c%s %s%s%s", chosen[k] ? '+' : '-', op_name(x->kind), x->a,
				 x->b ? "->" : "", x->b ? x->b : "");
		if (!chosen[k])
			continue;
		switch (x->kind) {
		case SIO_REC_OPEN:
		case SIO_REC_MKDIR:
			ns_set(&ns, x->a, x->fid);
			break;
		case SIO_REC_RENAME:
			ns_set(&ns, x->b, x->fid);
			if (ns_get(&ns, x->a) == x->fid)
				ns_del(&ns, x->a);
			break;
		case SIO_REC_UNLINK:
			if (ns_get(&ns, x->a) == x->fid)
				ns_del(&ns, x->a);
			break;
		}
	}
	free(chosen);
	desc_add(d, ";");

	tu_rmrf(out);
	char path[4096];
	snprintf(path, sizeof path, "%s", out);
	mkdirs(path);
	xbuf b = { 0 };
	for (size_t i = 0; i < ns.n; i++) {
		snprintf(path, sizeof path, "%s/%s", out, ns.v[i].path);
		if (ns.v[i].fid < 0) {
			mkdirs(path);
			continue;
		}
		char *s = strrchr(path, '/');
		*s = 0;
		mkdirs(path);
		*s = '/';
		int mode = data_mode < nmodes ? data_mode : (int)(tu_rand(&rng) % (uint64_t)nmodes);
		file_state(l, ns.v[i].fid, c, mode, &rng, &b, d, ns.v[i].path);
		write_file(path, &b);
	}
	free(b.p);
	ns_free(&ns);
	return c;
}

static uint64_t state_seed(uint64_t seed, long i)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void dump_log(const xp_log *l)
{
	static const char *const kinds[] = { "open", "write", "sync", "truncate", "rename",
					     "unlink", "mkdir", "syncdir", "mark" };
	for (size_t i = 0; i < l->n; i++) {
		const sio_rec *r = &l->recs[i];
		fprintf(stderr, "  %5zu %-8s", i, kinds[r->kind]);
		if (r->path)
			fprintf(stderr, " %s", rel_of(l, r->path));
		if (r->path2)
			fprintf(stderr, " -> %s", rel_of(l, r->path2));
		if (r->kind == SIO_REC_OPEN)
			fprintf(stderr, " h%llu%s%s", (unsigned long long)r->handle,
				r->created ? " created" : "", r->trunc ? " trunc" : "");
		else if (r->kind != SIO_REC_MARK && r->handle)
			fprintf(stderr, " h%llu (file %ld)", (unsigned long long)r->handle, l->rec_fid[i]);
		if (r->kind == SIO_REC_WRITE)
			fprintf(stderr, " off %llu len %llu", (unsigned long long)r->off,
				(unsigned long long)r->len);
		if (r->kind == SIO_REC_TRUNCATE || r->kind == SIO_REC_MARK)
			fprintf(stderr, " %llu", (unsigned long long)r->off);
		fputc('\n', stderr);
	}
}

void xp_explore(xp_log *l, const char *name, long nstates, uint64_t seed, long only,
		xp_check_fn check, void *arg, xp_result *res)
{
	memset(res, 0, sizeof *res);
	if (l->err[0]) {
		fprintf(stderr, "explore %s: the log is unusable: %s\n", name, l->err);
		res->failures = 1;
		return;
	}
	if (getenv("SETT_EXPLORE_DUMP")) {
		fprintf(stderr, "explore %s: %zu records\n", name, l->n);
		dump_log(l);
	}
	char *out = tu_tmpdir("xstate");
	char why[1024], kept[4200] = "";
	for (long i = only >= 0 ? only : 0; i < (only >= 0 ? only + 1 : nstates); i++) {
		xdesc d = { .n = 0 };
		d.s[0] = 0;
		why[0] = 0;
		size_t c = materialise(l, state_seed(seed, i), out, &d);
		res->states++;
		if (check(arg, out, l->mark_before[c], why, sizeof why) == 0)
			continue;
		if (res->failures == 0 && (only >= 0 || getenv("SETT_EXPLORE_KEEP"))) {
			/* the same state again, untouched by the checker's recovery */
			xdesc d2 = { .n = 0 };
			snprintf(kept, sizeof kept, "%s.crash", out);
			materialise(l, state_seed(seed, i), kept, &d2);
		}
		if (res->failures++ < 3 || only >= 0)
			fprintf(stderr,
				"explore %s: FAILED state %ld (SETT_EXPLORE_SEED=%#llx SETT_EXPLORE_STATE=%ld):\n"
				"  %s\n  state: %s\n",
				name, i, (unsigned long long)seed, i, why, d.s);
	}
	if (kept[0])
		fprintf(stderr, "explore %s: the first failed state, as the crash left it: %s\n", name,
			kept);
	if (only >= 0)
		fprintf(stderr, "explore %s: state %ld after the check: %s\n", name, only, out);
	else
		tu_rmrf(out);
	free(out);
}
