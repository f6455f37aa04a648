/* test_fs.c - the settfs core, driven directly (no mount) on a temporary store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <linux/falloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "acl.h"
#include "fileio.h"
#include "settfs.h"
#include "schema.h"
#include "fileio.h"
#include "fsutil.h"
#include "testutil.h"

static char *dir;
static char *shared_dir; /* dir's value while a test runs on a disk of its own */
static settfs *fs;
static int run_fsck(void);
static const settfs_ctx root_ctx = { 0, 0, NULL, 0, 0 };
static const settfs_ctx user_ctx = { 1000, 1000, NULL, 0, 0 };

/* reserve: -1 for the default rule */
static void fs_open_reserve(int64_t reserve)
{
	settfs_options o;
	settfs_options_init(&o);
	o.engine.mem_table_size = 4u << 20;
	o.engine.disk_reserve = reserve;
	if (reserve >= 0)
		o.engine.reclaim_below = 0; /* refusals test the reclaim a write asks for */
	int r = settfs_open(dir, &o, &fs);
	ck_assert_msg(r == 0, "settfs_open: %d", r);
}

static void fs_open_(void)
{
	fs_open_reserve(-1);
}

static void setup(void)
{
	dir = tu_tmpdir("fs");
	fs_open_();
}

static void teardown(void)
{
	if (fs)
		ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	if (shared_dir) {
		umount2(dir, MNT_DETACH);
		rmdir(dir);
		free(dir);
		dir = shared_dir;
		shared_dir = NULL;
	}
	tu_rmrf(dir);
	free(dir);
}

/*
 * Moves the (closed) store to a disk of its own: a tmpfs of `mb` MiB in a
 * private mount namespace of this test's process (gone with it, even if the
 * test dies), so that the free space a test measures moves only with the
 * store's own writes, not with whatever else runs on the machine's disk.
 * 0, or -1 where that cannot be done (not root): the test then measures
 * the shared disk.
 */
static int own_disk(int mb)
{
	char *m, opt[32];
	if (asprintf(&m, "%s.disk", dir) < 0)
		return -1;
	snprintf(opt, sizeof opt, "size=%dm,mode=0700", mb);
	if (mkdir(m, 0700) != 0 || unshare(CLONE_NEWNS) != 0 ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", m, "tmpfs", 0, opt) != 0) {
		rmdir(m);
		free(m);
		return -1;
	}
	shared_dir = dir;
	dir = m;
	return 0;
}

static void reopen(void)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	fs_open_();
}

static uint64_t mkfile(uint64_t parent, const char *name)
{
	struct stat st;
	int r = settfs_create(fs, &root_ctx, parent, name, 0644, O_RDWR, &st);
	ck_assert_msg(r == 0, "create %s: %d", name, r);
	settfs_forget(fs, st.st_ino, 1); /* the open handle keeps it */
	return st.st_ino;
}

static void attr(uint64_t ino, struct stat *st)
{
	ck_assert_int_eq(settfs_getattr(fs, ino, st), 0);
}

START_TEST(test_root_and_create)
{
	struct stat st;
	attr(SETTFS_ROOT_INO, &st);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_nlink, 2);
	uint64_t f = mkfile(1, "a");
	ck_assert_uint_gt(f, 1);
	ck_assert_int_eq(settfs_lookup(fs, 1, "a", &st), 0);
	ck_assert_uint_eq(st.st_ino, f);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(settfs_lookup(fs, 1, "missing", &st), -ENOENT);
	ck_assert_int_eq(settfs_create(fs, &root_ctx, 1, "a", 0644, O_RDWR | O_EXCL, &st), -EEXIST);
	char longname[300];
	memset(longname, 'x', 256);
	longname[256] = 0;
	ck_assert_int_eq(settfs_create(fs, &root_ctx, 1, longname, 0644, O_RDWR, &st),
			 -ENAMETOOLONG);
	ck_assert_int_eq(settfs_lookup(fs, 1, longname, &st), -ENAMETOOLONG);
	longname[255] = 0;
	ck_assert_int_eq(settfs_create(fs, &root_ctx, 1, longname, 0644, O_RDWR, &st), 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
}
END_TEST

START_TEST(test_write_read_persist)
{
	uint64_t f = mkfile(1, "data");
	size_t n = 300000;
	uint8_t *buf = malloc(n), *back = malloc(n + 10);
	uint64_t seed = 7;
	tu_fill_random(&seed, buf, n);
	/* 4 KiB writes coalesce in the buffers */
	for (size_t off = 0; off < n; off += 4096) {
		size_t c = n - off < 4096 ? n - off : 4096;
		ck_assert_int_eq(settfs_write(fs, f, (off_t)off, buf + off, c, 0), (ssize_t)c);
	}
	/* reads see buffered data */
	ck_assert_int_eq(settfs_read(fs, f, 0, n + 10, back), (ssize_t)n);
	ck_assert(memcmp(buf, back, n) == 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	struct stat st;
	attr(f, &st);
	ck_assert_int_eq(st.st_size, (off_t)n);
	ck_assert_int_ge(st.st_blocks * 512, (blkcnt_t)n);
	reopen();
	memset(back, 0, n);
	attr(f, &st); /* same inode number after reopen */
	ck_assert_int_eq(st.st_size, (off_t)n);
	ck_assert_int_eq(settfs_read(fs, f, 0, n, back), (ssize_t)n);
	ck_assert(memcmp(buf, back, n) == 0);
	ck_assert_int_eq(settfs_lookup(fs, 1, "data", &st), 0);
	ck_assert_uint_eq(st.st_ino, f);
	/* a new inode after reopen never reuses a number */
	uint64_t g = mkfile(1, "later");
	ck_assert_uint_gt(g, f);
	free(buf);
	free(back);
}
END_TEST

START_TEST(test_append_and_overwrite)
{
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, "hello", 5, 0), 5);
	ck_assert_int_eq(settfs_write(fs, f, 0, " world", 6, 1), 6);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, "J", 1, 0), 1);
	char b[32] = { 0 };
	ck_assert_int_eq(settfs_read(fs, f, 0, sizeof b, b), 11);
	ck_assert_str_eq(b, "Jello world");
	ck_assert_int_eq(settfs_read(fs, f, 100, 10, b), 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	/* O_TRUNC */
	ck_assert_int_eq(settfs_file_open(fs, f, O_WRONLY | O_TRUNC), 0);
	struct stat st;
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_blocks, 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	/* O_RDONLY|O_TRUNC truncates as well (the kernel leaves it to the open) */
	ck_assert_int_eq(settfs_write(fs, f, 0, "hello", 5, 0), 5);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDONLY | O_TRUNC), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDONLY), 0);
	reopen();
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 0);
}
END_TEST

START_TEST(test_truncate_and_holes)
{
	uint64_t f = mkfile(1, "sparse");
	uint32_t cs = settfs_chunk_size(fs);
	uint8_t *b = malloc(3 * cs);
	memset(b, 'a', 3 * cs);
	ck_assert_int_eq(settfs_write(fs, f, 0, b, 3 * cs, 0), (ssize_t)(3 * cs));
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	struct stat in, st;
	memset(&in, 0, sizeof in);
	/* shrink into the middle of chunk 1: the tail is zeroed */
	in.st_size = cs + 100;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(st.st_size, cs + 100);
	ck_assert_int_eq(st.st_blocks * 512, ((cs + 100) + 511) / 512 * 512);
	in.st_size = 3 * cs;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	memset(b, 'x', 3 * cs);
	ck_assert_int_eq(settfs_read(fs, f, 0, 3 * cs, b), (ssize_t)(3 * cs));
	ck_assert_int_eq(b[cs + 99], 'a');
	for (uint32_t i = cs + 100; i < 3 * cs; i++)
		ck_assert_int_eq(b[i], 0);
	/* a huge sparse size uses nothing */
	uint64_t g = mkfile(1, "huge");
	in.st_size = 10LL << 30;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, g, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(st.st_blocks, 0);
	ck_assert_int_eq(settfs_write(fs, g, 5LL << 30, "z", 1, 0), 1);
	ck_assert_int_eq(settfs_read(fs, g, (5LL << 30) - 2, 4, b), 4);
	ck_assert(memcmp(b, "\0\0z\0", 4) == 0);
	/* SEEK_DATA / SEEK_HOLE */
	ck_assert_int_eq(settfs_lseek(fs, g, 0, SEEK_DATA), 5LL << 30);
	ck_assert_int_eq(settfs_lseek(fs, g, 0, SEEK_HOLE), 0);
	ck_assert_int_eq(settfs_lseek(fs, g, 5LL << 30, SEEK_HOLE), (5LL << 30) + 1);
	ck_assert_int_eq(settfs_lseek(fs, g, (5LL << 30) + 2, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(settfs_lseek(fs, g, 11LL << 30, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(settfs_lseek(fs, f, 0, SEEK_HOLE), cs + 100);
	attr(g, &st);
	/* one byte in a stored-size hole costs at most one 4 KiB page */
	ck_assert_int_le(st.st_blocks, 8);
	/* punch a hole and extend with fallocate */
	memset(b, 'q', 3 * cs);
	ck_assert_int_eq(settfs_write(fs, f, 0, b, 3 * cs, 0), (ssize_t)(3 * cs));
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  10, 2 * cs, 0), 0);
	ck_assert_int_eq(settfs_read(fs, f, 0, 3 * cs, b), (ssize_t)(3 * cs));
	ck_assert_int_eq(b[9], 'q');
	ck_assert_int_eq(b[10], 0);
	ck_assert_int_eq(b[2 * cs + 9], 0);
	ck_assert_int_eq(b[2 * cs + 10], 'q');
	ck_assert_int_eq(settfs_lseek(fs, f, 20, SEEK_DATA), 2 * cs);
	ck_assert_int_eq(settfs_fallocate(fs, f, 0, 0, 4 * cs, 0), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 4 * cs);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_UNSHARE_RANGE, 0, cs, 0), -EOPNOTSUPP);
	/* truncate of a directory */
	in.st_size = 0;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, 1, &in, SETTFS_SET_SIZE, &st), -EISDIR);
	settfs_release(fs, f, O_RDWR);
	settfs_release(fs, g, O_RDWR);
	free(b);
}
END_TEST

START_TEST(test_setattr)
{
	uint64_t f = mkfile(1, "f");
	struct stat in, st, before;
	attr(f, &before);
	memset(&in, 0, sizeof in);
	in.st_mode = 06755;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 06755);
	/* chown clears suid, and sgid with group exec */
	in.st_uid = 1000;
	in.st_gid = 1000;
	ck_assert_int_eq(settfs_setattr(fs, &user_ctx, f, &in, SETTFS_SET_UID | SETTFS_SET_GID,
					&st), 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0755);
	ck_assert_int_eq(st.st_uid, 1000);
	/* chmod g+s by a caller outside the file's group drops it */
	const uint32_t grp[1] = { 1000 };
	settfs_ctx other = { 1000, 50, NULL, 0, 0 }, member = { 1000, 50, grp, 1, 0 };
	in.st_mode = 02755;
	ck_assert_int_eq(settfs_setattr(fs, &other, f, &in, SETTFS_SET_MODE, &st), 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0755);
	ck_assert_int_eq(settfs_setattr(fs, &member, f, &in, SETTFS_SET_MODE, &st), 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 02755);
	ck_assert_int_eq(st.st_gid, 1000);
	ck_assert(st.st_ctim.tv_sec > before.st_ctim.tv_sec ||
		  (st.st_ctim.tv_sec == before.st_ctim.tv_sec &&
		   st.st_ctim.tv_nsec >= before.st_ctim.tv_nsec));
	in.st_atim.tv_sec = 1000;
	in.st_atim.tv_nsec = 123456789;
	in.st_mtim.tv_sec = 2000;
	in.st_mtim.tv_nsec = 987654321;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_ATIME | SETTFS_SET_MTIME,
					&st), 0);
	reopen();
	attr(f, &st);
	ck_assert_int_eq(st.st_atim.tv_sec, 1000);
	ck_assert_int_eq(st.st_atim.tv_nsec, 123456789);
	ck_assert_int_eq(st.st_mtim.tv_sec, 2000);
	ck_assert_int_eq(st.st_mtim.tv_nsec, 987654321);
	/* UTIME_NOW on mtime, atime omitted */
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MTIME_NOW, &st), 0);
	ck_assert_int_eq(st.st_atim.tv_sec, 1000);
	ck_assert_int_gt(st.st_mtim.tv_sec, 2000);
	/* write updates mtime */
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MTIME, &st), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, "x", 1, 0), 1);
	attr(f, &st);
	ck_assert_int_gt(st.st_mtim.tv_sec, 2000);
	settfs_release(fs, f, O_RDWR);
}
END_TEST

/* kill flags: what the kernel asks for under FUSE_HANDLE_KILLPRIV_V2 */
START_TEST(test_kill_suidgid)
{
	uint64_t f = mkfile(1, "f");
	struct stat in, st;
	memset(&in, 0, sizeof in);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	/* a plain write keeps the bits; a killing write clears both (group exec) */
	in.st_mode = 06755;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, "abc", 3, 0), 3);
	attr(f, &st);
	ck_assert_int_eq(st.st_mode, S_IFREG | 06755);
	ck_assert_int_eq(settfs_write(fs, f, 3, "d", 1, SETTFS_WRITE_KILL_SUIDGID), 1);
	attr(f, &st);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0755);
	ck_assert_int_eq(st.st_size, 4);
	/* set-group-ID without group exec (mandatory locking) stays */
	in.st_mode = 06745;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, "x", 1, SETTFS_WRITE_KILL_SUIDGID), 1);
	attr(f, &st);
	ck_assert_int_eq(st.st_mode, S_IFREG | 02745);
	/* ... for a member of the file's group: a non-member's write or truncate drops it */
	ck_assert_int_eq(settfs_write(fs, f, 0, "x", 1,
				      SETTFS_WRITE_KILL_SUIDGID | SETTFS_WRITE_KILL_SGID), 1);
	attr(f, &st);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0745);
	settfs_ctx user = { 1000, 1000, NULL, 0, 0 };
	in.st_mode = 02745;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
	in.st_size = 2;
	ck_assert_int_eq(settfs_setattr(fs, &user, f, &in, SETTFS_SET_SIZE | SETTFS_SET_KILL_SUIDGID,
					&st), 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0745);
	/* truncate with the kill flag, committed with the size */
	in.st_mode = 04755;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
	in.st_size = 1;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in,
					SETTFS_SET_SIZE | SETTFS_SET_KILL_SUIDGID, &st), 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0755);
	ck_assert_int_eq(st.st_size, 1);
	settfs_release(fs, f, O_RDWR);
	reopen();
	attr(f, &st);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0755);
	ck_assert_int_eq(st.st_size, 1);
	/* directories are left alone */
	uint64_t d = 0;
	ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, 1, "d", 02755, &st), 0);
	d = st.st_ino;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, d, &in, SETTFS_SET_KILL_SUIDGID, &st), 0);
	ck_assert_int_eq(st.st_mode, S_IFDIR | 02755);
}
END_TEST

START_TEST(test_mknod_symlink)
{
	struct stat st;
	ck_assert_int_eq(settfs_mknod(fs, &root_ctx, 1, "fifo", S_IFIFO | 0600, 0, &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(settfs_mknod(fs, &root_ctx, 1, "sock", S_IFSOCK | 0600, 0, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(settfs_mknod(fs, &root_ctx, 1, "chr", S_IFCHR | 0600, makedev(1, 3), &st), 0);
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_int_eq(st.st_rdev, makedev(1, 3));
	ck_assert_int_eq(settfs_mknod(fs, &root_ctx, 1, "blk", S_IFBLK | 0600, makedev(8, 1), &st), 0);
	ck_assert_int_eq(settfs_mknod(fs, &root_ctx, 1, "fifo", S_IFIFO | 0600, 0, &st), -EEXIST);
	ck_assert_int_eq(settfs_symlink(fs, &root_ctx, 1, "ln", "some/where", &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(st.st_size, 10);
	uint64_t l = st.st_ino;
	reopen();
	char b[64];
	ck_assert_int_eq(settfs_readlink(fs, l, b, sizeof b), 10);
	ck_assert(memcmp(b, "some/where", 10) == 0);
	ck_assert_int_eq(settfs_lookup(fs, 1, "blk", &st), 0);
	ck_assert_int_eq(st.st_rdev, makedev(8, 1));
	ck_assert_int_eq(settfs_readlink(fs, st.st_ino, b, sizeof b), -EINVAL);
}
END_TEST

START_TEST(test_dirs_and_unlink)
{
	uint64_t d = tu_mkdir(fs, 1, "d");
	struct stat st;
	attr(1, &st);
	ck_assert_int_eq(st.st_nlink, 3);
	uint64_t sub = tu_mkdir(fs, d, "sub");
	uint64_t f = mkfile(d, "f");
	settfs_release(fs, f, O_RDWR);
	attr(d, &st);
	ck_assert_int_eq(st.st_nlink, 3);
	ck_assert_int_eq(settfs_rmdir(fs, 1, "d"), -ENOTEMPTY);
	ck_assert_int_eq(settfs_rmdir(fs, d, "f"), -ENOTDIR);
	ck_assert_int_eq(settfs_unlink(fs, d, "sub"), -EISDIR);
	ck_assert_int_eq(settfs_unlink(fs, d, "nope"), -ENOENT);
	struct stat before;
	attr(d, &before);
	ck_assert_int_eq(settfs_unlink(fs, d, "f"), 0);
	ck_assert_int_eq(settfs_getattr(fs, f, &st), -ENOENT); /* no refs: reclaimed */
	attr(d, &st);
	ck_assert(st.st_mtim.tv_sec > before.st_mtim.tv_sec ||
		  st.st_mtim.tv_nsec >= before.st_mtim.tv_nsec);
	ck_assert_int_eq(settfs_rmdir(fs, d, "sub"), 0);
	ck_assert_int_eq(settfs_getattr(fs, sub, &st), -ENOENT);
	attr(d, &st);
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(settfs_rmdir(fs, 1, "d"), 0);
	attr(1, &st);
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, f, "x", 0755, &st), -ENOENT);
}
END_TEST

START_TEST(test_links)
{
	uint64_t f = mkfile(1, "f");
	settfs_release(fs, f, O_RDWR);
	uint64_t d = tu_mkdir(fs, 1, "d");
	struct stat st;
	ck_assert_int_eq(settfs_link(fs, f, d, "g", &st), 0);
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(settfs_link(fs, f, d, "g", &st), -EEXIST);
	ck_assert_int_eq(settfs_link(fs, d, 1, "dl", &st), -EPERM);
	ck_assert_int_eq(settfs_unlink(fs, 1, "f"), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_nlink, 1);
	reopen();
	ck_assert_int_eq(settfs_lookup(fs, d, "g", &st), 0);
	ck_assert_uint_eq(st.st_ino, f);
	ck_assert_int_eq(st.st_nlink, 1);
}
END_TEST

START_TEST(test_unlink_open_and_orphans)
{
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, "keep", 4, 0), 4);
	struct stat st;
	ck_assert_int_eq(settfs_lookup(fs, 1, "f", &st), 0);
	ck_assert_int_eq(settfs_unlink(fs, 1, "f"), 0);
	/* still open: readable */
	char b[8];
	ck_assert_int_eq(settfs_read(fs, f, 0, 8, b), 4);
	attr(f, &st);
	ck_assert_int_eq(st.st_nlink, 0);
	settfs_release(fs, f, O_RDWR);
	/* still looked up */
	attr(f, &st);
	settfs_forget(fs, f, 1);
	ck_assert_int_eq(settfs_getattr(fs, f, &st), -ENOENT);

	/* an orphan left at close (no forget) is reclaimed at the next open */
	uint64_t g = mkfile(1, "g");
	ck_assert_int_eq(settfs_write(fs, g, 0, "data", 4, 0), 4);
	ck_assert_int_eq(settfs_unlink(fs, 1, "g"), 0);
	reopen();
	ck_assert_int_eq(settfs_getattr(fs, g, &st), -ENOENT);
	/* and a rename over a looked-up file */
	uint64_t a = mkfile(1, "a");
	uint64_t c = mkfile(1, "c");
	settfs_release(fs, a, O_RDWR);
	ck_assert_int_eq(settfs_lookup(fs, 1, "c", &st), 0);
	ck_assert_int_eq(settfs_rename(fs, 1, "a", 1, "c", 0), 0);
	ck_assert_int_eq(settfs_write(fs, c, 0, "x", 1, 0), 1);
	settfs_release(fs, c, O_RDWR);
	ck_assert_int_eq(settfs_getattr(fs, c, &st), 0);
	settfs_forget(fs, c, 1);
	ck_assert_int_eq(settfs_getattr(fs, c, &st), -ENOENT);
}
END_TEST

START_TEST(test_rename)
{
	uint64_t a = tu_mkdir(fs, 1, "a"), b = tu_mkdir(fs, 1, "b");
	uint64_t x = mkfile(a, "x"), y = mkfile(b, "y");
	settfs_release(fs, x, O_RDWR);
	settfs_release(fs, y, O_RDWR);
	uint64_t sub = tu_mkdir(fs, a, "sub");
	uint64_t e = tu_mkdir(fs, b, "empty");
	struct stat st;
	ck_assert_int_eq(settfs_rename(fs, a, "x", b, "y", SETTFS_RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(settfs_rename(fs, a, "x", b, "empty", 0), -EISDIR);
	ck_assert_int_eq(settfs_rename(fs, a, "sub", b, "y", 0), -ENOTDIR);
	ck_assert_int_eq(settfs_rename(fs, 1, "a", sub, "z", 0), -EINVAL);
	ck_assert_int_eq(settfs_rename(fs, 1, "a", a, "z", 0), -EINVAL);
	ck_assert_int_eq(settfs_rename(fs, a, "sub", 1, "b", 0), -ENOTEMPTY);
	ck_assert_int_eq(settfs_rename(fs, a, "nope", b, "q", 0), -ENOENT);
	/* same inode: no-op */
	ck_assert_int_eq(settfs_link(fs, x, a, "x2", &st), 0);
	ck_assert_int_eq(settfs_rename(fs, a, "x", a, "x2", 0), 0);
	ck_assert_int_eq(settfs_lookup(fs, a, "x", &st), 0);
	/* file across directories, replacing */
	ck_assert_int_eq(settfs_rename(fs, a, "x", b, "y", 0), 0);
	ck_assert_int_eq(settfs_lookup(fs, b, "y", &st), 0);
	ck_assert_uint_eq(st.st_ino, x);
	ck_assert_int_eq(settfs_lookup(fs, a, "x", &st), -ENOENT);
	ck_assert_int_eq(settfs_getattr(fs, y, &st), -ENOENT);
	/* dir over empty dir, across parents: nlinks follow */
	ck_assert_int_eq(settfs_rename(fs, a, "sub", b, "empty", 0), 0);
	ck_assert_int_eq(settfs_getattr(fs, e, &st), -ENOENT);
	attr(a, &st);
	ck_assert_int_eq(st.st_nlink, 2);
	attr(b, &st);
	ck_assert_int_eq(st.st_nlink, 3);
	ck_assert_int_eq(settfs_lookup(fs, sub, "..", &st), 0);
	ck_assert_uint_eq(st.st_ino, b);
	/* exchange a dir and a file across parents */
	ck_assert_int_eq(settfs_rename(fs, b, "empty", a, "x2", SETTFS_RENAME_EXCHANGE), 0);
	ck_assert_int_eq(settfs_lookup(fs, a, "x2", &st), 0);
	ck_assert_uint_eq(st.st_ino, sub);
	ck_assert_int_eq(settfs_lookup(fs, b, "empty", &st), 0);
	ck_assert_uint_eq(st.st_ino, x);
	attr(a, &st);
	ck_assert_int_eq(st.st_nlink, 3);
	attr(b, &st);
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(settfs_rename(fs, b, "empty", a, "none", SETTFS_RENAME_EXCHANGE), -ENOENT);
	reopen();
	ck_assert_int_eq(settfs_lookup(fs, a, "x2", &st), 0);
	ck_assert_uint_eq(st.st_ino, sub);
	ck_assert_int_eq(settfs_lookup(fs, sub, "..", &st), 0);
	ck_assert_uint_eq(st.st_ino, a);
}
END_TEST

struct listing {
	int n, cap;
	char names[1200][16];
	off_t offs[1200];
};

static int fill_list(void *arg, const char *name, const struct stat *st, off_t next)
{
	struct listing *l = arg;
	(void)st;
	if (l->n >= l->cap)
		return 1;
	snprintf(l->names[l->n], 16, "%s", name);
	l->offs[l->n++] = next;
	return 0;
}

START_TEST(test_readdir)
{
	uint64_t d = tu_mkdir(fs, 1, "d");
	char name[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "f%04d", i);
		uint64_t f = mkfile(d, name);
		settfs_release(fs, f, O_RDWR);
		settfs_forget(fs, f, 1);
	}
	settfs_dir *h;
	ck_assert_int_eq(settfs_opendir(fs, d, &h), 0);
	static struct listing l;
	memset(&l, 0, sizeof l);
	off_t off = 0;
	int total = 0;
	for (;;) {
		/* small buffers: 37 entries per call */
		l.cap = l.n + 37;
		int before = l.n;
		ck_assert_int_eq(settfs_readdir(fs, h, off, 0, fill_list, &l), 0);
		if (l.n == before)
			break;
		off = l.offs[l.n - 1];
		total = l.n;
	}
	ck_assert_int_eq(total, 1002);
	ck_assert_str_eq(l.names[0], ".");
	ck_assert_str_eq(l.names[1], "..");
	ck_assert_str_eq(l.names[2], "f0000");
	ck_assert_str_eq(l.names[1001], "f0999");
	/* seekdir to an earlier cookie */
	static struct listing m;
	memset(&m, 0, sizeof m);
	m.cap = 1;
	ck_assert_int_eq(settfs_readdir(fs, h, l.offs[500], 0, fill_list, &m), 0);
	ck_assert_str_eq(m.names[0], l.names[501]);
	settfs_releasedir(fs, h);
	/* plus takes lookup references: entries survive unlink until forget */
	ck_assert_int_eq(settfs_opendir(fs, d, &h), 0);
	memset(&m, 0, sizeof m);
	m.cap = 3;
	ck_assert_int_eq(settfs_readdir(fs, h, 0, 1, fill_list, &m), 0);
	settfs_releasedir(fs, h);
	struct stat st;
	ck_assert_int_eq(settfs_lookup(fs, d, "f0000", &st), 0);
	uint64_t f0 = st.st_ino;
	ck_assert_int_eq(settfs_unlink(fs, d, "f0000"), 0);
	settfs_forget(fs, f0, 1);
	ck_assert_int_eq(settfs_getattr(fs, f0, &st), 0); /* readdirplus ref left */
	settfs_forget(fs, f0, 1);
	ck_assert_int_eq(settfs_getattr(fs, f0, &st), -ENOENT);
	settfs_forget(fs, f0, 1);
	ck_assert_int_eq(settfs_getattr(fs, f0, &st), -ENOENT);
	for (int i = 1; i < 1000; i++) {
		snprintf(name, sizeof name, "f%04d", i);
		ck_assert_int_eq(settfs_unlink(fs, d, name), 0);
	}
	ck_assert_int_eq(settfs_rmdir(fs, 1, "d"), 0);
	ck_assert_int_eq(settfs_opendir(fs, f0, &h), -ENOENT);
}
END_TEST

START_TEST(test_xattr)
{
	uint64_t f = mkfile(1, "f");
	char b[16];
	ck_assert_int_eq(settfs_getxattr(fs, f, "security.capability", b, sizeof b), -ENODATA);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.a", "value", 5, XATTR_REPLACE), -ENODATA);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.a", "value", 5, XATTR_CREATE), 0);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.a", "v2", 2, XATTR_CREATE), -EEXIST);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.b", "", 0, 0), 0);
	ck_assert_int_eq(settfs_getxattr(fs, f, "user.a", NULL, 0), 5);
	ck_assert_int_eq(settfs_getxattr(fs, f, "user.a", b, 2), -ERANGE);
	ck_assert_int_eq(settfs_getxattr(fs, f, "user.a", b, sizeof b), 5);
	ck_assert(memcmp(b, "value", 5) == 0);
	ck_assert_int_eq(settfs_listxattr(fs, f, NULL, 0), 14);
	ck_assert_int_eq(settfs_listxattr(fs, f, b, 3), -ERANGE);
	ck_assert_int_eq(settfs_listxattr(fs, f, b, sizeof b), 14);
	ck_assert(memcmp(b, "user.a\0user.b\0", 14) == 0);
	settfs_release(fs, f, O_RDWR);
	reopen();
	ck_assert_int_eq(settfs_getxattr(fs, f, "user.b", b, sizeof b), 0);
	ck_assert_int_eq(settfs_removexattr(fs, f, "user.a"), 0);
	ck_assert_int_eq(settfs_removexattr(fs, f, "user.a"), -ENODATA);
	ck_assert_int_eq(settfs_getxattr(fs, f, "user.a", b, sizeof b), -ENODATA);
	/* an ACL with no entries is no ACL */
	ck_assert_int_eq(settfs_setxattr(fs, f, "system.posix_acl_access", "\2\0\0\0", 4, 0),
			 -EINVAL);
	static char big[70000];
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.big", big, sizeof big, 0), -E2BIG);
	/* unlink reclaims xattrs with the inode */
	ck_assert_int_eq(settfs_unlink(fs, 1, "f"), 0);
}
END_TEST

static int count_keys(char tag, uint64_t ino, size_t only_len);
/* Superblock: formats 2 to 4 are read; others, bad checksums and sizes are not. */
START_TEST(test_super_versions)
{
	sfs_super s, d;
	memset(&s, 0, sizeof s);
	s.chunk_size = 65536;
	s.created_ns = 123;
	uint8_t b[SFS_SUPER_SIZE];
	for (uint32_t v = 0; v <= 5; v++) {
		s.version = v;
		sfs_super_encode(&s, b);
		int want = (v >= 2 && v <= 4) ? 0 : -EPROTO;
		ck_assert_int_eq(sfs_super_decode(b, sizeof b, &d), want);
		if (want == 0) {
			ck_assert_uint_eq(d.version, v);
			ck_assert_uint_eq(d.chunk_size, 65536);
		}
	}
	b[13] ^= 1;
	ck_assert_int_eq(sfs_super_decode(b, sizeof b, &d), -EIO);
	ck_assert_int_eq(sfs_super_decode(b, sizeof b - 1, &d), -EIO);
}
END_TEST

/* A directory entry's type byte is a file type (S_IFMT >> 12) and nothing else. */
START_TEST(test_dentry_type_byte)
{
	uint8_t b[SFS_DENTRY_SIZE];
	uint64_t ino;
	uint32_t type;
	sfs_dentry_encode(42, S_IFREG | 0644, b);
	ck_assert_int_eq(sfs_dentry_decode(b, sizeof b, &ino, &type), 0);
	ck_assert_uint_eq(ino, 42);
	ck_assert_uint_eq(type, S_IFREG);
	/* 0x18: S_IFREG's bits plus one above S_IFMT */
	b[8] = 0x18;
	ck_assert_int_eq(sfs_dentry_decode(b, sizeof b, &ino, &type), -EIO);
	b[8] = 0;
	ck_assert_int_eq(sfs_dentry_decode(b, sizeof b, &ino, &type), -EIO);
}
END_TEST

/* Sets the store's N key (next inode number) with the filesystem closed. */
static void set_next_ino(uint64_t v)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	sett_options o;
	sett_options_init(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	uint8_t k[1], b[8];
	sfs_put_be64(b, v);
	ck_assert_int_eq(sett_put(db, (sett_val){ .data = k, .size = sfs_key_nextino(k) },
				  (sett_val){ .data = b, .size = 8 }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	fs_open_();
}

/* A damaged N never makes a create reuse an inode number, nor wrap to 0 and 1. */
START_TEST(test_next_ino_damaged)
{
	uint64_t a = mkfile(1, "a");
	ck_assert_int_eq(settfs_write(fs, a, 0, "abc", 3, 0), 3);
	settfs_release(fs, a, O_RDWR);
	set_next_ino(2); /* below a */
	uint64_t b = mkfile(1, "b");
	settfs_release(fs, b, O_RDWR);
	ck_assert_uint_gt(b, a);
	char buf[8];
	ck_assert_int_eq(settfs_read(fs, a, 0, sizeof buf, buf), 3);
	ck_assert_int_eq(memcmp(buf, "abc", 3), 0);

	set_next_ino(UINT64_MAX - 2);
	struct stat st;
	for (int i = 0; i < 4; i++) {
		char name[8];
		snprintf(name, sizeof name, "c%d", i);
		int r = settfs_create(fs, &root_ctx, 1, name, 0644, O_RDWR, &st);
		if (r == 0) {
			ck_assert_uint_gt(st.st_ino, b);
			settfs_release(fs, st.st_ino, O_RDWR);
			settfs_forget(fs, st.st_ino, 1);
		} else {
			ck_assert_int_eq(r, -ENOSPC);
		}
	}
	ck_assert_int_eq(settfs_getattr(fs, 1, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(settfs_lookup(fs, 1, "a", &st), 0);
	ck_assert_uint_eq(st.st_ino, a);
	settfs_forget(fs, a, 1);
}
END_TEST

/* ACL entries for acl_build: tag, perm, id (ignored for the *_OBJ, MASK, OTHER tags) */
typedef struct { uint16_t tag, perm; uint32_t id; } acl_ent;
#define U_OBJ(p) { SFS_ACL_USER_OBJ, p, 0 }
#define G_OBJ(p) { SFS_ACL_GROUP_OBJ, p, 0 }
#define MASK(p) { SFS_ACL_MASK, p, 0 }
#define OTHER(p) { SFS_ACL_OTHER, p, 0 }
#define USER(id, p) { SFS_ACL_USER, p, id }
#define GROUP(id, p) { SFS_ACL_GROUP, p, id }

/* the xattr value of n entries, as Linux writes it (ids of *_OBJ etc: 7 to see them fixed) */
static size_t acl_build(uint8_t *p, const acl_ent *e, size_t n)
{
	p[0] = SFS_ACL_VERSION;
	p[1] = p[2] = p[3] = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t *q = p + 4 + 8 * i;
		q[0] = (uint8_t)e[i].tag;
		q[1] = (uint8_t)(e[i].tag >> 8);
		q[2] = (uint8_t)e[i].perm;
		q[3] = (uint8_t)(e[i].perm >> 8);
		uint32_t id = e[i].tag == SFS_ACL_USER || e[i].tag == SFS_ACL_GROUP ? e[i].id : 7;
		for (int b = 0; b < 4; b++)
			q[4 + b] = (uint8_t)(id >> (8 * b));
	}
	return 4 + 8 * n;
}

/* the perm of the entry with `tag` (the first), -1 if none */
static int acl_perm(const uint8_t *p, size_t n, uint16_t tag)
{
	for (size_t off = 4; off + 8 <= n; off += 8)
		if ((p[off] | p[off + 1] << 8) == tag)
			return p[off + 2] | p[off + 3] << 8;
	return -1;
}

#define ACL_CHECK(want, ...) do { \
		const acl_ent e_[] = { __VA_ARGS__ }; \
		uint8_t b_[256]; \
		size_t n_ = acl_build(b_, e_, sizeof e_ / sizeof *e_); \
		ck_assert_int_eq(sfs_acl_check(b_, n_), want); \
	} while (0)

/* The ACL value rules: Linux's posix_acl_from_xattr and posix_acl_valid. */
START_TEST(test_acl_check)
{
	ACL_CHECK(3, U_OBJ(7), G_OBJ(5), OTHER(4));
	/* Linux orders named entries in its own code, but does not require it */
	ACL_CHECK(7, U_OBJ(7), USER(1000, 6), USER(5, 4), G_OBJ(5), GROUP(50, 1), MASK(7),
		  OTHER(0));
	ACL_CHECK(4, U_OBJ(7), G_OBJ(5), MASK(1), OTHER(4)); /* a mask alone is allowed */
	ACL_CHECK(-EINVAL, U_OBJ(7), USER(1000, 6), G_OBJ(5), OTHER(4)); /* needs a mask */
	ACL_CHECK(-EINVAL, U_OBJ(7), G_OBJ(5));                          /* no OTHER */
	ACL_CHECK(-EINVAL, G_OBJ(5), U_OBJ(7), OTHER(4));                /* order */
	ACL_CHECK(-EINVAL, U_OBJ(7), U_OBJ(7), G_OBJ(5), OTHER(4));      /* two owners */
	ACL_CHECK(-EINVAL, U_OBJ(7), G_OBJ(5), OTHER(4), OTHER(4));      /* after OTHER */
	ACL_CHECK(-EINVAL, U_OBJ(7), G_OBJ(5), GROUP(1, 1), USER(2, 1), MASK(7), OTHER(4));
	ACL_CHECK(-EINVAL, U_OBJ(8), G_OBJ(5), OTHER(4));                /* perm beyond rwx */
	ACL_CHECK(-EINVAL, U_OBJ(7), G_OBJ(5), { 0x40, 0, 0 }, OTHER(4)); /* unknown tag */
	ACL_CHECK(-EINVAL, U_OBJ(7), USER(SFS_ACL_UNDEFINED_ID, 1), G_OBJ(5), MASK(7), OTHER(4));
	/* framing: header only, version, partial entry */
	uint8_t b[64];
	const acl_ent base[] = { U_OBJ(6), G_OBJ(4), OTHER(4) };
	size_t n = acl_build(b, base, 3);
	ck_assert_int_eq(sfs_acl_check(b, 4), -EINVAL);
	ck_assert_int_eq(sfs_acl_check(b, n - 1), -EINVAL);
	ck_assert_int_eq(sfs_acl_check(b, 0), -EINVAL);
	b[0] = 1;
	ck_assert_int_eq(sfs_acl_check(b, n), -EINVAL);
	b[0] = 2;
	/* canonical: the ids of entries that name nobody are ACL_UNDEFINED_ID */
	ck_assert_int_eq(sfs_acl_check(b, n), 3);
	for (size_t off = 4; off < n; off += 8)
		ck_assert(memcmp(b + off + 4, "\xff\xff\xff\xff", 4) == 0);
	ck_assert_int_eq(sfs_acl_type("system.posix_acl_access"), SFS_ACL_ACCESS);
	ck_assert_int_eq(sfs_acl_type("system.posix_acl_default"), SFS_ACL_DEFAULT);
	ck_assert_int_eq(sfs_acl_type("system.posix_acl_accessx"), SFS_ACL_NONE);
}
END_TEST

/* equiv_mode, create_masq and chmod, as Linux's fs/posix_acl.c. */
START_TEST(test_acl_mode_rules)
{
	uint8_t b[64];
	const acl_ent base[] = { U_OBJ(6), G_OBJ(4), OTHER(0) };
	size_t n = acl_build(b, base, 3);
	uint32_t mode = S_IFREG | S_ISGID | 0777;
	ck_assert_int_eq(sfs_acl_equiv_mode(b, n, &mode), 0);
	ck_assert_uint_eq(mode, S_IFREG | S_ISGID | 0640);
	const acl_ent ext[] = { U_OBJ(7), USER(1000, 7), G_OBJ(5), MASK(6), OTHER(1) };
	n = acl_build(b, ext, 5);
	mode = S_IFREG;
	ck_assert_int_eq(sfs_acl_equiv_mode(b, n, &mode), 1);
	ck_assert_uint_eq(mode, S_IFREG | 0761); /* group bits: the mask */
	/* chmod sets the owner, mask and other entries; named entries stay */
	ck_assert_int_eq(sfs_acl_chmod(b, n, 0750), 1);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_USER_OBJ), 7);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_USER), 7);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_GROUP_OBJ), 5);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_MASK), 5);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_OTHER), 0);
	ck_assert_int_eq(sfs_acl_chmod(b, n, 0750), 0);
	/* without a mask chmod sets the owning group */
	n = acl_build(b, base, 3);
	ck_assert_int_eq(sfs_acl_chmod(b, n, 0705), 1);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_GROUP_OBJ), 0);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_OTHER), 5);
	/* create: each class gets what both the default ACL and the mode grant */
	n = acl_build(b, ext, 5);
	mode = S_IFREG | 0666;
	ck_assert_int_eq(sfs_acl_create_masq(b, n, &mode), 1);
	ck_assert_uint_eq(mode, S_IFREG | 0660);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_USER_OBJ), 6);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_USER), 7); /* limited by the mask */
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_GROUP_OBJ), 5);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_MASK), 6);
	ck_assert_int_eq(acl_perm(b, n, SFS_ACL_OTHER), 0);
	n = acl_build(b, base, 3);
	mode = S_IFDIR | 0750;
	ck_assert_int_eq(sfs_acl_create_masq(b, n, &mode), 0);
	ck_assert_uint_eq(mode, S_IFDIR | 0640);
}
END_TEST

static ssize_t get_acl_(uint64_t ino, const char *name, uint8_t *b, size_t size)
{
	return settfs_getxattr(fs, ino, name, b, size);
}

static uint32_t mode_of(uint64_t ino)
{
	struct stat st;
	attr(ino, &st);
	return (uint32_t)st.st_mode;
}

/*
 * Setting an access ACL sets the mode (in the same commit, kept across a
 * reopen); chmod rewrites the ACL; an ACL the mode says all of is kept as
 * the mode; bad values change nothing.
 */
START_TEST(test_acl_access_and_mode)
{
	uint64_t f = mkfile(1, "f");
	settfs_release(fs, f, O_RDWR);
	uint8_t b[128], got[128];
	const acl_ent ext[] = { U_OBJ(6), USER(1000, 6), G_OBJ(4), MASK(6), OTHER(4) };
	size_t n = acl_build(b, ext, 5);
	ck_assert_int_eq(settfs_setxattr(fs, f, SFS_ACL_ACCESS_NAME, b, n, 0), 0);
	ck_assert_uint_eq(mode_of(f), S_IFREG | 0664);
	reopen();
	ck_assert_uint_eq(mode_of(f), S_IFREG | 0664);
	ck_assert_int_eq(get_acl_(f, SFS_ACL_ACCESS_NAME, got, sizeof got), (ssize_t)n);
	ck_assert_int_eq(sfs_acl_check(b, n), 5); /* what is stored: the canonical form */
	ck_assert(memcmp(got, b, n) == 0);
	/* chmod */
	struct stat a, st;
	memset(&a, 0, sizeof a);
	a.st_mode = 0710;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &a, SETTFS_SET_MODE, &st), 0);
	ck_assert_int_eq(get_acl_(f, SFS_ACL_ACCESS_NAME, got, sizeof got), (ssize_t)n);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_USER_OBJ), 7);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_USER), 6);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_GROUP_OBJ), 4);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_MASK), 1);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_OTHER), 0);
	/* bad values: nothing stored, mode unchanged */
	b[4 + 2] = 9;
	ck_assert_int_eq(settfs_setxattr(fs, f, SFS_ACL_ACCESS_NAME, b, n, 0), -EINVAL);
	ck_assert_int_eq(settfs_setxattr(fs, f, SFS_ACL_ACCESS_NAME, b, n - 3, 0), -EINVAL);
	ck_assert_uint_eq(mode_of(f), S_IFREG | 0710);
	ck_assert_int_eq(get_acl_(f, SFS_ACL_ACCESS_NAME, got, sizeof got), (ssize_t)n);
	/* an ACL of the base entries only: the mode, and the stored ACL goes */
	const acl_ent base[] = { U_OBJ(7), G_OBJ(5), OTHER(1) };
	n = acl_build(b, base, 3);
	ck_assert_int_eq(settfs_setxattr(fs, f, SFS_ACL_ACCESS_NAME, b, n, XATTR_REPLACE), 0);
	ck_assert_uint_eq(mode_of(f), S_IFREG | 0751);
	ck_assert_int_eq(get_acl_(f, SFS_ACL_ACCESS_NAME, got, sizeof got), -ENODATA);
	ck_assert_int_eq(settfs_listxattr(fs, f, NULL, 0), 0);
	/* removing none is no error; a default ACL is for directories */
	ck_assert_int_eq(settfs_removexattr(fs, f, SFS_ACL_ACCESS_NAME), 0);
	ck_assert_int_eq(settfs_setxattr(fs, f, SFS_ACL_DEFAULT_NAME, b, n, 0), -EACCES);
	/* set-group-ID goes when the kernel says so */
	a.st_mode = 02775;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &a, SETTFS_SET_MODE, &st), 0);
	n = acl_build(b, ext, 5);
	ck_assert_int_eq(settfs_setxattr(fs, f, SFS_ACL_ACCESS_NAME, b, n, 0), 0);
	ck_assert_uint_eq(mode_of(f), S_IFREG | 02664);
	ck_assert_int_eq(settfs_setxattr(fs, f, SFS_ACL_ACCESS_NAME, b, n,
					 SETTFS_XATTR_KILL_SGID), 0);
	ck_assert_uint_eq(mode_of(f), S_IFREG | 0664);
	/* removing the ACL keeps the mode */
	ck_assert_int_eq(settfs_removexattr(fs, f, SFS_ACL_ACCESS_NAME), 0);
	ck_assert_uint_eq(mode_of(f), S_IFREG | 0664);
	ck_assert_int_eq(get_acl_(f, SFS_ACL_ACCESS_NAME, got, sizeof got), -ENODATA);
}
END_TEST

/*
 * A directory's default ACL: new files get an access ACL masked by the
 * create mode, directories the default ACL too, and the umask is not
 * applied; without one it is.
 */
START_TEST(test_acl_inherit)
{
	settfs_ctx c = user_ctx;
	c.umask = 077;
	struct stat st;
	ck_assert_int_eq(settfs_mkdir(fs, &c, 1, "plain", 0777, &st), 0);
	ck_assert_uint_eq(st.st_mode, S_IFDIR | 0700);
	uint64_t d = tu_mkdir(fs, 1, "d");
	uint8_t b[128], got[128];
	const acl_ent def[] = { U_OBJ(7), USER(1000, 7), G_OBJ(5), MASK(7), OTHER(0) };
	size_t n = acl_build(b, def, 5);
	ck_assert_int_eq(settfs_setxattr(fs, d, SFS_ACL_DEFAULT_NAME, b, n, 0), 0);
	ck_assert_uint_eq(mode_of(d), S_IFDIR | 0755); /* a default ACL leaves the mode */
	ck_assert_int_eq(settfs_create(fs, &c, d, "f", 0666, O_RDWR, &st), 0);
	uint64_t f = st.st_ino;
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0660);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_mkdir(fs, &c, d, "sub", 0777, &st), 0);
	uint64_t sub = st.st_ino;
	ck_assert_uint_eq(st.st_mode, S_IFDIR | 0770);
	ck_assert_int_eq(settfs_mknod(fs, &c, d, "fifo", S_IFIFO | 0640, 0, &st), 0);
	ck_assert_uint_eq(st.st_mode, S_IFIFO | 0640);
	ck_assert_int_eq(settfs_symlink(fs, &c, d, "ln", "f", &st), 0);
	uint64_t ln = st.st_ino;
	reopen();
	ck_assert_int_eq(get_acl_(f, SFS_ACL_ACCESS_NAME, got, sizeof got), (ssize_t)n);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_USER_OBJ), 6);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_USER), 7);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_MASK), 6);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_OTHER), 0);
	ck_assert_int_eq(get_acl_(f, SFS_ACL_DEFAULT_NAME, got, sizeof got), -ENODATA);
	ck_assert_int_eq(get_acl_(sub, SFS_ACL_DEFAULT_NAME, got, sizeof got), (ssize_t)n);
	ck_assert_int_eq(sfs_acl_check(b, n), 5);
	ck_assert(memcmp(got, b, n) == 0);
	ck_assert_int_eq(get_acl_(sub, SFS_ACL_ACCESS_NAME, got, sizeof got), (ssize_t)n);
	ck_assert_int_eq(get_acl_(ln, SFS_ACL_ACCESS_NAME, got, sizeof got), -ENODATA);
	ck_assert_uint_eq(mode_of(ln), S_IFLNK | 0777);
	/* the ACL goes with the inode */
	ck_assert_int_eq(settfs_unlink(fs, d, "f"), 0);
	ck_assert_int_eq(count_keys(SFS_TAG_XATTR, f, 0), 0);
	/* a default ACL of the base entries gives an access ACL that is the mode */
	const acl_ent base[] = { U_OBJ(7), G_OBJ(5), OTHER(5) };
	n = acl_build(b, base, 3);
	ck_assert_int_eq(settfs_setxattr(fs, sub, SFS_ACL_DEFAULT_NAME, b, n, 0), 0);
	ck_assert_int_eq(settfs_create(fs, &c, sub, "g", 0640, O_RDWR, &st), 0);
	ck_assert_uint_eq(st.st_mode, S_IFREG | 0640);
	ck_assert_int_eq(get_acl_(st.st_ino, SFS_ACL_ACCESS_NAME, got, sizeof got), -ENODATA);
	ck_assert_int_eq(settfs_release(fs, st.st_ino, O_RDWR), 0);
}
END_TEST

/* no_acl (-o noacl): ACLs refused; stored ones neither inherited nor changed by chmod. */
START_TEST(test_acl_off)
{
	uint64_t d = tu_mkdir(fs, 1, "d");
	uint8_t b[128], got[128];
	const acl_ent def[] = { U_OBJ(7), USER(1000, 7), G_OBJ(5), MASK(7), OTHER(0) };
	size_t n = acl_build(b, def, 5);
	ck_assert_int_eq(settfs_setxattr(fs, d, SFS_ACL_DEFAULT_NAME, b, n, 0), 0);
	ck_assert_int_eq(settfs_setxattr(fs, d, SFS_ACL_ACCESS_NAME, b, n, 0), 0);
	ck_assert_int_eq(settfs_close(fs), 0);
	settfs_options o;
	settfs_options_init(&o);
	o.engine.mem_table_size = 4u << 20;
	o.no_acl = 1;
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	ck_assert_int_eq(settfs_setxattr(fs, d, SFS_ACL_ACCESS_NAME, b, n, 0), -EOPNOTSUPP);
	ck_assert_int_eq(settfs_getxattr(fs, d, SFS_ACL_ACCESS_NAME, got, sizeof got), -EOPNOTSUPP);
	settfs_ctx c = user_ctx;
	c.umask = 022;
	struct stat st, a;
	ck_assert_int_eq(settfs_mkdir(fs, &c, d, "sub", 0777, &st), 0);
	ck_assert_uint_eq(st.st_mode, S_IFDIR | 0755);
	uint64_t sub = st.st_ino;
	memset(&a, 0, sizeof a);
	a.st_mode = 0700;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, d, &a, SETTFS_SET_MODE, &st), 0);
	reopen();
	ck_assert_int_eq(settfs_getxattr(fs, sub, SFS_ACL_DEFAULT_NAME, got, sizeof got), -ENODATA);
	ck_assert_int_eq(settfs_getxattr(fs, d, SFS_ACL_ACCESS_NAME, got, sizeof got), (ssize_t)n);
	ck_assert_int_eq(acl_perm(got, n, SFS_ACL_MASK), 7);
}
END_TEST

/* Deleting an inode finds its xattrs from the inode's flag, after a reopen too. */
START_TEST(test_xattr_reclaim)
{
	uint64_t f = mkfile(1, "f"), g = mkfile(1, "g");
	ck_assert_int_eq(settfs_write(fs, f, 0, "abc", 3, 0), 3);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.a", "1", 1, 0), 0);
	ck_assert_int_eq(settfs_setxattr(fs, f, "trusted.b", "2", 1, 0), 0);
	ck_assert_int_eq(settfs_removexattr(fs, f, "user.a"), 0);
	settfs_release(fs, f, O_RDWR);
	settfs_release(fs, g, O_RDWR);
	ck_assert_int_eq(count_keys(SFS_TAG_XATTR, f, 0), 1); /* reopens: nodes reload */
	struct stat st;
	attr(f, &st);
	ck_assert_int_eq(settfs_unlink(fs, 1, "f"), 0);
	ck_assert_int_eq(settfs_unlink(fs, 1, "g"), 0);
	ck_assert_int_eq(count_keys(SFS_TAG_XATTR, f, 0), 0);
	ck_assert_int_eq(count_keys(SFS_TAG_CHUNK, f, 0), 0);
	ck_assert_int_eq(count_keys(SFS_TAG_INODE, f, 0), 0);
	ck_assert_int_eq(count_keys(SFS_TAG_INODE, g, 0), 0);
}
END_TEST

/*
 * Below the reserve, what grows the store fails with ENOSPC, while reads,
 * unlink, rmdir, truncate down, punch hole, removexattr and rename work,
 * and statfs shows no space available.
 */
START_TEST(test_reserve)
{
	static uint8_t data[200000], back[200000];
	uint64_t seed = 3;
	tu_fill_random(&seed, data, sizeof data);
	uint64_t f = mkfile(1, "f"), h = mkfile(1, "h");
	ck_assert_int_eq(settfs_write(fs, f, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	ck_assert_int_eq(settfs_write(fs, h, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	ck_assert_int_eq(settfs_setxattr(fs, h, "user.a", "v", 1, 0), 0);
	settfs_release(fs, f, O_RDWR);
	settfs_release(fs, h, O_RDWR);
	tu_mkdir(fs, 1, "d");
	struct statvfs sv;
	ck_assert_int_eq(settfs_statfs(fs, &sv), 0);
	ck_assert_uint_gt(sv.f_bavail, 0);
	ck_assert_int_eq(settfs_close(fs), 0);

	fs_open_reserve(INT64_MAX / 2); /* more than any disk has */
	ck_assert_int_eq(settfs_statfs(fs, &sv), 0);
	ck_assert_uint_eq(sv.f_bavail, 0);
	ck_assert_uint_gt(sv.f_bfree, 0);
	struct stat st;
	ck_assert_int_eq(settfs_create(fs, &root_ctx, 1, "new", 0644, O_RDWR, &st), -ENOSPC);
	ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, 1, "nd", 0755, &st), -ENOSPC);
	ck_assert_int_eq(settfs_symlink(fs, &root_ctx, 1, "sl", "f", &st), -ENOSPC);
	ck_assert_int_eq(settfs_link(fs, f, 1, "hard", &st), -ENOSPC);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.b", "v", 1, 0), -ENOSPC);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, "x", 1, 0), -ENOSPC);
	struct stat in;
	memset(&in, 0, sizeof in);
	in.st_size = (off_t)sizeof data * 2;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), -ENOSPC);
	ck_assert_int_eq(settfs_fallocate(fs, f, 0, 0, 1 << 20, 0), -ENOSPC);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);

	ck_assert_int_eq(settfs_read(fs, f, 0, sizeof back, back), (ssize_t)sizeof data);
	ck_assert(memcmp(back, data, sizeof data) == 0);
	ck_assert_int_eq(settfs_file_open(fs, h, O_RDWR), 0);
	in.st_size = 100000;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, h, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(settfs_fallocate(fs, h, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					  65536, 0), 0);
	ck_assert_int_eq(settfs_release(fs, h, O_RDWR), 0);
	ck_assert_int_eq(settfs_removexattr(fs, h, "user.a"), 0);
	ck_assert_int_eq(settfs_rename(fs, 1, "h", 1, "h2", 0), 0);
	ck_assert_int_eq(settfs_unlink(fs, 1, "f"), 0);
	ck_assert_int_eq(settfs_rmdir(fs, 1, "d"), 0);
	reopen();
	ck_assert_int_eq(settfs_lookup(fs, 1, "f", &st), -ENOENT);
	ck_assert_int_eq(settfs_lookup(fs, 1, "h2", &st), 0);
	ck_assert_int_eq(st.st_size, 100000);
}
END_TEST

/* A read's atime update is best effort: on a disk that refuses every write,
 * reading and closing an existing file still succeed. */
START_TEST(test_read_needs_no_space)
{
	static uint8_t data[100000], back[100000];
	uint64_t seed = 5;
	tu_fill_random(&seed, data, sizeof data);
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	reopen();
	sio_fault_fail_after_bytes(0, -ENOSPC);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDONLY), 0);
	ck_assert_int_eq(settfs_read(fs, f, 0, sizeof back, back), (ssize_t)sizeof data);
	ck_assert(memcmp(back, data, sizeof data) == 0);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDONLY), 0);
	struct stat st;
	ck_assert_int_eq(settfs_getattr(fs, f, &st), 0);
	ck_assert_int_eq(settfs_read(fs, f, 0, sizeof back, back), (ssize_t)sizeof data);
	settfs_close(fs); /* may report the refused writes */
	fs = NULL;
	sio_fault_reset();
}
END_TEST

START_TEST(test_statfs_fsync)
{
	struct statvfs sv;
	ck_assert_int_eq(settfs_statfs(fs, &sv), 0);
	ck_assert_int_eq(sv.f_namemax, 255);
	ck_assert_uint_ge(sv.f_files - sv.f_ffree, 1);
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, "durable", 7, 0), 7);
	ck_assert_int_eq(settfs_fsync(fs, f, 1), 0);
	ck_assert_int_eq(settfs_fsyncdir(fs, 1, 0), 0);
	settfs_release(fs, f, O_RDWR);
	ck_assert_int_eq(settfs_sync(fs), 0);
}
END_TEST

START_TEST(test_mkfs_and_corrupt_inode)
{
	settfs_options o;
	settfs_options_init(&o);
	uint64_t f = mkfile(1, "f");
	settfs_release(fs, f, O_RDWR);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	ck_assert_int_eq(settfs_mkfs(dir, &o, &root_ctx, 0), -EEXIST);
	/* a garbage inode value reads as EIO, not a crash */
	o.engine.create_if_missing = 0;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	uint8_t k[SFS_KEY_MAX];
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_inode(k, f), k },
				  (sett_val){ 5, "junk!" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	fs_open_();
	struct stat st;
	ck_assert_int_eq(settfs_getattr(fs, f, &st), -EIO);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	/* mkfs -f makes a fresh filesystem */
	ck_assert_int_eq(settfs_mkfs(dir, &o, &user_ctx, 1), 0);
	fs_open_();
	ck_assert_int_eq(settfs_lookup(fs, 1, "f", &st), -ENOENT);
	attr(1, &st);
	ck_assert_int_eq(st.st_uid, 1000);
}
END_TEST

/*
 * A filesystem is created only where nothing is (issue 9): a non-empty
 * directory without a store is refused by settfs_open and settfs_mkfs
 * (unless force) and left as it was; a store with keys but no superblock is
 * not formatted.
 */
START_TEST(test_create_only_where_nothing_is)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	char *other = tu_tmpdir("fs-foreign");
	char path[4200];
	snprintf(path, sizeof path, "%s/HEAD", other);
	FILE *f = fopen(path, "w");
	fputs("ref: refs/heads/main\n", f);
	fclose(f);
	uint64_t before = tu_dir_digest(other);
	settfs_options o;
	settfs_options_init(&o);
	char why[1024] = "";
	o.engine.error_buf = why;
	o.engine.error_buf_size = sizeof why;
	settfs *fs2 = NULL;
	ck_assert_int_eq(settfs_open(other, &o, &fs2), -ENOTEMPTY);
	ck_assert_ptr_nonnull(strstr(why, "not empty and holds no store"));
	ck_assert_int_eq(settfs_mkfs(other, &o, &root_ctx, 0), -ENOTEMPTY);
	ck_assert(tu_dir_digest(other) == before);
	/* -f: the store goes in beside what is there. */
	ck_assert_int_eq(settfs_mkfs(other, &o, &root_ctx, 1), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(settfs_open(other, &o, &fs2), 0);
	ck_assert_int_eq(settfs_close(fs2), 0);

	/* A store with data but no superblock (say, a sett store): refused. */
	tu_rmrf(other);
	sett_db *db;
	ck_assert_int_eq(sett_open(other, &o.engine, &db), 0);
	ck_assert_int_eq(sett_put(db, (sett_val){ 1, "k" }, (sett_val){ 1, "v" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	why[0] = 0;
	ck_assert_int_eq(settfs_open(other, &o, &fs2), -EINVAL);
	ck_assert_ptr_nonnull(strstr(why, "holds data but no settfs superblock"));
	ck_assert_int_eq(settfs_mkfs(other, &o, &root_ctx, 0), -EEXIST);
	o.engine.create_if_missing = 0;
	ck_assert_int_eq(sett_open(other, &o.engine, &db), 0);
	void *v = NULL;
	size_t n;
	ck_assert_int_eq(sett_get(db, (sett_val){ 1, "k" }, 0, &v, &n), 0);
	free(v);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(other);
	free(other);
}
END_TEST

/* Many chunks (4 KiB chunk size) so truncates span several batches. */
/*
 * A truncate of more chunks than one batch deletes counts their bytes
 * from their value pointers: it reads none of the values (to 0, and to a
 * size within the file).
 */
START_TEST(test_truncate_reads_no_values)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	tu_rmrf(dir);
	settfs_options o;
	settfs_options_init(&o);
	o.chunk_size = 4096;
	o.max_batch_deletes = 64;
	ck_assert_int_eq(settfs_mkfs(dir, &o, &root_ctx, 0), 0);
	static uint8_t data[4096];
	memset(data, 'v', sizeof data);
	for (int pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
		uint64_t f = mkfile(1, pass ? "b" : "a");
		const int n = 1000; /* 4 MB of values in the value log, 16 batches */
		for (int i = 0; i < n; i++)
			ck_assert_int_eq(settfs_write(fs, f, (off_t)i * 4096, data, 4096, 0), 4096);
		ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
		ck_assert_int_eq(settfs_close(fs), 0);
		ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
		uint64_t before = sio_bytes_read();
		struct stat in, st;
		memset(&in, 0, sizeof in);
		in.st_size = pass ? 4096 + 10 : 0;
		ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
		uint64_t read = sio_bytes_read() - before;
		ck_assert_msg(read < 256 * 1024, "truncate read %llu bytes", (unsigned long long)read);
		ck_assert_int_eq(st.st_blocks * 512, pass ? (4096 + 10 + 511) / 512 * 512 : 0);
		ck_assert_int_eq(settfs_close(fs), 0);
		fs = NULL;
		if (access("./fsck.settfs", X_OK) == 0)
			ck_assert_int_eq(run_fsck(), 0);
	}
	fs_open_();
}
END_TEST

START_TEST(test_truncate_many_chunks)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	tu_rmrf(dir);
	settfs_options o;
	settfs_options_init(&o);
	o.chunk_size = 4096;
	o.engine.mem_table_size = 1u << 20;
	ck_assert_int_eq(settfs_mkfs(dir, &o, &root_ctx, 0), 0);
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	ck_assert_uint_eq(settfs_chunk_size(fs), 4096);
	uint64_t f = mkfile(1, "many");
	const int n = 9000; /* > 2 batches of deletions with a 1 MiB memtable */
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(settfs_write(fs, f, (off_t)i * 4096, "ab", 2, 0), 2);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	struct stat in, st;
	attr(f, &st);
	ck_assert_int_eq(st.st_size, (off_t)(n - 1) * 4096 + 2);
	memset(&in, 0, sizeof in);
	in.st_size = 4096 + 1;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(st.st_size, 4097);
	ck_assert_int_eq(st.st_blocks, 1); /* 2 + 1 stored bytes */
	char b[8];
	ck_assert_int_eq(settfs_read(fs, f, 4096, 8, b), 1);
	ck_assert_int_eq(b[0], 'a');
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(settfs_write(fs, f, (off_t)i * 4096, "cd", 2, 0), 2);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR | O_TRUNC), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_blocks, 0);
	in.st_size = 100000;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(settfs_lseek(fs, f, 0, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
}
END_TEST

/*
 * Runs work() on the store in a child process that then dies without
 * closing (as a kill -9 of the daemon: every commit reached the engine's
 * files, nothing else did), and opens the store again here.
 */
static void crash_after(void (*work)(int), int arg)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fs_open_();
		work(arg);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
	fs_open_();
}

#define BUFFERED (200 * 1024) /* under the per-inode limit: stays buffered */

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t st = seed;
	tu_fill_random(&st, p, n);
}

enum { OP_RENAME, OP_UNLINK, OP_LINK, OP_SETXATTR, OP_REMOVEXATTR, OP_CHMOD, OP_NOPS };

/*
 * An open file with buffered writes, then a namespace or attribute
 * operation that commits its inode; the writer keeps the file open.
 */
static void buffered_then_op(int op)
{
	struct stat st;
	if (settfs_create(fs, &root_ctx, 1, "f", 0644, O_RDWR, &st))
		_exit(2);
	uint64_t f = st.st_ino;
	if (op == OP_UNLINK && settfs_link(fs, f, 1, "keep", &st))
		_exit(3);
	if (op == OP_REMOVEXATTR && (settfs_setxattr(fs, f, "user.a", "1", 1, 0) ||
				     settfs_flush(fs, f)))
		_exit(4);
	static uint8_t buf[BUFFERED];
	fill_pattern(buf, sizeof buf, 42);
	for (size_t off = 0; off < sizeof buf; off += 4096)
		if (settfs_write(fs, f, (off_t)off, buf + off, 4096, 0) != 4096)
			_exit(5);
	struct stat a;
	memset(&a, 0, sizeof a);
	a.st_mode = 0600;
	int r = op == OP_RENAME ? settfs_rename(fs, 1, "f", 1, "g", 0)
		: op == OP_UNLINK ? settfs_unlink(fs, 1, "f")
		: op == OP_LINK ? settfs_link(fs, f, 1, "g", &st)
		: op == OP_SETXATTR ? settfs_setxattr(fs, f, "user.b", "2", 1, 0)
		: op == OP_REMOVEXATTR ? settfs_removexattr(fs, f, "user.a")
		: settfs_setattr(fs, &root_ctx, f, &a, SETTFS_SET_MODE, &st);
	if (r)
		_exit(6);
}

/*
 * Every commit of an inode carries the inode's buffered data, or the
 * stored size would cover bytes the store does not hold: after the crash
 * the file would read as zeros.
 */
START_TEST(test_inode_commit_carries_buffers)
{
	static const char *const names[] = { "g", "keep", "g", "f", "f", "f" };
	static uint8_t want[BUFFERED], got[BUFFERED];
	fill_pattern(want, sizeof want, 42);
	char bad[64] = "";
	for (int op = 0; op < OP_NOPS; op++) {
		crash_after(buffered_then_op, op);
		struct stat st;
		ck_assert_int_eq(settfs_lookup(fs, 1, names[op], &st), 0);
		if (st.st_size != BUFFERED ||
		    settfs_read(fs, st.st_ino, 0, sizeof got, got) != BUFFERED ||
		    memcmp(got, want, sizeof got) != 0)
			snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " %d", op);
		settfs_forget(fs, st.st_ino, 1);
		/* next round on an empty store */
		ck_assert_int_eq(settfs_close(fs), 0);
		fs = NULL;
		tu_rmrf(dir);
		fs_open_();
	}
	ck_assert_msg(bad[0] == 0, "buffered data lost by the inode commit of op(s)%s", bad);
}
END_TEST

struct worker {
	int id;
	uint64_t dir;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32], buf[10000];
	memset(buf, 'a' + w->id, sizeof buf);
	for (int i = 0; i < 60; i++) {
		struct stat st;
		snprintf(name, sizeof name, "w%d-%d", w->id, i);
		if (settfs_create(fs, &root_ctx, w->dir, name, 0644, O_RDWR, &st)) {
			w->failures++;
			continue;
		}
		for (int j = 0; j < 5; j++)
			if (settfs_write(fs, st.st_ino, j * (off_t)sizeof buf, buf, sizeof buf, 0) !=
			    (ssize_t)sizeof buf)
				w->failures++;
		char back[100];
		if (settfs_read(fs, st.st_ino, 12345, sizeof back, back) != (ssize_t)sizeof back ||
		    back[0] != 'a' + w->id)
			w->failures++;
		settfs_release(fs, st.st_ino, O_RDWR);
		if (i % 3 == 0) {
			char to[40];
			snprintf(to, sizeof to, "r%d-%d", w->id, i);
			if (settfs_rename(fs, w->dir, name, 1, to, 0))
				w->failures++;
		} else if (i % 3 == 1 && settfs_unlink(fs, w->dir, name)) {
			w->failures++;
		}
		settfs_forget(fs, st.st_ino, 1);
	}
	return NULL;
}

START_TEST(test_concurrency)
{
	uint64_t d = tu_mkdir(fs, 1, "shared");
	pthread_t t[6];
	struct worker w[6];
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){ i, d, 0 };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	struct stat st;
	attr(d, &st);
	ck_assert_int_eq(st.st_nlink, 2);
	reopen();
	ck_assert_int_eq(settfs_lookup(fs, d, "w3-2", &st), 0);
	ck_assert_int_eq(st.st_size, 50000);
	ck_assert_int_eq(settfs_lookup(fs, 1, "r5-57", &st), 0);
	ck_assert_int_eq(settfs_lookup(fs, d, "w5-1", &st), -ENOENT);
}
END_TEST

static int run_fsck(void)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "./fsck.settfs -q %s >/dev/null 2>&1", dir);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Close the store, check it with fsck.settfs when built next to the tests, open it again. */
static void fsck_reopen(void)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	if (access("./fsck.settfs", X_OK) == 0)
		ck_assert_int_eq(run_fsck(), 0);
	fs_open_();
}

/* 1 if root entry `name` exists with exactly the n bytes `want`, 0 if absent. */
static int file_is(const char *name, const uint8_t *want, size_t n)
{
	struct stat st;
	int r = settfs_lookup(fs, 1, name, &st);
	if (r == -ENOENT)
		return 0;
	ck_assert_int_eq(r, 0);
	ck_assert_msg((size_t)st.st_size == n, "%s: size %lld", name, (long long)st.st_size);
	uint8_t *got = malloc(n + 1);
	ck_assert_int_eq(settfs_read(fs, st.st_ino, 0, n + 1, got), (ssize_t)n);
	ck_assert_msg(memcmp(got, want, n) == 0, "%s: other bytes", name);
	free(got);
	settfs_forget(fs, st.st_ino, 1);
	return 1;
}

/*
 * What survives a power cut (every byte not fsynced dropped): fsync makes
 * the file's data and inode durable, a directory fsync every commit so
 * far, settfs_writeback the buffers of open files; a write with none of
 * these may be lost, but never comes back as zeros.
 */
START_TEST(test_durability_powercut)
{
	static uint8_t data[100000];
	fill_pattern(data, sizeof data, 9);
	uint64_t a = mkfile(1, "a");
	ck_assert_int_eq(settfs_write(fs, a, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	ck_assert_int_eq(settfs_fsync(fs, a, 1), 0);
	uint64_t b = mkfile(1, "b");
	ck_assert_int_eq(settfs_write(fs, b, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	ck_assert_int_eq(settfs_release(fs, b, O_RDWR), 0);
	ck_assert_int_eq(settfs_rename(fs, 1, "b", 1, "c", 0), 0);
	ck_assert_int_eq(settfs_fsyncdir(fs, 1, 0), 0);
	uint64_t d = mkfile(1, "d");
	ck_assert_int_eq(settfs_write(fs, d, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	ck_assert_int_eq(settfs_writeback(fs, 0), 0);
	uint64_t e = mkfile(1, "e");
	ck_assert_int_eq(settfs_write(fs, e, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	ck_assert_int_eq(settfs_flush(fs, e), 0); /* committed, not durable */
	uint64_t g = mkfile(1, "g");
	ck_assert_int_eq(settfs_write(fs, g, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	sio_fault_powercut();
	settfs_close(fs); /* fails: the machine is off */
	sio_fault_reset();
	fs = NULL;
	fs_open_();
	ck_assert(file_is("a", data, sizeof data));
	ck_assert(!file_is("b", data, sizeof data));
	ck_assert(file_is("c", data, sizeof data));
	ck_assert(file_is("d", data, sizeof data));
	struct stat st;
	for (const char *n = "e"; n; n = *n == 'e' ? "g" : NULL)
		if (settfs_lookup(fs, 1, n, &st) == 0) {
			if (st.st_size)
				ck_assert(file_is(n, data, sizeof data));
			settfs_forget(fs, st.st_ino, 1);
		}
}
END_TEST

/* The model's move: size *size, a collapse or an insert of [off, off+len). */
static void model_move(uint8_t *m, uint64_t *size, int collapse, uint64_t off, uint64_t len)
{
	if (collapse) {
		memmove(m + off, m + off + len, *size - off - len);
		memset(m + *size - len, 0, len);
		*size -= len;
	} else {
		memmove(m + off + len, m + off, *size - off);
		memset(m + off, 0, len);
		*size += len;
	}
}

/* ---- crashes between the batches of a large truncate / punch hole ---- */

#define BIG_CS 16384u
#define BIG_CHUNKS 300
static int big_n; /* the I/O that failed, for messages */

/*
 * 128 deletions a batch, every commit durable; no memtable flush, GC or
 * compaction, so that the crashes fall into the WAL and value log writes
 * of the operation's commits.
 */
static void big_opts(settfs_options *o)
{
	settfs_options_init(o);
	o->chunk_size = BIG_CS;
	o->max_batch_deletes = 128;
	o->engine.mem_table_size = 8u << 20;
	o->engine.value_threshold = 512;
	o->engine.sync_writes = 1;
	o->engine.num_compactors = 0;
	o->engine.gc_discard_ratio = 0;
}

/*
 * 300 chunks, each a short base (1000 bytes), every third one with an
 * overlay page: 400 keys.  ref gets the file's bytes.
 */
static uint64_t big_file(uint8_t *ref, uint64_t *size)
{
	settfs_options o;
	big_opts(&o);
	o.engine.sync_writes = 0; /* made durable once, at the end */
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	uint64_t f = mkfile(1, "big");
	uint64_t st = 7;
	*size = (uint64_t)(BIG_CHUNKS - 1) * BIG_CS + 1000;
	memset(ref, 0, *size);
	for (uint64_t i = 0; i < BIG_CHUNKS; i++) {
		tu_fill_random(&st, ref + i * BIG_CS, 1000);
		ck_assert_int_eq(settfs_write(fs, f, (off_t)(i * BIG_CS), ref + i * BIG_CS, 1000, 0),
				 1000);
	}
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	for (uint64_t i = 0; i < BIG_CHUNKS; i += 3) {
		uint8_t *p = ref + i * BIG_CS + 4096 + 10;
		tu_fill_random(&st, p, 100);
		ck_assert_int_eq(settfs_write(fs, f, (off_t)(p - ref), p, 100, 0), 100);
	}
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_close(fs), 0);
	big_opts(&o);
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	return f;
}

enum { BIG_TRUNC, BIG_TRUNC0, BIG_PUNCH, BIG_ZERO };

/*
 * Is the file in a state a crash of `op` may leave?  A truncate: the old
 * file cut at a size between the new and the old one.  A punch hole: the
 * old size and data, bytes of the hole old or zero (a zero range keeping
 * the size: the same).  Returns 0 for the old
 * state, 1 for the finished operation, 2 for a state in between.
 */
static int big_check(int op, uint64_t f, const uint8_t *ref, uint64_t size, uint64_t cut,
		     uint64_t p0, uint64_t p1, uint8_t *got)
{
	struct stat st;
	attr(f, &st);
	uint64_t now = (uint64_t)st.st_size;
	if (op >= BIG_PUNCH)
		ck_assert_uint_eq(now, size);
	else
		ck_assert_msg(now >= cut && now <= size, "size %llu outside [%llu, %llu]",
			      (unsigned long long)now, (unsigned long long)cut,
			      (unsigned long long)size);
	ck_assert_int_eq(settfs_read(fs, f, 0, now, got), (ssize_t)now);
	int zeroed = 0, kept = 0; /* hole bytes (not zero before) now zero / still old */
	for (uint64_t i = 0; i < now; i++) {
		if (got[i] == ref[i]) {
			kept += op >= BIG_PUNCH && i >= p0 && i < p1 && ref[i];
			continue;
		}
		ck_assert_msg(op >= BIG_PUNCH && i >= p0 && i < p1 && got[i] == 0,
			      "op %d, crash at I/O %d: byte %llu is %d, was %d (size %llu)", op,
			      big_n, (unsigned long long)i, got[i], ref[i], (unsigned long long)now);
		zeroed++;
	}
	if (op >= BIG_PUNCH)
		return !zeroed ? 0 : !kept ? 1 : 2;
	return now == size ? 0 : now == cut ? 1 : 2;
}

/* The moves of the crash test: a collapse / an insert, in blocks or in whole chunks. */
static const struct {
	int collapse;
	uint64_t off, len;
} big_moves[] = {
	{ 1, 3 * BIG_CS + 4096, 100 * BIG_CS + 8192 },
	{ 0, 3 * BIG_CS + 4096, 5 * BIG_CS + 4096 },
	{ 1, 2 * BIG_CS, 7 * BIG_CS },
	{ 0, 2 * BIG_CS, 3 * BIG_CS },
};

/*
 * Is the file in a state a crash of move m may leave (see shift_range in
 * fs/data.c)?  The bytes before the range unchanged; from there on, for a
 * collapse, the new bytes up to some point and the old ones after it, the
 * size between the new and the old one; for an insert, the old bytes up
 * to some point and the new ones after it, the size old or new.  0 for
 * the old state, 1 for the finished move, 2 for one in between.
 */
static int big_move_check(int m, uint64_t f, const uint8_t *ref, uint64_t size,
			  const uint8_t *want, uint64_t new_size, uint8_t *got)
{
	struct stat st;
	attr(f, &st);
	uint64_t now = (uint64_t)st.st_size, off = big_moves[m].off;
	int collapse = big_moves[m].collapse;
	if (collapse)
		ck_assert_msg(now >= new_size && now <= size, "move %d, crash at I/O %d: size %llu",
			      m, big_n, (unsigned long long)now);
	else
		ck_assert_msg(now == size || now == new_size, "move %d, crash at I/O %d: size %llu",
			      m, big_n, (unsigned long long)now);
	ck_assert_int_eq(settfs_read(fs, f, 0, now, got), (ssize_t)now);
	/* below the boundary: the new bytes for a collapse, the old for an insert */
	const uint8_t *lo = collapse ? want : ref, *hi = collapse ? ref : want;
	uint64_t lo_n = collapse ? new_size : size, hi_n = collapse ? size : new_size;
	uint64_t x = 0;
	for (; x < now && x < off; x++)
		if (got[x] != ref[x])
			ck_abort_msg("move %d, crash at I/O %d: byte %llu before the range", m, big_n,
				     (unsigned long long)x);
	for (; x < now && got[x] == (x < lo_n ? lo[x] : 0); x++)
		;
	for (; x < now; x++)
		if (got[x] != (x < hi_n ? hi[x] : 0))
			ck_abort_msg("move %d, crash at I/O %d: byte %llu is %d, neither old nor new",
				     m, big_n, (unsigned long long)x, got[x]);
	if (now == size && memcmp(got, ref, size) == 0)
		return 0;
	return now == new_size && memcmp(got, want, new_size) == 0 ? 1 : 2;
}

enum { BIG_MOVE = BIG_ZERO + 1 };

/*
 * Operation op (BIG_MOVE + m: move m) where the nth I/O from its start
 * fails, then the power goes: every state so reached must be legal, for
 * every n until the operation succeeds.
 */
static void big_crash(int op)
{
	size_t max = (size_t)(BIG_CHUNKS + 10) * BIG_CS;
	uint8_t *ref = calloc(1, max), *got = malloc(max), *want = calloc(1, max);
	ck_assert(ref && got && want);
	const uint64_t cut = 5 * BIG_CS + 77;
	const uint64_t p0 = 3 * BIG_CS + 500, p1 = 290 * BIG_CS + 4200;
	int mids = 0, n, ok = 0, m = op - BIG_MOVE;
	/* until it succeeded three times in a row (a fault may hit a background write) */
	for (n = 1; ok < 3; n++) {
		ck_assert_msg(n < 200, "op %d: still failing after %d crashes", op, n);
		tu_rmrf(dir);
		uint64_t size, new_size = 0;
		uint64_t f = big_file(ref, &size);
		ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
		if (op >= BIG_MOVE) {
			memcpy(want, ref, size);
			new_size = size;
			model_move(want, &new_size, big_moves[m].collapse, big_moves[m].off,
				   big_moves[m].len);
		}
		sio_fault_fail_nth(n, EIO);
		big_n = n;
		int r;
		if (op >= BIG_MOVE) {
			r = settfs_fallocate(fs, f,
					     big_moves[m].collapse ? FALLOC_FL_COLLAPSE_RANGE
								   : FALLOC_FL_INSERT_RANGE,
					     (off_t)big_moves[m].off, (off_t)big_moves[m].len, 0);
		} else if (op >= BIG_PUNCH) {
			int mode = op == BIG_PUNCH ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE;
			r = settfs_fallocate(fs, f, mode | FALLOC_FL_KEEP_SIZE, (off_t)p0,
					     (off_t)(p1 - p0), 0);
		} else {
			struct stat a, st;
			memset(&a, 0, sizeof a);
			a.st_size = (off_t)(op == BIG_TRUNC ? cut : 0);
			r = settfs_setattr(fs, &root_ctx, f, &a, SETTFS_SET_SIZE, &st);
		}
		if (r != 0)
			sio_fault_powercut();
		settfs_close(fs); /* fails after the power cut */
		sio_fault_reset();
		fs = NULL;
		settfs_options o;
		big_opts(&o);
		ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
		int state = op >= BIG_MOVE
				    ? big_move_check(m, f, ref, size, want, new_size, got)
				    : big_check(op, f, ref, size, op == BIG_TRUNC ? cut : 0, p0, p1, got);
		mids += state == 2;
		if (r == 0)
			ck_assert_msg(state == 1, "op %d finished but not in its final state", op);
		ck_assert_int_eq(settfs_close(fs), 0);
		fs = NULL;
		if (access("./fsck.settfs", X_OK) == 0)
			ck_assert_msg(run_fsck() == 0, "op %d, crash at I/O %d: fsck", op, n);
		ok = r == 0 ? ok + 1 : 0;
	}
	/* the crashes did reach states between the batches */
	ck_assert_msg(mids > 0, "op %d: no intermediate state in %d crashes", op, n);
	free(ref);
	free(got);
	free(want);
}

START_TEST(test_big_truncate_punch_crash)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	for (int op = BIG_TRUNC; op <= BIG_ZERO; op++)
		big_crash(op);
	fs_open_();
}
END_TEST

/* The same for collapse and insert, in blocks and in whole chunks. */
START_TEST(test_big_move_crash)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	big_crash(BIG_MOVE + _i);
	fs_open_();
}
END_TEST

/* fsck.settfs (when built next to the tests) finds planted faults. */
START_TEST(test_fsck)
{
	if (access("./fsck.settfs", X_OK) != 0)
		return;
	uint64_t d = tu_mkdir(fs, 1, "d");
	uint64_t f = mkfile(d, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, "abc", 3, 0), 3);
	ck_assert_int_eq(settfs_setxattr(fs, f, "user.x", "1", 1, 0), 0);
	settfs_release(fs, f, O_RDWR);
	struct stat st;
	ck_assert_int_eq(settfs_link(fs, f, 1, "f2", &st), 0);
	ck_assert_int_eq(settfs_symlink(fs, &root_ctx, d, "l", "f", &st), 0);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	ck_assert_int_eq(run_fsck(), 0);

	settfs_options o;
	settfs_options_init(&o);
	o.engine.create_if_missing = 0;
	sett_db *db;
	uint8_t k[SFS_KEY_MAX], v[SFS_DENTRY_SIZE];
	/* an entry pointing at a missing inode */
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	sfs_dentry_encode(999, S_IFREG, v);
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_dentry(k, 1, "ghost", 5), k },
				  (sett_val){ sizeof v, v }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(run_fsck(), 4);
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_dentry(k, 1, "ghost", 5), k }), 0);
	/* a chunk past the end of file */
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_chunk(k, f, 7), k }, (sett_val){ 1, "z" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(run_fsck(), 4);
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_chunk(k, f, 7), k }), 0);
	/* an xattr of an inode that lacks the xattr flag (the directory d) */
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_xattr(k, d, "user.y", 6), k },
				  (sett_val){ 1, "y" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(run_fsck(), 4);
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_xattr(k, d, "user.y", 6), k }), 0);
	/* a wrong link count: drop one of the two entries */
	ck_assert_int_eq(sett_del(db, (sett_val){ sfs_key_dentry(k, 1, "f2", 2), k }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(run_fsck(), 4);
	fs_open_();
}
END_TEST

/* Replace the store with a fresh one of chunk size cs. */
/* A new store with chunk size cs and compression `comp` ("zstd:1"...; NULL: the default). */
static void fresh_store_compressed(uint32_t cs, const char *comp)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	tu_rmrf(dir);
	settfs_options o;
	settfs_options_init(&o);
	o.chunk_size = cs;
	o.engine.mem_table_size = 4u << 20;
	if (comp)
		ck_assert_int_eq(settfs_parse_compression(comp, &o), 0);
	ck_assert_int_eq(settfs_mkfs(dir, &o, &root_ctx, 0), 0);
	settfs_options_init(&o); /* the store keeps the setting */
	o.engine.mem_table_size = 4u << 20;
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	ck_assert_uint_eq(settfs_chunk_size(fs), cs);
}

static void fresh_store(uint32_t cs)
{
	fresh_store_compressed(cs, NULL);
}

/* The engine under a closed filesystem, opened for a look (close with sett_close). */
static sett_db *engine_of_closed(void)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	settfs_options o;
	settfs_options_init(&o);
	o.engine.create_if_missing = 0;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	return db;
}

/* Keys of ino under tag, of length only_len if not 0 (closes and reopens). */
static int count_keys(char tag, uint64_t ino, size_t only_len)
{
	sett_db *db = engine_of_closed();
	uint8_t p[9];
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	io.prefix = (sett_val){ sfs_key_ino_prefix(p, tag, ino), p };
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	int n = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it))
		n += !only_len || sett_iter_key(it).size == only_len;
	ck_assert_int_eq(sett_iter_error(it), 0);
	sett_iter_free(it);
	ck_assert_int_eq(sett_close(db), 0);
	fs_open_();
	return n;
}

/* Stored overlay page keys of ino (closes and reopens the filesystem). */
static int count_overlays(uint64_t ino)
{
	return count_keys(SFS_TAG_CHUNK, ino, SFS_PAGE_KEY_LEN);
}

static void check_bytes(uint64_t f, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *got = malloc(len);
	ck_assert_int_eq(settfs_read(fs, f, (off_t)off, len, got), (ssize_t)len);
	ck_assert_msg(memcmp(got, want, len) == 0, "bytes at %llu differ", (unsigned long long)off);
	free(got);
}

/* Small writes into stored chunks become overlay pages, folded past half a chunk. */
START_TEST(test_overlay_fold)
{
	const uint32_t cs = 16384; /* 4 pages: more than 2 overlays fold */
	fresh_store(cs);
	uint8_t model[4 * 16384], b[4096];
	struct stat st;
	memset(model, 'a', sizeof model);
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, model, sizeof model, 0), (ssize_t)sizeof model);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(count_overlays(f), 0);
	/* one page of chunk 0 */
	memset(b, 'b', sizeof b);
	ck_assert_int_eq(settfs_write(fs, f, 4096, b, 4096, 0), 4096);
	memcpy(model + 4096, b, 4096);
	check_bytes(f, 0, model, sizeof model); /* buffered page seen */
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	check_bytes(f, 0, model, sizeof model);
	attr(f, &st);
	ck_assert_int_eq(st.st_blocks * 512, 4 * 16384 + 4096);
	ck_assert_int_eq(count_overlays(f), 1);
	check_bytes(f, 0, model, sizeof model);
	/* a partial page keeps the page's other bytes */
	ck_assert_int_eq(settfs_write(fs, f, 8192 + 100, "xyz", 3, 0), 3);
	memcpy(model + 8192 + 100, "xyz", 3);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_eq(count_overlays(f), 2);
	check_bytes(f, 0, model, sizeof model);
	attr(f, &st);
	ck_assert_int_eq(st.st_blocks * 512, 4 * 16384 + 2 * 4096);
	/* a third page folds chunk 0: the overlays go, the chunk holds it all */
	ck_assert_int_eq(settfs_write(fs, f, 12288 + 4000, "PQRSTUVW", 8, 0), 8);
	memcpy(model + 12288 + 4000, "PQRSTUVW", 8);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_eq(count_overlays(f), 0);
	check_bytes(f, 0, model, sizeof model);
	attr(f, &st);
	ck_assert_int_eq(st.st_blocks * 512, 4 * 16384);
	/* a chunk written whole replaces its overlays */
	ck_assert_int_eq(settfs_write(fs, f, 16384 + 5, "1", 1, 0), 1);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_eq(count_overlays(f), 1);
	memset(model + 16384, 'c', 16384);
	ck_assert_int_eq(settfs_write(fs, f, 16384, model + 16384, 16384, 0), 16384);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_eq(count_overlays(f), 0);
	check_bytes(f, 0, model, sizeof model);
	attr(f, &st);
	ck_assert_int_eq(st.st_blocks * 512, 4 * 16384);
	fsck_reopen(); /* block counts and chunk bounds hold */
}
END_TEST

static uint64_t iter_entries(void)
{
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(settfs_engine(fs), &st), 0);
	return st.iter_entries;
}

/* Read f's n bytes twice, as `want`; the second read walks no iterator entry. */
static void read_twice_by_name(uint64_t f, const uint8_t *want, uint8_t *got, size_t n)
{
	for (int pass = 0; pass < 2; pass++) {
		uint64_t e0 = iter_entries();
		ck_assert_int_eq(settfs_read(fs, f, 0, n, got), (ssize_t)n);
		ck_assert(memcmp(got, want, n) == 0);
		if (pass)
			ck_assert_uint_eq(iter_entries() - e0, 0);
	}
}

/*
 * The cost of reading a chunk depends on what it holds, not on how often
 * it was rewritten: once a chunk's keys were looked at, reads name them
 * (point gets) and walk none of its deleted overlay pages with an
 * iterator; nor do chunks past an earlier end of file (holes after a
 * truncate and an extension).
 */
START_TEST(test_rewrites_read_by_name)
{
	enum { CS = 65536, NCH = 8, SIZE = NCH * CS };
	fresh_store(CS);
	uint8_t *model = malloc(SIZE), *got = malloc(SIZE), pg[4096];
	uint64_t seed = 99;
	tu_fill_random(&seed, model, SIZE);
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, model, SIZE, 0), SIZE);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	/* pages rewritten one at a time: overlays made, folded, deleted */
	for (int round = 0; round < 40; round++) {
		for (int c = 0; c < NCH; c++) {
			size_t off = (size_t)c * CS + (size_t)(round % 16) * 4096;
			tu_fill_random(&seed, pg, sizeof pg);
			ck_assert_int_eq(settfs_write(fs, f, (off_t)off, pg, sizeof pg, 0), 4096);
			memcpy(model + off, pg, sizeof pg);
		}
		ck_assert_int_eq(settfs_flush(fs, f), 0);
	}
	read_twice_by_name(f, model, got, SIZE);
	/* cut in chunk 2, grow again: chunks 3.. are holes */
	struct stat in, st;
	memset(&in, 0, sizeof in);
	in.st_size = 2 * CS + 1000;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	in.st_size = SIZE;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	memset(model + 2 * CS + 1000, 0, SIZE - (2 * CS + 1000));
	read_twice_by_name(f, model, got, SIZE);
	/* the map survives nothing it must not: after a reopen the same bytes */
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	reopen();
	ck_assert_int_eq(settfs_read(fs, f, 0, SIZE, got), SIZE);
	ck_assert(memcmp(got, model, SIZE) == 0);
	free(model);
	free(got);
}
END_TEST

static uint64_t dirty_bytes(void)
{
	settfs_stats st;
	ck_assert_int_eq(settfs_get_stats(fs, &st), 0);
	return st.dirty_bytes;
}

/*
 * Whole chunks written past the end of file are committed from the
 * writer's bytes before the write returns (no copy into a buffer); the
 * rest of a write is buffered as before.  The bytes are the writer's at
 * the time of the write, and stay so.
 */
START_TEST(test_whole_chunks_committed_by_write)
{
	enum { CS = 65536 };
	fresh_store(CS);
	uint8_t *b = malloc(3 * CS), *want = malloc(3 * CS), *got = malloc(3 * CS);
	uint64_t seed = 7;
	tu_fill_random(&seed, b, 3 * CS);
	memcpy(want, b, 3 * CS);
	uint64_t f = mkfile(1, "f");
	/* two whole chunks and half of a third */
	ck_assert_int_eq(settfs_write(fs, f, 0, b, 2 * CS + CS / 2, 0), 2 * CS + CS / 2);
	ck_assert_uint_eq(dirty_bytes(), 0); /* the partial chunk went with them */
	memset(b, 0, 3 * CS);
	ck_assert_int_eq(settfs_read(fs, f, 0, 2 * CS + CS / 2, got), 2 * CS + CS / 2);
	ck_assert(memcmp(got, want, 2 * CS + CS / 2) == 0);
	/* a small write is buffered; a whole chunk after it commits both */
	ck_assert_int_eq(settfs_write(fs, f, 2 * CS + CS / 2, want + 2 * CS + CS / 2, 100, 0), 100);
	ck_assert_uint_eq(dirty_bytes(), CS);
	ck_assert_int_eq(settfs_write(fs, f, 3 * CS, want, CS, 0), CS);
	ck_assert_uint_eq(dirty_bytes(), 0);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_uint_eq(dirty_bytes(), 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	reopen();
	uint8_t *all = malloc(4 * CS);
	ck_assert_int_eq(settfs_read(fs, f, 0, 4 * CS, all), 4 * CS);
	ck_assert(memcmp(all, want, 2 * CS + CS / 2 + 100) == 0);
	for (int i = 2 * CS + CS / 2 + 100; i < 3 * CS; i++)
		ck_assert_int_eq(all[i], 0);
	ck_assert(memcmp(all + 3 * CS, want, CS) == 0);
	fsck_reopen();
	free(all);
	free(b);
	free(want);
	free(got);
}
END_TEST

/* Truncate, punch and SEEK_DATA/SEEK_HOLE see overlay pages. */
START_TEST(test_overlay_truncate_punch_seek)
{
	const uint32_t cs = 16384;
	fresh_store(cs);
	uint8_t model[65536], b[4096];
	memset(model, 0, sizeof model);
	memset(model, 'a', 10000);
	uint64_t f = mkfile(1, "f");
	struct stat in, st;
	memset(&in, 0, sizeof in);
	ck_assert_int_eq(settfs_write(fs, f, 0, model, 10000, 0), 10000);
	in.st_size = 65536;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	/* page 3 of chunk 0 (past the chunk's stored end) and page 1 of chunk 2 (a hole) */
	memset(b, 'b', sizeof b);
	ck_assert_int_eq(settfs_write(fs, f, 12288, b, 4096, 0), 4096);
	ck_assert_int_eq(settfs_write(fs, f, 2 * 16384 + 4096 + 10, b, 50, 0), 50);
	memcpy(model + 12288, b, 4096);
	memcpy(model + 2 * 16384 + 4096 + 10, b, 50);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(count_overlays(f), 2);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	check_bytes(f, 0, model, sizeof model);
	ck_assert_int_eq(settfs_lseek(fs, f, 0, SEEK_HOLE), 10000);
	ck_assert_int_eq(settfs_lseek(fs, f, 10000, SEEK_DATA), 12288);
	ck_assert_int_eq(settfs_lseek(fs, f, 12288, SEEK_HOLE), 16384);
	ck_assert_int_eq(settfs_lseek(fs, f, 16384, SEEK_DATA), 2 * 16384 + 4096);
	ck_assert_int_eq(settfs_lseek(fs, f, 2 * 16384 + 4096, SEEK_HOLE), 2 * 16384 + 4096 + 60);
	ck_assert_int_eq(settfs_lseek(fs, f, 2 * 16384 + 4096 + 60, SEEK_DATA), -ENXIO);
	/* punch inside the overlay, then the whole overlay page */
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  12300, 100, 0), 0);
	memset(model + 12300, 0, 100);
	check_bytes(f, 0, model, sizeof model);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  2 * 16384, 16384, 0), 0);
	memset(model + 2 * 16384, 0, 16384);
	check_bytes(f, 0, model, sizeof model);
	ck_assert_int_eq(settfs_lseek(fs, f, 16384, SEEK_DATA), -ENXIO);
	attr(f, &st);
	ck_assert_int_eq(st.st_blocks * 512, ((10000 + 4096) + 511) / 512 * 512);
	/* truncate into the overlay page shortens it, below it deletes it */
	in.st_size = 13000;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(count_overlays(f), 1);
	in.st_size = 65536;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	memset(model + 13000, 0, sizeof model - 13000);
	check_bytes(f, 0, model, sizeof model);
	ck_assert_int_eq(settfs_lseek(fs, f, 12288, SEEK_HOLE), 13000);
	in.st_size = 11000;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(count_overlays(f), 0);
	in.st_size = 65536;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	memset(model + 11000, 0, sizeof model - 11000);
	check_bytes(f, 0, model, sizeof model);
	ck_assert_int_eq(settfs_lseek(fs, f, 0, SEEK_HOLE), 10000);
	attr(f, &st);
	ck_assert_int_eq(st.st_blocks * 512, (10000 + 511) / 512 * 512);
	/* an unlinked file takes its overlays with it */
	ck_assert_int_eq(settfs_write(fs, f, 4096, b, 4096, 0), 4096);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(count_overlays(f), 1);
	ck_assert_int_eq(settfs_unlink(fs, 1, "f"), 0);
	ck_assert_int_eq(count_overlays(f), 0);
	fsck_reopen(); /* block counts and chunk bounds hold */
}
END_TEST

/* ---- COLLAPSE_RANGE and INSERT_RANGE ---- */

static int set_size(uint64_t f, uint64_t size)
{
	struct stat in, st;
	memset(&in, 0, sizeof in);
	in.st_size = (off_t)size;
	return settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st);
}

/* f holds exactly the model's size bytes. */
static void check_model(uint64_t f, const uint8_t *m, uint64_t size)
{
	struct stat st;
	attr(f, &st);
	ck_assert_uint_eq((uint64_t)st.st_size, size);
	check_bytes(f, 0, m, size);
}

/*
 * Collapse and insert, on whole chunks (keys copied) and on blocks within
 * chunks (chunks put together anew), with overlay pages, holes and data
 * still buffered; the rules of ext4 for what is refused.
 */
START_TEST(test_collapse_insert)
{
	const uint32_t cs = 16384;
	fresh_store(cs);
	enum { MAX = 40 * 16384 };
	uint8_t *m = calloc(1, MAX), *tmp = malloc(MAX);
	uint64_t seed = 99, size = 20 * cs;
	uint64_t f = mkfile(1, "f");
	tu_fill_random(&seed, m, size);
	memset(m + 5 * cs, 0, 3 * cs); /* a hole of three chunks */
	ck_assert_int_eq(settfs_write(fs, f, 0, m, 5 * cs, 0), (ssize_t)(5 * cs));
	ck_assert_int_eq(settfs_write(fs, f, 8 * cs, m + 8 * cs, size - 8 * cs, 0),
			 (ssize_t)(size - 8 * cs));
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	/* overlay pages, then data left in the buffers */
	for (uint64_t o = 4096; o < size; o += 3 * cs) {
		tu_fill_random(&seed, m + o, 100);
		ck_assert_int_eq(settfs_write(fs, f, (off_t)o, m + o, 100, 0), 100);
	}
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	ck_assert_int_gt(count_overlays(f), 0);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	tu_fill_random(&seed, m + 9 * cs + 7, 5000);
	ck_assert_int_eq(settfs_write(fs, f, 9 * cs + 7, m + 9 * cs + 7, 5000, 0), 5000);
	struct stat st0, st;
	memset(&st0, 0, sizeof st0); /* times 0: any move sets them later */
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &st0,
					SETTFS_SET_MTIME | SETTFS_SET_CTIME, &st), 0);
	struct {
		int collapse;
		uint64_t off, len;
	} steps[] = {
		{ 1, 2 * cs, 2 * cs },           /* whole chunks */
		{ 0, 3 * cs, 4 * cs },           /* whole chunks, a hole in between */
		{ 1, 4096, 3 * 4096 },           /* blocks within a chunk */
		{ 0, cs + 8192, cs + 4096 },     /* blocks across chunks */
		{ 1, 5 * cs + 4096, 6 * cs },    /* over the hole */
		{ 0, 0, 4096 },                  /* at the start */
	};
	for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
		int mode = steps[i].collapse ? FALLOC_FL_COLLAPSE_RANGE : FALLOC_FL_INSERT_RANGE;
		ck_assert_msg(settfs_fallocate(fs, f, mode, (off_t)steps[i].off, (off_t)steps[i].len,
					       0) == 0, "step %zu", i);
		model_move(m, &size, steps[i].collapse, steps[i].off, steps[i].len);
		check_model(f, m, size);
	}
	attr(f, &st);
	ck_assert_int_gt(st.st_mtim.tv_sec, 1000000000);
	ck_assert_int_gt(st.st_ctim.tv_sec, 1000000000);
	/* at the end: a collapse must end before it, an insert start before it */
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_COLLAPSE_RANGE, (off_t)(size - 8192),
					  8192, 0), -EINVAL);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_INSERT_RANGE, (off_t)size, 4096, 0),
			 -EINVAL);
	ck_assert_int_eq(set_size(f, size - 100), 0);
	size -= 100;
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_COLLAPSE_RANGE,
					  (off_t)(size / 4096 * 4096 - 4096), 4096, 0), 0);
	model_move(m, &size, 1, size / 4096 * 4096 - 4096, 4096);
	check_model(f, m, size);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_INSERT_RANGE,
					  (off_t)(size / 4096 * 4096), 8192, 0), 0);
	model_move(m, &size, 0, size / 4096 * 4096, 8192);
	check_model(f, m, size);
	/* not whole blocks, other flags, not a regular file */
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_COLLAPSE_RANGE, 100, 4096, 0), -EINVAL);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_INSERT_RANGE, 0, 4000, 0), -EINVAL);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0,
					  4096, 0), -EOPNOTSUPP);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_INSERT_RANGE | FALLOC_FL_KEEP_SIZE, 0,
					  4096, 0), -EOPNOTSUPP);
	ck_assert_int_eq(settfs_fallocate(fs, 1, FALLOC_FL_INSERT_RANGE, 0, 4096, 0), -EISDIR);
	struct stat sl;
	ck_assert_int_eq(settfs_symlink(fs, &root_ctx, 1, "l", "f", &sl), 0);
	ck_assert_int_eq(settfs_fallocate(fs, sl.st_ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096, 0),
			 -ENODEV);
	check_model(f, m, size);
	/* past the largest size */
	ck_assert_int_eq(set_size(f, INT64_MAX - 4096), 0);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_INSERT_RANGE, 0, 8192, 0), -EFBIG);
	/* a sparse file costs its stored chunks: data at the start and near 2^40 */
	ck_assert_int_eq(settfs_write(fs, f, (off_t)1 << 40, "end", 3, 0), 3);
	ck_assert_int_eq(set_size(f, ((uint64_t)1 << 40) + 3), 0);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_INSERT_RANGE, 4096, 4096, 0), 0);
	ck_assert_int_eq(settfs_read(fs, f, ((off_t)1 << 40) + 4096, 10, tmp), 3);
	ck_assert(memcmp(tmp, "end", 3) == 0);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_COLLAPSE_RANGE, 4096, 8192, 0), 0);
	ck_assert_int_eq(settfs_read(fs, f, ((off_t)1 << 40) - 4096, 10, tmp), 3);
	ck_assert(memcmp(tmp, "end", 3) == 0);
	/* the two moves took the block at 4096 out */
	check_bytes(f, 0, m, 4096);
	check_bytes(f, 4096, m + 8192, size - 8192);
	settfs_release(fs, f, O_RDWR);
	settfs_release(fs, f, O_RDWR);
	fsck_reopen(); /* block counts and chunk bounds hold */
	free(m);
	free(tmp);
}
END_TEST

/*
 * A random COLLAPSE_RANGE or INSERT_RANGE on f, applied to the model
 * (size *size, room for max bytes): whole blocks, often whole chunks,
 * sometimes against the rules (EINVAL expected).
 */
static long moves_done[2]; /* refused, done */

static void move_op(uint64_t *seed, uint64_t f, uint8_t *model, uint64_t *size, uint64_t max)
{
	uint64_t cs = settfs_chunk_size(fs), unit = tu_rand(seed) % 2 ? cs : 4096;
	int collapse = tu_rand(seed) % 2;
	uint64_t off = tu_rand(seed) % (*size / unit + 2) * unit;
	uint64_t len = (1 + tu_rand(seed) % (tu_rand(seed) % 4 ? 3 : 40)) * unit;
	int mode = collapse ? FALLOC_FL_COLLAPSE_RANGE : FALLOC_FL_INSERT_RANGE;
	if (tu_rand(seed) % 8 == 0) {
		/* not whole blocks */
		if (tu_rand(seed) % 2)
			off += 1 + tu_rand(seed) % 4095;
		else
			len += 1 + tu_rand(seed) % 4095;
	}
	int ok = off % 4096 == 0 && len % 4096 == 0 &&
		 (collapse ? off + len < *size : off < *size);
	if (!collapse && *size + len > max) {
		if (ok)
			return;
	}
	int r = settfs_fallocate(fs, f, mode, (off_t)off, (off_t)len, 0);
	ck_assert_msg(r == (ok ? 0 : -EINVAL), "%s %llu+%llu (size %llu): %d",
		      collapse ? "collapse" : "insert", (unsigned long long)off,
		      (unsigned long long)len, (unsigned long long)*size, r);
	if (ok)
		model_move(model, size, collapse, off, len);
	moves_done[ok]++;
}

/*
 * fsx-style: random writes, truncates, fallocate in every mode (collapse
 * and insert included), seeks and reopens against a model.  `small` makes
 * most writes a few KiB (overlay pages).  SETTFS_RANDOM_OPS sets the
 * number of operations of each run, SETTFS_RANDOM_SEED the seed.
 */
/* random_ops writes text (compressible) instead of random bytes */
static int text_data;

/* Words of a few letters: text that compresses about 2.5 to 1. */
static void fill_text(uint64_t *seed, uint8_t *p, size_t n)
{
	static const char letters[] = "etaoinshrdlu";
	for (size_t i = 0; i < n; i++) {
		uint64_t r = tu_rand(seed);
		p[i] = r % 7 == 0 ? (r % 3 ? ' ' : '\n') : (uint8_t)letters[(r >> 8) % 12];
	}
}

static void random_ops(uint64_t seed, int ops, int small)
{
	enum { MAX = 600000 };
	if (getenv("SETTFS_RANDOM_OPS"))
		ops = atoi(getenv("SETTFS_RANDOM_OPS"));
	if (getenv("SETTFS_RANDOM_SEED"))
		seed = strtoull(getenv("SETTFS_RANDOM_SEED"), NULL, 0);
	uint8_t *model = calloc(1, MAX), *got = malloc(MAX), *tmp = malloc(MAX);
	uint64_t size = 0;
	uint64_t f = mkfile(1, "fsx");
	struct stat in, st;
	memset(&in, 0, sizeof in);
	for (int op = 0; op < ops; op++) {
		uint64_t r = tu_rand(&seed) % 100;
		uint64_t off = tu_rand(&seed) % (MAX - 1);
		uint64_t len = 1 + tu_rand(&seed) % (r < 10 ? 200000 : 9000);
		if (small && r < 50 && tu_rand(&seed) % 2) {
			/* page-aligned pages, as a writeback cache sends them */
			off &= ~(uint64_t)4095;
			len = 4096 * (1 + tu_rand(&seed) % 2);
		}
		if (off + len > MAX)
			len = MAX - off;
		if (r < 50) {
			if (text_data)
				fill_text(&seed, tmp, len);
			else
				tu_fill_random(&seed, tmp, len);
			ck_assert_int_eq(settfs_write(fs, f, (off_t)off, tmp, len, 0), (ssize_t)len);
			memcpy(model + off, tmp, len);
			if (off + len > size)
				size = off + len;
		} else if (r < (uint64_t)(60 - small * 5)) {
			uint64_t ns = tu_rand(&seed) % MAX;
			in.st_size = (off_t)ns;
			ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
			if (ns < size)
				memset(model + ns, 0, size - ns);
			size = ns;
		} else if (r < 65) {
			/* punch, zero range (keeping the size or not), allocate (mode 0, KEEP_SIZE) */
			static const int modes[] = {
				FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
				FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, FALLOC_FL_KEEP_SIZE
			};
			int mode = modes[tu_rand(&seed) % 5];
			if (tu_rand(&seed) % 2) {
				move_op(&seed, f, model, &size, MAX);
				goto next;
			}
			ck_assert_int_eq(settfs_fallocate(fs, f, mode, (off_t)off, (off_t)len, 0), 0);
			if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > size)
				size = off + len;
			if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) && off < size)
				memset(model + off, 0, (off + len > size ? size : off + len) - off);
		} else if (r < 67) {
			ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
			reopen();
			ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
		} else if (r < 72) {
			ck_assert_int_eq(settfs_flush(fs, f), 0);
		} else if (r < 76) {
			/* a hole never holds data; data starts where it is said to */
			off_t h = settfs_lseek(fs, f, (off_t)off, SEEK_HOLE);
			off_t d = settfs_lseek(fs, f, (off_t)off, SEEK_DATA);
			if (off >= size) {
				ck_assert_int_eq(h, -ENXIO);
				ck_assert_int_eq(d, -ENXIO);
			} else {
				ck_assert_int_ge(h, (off_t)off);
				ck_assert_int_le(h, (off_t)size);
				if ((uint64_t)h < size)
					ck_assert_int_eq(model[h], 0);
				uint64_t e = d == -ENXIO ? size : (uint64_t)d;
				ck_assert_int_ge(d == -ENXIO ? (off_t)size : d, (off_t)off);
				for (uint64_t i = off; i < e; i++)
					ck_assert_msg(model[i] == 0, "op %d: data at %llu before SEEK_DATA %lld",
						      op, (unsigned long long)i, (long long)d);
			}
		} else {
			ssize_t n = settfs_read(fs, f, (off_t)off, len, got);
			uint64_t want = off >= size ? 0 : (off + len > size ? size - off : len);
			ck_assert_int_eq(n, (ssize_t)want);
			ck_assert_msg(memcmp(got, model + off, want) == 0, "op %d: read %llu+%llu differs",
				      op, (unsigned long long)off, (unsigned long long)len);
		}
	next:
		attr(f, &st);
		ck_assert_int_eq(st.st_size, (off_t)size);
	}
	ck_assert_int_eq(settfs_read(fs, f, 0, MAX, got), (ssize_t)size);
	ck_assert(memcmp(got, model, size) == 0);
	if (getenv("SETTFS_RANDOM_OPS"))
		fprintf(stderr, "random_ops: %d operations, %ld collapse/insert done, %ld refused\n",
			ops, moves_done[1], moves_done[0]);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	fsck_reopen(); /* block counts and chunk bounds hold */
	free(model);
	free(got);
	free(tmp);
}

START_TEST(test_random_ops)
{
	random_ops(12345, 1000, 0);
}
END_TEST

/* Small random writes on small chunks: overlays made, folded, cut, punched. */
START_TEST(test_random_ops_overlays)
{
	fresh_store(16384);
	random_ops(777, 1500, 1);
	fresh_store(65536);
	random_ops(4242, 1500, 1);
}
END_TEST

/*
 * fallocate allocates: the holes of the range are stored as zeros and
 * counted in st_blocks, so a later write there adds no blocks; what the
 * disk cannot hold above the reserve is refused with ENOSPC, and nothing
 * changes then.
 */
START_TEST(test_fallocate_allocates)
{
	uint64_t f = mkfile(1, "f");
	struct stat st;
	/* an unaligned range meeting two pages (xfstests generic/568) */
	ck_assert_int_eq(settfs_fallocate(fs, f, 0, 4095, 2, 0), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 4097);
	ck_assert_int_ge(st.st_blocks * 512, 4097);
	blkcnt_t before = st.st_blocks;
	ck_assert_int_eq(settfs_write(fs, f, 4095, "ab", 2, 0), 2);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_blocks, before);
	/* KEEP_SIZE allocates within the size only; the size stays */
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 0, 1 << 20, 0), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 4097);
	ck_assert_int_eq(st.st_blocks, before);
	/* a zero range past the end grows the file and allocates it */
	uint32_t cs = 65536;
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE, 4096, 3 * cs, 0), 0);
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 4096 + 3 * cs);
	ck_assert_int_ge(st.st_blocks * 512, 4096 + 3 * cs);
	char b[4];
	ck_assert_int_eq(settfs_read(fs, f, 4094, 4, b), 4);
	ck_assert(memcmp(b, "\0a\0\0", 4) == 0);
	settfs_release(fs, f, O_RDWR);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	if (access("./fsck.settfs", X_OK) == 0)
		ck_assert_int_eq(run_fsck(), 0); /* blocks match the stored bytes */

	/*
	 * A reserve that leaves 512 MiB above it: more is refused, whatever
	 * the mode (were it admitted, the test would write 1.5 GiB, no more).
	 */
	struct statvfs sv;
	ck_assert_int_eq(statvfs(dir, &sv), 0);
	int64_t disk_free = (int64_t)(sv.f_bavail * sv.f_frsize);
	if (disk_free < (2LL << 30))
		return; /* too little disk for the test */
	fs_open_reserve(disk_free - (512LL << 20));
	off_t big = 3LL << 29;
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_fallocate(fs, f, 0, 0, big, 0), -ENOSPC);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 0, big, 0), -ENOSPC);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE, 0, big, 0), -ENOSPC);
	attr(f, &st);
	ck_assert_int_eq(st.st_size, 4096 + 3 * cs);
	ck_assert_int_eq(settfs_read(fs, f, 4094, 4, b), 4);
	ck_assert(memcmp(b, "\0a\0\0", 4) == 0);
	/* what fits is granted; an allocated range needs nothing more */
	ck_assert_int_eq(settfs_fallocate(fs, f, 0, 0, 1 << 20, 0), 0);
	ck_assert_int_eq(settfs_fallocate(fs, f, 0, 0, 1 << 20, 0), 0);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 0, 1 << 20, 0), 0);
	/* a punch frees, it never needs space */
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					  big, 0), 0);
	settfs_release(fs, f, O_RDWR);
}
END_TEST

/*
 * Allocation over data still in buffers: a chunk buffer over a stored
 * chunk (the walk over the stored keys must still step past its keys), a
 * page buffer in a stored chunk's hole (which the stored keys do not
 * show) and a chunk buffer of a new chunk, met by fallocate in every
 * allocating mode.  The file reads as written, the allocated range is
 * counted in st_blocks, and the store is consistent (fsck.settfs) and
 * reads the same after a reopen.
 */
static void over_buffers_file(uint64_t f, uint8_t *model, uint32_t cs)
{
	/* stored: 8 KiB at the start of chunk 0, 100 bytes in chunks 1 and 2 */
	memset(model, 'a', 8192);
	memset(model + cs + 10, 'd', 100);
	memset(model + 2 * cs + 10, 'e', 100);
	ck_assert_int_eq(settfs_write(fs, f, 0, model, 8192, 0), 8192);
	ck_assert_int_eq(settfs_write(fs, f, (off_t)cs + 10, model + cs + 10, 100, 0), 100);
	ck_assert_int_eq(settfs_write(fs, f, 2 * (off_t)cs + 10, model + 2 * cs + 10, 100, 0), 100);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	/* buffered: chunk 0 whole, a page in chunk 1's hole, chunk 3 new */
	memset(model, 'x', cs);
	ck_assert_int_eq(settfs_write(fs, f, 0, model, cs, 0), (ssize_t)cs);
	memset(model + cs + 16384, 'b', 100);
	ck_assert_int_eq(settfs_write(fs, f, (off_t)cs + 16384, model + cs + 16384, 100, 0), 100);
	memset(model + 3 * cs + 5, 'c', 100);
	ck_assert_int_eq(settfs_write(fs, f, 3 * (off_t)cs + 5, model + 3 * cs + 5, 100, 0), 100);
}

START_TEST(test_fallocate_over_buffers)
{
	static const int modes[] = { 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE };
	uint32_t cs = settfs_chunk_size(fs);
	size_t size = 4 * (size_t)cs;
	uint8_t *model = calloc(1, size), *back = malloc(size);
	ck_assert_ptr_nonnull(model);
	ck_assert_ptr_nonnull(back);
	for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
		char name[16];
		snprintf(name, sizeof name, "f%zu", m);
		uint64_t f = mkfile(1, name);
		memset(model, 0, size);
		over_buffers_file(f, model, cs);
		ck_assert_int_eq(settfs_fallocate(fs, f, modes[m], 4096, (off_t)(size - 4096), 0), 0);
		if (modes[m] == FALLOC_FL_ZERO_RANGE)
			memset(model + 4096, 0, size - 4096);
		size_t want = modes[m] == FALLOC_FL_KEEP_SIZE ? 3 * (size_t)cs + 105 : size;
		struct stat st;
		attr(f, &st);
		ck_assert_uint_eq((uint64_t)st.st_size, want);
		ck_assert_uint_ge((uint64_t)st.st_blocks * 512, want);
		ck_assert_int_eq(settfs_read(fs, f, 0, size, back), (ssize_t)want);
		ck_assert_msg(memcmp(back, model, want) == 0, "mode %d reads other bytes", modes[m]);
		settfs_release(fs, f, O_RDWR);
	}
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	if (access("./fsck.settfs", X_OK) == 0)
		ck_assert_int_eq(run_fsck(), 0);
	fs_open_();
	struct stat st;
	ck_assert_int_eq(settfs_lookup(fs, 1, "f0", &st), 0);
	ck_assert_int_eq(settfs_read(fs, st.st_ino, 0, size, back), (ssize_t)size);
	uint64_t g = mkfile(1, "model");
	memset(model, 0, size);
	over_buffers_file(g, model, cs);
	ck_assert(memcmp(back, model, size) == 0);
	settfs_release(fs, g, O_RDWR);
	free(model);
	free(back);
}
END_TEST

/*
 * A store whose disk filled up, then was emptied by deletions, takes new
 * data at once after a reopen: the refused write has the engine reclaim
 * (the tombstones still sit above the data, so no garbage is counted
 * before that) instead of failing until background work happens to run.
 * The disk is made small: a tmpfs of its own (own_disk; the shared disk
 * where none can be mounted) and a reserve that leaves 128 MiB above it.
 */
START_TEST(test_full_disk_reclaim)
{
	enum { MB = 1 << 20 };
	static uint8_t data[MB];
	uint64_t seed = 11;
	tu_fill_random(&seed, data, sizeof data);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	int own = own_disk(512) == 0;
	struct statvfs sv;
	ck_assert_int_eq(statvfs(dir, &sv), 0);
	int64_t disk_free = (int64_t)(sv.f_bavail * sv.f_frsize);
	if (!own && disk_free < (2LL << 30)) {
		fs_open_();
		return; /* too little disk for the test */
	}
	int64_t reserve = disk_free - (128LL << 20);
	fs_open_reserve(reserve);
	uint64_t f = mkfile(1, "f");
	int mb = 0;
	for (; mb < 256; mb++) {
		memcpy(data, &mb, sizeof mb);
		ssize_t w = settfs_write(fs, f, (off_t)mb * MB, data, MB, 0);
		if (w != MB) {
			ck_assert_int_eq(w, -ENOSPC);
			break;
		}
	}
	ck_assert_int_gt(mb, 32);
	ck_assert_int_lt(mb, 256);
	ck_assert_int_eq(settfs_flush(fs, f), 0);
	settfs_release(fs, f, O_RDWR);
	ck_assert_int_eq(settfs_unlink(fs, 1, "f"), 0);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;

	fs_open_reserve(reserve); /* no idle time: nothing ran in the background */
	uint64_t g = mkfile(1, "g");
	for (int i = 0; i < 64; i++) {
		memcpy(data, &i, sizeof i);
		ck_assert_int_eq(settfs_write(fs, g, (off_t)i * MB, data, MB, 0), MB);
	}
	ck_assert_int_eq(settfs_flush(fs, g), 0);
	settfs_release(fs, g, O_RDWR);
}
END_TEST

typedef struct refused_op {
	uint64_t ino;
	int setattr; /* else fallocate */
	int rc;
} refused_op;

static void *refused_main(void *p)
{
	refused_op *op = p;
	struct stat in, st;
	memset(&in, 0, sizeof in);
	in.st_size = 8 << 20;
	op->rc = op->setattr ? settfs_setattr(fs, &root_ctx, op->ino, &in, SETTFS_SET_SIZE, &st)
			     : settfs_fallocate(fs, op->ino, 0, 0, 8 << 20, 0);
	return NULL;
}

typedef struct stat_op {
	uint64_t ino;
	int done, rc;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} stat_op;

static void *stat_main(void *p)
{
	stat_op *op = p;
	struct stat st;
	int r = settfs_getattr(fs, op->ino, &st);
	pthread_mutex_lock(&op->mu);
	op->rc = r;
	op->done = 1;
	pthread_cond_broadcast(&op->cv);
	pthread_mutex_unlock(&op->mu);
	return NULL;
}

/*
 * A truncate up or an fallocate refused for space has the engine reclaim
 * without holding the file's locks: while the reclaim is held inside an
 * I/O, another request on the same file is served.  (The wait for it is
 * bounded at 30 s, a hang's bound, not a timing.)
 */
START_TEST(test_reclaim_holds_no_node_lock)
{
	static uint8_t data[1 << 20];
	uint64_t seed = 5;
	tu_fill_random(&seed, data, sizeof data);
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, data, sizeof data, 0), (ssize_t)sizeof data);
	settfs_release(fs, f, O_RDWR);
	for (int setattr = 0; setattr < 2; setattr++) {
		/* a new mount: its first refusal reclaims (a reclaim that found
		 * nothing holds off the next for a while) */
		ck_assert_int_eq(settfs_close(fs), 0);
		fs_open_reserve(INT64_MAX / 2); /* every growth is refused */
		ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
		/* the store has tables: the reclaim's compactions write */
		sio_fault_pause_nth(1);
		refused_op op = { .ino = f, .setattr = setattr };
		pthread_t th, sth;
		ck_assert_int_eq(pthread_create(&th, NULL, refused_main, &op), 0);
		sio_fault_wait_paused();
		stat_op so = { .ino = f };
		pthread_mutex_init(&so.mu, NULL);
		pthread_cond_init(&so.cv, NULL);
		ck_assert_int_eq(pthread_create(&sth, NULL, stat_main, &so), 0);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 30;
		pthread_mutex_lock(&so.mu);
		while (!so.done)
			if (pthread_cond_timedwait(&so.cv, &so.mu, &ts) == ETIMEDOUT)
				break;
		int done = so.done;
		pthread_mutex_unlock(&so.mu);
		sio_fault_resume(0);
		pthread_join(th, NULL);
		pthread_join(sth, NULL);
		sio_fault_reset();
		ck_assert_msg(done, "%s: a getattr of the file waited for the reclaim",
			      setattr ? "truncate up" : "fallocate");
		ck_assert_int_eq(so.rc, 0);
		ck_assert_int_eq(op.rc, -ENOSPC);
		pthread_mutex_destroy(&so.mu);
		pthread_cond_destroy(&so.cv);
		ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	}
	ck_assert_int_eq(settfs_read(fs, f, 0, sizeof data, data), (ssize_t)sizeof data);
}
END_TEST

/* fallocate by a caller without CAP_FSETID clears the bits, in every mode */
START_TEST(test_fallocate_kill_suidgid)
{
	static const int modes[] = { 0, FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE };
	static uint8_t data[4 * 4096];
	struct stat in, st;
	memset(&in, 0, sizeof in);
	uint64_t f = 0;
	for (int i = 0; i < 7; i++) {
		char name[8];
		snprintf(name, sizeof name, "f%d", i);
		f = mkfile(1, name);
		ck_assert_int_eq(settfs_write(fs, f, 0, data, sizeof data, 0), (ssize_t)sizeof data);
		/* collapse and insert move whole blocks */
		off_t len = modes[i] & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE) ? 4096 : 2;
		in.st_mode = 06777;
		ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
		ck_assert_int_eq(settfs_fallocate(fs, f, modes[i], 0, len, 0), 0);
		attr(f, &st);
		ck_assert_int_eq(st.st_mode & 07777, 06777); /* kept with CAP_FSETID */
		ck_assert_int_eq(settfs_fallocate(fs, f, modes[i], 0, len, SETTFS_WRITE_KILL_SUIDGID),
				 0);
		attr(f, &st);
		ck_assert_int_eq(st.st_mode & 07777, 0777);
		in.st_mode = 02767; /* set-group-ID without group execute stays */
		ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
		ck_assert_int_eq(settfs_fallocate(fs, f, modes[i], 0, len, SETTFS_WRITE_KILL_SUIDGID),
				 0);
		attr(f, &st);
		ck_assert_int_eq(st.st_mode & 07777, 02767);
		settfs_release(fs, f, O_RDWR);
	}
	reopen();
	attr(f, &st);
	ck_assert_int_eq(st.st_mode & 07777, 02767);
}
END_TEST

/* ---- page-cache fill tokens ---------------------------------------- */

static int fill_calls;

static int count_fill(void *arg)
{
	(void)arg;
	fill_calls++;
	return 0;
}

/* Does a push with token t run now?  0 yes, -ESTALE no. */
static int fill_runs(uint64_t ino, uint64_t t)
{
	int before = fill_calls;
	int r = settfs_fill_run(fs, ino, t, count_fill, NULL);
	ck_assert_int_eq(fill_calls, before + (r == 0));
	return r;
}

static uint64_t fill_token(uint64_t ino)
{
	uint64_t t = 0, sz;
	ck_assert_int_eq(settfs_fill_token(fs, ino, &t, &sz), 0);
	return t;
}

START_TEST(test_fill_token)
{
	struct stat st, in;
	char buf[8192];
	uint64_t f = mkfile(1, "f"), t, t2, sz;
	/* pin the node, so staleness below comes from the events, not a reload */
	ck_assert_int_eq(settfs_lookup(fs, 1, "f", &st), 0);
	memset(buf, 'a', sizeof buf);
	ck_assert_int_eq(settfs_write(fs, f, 0, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	/* create opened it for writing */
	ck_assert_int_eq(settfs_fill_token(fs, f, &t, &sz), -EBUSY);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	t = fill_token(f);
	ck_assert_int_eq(fill_runs(f, t), 0);

	/* reading, read-only opens and chmod leave the data alone */
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDONLY), 0);
	ck_assert_int_eq(settfs_read(fs, f, 0, sizeof buf, buf), (ssize_t)sizeof buf);
	memset(&in, 0, sizeof in);
	in.st_mode = 0600;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_MODE, &st), 0);
	ck_assert_int_eq(fill_token(f), t);
	ck_assert_int_eq(fill_runs(f, t), 0);

	/* a writable open: no token while open, the old one stays stale */
	ck_assert_int_eq(settfs_file_open(fs, f, O_WRONLY), 0);
	ck_assert_int_eq(settfs_fill_token(fs, f, &t2, &sz), -EBUSY);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_release(fs, f, O_WRONLY), 0);
	ck_assert_int_eq(settfs_fill_token(fs, f, &t2, &sz), -EBUSY); /* one writer left */
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	t = fill_token(f);
	ck_assert_int_eq(fill_runs(f, t), 0);

	/* truncate by path, without an open handle */
	in.st_size = 4096;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, f, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	t = fill_token(f);
	/* fallocate: extend, then punch */
	ck_assert_int_eq(settfs_fallocate(fs, f, 0, 0, 65536, 0), 0);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	t = fill_token(f);
	ck_assert_int_eq(settfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					  4096, 0), 0);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	/* O_TRUNC */
	t = fill_token(f);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR | O_TRUNC), 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	ck_assert_int_eq(fill_runs(f, fill_token(f)), 0);
	ck_assert_int_eq(settfs_release(fs, f, O_RDONLY), 0);

	/* only regular files */
	ck_assert_int_eq(settfs_fill_token(fs, 1, &t2, &sz), -EISDIR);
	settfs_forget(fs, f, 1);
}
END_TEST

START_TEST(test_fill_token_reload)
{
	struct stat st;
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, "data", 4, 0), 4);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	/* nothing holds the node: it leaves memory after each call */
	uint64_t t = fill_token(f);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	ck_assert_int_eq(settfs_lookup(fs, 1, "f", &st), 0);
	uint64_t t1 = fill_token(f);
	ck_assert(t1 != t);
	ck_assert_int_eq(fill_runs(f, t), -ESTALE);
	ck_assert_int_eq(fill_runs(f, t1), 0);
	settfs_forget(fs, f, 1);
	ck_assert_int_eq(settfs_lookup(fs, 1, "f", &st), 0);
	uint64_t t2 = fill_token(f);
	ck_assert(t2 != t1 && t2 != t);
	ck_assert_int_eq(fill_runs(f, t1), -ESTALE);
	ck_assert_int_eq(fill_runs(f, t2), 0);
	/* a new store session never repeats a token of the old one either */
	reopen();
	ck_assert_int_eq(settfs_lookup(fs, 1, "f", &st), 0);
	ck_assert_int_eq(fill_runs(f, t2), -ESTALE);
	settfs_forget(fs, f, 1);
}
END_TEST

struct fill_race {
	uint64_t ino;
	atomic_int opened;
	int opened_during_push, read_during_push, token_during_push;
};

static void *open_writable(void *arg)
{
	struct fill_race *fr = arg;
	ck_assert_int_eq(settfs_file_open(fs, fr->ino, O_RDWR), 0);
	atomic_store(&fr->opened, 1);
	return NULL;
}

/* A push that reads the file and lets a writer try to open it meanwhile. */
static int racing_push(void *arg)
{
	struct fill_race *fr = arg;
	char buf[16];
	uint64_t t, sz;
	pthread_t th;
	/* reads and tokens never wait for a push (the kernel may need them) */
	fr->read_during_push = (int)settfs_read(fs, fr->ino, 0, sizeof buf, buf);
	fr->token_during_push = settfs_fill_token(fs, fr->ino, &t, &sz);
	ck_assert_int_eq(pthread_create(&th, NULL, open_writable, fr), 0);
	pthread_detach(th);
	usleep(200 * 1000);
	fr->opened_during_push = atomic_load(&fr->opened);
	return 0;
}

START_TEST(test_fill_blocks_writers)
{
	struct fill_race fr;
	memset(&fr, 0, sizeof fr);
	fr.ino = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, fr.ino, 0, "data", 4, 0), 4);
	ck_assert_int_eq(settfs_file_open(fs, fr.ino, O_RDONLY), 0); /* keep it loaded */
	ck_assert_int_eq(settfs_release(fs, fr.ino, O_RDWR), 0);
	uint64_t t = fill_token(fr.ino);
	ck_assert_int_eq(settfs_fill_run(fs, fr.ino, t, racing_push, &fr), 0);
	ck_assert_int_eq(fr.read_during_push, 4);
	ck_assert_int_eq(fr.token_during_push, 0);
	/* the writable open waited for the push, and then went through */
	ck_assert_int_eq(fr.opened_during_push, 0);
	for (int i = 0; i < 600 && !atomic_load(&fr.opened); i++)
		usleep(100 * 1000);
	ck_assert(atomic_load(&fr.opened));
	ck_assert_int_eq(fill_runs(fr.ino, t), -ESTALE);
	ck_assert_int_eq(settfs_release(fs, fr.ino, O_RDWR), 0);
	ck_assert_int_eq(settfs_release(fs, fr.ino, O_RDONLY), 0);
}
END_TEST

/*
 * The data blocks of table `path` (doc/FORMAT.md, "Sorted table"): offset,
 * size and the first byte (the settfs tag) of each block's last key, read
 * from the footer and the (uncompressed) index block.  Returns the count.
 */
static uint64_t le64_at(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static const uint8_t *uvarint_at(const uint8_t *p, uint64_t *v)
{
	*v = 0;
	for (int shift = 0;; shift += 7, p++) {
		*v |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p & 0x80))
			return p + 1;
	}
}

static int table_blocks(const char *path, uint64_t *off, uint64_t *size, uint8_t *tag, int max)
{
	long long n = tu_file_size(path);
	ck_assert_int_gt(n, 68);
	uint8_t *b = malloc((size_t)n);
	FILE *f = fopen(path, "rb");
	ck_assert(b && f && fread(b, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	const uint8_t *foot = b + n - 68;
	const uint8_t *p = b + le64_at(foot + 16), *end = p + le64_at(foot + 24) - 9;
	int i = 0;
	while (p < end && i < max) {
		uint64_t klen, o, sz;
		p = uvarint_at(p, &klen);
		tag[i] = p[0];
		p += klen;
		p = uvarint_at(p, &o);
		p = uvarint_at(p, &sz);
		off[i] = o;
		size[i++] = sz;
	}
	free(b);
	return i;
}

/* The largest .sst of the store (a malloc'ed path). */
static char *largest_table(void)
{
	char *best = NULL;
	long long bsz = -1;
	DIR *d = opendir(dir);
	ck_assert(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".sst"))
			continue;
		char *p;
		ck_assert(asprintf(&p, "%s/%s", dir, de->d_name) > 0);
		if (tu_file_size(p) > bsz) {
			bsz = tu_file_size(p);
			free(best);
			best = p;
		} else {
			free(p);
		}
	}
	closedir(d);
	ck_assert(best);
	return best;
}

static void damage_content(int i, uint8_t *p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		p[k] = (uint8_t)(i * 31 + k * 7 + (k >> 5));
}

/*
 * A table with a bad data block (issue 9): the store still opens, read-only
 * (the open's own count of the inodes meets the block), says which file and
 * offset, and serves every file whose keys are elsewhere; the others read
 * as EIO, never as other bytes; nothing is written.
 */
START_TEST(test_bad_block_mounts_degraded)
{
	enum { NF = 200, SZ = 600 };
	uint8_t want[SZ], got[SZ + 10];
	char name[32];
	for (int i = 0; i < NF; i++) {
		snprintf(name, sizeof name, "f%03d", i);
		uint64_t f = mkfile(1, name);
		damage_content(i, want, SZ);
		ck_assert_int_eq(settfs_write(fs, f, 0, want, SZ, 0), SZ);
		ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	}
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	settfs_options o;
	settfs_options_init(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_close(db), 0);

	/*
	 * The last block of inodes only (its last key and its predecessor's
	 * are inodes): the newest versions of the last files' inodes (the
	 * first blocks hold old versions of the root's).
	 */
	char *sst = largest_table();
	uint64_t off[256], size[256];
	uint8_t tag[256];
	int nb = table_blocks(sst, off, size, tag, 256), b = -1;
	for (int i = 1; i < nb; i++)
		if (tag[i] == SFS_TAG_INODE && tag[i - 1] == SFS_TAG_INODE)
			b = i;
	ck_assert_msg(b > 0, "no block of inodes in %d blocks", nb);
	tu_flip_byte(sst, (long long)(off[b] + size[b] / 2));
	uint64_t digest = tu_dir_digest(dir);

	char why[1024] = "";
	o.engine.error_buf = why;
	o.engine.error_buf_size = sizeof why;
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	ck_assert(settfs_degraded(fs));
	char at[64];
	snprintf(at, sizeof at, "offset %llu", (unsigned long long)off[b]);
	ck_assert_msg(strstr(why, strrchr(sst, '/') + 1) && strstr(why, at), "why: %s", why);

	int good = 0, bad = 0;
	for (int i = 0; i < NF; i++) {
		snprintf(name, sizeof name, "f%03d", i);
		struct stat st;
		int r = settfs_lookup(fs, 1, name, &st);
		ck_assert_msg(r == 0 || r == -EIO, "lookup %s: %d", name, r);
		if (r) {
			bad++;
			continue;
		}
		damage_content(i, want, SZ);
		ssize_t n = settfs_read(fs, st.st_ino, 0, sizeof got, got);
		ck_assert_msg(n == -EIO || (n == SZ && memcmp(got, want, SZ) == 0), "%s: %zd", name,
			      n);
		if (n == SZ)
			good++;
		else
			bad++;
		settfs_forget(fs, st.st_ino, 1);
	}
	ck_assert_int_gt(bad, 0);
	ck_assert_int_ge(good, NF - 40);
	/* a write is refused, not buffered and lost at close */
	struct stat st;
	ck_assert_int_eq(settfs_lookup(fs, 1, "f000", &st) == 0 ||
			 settfs_lookup(fs, 1, "f001", &st) == 0, 1);
	ck_assert_int_eq(settfs_write(fs, st.st_ino, 0, want, SZ, 0), -EROFS);
	settfs_forget(fs, st.st_ino, 1);
	/* read-only: nothing is rewritten around the damage */
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	ck_assert_uint_eq(tu_dir_digest(dir), digest);
	free(sst);
	fs_open_(); /* still degraded: the teardown's close has nothing to write */
}
END_TEST

/* ---- compression ---- */

/* Reopen with compression `comp` (NULL: keep the store's). */
static void reopen_compression(const char *comp)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	settfs_options o;
	settfs_options_init(&o);
	o.engine.mem_table_size = 4u << 20;
	if (comp)
		ck_assert_int_eq(settfs_parse_compression(comp, &o), 0);
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
}

/* The codec (user meta) of chunk idx of ino and its stored size; -1: no chunk. */
static int chunk_codec(sett_db *db, uint64_t ino, uint64_t idx, size_t *stored)
{
	uint8_t k[SFS_KEY_MAX], meta = 0;
	void *v = NULL;
	size_t vn = 0;
	int r = sett_get_ex(db, (sett_val){ sfs_key_chunk(k, ino, idx), k }, 0, &v, &vn, NULL, &meta);
	free(v);
	if (r == SETT_ENOTFOUND)
		return -1;
	ck_assert_int_eq(r, 0);
	if (stored)
		*stored = vn;
	return meta;
}

static void check_file(uint64_t f, const uint8_t *want, size_t size)
{
	uint8_t *got = malloc(size + 100);
	ck_assert_int_eq(settfs_read(fs, f, 0, size + 100, got), (ssize_t)size);
	ck_assert(memcmp(got, want, size) == 0);
	free(got);
}

/* The codec: round trips, the probe, the bounds of the decoder. */
START_TEST(test_chunk_codec)
{
	enum { CS = 65536 };
	static uint8_t text[CS], rnd[CS], z[CS], back[CS];
	uint64_t seed = 5;
	fill_text(&seed, text, CS);
	tu_fill_random(&seed, rnd, CS);
	const uint8_t *out;
	uint32_t len;
	/* text compresses, whole or short; random data does not */
	for (uint32_t n = 100; n <= CS; n = n * 3 + 1 > CS && n != CS ? CS : n * 3 + 1) {
		long zn = sfs_chunk_compress(3, text, n, z, sizeof z);
		ck_assert_int_gt(zn, 0);
		ck_assert_int_le(zn, (long)(n - n / 8));
		ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_ZSTD, z, (size_t)zn, CS, back, &out, &len), 0);
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(out, text, n) == 0);
		ck_assert_int_eq(sfs_chunk_len(SFS_CODEC_ZSTD, z, (size_t)zn, CS, &len), 0);
		ck_assert_uint_eq(len, n);
		ck_assert_int_eq(sfs_chunk_compress(3, rnd, n, z, sizeof z), 0);
	}
	/* random data behind a compressible head is caught by the probe's later slices */
	memcpy(back, text, CS);
	memcpy(back + 4096, rnd, CS - 4096);
	ck_assert_int_eq(sfs_chunk_compress(3, back, CS, z, sizeof z), 0);
	/* a raw value is itself, up to the chunk size */
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_RAW, rnd, 1000, CS, back, &out, &len), 0);
	ck_assert(out == rnd && len == 1000);
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_RAW, rnd, CS + 1, CS, back, &out, &len), -EIO);
	/* hostile values: every one is -EIO, never more than the chunk size written */
	long zn = sfs_chunk_compress(3, text, 20000, z, sizeof z);
	ck_assert_int_gt(zn, 0);
	ck_assert_int_eq(sfs_chunk_decode(7, z, (size_t)zn, CS, back, &out, &len), -EIO);
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_ZSTD, z, 4, CS, back, &out, &len), -EIO);
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_ZSTD, z, (size_t)zn - 1, CS, back, &out, &len),
			 -EIO);
	sfs_put_be32(z, 19999); /* the frame holds one byte more than the header says */
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_ZSTD, z, (size_t)zn, CS, back, &out, &len), -EIO);
	sfs_put_be32(z, 20001); /* ... one byte less */
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_ZSTD, z, (size_t)zn, CS, back, &out, &len), -EIO);
	sfs_put_be32(z, 0);
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_ZSTD, z, (size_t)zn, CS, back, &out, &len), -EIO);
	/* a frame of a whole chunk checked against a smaller chunk size */
	zn = sfs_chunk_compress(3, text, CS, z, sizeof z);
	ck_assert_int_eq(sfs_chunk_decode(SFS_CODEC_ZSTD, z, (size_t)zn, 16384, back, &out, &len), -EIO);
	ck_assert_int_eq(sfs_chunk_len(SFS_CODEC_ZSTD, z, (size_t)zn, 16384, &len), -EIO);
	/* the settings */
	settfs_options o;
	settfs_options_init(&o);
	ck_assert_int_eq(o.compression, SETTFS_COMPRESSION_KEEP);
	ck_assert_int_eq(settfs_parse_compression("zstd", &o), 0);
	ck_assert_int_eq(o.compression_level, 3);
	ck_assert_int_eq(settfs_parse_compression("zstd:19", &o), 0);
	ck_assert_int_eq(o.compression_level, 19);
	ck_assert_int_eq(settfs_parse_compression("none", &o), 0);
	ck_assert_int_eq(o.compression, SETTFS_COMPRESSION_NONE);
	static const char *bad[] = { "zstd:0", "zstd:20", "zstd:", "zstd:3x", "lz4", "zstdx", "" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_int_eq(settfs_parse_compression(bad[i], &o), -EINVAL);
}
END_TEST

/*
 * A store made with compression: text chunks (whole and a short last one)
 * are stored compressed and counted so in st_blocks, random ones raw;
 * overlay pages over a compressed chunk, a fold of them, a punch and a
 * truncate inside one, SEEK_HOLE at a compressed chunk's end all read as
 * the model does, before and after a reopen, and fsck.settfs finds the
 * store clean.
 */
START_TEST(test_compress_files)
{
	enum { CS = 65536, SIZE = 3 * CS + 20000 };
	fresh_store_compressed(CS, "zstd");
	uint8_t *model = malloc(SIZE), *rnd = malloc(SIZE);
	uint64_t seed = 11;
	fill_text(&seed, model, SIZE);
	tu_fill_random(&seed, rnd, SIZE);
	uint64_t t = mkfile(1, "text"), r = mkfile(1, "random");
	ck_assert_int_eq(settfs_write(fs, t, 0, model, SIZE, 0), SIZE);
	ck_assert_int_eq(settfs_write(fs, r, 0, rnd, SIZE, 0), SIZE);
	ck_assert_int_eq(settfs_flush(fs, t), 0);
	ck_assert_int_eq(settfs_flush(fs, r), 0);
	struct stat st;
	attr(t, &st);
	ck_assert_msg(st.st_blocks * 512 < SIZE / 2, "text: %lld blocks for %d bytes",
		      (long long)st.st_blocks, SIZE);
	attr(r, &st);
	ck_assert_int_ge(st.st_blocks * 512, SIZE);
	settfs_stats ss;
	ck_assert_int_eq(settfs_get_stats(fs, &ss), 0);
	ck_assert_int_eq(ss.compression, SETTFS_COMPRESSION_ZSTD);
	ck_assert_int_eq(ss.compression_level, 3);
	ck_assert_uint_eq(ss.logical_bytes, 2 * SIZE);
	ck_assert_uint_lt(ss.stored_bytes, SIZE + SIZE / 2);
	check_file(t, model, SIZE);
	check_file(r, rnd, SIZE);
	ck_assert_int_eq(settfs_release(fs, t, O_RDWR), 0);
	ck_assert_int_eq(settfs_release(fs, r, O_RDWR), 0);
	sett_db *db = engine_of_closed();
	for (uint64_t i = 0; i < 4; i++) {
		ck_assert_int_eq(chunk_codec(db, t, i, NULL), SFS_CODEC_ZSTD);
		ck_assert_int_eq(chunk_codec(db, r, i, NULL), SFS_CODEC_RAW);
	}
	ck_assert_int_eq(sett_close(db), 0);
	fs_open_();
	check_file(t, model, SIZE);
	check_file(r, rnd, SIZE);
	ck_assert_int_eq(settfs_file_open(fs, t, O_RDWR), 0);
	/* a page into compressed chunk 1: an overlay over it */
	uint8_t page[4096];
	memset(page, 'Q', sizeof page);
	ck_assert_int_eq(settfs_write(fs, t, CS + 8192, page, 4096, 0), 4096);
	memcpy(model + CS + 8192, page, 4096);
	ck_assert_int_eq(settfs_flush(fs, t), 0);
	check_file(t, model, SIZE);
	ck_assert_int_eq(count_overlays(t), 1);
	check_file(t, model, SIZE);
	/* overlays enough to fold chunk 2 (more than half its pages): a new compressed base */
	for (int pg = 0; pg < 10; pg++) {
		fill_text(&seed, page, sizeof page);
		ck_assert_int_eq(settfs_write(fs, t, 2 * CS + pg * 4096, page, 4096, 0), 4096);
		memcpy(model + 2 * CS + pg * 4096, page, 4096);
		ck_assert_int_eq(settfs_flush(fs, t), 0);
	}
	check_file(t, model, SIZE);
	/* a punch inside compressed chunk 0, one reaching the end of the short chunk 3 */
	ck_assert_int_eq(settfs_fallocate(fs, t, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100,
					  5000, 0), 0);
	memset(model + 100, 0, 5000);
	ck_assert_int_eq(settfs_fallocate(fs, t, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  3 * CS + 15000, 10000, 0), 0);
	memset(model + 3 * CS + 15000, 0, 5000);
	check_file(t, model, SIZE);
	/* the shortened chunk 3 ends at 15000: a hole from there */
	ck_assert_int_eq(settfs_lseek(fs, t, 3 * CS + 100, SEEK_HOLE), 3 * CS + 15000);
	ck_assert_int_eq(settfs_lseek(fs, t, 3 * CS + 100, SEEK_DATA), 3 * CS + 100);
	/* a truncate inside compressed chunk 1 (past its overlay), then grown again */
	struct stat in;
	memset(&in, 0, sizeof in);
	in.st_size = CS + 30000;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, t, &in, SETTFS_SET_SIZE, &st), 0);
	in.st_size = SIZE;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, t, &in, SETTFS_SET_SIZE, &st), 0);
	memset(model + CS + 30000, 0, SIZE - CS - 30000);
	check_file(t, model, SIZE);
	ck_assert_int_eq(settfs_lseek(fs, t, CS, SEEK_HOLE), CS + 30000);
	/* and inside a page of it */
	in.st_size = CS + 9000;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, t, &in, SETTFS_SET_SIZE, &st), 0);
	check_file(t, model, CS + 9000);
	ck_assert_int_eq(settfs_release(fs, t, O_RDWR), 0);
	fsck_reopen();
	check_file(t, model, CS + 9000);
	check_file(r, rnd, SIZE);
	attr(t, &st);
	ck_assert_int_lt(st.st_blocks * 512, CS);
	free(model);
	free(rnd);
}
END_TEST

/*
 * Compression switched on and off at open: each setting is kept in the
 * store for later opens, applies to chunks written from then on, and
 * every chunk reads back whatever the setting is now.  The store turns
 * format 4 (which older readers refuse) only when compression is first
 * set, and stays so.
 */
START_TEST(test_compress_switch)
{
	enum { SIZE = 200000 };
	uint8_t *a = malloc(SIZE), *b = malloc(SIZE), *c = malloc(SIZE);
	uint64_t seed = 3;
	fill_text(&seed, a, SIZE);
	fill_text(&seed, b, SIZE);
	fill_text(&seed, c, SIZE);
	settfs_stats ss;
	ck_assert_int_eq(settfs_get_stats(fs, &ss), 0);
	ck_assert_int_eq(ss.compression, SETTFS_COMPRESSION_NONE);
	uint64_t fa = mkfile(1, "a");
	ck_assert_int_eq(settfs_write(fs, fa, 0, a, SIZE, 0), SIZE);
	ck_assert_int_eq(settfs_release(fs, fa, O_RDWR), 0);
	/* none on a format 3 store writes nothing */
	reopen_compression("none");
	sett_db *db = engine_of_closed();
	uint8_t k[SFS_KEY_MAX];
	void *v;
	size_t vn;
	sfs_super sb;
	ck_assert_int_eq(sett_get(db, (sett_val){ sfs_key_super(k), k }, 0, &v, &vn), 0);
	ck_assert_int_eq(sfs_super_decode(v, vn, &sb), 0);
	free(v);
	ck_assert_uint_eq(sb.version, 3);
	ck_assert_int_eq(chunk_codec(db, fa, 0, NULL), SFS_CODEC_RAW);
	ck_assert_int_eq(sett_close(db), 0);
	fs_open_();

	reopen_compression("zstd:1");
	ck_assert_int_eq(settfs_get_stats(fs, &ss), 0);
	ck_assert_int_eq(ss.compression, SETTFS_COMPRESSION_ZSTD);
	ck_assert_int_eq(ss.compression_level, 1);
	uint64_t fb = mkfile(1, "b");
	ck_assert_int_eq(settfs_write(fs, fb, 0, b, SIZE, 0), SIZE);
	ck_assert_int_eq(settfs_release(fs, fb, O_RDWR), 0);
	check_file(fa, a, SIZE);
	/* a later open without the option keeps it */
	reopen_compression(NULL);
	ck_assert_int_eq(settfs_get_stats(fs, &ss), 0);
	ck_assert_int_eq(ss.compression, SETTFS_COMPRESSION_ZSTD);
	ck_assert_int_eq(ss.compression_level, 1);
	check_file(fa, a, SIZE);
	check_file(fb, b, SIZE);
	/* rewriting part of an old raw chunk with compression on compresses it */
	ck_assert_int_eq(settfs_file_open(fs, fa, O_RDWR), 0);
	ck_assert_int_eq(settfs_write(fs, fa, 0, c, 65536, 0), 65536);
	memcpy(a, c, 65536);
	ck_assert_int_eq(settfs_release(fs, fa, O_RDWR), 0);
	db = engine_of_closed();
	ck_assert_int_eq(sett_get(db, (sett_val){ sfs_key_super(k), k }, 0, &v, &vn), 0);
	ck_assert_int_eq(sfs_super_decode(v, vn, &sb), 0);
	free(v);
	ck_assert_uint_eq(sb.version, 4);
	ck_assert_int_eq(chunk_codec(db, fa, 0, NULL), SFS_CODEC_ZSTD);
	ck_assert_int_eq(chunk_codec(db, fa, 1, NULL), SFS_CODEC_RAW);
	ck_assert_int_eq(chunk_codec(db, fb, 0, NULL), SFS_CODEC_ZSTD);
	ck_assert_int_eq(sett_close(db), 0);

	/* off again: new chunks raw, the compressed ones still read */
	fs_open_();
	reopen_compression("none");
	uint64_t fc = mkfile(1, "c");
	ck_assert_int_eq(settfs_write(fs, fc, 0, c, SIZE, 0), SIZE);
	/* a punch and a truncate of a compressed chunk rewrite it raw */
	ck_assert_int_eq(settfs_file_open(fs, fb, O_RDWR), 0);
	ck_assert_int_eq(settfs_fallocate(fs, fb, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10,
					  20, 0), 0);
	memset(b + 10, 0, 20);
	struct stat in, st;
	memset(&in, 0, sizeof in);
	in.st_size = 65536 + 777;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, fb, &in, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(settfs_release(fs, fb, O_RDWR), 0);
	ck_assert_int_eq(settfs_release(fs, fc, O_RDWR), 0);
	reopen_compression(NULL);
	ck_assert_int_eq(settfs_get_stats(fs, &ss), 0);
	ck_assert_int_eq(ss.compression, SETTFS_COMPRESSION_NONE);
	check_file(fa, a, SIZE);
	check_file(fb, b, 65536 + 777);
	check_file(fc, c, SIZE);
	db = engine_of_closed();
	ck_assert_int_eq(sett_get(db, (sett_val){ sfs_key_super(k), k }, 0, &v, &vn), 0);
	ck_assert_int_eq(sfs_super_decode(v, vn, &sb), 0);
	free(v);
	ck_assert_uint_eq(sb.version, 4); /* compressed chunks remain */
	ck_assert_int_eq(chunk_codec(db, fb, 0, NULL), SFS_CODEC_RAW);
	ck_assert_int_eq(chunk_codec(db, fb, 1, NULL), SFS_CODEC_RAW);
	ck_assert_int_eq(chunk_codec(db, fb, 2, NULL), -1);
	ck_assert_int_eq(chunk_codec(db, fc, 0, NULL), SFS_CODEC_RAW);
	ck_assert_int_eq(sett_close(db), 0);
	if (access("./fsck.settfs", X_OK) == 0)
		ck_assert_int_eq(run_fsck(), 0);
	fs_open_();
	check_file(fa, a, SIZE);
	free(a);
	free(b);
	free(c);
}
END_TEST

/*
 * A damaged compressed chunk (its frame, or the length its header says)
 * reads as -EIO, like any damaged chunk, and the chunks beside it read on;
 * fsck.settfs reports it.
 */
START_TEST(test_compress_damaged)
{
	enum { CS = 65536, SIZE = 3 * CS };
	fresh_store_compressed(CS, "zstd");
	uint8_t *model = malloc(SIZE), *got = malloc(SIZE);
	uint64_t seed = 17;
	fill_text(&seed, model, SIZE);
	uint64_t f = mkfile(1, "f");
	ck_assert_int_eq(settfs_write(fs, f, 0, model, SIZE, 0), SIZE);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	for (int how = 0; how < 4; how++) {
		sett_db *db = engine_of_closed();
		uint8_t k[SFS_KEY_MAX], meta;
		void *v;
		size_t vn;
		sett_val key = { sfs_key_chunk(k, f, 1), k };
		ck_assert_int_eq(sett_get_ex(db, key, 0, &v, &vn, NULL, &meta), 0);
		ck_assert_int_eq(meta, SFS_CODEC_ZSTD);
		uint8_t *b = v;
		if (how == 0)
			b[vn / 2] ^= 0x40; /* inside the frame */
		else if (how == 1)
			sfs_put_be32(b, CS - 1); /* a length the frame does not hold */
		else if (how == 2)
			sfs_put_be32(b, CS + 1); /* past the chunk size */
		else
			meta = 9; /* an unknown codec */
		sett_batch *bt;
		ck_assert_int_eq(sett_batch_new(&bt), 0);
		ck_assert_int_eq(sett_batch_set_ex(bt, key, (sett_val){ vn, v }, 0, meta), 0);
		ck_assert_int_eq(sett_write(db, bt, 1, NULL), 0);
		sett_batch_free(bt);
		ck_assert_int_eq(sett_close(db), 0);
		fs_open_();
		ck_assert_int_eq(settfs_read(fs, f, CS + 100, 10, got), -EIO);
		ck_assert_int_eq(settfs_read(fs, f, CS, CS, got), -EIO);
		ck_assert_int_eq(settfs_read(fs, f, 0, CS, got), CS);
		ck_assert(memcmp(got, model, CS) == 0);
		ck_assert_int_eq(settfs_read(fs, f, 2 * CS, CS, got), CS);
		ck_assert(memcmp(got, model + 2 * CS, CS) == 0);
		/* SEEK_HOLE reads a header only: it trusts a length within the chunk */
		off_t h = settfs_lseek(fs, f, CS + 10, SEEK_HOLE);
		ck_assert_msg(h == (how >= 2 ? -EIO : how == 1 ? 2 * CS - 1 : SIZE), "SEEK_HOLE %lld",
			      (long long)h);
		ck_assert_int_eq(settfs_close(fs), 0);
		fs = NULL;
		if (access("./fsck.settfs", X_OK) == 0)
			ck_assert_int_ne(run_fsck(), 0);
		/* put the good value back */
		settfs_options o;
		settfs_options_init(&o);
		ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
		long zn = sfs_chunk_compress(3, model + CS, CS, got, CS);
		ck_assert_int_gt(zn, 0);
		ck_assert_int_eq(sett_batch_new(&bt), 0);
		ck_assert_int_eq(sett_batch_set_ex(bt, key, (sett_val){ (size_t)zn, got }, 0,
						   SFS_CODEC_ZSTD), 0);
		ck_assert_int_eq(sett_write(db, bt, 1, NULL), 0);
		sett_batch_free(bt);
		ck_assert_int_eq(sett_close(db), 0);
		free(v);
		fs_open_();
		check_file(f, model, SIZE);
	}
	free(model);
	free(got);
}
END_TEST

/* The random operations of test_random_ops on text, on compressing stores. */
START_TEST(test_compress_random_ops)
{
	text_data = 1;
	fresh_store_compressed(65536, "zstd:1");
	random_ops(991, 1000, 0);
	fresh_store_compressed(16384, "zstd");
	random_ops(313, 1500, 1);
	text_data = 0;
}
END_TEST

static TCase *new_case(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("fs");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_root_and_create);
	tcase_add_test(tc, test_write_read_persist);
	tcase_add_test(tc, test_append_and_overwrite);
	tcase_add_test(tc, test_truncate_and_holes);
	tcase_add_test(tc, test_setattr);
	tcase_add_test(tc, test_kill_suidgid);
	tcase_add_test(tc, test_mknod_symlink);
	tcase_add_test(tc, test_dirs_and_unlink);
	tcase_add_test(tc, test_links);
	tcase_add_test(tc, test_unlink_open_and_orphans);
	tcase_add_test(tc, test_rename);
	tcase_add_test(tc, test_readdir);
	tcase_add_test(tc, test_xattr);
	tcase_add_test(tc, test_xattr_reclaim);
	tcase_add_test(tc, test_acl_check);
	tcase_add_test(tc, test_acl_mode_rules);
	tcase_add_test(tc, test_acl_access_and_mode);
	tcase_add_test(tc, test_acl_inherit);
	tcase_add_test(tc, test_acl_off);
	tcase_add_test(tc, test_super_versions);
	tcase_add_test(tc, test_dentry_type_byte);
	tcase_add_test(tc, test_next_ino_damaged);
	tcase_add_test(tc, test_statfs_fsync);
	tcase_add_test(tc, test_reserve);
	tcase_add_test(tc, test_read_needs_no_space);
	tcase_add_test(tc, test_durability_powercut);
	tcase_add_test(tc, test_mkfs_and_corrupt_inode);
	tcase_add_test(tc, test_create_only_where_nothing_is);
	tcase_add_test(tc, test_bad_block_mounts_degraded);
	tcase_add_test(tc, test_truncate_many_chunks);
	tcase_add_test(tc, test_truncate_reads_no_values);
	tcase_add_test(tc, test_concurrency);
	tcase_add_test(tc, test_inode_commit_carries_buffers);
	tcase_add_test(tc, test_fsck);
	tcase_add_test(tc, test_fallocate_allocates);
	tcase_add_test(tc, test_fallocate_over_buffers);
	tcase_add_test(tc, test_fallocate_kill_suidgid);
	tcase_add_test(tc, test_overlay_fold);
	tcase_add_test(tc, test_rewrites_read_by_name);
	tcase_add_test(tc, test_whole_chunks_committed_by_write);
	tcase_add_test(tc, test_overlay_truncate_punch_seek);
	tcase_add_test(tc, test_fill_token);
	tcase_add_test(tc, test_fill_token_reload);
	tcase_add_test(tc, test_fill_blocks_writers);
	suite_add_tcase(s, tc);
	/* CK_RUN_CASE=random (or space, move, crash) runs these alone */
	tc = new_case(s, "random");
	tcase_add_test(tc, test_random_ops);
	tcase_add_test(tc, test_random_ops_overlays);
	tc = new_case(s, "space");
	tcase_add_test(tc, test_full_disk_reclaim);
	tcase_add_test(tc, test_reclaim_holds_no_node_lock);
	tc = new_case(s, "move");
	tcase_add_test(tc, test_collapse_insert);
	tc = new_case(s, "compress");
	tcase_add_test(tc, test_chunk_codec);
	tcase_add_test(tc, test_compress_files);
	tcase_add_test(tc, test_compress_switch);
	tcase_add_test(tc, test_compress_damaged);
	tcase_add_test(tc, test_compress_random_ops);
	/* A crash at every I/O of an operation: minutes under sanitizers on a
	 * loaded machine, so its own limit (the others keep 60 s). */
	tc = new_case(s, "crash");
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, test_big_truncate_punch_crash);
	tcase_add_loop_test(tc, test_big_move_crash, 0, 4);
	return tu_run(s);
}
