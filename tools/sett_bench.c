/*
 * sett_bench.c - `sett bench`: the engine workloads of
 * shared/bench/WORKLOADS.md, one JSON object per line on stdout.
 *
 * Keys are 16-byte zero-padded decimals, values incompressible bytes from
 * a fixed seed, writes go through batches, sync_writes is off.  The small
 * and the large workloads use two stores under DIR (small/, large/) because
 * both key sets are the same decimal numbers.  Besides the fields the
 * workload file asks for, each line carries the process's peak RSS and,
 * for writes, the write amplification (bytes written to files / key+value
 * bytes written by the workload).
 *
 * --encrypt runs every workload on encrypted stores (a fixed master key;
 * each line then says "encrypted":true), so the same commands measure what
 * encryption at rest costs.  --cache MB sets every store's block cache
 * (an encrypted table's blocks are read through it, decrypted).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

#define KEY_LEN 16

typedef struct bench {
	char small_dir[4096], large_dir[4096];
	long n_small, n_large;
	size_t small_size, large_size;
	int batch;
	uint64_t seed;
	uint64_t io_base;
} bench;

/* --encrypt: the master key of every store (else NULL) */
static const uint8_t *bench_key;
/* --cache MB: the block cache of every store (0: the engine's default) */
static size_t bench_cache;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void fill(uint64_t *s, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = rnd(s);
		memcpy(p + i, &r, n - i < 8 ? n - i : 8);
	}
}

static long peak_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/*
 * Resident memory now, split into anonymous memory (heap: memtables,
 * caches, indexes) and file-backed pages (mapped tables, which the kernel
 * may drop at any time), from /proc/self/status.
 */
static long max_anon_kb, max_file_kb;

/* Samples them (before a store is closed); the bench reports the maxima. */
static void sample_rss(void)
{
	long anon = -1, file = -1;
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		sscanf(line, "RssAnon: %ld", &anon);
		sscanf(line, "RssFile: %ld", &file);
	}
	if (f)
		fclose(f);
	if (anon > max_anon_kb)
		max_anon_kb = anon;
	if (file > max_file_kb)
		max_file_kb = file;
}

static int close_store(sett_db *db)
{
	sample_rss();
	return sett_close(db);
}

static uint64_t du_total;
static int du_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)p;
	(void)f;
	if (type == FTW_F)
		du_total += (uint64_t)st->st_blocks * 512;
	return 0;
}

static uint64_t disk_usage(const char *dir)
{
	du_total = 0;
	nftw(dir, du_one, 16, FTW_PHYS);
	return du_total;
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return remove(p);
}

static void emit(const char *name, long ops, uint64_t bytes, double secs, const char *extra)
{
	const char *enc = bench_key ? ",\"encrypted\":true" : "";
	if (secs <= 0) {
		/* not a timed workload */
		printf("{\"engine\":\"sett\",\"workload\":\"%s\"%s,\"bytes\":%llu,"
		       "\"peak_rss_kb\":%ld%s}\n",
		       name, enc, (unsigned long long)bytes, peak_rss_kb(), extra ? extra : "");
		fflush(stdout);
		return;
	}
	printf("{\"engine\":\"sett\",\"workload\":\"%s\"%s,\"ops\":%ld,\"bytes\":%llu,"
	       "\"seconds\":%.3f,\"ops_per_s\":%.0f,\"mb_per_s\":%.1f,\"peak_rss_kb\":%ld,"
	       "\"max_rss_anon_kb\":%ld,\"max_rss_file_kb\":%ld%s}\n",
	       name, enc, ops, (unsigned long long)bytes, secs, (double)ops / secs,
	       (double)bytes / 1e6 / secs, peak_rss_kb(), max_anon_kb, max_file_kb, extra ? extra : "");
	fflush(stdout);
}

static int open_store(const char *dir, sett_db **db)
{
	sett_options o;
	sett_options_init(&o);
	o.gc_discard_ratio = 0; /* GC runs only where a workload asks for it */
	o.encryption_key = bench_key;
	if (bench_cache)
		o.block_cache_size = bench_cache;
	int r = sett_open(dir, &o, db);
	if (r)
		fprintf(stderr, "sett bench: open %s: %s\n", dir, sett_strerror(r));
	return r;
}

static void key_of(char *k, long i)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%016ld", i);
	memcpy(k, tmp, KEY_LEN);
}

/* Writes keys order[0..n) with values of `size` bytes; returns 0 or error. */
static int fill_keys(sett_db *db, const long *order, long n, size_t size, int batch, uint64_t seed)
{
	unsigned char *val = malloc(size);
	sett_batch *b;
	int r = val ? sett_batch_new(&b) : -ENOMEM;
	if (r) {
		free(val);
		return r;
	}
	uint64_t s = seed;
	char k[KEY_LEN];
	for (long i = 0; i < n && !r; i++) {
		key_of(k, order ? order[i] : i);
		fill(&s, val, size);
		sett_val kv = { KEY_LEN, k }, vv = { size, val };
		r = sett_batch_set(b, kv, vv);
		if (!r && ((long)sett_batch_count(b) >= batch || i == n - 1)) {
			r = sett_write(db, b, 0, NULL);
			sett_batch_clear(b);
		}
	}
	sett_batch_free(b);
	free(val);
	return r;
}

/* Bytes this process has written to any file of a store. */
static uint64_t io_bytes(sett_db *db)
{
	sett_stats st;
	return sett_get_stats(db, &st) ? 0 : st.bytes_written_disk;
}

static void write_amp(char *out, size_t n, uint64_t written, uint64_t user_bytes)
{
	uint64_t w = written;
	snprintf(out, n, ",\"write_amp\":%.2f", user_bytes ? (double)w / (double)user_bytes : 0.0);
}

static long *shuffled(long n, uint64_t seed)
{
	long *a = malloc((size_t)n * sizeof *a);
	if (!a)
		return NULL;
	for (long i = 0; i < n; i++)
		a[i] = i;
	uint64_t s = seed;
	for (long i = n - 1; i > 0; i--) {
		long j = (long)(rnd(&s) % (uint64_t)(i + 1));
		long t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
	return a;
}

static int run_fill(bench *bn, const char *name)
{
	int small = !strcmp(name, "fillseq_small");
	sett_db *db;
	const char *dir = small ? bn->small_dir : bn->large_dir;
	int r = open_store(dir, &db);
	if (r)
		return r;
	long n = small ? bn->n_small : bn->n_large;
	size_t size = small ? bn->small_size : bn->large_size;
	long *order = small ? NULL : shuffled(n, bn->seed + 1);
	uint64_t io0 = io_bytes(db);
	double t0 = now();
	r = fill_keys(db, order, n, size, small ? bn->batch : 100, bn->seed);
	if (!r)
		r = sett_sync(db);
	double t1 = now();
	free(order);
	/* Write amplification counts what the close flushes too. */
	sett_flush(db);
	uint64_t written = io_bytes(db) - io0;
	int c = close_store(db);
	if (r || c)
		return r ? r : c;
	char extra[64];
	uint64_t bytes = (uint64_t)n * (KEY_LEN + size);
	write_amp(extra, sizeof extra, written, bytes);
	emit(name, n, bytes, t1 - t0, extra);
	return 0;
}

static int run_read(bench *bn, const char *name)
{
	int small = !strcmp(name, "readrandom_small");
	sett_db *db;
	int r = open_store(small ? bn->small_dir : bn->large_dir, &db);
	if (r)
		return r;
	long n = small ? bn->n_small : bn->n_large;
	size_t size = small ? bn->small_size : bn->large_size;
	uint64_t s = bn->seed + 7, bytes = 0;
	char k[KEY_LEN];
	long found = 0;
	double t0 = now();
	for (long i = 0; i < n; i++) {
		key_of(k, (long)(rnd(&s) % (uint64_t)n));
		sett_val kv = { KEY_LEN, k };
		void *v;
		size_t vn;
		r = sett_get(db, kv, 0, &v, &vn);
		if (r) {
			fprintf(stderr, "sett bench: %s: get %.16s: %s\n", name, k, sett_strerror(r));
			break;
		}
		found += vn == size;
		bytes += KEY_LEN + vn;
		free(v);
	}
	double t1 = now();
	close_store(db);
	if (r)
		return r;
	if (found != n) {
		fprintf(stderr, "sett bench: %s: %ld values of the wrong size\n", name, n - found);
		return SETT_ECORRUPT;
	}
	emit(name, n, bytes, t1 - t0, NULL);
	return 0;
}

static int run_scan(bench *bn)
{
	sett_db *db;
	int r = open_store(bn->small_dir, &db);
	if (r)
		return r;
	sett_iter *it;
	long n = 0;
	uint64_t bytes = 0;
	double t0 = now();
	if ((r = sett_iter_new(db, NULL, &it)) == 0) {
		for (r = sett_iter_rewind(it); !r && sett_iter_valid(it); r = sett_iter_next(it)) {
			sett_val v;
			if ((r = sett_iter_value(it, &v)))
				break;
			bytes += sett_iter_key(it).size + v.size;
			n++;
		}
		sett_iter_free(it);
	}
	double t1 = now();
	close_store(db);
	if (r)
		return r;
	if (n != bn->n_small) {
		fprintf(stderr, "sett bench: scan_small: saw %ld keys, expected %ld\n", n, bn->n_small);
		return SETT_ECORRUPT;
	}
	emit("scan_small", n, bytes, t1 - t0, NULL);
	return 0;
}

static int run_overwrite_gc(bench *bn)
{
	sett_db *db;
	int r = open_store(bn->large_dir, &db);
	if (r)
		return r;
	long *order = shuffled(bn->n_large, bn->seed + 3);
	uint64_t io0 = io_bytes(db);
	double t0 = now();
	r = fill_keys(db, order, bn->n_large, bn->large_size, 100, bn->seed + 11);
	if (!r)
		r = sett_sync(db);
	double t1 = now();
	free(order);
	uint64_t before = disk_usage(bn->large_dir);
	double g0 = now();
	int passes = 0;
	while (!r) {
		int g = sett_gc(db, 0.5);
		if (g == SETT_ENOREWRITE)
			break;
		if (g) {
			r = g;
			break;
		}
		passes++;
	}
	double g1 = now();
	uint64_t after = disk_usage(bn->large_dir);
	uint64_t written = io_bytes(db) - io0;
	int c = close_store(db);
	if (r || c)
		return r ? r : c;
	/* every key was overwritten once: the live data is one copy of it */
	uint64_t live = (uint64_t)bn->n_large * (KEY_LEN + bn->large_size);
	char extra[512];
	int k = snprintf(extra, sizeof extra,
			 ",\"disk_before_gc\":%llu,\"disk_after_gc\":%llu,\"live_bytes\":%llu,"
			 "\"space_ratio\":%.3f,\"gc_seconds\":%.3f,\"gc_passes\":%d",
			 (unsigned long long)before, (unsigned long long)after,
			 (unsigned long long)live, (double)after / (double)live, g1 - g0, passes);
	write_amp(extra + k, sizeof extra - (size_t)k, written, live);
	emit("overwrite_large_then_gc", bn->n_large, live, t1 - t0, extra);
	return 0;
}

static int run_disk_usage(bench *bn)
{
	uint64_t s = disk_usage(bn->small_dir), l = disk_usage(bn->large_dir);
	char extra[128];
	snprintf(extra, sizeof extra, ",\"small_bytes\":%llu,\"large_bytes\":%llu",
		 (unsigned long long)s, (unsigned long long)l);
	emit("disk_usage", 0, s + l, 0, extra);
	return 0;
}

/*
 * put_latency (not one of the shared workloads; run it by name): 20,000
 * single-key sett_put calls of 100 bytes, one at a time, so each is a whole
 * commit; the figure of interest is the time per call.
 */
static int run_put_latency(bench *bn)
{
	sett_db *db;
	int r = open_store(bn->small_dir, &db);
	if (r)
		return r;
	char k[KEY_LEN];
	uint8_t v[100] = { 0 };
	const long n = 20000;
	double t0 = now();
	for (long i = 0; i < n && !r; i++) {
		key_of(k, i);
		sett_val kv = { KEY_LEN, k }, vv = { sizeof v, v };
		r = sett_put(db, kv, vv);
	}
	double t1 = now();
	int c = close_store(db);
	if (r || c)
		return r ? r : c;
	char extra[64];
	snprintf(extra, sizeof extra, ",\"us_per_op\":%.2f", (t1 - t0) / (double)n * 1e6);
	emit("put_latency", n, (uint64_t)n * (KEY_LEN + sizeof v), t1 - t0, extra);
	return 0;
}

/*
 * backup_small, backup_large, load_small, load_large (run by name): a full
 * sett_backup of the small or large store (filled first if empty) to
 * DIR/NAME.backup, 4 stream threads; then sett_load of that file into a
 * new store (verify pass, spool, apply, sync).  ops are entries, bytes the
 * stream's size.
 */
static int bk_write(void *arg, const void *p, size_t n)
{
	return fwrite(p, 1, n, arg) == n ? 0 : -EIO;
}

static long bk_read(void *arg, void *p, size_t n)
{
	size_t k = fread(p, 1, n, arg);
	return k || !ferror(arg) ? (long)k : -EIO;
}

static int run_backup_load(bench *bn, const char *name)
{
	int small = strstr(name, "small") != NULL, load = !strncmp(name, "load", 4);
	const char *dir = small ? bn->small_dir : bn->large_dir;
	char file[4200], target[4200];
	snprintf(file, sizeof file, "%s.backup", dir);
	snprintf(target, sizeof target, "%s-loaded", dir);
	sett_db *db;
	int r;
	if (!load) {
		if ((r = open_store(dir, &db)))
			return r;
		if (sett_current_version(db) == 0) {
			long n = small ? bn->n_small : bn->n_large;
			long *order = small ? NULL : shuffled(n, bn->seed + 1);
			r = fill_keys(db, order, n, small ? bn->small_size : bn->large_size,
				      small ? bn->batch : 100, bn->seed);
			free(order);
			if (r) {
				close_store(db);
				return r;
			}
		}
		FILE *f = fopen(file, "wb");
		if (!f) {
			close_store(db);
			return -errno;
		}
		sett_backup_result res;
		double t0 = now();
		r = sett_backup(db, NULL, bk_write, f, &res);
		if (fflush(f) && !r)
			r = -EIO;
		double t1 = now();
		fclose(f);
		int c = close_store(db);
		if (r || c)
			return r ? r : c;
		emit(name, (long)res.records, res.bytes, t1 - t0, NULL);
		return 0;
	}
	FILE *f = fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "sett bench: %s: no %s (run backup_%s first)\n", name, file,
			small ? "small" : "large");
		return -ENOENT;
	}
	nftw(target, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if ((r = open_store(target, &db))) {
		fclose(f);
		return r;
	}
	struct stat st;
	uint64_t bytes = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size : 0;
	sett_load_result res;
	double t0 = now();
	r = sett_load(db, bk_read, f, NULL, NULL, &res);
	double t1 = now();
	fclose(f);
	int c = close_store(db);
	nftw(target, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (r || c)
		return r ? r : c;
	emit(name, (long)res.applied, bytes, t1 - t0, NULL);
	return 0;
}

/*
 * txn_uncontended / txn_contended (run them by name): read-write
 * transactions from TXN_THREADS threads over a store of 100,000 keys of
 * 100 bytes; each transaction reads two keys and writes both (a
 * read-modify-write, as a transfer).  Uncontended: each thread has its
 * own quarter of the keys, so no transaction conflicts.  Contended: every
 * thread picks from the same 16 keys; a conflicting transaction is retried
 * until it commits.  Reports commits per second and the conflict rate
 * (failed commits / commit attempts).
 */
#define TXN_THREADS 4

typedef struct txn_job {
	sett_db *db;
	long txns, keys, base; /* this thread's key range: base .. base+keys */
	uint64_t seed;
	long conflicts;
	int err;
} txn_job;

static void *txn_thread(void *arg)
{
	txn_job *j = arg;
	uint8_t v[100];
	char k1[KEY_LEN], k2[KEY_LEN];
	for (long i = 0; i < j->txns && !j->err; i++) {
		long a = j->base + (long)(rnd(&j->seed) % (uint64_t)j->keys);
		long b = j->base + (long)(rnd(&j->seed) % (uint64_t)(j->keys - 1));
		if (b >= a)
			b++;
		key_of(k1, a);
		key_of(k2, b);
		for (;;) {
			sett_txn *t;
			int r = sett_txn_begin(j->db, 1, &t);
			if (r) {
				j->err = r;
				break;
			}
			sett_val kv1 = { KEY_LEN, k1 }, kv2 = { KEY_LEN, k2 }, vv = { sizeof v, v };
			void *x;
			size_t n;
			for (int q = 0; q < 2 && !r; q++) {
				r = sett_txn_get(t, q ? kv2 : kv1, &x, &n);
				if (!r)
					free(x);
				else if (r == SETT_ENOTFOUND)
					r = 0;
			}
			fill(&j->seed, v, sizeof v);
			if (!r)
				r = sett_txn_set(t, kv1, vv);
			if (!r)
				r = sett_txn_set(t, kv2, vv);
			if (!r)
				r = sett_txn_commit(t, 0, NULL);
			sett_txn_discard(t);
			if (r == SETT_ECONFLICT) {
				j->conflicts++;
				continue;
			}
			j->err = r;
			break;
		}
	}
	return NULL;
}

static int run_txn(bench *bn, const char *name)
{
	int contended = !strcmp(name, "txn_contended");
	char dir[4200];
	snprintf(dir, sizeof dir, "%s-txn", bn->small_dir);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	sett_db *db;
	int r = open_store(dir, &db);
	if (r)
		return r;
	long nkeys = bn->n_small / 10 < 1000 ? 1000 : bn->n_small / 10;
	long *order = malloc((size_t)nkeys * sizeof *order);
	if (!order) {
		close_store(db);
		return -ENOMEM;
	}
	for (long i = 0; i < nkeys; i++)
		order[i] = i;
	r = fill_keys(db, order, nkeys, bn->small_size, bn->batch, bn->seed);
	free(order);
	long per = nkeys / 2 / TXN_THREADS; /* transactions per thread */
	txn_job jobs[TXN_THREADS];
	pthread_t th[TXN_THREADS];
	for (int i = 0; i < TXN_THREADS; i++)
		jobs[i] = (txn_job){ .db = db, .txns = per,
				     .keys = contended ? 16 : nkeys / TXN_THREADS,
				     .base = contended ? 0 : i * (nkeys / TXN_THREADS),
				     .seed = bn->seed + 17 * (uint64_t)i + 1 };
	double t0 = now();
	int started = 0;
	for (int i = 0; !r && i < TXN_THREADS; i++, started++)
		if (pthread_create(&th[i], NULL, txn_thread, &jobs[i]))
			r = -EAGAIN;
	long conflicts = 0;
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		conflicts += jobs[i].conflicts;
		if (!r)
			r = jobs[i].err;
	}
	double t1 = now();
	int c = close_store(db);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (r || c)
		return r ? r : c;
	long commits = per * TXN_THREADS;
	char extra[160];
	snprintf(extra, sizeof extra,
		 ",\"threads\":%d,\"conflicts\":%ld,\"conflict_rate\":%.4f,\"us_per_commit\":%.2f",
		 TXN_THREADS, conflicts, (double)conflicts / (double)(commits + conflicts),
		 (t1 - t0) / (double)commits * 1e6);
	emit(name, commits, (uint64_t)commits * 2 * (KEY_LEN + bn->small_size), t1 - t0, extra);
	return 0;
}

/*
 * rewrite_sustained (run by name): the same 4,096 keys of 4 KiB values (a
 * 16 MiB range, in the value log) rewritten for SETT_BENCH_SECONDS (60)
 * seconds.  One operation is a batch of 16 random keys of a 256-key
 * window followed by a scan of that window (a file's chunks rewritten
 * and read back).  One line per 10 s interval with that interval's ops/s:
 * with cost that does not grow with the keys' history they stay flat.
 */
static int run_rewrite(bench *bn)
{
	char dir[4200];
	mkdir(bn->small_dir, 0755);
	snprintf(dir, sizeof dir, "%s/rewrite", bn->small_dir);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	sett_db *db;
	int r = open_store(dir, &db);
	if (r)
		return r;
	const char *env = getenv("SETT_BENCH_SECONDS");
	double secs = env ? atof(env) : 60, iv = 10;
	const long nkeys = 4096, window = 256, per_batch = 16;
	static uint8_t v[4096];
	uint64_t rng = bn->seed;
	char k[KEY_LEN];
	sett_batch *b;
	if ((r = sett_batch_new(&b))) {
		close_store(db);
		return r;
	}
	for (long i = 0; i < nkeys && !r; i += per_batch) {
		sett_batch_clear(b);
		for (long j = i; j < i + per_batch && !r; j++) {
			key_of(k, j);
			sett_val kv = { KEY_LEN, k }, vv = { sizeof v, v };
			r = sett_batch_set(b, kv, vv);
		}
		if (!r)
			r = sett_write(db, b, 0, NULL);
	}
	double t0 = now(), tiv = t0;
	long ops = 0, ivops = 0, scanned = 0;
	int interval = 0;
	while (!r) {
		long base = (long)(rnd(&rng) % (uint64_t)(nkeys / window)) * window;
		sett_batch_clear(b);
		for (long j = 0; j < per_batch && !r; j++) {
			uint64_t x = rnd(&rng);
			key_of(k, base + (long)(x % (uint64_t)window));
			memcpy(v, &x, sizeof x);
			sett_val kv = { KEY_LEN, k }, vv = { sizeof v, v };
			r = sett_batch_set(b, kv, vv);
		}
		if (!r)
			r = sett_write(db, b, 0, NULL);
		sett_iter *it = NULL;
		if (!r) {
			sett_iter_options io;
			sett_iter_options_init(&io);
			io.key_only = 1;
			r = sett_iter_new(db, &io, &it);
		}
		if (!r) {
			key_of(k, base);
			sett_val kv = { KEY_LEN, k };
			long n = 0;
			for (sett_iter_seek(it, kv); sett_iter_valid(it) && n < window; sett_iter_next(it))
				n++;
			r = sett_iter_error(it);
			scanned += n;
			sett_iter_free(it);
		}
		ops++;
		ivops++;
		double t = now();
		if (t - tiv >= iv || t - t0 >= secs) {
			char name[48], extra[64];
			snprintf(name, sizeof name, "rewrite_sustained_%03d", ++interval);
			snprintf(extra, sizeof extra, ",\"t\":%.0f", t - t0);
			emit(name, ivops, (uint64_t)ivops * per_batch * sizeof v, t - tiv, extra);
			tiv = t;
			ivops = 0;
			if (t - t0 >= secs)
				break;
		}
	}
	sett_batch_free(b);
	int c = close_store(db);
	if (!r && scanned < ops * window)
		r = SETT_ECORRUPT; /* a scan missed keys */
	return r ? r : c;
}

/*
 * put_during_gc (run by name): the cost of value-log GC to the writes that
 * go on meanwhile.  The large store is filled, then a random half of its
 * keys is written again (about half of every file turns to garbage, so
 * GC must move the rest); then single-key sett_put calls of 100 bytes,
 * each a commit, with a sett_sync every 100 (a file system's creates and
 * fsyncs), are timed: 20,000 alone, then as many as run while another
 * thread runs sett_gc until it finds nothing (at most 2,000,000).  Reports the median, 99th percentile and largest time
 * per call of both.
 */
typedef struct gc_thread_arg {
	sett_db *db;
	int done, rc;
	double seconds;
} gc_thread_arg;

static void *gc_thread(void *p)
{
	gc_thread_arg *a = p;
	double t0 = now();
	int g;
	while ((g = sett_gc(a->db, 0.5)) == 0)
		;
	a->rc = g == SETT_ENOREWRITE ? 0 : g;
	a->seconds = now() - t0;
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* n puts from key number `first`, each call's time in us[]; stops early
 * once *stop is set (NULL: never) */
static int timed_puts(sett_db *db, long first, long n, double *us, long *done, const int *stop)
{
	char k[KEY_LEN];
	uint8_t v[100] = { 0 };
	int r = 0;
	long i;
	for (i = 0; i < n && !r && !(stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)); i++) {
		key_of(k, first + i);
		double t = now();
		r = sett_put(db, (sett_val){ KEY_LEN, k }, (sett_val){ sizeof v, v });
		if (!r && i % 100 == 99)
			r = sett_sync(db);
		us[i] = (now() - t) * 1e6;
	}
	*done = i;
	qsort(us, (size_t)i, sizeof *us, cmp_double);
	return r;
}

static int run_put_during_gc(bench *bn)
{
	sett_db *db;
	int r = open_store(bn->large_dir, &db);
	if (r)
		return r;
	long *order = shuffled(bn->n_large, bn->seed + 3);
	r = fill_keys(db, order, bn->n_large, bn->large_size, 100, bn->seed + 11);
	if (!r)
		r = fill_keys(db, order, bn->n_large / 2, bn->large_size, 100, bn->seed + 12);
	free(order);
	if (!r)
		r = sett_sync(db);
	const long n = 20000, nmax = 2000000;
	double *alone = malloc(n * sizeof *alone), *with = malloc(nmax * sizeof *with);
	long na = 0, nw = 0;
	gc_thread_arg ga = { .db = db };
	double t0 = 0, t1 = 0;
	if (!alone || !with)
		r = -ENOMEM;
	double a0 = now();
	if (!r)
		r = timed_puts(db, 10000000, n, alone, &na, NULL);
	double a1 = now();
	if (!r) {
		pthread_t th;
		r = -pthread_create(&th, NULL, gc_thread, &ga);
		if (!r) {
			t0 = now();
			r = timed_puts(db, 20000000, nmax, with, &nw, &ga.done);
			t1 = now();
			pthread_join(th, NULL);
			if (!r)
				r = ga.rc;
		}
	}
	int c = close_store(db);
	if (!r && !c && na && nw) {
		char extra[320];
		snprintf(extra, sizeof extra,
			 ",\"alone_p50_us\":%.1f,\"alone_p99_us\":%.1f,\"alone_max_us\":%.0f,"
			 "\"gc_p50_us\":%.1f,\"gc_p99_us\":%.1f,\"gc_max_us\":%.0f,"
			 "\"alone_ops_per_s\":%.0f,\"gc_seconds\":%.2f",
			 alone[na / 2], alone[na * 99 / 100], alone[na - 1], with[nw / 2],
			 with[nw * 99 / 100], with[nw - 1], (double)na / (a1 - a0), ga.seconds);
		emit("put_during_gc", nw, (uint64_t)nw * (KEY_LEN + 100), t1 - t0, extra);
	}
	free(alone);
	free(with);
	return r ? r : c;
}

static const char *all[] = { "fillseq_small", "fillrandom_large", "readrandom_small",
			      "readrandom_large", "scan_small", "overwrite_large_then_gc",
			      "disk_usage" };

static int run_one(bench *bn, const char *w)
{
	if (!strcmp(w, "fillseq_small") || !strcmp(w, "fillrandom_large"))
		return run_fill(bn, w);
	if (!strcmp(w, "readrandom_small") || !strcmp(w, "readrandom_large"))
		return run_read(bn, w);
	if (!strcmp(w, "scan_small"))
		return run_scan(bn);
	if (!strcmp(w, "overwrite_large_then_gc"))
		return run_overwrite_gc(bn);
	if (!strcmp(w, "disk_usage"))
		return run_disk_usage(bn);
	if (!strcmp(w, "put_latency"))
		return run_put_latency(bn);
	if (!strcmp(w, "put_during_gc"))
		return run_put_during_gc(bn);
	if (!strcmp(w, "rewrite_sustained"))
		return run_rewrite(bn);
	if (!strcmp(w, "backup_small") || !strcmp(w, "backup_large") ||
	    !strcmp(w, "load_small") || !strcmp(w, "load_large"))
		return run_backup_load(bn, w);
	if (!strcmp(w, "txn_uncontended") || !strcmp(w, "txn_contended"))
		return run_txn(bn, w);
	return -EINVAL;
}

int cmd_bench(int argc, char **argv)
{
	const char *workload = NULL, *dir = NULL;
	double scale = 1.0;
	static const uint8_t key[32] = "sett bench: a fixed master key.";
	bench_key = NULL;
	bench_cache = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--workload") && i + 1 < argc)
			workload = argv[++i];
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--scale") && i + 1 < argc)
			scale = atof(argv[++i]);
		else if (!strcmp(argv[i], "--encrypt"))
			bench_key = key;
		else if (!strcmp(argv[i], "--cache") && i + 1 < argc && atol(argv[i + 1]) > 0)
			bench_cache = (size_t)atol(argv[++i]) << 20;
		else
			return 2;
	}
	if (scale <= 0 || scale > 100)
		return 2;
	char tmpl[] = "/tmp/sett-bench-XXXXXX";
	int own = !dir;
	if (own && !(dir = mkdtemp(tmpl))) {
		perror("sett bench: mkdtemp");
		return 1;
	}
	mkdir(dir, 0755);
	bench bn = { .n_small = (long)(1000000 * scale), .n_large = (long)(100000 * scale),
		     .small_size = 100, .large_size = 16384, .batch = 1000,
		     .seed = 0x5e77be9c4ull };
	snprintf(bn.small_dir, sizeof bn.small_dir, "%s/small", dir);
	snprintf(bn.large_dir, sizeof bn.large_dir, "%s/large", dir);
	if (!workload) {
		/* A full run starts from fresh stores. */
		nftw(bn.small_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		nftw(bn.large_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	int r = 0;
	if (workload)
		r = run_one(&bn, workload);
	for (size_t i = 0; !workload && i < sizeof all / sizeof all[0] && !r; i++)
		r = run_one(&bn, all[i]);
	if (workload && r == -EINVAL) {
		fprintf(stderr, "sett bench: unknown workload %s\n", workload);
		return 2;
	}
	if (own)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (r)
		return cli_fail("bench", workload ? workload : "all", r);
	return 0;
}
