/*
 * test_wal.c - the write-ahead log: batches survive reopen, a torn tail is
 * cut off, an unterminated batch is dropped, a corrupt middle entry is
 * reported with its offset, and a power cut keeps exactly what was synced.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entry.h"
#include "fileio.h"
#include "ikey.h"
#include "sett.h"
#include "testutil.h"
#include "wal.h"

static char *dir;
static char path[4096];

static void setup(void)
{
	dir = tu_tmpdir("wal");
	snprintf(path, sizeof path, "%s/00001.mem", dir);
}

static void teardown(void)
{
	sio_fault_reset();
	tu_rmrf(dir);
	free(dir);
}

/* What replay handed to apply, copied (slices die with the callback). */
typedef struct seen {
	int n;
	char keys[512][32];
	char vals[512][64];
	uint8_t meta[512];
	int stop_after; /* apply returns -1234 after this many (0: never) */
} seen;

static int collect(void *arg, const entry *e)
{
	seen *s = arg;
	ck_assert_int_lt(s->n, 512);
	ck_assert_uint_ge(e->key.n, IKEY_SUFFIX);
	slice uk = ikey_user(e->key);
	snprintf(s->keys[s->n], sizeof s->keys[0], "%.*s", (int)uk.n, (const char *)uk.p);
	snprintf(s->vals[s->n], sizeof s->vals[0], "%.*s", (int)e->value.n,
		 (const char *)e->value.p);
	s->meta[s->n] = e->meta;
	s->n++;
	if (s->stop_after && s->n == s->stop_after)
		return -1234;
	return 0;
}

/* Appends to b the entry "k<i>" = "v<i>" with the given meta; returns its length. */
static size_t add_entry(buf *b, int i, uint8_t meta)
{
	char uk[32], val[32];
	uint8_t ik[64];
	int kn = snprintf(uk, sizeof uk, "k%d", i);
	int vn = snprintf(val, sizeof val, "v%d", i);
	ikey_make(ik, uk, (size_t)kn, (uint64_t)i + 1);
	entry e = { slice_make(ik, (size_t)kn + 8), slice_make(val, (size_t)vn), meta, 0, 0 };
	size_t before = b->n;
	ck_assert_int_eq(entry_append(b, &e), 0);
	return b->n - before;
}

/* Appends a batch of n entries (first..first+n-1); a batch of one has no txn bits. */
static void add_batch(buf *b, int first, int n)
{
	for (int i = 0; i < n; i++) {
		uint8_t meta = 0;
		if (n > 1)
			meta = META_TXN | (i == n - 1 ? META_FIN_TXN : 0);
		add_entry(b, first + i, meta);
	}
}

static void write_wal(const buf *b)
{
	wal *w;
	ck_assert_int_eq(wal_create(path, 1, &w), 0);
	ck_assert_int_eq(wal_append(w, b->p, b->n), 0);
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_uint_eq(wal_size(w), LOG_HEADER_SIZE + b->n);
	ck_assert_int_eq(wal_close(w, 0), 0);
}

static void assert_entries(const seen *s, int first, int n)
{
	ck_assert_int_eq(s->n, n);
	for (int i = 0; i < n; i++) {
		char k[32], v[32];
		snprintf(k, sizeof k, "k%d", first + i);
		snprintf(v, sizeof v, "v%d", first + i);
		ck_assert_str_eq(s->keys[i], k);
		ck_assert_str_eq(s->vals[i], v);
	}
}

START_TEST(batches_replay_in_order)
{
	buf b = { 0 };
	add_batch(&b, 0, 1);
	add_batch(&b, 1, 5);
	add_batch(&b, 6, 1);
	add_batch(&b, 7, 3);
	write_wal(&b);

	seen s = { 0 };
	wal *w;
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, NULL, 0), 0);
	assert_entries(&s, 0, 10);
	ck_assert_uint_eq(s.meta[0], 0);
	ck_assert_uint_eq(s.meta[5], META_TXN | META_FIN_TXN);
	ck_assert_uint_eq(wal_fid(w), 1);
	ck_assert_str_eq(wal_path(w), path);
	ck_assert_uint_eq(wal_size(w), LOG_HEADER_SIZE + b.n);

	/* Appends continue after the replayed entries. */
	buf more = { 0 };
	add_batch(&more, 10, 4);
	ck_assert_int_eq(wal_append(w, more.p, more.n), 0);
	ck_assert_int_eq(wal_close(w, 0), 0);

	memset(&s, 0, sizeof s);
	ck_assert_int_eq(wal_open_replay(path, 0, collect, &s, NULL, NULL, 0), 0);
	assert_entries(&s, 0, 14);

	/* wal_close with remove deletes the file. */
	ck_assert_int_eq(wal_open_replay(path, 1, NULL, NULL, &w, NULL, 0), 0);
	ck_assert_int_eq(wal_close(w, 1), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	buf_free(&b);
	buf_free(&more);
}
END_TEST

START_TEST(create_refuses_existing_and_empty_replays)
{
	wal *w;
	ck_assert_int_eq(wal_create(path, 7, &w), 0);
	ck_assert_int_eq(wal_close(w, 0), 0);
	ck_assert_int_eq(tu_file_size(path), LOG_HEADER_SIZE);
	ck_assert_int_eq(wal_create(path, 7, &w), -EEXIST);
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, NULL, 0), 0);
	ck_assert_int_eq(s.n, 0);
	ck_assert_uint_eq(wal_fid(w), 7);
	wal_close(w, 0);
}
END_TEST

START_TEST(torn_tail_cut)
{
	buf b = { 0 };
	size_t ends[20];
	for (int i = 0; i < 20; i++) {
		add_entry(&b, i, 0);
		ends[i] = LOG_HEADER_SIZE + b.n;
	}
	/* Cut inside the last entry at every position, and inside earlier ones. */
	for (size_t cut = ends[17] + 1; cut < ends[19]; cut += 3) {
		write_wal(&b);
		ck_assert_int_eq(truncate(path, (off_t)cut), 0);
		int whole = 0;
		while (whole < 20 && ends[whole] <= cut)
			whole++;
		seen s = { 0 };
		char why[256] = "";
		wal *w;
		ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, why, sizeof why), 0);
		assert_entries(&s, 0, whole);
		ck_assert_int_eq(tu_file_size(path), (long long)ends[whole - 1]);
		ck_assert_uint_eq(wal_size(w), ends[whole - 1]);
		/* New appends land right after the kept entries and replay. */
		buf more = { 0 };
		add_entry(&more, whole, 0);
		ck_assert_int_eq(wal_append(w, more.p, more.n), 0);
		wal_close(w, 0);
		memset(&s, 0, sizeof s);
		ck_assert_int_eq(wal_open_replay(path, 0, collect, &s, NULL, NULL, 0), 0);
		assert_entries(&s, 0, whole + 1);
		buf_free(&more);
		unlink(path);
	}
	buf_free(&b);
}
END_TEST

START_TEST(torn_tail_read_only_not_cut)
{
	buf b = { 0 };
	add_batch(&b, 0, 4);
	write_wal(&b);
	long long full = tu_file_size(path);
	ck_assert_int_eq(truncate(path, full - 5), 0);
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 0, collect, &s, NULL, NULL, 0), 0);
	/* The batch lost its FIN entry: nothing of it applies. */
	ck_assert_int_eq(s.n, 0);
	ck_assert_int_eq(tu_file_size(path), full - 5);
	buf_free(&b);
}
END_TEST

/* Replay fails with SETT_ECORRUPT naming off, and the file is left as it is. */
static void refused_at(long long off)
{
	long long size = tu_file_size(path);
	for (int writable = 0; writable <= 1; writable++) {
		seen s = { 0 };
		char why[4300] = "", want[4300];
		int r = wal_open_replay(path, writable, collect, &s, NULL, why, sizeof why);
		ck_assert_msg(r == SETT_ECORRUPT, "writable=%d: r=%d", writable, r);
		snprintf(want, sizeof want, "%s: corrupt entry at offset %lld", path, off);
		ck_assert_str_eq(why, want);
		ck_assert_int_eq(tu_file_size(path), size);
	}
}

START_TEST(zero_tail_cut)
{
	buf b = { 0 };
	add_batch(&b, 0, 3);
	add_batch(&b, 3, 1);
	write_wal(&b);
	/* Zeros after the last entry: the size reached the disk, the data did not. */
	ck_assert_int_eq(truncate(path, (off_t)(LOG_HEADER_SIZE + b.n + 700)), 0);
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, NULL, NULL, 0), 0);
	assert_entries(&s, 0, 4);
	ck_assert_int_eq(tu_file_size(path), (long long)(LOG_HEADER_SIZE + b.n));
	buf_free(&b);
}
END_TEST

/* Bytes after the last entry that are not zero were written: not a torn tail. */
START_TEST(garbage_tail_reported)
{
	buf b = { 0 };
	add_batch(&b, 0, 3);
	add_batch(&b, 3, 1);
	write_wal(&b);
	FILE *f = fopen(path, "ab");
	uint8_t junk[700];
	uint64_t st = 5;
	tu_fill_random(&st, junk, sizeof junk);
	memset(junk, 0, 100);
	fwrite(junk, 1, sizeof junk, f);
	fclose(f);
	refused_at((long long)(LOG_HEADER_SIZE + b.n));
	buf_free(&b);
}
END_TEST

/*
 * A complete last entry that fails its checksum is corruption, even with
 * nothing after it (issue 8: it may have been fsynced); one that ends past
 * the end of the file, or whose bytes from a sector boundary on are zero,
 * is a torn tail.
 */
START_TEST(corrupt_last_entry_reported)
{
	buf b = { 0 };
	add_batch(&b, 0, 2);
	size_t keep = LOG_HEADER_SIZE + b.n;
	add_batch(&b, 2, 1);
	write_wal(&b);
	long long full = tu_file_size(path);
	tu_flip_byte(path, full - 12); /* in the value */
	refused_at((long long)keep);
	tu_flip_byte(path, full - 12);

	/* A big last entry across a sector boundary, zero from the boundary on. */
	buf c = { 0 };
	add_batch(&c, 0, 2);
	char uk[8] = "big", val[1500];
	uint8_t ik[16];
	memset(val, 'x', sizeof val);
	ikey_make(ik, uk, 3, 9);
	entry e = { slice_make(ik, 11), slice_make(val, sizeof val), 0, 0, 0 };
	ck_assert_int_eq(entry_append(&c, &e), 0);
	unlink(path);
	write_wal(&c);
	full = tu_file_size(path);
	ck_assert_int_gt(full, 1024);
	int fd = open(path, O_WRONLY);
	uint8_t z[600] = { 0 };
	ck_assert_int_eq(pwrite(fd, z, (size_t)(full - 1024), 1024), full - 1024);
	close(fd);
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, NULL, NULL, 0), 0);
	assert_entries(&s, 0, 2);
	ck_assert_int_eq(tu_file_size(path), (long long)keep);

	/* Short: the file ends inside the entry. */
	unlink(path);
	write_wal(&c);
	ck_assert_int_eq(truncate(path, full - 100), 0);
	s.n = 0;
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, NULL, NULL, 0), 0);
	assert_entries(&s, 0, 2);
	ck_assert_int_eq(tu_file_size(path), (long long)keep);

	/* The same entry complete, one byte flipped before the boundary. */
	unlink(path);
	write_wal(&c);
	tu_flip_byte(path, 1000);
	refused_at((long long)keep);
	buf_free(&b);
	buf_free(&c);
}
END_TEST

/*
 * A tail whose every few bytes claim an entry reaching to its end, after
 * one that claims to run past the file's end (as a torn one does): the
 * search for a valid entry after it stops at its budget and calls it
 * corruption, keeping the file whole, instead of checking every claim
 * (the square of the tail: minutes for these 16 MiB).
 */
START_TEST(crafted_tail_bounded)
{
	buf b = { 0 };
	add_batch(&b, 0, 3);
	write_wal(&b);
	tu_append_claims(path, 16u << 20, 0, 1);
	refused_at((long long)(LOG_HEADER_SIZE + b.n));
	buf_free(&b);
}
END_TEST

START_TEST(unterminated_batch_dropped)
{
	buf b = { 0 };
	add_batch(&b, 0, 3);
	size_t keep = LOG_HEADER_SIZE + b.n;
	/* A batch whose FIN entry was never written. */
	add_entry(&b, 3, META_TXN);
	add_entry(&b, 4, META_TXN);
	write_wal(&b);
	seen s = { 0 };
	wal *w;
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, NULL, 0), 0);
	assert_entries(&s, 0, 3);
	ck_assert_int_eq(tu_file_size(path), (long long)keep);
	ck_assert_uint_eq(wal_size(w), keep);
	/* What follows is a fresh start, not a continuation of the lost batch. */
	buf more = { 0 };
	add_batch(&more, 3, 2);
	ck_assert_int_eq(wal_append(w, more.p, more.n), 0);
	wal_close(w, 0);
	memset(&s, 0, sizeof s);
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, NULL, NULL, 0), 0);
	assert_entries(&s, 0, 5);
	buf_free(&b);
	buf_free(&more);
}
END_TEST

START_TEST(corrupt_middle_entry_reported)
{
	buf b = { 0 };
	size_t start[10];
	for (int i = 0; i < 10; i++) {
		start[i] = LOG_HEADER_SIZE + b.n;
		add_entry(&b, i, 0);
	}
	write_wal(&b);
	long long size = tu_file_size(path);
	/* Flip a byte of entry 5's value, then of its length field. */
	long long targets[2] = { (long long)start[6] - ENTRY_CHECKSUM - 1,
				 (long long)start[5] + 2 };
	for (int t = 0; t < 2; t++) {
		tu_flip_byte(path, targets[t]);
		seen s = { 0 };
		char why[512] = "";
		wal *w = NULL;
		int r = wal_open_replay(path, 1, collect, &s, &w, why, sizeof why);
		ck_assert_int_eq(r, SETT_ECORRUPT);
		ck_assert_ptr_null(w);
		char expect[4200];
		snprintf(expect, sizeof expect, "%s: corrupt entry at offset %zu", path, start[5]);
		ck_assert_str_eq(why, expect);
		/* Nothing was cut: the entries after the bad one are still there. */
		ck_assert_int_eq(tu_file_size(path), size);
		tu_flip_byte(path, targets[t]);
	}
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, NULL, NULL, 0), 0);
	assert_entries(&s, 0, 10);
	buf_free(&b);
}
END_TEST

START_TEST(bad_header)
{
	buf b = { 0 };
	add_batch(&b, 0, 1);
	write_wal(&b);
	char why[512] = "";
	tu_flip_byte(path, 12); /* fid */
	ck_assert_int_eq(wal_open_replay(path, 1, collect, NULL, NULL, why, sizeof why),
			 SETT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(why, path));
	tu_flip_byte(path, 12);
	tu_flip_byte(path, 0); /* magic */
	ck_assert_int_eq(wal_open_replay(path, 1, collect, NULL, NULL, why, sizeof why),
			 SETT_EFORMAT);
	/* A header cut short by a crash in wal_create: empty, and repaired. */
	ck_assert_int_eq(truncate(path, 10), 0);
	seen s = { 0 };
	wal *w;
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, NULL, 0), 0);
	ck_assert_int_eq(s.n, 0);
	ck_assert_uint_eq(wal_fid(w), 1);
	wal_close(w, 0);
	ck_assert_int_eq(tu_file_size(path), LOG_HEADER_SIZE);
	ck_assert_int_eq(wal_open_replay(path, 0, collect, &s, NULL, NULL, 0), 0);
	buf_free(&b);
}
END_TEST

START_TEST(apply_error_stops_replay)
{
	buf b = { 0 };
	add_batch(&b, 0, 6);
	write_wal(&b);
	seen s = { 0 };
	s.stop_after = 2;
	wal *w = NULL;
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, NULL, 0), -1234);
	ck_assert_int_eq(s.n, 2);
	ck_assert_ptr_null(w);
	buf_free(&b);
}
END_TEST

START_TEST(failed_append_not_replayed)
{
	wal *w;
	buf a = { 0 }, c = { 0 };
	add_batch(&a, 0, 2);
	add_batch(&c, 2, 2);
	ck_assert_int_eq(wal_create(path, 1, &w), 0);
	ck_assert_int_eq(wal_append(w, a.p, a.n), 0);
	sio_fault_fail_nth(1, ENOSPC);
	ck_assert_int_eq(wal_append(w, c.p, c.n), -ENOSPC);
	ck_assert_uint_eq(wal_size(w), LOG_HEADER_SIZE + a.n);
	/* The retry lands where the failed write would have. */
	ck_assert_int_eq(wal_append(w, c.p, c.n), 0);
	wal_close(w, 0);
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 0, collect, &s, NULL, NULL, 0), 0);
	assert_entries(&s, 0, 4);
	buf_free(&a);
	buf_free(&c);
}
END_TEST

START_TEST(power_cut_keeps_synced)
{
	sio_fault_reset();
	wal *w;
	buf a = { 0 }, c = { 0 };
	add_batch(&a, 0, 3);
	add_batch(&a, 3, 1);
	add_batch(&c, 4, 3);
	add_batch(&c, 7, 1);
	ck_assert_int_eq(wal_create(path, 1, &w), 0);
	ck_assert_int_eq(wal_append(w, a.p, a.n), 0);
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_int_eq(wal_append(w, c.p, c.n), 0);
	sio_fault_powercut();
	/* After the cut every write fails, like a machine that is off. */
	ck_assert_int_ne(wal_append(w, c.p, c.n), 0);
	wal_close(w, 0);
	sio_fault_reset();
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, NULL, 0), 0);
	assert_entries(&s, 0, 4);
	wal_close(w, 0);
	buf_free(&a);
	buf_free(&c);
}
END_TEST

START_TEST(power_cut_before_first_sync)
{
	sio_fault_reset();
	wal *w;
	buf a = { 0 };
	add_batch(&a, 0, 3);
	ck_assert_int_eq(wal_create(path, 1, &w), 0);
	ck_assert_int_eq(wal_append(w, a.p, a.n), 0);
	sio_fault_powercut();
	wal_close(w, 0);
	sio_fault_reset();
	/* Nothing was synced: the file lost even its header, and replays as empty. */
	ck_assert_int_lt(tu_file_size(path), LOG_HEADER_SIZE);
	seen s = { 0 };
	ck_assert_int_eq(wal_open_replay(path, 1, collect, &s, &w, NULL, 0), 0);
	ck_assert_int_eq(s.n, 0);
	ck_assert_uint_eq(wal_fid(w), 1);
	wal_close(w, 0);
	buf_free(&a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wal");
	TCase *tc = tcase_create("wal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, batches_replay_in_order);
	tcase_add_test(tc, create_refuses_existing_and_empty_replays);
	tcase_add_test(tc, torn_tail_cut);
	tcase_add_test(tc, torn_tail_read_only_not_cut);
	tcase_add_test(tc, zero_tail_cut);
	tcase_add_test(tc, garbage_tail_reported);
	tcase_add_test(tc, corrupt_last_entry_reported);
	tcase_add_test(tc, crafted_tail_bounded);
	tcase_add_test(tc, unterminated_batch_dropped);
	tcase_add_test(tc, corrupt_middle_entry_reported);
	tcase_add_test(tc, bad_header);
	tcase_add_test(tc, apply_error_stops_replay);
	tcase_add_test(tc, failed_append_not_replayed);
	tcase_add_test(tc, power_cut_keeps_synced);
	tcase_add_test(tc, power_cut_before_first_sync);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
