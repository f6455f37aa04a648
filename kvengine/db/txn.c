/*
 * txn.c - transactions: snapshot reads that see their own writes, and
 * commits checked for conflicts by the writer thread (txn.h, oracle.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ikey.h"
#include "txn.h"

struct sett_txn {
	sett_db *db;
	int rw;
	int done;          /* committed or failed: only discard remains */
	int registered;    /* rv is registered as a read version */
	int iters;         /* open iterators */
	uint64_t rv;
	memtable *w;       /* buffered writes at version rv (NULL: none yet) */
	size_t wbytes;     /* their cost in a memtable (db_entry_lsm_bytes) */
	uint64_t *reads;   /* fingerprints of the keys read */
	size_t nreads, capreads;
	int lost_read;     /* a read could not be remembered: the commit fails */
	buf tmp;
};

static int txn_begin(sett_db *db, int read_write, uint64_t requested, sett_txn **txnp)
{
	if (read_write && db->opt.read_only)
		return -EROFS;
	sett_txn *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->db = db;
	t->rw = read_write != 0;
	if (t->rw)
		__atomic_add_fetch(&db->orc.open_rw, 1, __ATOMIC_ACQ_REL);
	t->rv = db_reader_begin(db, requested);
	t->registered = 1;
	*txnp = t;
	return 0;
}

int sett_txn_begin(sett_db *db, int read_write, sett_txn **txnp)
{
	if (db->opt.managed)
		return -EINVAL;
	return txn_begin(db, read_write, 0, txnp);
}

int sett_txn_begin_at(sett_db *db, int read_write, uint64_t read_version, sett_txn **txnp)
{
	if (!db->opt.managed || !read_version)
		return -EINVAL;
	return txn_begin(db, read_write, read_version, txnp);
}

uint64_t sett_txn_read_version(const sett_txn *t)
{
	return t->rv;
}

/* Ends what the transaction holds in the db: its read version and its
 * count as an open read-write transaction. */
static void txn_release(sett_txn *t)
{
	if (t->registered) {
		db_reader_remove(t->db, t->rv);
		t->registered = 0;
		if (t->rw)
			__atomic_sub_fetch(&t->db->orc.open_rw, 1, __ATOMIC_ACQ_REL);
	}
}

void sett_txn_discard(sett_txn *t)
{
	if (!t)
		return;
	txn_release(t);
	if (t->w)
		memtable_unref(t->w);
	free(t->reads);
	buf_free(&t->tmp);
	free(t);
}

void txn_note_read(sett_txn *t, slice key)
{
	if (!t->rw || t->done)
		return;
	if (t->nreads == t->capreads) {
		size_t cap = t->capreads ? t->capreads * 2 : 16;
		uint64_t *p = realloc(t->reads, cap * sizeof *p);
		if (!p) {
			t->lost_read = 1;
			return;
		}
		t->reads = p;
		t->capreads = cap;
	}
	t->reads[t->nreads++] = sett_hash(key.p, key.n);
}

void txn_iter_closed(sett_txn *t)
{
	t->iters--;
}

static int expired(const vstruct *v)
{
	return v->expires_at && v->expires_at <= (uint64_t)time(NULL);
}

/* The buffered write of key: 1 and *v, or 0. */
static int pending_get(sett_txn *t, slice key, vstruct *v)
{
	uint64_t ver;
	slice vs;
	if (!t->w || !memtable_get(t->w, key, t->rv, &ver, &vs))
		return 0;
	return vstruct_decode(vs.p, vs.n, v) == 0;
}

int sett_txn_get_ex(sett_txn *t, sett_val key, void **value, size_t *size, uint64_t *version,
		    uint8_t *user_meta)
{
	if (t->done)
		return -EINVAL;
	slice k = slice_make(key.data, key.size);
	vstruct v;
	if (pending_get(t, k, &v)) {
		if ((v.meta & META_DELETE) || expired(&v))
			return SETT_ENOTFOUND;
		void *p = NULL;
		if (v.data.n && !(p = malloc(v.data.n)))
			return -ENOMEM;
		if (v.data.n)
			memcpy(p, v.data.p, v.data.n);
		*value = p;
		*size = v.data.n;
		if (version)
			*version = t->rv;
		if (user_meta)
			*user_meta = v.user_meta;
		return 0;
	}
	txn_note_read(t, k);
	return sett_get_ex(t->db, key, t->rv, value, size, version, user_meta);
}

int sett_txn_get(sett_txn *t, sett_val key, void **value, size_t *size)
{
	return sett_txn_get_ex(t, key, value, size, NULL, NULL);
}

static int txn_put(sett_txn *t, sett_val key, sett_val value, uint64_t expires_at,
		   uint8_t user_meta, int del)
{
	if (!t->rw)
		return -EPERM;
	if (t->done)
		return -EINVAL;
	if (key.size > SETT_MAX_KEY_SIZE || value.size > SETT_MAX_VALUE_SIZE)
		return SETT_ETOOBIG;
	if ((key.size && !key.data) || (value.size && !value.data))
		return -EINVAL;
	sett_db *db = t->db;
	int r;
	if (!t->w && (r = memtable_new(&t->w)))
		return r;
	slice k = slice_make(key.data, key.size);
	size_t cost = db_entry_lsm_bytes(db, key.size, value.size), old = 0;
	vstruct ov;
	if (pending_get(t, k, &ov))
		old = db_entry_lsm_bytes(db, key.size, ov.data.n);
	if (t->wbytes - old + cost > db_batch_limit(db))
		return SETT_ETXNTOOBIG;
	vstruct v = { .meta = del ? META_DELETE : 0, .user_meta = user_meta,
		      .expires_at = expires_at, .data = slice_make(value.data, value.size) };
	size_t iklen = key.size + IKEY_SUFFIX, vslen = vstruct_encoded_len(&v);
	t->tmp.n = 0;
	if ((r = buf_reserve(&t->tmp, iklen + vslen)))
		return r;
	ikey_make(t->tmp.p, key.data, key.size, t->rv);
	vstruct_encode(t->tmp.p + iklen, &v);
	if ((r = memtable_put(t->w, slice_make(t->tmp.p, iklen), slice_make(t->tmp.p + iklen, vslen))))
		return r;
	t->wbytes = t->wbytes - old + cost;
	return 0;
}

int sett_txn_set(sett_txn *t, sett_val key, sett_val value)
{
	return txn_put(t, key, value, 0, 0, 0);
}

int sett_txn_set_ex(sett_txn *t, sett_val key, sett_val value, uint64_t expires_at,
		    uint8_t user_meta)
{
	return txn_put(t, key, value, expires_at, user_meta, 0);
}

int sett_txn_delete(sett_txn *t, sett_val key)
{
	sett_val none = { 0, NULL };
	return txn_put(t, key, none, 0, 0, 1);
}

int sett_txn_iter_new(sett_txn *t, const sett_iter_options *o, sett_iter **itp)
{
	if (t->done)
		return -EINVAL;
	sett_iter_options def;
	if (!o) {
		sett_iter_options_init(&def);
		o = &def;
	}
	sit *pending = NULL;
	if (t->w && memtable_count(t->w) && !(pending = memtable_iter_new(t->w)))
		return -ENOMEM;
	int r = db_iter_new_ex(t->db, o, t->rv, pending, t, itp);
	if (!r)
		t->iters++;
	return r;
}

static int commit(sett_txn *t, uint64_t commit_version, int sync, uint64_t *version)
{
	if (t->done)
		return -EINVAL;
	if (t->iters)
		return -EBUSY;
	t->done = 1;
	if (t->lost_read) {
		txn_release(t);
		return -ENOMEM;
	}
	if (!t->w || !memtable_count(t->w)) {
		txn_release(t);
		if (version)
			*version = t->rv;
		return 0;
	}
	sett_batch *b;
	int r = sett_batch_new(&b);
	if (r) {
		txn_release(t);
		return r;
	}
	sit *it = memtable_iter_new(t->w);
	if (!it)
		r = -ENOMEM;
	for (sit_first(it); !r && sit_valid(it); sit_next(it)) {
		slice ik = sit_key(it), vs = sit_value(it);
		slice uk = ikey_user(ik);
		vstruct v;
		if ((r = vstruct_decode(vs.p, vs.n, &v)))
			break;
		sett_val key = { uk.n, uk.p }, val = { v.data.n, v.data.p };
		r = (v.meta & META_DELETE) ? sett_batch_delete(b, key)
					   : sett_batch_set_ex(b, key, val, v.expires_at, v.user_meta);
	}
	if (it && !r)
		r = sit_error(it);
	sit_free(it);
	/* The writes are in the batch: the memtable is not needed any more. */
	memtable_unref(t->w);
	t->w = NULL;
	txn_commit tc = { .reads = t->reads, .nreads = t->nreads, .read_version = t->rv,
			  .commit_version = commit_version };
	if (!r)
		r = db_write_ex(t->db, b, &tc, sync, version);
	/* Registered until the check is done: the oracle keeps the records
	 * this transaction may conflict with while its read version is open. */
	txn_release(t);
	sett_batch_free(b);
	return r;
}

int sett_txn_commit(sett_txn *t, int sync, uint64_t *version)
{
	if (t->db->opt.managed)
		return -EINVAL;
	return commit(t, 0, sync, version);
}

int sett_txn_commit_at(sett_txn *t, uint64_t commit_version, int sync)
{
	if (!t->db->opt.managed || commit_version <= t->rv)
		return -EINVAL;
	return commit(t, commit_version, sync, NULL);
}

uint64_t sett_txn_tracked_keys(sett_db *db)
{
	return oracle_count(&db->orc);
}
