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
#include "seal.h"
#include "sett.h"
#include "wal.h"

#define MANIFEST_NAME "MANIFEST"
#define MANIFEST_REWRITE_NAME "MANIFEST-REWRITE"
#define MANIFEST_MAGIC "SETTMANI"
#define MANIFEST_ENC_MAGIC "SETTMANE" /* encrypted: sealed records (seal.h) */
/* Version 1 files hold table changes only; a file that holds a mark (a pin
 * or a prefix drop) is version 2, so an engine that knows no marks refuses it
 * as an unknown format instead of as corruption. */
#define MANIFEST_VERSION 1
#define MANIFEST_VERSION_MARKS 2
#define MANIFEST_HEADER 16
#define MANIFEST_ENC_HEADER (MANIFEST_HEADER + SEAL_HEADER)
#define MANIFEST_REC_HEADER 12 /* u32 len + u64 checksum */
#define MANIFEST_CHANGE_LEN 11 /* u8 op + u64 id + u8 level + u8 compression */
#define MANIFEST_MARK_HEAD 11   /* u8 op + u64 version + u16 name length */
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
	uint64_t max_version; /* every version at or below this has been used */
	manifest_mark *marks; /* pins and prefix drops, in the order they were added */
	size_t nmarks;
} table_set;

struct manifest {
	pthread_mutex_t mu;
	char *dir;
	char *path;
	char *rewrite_path;
	sfile *f;        /* NULL when read-only */
	uint64_t size;   /* append offset */
	uint32_t version; /* of the file's header */
	uint64_t deletions; /* delete records since the file was last written whole */
	int err;         /* sticky: the file's state on disk is uncertain */
	uint64_t file_size; /* size found at open; > size while a torn tail is uncut */
	table_set live;
	/*
	 * An encrypted store's: its data keys (borrowed), and the sealing
	 * state of the file.  Appends go only to a file this process wrote
	 * whole (`fresh`): the counters used in one written before are not
	 * known, so its first change rewrites it under a new salt.
	 */
	sett_cipher cipher; /* key NULL: unencrypted */
	sett_keys keys;
	seal *c;
	int fresh;
	/* opening: plaintext and file ends of the sealed records, for messages */
	const size_t *bounds;
	size_t nrec;
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
	dst->max_version = src->max_version;
	dst->n = src->n;
	dst->cap = src->n + 16;
	dst->t = malloc(dst->cap * sizeof *dst->t);
	if (!dst->t)
		return -ENOMEM;
	if (src->n)
		memcpy(dst->t, src->t, src->n * sizeof *src->t);
	dst->marks = NULL;
	dst->nmarks = 0;
	if (src->nmarks && manifest_marks_copy(src->marks, src->nmarks, &dst->marks)) {
		free(dst->t);
		dst->t = NULL;
		return -ENOMEM;
	}
	dst->nmarks = src->nmarks;
	return 0;
}

static void ts_free(table_set *s)
{
	free(s->t);
	manifest_marks_free(s->marks, s->nmarks);
	s->t = NULL;
	s->marks = NULL;
	s->n = s->nmarks = 0;
}

int manifest_marks_copy(const manifest_mark *src, size_t n, manifest_mark **out)
{
	manifest_mark *d = calloc(n ? n : 1, sizeof *d);
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		d[i] = src[i];
		d[i].name = malloc(src[i].len + 1);
		if (!d[i].name) {
			manifest_marks_free(d, i);
			return -ENOMEM;
		}
		if (src[i].len)
			memcpy(d[i].name, src[i].name, src[i].len);
		d[i].name[src[i].len] = 0;
	}
	*out = d;
	return 0;
}

void manifest_marks_free(manifest_mark *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++)
		free(m[i].name);
	free(m);
}

static int op_is_mark(uint8_t op)
{
	return op >= MANIFEST_PIN && op <= MANIFEST_DROP_DONE;
}

/* The mark a change names: a pin by its name, a drop by prefix and version. */
static ssize_t mark_find(const table_set *s, const manifest_change *c, uint8_t kind)
{
	for (size_t i = 0; i < s->nmarks; i++) {
		const manifest_mark *k = &s->marks[i];
		if (k->kind == kind && k->len == c->name_len &&
		    (!c->name_len || memcmp(k->name, c->name, c->name_len) == 0) &&
		    (kind == MANIFEST_MARK_PIN || k->version == c->id))
			return (ssize_t)i;
	}
	return -1;
}

/* Adds (ops 4, 6) or removes (ops 5, 7) a mark. */
static int ts_apply_mark(table_set *s, const manifest_change *c)
{
	uint8_t kind = c->op <= MANIFEST_UNPIN ? MANIFEST_MARK_PIN : MANIFEST_MARK_DROP;
	ssize_t i = mark_find(s, c, kind);
	if (c->op == MANIFEST_PIN || c->op == MANIFEST_DROP) {
		if (i >= 0)
			return SETT_ECORRUPT;
		manifest_mark k = { .kind = kind, .version = c->id, .len = c->name_len,
				    .name = (uint8_t *)c->name };
		manifest_mark *copy;
		if (manifest_marks_copy(&k, 1, &copy))
			return -ENOMEM;
		manifest_mark *nm = realloc(s->marks, (s->nmarks + 1) * sizeof *nm);
		if (!nm) {
			manifest_marks_free(copy, 1);
			return -ENOMEM;
		}
		nm[s->nmarks++] = copy[0];
		free(copy);
		s->marks = nm;
		return 0;
	}
	if (i < 0)
		return SETT_ECORRUPT;
	free(s->marks[i].name);
	memmove(&s->marks[i], &s->marks[i + 1], (s->nmarks - (size_t)i - 1) * sizeof *s->marks);
	s->nmarks--;
	return 0;
}

/* Applies one change; 0, SETT_ECORRUPT for an invalid change, or -ENOMEM. */
static int ts_apply(table_set *s, const manifest_change *c)
{
	if (op_is_mark(c->op))
		return ts_apply_mark(s, c);
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
	if (c->op == MANIFEST_MAX_VERSION) {
		/* The version high-water mark only grows. */
		if (c->id < s->max_version)
			return SETT_ECORRUPT;
		s->max_version = c->id;
		return 0;
	}
	return SETT_ECORRUPT;
}

/* ---- encoding ---- */

static void header_encode(uint8_t *h, uint32_t version, int enc)
{
	memcpy(h, enc ? MANIFEST_ENC_MAGIC : MANIFEST_MAGIC, 8);
	put_le32(h + 8, version);
	put_le32(h + 12, (uint32_t)sett_hash(h, 12));
}

static size_t change_len(const manifest_change *c)
{
	return op_is_mark(c->op) ? MANIFEST_MARK_HEAD + c->name_len : MANIFEST_CHANGE_LEN;
}

/* Appends one record holding the n changes to b. */
static int record_append(buf *b, const manifest_change *c, size_t n)
{
	size_t plen = 4;
	for (size_t i = 0; i < n; i++)
		plen += change_len(&c[i]);
	if (plen > UINT32_MAX)
		return -EINVAL;
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
		if (op_is_mark(c[i].op)) {
			put_le16(p + 9, c[i].name_len);
			if (c[i].name_len)
				memcpy(p + MANIFEST_MARK_HEAD, c[i].name, c[i].name_len);
		} else {
			p[9] = c[i].level;
			p[10] = c[i].compression;
		}
		p += change_len(&c[i]);
	}
	put_le32(rec, (uint32_t)plen);
	put_le64(rec + 4, sett_hash(rec + MANIFEST_REC_HEADER, plen));
	b->n += MANIFEST_REC_HEADER + plen;
	return 0;
}

/*
 * Decodes the change at p (left bytes of the payload remain); returns its
 * length, or 0 when it does not fit.  Marks exist in version 2 files only.
 */
static size_t change_decode(const uint8_t *p, size_t left, uint32_t version,
			    manifest_change *c)
{
	if (left < MANIFEST_CHANGE_LEN)
		return 0;
	memset(c, 0, sizeof *c);
	c->op = p[0];
	c->id = get_le64(p + 1);
	if (version < MANIFEST_VERSION_MARKS || !op_is_mark(c->op)) {
		c->level = p[9];
		c->compression = p[10];
		return MANIFEST_CHANGE_LEN;
	}
	c->name_len = get_le16(p + 9);
	if (left - MANIFEST_MARK_HEAD < c->name_len)
		return 0;
	c->name = p + MANIFEST_MARK_HEAD;
	return MANIFEST_MARK_HEAD + c->name_len;
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
	seal *ns = NULL;
	int r = cipher_on(&m->cipher) ? seal_new(&m->cipher, 0, MANIFEST_REC_HEADER + 4, &ns) : 0;
	if (!r)
		r = buf_reserve(&b, MANIFEST_ENC_HEADER);
	if (r) {
		seal_free(ns);
		return r;
	}
	uint32_t version = s->nmarks ? MANIFEST_VERSION_MARKS : MANIFEST_VERSION;
	header_encode(b.p, version, ns != NULL);
	b.n = MANIFEST_HEADER;
	if (ns && !(r = seal_header(ns, b.p, MANIFEST_HEADER)))
		b.n = MANIFEST_ENC_HEADER;
	size_t nc = s->n + (s->next_id != 0) + (s->max_version != 0) + s->nmarks;
	if (nc) {
		manifest_change *c = calloc(nc, sizeof *c);
		if (!c) {
			buf_free(&b);
			seal_free(ns);
			return -ENOMEM;
		}
		for (size_t i = 0; i < s->n; i++) {
			c[i].op = MANIFEST_CREATE;
			c[i].id = s->t[i].id;
			c[i].level = s->t[i].level;
			c[i].compression = s->t[i].compression;
		}
		size_t k = s->n;
		if (s->next_id)
			c[k++] = (manifest_change){ .op = MANIFEST_NEXT_ID, .id = s->next_id };
		if (s->max_version)
			c[k++] = (manifest_change){ .op = MANIFEST_MAX_VERSION, .id = s->max_version };
		for (size_t i = 0; i < s->nmarks; i++, k++) {
			const manifest_mark *mk = &s->marks[i];
			c[k].op = mk->kind == MANIFEST_MARK_PIN ? MANIFEST_PIN : MANIFEST_DROP;
			c[k].id = mk->version;
			c[k].name = mk->name;
			c[k].name_len = (uint16_t)mk->len;
		}
		size_t at = b.n;
		if (!r)
			r = record_append(&b, c, nc);
		free(c);
		size_t len = b.n - at;
		if (!r && ns && !(r = seal_record(ns, at, b.p + at, len))) {
			b.n = at;
			r = buf_append(&b, ns->buf, len + SEAL_REC_OVERHEAD);
		}
	}

	sfile *f = NULL;
	if (!r)
		r = sfile_open(m->rewrite_path, O_RDWR | O_CREAT | O_TRUNC, &f);
	if (r) {
		buf_free(&b);
		seal_free(ns);
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
		seal_free(ns);
		return r;
	}
	*renamed = 1;
	seal_free(m->c);
	m->c = ns; /* the file on disk is sealed with it now */
	m->fresh = 1;
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
	m->version = version;
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

/* Where a message puts offset `off` of the replayed bytes: in the file. */
static unsigned long long file_off(const manifest *m, uint64_t off)
{
	return m->bounds ? seal_record_at(m->bounds, m->nrec, MANIFEST_ENC_HEADER, (size_t)off)
			 : off;
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
		/* Version 1 changes are all 11 bytes: the length must fit them. */
		int fixed = m->version < MANIFEST_VERSION_MARKS;
		if (plen < 4 || (fixed && (plen - 4) % MANIFEST_CHANGE_LEN) ||
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
		if (fixed && left >= MANIFEST_REC_HEADER + 4 &&
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
		size_t pos = 4;
		for (uint32_t i = 0; i <= count; i++) {
			manifest_change c;
			int r = 0;
			if (i == count) {
				/* the changes must fill the payload exactly */
				if (pos != plen)
					r = SETT_ECORRUPT;
			} else {
				size_t clen = change_decode(payload + pos, plen - pos, m->version, &c);
				pos += clen;
				r = clen ? ts_apply(&m->live, &c) : SETT_ECORRUPT;
			}
			if (r == SETT_ECORRUPT)
				return set_why(why, whylen, r,
					       "%s: invalid change in record at offset %llu", m->path,
					       file_off(m, off));
			if (r)
				return r;
			if (i < count && c.op == MANIFEST_DELETE) {
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
		       file_off(m, off), what);
}

static int check_header(const manifest *m, const uint8_t *h, uint64_t size, char *why,
			size_t whylen)
{
	if (size < MANIFEST_HEADER)
		return set_why(why, whylen, SETT_ECORRUPT,
			       "%s: file too short for its header (%llu bytes)", m->path,
			       (unsigned long long)size);
	if (memcmp(h, MANIFEST_MAGIC, 8) != 0 && memcmp(h, MANIFEST_ENC_MAGIC, 8) != 0)
		return set_why(why, whylen, SETT_EFORMAT, "%s: bad magic at offset 0", m->path);
	if ((uint32_t)sett_hash(h, 12) != get_le32(h + 12))
		return set_why(why, whylen, SETT_ECORRUPT,
			       "%s: header checksum mismatch at offset 12", m->path);
	uint32_t v = get_le32(h + 8);
	if (v != MANIFEST_VERSION && v != MANIFEST_VERSION_MARKS)
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
	seal_free(m->c);
	pthread_mutex_destroy(&m->mu);
	ts_free(&m->live);
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
static manifest *manifest_new(const char *dir, const sett_cipher *c, const sett_keys *keys)
{
	manifest *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	if (cipher_on(c))
		m->cipher = *c;
	if (keys)
		m->keys = *keys;
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
	return manifest_open_enc(dir, read_only, NULL, NULL, mp, tables, ntables, why, whylen);
}

/*
 * Replays an encrypted MANIFEST's data[0, size): its sealed records are
 * opened (the torn-tail rule applying to whole records) and the plain
 * records they hold replayed; *end is the file end of the valid ones.
 */
static int replay_sealed(manifest *m, const uint8_t *data, uint64_t size, uint64_t *end,
			 char *why, size_t whylen)
{
	int r = seal_open_header(m->path, &m->keys, 0, MANIFEST_REC_HEADER + 4, data,
				 MANIFEST_HEADER, (size_t)size, &m->c, why, whylen);
	uint8_t *plain = NULL;
	size_t pn, *bounds = NULL, nrec = 0;
	if (!r)
		r = seal_open_records(m->path, m->c, data, (size_t)size, MANIFEST_ENC_HEADER,
				      MANIFEST_HEADER, &plain, &pn, &bounds, &nrec, why, whylen);
	if (r)
		return r;
	memcpy(plain, data, MANIFEST_HEADER);
	m->bounds = bounds;
	m->nrec = nrec;
	uint64_t pend = pn;
	r = replay(m, plain, pn, &pend, why, whylen);
	/* Authentic records hold whole plain records: a torn one is damage. */
	if (!r && pend < pn)
		r = set_why(why, whylen, SETT_ECORRUPT, "%s: corrupt record at offset %llu",
			    m->path, file_off(m, pend));
	*end = seal_file_end(bounds, nrec, MANIFEST_ENC_HEADER, (size_t)pend);
	m->bounds = NULL;
	free(bounds);
	free(plain);
	return r;
}

int manifest_open_enc(const char *dir, int read_only, const sett_cipher *c,
		      const sett_keys *keys, manifest **mp, manifest_table **tables,
		      size_t *ntables, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = 0;
	manifest *m = manifest_new(dir, c, keys);
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
	if (!r)
		m->version = get_le32(data + 8);
	uint64_t end = size;
	int sealed = !r && memcmp(data, MANIFEST_ENC_MAGIC, 8) == 0;
	if (!r && !sealed && cipher_on(&m->cipher))
		r = set_why(why, whylen, SETT_ECORRUPT, "%s: not encrypted, but the store is "
			    "(KEYREGISTRY holds data keys)", m->path);
	else if (sealed)
		r = replay_sealed(m, data, size, &end, why, whylen);
	else if (!r)
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
	return manifest_create_enc(dir, NULL);
}

int manifest_create_enc(const char *dir, const sett_cipher *c)
{
	manifest *m = manifest_new(dir, c, NULL);
	if (!m)
		return -ENOMEM;
	int r = create_empty(m);
	manifest_free(m);
	return r;
}

int manifest_marks(manifest *m, manifest_mark **out, size_t *n)
{
	pthread_mutex_lock(&m->mu);
	int r = manifest_marks_copy(m->live.marks, m->live.nmarks, out);
	*n = r ? 0 : m->live.nmarks;
	pthread_mutex_unlock(&m->mu);
	return r;
}

uint64_t manifest_next_id(const manifest *m)
{
	return m->live.next_id;
}

uint64_t manifest_max_version(manifest *m)
{
	pthread_mutex_lock(&m->mu);
	uint64_t v = m->live.max_version;
	pthread_mutex_unlock(&m->mu);
	return v;
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
	int marks = 0;
	for (size_t i = 0; i < n && !r; i++) {
		marks |= op_is_mark(c[i].op);
		r = ts_apply(&next, &c[i]);
		if (r == SETT_ECORRUPT)
			r = -EINVAL; /* the caller's mistake; the file is fine */
		dels += c[i].op == MANIFEST_DELETE;
	}
	if (r) {
		ts_free(&next);
		goto out;
	}

	uint64_t deletions = m->deletions + dels;
	/* A version 1 file takes its first mark by being rewritten as version 2. */
	if ((marks && m->version < MANIFEST_VERSION_MARKS) || (m->c && !m->fresh) ||
	    (deletions > REWRITE_MIN_DELETIONS && deletions > REWRITE_RATIO * (uint64_t)next.n)) {
		/* The rewrite holds the new state; no separate append needed. */
		int renamed;
		r = write_whole(m, &next, &renamed);
		if (r && renamed)
			m->err = r; /* MANIFEST was replaced but not reopened/synced */
	} else {
		buf b = { 0 };
		r = record_append(&b, c, n);
		const uint8_t *out = b.p;
		size_t outn = b.n;
		if (!r && m->c && !(r = seal_record(m->c, m->size, b.p, b.n))) {
			out = m->c->buf;
			outn += SEAL_REC_OVERHEAD;
		}
		if (!r) {
			r = sfile_pwrite(m->f, out, outn, m->size);
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
			m->size += outn;
			m->deletions = deletions;
		}
		buf_free(&b);
	}
	if (r) {
		ts_free(&next);
		goto out;
	}
	ts_free(&m->live);
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

int manifest_write(const char *dir, const sett_cipher *cipher, const manifest_table *tables,
		   size_t n, uint64_t next_id, const manifest_mark *marks, size_t nmarks,
		   uint64_t max_version)
{
	manifest *m = manifest_new(dir, cipher, NULL);
	if (!m)
		return -ENOMEM;
	int r = 0;
	table_set s = { .next_id = next_id, .max_version = max_version };
	for (size_t i = 0; i < n && !r; i++) {
		manifest_change c = { .op = MANIFEST_CREATE, .level = tables[i].level,
				      .compression = tables[i].compression, .id = tables[i].id };
		r = ts_apply(&s, &c);
		if (r == SETT_ECORRUPT)
			r = -EINVAL;
	}
	for (size_t i = 0; i < nmarks && !r; i++) {
		manifest_change c = { .op = marks[i].kind == MANIFEST_MARK_PIN ? MANIFEST_PIN
									     : MANIFEST_DROP,
				      .id = marks[i].version, .name = marks[i].name,
				      .name_len = (uint16_t)marks[i].len };
		r = ts_apply(&s, &c);
		if (r == SETT_ECORRUPT)
			r = -EINVAL;
	}
	int renamed;
	if (!r)
		r = write_whole(m, &s, &renamed);
	ts_free(&s);
	manifest_free(m);
	return r;
}

int manifest_salvage(const char *dir, const sett_keys *keys, manifest_mark **marks,
		     size_t *nmarks, uint64_t *max_version, size_t *skipped, char *why,
		     size_t whylen)
{
	*marks = NULL;
	*nmarks = 0;
	*max_version = 0;
	*skipped = 0;
	/* a MANIFEST that opens says it exactly (an encrypted one only so) */
	manifest *m;
	manifest_table *t;
	size_t nt;
	int r = manifest_open_enc(dir, 1, NULL, keys, &m, &t, &nt, why, whylen);
	if (r == 0) {
		free(t);
		r = manifest_marks(m, marks, nmarks);
		*max_version = manifest_max_version(m);
		manifest_close(m);
		return r;
	}
	if (r == -ENOMEM || r == -ENOENT)
		return r;
	m = manifest_new(dir, NULL, NULL);
	if (!m)
		return -ENOMEM;
	sfile *f = NULL;
	r = sfile_open(m->path, O_RDONLY, &f);
	int64_t sz = r ? 0 : sfile_size(f);
	uint8_t *data = NULL;
	if (!r && sz < 0)
		r = (int)sz;
	if (!r && !(data = malloc(sz ? (size_t)sz : 1)))
		r = -ENOMEM;
	if (!r)
		r = sfile_pread_full(f, data, (size_t)sz, 0);
	if (f)
		sfile_close(f);
	uint64_t size = (uint64_t)sz;
	if (!r)
		r = check_header(m, data, size, why, whylen);
	uint32_t version = r ? 0 : get_le32(data + 8);
	table_set s = { 0 };
	uint64_t off = MANIFEST_HEADER;
	while (!r && off + MANIFEST_REC_HEADER <= size) {
		const uint8_t *rec = data + off;
		uint32_t plen = get_le32(rec);
		uint64_t end = off + MANIFEST_REC_HEADER + (uint64_t)plen;
		if (plen < 4 || end > size)
			break; /* a length that cannot be: where the next record starts is lost */
		const uint8_t *payload = rec + MANIFEST_REC_HEADER;
		off = end;
		if (sett_hash(payload, plen) != get_le64(rec + 4)) {
			(*skipped)++;
			continue;
		}
		uint32_t count = get_le32(payload);
		size_t pos = 4;
		for (uint32_t i = 0; i < count && !r; i++) {
			manifest_change c;
			size_t clen = change_decode(payload + pos, plen - pos, version, &c);
			if (!clen)
				break;
			pos += clen;
			if (c.op == MANIFEST_MAX_VERSION && c.id > s.max_version)
				s.max_version = c.id;
			else if (op_is_mark(c.op))
				r = ts_apply_mark(&s, &c) == -ENOMEM ? -ENOMEM : 0;
		}
	}
	free(data);
	if (!r && (r = manifest_marks_copy(s.marks, s.nmarks, marks)) == 0) {
		*nmarks = s.nmarks;
		*max_version = s.max_version;
	}
	ts_free(&s);
	manifest_free(m);
	return r;
}
