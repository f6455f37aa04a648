/*
 * test_errors.c - what a failed write means.
 *
 * - A request of a commit group that fails (its WAL append was cut back)
 *   fails alone: the others are acknowledged, and after a reopen each
 *   request is exactly as it was reported (nothing failed comes back).
 * - A clean ENOSPC fails the writes that hit it, not every later one:
 *   once space returns, writes succeed again by themselves.
 * - A failed fsync is sticky: the state on disk is uncertain until reopen.
 * - A compaction or flush that cannot make progress does not leave a
 *   writer waiting forever: it gets the error, and background work resumes
 *   when space returns.
 *
 * Faults come from the engine's I/O layer (fileio.h).  Waits are bounded
 * (a writer that does not return within 30 s fails the test), never timed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sett.h"
#include "db_impl.h"
#include "fileio.h"
#include "testutil.h"

#define BOUND_S 30

static sett_val V(const char *s)
{
	sett_val v = { strlen(s), s };
	return v;
}

static void opts(sett_options *o)
{
	sett_options_init(o);
	o->mem_table_size = 64 << 10;
	o->value_threshold = 1024;
	o->value_log_file_size = 256 << 10;
	o->gc_discard_ratio = 0;
}

static sett_db *open_db(const char *dir, const sett_options *o)
{
	sett_db *db = NULL;
	int r = sett_open(dir, o, &db);
	ck_assert_msg(r == 0, "open %s: %s", dir, sett_strerror(r));
	return db;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Key i's value: n bytes, from i (n >= value_threshold goes to the value log). */
static size_t value_of(long i, uint8_t *out)
{
	uint64_t s = (uint64_t)i * 2654435761u + 7;
	size_t n = i % 3 ? 200 + (size_t)(i % 300) : 1500 + (size_t)(i % 1000);
	tu_fill_random(&s, out, n);
	return n;
}

static int put_key(sett_db *db, long i, int sync)
{
	char k[32];
	uint8_t v[4096];
	snprintf(k, sizeof k, "key%08ld", i);
	size_t n = value_of(i, v);
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	ck_assert_int_eq(sett_batch_set(b, V(k), (sett_val){ n, v }), 0);
	int r = sett_write(db, b, sync, NULL);
	sett_batch_free(b);
	return r;
}

/* Retries a put that fails with ENOSPC while the background work recovers. */
static int put_key_retry(sett_db *db, long i)
{
	double until = now_s() + BOUND_S;
	int r;
	while ((r = put_key(db, i, 0)) == -ENOSPC && now_s() < until)
		pause_ms(20);
	return r;
}

/* Key i is present with its value (want 1) or absent (want 0). */
static void check_key(sett_db *db, long i, int want, const char *when)
{
	char k[32];
	uint8_t v[4096];
	snprintf(k, sizeof k, "key%08ld", i);
	size_t wn = value_of(i, v);
	void *got = NULL;
	size_t n = 0;
	int r = sett_get(db, V(k), 0, &got, &n);
	if (!want) {
		ck_assert_msg(r == SETT_ENOTFOUND, "%s: %s failed but is there (%s)", when, k,
			      sett_strerror(r));
		return;
	}
	ck_assert_msg(r == 0, "%s: acknowledged %s: %s", when, k, sett_strerror(r));
	ck_assert_msg(n == wn && memcmp(got, v, n) == 0, "%s: %s has a wrong value", when, k);
	free(got);
}

/* ---- a group whose middle request fails ---- */

typedef struct put_arg {
	sett_db *db;
	long key;
	int rc;
	pthread_t th;
} put_arg;

static void *put_thread(void *a)
{
	put_arg *p = a;
	p->rc = put_key(p->db, p->key, 0);
	return NULL;
}

/* The newest queued request (the queue only grows while the test holds the
 * write slot). */
static const struct write_req *queue_tail(sett_db *db)
{
	pthread_mutex_lock(&db->wmu);
	const struct write_req *t = db->qtail;
	pthread_mutex_unlock(&db->wmu);
	return t;
}

START_TEST(test_group_request_fails_alone)
{
	char *dir = tu_tmpdir("err-group");
	sett_options o;
	opts(&o);
	o.num_compactors = 0; /* no background writes to count */
	sett_db *db = open_db(dir, &o);
	ck_assert_int_eq(put_key(db, 0, 1), 0);

	/*
	 * Form one group of three requests: while the test holds the write
	 * slot, the requests queue in order; releasing it hands all three to
	 * the writer thread at once.  Values are small, so the group's writes
	 * are three WAL appends; the second fails with ENOSPC (and is cut back).
	 */
	pthread_mutex_lock(&db->wmu);
	db->writing = 1;
	pthread_mutex_unlock(&db->wmu);
	put_arg a[3];
	const struct write_req *tail = NULL;
	for (int i = 0; i < 3; i++) {
		a[i] = (put_arg){ .db = db, .key = 3 * (i + 1) + 1 }; /* short values */
		ck_assert_int_eq(pthread_create(&a[i].th, NULL, put_thread, &a[i]), 0);
		double until = now_s() + BOUND_S;
		while (queue_tail(db) == tail && now_s() < until)
			pause_ms(1);
		ck_assert_msg(queue_tail(db) != tail, "request %d was not queued", i);
		tail = queue_tail(db);
	}
	sio_fault_fail_nth(2, ENOSPC);
	pthread_mutex_lock(&db->wmu);
	db->writing = 0;
	pthread_cond_broadcast(&db->wcv);
	pthread_mutex_unlock(&db->wmu);
	for (int i = 0; i < 3; i++)
		pthread_join(a[i].th, NULL);
	sio_fault_reset();

	ck_assert_msg(a[1].rc == -ENOSPC, "the failing request got %s", sett_strerror(a[1].rc));
	ck_assert_msg(a[0].rc == 0 && a[2].rc == 0,
		      "the other requests of the group were failed too (%s, %s)",
		      sett_strerror(a[0].rc), sett_strerror(a[2].rc));
	for (int i = 0; i < 3; i++)
		check_key(db, a[i].key, a[i].rc == 0, "before reopen");
	/* not sticky: the next write succeeds */
	ck_assert_int_eq(put_key(db, 100, 1), 0);
	ck_assert_int_eq(sett_close(db), 0);

	db = open_db(dir, &o);
	for (int i = 0; i < 3; i++)
		check_key(db, a[i].key, a[i].rc == 0, "after reopen");
	check_key(db, 0, 1, "after reopen");
	check_key(db, 100, 1, "after reopen");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- ENOSPC comes and goes ---- */

START_TEST(test_enospc_not_sticky)
{
	char *dir = tu_tmpdir("err-enospc");
	sett_options o;
	opts(&o);
	o.num_level_zero_tables = 2;
	o.num_level_zero_tables_stall = 4;
	sett_db *db = open_db(dir, &o);
	enum { N = 3000 };
	static signed char state[N]; /* 1 acked, 0 failed */
	long i = 0;
	for (; i < 300; i++) {
		ck_assert_int_eq(put_key(db, i, i % 10 == 0), 0);
		state[i] = 1;
	}
	/* The disk fills up: value log, WAL, tables all get ENOSPC. */
	sio_fault_fail_after_bytes(150 << 10, ENOSPC);
	int failures = 0;
	for (; i < 1500 && failures < 50; i++) {
		int r = put_key(db, i, i % 10 == 0);
		ck_assert_msg(r == 0 || r == -ENOSPC, "write %ld: %s", i, sett_strerror(r));
		state[i] = r == 0;
		failures += r != 0;
	}
	ck_assert_int_eq(failures, 50);
	for (long j = 0; j < i; j++)
		check_key(db, j, state[j], "on a full disk");
	/* Space comes back: writes succeed again without a reopen. */
	sio_fault_reset();
	long first = i;
	for (; i < first + 1000; i++) {
		int r = put_key_retry(db, i);
		ck_assert_msg(r == 0, "write %ld after space came back: %s", i, sett_strerror(r));
		state[i] = 1;
	}
	for (long j = 0; j < i; j++)
		check_key(db, j, state[j], "after space came back");
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	db = open_db(dir, &o);
	for (long j = 0; j < i; j++)
		check_key(db, j, state[j], "after reopen");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- a failed fsync is sticky ---- */

START_TEST(test_failed_fsync_sticky)
{
	char *dir = tu_tmpdir("err-fsync");
	sett_options o;
	opts(&o);
	o.num_compactors = 0;
	sett_db *db = open_db(dir, &o);
	ck_assert_int_eq(put_key(db, 1, 1), 0);
	/* a small synced put: the WAL append, then its fsync (fails) */
	sio_fault_fail_nth(2, EIO);
	ck_assert_int_eq(put_key(db, 4, 1), -EIO);
	sio_fault_reset();
	ck_assert_int_eq(put_key(db, 7, 0), -EIO);
	sett_close(db);
	db = open_db(dir, &o);
	check_key(db, 1, 1, "after reopen");
	ck_assert_int_eq(put_key(db, 7, 1), 0);
	check_key(db, 7, 1, "after reopen");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- compaction without space: the stalled writer gets an error ---- */

typedef struct writer_arg {
	sett_db *db;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int rc;
	long n;
} writer_arg;

static void *writer_main(void *p)
{
	writer_arg *w = p;
	int r = 0;
	long i;
	for (i = 0; i < 100000 && r == 0; i++)
		r = put_key(w->db, 3 * i + 1, 0); /* short values: WAL and tables only */
	pthread_mutex_lock(&w->mu);
	w->rc = r;
	w->n = i;
	w->done = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

START_TEST(test_compaction_enospc_no_hang)
{
	char *dir = tu_tmpdir("err-stall");
	sett_options o;
	opts(&o);
	o.num_level_zero_tables = 2;
	o.num_level_zero_tables_stall = 4;
	o.num_compactors = 1;
	o.base_table_size = 4 << 20; /* a compaction writes one big table */
	sett_db *db = open_db(dir, &o);
	/*
	 * No file may grow past 96 KiB: WAL files and flushed tables (one
	 * 64 KiB memtable) still fit, the output of an L0 compaction (two or
	 * more tables) does not.  L0 grows to the stall limit.
	 */
	sio_fault_file_size_limit(96 << 10, ENOSPC);
	writer_arg w = { .db = db };
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += BOUND_S;
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		if (pthread_cond_timedwait(&w.cv, &w.mu, &ts) == ETIMEDOUT)
			break;
	int done = w.done;
	pthread_mutex_unlock(&w.mu);
	ck_assert_msg(done, "a writer stalled by a compaction without space did not return "
			    "within %d s", BOUND_S);
	pthread_join(th, NULL);
	ck_assert_msg(w.rc == -ENOSPC, "stalled writer got %s", sett_strerror(w.rc));
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert_msg(st.levels[0].tables >= o.num_level_zero_tables_stall,
		      "the writer failed before L0 reached the stall limit (%d tables)",
		      st.levels[0].tables);
	long acked = w.n - 1; /* keys 3*i+1 for i < acked */

	/* Space comes back: compaction resumes by itself, writes go on. */
	sio_fault_reset();
	ck_assert_int_eq(put_key_retry(db, 3 * acked + 1), 0);
	for (long i = 0; i <= acked; i++)
		check_key(db, 3 * i + 1, 1, "after space came back");
	ck_assert_int_eq(sett_close(db), 0);
	db = open_db(dir, &o);
	for (long i = 0; i <= acked; i++)
		check_key(db, 3 * i + 1, 1, "after reopen");
	ck_assert_int_eq(sett_close(db), 0);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- many sessions whose final flush fails ---- */

static int count_wals(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.mem$'", dir);
	FILE *f = popen(cmd, "r");
	int n = -1;
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

/*
 * A disk that stays full over many sessions: every flush fails (tables
 * cannot grow past a few bytes, WAL appends of one short batch still fit),
 * so each session's close leaves one more WAL.  The store still opens, with
 * every acknowledged write, and once space is back the WALs are flushed.
 */
START_TEST(test_many_failed_final_flushes)
{
	char *dir = tu_tmpdir("err-wals");
	sett_options o;
	opts(&o);
	o.num_compactors = 0;
	/* key 300 s + 1 has a 201-byte value: its WAL is 258 bytes, the
	 * smallest table 418 */
	enum { SESSIONS = 40, WAL_LIMIT = 320 };
	for (long s = 0; s < SESSIONS; s++) {
		sio_fault_file_size_limit(WAL_LIMIT, ENOSPC);
		sett_db *db = open_db(dir, &o);
		ck_assert_int_eq(put_key(db, 300 * s + 1, 1), 0);
		int r = sett_close(db);
		ck_assert_msg(r == -ENOSPC, "session %ld: close returned %s (its flush should fail)",
			      s, sett_strerror(r));
		sio_fault_reset();
	}
	ck_assert_int_ge(count_wals(dir), SESSIONS);
	sett_db *db = open_db(dir, &o);
	for (long s = 0; s < SESSIONS; s++)
		check_key(db, 300 * s + 1, 1, "after the disk was cleared");
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_int_eq(count_wals(dir), 0);
	db = open_db(dir, &o);
	for (long s = 0; s < SESSIONS; s++)
		check_key(db, 300 * s + 1, 1, "after the WALs were flushed");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- whose error a writer stalled on L0 gets ---- */

static int stall_l0(sett_db *db)
{
	pthread_mutex_lock(&db->mu);
	int e = db->stall_error[STALL_L0];
	pthread_mutex_unlock(&db->mu);
	return e;
}

/*
 * Writers stalled on a deep L0 wait for L0's compactions only: what they
 * fail with is the last L0 compaction's error, which a compaction of
 * another level neither sets nor clears.
 */
START_TEST(test_stall_l0_error_is_l0s)
{
	char *dir = tu_tmpdir("err-stall-l0");
	sett_options o;
	opts(&o);
	o.num_compactors = 1;
	sett_db *db = open_db(dir, &o);
	for (long i = 0; i < 300; i++)
		ck_assert_int_eq(put_key(db, 3 * i + 1, 0), 0);
	ck_assert_int_eq(sett_flatten(db), 0); /* everything in L6 */
	sett_stats st;
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert_int_eq(st.levels[0].tables, 0);
	ck_assert_int_gt(st.levels[MAX_LEVELS - 1].tables, 0);

	/* as an L0 compaction that failed for space leaves it */
	db_set_stall_error(db, STALL_L0, -ENOSPC);
	uint64_t before = st.compactions;
	ck_assert_int_eq(sett_flatten(db), 0); /* rewrites L6: no L0 compaction */
	ck_assert_int_eq(sett_get_stats(db, &st), 0);
	ck_assert_msg(st.compactions > before, "flatten ran no compaction of L6");
	ck_assert_msg(stall_l0(db) == -ENOSPC,
		      "a compaction of L6 changed L0's stall error to %s", sett_strerror(stall_l0(db)));

	/* a successful L0 compaction clears it */
	for (long i = 300; i < 400; i++)
		ck_assert_int_eq(put_key(db, 3 * i + 1, 0), 0);
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_int_eq(stall_l0(db), 0);
	for (long i = 0; i < 400; i++)
		check_key(db, 3 * i + 1, 1, "after the compactions");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("errors");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_group_request_fails_alone);
	tcase_add_test(tc, test_enospc_not_sticky);
	tcase_add_test(tc, test_failed_fsync_sticky);
	tcase_add_test(tc, test_compaction_enospc_no_hang);
	tcase_add_test(tc, test_many_failed_final_flushes);
	tcase_add_test(tc, test_stall_l0_error_is_l0s);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
