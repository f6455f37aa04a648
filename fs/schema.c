/*
 * schema.c - encoders and decoders of the settfs keys and values.
 *
 * See schema.h and doc/FORMAT.md.  Kept apart from the core so that
 * fsck.settfs reads the store through exactly the same code.
 */
#include "schema.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <xxhash.h>
#include <zstd.h>

size_t sfs_key_super(uint8_t *k)
{
	k[0] = SFS_TAG_SUPER;
	return 1;
}

size_t sfs_key_nextino(uint8_t *k)
{
	k[0] = SFS_TAG_NEXTINO;
	return 1;
}

size_t sfs_key_ino_prefix(uint8_t *k, char tag, uint64_t ino)
{
	k[0] = (uint8_t)tag;
	sfs_put_be64(k + 1, ino);
	return 9;
}

size_t sfs_key_inode(uint8_t *k, uint64_t ino)
{
	return sfs_key_ino_prefix(k, SFS_TAG_INODE, ino);
}

size_t sfs_key_dentry(uint8_t *k, uint64_t parent, const char *name, size_t len)
{
	size_t n = sfs_key_ino_prefix(k, SFS_TAG_DENTRY, parent);
	if (name && len) {
		memcpy(k + n, name, len);
		n += len;
	}
	return n;
}

size_t sfs_key_chunk(uint8_t *k, uint64_t ino, uint64_t idx)
{
	sfs_key_ino_prefix(k, SFS_TAG_CHUNK, ino);
	sfs_put_be64(k + 9, idx);
	return 17;
}

size_t sfs_key_page(uint8_t *k, uint64_t ino, uint64_t idx, uint32_t pg)
{
	sfs_key_chunk(k, ino, idx);
	sfs_put_be32(k + 17, pg);
	return 21;
}

size_t sfs_key_xattr(uint8_t *k, uint64_t ino, const char *name, size_t len)
{
	size_t n = sfs_key_ino_prefix(k, SFS_TAG_XATTR, ino);
	memcpy(k + n, name, len);
	return n + len;
}

size_t sfs_key_orphan(uint8_t *k, uint64_t ino)
{
	return sfs_key_ino_prefix(k, SFS_TAG_ORPHAN, ino);
}

size_t sfs_key_snap(uint8_t *k, const char *name, size_t len)
{
	k[0] = SFS_TAG_SNAP;
	if (name && len)
		memcpy(k + 1, name, len);
	return 1 + (name ? len : 0);
}

/*
 * Snapshot record: magic(8) version(8) created_ns(8) guid(16) slot(4)
 * flags(4) checksum(8) = XXH3-64 of the 48 bytes before it.
 */
void sfs_snap_encode(const sfs_snap *s, uint8_t out[SFS_SNAP_SIZE])
{
	memcpy(out, SFS_SNAP_MAGIC, 8);
	sfs_put_be64(out + 8, s->version);
	sfs_put_be64(out + 16, (uint64_t)s->created_ns);
	memcpy(out + 24, s->guid, 16);
	sfs_put_be32(out + 40, s->slot);
	sfs_put_be32(out + 44, s->flags);
	sfs_put_be64(out + 48, XXH3_64bits(out, 48));
}

int sfs_snap_decode(const void *p, size_t n, sfs_snap *s)
{
	const uint8_t *b = p;
	if (n != SFS_SNAP_SIZE || memcmp(b, SFS_SNAP_MAGIC, 8) != 0 ||
	    sfs_get_be64(b + 48) != XXH3_64bits(b, 48))
		return -EIO;
	s->version = sfs_get_be64(b + 8);
	s->created_ns = (int64_t)sfs_get_be64(b + 16);
	memcpy(s->guid, b + 24, 16);
	s->slot = sfs_get_be32(b + 40);
	s->flags = sfs_get_be32(b + 44);
	if (s->slot < 1 || s->slot > SFS_SNAP_SLOTS || s->flags || !s->version)
		return -EIO;
	return 0;
}

/*
 * Superblock: magic(8) version(4) chunk_size(4) uuid(16) created_ns(8)
 * checksum(8) = XXH3-64 of the 40 bytes before it.
 */
void sfs_super_encode(const sfs_super *s, uint8_t out[SFS_SUPER_SIZE])
{
	memcpy(out, SFS_SUPER_MAGIC, 8);
	sfs_put_be32(out + 8, s->version);
	sfs_put_be32(out + 12, s->chunk_size);
	memcpy(out + 16, s->uuid, 16);
	sfs_put_be64(out + 32, (uint64_t)s->created_ns);
	sfs_put_be64(out + 40, XXH3_64bits(out, 40));
}

int sfs_super_decode(const void *p, size_t n, sfs_super *s)
{
	const uint8_t *b = p;
	if (n != SFS_SUPER_SIZE || memcmp(b, SFS_SUPER_MAGIC, 8) != 0)
		return -EIO;
	if (sfs_get_be64(b + 40) != XXH3_64bits(b, 40))
		return -EIO;
	s->version = sfs_get_be32(b + 8);
	s->chunk_size = sfs_get_be32(b + 12);
	memcpy(s->uuid, b + 16, 16);
	s->created_ns = (int64_t)sfs_get_be64(b + 32);
	if (s->version < SFS_SUPER_MIN_VERSION || s->version > SFS_SUPER_VERSION)
		return -EPROTO;
	/* a power of two between 4 KiB and 1 MiB */
	if (s->chunk_size < 4096 || s->chunk_size > (1u << 20) ||
	    (s->chunk_size & (s->chunk_size - 1)))
		return -EIO;
	return 0;
}

int sfs_inode_encode(const sfs_inode *in, uint8_t **out, size_t *n)
{
	size_t tl = S_ISLNK(in->mode) ? in->target_len : 0;
	uint8_t *b = malloc(SFS_INODE_FIXED + tl);
	if (!b)
		return -ENOMEM;
	b[0] = SFS_INODE_VERSION;
	sfs_put_be32(b + 1, in->mode);
	sfs_put_be32(b + 5, in->uid);
	sfs_put_be32(b + 9, in->gid);
	sfs_put_be32(b + 13, in->nlink);
	sfs_put_be32(b + 17, in->flags);
	sfs_put_be64(b + 21, in->size);
	sfs_put_be64(b + 29, in->blocks);
	sfs_put_be64(b + 37, (uint64_t)in->atime);
	sfs_put_be64(b + 45, (uint64_t)in->mtime);
	sfs_put_be64(b + 53, (uint64_t)in->ctime);
	sfs_put_be64(b + 61, (uint64_t)in->btime);
	sfs_put_be64(b + 69, in->rdev);
	sfs_put_be64(b + 77, in->generation);
	sfs_put_be64(b + 85, in->parent);
	if (tl)
		memcpy(b + SFS_INODE_FIXED, in->target, tl);
	*out = b;
	*n = SFS_INODE_FIXED + tl;
	return 0;
}

static int mode_type_valid(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO:
	case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		return 1;
	default:
		return 0;
	}
}

int sfs_inode_decode(const void *p, size_t n, sfs_inode *in)
{
	const uint8_t *b = p;
	memset(in, 0, sizeof *in);
	if (n < SFS_INODE_FIXED || b[0] != SFS_INODE_VERSION)
		return -EIO;
	in->mode = sfs_get_be32(b + 1);
	if ((in->mode & ~(uint32_t)(S_IFMT | 07777)) || !mode_type_valid(in->mode))
		return -EIO;
	in->uid = sfs_get_be32(b + 5);
	in->gid = sfs_get_be32(b + 9);
	in->nlink = sfs_get_be32(b + 13);
	in->flags = sfs_get_be32(b + 17);
	in->size = sfs_get_be64(b + 21);
	in->blocks = sfs_get_be64(b + 29);
	in->atime = (int64_t)sfs_get_be64(b + 37);
	in->mtime = (int64_t)sfs_get_be64(b + 45);
	in->ctime = (int64_t)sfs_get_be64(b + 53);
	in->btime = (int64_t)sfs_get_be64(b + 61);
	in->rdev = sfs_get_be64(b + 69);
	in->generation = sfs_get_be64(b + 77);
	in->parent = sfs_get_be64(b + 85);
	if (in->size > (uint64_t)INT64_MAX)
		return -EIO;
	size_t tl = n - SFS_INODE_FIXED;
	if (S_ISLNK(in->mode)) {
		if (tl == 0 || tl > 4095)
			return -EIO;
		in->target = malloc(tl + 1);
		if (!in->target)
			return -ENOMEM;
		memcpy(in->target, b + SFS_INODE_FIXED, tl);
		in->target[tl] = 0;
		in->target_len = tl;
	} else if (tl) {
		return -EIO;
	}
	return 0;
}

void sfs_inode_free(sfs_inode *in)
{
	free(in->target);
	in->target = NULL;
	in->target_len = 0;
}

void sfs_dentry_encode(uint64_t ino, uint32_t mode, uint8_t out[SFS_DENTRY_SIZE])
{
	sfs_put_be64(out, ino);
	out[8] = (uint8_t)((mode & S_IFMT) >> 12);
}

int sfs_dentry_decode(const void *p, size_t n, uint64_t *ino, uint32_t *type)
{
	const uint8_t *b = p;
	if (n != SFS_DENTRY_SIZE)
		return -EIO;
	*ino = sfs_get_be64(b);
	*type = (uint32_t)b[8] << 12;
	/* the byte is the type alone: no bits above S_IFMT's four */
	if (*ino == 0 || b[8] > (S_IFMT >> 12) || !mode_type_valid(*type))
		return -EIO;
	return 0;
}

/* Properties: version(1) codec(1) level(1) reserved(1) = 0. */
void sfs_props_encode(const sfs_props *p, uint8_t out[SFS_PROPS_SIZE])
{
	out[0] = SFS_PROPS_VERSION;
	out[1] = p->codec;
	out[2] = (uint8_t)p->level;
	out[3] = 0;
}

int sfs_props_decode(const void *v, size_t n, sfs_props *p)
{
	const uint8_t *b = v;
	if (n != SFS_PROPS_SIZE || b[0] != SFS_PROPS_VERSION || b[3] != 0)
		return -EIO;
	p->codec = b[1];
	p->level = b[2];
	if (p->codec == SFS_CODEC_RAW)
		return p->level == 0 ? 0 : -EIO;
	if (p->codec != SFS_CODEC_ZSTD || p->level < SFS_ZSTD_MIN_LEVEL ||
	    p->level > SFS_ZSTD_MAX_LEVEL)
		return -EIO;
	return 0;
}

/* Each thread's zstd contexts, freed when it exits. */
typedef struct zctx {
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
} zctx;

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static int zkey_ok;

static void zctx_free(void *p)
{
	zctx *z = p;
	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z);
}

static void zkey_init(void)
{
	zkey_ok = pthread_key_create(&zkey, zctx_free) == 0;
}

static zctx *zctx_get(int compress)
{
	pthread_once(&zonce, zkey_init);
	if (!zkey_ok)
		return NULL;
	zctx *z = pthread_getspecific(zkey);
	if (!z) {
		z = calloc(1, sizeof *z);
		if (!z)
			return NULL;
		if (pthread_setspecific(zkey, z) != 0) {
			free(z);
			return NULL;
		}
	}
	if (compress && !z->c)
		z->c = ZSTD_createCCtx();
	if (!compress && !z->d)
		z->d = ZSTD_createDCtx();
	return (compress ? (void *)z->c : (void *)z->d) ? z : NULL;
}

int sfs_chunk_len(uint8_t codec, const void *v, size_t n, uint32_t chunk_size, uint32_t *len)
{
	if (codec == SFS_CODEC_RAW) {
		if (n > chunk_size)
			return -EIO;
		*len = (uint32_t)n;
		return 0;
	}
	if (codec != SFS_CODEC_ZSTD || n <= SFS_ZCHUNK_HEAD)
		return -EIO;
	uint32_t l = sfs_get_be32(v);
	if (l == 0 || l > chunk_size)
		return -EIO;
	*len = l;
	return 0;
}

int sfs_chunk_decode(uint8_t codec, const void *v, size_t n, uint32_t chunk_size,
		     uint8_t *scratch, const uint8_t **out, uint32_t *len)
{
	int r = sfs_chunk_len(codec, v, n, chunk_size, len);
	if (r)
		return r;
	if (codec == SFS_CODEC_RAW) {
		*out = v;
		return 0;
	}
	/*
	 * One frame (RFC 8878), all of the rest of the value, with a content
	 * checksum and its content size: the header's length
	 */
	const uint8_t *f = (const uint8_t *)v + SFS_ZCHUNK_HEAD;
	size_t fn = n - SFS_ZCHUNK_HEAD;
	if (fn < 5 || sfs_get_be32(f) != 0x28b52ffdu || !(f[4] & 4) ||
	    ZSTD_findFrameCompressedSize(f, fn) != fn || ZSTD_getFrameContentSize(f, fn) != *len)
		return -EIO;
	zctx *z = zctx_get(0);
	if (!z)
		return -ENOMEM;
	/* room for exactly that length: a longer frame fails */
	size_t got = ZSTD_decompressDCtx(z->d, scratch, *len, f, fn);
	if (ZSTD_isError(got) || got != *len)
		return -EIO;
	*out = scratch;
	return 0;
}

long sfs_chunk_compress(int level, const void *src, uint32_t len, uint8_t *dst, size_t cap)
{
	size_t want = (size_t)len - len / 8; /* stored bytes, the header included */
	if (len <= SFS_ZCHUNK_HEAD * 8 || cap < len)
		return 0;
	zctx *z = zctx_get(1);
	if (!z)
		return -ENOMEM;
	if (len > SFS_PROBE_MIN) {
		/* the probe: three slices at level 1, copied to the end of dst (past
		 * where their compressed form goes: cap >= len > 8 slices) */
		const uint8_t *s = src;
		uint8_t *sample = dst + cap - 3 * SFS_PROBE_SLICE;
		memcpy(sample, s, SFS_PROBE_SLICE);
		memcpy(sample + SFS_PROBE_SLICE, s + len / 2 - SFS_PROBE_SLICE / 2, SFS_PROBE_SLICE);
		memcpy(sample + 2 * SFS_PROBE_SLICE, s + len - SFS_PROBE_SLICE, SFS_PROBE_SLICE);
		size_t pn = 3 * SFS_PROBE_SLICE;
		/* does not fit 7/8 (dstSize_tooSmall): incompressible */
		if (ZSTD_isError(ZSTD_compressCCtx(z->c, dst, pn - pn / 8, sample, pn, 1)))
			return 0;
	}
	/* the frame: content size and checksum in it */
	ZSTD_CCtx_reset(z->c, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(z->c, ZSTD_c_checksumFlag, 1)))
		return 0;
	size_t got = ZSTD_compress2(z->c, dst + SFS_ZCHUNK_HEAD, want - SFS_ZCHUNK_HEAD, src, len);
	if (ZSTD_isError(got))
		return 0; /* dstSize_tooSmall: more than 7/8 */
	sfs_put_be32(dst, len);
	return (long)got + SFS_ZCHUNK_HEAD;
}
