/*
 * test_table.c - sorted tables: build and read back, point reads at every
 * version, iteration both ways, compression, the bloom filter, corruption
 * of any byte, the empty-table rule and obsolete-file deletion.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bloom.h"
#include "cache.h"
#include "cipher.h"
#include "fileio.h"
#include "ikey.h"
#include "mapguard.h"
#include "sett.h"
#include "table.h"
#include "table_format.h"
#include "testutil.h"

/*
 * Check records every passing ck_assert through a pipe; the hot loops below
 * make millions of checks, so they only call into Check on failure.
 */
#define REQUIRE(cond, ...) \
	do { \
		if (!(cond)) \
			ck_abort_msg("failed: " #cond " " __VA_ARGS__); \
	} while (0)

typedef struct kv {
	buf k; /* internal key */
	buf v; /* value struct bytes */
} kv;

typedef struct dataset {
	kv *e;
	size_t n;
} dataset;

static int kv_cmp(const void *a, const void *b)
{
	const kv *x = a, *y = b;
	return ikey_cmp(slice_make(x->k.p, x->k.n), slice_make(y->k.p, y->k.n));
}

static slice K(const dataset *d, size_t i) { return slice_make(d->e[i].k.p, d->e[i].k.n); }
static slice V(const dataset *d, size_t i) { return slice_make(d->e[i].v.p, d->e[i].v.n); }

/*
 * About `target` entries: random binary user keys (0..24 bytes, so some
 * share prefixes and one may be empty), 1..3 versions each, values of
 * random length with some empty and `big` of 100 KiB.  `text` makes the
 * values compressible.
 */
static void make_dataset(dataset *d, size_t target, int big, int text, uint64_t seed)
{
	uint64_t rs = seed;
	size_t cap = target + 8;
	d->e = calloc(cap, sizeof *d->e);
	d->n = 0;
	while (d->n < target) {
		uint8_t uk[24];
		size_t ulen = tu_rand(&rs) % 25;
		if (ulen > 4 && tu_rand(&rs) % 2)
			memset(uk, 'p', 4); /* common prefix: exercises prefix compression */
		tu_fill_random(&rs, ulen > 4 ? uk + 4 : uk, ulen > 4 ? ulen - 4 : ulen);
		int nv = 1 + (int)(tu_rand(&rs) % 3);
		uint64_t ver = 2 + tu_rand(&rs) % 1000000;
		for (int j = 0; j < nv && d->n < cap; j++, ver += 1 + tu_rand(&rs) % 5) {
			kv *e = &d->e[d->n++];
			REQUIRE(buf_reserve(&e->k, ulen + IKEY_SUFFIX) == 0);
			ikey_make(e->k.p, uk, ulen, ver);
			e->k.n = ulen + IKEY_SUFFIX;
			size_t vlen = tu_rand(&rs) % 8 == 0 ? 0 : tu_rand(&rs) % 60;
			REQUIRE(buf_reserve(&e->v, vlen + 1) == 0);
			if (text)
				for (size_t x = 0; x < vlen; x++)
					e->v.p[x] = "the quick brown fox "[x % 20];
			else
				tu_fill_random(&rs, e->v.p, vlen);
			e->v.n = vlen;
		}
	}
	qsort(d->e, d->n, sizeof *d->e, kv_cmp);
	/* drop duplicates (same user key and version drawn twice) */
	size_t w = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (w && kv_cmp(&d->e[w - 1], &d->e[i]) == 0) {
			buf_free(&d->e[i].k);
			buf_free(&d->e[i].v);
			continue;
		}
		d->e[w++] = d->e[i];
	}
	d->n = w;
	for (int b = 0; b < big; b++) {
		kv *e = &d->e[tu_rand(&rs) % d->n];
		e->v.n = 0;
		REQUIRE(buf_reserve(&e->v, 100 << 10) == 0);
		tu_fill_random(&rs, e->v.p, 100 << 10);
		e->v.n = 100 << 10;
	}
}

static void free_dataset(dataset *d)
{
	for (size_t i = 0; i < d->n; i++) {
		buf_free(&d->e[i].k);
		buf_free(&d->e[i].v);
	}
	free(d->e);
}

static table_options topts(size_t block_size, int compression)
{
	table_options o = { .block_size = block_size, .compression = compression, .zstd_level = 3,
			    .bloom_fp = 0.01 };
	return o;
}

static void build(const char *path, const dataset *d, const table_options *o)
{
	table_builder *b;
	ck_assert_int_eq(table_builder_new(path, o, &b), 0);
	for (size_t i = 0; i < d->n; i++)
		REQUIRE(table_builder_add(b, K(d, i), V(d, i)) == 0);
	ck_assert_uint_eq(table_builder_count(b), d->n);
	ck_assert_int_eq(table_builder_finish(b), 0);
}

static int same_user(const dataset *d, size_t i, size_t j)
{
	return slice_cmp(ikey_user(K(d, i)), ikey_user(K(d, j))) == 0;
}

/* Checks one point read: expect = index of the expected entry or -1. */
static void check_get(table *t, const dataset *d, slice ukey, uint64_t rv, long expect)
{
	uint64_t ver = 0;
	buf vs = { 0 };
	char why[256];
	int r = table_get(t, ukey, rv, &ver, &vs, why, sizeof why);
	if (expect < 0) {
		REQUIRE((r) == (0));
	} else {
		REQUIRE((r) == (1));
		REQUIRE((ver) == (ikey_version(K(d, (size_t)expect))));
		slice v = V(d, (size_t)expect);
		REQUIRE((vs.n) == (v.n));
		REQUIRE(v.n == 0 || memcmp(vs.p, v.p, v.n) == 0);
	}
	buf_free(&vs);
}

/* Every version query of every key, plus absent keys. */
static void check_all_gets(table *t, const dataset *d, size_t stride)
{
	for (size_t i = 0; i < d->n; i += stride) {
		slice uk = ikey_user(K(d, i));
		uint64_t v = ikey_version(K(d, i));
		check_get(t, d, uk, v, (long)i);            /* exact version */
		size_t first = i; /* newest version of this user key */
		while (first > 0 && same_user(d, first - 1, i))
			first--;
		check_get(t, d, uk, UINT64_MAX, (long)first);
		/* just below: the next older version, or nothing */
		long older = i + 1 < d->n && same_user(d, i + 1, i) ? (long)i + 1 : -1;
		check_get(t, d, uk, v - 1, older);
		if (first == i) /* above the newest: still the newest */
			check_get(t, d, uk, v + 1, (long)i);
	}
}

/* Index of the first entry >= k (d->n if none). */
static size_t lower_bound(const dataset *d, slice k)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ikey_cmp(K(d, mid), k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void check_at(sit *it, const dataset *d, size_t i)
{
	if (i >= d->n) {
		REQUIRE(!sit_valid(it), "iterator valid past the end");
		REQUIRE((sit_error(it)) == (0));
		return;
	}
	REQUIRE(sit_valid(it), "iterator invalid at %zu (err %d)", i, sit_error(it));
	REQUIRE(ikey_cmp(sit_key(it), K(d, i)) == 0, "key differs at %zu", i);
	slice v = sit_value(it), e = V(d, i);
	REQUIRE((v.n) == (e.n));
	REQUIRE(e.n == 0 || memcmp(v.p, e.p, e.n) == 0);
}

static void check_iter(table *t, const dataset *d, uint64_t seed)
{
	sit *it = table_iter_new(t);
	ck_assert_ptr_nonnull(it);
	size_t i = 0;
	for (sit_first(it); sit_valid(it); sit_next(it), i++)
		check_at(it, d, i);
	REQUIRE((sit_error(it)) == (0));
	REQUIRE((i) == (d->n));
	i = d->n;
	for (sit_last(it); sit_valid(it); sit_prev(it))
		check_at(it, d, --i);
	REQUIRE((sit_error(it)) == (0));
	REQUIRE((i) == (0));

	uint64_t rs = seed;
	uint8_t tk[40];
	for (int q = 0; q < 2000; q++) {
		slice target;
		if (q % 2) { /* an existing key, or one just above/below it */
			size_t j = tu_rand(&rs) % d->n;
			slice k = K(d, j);
			memcpy(tk, k.p, k.n);
			uint64_t v = ikey_version(k) + (tu_rand(&rs) % 3) - 1;
			ikey_make(tk, k.p, k.n - IKEY_SUFFIX, v);
			target = slice_make(tk, k.n);
		} else { /* a random key */
			size_t ul = tu_rand(&rs) % 25;
			uint8_t uk[25];
			tu_fill_random(&rs, uk, ul);
			ikey_make(tk, uk, ul, tu_rand(&rs) % 1000000);
			target = slice_make(tk, ul + IKEY_SUFFIX);
		}
		size_t lb = lower_bound(d, target);
		long pos;
		if (q % 4 < 2) {
			sit_seek(it, target);
			pos = (long)lb;
		} else {
			sit_seek_for_prev(it, target);
			/* last entry <= target */
			pos = lb < d->n && ikey_cmp(K(d, lb), target) == 0 ? (long)lb : (long)lb - 1;
		}
		if (pos < 0) {
			REQUIRE(!sit_valid(it));
			continue;
		}
		check_at(it, d, (size_t)pos);
		/* wander both ways, changing direction at random */
		for (int s = 0; s < 40 && pos >= 0 && (size_t)pos < d->n; s++) {
			if (tu_rand(&rs) % 2) {
				sit_next(it);
				pos++;
			} else {
				sit_prev(it);
				pos--;
			}
			if (pos < 0)
				REQUIRE(!sit_valid(it));
			else
				check_at(it, d, (size_t)pos);
		}
	}
	sit_free(it);
}

START_TEST(test_roundtrip_100k)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 100000, 4, 0, 42);
	table_options o = topts(4096, SETT_COMPRESS_NONE);
	build(path, &d, &o);

	cache *c;
	ck_assert_int_eq(cache_new(8 << 20, &c), 0);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open(path, 1, c, &t, why, sizeof why), 0);
	ck_assert_uint_eq(table_entry_count(t), d.n);
	ck_assert_uint_eq(table_id(t), 1);
	ck_assert_int_eq((long long)table_file_size(t), tu_file_size(path));
	ck_assert_int_eq(ikey_cmp(table_smallest(t), K(&d, 0)), 0);
	ck_assert_int_eq(ikey_cmp(table_largest(t), K(&d, d.n - 1)), 0);
	uint64_t maxv = 0;
	for (size_t i = 0; i < d.n; i++)
		if (ikey_version(K(&d, i)) > maxv)
			maxv = ikey_version(K(&d, i));
	ck_assert_uint_eq(table_max_version(t), maxv);
	ck_assert_int_eq(table_verify(t, why, sizeof why), 0);

	check_all_gets(t, &d, 1);

	/* absent keys: never found, whatever the version */
	uint64_t rs = 7;
	for (int q = 0; q < 20000; q++) {
		uint8_t uk[30];
		size_t ul = 25 + tu_rand(&rs) % 5; /* longer than any stored key */
		tu_fill_random(&rs, uk, ul);
		check_get(t, &d, slice_make(uk, ul), UINT64_MAX, -1);
	}
	/* a version older than every version of a key finds nothing */
	check_get(t, &d, ikey_user(K(&d, d.n - 1)), 1, -1);

	check_iter(t, &d, 99);
	table_unref(t);

	/* the same without a cache */
	ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), 0);
	check_all_gets(t, &d, 13);
	sit *it = table_iter_new(t);
	size_t n = 0;
	for (sit_first(it); sit_valid(it); sit_next(it))
		check_at(it, &d, n++);
	ck_assert_uint_eq(n, d.n);
	sit_free(it);
	table_unref(t);
	cache_free(c);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_compression)
{
	char *dir = tu_tmpdir("table");
	char raw[4096], zst[4096];
	snprintf(raw, sizeof raw, "%s/000001.sst", dir);
	snprintf(zst, sizeof zst, "%s/000002.sst", dir);
	dataset d;
	make_dataset(&d, 20000, 1, 1, 5);
	table_options o = topts(4096, SETT_COMPRESS_NONE);
	build(raw, &d, &o);
	o = topts(4096, SETT_COMPRESS_ZSTD);
	build(zst, &d, &o);
	ck_assert_msg(tu_file_size(zst) * 2 < tu_file_size(raw), "zstd %lld vs raw %lld",
		      tu_file_size(zst), tu_file_size(raw));

	table *t;
	char why[256];
	ck_assert_int_eq(table_open(zst, 2, NULL, &t, why, sizeof why), 0);
	ck_assert_int_eq(table_verify(t, why, sizeof why), 0);
	check_all_gets(t, &d, 3);
	check_iter(t, &d, 3);
	table_unref(t);

	/* incompressible data is stored raw: no bigger than the raw table */
	dataset r;
	make_dataset(&r, 5000, 0, 0, 6);
	o = topts(4096, SETT_COMPRESS_NONE);
	unlink(raw);
	build(raw, &r, &o);
	unlink(zst);
	o = topts(4096, SETT_COMPRESS_ZSTD);
	build(zst, &r, &o);
	ck_assert_int_le(tu_file_size(zst), tu_file_size(raw));
	ck_assert_int_eq(table_open(zst, 2, NULL, &t, why, sizeof why), 0);
	check_all_gets(t, &r, 1);
	table_unref(t);
	free_dataset(&r);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_bloom_rate)
{
	enum { N = 100000 };
	uint64_t *h = malloc(N * sizeof *h);
	uint64_t rs = 11;
	for (int i = 0; i < N; i++) {
		uint8_t k[16];
		tu_fill_random(&rs, k, sizeof k);
		h[i] = sett_hash(k, sizeof k);
	}
	buf f = { 0 };
	ck_assert_int_eq(bloom_build(h, N, 0.01, &f), 0);
	slice fs = slice_make(f.p, f.n);
	for (int i = 0; i < N; i++)
		REQUIRE(bloom_may_contain(fs, h[i]));
	int fp = 0;
	for (int i = 0; i < N; i++) {
		uint8_t k[17]; /* a different length: never one of the keys */
		tu_fill_random(&rs, k, sizeof k);
		fp += bloom_may_contain(fs, sett_hash(k, sizeof k));
	}
	ck_assert_msg(fp <= N / 100 * 3 / 2, "false positives %d of %d", fp, N);
	ck_assert_msg(fp > 0, "a 1%% filter with no false positives is suspicious");
	/* an empty filter admits nothing */
	buf e = { 0 };
	ck_assert_int_eq(bloom_build(NULL, 0, 0.01, &e), 0);
	ck_assert(!bloom_may_contain(slice_make(e.p, e.n), h[0]));
	buf_free(&e);
	buf_free(&f);
	free(h);
}
END_TEST

START_TEST(test_table_bloom)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 30000, 0, 0, 8);
	table_options o = topts(4096, SETT_COMPRESS_NONE);
	build(path, &d, &o);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), 0);
	for (size_t i = 0; i < d.n; i++) {
		slice uk = ikey_user(K(&d, i));
		REQUIRE(table_may_contain(t, sett_hash(uk.p, uk.n)));
	}
	uint64_t rs = 3;
	int fp = 0;
	for (int i = 0; i < 30000; i++) {
		uint8_t k[30];
		tu_fill_random(&rs, k, sizeof k);
		fp += table_may_contain(t, sett_hash(k, sizeof k));
	}
	ck_assert_msg(fp < 450, "false positives %d of 30000", fp);
	table_unref(t);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Opens the (corrupted) table and reads it every way.  Returns 1 if the
 * corruption was reported.  Never accepts a wrong answer.
 */
static int read_corrupted(const char *path, const dataset *d, cache *c, const sett_keys *keys)
{
	table *t;
	char why[256] = "";
	int r = table_open_enc(path, 9, c, keys, &t, why, sizeof why);
	if (r) {
		REQUIRE((r) == (SETT_ECORRUPT));
		REQUIRE(strstr(why, path) != NULL, "why names no file: %s", why);
		return 1;
	}
	int seen = 0;
	for (size_t i = 0; i < d->n; i += 7) {
		uint64_t ver;
		buf vs = { 0 };
		why[0] = 0;
		r = table_get(t, ikey_user(K(d, i)), ikey_version(K(d, i)), &ver, &vs, why,
			      sizeof why);
		if (r < 0) {
			REQUIRE((r) == (SETT_ECORRUPT));
			REQUIRE(strstr(why, "corrupt block at offset"), "why: %s", why);
			seen = 1;
		} else {
			REQUIRE((r) == (1));
			REQUIRE((ver) == (ikey_version(K(d, i))));
			REQUIRE((vs.n) == (d->e[i].v.n));
			REQUIRE(vs.n == 0 || memcmp(vs.p, d->e[i].v.p, vs.n) == 0);
		}
		buf_free(&vs);
	}
	sit *it = table_iter_new(t);
	size_t n = 0;
	for (sit_first(it); sit_valid(it); sit_next(it), n++)
		check_at(it, d, n);
	if (n != d->n) {
		REQUIRE((sit_error(it)) == (SETT_ECORRUPT));
		seen = 1;
	}
	n = d->n;
	for (sit_last(it); sit_valid(it); sit_prev(it))
		check_at(it, d, --n);
	if (n != 0)
		REQUIRE((sit_error(it)) == (SETT_ECORRUPT));
	sit_free(it);
	why[0] = 0;
	r = table_verify(t, why, sizeof why);
	REQUIRE((r) == (SETT_ECORRUPT)); /* every byte is under a checksum */
	REQUIRE(strstr(why, path) != NULL, "why names no file: %s", why);
	(void)seen;
	table_unref(t);
	return 1;
}

static void corrupt_each(int compression, cache *c, cipher_ring *g)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000009.sst", dir);
	dataset d;
	make_dataset(&d, 1000, 0, compression, 21);
	table_options o = topts(1024, compression);
	o.cipher = cipher_ring_current(g);
	sett_keys keys = cipher_ring_keys(g);
	build(path, &d, &o);
	long long size = tu_file_size(path);
	ck_assert_int_gt(size, 4096);
	int trials = 0;
	for (long long off = 0; off < size; off += (off >= size - 500 ? 1 : 23)) {
		tu_flip_byte(path, off);
		read_corrupted(path, &d, c, &keys);
		tu_flip_byte(path, off); /* flip back */
		trials++;
	}
	ck_assert_int_gt(trials, 700);
	/* restored: reads cleanly */
	table *t;
	char why[256];
	ck_assert_int_eq(table_open_enc(path, 9, c, &keys, &t, why, sizeof why), 0);
	ck_assert_int_eq(table_verify(t, why, sizeof why), 0);
	table_unref(t);
	/* truncated files */
	for (long long cut = size - 1; cut > 0; cut -= size / 7) {
		ck_assert_int_eq(truncate(path, cut), 0);
		ck_assert_int_eq(table_open_enc(path, 9, c, &keys, &t, why, sizeof why),
				 SETT_ECORRUPT);
	}
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}

START_TEST(test_corrupt_raw)
{
	corrupt_each(SETT_COMPRESS_NONE, NULL, NULL);
}
END_TEST

START_TEST(test_corrupt_zstd_cached)
{
	cache *c;
	ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	corrupt_each(SETT_COMPRESS_ZSTD, c, NULL);
	cache_stats st;
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0); /* closing a table drops its blocks */
	cache_free(c);
}
END_TEST

START_TEST(test_format_version)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 100, 0, 0, 1);
	table_options o = topts(4096, SETT_COMPRESS_NONE);
	build(path, &d, &o);
	/* a well-formed footer of version 2 is a format error, not corruption */
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	uint8_t foot[68];
	ck_assert_int_eq(fseek(f, -68, SEEK_END), 0);
	ck_assert_int_eq(fread(foot, 1, 68, f), 68);
	ck_assert_int_eq(memcmp(foot + 60, "SETTSST1", 8), 0);
	put_le32(foot + 48, 2);
	put_le64(foot + 52, sett_hash(foot, 52));
	ck_assert_int_eq(fseek(f, -68, SEEK_END), 0);
	ck_assert_int_eq(fwrite(foot, 1, 68, f), 68);
	fclose(f);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), SETT_EFORMAT);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* The whole file (malloc'ed, *size bytes). */
static uint8_t *load_file(const char *path, long long *size)
{
	*size = tu_file_size(path);
	uint8_t *p = malloc((size_t)*size);
	FILE *fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fread(p, 1, (size_t)*size, fp), *size);
	fclose(fp);
	return p;
}

/* Writes p over the file and frees it. */
static void save_file(const char *path, uint8_t *p, long long size)
{
	FILE *fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fwrite(p, 1, (size_t)size, fp), size);
	fclose(fp);
	free(p);
}

/*
 * A restart point that is not where an entry starts (with a valid block
 * checksum: a writer's mistake) breaks seeks and backward iteration, which
 * start there, while a forward walk never notices: table_verify must.
 */
START_TEST(test_verify_restarts)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 200, 0, 0, 3);
	table_options o = topts(4096, SETT_COMPRESS_NONE);
	build(path, &d, &o);
	long long size;
	uint8_t *f = load_file(path, &size);
	/* data block 0 is the first entry of the index (a raw block) */
	const uint8_t *foot = f + size - 68, *ix = f + get_le64(foot + 16), *end = ix + 64;
	uint64_t klen = 0, boff = 1, bsize = 0;
	ix += varint_get(ix, end, &klen);
	ix += klen;
	ix += varint_get(ix, end, &boff);
	varint_get(ix, end, &bsize);
	ck_assert_uint_eq(boff, 0);
	size_t pn = (size_t)bsize - 9;
	uint32_t nrest = get_le32(f + pn - 4);
	ck_assert_uint_ge(nrest, 2);
	/* restart 1 one byte early: inside the entry before it */
	uint8_t *r1 = f + pn - 4 - 4 * (size_t)nrest + 4;
	put_le32(r1, get_le32(r1) - 1);
	put_le64(f + pn + 1, sett_hash(f, pn + 1));
	table *t;
	char why[256];
	save_file(path, f, size);
	ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), 0);
	ck_assert_int_eq(table_verify(t, why, sizeof why), SETT_ECORRUPT);
	ck_assert(strstr(why, "corrupt block at offset 0") != NULL);
	table_unref(t);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A bloom filter that rules out a key the table holds loses it: verify says so. */
START_TEST(test_verify_bloom)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 200, 0, 0, 4);
	table_options o = topts(4096, SETT_COMPRESS_NONE);
	build(path, &d, &o);
	long long size;
	uint8_t *f = load_file(path, &size);
	/* clear the bloom block's bits (keep k), with a valid block checksum */
	const uint8_t *foot = f + size - 68;
	uint64_t boff = get_le64(foot), bsize = get_le64(foot + 8);
	size_t pn = (size_t)bsize - 9;
	memset(f + boff, 0, pn - 1);
	put_le64(f + boff + pn + 1, sett_hash(f + boff, pn + 1));
	table *t;
	char why[256];
	save_file(path, f, size);
	ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), 0);
	ck_assert_int_eq(table_verify(t, why, sizeof why), SETT_ECORRUPT);
	table_unref(t);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_empty_and_order)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	table_options o = topts(4096, SETT_COMPRESS_NONE);
	table_builder *b;
	/* no entries: refused, and no file is left behind */
	ck_assert_int_eq(table_builder_new(path, &o, &b), 0);
	ck_assert_int_eq(table_builder_finish(b), -EINVAL);
	ck_assert_int_eq(tu_file_size(path), -1);

	/* keys out of order or duplicated are refused */
	ck_assert_int_eq(table_builder_new(path, &o, &b), 0);
	ck_assert_int_eq(table_builder_new(path, &o, &b) == 0, 0); /* exists: O_EXCL */
	uint8_t k1[9], k2[9];
	ikey_make(k1, "b", 1, 5);
	ikey_make(k2, "a", 1, 5);
	ck_assert_int_eq(table_builder_add(b, slice_make(k1, 9), slice_make("x", 1)), 0);
	ck_assert_int_eq(table_builder_add(b, slice_make(k1, 9), slice_make("x", 1)), -EINVAL);
	ck_assert_int_eq(table_builder_add(b, slice_make(k2, 9), slice_make("x", 1)), -EINVAL);
	ck_assert_int_eq(table_builder_add(b, slice_make("short", 5), slice_make("x", 1)),
			 -EINVAL);
	ck_assert_uint_eq(table_builder_count(b), 1);
	ck_assert_uint_gt(table_builder_size(b), 0);
	table_builder_abandon(b);
	ck_assert_int_eq(tu_file_size(path), -1);

	/* a one-entry table works */
	ck_assert_int_eq(table_builder_new(path, &o, &b), 0);
	ck_assert_int_eq(table_builder_add(b, slice_make(k1, 9), slice_make("", 0)), 0);
	ck_assert_int_eq(table_builder_finish(b), 0);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), 0);
	uint64_t ver;
	buf vs = { 0 };
	ck_assert_int_eq(table_get(t, slice_make("b", 1), 9, &ver, &vs, why, sizeof why), 1);
	ck_assert_uint_eq(ver, 5);
	ck_assert_uint_eq(vs.n, 0);
	ck_assert_int_eq(table_get(t, slice_make("b", 1), 4, &ver, &vs, why, sizeof why), 0);
	ck_assert_int_eq(table_get(t, slice_make("a", 1), 9, &ver, &vs, why, sizeof why), 0);
	ck_assert_int_eq(table_get(t, slice_make("c", 1), 9, &ver, &vs, why, sizeof why), 0);
	sit *it = table_iter_new(t);
	sit_seek(it, slice_make(k2, 9));
	ck_assert(sit_valid(it));
	sit_prev(it);
	ck_assert(!sit_valid(it));
	sit_seek_for_prev(it, slice_make(k2, 9));
	ck_assert(!sit_valid(it));
	sit_free(it);
	table_unref(t);

	/* a zero-byte file is not a table */
	char empty[4200];
	snprintf(empty, sizeof empty, "%s/000002.sst", dir);
	fclose(fopen(empty, "w"));
	why[0] = 0;
	ck_assert_int_eq(table_open(empty, 2, NULL, &t, why, sizeof why), SETT_ECORRUPT);
	ck_assert(strstr(why, empty) != NULL);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_obsolete_unlink)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 3000, 0, 1, 4);
	/* compressed: uncompressed blocks are read in place, not cached */
	table_options o = topts(512, SETT_COMPRESS_ZSTD);
	build(path, &d, &o);
	cache *c;
	ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open(path, 1, c, &t, why, sizeof why), 0);
	sit *it = table_iter_new(t);
	sit_first(it);
	check_at(it, &d, 0);
	table_mark_obsolete(t);
	table_unref(t);
	ck_assert_int_gt(tu_file_size(path), 0); /* the iterator still holds it */
	size_t n = 0;
	for (; sit_valid(it); sit_next(it))
		check_at(it, &d, n++);
	ck_assert_uint_eq(n, d.n);
	cache_stats st;
	cache_get_stats(c, &st);
	ck_assert_uint_gt(st.entries, 0);
	sit_free(it);
	ck_assert_int_eq(tu_file_size(path), -1); /* last reference gone: file gone */
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	cache_free(c);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

typedef struct getter {
	table *t;
	const dataset *d;
	uint64_t seed;
	long wrong;
} getter;

static void *get_many(void *arg)
{
	getter *g = arg;
	buf vs = { 0 };
	for (int q = 0; q < 20000; q++) {
		size_t i = tu_rand(&g->seed) % g->d->n;
		uint64_t ver;
		slice v = V(g->d, i);
		int r = table_get(g->t, ikey_user(K(g->d, i)), ikey_version(K(g->d, i)), &ver, &vs,
				  NULL, 0);
		if (r != 1 || ver != ikey_version(K(g->d, i)) || vs.n != v.n ||
		    (v.n && memcmp(vs.p, v.p, v.n) != 0))
			g->wrong++;
	}
	buf_free(&vs);
	return NULL;
}

/* Point reads from four threads through one small shared cache. */
START_TEST(test_concurrent_gets)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 20000, 0, 1, 12);
	table_options o = topts(1024, SETT_COMPRESS_ZSTD);
	build(path, &d, &o);
	cache *c;
	ck_assert_int_eq(cache_new(64 << 10, &c), 0); /* far smaller than the table */
	table *t;
	char why[256];
	ck_assert_int_eq(table_open(path, 1, c, &t, why, sizeof why), 0);
	pthread_t th[4];
	getter g[4];
	for (int i = 0; i < 4; i++) {
		g[i] = (getter){ t, &d, (uint64_t)i + 100, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, get_many, &g[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(g[i].wrong, 0);
	}
	cache_stats st;
	cache_get_stats(c, &st);
	ck_assert_uint_gt(st.misses, 1000); /* blocks were evicted and re-read */
	ck_assert_uint_le(st.bytes, 64 << 10);
	table_unref(t);
	cache_free(c);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A table file cut to half its size while the table is open: every read of
 * a block past the new end fails with SETT_ECORRUPT naming the file and the
 * block's offset, blocks before it still read, and the SIGBUS of the lost
 * mapped pages (the signal a media error raises too) does not kill the
 * process, as it did when the mapping was read unguarded.
 */
static void truncated_open(int compression, int cached)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000004.sst", dir);
	dataset d;
	make_dataset(&d, 3000, 0, compression, 31);
	table_options o = topts(1024, compression);
	build(path, &d, &o);
	cache *c = NULL;
	if (cached)
		ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open(path, 4, c, &t, why, sizeof why), 0);
	long long size = tu_file_size(path);
	ck_assert_int_eq(truncate(path, size / 2), 0);
	size_t good = 0, bad = 0;
	for (size_t i = 0; i < d.n; i++) {
		uint64_t ver;
		buf vs = { 0 };
		why[0] = 0;
		int r = table_get(t, ikey_user(K(&d, i)), ikey_version(K(&d, i)), &ver, &vs, why,
				  sizeof why);
		if (r == 1) {
			REQUIRE(ver == ikey_version(K(&d, i)) && vs.n == d.e[i].v.n);
			REQUIRE(vs.n == 0 || memcmp(vs.p, d.e[i].v.p, vs.n) == 0);
			good++;
		} else {
			REQUIRE(r == SETT_ECORRUPT, "get %zu: %d", i, r);
			REQUIRE(strstr(why, path) && strstr(why, "corrupt block at offset"),
				"why: %s", why);
			bad++;
		}
		buf_free(&vs);
	}
	ck_assert_uint_gt(good, 0);
	ck_assert_uint_gt(bad, d.n / 4);
	sit *it = table_iter_new(t);
	size_t n = 0;
	for (sit_first(it); sit_valid(it); sit_next(it), n++)
		check_at(it, &d, n);
	ck_assert_uint_lt(n, d.n);
	ck_assert_int_eq(sit_error(it), SETT_ECORRUPT);
	sit_free(it);
	ck_assert_int_eq(table_verify(t, why, sizeof why), SETT_ECORRUPT);
	ck_assert_msg(strstr(why, path) != NULL, "why: %s", why);
	table_unref(t);
	cache_free(c);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}

START_TEST(test_truncated_while_open)
{
	truncated_open(SETT_COMPRESS_NONE, 0);
	truncated_open(SETT_COMPRESS_NONE, 1);
	truncated_open(SETT_COMPRESS_ZSTD, 1);
}
END_TEST

static const volatile uint8_t *guard_page;

static int touch_page(void *arg)
{
	(void)arg;
	return guard_page[0];
}

/* Maps one page of a file and cuts the file to nothing under the mapping. */
static const uint8_t *map_cut_page(const char *dir, sfile **fp)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/cut", dir);
	uint8_t page[4096];
	memset(page, 'x', sizeof page);
	ck_assert_int_eq(sfile_open(path, O_RDWR | O_CREAT | O_EXCL, fp), 0);
	ck_assert_int_eq(sfile_pwrite(*fp, page, sizeof page, 0), 0);
	const uint8_t *m;
	ck_assert_int_eq(sfile_map(*fp, sizeof page, &m), 0);
	ck_assert_int_eq(truncate(path, 0), 0);
	return m;
}

/* map_guarded turns the SIGBUS of a lost page into MAPGUARD_FAULT, again and again. */
START_TEST(test_mapguard_catches)
{
	char *dir = tu_tmpdir("guard");
	sfile *f;
	ck_assert_int_eq(map_guard_init(), 0);
	guard_page = map_cut_page(dir, &f);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(map_guarded(touch_page, NULL), MAPGUARD_FAULT);
	sfile_close(f);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Outside map_guarded the SIGBUS goes where it went before map_guard_init:
 * the default action kills the process (or a sanitizer's handler reports
 * it); the process never carries on after the faulting read.
 */
START_TEST(test_mapguard_outside_kills)
{
	char *dir = tu_tmpdir("guard");
	ck_assert_int_eq(map_guard_init(), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sfile *f;
		guard_page = map_cut_page(dir, &f);
		touch_page(NULL);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "the read past the end carried on");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS);
#endif
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A write or fsync failing at any step of a build (data blocks, meta
 * blocks, footer, sync) is reported and leaves no file behind.
 */
START_TEST(test_write_failure)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 300, 0, 0, 13);
	table_options o = topts(512, SETT_COMPRESS_NONE);
	int failed_in_finish = 0, succeeded = 0;
	for (long nth = 1; nth < 100 && !succeeded; nth++) {
		table_builder *b;
		ck_assert_int_eq(table_builder_new(path, &o, &b), 0);
		sio_fault_fail_nth(nth, EIO);
		int r = 0;
		for (size_t i = 0; i < d.n && !r; i++)
			r = table_builder_add(b, K(&d, i), V(&d, i));
		int fr = table_builder_finish(b);
		sio_fault_reset();
		if (fr == 0) { /* nth was past the last operation */
			ck_assert_int_eq(r, 0);
			table *t;
			char why[256];
			ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), 0);
			ck_assert_int_eq(table_verify(t, why, sizeof why), 0);
			table_unref(t);
			succeeded = 1;
			continue;
		}
		ck_assert_int_eq(fr, -EIO);
		ck_assert(r == 0 || r == -EIO);
		failed_in_finish += r == 0;
		ck_assert_int_eq(tu_file_size(path), -1);
	}
	ck_assert(succeeded);
	ck_assert_int_ge(failed_in_finish, 5); /* bloom, index, properties, footer, sync */
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- encrypted tables (doc/FORMAT.md, "Encrypted table") ---- */

/* Builds d into path with key `cur` of g. */
static void build_enc(const char *path, const dataset *d, size_t block_size, int compression,
		      cipher_ring *g)
{
	table_options o = topts(block_size, compression);
	o.cipher = cipher_ring_current(g);
	build(path, d, &o);
}

typedef struct lost_log {
	int n;
	char why[256];
} lost_log;

static void note_lost(void *arg, slice after, slice last, int excl, const char *why)
{
	lost_log *l = arg;
	(void)after;
	(void)last;
	(void)excl;
	l->n++;
	snprintf(l->why, sizeof l->why, "%s", why);
}

/* Salvage takes only blocks whose values decode: make them value structs. */
static void as_vstructs(dataset *d)
{
	for (size_t i = 0; i < d->n; i++) {
		buf v = { 0 };
		static const uint8_t head[3] = { 0, 0, 0 }; /* meta, user_meta, expires_at */
		REQUIRE(buf_append(&v, head, 3) == 0 && buf_append(&v, d->e[i].v.p, d->e[i].v.n) == 0);
		buf_free(&d->e[i].v);
		d->e[i].v = v;
	}
}

/* The salvage iterator's entries: all of d when nothing is lost. */
static size_t salvage_count(table *t, const dataset *d, lost_log *l)
{
	sit *it = table_salvage_iter_new(t, note_lost, l);
	size_t n = 0;
	for (sit_first(it); sit_valid(it); sit_next(it)) {
		size_t i = lower_bound(d, sit_key(it));
		REQUIRE(i < d->n && ikey_cmp(K(d, i), sit_key(it)) == 0);
		check_at(it, d, i);
		n++;
	}
	sit_free(it);
	return n;
}

START_TEST(test_enc_roundtrip)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	cipher_ring *g = tu_ring(1, 1, 1);
	sett_keys keys = cipher_ring_keys(g);
	for (int comp = SETT_COMPRESS_NONE; comp <= SETT_COMPRESS_ZSTD; comp++) {
		dataset d;
		make_dataset(&d, 20000, 1, 1, 5);
		as_vstructs(&d);
		build_enc(path, &d, 4096, comp, g);
		/* neither values nor keys are in the file */
		ck_assert(!tu_file_contains(path, "quick brown", 11));
		for (size_t i = 0; i < d.n; i += 97)
			if (K(&d, i).n >= 14)
				ck_assert(!tu_file_contains(path, K(&d, i).p, 14));
		ck_assert(!tu_file_contains(path, "SETTSST1", 8));
		cache *c;
		ck_assert_int_eq(cache_new(8 << 20, &c), 0);
		for (int cached = 0; cached <= 1; cached++) {
			table *t;
			char why[256];
			ck_assert_int_eq(table_open_enc(path, 1, cached ? c : NULL, &keys, &t, why,
							sizeof why), 0);
			ck_assert_uint_eq(table_entry_count(t), d.n);
			ck_assert_int_eq(table_verify(t, why, sizeof why), 0);
			check_all_gets(t, &d, cached ? 1 : 7);
			check_iter(t, &d, 3);
			table_unref(t);
		}
		/* salvage walks the sealed blocks from offset 0 */
		table *t;
		lost_log l = { 0 };
		ck_assert_int_eq(table_open_salvage_enc(path, 1, &keys, &t, NULL, 0), 0);
		ck_assert_uint_eq(salvage_count(t, &d, &l), d.n);
		ck_assert_int_eq(l.n, 0);
		table_unref(t);
		cache_free(c);
		free_dataset(&d);
		ck_assert_int_eq(unlink(path), 0);
	}
	cipher_ring_free(g);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A cursor stepping through an encrypted table keeps the blocks it steps
 * to out of the cache (a scan reads each once); the blocks seeks and
 * lookups land on go in, and a later scan uses them.
 */
START_TEST(test_enc_scan_leaves_cache)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	cipher_ring *g = tu_ring(1, 1, 1);
	sett_keys keys = cipher_ring_keys(g);
	dataset d;
	make_dataset(&d, 3000, 1, 1, 6);
	build_enc(path, &d, 1024, SETT_COMPRESS_NONE, g);
	cache *c;
	ck_assert_int_eq(cache_new(8 << 20, &c), 0);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open_enc(path, 1, c, &keys, &t, why, sizeof why), 0);
	cache_stats st;
	/* forward and backward: only the first and the last block are cached */
	sit *it = table_iter_new(t);
	ck_assert_ptr_nonnull(it);
	size_t i = 0;
	for (sit_first(it); sit_valid(it); sit_next(it), i++)
		check_at(it, &d, i);
	ck_assert_int_eq(sit_error(it), 0);
	ck_assert_uint_eq(i, d.n);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 1);
	for (sit_last(it); sit_valid(it); sit_prev(it))
		check_at(it, &d, --i);
	ck_assert_int_eq(sit_error(it), 0);
	ck_assert_uint_eq(i, 0);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 2);
	/* lookups fill the cache; a scan then finds every block there */
	check_all_gets(t, &d, 1);
	cache_stats filled;
	cache_get_stats(c, &filled);
	ck_assert_uint_gt(filled.entries, 20);
	for (sit_first(it), i = 0; sit_valid(it); sit_next(it), i++)
		check_at(it, &d, i);
	ck_assert_uint_eq(i, d.n);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, filled.entries);
	ck_assert_uint_eq(st.misses, filled.misses);
	sit_free(it);
	table_unref(t);
	cache_free(c);
	free_dataset(&d);
	cipher_ring_free(g);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Every flipped byte is reported (never a wrong answer), naming the block. */
START_TEST(test_enc_corrupt)
{
	cipher_ring *g = tu_ring(1, 1, 1);
	cache *c;
	ck_assert_int_eq(cache_new(1 << 20, &c), 0);
	corrupt_each(SETT_COMPRESS_NONE, NULL, g);
	corrupt_each(SETT_COMPRESS_ZSTD, c, g);
	cache_free(c);
	cipher_ring_free(g);
}
END_TEST

/*
 * Another key of the footer's id, none, or a ring without that id is
 * SETT_EKEY (for salvage too); after a rotation the old key still reads.
 */
START_TEST(test_enc_keys)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	cipher_ring *g1 = tu_ring(1, 1, 1), *other = tu_ring(1, 1, 2), *g12 = tu_ring(1, 2, 1),
		    *g2 = tu_ring(2, 2, 1);
	dataset d;
	make_dataset(&d, 2000, 0, 0, 9);
	build_enc(path, &d, 1024, SETT_COMPRESS_NONE, g1);
	sett_keys wrong = cipher_ring_keys(other), later = cipher_ring_keys(g12),
		  gone = cipher_ring_keys(g2);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open_enc(path, 1, NULL, &wrong, &t, why, sizeof why), SETT_EKEY);
	ck_assert_msg(strstr(why, path) && strstr(why, "data key 1") && strstr(why, "wrong key"),
		      "why: %s", why);
	ck_assert_int_eq(table_open(path, 1, NULL, &t, why, sizeof why), SETT_EKEY);
	ck_assert_int_eq(table_open_enc(path, 1, NULL, &gone, &t, why, sizeof why), SETT_EKEY);
	ck_assert_msg(strstr(why, "not in KEYREGISTRY"), "why: %s", why);
	ck_assert_int_eq(table_open_salvage_enc(path, 1, &wrong, &t, why, sizeof why), SETT_EKEY);
	ck_assert_int_eq(table_open_enc(path, 1, NULL, &later, &t, why, sizeof why), 0);
	check_all_gets(t, &d, 3);
	table_unref(t);
	/* a table built after the rotation names key 2 */
	char p2[4096];
	snprintf(p2, sizeof p2, "%s/000002.sst", dir);
	build_enc(p2, &d, 1024, SETT_COMPRESS_NONE, g12);
	ck_assert_int_eq(table_open_enc(p2, 2, NULL, &gone, &t, why, sizeof why), 0);
	table_unref(t);
	free_dataset(&d);
	cipher_ring_free(g1);
	cipher_ring_free(other);
	cipher_ring_free(g12);
	cipher_ring_free(g2);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Repair's salvage of an encrypted table: with the index damaged every
 * data block is still found; with a data block damaged, the walk finds the
 * blocks after it and reports the lost stretch.
 */
START_TEST(test_enc_salvage)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	cipher_ring *g = tu_ring(1, 1, 1);
	sett_keys keys = cipher_ring_keys(g);
	dataset d;
	make_dataset(&d, 3000, 0, 0, 11);
	as_vstructs(&d);
	build_enc(path, &d, 1024, SETT_COMPRESS_NONE, g);
	long long size;
	uint8_t *all = load_file(path, &size);
	uint64_t index_off = get_le64(all + size - TABLE_ENC_FOOTER_SIZE + 16);
	free(all);
	tu_flip_byte(path, (long long)index_off + 7);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open_enc(path, 1, NULL, &keys, &t, why, sizeof why), SETT_ECORRUPT);
	int sr = table_open_salvage_enc(path, 1, &keys, &t, why, sizeof why);
	ck_assert_msg(sr == 0, "salvage: %d %s", sr, why);
	lost_log l = { 0 };
	ck_assert_uint_eq(salvage_count(t, &d, &l), d.n);
	ck_assert_int_eq(l.n, 0);
	table_unref(t);
	tu_flip_byte(path, (long long)index_off + 7);
	/* the third data block's length field and ciphertext */
	ck_assert_int_eq(table_open_enc(path, 1, NULL, &keys, &t, why, sizeof why), 0);
	table_unref(t);
	all = load_file(path, &size);
	uint64_t b2 = 0;
	for (int i = 0; i < 2; i++)
		b2 += get_le32(all + b2) + CIPHER_REC_OVERHEAD;
	uint64_t b3 = b2 + get_le32(all + b2) + CIPHER_REC_OVERHEAD;
	free(all);
	tu_flip_byte(path, (long long)b2 + 1);
	tu_flip_byte(path, (long long)b2 + 40);
	ck_assert_int_eq(table_open_salvage_enc(path, 1, &keys, &t, why, sizeof why), 0);
	size_t n = salvage_count(t, &d, &l);
	ck_assert_uint_lt(n, d.n);
	ck_assert_uint_gt(n, d.n / 2);
	ck_assert_int_eq(l.n, 1);
	char off[64];
	snprintf(off, sizeof off, "damaged bytes before offset %llu", (unsigned long long)b3);
	ck_assert_msg(strstr(l.why, off), "why: %s", l.why);
	table_unref(t);
	free_dataset(&d);
	cipher_ring_free(g);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Without a cipher the table is the plaintext format; an encrypted store's keys refuse it. */
START_TEST(test_plain_unchanged)
{
	char *dir = tu_tmpdir("table");
	char path[4096];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	dataset d;
	make_dataset(&d, 500, 0, 1, 4);
	table_options o = topts(1024, SETT_COMPRESS_NONE);
	build(path, &d, &o);
	long long size;
	uint8_t *all = load_file(path, &size);
	ck_assert(memcmp(all + size - 8, "SETTSST1", 8) == 0);
	ck_assert(tu_file_contains(path, "quick brown", 11));
	free(all);
	cipher_ring *g = tu_ring(1, 1, 1);
	sett_keys keys = cipher_ring_keys(g);
	table *t;
	char why[256];
	ck_assert_int_eq(table_open_enc(path, 1, NULL, NULL, &t, why, sizeof why), 0);
	check_all_gets(t, &d, 1);
	table_unref(t);
	/* with an encrypted store's keys a plaintext table is refused, unread */
	ck_assert_int_eq(table_open_enc(path, 1, NULL, &keys, &t, why, sizeof why), SETT_ECORRUPT);
	ck_assert_msg(strstr(why, "plaintext file in an encrypted store"), "%s", why);
	ck_assert_int_eq(table_open_salvage_enc(path, 1, &keys, &t, why, sizeof why), SETT_ECORRUPT);
	cipher_ring_free(g);
	free_dataset(&d);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

static void add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("table");
	add(s, "roundtrip_100k", test_roundtrip_100k);
	add(s, "compression", test_compression);
	add(s, "bloom_rate", test_bloom_rate);
	add(s, "table_bloom", test_table_bloom);
	add(s, "corrupt_raw", test_corrupt_raw);
	add(s, "corrupt_zstd_cached", test_corrupt_zstd_cached);
	add(s, "format_version", test_format_version);
	add(s, "verify_restarts", test_verify_restarts);
	add(s, "verify_bloom", test_verify_bloom);
	add(s, "empty_and_order", test_empty_and_order);
	add(s, "obsolete_unlink", test_obsolete_unlink);
	add(s, "concurrent_gets", test_concurrent_gets);
	add(s, "write_failure", test_write_failure);
	add(s, "truncated_while_open", test_truncated_while_open);
	add(s, "mapguard_catches", test_mapguard_catches);
	add(s, "mapguard_outside_kills", test_mapguard_outside_kills);
	add(s, "enc_roundtrip", test_enc_roundtrip);
	add(s, "enc_corrupt", test_enc_corrupt);
	add(s, "enc_scan_leaves_cache", test_enc_scan_leaves_cache);
	add(s, "enc_keys", test_enc_keys);
	add(s, "enc_salvage", test_enc_salvage);
	add(s, "plain_unchanged", test_plain_unchanged);
	return tu_run(s);
}
