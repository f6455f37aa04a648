/*
 * test_txn.c - transactions (conflicts, read-your-writes, snapshots, size
 * limit, bounded conflict records), managed mode, subscriptions,
 * sequences and all-versions iteration.  Threaded: also run under TSan.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "sett.h"
#include "db_impl.h"
#include "oracle.h"

static sett_val V(const char *s)
{
	sett_val v = { strlen(s), s };
	return v;
}

static void small_options(sett_options *o)
{
	sett_options_init(o);
	o->mem_table_size = 256u << 10;
	o->value_threshold = 64;
	o->base_table_size = 64u << 10;
	o->base_level_size = 256u << 10;
	o->num_level_zero_tables = 2;
	o->num_level_zero_tables_stall = 8;
	o->block_cache_size = 1u << 20;
	o->value_log_file_size = 1u << 20;
	o->gc_discard_ratio = 0;
}

static sett_db *open_db(const char *dir, const sett_options *o)
{
	sett_db *db;
	int r = sett_open(dir, o, &db);
	ck_assert_msg(r == 0, "sett_open: %s", sett_strerror(r));
	return db;
}

/* Value of key in txn as a number; -1 when absent. */
static long long txn_num(sett_txn *t, const char *key)
{
	void *v;
	size_t n;
	int r = sett_txn_get(t, V(key), &v, &n);
	if (r == SETT_ENOTFOUND)
		return -1;
	ck_assert_msg(r == 0, "get %s: %s", key, sett_strerror(r));
	char s[32];
	ck_assert(n < sizeof s);
	memcpy(s, v, n);
	s[n] = 0;
	free(v);
	return atoll(s);
}

static void txn_setnum(sett_txn *t, const char *key, long long x)
{
	char s[32];
	snprintf(s, sizeof s, "%lld", x);
	ck_assert_int_eq(sett_txn_set(t, V(key), V(s)), 0);
}

/* sett_get as a string (malloc'ed) or NULL when absent. */
static char *get_str(sett_db *db, const char *key, uint64_t rv)
{
	void *v;
	size_t n;
	int r = sett_get(db, V(key), rv, &v, &n);
	if (r == SETT_ENOTFOUND)
		return NULL;
	ck_assert_msg(r == 0, "get %s: %s", key, sett_strerror(r));
	char *s = malloc(n + 1);
	if (n)
		memcpy(s, v, n);
	s[n] = 0;
	free(v);
	return s;
}

static void assert_get(sett_db *db, const char *key, uint64_t rv, const char *want)
{
	char *s = get_str(db, key, rv);
	if (!want)
		ck_assert_msg(!s, "%s@%" PRIu64 ": found %s, want absent", key, rv, s);
	else
		ck_assert_msg(s && strcmp(s, want) == 0, "%s@%" PRIu64 ": %s, want %s", key, rv,
			      s ? s : "(absent)", want);
	free(s);
}

/* ---- bank transfers ---- */

#define ACCOUNTS 4
#define THREADS 4
#define ROUNDS 50
#define FREE_TRANSFERS 300
#define START 1000

typedef struct bank {
	sett_db *db;
	pthread_barrier_t bar;
	long long conflicts_locked; /* conflicts in the lock-step phase */
	long long conflicts;        /* all */
	long long commits;
	pthread_mutex_t mu;
	int stop;
	int bad_sum;
} bank;

typedef struct worker {
	bank *b;
	uint64_t seed;
} worker;

static void acct_name(char *out, int i)
{
	snprintf(out, 16, "acct%02d", i);
}

/* One transfer in a transaction; *synced: wait at the barrier between the
 * reads and the commit.  Returns the commit's result. */
static int transfer(bank *b, uint64_t *seed, int synced)
{
	int from = (int)(tu_rand(seed) % ACCOUNTS), to = (int)(tu_rand(seed) % (ACCOUNTS - 1));
	if (to >= from)
		to++;
	char kf[16], kt[16];
	acct_name(kf, from);
	acct_name(kt, to);
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(b->db, 1, &t), 0);
	long long a = txn_num(t, kf), c = txn_num(t, kt);
	long long amount = (long long)(tu_rand(seed) % 50);
	if (amount > a)
		amount = a;
	txn_setnum(t, kf, a - amount);
	txn_setnum(t, kt, c + amount);
	if (synced)
		pthread_barrier_wait(&b->bar);
	int r = sett_txn_commit(t, 0, NULL);
	sett_txn_discard(t);
	ck_assert_msg(r == 0 || r == SETT_ECONFLICT, "commit: %s", sett_strerror(r));
	return r;
}

static void *bank_worker(void *arg)
{
	worker *w = arg;
	bank *b = w->b;
	long long conflicts = 0, locked = 0, commits = 0;
	/* Lock step: every thread reads before any commits, so in each round
	 * two of them touch a common account and one of those must fail. */
	for (int round = 0; round < ROUNDS; round++) {
		int r = transfer(b, &w->seed, 1);
		locked += r == SETT_ECONFLICT;
		commits += r == 0;
		pthread_barrier_wait(&b->bar);
	}
	/* Free running, each transfer retried until it commits. */
	for (int i = 0; i < FREE_TRANSFERS; i++) {
		int r;
		while ((r = transfer(b, &w->seed, 0)) == SETT_ECONFLICT)
			conflicts++;
		commits++;
	}
	pthread_mutex_lock(&b->mu);
	b->conflicts_locked += locked;
	b->conflicts += conflicts + locked;
	b->commits += commits;
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* Read-only transactions must always see a constant total. */
static void *bank_auditor(void *arg)
{
	bank *b = arg;
	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		sett_txn *t;
		ck_assert_int_eq(sett_txn_begin(b->db, 0, &t), 0);
		long long sum = 0;
		char k[16];
		for (int i = 0; i < ACCOUNTS; i++) {
			acct_name(k, i);
			sum += txn_num(t, k);
		}
		/* The same snapshot through an iterator. */
		sett_iter_options io;
		sett_iter_options_init(&io);
		io.prefix = V("acct");
		sett_iter *it;
		ck_assert_int_eq(sett_txn_iter_new(t, &io, &it), 0);
		long long isum = 0;
		for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
			sett_val v;
			ck_assert_int_eq(sett_iter_value(it, &v), 0);
			char s[32];
			memcpy(s, v.data, v.size);
			s[v.size] = 0;
			isum += atoll(s);
		}
		sett_iter_free(it);
		ck_assert_int_eq(sett_txn_commit(t, 0, NULL), 0);
		sett_txn_discard(t);
		if (sum != ACCOUNTS * START || isum != sum)
			__atomic_store_n(&b->bad_sum, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

START_TEST(test_bank_invariant)
{
	char *dir = tu_tmpdir("txn-bank");
	sett_options o;
	small_options(&o);
	bank b = { 0 };
	b.db = open_db(dir, &o);
	pthread_mutex_init(&b.mu, NULL);
	pthread_barrier_init(&b.bar, NULL, THREADS);
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(b.db, 1, &t), 0);
	char k[16];
	for (int i = 0; i < ACCOUNTS; i++) {
		acct_name(k, i);
		txn_setnum(t, k, START);
	}
	ck_assert_int_eq(sett_txn_commit(t, 0, NULL), 0);
	sett_txn_discard(t);

	pthread_t th[THREADS], aud;
	worker w[THREADS];
	ck_assert_int_eq(pthread_create(&aud, NULL, bank_auditor, &b), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){ &b, 1000 + (uint64_t)i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, bank_worker, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&b.stop, 1, __ATOMIC_RELEASE);
	pthread_join(aud, NULL);

	ck_assert_msg(!b.bad_sum, "a read-only transaction saw a wrong total");
	ck_assert_msg(b.conflicts_locked >= ROUNDS, "%lld conflicts in %d lock-step rounds",
		      b.conflicts_locked, ROUNDS);
	ck_assert_int_eq(b.commits, THREADS * FREE_TRANSFERS + THREADS * ROUNDS - b.conflicts_locked);
	long long sum = 0;
	for (int i = 0; i < ACCOUNTS; i++) {
		acct_name(k, i);
		char *s = get_str(b.db, k, 0);
		ck_assert(s);
		sum += atoll(s);
		free(s);
	}
	ck_assert_int_eq(sum, ACCOUNTS * START);
	/* No transaction is open: the conflict records are gone. */
	ck_assert_int_eq(sett_put(b.db, V("x"), V("y")), 0);
	ck_assert_uint_eq(sett_txn_tracked_keys(b.db), 0);
	pthread_barrier_destroy(&b.bar);
	pthread_mutex_destroy(&b.mu);
	ck_assert_int_eq(sett_close(b.db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- conflicts ---- */

START_TEST(test_write_skew)
{
	char *dir = tu_tmpdir("txn-skew");
	sett_db *db = open_db(dir, NULL);
	ck_assert_int_eq(sett_put(db, V("a"), V("1")), 0);
	ck_assert_int_eq(sett_put(db, V("b"), V("1")), 0);
	/* Each reads both and, seeing a + b = 2, sets its own to 0: run one
	 * after the other, the second would see 1 and keep its own. */
	sett_txn *t1, *t2;
	ck_assert_int_eq(sett_txn_begin(db, 1, &t1), 0);
	ck_assert_int_eq(sett_txn_begin(db, 1, &t2), 0);
	ck_assert_int_eq(txn_num(t1, "a") + txn_num(t1, "b"), 2);
	ck_assert_int_eq(txn_num(t2, "a") + txn_num(t2, "b"), 2);
	txn_setnum(t1, "a", 0);
	txn_setnum(t2, "b", 0);
	ck_assert_int_eq(sett_txn_commit(t1, 0, NULL), 0);
	ck_assert_int_eq(sett_txn_commit(t2, 0, NULL), SETT_ECONFLICT);
	/* Over: only discard is left. */
	ck_assert_int_eq(sett_txn_set(t2, V("b"), V("2")), -EINVAL);
	sett_txn_discard(t1);
	sett_txn_discard(t2);
	assert_get(db, "a", 0, "0");
	assert_get(db, "b", 0, "1");

	/* A plain write conflicts too; blind writes and read-only do not. */
	ck_assert_int_eq(sett_txn_begin(db, 1, &t1), 0);
	ck_assert_int_eq(txn_num(t1, "a"), 0);
	txn_setnum(t1, "c", 5);
	ck_assert_int_eq(sett_txn_begin(db, 1, &t2), 0);
	txn_setnum(t2, "a", 7); /* blind */
	sett_txn *ro;
	ck_assert_int_eq(sett_txn_begin(db, 0, &ro), 0);
	ck_assert_int_eq(txn_num(ro, "a"), 0);
	ck_assert_int_eq(sett_txn_set(ro, V("a"), V("9")), -EPERM);
	ck_assert_int_eq(sett_put(db, V("a"), V("3")), 0);
	ck_assert_int_eq(sett_txn_commit(t1, 0, NULL), SETT_ECONFLICT);
	ck_assert_int_eq(sett_txn_commit(t2, 0, NULL), 0);
	ck_assert_int_eq(txn_num(ro, "a"), 0);
	ck_assert_int_eq(sett_txn_commit(ro, 0, NULL), 0);
	sett_txn_discard(t1);
	sett_txn_discard(t2);
	sett_txn_discard(ro);
	assert_get(db, "a", 0, "7");
	assert_get(db, "c", 0, NULL);

	/* A key seen by an iterator counts as read. */
	ck_assert_int_eq(sett_txn_begin(db, 1, &t1), 0);
	sett_iter *it;
	ck_assert_int_eq(sett_txn_iter_new(t1, NULL, &it), 0);
	ck_assert_int_eq(sett_iter_seek(it, V("b")), 0);
	ck_assert(sett_iter_valid(it));
	sett_val k = sett_iter_key(it);
	ck_assert(k.size == 1 && memcmp(k.data, "b", 1) == 0);
	txn_setnum(t1, "z", 1);
	ck_assert_int_eq(sett_txn_commit(t1, 0, NULL), -EBUSY);
	sett_iter_free(it);
	ck_assert_int_eq(sett_put(db, V("b"), V("4")), 0);
	ck_assert_int_eq(sett_txn_commit(t1, 0, NULL), SETT_ECONFLICT);
	sett_txn_discard(t1);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- read your writes ---- */

/* The keys an iterator yields, as "k=v k=v". */
static void iter_dump(sett_iter *it, char *out, size_t n)
{
	out[0] = 0;
	size_t len = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v;
		ck_assert_int_eq(sett_iter_value(it, &v), 0);
		len += (size_t)snprintf(out + len, n - len, "%s%.*s=%.*s", len ? " " : "",
					(int)k.size, (const char *)k.data, (int)v.size,
					(const char *)v.data);
		ck_assert(len < n);
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
}

START_TEST(test_read_your_writes)
{
	char *dir = tu_tmpdir("txn-ryw");
	sett_options o;
	small_options(&o);
	sett_db *db = open_db(dir, &o);
	ck_assert_int_eq(sett_put(db, V("k1"), V("s1")), 0);
	ck_assert_int_eq(sett_put(db, V("k3"), V("s3")), 0);
	ck_assert_int_eq(sett_put(db, V("k5"), V("s5")), 0);
	ck_assert_int_eq(sett_flush(db), 0); /* some in a table, some in the memtable */
	ck_assert_int_eq(sett_put(db, V("k7"), V("s7")), 0);

	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(db, 1, &t), 0);
	ck_assert_int_eq(sett_txn_set(t, V("k2"), V("t2")), 0);
	ck_assert_int_eq(sett_txn_set(t, V("k3"), V("t3")), 0);
	ck_assert_int_eq(sett_txn_delete(t, V("k5")), 0);
	ck_assert_int_eq(sett_txn_delete(t, V("k7")), 0);
	ck_assert_int_eq(sett_txn_set(t, V("k7"), V("t7")), 0); /* delete, then set again */
	ck_assert_int_eq(sett_txn_set(t, V("k8"), V("x")), 0);
	ck_assert_int_eq(sett_txn_delete(t, V("k8")), 0);       /* set, then delete */
	char big[300];
	memset(big, 'B', sizeof big - 1);
	big[sizeof big - 1] = 0;
	ck_assert_int_eq(sett_txn_set(t, V("k9"), V(big)), 0);  /* goes to the value log */

	void *v;
	size_t n;
	ck_assert_int_eq(sett_txn_get(t, V("k3"), &v, &n), 0);
	ck_assert(n == 2 && memcmp(v, "t3", 2) == 0);
	free(v);
	ck_assert_int_eq(sett_txn_get(t, V("k5"), &v, &n), SETT_ENOTFOUND);
	ck_assert_int_eq(sett_txn_get(t, V("k8"), &v, &n), SETT_ENOTFOUND);
	ck_assert_int_eq(sett_txn_get(t, V("k1"), &v, &n), 0);
	free(v);

	char want[1024], got[1024];
	snprintf(want, sizeof want, "k1=s1 k2=t2 k3=t3 k7=t7 k9=%s", big);
	sett_iter *it;
	ck_assert_int_eq(sett_txn_iter_new(t, NULL, &it), 0);
	iter_dump(it, got, sizeof got);
	ck_assert_str_eq(got, want);
	/* Seek onto a deleted key, and onto a pending one. */
	ck_assert_int_eq(sett_iter_seek(it, V("k5")), 0);
	ck_assert(sett_iter_valid(it));
	ck_assert_int_eq(memcmp(sett_iter_key(it).data, "k7", 2), 0);
	ck_assert_uint_eq(sett_iter_version(it), sett_txn_read_version(t));
	sett_iter_free(it);

	sett_iter_options io;
	sett_iter_options_init(&io);
	io.reverse = 1;
	ck_assert_int_eq(sett_txn_iter_new(t, &io, &it), 0);
	iter_dump(it, got, sizeof got);
	snprintf(want, sizeof want, "k9=%s k7=t7 k3=t3 k2=t2 k1=s1", big);
	ck_assert_str_eq(got, want);
	sett_iter_free(it);

	/* Others do not see it before the commit; everyone does after. */
	assert_get(db, "k2", 0, NULL);
	assert_get(db, "k5", 0, "s5");
	uint64_t cv;
	ck_assert_int_eq(sett_txn_commit(t, 0, &cv), 0);
	sett_txn_discard(t);
	ck_assert_uint_eq(sett_current_version(db), cv);
	sett_iter_options_init(&io);
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	iter_dump(it, got, sizeof got);
	snprintf(want, sizeof want, "k1=s1 k2=t2 k3=t3 k7=t7 k9=%s", big);
	ck_assert_str_eq(got, want);
	sett_iter_free(it);
	/* All of the commit has one version. */
	uint64_t ver;
	ck_assert_int_eq(sett_get_ex(db, V("k9"), 0, &v, &n, &ver, NULL), 0);
	free(v);
	ck_assert_uint_eq(ver, cv);
	ck_assert_int_eq(sett_close(db), 0);

	/* And after a reopen. */
	db = open_db(dir, &o);
	assert_get(db, "k9", 0, big);
	assert_get(db, "k5", 0, NULL);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_discard_and_snapshot)
{
	char *dir = tu_tmpdir("txn-discard");
	sett_db *db = open_db(dir, NULL);
	ck_assert_int_eq(sett_put(db, V("a"), V("1")), 0);
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(db, 1, &t), 0);
	txn_setnum(t, "a", 2);
	txn_setnum(t, "b", 2);
	sett_txn_discard(t);
	assert_get(db, "a", 0, "1");
	assert_get(db, "b", 0, NULL);

	/* A read-only transaction keeps its snapshot while writers go on,
	 * through flushes. */
	sett_txn *ro;
	ck_assert_int_eq(sett_txn_begin(db, 0, &ro), 0);
	for (int i = 0; i < 200; i++) {
		char k[16], val[16];
		snprintf(k, sizeof k, "n%03d", i);
		snprintf(val, sizeof val, "%d", i);
		ck_assert_int_eq(sett_put(db, V(k), V(val)), 0);
		ck_assert_int_eq(sett_put(db, V("a"), V(val)), 0);
		if (i % 50 == 0)
			ck_assert_int_eq(sett_flush(db), 0);
	}
	ck_assert_int_eq(txn_num(ro, "a"), 1);
	ck_assert_int_eq(txn_num(ro, "n010"), -1);
	sett_iter *it;
	ck_assert_int_eq(sett_txn_iter_new(ro, NULL, &it), 0);
	int keys = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it))
		keys++;
	ck_assert_int_eq(keys, 1);
	sett_iter_free(it);
	sett_txn_discard(ro);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_txn_too_big)
{
	char *dir = tu_tmpdir("txn-big");
	sett_options o;
	small_options(&o);
	o.mem_table_size = 64u << 10;
	sett_db *db = open_db(dir, &o);
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(db, 1, &t), 0);
	int i, r = 0;
	char k[32];
	for (i = 0; i < 100000; i++) {
		snprintf(k, sizeof k, "key%06d", i);
		if ((r = sett_txn_set(t, V(k), V("value-value-value"))))
			break;
	}
	ck_assert_int_eq(r, SETT_ETXNTOOBIG);
	ck_assert_int_gt(i, 100);
	/* Overwriting a buffered key costs nothing more. */
	ck_assert_int_eq(sett_txn_set(t, V("key000000"), V("value-value-value")), 0);
	/* The transaction is still usable and commits what it holds. */
	ck_assert_int_eq(sett_txn_commit(t, 0, NULL), 0);
	sett_txn_discard(t);
	snprintf(k, sizeof k, "key%06d", i - 1);
	assert_get(db, k, 0, "value-value-value");
	snprintf(k, sizeof k, "key%06d", i);
	assert_get(db, k, 0, NULL);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Conflict records are dropped once no transaction can conflict with them. */
START_TEST(test_conflict_records_bounded)
{
	char *dir = tu_tmpdir("txn-bound");
	sett_db *db = open_db(dir, NULL);
	/* Without open transactions plain writes leave no record. */
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(sett_put(db, V("p"), V("q")), 0);
	ck_assert_uint_eq(sett_txn_tracked_keys(db), 0);

	sett_txn *old;
	ck_assert_int_eq(sett_txn_begin(db, 1, &old), 0);
	char k[16];
	for (int i = 0; i < 500; i++) {
		sett_txn *t;
		ck_assert_int_eq(sett_txn_begin(db, 1, &t), 0);
		snprintf(k, sizeof k, "k%04d", i);
		txn_setnum(t, k, i);
		ck_assert_int_eq(sett_txn_commit(t, 0, NULL), 0);
		sett_txn_discard(t);
	}
	/* `old` may still conflict with all of them. */
	ck_assert_uint_eq(sett_txn_tracked_keys(db), 500);
	ck_assert_int_eq(txn_num(old, "k0100"), -1);
	txn_setnum(old, "k0100", 1);
	ck_assert_int_eq(sett_txn_commit(old, 0, NULL), SETT_ECONFLICT);
	sett_txn_discard(old);
	/* Now nothing can: the next commit drops them. */
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(db, 1, &t), 0);
	txn_setnum(t, "last", 1);
	ck_assert_int_eq(sett_txn_commit(t, 0, NULL), 0);
	sett_txn_discard(t);
	ck_assert_uint_le(sett_txn_tracked_keys(db), 1);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- managed mode ---- */

static uint64_t table_entries(sett_db *db)
{
	uint64_t n = 0;
	pthread_mutex_lock(&db->mu);
	for (int l = 0; l < MAX_LEVELS; l++)
		for (int i = 0; i < db->current->ntables[l]; i++)
			n += table_entry_count(db->current->tables[l][i]);
	pthread_mutex_unlock(&db->mu);
	return n;
}

#define MKEYS 1000

static void managed_write_all(sett_db *db, uint64_t rv, uint64_t cv, const char *val)
{
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin_at(db, 1, rv, &t), 0);
	char k[16];
	for (int i = 0; i < MKEYS; i++) {
		snprintf(k, sizeof k, "m%05d", i);
		ck_assert_int_eq(sett_txn_set(t, V(k), V(val)), 0);
	}
	ck_assert_int_eq(sett_txn_commit_at(t, cv, 0), 0);
	sett_txn_discard(t);
}

START_TEST(test_managed_visibility_and_discard)
{
	char *dir = tu_tmpdir("txn-managed");
	sett_options o;
	small_options(&o);
	o.managed = 1;
	sett_db *db = open_db(dir, &o);
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(db, 1, &t), -EINVAL);
	ck_assert_int_eq(sett_put(db, V("a"), V("b")), -EINVAL);

	/* Versions of the caller's, out of order. */
	managed_write_all(db, 5, 10, "v10");
	managed_write_all(db, 1, 30, "v30");
	managed_write_all(db, 1, 20, "v20");
	assert_get(db, "m00007", 9, NULL);
	assert_get(db, "m00007", 10, "v10");
	assert_get(db, "m00007", 19, "v10");
	assert_get(db, "m00007", 20, "v20");
	assert_get(db, "m00007", 29, "v20");
	assert_get(db, "m00007", 30, "v30");
	assert_get(db, "m00007", 1000, "v30");
	/* A transaction reads at its version, ahead of every commit too. */
	ck_assert_int_eq(sett_txn_begin_at(db, 0, 25, &t), 0);
	char key[] = "m00042";
	void *v;
	size_t n;
	uint64_t ver;
	ck_assert_int_eq(sett_txn_get_ex(t, V(key), &v, &n, &ver, NULL), 0);
	ck_assert(n == 3 && memcmp(v, "v20", 3) == 0);
	ck_assert_uint_eq(ver, 20);
	free(v);
	sett_txn_discard(t);
	ck_assert_int_eq(sett_txn_begin_at(db, 1, 40, &t), 0);
	ck_assert_int_eq(sett_txn_commit_at(t, 40, 0), -EINVAL); /* not after its reads */
	sett_txn_discard(t);

	/* Compaction keeps every version until the discard version says. */
	ck_assert_int_eq(sett_flatten(db), 0);
	ck_assert_uint_ge(table_entries(db), 3 * MKEYS);
	assert_get(db, "m00007", 10, "v10");
	managed_write_all(db, 30, 40, "v40");
	ck_assert_int_eq(sett_set_discard_version(db, 25), 0);
	ck_assert_int_eq(sett_flatten(db), 0);
	/* v10 is gone; v20 (what a read at 25 sees), v30 and v40 stay. */
	ck_assert_uint_le(table_entries(db), 3 * MKEYS);
	assert_get(db, "m00007", 25, "v20");
	assert_get(db, "m00007", 30, "v30");
	assert_get(db, "m00007", 40, "v40");
	assert_get(db, "m00007", 10, NULL);
	ck_assert_int_eq(sett_close(db), 0);

	/* In normal mode the discard version is not the caller's. */
	o.managed = 0;
	db = open_db(dir, &o);
	ck_assert_int_eq(sett_set_discard_version(db, 5), -EINVAL);
	ck_assert_int_eq(sett_txn_begin_at(db, 1, 5, &t), -EINVAL);
	assert_get(db, "m00007", 0, "v40");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Managed mode commits a version below one already flushed: a point read
 * must still return the newest version (what an iterator shows), not the
 * memtable's older one found first.
 */
START_TEST(test_managed_older_commit_after_flush)
{
	char *dir = tu_tmpdir("txn-managed-order");
	sett_options o;
	small_options(&o);
	o.managed = 1;
	o.mem_table_size = 8u << 20; /* v20 stays in the memtable */
	o.num_compactors = 0;        /* and v30 in its own table */
	sett_db *db = open_db(dir, &o);
	managed_write_all(db, 1, 30, "v30");
	ck_assert_int_eq(sett_flush(db), 0);
	managed_write_all(db, 1, 20, "v20");
	assert_get(db, "m00007", 1000, "v30");
	assert_get(db, "m00007", 29, "v20");
	ck_assert_int_eq(sett_flush(db), 0); /* newer L0 table, older versions */
	managed_write_all(db, 1, 10, "v10");
	assert_get(db, "m00007", 1000, "v30");
	assert_get(db, "m00007", 25, "v20");
	assert_get(db, "m00007", 15, "v10");
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- subscriptions ---- */

typedef struct writer_arg {
	sett_db *db;
	int n;
} writer_arg;

static void *sub_writer(void *arg)
{
	writer_arg *w = arg;
	char k[16], v[16];
	for (int i = 0; i < w->n; i++) {
		sett_batch *b;
		ck_assert_int_eq(sett_batch_new(&b), 0);
		snprintf(k, sizeof k, "a/%06d", i);
		snprintf(v, sizeof v, "%d", i);
		ck_assert_int_eq(sett_batch_set(b, V(k), V(v)), 0);
		snprintf(k, sizeof k, "b/%06d", i);
		ck_assert_int_eq(sett_batch_set(b, V(k), V(v)), 0);
		if (i % 10 == 0) {
			snprintf(k, sizeof k, "c/%06d", i);
			ck_assert_int_eq(sett_batch_delete(b, V(k)), 0);
		}
		ck_assert_int_eq(sett_write(w->db, b, 0, NULL), 0);
		sett_batch_free(b);
	}
	return NULL;
}

START_TEST(test_subscribe)
{
	char *dir = tu_tmpdir("txn-sub");
	sett_db *db = open_db(dir, NULL);
	ck_assert_int_eq(sett_put(db, V("a/before"), V("x")), 0);
	sett_val pa[2] = { V("a/"), V("c/") };
	sett_sub *sa, *stall, *all;
	ck_assert_int_eq(sett_subscribe(db, pa, 2, NULL, &sa), 0);
	sett_sub_options so;
	sett_sub_options_init(&so);
	so.max_entries = 100;
	ck_assert_int_eq(sett_subscribe(db, NULL, 0, &so, &stall), 0);
	ck_assert_int_eq(sett_subscribe(db, NULL, 0, NULL, &all), 0);

	const int N = 2000;
	writer_arg w = { db, N };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, sub_writer, &w), 0);
	/* Read `sa` while the writer runs; `stall` is never read. */
	int got_a = 0, got_c = 0;
	uint64_t last = 0;
	while (got_a < N) {
		const sett_sub_entry *e;
		int n = sett_sub_next(sa, &e, -1);
		ck_assert_int_gt(n, 0);
		for (int i = 0; i < n; i++) {
			ck_assert_uint_ge(e[i].version, last);
			last = e[i].version;
			char want[16];
			if (e[i].key.size >= 2 && memcmp(e[i].key.data, "c/", 2) == 0) {
				ck_assert(e[i].deleted);
				snprintf(want, sizeof want, "c/%06d", got_c * 10);
				ck_assert(e[i].key.size == strlen(want) &&
					  memcmp(e[i].key.data, want, e[i].key.size) == 0);
				got_c++;
				continue;
			}
			snprintf(want, sizeof want, "a/%06d", got_a);
			ck_assert_msg(e[i].key.size == strlen(want) &&
				      memcmp(e[i].key.data, want, e[i].key.size) == 0,
				      "entry %d: %.*s, want %s", got_a, (int)e[i].key.size,
				      (const char *)e[i].key.data, want);
			ck_assert(!e[i].deleted);
			char val[16];
			snprintf(val, sizeof val, "%d", got_a);
			ck_assert(e[i].value.size == strlen(val) &&
				  memcmp(e[i].value.data, val, e[i].value.size) == 0);
			got_a++;
		}
	}
	pthread_join(th, NULL);
	ck_assert_int_eq(got_c, N / 10);
	const sett_sub_entry *e;
	ck_assert_int_eq(sett_sub_next(sa, &e, 0), 0); /* nothing more */

	/* The stalled one: what fit, then cut off; the writer went on. */
	int queued = 0, r;
	while ((r = sett_sub_next(stall, &e, 0)) > 0) {
		for (int i = 0; i < r; i++)
			ck_assert_uint_le(e[i].version, sett_current_version(db));
		queued += r;
	}
	ck_assert_int_eq(r, SETT_ESUBBEHIND);
	ck_assert_int_le(queued, 100);
	ck_assert_int_gt(queued, 90); /* batches of 2 or 3 fill 100 but for < 3 */
	ck_assert_int_eq(sett_sub_next(stall, &e, 0), SETT_ESUBBEHIND);
	/* The unbounded one got everything, in order. */
	int total = 0;
	last = 0;
	while ((r = sett_sub_next(all, &e, 0)) > 0) {
		for (int i = 0; i < r; i++) {
			ck_assert_uint_ge(e[i].version, last);
			last = e[i].version;
		}
		total += r;
	}
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(total, 2 * N + N / 10);
	sett_sub_close(sa);
	sett_sub_close(stall);
	/* Transactions publish too, at their commit version. */
	sett_txn *t;
	ck_assert_int_eq(sett_txn_begin(db, 1, &t), 0);
	txn_setnum(t, "z", 1);
	uint64_t cv;
	ck_assert_int_eq(sett_txn_commit(t, 0, &cv), 0);
	sett_txn_discard(t);
	ck_assert_int_eq(sett_sub_next(all, &e, 0), 1);
	ck_assert_uint_eq(e[0].version, cv);
	sett_sub_close(all);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- sequences ---- */

START_TEST(test_sequence)
{
	char *dir = tu_tmpdir("txn-seq");
	sett_db *db = open_db(dir, NULL);
	sett_sequence *s;
	ck_assert_int_eq(sett_sequence_get(db, V("seq"), 0, &s), -EINVAL);
	ck_assert_int_eq(sett_sequence_get(db, V("seq"), 10, &s), 0);
	uint64_t x, want = 0;
	for (int i = 0; i < 25; i++, want++) {
		ck_assert_int_eq(sett_sequence_next(s, &x), 0);
		ck_assert_uint_eq(x, want);
	}
	/* The key holds the lease's upper bound; release gives the rest back. */
	void *v;
	size_t n;
	ck_assert_int_eq(sett_get(db, V("seq"), 0, &v, &n), 0);
	ck_assert_uint_eq(n, 8);
	ck_assert_uint_eq(get_be64(v), 30);
	free(v);
	ck_assert_int_eq(sett_sequence_release(s), 0);
	ck_assert_int_eq(sett_close(db), 0);

	db = open_db(dir, NULL);
	ck_assert_int_eq(sett_sequence_get(db, V("seq"), 10, &s), 0);
	ck_assert_int_eq(sett_sequence_next(s, &x), 0);
	ck_assert_uint_eq(x, want++);
	/* Two sequences on one key hand out disjoint numbers. */
	sett_sequence *s2;
	ck_assert_int_eq(sett_sequence_get(db, V("seq"), 10, &s2), 0);
	ck_assert_int_eq(sett_sequence_next(s2, &x), 0);
	ck_assert_uint_eq(x, want + 9);
	ck_assert_int_eq(sett_sequence_release(s2), 0);
	ck_assert_int_eq(sett_sequence_release(s), 0); /* s2 leased past it: no give-back */
	ck_assert_int_eq(sett_close(db), 0);

	/* A crash never repeats a number. */
	int fd[2];
	ck_assert_int_eq(pipe(fd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fd[0]);
		sett_db *cdb;
		if (sett_open(dir, NULL, &cdb))
			_exit(2);
		sett_sequence *cs;
		if (sett_sequence_get(cdb, V("seq"), 7, &cs))
			_exit(3);
		for (int i = 0; i < 12; i++) {
			uint64_t y;
			if (sett_sequence_next(cs, &y))
				_exit(4);
			if (write(fd[1], &y, sizeof y) != sizeof y)
				_exit(5);
		}
		kill(getpid(), SIGKILL);
		_exit(6);
	}
	close(fd[1]);
	uint64_t y, maxseen = 0;
	int cnt = 0;
	while (read(fd[0], &y, sizeof y) == sizeof y) {
		maxseen = y > maxseen ? y : maxseen;
		cnt++;
	}
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(cnt, 12);
	db = open_db(dir, NULL);
	ck_assert_int_eq(sett_sequence_get(db, V("seq"), 10, &s), 0);
	ck_assert_int_eq(sett_sequence_next(s, &x), 0);
	ck_assert_uint_gt(x, maxseen);
	ck_assert_int_eq(sett_sequence_release(s), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- all versions ---- */

START_TEST(test_all_versions)
{
	char *dir = tu_tmpdir("txn-allv");
	sett_db *db = open_db(dir, NULL);
	uint64_t v1, v2, v3, v4;
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	ck_assert_int_eq(sett_batch_set(b, V("a"), V("a1")), 0);
	ck_assert_int_eq(sett_batch_set(b, V("b"), V("b1")), 0);
	ck_assert_int_eq(sett_write(db, b, 0, &v1), 0);
	sett_batch_clear(b);
	ck_assert_int_eq(sett_batch_set(b, V("a"), V("a2")), 0);
	ck_assert_int_eq(sett_write(db, b, 0, &v2), 0);
	/* a reader at v1 keeps a1 through the flush (which drops what no reader sees) */
	sett_iter_options po;
	sett_iter_options_init(&po);
	po.read_version = v1;
	sett_iter *pin;
	ck_assert_int_eq(sett_iter_new(db, &po, &pin), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	sett_iter_free(pin);
	sett_batch_clear(b);
	ck_assert_int_eq(sett_batch_delete(b, V("a")), 0);
	ck_assert_int_eq(sett_write(db, b, 0, &v3), 0);
	sett_batch_clear(b);
	ck_assert_int_eq(sett_batch_set(b, V("a"), V("a4")), 0);
	ck_assert_int_eq(sett_write(db, b, 0, &v4), 0);
	sett_batch_free(b);

	sett_iter_options io;
	sett_iter_options_init(&io);
	io.all_versions = 1;
	sett_iter *it;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	char got[256] = "";
	size_t len = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v = { 0, NULL };
		if (!sett_iter_deleted(it))
			ck_assert_int_eq(sett_iter_value(it, &v), 0);
		len += (size_t)snprintf(got + len, sizeof got - len, "%s%.*s@%" PRIu64 "=%.*s",
					len ? " " : "", (int)k.size, (const char *)k.data,
					sett_iter_version(it), sett_iter_deleted(it) ? 3 : (int)v.size,
					sett_iter_deleted(it) ? "DEL" : (const char *)v.data);
	}
	ck_assert_int_eq(sett_iter_error(it), 0);
	char want[256];
	snprintf(want, sizeof want,
		 "a@%" PRIu64 "=a4 a@%" PRIu64 "=DEL a@%" PRIu64 "=a2 a@%" PRIu64 "=a1 b@%" PRIu64 "=b1",
		 v4, v3, v2, v1, v1);
	ck_assert_str_eq(got, want);
	sett_iter_free(it);
	/* At a read version, from a seek. */
	io.read_version = v2;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), 0);
	ck_assert_int_eq(sett_iter_seek(it, V("a")), 0);
	ck_assert(sett_iter_valid(it));
	ck_assert_uint_eq(sett_iter_version(it), v2);
	ck_assert_int_eq(sett_iter_next(it), 0);
	ck_assert_uint_eq(sett_iter_version(it), v1);
	ck_assert_int_eq(sett_iter_next(it), 0);
	ck_assert_int_eq(memcmp(sett_iter_key(it).data, "b", 1), 0);
	ck_assert_int_eq(sett_iter_next(it), 0);
	ck_assert(!sett_iter_valid(it));
	sett_iter_free(it);
	io.reverse = 1;
	ck_assert_int_eq(sett_iter_new(db, &io, &it), -EINVAL);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- the oracle's tables against a model ---- */

START_TEST(test_oracle_model)
{
	oracle o;
	ck_assert_int_eq(oracle_init(&o), 0);
	enum { FPS = 3000 };
	static uint64_t model[FPS]; /* newest version recorded per fingerprint */
	uint64_t rs = 7, version = 0, pruned = 0;
	for (int round = 0; round < 40; round++) {
		/* A few thousand commits, few keys each, some keys hot. */
		for (int c = 0; c < 200; c++) {
			version++;
			int nk = 1 + (int)(tu_rand(&rs) % 4);
			for (int k = 0; k < nk; k++) {
				uint64_t f = tu_rand(&rs) % (c % 3 ? FPS : 50);
				/* Fingerprints in a narrow range collide in the slots. */
				ck_assert_int_eq(oracle_record(&o, f * 1024, version), 0);
				model[f] = version;
			}
		}
		/* Prune at a watermark that moves on (sometimes not at all). */
		uint64_t w = version - tu_rand(&rs) % 300;
		if (tu_rand(&rs) % 4 && w > pruned)
			pruned = w;
		oracle_prune(&o, pruned);
		size_t live = 0;
		for (uint64_t f = 0; f < FPS; f++) {
			if (model[f] <= pruned)
				continue;
			live++;
			uint64_t fp = f * 1024;
			/* A reader at the version just below conflicts, at it not. */
			ck_assert_int_eq(oracle_conflicts(&o, &fp, 1, model[f] - 1), 1);
			ck_assert_int_eq(oracle_conflicts(&o, &fp, 1, model[f]), 0);
		}
		ck_assert_uint_eq(oracle_count(&o), live);
	}
	oracle_prune(&o, version);
	ck_assert_uint_eq(oracle_count(&o), 0);
	/* A commit that was not recorded conflicts with every older reader. */
	uint64_t fp = 99;
	oracle_skip(&o, version + 5);
	ck_assert_int_eq(oracle_conflicts(&o, &fp, 1, version + 4), 1);
	ck_assert_int_eq(oracle_conflicts(&o, &fp, 1, version + 5), 0);
	ck_assert_int_eq(oracle_conflicts(&o, NULL, 0, 0), 0);
	oracle_destroy(&o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("txn");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_oracle_model);
	tcase_add_test(tc, test_write_skew);
	tcase_add_test(tc, test_read_your_writes);
	tcase_add_test(tc, test_discard_and_snapshot);
	tcase_add_test(tc, test_txn_too_big);
	tcase_add_test(tc, test_conflict_records_bounded);
	tcase_add_test(tc, test_bank_invariant);
	tcase_add_test(tc, test_managed_visibility_and_discard);
	tcase_add_test(tc, test_managed_older_commit_after_flush);
	tcase_add_test(tc, test_subscribe);
	tcase_add_test(tc, test_sequence);
	tcase_add_test(tc, test_all_versions);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
