/*
 * vlog.c - the value log (vlog.h; doc/FORMAT.md, "Value log").
 *
 * Files are append-only: only the head (highest fid) is written, the others
 * are immutable until GC removes them.  That makes concurrent reads cheap:
 * a reader takes a reference on the file under a short mutex, notes the
 * file's published size, and then preads without any lock.  The writer
 * publishes a new size only after its pwrite has completed, so a reader
 * never sees bytes that are still being written.  The reference keeps the
 * file open (and, if GC removed it meanwhile, not yet unlinked) until the
 * last reader lets go.
 *
 * Each append call encodes all its entries into one buffer and writes it
 * with one pwrite per file touched, so a crash tears at most the last
 * write; open cuts such a torn tail off the head file.
 */
#include "vlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cipher.h"
#include "fileio.h"
#include "ikey.h"
#include "sett.h"

static const char vlog_magic[8] = { 'S', 'E', 'T', 'T', 'V', 'L', 'O', 'G' };
static const char vlog_enc_magic[8] = { 'S', 'E', 'T', 'T', 'V', 'L', 'G', 'E' };

/*
 * An encrypted file (doc/FORMAT.md, "Encrypted value log"): the log header
 * with magic "SETTVLGE", the key head (key id | salt | key check, see
 * cipher.h) and a u64 XXH3-64 of the key head; then one sealed record per
 * entry, u32 n | ciphertext of the n-byte entry | tag, whose nonce is the
 * salt XORed with the record's offset.  A pointer's len stays the entry's
 * length: the record is CIPHER_REC_OVERHEAD bytes longer.  Offsets of one
 * file are sealed once: the file is written only by the vlog that created
 * it, at growing offsets, and never again after a failed write or once
 * the log is reopened (the next append starts a new file).
 */
#define VLOG_ENC_HEADER (LOG_HEADER_SIZE + CIPHER_HEAD_SIZE + 8)

/* Largest entry a value pointer may describe. */
#define ENTRY_MAX_LEN \
	((uint64_t)ENTRY_HEADER_MAX + SETT_MAX_KEY_SIZE + 8 + SETT_MAX_VALUE_SIZE + ENTRY_CHECKSUM)
/* Reads of a scan go this many bytes at a time (more for a larger entry). */
#define SCAN_WINDOW (1u << 20)
/* The append buffer is released after a call that grew it beyond this. */
#define WBUF_KEEP (8u << 20)

/*
 * An append's bytes: pieces of wbuf (ext NULL: wbuf[off, off + len)) and,
 * for plaintext values of at least BORROW_MIN bytes, the caller's value
 * itself, written from where it is (no copy; it stays put until the
 * append returns).
 */
struct wseg {
	const uint8_t *ext;
	size_t off, len;
};
#define BORROW_MIN 4096

typedef struct vfile {
	uint32_t fid;
	sfile *f;
	uint64_t size;    /* published end of valid data (v->mu) */
	uint32_t entries; /* entries known in the file (counted for the head) */
	int refs;         /* the table's own reference + readers (v->mu) */
	int removed;      /* unlink when the last reference goes */
	int sealed;       /* corrupt, or encrypted and not written by this vlog: never append */
	uint64_t start;   /* where the entries start: the header's size */
	uint64_t wb_from; /* write-back not yet started from here (the head; wmu) */
	crypt_key *key;   /* encrypted file: its data key, else NULL */
	uint8_t salt[CIPHER_SALT_SIZE];
} vfile;

/* Appended bytes between two starts of the system's write-back (flush_locked). */
#define VLOG_WRITEBACK_STEP (1u << 20)

/* The on-disk length of the record of an entry of len bytes in vf. */
static inline uint64_t rec_len(const vfile *vf, uint64_t len)
{
	return vf->key ? len + CIPHER_REC_OVERHEAD : len;
}

struct vlog {
	char *dir;
	vlog_options o;
	pthread_mutex_t wmu; /* serialises append, sync, rotate, close */
	pthread_mutex_t mu;  /* the file table, sizes, references */
	vfile **files;       /* ascending fid */
	int nfiles, capfiles;
	vfile *head;         /* NULL only for an empty read-only value log */
	buf wbuf;            /* append encoding buffer (wmu) */
	struct wseg *segs;   /* what an append writes, in order (wmu) */
	size_t nsegs, capsegs;
	struct iovec *iov;   /* capsegs of them: segs as written (wmu) */
	uint64_t pend;       /* bytes in segs */
	int dirty;           /* head has unsynced bytes (wmu) */
	int broken;          /* a failed write could not be undone, or an fsync failed (wmu) */
	uint64_t *verified;  /* VERIFIED_SLOTS entries, see entry_verified() */
};

/*
 * Entries whose checksum was verified, remembered so that reading one
 * value again (settfs reads a 64 KiB chunk for every 4 KiB page the kernel
 * asks for) does not hash it again.  A direct-mapped table of
 * (fid << 32 | offset) words: a value-log entry never changes in place and
 * file ids are never reused, so a match names the same bytes.  Slots are
 * read and written atomically; a lost update only costs a re-check.
 * Structure checks (header, lengths, key) still run on every read.
 */
#define VERIFIED_SLOTS 65536

static uint64_t *verified_slot(vlog *v, const vptr *p)
{
	uint64_t id = (uint64_t)p->fid << 32 | p->offset;
	return &v->verified[(id * 0x9E3779B97F4A7C15ull) >> 48];
}

static int entry_verified(vlog *v, const vptr *p)
{
	uint64_t id = (uint64_t)p->fid << 32 | p->offset;
	return v->verified && id && __atomic_load_n(verified_slot(v, p), __ATOMIC_RELAXED) == id;
}

static void entry_mark_verified(vlog *v, const vptr *p)
{
	if (v->verified)
		__atomic_store_n(verified_slot(v, p), (uint64_t)p->fid << 32 | p->offset,
				 __ATOMIC_RELAXED);
}

__attribute__((format(printf, 3, 4)))
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
	if (!why || !whylen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void file_path(const vlog *v, uint32_t fid, char *out, size_t n)
{
	snprintf(out, n, "%s/%06u.vlog", v->dir, fid);
}

/* ---- the file table ---- */

static int table_find(const vlog *v, uint32_t fid)
{
	int lo = 0, hi = v->nfiles;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (v->files[mid]->fid < fid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->nfiles && v->files[lo]->fid == fid ? lo : -1;
}

/* Appends vf (its fid above every other) to the table.  REQUIRES: mu. */
static int table_push(vlog *v, vfile *vf)
{
	if (v->nfiles == v->capfiles) {
		int cap = v->capfiles ? 2 * v->capfiles : 16;
		vfile **a = realloc(v->files, (size_t)cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		v->files = a;
		v->capfiles = cap;
	}
	v->files[v->nfiles++] = vf;
	return 0;
}

/* Closes the file, and unlinks it if it was removed.  No lock held. */
static int vfile_destroy(vfile *vf)
{
	int r = 0;
	char *path = vf->removed ? strdup(sfile_path(vf->f)) : NULL;
	sfile_close(vf->f);
	if (vf->removed)
		r = path ? sio_unlink(path) : -ENOMEM;
	free(path);
	free(vf);
	return r;
}

/* A referenced file and its published size, or NULL. */
static vfile *vfile_get(vlog *v, uint32_t fid, uint64_t *size)
{
	vfile *vf = NULL;
	pthread_mutex_lock(&v->mu);
	int i = table_find(v, fid);
	if (i >= 0) {
		vf = v->files[i];
		vf->refs++;
		*size = vf->size;
	}
	pthread_mutex_unlock(&v->mu);
	return vf;
}

static void vfile_put(vlog *v, vfile *vf)
{
	pthread_mutex_lock(&v->mu);
	int last = --vf->refs == 0;
	pthread_mutex_unlock(&v->mu);
	if (last)
		vfile_destroy(vf);
}

/* ---- records: an entry, or in an encrypted file its sealed record ---- */

/*
 * The length of the record at p (avail bytes there): 1 with *total, 0 when
 * more bytes are needed to tell, SETT_ECORRUPT for an impossible header.
 */
static int rec_header(const vfile *vf, const uint8_t *p, size_t avail, size_t *total)
{
	if (!vf->key) {
		entry e;
		size_t hlen;
		return entry_decode_header(p, avail, &e, &hlen, total);
	}
	if (avail < CIPHER_REC_HEAD)
		return 0;
	uint32_t n = get_le32(p);
	if (n < ENTRY_MIN_LEN || n > ENTRY_MAX_LEN)
		return SETT_ECORRUPT;
	*total = (size_t)n + CIPHER_REC_OVERHEAD;
	return 1;
}

/*
 * Decodes the whole record p[0, total) found at offset `at` into e: 1, 0
 * for a bad record, or an error.  An encrypted record is opened into pt,
 * where e's key and value then point.
 */
static int rec_decode(const vfile *vf, const uint8_t *p, size_t total, uint64_t at, buf *pt,
		      entry *e)
{
	if (!vf->key)
		return entry_decode(p, total, e) > 0;
	size_t n = total - CIPHER_REC_OVERHEAD;
	pt->n = 0;
	int r = buf_reserve(pt, n);
	if (!r)
		r = cipher_rec_open(vf->key, vf->salt, at, p, total, pt->p);
	if (r)
		return r == SETT_ECORRUPT ? 0 : r;
	return entry_decode(pt->p, n, e) == (long)n;
}

/* ---- scanning ---- */

/*
 * Reads the entries of vf in [LOG_HEADER_SIZE, end), calling fn (if set) for
 * each.  *pos is left at the end of the last good entry and *count is the
 * number of good entries.  Returns 0 at a clean end, SETT_ECORRUPT at a bad
 * or incomplete entry (at *pos), another error from I/O or fn.
 */
static int scan_file(vfile *vf, uint64_t end, vlog_iter_fn fn, void *arg, uint64_t *pos,
		     uint32_t *count)
{
	buf b = { 0 }, pt = { 0 };
	uint64_t bstart = vf->start, at = vf->start;
	size_t blen = 0;
	uint32_t cnt = 0;
	int r = 0;

	while (at < end) {
		size_t avail = (size_t)(bstart + blen - at);
		/* nothing buffered yet: b.p is NULL, and NULL + 0 is undefined */
		const uint8_t *p = avail ? b.p + (at - bstart) : NULL;
		entry e;
		size_t total;
		int h = avail ? rec_header(vf, p, avail, &total) : 0;
		if (h == SETT_ECORRUPT || (h == 1 && total > end - at) ||
		    (h == 1 && at + total > UINT32_MAX)) {
			r = SETT_ECORRUPT;
			break;
		}
		if (h == 0 || total > avail) {
			uint64_t want = h == 1 ? total : ENTRY_HEADER_MAX;
			if (want < SCAN_WINDOW)
				want = SCAN_WINDOW;
			if (want > end - at)
				want = end - at;
			if (want <= avail) { /* the header runs past the end */
				r = SETT_ECORRUPT;
				break;
			}
			b.n = 0;
			if ((r = buf_reserve(&b, (size_t)want)) != 0 ||
			    (r = sfile_pread_full(vf->f, b.p, (size_t)want, at)) != 0)
				break;
			bstart = at;
			blen = (size_t)want;
			continue;
		}
		if ((r = rec_decode(vf, p, total, at, &pt, &e)) <= 0) {
			r = r ? r : SETT_ECORRUPT;
			break;
		}
		r = 0;
		if (fn) {
			vptr vp = { vf->fid, (uint32_t)(total - rec_len(vf, 0)), (uint32_t)at };
			if ((r = fn(arg, &e, &vp)) != 0)
				break;
		}
		at += total;
		cnt++;
	}
	buf_free(&b);
	buf_free(&pt);
	*pos = at;
	if (count)
		*count = cnt;
	return r;
}

/*
 * Whether a valid entry starts anywhere in (from, end) of f (*found 1, and
 * where the first does: *next): that tells mid-file corruption (something
 * valid follows) from a torn tail, and where a scrub goes on.  *found is 2
 * when *budget (log_search_budget, entry.h; what is left is left there)
 * was spent first: one may follow.
 */
static int next_valid_entry(const vfile *vf, uint64_t from, uint64_t end, uint64_t *budget,
			    int *found, uint64_t *next)
{
	sfile *f = vf->f;
	buf win = { 0 }, one = { 0 }, pt = { 0 };
	uint64_t wstart = 0;
	size_t wlen = 0;
	int r = 0;
	*found = 0;
	for (uint64_t c = from + 1; c + rec_len(vf, ENTRY_MIN_LEN) <= end; c++) {
		if (c + ENTRY_HEADER_MAX > wstart + wlen && wstart + wlen < end) {
			size_t want = end - c < SCAN_WINDOW ? (size_t)(end - c) : SCAN_WINDOW;
			win.n = 0;
			if ((r = buf_reserve(&win, want)) != 0 ||
			    (r = sfile_pread_full(f, win.p, want, c)) != 0)
				break;
			wstart = c;
			wlen = want;
		}
		const uint8_t *p = win.p + (c - wstart);
		size_t avail = (size_t)(wstart + wlen - c);
		entry e;
		size_t total;
		if (rec_header(vf, p, avail, &total) != 1 || total > end - c)
			continue;
		if (total > *budget) {
			*found = 2;
			break;
		}
		*budget -= total;
		if (total > avail) {
			one.n = 0;
			if ((r = buf_reserve(&one, total)) != 0 ||
			    (r = sfile_pread_full(f, one.p, total, c)) != 0)
				break;
			p = one.p;
		}
		if ((r = rec_decode(vf, p, total, c, &pt, &e)) != 0) {
			*found = r > 0;
			*next = c;
			r = r < 0 ? r : 0;
			break;
		}
	}
	buf_free(&win);
	buf_free(&one);
	buf_free(&pt);
	return r;
}

/*
 * Whether the bad stretch [from, end) of a head file looks like an
 * interrupted write rather than damage to data that was once complete: its
 * first entry is cut short by the end of the file or has an impossible
 * header (garbage), or it contains an aligned all-zero sector (blocks the
 * file system had allocated but not yet written).  A complete entry with a
 * bad checksum and none of these signs is treated as corruption.
 */
static int looks_torn(const vfile *vf, uint64_t from, uint64_t end, int *torn)
{
	sfile *f = vf->f;
	uint8_t h[ENTRY_HEADER_MAX];
	size_t n = end - from < sizeof h ? (size_t)(end - from) : sizeof h;
	size_t total;
	int r = sfile_pread_full(f, h, n, from);
	if (r)
		return r;
	if (rec_header(vf, h, n, &total) != 1 || total > end - from) {
		*torn = 1;
		return 0;
	}
	*torn = 0;
	buf win = { 0 };
	uint64_t at = (from + 511) & ~(uint64_t)511;
	while (at + 512 <= end && !*torn) {
		size_t want = end - at < SCAN_WINDOW ? (size_t)(end - at) : SCAN_WINDOW;
		want &= ~(size_t)511;
		win.n = 0;
		if ((r = buf_reserve(&win, want)) != 0 || (r = sfile_pread_full(f, win.p, want, at)))
			break;
		for (size_t s = 0; s < want && !*torn; s += 512) {
			size_t z = 0;
			while (z < 512 && win.p[s + z] == 0)
				z++;
			*torn = z == 512;
		}
		at += want;
	}
	buf_free(&win);
	return r;
}

/* ---- open and close ---- */

/*
 * Writes a new header for vf, in the format v writes (with the current
 * key and a fresh salt when encrypting), and fsyncs it; vf is then an
 * empty file of that format.
 */
static int write_new_header(vlog *v, vfile *vf, uint32_t fid)
{
	uint8_t h[VLOG_ENC_HEADER];
	const sett_cipher *c = &v->o.cipher;
	int enc = cipher_on(c);
	log_header_encode(h, enc ? vlog_enc_magic : vlog_magic, fid);
	int r = enc ? crypt_random(vf->salt, sizeof vf->salt) : 0;
	if (!r && enc)
		r = cipher_head_put(c, h, LOG_HEADER_SIZE, vf->salt);
	if (r)
		return r;
	if (enc)
		put_le64(h + LOG_HEADER_SIZE + CIPHER_HEAD_SIZE,
			 sett_hash(h + LOG_HEADER_SIZE, CIPHER_HEAD_SIZE));
	vf->key = enc ? c->key : NULL;
	vf->start = enc ? VLOG_ENC_HEADER : LOG_HEADER_SIZE;
	vf->size = vf->start;
	vf->entries = 0;
	r = sfile_pwrite(vf->f, h, (size_t)vf->start, 0);
	return r ? r : sfile_sync(vf->f);
}

/* A head with no entries started afresh: truncated, with a new header. */
static int restart_file(vlog *v, vfile *vf)
{
	int r = sfile_truncate(vf->f, 0);
	return r ? r : write_new_header(v, vf, vf->fid);
}

/*
 * Reads the header of vf (size bytes long): sets vf->start, and for an
 * encrypted file its key and salt.  SETT_EFORMAT, SETT_ECORRUPT (also for
 * a file id other than fid), or SETT_EKEY, with `why`.
 */
static int read_header(vlog *v, vfile *vf, const char *path, uint64_t size, char *why,
		       size_t whylen)
{
	uint8_t h[VLOG_ENC_HEADER];
	uint32_t hfid = 0;
	vf->start = LOG_HEADER_SIZE;
	int r = sfile_pread_full(vf->f, h, LOG_HEADER_SIZE, 0);
	if (!r)
		r = log_header_decode(h, LOG_HEADER_SIZE, vlog_magic, &hfid);
	/* an encrypted file's header is judged as its own (a damaged one is corrupt) */
	int enc = r == SETT_EFORMAT && memcmp(h, vlog_enc_magic, 8) == 0;
	if (enc)
		r = log_header_decode(h, LOG_HEADER_SIZE, vlog_enc_magic, &hfid);
	if (enc && !r) {
		uint8_t *x = h + LOG_HEADER_SIZE;
		vf->start = VLOG_ENC_HEADER;
		r = size < VLOG_ENC_HEADER ? SETT_ECORRUPT
					   : sfile_pread_full(vf->f, x, VLOG_ENC_HEADER - LOG_HEADER_SIZE,
							      LOG_HEADER_SIZE);
		if (!r && get_le64(x + CIPHER_HEAD_SIZE) != sett_hash(x, CIPHER_HEAD_SIZE))
			r = SETT_ECORRUPT;
		uint64_t id;
		if (!r && hfid == vf->fid)
			return cipher_head_get(&v->o.keys, h, LOG_HEADER_SIZE, path, &vf->key, &id,
					       vf->salt, why, whylen);
	}
	if (!r && hfid != vf->fid)
		r = SETT_ECORRUPT;
	if (r)
		set_why(why, whylen, "%s: bad file header at offset 0", path);
	else if (!enc)
		r = cipher_plain_check(&v->o.keys, path, why, whylen);
	return r;
}

/* Creates file fid with its header, durably (file and directory entry). */
static int create_file(vlog *v, uint32_t fid, vfile **out)
{
	char path[4096];
	file_path(v, fid, path, sizeof path);
	vfile *vf = calloc(1, sizeof *vf);
	if (!vf)
		return -ENOMEM;
	int r = sfile_open(path, O_RDWR | O_CREAT | O_EXCL, &vf->f);
	if (r) {
		free(vf);
		return r;
	}
	if ((r = write_new_header(v, vf, fid)) != 0 || (r = sio_sync_dir(v->dir)) != 0) {
		sfile_close(vf->f);
		sio_unlink(path);
		free(vf);
		return r;
	}
	vf->fid = fid;
	vf->refs = 1;
	*out = vf;
	return 0;
}

/* The fid of a name "NNNNNN.vlog" (exactly as file_path writes it), or 0. */
static uint32_t parse_name(const char *name)
{
	size_t n = strlen(name);
	if (n < 11 || n > 15 || strcmp(name + n - 5, ".vlog") != 0)
		return 0;
	for (size_t i = 0; i < n - 5; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	unsigned long fid = strtoul(name, NULL, 10);
	char again[32];
	if (fid == 0 || fid > UINT32_MAX)
		return 0;
	snprintf(again, sizeof again, "%06lu.vlog", fid);
	return strcmp(again, name) == 0 ? (uint32_t)fid : 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int list_dir(const char *dir, uint32_t **fids, int *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	uint32_t *a = NULL;
	int cnt = 0, cap = 0, r = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint32_t fid = parse_name(de->d_name);
		if (!fid)
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			uint32_t *na = realloc(a, (size_t)cap * sizeof *na);
			if (!na) {
				r = -ENOMEM;
				break;
			}
			a = na;
		}
		a[cnt++] = fid;
	}
	closedir(d);
	if (r) {
		free(a);
		return r;
	}
	if (cnt)
		qsort(a, (size_t)cnt, sizeof *a, cmp_u32);
	*fids = a;
	*n = cnt;
	return 0;
}

/*
 * Opens file fid; the last one (is_head) is scanned to its valid end and a
 * torn tail is cut off unless read-only.
 */
static int open_file(vlog *v, uint32_t fid, int is_head, vfile **out, char *why,
		     size_t whylen)
{
	char path[4096];
	file_path(v, fid, path, sizeof path);
	int writable = is_head && !v->o.read_only;
	vfile *vf = calloc(1, sizeof *vf);
	if (!vf)
		return -ENOMEM;
	vf->fid = fid;
	vf->refs = 1;
	int r = sfile_open(path, writable ? O_RDWR : O_RDONLY, &vf->f);
	if (r) {
		set_why(why, whylen, "%s: cannot open", path);
		free(vf);
		return r;
	}
	int64_t size = sfile_size(vf->f);
	if (size < 0) {
		r = (int)size;
		goto fail;
	}
	vf->size = (uint64_t)size;
	vf->start = LOG_HEADER_SIZE;
	r = is_head && size < LOG_HEADER_SIZE ? 0 : read_header(v, vf, path, vf->size, why, whylen);
	if (is_head && (size < LOG_HEADER_SIZE ||
			(r == SETT_ECORRUPT && vf->size < vf->start))) {
		/* A crash while the file was being created: nothing is in it. */
		if (why && whylen)
			why[0] = 0;
		r = writable ? restart_file(v, vf) : 0;
		if (r)
			goto fail;
		*out = vf;
		return 0;
	}
	if (r)
		goto fail;
	if (!is_head) {
		*out = vf;
		return 0;
	}
	uint64_t end;
	r = scan_file(vf, vf->size, NULL, NULL, &end, &vf->entries);
	if (r == SETT_ECORRUPT) {
		int found, torn = 0;
		uint64_t next, budget = log_search_budget(vf->size - end);
		if ((r = next_valid_entry(vf, end, vf->size, &budget, &found, &next)) != 0)
			goto fail;
		if (!found && (r = looks_torn(vf, end, vf->size, &torn)) != 0)
			goto fail;
		if (!torn) {
			/*
			 * Damage, not a torn write.  Keep every byte (the other values
			 * of the file stay readable, reads of the bad one fail naming
			 * file and offset, verify reports it) and append elsewhere.
			 */
			vf->sealed = 1;
			*out = vf;
			return 0;
		}
		if (writable && ((r = sfile_truncate(vf->f, end)) != 0 ||
				 (r = sfile_sync(vf->f)) != 0))
			goto fail;
		vf->size = end;
	} else if (r) {
		goto fail;
	}
	/*
	 * Appends go on in a plaintext head when the log writes plaintext.  An
	 * encrypted one's last offsets may have sealed a write that did not
	 * survive: with no entry left it starts afresh (new salt, the current
	 * key), else it takes no more; likewise a head of the other format.
	 */
	if (writable && (vf->key || cipher_on(&v->o.cipher))) {
		if (vf->size == vf->start)
			r = restart_file(v, vf);
		else
			vf->sealed = 1;
		if (r)
			goto fail;
	}
	*out = vf;
	return 0;
fail:
	sfile_close(vf->f);
	free(vf);
	return r;
}

int vlog_open(const char *dir, const vlog_options *o, vlog **vp, char *why, size_t whylen)
{
	vlog *v = calloc(1, sizeof *v);
	uint32_t *fids = NULL;
	int nfids = 0, r;
	if (!v || !(v->dir = strdup(dir))) {
		free(v);
		return -ENOMEM;
	}
	/* Without it every read is verified: no failure here. */
	v->verified = calloc(VERIFIED_SLOTS, sizeof *v->verified);
	v->o = *o;
	pthread_mutex_init(&v->wmu, NULL);
	pthread_mutex_init(&v->mu, NULL);

	if ((r = list_dir(dir, &fids, &nfids)) != 0) {
		set_why(why, whylen, "%s: cannot list the value log", dir);
		goto fail;
	}
	for (int i = 0; i < nfids; i++) {
		vfile *vf;
		if ((r = open_file(v, fids[i], i == nfids - 1, &vf, why, whylen)) != 0)
			goto fail;
		if ((r = table_push(v, vf)) != 0) {
			vfile_destroy(vf);
			goto fail;
		}
	}
	if (nfids == 0 && !o->read_only) {
		vfile *vf;
		if ((r = create_file(v, 1, &vf)) != 0) {
			set_why(why, whylen, "%s/%06u.vlog: cannot create", dir, 1u);
			goto fail;
		}
		if ((r = table_push(v, vf)) != 0) {
			vfile_destroy(vf);
			goto fail;
		}
	}
	v->head = v->nfiles ? v->files[v->nfiles - 1] : NULL;
	free(fids);
	*vp = v;
	return 0;
fail:
	free(fids);
	vlog_close(v);
	return r;
}

int vlog_close(vlog *v)
{
	if (!v)
		return 0;
	int r = 0;
	pthread_mutex_lock(&v->wmu);
	if (v->head && v->dirty && !v->broken)
		r = sfile_sync(v->head->f);
	pthread_mutex_unlock(&v->wmu);
	for (int i = 0; i < v->nfiles; i++)
		vfile_put(v, v->files[i]);
	free(v->files);
	buf_free(&v->wbuf);
	free(v->segs);
	free(v->iov);
	pthread_mutex_destroy(&v->wmu);
	pthread_mutex_destroy(&v->mu);
	free(v->verified);
	free(v->dir);
	free(v);
	return r;
}

/* ---- writing ---- */

/* Adds a piece to the append (wbuf's bytes merge with the piece before). */
static int seg_add(vlog *v, const uint8_t *ext, size_t off, size_t len)
{
	struct wseg *l = v->nsegs ? &v->segs[v->nsegs - 1] : NULL;
	v->pend += len;
	if (!ext && l && !l->ext && l->off + l->len == off) {
		l->len += len;
		return 0;
	}
	if (v->nsegs == v->capsegs) {
		size_t cap = v->capsegs ? 2 * v->capsegs : 16;
		struct wseg *ns = realloc(v->segs, cap * sizeof *ns);
		if (ns)
			v->segs = ns;
		struct iovec *ni = ns ? realloc(v->iov, cap * sizeof *ni) : NULL;
		if (!ni)
			return -ENOMEM;
		v->iov = ni;
		v->capsegs = cap;
	}
	v->segs[v->nsegs++] = (struct wseg){ ext, off, len };
	return 0;
}

static void segs_clear(vlog *v)
{
	v->wbuf.n = 0;
	v->nsegs = 0;
	v->pend = 0;
}

/* Writes the pieces of the append at the head's end (one write). */
static int write_segs(vlog *v, vfile *hd)
{
	for (size_t i = 0; i < v->nsegs; i++) {
		const struct wseg *g = &v->segs[i];
		v->iov[i].iov_base = (void *)(g->ext ? g->ext : v->wbuf.p + g->off);
		v->iov[i].iov_len = g->len;
	}
	return sfile_pwritev(hd->f, v->iov, (int)v->nsegs, hd->size);
}

/* Writes the pieces (cnt entries) at the head's end.  REQUIRES: wmu. */
static int flush_locked(vlog *v, uint32_t cnt)
{
	vfile *hd = v->head;
	if (!v->pend)
		return 0;
	uint64_t n = v->pend;
	int r = write_segs(v, hd);
	if (r) {
		/* No part of a failed write may stay in front of later appends. */
		if (sfile_truncate(hd->f, hd->size) != 0)
			v->broken = r;
		/* Its offsets were sealed once: a retry goes to a new file. */
		if (hd->key)
			hd->sealed = 1;
		segs_clear(v);
		return r;
	}
	pthread_mutex_lock(&v->mu);
	hd->size += n;
	hd->entries += cnt;
	pthread_mutex_unlock(&v->mu);
	segs_clear(v);
	v->dirty = 1;
	/*
	 * Have the system write what was appended as it comes, so that the
	 * next fsync does not find the whole of a large write still to do
	 * (and the disk is busy while the writer goes on).  Durability still
	 * comes from the fsync alone.
	 */
	if (hd->wb_from < hd->start)
		hd->wb_from = hd->start;
	if (hd->size - hd->wb_from >= VLOG_WRITEBACK_STEP) {
		sfile_start_writeback(hd->f, hd->wb_from, hd->size - hd->wb_from);
		hd->wb_from = hd->size;
	}
	return 0;
}

/* Finishes the head (fsync) and starts file head+1.  REQUIRES: wmu. */
static int rotate_locked(vlog *v)
{
	vfile *vf;
	if (v->head->fid == UINT32_MAX)
		return -EOVERFLOW;
	int r = sfile_sync(v->head->f);
	if (r) {
		v->broken = r; /* what reached the disk is unknown */
		return r;
	}
	v->dirty = 0;
	if ((r = create_file(v, v->head->fid + 1, &vf)) != 0)
		return r;
	pthread_mutex_lock(&v->mu);
	r = table_push(v, vf);
	if (!r)
		v->head = vf;
	pthread_mutex_unlock(&v->mu);
	if (r)
		vfile_destroy(vf);
	return r;
}

static int writable_locked(const vlog *v)
{
	if (!v->head || v->o.read_only)
		return -EROFS;
	return v->broken;
}

int vlog_append(vlog *v, const entry *e, int n, vptr *out)
{
	uint64_t limit = v->o.file_size && v->o.file_size < UINT32_MAX ? v->o.file_size
									: UINT32_MAX;
	uint32_t max_entries = v->o.max_entries ? v->o.max_entries : UINT32_MAX;
	uint32_t cnt = 0;
	int r;

	pthread_mutex_lock(&v->wmu);
	if ((r = writable_locked(v)) != 0)
		goto out;
	if (v->head->sealed && (r = rotate_locked(v)) != 0)
		goto out;
	segs_clear(v);
	for (int i = 0; i < n; i++) {
		if (e[i].key.n < IKEY_SUFFIX || e[i].key.n > SETT_MAX_KEY_SIZE + IKEY_SUFFIX ||
		    e[i].value.n > SETT_MAX_VALUE_SIZE) {
			r = SETT_ETOOBIG;
			goto out;
		}
		uint64_t len = entry_encoded_len(&e[i]);
		uint64_t at = v->head->size + v->pend;
		if (at > v->head->start &&
		    (at + rec_len(v->head, len) > limit || v->head->entries + cnt >= max_entries)) {
			if ((r = flush_locked(v, cnt)) != 0 || (r = rotate_locked(v)) != 0)
				goto out;
			cnt = 0;
			at = v->head->size;
		}
		vfile *hd = v->head;
		if (at + rec_len(hd, len) > UINT32_MAX) {
			r = SETT_ETOOBIG;
			goto out;
		}
		size_t rs = v->wbuf.n;
		if (hd->key) {
			/* u32 n | entry | tag, sealed in place under the nonce of `at` */
			if ((r = buf_reserve(&v->wbuf, (size_t)rec_len(hd, len))) != 0)
				goto out;
			v->wbuf.n += CIPHER_REC_HEAD;
			if ((r = entry_append(&v->wbuf, &e[i])) != 0 ||
			    (r = cipher_rec_seal(hd->key, hd->salt, at, v->wbuf.p + rs + CIPHER_REC_HEAD,
						 (size_t)len, v->wbuf.p + rs)) != 0)
				goto out;
			v->wbuf.n += CRYPT_TAG_SIZE;
			r = seg_add(v, NULL, rs, v->wbuf.n - rs);
		} else if (e[i].value.n >= BORROW_MIN) {
			/* head and key, the value where it is, the checksum */
			size_t hl = (size_t)len - e[i].value.n - ENTRY_CHECKSUM;
			if ((r = buf_reserve(&v->wbuf, hl + ENTRY_CHECKSUM)) != 0)
				goto out;
			uint8_t *h = v->wbuf.p + rs;
			entry_encode_head(h, &e[i]);
			put_le64(h + hl, sett_hash2(h, hl, e[i].value.p, e[i].value.n));
			v->wbuf.n += hl + ENTRY_CHECKSUM;
			if ((r = seg_add(v, NULL, rs, hl)) == 0 &&
			    (r = seg_add(v, e[i].value.p, 0, e[i].value.n)) == 0)
				r = seg_add(v, NULL, rs + hl, ENTRY_CHECKSUM);
		} else if ((r = entry_append(&v->wbuf, &e[i])) == 0) {
			r = seg_add(v, NULL, rs, v->wbuf.n - rs);
		}
		if (r)
			goto out;
		out[i].fid = v->head->fid;
		out[i].len = (uint32_t)len;
		out[i].offset = (uint32_t)at;
		cnt++;
	}
	r = flush_locked(v, cnt);
out:
	segs_clear(v);
	if (v->wbuf.cap > WBUF_KEEP)
		buf_free(&v->wbuf);
	pthread_mutex_unlock(&v->wmu);
	return r;
}

int vlog_sync(vlog *v)
{
	int r = 0;
	pthread_mutex_lock(&v->wmu);
	if (v->head && v->dirty) {
		r = v->broken ? v->broken : sfile_sync(v->head->f);
		if (!r)
			v->dirty = 0;
		else
			v->broken = r; /* what reached the disk is unknown */
	}
	pthread_mutex_unlock(&v->wmu);
	return r;
}

int vlog_presync(vlog *v)
{
	vfile *vf = NULL;
	uint64_t size = 0;
	pthread_mutex_lock(&v->wmu);
	int r = v->broken;
	if (!r && v->head && v->dirty) {
		pthread_mutex_lock(&v->mu);
		vf = v->head;
		vf->refs++;
		size = vf->size;
		pthread_mutex_unlock(&v->mu);
	}
	pthread_mutex_unlock(&v->wmu);
	if (!vf)
		return r;
	r = sfile_sync(vf->f);
	pthread_mutex_lock(&v->wmu);
	if (r && !v->broken)
		v->broken = r; /* what reached the disk is unknown */
	else if (!r && v->head == vf && vf->size == size)
		v->dirty = 0; /* nothing appended meanwhile: vlog_sync has nothing to do */
	pthread_mutex_unlock(&v->wmu);
	vfile_put(v, vf);
	return r;
}

int vlog_error(vlog *v)
{
	pthread_mutex_lock(&v->wmu);
	int r = v->broken;
	pthread_mutex_unlock(&v->wmu);
	return r;
}

int vlog_rotate(vlog *v)
{
	pthread_mutex_lock(&v->wmu);
	int r = writable_locked(v);
	if (!r && v->head->size > v->head->start)
		r = rotate_locked(v);
	pthread_mutex_unlock(&v->wmu);
	return r;
}

/* ---- reading ---- */

/*
 * A plain entry whose key is known: its head and key are read into a
 * scratch buffer and its value straight to dst, where the caller wants
 * it (no copy over the head after the read).  The head's length follows
 * from the key's and the entry's, with expires_at taken to be 0 (one
 * byte); 1 with the value at dst (e->value.n bytes, checked as
 * vlog_read checks it), 0 if this entry is not of that shape (the caller
 * reads it whole), SETT_ECORRUPT or <0 from the read.
 */
static int read_into_place(vlog *v, vfile *vf, const vptr *p, slice ukey, uint8_t *dst,
			   entry *e)
{
	uint8_t head[512];
	uint64_t klen = ukey.n + IKEY_SUFFIX, fixed = 2 + varint_len(klen) + 1 + klen;
	uint64_t vlen = 0;
	size_t vl;
	for (vl = 1; vl <= VARINT_MAX; vl++) {
		if (fixed + vl + ENTRY_CHECKSUM > p->len)
			return 0;
		vlen = p->len - fixed - vl - ENTRY_CHECKSUM;
		if (varint_len(vlen) == vl)
			break;
	}
	size_t hk = (size_t)(fixed + vl);
	if (vl > VARINT_MAX || hk > sizeof head)
		return 0;
	int r = sfile_pread2_full(vf->f, head, hk, dst, (size_t)vlen + ENTRY_CHECKSUM, p->offset);
	if (r)
		return r;
	size_t hlen, total;
	if (entry_decode_header(head, hk, e, &hlen, &total) != 1 || total != p->len ||
	    hlen + e->key.n != hk)
		return 0; /* another shape (expires_at set), or damage: read whole */
	e->key.p = head + hlen;
	e->value.p = dst;
	if (slice_cmp(ikey_user(e->key), ukey) != 0)
		return 0; /* the whole read reports it */
	if (v->o.verify_checksum && !entry_verified(v, p)) {
		if (get_le64(dst + vlen) != sett_hash2(head, hk, dst, (size_t)vlen))
			return SETT_ECORRUPT;
		entry_mark_verified(v, p);
	}
	return 1;
}

int vlog_read(vlog *v, const vptr *p, slice expect_ukey, buf *out, char *why, size_t whylen)
{
	/* The file name is formatted only when something is reported. */
	char path[4096];
#define NAME_FILE() file_path(v, p->fid, path, sizeof path)
	if (p->len < ENTRY_MIN_LEN || p->len > ENTRY_MAX_LEN || p->offset < LOG_HEADER_SIZE) {
		NAME_FILE();
		set_why(why, whylen, "%s: bad value pointer (offset %u, length %u)", path,
			p->offset, p->len);
		return SETT_ECORRUPT;
	}
	uint64_t size;
	vfile *vf = vfile_get(v, p->fid, &size);
	if (!vf) {
		NAME_FILE();
		set_why(why, whylen, "%s: no such value log file", path);
		return -ENOENT;
	}
	int r;
	uint64_t rlen = rec_len(vf, p->len);
	if ((uint64_t)p->offset + rlen > size || p->offset < vf->start) {
		NAME_FILE();
		set_why(why, whylen, "%s: value pointer past the end (offset %u, length %u)",
			path, p->offset, p->len);
		r = SETT_ECORRUPT;
		goto out;
	}
	if ((r = buf_reserve(out, (size_t)rlen)) != 0)
		goto out;
	uint8_t *dst = out->p + out->n;
	entry e;
	if (!vf->key && expect_ukey.p) {
		r = read_into_place(v, vf, p, expect_ukey, dst, &e);
		if (r < 0)
			goto bad;
		if (r == 1) {
			r = 0;
			goto checked;
		}
	}
	if ((r = sfile_pread_full(vf->f, dst, (size_t)rlen, p->offset)) != 0)
		goto bad;
	if (vf->key) {
		/* the tag authenticates the entry: its checksum adds nothing */
		size_t hlen, total;
		uint8_t *pt = dst + CIPHER_REC_HEAD;
		if ((r = cipher_rec_open(vf->key, vf->salt, p->offset, dst, (size_t)rlen, pt)) != 0 ||
		    entry_decode_header(pt, p->len, &e, &hlen, &total) != 1 || total != p->len)
			goto bad;
		e.key.p = pt + hlen;
		e.value.p = pt + hlen + e.key.n;
	} else if (v->o.verify_checksum && !entry_verified(v, p)) {
		if (entry_decode(dst, p->len, &e) != (long)p->len)
			goto bad;
		entry_mark_verified(v, p);
	} else {
		size_t hlen, total;
		if (entry_decode_header(dst, p->len, &e, &hlen, &total) != 1 || total != p->len)
			goto bad;
		e.key.p = dst + hlen;
		e.value.p = dst + hlen + e.key.n;
	}
	if (expect_ukey.p && slice_cmp(ikey_user(e.key), expect_ukey) != 0) {
		NAME_FILE();
		set_why(why, whylen, "%s: entry at offset %u holds another key", path, p->offset);
		r = SETT_ECORRUPT;
		goto out;
	}
	memmove(dst, e.value.p, e.value.n);
checked:
	out->n += e.value.n;
	goto out;
bad:
	if (r == 0 || r == SETT_ECORRUPT) {
		NAME_FILE();
		set_why(why, whylen, "%s: corrupt entry at offset %u", path, p->offset);
		r = SETT_ECORRUPT;
	}
out:
	vfile_put(v, vf);
	return r;
#undef NAME_FILE
}

uint32_t vlog_head_fid(vlog *v)
{
	pthread_mutex_lock(&v->mu);
	uint32_t fid = v->head ? v->head->fid : 0;
	pthread_mutex_unlock(&v->mu);
	return fid;
}

int vlog_list(vlog *v, uint32_t **fids, int *n)
{
	pthread_mutex_lock(&v->mu);
	uint32_t *a = malloc((size_t)(v->nfiles ? v->nfiles : 1) * sizeof *a);
	if (!a) {
		pthread_mutex_unlock(&v->mu);
		return -ENOMEM;
	}
	for (int i = 0; i < v->nfiles; i++)
		a[i] = v->files[i]->fid;
	*n = v->nfiles;
	pthread_mutex_unlock(&v->mu);
	*fids = a;
	return 0;
}

uint64_t vlog_file_size(vlog *v, uint32_t fid)
{
	pthread_mutex_lock(&v->mu);
	int i = table_find(v, fid);
	uint64_t size = i >= 0 ? v->files[i]->size : 0;
	pthread_mutex_unlock(&v->mu);
	return size;
}

int vlog_iterate(vlog *v, uint32_t fid, vlog_iter_fn fn, void *arg)
{
	uint64_t size, end;
	vfile *vf = vfile_get(v, fid, &size);
	if (!vf)
		return -ENOENT;
	int r = scan_file(vf, size, fn, arg, &end, NULL);
	vfile_put(v, vf);
	return r;
}

/*
 * Where a scrub goes on after the bad record at `at` whose header claims
 * `total` bytes (0: no length known): at + total when a valid record
 * starts there (or the file ends there), else the next offset where one
 * starts (end: none, or the file's search budget is spent).
 */
static int scrub_resume(const vfile *vf, uint64_t at, size_t total, uint64_t end,
			uint64_t *budget, uint64_t *next)
{
	int found = 0, r = 0;
	if (total && total <= end - at) {
		uint64_t c = at + total;
		*next = c;
		if (c == end)
			return 0;
		/* a valid record right there: the damage stayed inside this one */
		buf one = { 0 }, pt = { 0 };
		size_t want = end - c < ENTRY_HEADER_MAX + CIPHER_REC_HEAD
				      ? (size_t)(end - c)
				      : ENTRY_HEADER_MAX + CIPHER_REC_HEAD;
		size_t t2;
		entry e;
		if (!(r = buf_reserve(&one, want)) && !(r = sfile_pread_full(vf->f, one.p, want, c)) &&
		    rec_header(vf, one.p, want, &t2) == 1 && t2 <= end - c) {
			one.n = 0;
			if (!(r = buf_reserve(&one, t2)) && !(r = sfile_pread_full(vf->f, one.p, t2, c)))
				found = rec_decode(vf, one.p, t2, c, &pt, &e);
		}
		buf_free(&one);
		buf_free(&pt);
		if (r == SETT_ECORRUPT)
			r = 0;
		if (r || found)
			return r < 0 ? r : found < 0 ? found : 0;
	}
	r = next_valid_entry(vf, at, end, budget, &found, next);
	if (!r && found != 1)
		*next = end; /* none, or the search gave up: bad to the end */
	return r;
}

int vlog_scrub(vlog *v, uint32_t fid, const vlog_scrub_cb *cb)
{
	uint64_t end;
	vfile *vf = vfile_get(v, fid, &end);
	if (!vf)
		return -ENOENT;
	if (end < vf->start) {
		/* a head cut short inside its header (a crash while it was
		 * created): open took it as empty, and so it is */
		vfile_put(v, vf);
		return 0;
	}
	buf b = { 0 }, pt = { 0 };
	uint8_t hdr[LOG_HEADER_SIZE];
	char why[512], path[4096];
	int r = 0, bad = 0;
	snprintf(path, sizeof path, "%s", sfile_path(vf->f));
	if (cb->drop_cache)
		sfile_drop_cache(vf->f, 0, vf->start);
	/* the header was checked at open; it must still read the same */
	r = sfile_pread_full(vf->f, hdr, sizeof hdr, 0);
	uint32_t hfid = 0;
	if (r == SETT_ECORRUPT ||
	    (!r && log_header_decode(hdr, sizeof hdr, vf->key ? vlog_enc_magic : vlog_magic,
				     &hfid) != 0) ||
	    (!r && hfid != fid)) {
		bad = 1;
		snprintf(why, sizeof why, "%s: corrupt file header at offset 0", path);
		r = cb->fault(cb->arg, 0, LOG_HEADER_SIZE, slice_make(NULL, 0), why);
	}
	if (!r && cb->read)
		r = cb->read(cb->arg, vf->start);
	uint64_t at = vf->start, bstart = at;
	/* one budget for every search of the file: a file of many bad
	 * records must not pay it once per record */
	uint64_t budget = log_search_budget(end - vf->start);
	size_t blen = 0;
	while (!r && at < end) {
		size_t avail = (size_t)(bstart + blen - at);
		const uint8_t *p = avail ? b.p + (at - bstart) : NULL;
		size_t total = 0;
		int h = avail ? rec_header(vf, p, avail, &total) : 0;
		int broken = h == SETT_ECORRUPT || (h == 1 && total > end - at);
		if (!broken && (h == 0 || total > avail)) {
			uint64_t want = h == 1 ? total : ENTRY_HEADER_MAX;
			if (want < SCAN_WINDOW)
				want = SCAN_WINDOW;
			if (want > end - at)
				want = end - at;
			if (want <= avail) { /* the header runs past the end */
				broken = 1;
			} else {
				if (cb->drop_cache)
					sfile_drop_cache(vf->f, at, want);
				b.n = 0;
				if ((r = buf_reserve(&b, (size_t)want)) != 0 ||
				    (r = sfile_pread_full(vf->f, b.p, (size_t)want, at)) != 0)
					break;
				bstart = at;
				blen = (size_t)want;
				if (cb->read && (r = cb->read(cb->arg, want)))
					break;
				continue;
			}
		}
		entry e;
		if (!broken) {
			int d = rec_decode(vf, p, total, at, &pt, &e);
			if (d < 0) {
				r = d;
				break;
			}
			if (d > 0) {
				at += total;
				continue;
			}
		}
		/* a bad record: its key if its header and key can be read, then on */
		bad = 1;
		slice key = slice_make(NULL, 0);
		size_t hlen, tot;
		if (!vf->key && avail &&
		    entry_decode_header(p, avail, &e, &hlen, &tot) == 1 && e.key.n >= 8 &&
		    hlen + e.key.n <= avail)
			key = slice_make(p + hlen, e.key.n);
		uint64_t next;
		if ((r = scrub_resume(vf, at, h == 1 ? total : 0, end, &budget, &next)))
			break;
		snprintf(why, sizeof why, "%s: corrupt entry at offset %llu", path,
			 (unsigned long long)at);
		if ((r = cb->fault(cb->arg, at, next - at, key, why)))
			break;
		at = next;
		blen = 0; /* read on from there */
		bstart = at;
	}
	buf_free(&b);
	buf_free(&pt);
	vfile_put(v, vf);
	return r ? r : bad ? SETT_ECORRUPT : 0;
}

int vlog_file_remove(vlog *v, uint32_t fid)
{
	pthread_mutex_lock(&v->mu);
	int i = table_find(v, fid);
	if (i < 0 || v->files[i] == v->head) {
		pthread_mutex_unlock(&v->mu);
		return i < 0 ? -ENOENT : -EBUSY;
	}
	vfile *vf = v->files[i];
	memmove(v->files + i, v->files + i + 1, (size_t)(v->nfiles - i - 1) * sizeof *v->files);
	v->nfiles--;
	vf->removed = 1;
	int last = --vf->refs == 0;
	pthread_mutex_unlock(&v->mu);
	return last ? vfile_destroy(vf) : 0;
}
