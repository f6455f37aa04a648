/* testutil.c - helpers shared by the Check suites. */
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cipher.h"
#include "keyregistry.h"

void tu_append_claims(const char *path, size_t n, size_t sealed_overhead, int past_end)
{
	uint8_t *t = malloc(n);
	ck_assert_ptr_nonnull(t);
	memset(t, 0x5a, n);
	if (sealed_overhead) {
		for (size_t c = 0; c + 12 + sealed_overhead + 1 < n; c += 12) {
			uint32_t len = (uint32_t)(c == 0 && past_end ? 2 * n
								 : n - 1 - c - sealed_overhead);
			for (int i = 0; i < 4; i++)
				t[c + (size_t)i] = (uint8_t)(len >> (8 * i));
		}
	} else {
		/* meta 0, user meta 0, key length 11, a 4-byte value length, expiry 0 */
		for (size_t c = 0; c + 8 + 64 < n; c += 8) {
			size_t vlen = c == 0 && past_end ? 2 * n : n - 1 - c - 8 - 11 - 8;
			uint8_t h[8] = { 0, 0, 11, (uint8_t)(0x80 | (vlen & 0x7f)),
					 (uint8_t)(0x80 | ((vlen >> 7) & 0x7f)),
					 (uint8_t)(0x80 | ((vlen >> 14) & 0x7f)),
					 (uint8_t)((vlen >> 21) & 0x7f), 0 };
			memcpy(t + c, h, sizeof h);
		}
	}
	FILE *f = fopen(path, "ab");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(t, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
	free(t);
}

char *tu_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/sett-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	char *d = mkdtemp(tmpl);
	ck_assert_msg(d != NULL, "mkdtemp %s failed", tmpl);
	return strdup(d);
}

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(p);
}

void tu_rmrf(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t tu_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void tu_fill_random(uint64_t *s, void *p, size_t n)
{
	unsigned char *c = p;
	while (n >= 8) {
		uint64_t r = tu_rand(s);
		memcpy(c, &r, 8);
		c += 8;
		n -= 8;
	}
	if (n) {
		uint64_t r = tu_rand(s);
		memcpy(c, &r, n);
	}
}

long long tu_file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	return (long long)st.st_size;
}

uint8_t *tu_slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "open %s", path);
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *p = malloc((size_t)sz + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	*n = (size_t)sz;
	return p;
}

int tu_contains(const uint8_t *p, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(p + i, needle, m) == 0)
			return 1;
	return 0;
}

void tu_flip_byte(const char *path, long long off)
{
	int fd = open(path, O_RDWR);
	ck_assert_msg(fd >= 0, "open %s", path);
	unsigned char c;
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

int tu_find_file(const char *dir, const char *suffix, char *out, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name), s = strlen(suffix);
		if (l > s && strcmp(de->d_name + l - s, suffix) == 0) {
			snprintf(out, n, "%s/%s", dir, de->d_name);
			found = 1;
			break;
		}
	}
	if (d)
		closedir(d);
	return found;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ULL;
	return h;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t digest(uint64_t h, const char *dir)
{
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "opendir %s", dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "LOCK"))
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		h = fnv(h, names[i], strlen(names[i]) + 1);
		struct stat st;
		ck_assert_int_eq(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			h = digest(fnv(h, "/", 1), path);
		} else {
			int fd = open(path, O_RDONLY);
			ck_assert_msg(fd >= 0, "open %s", path);
			char b[65536];
			ssize_t k;
			while ((k = read(fd, b, sizeof b)) > 0)
				h = fnv(h, b, (size_t)k);
			close(fd);
			h = fnv(h, &st.st_size, sizeof st.st_size);
		}
		free(names[i]);
	}
	free(names);
	return h;
}

uint64_t tu_dir_digest(const char *dir)
{
	return digest(0xcbf29ce484222325ULL, dir);
}

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

uint64_t tu_dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	ck_assert(d != NULL);
	uint64_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char p[4096];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			n += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

int tu_file_contains(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "open %s", path);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *all = malloc(size > 0 ? (size_t)size : 1);
	ck_assert(fread(all, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	int found = memmem(all, (size_t)size, p, n) != NULL;
	free(all);
	return found;
}

struct cipher_ring *tu_ring(uint64_t first, uint64_t last, unsigned seed)
{
	keyreg kr = { 0 };
	kr.n = (size_t)(last - first + 1);
	kr.keys = calloc(kr.n, sizeof *kr.keys);
	for (size_t i = 0; i < kr.n; i++) {
		kr.keys[i].id = first + i;
		for (int j = 0; j < CRYPT_KEY_SIZE; j++)
			kr.keys[i].key[j] = (uint8_t)(seed * 131 + (first + i) * 17 + (unsigned)j);
	}
	cipher_ring *g = NULL;
	ck_assert_int_eq(cipher_ring_new(&kr, &g), 0);
	free(kr.keys);
	return g;
}

int tu_mem_write(void *arg, const void *p, size_t n)
{
	tu_mem *m = arg;
	if (m->n + n > m->cap) {
		m->cap = (m->n + n) * 2;
		m->p = realloc(m->p, m->cap);
		if (!m->p)
			abort();
	}
	memcpy(m->p + m->n, p, n);
	m->n += n;
	return 0;
}

long tu_mem_read(void *arg, void *p, size_t n)
{
	tu_mem *m = arg;
	size_t left = m->n - m->pos;
	if (n > 777)
		n = 777;
	if (n > left)
		n = left;
	memcpy(p, m->p + m->pos, n);
	m->pos += n;
	return (long)n;
}

void tu_small_options(sett_options *o, uint64_t value_log_file_size)
{
	sett_options_init(o);
	o->mem_table_size = 256u << 10;
	o->value_threshold = 1024;
	o->value_log_file_size = value_log_file_size;
	o->base_table_size = 64u << 10;
	o->base_level_size = 256u << 10;
	o->num_level_zero_tables = 2;
	o->num_level_zero_tables_stall = 6;
	o->block_cache_size = 1u << 20;
	o->gc_discard_ratio = 0;
}
