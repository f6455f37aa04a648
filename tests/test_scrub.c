/*
 * test_scrub.c - sett_scrub: each fault reported with the file, offset and
 * keys it hits, and the walk going on past it (a flipped byte in a table
 * block, in a value-log record, in a record's header, in a table's
 * properties and footer, in a WAL, in an encrypted store); a stop request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sett.h"
#include "table_format.h"
#include "testutil.h"

static sett_val V(const char *s)
{
	sett_val v = { strlen(s), s };
	return v;
}

#define MAXF 16
typedef struct fault_rec {
	char file[512], area[32], lo[64], hi[64];
	uint64_t offset, length;
	int keys;
} fault_rec;
typedef struct faults {
	fault_rec f[MAXF];
	int n;
	uint64_t done, total;
} faults;

static void on_fault(void *arg, const sett_fault *f)
{
	faults *fs = arg;
	if (fs->n == MAXF)
		return;
	fault_rec *r = &fs->f[fs->n++];
	snprintf(r->file, sizeof r->file, "%s", f->file);
	snprintf(r->area, sizeof r->area, "%s", f->area);
	snprintf(r->lo, sizeof r->lo, "%.*s", (int)f->key_lo_len, (const char *)f->key_lo);
	snprintf(r->hi, sizeof r->hi, "%.*s", (int)f->key_hi_len, (const char *)f->key_hi);
	r->offset = f->offset;
	r->length = f->length;
	r->keys = f->keys;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	faults *fs = arg;
	ck_assert(done <= total);
	ck_assert(done >= fs->done);
	fs->done = done;
	fs->total = total;
}

static int scrub(sett_db *db, faults *fs)
{
	memset(fs, 0, sizeof *fs);
	sett_scrub_options o = { 0 };
	o.drop_cache = 1;
	o.fault_fn = on_fault;
	o.progress_fn = on_progress;
	o.arg = fs;
	return sett_scrub(db, &o);
}

/* Flips a byte inside the first occurrence of `pattern` in the file; its offset. */
static long long flip_in(const char *path, const char *pattern)
{
	size_t n;
	uint8_t *p = tu_slurp(path, &n);
	ck_assert(p);
	const uint8_t *at = memmem(p, n, pattern, strlen(pattern));
	ck_assert_msg(at, "%s not in %s", pattern, path);
	long long off = (long long)(at - p) + (long long)strlen(pattern) / 2;
	tu_flip_byte(path, off);
	free(p);
	return off;
}

static void value_of(char *v, size_t n, int i)
{
	for (size_t k = 0; k + 1 < n; k++)
		v[k] = (char)('a' + (k + (size_t)i) % 26);
	v[n - 1] = 0;
	snprintf(v, n, "<value-%04d>", i);
	v[12] = '-';
}

/* Opens a new store in dir with n values of 3000 bytes ("large%04d") put
 * into its value log (or with `key` set, encrypted). */
static sett_db *large_values(const char *dir, int n, const uint8_t *key, sett_options *o)
{
	sett_options_init(o);
	o->value_threshold = 64;
	o->gc_discard_ratio = 0;
	o->encryption_key = key;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, o, &db), 0);
	char k[32], v[3000];
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof k, "large%04d", i);
		value_of(v, sizeof v, i);
		ck_assert_int_eq(sett_put(db, V(k), V(v)), 0);
	}
	return db;
}

START_TEST(test_scrub_value_log)
{
	char *dir = tu_tmpdir("scrubv");
	sett_options o;
	sett_db *db = large_values(dir, 50, NULL, &o);
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), 0);
	ck_assert_int_eq(fs.n, 0);
	ck_assert(fs.total > 50 * 3000 && fs.done == fs.total);
	ck_assert_int_eq(sett_close(db), 0);

	char path[4200];
	ck_assert(tu_find_file(dir, ".vlog", path, sizeof path));
	flip_in(path, "<value-0010>");
	flip_in(path, "<value-0030>");
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(scrub(db, &fs), SETT_ECORRUPT);
	/* both records, each with its key: the walk went on past the first */
	ck_assert_int_eq(fs.n, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(fs.f[i].area, "value log");
		ck_assert_str_eq(fs.f[i].file, path);
		ck_assert_int_eq(fs.f[i].keys, SETT_FAULT_KEY);
		ck_assert(fs.f[i].length > 3000 && fs.f[i].length < 3100);
	}
	ck_assert_str_eq(fs.f[0].lo, "large0010");
	ck_assert_str_eq(fs.f[1].lo, "large0030");
	ck_assert(fs.f[1].offset > fs.f[0].offset);
	ck_assert_int_eq(sett_verify(db, NULL, NULL), SETT_ECORRUPT);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A damaged record header (its key length): the walk finds the next record. */
/*
 * A value-log tail whose every few bytes claim a record reaching to the end
 * of the file: the scrub's search for where valid records resume stops at
 * its budget and reports the rest of the file as one fault (checking every
 * claim took hours for these 16 MiB).
 */
START_TEST(test_scrub_crafted_tail)
{
	char *dir = tu_tmpdir("scrubc");
	sett_options o;
	sett_db *db = large_values(dir, 20, NULL, &o);
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	ck_assert(tu_find_file(dir, ".vlog", path, sizeof path));
	long long good = tu_file_size(path);
	size_t n = 16u << 20;
	tu_append_claims(path, n, 0, 0);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), SETT_ECORRUPT);
	ck_assert_int_eq(fs.n, 1);
	ck_assert_str_eq(fs.f[0].area, "value log");
	ck_assert_uint_eq(fs.f[0].offset, (uint64_t)good);
	ck_assert_uint_eq(fs.f[0].length, (uint64_t)n);
	char k[32], v[3000];
	for (int i = 0; i < 20; i++) {
		snprintf(k, sizeof k, "large%04d", i);
		value_of(v, sizeof v, i);
		void *got = NULL;
		size_t len = 0;
		ck_assert_int_eq(sett_get(db, V(k), 0, &got, &len), 0);
		ck_assert(len == strlen(v) && memcmp(got, v, len) == 0);
		free(got);
	}
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_scrub_value_log_header)
{
	char *dir = tu_tmpdir("scrubh");
	sett_options o;
	sett_db *db = large_values(dir, 20, NULL, &o);
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	ck_assert(tu_find_file(dir, ".vlog", path, sizeof path));
	size_t n;
	uint8_t *p = tu_slurp(path, &n);
	const uint8_t *at = memmem(p, n, "large0005", 9);
	ck_assert(at);
	/* the header before the key: meta, user_meta, klen (1 byte), vlen (2), expires */
	tu_flip_byte(path, (long long)(at - p) - 6);
	free(p);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), SETT_ECORRUPT);
	ck_assert_int_eq(fs.n, 1);
	ck_assert_str_eq(fs.f[0].area, "value log");
	ck_assert(fs.f[0].length >= 3000 && fs.f[0].length < 3100);
	ck_assert(fs.done == fs.total);
	/* the records after it are read (GC-free store: they are all checked) */
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_scrub_table_blocks)
{
	char *dir = tu_tmpdir("scrubt");
	sett_options o;
	sett_options_init(&o);
	o.value_threshold = 1 << 20; /* every value in the LSM */
	o.block_size = 1024;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	char k[32], v[200];
	for (int i = 0; i < 400; i++) {
		snprintf(k, sizeof k, "small%04d", i);
		value_of(v, sizeof v, i);
		ck_assert_int_eq(sett_put(db, V(k), V(v)), 0);
	}
	ck_assert_int_eq(sett_flush(db), 0);
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), 0);
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	ck_assert(tu_find_file(dir, ".sst", path, sizeof path));
	flip_in(path, "<value-0100>");
	flip_in(path, "<value-0300>");
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(scrub(db, &fs), SETT_ECORRUPT);
	ck_assert_int_eq(fs.n, 2);
	const char *hit[2] = { "small0100", "small0300" };
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(fs.f[i].area, "table");
		ck_assert_str_eq(fs.f[i].file, path);
		ck_assert_int_eq(fs.f[i].keys, SETT_FAULT_RANGE);
		/* the block's range holds the key, and only a block's worth */
		ck_assert_msg(strcmp(fs.f[i].lo, hit[i]) <= 0 && strcmp(hit[i], fs.f[i].hi) <= 0,
			      "%s not in %s..%s", hit[i], fs.f[i].lo, fs.f[i].hi);
		ck_assert(fs.f[i].length > 0 && fs.f[i].length < 2048);
	}
	ck_assert(strcmp(fs.f[0].hi, "small0200") < 0 && strcmp(fs.f[1].lo, "small0200") > 0);
	ck_assert(fs.done == fs.total);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_scrub_stop)
{
	char *dir = tu_tmpdir("scrubs");
	sett_options o;
	sett_options_init(&o);
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_put(db, V("k"), V("v")), 0);
	ck_assert_int_eq(sett_flush(db), 0);
	int stop = 1;
	sett_scrub_options so = { 0 };
	so.stop = &stop;
	ck_assert_int_eq(sett_scrub(db, &so), -ECANCELED);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST


/* The metadata blocks and the footer are read again, not taken from memory. */
START_TEST(test_scrub_table_meta)
{
	char *dir = tu_tmpdir("scrubm");
	sett_options o;
	sett_options_init(&o);
	o.value_threshold = 1 << 20;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	char k[32];
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof k, "key%04d", i);
		ck_assert_int_eq(sett_put(db, V(k), V("value")), 0);
	}
	ck_assert_int_eq(sett_flush(db), 0);
	char path[4200];
	ck_assert(tu_find_file(dir, ".sst", path, sizeof path));
	long long size = tu_file_size(path);
	/* under the open table: the properties block, and the footer */
	tu_flip_byte(path, size - TABLE_FOOTER_SIZE - 3);
	tu_flip_byte(path, size - 1);
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), SETT_ECORRUPT);
	ck_assert_int_eq(fs.n, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(fs.f[i].area, "table");
		ck_assert_int_eq(fs.f[i].keys, SETT_FAULT_RANGE);
		ck_assert_str_eq(fs.f[i].lo, "key0000");
		ck_assert_str_eq(fs.f[i].hi, "key0099");
	}
	ck_assert(fs.f[0].offset < (uint64_t)size - TABLE_FOOTER_SIZE);
	ck_assert(fs.f[1].offset <= (uint64_t)size - TABLE_FOOTER_SIZE &&
		  fs.f[1].offset + fs.f[1].length == (uint64_t)size);
	tu_flip_byte(path, size - TABLE_FOOTER_SIZE - 3);
	tu_flip_byte(path, size - 1);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* The WAL of the memtable is replayed read-only: damage in it is found. */
START_TEST(test_scrub_wal)
{
	char *dir = tu_tmpdir("scrubw");
	sett_options o;
	sett_options_init(&o);
	o.value_threshold = 1 << 20;
	o.sync_writes = 1;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	char k[32], v[200];
	for (int i = 0; i < 20; i++) {
		snprintf(k, sizeof k, "key%04d", i);
		value_of(v, sizeof v, i);
		ck_assert_int_eq(sett_put(db, V(k), V(v)), 0);
	}
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), 0);
	char path[4200];
	ck_assert(tu_find_file(dir, ".mem", path, sizeof path));
	long long off = flip_in(path, "<value-0005>");
	ck_assert_int_eq(scrub(db, &fs), SETT_ECORRUPT);
	ck_assert_int_eq(fs.n, 1);
	ck_assert_str_eq(fs.f[0].area, "WAL");
	ck_assert_str_eq(fs.f[0].file, path);
	ck_assert_int_eq(fs.f[0].keys, SETT_FAULT_ANY_KEY);
	ck_assert(fs.f[0].offset > 24);
	tu_flip_byte(path, off); /* back, so that the store closes clean */
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* An encrypted store: each damaged record and block is found, and the walk goes on. */
START_TEST(test_scrub_encrypted)
{
	static const uint8_t key[32] = "scrub-test-master-key-000000001";
	char *dir = tu_tmpdir("scrube");
	sett_options o;
	sett_db *db = large_values(dir, 30, key, &o);
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	ck_assert(tu_find_file(dir, ".vlog", path, sizeof path));
	long long size = tu_file_size(path);
	tu_flip_byte(path, size / 3);
	tu_flip_byte(path, 2 * size / 3);
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), SETT_ECORRUPT);
	ck_assert_int_eq(fs.n, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(fs.f[i].area, "value log");
		ck_assert_int_eq(fs.f[i].keys, SETT_FAULT_ANY_KEY); /* the key is sealed */
		ck_assert(fs.f[i].length > 3000 && fs.f[i].length < 3200);
		ck_assert(fs.f[i].offset <= (uint64_t)(i + 1) * size / 3 &&
			  fs.f[i].offset + fs.f[i].length > (uint64_t)(i + 1) * size / 3);
	}
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A head value-log file cut short inside its header (a crash while it was
 * created) opens as empty: it is no damage to a scrub either. */
START_TEST(test_scrub_torn_head_header)
{
	char *dir = tu_tmpdir("scrubt");
	sett_options o;
	sett_db *db = large_values(dir, 5, NULL, &o);
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	snprintf(path, sizeof path, "%s/000099.vlog", dir);
	FILE *f = fopen(path, "wb");
	ck_assert(f);
	fwrite("SETTVL", 1, 6, f);
	fclose(f);
	o.read_only = 1;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	faults fs;
	ck_assert_int_eq(scrub(db, &fs), 0);
	ck_assert_int_eq(fs.n, 0);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* Scrubs while a writer fills the memtables, the WALs, the value log and
 * new tables: what is being written is no damage. */
struct writer_arg {
	sett_db *db;
	int done;
};

static void *writer(void *arg)
{
	struct writer_arg *w = arg;
	char k[32], v[3000];
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof k, "w%06d", i);
		value_of(v, i % 2 ? 100 : sizeof v, i);
		ck_assert_int_eq(sett_put(w->db, V(k), V(v)), 0);
		if (i % 500 == 499)
			ck_assert_int_eq(sett_flush(w->db), 0);
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(test_scrub_while_writing)
{
	char *dir = tu_tmpdir("scrubc");
	sett_options o;
	sett_options_init(&o);
	o.value_threshold = 1024;
	o.mem_table_size = 256 << 10;
	o.value_log_file_size = 1 << 20;
	sett_db *db;
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	struct writer_arg w = { db, 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, writer, &w), 0);
	int scrubs = 0;
	do {
		faults fs;
		int r = scrub(db, &fs);
		ck_assert_msg(r == 0 && fs.n == 0, "scrub %d: %d faults, first: %s", scrubs, fs.n,
			      fs.n ? fs.f[0].file : "");
		scrubs++;
	} while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE) || scrubs < 2);
	pthread_join(t, NULL);
	fprintf(stderr, "scrub while writing: %d scrubs\n", scrubs);
	ck_assert_int_eq(sett_close(db), 0);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("scrub");
	TCase *tc = tcase_create("scrub");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_scrub_value_log);
	tcase_add_test(tc, test_scrub_value_log_header);
	tcase_add_test(tc, test_scrub_crafted_tail);
	tcase_add_test(tc, test_scrub_table_blocks);
	tcase_add_test(tc, test_scrub_stop);
	tcase_add_test(tc, test_scrub_table_meta);
	tcase_add_test(tc, test_scrub_wal);
	tcase_add_test(tc, test_scrub_encrypted);
	tcase_add_test(tc, test_scrub_torn_head_header);
	tcase_add_test(tc, test_scrub_while_writing);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
