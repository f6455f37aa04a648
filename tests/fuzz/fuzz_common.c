/*
 * fuzz_common.c - scratch files and checksum repair for the fuzz targets
 * (see fuzz.h).
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "backup.h"
#include "coding.h"
#include "entry.h"
#include "keyregistry.h"
#include "schema.h"
#include "sett.h"
#include "table_format.h"

void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
	abort();
}

static char scratch[4096];

static void rm_tree(const char *dir, int self)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char p[8192];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			rm_tree(p, 1);
		else
			unlink(p);
	}
	closedir(d);
	if (self)
		rmdir(dir);
}

static void remove_scratch(void)
{
	if (scratch[0])
		rm_tree(scratch, 1);
}

const char *fuzz_dir(void)
{
	if (!scratch[0]) {
		const char *t = getenv("TMPDIR");
		if (!t || !*t)
			t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(scratch, sizeof scratch, "%s/sett-fuzz-XXXXXX", t);
		if (!mkdtemp(scratch)) {
			perror("mkdtemp");
			abort();
		}
		atexit(remove_scratch);
	}
	rm_tree(scratch, 0);
	return scratch;
}

void fuzz_write(const char *dir, const char *name, const void *p, size_t n)
{
	char path[8192];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n) || close(fd)) {
		perror(path);
		abort();
	}
}

int fuzz_read(const char *dir, const char *name, uint8_t **out, size_t *n)
{
	char path[8192];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 4096, len = 0;
	uint8_t *b = malloc(cap);
	size_t got;
	while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap)
			b = realloc(b, cap *= 2);
	}
	fclose(f);
	if (!b)
		abort();
	*out = b;
	*n = len;
	return 0;
}

uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		abort();
	if (n)
		memcpy(b, p, n);
	return b;
}

uint8_t *fuzz_payload(const uint8_t *data, size_t size, fuzz_fix_fn fix, unsigned *mode,
		      size_t *n)
{
	if (size < 1)
		return NULL;
	*mode = data[0];
	*n = size - 1;
	uint8_t *p = fuzz_dup(data + 1, *n);
	if (fix && (*mode & FUZZ_FIX_SUMS))
		fix(p, *n);
	return p;
}

void fuzz_sett_options(sett_options *o, int read_only)
{
	sett_options_init(o);
	o->create_if_missing = 0;
	o->read_only = read_only;
	o->num_compactors = 0;
	o->gc_discard_ratio = 0;
	o->mem_table_size = 1 << 20;
	o->block_cache_size = 1 << 20;
}

uint64_t fuzz_hash(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	/* mix the length in so that ("ab","c") differs from ("a","bc") */
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(n >> (8 * i))) * 1099511628211ull;
	return h;
}

/* ---- checksum repair ---- */

/* Length of the entry at p, 0 when it cannot be delimited. */
static size_t entry_span(const uint8_t *p, size_t n)
{
	entry e;
	size_t hlen, total;
	if (entry_decode_header(p, n, &e, &hlen, &total) != 1 || total > n || total < 8)
		return 0;
	return total;
}

void fuzz_fix_entry(uint8_t *p, size_t n)
{
	size_t t = entry_span(p, n);
	if (t)
		put_le64(p + t - 8, sett_hash(p, t - 8));
}

/* ---- encrypted files ---- */

static cipher_ring *fuzz_ring(void)
{
	static cipher_ring *ring;
	if (!ring) {
		keyreg_key k[2];
		for (int i = 0; i < 2; i++) {
			k[i].id = (uint64_t)i + 1;
			k[i].created = 1;
			memcpy(k[i].key, fuzz_master_key, CRYPT_KEY_SIZE);
			k[i].key[0] ^= (uint8_t)(i + 1);
		}
		keyreg kr = { .n = 2, .keys = k };
		if (cipher_ring_new(&kr, &ring))
			abort();
	}
	return ring;
}

sett_keys fuzz_keys(void)
{
	return cipher_ring_keys(fuzz_ring());
}

sett_cipher fuzz_cipher(void)
{
	return cipher_ring_current(fuzz_ring());
}

/*
 * Seals (seal) or opens in place the record [off, off+len) of the n bytes
 * at p under key k and salt; a record that does not fit is left alone.
 * Sealing first fixes the checksum of the entry it holds (fix_entry).
 */
static void rec_crypt(int seal, int fix_entry, crypt_key *k, const uint8_t *salt, uint8_t *p,
		      size_t n, uint64_t off, uint64_t len)
{
	if (len < CIPHER_REC_OVERHEAD || off > n || len > n - off)
		return;
	uint8_t *r = p + off;
	size_t pn = (size_t)len - CIPHER_REC_OVERHEAD;
	if (!seal) {
		cipher_rec_open(k, salt, off, r, (size_t)len, r + CIPHER_REC_HEAD);
		return;
	}
	if (fix_entry)
		fuzz_fix_entry(r + CIPHER_REC_HEAD, pn);
	cipher_rec_seal(k, salt, off, r + CIPHER_REC_HEAD, pn, r);
}

/* The key named at p + at (with the salt after it), or NULL. */
static crypt_key *named_key(const uint8_t *p, size_t at, sett_cipher *c)
{
	sett_keys ks = fuzz_keys();
	c->key_id = get_le64(p + at);
	c->key = ks.find(ks.arg, c->key_id);
	return c->key;
}

/* An encrypted value-log file (SETTVLGE), sealed or opened record by record. */
static void log_crypt(uint8_t *p, size_t n, int seal)
{
	const size_t hdr = LOG_HEADER_SIZE + CIPHER_HEAD_SIZE + 8;
	sett_cipher c;
	if (n < hdr || memcmp(p, "SETTVLGE", 8) != 0 || !named_key(p, LOG_HEADER_SIZE, &c))
		return;
	const uint8_t *salt = p + LOG_HEADER_SIZE + 8;
	if (seal) {
		put_le64(p + 16, sett_hash(p, 16));
		cipher_head_put(&c, p, LOG_HEADER_SIZE, salt);
		put_le64(p + hdr - 8, sett_hash(p + LOG_HEADER_SIZE, CIPHER_HEAD_SIZE));
	}
	for (size_t off = hdr; n - off >= CIPHER_REC_OVERHEAD;) {
		uint64_t len = (uint64_t)get_le32(p + off) + CIPHER_REC_OVERHEAD;
		if (len > n - off)
			break;
		rec_crypt(seal, 1, c.key, salt, p, n, off, len);
		off += (size_t)len;
	}
}

void fuzz_unseal_log(uint8_t *p, size_t n)
{
	log_crypt(p, n, 0);
}

/* Calls fn for every (offset, size) of the index block's bytes q[0, end). */
static void index_blocks(const uint8_t *q, const uint8_t *end,
			 void (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	while (q < end) {
		uint64_t kl, bo, bs;
		size_t m = varint_get(q, end, &kl);
		if (!m || kl > (uint64_t)(end - q - m))
			break;
		q += m + kl;
		if (!(m = varint_get(q, end, &bo)))
			break;
		q += m;
		if (!(m = varint_get(q, end, &bs)))
			break;
		q += m;
		fn(arg, bo, bs);
	}
}

typedef struct table_crypt_arg {
	int seal;
	crypt_key *k;
	const uint8_t *salt;
	uint8_t *p;
	size_t limit;
} table_crypt_arg;

static void table_crypt_block(void *arg, uint64_t off, uint64_t size)
{
	table_crypt_arg *a = arg;
	rec_crypt(a->seal, 0, a->k, a->salt, a->p, a->limit, off, size);
}

/* An encrypted table (SETTSSTE): data blocks as the index names them, meta blocks, footer. */
static void table_crypt(uint8_t *p, size_t n, int seal)
{
	sett_cipher c;
	if (n < TABLE_ENC_FOOTER_SIZE || memcmp(p + n - 8, TABLE_ENC_MAGIC, 8) != 0)
		return;
	uint8_t *foot = p + n - TABLE_ENC_FOOTER_SIZE;
	if (!named_key(foot, TABLE_FOOTER_FIELDS, &c))
		return;
	table_crypt_arg a = { seal, c.key, foot + TABLE_FOOTER_FIELDS + 8, p,
			      n - TABLE_ENC_FOOTER_SIZE };
	uint64_t ioff = get_le64(foot + 16), isize = get_le64(foot + 24);
	if (!seal) /* the index first: it names the data blocks */
		table_crypt_block(&a, ioff, isize);
	if (isize >= TABLE_ENC_TRAILER && ioff <= a.limit && isize <= a.limit - ioff) {
		const uint8_t *q = p + ioff + CIPHER_REC_HEAD;
		index_blocks(q, q + isize - TABLE_ENC_TRAILER, table_crypt_block, &a);
	}
	for (int i = 0; i < 3; i++)
		if (seal || i != 1)
			table_crypt_block(&a, get_le64(foot + 16 * i), get_le64(foot + 16 * i + 8));
	if (seal) {
		cipher_head_put(&c, foot, TABLE_FOOTER_FIELDS, a.salt);
		put_le64(foot + TABLE_ENC_FOOTER_HASH, sett_hash(foot, TABLE_ENC_FOOTER_HASH));
	}
}

void fuzz_unseal_table(uint8_t *p, size_t n)
{
	table_crypt(p, n, 0);
}

void fuzz_fix_log(uint8_t *p, size_t n, unsigned mode)
{
	if (n >= 8 && memcmp(p, "SETTVLGE", 8) == 0) {
		log_crypt(p, n, 1);
		return;
	}
	if (n < LOG_HEADER_SIZE)
		return;
	put_le64(p + 16, sett_hash(p, 16));
	size_t off = LOG_HEADER_SIZE;
	while (off < n) {
		size_t t = entry_span(p + off, n - off);
		if (t) {
			put_le64(p + off + t - 8, sett_hash(p + off, t - 8));
			off += t;
		} else if (mode & FUZZ_FIX_RESYNC) {
			off++;
		} else {
			break;
		}
	}
}

void fuzz_fix_manifest(uint8_t *p, size_t n)
{
	if (n < 16)
		return;
	put_le32(p + 12, (uint32_t)sett_hash(p, 12));
	size_t off = 16;
	while (n - off >= 12) {
		uint32_t l = get_le32(p + off);
		if (l > n - off - 12)
			break;
		put_le64(p + off + 4, sett_hash(p + off + 12, l));
		off += 12 + (size_t)l;
	}
}

void fuzz_fix_backup(uint8_t *p, size_t n)
{
	if (n < BACKUP_HEADER)
		return;
	put_le64(p + 40, sett_hash(p, 40));
	uint64_t chain = get_le64(p + 40);
	size_t off = BACKUP_HEADER;
	while (n - off >= BACKUP_FRAME_HEADER) {
		uint8_t *f = p + off;
		uint32_t l = get_le32(f + 4);
		if (l > n - off - BACKUP_FRAME_HEADER)
			break;
		if (f[0] == BACKUP_FRAME_TRAILER && l == BACKUP_TRAILER_LEN)
			put_le64(f + BACKUP_FRAME_HEADER + 32, chain);
		uint64_t h = XXH3_64bits_withSeed(f + BACKUP_FRAME_HEADER, l, get_le64(f));
		put_le64(f + 8, h);
		uint8_t b[8];
		put_le64(b, h);
		chain = XXH3_64bits_withSeed(b, 8, chain);
		off += BACKUP_FRAME_HEADER + (size_t)l;
	}
}

long fuzz_src_read(void *arg, void *p, size_t n)
{
	fuzz_src *s = arg;
	size_t left = s->n - s->pos;
	if (n > s->piece)
		n = s->piece;
	if (n > left)
		n = left;
	memcpy(p, s->p + s->pos, n);
	s->pos += n;
	return (long)n;
}

void fuzz_fix_discard(uint8_t *p, size_t n)
{
	if (n >= 24)
		put_le64(p + n - 8, sett_hash(p, n - 8));
}

void fuzz_fix_keyregistry(uint8_t *p, size_t n)
{
	if (n >= 24)
		put_le64(p + 16, sett_hash(p, 16));
	/* a registry with keys ends in the checksum of everything before */
	if (n >= 56 && get_le32(p + 12) != 0)
		put_le64(p + n - 8, sett_hash(p, n - 8));
}

const uint8_t fuzz_master_key[32] = "sett fuzz master key, 32 bytes!";

/* Fixes the block [off, off+size) of a table of `limit` bytes; 1 if it could. */
static int fix_block(uint8_t *p, size_t limit, uint64_t off, uint64_t size)
{
	if (size < TABLE_BLOCK_TRAILER || off > limit || size > limit - off)
		return 0;
	size_t pn = (size_t)size - TABLE_BLOCK_TRAILER;
	put_le64(p + off + pn + 1, table_block_checksum(p + off, pn));
	return 1;
}

typedef struct fix_arg {
	uint8_t *p;
	size_t limit;
} fix_arg;

static void fix_index_block(void *arg, uint64_t off, uint64_t size)
{
	fix_arg *a = arg;
	fix_block(a->p, a->limit, off, size);
}

void fuzz_fix_table(uint8_t *p, size_t n)
{
	if (n >= TABLE_ENC_FOOTER_SIZE && memcmp(p + n - 8, TABLE_ENC_MAGIC, 8) == 0) {
		table_crypt(p, n, 1);
		return;
	}
	if (n < TABLE_FOOTER_SIZE)
		return;
	uint8_t *foot = p + n - TABLE_FOOTER_SIZE;
	size_t limit = n - TABLE_FOOTER_SIZE;
	uint64_t ioff = get_le64(foot + 16), isize = get_le64(foot + 24);
	/* data blocks, as the index names them (the index is a raw block) */
	if (isize >= TABLE_BLOCK_TRAILER && ioff <= limit && isize <= limit - ioff &&
	    p[ioff + isize - TABLE_BLOCK_TRAILER] == TABLE_BLOCK_RAW) {
		const uint8_t *q = p + ioff;
		fix_arg a = { p, limit };
		index_blocks(q, q + isize - TABLE_BLOCK_TRAILER, fix_index_block, &a);
	}
	for (int i = 0; i < 3; i++)
		fix_block(p, limit, get_le64(foot + 16 * i), get_le64(foot + 16 * i + 8));
	put_le64(foot + TABLE_FOOTER_FIELDS, sett_hash(foot, TABLE_FOOTER_FIELDS));
}

void fuzz_fix_super(uint8_t *p, size_t n)
{
	if (n == SFS_SUPER_SIZE)
		sfs_put_be64(p + 40, XXH3_64bits(p, 40));
}

int fuzz_file_name(unsigned kind, uint64_t id, char *name, size_t len)
{
	static const char *fixed[] = { "MANIFEST", "KEYREGISTRY", "DISCARD" };
	id %= 1000000;
	switch (kind) {
	case FUZZ_F_MANIFEST: case FUZZ_F_KEYREGISTRY: case FUZZ_F_DISCARD:
		snprintf(name, len, "%s", fixed[kind]);
		return 0;
	case FUZZ_F_WAL:
		snprintf(name, len, "%05u.mem", (unsigned)id);
		return 0;
	case FUZZ_F_VLOG:
		snprintf(name, len, "%06u.vlog", (unsigned)id);
		return 0;
	case FUZZ_F_TABLE:
		snprintf(name, len, "%06u.sst", (unsigned)id);
		return 0;
	default:
		return -1;
	}
}
