/*
 * fuzz_schema.c - the settfs value decoders (fs/schema.c): superblock,
 * inode and directory entry.
 *
 * Input: mode byte (bits 1-2 pick the decoder: 0 superblock, 1 inode,
 * 2 directory entry, 3 all three), then the value.  Checks: a value that
 * decodes re-encodes to the same bytes (the encodings are canonical).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "schema.h"

static void check_super(const uint8_t *p, size_t n)
{
	sfs_super s;
	int r = sfs_super_decode(p, n, &s);
	FUZZ_CHECK(r == 0 || r == -EIO || r == -EPROTO);
	if (r)
		return;
	FUZZ_CHECK(s.chunk_size >= 4096 && s.chunk_size <= (1u << 20) &&
		   !(s.chunk_size & (s.chunk_size - 1)));
	uint8_t out[SFS_SUPER_SIZE];
	sfs_super_encode(&s, out);
	FUZZ_CHECK(memcmp(out, p, SFS_SUPER_SIZE) == 0);
}

static void check_inode(const uint8_t *p, size_t n)
{
	sfs_inode in;
	int r = sfs_inode_decode(p, n, &in);
	FUZZ_CHECK(r == 0 || r == -EIO);
	if (r) {
		sfs_inode_free(&in);
		return;
	}
	FUZZ_CHECK(!S_ISLNK(in.mode) || (in.target && in.target_len >= 1 &&
					 in.target_len <= 4095 && !in.target[in.target_len]));
	uint8_t *out;
	size_t on;
	FUZZ_CHECK(sfs_inode_encode(&in, &out, &on) == 0);
	FUZZ_CHECK(on == n && memcmp(out, p, n) == 0);
	free(out);
	sfs_inode_free(&in);
}

static void check_dentry(const uint8_t *p, size_t n)
{
	uint64_t ino;
	uint32_t type;
	int r = sfs_dentry_decode(p, n, &ino, &type);
	FUZZ_CHECK(r == 0 || r == -EIO);
	if (r)
		return;
	FUZZ_CHECK(ino != 0 && (type & ~(uint32_t)S_IFMT) == 0);
	uint8_t out[SFS_DENTRY_SIZE];
	sfs_dentry_encode(ino, type, out);
	FUZZ_CHECK(memcmp(out, p, SFS_DENTRY_SIZE) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_super, &mode, &n);
	if (!p)
		return 0;
	unsigned which = (mode >> 1) & 3;
	if (which == 0 || which == 3)
		check_super(p, n);
	if (which == 1 || which == 3)
		check_inode(p, n);
	if (which == 2 || which == 3)
		check_dentry(p, n);
	free(p);
	return 0;
}
