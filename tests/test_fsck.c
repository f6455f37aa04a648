/*
 * test_fsck.c - fsck.settfs (built next to the tests) finds, reports by
 * path and repairs planted faults: -n changes nothing and exits 4, -p
 * fixes only the safe ones, -y fixes the rest and exits 1, and the store
 * is then clean (exit 0), mounts and reads back every undamaged file.
 * Also the engine repair: a lost MANIFEST, a damaged value-log entry and a
 * damaged table block.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "settfs.h"
#include "schema.h"
#include "snapshot.h"
#include "fsutil.h"
#include "testutil.h"

static char *dir;
static char out[1 << 16]; /* fsck's output of the last run */
static const settfs_ctx root_ctx = { 0, 0, NULL, 0, 0 };

static int have_fsck(void)
{
	return access("./fsck.settfs", X_OK) == 0;
}

/* Runs fsck.settfs with `flags`; returns its exit status, output in `out`. */
static int fsck(const char *flags)
{
	char cmd[4300], of[4200];
	snprintf(of, sizeof of, "%s.out", dir);
	snprintf(cmd, sizeof cmd, "./fsck.settfs %s %s >%s 2>&1", flags, dir, of);
	int st = system(cmd);
	FILE *f = fopen(of, "r");
	size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
	out[n] = 0;
	if (f)
		fclose(f);
	unlink(of);
	if (getenv("FSCK_SHOW"))
		printf("$ fsck.settfs %s (exit %d)\n%s", flags, WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define HAS(s) ck_assert_msg(strstr(out, (s)) != NULL, "no \"%s\" in:\n%.3000s", (s), out)

/* A hash of every file of the store but LOCK: "nothing changed". */
static uint64_t store_hash(void)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	uint64_t h = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "LOCK"))
			continue;
		char p[4200];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		uint64_t fh = 1469598103934665603ull;
		for (const char *c = de->d_name; *c; c++)
			fh = (fh ^ (uint8_t)*c) * 1099511628211ull;
		FILE *f = fopen(p, "rb");
		if (f) {
			int c;
			while ((c = getc(f)) != EOF)
				fh = (fh ^ (uint8_t)c) * 1099511628211ull;
			fclose(f);
		}
		h += fh; /* order-free */
	}
	closedir(d);
	return h;
}

static settfs *fs_open(void)
{
	settfs_options o;
	settfs_options_init(&o);
	o.engine.create_if_missing = 0;
	settfs *fs;
	int r = settfs_open(dir, &o, &fs);
	ck_assert_msg(r == 0, "settfs_open: %d", r);
	return fs;
}

static sett_db *db_open(void)
{
	settfs_options o;
	settfs_options_init(&o);
	o.engine.create_if_missing = 0;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	return db;
}

static void setup(void)
{
	dir = tu_tmpdir("fsck");
	settfs_options o;
	settfs_options_init(&o);
	ck_assert_int_eq(settfs_mkfs(dir, &o, &root_ctx, 1), 0);
}

static void teardown(void)
{
	tu_rmrf(dir);
	free(dir);
}

/* ino of the path's last component under parent, or 0. */
static uint64_t look(settfs *fs, uint64_t parent, const char *name)
{
	struct stat st;
	if (settfs_lookup(fs, parent, name, &st) != 0)
		return 0;
	settfs_forget(fs, st.st_ino, 1);
	return st.st_ino;
}

static void expect_data(settfs *fs, uint64_t ino, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(n + 16);
	ck_assert_int_eq(settfs_read(fs, ino, 0, n + 16, got), (ssize_t)n);
	ck_assert_msg(memcmp(got, want, n) == 0, "inode %llu reads other bytes",
		      (unsigned long long)ino);
	free(got);
}

static void rewrite_inode(sett_db *db, uint64_t ino, uint32_t nlink)
{
	uint8_t k[SFS_KEY_MAX];
	size_t kn = sfs_key_inode(k, ino);
	void *v;
	size_t vn;
	ck_assert_int_eq(sett_get(db, (sett_val){ kn, k }, 0, &v, &vn), 0);
	sfs_inode in;
	ck_assert_int_eq(sfs_inode_decode(v, vn, &in), 0);
	free(v);
	in.nlink = nlink;
	uint8_t *e;
	size_t en;
	ck_assert_int_eq(sfs_inode_encode(&in, &e, &en), 0);
	ck_assert_int_eq(sett_put(db, (sett_val){ kn, k }, (sett_val){ en, e }), 0);
	free(e);
	sfs_inode_free(&in);
}

/* The path of the biggest table (newest 0) or the newest one (1) into path;
 * returns its size. */
static long long pick_table(int newest, char *path, size_t on)
{
	DIR *dd = opendir(dir);
	ck_assert_ptr_nonnull(dd);
	struct dirent *de;
	long long best = -1, size = -1;
	while ((de = readdir(dd))) {
		size_t l = strlen(de->d_name);
		if (l <= 4 || strcmp(de->d_name + l - 4, ".sst"))
			continue;
		char p[4200];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		long long v = newest ? (long long)strtoull(de->d_name, NULL, 10) : tu_file_size(p);
		if (v > best) {
			best = v;
			size = tu_file_size(p);
			snprintf(path, on, "%s", p);
		}
	}
	closedir(dd);
	ck_assert_int_ge(best, 0);
	return size;
}

/* Every filesystem fault kind, planted with the engine API. */
START_TEST(test_fs_faults)
{
	if (!have_fsck())
		return;
	static uint8_t big[200000], small[100000];
	uint64_t seed = 3;
	tu_fill_random(&seed, big, sizeof big);
	tu_fill_random(&seed, small, sizeof small);
	settfs *fs = fs_open();
	uint64_t d = tu_mkdir(fs, 1, "d"), sub = tu_mkdir(fs, d, "sub");
	uint64_t f = tu_put_file(fs, d, "f", big, sizeof big);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.k", "v", 1, 0), 0);
	uint64_t g = tu_put_file(fs, sub, "g", "hello", 5);
	uint64_t e = tu_put_file(fs, d, "e", NULL, 0);
	uint64_t keep = tu_put_file(fs, 1, "keep", small, sizeof small);
	struct stat st;
	ck_assert_int_eq(settfs_link(fs, keep, 1, "keep2", &st), 0);
	uint64_t x = tu_mkdir(fs, 1, "x"), y = tu_mkdir(fs, x, "y");
	uint64_t inx = tu_put_file(fs, y, "in", "deep", 4);
	ck_assert_int_eq(settfs_close(fs), 0);
	ck_assert_int_eq(fsck(""), 0);

	sett_db *db = db_open();
	uint8_t k[SFS_KEY_MAX], v[SFS_DENTRY_SIZE];
	/* an entry pointing at a missing inode */
	sfs_dentry_encode(999999, S_IFREG, v);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_dentry(k, 1, "ghost", 5), k },
				  (sett_val){ sizeof v, v }), 0);
	/* lost inodes whose entries and data remain: a file, a directory */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_inode(k, g), k }), 0);
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_inode(k, sub), k }), 0);
	/* a lost inode with nothing left but its entry */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_inode(k, e), k }), 0);
	/* a wrong link count */
	rewrite_inode(db, keep, 5);
	/* an unreachable inode: no entry, no orphan key */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_dentry(k, d, "f", 1), k }), 0);
	/* a chunk of a missing inode, and one past the end of a file */
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_chunk(k, 888888, 0), k },
				  (sett_val){ 3, "zzz" }), 0);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_chunk(k, keep, 50), k },
				  (sett_val){ 3, "zzz" }), 0);
	/* an xattr of a missing inode */
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_xattr(k, 888887, "user.q", 6), k },
				  (sett_val){ 1, "q" }), 0);
	/* a directory loop cut off from the root: x under y under x */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_dentry(k, 1, "x", 1), k }), 0);
	sfs_dentry_encode(x, S_IFDIR, v);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_dentry(k, y, "x", 1), k },
				  (sett_val){ sizeof v, v }), 0);
	ck_assert_int_eq(sett_close(db), 0);

	/* -n: every fault, by path; nothing changes */
	uint64_t h = store_hash();
	ck_assert_int_eq(fsck("-n"), 4);
	HAS("lost: /ghost (inode 999999");
	HAS("lost: /d/e (inode");
	HAS("/d/sub/g (inode");
	HAS("the inode is lost, its entry and data remain: remade as a file");
	HAS("the inode is lost, its entry and entries remain: remade as a directory");
	HAS("/keep (inode");
	HAS("has nlink 5, expected 2");
	HAS("is unreachable");
	HAS("inode 888888");
	HAS("lost: extended attributes of inode 888887");
	HAS("/keep: chunk 50 holds bytes past the end of file");
	HAS("does not reach the root");
	HAS("not fixed (needs -y)");
	ck_assert_uint_eq(store_hash(), h);
	ck_assert_int_eq(fsck(""), 4); /* the default is -n */
	ck_assert_uint_eq(store_hash(), h);

	/* -y fixes everything; then the store is clean */
	ck_assert_int_eq(fsck("-y"), 1);
	HAS("created /lost+found");
	char lf_f[64];
	snprintf(lf_f, sizeof lf_f, "/lost+found/#%llu", (unsigned long long)f);
	HAS(lf_f);
	ck_assert_int_eq(fsck("-n"), 0);

	fs = fs_open();
	uint64_t lf = look(fs, 1, "lost+found");
	ck_assert_uint_ne(lf, 0);
	ck_assert_int_eq(settfs_getattr(fs, lf, &st), 0);
	ck_assert_uint_eq(st.st_mode, S_IFDIR | 0700);
	char name[64];
	snprintf(name, sizeof name, "#%llu", (unsigned long long)f);
	ck_assert_uint_eq(look(fs, lf, name), f);
	expect_data(fs, f, big, sizeof big);
	char xv[4];
	ck_assert_int_eq(settfs_getxattr(fs, f, "user.k", xv, sizeof xv), 1);
	ck_assert_uint_eq(look(fs, 1, "keep"), keep);
	ck_assert_int_eq(settfs_getattr(fs, keep, &st), 0);
	ck_assert_int_eq(st.st_nlink, 2);
	expect_data(fs, keep, small, sizeof small);
	ck_assert_uint_eq(look(fs, 1, "ghost"), 0);
	ck_assert_uint_eq(look(fs, d, "e"), 0);
	ck_assert_uint_eq(look(fs, d, "sub"), sub);
	ck_assert_int_eq(settfs_getattr(fs, sub, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_uint_eq(look(fs, sub, "g"), g);
	expect_data(fs, g, (const uint8_t *)"hello", 5);
	snprintf(name, sizeof name, "#%llu", (unsigned long long)x);
	ck_assert_uint_eq(look(fs, lf, name), x);
	ck_assert_uint_eq(look(fs, x, "y"), y);
	ck_assert_uint_eq(look(fs, y, "in"), inx);
	ck_assert_uint_eq(look(fs, y, "x"), 0);
	ck_assert_int_eq(settfs_getattr(fs, 1, &st), 0);
	ck_assert_int_eq(st.st_nlink, 4); /* 2 + d and lost+found */
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* the value of an ACL: owner rw-, user 1000 rw-, group r--, mask `mask`, other r-- */
static size_t acl_value(uint8_t *b, unsigned mask)
{
	static const uint8_t e[] = { 2, 0, 0, 0,
		1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,  2, 0, 6, 0, 0xe8, 3, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,  0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
		0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff };
	memcpy(b, e, sizeof e);
	b[4 + 3 * 8 + 2] = (uint8_t)mask;
	return sizeof e;
}

/*
 * POSIX ACLs: an access ACL that disagrees with the mode follows the mode
 * (-p); one that is no ACL, and a default ACL on a file, are removed (-y).
 */
START_TEST(test_acl_faults)
{
	if (!have_fsck())
		return;
	settfs *fs = fs_open();
	uint64_t f = tu_put_file(fs, 1, "f", "x", 1), g = tu_put_file(fs, 1, "g", "y", 1);
	uint8_t b[64], k[SFS_KEY_MAX];
	size_t n = acl_value(b, 6);
	ck_assert_int_eq(settfs_setxattr(fs, f, "system.posix_acl_access", b, n, 0), 0);
	ck_assert_int_eq(settfs_setxattr(fs, g, "system.posix_acl_access", b, n, 0), 0);
	struct stat st;
	ck_assert_int_eq(settfs_getattr(fs, f, &st), 0);
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0664);
	ck_assert_int_eq(settfs_close(fs), 0);
	ck_assert_int_eq(fsck("-n"), 0);

	sett_db *db = db_open();
	acl_value(b, 7); /* mask rwx: the mode's group bits say rw- */
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_xattr(k, f, "system.posix_acl_access", 23), k },
				  (sett_val){ n, b }), 0);
	b[0] = 3; /* no version-3 ACLs exist */
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_xattr(k, g, "system.posix_acl_access", 23), k },
				  (sett_val){ n, b }), 0);
	b[0] = 2;
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_xattr(k, f, "system.posix_acl_default", 24), k },
				  (sett_val){ n, b }), 0);
	ck_assert_int_eq(sett_close(db), 0);

	ck_assert_int_eq(fsck("-n"), 4);
	HAS("/f: access ACL says mode 674, the inode 664");
	HAS("/g: system.posix_acl_access is not a valid ACL: removed");
	HAS("/f: system.posix_acl_default on a non-directory: removed");
	ck_assert_int_eq(fsck("-p"), 5);
	ck_assert_int_eq(fsck("-y"), 1);
	ck_assert_int_eq(fsck("-n"), 0);

	fs = fs_open();
	ck_assert_int_eq(settfs_getxattr(fs, f, "system.posix_acl_access", b, sizeof b), (ssize_t)n);
	ck_assert_uint_eq(b[4 + 3 * 8 + 2], 6); /* the mask from the mode */
	ck_assert_int_eq(settfs_getxattr(fs, f, "system.posix_acl_default", b, sizeof b), -ENODATA);
	ck_assert_int_eq(settfs_getxattr(fs, g, "system.posix_acl_access", b, sizeof b), -ENODATA);
	ck_assert_int_eq(settfs_getattr(fs, g, &st), 0);
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0664);
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* -p fixes the safe faults and leaves the rest (exit 1|4), -y the rest. */
START_TEST(test_preen)
{
	if (!have_fsck())
		return;
	settfs *fs = fs_open();
	uint64_t a = tu_put_file(fs, 1, "a", "abc", 3);
	static uint8_t bdata[70000];
	uint64_t b = tu_put_file(fs, 1, "b", bdata, sizeof bdata);
	ck_assert_int_eq(settfs_close(fs), 0);
	sett_db *db = db_open();
	uint8_t k[SFS_KEY_MAX], v[SFS_DENTRY_SIZE];
	rewrite_inode(db, a, 3);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_orphan(k, a), k }, (sett_val){ 0, "" }), 0);
	/* b: unlinked while open when the daemon died; mount or -p reclaims it */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_dentry(k, 1, "b", 1), k }), 0);
	rewrite_inode(db, b, 0);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_orphan(k, b), k }, (sett_val){ 0, "" }), 0);
	sfs_dentry_encode(777777, S_IFREG, v);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_dentry(k, 1, "ghost", 5), k },
				  (sett_val){ sizeof v, v }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(fsck("-p"), 5);
	HAS("/a (inode");
	HAS("has links and an orphan key");
	HAS("reclaimed unlinked inode");
	HAS("lost: /ghost");
	ck_assert_int_eq(fsck("-n"), 4);
	ck_assert(strstr(out, "has nlink") == NULL);
	ck_assert_int_eq(fsck("-y"), 1);
	ck_assert_int_eq(fsck("-n"), 0);
	ck_assert_int_eq(fsck("-n -y"), 16);
	/* b is gone with its chunks */
	db = db_open();
	void *val;
	size_t vn;
	ck_assert_int_eq(sett_get(db, (sett_val){ sfs_key_inode(k, b), k }, 0, &val, &vn),
			 SETT_ENOTFOUND);
	ck_assert_int_eq(sett_get(db, (sett_val){ sfs_key_chunk(k, b, 0), k }, 0, &val, &vn),
			 SETT_ENOTFOUND);
	ck_assert_int_eq(sett_close(db), 0);
}
END_TEST

/*
 * A directory removed while the kernel still knew it keeps its inode and
 * an orphan key until then, or until the next mount when the daemon
 * stopped first: a state fsck takes as it is (-p reclaims it, as for a
 * file); one that still holds an entry is a fault.
 */
START_TEST(test_orphan_directory)
{
	if (!have_fsck())
		return;
	settfs *fs = fs_open();
	uint64_t d = tu_mkdir(fs, 1, "d"), e = tu_mkdir(fs, 1, "e");
	tu_put_file(fs, e, "in", "x", 1);
	ck_assert_int_eq(settfs_close(fs), 0);
	sett_db *db = db_open();
	uint8_t k[SFS_KEY_MAX];
	/* d as rmdir leaves it while open: no entry, nlink 0, an orphan key */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_dentry(k, 1, "d", 1), k }), 0);
	rewrite_inode(db, d, 0);
	rewrite_inode(db, 1, 3);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_orphan(k, d), k }, (sett_val){ 0, "" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(fsck("-n"), 0);
	ck_assert_int_eq(fsck("-p"), 0);
	HAS("reclaimed unlinked inode");
	ck_assert_int_eq(fsck("-n"), 0);
	db = db_open();
	void *v;
	size_t vn;
	ck_assert_int_eq(sett_get(db, (sett_val){ sfs_key_inode(k, d), k }, 0, &v, &vn),
			 SETT_ENOTFOUND);
	/* the same for e, which still holds a file: not a removed directory */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_dentry(k, 1, "e", 1), k }), 0);
	rewrite_inode(db, e, 0);
	rewrite_inode(db, 1, 2);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_orphan(k, e), k }, (sett_val){ 0, "" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(fsck("-n"), 4);
	HAS("is unreachable");
}
END_TEST

static void set_marker(sett_db *db, int kind, const char *name)
{
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	ck_assert_int_eq(sfs_snap_marker_set(b, kind, name), 0);
	ck_assert_int_eq(sett_write(db, b, 1, NULL), 0);
	sett_batch_free(b);
}

/*
 * The marker of an interrupted rollback: reported while its snapshot is
 * there (running the rollback again finishes it); once -y removes that
 * snapshot (a damaged record) the rollback can never finish, and the
 * marker goes too, so the store mounts again.  A full receive's marker
 * names a snapshot that is not there yet: reported and kept.
 */
START_TEST(test_rollback_marker)
{
	if (!have_fsck())
		return;
	settfs *fs = fs_open();
	tu_put_file(fs, 1, "a", "abc", 3);
	ck_assert_int_eq(settfs_close(fs), 0);
	sett_db *db = db_open();
	ck_assert_int_eq(sfs_snap_add(db, "s", NULL, 0, NULL), 0);
	set_marker(db, SFS_MARK_ROLLBACK, "s");
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(fsck("-y"), 4);
	HAS("a rollback to snapshot s (or a receive from it) was interrupted");

	db = db_open();
	uint8_t k[SFS_KEY_MAX];
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_snap(k, "s", 1), k },
				  (sett_val){ 3, "bad" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	uint64_t h = store_hash();
	ck_assert_int_eq(fsck("-n"), 4);
	ck_assert_uint_eq(store_hash(), h);
	HAS("snapshot s: damaged record: removed");
	HAS("a rollback to snapshot s was interrupted and s is gone: it cannot be finished");
	ck_assert_int_eq(fsck("-y"), 1);
	ck_assert_int_eq(fsck("-n"), 0);
	fs = fs_open();
	ck_assert_uint_ne(look(fs, 1, "a"), 0);
	ck_assert_int_eq(settfs_close(fs), 0);

	db = db_open();
	set_marker(db, SFS_MARK_CREATE, "n");
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(fsck("-y"), 4);
	HAS("a receive of snapshot n was interrupted");
	settfs_options o;
	settfs_options_init(&o);
	o.engine.create_if_missing = 0;
	ck_assert_int_eq(settfs_open(dir, &o, &fs), -EUCLEAN);
}
END_TEST

/* A lost MANIFEST: -n refuses to guess, -y rebuilds it from the tables,
 * with the newest version of every file (not one an older table holds). */
START_TEST(test_manifest_rebuild)
{
	if (!have_fsck())
		return;
	static uint8_t one[150000], two[150000];
	uint64_t seed = 11;
	tu_fill_random(&seed, one, sizeof one);
	tu_fill_random(&seed, two, sizeof two);
	settfs *fs = fs_open();
	uint64_t ino[20];
	for (int i = 0; i < 20; i++) {
		char n[16];
		snprintf(n, sizeof n, "f%d", i);
		ino[i] = tu_put_file(fs, 1, n, one, 1000 + (size_t)i * 7000);
	}
	ck_assert_int_eq(settfs_close(fs), 0);
	/* a second table with newer versions: overwrites and an unlink */
	fs = fs_open();
	ck_assert_int_eq(settfs_file_open(fs, ino[3], O_RDWR), 0);
	ck_assert_int_eq(settfs_write(fs, ino[3], 0, two, sizeof two, 0), (ssize_t)sizeof two);
	ck_assert_int_eq(settfs_release(fs, ino[3], O_RDWR), 0);
	ck_assert_int_eq(settfs_unlink(fs, 1, "f5"), 0);
	uint64_t d = tu_mkdir(fs, 1, "later");
	uint64_t l = tu_put_file(fs, d, "l", two, 5000);
	ck_assert_int_eq(settfs_close(fs), 0);
	ck_assert_int_eq(fsck("-n"), 0);

	char mp[4200];
	snprintf(mp, sizeof mp, "%s/MANIFEST", dir);
	ck_assert_int_eq(unlink(mp), 0);
	uint64_t h = store_hash();
	ck_assert_int_eq(fsck("-n"), 4);
	HAS("-y");
	ck_assert_uint_eq(store_hash(), h);
	ck_assert_int_eq(fsck("-p"), 4);
	ck_assert_uint_eq(store_hash(), h);
	ck_assert_int_eq(fsck("-y"), 1);
	HAS("rebuilt");
	ck_assert_int_eq(fsck("-n"), 0);

	fs = fs_open();
	for (int i = 0; i < 20; i++) {
		char n[16];
		snprintf(n, sizeof n, "f%d", i);
		if (i == 5) {
			ck_assert_uint_eq(look(fs, 1, n), 0);
			continue;
		}
		ck_assert_uint_eq(look(fs, 1, n), ino[i]);
		if (i == 3)
			expect_data(fs, ino[i], two, sizeof two);
		else
			expect_data(fs, ino[i], one, 1000 + (size_t)i * 7000);
	}
	ck_assert_uint_eq(look(fs, d, "l"), l);
	expect_data(fs, l, two, 5000);
	ck_assert_int_eq(settfs_close(fs), 0);
	/* the overwritten and deleted values are garbage that GC can see */
	sett_db *db = db_open();
	sett_vlog_info vi[16];
	int nv = sett_vlog_files(db, vi, 16);
	uint64_t discard = 0;
	for (int i = 0; i < nv && i < 16; i++)
		discard += vi[i].discard_bytes;
	ck_assert_uint_ge(discard, (1000 + 3 * 7000) + (1000 + 5 * 7000)); /* f3 old, f5 */
	ck_assert_int_eq(sett_close(db), 0);
}
END_TEST

/* A crash leaves writes in a WAL; then the MANIFEST is lost too: the
 * rebuild takes the WAL's writes along. */
START_TEST(test_rebuild_with_wal)
{
	if (!have_fsck())
		return;
	static uint8_t early[90000], late[90000];
	uint64_t seed = 17;
	tu_fill_random(&seed, early, sizeof early);
	tu_fill_random(&seed, late, sizeof late);
	settfs *fs = fs_open();
	uint64_t e = tu_put_file(fs, 1, "early", early, sizeof early);
	ck_assert_int_eq(settfs_close(fs), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		settfs *cfs = fs_open();
		tu_put_file(cfs, 1, "late", late, sizeof late);
		ck_assert_int_eq(settfs_unlink(cfs, 1, "early"), 0);
		_exit(0); /* a crash: no close, nothing flushed to a table */
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char mp[4200];
	snprintf(mp, sizeof mp, "%s/MANIFEST", dir);
	ck_assert_int_eq(unlink(mp), 0);
	ck_assert_int_eq(fsck("-n"), 4);
	ck_assert_int_eq(fsck("-y"), 1);
	HAS("1 logs");
	ck_assert_int_eq(fsck("-n"), 0);
	fs = fs_open();
	uint64_t l = look(fs, 1, "late");
	ck_assert_uint_ne(l, 0);
	expect_data(fs, l, late, sizeof late);
	ck_assert_uint_eq(look(fs, 1, "early"), 0);
	ck_assert_int_eq(settfs_getattr(fs, e, &(struct stat){ 0 }), -ENOENT);
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* A MANIFEST (then a KEYREGISTRY) that fails its checksum: refused, then
 * rebuilt by -y. */
START_TEST(test_manifest_damaged)
{
	if (!have_fsck())
		return;
	static uint8_t data[50000];
	uint64_t seed = 23;
	tu_fill_random(&seed, data, sizeof data);
	settfs *fs = fs_open();
	uint64_t f = tu_put_file(fs, 1, "f", data, sizeof data);
	ck_assert_int_eq(settfs_close(fs), 0);
	char mp[4200];
	snprintf(mp, sizeof mp, "%s/MANIFEST", dir);
	tu_flip_byte(mp, 13); /* the header checksum */
	uint64_t h = store_hash();
	ck_assert_int_eq(fsck("-n"), 4);
	HAS("MANIFEST");
	ck_assert_uint_eq(store_hash(), h);
	ck_assert_int_eq(fsck("-y"), 1);
	ck_assert_int_eq(fsck("-n"), 0);
	char qp[4200];
	snprintf(qp, sizeof qp, "%s/quarantine/MANIFEST", dir);
	ck_assert_int_eq(access(qp, F_OK), 0);
	/* and a KEYREGISTRY that fails its checksum */
	snprintf(mp, sizeof mp, "%s/KEYREGISTRY", dir);
	tu_flip_byte(mp, 20);
	ck_assert_int_eq(fsck("-n"), 4);
	HAS("KEYREGISTRY");
	ck_assert_int_eq(fsck("-y"), 1);
	ck_assert_int_eq(fsck("-n"), 0);
	fs = fs_open();
	ck_assert_uint_eq(look(fs, 1, "f"), f);
	expect_data(fs, f, data, sizeof data);
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* Finds the first offset of `n` bytes equal to `c` in file path. */
static long long find_run(const char *path, int c, size_t n)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	long long off = 0, run = 0;
	int ch;
	while ((ch = getc(f)) != EOF) {
		run = ch == c ? run + 1 : 0;
		if ((size_t)run == n) {
			fclose(f);
			return off - (long long)n + 1;
		}
		off++;
	}
	fclose(f);
	return -1;
}

/* A damaged value-log entry: reported as the file's byte range; -y drops
 * the chunk and moves the damaged file aside; the other bytes survive. */
START_TEST(test_vlog_damage)
{
	if (!have_fsck())
		return;
	static uint8_t data[3 * 65536], other[70000];
	memset(data, 'A', 65536);
	memset(data + 65536, 'B', 65536);
	memset(data + 131072, 'C', 65536);
	uint64_t seed = 5;
	tu_fill_random(&seed, other, sizeof other);
	settfs *fs = fs_open();
	uint64_t d = tu_mkdir(fs, 1, "dir");
	uint64_t b = tu_put_file(fs, d, "big", data, sizeof data);
	uint64_t o = tu_put_file(fs, 1, "other", other, sizeof other);
	ck_assert_int_eq(settfs_close(fs), 0);

	char vp[4200];
	snprintf(vp, sizeof vp, "%s/000001.vlog", dir);
	long long at = find_run(vp, 'B', 4096);
	ck_assert_int_ge(at, 0);
	tu_flip_byte(vp, at + 1000);
	uint64_t h = store_hash();
	ck_assert_int_eq(fsck("-n"), 4);
	HAS("/dir/big: bytes 65536-131071 unreadable");
	ck_assert_uint_eq(store_hash(), h);
	ck_assert_int_eq(fsck("-y"), 1);
	HAS("/dir/big: bytes 65536-131071 lost");
	ck_assert_int_eq(fsck("-n"), 0);
	char qp[4200];
	snprintf(qp, sizeof qp, "%s/quarantine/000001.vlog", dir);
	ck_assert_int_eq(access(qp, F_OK), 0);

	fs = fs_open();
	memset(data + 65536, 0, 65536);
	expect_data(fs, b, data, sizeof data);
	expect_data(fs, o, other, sizeof other);
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* A damaged table block: the store does not open or verify; -y rewrites
 * the table without that block and the store is clean and mounts. */
START_TEST(test_table_damage)
{
	if (!have_fsck())
		return;
	settfs *fs = fs_open();
	for (int i = 0; i < 400; i++) {
		char n[32];
		snprintf(n, sizeof n, "file-with-a-long-name-%04d", i);
		tu_put_file(fs, 1, n, n, strlen(n));
	}
	ck_assert_int_eq(settfs_close(fs), 0);
	ck_assert_int_eq(fsck("-n"), 0);
	/* the biggest table; a byte in its first data block */
	char tp[4200];
	long long best = pick_table(0, tp, sizeof tp);
	ck_assert_int_gt(best, 20000);
	tu_flip_byte(tp, 100);
	tu_flip_byte(tp, best / 2);
	uint64_t h = store_hash();
	int r = fsck("-n");
	ck_assert_int_eq(r, 4);
	/* both damaged blocks are reported, not only the first */
	const char *p1 = strstr(out, "corrupt block at offset");
	ck_assert_ptr_nonnull(p1);
	ck_assert_ptr_nonnull(strstr(p1 + 1, "corrupt block at offset"));
	ck_assert_uint_eq(store_hash(), h);
	ck_assert_int_eq(fsck("-y"), 1);
	HAS("lost");
	ck_assert_int_eq(fsck("-n"), 0);
	fs = fs_open();
	/* the last files are in later blocks and survive */
	for (int i = 398; i < 400; i++) {
		char n[32];
		snprintf(n, sizeof n, "file-with-a-long-name-%04d", i);
		uint64_t ino = look(fs, 1, n);
		ck_assert_uint_ne(ino, 0);
		expect_data(fs, ino, (const uint8_t *)n, strlen(n));
	}
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* A table whose footer or index is damaged does not open: -y finds its
 * data blocks by their checksums and every file comes back. */
START_TEST(test_table_meta_damage)
{
	if (!have_fsck())
		return;
	settfs *fs = fs_open();
	for (int i = 0; i < 300; i++) {
		char n[32];
		snprintf(n, sizeof n, "file-with-a-long-name-%04d", i);
		tu_put_file(fs, 1, n, n, strlen(n));
	}
	ck_assert_int_eq(settfs_close(fs), 0);
	char tp[4200];
	long long best = pick_table(0, tp, sizeof tp);
	/* the index (where the footer says it is), then the footer, then a
	 * data block */
	uint8_t foot[68];
	int tfd = open(tp, O_RDONLY);
	ck_assert_int_ge(tfd, 0);
	ck_assert_int_eq(pread(tfd, foot, sizeof foot, best - (long long)sizeof foot),
			 (ssize_t)sizeof foot);
	close(tfd);
	uint64_t ioff = 0, isize = 0;
	for (int i = 7; i >= 0; i--) {
		ioff = ioff << 8 | foot[16 + i];
		isize = isize << 8 | foot[24 + i];
	}
	ck_assert(isize > 0 && ioff + isize < (uint64_t)best);
	tu_flip_byte(tp, (long long)(ioff + isize / 2));
	tu_flip_byte(tp, best - 20);
	tu_flip_byte(tp, 5000); /* among the chunk keys, which come first */
	ck_assert_int_eq(fsck("-n"), 4);
	ck_assert_int_eq(fsck("-y"), 1);
	HAS("read by their checksums");
	HAS("damaged bytes before offset");
	/* the blocks around the damage are this table's own: nothing else is
	 * suspected of holding older data */
	ck_assert_msg(strstr(out, "may be older than it was") == NULL, "%.2000s", out);
	static char report[sizeof out];
	memcpy(report, out, sizeof out);
	ck_assert_int_eq(fsck("-n"), 0);
	fs = fs_open();
	for (int i = 0; i < 300; i++) {
		char n[32], p[40];
		snprintf(n, sizeof n, "file-with-a-long-name-%04d", i);
		snprintf(p, sizeof p, "/%s ", n);
		uint64_t ino = look(fs, 1, n);
		if (strstr(report, p)) /* named as damaged */
			continue;
		ck_assert_msg(ino != 0, "%s lost", n);
		expect_data(fs, ino, (const uint8_t *)n, strlen(n));
	}
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* A damaged block of a newer table while an older table holds the same
 * chunk: the rebuild has only the older bytes, and says so by path. */
START_TEST(test_stale_after_damage)
{
	if (!have_fsck())
		return;
	static uint8_t one[65536], two[65536];
	memset(one, '1', sizeof one);
	memset(two, '2', sizeof two);
	settfs *fs = fs_open();
	uint64_t f = tu_put_file(fs, 1, "f", one, sizeof one);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = fs_open();
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, two, sizeof two, 0), (ssize_t)sizeof two);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_close(fs), 0);
	/* the newest table: its first block holds the chunk key */
	char tp[4200];
	pick_table(1, tp, sizeof tp);
	tu_flip_byte(tp, 3);
	ck_assert_int_eq(fsck("-y"), 1);
	HAS("/f: bytes 0-65535 may be older than it was");
	ck_assert_int_eq(fsck("-n"), 0);
	fs = fs_open();
	expect_data(fs, f, one, sizeof one);
	ck_assert_int_eq(settfs_close(fs), 0);
}
END_TEST

/* ---- engine repair after value-log GC ---- */

static void gc_key(char *k, size_t n, int i) { snprintf(k, n, "key%03d", i); }

static void gc_val(uint8_t *v, size_t n, int i, int round)
{
	uint64_t s = (uint64_t)i * 1000 + (uint64_t)round + 1;
	tu_fill_random(&s, v, n);
}

/* Counts what a repair reports lost. */
static void count_lost(void *arg, const sett_repair_event *ev)
{
	if (ev->kind != SETT_REPAIR_NOTE)
		++*(int *)arg;
}

/* The table file with the lowest (newest = 0) or highest (newest = 1) id in d. */
static long long table_id(const char *d, int newest)
{
	DIR *dd = opendir(d);
	ck_assert_ptr_nonnull(dd);
	struct dirent *de;
	long long best = -1;
	while ((de = readdir(dd))) {
		size_t l = strlen(de->d_name);
		if (l != 10 || strcmp(de->d_name + 6, ".sst"))
			continue;
		long long id = atoll(de->d_name);
		if (best < 0 || (newest ? id > best : id < best))
			best = id;
	}
	closedir(dd);
	return best;
}

/*
 * GC rewrites a live value under the same key and version into a newer
 * value-log file, and a flush puts the new pointer in a new table while an
 * older table still holds the old pointer, into the file GC then deleted.
 * Repair must keep the copy that reads back, whichever table holds it:
 * layout 0 is the store as the engine left it (the stale copy in the
 * lower-numbered table), layout 1 the same with the table ids swapped.
 * Layout 2 keeps the old file (as a crash before its deletion would): both
 * copies read back, the one in the newer file is kept, and the old file is
 * then all garbage for GC.
 */
START_TEST(test_repair_after_gc)
{
	enum { N = 100, OVER = 80, VSZ = 4096 };
	for (int layout = 0; layout < 3; layout++) {
		char *d = tu_tmpdir("repair-gc");
		sett_options o;
		sett_options_init(&o);
		o.num_compactors = 0;
		o.gc_interval_ms = 0;
		o.value_log_file_size = 1u << 20;
		sett_db *db;
		ck_assert_int_eq(sett_open(d, &o, &db), 0);
		static uint8_t v[VSZ];
		char k[32];
		for (int i = 0; i < N; i++) {
			gc_key(k, sizeof k, i);
			gc_val(v, sizeof v, i, 0);
			ck_assert_int_eq(sett_put(db, (sett_val){ strlen(k), k }, (sett_val){ VSZ, v }), 0);
		}
		ck_assert_int_eq(sett_flush(db), 0);
		long long stale_tab = table_id(d, 1);
		for (int i = 0; i < OVER; i++) {
			gc_key(k, sizeof k, i);
			gc_val(v, sizeof v, i, 1);
			ck_assert_int_eq(sett_put(db, (sett_val){ strlen(k), k }, (sett_val){ VSZ, v }), 0);
		}
		/* rewrites the 20 live values of 000001.vlog, then deletes it
		 * (after a grace period: GC passes retry the deletion) */
		char vp[4200], keep[4300];
		snprintf(vp, sizeof vp, "%s/000001.vlog", d);
		snprintf(keep, sizeof keep, "%s.keep", vp);
		if (layout == 2)
			ck_assert_int_eq(link(vp, keep), 0);
		ck_assert_int_eq(sett_gc(db, 0.3), 0);
		for (int t = 0; t < 1000 && access(vp, F_OK) == 0; t++) {
			usleep(10000);
			int g = sett_gc(db, 0.3);
			ck_assert_msg(g == 0 || g == SETT_ENOREWRITE, "sett_gc: %s", sett_strerror(g));
		}
		ck_assert_msg(access(vp, F_OK) != 0, "GC did not delete 000001.vlog");
		ck_assert_int_eq(sett_flush(db), 0);
		for (int i = 0; i < N; i++) {
			void *got;
			size_t n;
			gc_key(k, sizeof k, i);
			ck_assert_int_eq(sett_get(db, (sett_val){ strlen(k), k }, 0, &got, &n), 0);
			free(got);
		}
		ck_assert_int_eq(sett_close(db), 0);
		if (layout == 1) {
			/* the stale copy's table gets an id above every other one */
			char from[4200], to[4200];
			long long top = table_id(d, 1);
			ck_assert_int_gt(top, stale_tab);
			snprintf(from, sizeof from, "%s/%06lld.sst", d, stale_tab);
			snprintf(to, sizeof to, "%s/%06lld.sst", d, top + 1);
			ck_assert_int_eq(rename(from, to), 0);
		}
		if (layout == 2)
			ck_assert_int_eq(rename(keep, vp), 0);
		int lost = 0;
		ck_assert_int_eq(sett_repair(d, &o, count_lost, &lost), 0);
		ck_assert_msg(lost == 0, "layout %d: repair lost %d values", layout, lost);
		ck_assert_int_eq(sett_open(d, &o, &db), 0);
		for (int i = 0; i < N; i++) {
			void *got;
			size_t n;
			gc_key(k, sizeof k, i);
			int r = sett_get(db, (sett_val){ strlen(k), k }, 0, &got, &n);
			ck_assert_msg(r == 0, "layout %d: %s after repair: %s", layout, k,
				      sett_strerror(r));
			gc_val(v, sizeof v, i, i < OVER);
			ck_assert_msg(n == VSZ && memcmp(got, v, VSZ) == 0,
				      "layout %d: %s: wrong value", layout, k);
			free(got);
		}
		sett_vlog_info vi[8];
		int nv = sett_vlog_files(db, vi, 8);
		ck_assert_int_gt(nv, 0);
		ck_assert_int_le(nv, 8);
		for (int i = 0; i < nv; i++)
			ck_assert_msg(vi[i].fid != 1 || vi[i].live_bytes == 0,
				      "layout %d: 000001.vlog still holds %llu live bytes", layout,
				      (unsigned long long)vi[i].live_bytes);
		ck_assert_int_eq(vi[0].fid == 1, layout == 2);
		ck_assert_int_eq(sett_close(db), 0);
		tu_rmrf(d);
		free(d);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fsck");
	TCase *tc = tcase_create("fsck");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fs_faults);
	tcase_add_test(tc, test_preen);
	tcase_add_test(tc, test_rollback_marker);
	tcase_add_test(tc, test_orphan_directory);
	tcase_add_test(tc, test_acl_faults);
	tcase_add_test(tc, test_manifest_rebuild);
	tcase_add_test(tc, test_rebuild_with_wal);
	tcase_add_test(tc, test_manifest_damaged);
	tcase_add_test(tc, test_vlog_damage);
	tcase_add_test(tc, test_table_damage);
	tcase_add_test(tc, test_stale_after_damage);
	tcase_add_test(tc, test_table_meta_damage);
	tcase_add_test(tc, test_repair_after_gc);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
