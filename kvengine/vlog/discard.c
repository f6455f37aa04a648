/*
 * discard.c - per value-log file discard statistics and the DISCARD file.
 *
 * The table is small (one row per value-log file), so it is a sorted array
 * rewritten whole on every persist: write DISCARD.tmp, fsync it, rename it
 * over DISCARD, fsync the directory.  A reader therefore sees either the
 * old or the new file, never a mix.  Format: doc/FORMAT.md, "DISCARD".
 */
#include "discard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "fileio.h"
#include "sett.h"

#define DISCARD_MAGIC "SETTDISC"
#define DISCARD_VERSION 1
#define DISCARD_HEADER 16 /* magic, u32 version, u32 count */
#define DISCARD_ROW 12    /* u32 fid, u64 bytes */
#define DISCARD_MAX_ROWS (1u << 24)

typedef struct discard_row {
	uint32_t fid;
	uint64_t bytes;
} discard_row;

struct discard {
	char *dir;
	int read_only;
	pthread_mutex_t mu;     /* rows, nrows, dirty */
	pthread_mutex_t file_mu; /* one persist at a time */
	discard_row *rows;      /* sorted by fid */
	size_t nrows, cap;
	uint64_t dirty;         /* changes since the last persist */
};

static int discard_alloc(const char *dir, int read_only, discard **dp)
{
	discard *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	d->dir = strdup(dir);
	if (!d->dir) {
		free(d);
		return -ENOMEM;
	}
	d->read_only = read_only;
	pthread_mutex_init(&d->mu, NULL);
	pthread_mutex_init(&d->file_mu, NULL);
	*dp = d;
	return 0;
}

static void discard_free(discard *d)
{
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->file_mu);
	free(d->rows);
	free(d->dir);
	free(d);
}

int discard_new(const char *dir, int read_only, discard **dp)
{
	return discard_alloc(dir, read_only, dp);
}

/* Index of the first row with fid >= fid. */
static size_t discard_find(const discard *d, uint32_t fid)
{
	size_t lo = 0, hi = d->nrows;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->rows[mid].fid < fid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void set_why(char *why, size_t whylen, const char *path, uint64_t off, const char *what)
{
	if (why && whylen)
		snprintf(why, whylen, "%s: offset %llu: %s", path, (unsigned long long)off, what);
}

/* Decodes a whole DISCARD file image into d (which is empty). */
static int discard_decode(discard *d, const uint8_t *p, size_t n, const char *path, char *why,
			  size_t whylen)
{
	if (n < DISCARD_HEADER + 8) {
		set_why(why, whylen, path, 0, "file too short");
		return SETT_ECORRUPT;
	}
	if (memcmp(p, DISCARD_MAGIC, 8) != 0) {
		set_why(why, whylen, path, 0, "bad magic");
		return SETT_ECORRUPT;
	}
	if (get_le32(p + 8) != DISCARD_VERSION) {
		set_why(why, whylen, path, 8, "unknown version");
		return SETT_ECORRUPT;
	}
	uint32_t count = get_le32(p + 12);
	if (count > DISCARD_MAX_ROWS || n != DISCARD_HEADER + (size_t)count * DISCARD_ROW + 8) {
		set_why(why, whylen, path, 12, "row count does not match the file size");
		return SETT_ECORRUPT;
	}
	size_t body = n - 8;
	if (sett_hash(p, body) != get_le64(p + body)) {
		set_why(why, whylen, path, body, "checksum mismatch");
		return SETT_ECORRUPT;
	}
	if (count) {
		d->rows = malloc((size_t)count * sizeof *d->rows);
		if (!d->rows)
			return -ENOMEM;
		d->cap = count;
	}
	const uint8_t *r = p + DISCARD_HEADER;
	for (uint32_t i = 0; i < count; i++, r += DISCARD_ROW) {
		uint32_t fid = get_le32(r);
		if (i && fid <= d->rows[i - 1].fid) {
			set_why(why, whylen, path, (uint64_t)(r - p), "rows out of order");
			return SETT_ECORRUPT;
		}
		d->rows[i].fid = fid;
		d->rows[i].bytes = get_le64(r + 4);
		d->nrows++;
	}
	return 0;
}

int discard_open(const char *dir, int read_only, discard **dp, char *why, size_t whylen)
{
	discard *d;
	int r = discard_alloc(dir, read_only, &d);
	if (r)
		return r;
	size_t plen = strlen(dir) + 16;
	char *path = malloc(plen);
	if (!path) {
		discard_free(d);
		return -ENOMEM;
	}
	if (!read_only) {
		/* A rewrite that a crash interrupted: the DISCARD beside it is whole. */
		snprintf(path, plen, "%s/DISCARD.tmp", dir);
		sio_unlink(path);
	}
	snprintf(path, plen, "%s/DISCARD", dir);
	sfile *f;
	r = sfile_open(path, O_RDONLY, &f);
	if (r == -ENOENT) {
		free(path);
		*dp = d;
		return 0;
	}
	if (r)
		goto fail;
	int64_t sz = sfile_size(f);
	if (sz < 0) {
		r = (int)sz;
		sfile_close(f);
		goto fail;
	}
	if ((uint64_t)sz > DISCARD_HEADER + (uint64_t)DISCARD_MAX_ROWS * DISCARD_ROW + 8) {
		sfile_close(f);
		set_why(why, whylen, path, 0, "file too large");
		r = SETT_ECORRUPT;
		goto fail;
	}
	uint8_t *img = malloc(sz ? (size_t)sz : 1);
	if (!img) {
		sfile_close(f);
		r = -ENOMEM;
		goto fail;
	}
	r = sfile_pread_full(f, img, (size_t)sz, 0);
	sfile_close(f);
	if (r == 0)
		r = discard_decode(d, img, (size_t)sz, path, why, whylen);
	free(img);
	if (r)
		goto fail;
	free(path);
	*dp = d;
	return 0;
fail:
	free(path);
	discard_free(d);
	return r;
}

/* Adds bytes to fid's row (set: replaces it). */
static void discard_update(discard *d, uint32_t fid, uint64_t bytes, int set)
{
	pthread_mutex_lock(&d->mu);
	size_t i = discard_find(d, fid);
	if (i < d->nrows && d->rows[i].fid == fid) {
		d->rows[i].bytes = set ? bytes : d->rows[i].bytes + bytes;
	} else {
		if (d->nrows == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 16;
			discard_row *nr = realloc(d->rows, cap * sizeof *nr);
			if (!nr) {
				/* Statistics are advisory: dropping one update is harmless. */
				pthread_mutex_unlock(&d->mu);
				return;
			}
			d->rows = nr;
			d->cap = cap;
		}
		memmove(d->rows + i + 1, d->rows + i, (d->nrows - i) * sizeof *d->rows);
		d->rows[i].fid = fid;
		d->rows[i].bytes = bytes;
		d->nrows++;
	}
	d->dirty++;
	pthread_mutex_unlock(&d->mu);
}

void discard_add(discard *d, uint32_t fid, uint64_t bytes)
{
	if (bytes)
		discard_update(d, fid, bytes, 0);
}

void discard_acc_add(discard_acc *a, uint32_t fid, uint64_t bytes)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->rows[i].fid == fid) {
			a->rows[i].bytes += bytes;
			return;
		}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		void *p = realloc(a->rows, cap * sizeof *a->rows);
		if (!p)
			return; /* advisory statistics */
		a->rows = p;
		a->cap = cap;
	}
	a->rows[a->n].fid = fid;
	a->rows[a->n].bytes = bytes;
	a->n++;
}

void discard_acc_apply(discard *d, const discard_acc *a)
{
	for (size_t i = 0; i < a->n; i++)
		discard_add(d, a->rows[i].fid, a->rows[i].bytes);
}

void discard_acc_free(discard_acc *a)
{
	free(a->rows);
	a->rows = NULL;
	a->n = a->cap = 0;
}

void discard_set(discard *d, uint32_t fid, uint64_t bytes)
{
	discard_update(d, fid, bytes, 1);
}

uint64_t discard_get(discard *d, uint32_t fid)
{
	uint64_t v = 0;
	pthread_mutex_lock(&d->mu);
	size_t i = discard_find(d, fid);
	if (i < d->nrows && d->rows[i].fid == fid)
		v = d->rows[i].bytes;
	pthread_mutex_unlock(&d->mu);
	return v;
}

void discard_remove(discard *d, uint32_t fid)
{
	pthread_mutex_lock(&d->mu);
	size_t i = discard_find(d, fid);
	if (i < d->nrows && d->rows[i].fid == fid) {
		memmove(d->rows + i, d->rows + i + 1, (d->nrows - i - 1) * sizeof *d->rows);
		d->nrows--;
		d->dirty++;
	}
	pthread_mutex_unlock(&d->mu);
}

void discard_retain(discard *d, const uint32_t *fids, size_t n)
{
	pthread_mutex_lock(&d->mu);
	size_t k = 0, j = 0;
	for (size_t i = 0; i < d->nrows; i++) {
		while (j < n && fids[j] < d->rows[i].fid)
			j++;
		if (j < n && fids[j] == d->rows[i].fid)
			d->rows[k++] = d->rows[i];
	}
	if (k != d->nrows) {
		d->nrows = k;
		d->dirty++;
	}
	pthread_mutex_unlock(&d->mu);
}

uint64_t discard_total(discard *d)
{
	uint64_t t = 0;
	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < d->nrows; i++)
		t += d->rows[i].bytes;
	pthread_mutex_unlock(&d->mu);
	return t;
}

int discard_persist(discard *d)
{
	if (d->read_only)
		return 0;
	pthread_mutex_lock(&d->file_mu);
	pthread_mutex_lock(&d->mu);
	uint64_t dirty = d->dirty;
	if (!dirty) {
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_unlock(&d->file_mu);
		return 0;
	}
	size_t n = DISCARD_HEADER + d->nrows * DISCARD_ROW + 8;
	uint8_t *img = malloc(n);
	if (!img) {
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_unlock(&d->file_mu);
		return -ENOMEM;
	}
	memcpy(img, DISCARD_MAGIC, 8);
	put_le32(img + 8, DISCARD_VERSION);
	put_le32(img + 12, (uint32_t)d->nrows);
	uint8_t *r = img + DISCARD_HEADER;
	for (size_t i = 0; i < d->nrows; i++, r += DISCARD_ROW) {
		put_le32(r, d->rows[i].fid);
		put_le64(r + 4, d->rows[i].bytes);
	}
	pthread_mutex_unlock(&d->mu);
	put_le64(img + n - 8, sett_hash(img, n - 8));

	size_t plen = strlen(d->dir) + 20;
	char *tmp = malloc(plen), *path = malloc(plen);
	int rc = -ENOMEM;
	if (!tmp || !path)
		goto out;
	snprintf(tmp, plen, "%s/DISCARD.tmp", d->dir);
	snprintf(path, plen, "%s/DISCARD", d->dir);
	sio_unlink(tmp); /* a leftover of a crash mid-persist */
	sfile *f;
	rc = sfile_open(tmp, O_RDWR | O_CREAT | O_EXCL, &f);
	if (rc)
		goto out;
	rc = sfile_pwrite(f, img, n, 0);
	if (!rc)
		rc = sfile_sync(f);
	int rc2 = sfile_close(f);
	if (!rc)
		rc = rc2;
	if (!rc)
		rc = sio_rename(tmp, path);
	if (!rc)
		rc = sio_sync_dir(d->dir);
	if (rc) {
		sio_unlink(tmp);
	} else {
		pthread_mutex_lock(&d->mu);
		d->dirty -= dirty; /* changes made meanwhile stay pending */
		pthread_mutex_unlock(&d->mu);
	}
out:
	free(tmp);
	free(path);
	free(img);
	pthread_mutex_unlock(&d->file_mu);
	return rc;
}

int discard_close(discard *d)
{
	if (!d)
		return 0;
	int r = discard_persist(d);
	discard_free(d);
	return r;
}
