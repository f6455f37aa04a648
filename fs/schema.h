/*
 * schema.h - the settfs key schema: key builders and value codecs.
 *
 * One namespace of keys in the sett engine, each starting with a one-byte
 * tag; every integer is big-endian so that a prefix scan visits inodes,
 * directory entries and chunks in numeric order.  doc/FORMAT.md ("settfs
 * key schema") describes each key and value byte by byte; this file is the
 * only code that encodes or decodes them (the core and fsck.settfs share
 * it).  Decoders never trust their input: a wrong length or version yields
 * -EIO.
 *
 * Thread safety: pure functions, but for the chunk codec, which keeps a
 * zstd context per thread.
 */
#ifndef SETTFS_SCHEMA_H
#define SETTFS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#define SFS_TAG_SUPER 'S'
#define SFS_TAG_NEXTINO 'N'
#define SFS_TAG_INODE 'I'
#define SFS_TAG_DENTRY 'D'
#define SFS_TAG_CHUNK 'C'
#define SFS_TAG_XATTR 'X'
#define SFS_TAG_ORPHAN 'O'
#define SFS_TAG_SNAP 'P'
#define SFS_TAG_PROPS 'F'

/* Longest key: tag + ino + a 255-byte name. */
#define SFS_KEY_MAX (1 + 8 + 255)

static inline void sfs_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void sfs_put_be64(uint8_t *p, uint64_t v)
{
	sfs_put_be32(p, (uint32_t)(v >> 32));
	sfs_put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t sfs_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sfs_get_be64(const uint8_t *p)
{
	return (uint64_t)sfs_get_be32(p) << 32 | sfs_get_be32(p + 4);
}

/* Key builders: write into k (at least SFS_KEY_MAX bytes), return the length. */
size_t sfs_key_super(uint8_t *k);
size_t sfs_key_nextino(uint8_t *k);
size_t sfs_key_inode(uint8_t *k, uint64_t ino);
/* name NULL: the prefix of every entry of `parent`. */
size_t sfs_key_dentry(uint8_t *k, uint64_t parent, const char *name, size_t len);
size_t sfs_key_chunk(uint8_t *k, uint64_t ino, uint64_t idx);
/*
 * Overlay page `pg` of chunk idx: the chunk key + be32 page index (21
 * bytes).  It sorts after its chunk's key and before the next chunk's.
 */
size_t sfs_key_page(uint8_t *k, uint64_t ino, uint64_t idx, uint32_t pg);
#define SFS_CHUNK_KEY_LEN 17
#define SFS_PAGE_KEY_LEN 21
/* Overlay page size; an overlay counts as this many bytes in sfs_inode.blocks. */
#define SFS_PAGE_SIZE 4096u
/* ino prefix of the chunk keys: sfs_key_chunk_prefix(k, ino) = 9 bytes. */
size_t sfs_key_ino_prefix(uint8_t *k, char tag, uint64_t ino);
size_t sfs_key_xattr(uint8_t *k, uint64_t ino, const char *name, size_t len);
size_t sfs_key_orphan(uint8_t *k, uint64_t ino);
/* Snapshot record: 'P' + the snapshot's name (name NULL: the prefix of all). */
size_t sfs_key_snap(uint8_t *k, const char *name, size_t len);

/* ---- superblock ---- */
#define SFS_SUPER_MAGIC "SETTFS\0\1"
#define SFS_SUPER_SIZE 48
/* format 2: chunks may have overlay pages; 3: inodes flag their xattrs;
 * 4: chunk values may be compressed (their user meta byte says how) */
#define SFS_SUPER_VERSION 4
/* the format a store is made with (3) until compression is first set (4) */
#define SFS_SUPER_PLAIN_VERSION 3
#define SFS_SUPER_CODEC_VERSION 4
#define SFS_SUPER_MIN_VERSION 2
typedef struct sfs_super {
	uint32_t version;
	uint32_t chunk_size;
	uint8_t uuid[16];
	int64_t created_ns;
} sfs_super;
void sfs_super_encode(const sfs_super *s, uint8_t out[SFS_SUPER_SIZE]);
/* -EIO on a bad length, magic or checksum; -EPROTO on an unknown version. */
int sfs_super_decode(const void *p, size_t n, sfs_super *s);

/* ---- snapshot record (value of a 'P' key) ---- */
#define SFS_SNAP_MAGIC "SFSSNAP\1"
#define SFS_SNAP_SIZE 56
#define SFS_SNAP_SLOTS 0xfffeu /* slot 0xffff: the snapshot directory's inode */
typedef struct sfs_snap {
	uint64_t version;     /* the engine version it pins */
	int64_t created_ns;   /* when it was taken (on the store it was taken on) */
	uint8_t guid[16];     /* names it across stores (send/receive) */
	uint32_t slot;        /* its inode space in the mount: 1..SFS_SNAP_SLOTS */
	uint32_t flags;       /* 0 */
} sfs_snap;
void sfs_snap_encode(const sfs_snap *s, uint8_t out[SFS_SNAP_SIZE]);
/* -EIO on a bad length, magic, checksum, slot or flags. */
int sfs_snap_decode(const void *p, size_t n, sfs_snap *s);

/* ---- inode ---- */
#define SFS_INODE_VERSION 1
/* Inode flags.  OVERLAYS: overlay page keys were written for this file at
 * some time, so a read must look for them; without it a read of a stored
 * chunk is a single point get. */
#define SFS_IFLAG_OVERLAYS 1u
/* XATTRS (format 3): an xattr was set on this inode at some time; without
 * it the inode has none, and deleting it needs no scan for them. */
#define SFS_IFLAG_XATTRS 2u
#define SFS_INODE_FIXED 93
typedef struct sfs_inode {
	uint32_t mode, uid, gid, nlink, flags;
	uint64_t size;        /* bytes */
	uint64_t blocks;      /* bytes held by stored chunks */
	int64_t atime, mtime, ctime, btime; /* ns since the epoch */
	uint64_t rdev;
	uint64_t generation;
	uint64_t parent;      /* directories: the parent's inode; else 0 */
	char *target;         /* symlinks: malloc'ed target (no NUL needed) */
	size_t target_len;
} sfs_inode;
/* Encodes into a malloc'ed buffer. */
int sfs_inode_encode(const sfs_inode *in, uint8_t **out, size_t *n);
/* Decodes; in->target is malloc'ed (NUL-terminated) for symlinks. */
int sfs_inode_decode(const void *p, size_t n, sfs_inode *in);
void sfs_inode_free(sfs_inode *in);

/* ---- directory entry value: child ino(8) + type(1) ---- */
#define SFS_DENTRY_SIZE 9
void sfs_dentry_encode(uint64_t ino, uint32_t mode, uint8_t out[SFS_DENTRY_SIZE]);
/* *type is the S_IFMT bits of the child. */
int sfs_dentry_decode(const void *p, size_t n, uint64_t *ino, uint32_t *type);

/* ---- properties (`F` key, format 4): settings kept in the store ---- */
#define SFS_PROPS_SIZE 4
#define SFS_PROPS_VERSION 1
typedef struct sfs_props {
	uint8_t codec;        /* SFS_CODEC_*: how new chunks are stored */
	int level;            /* zstd level (SFS_ZSTD_MIN_LEVEL..SFS_ZSTD_MAX_LEVEL) */
} sfs_props;
void sfs_props_encode(const sfs_props *p, uint8_t out[SFS_PROPS_SIZE]);
/* -EIO on a bad length, version, codec or level. */
int sfs_props_decode(const void *v, size_t n, sfs_props *p);

/*
 * ---- chunk values ----
 * The user meta byte of a chunk key (sett_batch_set_ex) names the codec of
 * its value: SFS_CODEC_RAW, the chunk's bytes themselves (every format);
 * SFS_CODEC_ZSTD (format 4), be32 logical length L (1..chunk size) and
 * one zstd frame whose content is exactly those L bytes.  Overlay pages
 * are always raw.
 */
#define SFS_CODEC_RAW 0
#define SFS_CODEC_ZSTD 1
#define SFS_ZCHUNK_HEAD 4
#define SFS_ZSTD_MIN_LEVEL 1
#define SFS_ZSTD_MAX_LEVEL 19
#define SFS_ZSTD_DEFAULT_LEVEL 3
/*
 * The logical bytes of stored chunk value v (n bytes, user meta `codec`):
 * *out points into v for a raw one, into `scratch` (chunk_size bytes) for
 * a compressed one, decompressed; *len is their count.  The value is not
 * trusted: -EIO for an unknown codec, a raw value longer than the chunk,
 * a compressed one whose length is 0 or above the chunk size, or whose
 * frame does not decompress to exactly that many bytes.
 */
int sfs_chunk_decode(uint8_t codec, const void *v, size_t n, uint32_t chunk_size,
		     uint8_t *scratch, const uint8_t **out, uint32_t *len);
/* The logical length of stored chunk value v without decompressing it
 * (the header's, checked against the chunk size); -EIO as above. */
int sfs_chunk_len(uint8_t codec, const void *v, size_t n, uint32_t chunk_size, uint32_t *len);
/*
 * The SFS_CODEC_ZSTD encoding of src (len bytes) at `level` into dst
 * (`cap` bytes, at least len): its size when it takes at most 7/8 of
 * len, else 0 (store it raw).  A chunk above SFS_PROBE_MIN bytes is
 * probed first: three SFS_PROBE_SLICE-byte slices of it (start, middle,
 * end) are compressed at level 1, and when they do not shrink to 7/8 the
 * chunk is not compressed at all, so incompressible data costs the probe
 * only.  -ENOMEM when no compression context can be had.  Any thread;
 * each thread keeps its own contexts.
 */
#define SFS_PROBE_SLICE 2048u
#define SFS_PROBE_MIN (8 * SFS_PROBE_SLICE)
long sfs_chunk_compress(int level, const void *src, uint32_t len, uint8_t *dst, size_t cap);

#endif
