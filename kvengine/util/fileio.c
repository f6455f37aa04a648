/*
 * fileio.c - the one file I/O layer of sett (see fileio.h).
 *
 * Besides forwarding to pread/pwrite/fsync, it keeps a small registry of
 * every file written through it: its path and the length made durable by
 * the last fsync.  That registry is what lets a test simulate a power cut
 * (truncate every file to its durable length) and count the bytes written
 * (write amplification).  Faults are process-wide on purpose: a test arms
 * them, runs engine code, and checks the engine's reaction.
 *
 * The recorder (tests only) logs every mutating operation for the crash
 * explorer; each operation asks rec_lock() first, which costs one relaxed
 * load while recording is off.
 */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sett.h"

struct sfile {
	int fd;
	char *path;
	void *map; /* sfile_map's mapping, or NULL */
	size_t map_len;
	uint64_t rec_handle; /* the recorder's number for this open, 0: none */
};

/* ---- registry and faults ---- */

typedef struct known_file {
	char *path;
	uint64_t synced;     /* durable length */
	int synced_valid;    /* 0: never synced since open-for-write */
	struct known_file *next;
} known_file;

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static known_file *known;
static long fail_nth;        /* 0: off */
static int fail_nth_err;
static int fail_bytes_armed;
static uint64_t fail_bytes_left;
static int fail_bytes_err;
static uint64_t fail_size_limit; /* 0: off */
static int fail_size_err;
static pthread_cond_t pause_cv = PTHREAD_COND_INITIALIZER;
static long pause_nth;       /* 0: off */
static int paused;           /* an operation waits in fault_check */
static int pause_release;    /* set by sio_fault_resume */
static int pause_err;
static int dead;             /* after a power cut */
static uint64_t bytes_written;
static uint64_t bytes_read;

static known_file *known_find(const char *path)
{
	for (known_file *k = known; k; k = k->next)
		if (strcmp(k->path, path) == 0)
			return k;
	return NULL;
}

static known_file *known_get(const char *path)
{
	known_file *k = known_find(path);
	if (k)
		return k;
	k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->path = strdup(path);
	if (!k->path) {
		free(k);
		return NULL;
	}
	k->next = known;
	known = k;
	return k;
}

static void known_drop(const char *path)
{
	for (known_file **pp = &known; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->path, path) == 0) {
			known_file *k = *pp;
			*pp = k->next;
			free(k->path);
			free(k);
			return;
		}
	}
}

/*
 * Called before every mutating operation: returns an injected error or 0.
 * A write of nbytes passes end, the file offset it would end at.
 */
static int fault_check(size_t nbytes, uint64_t end)
{
	int r = 0;
	pthread_mutex_lock(&fault_mu);
	if (dead) {
		r = -EIO;
	} else if (pause_nth > 0 && --pause_nth == 0) {
		paused = 1;
		pthread_cond_broadcast(&pause_cv);
		while (!pause_release)
			pthread_cond_wait(&pause_cv, &fault_mu);
		paused = pause_release = 0;
		r = -pause_err;
		pthread_cond_broadcast(&pause_cv);
	} else if (fail_size_limit && end > fail_size_limit) {
		r = -fail_size_err;
	} else if (fail_nth > 0 && --fail_nth == 0) {
		r = -fail_nth_err;
	} else if (fail_bytes_armed) {
		if (nbytes > fail_bytes_left) {
			r = -fail_bytes_err;
			fail_bytes_left = 0;
		} else {
			fail_bytes_left -= nbytes;
		}
	}
	pthread_mutex_unlock(&fault_mu);
	return r;
}

void sio_fault_fail_nth(long nth, int err)
{
	pthread_mutex_lock(&fault_mu);
	fail_nth = nth;
	fail_nth_err = err > 0 ? err : -err;
	pthread_mutex_unlock(&fault_mu);
}

void sio_fault_fail_after_bytes(uint64_t bytes, int err)
{
	pthread_mutex_lock(&fault_mu);
	fail_bytes_armed = 1;
	fail_bytes_left = bytes;
	fail_bytes_err = err > 0 ? err : -err;
	pthread_mutex_unlock(&fault_mu);
}

void sio_fault_file_size_limit(uint64_t max_size, int err)
{
	pthread_mutex_lock(&fault_mu);
	fail_size_limit = max_size;
	fail_size_err = err > 0 ? err : -err;
	pthread_mutex_unlock(&fault_mu);
}

void sio_fault_pause_nth(long nth)
{
	pthread_mutex_lock(&fault_mu);
	pause_nth = nth;
	pthread_mutex_unlock(&fault_mu);
}

void sio_fault_wait_paused(void)
{
	pthread_mutex_lock(&fault_mu);
	while (!paused)
		pthread_cond_wait(&pause_cv, &fault_mu);
	pthread_mutex_unlock(&fault_mu);
}

void sio_fault_resume(int err)
{
	pthread_mutex_lock(&fault_mu);
	if (paused) {
		pause_err = err > 0 ? err : -err;
		pause_release = 1;
		pthread_cond_broadcast(&pause_cv);
		while (paused)
			pthread_cond_wait(&pause_cv, &fault_mu);
	}
	pthread_mutex_unlock(&fault_mu);
}

/*
 * With the power cut armed, every operation that changes files holds
 * cut_mu shared from its fault check to its last effect, and the cut holds
 * it exclusively: an fsync that returned success was not undone by a cut
 * running meanwhile, and no write lands after the cut.
 */
static int cut_armed;
static pthread_rwlock_t cut_mu = PTHREAD_RWLOCK_INITIALIZER;

static int cut_enter(void)
{
	if (!__atomic_load_n(&cut_armed, __ATOMIC_RELAXED))
		return 0;
	pthread_rwlock_rdlock(&cut_mu);
	return 1;
}

static void cut_leave(int held)
{
	if (held)
		pthread_rwlock_unlock(&cut_mu);
}

void sio_fault_powercut_arm(void)
{
	__atomic_store_n(&cut_armed, 1, __ATOMIC_RELAXED);
}

void sio_fault_powercut(void)
{
	int held = __atomic_load_n(&cut_armed, __ATOMIC_RELAXED);
	if (held)
		pthread_rwlock_wrlock(&cut_mu);
	pthread_mutex_lock(&fault_mu);
	for (known_file *k = known; k; k = k->next) {
		if (!k->synced_valid) {
			/* Never fsynced: as if the file's data never reached disk. */
			if (truncate(k->path, 0) != 0 && errno == ENOENT)
				continue;
		} else {
			struct stat st;
			if (stat(k->path, &st) == 0 && (uint64_t)st.st_size > k->synced)
				(void)truncate(k->path, (off_t)k->synced);
		}
	}
	dead = 1;
	pthread_mutex_unlock(&fault_mu);
	if (held)
		pthread_rwlock_unlock(&cut_mu);
}

void sio_fault_reset(void)
{
	pthread_mutex_lock(&fault_mu);
	while (known) {
		known_file *k = known;
		known = k->next;
		free(k->path);
		free(k);
	}
	fail_nth = 0;
	fail_bytes_armed = 0;
	fail_size_limit = 0;
	dead = 0;
	pthread_mutex_unlock(&fault_mu);
	sio_fault_resume(0);
	pthread_mutex_lock(&fault_mu);
	pause_nth = 0;
	pthread_mutex_unlock(&fault_mu);
}

uint64_t sio_bytes_written(void)
{
	return __atomic_load_n(&bytes_written, __ATOMIC_RELAXED);
}

uint64_t sio_bytes_read(void)
{
	return __atomic_load_n(&bytes_read, __ATOMIC_RELAXED);
}

/* ---- recorder ---- */

static int recording;
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static sio_rec *rec_log;
static size_t rec_n, rec_cap;
static uint64_t rec_handles;
static int rec_failed; /* out of memory while recording: the log is unusable */

/* Locks the recorder if recording is on; returns whether it did. */
static int rec_lock(void)
{
	if (!__atomic_load_n(&recording, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&rec_mu);
	if (recording)
		return 1;
	pthread_mutex_unlock(&rec_mu);
	return 0;
}

static void rec_unlock(int locked)
{
	if (locked)
		pthread_mutex_unlock(&rec_mu);
}

/* Appends a record with its paths copied (rec_mu held); NULL on failure. */
static sio_rec *rec_add(int kind, const char *path, const char *path2)
{
	if (rec_failed)
		return NULL;
	if (rec_n == rec_cap) {
		size_t cap = rec_cap ? rec_cap * 2 : 256;
		sio_rec *n = realloc(rec_log, cap * sizeof *n);
		if (!n) {
			rec_failed = 1;
			return NULL;
		}
		rec_log = n;
		rec_cap = cap;
	}
	sio_rec *r = &rec_log[rec_n];
	memset(r, 0, sizeof *r);
	r->kind = kind;
	if ((path && !(r->path = strdup(path))) || (path2 && !(r->path2 = strdup(path2)))) {
		free(r->path);
		rec_failed = 1;
		return NULL;
	}
	rec_n++;
	return r;
}

/* Ends a name operation begun under rec_lock: logs it if rc is 0; returns rc. */
static int rec_name_op(int locked, int rc, int kind, const char *path, const char *path2)
{
	if (locked && rc == 0)
		rec_add(kind, path, path2);
	rec_unlock(locked);
	return rc;
}

static void rec_file_op(int kind, const sfile *f, uint64_t off, const void *data, uint64_t len)
{
	sio_rec *r = rec_add(kind, NULL, NULL);
	if (!r)
		return;
	r->handle = f->rec_handle;
	r->off = off;
	r->len = len;
	if (data && len) {
		if (!(r->data = malloc(len))) {
			rec_failed = 1;
			return;
		}
		memcpy(r->data, data, len);
	}
}

void sio_record_free(sio_rec *recs, size_t n)
{
	for (size_t i = 0; recs && i < n; i++) {
		free(recs[i].path);
		free(recs[i].path2);
		free(recs[i].data);
	}
	free(recs);
}

void sio_record_start(void)
{
	pthread_mutex_lock(&rec_mu);
	sio_record_free(rec_log, rec_n);
	rec_log = NULL;
	rec_n = rec_cap = 0;
	rec_failed = 0;
	__atomic_store_n(&recording, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&rec_mu);
}

void sio_record_mark(uint64_t id)
{
	int locked = rec_lock();
	sio_rec *r = locked ? rec_add(SIO_REC_MARK, NULL, NULL) : NULL;
	if (r)
		r->off = id;
	rec_unlock(locked);
}

size_t sio_record_stop(sio_rec **recs)
{
	pthread_mutex_lock(&rec_mu);
	__atomic_store_n(&recording, 0, __ATOMIC_RELAXED);
	size_t n = rec_n;
	*recs = rec_log;
	if (rec_failed) {
		sio_record_free(rec_log, rec_n);
		*recs = NULL;
		n = 0;
	}
	rec_log = NULL;
	rec_n = rec_cap = 0;
	pthread_mutex_unlock(&rec_mu);
	return n;
}

/* ---- files ---- */

static int open_op(const char *path, int flags, sfile **fp)
{
	int writable = (flags & O_ACCMODE) != O_RDONLY;
	if (writable) {
		int r = fault_check(0, 0);
		if (r)
			return r;
	}
	int locked = writable ? rec_lock() : 0;
	int existed = writable ? access(path, F_OK) == 0 : 1;
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		rec_unlock(locked);
		return -e;
	}
	sfile *f = calloc(1, sizeof *f);
	if (!f || !(f->path = strdup(path))) {
		rec_unlock(locked);
		free(f);
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	if (locked) {
		sio_rec *r = rec_add(SIO_REC_OPEN, path, NULL);
		if (r) {
			r->handle = f->rec_handle = ++rec_handles;
			r->created = !existed;
			r->trunc = (flags & O_TRUNC) != 0;
		}
		rec_unlock(locked);
	}
	if (writable) {
		pthread_mutex_lock(&fault_mu);
		known_file *k = known_find(path);
		if (!k && existed) {
			/* An existing file is durable as it is now. */
			struct stat st;
			k = known_get(path);
			if (k && fstat(fd, &st) == 0) {
				k->synced = (uint64_t)st.st_size;
				k->synced_valid = 1;
			}
		} else if (!k) {
			known_get(path);
		}
		pthread_mutex_unlock(&fault_mu);
	}
	*fp = f;
	return 0;
}

int sfile_close(sfile *f)
{
	if (!f)
		return 0;
	sfile_unmap(f);
	int r = close(f->fd) == 0 ? 0 : -errno;
	free(f->path);
	free(f);
	return r;
}

ssize_t sfile_pread(sfile *f, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t k = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		done += (size_t)k;
	}
	__atomic_add_fetch(&bytes_read, done, __ATOMIC_RELAXED);
	return (ssize_t)done;
}

int sfile_pread_full(sfile *f, void *buf, size_t n, uint64_t off)
{
	ssize_t k = sfile_pread(f, buf, n, off);
	if (k < 0)
		return (int)k;
	return (size_t)k == n ? 0 : SETT_ECORRUPT;
}

int sfile_pread2_full(sfile *f, void *a, size_t na, void *b, size_t nb, uint64_t off)
{
	struct iovec iov[2] = { { a, na }, { b, nb } };
	ssize_t k;
	do
		k = preadv(f->fd, iov, 2, (off_t)off);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	__atomic_add_fetch(&bytes_read, (size_t)k, __ATOMIC_RELAXED);
	size_t done = (size_t)k;
	if (done == na + nb)
		return 0;
	/* short (the end of the file, or a signal): the rest piece by piece */
	int r = 0;
	if (done < na) {
		r = sfile_pread_full(f, (char *)a + done, na - done, off + done);
		done = na;
	}
	return r ? r : sfile_pread_full(f, (char *)b + (done - na), na + nb - done, off + done);
}

/*
 * Writes iov[0, cnt) one piece after the other from off, finishing what a
 * short write leaves; records what reached the file, piece by piece
 * (locked).
 */
static int pwritev_all(sfile *f, const struct iovec *iov, int cnt, uint64_t off, int locked)
{
	size_t skip = 0;
	while (cnt > 0) {
		ssize_t k;
		if (skip) /* the rest of a piece a short write cut */
			k = pwrite(f->fd, (const char *)iov->iov_base + skip, iov->iov_len - skip,
				   (off_t)off);
		else
			k = pwritev(f->fd, iov, cnt < IOV_MAX ? cnt : IOV_MAX, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0 && iov->iov_len > skip)
			return -EIO; /* no progress */
		/* what did reach the file is in the log, piece by piece */
		size_t left = (size_t)k;
		while (left && cnt > 0) {
			size_t piece = iov->iov_len - skip, w = left < piece ? left : piece;
			if (locked)
				rec_file_op(SIO_REC_WRITE, f, off, (const char *)iov->iov_base + skip, w);
			off += w;
			left -= w;
			skip += w;
			if (skip == iov->iov_len) {
				iov++;
				cnt--;
				skip = 0;
			}
		}
		while (cnt > 0 && !skip && iov->iov_len == 0) {
			iov++;
			cnt--;
		}
	}
	return 0;
}

static int pwrite_op(sfile *f, const struct iovec *iov, int cnt, uint64_t off)
{
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	int r = fault_check(n, off + n);
	if (r)
		return r;
	int locked = rec_lock();
	r = pwritev_all(f, iov, cnt, off, locked);
	rec_unlock(locked);
	if (r == 0)
		__atomic_add_fetch(&bytes_written, n, __ATOMIC_RELAXED);
	return r;
}

static int sync_op(sfile *f)
{
	int r = fault_check(0, 0);
	if (r)
		return r;
	int locked = rec_lock();
	if (fdatasync(f->fd) != 0) {
		int e = errno;
		rec_unlock(locked);
		return -e;
	}
	if (locked)
		rec_file_op(SIO_REC_SYNC, f, 0, NULL, 0);
	rec_unlock(locked);
	struct stat st;
	if (fstat(f->fd, &st) == 0) {
		pthread_mutex_lock(&fault_mu);
		known_file *k = known_get(f->path);
		if (k) {
			k->synced = (uint64_t)st.st_size;
			k->synced_valid = 1;
		}
		pthread_mutex_unlock(&fault_mu);
	}
	return 0;
}

static int truncate_op(sfile *f, uint64_t size)
{
	int r = fault_check(0, 0);
	if (r)
		return r;
	int locked = rec_lock();
	if (ftruncate(f->fd, (off_t)size) != 0) {
		int e = errno;
		rec_unlock(locked);
		return -e;
	}
	if (locked)
		rec_file_op(SIO_REC_TRUNCATE, f, size, NULL, 0);
	rec_unlock(locked);
	return 0;
}

int64_t sfile_size(sfile *f)
{
	struct stat st;
	if (fstat(f->fd, &st) != 0)
		return -errno;
	return (int64_t)st.st_size;
}

const char *sfile_path(const sfile *f)
{
	return f->path;
}

void sfile_drop_cache(sfile *f, uint64_t off, uint64_t n)
{
	(void)posix_fadvise(f->fd, (off_t)off, (off_t)n, POSIX_FADV_DONTNEED);
}

void sfile_start_writeback(sfile *f, uint64_t off, uint64_t n)
{
	(void)sync_file_range(f->fd, (off_t)off, (off_t)n, SYNC_FILE_RANGE_WRITE);
}

int sfile_map(sfile *f, uint64_t len, const uint8_t **p)
{
	if (f->map)
		return -EBUSY;
	struct stat st;
	if (fstat(f->fd, &st) != 0)
		return -errno;
	if (len == 0 || len > (uint64_t)st.st_size || len > SIZE_MAX)
		return -EINVAL;
	void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, f->fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	f->map = m;
	f->map_len = (size_t)len;
	*p = m;
	return 0;
}

void sfile_unmap(sfile *f)
{
	if (f->map)
		munmap(f->map, f->map_len);
	f->map = NULL;
	f->map_len = 0;
}

static int unlink_op(const char *path)
{
	int r = fault_check(0, 0);
	if (r)
		return r;
	int locked = rec_lock();
	r = rec_name_op(locked, unlink(path) == 0 ? 0 : -errno, SIO_REC_UNLINK, path, NULL);
	if (r)
		return r;
	pthread_mutex_lock(&fault_mu);
	known_drop(path);
	pthread_mutex_unlock(&fault_mu);
	return 0;
}

static int rename_op(const char *from, const char *to)
{
	int r = fault_check(0, 0);
	if (r)
		return r;
	int locked = rec_lock();
	r = rec_name_op(locked, rename(from, to) == 0 ? 0 : -errno, SIO_REC_RENAME, from, to);
	if (r)
		return r;
	pthread_mutex_lock(&fault_mu);
	known_drop(to);
	known_file *k = known_find(from);
	if (k) {
		char *p = strdup(to);
		if (p) {
			free(k->path);
			k->path = p;
		}
	}
	pthread_mutex_unlock(&fault_mu);
	return 0;
}

static int sync_dir_op(const char *dir)
{
	int r = fault_check(0, 0);
	if (r)
		return r;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int locked = rec_lock();
	r = rec_name_op(locked, fsync(fd) == 0 ? 0 : -errno, SIO_REC_SYNC_DIR, dir, NULL);
	close(fd);
	return r;
}

/* A store's directories (the store itself, quarantine/) are the owner's
 * alone: 0700, as settfs makes a missing store (doc/settfs.md). */
static int mkdir_op(const char *dir)
{
	int r = fault_check(0, 0);
	if (r)
		return r;
	int locked = rec_lock();
	r = rec_name_op(locked, mkdir(dir, 0700) == 0 ? 0 : -errno, SIO_REC_MKDIR, dir, NULL);
	return r == -EEXIST ? 0 : r;
}

/*
 * The operations that change files: each runs whole under cut_enter, so
 * that an armed power cut falls between operations, never inside one.
 */

int sfile_open(const char *path, int flags, sfile **fp)
{
	int h = cut_enter();
	int r = open_op(path, flags, fp);
	cut_leave(h);
	return r;
}

int sfile_pwrite(sfile *f, const void *buf, size_t n, uint64_t off)
{
	struct iovec iov = { (void *)buf, n };
	return sfile_pwritev(f, &iov, 1, off);
}

int sfile_pwritev(sfile *f, const struct iovec *iov, int cnt, uint64_t off)
{
	int h = cut_enter();
	int r = pwrite_op(f, iov, cnt, off);
	cut_leave(h);
	return r;
}

int sfile_sync(sfile *f)
{
	int h = cut_enter();
	int r = sync_op(f);
	cut_leave(h);
	return r;
}

int sfile_truncate(sfile *f, uint64_t size)
{
	int h = cut_enter();
	int r = truncate_op(f, size);
	cut_leave(h);
	return r;
}

int sio_unlink(const char *path)
{
	int h = cut_enter();
	int r = unlink_op(path);
	cut_leave(h);
	return r;
}

int sio_rename(const char *from, const char *to)
{
	int h = cut_enter();
	int r = rename_op(from, to);
	cut_leave(h);
	return r;
}

int sio_sync_dir(const char *dir)
{
	int h = cut_enter();
	int r = sync_dir_op(dir);
	cut_leave(h);
	return r;
}

int sio_mkdir(const char *dir)
{
	int h = cut_enter();
	int r = mkdir_op(dir);
	cut_leave(h);
	return r;
}
