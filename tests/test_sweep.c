/*
 * test_sweep.c - the corruption sweep (issue 9): a small settfs store with
 * known files (several sizes, in a directory tree, with xattrs; two
 * tables, the value log, and a WAL that was not replayed yet) is damaged
 * one way at a time: each kind of store file (.sst, .vlog, .mem, MANIFEST,
 * KEYREGISTRY, DISCARD) cut at several lengths and with a byte flipped at
 * many offsets.  For each damaged copy:
 *
 *  - fsck.settfs (when built next to the tests) never crashes or hangs;
 *  - settfs_open (as a mount opens: writable, falling back to a read-only
 *    degraded open) and reading every file never crash or hang (a child
 *    process under an alarm), and every read returns exactly the bytes
 *    written or -EIO; a name that is missing without an error is a
 *    failure too;
 *  - when the open or a read met the damage, fsck exits non-zero.
 *
 * A cut WAL (.mem) is not swept: a record cut short is a torn tail by the
 * format's rule (doc/FORMAT.md, "Torn tails"), which drops the writes it
 * held the way a crash before their sync would; flips are swept.  For the
 * same reason a cut value log may take the WAL's writes with it (replay
 * stops at a batch that points past the value log, as after a power cut
 * that kept the WAL but not the value log): then the files written last
 * (wal/) may read as they were before, missing or shorter, but never as
 * other bytes.
 *
 * SETTFS_SWEEP_OFFSETS (default 48) sets the flipped offsets per kind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "discard.h"
#include "settfs.h"
#include "testutil.h"

static const settfs_ctx root_ctx = { 0, 0, NULL, 0, 0 };

/* The known content: files by path, their bytes and one xattr. */
typedef struct mfile {
	const char *path; /* under the root, '/'-separated */
	size_t size;
	int seed;
	const char *xattr; /* "user.x" = path, or NULL */
} mfile;

static const mfile files[] = {
	{ "empty", 0, 1, NULL },
	{ "one", 1, 2, "user.tag" },
	{ "small", 100, 3, NULL },
	{ "page", 4095, 4, "user.tag" },
	{ "d1/inline", 1500, 5, NULL },
	{ "d1/vlog", 5000, 6, "user.tag" },
	{ "d1/d2/two_chunks", 70000, 7, NULL },
	{ "d1/d2/d3/big", 200000, 8, "user.tag" },
	{ "d4/rewritten", 3000, 9, NULL },   /* written again in the second phase */
	{ "d4/second", 9000, 10, "user.tag" }, /* second phase: the second table */
	{ "wal/late", 600, 11, "user.tag" },  /* third phase: only in the WAL */
	{ "wal/late_vlog", 8000, 12, NULL },
};
#define NFILES (sizeof files / sizeof *files)

static void content(const mfile *f, uint8_t *p)
{
	uint64_t s = (uint64_t)f->seed * 0x9e3779b97f4a7c15ull + 1;
	tu_fill_random(&s, p, f->size);
}

static char *base;

static settfs_options opts(void)
{
	settfs_options o;
	settfs_options_init(&o);
	o.engine.mem_table_size = 1u << 20;
	o.engine.gc_discard_ratio = 0;
	return o;
}

/* Looks up (and with create, makes) the directories of path; returns the parent's inode. */
static uint64_t parent_of(settfs *fs, const char *path, const char **leaf, int create, int *err)
{
	uint64_t dir = SETTFS_ROOT_INO;
	char comp[256];
	const char *p = path, *slash;
	*err = 0;
	while ((slash = strchr(p, '/'))) {
		size_t n = (size_t)(slash - p);
		memcpy(comp, p, n);
		comp[n] = 0;
		struct stat st;
		int r = settfs_lookup(fs, dir, comp, &st);
		if (r == -ENOENT && create)
			r = settfs_mkdir(fs, &root_ctx, dir, comp, 0755, &st);
		if (r) {
			*err = r;
			return 0;
		}
		settfs_forget(fs, st.st_ino, 1);
		dir = st.st_ino;
		p = slash + 1;
	}
	*leaf = p;
	return dir;
}

static void write_file(settfs *fs, const mfile *f)
{
	const char *leaf;
	int err;
	uint64_t dir = parent_of(fs, f->path, &leaf, 1, &err);
	ck_assert_msg(err == 0, "%s: %d", f->path, err);
	struct stat st;
	ck_assert_int_eq(settfs_create(fs, &root_ctx, dir, leaf, 0644, O_RDWR | O_TRUNC, &st), 0);
	uint8_t *p = malloc(f->size + 1);
	content(f, p);
	for (size_t off = 0; off < f->size; off += 32768) {
		size_t n = f->size - off < 32768 ? f->size - off : 32768;
		ck_assert_int_eq(settfs_write(fs, st.st_ino, (off_t)off, p + off, n, 0), (ssize_t)n);
	}
	if (f->xattr)
		ck_assert_int_eq(settfs_setxattr(fs, st.st_ino, f->xattr, f->path, strlen(f->path), 0),
				 0);
	ck_assert_int_eq(settfs_fsync(fs, st.st_ino, 0), 0);
	ck_assert_int_eq(settfs_release(fs, st.st_ino, O_RDWR), 0);
	settfs_forget(fs, st.st_ino, 1);
	free(p);
}

/* Builds the base store: two tables, the value log, then writes only in the WAL. */
static void build_base(void)
{
	base = tu_tmpdir("sweep-base");
	settfs_options o = opts();
	settfs *fs;
	ck_assert_int_eq(settfs_open(base, &o, &fs), 0);
	uint8_t junk[3000];
	memset(junk, 'j', sizeof junk);
	for (size_t i = 0; i < NFILES; i++)
		if (!strncmp(files[i].path, "d4/rewritten", 12)) {
			/* an older version, replaced in the second phase */
			mfile old = files[i];
			old.seed = 99;
			write_file(fs, &old);
		} else if (strncmp(files[i].path, "d4/", 3) && strncmp(files[i].path, "wal/", 4)) {
			write_file(fs, &files[i]);
		}
	ck_assert_int_eq(settfs_close(fs), 0);
	ck_assert_int_eq(settfs_open(base, &o, &fs), 0);
	for (size_t i = 0; i < NFILES; i++)
		if (!strncmp(files[i].path, "d4/", 3))
			write_file(fs, &files[i]);
	ck_assert_int_eq(settfs_close(fs), 0);
	/* the last writes are durable in the WAL and the value log only: no close */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (settfs_open(base, &o, &fs))
			_exit(1);
		for (size_t i = 0; i < NFILES; i++)
			if (!strncmp(files[i].path, "wal/", 4))
				write_file(fs, &files[i]);
		ck_assert_int_eq(settfs_sync(fs), 0);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/*
	 * DISCARD is written by compaction and GC, which a store this small
	 * does not start: record the replaced version of d4/rewritten.
	 */
	discard *d;
	ck_assert_int_eq(discard_new(base, 0, &d), 0);
	discard_add(d, 1, 3000);
	ck_assert_int_eq(discard_persist(d), 0);
	ck_assert_int_eq(discard_close(d), 0);
}

static void drop_base(void)
{
	tu_rmrf(base);
	free(base);
}

/*
 * In a child: opens the store and reads every known file.  Exit status:
 * 0 all read back, 1 some met damage (-EIO), 2 the open was refused, 3
 * wrong bytes or a silently missing name (said on stderr).
 */
static int check_store(const char *dir, int torn_ok)
{
	settfs_options o = opts();
	settfs *fs;
	int r = settfs_open(dir, &o, &fs);
	if (r)
		return 2;
	int hit = settfs_degraded(fs), wrong = 0;
	uint8_t *want = malloc(200001), *got = malloc(200001);
	for (size_t i = 0; i < NFILES && !wrong; i++) {
		const mfile *f = &files[i];
		const char *leaf;
		int err;
		uint64_t pdir = parent_of(fs, f->path, &leaf, 0, &err);
		struct stat st;
		if (!err)
			err = settfs_lookup(fs, pdir, leaf, &st);
		int torn = torn_ok && !strncmp(f->path, "wal/", 4);
		if (err == -EIO) {
			hit = 1;
			continue;
		}
		if (err == -ENOENT && torn)
			continue; /* as after a crash: not damage fsck can see */
		if (err) {
			fprintf(stderr, "%s: %s: lookup %d\n", dir, f->path, err);
			wrong = 1;
			break;
		}
		content(f, want);
		ssize_t n = settfs_read(fs, st.st_ino, 0, f->size + 1, got);
		if (n == -EIO) {
			hit = 1;
		} else if (torn && n >= 0 && n < (ssize_t)f->size && st.st_size == n &&
			   memcmp(got, want, (size_t)n) == 0) {
			/* as after a crash */
		} else if (n != (ssize_t)f->size || memcmp(got, want, f->size) != 0 ||
			   st.st_size != (off_t)f->size) {
			fprintf(stderr, "%s: %s: read %zd of %zu bytes, size %lld, %s\n", dir, f->path,
				n, f->size, (long long)st.st_size,
				n == (ssize_t)f->size ? "different bytes" : "wrong length");
			wrong = 1;
		}
		if (f->xattr && !wrong) {
			char x[256];
			ssize_t xn = settfs_getxattr(fs, st.st_ino, f->xattr, x, sizeof x);
			if (xn == -EIO)
				hit = 1;
			else if (xn != (ssize_t)strlen(f->path) || memcmp(x, f->path, (size_t)xn)) {
				fprintf(stderr, "%s: %s: xattr %zd\n", dir, f->path, xn);
				wrong = 1;
			}
		}
		settfs_forget(fs, st.st_ino, 1);
	}
	free(want);
	free(got);
	settfs_close(fs); /* a failure here (say, a flush meeting damage) is not a wrong read */
	return wrong ? 3 : hit;
}

/* Runs check_store in a child under an alarm: its exit status, or fails the test. */
static int run_check(const char *dir, const char *what, int torn_ok)
{
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(60);
		_exit(check_store(dir, torn_ok));
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(!WIFSIGNALED(st), "%s: open/read died of signal %d%s", what, WTERMSIG(st),
		      WTERMSIG(st) == SIGALRM ? " (hang)" : "");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 3, "%s: a read returned wrong bytes",
		      what);
	/* anything else: a sanitizer's report (ASAN_OPTIONS=exitcode=99, say) */
	ck_assert_msg(WEXITSTATUS(st) <= 2, "%s: open/read exited %d", what, WEXITSTATUS(st));
	return WEXITSTATUS(st);
}

/* fsck.settfs on dir under a time limit: its exit status, or -1 when not built. */
static int run_fsck(const char *dir, const char *what)
{
	if (access("./fsck.settfs", X_OK) != 0)
		return -1;
	char cmd[4400];
	snprintf(cmd, sizeof cmd, "timeout -s KILL 60 ./fsck.settfs -q %s >/dev/null 2>&1", dir);
	int st = system(cmd);
	ck_assert_msg(WIFEXITED(st), "%s: fsck: status %d", what, st);
	int rc = WEXITSTATUS(st);
	ck_assert_msg(rc < 124, "%s: fsck crashed or hung (%d)", what, rc);
	ck_assert_msg(rc <= 8, "%s: fsck exited %d", what, rc); /* 8: operational error */
	return rc;
}

/* The largest file of the store whose name ends in suffix (or is suffix). */
static int store_file(const char *dir, const char *suffix, char *name, size_t n)
{
	DIR *d = opendir(dir);
	ck_assert(d);
	long long best = -1;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < sl || strcmp(de->d_name + l - sl, suffix))
			continue;
		char p[4400];
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (tu_file_size(p) > best) {
			best = tu_file_size(p);
			snprintf(name, n, "%s", de->d_name);
		}
	}
	closedir(d);
	return best > 0;
}

static int counts[4]; /* cases by run_check's status (3 is a failure) */
static int nofsck;

/* One damaged copy: cut to `cut` bytes (>= 0) or flip the byte at `flip`. */
static void one_case(const char *name, long long cut, long long flip)
{
	char *work = tu_tmpdir("sweep");
	char cmd[8800], path[4400], what[4600];
	snprintf(cmd, sizeof cmd, "cp -a %s/. %s/", base, work);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof path, "%s/%s", work, name);
	if (cut >= 0) {
		ck_assert_int_eq(truncate(path, cut), 0);
		snprintf(what, sizeof what, "%s cut to %lld", name, cut);
	} else {
		tu_flip_byte(path, flip);
		snprintf(what, sizeof what, "%s flipped at %lld", name, flip);
	}
	int fsck = run_fsck(work, what);
	int hit = run_check(work, what, cut >= 0 && strstr(name, ".vlog") != NULL);
	if (hit && fsck >= 0)
		ck_assert_msg(fsck != 0, "%s: reads met damage, fsck says clean", what);
	counts[hit]++;
	nofsck += fsck < 0;
	tu_rmrf(work);
	free(work);
}

static void sweep(const char *suffix, int cuts)
{
	char name[256];
	if (!store_file(base, suffix, name, sizeof name))
		return; /* the store has no such file */
	char path[4400];
	snprintf(path, sizeof path, "%s/%s", base, name);
	long long size = tu_file_size(path);
	const char *env = getenv("SETTFS_SWEEP_OFFSETS");
	long nflip = env ? strtol(env, NULL, 10) : 48;
	if (cuts) {
		long long at[] = { 0, 1, 16, 23, 24, 25, size / 3, size / 2, size - 68, size - 9,
				   size - 1 };
		for (size_t i = 0; i < sizeof at / sizeof *at; i++)
			if (at[i] >= 0 && at[i] < size)
				one_case(name, at[i], -1);
	}
	/* the first bytes (headers) one by one, then spread, then the last ones (footers) */
	uint64_t seed = (uint64_t)size;
	for (long i = 0; i < nflip; i++) {
		long long off;
		if (i < nflip / 4)
			off = i;
		else if (i >= nflip - nflip / 4)
			off = size - 1 - (nflip - 1 - i);
		else
			off = (long long)(tu_rand(&seed) % (uint64_t)size);
		if (off >= 0 && off < size)
			one_case(name, -1, off);
	}
	printf("sweep %s: %d cases read back whole, %d opened with EIO reads, %d refused "
	       "(fsck: non-zero for each of those; not run %d times)\n",
	       name, counts[0], counts[1], counts[2], nofsck);
	fflush(stdout);
}

START_TEST(test_sweep_base_reads_back)
{
	char *work = tu_tmpdir("sweep");
	char cmd[8800];
	snprintf(cmd, sizeof cmd, "cp -a %s/. %s/", base, work);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(run_check(work, "undamaged", 0), 0);
	ck_assert_int_le(run_fsck(work, "undamaged"), 0);
	tu_rmrf(work);
	free(work);
}
END_TEST

START_TEST(test_sweep_sst) { sweep(".sst", 1); }
END_TEST
START_TEST(test_sweep_vlog) { sweep(".vlog", 1); }
END_TEST
START_TEST(test_sweep_wal) { sweep(".mem", 0); }
END_TEST
START_TEST(test_sweep_manifest) { sweep("MANIFEST", 1); }
END_TEST
START_TEST(test_sweep_keyregistry) { sweep("KEYREGISTRY", 1); }
END_TEST
START_TEST(test_sweep_discard) { sweep("DISCARD", 1); }
END_TEST

int main(void)
{
	Suite *s = suite_create("sweep");
	TCase *tc = tcase_create("sweep");
	tcase_add_unchecked_fixture(tc, build_base, drop_base);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_sweep_base_reads_back);
	tcase_add_test(tc, test_sweep_sst);
	tcase_add_test(tc, test_sweep_vlog);
	tcase_add_test(tc, test_sweep_wal);
	tcase_add_test(tc, test_sweep_manifest);
	tcase_add_test(tc, test_sweep_keyregistry);
	tcase_add_test(tc, test_sweep_discard);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
