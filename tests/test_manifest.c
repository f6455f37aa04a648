/* test_manifest.c - MANIFEST replay, rewrite, torn tails, corruption and power cuts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coding.h"
#include "fileio.h"
#include "manifest.h"
#include "sett.h"
#include "testutil.h"

#define MAX_ID 4096

/* What the test believes is live: level+1 per id, 0 when absent. */
typedef struct model {
	uint8_t level[MAX_ID];
	uint8_t comp[MAX_ID];
} model;

static char *mpath(const char *dir)
{
	static char p[4096];
	snprintf(p, sizeof p, "%s/MANIFEST", dir);
	return p;
}

/* Opens as the engine does: a writable open creates a missing file and cuts a torn tail. */
static manifest *open_ok(const char *dir, int ro, manifest_table **t, size_t *n)
{
	manifest *m = NULL;
	char why[256];
	if (!ro && access(mpath(dir), F_OK) != 0)
		ck_assert_int_eq(manifest_create(dir), 0);
	int r = manifest_open(dir, ro, &m, t, n, why, sizeof why);
	ck_assert_msg(r == 0, "manifest_open: %d %s", r, why);
	if (!ro)
		ck_assert_int_eq(manifest_finish_open(m), 0);
	return m;
}

/* Both opens fail with SETT_ECORRUPT naming `off`, and leave the file as it is. */
static void refused_at(const char *dir, long long off)
{
	long long size = tu_file_size(mpath(dir));
	for (int ro = 1; ro >= 0; ro--) {
		manifest *m = NULL;
		manifest_table *t = NULL;
		size_t n;
		char why[256] = "", want[4200];
		int r = manifest_open(dir, ro, &m, &t, &n, why, sizeof why);
		ck_assert_msg(r == SETT_ECORRUPT, "ro=%d: r=%d %s", ro, r, why);
		snprintf(want, sizeof want, "%s: corrupt record at offset %lld", mpath(dir), off);
		ck_assert_msg(strncmp(why, want, strlen(want)) == 0, "why: %s", why);
		ck_assert_int_eq(tu_file_size(mpath(dir)), size);
	}
}

/* Reopens dir and checks that the replayed state equals the model. */
static void check_state(const char *dir, const model *md)
{
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 1, &t, &n);
	size_t want = 0;
	for (int i = 0; i < MAX_ID; i++)
		want += md->level[i] != 0;
	ck_assert_uint_eq(n, want);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_lt(t[i].id, MAX_ID);
		if (i)
			ck_assert_uint_gt(t[i].id, t[i - 1].id);
		ck_assert_uint_eq(md->level[t[i].id], t[i].level + 1);
		ck_assert_uint_eq(md->comp[t[i].id], t[i].compression);
	}
	free(t);
	ck_assert_int_eq(manifest_close(m), 0);
}

static manifest_change mk(uint8_t op, uint64_t id, uint8_t level, uint8_t comp)
{
	manifest_change c = { .op = op, .level = level, .compression = comp, .id = id };
	return c;
}

static void apply_ok(manifest *m, model *md, const manifest_change *c, size_t n)
{
	ck_assert_int_eq(manifest_apply(m, c, n), 0);
	for (size_t i = 0; i < n; i++) {
		if (c[i].op == MANIFEST_CREATE) {
			md->level[c[i].id] = (uint8_t)(c[i].level + 1);
			md->comp[c[i].id] = c[i].compression;
		} else {
			md->level[c[i].id] = 0;
		}
	}
}

START_TEST(test_round_trip)
{
	char *dir = tu_tmpdir("mani");
	model md = { 0 };
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	ck_assert_uint_eq(n, 0);
	free(t);
	ck_assert_int_eq(tu_file_size(mpath(dir)), 16);

	manifest_change c[3] = { mk(MANIFEST_CREATE, 5, 0, 1), mk(MANIFEST_CREATE, 2, 0, 0),
				 mk(MANIFEST_CREATE, 9, 3, 1) };
	apply_ok(m, &md, c, 3);
	/* A compaction: 5 and 2 move down as 11. */
	manifest_change d[3] = { mk(MANIFEST_DELETE, 5, 0, 0), mk(MANIFEST_DELETE, 2, 0, 0),
				 mk(MANIFEST_CREATE, 11, 1, 1) };
	apply_ok(m, &md, d, 3);
	/* A change set may create and delete the same table. */
	manifest_change e[2] = { mk(MANIFEST_CREATE, 12, 6, 0), mk(MANIFEST_DELETE, 12, 0, 0) };
	apply_ok(m, &md, e, 2);
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);

	/* Reopened for writing, appends continue after the old records. */
	m = open_ok(dir, 0, &t, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(t[0].id, 9);
	ck_assert_uint_eq(t[0].level, 3);
	ck_assert_uint_eq(t[1].id, 11);
	free(t);
	manifest_change f = mk(MANIFEST_CREATE, 100, 2, 1);
	apply_ok(m, &md, &f, 1);
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_many_change_sets)
{
	char *dir = tu_tmpdir("mani");
	model md = { 0 };
	uint64_t rs = 11;
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	for (int round = 0; round < 600; round++) {
		manifest_change c[8];
		size_t k = 0;
		model tmp = md;
		size_t want = 1 + tu_rand(&rs) % 8;
		while (k < want) {
			uint64_t id = tu_rand(&rs) % 300;
			if (tmp.level[id]) {
				c[k++] = mk(MANIFEST_DELETE, id, 0, 0);
				tmp.level[id] = 0;
			} else {
				c[k] = mk(MANIFEST_CREATE, id, (uint8_t)(tu_rand(&rs) % 7),
					  (uint8_t)(tu_rand(&rs) % 2));
				tmp.level[id] = 1;
				k++;
			}
		}
		apply_ok(m, &md, c, k);
		if (round % 100 == 99) {
			ck_assert_int_eq(manifest_close(m), 0);
			check_state(dir, &md);
			m = open_ok(dir, 0, &t, &n);
			free(t);
		}
	}
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_rewrite)
{
	char *dir = tu_tmpdir("mani");
	model md = { 0 };
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	manifest_change cr[100];
	for (uint64_t id = 0; id < 1100; id++) {
		cr[id % 100] = mk(MANIFEST_CREATE, id, (uint8_t)(id % 7), 1);
		if (id % 100 == 99)
			apply_ok(m, &md, cr, 100);
	}
	/* Deletions one per change set, most of them in sets of 50. */
	for (uint64_t id = 0; id < 900; id++) {
		cr[id % 50] = mk(MANIFEST_DELETE, id, 0, 0);
		if (id % 50 == 49)
			apply_ok(m, &md, cr, 50);
	}
	long long peak = 0;
	sio_fault_reset();
	for (uint64_t id = 900; id < 1090; id++) {
		manifest_change c = mk(MANIFEST_DELETE, id, 0, 0);
		if (id == 1000) {
			/* The first rewrite fails (its write): nothing changes, a retry works. */
			long long before = tu_file_size(mpath(dir));
			sio_fault_fail_nth(2, ENOSPC);
			ck_assert_int_eq(manifest_apply(m, &c, 1), -ENOSPC);
			ck_assert_int_eq(tu_file_size(mpath(dir)), before);
		}
		apply_ok(m, &md, &c, 1);
		long long sz = tu_file_size(mpath(dir));
		if (sz > peak)
			peak = sz;
	}
	/* Rewritten once deletions passed 1000 and 10x the live tables. */
	long long sz = tu_file_size(mpath(dir));
	ck_assert_int_gt(peak, 16 + 11 * (12 + 4 + 1100) + 18 * (12 + 4 + 550));
	/* Header, one record of the 99 tables live at the rewrite, 89 deletions. */
	ck_assert_int_eq(sz, 16 + (12 + 4 + 99 * 11) + 89 * (12 + 4 + 11));
	char rw[4096];
	snprintf(rw, sizeof rw, "%s/MANIFEST-REWRITE", dir);
	ck_assert_int_eq(access(rw, F_OK), -1);
	/* The rewritten file and the appends after it survive a power cut. */
	sio_fault_powercut();
	ck_assert_int_eq(manifest_close(m), 0);
	sio_fault_reset();
	check_state(dir, &md);

	/* Appends after a rewrite go to the new file. */
	m = open_ok(dir, 0, &t, &n);
	ck_assert_uint_eq(n, 10);
	free(t);
	manifest_change c = mk(MANIFEST_CREATE, 3000, 4, 0);
	apply_ok(m, &md, &c, 1);
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);

	/* A leftover MANIFEST-REWRITE (crash before rename) is ignored and removed. */
	FILE *f = fopen(rw, "w");
	fputs("garbage", f);
	fclose(f);
	m = open_ok(dir, 0, &t, &n);
	free(t);
	ck_assert_int_eq(access(rw, F_OK), -1);
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Builds A (3 tables) then B (1 more); returns the size after A via *after_a. */
static void two_records(const char *dir, model *a, long long *after_a)
{
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	manifest_change c[3] = { mk(MANIFEST_CREATE, 1, 0, 0), mk(MANIFEST_CREATE, 2, 1, 0),
				 mk(MANIFEST_CREATE, 3, 2, 1) };
	apply_ok(m, a, c, 3);
	*after_a = tu_file_size(mpath(dir));
	manifest_change d[2] = { mk(MANIFEST_DELETE, 1, 0, 0), mk(MANIFEST_CREATE, 4, 5, 1) };
	ck_assert_int_eq(manifest_apply(m, d, 2), 0);
	ck_assert_int_eq(manifest_close(m), 0);
}

START_TEST(test_torn_tail)
{
	char *dir = tu_tmpdir("mani");
	model a = { 0 };
	long long after_a;
	two_records(dir, &a, &after_a);
	long long full = tu_file_size(mpath(dir));
	ck_assert_int_eq(full, after_a + 12 + 4 + 2 * 11);

	/* Every cut inside the last record gives back the state after A. */
	for (long long cut = after_a + 1; cut < full; cut += 3) {
		char *d2 = tu_tmpdir("mani-cut");
		char cmd[8192];
		snprintf(cmd, sizeof cmd, "cp %s %s/MANIFEST", mpath(dir), d2);
		ck_assert_int_eq(system(cmd), 0);
		ck_assert_int_eq(truncate(mpath(d2), cut), 0);

		/* Read-only replay leaves the file alone. */
		check_state(d2, &a);
		ck_assert_int_eq(tu_file_size(mpath(d2)), cut);

		manifest_table *t;
		size_t n;
		manifest *m = open_ok(d2, 0, &t, &n);
		free(t);
		ck_assert_int_eq(tu_file_size(mpath(d2)), after_a);
		/* The next change follows A directly. */
		manifest_change c = mk(MANIFEST_CREATE, 7, 6, 0);
		model b = a;
		apply_ok(m, &b, &c, 1);
		ck_assert_int_eq(manifest_close(m), 0);
		check_state(d2, &b);
		tu_rmrf(d2);
		free(d2);
	}

	/*
	 * A complete last record that fails its checksum is corruption, not a
	 * torn write: it may have been fsynced and acknowledged.
	 */
	tu_flip_byte(mpath(dir), full - 3);
	refused_at(dir, after_a);
	/* ... also when zeros follow it. */
	ck_assert_int_eq(truncate(mpath(dir), after_a + 200), 0);
	refused_at(dir, after_a);
	/* A zero-filled tail where a record should start: size written, data not. */
	ck_assert_int_eq(truncate(mpath(dir), after_a), 0);
	ck_assert_int_eq(truncate(mpath(dir), after_a + 100), 0);
	check_state(dir, &a);
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	ck_assert_int_eq(manifest_close(m), 0);
	ck_assert_int_eq(tu_file_size(mpath(dir)), after_a);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A complete-length last record whose bytes from a 512-byte sector boundary
 * on are zero was torn (those sectors never reached the disk); the same
 * record with written bytes up to its end and one flipped is corruption.
 */
START_TEST(test_torn_sector)
{
	char *dir = tu_tmpdir("mani");
	model a = { 0 };
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	/* Records of 27 bytes from 16: the 19th ends at 529, across 512. */
	for (uint64_t id = 1; id <= 18; id++) {
		manifest_change c = mk(MANIFEST_CREATE, id, 1, 1);
		apply_ok(m, &a, &c, 1);
	}
	long long before = tu_file_size(mpath(dir));
	ck_assert_int_eq(before, 16 + 18 * 27);
	model b = a;
	manifest_change c = mk(MANIFEST_CREATE, 19, 1, 1);
	apply_ok(m, &b, &c, 1);
	ck_assert_int_eq(manifest_close(m), 0);
	ck_assert_int_eq(tu_file_size(mpath(dir)), 529);

	char *copy = tu_tmpdir("mani-copy");
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "cp -p %s %s/MANIFEST", mpath(dir), copy);
	ck_assert_int_eq(system(cmd), 0);
	/* Flip a byte of its payload before the boundary: corruption. */
	tu_flip_byte(mpath(copy), 505);
	refused_at(copy, before);
	/* Zero [512, 529): the last sector was not written. */
	tu_flip_byte(mpath(copy), 505);
	int fd = open(mpath(copy), O_WRONLY);
	uint8_t z[17] = { 0 };
	ck_assert_int_eq(pwrite(fd, z, sizeof z, 512), (ssize_t)sizeof z);
	close(fd);
	check_state(copy, &a);
	m = open_ok(copy, 0, &t, &n);
	free(t);
	ck_assert_int_eq(manifest_close(m), 0);
	ck_assert_int_eq(tu_file_size(mpath(copy)), before);
	check_state(dir, &b);
	tu_rmrf(copy);
	free(copy);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* The allocation limit (NEXT_ID) replays, only grows and survives a rewrite. */
START_TEST(test_next_id)
{
	char *dir = tu_tmpdir("mani");
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	ck_assert_uint_eq(manifest_next_id(m), 0);
	manifest_change c = mk(MANIFEST_NEXT_ID, 16, 0, 0);
	ck_assert_int_eq(manifest_apply(m, &c, 1), 0);
	c.id = 10;
	ck_assert_int_eq(manifest_apply(m, &c, 1), -EINVAL);
	ck_assert_uint_eq(manifest_next_id(m), 16);
	ck_assert_int_eq(manifest_close(m), 0);
	m = open_ok(dir, 1, &t, &n);
	free(t);
	ck_assert_uint_eq(manifest_next_id(m), 16);
	ck_assert_int_eq(manifest_close(m), 0);

	/* Enough create/delete pairs to force a rewrite: the limit is kept. */
	m = open_ok(dir, 0, &t, &n);
	free(t);
	for (uint64_t id = 1; id <= 1001; id++) {
		manifest_change cd[2] = { mk(MANIFEST_CREATE, id, 0, 0), mk(MANIFEST_DELETE, id, 0, 0) };
		ck_assert_int_eq(manifest_apply(m, cd, 2), 0);
	}
	ck_assert_int_lt(tu_file_size(mpath(dir)), 100);
	ck_assert_int_eq(manifest_close(m), 0);
	m = open_ok(dir, 1, &t, &n);
	free(t);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(manifest_next_id(m), 16);
	ck_assert_int_eq(manifest_close(m), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_corrupt_middle)
{
	char *dir = tu_tmpdir("mani");
	model a = { 0 };
	long long after_a;
	two_records(dir, &a, &after_a);
	/* Flip each byte of record A in turn: always corruption, never a wrong state. */
	for (long long off = 16; off < after_a; off++) {
		tu_flip_byte(mpath(dir), off);
		manifest *m = NULL;
		manifest_table *t = NULL;
		size_t n;
		char why[256] = "";
		int r = manifest_open(dir, 1, &m, &t, &n, why, sizeof why);
		ck_assert_msg(r == SETT_ECORRUPT, "flip at %lld: r=%d", off, r);
		char want[4200];
		snprintf(want, sizeof want, "%s: corrupt record at offset 16", mpath(dir));
		ck_assert_msg(strncmp(why, want, strlen(want)) == 0, "why: %s", why);
		/* The writable open refuses too and does not cut the file. */
		r = manifest_open(dir, 0, &m, &t, &n, why, sizeof why);
		ck_assert_int_eq(r, SETT_ECORRUPT);
		ck_assert_int_gt(tu_file_size(mpath(dir)), after_a);
		tu_flip_byte(mpath(dir), off);
	}
	/* With every byte restored, both records replay. */
	model full = a;
	full.level[1] = 0;
	full.level[4] = 6;
	full.comp[4] = 1;
	check_state(dir, &full);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_bad_header)
{
	char *dir = tu_tmpdir("mani");
	model a = { 0 };
	long long after_a;
	two_records(dir, &a, &after_a);
	manifest *m;
	manifest_table *t;
	size_t n;
	char why[256];

	tu_flip_byte(mpath(dir), 2); /* magic */
	ck_assert_int_eq(manifest_open(dir, 0, &m, &t, &n, why, sizeof why), SETT_EFORMAT);
	ck_assert_ptr_nonnull(strstr(why, "MANIFEST"));
	tu_flip_byte(mpath(dir), 2);

	tu_flip_byte(mpath(dir), 13); /* header checksum */
	ck_assert_int_eq(manifest_open(dir, 0, &m, &t, &n, why, sizeof why), SETT_ECORRUPT);
	tu_flip_byte(mpath(dir), 13);

	/* An unknown version with a valid header checksum: a newer format. */
	uint8_t h[16];
	int fd = open(mpath(dir), O_RDWR);
	ck_assert_int_eq(pread(fd, h, 16, 0), 16);
	put_le32(h + 8, 3);
	put_le32(h + 12, (uint32_t)sett_hash(h, 12));
	ck_assert_int_eq(pwrite(fd, h, 16, 0), 16);
	close(fd);
	ck_assert_int_eq(manifest_open(dir, 0, &m, &t, &n, why, sizeof why), SETT_EFORMAT);

	/* Shorter than a header. */
	ck_assert_int_eq(truncate(mpath(dir), 10), 0);
	ck_assert_int_eq(manifest_open(dir, 0, &m, &t, &n, why, sizeof why), SETT_ECORRUPT);

	/* Read-only open of a store without a MANIFEST. */
	unlink(mpath(dir));
	ck_assert_int_eq(manifest_open(dir, 1, &m, &t, &n, why, sizeof why), -ENOENT);
	ck_assert_int_eq(access(mpath(dir), F_OK), -1);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_invalid_changes)
{
	char *dir = tu_tmpdir("mani");
	model md = { 0 };
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	manifest_change c[2] = { mk(MANIFEST_CREATE, 1, 0, 0), mk(MANIFEST_CREATE, 2, 1, 0) };
	apply_ok(m, &md, c, 2);
	long long size = tu_file_size(mpath(dir));

	/* Each bad set is refused whole: its valid first change is not applied. */
	manifest_change dup[2] = { mk(MANIFEST_CREATE, 3, 0, 0), mk(MANIFEST_CREATE, 1, 0, 0) };
	ck_assert_int_eq(manifest_apply(m, dup, 2), -EINVAL);
	manifest_change unknown[2] = { mk(MANIFEST_CREATE, 3, 0, 0), mk(MANIFEST_DELETE, 9, 0, 0) };
	ck_assert_int_eq(manifest_apply(m, unknown, 2), -EINVAL);
	manifest_change level[1] = { mk(MANIFEST_CREATE, 3, 7, 0) };
	ck_assert_int_eq(manifest_apply(m, level, 1), -EINVAL);
	manifest_change op[1] = { mk(9, 3, 0, 0) };
	ck_assert_int_eq(manifest_apply(m, op, 1), -EINVAL);
	ck_assert_int_eq(tu_file_size(mpath(dir)), size);
	/* Still usable, and 3 is still free. */
	manifest_change ok = mk(MANIFEST_CREATE, 3, 0, 0);
	apply_ok(m, &md, &ok, 1);
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);

	/* A well-checksummed record with an invalid change on disk is corruption. */
	uint8_t rec[12 + 4 + 11];
	put_le32(rec, 15);
	put_le32(rec + 12, 1);
	rec[16] = MANIFEST_DELETE;
	put_le64(rec + 17, 77); /* never created */
	rec[25] = 0;
	rec[26] = 0;
	put_le64(rec + 4, sett_hash(rec + 12, 15));
	long long end = tu_file_size(mpath(dir));
	int fd = open(mpath(dir), O_WRONLY);
	ck_assert_int_eq(pwrite(fd, rec, sizeof rec, end), (ssize_t)sizeof rec);
	close(fd);
	manifest *m2;
	char why[256];
	ck_assert_int_eq(manifest_open(dir, 0, &m2, &t, &n, why, sizeof why), SETT_ECORRUPT);
	char want[64];
	snprintf(want, sizeof want, "offset %lld", end);
	ck_assert_msg(strstr(why, want) != NULL, "why: %s", why);

	/* Level 7 in a record. */
	rec[16] = MANIFEST_CREATE;
	rec[25] = 7;
	put_le64(rec + 4, sett_hash(rec + 12, 15));
	fd = open(mpath(dir), O_WRONLY);
	ck_assert_int_eq(pwrite(fd, rec, sizeof rec, end), (ssize_t)sizeof rec);
	close(fd);
	ck_assert_int_eq(manifest_open(dir, 0, &m2, &t, &n, why, sizeof why), SETT_ECORRUPT);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_read_only)
{
	char *dir = tu_tmpdir("mani");
	model md = { 0 };
	manifest_table *t;
	size_t n;
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	manifest_change c = mk(MANIFEST_CREATE, 1, 0, 0);
	apply_ok(m, &md, &c, 1);
	ck_assert_int_eq(manifest_close(m), 0);
	m = open_ok(dir, 1, &t, &n);
	free(t);
	ck_assert_int_eq(manifest_apply(m, &c, 1), -EROFS);
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_power_cut)
{
	char *dir = tu_tmpdir("mani");
	model md = { 0 };
	manifest_table *t;
	size_t n;
	uint64_t rs = 3;

	/* Creation itself is durable. */
	sio_fault_reset();
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	sio_fault_powercut();
	manifest_close(m);
	sio_fault_reset();
	check_state(dir, &md);

	for (int round = 0; round < 30; round++) {
		m = open_ok(dir, 0, &t, &n);
		free(t);
		int k = (int)(tu_rand(&rs) % 40);
		for (int i = 0; i < k; i++) {
			uint64_t id = tu_rand(&rs) % 200;
			manifest_change c = md.level[id] ? mk(MANIFEST_DELETE, id, 0, 0)
							 : mk(MANIFEST_CREATE, id, 2, 1);
			apply_ok(m, &md, &c, 1);
		}
		/* The cut drops every unsynced byte; every applied set must survive. */
		sio_fault_powercut();
		manifest_change c = mk(MANIFEST_CREATE, 999, 0, 0);
		ck_assert_int_lt(manifest_apply(m, &c, 1), 0);
		manifest_close(m);
		sio_fault_reset();
		check_state(dir, &md);
	}
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_io_errors)
{
	char *dir = tu_tmpdir("mani");
	model md = { 0 };
	manifest_table *t;
	size_t n;
	sio_fault_reset();
	manifest *m = open_ok(dir, 0, &t, &n);
	free(t);
	manifest_change c[2] = { mk(MANIFEST_CREATE, 1, 0, 0), mk(MANIFEST_CREATE, 2, 0, 0) };
	apply_ok(m, &md, c, 2);

	/* A failed write: refused, state unchanged, the manifest goes on. */
	sio_fault_fail_nth(1, ENOSPC);
	manifest_change d = mk(MANIFEST_DELETE, 1, 0, 0);
	ck_assert_int_eq(manifest_apply(m, &d, 1), -ENOSPC);
	manifest_change e = mk(MANIFEST_CREATE, 5, 1, 0);
	apply_ok(m, &md, &e, 1);
	/* 1 was not deleted, so deleting it now is valid. */
	apply_ok(m, &md, &d, 1);

	/* A write that stops part way through a record. */
	sio_fault_fail_after_bytes(10, EIO);
	manifest_change f[3] = { mk(MANIFEST_CREATE, 6, 1, 0), mk(MANIFEST_CREATE, 7, 1, 0),
				 mk(MANIFEST_CREATE, 8, 1, 0) };
	ck_assert_int_eq(manifest_apply(m, f, 3), -EIO);
	sio_fault_reset();
	apply_ok(m, &md, &f[0], 1);
	ck_assert_int_eq(manifest_close(m), 0);
	check_state(dir, &md);

	/* A failed fsync leaves the file uncertain: later applies fail too. */
	m = open_ok(dir, 0, &t, &n);
	free(t);
	sio_fault_fail_nth(2, EIO); /* write ok, sync fails */
	ck_assert_int_eq(manifest_apply(m, &f[1], 1), -EIO);
	ck_assert_int_eq(manifest_apply(m, &f[2], 1), -EIO);
	ck_assert_int_eq(manifest_close(m), 0);
	sio_fault_reset();
	/* Reopening recovers either with or without f[1]: here the write did land. */
	m = open_ok(dir, 1, &t, &n);
	int has7 = 0;
	for (size_t i = 0; i < n; i++)
		has7 |= t[i].id == 7;
	free(t);
	manifest_close(m);
	if (has7) {
		md.level[7] = 2;
		md.comp[7] = 0;
	}
	check_state(dir, &md);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_many_change_sets);
	tcase_add_test(tc, test_rewrite);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_torn_sector);
	tcase_add_test(tc, test_next_id);
	tcase_add_test(tc, test_corrupt_middle);
	tcase_add_test(tc, test_bad_header);
	tcase_add_test(tc, test_invalid_changes);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_power_cut);
	tcase_add_test(tc, test_io_errors);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
