/*
 * manifest.c - the MANIFEST: the durable list of tables and their levels
 * (format: doc/FORMAT.md, "MANIFEST").
 *
 * Every flush and compaction changes the set of live tables; the change is
 * one checksummed, fsynced record appended here, so after a crash the store
 * reopens with exactly the tables of some acknowledged change set.  The file
 * is append-only for cheap, atomic updates; once it is mostly deletions of
 * long-gone tables it is rewritten as a single change set holding the live
 * state (written to MANIFEST-REWRITE, fsynced, renamed over MANIFEST).
 *
 * The live state is kept as an array sorted by table id: lookups for
 * validating a change are binary searches, and manifest_open hands the array
 * to the caller in id order.
 */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "fileio.h"
#include "sett.h"
#include "wal.h"

#define MANIFEST_NAME "MANIFEST"
#define MANIFEST_REWRITE_NAME "MANIFEST-REWRITE"
#define MANIFEST_MAGIC "SETTMANI"
#define MANIFEST_VERSION 1
#define MANIFEST_HEADER 16
#define MANIFEST_REC_HEADER 12 /* u32 len + u64 checksum */
#define MANIFEST_CHANGE_LEN 11 /* u8 op + u64 id + u8 level + u8 compression */
#define MANIFEST_MAX_LEVEL 7
/* A change set never holds more than this (bounds a corrupt length field). */
#define MANIFEST_MAX_CHANGES (1u << 24)

/* Rewrite once deletions pass both of these. */
#define REWRITE_MIN_DELETIONS 1000
#define REWRITE_RATIO 10

typedef struct table_set {
	manifest_table *t;
	size_t n, cap;
	uint64_t next_id; /* every table file ever created has an id below this */
} table_set;

struct manifest {
	pthread_mutex_t mu;
	char *dir;
	char *path;
	char *rewrite_path;
	sfile *f;        /* NULL when read-only */
	uint64_t size;   /* append offset */
	uint64_t deletions; /* delete records since the file was last written whole */
	int err;         /* sticky: the file's state on disk is uncertain */
	uint64_t file_size; /* size found at open; > size while a torn tail is uncut */
	table_set live;
	/* ids the records read at open deleted, sorted (manifest_deleted_at_open) */
	uint64_t *deleted;
	size_t ndeleted, capdeleted;
};

/* ---- the in-memory state ---- */

/* Index of id in s, or of the slot it would be inserted at (with *found 0). */
static size_t ts_find(const table_set *s, uint64_t id, int *found)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->t[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n && s->t[lo].id == id;
	return lo;
}

static int ts_copy(table_set *dst, const table_set *src)
{
	dst->next_id = src->next_id;
	dst->n = src->n;
	dst->cap = src->n + 16;
	dst->t = malloc(dst->cap * sizeof *dst->t);
	if (!dst->t)
		return -ENOMEM;
	if (src->n)
		memcpy(dst->t, src->t, src->n * sizeof *src->t);
	return 0;
}

/* Applies one change; 0, SETT_ECORRUPT for an invalid change, or -ENOMEM. */
static int ts_apply(table_set *s, const manifest_change *c)
{
	if (c->level >= MANIFEST_MAX_LEVEL)
		return SETT_ECORRUPT;
	int found;
	size_t i = ts_find(s, c->id, &found);
	if (c->op == MANIFEST_CREATE) {
		if (found)
			return SETT_ECORRUPT;
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 64;
			manifest_table *t = realloc(s->t, cap * sizeof *t);
			if (!t)
				return -ENOMEM;
			s->t = t;
			s->cap = cap;
		}
		memmove(&s->t[i + 1], &s->t[i], (s->n - i) * sizeof *s->t);
		s->t[i].id = c->id;
		s->t[i].level = c->level;
		s->t[i].compression = c->compression;
		s->n++;
		return 0;
	}
	if (c->op == MANIFEST_DELETE) {
		if (!found)
			return SETT_ECORRUPT;
		memmove(&s->t[i], &s->t[i + 1], (s->n - i - 1) * sizeof *s->t);
		s->n--;
		return 0;
	}
	if (c->op == MANIFEST_NEXT_ID) {
		/* The allocation limit only grows. */
		if (c->id < s->next_id)
			return SETT_ECORRUPT;
		s->next_id = c->id;
		return 0;
	}
	return SETT_ECORRUPT;
}

/* ---- encoding ---- */

static void header_encode(uint8_t *h)
{
	memcpy(h, MANIFEST_MAGIC, 8);
	put_le32(h + 8, MANIFEST_VERSION);
	put_le32(h + 12, (uint32_t)sett_hash(h, 12));
}

/* Appends one record holding the n changes to b. */
static int record_append(buf *b, const manifest_change *c, size_t n)
{
	size_t plen = 4 + n * MANIFEST_CHANGE_LEN;
	int r = buf_reserve(b, MANIFEST_REC_HEADER + plen);
	if (r)
		return r;
	uint8_t *rec = b->p + b->n;
	uint8_t *p = rec + MANIFEST_REC_HEADER;
	put_le32(p, (uint32_t)n);
	p += 4;
	for (size_t i = 0; i < n; i++) {
		p[0] = c[i].op;
		put_le64(p + 1, c[i].id);
		p[9] = c[i].level;
		p[10] = c[i].compression;
		p += MANIFEST_CHANGE_LEN;
	}
	put_le32(rec, (uint32_t)plen);
	put_le64(rec + 4, sett_hash(rec + MANIFEST_REC_HEADER, plen));
	b->n += MANIFEST_REC_HEADER + plen;
	return 0;
}

static void change_decode(const uint8_t *p, manifest_change *c)
{
	c->op = p[0];
	c->id = get_le64(p + 1);
	c->level = p[9];
	c->compression = p[10];
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/*
 * Writes a complete MANIFEST holding `s` (header plus, if s has tables or
 * an allocation limit, one record) to MANIFEST-REWRITE, fsyncs it, renames it over MANIFEST and
 * fsyncs the directory.  Returns 0, or <0 with *renamed saying whether
 * MANIFEST was already replaced.
 */
static int write_whole(manifest *m, const table_set *s, int *renamed)
{
	*renamed = 0;
	buf b = { 0 };
	int r = buf_reserve(&b, MANIFEST_HEADER);
	if (r)
		return r;
	header_encode(b.p);
	b.n = MANIFEST_HEADER;
	size_t nc = s->n + (s->next_id != 0);
	if (nc) {
		manifest_change *c = malloc(nc * sizeof *c);
		if (!c) {
			buf_free(&b);
			return -ENOMEM;
		}
		for (size_t i = 0; i < s->n; i++) {
			c[i].op = MANIFEST_CREATE;
			c[i].id = s->t[i].id;
			c[i].level = s->t[i].level;
			c[i].compression = s->t[i].compression;
		}
		if (s->next_id)
			c[s->n] = (manifest_change){ .op = MANIFEST_NEXT_ID, .id = s->next_id };
		r = record_append(&b, c, nc);
		free(c);
		if (r) {
			buf_free(&b);
			return r;
		}
	}

	sfile *f;
	r = sfile_open(m->rewrite_path, O_RDWR | O_CREAT | O_TRUNC, &f);
	if (r) {
		buf_free(&b);
		return r;
	}
	r = sfile_pwrite(f, b.p, b.n, 0);
	if (!r)
		r = sfile_sync(f);
	int rc = sfile_close(f);
	if (!r)
		r = rc;
	uint64_t size = b.n;
	buf_free(&b);
	if (!r)
		r = sio_rename(m->rewrite_path, m->path);
	if (r) {
		(void)sio_unlink(m->rewrite_path);
		return r;
	}
	*renamed = 1;
	m->file_size = size; /* a torn tail of the old file went with it */
	r = sio_sync_dir(m->dir);
	if (r)
		return r;

	sfile *nf;
	r = sfile_open(m->path, O_RDWR, &nf);
	if (r)
		return r;
	sfile_close(m->f);
	m->f = nf;
	m->size = size;
	m->deletions = 0;
	return 0;
}

/* ---- replay ---- */

static int set_why(char *why, size_t whylen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int set_why(char *why, size_t whylen, int err, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/*
 * Replays the records in data[0, size) into m->live.  Sets *valid_end to
 * where the valid records end (size unless the tail is torn).  A record
 * that fails is a torn tail only by the rule shared with the WAL
 * (log_torn): it ends past what was written.
 */
static int note_deleted(manifest *m, uint64_t id)
{
	if (m->ndeleted == m->capdeleted) {
		size_t cap = m->capdeleted ? m->capdeleted * 2 : 64;
		uint64_t *d = realloc(m->deleted, cap * sizeof *d);
		if (!d)
			return -ENOMEM;
		m->deleted = d;
		m->capdeleted = cap;
	}
	m->deleted[m->ndeleted++] = id;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int replay(manifest *m, const uint8_t *data, uint64_t size, uint64_t *valid_end,
		  char *why, size_t whylen)
{
	uint64_t off = MANIFEST_HEADER;
	const char *what = NULL;
	while (off < size) {
		uint64_t left = size - off;
		const uint8_t *rec = data + off;
		if (left < MANIFEST_REC_HEADER) {
			if (log_torn(data, (size_t)size, (size_t)off, off + MANIFEST_REC_HEADER))
				break;
			what = " (short header)";
			goto corrupt;
		}
		uint32_t plen = get_le32(rec);
		if (plen < 4 || (plen - 4) % MANIFEST_CHANGE_LEN ||
		    (plen - 4) / MANIFEST_CHANGE_LEN > MANIFEST_MAX_CHANGES) {
			/* The length field itself may lie in unwritten bytes. */
			if (log_torn(data, (size_t)size, (size_t)off, off + 4))
				break;
			what = " (bad length)";
			goto corrupt;
		}
		/*
		 * A torn append still has its first bytes, so a count that
		 * disagrees with the length is damage, not a tear (this keeps
		 * a flipped length bit from passing as a torn tail).
		 */
		if (left >= MANIFEST_REC_HEADER + 4 &&
		    get_le32(rec + MANIFEST_REC_HEADER) != (plen - 4) / MANIFEST_CHANGE_LEN) {
			if (log_torn(data, (size_t)size, (size_t)off, off + MANIFEST_REC_HEADER + 4))
				break;
			what = " (bad count)";
			goto corrupt;
		}
		uint64_t end = off + MANIFEST_REC_HEADER + (uint64_t)plen;
		if (end > size)
			break; /* short: torn */
		const uint8_t *payload = rec + MANIFEST_REC_HEADER;
		if (sett_hash(payload, plen) != get_le64(rec + 4)) {
			if (log_torn(data, (size_t)size, (size_t)off, end))
				break;
			what = "";
			goto corrupt;
		}
		uint32_t count = get_le32(payload);
		for (uint32_t i = 0; i < count; i++) {
			manifest_change c;
			change_decode(payload + 4 + (size_t)i * MANIFEST_CHANGE_LEN, &c);
			int r = ts_apply(&m->live, &c);
			if (r == SETT_ECORRUPT)
				return set_why(why, whylen, r,
					       "%s: invalid change in record at offset %llu", m->path,
					       (unsigned long long)off);
			if (r)
				return r;
			if (c.op == MANIFEST_DELETE) {
				m->deletions++;
				if ((r = note_deleted(m, c.id)))
					return r;
			}
		}
		off = end;
	}
	*valid_end = off < size ? off : size;
	if (m->ndeleted)
		qsort(m->deleted, m->ndeleted, sizeof *m->deleted, cmp_id);
	return 0;
corrupt:
	return set_why(why, whylen, SETT_ECORRUPT, "%s: corrupt record at offset %llu%s", m->path,
		       (unsigned long long)off, what);
}

static int check_header(const manifest *m, const uint8_t *h, uint64_t size, char *why,
			size_t whylen)
{
	if (size < MANIFEST_HEADER)
		return set_why(why, whylen, SETT_ECORRUPT,
			       "%s: file too short for its header (%llu bytes)", m->path,
			       (unsigned long long)size);
	if (memcmp(h, MANIFEST_MAGIC, 8) != 0)
		return set_why(why, whylen, SETT_EFORMAT, "%s: bad magic at offset 0", m->path);
	if ((uint32_t)sett_hash(h, 12) != get_le32(h + 12))
		return set_why(why, whylen, SETT_ECORRUPT,
			       "%s: header checksum mismatch at offset 12", m->path);
	if (get_le32(h + 8) != MANIFEST_VERSION)
		return set_why(why, whylen, SETT_EFORMAT,
			       "%s: unsupported format version %u at offset 8", m->path,
			       get_le32(h + 8));
	return 0;
}

static void manifest_free(manifest *m)
{
	if (!m)
		return;
	sfile_close(m->f);
	pthread_mutex_destroy(&m->mu);
	free(m->live.t);
	free(m->deleted);
	free(m->dir);
	free(m->path);
	free(m->rewrite_path);
	free(m);
}

/* Creates an empty MANIFEST atomically (write aside, fsync, rename). */
static int create_empty(manifest *m)
{
	table_set none = { 0 };
	int renamed;
	return write_whole(m, &none, &renamed);
}

/* A manifest of dir with nothing open yet, or NULL. */
static manifest *manifest_new(const char *dir)
{
	manifest *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	pthread_mutex_init(&m->mu, NULL);
	m->dir = strdup(dir);
	m->path = path_join(dir, MANIFEST_NAME);
	m->rewrite_path = path_join(dir, MANIFEST_REWRITE_NAME);
	if (!m->dir || !m->path || !m->rewrite_path) {
		manifest_free(m);
		return NULL;
	}
	return m;
}

int manifest_open(const char *dir, int read_only, manifest **mp, manifest_table **tables,
		  size_t *ntables, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = 0;
	manifest *m = manifest_new(dir);
	if (!m)
		return -ENOMEM;

	sfile *f;
	int r = sfile_open(m->path, read_only ? O_RDONLY : O_RDWR, &f);
	if (r) {
		if (r == -ENOENT)
			set_why(why, whylen, r, "%s: no such file", m->path);
		goto fail;
	}

	int64_t sz = sfile_size(f);
	if (sz < 0) {
		sfile_close(f);
		r = (int)sz;
		goto fail;
	}
	uint64_t size = (uint64_t)sz;
	uint8_t *data = malloc(size ? (size_t)size : 1);
	if (!data) {
		sfile_close(f);
		r = -ENOMEM;
		goto fail;
	}
	r = sfile_pread_full(f, data, (size_t)size, 0);
	if (!r)
		r = check_header(m, data, size, why, whylen);
	uint64_t end = size;
	if (!r)
		r = replay(m, data, size, &end, why, whylen);
	free(data);
	if (r) {
		sfile_close(f);
		goto fail;
	}
	if (read_only) {
		sfile_close(f);
		f = NULL;
	}
	m->f = f;
	m->size = end;
	m->file_size = size;

	manifest_table *out = malloc((m->live.n ? m->live.n : 1) * sizeof *out);
	if (!out) {
		r = -ENOMEM;
		goto fail;
	}
	if (m->live.n)
		memcpy(out, m->live.t, m->live.n * sizeof *out);
	*tables = out;
	*ntables = m->live.n;
	*mp = m;
	return 0;

fail:
	manifest_free(m);
	return r;
}

int manifest_create(const char *dir)
{
	manifest *m = manifest_new(dir);
	if (!m)
		return -ENOMEM;
	int r = create_empty(m);
	manifest_free(m);
	return r;
}

uint64_t manifest_next_id(const manifest *m)
{
	return m->live.next_id;
}

int manifest_deleted_at_open(const manifest *m, uint64_t id)
{
	return m->ndeleted && bsearch(&id, m->deleted, m->ndeleted, sizeof id, cmp_id) != NULL;
}

uint64_t manifest_torn_at(const manifest *m)
{
	return m->file_size > m->size ? m->size : 0;
}

/* Cuts a torn tail found at open, so that the next append follows valid data. */
static int cut_torn_locked(manifest *m)
{
	if (m->file_size <= m->size)
		return 0;
	int r = sfile_truncate(m->f, m->size);
	if (!r)
		r = sfile_sync(m->f);
	if (r)
		m->err = r;
	else
		m->file_size = m->size;
	return r;
}

int manifest_finish_open(manifest *m)
{
	if (!m->f)
		return 0;
	pthread_mutex_lock(&m->mu);
	int r = cut_torn_locked(m);
	pthread_mutex_unlock(&m->mu);
	/* A rewrite that crashed before its rename: MANIFEST is the valid one. */
	if (!r) {
		r = sio_unlink(m->rewrite_path);
		if (r == -ENOENT)
			r = 0;
	}
	return r;
}

int manifest_apply(manifest *m, const manifest_change *c, size_t n)
{
	if (n == 0)
		return 0;
	if (n > MANIFEST_MAX_CHANGES)
		return -EINVAL;
	pthread_mutex_lock(&m->mu);
	int r = m->err;
	if (!r && !m->f)
		r = -EROFS;
	if (!r)
		r = cut_torn_locked(m);
	if (r)
		goto out;

	/* Validate against a copy so that a failure leaves the state unchanged. */
	table_set next;
	r = ts_copy(&next, &m->live);
	if (r)
		goto out;
	uint64_t dels = 0;
	for (size_t i = 0; i < n && !r; i++) {
		r = ts_apply(&next, &c[i]);
		if (r == SETT_ECORRUPT)
			r = -EINVAL; /* the caller's mistake; the file is fine */
		dels += c[i].op == MANIFEST_DELETE;
	}
	if (r) {
		free(next.t);
		goto out;
	}

	uint64_t deletions = m->deletions + dels;
	if (deletions > REWRITE_MIN_DELETIONS && deletions > REWRITE_RATIO * (uint64_t)next.n) {
		/* The rewrite holds the new state; no separate append needed. */
		int renamed;
		r = write_whole(m, &next, &renamed);
		if (r && renamed)
			m->err = r; /* MANIFEST was replaced but not reopened/synced */
	} else {
		buf b = { 0 };
		r = record_append(&b, c, n);
		if (!r) {
			r = sfile_pwrite(m->f, b.p, b.n, m->size);
			/*
			 * Part of the record may have reached the file.  Cut it
			 * off, or a shorter later record would leave its tail
			 * behind as garbage; if even that fails, stop writing.
			 */
			if (r && sfile_truncate(m->f, m->size) != 0)
				m->err = r;
		}
		if (!r) {
			r = sfile_sync(m->f);
			/* After a failed fsync the record may or may not be durable. */
			if (r)
				m->err = r;
		}
		if (!r) {
			m->size += b.n;
			m->deletions = deletions;
		}
		buf_free(&b);
	}
	if (r) {
		free(next.t);
		goto out;
	}
	free(m->live.t);
	m->live = next;
out:
	pthread_mutex_unlock(&m->mu);
	return r;
}

int manifest_error(manifest *m)
{
	pthread_mutex_lock(&m->mu);
	int r = m->err;
	pthread_mutex_unlock(&m->mu);
	return r;
}

int manifest_close(manifest *m)
{
	if (!m)
		return 0;
	int r = m->f ? sfile_close(m->f) : 0;
	m->f = NULL;
	manifest_free(m);
	return r;
}

int manifest_write(const char *dir, const manifest_table *tables, size_t n, uint64_t next_id)
{
	manifest *m = manifest_new(dir);
	if (!m)
		return -ENOMEM;
	int r = 0;
	table_set s = { .next_id = next_id };
	for (size_t i = 0; i < n && !r; i++) {
		manifest_change c = { .op = MANIFEST_CREATE, .level = tables[i].level,
				      .compression = tables[i].compression, .id = tables[i].id };
		r = ts_apply(&s, &c);
		if (r == SETT_ECORRUPT)
			r = -EINVAL;
	}
	int renamed;
	if (!r)
		r = write_whole(m, &s, &renamed);
	free(s.t);
	manifest_free(m);
	return r;
}
