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
#include <xxhash.h>

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
