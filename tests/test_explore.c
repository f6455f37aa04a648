/*
 * test_explore.c - crash-state exploration of the engine and of the settfs
 * core (tests/explore.c has the persistence model).
 *
 * Each workload runs once on a fresh store with kvengine/util/fileio.c's
 * recorder on, dropping a mark before and after every call it makes
 * (event e: marks 2e+1 and 2e+2).  Then thousands of crash states are drawn
 * from the log: a crash point; unsynced data of every file dropped, kept, or
 * kept in a prefix or a subset of its 4 KiB pieces; unsynced name changes
 * (create, rename, unlink) kept or lost independently, unless a directory
 * fsync ordered them, and independently of the data, as ext4 allows (an
 * unlink durable while the WAL write before it is not).  Each state is
 * opened like a restart after a power cut, and checked:
 *
 *  - the store opens (a legal crash state must never need repair), except
 *    that a crash inside the sett_open that creates the store may leave a
 *    state the open refuses with SETT_ECORRUPT or SETT_EFORMAT and a
 *    message naming the file (nothing was acknowledged yet; counted);
 *  - engine workloads: every key holds a value written to it that is not
 *    older than its last durable write (acknowledged with sync, or before
 *    an acknowledged sett_sync), with the right bytes; nothing that was
 *    never written appears; every batch is all or nothing (a key of a
 *    visible batch holds that batch's write or a later one);
 *  - settfs workloads (through the fs core, no FUSE): fsck.settfs's checker
 *    (linked in, run in a forked child) is clean; each file holds exactly one of the
 *    contents it had (old or new after a rename over it, never a mix or
 *    zeros) and not one older than its last durable one; xattrs likewise.
 *
 * The encrypted workload runs flushes and compactions in a store encrypted
 * at rest: its crash states must open under the master key with the same
 * guarantees (sealed records torn like plain ones, never reported as
 * corrupt when they are only torn).
 *
 * The gc workload finds issue 8's defect 1 when its fix (vlog_gc.c: a
 * removal waits for sett_sync) is reverted: GC deleted a value-log file
 * whose entries were all dead before the write that killed them was
 * durable, so the durable old pointer names a missing file and sett_get
 * fails with ENOENT (states with "+unlink 000001.vlog; 00001.mem:none").
 *
 * fs-buffered found defect 4 (rename and setxattr of a file with buffered
 * writes committed its size without the data: the file read as zeros) and
 * fs-truncate defect 5 (a truncate of many chunks committed partial
 * batches from the low end: the old size, zeros in the middle) before
 * their fixes.  A truncate cut short may leave any prefix of the old
 * content between the new and the old size (the deletes go from the top
 * down, each commit lowering the size).
 *
 * A workload can be marked known-failing (it reports but passes) by
 * naming the defect in the last argument of its engine_finish/fs_finish
 * call; none is now.
 *
 * Knobs: SETT_EXPLORE_SCALE=N multiplies the number of states (default 1:
 * a few thousand in all, some seconds); SETT_EXPLORE_SEED=S replays a run
 * (the seed is printed; the workloads themselves are fixed) and with
 * SETT_EXPLORE_STATE=I checks only state I; SETT_EXPLORE_KEEP=1 (or
 * SETT_EXPLORE_STATE) keeps the first failed state as the crash left it;
 * SETT_EXPLORE_DUMP=1 prints the recorded logs (and a failed file's versions); SETT_EXPLORE_STRICT=1 makes
 * known-failing workloads fail the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "explore.h"
#include "fileio.h"
#include "sett.h"
#include "settfs.h"
#include "testutil.h"

static uint64_t run_seed;
static long scale = 1;
static long only_state = -1;

static void knobs(void)
{
	const char *s = getenv("SETT_EXPLORE_SCALE");
	if (s && atol(s) > 0)
		scale = atol(s);
	s = getenv("SETT_EXPLORE_SEED");
	run_seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	s = getenv("SETT_EXPLORE_STATE");
	if (s)
		only_state = atol(s);
}

/*
 * Runs the exploration of one workload and asserts on its result; a
 * known-failing workload (known != NULL names the defect) only reports.
 */
static void explore_and_assert(xp_log *l, const char *name, long states, xp_check_fn check,
			       void *arg, const char *known)
{
	xp_result res;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	xp_explore(l, name, states * scale, run_seed, only_state, check, arg, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "explore %s: %zu records, %ld crash states in %.1f s, %ld failed (seed %#llx)\n",
		name, xp_nrecs(l), res.states, secs, res.failures, (unsigned long long)run_seed);
	if (known && !getenv("SETT_EXPLORE_STRICT")) {
		if (res.failures)
			fprintf(stderr, "explore %s: known failure (%s)\n", name, known);
		else
			fprintf(stderr, "explore %s: no failure: is %s fixed? mark the workload as passing\n",
				name, known);
		return;
	}
	ck_assert_msg(res.failures == 0, "%s: %ld of %ld crash states failed (see above)", name,
		      res.failures, res.states);
}

/* ==================================================================== engine */

enum { EV_WRITE, EV_SYNC, EV_OTHER };

typedef struct eev {
	int kind, sync;
	size_t w0, nw; /* EV_WRITE: its writes */
} eev;

typedef struct ewrite {
	int key, del;
	uint32_t size;
	size_t ev;
} ewrite;

typedef struct emodel {
	sett_options o;
	int nkeys;
	eev *ev;
	size_t nev;
	ewrite *w;
	size_t nw;
	sett_db *db;
	int verify; /* also run sett_verify on every state */
} emodel;

static void key_name(int k, char *out)
{
	snprintf(out, 16, "key%03d", k);
}

/* The value of write w (1-based sequence number seq): the number, then bytes from it. */
static void value_of(uint64_t seq, int key, uint32_t size, uint8_t *out)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(seq >> (8 * i));
	uint64_t s = seq * 0x9e3779b97f4a7c15ULL + (uint64_t)key;
	tu_fill_random(&s, out + 8, size - 8);
}

static size_t ev_begin(emodel *m, int kind, int sync)
{
	m->ev = realloc(m->ev, (m->nev + 1) * sizeof *m->ev);
	m->ev[m->nev] = (eev){ kind, sync, m->nw, 0 };
	sio_record_mark(2 * m->nev + 1);
	return m->nev++;
}

static void ev_end(emodel *m, size_t e)
{
	sio_record_mark(2 * e + 2);
}

/* One batch: n writes of random keys (a delete with probability pdel). */
static void e_batch(emodel *m, uint64_t *rng, int n, int sync, int pdel, uint32_t big)
{
	sett_batch *b;
	ck_assert_int_eq(sett_batch_new(&b), 0);
	size_t e = ev_begin(m, EV_WRITE, sync);
	uint8_t *v = malloc(big + 8);
	for (int i = 0; i < n; i++) {
		int key = (int)(tu_rand(rng) % (uint64_t)m->nkeys);
		int dup = 0;
		for (size_t j = m->ev[e].w0; j < m->nw; j++)
			dup |= m->w[j].key == key;
		if (dup)
			continue;
		int del = (int)(tu_rand(rng) % 100) < pdel;
		uint32_t size = tu_rand(rng) % 2 ? 8 + (uint32_t)(tu_rand(rng) % 300)
						 : big / 2 + (uint32_t)(tu_rand(rng) % (big / 2));
		m->w = realloc(m->w, (m->nw + 1) * sizeof *m->w);
		m->w[m->nw] = (ewrite){ key, del, size, e };
		m->nw++;
		char k[16];
		key_name(key, k);
		sett_val kv = { strlen(k), k };
		if (del) {
			ck_assert_int_eq(sett_batch_delete(b, kv), 0);
		} else {
			value_of(m->nw, key, size, v);
			ck_assert_int_eq(sett_batch_set(b, kv, (sett_val){ size, v }), 0);
		}
	}
	m->ev[e].nw = m->nw - m->ev[e].w0;
	int r = sett_write(m->db, b, sync, NULL);
	ck_assert_msg(r == 0, "sett_write: %s", sett_strerror(r));
	ev_end(m, e);
	free(v);
	sett_batch_free(b);
}

static void e_call(emodel *m, int kind, const char *what, int (*fn)(sett_db *))
{
	size_t e = ev_begin(m, kind, 0);
	int r = fn(m->db);
	ck_assert_msg(r == 0, "%s: %s", what, sett_strerror(r));
	ev_end(m, e);
}

static int gc_all(sett_db *db)
{
	int r = sett_gc(db, 0.0);
	return r == SETT_ENOREWRITE ? 0 : r;
}

/* The value a key holds in a state: the 1-based write, 0 absent, <0 error. */
static long observe(emodel *m, sett_db *db, int key, char *why, size_t n)
{
	char k[16];
	key_name(key, k);
	void *v = NULL;
	size_t vn = 0;
	int r = sett_get(db, (sett_val){ strlen(k), k }, 0, &v, &vn);
	if (r == SETT_ENOTFOUND)
		return 0;
	if (r) {
		snprintf(why, n, "get %s: %s", k, sett_strerror(r));
		return -1;
	}
	uint64_t seq = 0;
	for (int i = 0; i < 8 && i < (int)vn; i++)
		seq |= (uint64_t)((uint8_t *)v)[i] << (8 * i);
	long res = (long)seq;
	if (vn < 8 || seq == 0 || seq > m->nw || m->w[seq - 1].key != key || m->w[seq - 1].del ||
	    m->w[seq - 1].size != vn) {
		snprintf(why, n, "%s holds %zu bytes that no write put there", k, vn);
		res = -1;
	} else {
		uint8_t *want = malloc(vn);
		value_of(seq, key, (uint32_t)vn, want);
		if (memcmp(want, v, vn) != 0) {
			snprintf(why, n, "%s: the value of write %llu has wrong bytes", k,
				 (unsigned long long)seq);
			res = -1;
		}
		free(want);
	}
	free(v);
	return res;
}

static void report_line(void *arg, const char *msg)
{
	char *why = arg;
	if (!why[0])
		snprintf(why, 512, "sett_verify: %s", msg);
}

static int engine_check(void *arg, const char *dir, uint64_t last_mark, char *why, size_t n)
{
	emodel *m = arg;
#define BEGUN(e) (last_mark >= 2 * (uint64_t)(e) + 1)
#define ACKED(e) (last_mark >= 2 * (uint64_t)(e) + 2)
	long last_sync = -1;
	for (size_t e = 0; e < m->nev; e++)
		if (m->ev[e].kind == EV_SYNC && ACKED(e))
			last_sync = (long)e;
	char err[512] = "";
	sett_options o = m->o;
	o.error_buf = err;
	o.error_buf_size = sizeof err;
	o.num_compactors = 0;
	o.gc_discard_ratio = 0;
	sett_db *db;
	int r = sett_open(dir, &o, &db);
	if (r) {
		snprintf(why, n, "sett_open: %s (%s)", sett_strerror(r), err);
		return 1;
	}
	long *obs = calloc((size_t)m->nkeys, sizeof *obs);
	int bad = 0;
	for (int k = 0; k < m->nkeys && !bad; k++) {
		if ((obs[k] = observe(m, db, k, why, n)) < 0) {
			bad = 1;
			break;
		}
		/* the writes of k that began, from its last durable one */
		long from = -1;
		for (size_t w = 0; w < m->nw; w++) {
			const ewrite *x = &m->w[w];
			const eev *e = &m->ev[x->ev];
			if (x->key == k && ACKED(x->ev) && (e->sync || (long)x->ev < last_sync))
				from = (long)w;
		}
		int ok = from < 0 && obs[k] == 0;
		for (size_t w = from < 0 ? 0 : (size_t)from; w < m->nw && !ok; w++) {
			const ewrite *x = &m->w[w];
			if (x->key == k && BEGUN(x->ev))
				ok = obs[k] ? obs[k] == (long)w + 1 : x->del;
		}
		if (!ok) {
			char kn[16];
			key_name(k, kn);
			snprintf(why, n, "%s holds %s%ld, but write %ld (%s) was durable", kn,
				 obs[k] ? "write " : "nothing", obs[k], from + 1,
				 from >= 0 && m->w[from].del ? "a delete" : "a set");
			bad = 1;
		}
	}
	/* a batch is all or nothing: its keys hold its writes or later ones */
	for (int k = 0; k < m->nkeys && !bad; k++) {
		if (obs[k] <= 0)
			continue;
		const eev *e = &m->ev[m->w[obs[k] - 1].ev];
		for (size_t w = e->w0; w < e->w0 + e->nw && !bad; w++) {
			int j = m->w[w].key;
			int ok = obs[j] > (long)w;
			for (size_t x = w; x < m->nw && !ok && !obs[j]; x++)
				ok = m->w[x].key == j && m->w[x].del && BEGUN(m->w[x].ev);
			if (!ok) {
				char a[16], b[16];
				key_name(k, a);
				key_name(j, b);
				snprintf(why, n, "half a batch: %s holds write %ld, %s holds %ld, not write %zu",
					 a, obs[k], b, obs[j], w + 1);
				bad = 1;
			}
		}
	}
	if (!bad && m->verify) {
		why[0] = 0;
		r = sett_verify(db, report_line, why);
		bad = r != 0;
		if (bad && !why[0])
			snprintf(why, n, "sett_verify: %s", sett_strerror(r));
	}
	free(obs);
	sett_close(db);
	return bad;
#undef BEGUN
#undef ACKED
}

/* A fresh store, recording from before its creation. */
static xp_log *engine_start(emodel *m, char **dir)
{
	*dir = tu_tmpdir("xeng");
	xp_log *l = xp_record_start(*dir);
	int r = sett_open(*dir, &m->o, &m->db);
	ck_assert_msg(r == 0, "sett_open: %s", sett_strerror(r));
	return l;
}

static void engine_finish(emodel *m, xp_log *l, char *dir, const char *name, long states,
			  const char *known)
{
	ck_assert_int_eq(sett_close(m->db), 0);
	xp_record_stop(l);
	explore_and_assert(l, name, states, engine_check, m, known);
	xp_free(l);
	tu_rmrf(dir);
	free(dir);
	free(m->ev);
	free(m->w);
}

static void engine_options(emodel *m, int nkeys)
{
	memset(m, 0, sizeof *m);
	sett_options_init(&m->o);
	m->o.mem_table_size = 64u << 10;
	m->o.value_threshold = 1024;
	m->o.value_log_file_size = 64u << 10;
	m->o.num_compactors = 1;
	m->o.num_level_zero_tables = 2;
	m->o.num_level_zero_tables_stall = 8;
	m->o.base_table_size = 64u << 10;
	m->o.base_level_size = 256u << 10;
	m->o.block_cache_size = 256u << 10;
	m->o.gc_discard_ratio = 0;
	m->nkeys = nkeys;
}

/* Puts, deletes and overwrites, single and in batches, with and without sync. */
START_TEST(test_engine_writes)
{
	emodel m;
	engine_options(&m, 12);
	char *dir;
	xp_log *l = engine_start(&m, &dir);
	uint64_t rng = 0x5e77;
	for (int i = 0; i < 80; i++) {
		int sync = tu_rand(&rng) % 3 == 0;
		e_batch(&m, &rng, 1 + (int)(tu_rand(&rng) % 4), sync, 20, 6000);
		if (tu_rand(&rng) % 10 == 0)
			e_call(&m, EV_SYNC, "sett_sync", sett_sync);
	}
	engine_finish(&m, l, dir, "writes", 1500, NULL);
}
END_TEST

/* Memtable flushes, compaction to the last level, and the MANIFEST they change. */
START_TEST(test_engine_flush_compact)
{
	emodel m;
	engine_options(&m, 16);
	m.verify = 1;
	char *dir;
	xp_log *l = engine_start(&m, &dir);
	uint64_t rng = 0xf1a5;
	for (int i = 0; i < 60; i++) {
		e_batch(&m, &rng, 1 + (int)(tu_rand(&rng) % 3), tu_rand(&rng) % 4 == 0, 15, 3000);
		if (i % 12 == 11)
			e_call(&m, EV_OTHER, "sett_flush", sett_flush);
		if (i % 30 == 29)
			e_call(&m, EV_OTHER, "sett_flatten", sett_flatten);
		if (i % 20 == 5)
			e_call(&m, EV_SYNC, "sett_sync", sett_sync);
	}
	engine_finish(&m, l, dir, "flush+compact", 1500, NULL);
}
END_TEST

/*
 * Value-log GC with small files that rotate: overwrites and deletes kill
 * entries, GC rewrites live ones and deletes files.  Finds issue 8's
 * defect 1 (a file deleted before the write that killed its entries is
 * durable).
 */
START_TEST(test_engine_gc)
{
	emodel m;
	engine_options(&m, 6);
	char *dir;
	xp_log *l = engine_start(&m, &dir);
	uint64_t rng = 0x6c;
	for (int i = 0; i < 40; i++) {
		e_batch(&m, &rng, 1 + (int)(tu_rand(&rng) % 2), tu_rand(&rng) % 3 == 0, 15, 16000);
		if (i % 4 == 3)
			e_call(&m, EV_OTHER, "sett_gc", gc_all);
		if (i % 13 == 12)
			e_call(&m, EV_SYNC, "sett_sync", sett_sync);
	}
	engine_finish(&m, l, dir, "gc", 800, NULL);
}
END_TEST

/*
 * The flush and compaction workload in an encrypted store: sealed WAL
 * records, value-log entries, table blocks and MANIFEST records, torn and
 * lost like plain ones, and a MANIFEST rewritten under a new salt at its
 * first change after each open.
 */
START_TEST(test_engine_encrypted)
{
	static const uint8_t key[32] = "explore-master-key-0123456789abc";
	emodel m;
	engine_options(&m, 12);
	m.o.encryption_key = key;
	m.verify = 1;
	char *dir;
	xp_log *l = engine_start(&m, &dir);
	uint64_t rng = 0xe7c;
	for (int i = 0; i < 40; i++) {
		e_batch(&m, &rng, 1 + (int)(tu_rand(&rng) % 3), tu_rand(&rng) % 4 == 0, 15, 3000);
		if (i % 10 == 9)
			e_call(&m, EV_OTHER, "sett_flush", sett_flush);
		if (i % 20 == 19)
			e_call(&m, EV_OTHER, "sett_flatten", sett_flatten);
		if (i % 15 == 5)
			e_call(&m, EV_SYNC, "sett_sync", sett_sync);
	}
	engine_finish(&m, l, dir, "encrypted", 500, NULL);
}
END_TEST

/* ==================================================================== settfs */

static const settfs_ctx root_ctx = { 0, 0, NULL, 0, 0 };

#define FS_NAMES 4
#define FS_MAX_FILE (2u << 20)

/* One content (or xattr value) a name had: what wrote it and when it became durable. */
typedef struct fver {
	int slot;       /* name index; FS_NAMES + i: the xattr of name i */
	int absent;
	int prefix;     /* a prefix of the content of at least min bytes will do */
	uint32_t min;
	uint64_t seed;  /* content: bytes from seed */
	uint32_t size;
	size_t ev;      /* the event that made it */
	size_t durable; /* the event after which it is durable (SIZE_MAX: not yet) */
} fver;

typedef struct fmodel {
	settfs_options o;
	settfs *fs;
	size_t nev;
	fver *v;
	size_t nv;
	uint64_t cur[2 * FS_NAMES]; /* index + 1 of each slot's latest version, 0: absent */
} fmodel;

static void fs_name(int i, char *out)
{
	snprintf(out, 16, "file%d", i);
}

/*
 * Contents are bytes from a seed; a seed with SPARSE_SEED set means a sparse
 * content: one non-zero byte at the start of every 4 KiB, zeros between.
 */
#define SPARSE_SEED (1ULL << 63)
#define SPARSE_STEP 4096u

static void content(uint64_t seed, uint32_t size, uint8_t *out)
{
	if (seed & SPARSE_SEED) {
		memset(out, 0, size);
		for (uint32_t off = 0; off < size; off += SPARSE_STEP)
			out[off] = (uint8_t)((seed + off / SPARSE_STEP) | 1);
		return;
	}
	uint64_t s = seed;
	tu_fill_random(&s, out, size);
}

static size_t f_begin(fmodel *m)
{
	sio_record_mark(2 * m->nev + 1);
	return m->nev++;
}

static void f_end(fmodel *m, size_t e)
{
	(void)m;
	sio_record_mark(2 * e + 2);
}

static void f_version(fmodel *m, int slot, int absent, uint64_t seed, uint32_t size, size_t e)
{
	m->v = realloc(m->v, (m->nv + 1) * sizeof *m->v);
	m->v[m->nv] = (fver){ slot, absent, 0, 0, seed, size, e, SIZE_MAX };
	m->nv++;
	m->cur[slot] = absent ? 0 : m->nv;
}

/*
 * An event that makes every version so far durable: a directory fsync,
 * and a file fsync too, as its synchronous engine commit also makes every
 * earlier commit durable (the engine's log is one sequence).
 */
static void f_mark_durable(fmodel *m, size_t e)
{
	for (size_t i = 0; i < m->nv; i++)
		if (m->v[i].durable == SIZE_MAX)
			m->v[i].durable = e;
}

static uint64_t f_lookup(fmodel *m, const char *name)
{
	struct stat st;
	int r = settfs_lookup(m->fs, SETTFS_ROOT_INO, name, &st);
	ck_assert_msg(r == 0, "lookup %s: %d", name, r);
	settfs_forget(m->fs, st.st_ino, 1);
	return st.st_ino;
}

static uint64_t f_create(fmodel *m, const char *name)
{
	struct stat st;
	int r = settfs_create(m->fs, &root_ctx, SETTFS_ROOT_INO, name, 0644, O_RDWR | O_TRUNC, &st);
	ck_assert_msg(r == 0, "create %s: %d", name, r);
	settfs_forget(m->fs, st.st_ino, 1);
	return st.st_ino;
}

static void f_write(fmodel *m, uint64_t ino, uint64_t seed, uint32_t size)
{
	uint8_t *b = malloc(size ? size : 1);
	content(seed, size, b);
	if (seed & SPARSE_SEED) { /* only the non-zero bytes: one chunk key each */
		for (uint32_t off = 0; off < size; off += SPARSE_STEP)
			ck_assert_int_eq(settfs_write(m->fs, ino, off, b + off, 1, 0), 1);
		free(b);
		return;
	}
	/* in pieces, as the kernel sends them */
	for (uint32_t off = 0; off < size;) {
		uint32_t n = size - off < 32768 ? size - off : 32768;
		ck_assert_int_eq(settfs_write(m->fs, ino, off, b + off, n, 0), (ssize_t)n);
		off += n;
	}
	free(b);
}

/*
 * Write a new content (of `size` bytes, 0: up to 200 KiB) to a temporary
 * name, fsync it, rename it over the name.
 */
static void f_replace(fmodel *m, uint64_t *rng, int i, int tmpno, int fsync_dir, uint32_t size,
		      int sparse)
{
	char name[16], tmp[16];
	fs_name(i, name);
	snprintf(tmp, sizeof tmp, "tmp%d", tmpno);
	size_t e = f_begin(m);
	uint64_t seed = tu_rand(rng) & ~SPARSE_SEED;
	if (sparse)
		seed |= SPARSE_SEED;
	if (!size)
		size = (uint32_t)(tu_rand(rng) % (200u << 10));
	uint64_t ino = f_create(m, tmp);
	f_write(m, ino, seed, size);
	ck_assert_int_eq(settfs_fsync(m->fs, ino, 0), 0);
	f_mark_durable(m, e);
	ck_assert_int_eq(settfs_release(m->fs, ino, O_RDWR), 0);
	ck_assert_int_eq(settfs_rename(m->fs, SETTFS_ROOT_INO, tmp, SETTFS_ROOT_INO, name, 0), 0);
	f_version(m, i, 0, seed, size, e);
	if (m->cur[FS_NAMES + i]) /* the new file has no xattr */
		f_version(m, FS_NAMES + i, 1, 0, 0, e);
	if (fsync_dir) {
		ck_assert_int_eq(settfs_fsyncdir(m->fs, SETTFS_ROOT_INO, 0), 0);
		f_mark_durable(m, e);
	}
	f_end(m, e);
}

/* Begins an event on name i if it exists now: sets *e and *ino; 0 if it does not. */
static int f_existing(fmodel *m, int i, size_t *e, uint64_t *ino)
{
	if (!m->cur[i])
		return 0;
	char name[16];
	fs_name(i, name);
	*e = f_begin(m);
	*ino = f_lookup(m, name);
	return 1;
}

/* Truncate a file in place (to below `max`, 0: its size) and fsync it. */
static void f_truncate(fmodel *m, uint64_t *rng, int i, uint32_t max)
{
	size_t e;
	uint64_t ino;
	if (!f_existing(m, i, &e, &ino))
		return;
	const fver *old = &m->v[m->cur[i] - 1];
	ck_assert_int_eq(settfs_file_open(m->fs, ino, O_RDWR), 0);
	struct stat a = { 0 }, st;
	if (!max || max > old->size)
		max = old->size;
	a.st_size = (off_t)(max ? tu_rand(rng) % max : 0);
	ck_assert_int_eq(settfs_setattr(m->fs, &root_ctx, ino, &a, SETTFS_SET_SIZE, &st), 0);
	ck_assert_int_eq(settfs_fsync(m->fs, ino, 0), 0);
	ck_assert_int_eq(settfs_release(m->fs, ino, O_RDWR), 0);
	/* until the fsync, a truncate cut short: a prefix between both sizes */
	uint64_t seed = old->seed;
	uint32_t size = old->size;
	f_version(m, i, 0, seed, size, e);
	m->v[m->nv - 1].prefix = 1;
	m->v[m->nv - 1].min = (uint32_t)a.st_size;
	f_version(m, i, 0, seed, (uint32_t)a.st_size, e);
	f_mark_durable(m, e);
	f_end(m, e);
}

/* Set the file's xattr and fsync the file. */
static void f_xattr(fmodel *m, uint64_t *rng, int i)
{
	size_t e;
	uint64_t ino;
	if (!f_existing(m, i, &e, &ino))
		return;
	uint64_t seed = tu_rand(rng) & ~SPARSE_SEED;
	uint32_t size = 1 + (uint32_t)(tu_rand(rng) % 3000);
	uint8_t v[3000];
	content(seed, size, v);
	ck_assert_int_eq(settfs_setxattr(m->fs, ino, "user.v", v, size, 0), 0);
	ck_assert_int_eq(settfs_fsync(m->fs, ino, 0), 0);
	f_version(m, FS_NAMES + i, 0, seed, size, e);
	f_mark_durable(m, e);
	f_end(m, e);
}

/* Unlink a file that is still open, keep writing to it, fsync, close. */
static void f_unlink_open(fmodel *m, uint64_t *rng, int i)
{
	size_t e;
	uint64_t ino;
	if (!f_existing(m, i, &e, &ino))
		return;
	char name[16];
	fs_name(i, name);
	ck_assert_int_eq(settfs_file_open(m->fs, ino, O_RDWR), 0);
	ck_assert_int_eq(settfs_unlink(m->fs, SETTFS_ROOT_INO, name), 0);
	f_version(m, i, 1, 0, 0, e);
	if (m->cur[FS_NAMES + i])
		f_version(m, FS_NAMES + i, 1, 0, 0, e);
	f_write(m, ino, tu_rand(rng) & ~SPARSE_SEED, 70000);
	ck_assert_int_eq(settfs_fsync(m->fs, ino, 0), 0);
	f_mark_durable(m, e);
	ck_assert_int_eq(settfs_release(m->fs, ino, O_RDWR), 0);
	f_end(m, e);
}

int fsck_settfs_main(int argc, char **argv); /* tools/fsck_settfs.c, via fsck_main.c */

/* fsck.settfs on dir, in a child: 0 if clean, else 1 with its first line in why. */
static int run_fsck(const char *dir, char *why, size_t n)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 1);
		dup2(p[1], 2);
		char *argv[] = { "fsck.settfs", (char *)dir, NULL };
		int st = fsck_settfs_main(2, argv);
		fflush(NULL);
		_exit(st);
	}
	close(p[1]);
	char out[4096];
	size_t got = 0;
	ssize_t k;
	while ((k = read(p[0], out + got, sizeof out - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = 0;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	out[strcspn(out, "\n")] = 0;
	snprintf(why, n, "fsck.settfs exits %d: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
	return 1;
}

/* Does the name (or its xattr) in the state hold version x? */
static int f_matches(settfs *fs, const fver *x, const uint8_t *got, long gotn)
{
	if (x->absent)
		return gotn < 0;
	if (x->prefix ? gotn < (long)x->min || gotn > (long)x->size : gotn != (long)x->size)
		return 0;
	uint8_t *want = malloc(x->size ? x->size : 1);
	content(x->seed, x->size, want);
	int ok = memcmp(want, got, (size_t)gotn) == 0;
	free(want);
	(void)fs;
	return ok;
}

static int fs_check(void *arg, const char *dir, uint64_t last_mark, char *why, size_t n)
{
	fmodel *m = arg;
	if (run_fsck(dir, why, n))
		return 1;
	settfs_options o = m->o;
	o.engine.create_if_missing = 0;
	o.engine.num_compactors = 0;
	settfs *fs;
	int r = settfs_open(dir, &o, &fs);
	if (r) {
		snprintf(why, n, "settfs_open: %d", r);
		return 1;
	}
	int bad = 0;
	uint8_t *buf = malloc(FS_MAX_FILE);
	for (int slot = 0; slot < 2 * FS_NAMES && !bad; slot++) {
		char name[16];
		fs_name(slot % FS_NAMES, name);
		struct stat st;
		long gotn = -1;
		r = settfs_lookup(fs, SETTFS_ROOT_INO, name, &st);
		if (r == 0) {
			settfs_forget(fs, st.st_ino, 1);
			if (slot < FS_NAMES) {
				gotn = st.st_size <= FS_MAX_FILE ? settfs_read(fs, st.st_ino, 0, FS_MAX_FILE, buf)
								 : -1000;
				if (gotn != st.st_size) {
					snprintf(why, n, "%s: size %lld, read %ld", name,
						 (long long)st.st_size, gotn);
					bad = 1;
					break;
				}
			} else {
				gotn = settfs_getxattr(fs, st.st_ino, "user.v", buf, FS_MAX_FILE);
				if (gotn == -ENODATA)
					gotn = -1;
			}
		} else if (r != -ENOENT) {
			snprintf(why, n, "lookup %s: %d", name, r);
			bad = 1;
			break;
		}
		/* versions of the slot that began, from its last durable one on */
		long from = -1;
		for (size_t i = 0; i < m->nv; i++)
			if (m->v[i].slot == slot && m->v[i].durable != SIZE_MAX &&
			    last_mark >= 2 * m->v[i].durable + 2)
				from = (long)i;
		int ok = from < 0 && gotn < 0;
		for (size_t i = from < 0 ? 0 : (size_t)from; i < m->nv && !ok; i++)
			if (m->v[i].slot == slot && last_mark >= 2 * m->v[i].ev + 1)
				ok = f_matches(fs, &m->v[i], buf, gotn);
		if (!ok && (slot < FS_NAMES || r == 0)) {
			/* say where the bytes differ from the newest begun version */
			long diff = -1, zeros = 0;
			for (size_t i = 0; i < m->nv; i++) {
				const fver *x = &m->v[i];
				if (x->slot != slot || x->absent || last_mark < 2 * x->ev + 1 ||
				    gotn < 0 || gotn > (long)x->size)
					continue;
				uint8_t *want = malloc(x->size ? x->size : 1);
				content(x->seed, x->size, want);
				for (diff = 0; diff < gotn && want[diff] == buf[diff]; diff++)
					;
				for (zeros = diff; zeros < gotn && buf[zeros] == 0; zeros++)
					;
				zeros -= diff;
				free(want);
			}
			snprintf(why, n, "%s%s holds %ld bytes that are none of its versions since "
				 "version %ld (the newest differs at offset %ld, then %ld zero bytes)",
				 name, slot < FS_NAMES ? "" : " (xattr)", gotn, from, diff, zeros);
			bad = 1;
			if (getenv("SETT_EXPLORE_DUMP"))
				for (size_t i = 0; i < m->nv; i++)
					if (m->v[i].slot == slot)
						fprintf(stderr, "v%zu size %u prefix %d absent %d ev %zu durable %zu\n", i,
							m->v[i].size, m->v[i].prefix, m->v[i].absent, m->v[i].ev,
							m->v[i].durable);
		}
	}
	free(buf);
	settfs_close(fs);
	return bad;
}

static void fs_start(fmodel *m, char **dir, xp_log **l)
{
	*dir = tu_tmpdir("xfs");
	ck_assert_int_eq(settfs_mkfs(*dir, &m->o, &root_ctx, 0), 0);
	/* an open and a close flush mkfs's WAL: nothing left for a background flush */
	ck_assert_int_eq(settfs_open(*dir, &m->o, &m->fs), 0);
	ck_assert_int_eq(settfs_close(m->fs), 0);
	*l = xp_record_start(*dir);
	ck_assert_int_eq(settfs_open(*dir, &m->o, &m->fs), 0);
}

static void fs_finish(fmodel *m, xp_log *l, char *dir, const char *name, long states,
		      const char *known)
{
	size_t e = f_begin(m);
	ck_assert_int_eq(settfs_close(m->fs), 0);
	f_mark_durable(m, e);
	f_end(m, e);
	xp_record_stop(l);
	explore_and_assert(l, name, states, fs_check, m, known);
	xp_free(l);
	free(m->v);
	tu_rmrf(dir);
	free(dir);
}

/* Replace-by-rename, truncate, xattrs and unlink of open files. */
START_TEST(test_fs_ops)
{
	fmodel m;
	memset(&m, 0, sizeof m);
	settfs_options_init(&m.o);
	m.o.engine.mem_table_size = 256u << 10;
	m.o.engine.value_log_file_size = 256u << 10;
	m.o.engine.num_compactors = 1;
	m.o.engine.gc_discard_ratio = 0;
	char *dir;
	xp_log *l;
	fs_start(&m, &dir, &l);
	uint64_t rng = 0xf5;
	for (int step = 0; step < 40; step++) {
		int i = (int)(tu_rand(&rng) % FS_NAMES);
		switch (tu_rand(&rng) % 6) {
		case 0:
		case 1:
		case 2:
			f_replace(&m, &rng, i, step, tu_rand(&rng) % 3 == 0, 0, 0);
			break;
		case 3:
			f_truncate(&m, &rng, i, 0);
			break;
		case 4:
			f_xattr(&m, &rng, i);
			break;
		case 5:
			f_unlink_open(&m, &rng, i);
			break;
		}
	}
	fs_finish(&m, l, dir, "fs", 400, NULL);
}
END_TEST

/*
 * Namespace and xattr changes of a file whose writes are still buffered in
 * the core: each commit of the inode must carry the data it counts.  Finds
 * issue 8's defect 4 (rename and setxattr committed the in-memory size
 * without the buffered chunks: the file reads as zeros after a crash).
 */
START_TEST(test_fs_buffered)
{
	fmodel m;
	memset(&m, 0, sizeof m);
	settfs_options_init(&m.o);
	m.o.engine.num_compactors = 1;
	m.o.engine.gc_discard_ratio = 0;
	char *dir;
	xp_log *l;
	fs_start(&m, &dir, &l);
	uint64_t rng = 0xb0f;
	for (int step = 0; step < 12; step++) {
		int i = step % FS_NAMES;
		char name[16], tmp[16];
		fs_name(i, name);
		snprintf(tmp, sizeof tmp, "tmp%d", step);
		size_t e = f_begin(&m);
		uint64_t seed = tu_rand(&rng) & ~SPARSE_SEED;
		uint32_t size = 100000 + (uint32_t)(tu_rand(&rng) % 150000);
		uint64_t ino = f_create(&m, tmp);
		f_write(&m, ino, seed, size);
		/* the name may hold any prefix of the data until the fsync */
		if (step % 2 == 0) {
			ck_assert_int_eq(settfs_rename(m.fs, SETTFS_ROOT_INO, tmp, SETTFS_ROOT_INO, name, 0),
					 0);
			f_version(&m, i, 0, seed, size, e);
			m.v[m.nv - 1].prefix = 1;
			if (m.cur[FS_NAMES + i])
				f_version(&m, FS_NAMES + i, 1, 0, 0, e);
		} else {
			/* the xattr first, then the rename: both commit the inode */
			uint8_t xv[8];
			uint64_t xseed = tu_rand(&rng) & ~SPARSE_SEED;
			content(xseed, sizeof xv, xv);
			ck_assert_int_eq(settfs_setxattr(m.fs, ino, "user.v", xv, sizeof xv, 0), 0);
			ck_assert_int_eq(settfs_rename(m.fs, SETTFS_ROOT_INO, tmp, SETTFS_ROOT_INO, name, 0),
					 0);
			f_version(&m, i, 0, seed, size, e);
			m.v[m.nv - 1].prefix = 1;
			f_version(&m, FS_NAMES + i, 0, xseed, sizeof xv, e);
		}
		ck_assert_int_eq(settfs_fsync(m.fs, ino, 0), 0);
		f_version(&m, i, 0, seed, size, e);
		f_mark_durable(&m, e);
		ck_assert_int_eq(settfs_release(m.fs, ino, O_RDWR), 0);
		f_end(&m, e);
	}
	fs_finish(&m, l, dir, "fs-buffered", 300, NULL);
}
END_TEST

/*
 * Truncating a file of many chunks (chunk size 4 KiB, small memtable: the
 * deletes span several engine commits).  The file must hold its old or its
 * new content after a crash; finds issue 8's defect 5 (partial commits
 * from the low end left the old size with zeros in the middle).
 */
START_TEST(test_fs_big_truncate)
{
	fmodel m;
	memset(&m, 0, sizeof m);
	settfs_options_init(&m.o);
	m.o.chunk_size = 4096;
	m.o.engine.mem_table_size = 64u << 10;
	m.o.engine.num_compactors = 1;
	m.o.engine.gc_discard_ratio = 0;
	char *dir;
	xp_log *l;
	fs_start(&m, &dir, &l);
	uint64_t rng = 0x7c;
	for (int step = 0; step < 8; step++) {
		/* a byte in each of 300 chunks: the data stays small, the deletes many */
		f_replace(&m, &rng, 0, step, 1, 299 * SPARSE_STEP + 1, 1);
		f_truncate(&m, &rng, 0, 40u << 10);
	}
	fs_finish(&m, l, dir, "fs-truncate", 600, NULL);
}
END_TEST

int main(void)
{
	knobs();
	fprintf(stderr, "explore: seed %#llx (SETT_EXPLORE_SEED to replay), scale %ld\n",
		(unsigned long long)run_seed, scale);
	Suite *s = suite_create("explore");
	TCase *tc = tcase_create("engine");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_engine_writes);
	tcase_add_test(tc, test_engine_flush_compact);
	tcase_add_test(tc, test_engine_gc);
	tcase_add_test(tc, test_engine_encrypted);
	suite_add_tcase(s, tc);
	tc = tcase_create("fs");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_fs_ops);
	tcase_add_test(tc, test_fs_buffered);
	tcase_add_test(tc, test_fs_big_truncate);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
