/*
 * fuzz_fs.c - the settfs core (fs/) on a store of arbitrary keys and values:
 * superblock, inode, directory entry, xattr, chunk and overlay-page values
 * as settfs_open, lookups, directory listings, reads, readlink, xattr
 * calls, small writes, hole punches, truncates, renames and unlinks decode
 * them.
 *
 * Input: mode byte, then records uvarint klen | key | uvarint vlen | value
 * (a dump of a filesystem's keys, fuzz_seeds.c).  The records are written
 * to a fresh store, which is then opened as a filesystem and walked from
 * the root.  Mode bit 1: a chunk key whose value holds the zstd frame
 * magic at byte 4 gets the zstd codec as its user meta (a compressed
 * chunk, doc/FORMAT.md); bit 2: the filesystem is opened with
 * compression=zstd:1, so the writes, punches and truncates store what
 * they change compressed.  Checks: no call returns more bytes than asked for, a byte
 * written into a file reads back, a punched hole reads as zeros, and an
 * xattr that was set reads back, a new file takes no inode number in use.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "coding.h"
#include "fuzz.h"
#include "schema.h"
#include "settfs.h"

#define MAX_NODES 48
#define MAX_NAMES 64
#define READ_MAX (256u << 10)

typedef struct names {
	char *v[MAX_NAMES];
	int n;
} names;

static int fill(void *arg, const char *name, const struct stat *st, off_t next)
{
	names *ns = arg;
	(void)st;
	(void)next;
	if (ns->n == MAX_NAMES)
		return 1;
	if (strcmp(name, ".") && strcmp(name, ".."))
		ns->v[ns->n++] = strdup(name);
	return 0;
}

static void file_ops(settfs *fs, uint64_t ino, const struct stat *st, uint8_t *buf)
{
	if (settfs_file_open(fs, ino, O_RDWR) != 0)
		return;
	uint64_t size = (uint64_t)st->st_size;
	size_t want = size < READ_MAX ? (size_t)size : READ_MAX;
	ssize_t r = settfs_read(fs, ino, 0, want, buf);
	FUZZ_CHECK(r <= (ssize_t)want);
	if (size > READ_MAX && size < ((uint64_t)1 << 62)) {
		r = settfs_read(fs, ino, (off_t)(size - 4096), 8192, buf);
		FUZZ_CHECK(r <= 4096);
	}
	settfs_lseek(fs, ino, 0, SEEK_DATA);
	settfs_lseek(fs, ino, 0, SEEK_HOLE);
	/* a small write into a stored chunk: an overlay page over what is there */
	uint8_t b = 0xa5;
	if (size < ((uint64_t)1 << 40) && settfs_write(fs, ino, 4097, &b, 1, 0) == 1) {
		uint8_t got = 0;
		if (settfs_read(fs, ino, 4097, 1, &got) == 1)
			FUZZ_CHECK(got == b);
		settfs_flush(fs, ino);
		got = 0;
		if (settfs_read(fs, ino, 4097, 1, &got) == 1)
			FUZZ_CHECK(got == b);
	}
	/* changes that read what is stored: a hole punched, a shorter size */
	if (size < ((uint64_t)1 << 40)) {
		settfs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2048, 8192, 0);
		struct stat a = { .st_size = (off_t)(size / 2) };
		struct stat out;
		settfs_setattr(fs, NULL, ino, &a, SETTFS_SET_SIZE, &out);
		uint8_t got = 1;
		if (size / 2 > 2048 + 100 && settfs_read(fs, ino, 2048 + 100, 1, &got) == 1)
			FUZZ_CHECK(got == 0);
	}
	settfs_release(fs, ino, O_RDWR);
}

static void xattr_ops(settfs *fs, uint64_t ino, uint8_t *buf)
{
	char list[4096];
	ssize_t n = settfs_listxattr(fs, ino, list, sizeof list);
	FUZZ_CHECK(n <= (ssize_t)sizeof list);
	for (ssize_t i = 0; i < n;) {
		size_t l = strnlen(list + i, (size_t)(n - i));
		if (i + (ssize_t)l == n)
			break;
		ssize_t g = settfs_getxattr(fs, ino, list + i, buf, SETTFS_XATTR_SIZE_MAX);
		FUZZ_CHECK(g <= SETTFS_XATTR_SIZE_MAX);
		i += (ssize_t)l + 1;
	}
	settfs_getxattr(fs, ino, "user.fuzz", buf, 0);
	if (settfs_setxattr(fs, ino, "user.fuzz", "x", 1, 0) == 0)
		FUZZ_CHECK(settfs_getxattr(fs, ino, "user.fuzz", buf, 1) == 1 && buf[0] == 'x');
	settfs_removexattr(fs, ino, "user.fuzz");
	/* a chmod rewrites a stored access ACL, which must then say the mode */
	struct stat a = { .st_mode = 0640 }, out;
	if (settfs_setattr(fs, NULL, ino, &a, SETTFS_SET_MODE, &out) == 0) {
		ssize_t g = settfs_getxattr(fs, ino, SFS_ACL_ACCESS_NAME, buf, SETTFS_XATTR_SIZE_MAX);
		uint32_t m = 0;
		if (g > 0)
			FUZZ_CHECK(sfs_acl_check(buf, (size_t)g) > 0 &&
				   (sfs_acl_equiv_mode(buf, (size_t)g, &m), m == 0640));
	}
}

/* A new directory in dino inherits a stored default ACL only if it is one. */
static void inherit(settfs *fs, uint64_t dino, uint8_t *buf)
{
	settfs_ctx ctx = { .uid = 0, .gid = 0, .umask = 022 };
	struct stat st;
	if (settfs_mkdir(fs, &ctx, dino, "fuzz-acl", 0777, &st))
		return;
	ssize_t g = settfs_getxattr(fs, st.st_ino, SFS_ACL_DEFAULT_NAME, buf, SETTFS_XATTR_SIZE_MAX);
	if (g > 0)
		FUZZ_CHECK(sfs_acl_check(buf, (size_t)g) > 0);
	else if (g == -ENODATA)
		FUZZ_CHECK((st.st_mode & 0777) == 0755); /* the umask */
	settfs_forget(fs, st.st_ino, 1);
	settfs_rmdir(fs, dino, "fuzz-acl");
}

#define MAX_SEEN 1024
static uint64_t seen[MAX_SEEN];
static int nseen;

static void walk(settfs *fs, uint8_t *buf)
{
	nseen = 0;
	uint64_t todo[MAX_NODES] = { SETTFS_ROOT_INO };
	int head = 0, tail = 1;
	while (head < tail) {
		uint64_t dino = todo[head++];
		settfs_dir *d;
		if (settfs_opendir(fs, dino, &d) != 0)
			continue;
		names ns = { .n = 0 };
		settfs_readdir(fs, d, 0, 0, fill, &ns);
		settfs_releasedir(fs, d);
		inherit(fs, dino, buf);
		for (int i = 0; i < ns.n; i++) {
			struct stat st;
			if (!ns.v[i] || settfs_lookup(fs, dino, ns.v[i], &st) != 0)
				continue;
			uint64_t ino = st.st_ino;
			if (nseen < MAX_SEEN)
				seen[nseen++] = ino;
			settfs_getattr(fs, ino, &st);
			if (S_ISDIR(st.st_mode) && tail < MAX_NODES)
				todo[tail++] = ino;
			else if (S_ISREG(st.st_mode))
				file_ops(fs, ino, &st, buf);
			else if (S_ISLNK(st.st_mode))
				FUZZ_CHECK(settfs_readlink(fs, ino, (char *)buf, 4096) <= 4096);
			xattr_ops(fs, ino, buf);
			settfs_forget(fs, ino, 1);
		}
		/* namespace changes that decode the entries and inodes they touch */
		if (ns.n > 1 && ns.v[0] && ns.v[1]) {
			settfs_rename(fs, dino, ns.v[0], dino, ns.v[1], 0);
			if (settfs_unlink(fs, dino, ns.v[1]) != 0)
				settfs_rmdir(fs, dino, ns.v[1]);
		}
		for (int i = 0; i < ns.n; i++)
			free(ns.v[i]);
	}
	struct statvfs sv;
	settfs_statfs(fs, &sv);
}

/* A new inode never takes a number in use. */
static void create_one(settfs *fs)
{
	settfs_ctx ctx = { .uid = 0, .gid = 0 };
	struct stat st;
	if (settfs_create(fs, &ctx, SETTFS_ROOT_INO, "fuzz-new", 0644, O_RDWR | O_EXCL, &st))
		return;
	FUZZ_CHECK(st.st_ino > SETTFS_ROOT_INO);
	for (int i = 0; i < nseen; i++)
		FUZZ_CHECK(st.st_ino != seen[i]);
	settfs_release(fs, st.st_ino, O_RDWR);
	settfs_forget(fs, st.st_ino, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const char *dir = fuzz_dir();
	settfs_options o;
	settfs_options_init(&o);
	size_t threshold = o.engine.value_threshold;
	fuzz_sett_options(&o.engine, 0);
	o.engine.value_threshold = threshold;
	o.engine.create_if_missing = 1;

	sett_db *db;
	FUZZ_CHECK(sett_open(dir, &o.engine, &db) == 0);
	sett_batch *b;
	FUZZ_CHECK(sett_batch_new(&b) == 0);
	const uint8_t *q = data + 1, *end = data + size;
	while (q < end) {
		uint64_t kl, vl;
		size_t m = varint_get(q, end, &kl);
		if (!m || kl > (uint64_t)(end - q - m))
			break;
		const uint8_t *k = q + m;
		q = k + kl;
		if (!(m = varint_get(q, end, &vl)) || vl > (uint64_t)(end - q - m))
			break;
		uint8_t *v = fuzz_dup(q + m, (size_t)vl);
		q += m + vl;
		if (kl == 1 && k[0] == SFS_TAG_SUPER && (mode & FUZZ_FIX_SUMS))
			fuzz_fix_super(v, (size_t)vl);
		static const uint8_t zmagic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
		uint8_t meta = (mode & 2) && kl == SFS_CHUNK_KEY_LEN && k[0] == SFS_TAG_CHUNK &&
					       vl >= 8 && memcmp(v + 4, zmagic, 4) == 0
				       ? SFS_CODEC_ZSTD
				       : SFS_CODEC_RAW;
		if (kl >= 1 && kl <= SETT_MAX_KEY_SIZE)
			FUZZ_CHECK(sett_batch_set_ex(b, (sett_val){ .data = k, .size = (size_t)kl },
						     (sett_val){ .data = v, .size = (size_t)vl }, 0,
						     meta) == 0);
		free(v);
	}
	FUZZ_CHECK(sett_write(db, b, 0, NULL) == 0);
	sett_batch_free(b);
	FUZZ_CHECK(sett_close(db) == 0);

	o.engine.create_if_missing = 0;
	if (mode & 4)
		FUZZ_CHECK(settfs_parse_compression("zstd:1", &o) == 0);
	settfs *fs;
	int r = settfs_open(dir, &o, &fs);
	FUZZ_CHECK(r <= 0);
	if (r)
		return 0;
	uint8_t *buf = malloc(READ_MAX + SETTFS_XATTR_SIZE_MAX);
	FUZZ_CHECK(buf != NULL);
	walk(fs, buf);
	create_one(fs);
	free(buf);
	settfs_close(fs);
	return 0;
}
