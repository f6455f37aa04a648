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
