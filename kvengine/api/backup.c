/*
 * backup.c - sett_backup and sett_load: a checksummed, self-describing
 * stream of a store's entries (format: doc/FORMAT.md, "Backup stream").
 *
 * sett_backup reads at one version, held as a reader for the whole run,
 * through sett_stream's parallel scan; every batch the scan delivers
 * becomes one frame.  Frames carry their own checksum, and the trailer
 * carries the counts and a checksum chained over every frame's, so a
 * stream cut at a frame boundary is as detectable as a flipped bit.
 *
 * sett_load never applies what it has not verified: pass 1 reads the
 * whole stream, verifies it frame by frame and copies it into an unlinked
 * spool file in the store's directory; only when the trailer matched does
 * pass 2 decode the spool again and apply it in batches.  A damaged or
 * truncated stream thus leaves the store untouched.
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "db_impl.h"
#include "fileio.h"
#include "pin.h"
#include "stream.h"

#define APPLY_BATCH_ENTRIES 1024

void sett_backup_options_init(sett_backup_options *o)
{
	memset(o, 0, sizeof *o);
	o->threads = 4;
}

static uint64_t frame_hash(const uint8_t *head8, const uint8_t *payload, size_t n)
{
	return XXH3_64bits_withSeed(payload, n, get_le64(head8));
}

static uint64_t chain(uint64_t h, uint64_t frame_sum)
{
	uint8_t b[8];
	put_le64(b, frame_sum);
	return XXH3_64bits_withSeed(b, 8, h);
}

/* ---- writing ---- */

typedef struct bk_writer {
	sett_write_fn write;
	void *arg;
	int (*filter)(void *arg, sett_val key);
	void *filter_arg;
	buf frame;
	uint64_t chain;
	uint64_t frames, records, deletes, kvbytes, bytes;
} bk_writer;

static int put_frame(bk_writer *w, uint8_t type)
{
	uint8_t *f = w->frame.p;
	size_t plen = w->frame.n - BACKUP_FRAME_HEADER;
	memset(f, 0, 4);
	f[0] = type;
	put_le32(f + 4, (uint32_t)plen);
	uint64_t h = frame_hash(f, f + BACKUP_FRAME_HEADER, plen);
	put_le64(f + 8, h);
	if (type != BACKUP_FRAME_TRAILER)
		w->chain = chain(w->chain, h);
	if (type == BACKUP_FRAME_RECORDS)
		w->frames++;
	int r = w->write(w->arg, f, w->frame.n);
	w->bytes += w->frame.n;
	w->frame.n = 0;
	return r;
}

static int frame_begin(bk_writer *w)
{
	w->frame.n = 0;
	int r = buf_reserve(&w->frame, BACKUP_FRAME_HEADER + 4);
	if (!r)
		w->frame.n = BACKUP_FRAME_HEADER + 4; /* header, count */
	return r;
}

static int encode_batch(void *arg, int range, const sett_kv *kv, size_t n)
{
	(void)range;
	bk_writer *w = arg;
	size_t i = 0;
	while (i < n) {
		int r = frame_begin(w);
		uint32_t count = 0;
		/* a frame stays below ~4 MiB unless one entry alone is larger */
		for (; !r && i < n; i++) {
			const sett_kv *e = &kv[i];
			if (w->filter && !w->filter(w->filter_arg, e->key))
				continue;
			size_t need = 18 + 20 + e->key.size + e->value.size;
			if (count && w->frame.n + need > (4u << 20))
				break;
			if ((r = buf_reserve(&w->frame, need)))
				break;
			uint8_t *p = w->frame.p + w->frame.n;
			p[0] = e->deleted ? 1 : 0;
			p[1] = e->user_meta;
			put_le64(p + 2, e->version);
			put_le64(p + 10, e->expires_at);
			size_t o = 18;
			o += varint_put(p + o, e->key.size);
			memcpy(p + o, e->key.data, e->key.size);
			o += e->key.size;
			size_t vn = e->deleted ? 0 : e->value.size;
			o += varint_put(p + o, vn);
			if (vn)
				memcpy(p + o, e->value.data, vn);
			o += vn;
			w->frame.n += o;
			w->records++;
			w->deletes += e->deleted != 0;
			w->kvbytes += e->key.size + vn;
			count++;
		}
		if (r)
			return r;
		if (!count)
			break; /* the rest was filtered out */
		put_le32(w->frame.p + BACKUP_FRAME_HEADER, count);
		if ((r = put_frame(w, BACKUP_FRAME_RECORDS)))
			return r;
	}
	return 0;
}

/* Whether a pin holds exactly version v. */
static int pinned_at(sett_db *db, uint64_t v)
{
	uint64_t *pv;
	size_t n;
	if (pin_points(db, v + 1, &pv, &n))
		return 0;
	int at = n > 0 && pv[0] == v;
	free(pv);
	return at;
}

/* Whether a pin at or below `since` has kept every delete after it. */
static int history_kept(sett_db *db, uint64_t since)
{
	uint64_t *pv;
	size_t n;
	if (pin_points(db, since + 1, &pv, &n))
		return 0;
	free(pv);
	return n > 0;
}

int sett_backup(sett_db *db, const sett_backup_options *opt, sett_write_fn write, void *arg,
		sett_backup_result *res)
{
	sett_backup_options o;
	if (opt)
		o = *opt;
	else
		sett_backup_options_init(&o);
	memset(res, 0, sizeof *res);
	if (o.pin && db->opt.read_only)
		return -EROFS;
	if (o.read_version > sett_current_version(db) || (o.meta_size && !o.meta) ||
	    o.meta_size > SETT_BACKUP_MAX_META)
		return -EINVAL;
	db_view vw;
	uint64_t rv;
	db_view_get_reader(db, &vw, o.read_version, &rv); /* held until the end */
	db_view_release(&vw);
	int r = 0;
	/* registered first, checked then: the pin kept it at least until now */
	if (o.read_version && !pinned_at(db, o.read_version))
		r = -EINVAL;
	else if (o.since > rv)
		r = -EINVAL;
	else if (o.since && !history_kept(db, o.since))
		r = SETT_ENOHISTORY;
	bk_writer w = { .write = write, .arg = arg, .filter = o.filter,
			.filter_arg = o.filter_arg };
	uint8_t h[BACKUP_HEADER];
	if (!r) {
		memcpy(h, BACKUP_MAGIC, 8);
		put_le32(h + 8, BACKUP_VERSION);
		put_le32(h + 12, (o.all_versions ? BACKUP_FLAG_ALL_VERSIONS : 0) |
				 (o.since ? BACKUP_FLAG_DELETES : 0) |
				 (o.meta ? BACKUP_FLAG_META : 0));
		put_le64(h + 16, o.since);
		put_le64(h + 24, rv);
		put_le64(h + 32, (uint64_t)time(NULL));
		put_le64(h + 40, sett_hash(h, 40));
		w.chain = get_le64(h + 40);
		r = write(arg, h, sizeof h);
		w.bytes = sizeof h;
	}
	if (!r && o.meta) {
		w.frame.n = 0;
		r = buf_reserve(&w.frame, BACKUP_FRAME_HEADER + o.meta_size);
		if (!r) {
			memcpy(w.frame.p + BACKUP_FRAME_HEADER, o.meta, o.meta_size);
			w.frame.n = BACKUP_FRAME_HEADER + o.meta_size;
			r = put_frame(&w, BACKUP_FRAME_META);
		}
	}
	uint64_t skipped = 0;
	if (!r) {
		sett_stream_options so;
		sett_stream_options_init(&so);
		so.since = o.since;
		so.all_versions = o.all_versions;
		so.with_deletes = o.since != 0;
		so.threads = o.threads;
		so.skipped = &skipped;
		r = stream_run(db, &so, rv, encode_batch, &w);
	}
	if (!r && !(r = buf_reserve(&w.frame, BACKUP_FRAME_HEADER + BACKUP_TRAILER_LEN))) {
		uint8_t *t = w.frame.p + BACKUP_FRAME_HEADER;
		put_le64(t, w.frames);
		put_le64(t + 8, w.records);
		put_le64(t + 16, w.deletes);
		put_le64(t + 24, w.kvbytes);
		put_le64(t + 32, w.chain);
		w.frame.n = BACKUP_FRAME_HEADER + BACKUP_TRAILER_LEN;
		r = put_frame(&w, BACKUP_FRAME_TRAILER);
	}
	if (!r && o.pin) {
		/* rv is still held by this backup as a reader: pinning it is safe */
		r = sett_unpin(db, o.pin);
		if (r == SETT_ENOTFOUND)
			r = 0;
		if (!r)
			r = sett_pin(db, o.pin, rv, NULL);
	}
	db_reader_remove(db, rv);
	buf_free(&w.frame);
	res->version = rv;
	res->records = w.records;
	res->deletes = w.deletes;
	res->bytes = w.bytes;
	res->skipped = skipped;
	return r;
}

/* ---- reading ---- */

typedef struct bk_reader {
	sett_read_fn read;
	void *arg;
	uint64_t off;
	sett_load_result *res;
} bk_reader;

static int corrupt(bk_reader *rd, uint64_t off, const char *what)
{
	rd->res->offset = off;
	snprintf(rd->res->why, sizeof rd->res->why, "backup stream: %s at offset %llu", what,
		 (unsigned long long)off);
	return SETT_ECORRUPT;
}

/* Reads exactly n bytes; returns the count read before the end (< n) or <0. */
static long read_full(bk_reader *rd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		long k = rd->read(rd->arg, (uint8_t *)p + got, n - got);
		if (k < 0)
			return k;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	rd->off += got;
	return (long)got;
}

/* Reads n payload bytes into b, growing it as bytes arrive (a lying length
 * does not allocate more than the stream holds, give or take 1 MiB). */
static int read_payload(bk_reader *rd, buf *b, size_t n, uint64_t at)
{
	b->n = 0;
	while (b->n < n) {
		size_t chunk = n - b->n < (1u << 20) ? n - b->n : (1u << 20);
		int r = buf_reserve(b, chunk);
		if (r)
			return r;
		long k = read_full(rd, b->p + b->n, chunk);
		if (k < 0)
			return (int)k;
		b->n += (size_t)k;
		if ((size_t)k < chunk)
			return corrupt(rd, at, "truncated frame (the stream ends inside it)");
	}
	return 0;
}

/* Parses a verified records payload into kvs. */
static int parse_records(bk_reader *rd, const uint8_t *p, size_t n, uint64_t at, sett_kv **kvp,
			 size_t *capp, size_t *countp, uint64_t *deletes, uint64_t *kvbytes)
{
	if (n < 4)
		return corrupt(rd, at, "records frame too short");
	uint32_t count = get_le32(p);
	/* every record takes at least 20 bytes */
	if (count == 0 || count > (n - 4) / 20)
		return corrupt(rd, at, "bad record count");
	if (*capp < count) {
		sett_kv *kv = realloc(*kvp, count * sizeof *kv);
		if (!kv)
			return -ENOMEM;
		*kvp = kv;
		*capp = count;
	}
	const uint8_t *q = p + 4, *end = p + n;
	for (uint32_t i = 0; i < count; i++) {
		sett_kv *e = &(*kvp)[i];
		if (end - q < 20)
			return corrupt(rd, at, "record runs past its frame");
		if (q[0] > 1)
			return corrupt(rd, at, "bad record flags");
		e->deleted = q[0];
		e->user_meta = q[1];
		e->version = get_le64(q + 2);
		e->expires_at = get_le64(q + 10);
		q += 18;
		uint64_t kl, vl;
		size_t k = varint_get(q, end, &kl);
		if (!k || kl > SETT_MAX_KEY_SIZE || kl > (uint64_t)(end - q - (ptrdiff_t)k))
			return corrupt(rd, at, "bad key length");
		q += k;
		e->key = (sett_val){ (size_t)kl, q };
		q += kl;
		k = varint_get(q, end, &vl);
		if (!k || vl > SETT_MAX_VALUE_SIZE || vl > (uint64_t)(end - q - (ptrdiff_t)k) ||
		    (e->deleted && vl))
			return corrupt(rd, at, "bad value length");
		q += k;
		e->value = (sett_val){ (size_t)vl, q };
		q += vl;
		*deletes += e->deleted;
		*kvbytes += kl + vl;
	}
	if (q != end)
		return corrupt(rd, at, "bytes after the last record of a frame");
	*countp = count;
	return 0;
}

int backup_decode(sett_read_fn read, void *rarg, backup_meta_fn meta, backup_frame_fn fn,
		  void *farg, sett_load_result *res)
{
	memset(res, 0, sizeof *res);
	bk_reader rd = { .read = read, .arg = rarg, .res = res };
	uint8_t h[BACKUP_HEADER];
	long k = read_full(&rd, h, sizeof h);
	if (k < 0)
		return (int)k;
	if (k == 0)
		return corrupt(&rd, 0, "empty stream");
	if (k >= 8 && memcmp(h, BACKUP_MAGIC, 8) != 0) {
		snprintf(res->why, sizeof res->why, "not a sett backup stream (bad magic at offset 0)");
		return SETT_EFORMAT;
	}
	if ((size_t)k < sizeof h)
		return corrupt(&rd, 0, "truncated header");
	if (get_le64(h + 40) != sett_hash(h, 40))
		return corrupt(&rd, 40, "header checksum mismatch");
	if (get_le32(h + 8) != BACKUP_VERSION) {
		res->offset = 8;
		snprintf(res->why, sizeof res->why, "backup stream: unsupported format version %u",
			 get_le32(h + 8));
		return SETT_EFORMAT;
	}
	uint32_t flags = get_le32(h + 12);
	if (flags & ~(uint32_t)(BACKUP_FLAG_ALL_VERSIONS | BACKUP_FLAG_DELETES | BACKUP_FLAG_META))
		return corrupt(&rd, 12, "unknown flags");
	res->since = get_le64(h + 16);
	res->version = get_le64(h + 24);
	if (res->since > res->version)
		return corrupt(&rd, 16, "since is after the version");
	/* with the flag, the first frame is the meta frame; without, none is */
	int want_meta = (flags & BACKUP_FLAG_META) != 0;
	if (!want_meta && meta && (k = meta(farg, NULL, 0, res)))
		return (int)k;
	uint64_t ch = get_le64(h + 40), frames = 0, records = 0, deletes = 0, kvbytes = 0;
	buf payload = { 0 };
	sett_kv *kv = NULL;
	size_t cap = 0;
	int r = 0;
	for (;;) {
		uint64_t at = rd.off;
		uint8_t fh[BACKUP_FRAME_HEADER];
		k = read_full(&rd, fh, sizeof fh);
		if (k < 0) {
			r = (int)k;
			break;
		}
		if (k == 0) {
			r = corrupt(&rd, at, "truncated stream (no trailer)");
			break;
		}
		if ((size_t)k < sizeof fh) {
			r = corrupt(&rd, at, "truncated frame header");
			break;
		}
		uint32_t plen = get_le32(fh + 4);
		if ((fh[0] != BACKUP_FRAME_RECORDS && fh[0] != BACKUP_FRAME_TRAILER &&
		     fh[0] != BACKUP_FRAME_META) || fh[1] || fh[2] || fh[3]) {
			r = corrupt(&rd, at, "bad frame type");
			break;
		}
		if ((fh[0] == BACKUP_FRAME_META) != want_meta) {
			r = corrupt(&rd, at, want_meta ? "the meta frame is missing"
						       : "a meta frame out of place");
			break;
		}
		if (plen > BACKUP_MAX_PAYLOAD ||
		    (fh[0] == BACKUP_FRAME_TRAILER && plen != BACKUP_TRAILER_LEN) ||
		    (fh[0] == BACKUP_FRAME_META && plen > SETT_BACKUP_MAX_META)) {
			r = corrupt(&rd, at + 4, "bad frame length");
			break;
		}
		if ((r = read_payload(&rd, &payload, plen, at)))
			break;
		uint64_t sum = frame_hash(fh, payload.p, plen);
		if (sum != get_le64(fh + 8)) {
			r = corrupt(&rd, at, "frame checksum mismatch");
			break;
		}
		if (fh[0] == BACKUP_FRAME_TRAILER) {
			const uint8_t *t = payload.p;
			if (get_le64(t) != frames || get_le64(t + 8) != records ||
			    get_le64(t + 16) != deletes || get_le64(t + 24) != kvbytes) {
				r = corrupt(&rd, at, "trailer counts disagree with the frames read");
				break;
			}
			if (get_le64(t + 32) != ch) {
				r = corrupt(&rd, at, "stream checksum mismatch");
				break;
			}
			uint8_t extra;
			k = read_full(&rd, &extra, 1);
			if (k < 0)
				r = (int)k;
			else if (k)
				r = corrupt(&rd, at + BACKUP_FRAME_HEADER + plen,
					    "bytes after the trailer");
			res->records = records;
			break;
		}
		if (fh[0] == BACKUP_FRAME_META) {
			ch = chain(ch, sum);
			want_meta = 0;
			if (meta && (r = meta(farg, payload.p, plen, res)))
				break;
			continue;
		}
		size_t n;
		if ((r = parse_records(&rd, payload.p, plen, at, &kv, &cap, &n, &deletes, &kvbytes)))
			break;
		ch = chain(ch, sum);
		frames++;
		records += n;
		if (fn && (r = fn(farg, kv, n)))
			break;
	}
	buf_free(&payload);
	free(kv);
	return r;
}

/* ---- loading ---- */

typedef struct spool {
	sett_read_fn read; /* the source */
	void *arg;
	sfile *f;
	uint64_t size;      /* written (pass 1) */
	uint64_t pos;       /* read (pass 2) */
	sett_progress_fn progress;
	void *parg;
	int err;            /* a spool write error (not the stream's fault) */
} spool;

static long tee_read(void *arg, void *p, size_t n)
{
	spool *s = arg;
	long k = s->read(s->arg, p, n);
	if (k > 0) {
		int r = sfile_pwrite(s->f, p, (size_t)k, s->size);
		if (r) {
			s->err = r;
			return r;
		}
		s->size += (uint64_t)k;
		if (s->progress)
			s->progress(s->parg, 0, s->size, 0);
	}
	return k;
}

static long spool_read(void *arg, void *p, size_t n)
{
	spool *s = arg;
	ssize_t k = sfile_pread(s->f, p, n, s->pos);
	if (k > 0)
		s->pos += (uint64_t)k;
	return (long)k;
}

typedef struct applier {
	sett_db *db;
	sett_batch *b;
	size_t lsm_bytes;
	uint64_t applied, total;
	buf last; /* key of the last entry added to b */
	sett_progress_fn progress;
	void *parg;
} applier;

static int apply_flush(applier *a)
{
	size_t n = sett_batch_count(a->b);
	if (!n)
		return 0;
	int r = sett_write(a->db, a->b, 0, NULL);
	if (r)
		return r;
	a->applied += n;
	sett_batch_clear(a->b);
	a->lsm_bytes = 0;
	if (a->progress)
		a->progress(a->parg, 1, a->applied, a->total);
	return 0;
}

static int apply_frame(void *arg, const sett_kv *kv, size_t n)
{
	applier *a = arg;
	size_t limit = a->db->opt.mem_table_size / 8;
	for (size_t i = 0; i < n; i++) {
		const sett_kv *e = &kv[i];
		size_t cost = e->key.size + 64 +
			      (e->value.size >= a->db->opt.value_threshold ? 16 : e->value.size);
		/* a batch gives all its entries one version: a key's next version
		 * starts a new batch */
		int again = sett_batch_count(a->b) && a->last.n == e->key.size &&
			    memcmp(a->last.p, e->key.data, e->key.size) == 0;
		int r = 0;
		if (again || sett_batch_count(a->b) >= APPLY_BATCH_ENTRIES ||
		    (sett_batch_count(a->b) && a->lsm_bytes + cost > limit))
			r = apply_flush(a);
		if (!r)
			r = e->deleted ? sett_batch_delete(a->b, e->key)
				       : sett_batch_set_ex(a->b, e->key, e->value, e->expires_at,
							   e->user_meta);
		if (r)
			return r;
		a->lsm_bytes += cost;
		a->last.n = 0;
		if ((r = buf_append(&a->last, e->key.data, e->key.size)))
			return r;
	}
	return 0;
}

static int open_spool(sett_db *db, sfile **f)
{
	char path[4096];
	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof path, "%s/LOAD-%ld-%d.spool", db->dir, (long)getpid(), i);
		int r = sfile_open(path, O_RDWR | O_CREAT | O_EXCL, f);
		if (r == -EEXIST)
			continue;
		if (r)
			return r;
		/* unlinked at once: nothing is left behind by a crash */
		return sio_unlink(path);
	}
	return -EEXIST;
}

/* Pass 1's per-frame and meta hooks: the caller's checks. */
typedef struct checker {
	const sett_load_options *o;
} checker;

static int check_frame(void *arg, const sett_kv *kv, size_t n)
{
	checker *c = arg;
	for (size_t i = 0; i < n; i++) {
		int r = c->o->check_record(c->o->arg, &kv[i]);
		if (r)
			return r;
	}
	return 0;
}

static int check_meta(void *arg, const void *meta, size_t n, const sett_load_result *res)
{
	checker *c = arg;
	return c->o->check_meta(c->o->arg, meta, n, res);
}

static int check_pass(const sett_load_options *o, sett_read_fn read, void *arg,
		      sett_load_result *res)
{
	checker c = { o };
	return backup_decode(read, arg, o && o->check_meta ? check_meta : NULL,
			     o && o->check_record ? check_frame : NULL, &c, res);
}

int sett_backup_check(const sett_load_options *o, sett_read_fn read, void *arg,
		      sett_load_result *res)
{
	sett_load_result scratch;
	return check_pass(o, read, arg, res ? res : &scratch);
}

int sett_load(sett_db *db, sett_read_fn read, void *arg, sett_progress_fn progress, void *parg,
	      sett_load_result *res)
{
	sett_load_options o = { .progress = progress, .progress_arg = parg };
	return sett_load_ex(db, &o, read, arg, res);
}

int sett_load_ex(sett_db *db, const sett_load_options *lo, sett_read_fn read, void *arg,
		 sett_load_result *res)
{
	sett_load_result scratch;
	if (!res)
		res = &scratch;
	sett_progress_fn progress = lo ? lo->progress : NULL;
	void *parg = lo ? lo->progress_arg : NULL;
	if (db->opt.read_only || db->opt.managed) {
		memset(res, 0, sizeof *res);
		return db->opt.read_only ? -EROFS : -EINVAL; /* it commits batches */
	}
	spool s = { .read = read, .arg = arg, .progress = progress, .parg = parg };
	int r = open_spool(db, &s.f);
	if (r) {
		memset(res, 0, sizeof *res);
		sfile_close(s.f);
		return r;
	}
	/* pass 1: verify the whole stream, copying it aside */
	r = check_pass(lo, tee_read, &s, res);
	if (s.err)
		r = s.err;
	if (!r && lo && lo->before_apply)
		r = lo->before_apply(lo->arg, res);
	if (r) {
		sfile_close(s.f);
		return r;
	}
	/* pass 2: apply what was verified */
	uint64_t records = res->records;
	applier a = { .db = db, .total = records, .progress = progress, .parg = parg };
	r = sett_batch_new(&a.b);
	sett_load_result res2;
	if (!r)
		r = backup_decode(spool_read, &s, NULL, apply_frame, &a, &res2);
	if (r == SETT_ECORRUPT) {
		/* the spool changed under us: say so, with the spool's offset */
		*res = res2;
	}
	if (!r)
		r = apply_flush(&a);
	if (!r)
		r = sett_sync(db);
	res->applied = a.applied;
	sett_batch_free(a.b);
	buf_free(&a.last);
	sfile_close(s.f);
	return r;
}
