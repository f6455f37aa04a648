/*
 * wal.c - the write-ahead log of a memtable (wal.h; doc/FORMAT.md, "WAL").
 *
 * The writer thread appends whole group-commit batches with one write, so
 * after a crash the file ends either cleanly or inside the last write.
 * Replay reads the file into memory (a WAL is bounded by the memtable size)
 * and tells the two failure shapes apart: an entry that ends past what was
 * written, with nothing valid after it, is a torn tail (cut off, replay
 * succeeds); a complete entry that fails its checksum, or a bad entry
 * followed by a valid one, cannot come from a torn write and is reported
 * as corruption, because silently dropping it and the entries after it
 * would lose acknowledged (perhaps fsynced) writes.
 */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"
#include "fileio.h"
#include "seal.h"
#include "sett.h"

static const char wal_magic[8] = { 'S', 'E', 'T', 'T', 'W', 'A', 'L', 0 };
static const char wal_enc_magic[8] = { 'S', 'E', 'T', 'T', 'W', 'A', 'L', 'E' };

/*
 * An encrypted WAL (doc/FORMAT.md, "Encrypted WAL") holds sealed records
 * (seal.h) after its log header, one per append, whose plaintext is whole
 * log entries.  A file opened for replay is never appended to (its last
 * counter may have sealed a write that did not survive).
 */
#define WAL_ENC_HEADER (LOG_HEADER_SIZE + SEAL_HEADER)

struct wal {
	sfile *f;
	uint32_t fid;
	uint64_t size;  /* valid end: where the next append goes; stored atomically */
	int writable;
	int broken;     /* a failed cut-back or fsync: the file's state is uncertain */
	int dir_synced; /* the file's directory entry is known durable */
	seal *c;        /* encrypted file, or NULL */
};

static void set_why(char *why, size_t whylen, const char *fmt, const char *path,
		    unsigned long long off)
{
	if (why && whylen)
		snprintf(why, whylen, fmt, path, off);
}

/* The directory part of path ("." if none), into out. */
static void dir_of(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		snprintf(out, n, ".");
		return;
	}
	size_t len = slash == path ? 1 : (size_t)(slash - path);
	snprintf(out, n, "%.*s", (int)len, path);
}

/* The file id in a name like ".../00042.mem", or 0. */
static uint32_t fid_from_path(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return (uint32_t)strtoul(base, NULL, 10);
}

static int write_header(sfile *f, uint32_t fid, seal *c)
{
	uint8_t h[WAL_ENC_HEADER];
	log_header_encode(h, c ? wal_enc_magic : wal_magic, fid);
	int r = c ? seal_header(c, h, LOG_HEADER_SIZE) : 0;
	return r ? r : sfile_pwrite(f, h, c ? WAL_ENC_HEADER : LOG_HEADER_SIZE, 0);
}

int wal_create(const char *path, uint32_t fid, wal **wp)
{
	return wal_create_enc(path, fid, NULL, wp);
}

int wal_create_enc(const char *path, uint32_t fid, const sett_cipher *c, wal **wp)
{
	wal *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	int r = cipher_on(c) ? seal_new(c, fid, ENTRY_MIN_LEN, &w->c) : 0;
	if (!r && (r = sfile_open(path, O_RDWR | O_CREAT | O_EXCL, &w->f)) != 0)
		seal_free(w->c);
	if (r) {
		free(w);
		return r;
	}
	/*
	 * Not fsynced here: a memtable is created often, and its log needs to
	 * be durable only once something in it is (wal_sync).  A crash before
	 * that leaves an empty or header-less file, which replays as empty.
	 */
	r = write_header(w->f, fid, w->c);
	if (r) {
		sfile_close(w->f);
		sio_unlink(path);
		seal_free(w->c);
		free(w);
		return r;
	}
	w->fid = fid;
	w->size = w->c ? WAL_ENC_HEADER : LOG_HEADER_SIZE;
	w->writable = 1;
	*wp = w;
	return 0;
}

int log_torn(const uint8_t *p, size_t n, size_t off, uint64_t end)
{
	if (end > n)
		return 1; /* short: the file ends inside the record */
	size_t z = n; /* start of the trailing run of zero bytes */
	while (z > off && p[z - 1] == 0)
		z--;
	if (z == off)
		return 1; /* nothing of the record was written */
	/* Zeros from a sector boundary inside the record on: unwritten sectors. */
	uint64_t sector = (z + LOG_SECTOR - 1) / LOG_SECTOR * LOG_SECTOR;
	return sector < n && sector < end;
}

/* Whether a valid entry may start anywhere in (from, n) of p (entry.h). */
static int valid_entry_after(const uint8_t *p, size_t n, size_t from)
{
	uint64_t budget = log_search_budget(n - from);
	entry e;
	for (size_t c = from + 1; c + ENTRY_MIN_LEN <= n; c++) {
		size_t hlen, total;
		if (entry_decode_header(p + c, n - c, &e, &hlen, &total) != 1 || total > n - c)
			continue;
		if (total > budget)
			return 1;
		budget -= total;
		if (entry_decode(p + c, n - c, &e) > 0)
			return 1;
	}
	return 0;
}

/* Entries of a batch whose FIN entry has not been seen yet. */
typedef struct pending {
	entry *v;
	size_t n, cap;
} pending;

static int pending_push(pending *b, const entry *e)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		entry *v = realloc(b->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = *e;
	return 0;
}

/*
 * Replays the entries of data[LOG_HEADER_SIZE, n).  Sets *valid_end to the
 * end of the last complete batch.
 */
static int replay(const char *path, const uint8_t *data, size_t n, wal_apply_fn check,
		  wal_apply_fn apply, void *arg, size_t *valid_end, char *why, size_t whylen)
{
	pending batch = { 0 };
	size_t off = LOG_HEADER_SIZE, batch_start = off;
	int r = 0;

	while (off < n) {
		entry e;
		long k = entry_decode(data + off, n - off, &e);
		if (k <= 0) {
			/* Where the entry claims to end: its length fields, or its header. */
			size_t hlen, total;
			uint64_t end = n + 1; /* header incomplete: short */
			if (entry_decode_header(data + off, n - off, &e, &hlen, &total) == 1)
				end = off + (uint64_t)total;
			else if (k < 0) /* a damaged header is not a short one */
				end = off + ENTRY_HEADER_MAX < n ? off + ENTRY_HEADER_MAX : n;
			if (!log_torn(data, n, off, end) || valid_entry_after(data, n, off)) {
				set_why(why, whylen, "%s: corrupt entry at offset %llu", path,
					(unsigned long long)off);
				r = SETT_ECORRUPT;
				goto out;
			}
			break; /* torn tail */
		}
		if (!(e.meta & META_TXN)) {
			if (batch.n) {
				/* A batch interrupted by a lone entry: not something a writer produces. */
				set_why(why, whylen, "%s: corrupt entry at offset %llu", path,
					(unsigned long long)off);
				r = SETT_ECORRUPT;
				goto out;
			}
			if (check && (r = check(arg, &e)) != 0)
				break;
			if (apply && (r = apply(arg, &e)) != 0)
				goto out;
			off += (size_t)k;
			batch_start = off;
			continue;
		}
		if ((r = pending_push(&batch, &e)) != 0)
			goto out;
		off += (size_t)k;
		if (e.meta & META_FIN_TXN) {
			for (size_t i = 0; i < batch.n && check && r == 0; i++)
				r = check(arg, &batch.v[i]);
			if (r)
				break;
			for (size_t i = 0; i < batch.n && apply; i++)
				if ((r = apply(arg, &batch.v[i])) != 0)
					goto out;
			batch.n = 0;
			batch_start = off;
		}
	}
	if (r == WAL_REPLAY_TORN)
		r = 0;
	else if (r)
		goto out;
	/* An unterminated batch at the end is part of the torn tail. */
	*valid_end = batch_start;
out:
	free(batch.v);
	return r;
}

int wal_open_replay(const char *path, int writable, wal_apply_fn apply, void *arg,
		    wal **wp, char *why, size_t whylen)
{
	return wal_open_replay_enc(path, writable, NULL, NULL, NULL, apply, arg, wp, why, whylen);
}

int wal_open_replay_checked(const char *path, int writable, wal_apply_fn check,
			    wal_apply_fn apply, void *arg, wal **wp, char *why, size_t whylen)
{
	return wal_open_replay_enc(path, writable, NULL, NULL, check, apply, arg, wp, why, whylen);
}

int wal_open_replay_enc(const char *path, int writable, const sett_cipher *c,
			const sett_keys *keys, wal_apply_fn check,
			wal_apply_fn apply, void *arg, wal **wp, char *why, size_t whylen)
{
	wal *w = calloc(1, sizeof *w);
	uint8_t *data = NULL;
	int r;
	if (!w)
		return -ENOMEM;
	w->writable = writable;
	r = sfile_open(path, writable ? O_RDWR : O_RDONLY, &w->f);
	if (r) {
		free(w);
		return r;
	}
	int64_t fsize = sfile_size(w->f);
	if (fsize < 0) {
		r = (int)fsize;
		goto fail;
	}
	if ((uint64_t)fsize > SIZE_MAX - 1) {
		r = -EFBIG;
		goto fail;
	}
	size_t n = (size_t)fsize;
	data = malloc(n ? n : 1);
	if (!data) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = sfile_pread_full(w->f, data, n, 0)) != 0)
		goto fail;

	uint32_t hfid;
	if (n < LOG_HEADER_SIZE ||
	    (n < WAL_ENC_HEADER && memcmp(data, wal_enc_magic, 8) == 0 &&
	     log_header_decode(data, n, wal_enc_magic, &hfid) == 0)) {
		/*
		 * Crash inside wal_create (the header, or an encrypted one's key
		 * head, incomplete): nothing was ever written to this log.
		 */
		w->fid = fid_from_path(path);
		if (writable) {
			if ((cipher_on(c) && (r = seal_new(c, w->fid, ENTRY_MIN_LEN, &w->c)) != 0) ||
			    (r = sfile_truncate(w->f, 0)) != 0 ||
			    (r = write_header(w->f, w->fid, w->c)) != 0 ||
			    (r = sfile_sync(w->f)) != 0)
				goto fail;
			w->size = w->c ? WAL_ENC_HEADER : LOG_HEADER_SIZE;
		} else {
			w->size = n;
		}
		goto done;
	}
	r = log_header_decode(data, n, wal_magic, &w->fid);
	/* an encrypted WAL's header is judged as its own (a damaged one is corrupt) */
	int enc = r == SETT_EFORMAT && memcmp(data, wal_enc_magic, 8) == 0;
	if (enc)
		r = log_header_decode(data, n, wal_enc_magic, &w->fid);
	if (enc && !r)
		r = seal_open_header(path, keys, w->fid, ENTRY_MIN_LEN, data, LOG_HEADER_SIZE, n,
				     &w->c, why, whylen);
	else if (r)
		set_why(why, whylen,
			r == SETT_EFORMAT ? "%s: not a WAL of this format (offset %llu)"
					  : "%s: corrupt header at offset %llu",
			path, 0);
	if (!r && !enc)
		r = cipher_plain_check(keys, path, why, whylen);
	if (r)
		goto fail;
	size_t valid_end = LOG_HEADER_SIZE;
	if (w->c) {
		uint8_t *plain;
		size_t pn, *bounds, nrec;
		r = seal_open_records(path, w->c, data, n, WAL_ENC_HEADER, LOG_HEADER_SIZE, &plain,
				      &pn, &bounds, &nrec, why, whylen);
		if (r)
			goto fail;
		r = replay(path, plain, pn, check, apply, arg, &valid_end, why, whylen);
		if (r == SETT_ECORRUPT)
			set_why(why, whylen, "%s: corrupt entry inside an authentic record (offset %llu"
					     " of the decrypted entries)", path, 0);
		/* The file end of the last record wholly before the valid end. */
		valid_end = seal_file_end(bounds, nrec, WAL_ENC_HEADER, valid_end);
		free(plain);
		free(bounds);
	} else {
		r = replay(path, data, n, check, apply, arg, &valid_end, why, whylen);
	}
	if (r)
		goto fail;
	w->size = valid_end;
	if (valid_end < n && writable) {
		/* Cut the torn tail, durably, so new appends follow valid entries. */
		if ((r = sfile_truncate(w->f, valid_end)) != 0 || (r = sfile_sync(w->f)) != 0)
			goto fail;
	}
	/* Its last nonces may have sealed a write that did not survive: no appends. */
	if (w->c)
		w->writable = 0;
done:
	w->dir_synced = 1; /* it was there before this open */
	free(data);
	if (wp)
		*wp = w;
	else
		wal_close(w, 0);
	return 0;
fail:
	free(data);
	sfile_close(w->f);
	seal_free(w->c);
	free(w);
	return r;
}

int wal_append(wal *w, const void *p, size_t n)
{
	if (!w->writable)
		return -EBADF;
	if (w->broken)
		return w->broken;
	int r;
	if (w->c) {
		if ((r = seal_record(w->c, w->size, p, n)) != 0)
			return r;
		p = w->c->buf;
		n += SEAL_REC_OVERHEAD;
	}
	r = sfile_pwrite(w->f, p, n, w->size);
	if (r) {
		/* Drop whatever part reached the file; a later append must not follow it. */
		if (sfile_truncate(w->f, w->size) != 0)
			w->broken = r;
		return r;
	}
	/* wal_size may read it from another thread (sett_get_stats). */
	__atomic_store_n(&w->size, w->size + n, __ATOMIC_RELAXED);
	return 0;
}

int wal_sync(wal *w)
{
	if (!w->writable)
		return 0;
	if (w->broken)
		return w->broken;
	int r = sfile_sync(w->f);
	if (!r && !w->dir_synced) {
		char dir[4096];
		dir_of(sfile_path(w->f), dir, sizeof dir);
		if ((r = sio_sync_dir(dir)) == 0)
			w->dir_synced = 1;
	}
	if (r)
		w->broken = r; /* what reached the disk is unknown */
	return r;
}

int wal_error(const wal *w)
{
	return w ? w->broken : 0;
}

uint64_t wal_size(const wal *w)
{
	return __atomic_load_n(&w->size, __ATOMIC_RELAXED);
}

uint32_t wal_fid(const wal *w)
{
	return w->fid;
}

const char *wal_path(const wal *w)
{
	return sfile_path(w->f);
}

int wal_close(wal *w, int remove)
{
	if (!w)
		return 0;
	char *path = remove ? strdup(sfile_path(w->f)) : NULL;
	int r = sfile_close(w->f);
	if (remove) {
		int r2 = path ? sio_unlink(path) : -ENOMEM;
		if (!r)
			r = r2;
		free(path);
	}
	seal_free(w->c);
	free(w);
	return r;
}
