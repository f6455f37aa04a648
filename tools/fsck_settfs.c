/*
 * fsck_settfs.c - fsck.settfs: check a settfs store.
 *
 *   fsck.settfs [-q] STORE
 *
 * First the engine verifies every checksum (sett_verify), then the
 * filesystem invariants are checked over a full scan of the keys: a valid
 * superblock and inode counter; every inode decodes; every directory entry
 * names an existing inode of the type it records, under a directory; nlink
 * equals the number of entries (directories: 2 + subdirectories); every
 * directory reaches the root through its parent pointers; an inode without
 * entries has an orphan key; chunks and xattrs belong to existing inodes,
 * chunks lie within the file size, and the stored bytes match the inode's
 * block count.  Each fault is printed with its key.
 *
 * The store is opened read-only; a store the engine refuses to open (a
 * damaged MANIFEST, say) is reported with the file and offset and counts
 * as a fault.  Exit status: 0 clean, 1 faults found, 2 operational error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema.h"
#include "settfs.h"

typedef struct fino {
	uint64_t ino;
	uint32_t mode, nlink, flags;
	uint64_t size, blocks, parent;
	uint64_t refs, subdirs, stored;
	int orphan;
} fino;

static long faults;
static int quiet;

static void print_key(const uint8_t *k, size_t n)
{
	fputs(" key ", stdout);
	for (size_t i = 0; i < n && i < 80; i++)
		printf("%02x", k[i]);
	if (n > 80)
		fputs("...", stdout);
}

static void fault(const void *k, size_t kn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fault(const void *k, size_t kn, const char *fmt, ...)
{
	faults++;
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("fault: ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	if (k)
		print_key(k, kn);
	putchar('\n');
}

static void report(void *arg, const char *msg)
{
	(void)arg;
	fault(NULL, 0, "engine: %s", msg);
}

static fino *inodes;
static size_t ninodes, capinodes;

static fino *find(uint64_t ino)
{
	size_t lo = 0, hi = ninodes;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (inodes[m].ino < ino)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < ninodes && inodes[lo].ino == ino ? &inodes[lo] : NULL;
}

static int scan(sett_db *db, char tag, int key_only, sett_iter **itp)
{
	uint8_t p[1] = { (uint8_t)tag };
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = key_only;
	io.prefix.data = p;
	io.prefix.size = 1;
	int r = sett_iter_new(db, &io, itp);
	if (r == 0)
		sett_iter_rewind(*itp);
	return r;
}

static int op_error(const char *what, int r)
{
	fprintf(stderr, "fsck.settfs: %s: %s\n", what, sett_strerror(r));
	return 2;
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "qh")) != -1) {
		if (c == 'q') {
			quiet = 1;
		} else {
			printf("usage: fsck.settfs [-q] STORE\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: fsck.settfs [-q] STORE\n");
		return 2;
	}
	const char *store = argv[optind];
	struct stat sst;
	if (stat(store, &sst) != 0) {
		fprintf(stderr, "fsck.settfs: %s: %s\n", store, strerror(errno));
		return 2;
	}
	sett_options o;
	sett_options_init(&o);
	o.create_if_missing = 0;
	o.read_only = 1;
	o.num_compactors = 0;
	o.gc_discard_ratio = 0;
	/* Read-only, and only that: a check never writes to the store. */
	char why[1024] = "";
	o.error_buf = why;
	o.error_buf_size = sizeof why;
	sett_db *db;
	int r = sett_open(store, &o, &db);
	if (r == SETT_ELOCKED) {
		fprintf(stderr, "fsck.settfs: %s is in use (mounted?)\n", store);
		return 2;
	}
	if (r) {
		fprintf(stderr, "fsck.settfs: cannot open %s: %s\n", store,
			why[0] ? why : sett_strerror(r));
		return r == SETT_ECORRUPT || r == SETT_EFORMAT ? 1 : 2;
	}

	r = sett_verify(db, report, NULL);
	if (r && r != SETT_ECORRUPT) {
		sett_close(db);
		return op_error("verify", r);
	}

	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t vn = 0;
	sfs_super sb = { 0 };
	uint32_t cs = SETTFS_DEFAULT_CHUNK_SIZE;
	r = sett_get(db, (sett_val){ sfs_key_super(k), k }, 0, &v, &vn);
	if (r == SETT_ENOTFOUND) {
		fprintf(stderr, "fsck.settfs: %s: no superblock: not a settfs store\n", store);
		sett_close(db);
		return 2;
	} else if (r) {
		sett_close(db);
		return op_error("superblock", r);
	} else if (sfs_super_decode(v, vn, &sb) != 0) {
		fault(k, 1, "bad superblock");
	} else {
		cs = sb.chunk_size;
	}
	free(v);
	v = NULL;
	uint64_t next_ino = UINT64_MAX;
	r = sett_get(db, (sett_val){ sfs_key_nextino(k), k }, 0, &v, &vn);
	if (r == 0 && vn == 8)
		next_ino = sfs_get_be64(v);
	else if (r == 0 || r == SETT_ENOTFOUND)
		fault(k, 1, "missing or bad inode counter");
	else {
		sett_close(db);
		return op_error("inode counter", r);
	}
	free(v);

	sett_iter *it;
	int err = 0;
	/* inodes */
	if ((r = scan(db, SFS_TAG_INODE, 0, &it)))
		return op_error("scan", r);
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it), val;
		if (key.size != 9) {
			fault(key.data, key.size, "bad inode key");
			continue;
		}
		uint64_t ino = sfs_get_be64((const uint8_t *)key.data + 1);
		if ((r = sett_iter_value(it, &val)))
			break;
		sfs_inode in;
		if (sfs_inode_decode(val.data, val.size, &in) != 0) {
			fault(key.data, key.size, "inode %llu does not decode",
			      (unsigned long long)ino);
			sfs_inode_free(&in);
			continue;
		}
		sfs_inode_free(&in);
		if (ino >= next_ino)
			fault(key.data, key.size, "inode %llu beyond the inode counter %llu",
			      (unsigned long long)ino, (unsigned long long)next_ino);
		if (ninodes == capinodes) {
			capinodes = capinodes ? capinodes * 2 : 1024;
			inodes = realloc(inodes, capinodes * sizeof *inodes);
			if (!inodes) {
				fprintf(stderr, "fsck.settfs: out of memory\n");
				return 2;
			}
		}
		fino *f = &inodes[ninodes++];
		memset(f, 0, sizeof *f);
		f->ino = ino;
		f->mode = in.mode;
		f->nlink = in.nlink;
		f->flags = in.flags;
		f->size = in.size;
		f->blocks = in.blocks;
		f->parent = in.parent;
	}
	err = r ? r : sett_iter_error(it);
	sett_iter_free(it);
	if (err)
		return op_error("scan inodes", err);

	fino *root = find(SETTFS_ROOT_INO);
	if (!root || !S_ISDIR(root->mode))
		fault(k, sfs_key_inode(k, SETTFS_ROOT_INO), "root directory missing or not a directory");

	/* orphans */
	if ((r = scan(db, SFS_TAG_ORPHAN, 1, &it)))
		return op_error("scan", r);
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it);
		fino *f = key.size == 9 ? find(sfs_get_be64((const uint8_t *)key.data + 1)) : NULL;
		if (f)
			f->orphan = 1;
		else if (key.size != 9)
			fault(key.data, key.size, "bad orphan key");
		/* an orphan key without inode is an unfinished reclaim: mount completes it */
	}
	err = sett_iter_error(it);
	sett_iter_free(it);
	if (err)
		return op_error("scan orphans", err);

	/* directory entries */
	if ((r = scan(db, SFS_TAG_DENTRY, 0, &it)))
		return op_error("scan", r);
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it), val;
		const uint8_t *kb = key.data;
		if (key.size <= 9 || key.size > 9 + SETTFS_NAME_MAX ||
		    memchr(kb + 9, '/', key.size - 9) || memchr(kb + 9, 0, key.size - 9)) {
			fault(key.data, key.size, "bad directory entry name");
			continue;
		}
		uint64_t parent = sfs_get_be64(kb + 1), child;
		uint32_t type;
		if ((r = sett_iter_value(it, &val)))
			break;
		if (sfs_dentry_decode(val.data, val.size, &child, &type) != 0) {
			fault(key.data, key.size, "directory entry does not decode");
			continue;
		}
		fino *p = find(parent), *f = find(child);
		if (!p || !S_ISDIR(p->mode))
			fault(key.data, key.size, "entry in missing or non-directory inode %llu",
			      (unsigned long long)parent);
		if (!f) {
			fault(key.data, key.size, "entry points at missing inode %llu",
			      (unsigned long long)child);
			continue;
		}
		if ((f->mode & S_IFMT) != type)
			fault(key.data, key.size, "entry type differs from inode %llu",
			      (unsigned long long)child);
		f->refs++;
		if (S_ISDIR(f->mode)) {
			if (p)
				p->subdirs++;
			if (f->parent != parent)
				fault(key.data, key.size, "directory %llu has parent %llu, entry in %llu",
				      (unsigned long long)child, (unsigned long long)f->parent,
				      (unsigned long long)parent);
		}
	}
	err = r ? r : sett_iter_error(it);
	sett_iter_free(it);
	if (err)
		return op_error("scan entries", err);

	/* chunks */
	if ((r = scan(db, SFS_TAG_CHUNK, 1, &it)))
		return op_error("scan", r);
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it), val;
		if (key.size != SFS_CHUNK_KEY_LEN && key.size != SFS_PAGE_KEY_LEN) {
			fault(key.data, key.size, "bad chunk key");
			continue;
		}
		uint64_t ino = sfs_get_be64((const uint8_t *)key.data + 1);
		uint64_t idx = sfs_get_be64((const uint8_t *)key.data + 9);
		int overlay = key.size == SFS_PAGE_KEY_LEN;
		uint32_t pg = overlay ? sfs_get_be32((const uint8_t *)key.data + 17) : 0;
		fino *f = find(ino);
		if (!f || !S_ISREG(f->mode)) {
			fault(key.data, key.size, "chunk of missing or non-file inode %llu",
			      (unsigned long long)ino);
			continue;
		}
		if (overlay && pg >= cs / SFS_PAGE_SIZE) {
			fault(key.data, key.size, "overlay page %u outside its chunk", pg);
			continue;
		}
		/* reads skip the overlay lookup for files without the flag */
		if (overlay && !(f->flags & SFS_IFLAG_OVERLAYS))
			fault(key.data, key.size, "overlay page of inode %llu, which lacks the overlay flag",
			      (unsigned long long)ino);
		if ((r = sett_iter_value(it, &val)))
			break;
		/* where the key's bytes start in the file, and how many may be there */
		uint64_t start = (uint64_t)pg * SFS_PAGE_SIZE, room = overlay ? SFS_PAGE_SIZE : cs;
		if (val.size > room)
			fault(key.data, key.size, overlay ? "overlay larger than a page"
							  : "chunk larger than the chunk size");
		if (overlay && val.size == 0)
			fault(key.data, key.size, "empty overlay page");
		if (idx > (UINT64_MAX - cs) / cs || idx * cs + start + val.size > f->size)
			fault(key.data, key.size, "chunk %llu beyond the size of inode %llu",
			      (unsigned long long)idx, (unsigned long long)ino);
		f->stored += overlay ? SFS_PAGE_SIZE : val.size;
	}
	err = r ? r : sett_iter_error(it);
	sett_iter_free(it);
	if (err)
		return op_error("scan chunks", err);

	/* xattrs */
	if ((r = scan(db, SFS_TAG_XATTR, 1, &it)))
		return op_error("scan", r);
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		sett_val key = sett_iter_key(it);
		if (key.size <= 9 || key.size > 9 + SETTFS_XATTR_NAME_MAX) {
			fault(key.data, key.size, "bad xattr key");
			continue;
		}
		uint64_t ino = sfs_get_be64((const uint8_t *)key.data + 1);
		fino *f = find(ino);
		if (!f)
			fault(key.data, key.size, "xattr of missing inode");
		/* from format 3 on, deleting an inode without the flag skips its xattrs */
		else if (sb.version >= 3 && !(f->flags & SFS_IFLAG_XATTRS))
			fault(key.data, key.size, "xattr of inode %llu, which lacks the xattr flag",
			      (unsigned long long)ino);
	}
	err = sett_iter_error(it);
	sett_iter_free(it);
	if (err)
		return op_error("scan xattrs", err);

	/* unknown tags */
	{
		sett_iter_options io;
		sett_iter_options_init(&io);
		io.key_only = 1;
		if ((r = sett_iter_new(db, &io, &it)))
			return op_error("scan", r);
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
			sett_val key = sett_iter_key(it);
			const char *tags = "SNIDCXO";
			if (key.size == 0 || !memchr(tags, ((const uint8_t *)key.data)[0], 7))
				fault(key.data, key.size, "key with an unknown tag");
		}
		sett_iter_free(it);
	}

	/* per-inode invariants */
	for (size_t i = 0; i < ninodes; i++) {
		fino *f = &inodes[i];
		size_t kn = sfs_key_inode(k, f->ino);
		uint64_t expect = f->refs;
		if (S_ISDIR(f->mode)) {
			expect = f->refs || f->ino == SETTFS_ROOT_INO ? 2 + f->subdirs : 0;
			if (f->refs > 1)
				fault(k, kn, "directory %llu has %llu entries", (unsigned long long)f->ino,
				      (unsigned long long)f->refs);
		}
		if (f->nlink != expect)
			fault(k, kn, "inode %llu has nlink %u, expected %llu",
			      (unsigned long long)f->ino, f->nlink, (unsigned long long)expect);
		if (f->refs == 0 && f->ino != SETTFS_ROOT_INO && !f->orphan)
			fault(k, kn, "inode %llu is unreachable and not an orphan",
			      (unsigned long long)f->ino);
		if (S_ISREG(f->mode) && f->stored != f->blocks)
			fault(k, kn, "inode %llu counts %llu stored bytes, chunks hold %llu",
			      (unsigned long long)f->ino, (unsigned long long)f->blocks,
			      (unsigned long long)f->stored);
		if (S_ISDIR(f->mode) && f->refs && f->ino != SETTFS_ROOT_INO) {
			/* walk up to the root */
			uint64_t d = f->parent;
			size_t steps = 0;
			while (d != SETTFS_ROOT_INO && steps++ <= ninodes) {
				fino *p = find(d);
				if (!p)
					break;
				d = p->parent;
			}
			if (d != SETTFS_ROOT_INO)
				fault(k, kn, "directory %llu does not reach the root",
				      (unsigned long long)f->ino);
		}
	}
	sett_close(db);
	free(inodes);
	printf("fsck.settfs: %s: %zu inodes, %ld fault%s\n", store, ninodes, faults,
	       faults == 1 ? "" : "s");
	return faults ? 1 : 0;
}
