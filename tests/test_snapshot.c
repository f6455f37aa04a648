/* test_snapshot.c - snapshots of the settfs core: views, the snapshot
 * directory, atomicity under a running writer, persistence, rollback. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settfs.h"
#include "snapshot.h"
#include "fsutil.h"
#include "testutil.h"

static char *dir;
static settfs *fs;
static const settfs_ctx root_ctx = { 0, 0, NULL, 0, 0 };
static const settfs_ctx user_ctx = { 4242, 4242, NULL, 0, 0 };

static void fs_open_(void)
{
	settfs_options o;
	settfs_options_init(&o);
	o.engine.mem_table_size = 4u << 20;
	int r = settfs_open(dir, &o, &fs);
	ck_assert_msg(r == 0, "settfs_open: %d", r);
}

static void setup(void)
{
	dir = tu_tmpdir("snap");
	fs_open_();
}

static void teardown(void)
{
	if (fs)
		ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	tu_rmrf(dir);
	free(dir);
}

static void reopen(void)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	fs_open_();
}

/* Writes `text` as the whole content of parent/name (created if absent). */
static uint64_t put_file(uint64_t parent, const char *name, const char *text)
{
	return tu_put_file(fs, parent, name, text, strlen(text));
}

static uint64_t lookup(uint64_t parent, const char *name)
{
	struct stat st;
	int r = settfs_lookup(fs, parent, name, &st);
	ck_assert_msg(r == 0, "lookup %s: %d", name, r);
	settfs_forget(fs, st.st_ino, 1);
	return st.st_ino;
}

/* The content of file ino (at most 255 bytes) as a string. */
static const char *content(uint64_t ino)
{
	static char buf[256];
	ck_assert_int_eq(settfs_file_open(fs, ino, O_RDONLY), 0);
	ssize_t n = settfs_read(fs, ino, 0, sizeof buf - 1, buf);
	ck_assert_int_ge(n, 0);
	buf[n] = 0;
	ck_assert_int_eq(settfs_release(fs, ino, O_RDONLY), 0);
	return buf;
}

struct names {
	char s[1024];
};

static int fill_names(void *arg, const char *name, const struct stat *st, off_t next)
{
	(void)st;
	(void)next;
	struct names *n = arg;
	if (strcmp(name, ".") && strcmp(name, "..")) {
		strcat(n->s, name);
		strcat(n->s, " ");
	}
	return 0;
}

static const char *list(uint64_t ino, int plus)
{
	static struct names n;
	n.s[0] = 0;
	settfs_dir *d;
	ck_assert_int_eq(settfs_opendir(fs, ino, &d), 0);
	ck_assert_int_eq(settfs_readdir(fs, d, 0, plus, fill_names, &n), 0);
	settfs_releasedir(fs, d);
	return n.s;
}

START_TEST(test_snapshot_view)
{
	uint64_t a = put_file(SETTFS_ROOT_INO, "a", "one");
	struct stat st;
	ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, SETTFS_ROOT_INO, "d", 0755, &st), 0);
	uint64_t d = st.st_ino;
	settfs_forget(fs, d, 1);
	put_file(d, "b", "bee");
	ck_assert_int_eq(settfs_setxattr(fs, a, "user.k", "v1", 2, 0), 0);

	settfs_snap_info si;
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", &si), 0);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), -EEXIST);
	ck_assert_int_eq(settfs_snapshot_create(fs, "x/y", NULL), -EINVAL);
	ck_assert_int_eq(settfs_snapshot_create(fs, "..", NULL), -EINVAL);
	ck_assert_uint_eq(si.slot, 1);

	/* the live filesystem changes on */
	put_file(SETTFS_ROOT_INO, "a", "two");
	ck_assert_int_eq(settfs_unlink(fs, d, "b"), 0);
	put_file(SETTFS_ROOT_INO, "c", "sea");
	ck_assert_int_eq(settfs_setxattr(fs, a, "user.k", "v2", 2, 0), 0);

	for (int round = 0; round < 2; round++) {
		/* the snapshot directory: looked up, never listed */
		uint64_t sd = lookup(SETTFS_ROOT_INO, SETTFS_SNAPDIR_NAME);
		ck_assert_uint_eq(sd, SETTFS_SNAPDIR_INO);
		ck_assert_ptr_null(strstr(list(SETTFS_ROOT_INO, 0), SETTFS_SNAPDIR_NAME));
		ck_assert_str_eq(list(SETTFS_ROOT_INO, 1), "a c d ");
		ck_assert_str_eq(list(sd, 0), "s1 ");
		ck_assert_str_eq(list(sd, 1), "s1 ");
		uint64_t root = lookup(sd, "s1");
		ck_assert_uint_eq(root, 1ull << SETTFS_SNAP_INO_SHIFT | SETTFS_ROOT_INO);
		ck_assert_str_eq(list(root, 1), "a d ");
		uint64_t sa = lookup(root, "a");
		ck_assert_uint_eq(sa >> SETTFS_SNAP_INO_SHIFT, 1);
		ck_assert_uint_eq(sa & SETTFS_INO_MAX, a);
		ck_assert_str_eq(content(sa), "one");
		ck_assert_str_eq(content(a), "two");
		char v[8];
		ck_assert_int_eq(settfs_getxattr(fs, sa, "user.k", v, sizeof v), 2);
		ck_assert_int_eq(memcmp(v, "v1", 2), 0);
		uint64_t sdd = lookup(root, "d");
		ck_assert_str_eq(content(lookup(sdd, "b")), "bee");
		ck_assert_int_eq(settfs_lookup(fs, root, "c", &st), -ENOENT);
		ck_assert_int_eq(settfs_getattr(fs, sa, &st), 0);
		ck_assert_uint_eq(st.st_ino, sa);
		ck_assert_int_eq(st.st_size, 3);

		/* nothing in it can be changed */
		ck_assert_int_eq(settfs_write(fs, sa, 0, "x", 1, 0), -EROFS);
		ck_assert_int_eq(settfs_file_open(fs, sa, O_RDWR), -EROFS);
		ck_assert_int_eq(settfs_file_open(fs, sa, O_RDONLY | O_TRUNC), -EROFS);
		ck_assert_int_eq(settfs_create(fs, &root_ctx, root, "n", 0644, O_RDWR, &st), -EROFS);
		ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, root, "n", 0755, &st), -EROFS);
		ck_assert_int_eq(settfs_unlink(fs, root, "a"), -EROFS);
		ck_assert_int_eq(settfs_rmdir(fs, root, "d"), -EROFS);
		ck_assert_int_eq(settfs_rename(fs, root, "a", root, "z", 0), -EROFS);
		ck_assert_int_eq(settfs_rename(fs, root, "a", SETTFS_ROOT_INO, "z", 0), -EXDEV);
		ck_assert_int_eq(settfs_link(fs, sa, SETTFS_ROOT_INO, "z", &st), -EXDEV);
		ck_assert_int_eq(settfs_setxattr(fs, sa, "user.k", "v", 1, 0), -EROFS);
		ck_assert_int_eq(settfs_removexattr(fs, sa, "user.k"), -EROFS);
		struct stat at = { 0 };
		ck_assert_int_eq(settfs_setattr(fs, &root_ctx, sa, &at, SETTFS_SET_SIZE, &st), -EROFS);
		/* nor the snapshot directory's name in the root */
		ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, SETTFS_ROOT_INO, SETTFS_SNAPDIR_NAME,
					      0755, &st), -EEXIST);
		ck_assert_int_eq(settfs_rmdir(fs, SETTFS_ROOT_INO, SETTFS_SNAPDIR_NAME), -EBUSY);
		ck_assert_int_eq(settfs_rename(fs, SETTFS_ROOT_INO, "c", SETTFS_ROOT_INO,
					       SETTFS_SNAPDIR_NAME, 0), -EBUSY);
		/* snapshots survive a close */
		reopen();
	}
	settfs_snap_info *all;
	size_t n;
	ck_assert_int_eq(settfs_snapshot_list(fs, &all, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(all[0].name, "s1");
	ck_assert_int_eq(all[0].damaged, 0);
	ck_assert_int_eq(memcmp(all[0].guid, si.guid, 16), 0);
	free(all);

	/* only root and the mount's owner take snapshots */
	if (getuid() == 0)
		ck_assert_int_eq(settfs_mkdir(fs, &user_ctx, SETTFS_SNAPDIR_INO, "s2", 0755, &st),
				 -EPERM);
	ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, SETTFS_SNAPDIR_INO, "s2", 0755, &st), 0);
	ck_assert_uint_eq(st.st_ino, 2ull << SETTFS_SNAP_INO_SHIFT | SETTFS_ROOT_INO);
	settfs_forget(fs, st.st_ino, 1);
	ck_assert_str_eq(content(lookup(lookup(SETTFS_SNAPDIR_INO, "s2"), "a")), "two");
	ck_assert_str_eq(list(SETTFS_SNAPDIR_INO, 0), "s1 s2 ");

	/* deleting: gone from the directory, its inodes stale */
	uint64_t sa = lookup(lookup(SETTFS_SNAPDIR_INO, "s1"), "a");
	ck_assert_int_eq(settfs_rmdir(fs, SETTFS_SNAPDIR_INO, "s1"), 0);
	ck_assert_int_eq(settfs_rmdir(fs, SETTFS_SNAPDIR_INO, "s1"), -ENOENT);
	ck_assert_int_eq(settfs_lookup(fs, SETTFS_SNAPDIR_INO, "s1", &st), -ENOENT);
	ck_assert_int_eq(settfs_getattr(fs, sa, &st), -ESTALE);
	ck_assert_str_eq(list(SETTFS_SNAPDIR_INO, 0), "s2 ");
	ck_assert_int_eq(settfs_snapshot_delete(fs, "s2"), 0);
	ck_assert_int_eq(sett_pins(settfs_engine(fs), NULL, 0), 0);
	/* a deleted snapshot's inode numbers stay stale: its slot is not
	 * taken again while the filesystem is open (the kernel may hold them) */
	ck_assert_int_eq(settfs_snapshot_create(fs, "s3", &si), 0);
	ck_assert_uint_eq(si.slot, 3);
	ck_assert_int_eq(settfs_getattr(fs, sa, &st), -ESTALE);
	reopen();
	ck_assert_int_eq(settfs_snapshot_create(fs, "s4", &si), 0);
	ck_assert_uint_eq(si.slot, 1);
}
END_TEST

/* What was written but is still buffered in the daemon is in the snapshot. */
START_TEST(test_snapshot_takes_buffers)
{
	struct stat st;
	ck_assert_int_eq(settfs_create(fs, &root_ctx, SETTFS_ROOT_INO, "f", 0644, O_RDWR, &st), 0);
	uint64_t f = st.st_ino;
	ck_assert_int_eq(settfs_write(fs, f, 0, "buffered", 8, 0), 8);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s", NULL), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, "BUFFERED", 8, 0), 8);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	settfs_forget(fs, f, 1);
	ck_assert_str_eq(content(lookup(lookup(SETTFS_SNAPDIR_INO, "s"), "f")), "buffered");
	ck_assert_str_eq(content(f), "BUFFERED");
}
END_TEST

/*
 * A writer stamps files f0..f7 in order with round numbers, each stamp a
 * buffered write; snapshots taken meanwhile must each show one instant:
 * f0..fk at round g+1 and the rest at round g, never a later file ahead of
 * an earlier one.
 */
#define NF 8
static atomic_int stop_writer;
static uint64_t wfiles[NF];

static void *writer_main(void *arg)
{
	(void)arg;
	for (uint32_t g = 1; !atomic_load(&stop_writer); g++)
		for (int i = 0; i < NF; i++) {
			char b[16];
			snprintf(b, sizeof b, "%08u", g);
			if (settfs_write(fs, wfiles[i], 0, b, 8, 0) != 8)
				return (void *)1;
		}
	return NULL;
}

START_TEST(test_snapshot_atomic_under_writer)
{
	struct stat st;
	for (int i = 0; i < NF; i++) {
		char name[8];
		snprintf(name, sizeof name, "f%d", i);
		ck_assert_int_eq(settfs_create(fs, &root_ctx, SETTFS_ROOT_INO, name, 0644, O_RDWR,
					       &st), 0);
		wfiles[i] = st.st_ino;
		ck_assert_int_eq(settfs_write(fs, wfiles[i], 0, "00000000", 8, 0), 8);
	}
	atomic_store(&stop_writer, 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, writer_main, NULL), 0);
	int snaps = 12;
	for (int s = 0; s < snaps; s++) {
		char name[16];
		snprintf(name, sizeof name, "s%d", s);
		usleep(2000);
		ck_assert_int_eq(settfs_snapshot_create(fs, name, NULL), 0);
	}
	atomic_store(&stop_writer, 1);
	void *res;
	pthread_join(t, &res);
	ck_assert_ptr_null(res);
	int moving = 0;
	for (int s = 0; s < snaps; s++) {
		char name[16];
		snprintf(name, sizeof name, "s%d", s);
		uint64_t root = lookup(SETTFS_SNAPDIR_INO, name);
		unsigned g[NF];
		for (int i = 0; i < NF; i++) {
			snprintf(name, sizeof name, "f%d", i);
			ck_assert_int_eq(sscanf(content(lookup(root, name)), "%u", &g[i]), 1);
		}
		for (int i = 1; i < NF; i++)
			ck_assert_msg(g[i] == g[0] || g[i] + 1 == g[0],
				      "snapshot %d: f0 at round %u, f%d at %u", s, g[0], i, g[i]);
		for (int i = 1; i < NF; i++)
			ck_assert_msg(g[i] <= g[i - 1], "snapshot %d: f%d at round %u ahead of f%d at %u",
				      s, i, g[i], i - 1, g[i - 1]);
		moving += g[0] != 0;
	}
	ck_assert_int_gt(moving, 0);
	for (int i = 0; i < NF; i++) {
		ck_assert_int_eq(settfs_release(fs, wfiles[i], O_RDWR), 0);
		settfs_forget(fs, wfiles[i], 1);
	}
}
END_TEST

START_TEST(test_snapshot_space_and_release)
{
	uint64_t f = put_file(SETTFS_ROOT_INO, "big", "");
	size_t n = 1u << 20;
	char *b = malloc(n);
	memset(b, 'a', n);
	ck_assert_int_eq(settfs_file_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_write(fs, f, 0, b, n, 0), (ssize_t)n);
	ck_assert_int_eq(settfs_fsync(fs, f, 0), 0);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s", NULL), 0);
	uint64_t bytes = 1;
	ck_assert_int_eq(settfs_snapshot_space(fs, "s", &bytes), 0);
	ck_assert_uint_eq(bytes, 0); /* nothing changed since: it holds nothing alone */
	memset(b, 'b', n);
	ck_assert_int_eq(settfs_write(fs, f, 0, b, n, 0), (ssize_t)n);
	ck_assert_int_eq(settfs_fsync(fs, f, 0), 0);
	ck_assert_int_eq(settfs_snapshot_space(fs, "s", &bytes), 0);
	ck_assert_uint_ge(bytes, n);
	ck_assert_int_eq(settfs_snapshot_create(fs, "t", NULL), 0);
	ck_assert_int_eq(settfs_snapshot_space(fs, "t", &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_int_eq(settfs_snapshot_space(fs, "nope", &bytes), -ENOENT);
	ck_assert_int_eq(settfs_release(fs, f, O_RDWR), 0);
	ck_assert_int_eq(settfs_snapshot_delete(fs, "s"), 0);
	ck_assert_int_eq(settfs_snapshot_delete(fs, "t"), 0);
	ck_assert_int_eq(sett_pins(settfs_engine(fs), NULL, 0), 0);
	free(b);
}
END_TEST

/* Opens the closed store's engine alone (as the tools do). */
static sett_db *engine_only(void)
{
	settfs_options o;
	settfs_options_init(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o.engine, &db), 0);
	return db;
}

START_TEST(test_rollback)
{
	uint64_t a = put_file(SETTFS_ROOT_INO, "a", "one");
	put_file(SETTFS_ROOT_INO, "gone", "later deleted");
	ck_assert_int_eq(settfs_snapshot_create(fs, "s", NULL), 0);
	put_file(SETTFS_ROOT_INO, "a", "two and more");
	ck_assert_int_eq(settfs_unlink(fs, SETTFS_ROOT_INO, "gone"), 0);
	uint64_t newer = put_file(SETTFS_ROOT_INO, "new", "new file");
	ck_assert_int_eq(settfs_snapshot_create(fs, "after", NULL), 0);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;

	sett_db *db = engine_only();
	uint64_t changed = 0;
	ck_assert_int_eq(sfs_snap_rollback(db, "nope", &changed), -ENOENT);
	ck_assert_int_eq(sfs_snap_rollback(db, "s", &changed), 0);
	ck_assert_uint_gt(changed, 0);
	ck_assert_int_eq(sett_close(db), 0);

	fs_open_();
	ck_assert_str_eq(list(SETTFS_ROOT_INO, 1), "a gone ");
	ck_assert_str_eq(content(a), "one");
	ck_assert_str_eq(content(lookup(SETTFS_ROOT_INO, "gone")), "later deleted");
	/* both snapshots are kept, the later one as it was */
	ck_assert_str_eq(list(SETTFS_SNAPDIR_INO, 0), "after s ");
	uint64_t later = lookup(SETTFS_SNAPDIR_INO, "after");
	ck_assert_str_eq(content(lookup(later, "a")), "two and more");
	/* and the filesystem goes on: new inodes do not collide */
	uint64_t x = put_file(SETTFS_ROOT_INO, "x", "fresh");
	ck_assert_str_eq(content(x), "fresh");
	ck_assert_uint_gt(x, newer); /* numbers used after the snapshot are not handed out again */
	ck_assert_str_eq(content(lookup(later, "new")), "new file");
}
END_TEST

/*
 * A rollback of a store with compression: chunks come back with their
 * codec (the user meta byte), so a compressed chunk of the snapshot reads
 * as it was after the live file was rewritten raw; the view of a snapshot
 * reads compressed chunks.
 */
START_TEST(test_rollback_compressed)
{
	enum { N = 150000 };
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	tu_rmrf(dir);
	settfs_options o;
	settfs_options_init(&o);
	ck_assert_int_eq(settfs_parse_compression("zstd", &o), 0);
	ck_assert_int_eq(settfs_mkfs(dir, &o, &root_ctx, 0), 0);
	fs_open_();
	char *text = malloc(N + 1), *got = malloc(N);
	for (int i = 0; i < N; i++)
		text[i] = "snapshot of a compressed file\n"[i % 30];
	text[N] = 0;
	uint64_t a = put_file(SETTFS_ROOT_INO, "a", text);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s", NULL), 0);
	struct stat st;
	ck_assert_int_eq(settfs_getattr(fs, a, &st), 0);
	ck_assert_int_lt(st.st_blocks * 512, N / 4); /* compressed */
	/* the view reads the snapshot's compressed chunks */
	uint64_t view = lookup(SETTFS_SNAPDIR_INO, "s"), va = lookup(view, "a");
	ck_assert_int_eq(settfs_read(fs, va, 0, N, got), N);
	ck_assert(memcmp(got, text, N) == 0);
	/* the same bytes stored raw: only the codec differs */
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	settfs_options_init(&o);
	ck_assert_int_eq(settfs_parse_compression("none", &o), 0);
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	put_file(SETTFS_ROOT_INO, "a", text);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;

	sett_db *db = engine_only();
	uint64_t changed = 0;
	ck_assert_int_eq(sfs_snap_rollback(db, "s", &changed), 0);
	uint8_t k[SFS_KEY_MAX], meta = 0;
	void *v = NULL;
	size_t vn;
	ck_assert_int_eq(sett_get_ex(db, (sett_val){ sfs_key_chunk(k, a, 0), k }, 0, &v, &vn, NULL,
				     &meta), 0);
	free(v);
	ck_assert_int_eq(meta, SFS_CODEC_ZSTD);
	ck_assert_int_eq(sett_close(db), 0);
	fs_open_();
	ck_assert_int_eq(settfs_file_open(fs, a, O_RDONLY), 0);
	ck_assert_int_eq(settfs_read(fs, a, 0, N, got), N);
	ck_assert(memcmp(got, text, N) == 0);
	ck_assert_int_eq(settfs_release(fs, a, O_RDONLY), 0);
	free(text);
	free(got);
}
END_TEST

/* An entry named .snapshots made without the snapshot directory is shadowed by it. */
START_TEST(test_snapdir_shadows_entry)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	settfs_options o;
	settfs_options_init(&o);
	o.no_snapdir = 1;
	ck_assert_int_eq(settfs_open(dir, &o, &fs), 0);
	struct stat st;
	ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, SETTFS_ROOT_INO, SETTFS_SNAPDIR_NAME, 0755,
				      &st), 0);
	settfs_forget(fs, st.st_ino, 1);
	put_file(SETTFS_ROOT_INO, "z", "zed");
	ck_assert_str_eq(list(SETTFS_ROOT_INO, 0), ".snapshots z ");
	reopen();
	ck_assert_str_eq(list(SETTFS_ROOT_INO, 0), "z ");
	ck_assert_str_eq(list(SETTFS_ROOT_INO, 1), "z ");
	ck_assert_uint_eq(lookup(SETTFS_ROOT_INO, SETTFS_SNAPDIR_NAME), SETTFS_SNAPDIR_INO);
}
END_TEST

/* A rollback that did not finish leaves a marker that refuses opening. */
START_TEST(test_rollback_interrupted_refuses_open)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	sett_db *db = engine_only();
	uint8_t k[1] = { SFS_TAG_SNAP };
	ck_assert_int_eq(sett_put(db, (sett_val){ 1, k }, (sett_val){ 1, "s" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	settfs_options o;
	settfs_options_init(&o);
	ck_assert_int_eq(settfs_open(dir, &o, &fs), -EUCLEAN);
	fs = NULL;
}
END_TEST

/* A pin left without its record (a crash between the two) goes at open. */
START_TEST(test_tidy_stale_pin)
{
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	sett_db *db = engine_only();
	ck_assert_int_eq(sett_pin(db, SFS_SNAP_PIN_PREFIX "lost", 0, NULL), 0);
	ck_assert_int_eq(sett_pin(db, "someone.else", 0, NULL), 0);
	ck_assert_int_eq(sett_close(db), 0);
	fs_open_();
	sett_pin_info p[4];
	ck_assert_int_eq(sett_pins(settfs_engine(fs), p, 4), 1);
	ck_assert_str_eq(p[0].name, "someone.else");
	ck_assert_int_eq(sett_unpin(settfs_engine(fs), "someone.else"), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_snapshot_view);
	tcase_add_test(tc, test_snapshot_takes_buffers);
	tcase_add_test(tc, test_snapshot_atomic_under_writer);
	tcase_add_test(tc, test_snapshot_space_and_release);
	tcase_add_test(tc, test_rollback);
	tcase_add_test(tc, test_rollback_compressed);
	tcase_add_test(tc, test_rollback_interrupted_refuses_open);
	tcase_add_test(tc, test_tidy_stale_pin);
	tcase_add_test(tc, test_snapdir_shadows_entry);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
