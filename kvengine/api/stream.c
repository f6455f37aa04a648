/*
 * stream.c - sett_stream: a parallel, ordered scan of the store at one
 * version (Badger's Stream).
 *
 * The key space is cut into ranges at table boundaries: the smallest keys
 * of the tables of every level, sorted, thinned to about four ranges per
 * thread.  `threads` workers take ranges from a shared counter; each walks
 * its range with its own merge iterator over one shared view (memtables
 * and tables referenced once for the whole scan), picks per key what the
 * options ask for (the newest version at the read version, or every
 * version, newer than `since`), reads the values from the value log, and
 * hands batches to the caller's function.  Calls are serialised by a
 * mutex; within a range they come in key order (and, for one key, oldest
 * version first), ranges in no particular order.
 *
 * The read version is registered as a reader for the whole scan, so no
 * compaction drops what it reads, and value-log GC keeps the files it
 * needs.  With all_versions, versions older than the read version that no
 * reader or pin keeps may have lost their value to GC already: such a
 * version is skipped (sett_stream_options.skipped counts them).
 */
#include "stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_impl.h"
#include "drop.h"
#include "ikey.h"

#define RANGES_PER_THREAD 4
#define MAX_THREADS 64

void sett_stream_options_init(sett_stream_options *o)
{
	memset(o, 0, sizeof *o);
	o->threads = 4;
	o->batch_bytes = 1u << 20;
}

typedef struct range {
	buf lo, hi; /* [lo, hi); an empty hi: to the end */
	int has_hi;
} range;

typedef struct stream_ctx {
	sett_db *db;
	const sett_stream_options *o;
	uint64_t rv;
	db_view vw;
	range *ranges;
	int nranges;
	int next;  /* next range to take (under mu) */
	int err;   /* first error (under mu) */
	uint64_t skipped;
	pthread_mutex_t mu;     /* next, err */
	pthread_mutex_t out_mu; /* one call of fn at a time */
	sett_stream_fn fn;
	void *arg;
} stream_ctx;

static int cmp_slice_ptr(const void *a, const void *b)
{
	return slice_cmp(*(const slice *)a, *(const slice *)b);
}

/* Cuts the key space into ranges at the tables' smallest keys. */
static int make_ranges(stream_ctx *c, int want)
{
	lsm_version *v = c->vw.v;
	size_t n = 0;
	for (int l = 0; l < MAX_LEVELS; l++)
		n += (size_t)v->ntables[l];
	slice *keys = malloc((n ? n : 1) * sizeof *keys);
	if (!keys)
		return -ENOMEM;
	size_t k = 0;
	for (int l = 0; l < MAX_LEVELS; l++)
		for (int i = 0; i < v->ntables[l]; i++) {
			slice s = ikey_user(table_smallest(v->tables[l][i]));
			if (c->o->prefix.size && (s.n < c->o->prefix.size ||
			    memcmp(s.p, c->o->prefix.data, c->o->prefix.size) != 0))
				continue;
			keys[k++] = s;
		}
	qsort(keys, k, sizeof *keys, cmp_slice_ptr);
	size_t d = 0;
	for (size_t i = 0; i < k; i++)
		if (d == 0 || slice_cmp(keys[d - 1], keys[i]) != 0)
			keys[d++] = keys[i];
	/* d boundaries give up to d+1 ranges; keep about `want` of them */
	size_t step = d / (size_t)want + 1;
	size_t nb = 0;
	for (size_t i = step; i < d; i += step)
		keys[nb++] = keys[i];
	c->ranges = calloc(nb + 1, sizeof *c->ranges);
	if (!c->ranges) {
		free(keys);
		return -ENOMEM;
	}
	int r = 0;
	const uint8_t *pfx = c->o->prefix.data;
	r = buf_append(&c->ranges[0].lo, pfx, c->o->prefix.size);
	for (size_t i = 0; i < nb && !r; i++) {
		c->ranges[i].has_hi = 1;
		r = buf_append(&c->ranges[i].hi, keys[i].p, keys[i].n);
		if (!r)
			r = buf_append(&c->ranges[i + 1].lo, keys[i].p, keys[i].n);
	}
	c->nranges = (int)nb + 1;
	free(keys);
	return r;
}

/* A worker's output batch: kvs pointing into data. */
typedef struct batch_out {
	sett_kv *kv;
	size_t n, cap;
	buf data;
	/* offsets into data, turned into pointers at flush (data may move) */
	size_t *koff, *voff;
} batch_out;

static int out_add(batch_out *b, slice key, const buf *val, uint64_t ver, const vstruct *vs,
		   int deleted)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		sett_kv *kv = realloc(b->kv, cap * sizeof *kv);
		if (!kv)
			return -ENOMEM;
		b->kv = kv;
		size_t *ko = realloc(b->koff, cap * sizeof *ko);
		if (!ko)
			return -ENOMEM;
		b->koff = ko;
		size_t *vo = realloc(b->voff, cap * sizeof *vo);
		if (!vo)
			return -ENOMEM;
		b->voff = vo;
		b->cap = cap;
	}
	sett_kv *e = &b->kv[b->n];
	memset(e, 0, sizeof *e);
	e->key.size = key.n;
	e->value.size = val ? val->n : 0;
	e->version = ver;
	e->expires_at = vs->expires_at;
	e->user_meta = vs->user_meta;
	e->deleted = (uint8_t)deleted;
	b->koff[b->n] = b->data.n;
	int r = buf_append(&b->data, key.p, key.n);
	b->voff[b->n] = b->data.n;
	if (!r && val && val->n)
		r = buf_append(&b->data, val->p, val->n);
	if (!r)
		b->n++;
	return r;
}

static int out_flush(stream_ctx *c, int range_idx, batch_out *b)
{
	if (!b->n)
		return 0;
	for (size_t i = 0; i < b->n; i++) {
		b->kv[i].key.data = b->data.p + b->koff[i];
		b->kv[i].value.data = b->data.p + b->voff[i];
	}
	pthread_mutex_lock(&c->out_mu);
	int r = c->fn(c->arg, range_idx, b->kv, b->n);
	pthread_mutex_unlock(&c->out_mu);
	b->n = 0;
	b->data.n = 0;
	return r;
}

/*
 * Reads the value of (uk, ver); a value whose file GC deleted meanwhile is
 * looked up again (it moved).  Returns 0, 1 when it is gone (an old
 * version GC did not keep), or <0.
 */
static int read_value(stream_ctx *c, slice uk, uint64_t ver, const vstruct *vs, buf *out)
{
	int r = db_resolve_value(c->db, uk, vs, out);
	buf vsb = { 0 };
	for (int attempt = 0; r == -ENOENT && attempt < 3; attempt++) {
		uint64_t found = 0;
		int f = db_lookup(c->db, uk, ver, &found, &vsb);
		vstruct nv;
		if (f < 0) {
			r = f;
			break;
		}
		if (f == 0 || found != ver || vstruct_decode(vsb.p, vsb.n, &nv))
			break;
		r = db_resolve_value(c->db, uk, &nv, out);
	}
	buf_free(&vsb);
	return r == -ENOENT ? 1 : r;
}

/* The versions of one key, newest first, kept while the key is read. */
typedef struct key_versions {
	buf key;
	buf vs;          /* value structs back to back */
	size_t *voff, *vlen;
	uint64_t *ver;
	size_t n, cap;
} key_versions;

static int kv_push(key_versions *k, uint64_t ver, slice vsb)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 8;
		size_t *a = realloc(k->voff, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		k->voff = a;
		if (!(a = realloc(k->vlen, cap * sizeof *a)))
			return -ENOMEM;
		k->vlen = a;
		uint64_t *v = realloc(k->ver, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		k->ver = v;
		k->cap = cap;
	}
	k->voff[k->n] = k->vs.n;
	k->vlen[k->n] = vsb.n;
	k->ver[k->n] = ver;
	k->n++;
	return buf_append(&k->vs, vsb.p, vsb.n);
}

/*
 * Emits what the options want of one key's versions (newest first, all at
 * or below the read version; without all_versions only the newest).  A
 * version hidden by a prefix drop (drop.h) made after `since` comes as a
 * delete at the drop's version.
 */
static int emit_key(stream_ctx *c, key_versions *k, batch_out *out, buf *val, uint64_t now)
{
	const sett_stream_options *o = c->o;
	slice uk = slice_make(k->key.p, k->key.n);
	uint64_t pending = 0; /* a drop to emit as a delete */
	vstruct del = { .meta = META_DELETE };
	/* oldest first, so that applying them in order ends at the newest */
	for (size_t j = k->n; j-- > 0;) {
		vstruct vs;
		if (vstruct_decode(k->vs.p + k->voff[j], k->vlen[j], &vs))
			return SETT_ECORRUPT;
		uint64_t dv = 0;
		int r = 0;
		if (drops_hide(c->db, uk, k->ver[j], c->rv, &dv)) {
			/* a stream at `since` <= dv still saw it */
			if (dv >= o->since && dv + 1 > pending)
				pending = dv + 1;
			continue;
		}
		if (pending && (o->all_versions || o->with_deletes) &&
		    (r = out_add(out, uk, NULL, pending, &del, 1)))
			return r;
		pending = 0;
		if (k->ver[j] <= o->since)
			continue;
		int gone = (vs.meta & META_DELETE) || (vs.expires_at && vs.expires_at <= now);
		if (gone && !o->all_versions && !o->with_deletes)
			continue;
		val->n = 0;
		if (!(vs.meta & META_DELETE)) {
			r = read_value(c, uk, k->ver[j], &vs, val);
			if (r == 1) {
				__atomic_fetch_add(&c->skipped, 1, __ATOMIC_RELAXED);
				continue;
			}
		}
		if (!r)
			r = out_add(out, uk, (vs.meta & META_DELETE) ? NULL : val, k->ver[j], &vs,
				    (vs.meta & META_DELETE) != 0);
		if (r)
			return r;
	}
	if (pending && (o->all_versions || o->with_deletes))
		return out_add(out, uk, NULL, pending, &del, 1);
	return 0;
}

static int key_in_prefix(const sett_stream_options *o, slice uk)
{
	return !o->prefix.size ||
	       (uk.n >= o->prefix.size && memcmp(uk.p, o->prefix.data, o->prefix.size) == 0);
}

static int scan_range(stream_ctx *c, int ri)
{
	const range *rg = &c->ranges[ri];
	sit *it = db_view_iter(c->db, &c->vw);
	if (!it)
		return -ENOMEM;
	uint8_t *seek = malloc(rg->lo.n + IKEY_SUFFIX);
	if (!seek) {
		sit_free(it);
		return -ENOMEM;
	}
	ikey_make(seek, rg->lo.p, rg->lo.n, UINT64_MAX);
	sit_seek(it, slice_make(seek, rg->lo.n + IKEY_SUFFIX));
	free(seek);
	batch_out out = { 0 };
	key_versions k = { 0 };
	buf val = { 0 };
	int have = 0, r = 0;
	uint64_t now = (uint64_t)time(NULL);
	size_t batch_bytes = c->o->batch_bytes ? c->o->batch_bytes : (1u << 20);
	for (; sit_valid(it); sit_next(it)) {
		slice ik = sit_key(it);
		if (ik.n < IKEY_SUFFIX) {
			r = SETT_ECORRUPT;
			break;
		}
		slice uk = ikey_user(ik);
		uint64_t ver = ikey_version(ik);
		int newkey = !have || slice_cmp(uk, slice_make(k.key.p, k.key.n)) != 0;
		if (newkey) {
			if (have && (r = emit_key(c, &k, &out, &val, now)))
				break;
			if (out.data.n >= batch_bytes && (r = out_flush(c, ri, &out)))
				break;
			if (rg->has_hi && slice_cmp(uk, slice_make(rg->hi.p, rg->hi.n)) >= 0) {
				have = 0;
				break;
			}
			if (!key_in_prefix(c->o, uk)) {
				have = 0;
				break;
			}
			k.key.n = k.vs.n = 0;
			k.n = 0;
			if ((r = buf_append(&k.key, uk.p, uk.n)))
				break;
			have = 1;
		}
		/* versions after the read version are not asked for; without
		 * all_versions only the newest at the read version counts (emit_key
		 * leaves out what is not newer than `since`) */
		if (ver > c->rv || (!c->o->all_versions && k.n) ||
		    (k.n && k.ver[k.n - 1] == ver))
			continue;
		if ((r = kv_push(&k, ver, sit_value(it))))
			break;
	}
	if (!r)
		r = sit_error(it);
	if (!r && have)
		r = emit_key(c, &k, &out, &val, now);
	if (!r)
		r = out_flush(c, ri, &out);
	sit_free(it);
	free(out.kv);
	free(out.koff);
	free(out.voff);
	buf_free(&out.data);
	buf_free(&k.key);
	buf_free(&k.vs);
	free(k.voff);
	free(k.vlen);
	free(k.ver);
	buf_free(&val);
	return r;
}

static void *worker(void *arg)
{
	stream_ctx *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		int ri = c->err ? c->nranges : c->next++;
		pthread_mutex_unlock(&c->mu);
		if (ri >= c->nranges)
			break;
		int r = scan_range(c, ri);
		if (r) {
			pthread_mutex_lock(&c->mu);
			if (!c->err)
				c->err = r;
			pthread_mutex_unlock(&c->mu);
		}
	}
	return NULL;
}

int stream_run(sett_db *db, const sett_stream_options *o, uint64_t rv, sett_stream_fn fn,
	       void *arg)
{
	stream_ctx c = { .db = db, .o = o, .rv = rv, .fn = fn, .arg = arg };
	pthread_mutex_init(&c.mu, NULL);
	pthread_mutex_init(&c.out_mu, NULL);
	db_view_get(db, &c.vw);
	int threads = o->threads < 1 ? 1 : o->threads > MAX_THREADS ? MAX_THREADS : o->threads;
	int r = make_ranges(&c, threads * RANGES_PER_THREAD);
	if (!r) {
		pthread_t th[MAX_THREADS];
		int started = 0;
		if (threads > c.nranges)
			threads = c.nranges;
		for (int i = 1; i < threads; i++) {
			if (pthread_create(&th[started], NULL, worker, &c))
				break;
			started++;
		}
		worker(&c); /* the caller's thread is one of the workers */
		for (int i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		r = c.err;
	}
	for (int i = 0; c.ranges && i < c.nranges; i++) {
		buf_free(&c.ranges[i].lo);
		buf_free(&c.ranges[i].hi);
	}
	free(c.ranges);
	db_view_release(&c.vw);
	pthread_mutex_destroy(&c.mu);
	pthread_mutex_destroy(&c.out_mu);
	if (o->skipped)
		*o->skipped = c.skipped;
	return r;
}

int sett_stream(sett_db *db, const sett_stream_options *o, sett_stream_fn fn, void *arg,
		uint64_t *read_version)
{
	db_view vw;
	uint64_t rv;
	/* registers rv as a reader: compaction keeps what it sees */
	db_view_get_reader(db, &vw, o->read_version, &rv);
	db_view_release(&vw);
	int r = stream_run(db, o, rv, fn, arg);
	db_reader_remove(db, rv);
	if (read_version)
		*read_version = rv;
	return r;
}
