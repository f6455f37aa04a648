/* test_send.c - send streams and receive: full and incremental streams
 * between stores, a damaged or truncated stream refused with the target
 * unchanged, targets that must refuse a stream, an interrupted receive. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fileio.h"
#include "schema.h"
#include "send.h"
#include "settfs.h"
#include "snapshot.h"
#include "fsutil.h"
#include "testutil.h"

static char *dir, *src, *dst;
static settfs *fs;
static const settfs_ctx root_ctx = { 0, 0, NULL, 0, 0 };

static settfs_options opts(void)
{
	settfs_options o;
	settfs_options_init(&o);
	o.engine.mem_table_size = 4u << 20;
	o.chunk_size = 16384;
	return o;
}

static void setup(void)
{
	dir = tu_tmpdir("send");
	ck_assert_int_ge(asprintf(&src, "%s/src", dir), 0);
	ck_assert_int_ge(asprintf(&dst, "%s/dst", dir), 0);
	settfs_options o = opts();
	ck_assert_int_eq(settfs_open(src, &o, &fs), 0);
}

static void teardown(void)
{
	if (fs)
		ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	tu_rmrf(dir);
	free(dir);
	free(src);
	free(dst);
}

/* ---- streams ---- */

static tu_mem send_snap(const char *name, const char *from)
{
	tu_mem m = { 0 };
	sfs_send_result res;
	int r = settfs_send(fs, name, from, tu_mem_write, &m, &res);
	ck_assert_msg(r == 0, "send %s: %d", name, r);
	ck_assert_uint_eq(res.bytes, m.n);
	return m;
}

/* Receives m into path: the result, with why in *msg. */
static int receive(const char *path, tu_mem *m, sfs_recv_result *res)
{
	settfs_options o = opts();
	m->pos = 0;
	return sfs_receive(path, &o, tu_mem_read, m, res);
}

static void receive_ok(const char *path, tu_mem *m)
{
	sfs_recv_result res;
	int r = receive(path, m, &res);
	ck_assert_msg(r == 0, "receive: %d %s", r, res.why);
}

/* ---- files ---- */

/* A tree of `files` files of a few KiB, some in a subdirectory, with xattrs. */
static uint64_t make_tree(int files)
{
	static char buf[40000];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)(i * 7 + i / 100);
	uint64_t d = tu_mkdir(fs, SETTFS_ROOT_INO, "d");
	for (int i = 0; i < files; i++) {
		char name[32];
		snprintf(name, sizeof name, "f%d", i);
		uint64_t ino = tu_put_file(fs, i % 2 ? d : SETTFS_ROOT_INO, name, buf + i,
					100 + (size_t)i * 997 % 39000);
		if (i % 3 == 0)
			ck_assert_int_eq(settfs_setxattr(fs, ino, "user.n", name, strlen(name), 0), 0);
	}
	return d;
}

/* A digest of the filesystem's keys and values (all but 'S' and 'P', and
 * the keys that start with `skip` if not 0) at version v. */
static uint64_t fs_digest_but(sett_db *db, uint64_t v, uint64_t *count, char skip)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.read_version = v;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	XXH3_state_t *h = XXH3_createState();
	XXH3_64bits_reset(h);
	uint64_t n = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), val;
		if (!sfs_send_key_ok(k) || (skip && ((const char *)k.data)[0] == skip))
			continue;
		ck_assert_int_eq(sett_iter_value(it, &val), 0);
		uint64_t len[3] = { k.size, val.size, sett_iter_user_meta(it) };
		XXH3_64bits_update(h, len, sizeof len);
		XXH3_64bits_update(h, k.data, k.size);
		XXH3_64bits_update(h, val.data, val.size);
		n++;
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	sett_iter_free(it);
	uint64_t d = XXH3_64bits_digest(h);
	XXH3_freeState(h);
	if (count)
		*count = n;
	return d;
}

static uint64_t fs_digest(sett_db *db, uint64_t v, uint64_t *count)
{
	return fs_digest_but(db, v, count, 0);
}

static uint64_t snap_version(sett_db *db, const char *name, sfs_snap *out)
{
	sfs_snap s;
	ck_assert_int_eq(sfs_snap_get(db, name, &s), 0);
	if (out)
		*out = s;
	return s.version;
}

/* The replica's live filesystem and its snapshot `name` equal the source's `name`. */
static void expect_replica(const char *name)
{
	sfs_snap ss, rs;
	uint64_t n;
	uint64_t want = fs_digest(settfs_engine(fs), snap_version(settfs_engine(fs), name, &ss), &n);
	ck_assert_uint_gt(n, 3);
	settfs_options o = opts();
	settfs *r;
	ck_assert_int_eq(settfs_open(dst, &o, &r), 0);
	ck_assert_uint_eq(settfs_chunk_size(r), 16384);
	sett_db *db = settfs_engine(r);
	ck_assert_uint_eq(fs_digest(db, 0, NULL), want);
	ck_assert_uint_eq(fs_digest(db, snap_version(db, name, &rs), NULL), want);
	ck_assert_mem_eq(rs.guid, ss.guid, 16);
	ck_assert_int_eq(rs.created_ns, ss.created_ns);
	ck_assert_int_eq(settfs_close(r), 0);
}

/*
 * A full stream, then two incrementals with deletes, renames, overwrites,
 * truncation and xattr changes; the source changes on after each snapshot
 * and its tombstones are compacted before the incremental is sent.
 */
START_TEST(test_full_then_incrementals)
{
	uint64_t d = make_tree(30);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_put_file(fs, SETTFS_ROOT_INO, "later", "not in s1", 9); /* after the snapshot */
	tu_mem full = send_snap("s1", NULL);
	receive_ok(dst, &full);
	expect_replica("s1");

	/* deletes, a rename, overwrites, xattrs set and removed */
	ck_assert_int_eq(settfs_unlink(fs, SETTFS_ROOT_INO, "f0"), 0);
	ck_assert_int_eq(settfs_rename(fs, d, "f1", SETTFS_ROOT_INO, "f1-moved", 0), 0);
	tu_put_file(fs, SETTFS_ROOT_INO, "f2", "overwritten", 11);
	struct stat st;
	ck_assert_int_eq(settfs_lookup(fs, SETTFS_ROOT_INO, "f4", &st), 0);
	ck_assert_int_eq(settfs_setxattr(fs, st.st_ino, "user.new", "v", 1, 0), 0);
	settfs_forget(fs, st.st_ino, 1);
	ck_assert_int_eq(settfs_lookup(fs, d, "f3", &st), 0);
	ck_assert_int_eq(settfs_removexattr(fs, st.st_ino, "user.n"), 0);
	struct stat a = { 0 };
	a.st_size = 10;
	ck_assert_int_eq(settfs_setattr(fs, &root_ctx, st.st_ino, &a, SETTFS_SET_SIZE, &st), 0);
	settfs_forget(fs, st.st_ino, 1);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s2", NULL), 0);
	ck_assert_int_eq(settfs_unlink(fs, SETTFS_ROOT_INO, "f2"), 0); /* after s2 */
	ck_assert_int_eq(sett_flatten(settfs_engine(fs)), 0);
	tu_mem inc = send_snap("s2", "s1");
	ck_assert_uint_lt(inc.n * 10, full.n); /* the change, not the filesystem */
	receive_ok(dst, &inc);
	expect_replica("s2");

	/* a directory tree goes, another comes */
	ck_assert_int_eq(settfs_unlink(fs, SETTFS_ROOT_INO, "f1-moved"), 0);
	for (int i = 3; i < 30; i += 2) {
		char name[32];
		snprintf(name, sizeof name, "f%d", i);
		ck_assert_int_eq(settfs_unlink(fs, d, name), 0);
	}
	ck_assert_int_eq(settfs_rmdir(fs, SETTFS_ROOT_INO, "d"), 0);
	uint64_t e = tu_mkdir(fs, SETTFS_ROOT_INO, "e");
	tu_put_file(fs, e, "g", "gee", 3);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s3", NULL), 0);
	tu_mem inc2 = send_snap("s3", "s2");
	receive_ok(dst, &inc2);
	expect_replica("s3");
	/* the replica keeps every snapshot it received */
	settfs_options o = opts();
	settfs *r;
	ck_assert_int_eq(settfs_open(dst, &o, &r), 0);
	settfs_snap_info *all;
	size_t n;
	ck_assert_int_eq(settfs_snapshot_list(r, &all, &n), 0);
	ck_assert_uint_eq(n, 3);
	free(all);
	ck_assert_int_eq(settfs_close(r), 0);
	/* an incremental stream received twice: refused the second time */
	sfs_recv_result res;
	ck_assert_int_eq(receive(dst, &inc2, &res), -EEXIST);
	free(full.p);
	free(inc.p);
	free(inc2.p);
}
END_TEST

static void expect_refused(tu_mem *m, const char *what, uint64_t digest)
{
	sfs_recv_result res;
	int r = receive(dst, m, &res);
	ck_assert_msg(r != 0, "%s: received", what);
	ck_assert_msg(res.why[0], "%s: no reason given", what);
	ck_assert_msg(!res.changed, "%s: changed", what);
	ck_assert_msg(tu_dir_digest(dst) == digest, "%s: the target changed (%s)", what, res.why);
}

/*
 * Every truncation of an incremental stream and a flipped byte in its
 * header, meta frame, records and trailer: the stream is refused and the
 * target's files are exactly as they were; the same for a full stream into
 * a new store, which is then not left behind.
 */
START_TEST(test_damaged_stream_refused)
{
	make_tree(4);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_mem full = send_snap("s1", NULL);
	receive_ok(dst, &full);
	tu_put_file(fs, SETTFS_ROOT_INO, "f0", "changed", 7);
	ck_assert_int_eq(settfs_unlink(fs, SETTFS_ROOT_INO, "f2"), 0);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s2", NULL), 0);
	tu_mem inc = send_snap("s2", "s1");
	uint64_t digest = tu_dir_digest(dst);
	tu_mem bad = { malloc(inc.n), 0, inc.n, 0 };
	char what[64];
	for (size_t len = 0; len < inc.n; len++) {
		memcpy(bad.p, inc.p, len);
		bad.n = len;
		bad.pos = 0;
		sfs_recv_result res;
		ck_assert_msg(sfs_send_check(tu_mem_read, &bad, &res) != 0, "cut at %zu: accepted", len);
		snprintf(what, sizeof what, "cut at %zu", len);
		expect_refused(&bad, what, digest);
	}
	/* header (48 bytes), meta frame (16 + 100 + names), a record, the trailer */
	size_t at[] = { 0, 9, 20, 47, 48, 60, 70, 150, 200, inc.n / 2, inc.n - 56, inc.n - 30,
			inc.n - 1 };
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		memcpy(bad.p, inc.p, inc.n);
		bad.n = inc.n;
		bad.p[at[i]] ^= 0x20;
		snprintf(what, sizeof what, "flipped byte %zu", at[i]);
		expect_refused(&bad, what, digest);
	}
	/* the intact stream goes in */
	receive_ok(dst, &inc);
	expect_replica("s2");

	/* into a new store: refused, nothing left behind */
	char *fresh;
	ck_assert_int_ge(asprintf(&fresh, "%s/fresh", dir), 0);
	for (size_t len = 0; len < full.n; len += full.n / 37 + 1) {
		tu_mem cut = { full.p, len, len, 0 };
		sfs_recv_result res;
		ck_assert_int_ne(receive(fresh, &cut, &res), 0);
		ck_assert_msg(access(fresh, F_OK) != 0, "cut at %zu: the new store was left", len);
	}
	free(fresh);
	free(bad.p);
	free(full.p);
	free(inc.p);
}
END_TEST

static void expect_error(const char *path, tu_mem *m, int err, const char *msg)
{
	sfs_recv_result res;
	int r = receive(path, m, &res);
	ck_assert_msg(r == err, "%s: %d (%s), wanted %d", msg, r, res.why, err);
	ck_assert_msg(strstr(res.why, msg), "why: %s (wanted %s)", res.why, msg);
}

/* Targets a stream must not go into, and streams that are no send stream. */
START_TEST(test_refused_targets)
{
	make_tree(3);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_put_file(fs, SETTFS_ROOT_INO, "x", "x", 1);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s2", NULL), 0);
	tu_mem full = send_snap("s1", NULL), inc = send_snap("s2", "s1");
	sfs_recv_result res;
	tu_mem none = { 0 };
	sfs_send_result sr;
	ck_assert_int_eq(settfs_send(fs, "s1", "s2", tu_mem_write, &none, &sr), -EINVAL);
	ck_assert_int_eq(settfs_send(fs, "nope", NULL, tu_mem_write, &none, &sr), -ENOENT);
	ck_assert_uint_eq(none.n, 0);

	/* an incremental needs its older snapshot */
	expect_error(dst, &inc, -ENOENT, "holds no filesystem");
	ck_assert_int_ne(access(dst, F_OK), 0);
	settfs_options o = opts();
	settfs_ctx ctx = root_ctx;
	ck_assert_int_eq(settfs_mkfs(dst, &o, &ctx, 0), 0);
	expect_error(dst, &inc, -ENOENT, "no snapshot with the guid");
	/* a full stream into a filesystem */
	expect_error(dst, &full, -EEXIST, "already holds a filesystem");
	/* a mounted (open) target */
	settfs *other;
	ck_assert_int_eq(settfs_open(dst, &o, &other), 0);
	expect_error(dst, &full, -EBUSY, "in use");
	ck_assert_int_eq(settfs_close(other), 0);
	tu_rmrf(dst);

	/* a sett backup stream is not a send stream */
	tu_mem plain = { 0 };
	sett_backup_result br;
	ck_assert_int_eq(sett_backup(settfs_engine(fs), NULL, tu_mem_write, &plain, &br), 0);
	expect_error(dst, &plain, -EINVAL, "not a settfs send stream");
	ck_assert_int_ne(access(dst, F_OK), 0);
	/* nor one that carries a superblock and snapshot records */
	sfs_send_meta m;
	full.pos = 0;
	ck_assert_int_eq(sfs_send_check(tu_mem_read, &full, &res), 0);
	m = res.meta;
	uint8_t meta[SFS_SEND_META_MAX];
	sett_backup_options bo;
	sett_backup_options_init(&bo);
	bo.read_version = m.version;
	bo.meta = meta;
	bo.meta_size = sfs_send_meta_encode(&m, meta);
	tu_mem all = { 0 };
	ck_assert_int_eq(sett_backup(settfs_engine(fs), &bo, tu_mem_write, &all, &br), 0);
	expect_error(dst, &all, -EIO, "no send stream may hold");
	ck_assert_int_ne(access(dst, F_OK), 0);
	free(all.p);
	free(plain.p);
	free(full.p);
	free(inc.p);
}
END_TEST

/*
 * A receive cut off after its stream was verified leaves the rollback
 * marker: the store refuses mounting, and the same receive run again
 * finishes it (full and incremental).
 */
START_TEST(test_interrupted_receive)
{
	make_tree(6);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_put_file(fs, SETTFS_ROOT_INO, "f1", "new", 3);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s2", NULL), 0);
	tu_mem full = send_snap("s1", NULL), inc = send_snap("s2", "s1");

	/* a full receive that stopped after a part of its records */
	sfs_recv_result res;
	full.pos = 0;
	ck_assert_int_eq(sfs_send_check(tu_mem_read, &full, &res), 0);
	settfs_options o = opts();
	o.chunk_size = res.meta.chunk_size;
	settfs_ctx ctx = root_ctx;
	ck_assert_int_eq(settfs_mkfs(dst, &o, &ctx, 0), 0);
	sett_db *db;
	ck_assert_int_eq(sett_open(dst, &o.engine, &db), 0);
	uint8_t mk[1];
	ck_assert_int_eq(sett_put(db, (sett_val){ sfs_key_snap(mk, NULL, 0), mk },
				  (sett_val){ 2, "s1" }), 0);
	ck_assert_int_eq(sett_put(db, (sett_val){ 3, "Ixx" }, (sett_val){ 1, "?" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	settfs *r;
	ck_assert_int_eq(settfs_open(dst, &o, &r), -EUCLEAN);
	receive_ok(dst, &full);
	expect_replica("s1");

	/* an incremental that stopped after its rollback and some records */
	ck_assert_int_eq(sett_open(dst, &o.engine, &db), 0);
	ck_assert_int_eq(sett_put(db, (sett_val){ 1, mk }, (sett_val){ 2, "s1" }), 0);
	ck_assert_int_eq(sett_put(db, (sett_val){ 3, "Ixy" }, (sett_val){ 1, "?" }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(settfs_open(dst, &o, &r), -EUCLEAN);
	receive_ok(dst, &inc);
	expect_replica("s2");
	free(full.p);
	free(inc.p);
}
END_TEST

/* Whether the store at dst refuses to open as a filesystem, or else holds
 * exactly one of the digests (the older or the newer snapshot). */
static void expect_clear_state(uint64_t d1, uint64_t d2, long at, const char *what)
{
	settfs_options o = opts();
	o.engine.create_if_missing = 0;
	settfs *r;
	int e = settfs_open(dst, &o, &r);
	if (e)
		return;
	uint64_t d = fs_digest(settfs_engine(r), 0, NULL);
	ck_assert_int_eq(settfs_close(r), 0);
	ck_assert_msg(d == d1 || d == d2, "%s, cut after %ld bytes: a half-received filesystem opens",
		      what, at);
}

/*
 * Every I/O of a receive failing in turn (the receive cut off there): the
 * store is left refusing to mount or holding a whole snapshot's state, and
 * the same receive run again finishes it.
 */
START_TEST(test_receive_fault_sweep)
{
	make_tree(6);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_put_file(fs, SETTFS_ROOT_INO, "f1", "new", 3);
	ck_assert_int_eq(settfs_unlink(fs, SETTFS_ROOT_INO, "f2"), 0);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s2", NULL), 0);
	tu_mem full = send_snap("s1", NULL), inc = send_snap("s2", "s1");
	sett_db *sdb = settfs_engine(fs);
	uint64_t d1 = fs_digest(sdb, snap_version(sdb, "s1", NULL), NULL);
	uint64_t d2 = fs_digest(sdb, snap_version(sdb, "s2", NULL), NULL);
	/* the rest runs without the source, whose background I/O would count */
	char *keep = strdup(src);
	ck_assert_int_eq(settfs_close(fs), 0);
	fs = NULL;
	for (int stage = 0; stage < 2; stage++) {
		tu_mem *m = stage ? &inc : &full;
		/* what a receive writes, then a receive whose disk fails after each part of it */
		tu_rmrf(dst);
		if (stage)
			receive_ok(dst, &full);
		uint64_t w0 = sio_bytes_written();
		receive_ok(dst, m);
		uint64_t total = sio_bytes_written() - w0, cuts = 0;
		for (uint64_t at = 0; at < total; at += total / 24 + 1, cuts++) {
			tu_rmrf(dst);
			if (stage)
				receive_ok(dst, &full);
			sfs_recv_result res;
			sio_fault_fail_after_bytes(at, EIO);
			int r = receive(dst, m, &res);
			sio_fault_reset();
			if (getenv("SEND_DEBUG"))
				fprintf(stderr, "stage %d at %llu: %d %s\n", stage,
					(unsigned long long)at, r, res.why);
			if (r == 0)
				continue; /* what failed was not needed */
			expect_clear_state(stage ? d1 : 0, stage ? d2 : d1, (long)at, stage ? "incremental" : "full");
			r = receive(dst, m, &res);
			/* cut off after it was complete (closing the store) */
			if (r == -EEXIST && strstr(res.why, "received before"))
				r = 0;
			ck_assert_msg(r == 0, "cut after %llu bytes: the receive run again: %d %s",
				      (unsigned long long)at, r, res.why);
			settfs_options o = opts();
			settfs *rf;
			ck_assert_int_eq(settfs_open(dst, &o, &rf), 0);
			ck_assert_uint_eq(fs_digest(settfs_engine(rf), 0, NULL), stage ? d2 : d1);
			ck_assert_int_eq(settfs_close(rf), 0);
		}
		ck_assert_uint_gt(cuts, 10);
	}
	settfs_options o = opts();
	ck_assert_int_eq(settfs_open(keep, &o, &fs), 0);
	free(keep);
	free(full.p);
	free(inc.p);
}
END_TEST

static uint64_t next_ino_of(sett_db *db)
{
	uint8_t k[1] = { SFS_TAG_NEXTINO };
	void *v;
	size_t n;
	ck_assert_int_eq(sett_get(db, (sett_val){ 1, k }, 0, &v, &n), 0);
	ck_assert_uint_eq(n, 8);
	uint64_t r = sfs_get_be64(v);
	free(v);
	return r;
}

/*
 * Inode numbers the replica handed out itself are not handed out again
 * after an incremental receive rolled those files away, though the
 * stream's inode counter is lower than the replica's.
 */
START_TEST(test_receive_keeps_inode_counter)
{
	make_tree(3);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_mem full = send_snap("s1", NULL);
	receive_ok(dst, &full);
	settfs_options o = opts();
	ck_assert_int_eq(settfs_close(fs), 0);
	ck_assert_int_eq(settfs_open(src, &o, &fs), 0);
	tu_put_file(fs, SETTFS_ROOT_INO, "n1", "one", 3); /* raises the source's counter */
	ck_assert_int_eq(settfs_snapshot_create(fs, "s2", NULL), 0);
	tu_mem inc = send_snap("s2", "s1");

	/* the replica is used: two mounts, a file each, its counter above the source's */
	settfs *r;
	uint64_t used = 0;
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(settfs_open(dst, &o, &r), 0);
		struct stat st;
		ck_assert_int_eq(settfs_create(r, &root_ctx, SETTFS_ROOT_INO, i ? "l2" : "l1", 0644,
					       O_RDWR, &st), 0);
		ck_assert_int_eq(settfs_release(r, st.st_ino, O_RDWR), 0);
		used = st.st_ino > used ? st.st_ino : used;
		ck_assert_int_eq(settfs_close(r), 0);
	}
	sett_db *db;
	ck_assert_int_eq(sett_open(dst, &o.engine, &db), 0);
	uint64_t before = next_ino_of(db);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_uint_gt(before, next_ino_of(settfs_engine(fs)));

	receive_ok(dst, &inc);
	ck_assert_int_eq(settfs_open(dst, &o, &r), 0);
	ck_assert_uint_ge(next_ino_of(settfs_engine(r)), before);
	sett_db *sdb = settfs_engine(fs);
	ck_assert_uint_eq(fs_digest_but(settfs_engine(r), 0, NULL, SFS_TAG_NEXTINO),
			  fs_digest_but(sdb, snap_version(sdb, "s2", NULL), NULL, SFS_TAG_NEXTINO));
	struct stat st;
	ck_assert_int_eq(settfs_lookup(r, SETTFS_ROOT_INO, "l1", &st), -ENOENT);
	ck_assert_int_eq(settfs_create(r, &root_ctx, SETTFS_ROOT_INO, "l3", 0644, O_RDWR, &st), 0);
	ck_assert_uint_gt(st.st_ino, used);
	ck_assert_int_eq(settfs_release(r, st.st_ino, O_RDWR), 0);
	ck_assert_int_eq(settfs_close(r), 0);
	free(full.p);
	free(inc.p);
}
END_TEST

static uint32_t super_version(sett_db *db)
{
	uint8_t k[1] = { SFS_TAG_SUPER };
	void *v;
	size_t n;
	sfs_super sb;
	ck_assert_int_eq(sett_get(db, (sett_val){ 1, k }, 0, &v, &n), 0);
	ck_assert_int_eq(sfs_super_decode(v, n, &sb), 0);
	free(v);
	return sb.version;
}

/*
 * A replica of a source that turns compression on: the incremental with
 * compressed chunks raises the replica to format 4 (with settings of its
 * own: the stream carries no `F`), the chunks keep their codec and read
 * back; a rollback of the replica to the older snapshot gives it back its
 * format 3 whole, and it mounts.
 */
START_TEST(test_receive_across_compression)
{
	make_tree(3);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_mem full = send_snap("s1", NULL);
	receive_ok(dst, &full);
	ck_assert_int_eq(settfs_close(fs), 0);
	settfs_options o = opts();
	o.compression = SETTFS_COMPRESSION_ZSTD;
	ck_assert_int_eq(settfs_open(src, &o, &fs), 0);
	static char text[40000];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = "settfs replicates compressed chunks as they are. "[i % 49];
	uint64_t ino = tu_put_file(fs, SETTFS_ROOT_INO, "text", text, sizeof text);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s2", NULL), 0);
	tu_mem inc = send_snap("s2", "s1");
	receive_ok(dst, &inc);
	expect_replica("s2");

	settfs_options plain = opts();
	settfs *r;
	ck_assert_int_eq(settfs_open(dst, &plain, &r), 0);
	struct stat st;
	ck_assert_int_eq(settfs_lookup(r, SETTFS_ROOT_INO, "text", &st), 0);
	ck_assert_uint_eq(st.st_ino, ino);
	ck_assert_uint_lt((uint64_t)st.st_blocks * 512, sizeof text / 4); /* still compressed */
	static char back[sizeof text];
	ck_assert_int_eq(settfs_file_open(r, ino, O_RDONLY), 0);
	ck_assert_int_eq(settfs_read(r, ino, 0, sizeof back, back), (ssize_t)sizeof back);
	ck_assert_int_eq(memcmp(back, text, sizeof text), 0);
	ck_assert_int_eq(settfs_release(r, ino, O_RDONLY), 0);
	settfs_forget(r, ino, 1);
	ck_assert_uint_eq(super_version(settfs_engine(r)), SFS_SUPER_CODEC_VERSION);
	ck_assert_int_eq(settfs_close(r), 0);

	sett_db *db;
	ck_assert_int_eq(sett_open(dst, &plain.engine, &db), 0);
	ck_assert_int_eq(sfs_snap_rollback(db, "s1", NULL), 0);
	ck_assert_uint_eq(super_version(db), 3);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(settfs_open(dst, &plain, &r), 0);
	ck_assert_int_eq(settfs_lookup(r, SETTFS_ROOT_INO, "text", &st), -ENOENT);
	ck_assert_int_eq(settfs_close(r), 0);
	free(full.p);
	free(inc.p);
}
END_TEST

/* A new store received with a key is encrypted: it opens with that key only. */
START_TEST(test_receive_encrypted)
{
	make_tree(3);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_mem m = send_snap("s1", NULL);
	static const uint8_t key[32] = "a key of thirty-two bytes, test";
	settfs_options o = opts();
	o.engine.encryption_key = key;
	sfs_recv_result res;
	ck_assert_int_eq(sfs_receive(dst, &o, tu_mem_read, &m, &res), 0);
	settfs *r;
	settfs_options plain = opts();
	plain.engine.create_if_missing = 0;
	ck_assert_int_eq(settfs_open(dst, &plain, &r), -EKEYREJECTED);
	ck_assert_int_eq(settfs_open(dst, &o, &r), 0);
	sett_db *sdb = settfs_engine(fs);
	ck_assert_uint_eq(fs_digest(settfs_engine(r), 0, NULL),
			  fs_digest(sdb, snap_version(sdb, "s1", NULL), NULL));
	ck_assert_int_eq(settfs_close(r), 0);
	free(m.p);
}
END_TEST

/* A send's own pins (a daemon killed while it sent) go at the next open. */
START_TEST(test_send_pins_released)
{
	make_tree(2);
	ck_assert_int_eq(settfs_snapshot_create(fs, "s1", NULL), 0);
	tu_mem m = send_snap("s1", NULL);
	int pins = sett_pins(settfs_engine(fs), NULL, 0);
	ck_assert_int_eq(pins, 1); /* the snapshot's alone */
	ck_assert_int_eq(sett_pin(settfs_engine(fs), SFS_SNAP_PIN_PREFIX "/send.1.0.snap", 0, NULL),
			 0);
	ck_assert_int_eq(settfs_close(fs), 0);
	settfs_options o = opts();
	ck_assert_int_eq(settfs_open(src, &o, &fs), 0);
	sett_pin_info p[4];
	ck_assert_int_eq(sett_pins(settfs_engine(fs), p, 4), 1);
	ck_assert_str_eq(p[0].name, SFS_SNAP_PIN_PREFIX "s1");
	free(m.p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("send");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_full_then_incrementals);
	tcase_add_test(tc, test_damaged_stream_refused);
	tcase_add_test(tc, test_refused_targets);
	tcase_add_test(tc, test_interrupted_receive);
	tcase_add_test(tc, test_receive_fault_sweep);
	tcase_add_test(tc, test_send_pins_released);
	tcase_add_test(tc, test_receive_encrypted);
	tcase_add_test(tc, test_receive_keeps_inode_counter);
	tcase_add_test(tc, test_receive_across_compression);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
