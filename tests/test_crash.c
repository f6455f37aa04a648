/*
 * test_crash.c - crash recovery with a real process death.
 *
 * A child process writes with sync_writes on and reports every
 * acknowledged write through a pipe; the parent kills it with SIGKILL at a
 * random moment, reopens the store and checks that every acknowledged
 * write is there with its value, and that nothing that was never written
 * appears.  Memtables are small so that flushes (and the WAL switches
 * around them) happen during the run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sett.h"
#include "testutil.h"

#define NKEYS 100000

static void opts(sett_options *o)
{
	sett_options_init(o);
	o->mem_table_size = 64 << 10;
	o->value_threshold = 100;
	o->value_log_file_size = 256 << 10;
	o->sync_writes = 1;
	o->gc_discard_ratio = 0;
}

/* Value of write number i (a key is written at most once per run). */
static size_t make_value(long i, uint8_t *out)
{
	uint64_t s = (uint64_t)i * 7919 + 1;
	size_t n = (size_t)(tu_rand(&s) % 3 == 0 ? 150 + i % 500 : i % 90);
	tu_fill_random(&s, out, n);
	return n;
}

static void make_key(long i, char *k)
{
	snprintf(k, 32, "k%08ld", i);
}

static void child(const char *dir, int fd, long start)
{
	sett_options o;
	opts(&o);
	sett_db *db;
	if (sett_open(dir, &o, &db))
		_exit(3);
	sett_batch *b;
	sett_batch_new(&b);
	uint8_t v[1024];
	char k[32];
	for (long i = start; i < NKEYS; i += 2) {
		sett_batch_clear(b);
		/* pairs: one batch holds two keys, both or neither must survive */
		for (long j = i; j < i + 2; j++) {
			make_key(j, k);
			size_t n = make_value(j, v);
			sett_val kv = { strlen(k), k }, vv = { n, v };
			sett_batch_set(b, kv, vv);
		}
		if (sett_write(db, b, 0, NULL))
			_exit(4);
		long acked = i + 2;
		if (write(fd, &acked, sizeof acked) != sizeof acked)
			_exit(5);
	}
	_exit(0);
}

START_TEST(test_sigkill_recovery)
{
	char *dir = tu_tmpdir("crash");
	uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	long acked = 0;
	for (int round = 0; round < 6; round++) {
		int p[2];
		ck_assert_int_eq(pipe(p), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(p[0]);
			child(dir, p[1], acked);
		}
		close(p[1]);
		/* Let it run 50-400 ms, then kill it mid-stream. */
		struct timespec ts = { 0, (long)(50 + tu_rand(&seed) % 350) * 1000000L };
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		long a;
		while (read(p[0], &a, sizeof a) == sizeof a)
			acked = a;
		close(p[0]);
		int st;
		waitpid(pid, &st, 0);
		ck_assert_msg(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
			      "child failed with status %d", st);

		sett_options o;
		opts(&o);
		sett_db *db;
		int r = sett_open(dir, &o, &db);
		ck_assert_msg(r == 0, "reopen after kill: %s", sett_strerror(r));
		uint8_t want[1024];
		char k[32];
		long present = 0;
		for (long i = 0; i < NKEYS && i < acked + 64; i++) {
			make_key(i, k);
			sett_val kv = { strlen(k), k };
			void *v;
			size_t n;
			r = sett_get(db, kv, 0, &v, &n);
			if (i < acked) {
				ck_assert_msg(r == 0, "round %d: acked write %s lost (%s), acked %ld",
					      round, k, sett_strerror(r), acked);
			}
			if (r == 0) {
				size_t wn = make_value(i, want);
				ck_assert_msg(n == wn && (n == 0 || memcmp(v, want, n) == 0), "%s: wrong value", k);
				free(v);
				present = i + 1;
			} else {
				ck_assert_int_eq(r, SETT_ENOTFOUND);
			}
		}
		/* The write in flight may have landed; a pair lands whole. */
		ck_assert_msg(present <= acked + 2, "round %d: %ld keys present, %ld acked", round,
			      present, acked);
		ck_assert_msg(present % 2 == 0, "round %d: half a batch survived", round);
		/* The next child continues after what survived. */
		acked = present;
		ck_assert_int_eq(sett_close(db), 0);
	}
	ck_assert_int_gt(acked, 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("sigkill");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_sigkill_recovery);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
