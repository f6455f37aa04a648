/*
 * test_encrypt.c - a store encrypted at rest, through sett_open.
 *
 * - A store holding a known key, a small value (in the LSM) and a large one
 *   (in the value log), a pin name and a dropped prefix, written, flushed,
 *   compacted, GC'd and reopened: no file of the store (MANIFEST, WALs,
 *   tables, value log, KEYREGISTRY, DISCARD, everything in the directory)
 *   holds any of them, nor the master key or a data key, and the values
 *   read back.  The same steps without a key leave them visible (the
 *   check finds what it looks for).
 * - The wrong key, no key, the other kind of key, and a key for an
 *   unencrypted store are SETT_EKEY at open, read-only or not, and change
 *   nothing on disk.
 * - A flipped byte in the ciphertext of each file kind is reported
 *   (SETT_ECORRUPT or EIO at open, at a read or by sett_verify), and no
 *   read returns other bytes than were written.
 * - Key rotation across reopen: with the current key older than
 *   key_rotation_days, a writable open adds a key; old data stays
 *   readable, and the files written after it (a table, a WAL, the
 *   MANIFEST) name the new key and open with it alone.
 * - A passphrase store: created, reopened, the wrong passphrase refused.
 * - sett_repair of an encrypted store needs its key and keeps the files
 *   encrypted.
 * - The encrypted MANIFEST itself: no pin name in the file; no key or
 *   another's is SETT_EKEY; a flipped byte of a complete record is
 *   SETT_ECORRUPT at its offset; a zero tail is torn and cut; a file found
 *   at open is rewritten under a new salt at its first change (its last
 *   counters are unknown), one written by this process is appended to; a
 *   plain MANIFEST where the store has keys is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cipher.h"
#include "coding.h"
#include "db_impl.h"
#include "keyregistry.h"
#include "manifest.h"
#include "sett.h"
#include "table.h"
#include "testutil.h"

static const uint8_t KEY1[32] = "encrypt-test-master-key-one-0001";
static const uint8_t KEY2[32] = "encrypt-test-master-key-two-0002";

#define SECRET_KEY "Kx-secret-user-key-4471"
#define SMALL_VALUE "small-secret-value-9923"
#define LARGE_MARK "LARGE-secret-value-5521:"
#define PIN_NAME "pin-secret-name-3310"
#define DROP_PREFIX "drop-secret-prefix-8812/"

static char large_value[4096];

static void init_large(void)
{
	size_t m = strlen(LARGE_MARK);
	for (size_t i = 0; i + m <= sizeof large_value; i += m)
		memcpy(large_value + i, LARGE_MARK, m);
}

static sett_val sv(const char *s)
{
	return (sett_val){ strlen(s), s };
}

static void small_opts(sett_options *o, const uint8_t *key, char *why, size_t whylen)
{
	sett_options_init(o);
	o->mem_table_size = 64 << 10;
	o->value_threshold = 256;
	o->value_log_file_size = 1 << 16;
	o->gc_interval_ms = 1 << 30;
	o->gc_discard_ratio = 0;
	o->encryption_key = key;
	o->error_buf = why;
	o->error_buf_size = whylen;
}



/*
 * The first file under dir (recursively) holding needle, into `found`
 * (empty if none); the number of regular files looked at.
 */
static int find_in_files(const char *dir, const void *needle, size_t m, char *found, size_t fn)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		struct stat st;
		ck_assert_int_eq(lstat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			files += find_in_files(path, needle, m, found, fn);
			continue;
		}
		files++;
		size_t n;
		uint8_t *p = tu_slurp(path, &n);
		if (!found[0] && tu_contains(p, n, needle, m))
			snprintf(found, fn, "%s", path);
		free(p);
	}
	closedir(d);
	return files;
}

static int dir_has_file(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), s = strlen(suffix);
		n += l > s && strcmp(de->d_name + l - s, suffix) == 0;
	}
	closedir(d);
	return n;
}

static void expect_value(sett_db *db, const char *key, const void *want, size_t wn)
{
	void *v;
	size_t n;
	int r = sett_get(db, sv(key), 0, &v, &n);
	ck_assert_msg(r == 0, "get %s: %d", key, r);
	ck_assert_uint_eq(n, wn);
	ck_assert_mem_eq(v, want, wn);
	free(v);
}

/*
 * The known contents through every kind of write: WAL, flush to a table,
 * the value log, a pin and a prefix drop in the MANIFEST, overwrites for
 * compaction and GC to act on.
 */
static void fill(sett_db *db)
{
	ck_assert_int_eq(sett_put(db, sv(SECRET_KEY), sv(SMALL_VALUE)), 0);
	ck_assert_int_eq(sett_put(db, sv(SECRET_KEY "-large"),
				  (sett_val){ sizeof large_value, large_value }), 0);
	ck_assert_int_eq(sett_put(db, sv(DROP_PREFIX "a"), sv("x")), 0);
	ck_assert_int_eq(sett_sync(db), 0);
	uint64_t pinned;
	ck_assert_int_eq(sett_pin(db, PIN_NAME, 0, &pinned), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	/* garbage for GC: overwritten large values (in their own files) */
	char k[64], big[2048];
	memset(big, 'g', sizeof big);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 60; i++) {
			snprintf(k, sizeof k, "filler-%03d", i);
			ck_assert_int_eq(sett_put(db, sv(k), (sett_val){ sizeof big, big }), 0);
		}
		ck_assert_int_eq(sett_flush(db), 0);
	}
	ck_assert_int_eq(sett_unpin(db, PIN_NAME), 0);
	ck_assert_int_eq(sett_drop_prefix(db, sv(DROP_PREFIX)), 0);
	ck_assert_int_eq(sett_flatten(db), 0);
	int r = sett_gc(db, 0.01);
	ck_assert_msg(r == 0 || r == SETT_ENOREWRITE, "gc: %d", r);
}

static const char *const needles[] = { SECRET_KEY, SMALL_VALUE, LARGE_MARK, PIN_NAME,
				       DROP_PREFIX };

/* Which needle is in which file (the first found), into out; 0 if none. */
static int plaintext_in(const char *dir, char *out, size_t n)
{
	out[0] = 0;
	for (size_t i = 0; i < sizeof needles / sizeof *needles && !out[0]; i++) {
		char found[4096] = "";
		find_in_files(dir, needles[i], strlen(needles[i]), found, sizeof found);
		if (found[0])
			snprintf(out, n, "\"%s\" in %s", needles[i], found);
	}
	return out[0] != 0;
}

START_TEST(test_no_plaintext)
{
	init_large();
	char why[512] = "", where[4300];
	for (int enc = 0; enc < 2; enc++) {
		char *dir = tu_tmpdir("encrypt");
		sett_options o;
		small_opts(&o, enc ? KEY1 : NULL, why, sizeof why);
		sett_db *db;
		ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
		fill(db);
		/* at rest while open: WAL, tables, value log, MANIFEST */
		ck_assert_int_eq(sett_sync(db), 0);
		ck_assert_msg(plaintext_in(dir, where, sizeof where) == !enc, "%s", where);
		ck_assert_int_eq(sett_close(db), 0);
		ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
		expect_value(db, SECRET_KEY, SMALL_VALUE, strlen(SMALL_VALUE));
		expect_value(db, SECRET_KEY "-large", large_value, sizeof large_value);
		/* a WAL with writes in it, and every file written since reopen */
		ck_assert_int_eq(sett_put(db, sv(SECRET_KEY "-2"), sv(SMALL_VALUE)), 0);
		ck_assert_int_eq(sett_sync(db), 0);
		ck_assert(dir_has_file(dir, ".mem") && dir_has_file(dir, ".sst") &&
			  dir_has_file(dir, ".vlog"));
		ck_assert_msg(plaintext_in(dir, where, sizeof where) == !enc, "%s", where);
		ck_assert_int_eq(sett_close(db), 0);
		ck_assert_msg(plaintext_in(dir, where, sizeof where) == !enc, "%s", where);
		if (enc) {
			/* neither the master key nor a data key is in a file */
			char found[4096] = "";
			find_in_files(dir, KEY1, sizeof KEY1, found, sizeof found);
			keyreg_master m = { .key = KEY1 };
			keyreg *kr;
			ck_assert_int_eq(keyreg_open(dir, &m, 1, 0, &kr, why, sizeof why), 0);
			for (size_t i = 0; i < kr->n; i++)
				find_in_files(dir, kr->keys[i].key, 32, found, sizeof found);
			keyreg_free(kr);
			ck_assert_msg(!found[0], "key material in %s", found);
		}
		tu_rmrf(dir);
		free(dir);
	}
}
END_TEST

/* An encrypted store under KEY1 holding SECRET_KEY, closed. */
static char *encrypted_store(void)
{
	char *dir = tu_tmpdir("encrypt");
	char why[512] = "";
	sett_options o;
	small_opts(&o, KEY1, why, sizeof why);
	sett_db *db;
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	ck_assert_int_eq(sett_put(db, sv(SECRET_KEY), sv(SMALL_VALUE)), 0);
	ck_assert_int_eq(sett_close(db), 0);
	return dir;
}

START_TEST(test_wrong_key)
{
	char why[512] = "";
	char *dir = encrypted_store();
	uint64_t digest = tu_dir_digest(dir);
	sett_options o;
	sett_db *db;
	for (int ro = 0; ro < 2; ro++) {
		small_opts(&o, KEY2, why, sizeof why);
		o.read_only = ro;
		ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
		ck_assert_msg(strstr(why, "KEYREGISTRY") && strstr(why, "wrong master key"), "%s",
			      why);
		o.encryption_key = NULL;
		ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
		ck_assert_msg(strstr(why, "master key is needed"), "%s", why);
		o.encryption_passphrase = "passphrase";
		ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
		ck_assert_uint_eq(tu_dir_digest(dir), digest);
	}
	/* the right key opens it */
	small_opts(&o, KEY1, why, sizeof why);
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	expect_value(db, SECRET_KEY, SMALL_VALUE, strlen(SMALL_VALUE));
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);

	/* an unencrypted store opened with a key: SETT_EKEY, nothing written */
	dir = tu_tmpdir("encrypt");
	small_opts(&o, NULL, why, sizeof why);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_put(db, sv("k"), sv("v")), 0);
	ck_assert_int_eq(sett_close(db), 0);
	digest = tu_dir_digest(dir);
	for (int ro = 0; ro < 2; ro++) {
		small_opts(&o, KEY1, why, sizeof why);
		o.read_only = ro;
		ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
		ck_assert_msg(strstr(why, "not encrypted"), "%s", why);
	}
	/* nor does one whose KEYREGISTRY is missing become encrypted */
	char path[4200];
	snprintf(path, sizeof path, "%s/KEYREGISTRY", dir);
	ck_assert_int_eq(unlink(path), 0);
	uint64_t digest2 = tu_dir_digest(dir);
	small_opts(&o, KEY1, why, sizeof why);
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	ck_assert_uint_eq(tu_dir_digest(dir), digest2);
	small_opts(&o, NULL, why, sizeof why);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_uint_eq(tu_dir_digest(dir), digest); /* the 24-byte registry again */
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * A crash image: a child opens the store, writes, syncs and exits without
 * closing, leaving a WAL with the writes next to the tables and value log.
 */
static void crash_with_wal(const char *dir, const sett_options *o)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sett_db *db;
		if (sett_open(dir, o, &db) != 0)
			_exit(1);
		if (sett_put(db, sv(SECRET_KEY "-wal"), sv(SMALL_VALUE)) != 0 ||
		    sett_put(db, sv(SECRET_KEY "-wal-large"),
			     (sett_val){ sizeof large_value, large_value }) != 0 ||
		    sett_sync(db) != 0)
			_exit(2);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void count_report(void *arg, const char *why)
{
	(void)why;
	(*(int *)arg)++;
}

/*
 * Opens dir read-only and reads every key: whether anything reported the
 * damage (open, a read, or sett_verify), with every value read being the
 * one written.  A magic number that is not one's own (`magic`: the flip
 * is in one) may be SETT_EFORMAT.
 */
static int damage_reported(const char *dir, const sett_options *base, int magic)
{
	sett_options o = *base;
	o.read_only = 1;
	sett_db *db;
	int r = sett_open(dir, &o, &db);
	if (r) {
		ck_assert_msg(r == SETT_ECORRUPT || r == -EIO || (magic && r == SETT_EFORMAT),
			      "open: %d (%s)", r, o.error_buf);
		return 1;
	}
	int seen = 0;
	const char *keys[] = { SECRET_KEY, SECRET_KEY "-large", SECRET_KEY "-wal",
			       SECRET_KEY "-wal-large" };
	for (int i = 0; i < 4; i++) {
		void *v;
		size_t n;
		r = sett_get(db, sv(keys[i]), 0, &v, &n);
		if (r == SETT_ECORRUPT || r == -EIO) {
			seen = 1;
			continue;
		}
		ck_assert_msg(r == 0, "%s: %d", keys[i], r);
		int large = strstr(keys[i], "large") != NULL;
		ck_assert_uint_eq(n, large ? sizeof large_value : strlen(SMALL_VALUE));
		ck_assert_mem_eq(v, large ? large_value : SMALL_VALUE, n);
		free(v);
	}
	int reports = 0;
	r = sett_verify(db, count_report, &reports);
	if (r == SETT_ECORRUPT || r == -EIO || reports)
		seen = 1;
	sett_close(db);
	return seen;
}

/*
 * An encrypted store under KEY1 holding the small and the large value in a
 * table and the value log, and (crash_with_wal) both again in a WAL.
 */
static char *store_with_wal(sett_options *o, char *why, size_t whylen)
{
	init_large();
	char *dir = tu_tmpdir("encrypt");
	small_opts(o, KEY1, why, whylen);
	sett_db *db;
	ck_assert_msg(sett_open(dir, o, &db) == 0, "%s", why);
	ck_assert_int_eq(sett_put(db, sv(SECRET_KEY), sv(SMALL_VALUE)), 0);
	ck_assert_int_eq(sett_put(db, sv(SECRET_KEY "-large"),
				  (sett_val){ sizeof large_value, large_value }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	crash_with_wal(dir, o);
	return dir;
}

START_TEST(test_flipped_byte)
{
	char why[512] = "";
	sett_options o;
	char *dir = store_with_wal(&o, why, sizeof why);
	ck_assert_int_eq(damage_reported(dir, &o, 0), 0);

	/* every file of each kind, bytes spread over its length */
	const char *kinds[] = { "MANIFEST", "KEYREGISTRY", ".mem", ".sst", ".vlog" };
	for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
		DIR *d = opendir(dir);
		struct dirent *de;
		int files = 0;
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name), s = strlen(kinds[k]);
			if (l < s || strcmp(de->d_name + l - s, kinds[k]) != 0)
				continue;
			char path[4200];
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			long long size = tu_file_size(path);
			if (size <= 68)
				continue; /* a WAL with no record */
			files++;
			/* headers and footers (key id, salt, key check) too */
			long long at_list[] = { 3, 20, 30, 50, size / 4, size / 2, size * 3 / 4,
						size - 60, size - 30, size - 9, size - 1 };
			for (size_t j = 0; j < sizeof at_list / sizeof *at_list; j++) {
				long long at = at_list[j];
				tu_flip_byte(path, at);
				ck_assert_msg(damage_reported(dir, &o, at < 8),
					      "%s: flip at %lld not reported", path, at);
				tu_flip_byte(path, at);
			}
		}
		closedir(d);
		ck_assert_msg(files > 0, "no %s file", kinds[k]);
	}
	ck_assert_int_eq(damage_reported(dir, &o, 0), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Makes every data key of dir's registry `days` older. */
static void age_keys(const char *dir, int days)
{
	keyreg_master m = { .key = KEY1 };
	keyreg *kr;
	char why[256];
	ck_assert_int_eq(keyreg_open(dir, &m, 1, 0, &kr, why, sizeof why), 0);
	for (size_t i = 0; i < kr->n; i++)
		kr->keys[i].created -= (uint64_t)days * 86400;
	ck_assert_int_eq(keyreg_write(dir, kr), 0);
	keyreg_free(kr);
}

/* The ring's keys, but only its current one. */
static crypt_key *only_key(void *arg, uint64_t id)
{
	cipher_ring *g = arg;
	return id == cipher_ring_current(g).key_id ? cipher_ring_find(g, id) : NULL;
}

START_TEST(test_rotation)
{
	init_large();
	char why[512] = "";
	char *dir = tu_tmpdir("encrypt");
	sett_options o;
	small_opts(&o, KEY1, why, sizeof why);
	o.key_rotation_days = 30;
	sett_db *db;
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	ck_assert_int_eq(sett_put(db, sv("old-small"), sv(SMALL_VALUE)), 0);
	ck_assert_int_eq(sett_put(db, sv("old-large"),
				  (sett_val){ sizeof large_value, large_value }), 0);
	ck_assert_int_eq(sett_close(db), 0);
	uint64_t old_tables = (uint64_t)dir_has_file(dir, ".sst");
	ck_assert_uint_eq(old_tables, 1);

	/* not due: no new key */
	age_keys(dir, 29);
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	ck_assert_int_eq(sett_close(db), 0);
	keyreg_master m = { .key = KEY1 };
	keyreg *kr;
	ck_assert_int_eq(keyreg_open(dir, &m, 1, 0, &kr, why, sizeof why), 0);
	ck_assert_uint_eq(kr->n, 1);
	keyreg_free(kr);

	/* due: a new current key at the open, old data readable */
	age_keys(dir, 2);
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	expect_value(db, "old-small", SMALL_VALUE, strlen(SMALL_VALUE));
	expect_value(db, "old-large", large_value, sizeof large_value);
	ck_assert_int_eq(sett_put(db, sv("new-small"), sv(SMALL_VALUE)), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	crash_with_wal(dir, &o);
	ck_assert_int_eq(keyreg_open(dir, &m, 1, 0, &kr, why, sizeof why), 0);
	ck_assert_uint_eq(kr->n, 2);
	ck_assert_uint_eq(kr->keys[1].id, 2);
	cipher_ring *g;
	ck_assert_int_eq(cipher_ring_new(kr, &g), 0);

	/* the MANIFEST and the WAL written since name key 2 */
	char path[4200];
	size_t n;
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	uint8_t *p = tu_slurp(path, &n);
	ck_assert_mem_eq(p, "SETTMANE", 8);
	ck_assert_uint_eq(get_le64(p + 16), 2);
	free(p);
	int wals = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (l > 4 && strcmp(de->d_name + l - 4, ".mem") == 0) {
			p = tu_slurp(path, &n);
			ck_assert_mem_eq(p, "SETTWALE", 8);
			ck_assert_uint_eq(get_le64(p + 24), 2);
			free(p);
			wals++;
		}
		if (l > 4 && strcmp(de->d_name + l - 4, ".sst") == 0) {
			/* with key 2 alone: the old table is SETT_EKEY, a new one opens */
			uint64_t id = strtoull(de->d_name, NULL, 10);
			sett_keys keys = { .find = only_key, .arg = g };
			table *t;
			int r = table_open_enc(path, id, NULL, &keys, &t, why, sizeof why);
			if (id <= old_tables) {
				ck_assert_msg(r == SETT_EKEY, "%s: %d", path, r);
			} else {
				ck_assert_msg(r == 0, "%s: %d %s", path, r, why);
				table_unref(t);
			}
		}
	}
	closedir(d);
	ck_assert_int_eq(wals, 1);
	cipher_ring_free(g);
	keyreg_free(kr);

	/* reopened: everything, old key and new, reads */
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	expect_value(db, "old-small", SMALL_VALUE, strlen(SMALL_VALUE));
	expect_value(db, "old-large", large_value, sizeof large_value);
	expect_value(db, "new-small", SMALL_VALUE, strlen(SMALL_VALUE));
	expect_value(db, SECRET_KEY "-wal-large", large_value, sizeof large_value);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_passphrase)
{
	char why[512] = "";
	char *dir = tu_tmpdir("encrypt");
	sett_options o;
	small_opts(&o, NULL, why, sizeof why);
	o.encryption_passphrase = "correct horse battery staple";
	sett_db *db;
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	ck_assert_int_eq(sett_put(db, sv(SECRET_KEY), sv(SMALL_VALUE)), 0);
	ck_assert_int_eq(sett_close(db), 0);
	uint64_t digest = tu_dir_digest(dir);
	o.encryption_passphrase = "correct horse battery stapler";
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	ck_assert_msg(strstr(why, "wrong master key"), "%s", why);
	o.encryption_passphrase = NULL;
	o.encryption_key = KEY1;
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	ck_assert_msg(strstr(why, "passphrase"), "%s", why);
	ck_assert_uint_eq(tu_dir_digest(dir), digest);
	o.encryption_key = NULL;
	o.encryption_passphrase = "correct horse battery staple";
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	expect_value(db, SECRET_KEY, SMALL_VALUE, strlen(SMALL_VALUE));
	ck_assert_int_eq(sett_close(db), 0);
	char where[4300];
	ck_assert_msg(!plaintext_in(dir, where, sizeof where), "%s", where);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_repair)
{
	char why[512] = "";
	sett_options o;
	char *dir = store_with_wal(&o, why, sizeof why);
	sett_db *db;
	/* without the key (or with the wrong one) repair changes nothing */
	uint64_t digest = tu_dir_digest(dir);
	sett_options bad = o;
	bad.encryption_key = NULL;
	ck_assert_int_eq(sett_repair(dir, &bad, NULL, NULL), SETT_EKEY);
	bad.encryption_key = KEY2;
	ck_assert_int_eq(sett_repair(dir, &bad, NULL, NULL), SETT_EKEY);
	ck_assert_uint_eq(tu_dir_digest(dir), digest);
	ck_assert_int_eq(sett_repair(dir, &o, NULL, NULL), 0);
	char where[4300];
	ck_assert_msg(!plaintext_in(dir, where, sizeof where), "%s", where);
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	expect_value(db, SECRET_KEY, SMALL_VALUE, strlen(SMALL_VALUE));
	expect_value(db, SECRET_KEY "-large", large_value, sizeof large_value);
	expect_value(db, SECRET_KEY "-wal-large", large_value, sizeof large_value);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- the encrypted MANIFEST, below the engine ---- */

static manifest *man_open(const char *dir, cipher_ring *g, int ro, size_t *ntables, int *err,
			  char *why)
{
	sett_cipher c = cipher_ring_current(g);
	sett_keys k = cipher_ring_keys(g);
	manifest *m = NULL;
	manifest_table *t = NULL;
	size_t n = 0;
	why[0] = 0;
	*err = manifest_open_enc(dir, ro, &c, g ? &k : NULL, &m, &t, &n, why, 512);
	free(t);
	if (ntables)
		*ntables = n;
	if (!*err && !ro)
		ck_assert_int_eq(manifest_finish_open(m), 0);
	return m;
}

static void man_create(manifest *m, uint64_t id)
{
	manifest_change c = { .op = MANIFEST_CREATE, .id = id };
	ck_assert_int_eq(manifest_apply(m, &c, 1), 0);
}

START_TEST(test_manifest_sealed)
{
	char *dir = tu_tmpdir("encrypt");
	char path[4200], why[512];
	snprintf(path, sizeof path, "%s/MANIFEST", dir);
	keyreg_master mk = { .key = KEY1 };
	keyreg *kr;
	cipher_ring *g, *other;
	ck_assert_int_eq(keyreg_create(&mk, 1, &kr), 0);
	ck_assert_int_eq(cipher_ring_new(kr, &g), 0);
	keyreg_free(kr);
	mk.key = KEY2;
	ck_assert_int_eq(keyreg_create(&mk, 1, &kr), 0);
	ck_assert_int_eq(cipher_ring_new(kr, &other), 0);
	keyreg_free(kr);

	sett_cipher cur = cipher_ring_current(g);
	ck_assert_int_eq(manifest_create_enc(dir, &cur), 0);
	int err;
	size_t n;
	manifest *m = man_open(dir, g, 0, &n, &err, why);
	ck_assert_msg(err == 0, "%s", why);
	manifest_change pin = { .op = MANIFEST_PIN, .id = 5, .name = PIN_NAME,
				.name_len = (uint16_t)strlen(PIN_NAME) };
	ck_assert_int_eq(manifest_apply(m, &pin, 1), 0);
	man_create(m, 1);
	man_create(m, 2);
	long long appended = tu_file_size(path);
	man_create(m, 3); /* appended in the file this process wrote */
	ck_assert_int_gt(tu_file_size(path), appended);
	manifest_close(m);
	size_t sz;
	uint8_t *p = tu_slurp(path, &sz);
	ck_assert_mem_eq(p, "SETTMANE", 8);
	ck_assert(!tu_contains(p, sz, PIN_NAME, strlen(PIN_NAME)));
	uint8_t salt[12];
	memcpy(salt, p + 16 + 8, 12);
	free(p);

	/* no keys, other keys: SETT_EKEY; the plain reader too */
	m = man_open(dir, NULL, 1, NULL, &err, why);
	ck_assert_int_eq(err, SETT_EKEY);
	m = man_open(dir, other, 1, NULL, &err, why);
	ck_assert_int_eq(err, SETT_EKEY);
	ck_assert_msg(strstr(why, "MANIFEST") && strstr(why, "data key 1"), "%s", why);
	manifest_table *t = NULL;
	ck_assert_int_eq(manifest_open(dir, 1, &m, &t, &n, why, sizeof why), SETT_EKEY);

	/* a flipped byte of the last complete record: corrupt at its offset */
	tu_flip_byte(path, appended + 20);
	m = man_open(dir, g, 1, NULL, &err, why);
	ck_assert_int_eq(err, SETT_ECORRUPT);
	char want[4300];
	snprintf(want, sizeof want, "%s: corrupt record at offset %lld", path, appended);
	ck_assert_msg(strstr(why, want), "%s", why);
	tu_flip_byte(path, appended + 20);

	/* a zero tail is torn, cut at the writable open */
	long long size = tu_file_size(path);
	ck_assert_int_eq(truncate(path, (off_t)size + 300), 0);
	m = man_open(dir, g, 0, &n, &err, why);
	ck_assert_msg(err == 0, "%s", why);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(tu_file_size(path), size);
	/* the first change after an open rewrites the file under a new salt */
	man_create(m, 4);
	manifest_close(m);
	p = tu_slurp(path, &sz);
	ck_assert(memcmp(p + 16 + 8, salt, 12) != 0);
	free(p);
	m = man_open(dir, g, 1, &n, &err, why);
	ck_assert_msg(err == 0, "%s", why);
	ck_assert_uint_eq(n, 4);
	manifest_mark *marks;
	size_t nm;
	ck_assert_int_eq(manifest_marks(m, &marks, &nm), 0);
	ck_assert_uint_eq(nm, 1);
	ck_assert_mem_eq(marks[0].name, PIN_NAME, strlen(PIN_NAME));
	manifest_marks_free(marks, nm);
	manifest_close(m);

	/* a plain MANIFEST where the store has keys is refused */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(manifest_create(dir), 0);
	m = man_open(dir, g, 1, NULL, &err, why);
	ck_assert_int_eq(err, SETT_ECORRUPT);
	ck_assert_msg(strstr(why, "not encrypted"), "%s", why);

	cipher_ring_free(g);
	cipher_ring_free(other);
	tu_rmrf(dir);
	free(dir);
}
END_TEST


/*
 * Review experiment: a plaintext WAL placed into an encrypted store (whose
 * KEYREGISTRY holds keys, so the engine never writes a plain file there)
 * is replayed at the next open: its unauthenticated entries become data.
 */
START_TEST(test_plain_wal_injected)
{
	char *enc = encrypted_store();
	char *plain = tu_tmpdir("encrypt-plain");
	char why[512] = "";
	sett_options o;
	small_opts(&o, NULL, why, sizeof why);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sett_db *db;
		if (sett_open(plain, &o, &db) != 0 || sett_put(db, sv("forged-key"), sv("forged-value")) != 0 ||
		    sett_sync(db) != 0)
			_exit(2);
		_exit(0);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "ls -la %s %s >&2; for f in %s/*.mem; do cp $f %s/99999.mem; done", enc, plain, plain, enc);
	ck_assert_int_eq(system(cmd), 0);
	small_opts(&o, KEY1, why, sizeof why);
	sett_db *db;
	int r = sett_open(enc, &o, &db);
	fprintf(stderr, "open of the encrypted store with a plain WAL: %d %s\n", r, why);
	if (r == 0) {
		void *v = NULL;
		size_t n = 0;
		r = sett_get(db, sv("forged-key"), 0, &v, &n);
		fprintf(stderr, "get forged-key: %d '%.*s'\n", r, (int)n, v ? (char *)v : "");
		ck_assert_msg(r != 0, "a plaintext WAL's entry was accepted by an encrypted store");
		free(v);
		sett_close(db);
	}
	free(plain);
	free(enc);
}
END_TEST

/*
 * A store made by the same writes, encrypted (key) or not: a small and a
 * large value (WAL, value log), flushed to a table.  Both get the same
 * file names.
 */
static char *store_of(const uint8_t *key, const char *value)
{
	char *dir = tu_tmpdir("encrypt-inject");
	char why[512] = "";
	sett_options o;
	small_opts(&o, key, why, sizeof why);
	sett_db *db;
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	ck_assert_int_eq(sett_put(db, sv("forged-key"), sv(value)), 0);
	ck_assert_int_eq(sett_put(db, sv("forged-large"), (sett_val){ sizeof large_value, large_value }), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	return dir;
}

/*
 * A plaintext table or value-log file in place of the encrypted one of the
 * same name: the open fails SETT_ECORRUPT naming it, nothing of it is read.
 */
static void plain_file_injected(const char *suffix)
{
	init_large();
	char *enc = store_of(KEY1, "real-value");
	char *plain = store_of(NULL, "forged-value");
	char cmd[9000], why[512] = "";
	snprintf(cmd, sizeof cmd, "n=0; for f in %s/*%s; do cp $f %s/ && n=$((n+1)); done; test $n -gt 0",
		 plain, suffix, enc);
	ck_assert_int_eq(system(cmd), 0);
	sett_options o;
	small_opts(&o, KEY1, why, sizeof why);
	sett_db *db;
	int r = sett_open(enc, &o, &db);
	if (r == 0) {
		void *v = NULL;
		size_t n = 0;
		int g1 = sett_get(db, sv("forged-key"), 0, &v, &n);
		ck_assert_msg(g1 != 0 || (n == 10 && !memcmp(v, "real-value", 10)),
			      "a plaintext %s was read in an encrypted store", suffix);
		free(v);
		sett_close(db);
	}
	ck_assert_msg(r == SETT_ECORRUPT, "open with a plaintext %s: %d %s", suffix, r, why);
	ck_assert_msg(strstr(why, "plaintext file in an encrypted store") && strstr(why, suffix),
		      "%s", why);
	tu_rmrf(enc);
	tu_rmrf(plain);
	free(enc);
	free(plain);
}

START_TEST(test_plain_table_injected)
{
	plain_file_injected(".sst");
}
END_TEST

START_TEST(test_plain_vlog_injected)
{
	plain_file_injected(".vlog");
}
END_TEST

/*
 * Review experiment: one flipped byte in the header of an encrypted
 * store's KEYREGISTRY.  Repair takes it for an unencrypted store's
 * registry and moves it to quarantine/, then cannot open the encrypted
 * value log without keys; the store is left without its registry.
 */
START_TEST(test_registry_header_flip_repair)
{
	char *dir = encrypted_store();
	char why[512] = "", path[4096];
	sett_options o;
	small_opts(&o, KEY1, why, sizeof why);
	snprintf(path, sizeof path, "%s/KEYREGISTRY", dir);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t c;
	ck_assert_int_eq(pread(fd, &c, 1, 20), 1);
	c ^= 1;
	ck_assert_int_eq(pwrite(fd, &c, 1, 20), 1);
	close(fd);
	uint64_t digest = tu_dir_digest(dir);
	int r = sett_repair(dir, &o, NULL, NULL);
	fprintf(stderr, "repair with the right key after a flipped registry header byte: %d\n", r);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "ls -R %s >&2", dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_msg(access(path, F_OK) == 0, "repair (%d) moved the encrypted store's KEYREGISTRY away", r);
	ck_assert_int_eq(r, SETT_ECORRUPT);
	ck_assert(tu_dir_digest(dir) == digest);
	/* cut to the 24 bytes of an unencrypted one: the encrypted files tell */
	ck_assert_int_eq(truncate(path, 24), 0);
	digest = tu_dir_digest(dir);
	ck_assert_int_eq(sett_repair(dir, &o, NULL, NULL), SETT_ECORRUPT);
	ck_assert(tu_dir_digest(dir) == digest);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Review experiment: an encrypted WAL cut inside its 44-byte key head
 * (a crash inside wal_create; a value-log head in that state gets a
 * fresh header) makes the store refuse to open.
 */
START_TEST(test_wal_cut_in_key_head)
{
	char *dir = encrypted_store();
	char why[512] = "", path[4096];
	sett_options o;
	small_opts(&o, KEY1, why, sizeof why);
	snprintf(path, sizeof path, "%s/99990.mem", dir);
	{
		/* a WAL that a crash cut at 40 bytes: a whole log header, part of the key head */
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			sett_db *db;
			if (sett_open(dir, &o, &db) != 0 || sett_put(db, sv("k"), sv("v")) != 0 || sett_sync(db) != 0)
				_exit(2);
			_exit(0);
		}
		int st;
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	char cmd[9000];
	snprintf(cmd, sizeof cmd, "cd %s && f=$(ls *.mem | tail -1) && truncate -s 40 $f && ls -l >&2", dir);
	ck_assert_int_eq(system(cmd), 0);
	sett_db *db;
	int r = sett_open(dir, &o, &db);
	fprintf(stderr, "open with a WAL cut at 40 bytes: %d %s\n", r, why);
	ck_assert_msg(r == 0, "open: %d %s", r, why);
	sett_close(db);
	free(dir);
}
END_TEST

/*
 * After an open (its rotation written) the store keeps only the data keys:
 * the master key's copy is wiped, and the registry still opens with it.
 */
START_TEST(test_master_wiped)
{
	char *dir = encrypted_store();
	char why[512] = "";
	age_keys(dir, 40);
	sett_options o;
	small_opts(&o, KEY1, why, sizeof why);
	o.key_rotation_days = 30;
	sett_db *db;
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	ck_assert_uint_eq(db->kr->n, 2);
	static const uint8_t zero[CRYPT_KEY_SIZE];
	ck_assert_mem_eq(db->kr->master, zero, CRYPT_KEY_SIZE);
	uint8_t *p;
	size_t n;
	ck_assert_int_eq(keyreg_encode(db->kr, &p, &n), -EINVAL);
	ck_assert_int_eq(sett_put(db, sv("after"), sv("rotation")), 0);
	expect_value(db, SECRET_KEY, SMALL_VALUE, strlen(SMALL_VALUE));
	ck_assert_int_eq(sett_close(db), 0);
	ck_assert_msg(sett_open(dir, &o, &db) == 0, "%s", why);
	expect_value(db, "after", "rotation", 8);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("encrypt");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_no_plaintext);
	tcase_add_test(tc, test_wrong_key);
	tcase_add_test(tc, test_flipped_byte);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_passphrase);
	tcase_add_test(tc, test_repair);
	tcase_add_test(tc, test_manifest_sealed);
	tcase_add_test(tc, test_plain_wal_injected);
	tcase_add_test(tc, test_plain_table_injected);
	tcase_add_test(tc, test_plain_vlog_injected);
	tcase_add_test(tc, test_registry_header_flip_repair);
	tcase_add_test(tc, test_wal_cut_in_key_head);
	tcase_add_test(tc, test_master_wiped);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
