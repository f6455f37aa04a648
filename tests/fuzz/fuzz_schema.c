/*
 * fuzz_schema.c - the settfs value decoders (fs/schema.c): superblock,
 * inode, directory entry, properties and chunk values.
 *
 * Input: mode byte (bits 1-3 pick the decoder: 0 superblock, 1 inode,
 * 2 directory entry, 3 all three, 4 chunk value, 5 properties), then the
 * value; a chunk value's first byte is its user meta (the codec), and
 * mode bit 4 picks a chunk size of 16 KiB instead of 64 KiB.  Checks: a
 * value that decodes re-encodes to the same bytes (the encodings are
 * canonical); a chunk value decodes to at most the chunk size, exactly
 * the length sfs_chunk_len says, writing nothing past it, and its bytes
 * encoded again decode to themselves.
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

static void check_props(const uint8_t *p, size_t n)
{
	sfs_props pr;
	int r = sfs_props_decode(p, n, &pr);
	FUZZ_CHECK(r == 0 || r == -EIO);
	if (r)
		return;
	uint8_t out[SFS_PROPS_SIZE];
	sfs_props_encode(&pr, out);
	FUZZ_CHECK(memcmp(out, p, SFS_PROPS_SIZE) == 0);
}

static void check_chunk(const uint8_t *p, size_t n, uint32_t cs)
{
	if (n < 1)
		return;
	uint8_t codec = p[0];
	/* a guard past the chunk size: the decoder writes nothing there */
	enum { GUARD = 64 };
	uint8_t *scratch = malloc(cs + GUARD), *z = malloc(cs);
	FUZZ_CHECK(scratch && z);
	memset(scratch + cs, 0xa5, GUARD);
	const uint8_t *out = NULL;
	uint32_t len = 0, hlen = 0;
	int r = sfs_chunk_decode(codec, p + 1, n - 1, cs, scratch, &out, &len);
	int h = sfs_chunk_len(codec, p + 1, n - 1, cs, &hlen);
	FUZZ_CHECK(r == 0 || r == -EIO);
	for (int i = 0; i < GUARD; i++)
		FUZZ_CHECK(scratch[cs + i] == 0xa5);
	if (r == 0) {
		FUZZ_CHECK(h == 0 && hlen == len && len <= cs);
		FUZZ_CHECK(codec == SFS_CODEC_RAW ? out == p + 1 && len == n - 1 : out == scratch);
		/* what decoded, encoded again, decodes to itself */
		long zn = sfs_chunk_compress(1, out, len, z, cs);
		FUZZ_CHECK(zn >= 0 && (size_t)zn <= len);
		if (zn > 0) {
			uint8_t *back = malloc(cs);
			const uint8_t *o2;
			uint32_t l2;
			FUZZ_CHECK(back);
			FUZZ_CHECK(sfs_chunk_decode(SFS_CODEC_ZSTD, z, (size_t)zn, cs, back, &o2, &l2) == 0);
			FUZZ_CHECK(l2 == len && memcmp(o2, out, len) == 0);
			free(back);
		}
	}
	free(scratch);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned mode;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, fuzz_fix_super, &mode, &n);
	if (!p)
		return 0;
	unsigned which = (mode >> 1) & 7;
	if (which == 0 || which == 3)
		check_super(p, n);
	if (which == 1 || which == 3)
		check_inode(p, n);
	if (which == 2 || which == 3)
		check_dentry(p, n);
	if (which == 4)
		check_chunk(p, n, mode & 16 ? 16384 : 65536);
	if (which == 5)
		check_props(p, n);
	free(p);
	return 0;
}
