/*
 * test_vlog.c - the value log: values read back across rotation and
 * reopen, a torn tail cut, corruption reported with the file name, GC's
 * iterate/remove, concurrent readers while the writer rotates, and a power
 * cut that keeps exactly what vlog_sync made durable.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cipher.h"
#include "entry.h"
#include "fileio.h"
#include "ikey.h"
#include "sett.h"
#include "testutil.h"
#include "vlog.h"

static char *dir;

static void setup(void)
{
	dir = tu_tmpdir("vlog");
}

static void teardown(void)
{
	sio_fault_reset();
	tu_rmrf(dir);
	free(dir);
}

static vlog_options opts(uint64_t file_size, uint32_t max_entries)
{
	vlog_options o = { .file_size = file_size, .max_entries = max_entries, .verify_checksum = 1 };
	return o;
}

static vlog *open_ok(const vlog_options *o)
{
	vlog *v = NULL;
	char why[512] = "";
	int r = vlog_open(dir, o, &v, why, sizeof why);
	ck_assert_msg(r == 0, "vlog_open: %d %s", r, why);
	return v;
}

static void fpath(uint32_t fid, char *out, size_t n)
{
	snprintf(out, n, "%s/%06u.vlog", dir, fid);
}

/* Entry i: user key "key%05d", version i+1, value of a length and bytes set by i. */
typedef struct item {
	char ukey[16];
	uint8_t ik[24];
	uint8_t *val;
	size_t vlen;
	entry e;
} item;

static void item_make(item *it, int i)
{
	int kn = snprintf(it->ukey, sizeof it->ukey, "key%05d", i);
	ikey_make(it->ik, it->ukey, (size_t)kn, (uint64_t)i + 1);
	it->vlen = (size_t)(i * 37) % 600;
	it->val = malloc(it->vlen + 1);
	for (size_t j = 0; j < it->vlen; j++)
		it->val[j] = (uint8_t)(i * 31 + j);
	entry e = { slice_make(it->ik, (size_t)kn + 8), slice_make(it->val, it->vlen), 0,
		    (uint8_t)i, 0 };
	it->e = e;
}

static void item_free(item *it)
{
	free(it->val);
}

/* Appends items [first, first+n) in batches of `per`, filling ptrs[first..]. */
static void append_items(vlog *v, int first, int n, int per, vptr *ptrs)
{
	for (int i = first; i < first + n; i += per) {
		int cnt = i + per <= first + n ? per : first + n - i;
		item its[64];
		entry es[64];
		for (int j = 0; j < cnt; j++) {
			item_make(&its[j], i + j);
			es[j] = its[j].e;
		}
		ck_assert_int_eq(vlog_append(v, es, cnt, ptrs + i), 0);
		for (int j = 0; j < cnt; j++) {
			ck_assert_uint_eq(ptrs[i + j].len, entry_encoded_len(&es[j]));
			item_free(&its[j]);
		}
	}
}

static void check_item(vlog *v, int i, const vptr *p)
{
	item it;
	item_make(&it, i);
	buf out = { 0 };
	char why[512] = "";
	buf_append(&out, "pre", 3); /* vlog_read appends */
	int r = vlog_read(v, p, slice_make(it.ukey, strlen(it.ukey)), &out, why, sizeof why);
	ck_assert_msg(r == 0, "read %d: %d %s", i, r, why);
	ck_assert_uint_eq(out.n, 3 + it.vlen);
	ck_assert(memcmp(out.p, "pre", 3) == 0);
	ck_assert(it.vlen == 0 || memcmp(out.p + 3, it.val, it.vlen) == 0);
	buf_free(&out);
	item_free(&it);
}

START_TEST(append_read_across_rotation)
{
	vlog_options o = opts(4096, 1000);
	vlog *v = open_ok(&o);
	ck_assert_uint_eq(vlog_head_fid(v), 1);
	vptr p[300];
	append_items(v, 0, 300, 7, p);
	ck_assert_int_eq(vlog_sync(v), 0);
	for (int i = 0; i < 300; i++)
		check_item(v, i, &p[i]);

	uint32_t *fids;
	int n;
	ck_assert_int_eq(vlog_list(v, &fids, &n), 0);
	ck_assert_int_gt(n, 10);
	ck_assert_uint_eq(fids[n - 1], vlog_head_fid(v));
	for (int i = 0; i < n; i++) {
		ck_assert_uint_eq(fids[i], (uint32_t)i + 1);
		char path[4200];
		fpath(fids[i], path, sizeof path);
		long long sz = tu_file_size(path);
		ck_assert_int_eq(sz, (long long)vlog_file_size(v, fids[i]));
		ck_assert_int_le(sz, 4096);
	}
	/* Pointers are consecutive within a file and start after the header. */
	for (int i = 1; i < 300; i++) {
		if (p[i].fid == p[i - 1].fid)
			ck_assert_uint_eq(p[i].offset, p[i - 1].offset + p[i - 1].len);
		else
			ck_assert_uint_eq(p[i].offset, LOG_HEADER_SIZE);
	}
	free(fids);
	ck_assert_int_eq(vlog_close(v), 0);
}
END_TEST

START_TEST(reopen_continues)
{
	vlog_options o = opts(8192, 1000);
	vlog *v = open_ok(&o);
	vptr p[200];
	append_items(v, 0, 120, 5, p);
	uint32_t head = vlog_head_fid(v);
	uint64_t head_size = vlog_file_size(v, head);
	ck_assert_int_eq(vlog_close(v), 0);

	v = open_ok(&o);
	ck_assert_uint_eq(vlog_head_fid(v), head);
	ck_assert_uint_eq(vlog_file_size(v, head), head_size);
	for (int i = 0; i < 120; i++)
		check_item(v, i, &p[i]);
	append_items(v, 120, 80, 3, p);
	ck_assert_uint_eq(p[120].fid, head);
	ck_assert_uint_eq(p[120].offset, head_size);
	ck_assert_int_eq(vlog_close(v), 0);

	/* Read-only: everything readable, nothing writable. */
	o.read_only = 1;
	v = open_ok(&o);
	for (int i = 0; i < 200; i++)
		check_item(v, i, &p[i]);
	item it;
	item_make(&it, 0);
	vptr q;
	ck_assert_int_eq(vlog_append(v, &it.e, 1, &q), -EROFS);
	item_free(&it);
	ck_assert_int_eq(vlog_close(v), 0);
}
END_TEST

START_TEST(max_entries_rotation)
{
	vlog_options o = opts(1 << 20, 5);
	vlog *v = open_ok(&o);
	vptr p[12];
	append_items(v, 0, 12, 1, p);
	for (int i = 0; i < 12; i++)
		ck_assert_uint_eq(p[i].fid, (uint32_t)(i / 5) + 1);
	ck_assert_int_eq(vlog_close(v), 0);
	/* The count of the head survives reopen: 2 more fit, then a new file. */
	v = open_ok(&o);
	vptr q[4];
	append_items(v, 0, 4, 4, q);
	ck_assert_uint_eq(q[0].fid, 3);
	ck_assert_uint_eq(q[2].fid, 3);
	ck_assert_uint_eq(q[3].fid, 4);
	ck_assert_int_eq(vlog_close(v), 0);
}
END_TEST

START_TEST(entry_larger_than_file_size)
{
	vlog_options o = opts(1024, 100);
	vlog *v = open_ok(&o);
	uint8_t ik[16];
	ikey_make(ik, "big", 3, 9);
	size_t n = 100000;
	uint8_t *val = malloc(n);
	memset(val, 'x', n);
	entry e[3] = { { slice_make(ik, 11), slice_make(val, 10), 0, 0, 0 },
		       { slice_make(ik, 11), slice_make(val, n), 0, 0, 0 },
		       { slice_make(ik, 11), slice_make(val, 20), 0, 0, 0 } };
	vptr p[3];
	ck_assert_int_eq(vlog_append(v, e, 3, p), 0);
	ck_assert_uint_ne(p[0].fid, p[1].fid);
	ck_assert_uint_ne(p[1].fid, p[2].fid);
	buf out = { 0 };
	ck_assert_int_eq(vlog_read(v, &p[1], slice_make("big", 3), &out, NULL, 0), 0);
	ck_assert_uint_eq(out.n, n);
	ck_assert(memcmp(out.p, val, n) == 0);
	buf_free(&out);
	free(val);
	vlog_close(v);
}
END_TEST

START_TEST(torn_tail_of_last_file_cut)
{
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	vptr p[30];
	append_items(v, 0, 30, 4, p);
	ck_assert_int_eq(vlog_close(v), 0);
	char path[4200];
	fpath(1, path, sizeof path);
	/* Cut inside entry 29 (a value of 29*37%600 = 473 bytes). */
	ck_assert_int_eq(truncate(path, (off_t)(p[29].offset + p[29].len / 2)), 0);
	v = open_ok(&o);
	ck_assert_int_eq(tu_file_size(path), (long long)p[29].offset);
	ck_assert_uint_eq(vlog_file_size(v, 1), p[29].offset);
	for (int i = 0; i < 29; i++)
		check_item(v, i, &p[i]);
	/* The lost entry's pointer is past the end now. */
	buf out = { 0 };
	char why[512] = "";
	ck_assert_int_eq(vlog_read(v, &p[29], slice_make(NULL, 0), &out, why, sizeof why),
			 SETT_ECORRUPT);
	/* Appends continue where the valid data ends. */
	vptr q[30];
	append_items(v, 29, 1, 1, q); /* fills q[29] */
	ck_assert_uint_eq(q[29].offset, p[29].offset);
	check_item(v, 29, &q[29]);
	vlog_close(v);
	buf_free(&out);
}
END_TEST

/*
 * Damage in the head file (a valid entry follows, or a complete last entry
 * has a bad checksum) is not cut off: the other values stay readable, the
 * bad one is reported, and new values go to a new file.
 */
START_TEST(corrupt_head_kept_and_reported)
{
	vlog_options o = opts(1 << 20, 1000);
	char path[4200];
	fpath(1, path, sizeof path);
	for (int victim = 4; victim <= 9; victim += 5) {
		vlog *v = open_ok(&o);
		vptr p[10];
		append_items(v, 0, 10, 10, p);
		vlog_close(v);
		long long size = tu_file_size(path);
		tu_flip_byte(path, p[victim].offset + p[victim].len - 10);
		v = open_ok(&o);
		ck_assert_int_eq(tu_file_size(path), size);
		ck_assert_uint_eq(vlog_file_size(v, 1), (uint64_t)size);
		buf out = { 0 };
		char why[512] = "";
		ck_assert_int_eq(vlog_read(v, &p[victim], slice_make(NULL, 0), &out, why,
					   sizeof why),
				 SETT_ECORRUPT);
		char expect[4300];
		snprintf(expect, sizeof expect, "%s: corrupt entry at offset %u", path,
			 p[victim].offset);
		ck_assert_str_eq(why, expect);
		for (int i = 0; i < 10; i++)
			if (i != victim)
				check_item(v, i, &p[i]);
		ck_assert_int_eq(vlog_iterate(v, 1, NULL, NULL), SETT_ECORRUPT);
		vptr q[11];
		append_items(v, 10, 1, 1, q); /* fills q[10] */
		ck_assert_uint_eq(q[10].fid, 2);
		check_item(v, 10, &q[10]);
		ck_assert_int_eq(tu_file_size(path), size);
		vlog_close(v);
		buf_free(&out);
		tu_rmrf(dir);
		ck_assert_int_eq(mkdir(dir, 0755), 0);
	}
}
END_TEST

/*
 * A head whose tail claims, every few bytes, an entry reaching to its end,
 * after one claiming to run past the end (as a torn one does): the search
 * for a valid entry stops at its budget; the head is kept whole (not cut)
 * and sealed, its values readable, new ones going to a new file.  Checking
 * every claim took hours for these 16 MiB.
 */
START_TEST(crafted_tail_kept)
{
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	vptr p[10];
	append_items(v, 0, 10, 10, p);
	vlog_close(v);
	char path[4200];
	fpath(1, path, sizeof path);
	tu_append_claims(path, 16u << 20, 0, 1);
	long long size = tu_file_size(path);
	v = open_ok(&o);
	ck_assert_int_eq(tu_file_size(path), size);
	for (int i = 0; i < 10; i++)
		check_item(v, i, &p[i]);
	vptr q[11];
	append_items(v, 10, 1, 1, q); /* fills q[10] */
	ck_assert_uint_eq(q[10].fid, 2);
	check_item(v, 10, &q[10]);
	vlog_close(v);
}
END_TEST

/* A complete-length last entry with an unwritten (zero) sector is torn. */
START_TEST(zero_sector_tail_cut)
{
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	uint8_t ik[16];
	ikey_make(ik, "z", 1, 1);
	uint8_t *val = malloc(3000);
	memset(val, 'q', 3000);
	entry e[2] = { { slice_make(ik, 9), slice_make(val, 10), 0, 0, 0 },
		       { slice_make(ik, 9), slice_make(val, 3000), 0, 0, 0 } };
	vptr p[2];
	ck_assert_int_eq(vlog_append(v, e, 2, p), 0);
	vlog_close(v);
	char path[4200];
	fpath(1, path, sizeof path);
	/* Zero the aligned sector at 1024 (inside the second entry's value). */
	FILE *f = fopen(path, "r+b");
	uint8_t zero[512] = { 0 };
	fseek(f, 1024, SEEK_SET);
	fwrite(zero, 1, sizeof zero, f);
	fclose(f);
	v = open_ok(&o);
	ck_assert_int_eq(tu_file_size(path), (long long)p[1].offset);
	buf out = { 0 };
	ck_assert_int_eq(vlog_read(v, &p[0], slice_make("z", 1), &out, NULL, 0), 0);
	ck_assert_uint_eq(out.n, 10);
	vlog_close(v);
	buf_free(&out);
	free(val);
}
END_TEST

START_TEST(corrupt_value_detected_on_read)
{
	vlog_options o = opts(2048, 1000);
	vlog *v = open_ok(&o);
	vptr p[40];
	append_items(v, 0, 40, 8, p);
	vlog_close(v);
	/* Entry 5 lives in a file that is not the head (so open does not scan it). */
	ck_assert_uint_lt(p[5].fid, p[39].fid);
	char path[4200];
	fpath(p[5].fid, path, sizeof path);
	tu_flip_byte(path, p[5].offset + p[5].len - ENTRY_CHECKSUM - 1);
	v = open_ok(&o);
	buf out = { 0 };
	char why[512] = "";
	ck_assert_int_eq(vlog_read(v, &p[5], slice_make("key00005", 8), &out, why, sizeof why),
			 SETT_ECORRUPT);
	ck_assert_uint_eq(out.n, 0);
	ck_assert_msg(strstr(why, path) != NULL, "why: %s", why);
	char off[64];
	snprintf(off, sizeof off, "offset %u", p[5].offset);
	ck_assert_msg(strstr(why, off) != NULL, "why: %s", why);
	/* Its neighbours are fine. */
	check_item(v, 4, &p[4]);
	check_item(v, 6, &p[6]);
	/* Iterating the file reports the corruption too. */
	ck_assert_int_eq(vlog_iterate(v, p[5].fid, NULL, NULL), SETT_ECORRUPT);
	vlog_close(v);

	/* Without checksums, a pointer whose length does not match is still caught. */
	o.verify_checksum = 0;
	v = open_ok(&o);
	vptr bad = p[6];
	bad.len -= 1;
	ck_assert_int_eq(vlog_read(v, &bad, slice_make(NULL, 0), &out, why, sizeof why),
			 SETT_ECORRUPT);
	check_item(v, 6, &p[6]);
	vlog_close(v);
	buf_free(&out);
}
END_TEST

START_TEST(bad_pointers_rejected)
{
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	vptr p[3];
	append_items(v, 0, 3, 3, p);
	buf out = { 0 };
	char why[512] = "";
	/* Another key's entry. */
	ck_assert_int_eq(vlog_read(v, &p[1], slice_make("key00002", 8), &out, why, sizeof why),
			 SETT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(why, "000001.vlog"));
	/* Without an expected key, any key is accepted. */
	ck_assert_int_eq(vlog_read(v, &p[1], slice_make(NULL, 0), &out, why, sizeof why), 0);
	out.n = 0;
	vptr q = p[2];
	q.offset += 1; /* misaligned */
	ck_assert_int_eq(vlog_read(v, &q, slice_make(NULL, 0), &out, why, sizeof why),
			 SETT_ECORRUPT);
	q = p[2];
	q.offset = 1u << 30; /* past the end */
	ck_assert_int_eq(vlog_read(v, &q, slice_make(NULL, 0), &out, why, sizeof why),
			 SETT_ECORRUPT);
	q = p[2];
	q.len = 3;
	ck_assert_int_eq(vlog_read(v, &q, slice_make(NULL, 0), &out, why, sizeof why),
			 SETT_ECORRUPT);
	q.offset = 0;
	q.len = p[2].len;
	ck_assert_int_eq(vlog_read(v, &q, slice_make(NULL, 0), &out, why, sizeof why),
			 SETT_ECORRUPT);
	q = p[2];
	q.fid = 77;
	ck_assert_int_eq(vlog_read(v, &q, slice_make(NULL, 0), &out, why, sizeof why), -ENOENT);
	ck_assert_uint_eq(out.n, 0);
	vlog_close(v);
	buf_free(&out);
}
END_TEST

typedef struct visit {
	int n;
	const vptr *expect;
	int first;
} visit;

static int visit_fn(void *arg, const entry *e, const vptr *p)
{
	visit *vs = arg;
	int i = vs->first + vs->n;
	item it;
	item_make(&it, i);
	ck_assert_int_eq(slice_cmp(e->key, it.e.key), 0);
	ck_assert_int_eq(slice_cmp(e->value, it.e.value), 0);
	ck_assert_uint_eq(p->fid, vs->expect[i].fid);
	ck_assert_uint_eq(p->offset, vs->expect[i].offset);
	ck_assert_uint_eq(p->len, vs->expect[i].len);
	item_free(&it);
	vs->n++;
	return 0;
}

static int stop_fn(void *arg, const entry *e, const vptr *p)
{
	(void)e;
	(void)p;
	return ++*(int *)arg == 3 ? 99 : 0;
}

START_TEST(iterate_and_remove)
{
	vlog_options o = opts(4096, 1000);
	vlog *v = open_ok(&o);
	vptr p[100];
	append_items(v, 0, 100, 6, p);
	/* Visit every file: together they hold every entry, in order. */
	uint32_t *fids;
	int n;
	ck_assert_int_eq(vlog_list(v, &fids, &n), 0);
	visit vs = { 0, p, 0 };
	for (int i = 0; i < n; i++) {
		int before = vs.n;
		vs.first = before;
		vs.n = 0;
		ck_assert_int_eq(vlog_iterate(v, fids[i], visit_fn, &vs), 0);
		vs.n += before;
	}
	ck_assert_int_eq(vs.n, 100);
	int cnt = 0;
	ck_assert_int_eq(vlog_iterate(v, fids[0], stop_fn, &cnt), 99);
	ck_assert_int_eq(vlog_iterate(v, 999, stop_fn, &cnt), -ENOENT);

	/* Remove the first file: gone from the list, the disk, and reads. */
	char path[4200];
	fpath(fids[0], path, sizeof path);
	ck_assert_int_eq(vlog_file_remove(v, fids[0]), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(vlog_file_remove(v, fids[0]), -ENOENT);
	ck_assert_int_eq(vlog_file_remove(v, vlog_head_fid(v)), -EBUSY);
	buf out = { 0 };
	ck_assert_int_eq(vlog_read(v, &p[0], slice_make(NULL, 0), &out, NULL, 0), -ENOENT);
	ck_assert_uint_eq(vlog_file_size(v, fids[0]), 0);
	uint32_t *after;
	int m;
	ck_assert_int_eq(vlog_list(v, &after, &m), 0);
	ck_assert_int_eq(m, n - 1);
	ck_assert_uint_eq(after[0], fids[1]);
	check_item(v, 99, &p[99]);
	vlog_close(v);
	/* And it stays gone after reopen. */
	v = open_ok(&o);
	free(after);
	ck_assert_int_eq(vlog_list(v, &after, &m), 0);
	ck_assert_int_eq(m, n - 1);
	vlog_close(v);
	free(fids);
	free(after);
	buf_free(&out);
}
END_TEST

START_TEST(rotate_on_request)
{
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	ck_assert_int_eq(vlog_rotate(v), 0); /* empty head: nothing to do */
	ck_assert_uint_eq(vlog_head_fid(v), 1);
	vptr p[2];
	append_items(v, 0, 1, 1, p);
	ck_assert_int_eq(vlog_rotate(v), 0);
	ck_assert_uint_eq(vlog_head_fid(v), 2);
	append_items(v, 1, 1, 1, p);
	ck_assert_uint_eq(p[1].fid, 2);
	check_item(v, 0, &p[0]);
	check_item(v, 1, &p[1]);
	vlog_close(v);
}
END_TEST

START_TEST(empty_dir)
{
	vlog_options o = opts(1 << 20, 1000);
	o.read_only = 1;
	vlog *v = open_ok(&o);
	ck_assert_uint_eq(vlog_head_fid(v), 0);
	uint32_t *fids;
	int n;
	ck_assert_int_eq(vlog_list(v, &fids, &n), 0);
	ck_assert_int_eq(n, 0);
	free(fids);
	vlog_close(v);
	char path[4200];
	fpath(1, path, sizeof path);
	ck_assert_int_eq(access(path, F_OK), -1);
	o.read_only = 0;
	v = open_ok(&o);
	ck_assert_uint_eq(vlog_head_fid(v), 1);
	ck_assert_int_eq(tu_file_size(path), LOG_HEADER_SIZE);
	vlog_close(v);
	/* A file that is not a value log is refused with its name. */
	tu_flip_byte(path, 0);
	char why[512] = "";
	ck_assert_int_eq(vlog_open(dir, &o, &v, why, sizeof why), SETT_EFORMAT);
	ck_assert_ptr_nonnull(strstr(why, path));
}
END_TEST

/* ---- concurrency: readers while the writer appends and rotates ---- */

#define CONC_N 3000

typedef struct conc {
	vlog *v;
	vptr p[CONC_N];
	int published; /* atomic */
	int done;      /* atomic */
	int reads;
} conc;

static void *writer_main(void *arg)
{
	conc *c = arg;
	for (int i = 0; i < CONC_N; i += 4) {
		item its[4];
		entry es[4];
		vptr ps[4];
		for (int j = 0; j < 4; j++) {
			item_make(&its[j], i + j);
			es[j] = its[j].e;
		}
		if (vlog_append(c->v, es, 4, ps) != 0)
			abort();
		memcpy(&c->p[i], ps, sizeof ps);
		__atomic_store_n(&c->published, i + 4, __ATOMIC_RELEASE);
		for (int j = 0; j < 4; j++)
			item_free(&its[j]);
	}
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *reader_main(void *arg)
{
	conc *c = arg;
	uint64_t st = (uint64_t)(uintptr_t)&st;
	buf out = { 0 };
	int reads = 0;
	while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) || reads < 200) {
		int n = __atomic_load_n(&c->published, __ATOMIC_ACQUIRE);
		if (!n)
			continue;
		int i = (int)(tu_rand(&st) % (uint64_t)n);
		item it;
		item_make(&it, i);
		out.n = 0;
		int r = vlog_read(c->v, &c->p[i], slice_make(it.ukey, 8), &out, NULL, 0);
		if (r != 0 || out.n != it.vlen || (it.vlen && memcmp(out.p, it.val, it.vlen)))
			abort();
		item_free(&it);
		reads++;
	}
	buf_free(&out);
	__atomic_add_fetch(&c->reads, reads, __ATOMIC_RELAXED);
	return NULL;
}

START_TEST(concurrent_readers_during_rotation)
{
	vlog_options o = opts(16384, 1000);
	conc *c = calloc(1, sizeof *c);
	c->v = open_ok(&o);
	pthread_t w, r[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&r[i], NULL, reader_main, c);
	pthread_create(&w, NULL, writer_main, c);
	pthread_join(w, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(r[i], NULL);
	ck_assert_int_ge(c->reads, 600);
	ck_assert_uint_gt(vlog_head_fid(c->v), 20);
	vlog_close(c->v);
	free(c);
}
END_TEST

typedef struct remover {
	vlog *v;
	vptr p;
	int stop;
	int ok, gone;
} remover;

static void *remove_reader(void *arg)
{
	remover *rm = arg;
	buf out = { 0 };
	while (!__atomic_load_n(&rm->stop, __ATOMIC_ACQUIRE)) {
		out.n = 0;
		int r = vlog_read(rm->v, &rm->p, slice_make("key00000", 8), &out, NULL, 0);
		if (r == 0)
			__atomic_add_fetch(&rm->ok, 1, __ATOMIC_RELAXED);
		else if (r == -ENOENT)
			__atomic_add_fetch(&rm->gone, 1, __ATOMIC_RELAXED);
		else
			abort();
	}
	buf_free(&out);
	return NULL;
}

/*
 * A file other than the head is read through a mapping: a file cut short
 * under the open log makes a read past the new end fail with an error (no
 * SIGBUS), reads before it still succeed, and a head that becomes an older
 * file after a rotation reads the same through its mapping.
 */
START_TEST(sealed_file_cut_short_while_open)
{
	vlog_options o = opts(1 << 16, 100000);
	vlog *v = open_ok(&o);
	vptr p[400];
	append_items(v, 0, 200, 8, p);
	/* Read while the file is the head (pread), then after it was sealed (mapping). */
	check_item(v, 150, &p[150]);
	ck_assert_int_eq(vlog_rotate(v), 0);
	append_items(v, 200, 200, 8, p);
	ck_assert_uint_lt(p[199].fid, vlog_head_fid(v));
	int late = -1, early = -1;
	for (int i = 0; i < 200; i++) {
		check_item(v, i, &p[i]);
		if (p[i].fid == p[0].fid && p[i].offset > 3 * 4096 && late < 0)
			late = i;
		if (p[i].fid == p[0].fid && p[i].offset + p[i].len < 4096)
			early = i;
	}
	ck_assert_int_ge(late, 0);
	ck_assert_int_ge(early, 0);
	char path[4200];
	fpath(p[0].fid, path, sizeof path);
	ck_assert_int_eq(truncate(path, 2 * 4096), 0);
	buf out = { 0 };
	char why[512] = "";
	item it;
	item_make(&it, late);
	int r = vlog_read(v, &p[late], slice_make(it.ukey, strlen(it.ukey)), &out, why, sizeof why);
	ck_assert_msg(r == -EIO || r == SETT_ECORRUPT, "read past the cut: %d", r);
	ck_assert_uint_eq(out.n, 0);
	item_free(&it);
	check_item(v, early, &p[early]);
	buf_free(&out);
	vlog_close(v);
}
END_TEST

/* A file removed under a reader: each read either succeeds or sees it gone. */
START_TEST(remove_while_reading)
{
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	vptr p[1];
	append_items(v, 0, 1, 1, p);
	ck_assert_int_eq(vlog_rotate(v), 0);
	remover rm = { v, p[0], 0, 0, 0 };
	pthread_t t;
	pthread_create(&t, NULL, remove_reader, &rm);
	while (__atomic_load_n(&rm.ok, __ATOMIC_RELAXED) < 100)
		usleep(100);
	ck_assert_int_eq(vlog_file_remove(v, 1), 0);
	/* until the reader has seen the file go (bounded: 10 s) */
	for (int i = 0; i < 100000 && !__atomic_load_n(&rm.gone, __ATOMIC_RELAXED); i++)
		usleep(100);
	__atomic_store_n(&rm.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ck_assert_int_gt(rm.gone, 0);
	char path[4200];
	fpath(1, path, sizeof path);
	ck_assert_int_eq(access(path, F_OK), -1);
	vlog_close(v);
}
END_TEST

START_TEST(power_cut_keeps_synced)
{
	sio_fault_reset();
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	vptr p[60];
	append_items(v, 0, 40, 5, p);
	ck_assert_int_eq(vlog_sync(v), 0);
	append_items(v, 40, 20, 5, p);
	sio_fault_powercut();
	vlog_close(v);
	sio_fault_reset();
	v = open_ok(&o);
	for (int i = 0; i < 40; i++)
		check_item(v, i, &p[i]);
	/* Nothing unsynced survived: the head ends right after entry 39. */
	ck_assert_uint_eq(vlog_head_fid(v), 1);
	ck_assert_uint_eq(vlog_file_size(v, 1), p[39].offset + p[39].len);
	buf out = { 0 };
	ck_assert_int_eq(vlog_read(v, &p[59], slice_make(NULL, 0), &out, NULL, 0),
			 SETT_ECORRUPT);
	/* The store keeps working after recovery. */
	vptr q[60];
	append_items(v, 59, 1, 1, q); /* fills q[59] */
	check_item(v, 59, &q[59]);
	vlog_close(v);
	buf_free(&out);
}
END_TEST

/* Rotation makes the finished file durable: a power cut loses only the head's tail. */
START_TEST(power_cut_after_rotation)
{
	sio_fault_reset();
	vlog_options o = opts(4096, 1000);
	vlog *v = open_ok(&o);
	vptr p[60];
	append_items(v, 0, 60, 5, p);
	uint32_t head = vlog_head_fid(v);
	ck_assert_uint_gt(head, 2);
	sio_fault_powercut();
	vlog_close(v);
	sio_fault_reset();
	v = open_ok(&o);
	ck_assert_uint_eq(vlog_head_fid(v), head);
	for (int i = 0; i < 60 && p[i].fid < head; i++)
		check_item(v, i, &p[i]);
	ck_assert_uint_eq(vlog_file_size(v, head), LOG_HEADER_SIZE);
	vlog_close(v);
}
END_TEST

/* ---- encrypted files (doc/FORMAT.md, "Encrypted value log") ---- */

#define ENC_HDR (LOG_HEADER_SIZE + CIPHER_HEAD_SIZE + 8)

/* Options that write with key `cur` of ring g and read with any of g's keys. */
static vlog_options enc_opts(uint64_t file_size, cipher_ring *g)
{
	vlog_options o = opts(file_size, 1000);
	o.cipher = cipher_ring_current(g);
	o.keys = cipher_ring_keys(g);
	return o;
}

/* The key id the header of file fid names. */
static uint64_t header_key_id(uint32_t fid)
{
	char path[4200];
	uint8_t h[ENC_HDR];
	fpath(fid, path, sizeof path);
	FILE *f = fopen(path, "rb");
	ck_assert(f && fread(h, 1, sizeof h, f) == sizeof h);
	fclose(f);
	ck_assert(memcmp(h, "SETTVLGE", 8) == 0);
	return get_le64(h + LOG_HEADER_SIZE);
}

static const char secret_key[] = "secret-user-key";
static const char secret_val[] = "the-secret-value-that-must-not-leak";

static vptr append_secret(vlog *v)
{
	uint8_t ik[64];
	ikey_make(ik, secret_key, strlen(secret_key), 7);
	entry e = { slice_make(ik, strlen(secret_key) + 8),
		    slice_make(secret_val, strlen(secret_val)), 0, 0, 0 };
	vptr p;
	ck_assert_int_eq(vlog_append(v, &e, 1, &p), 0);
	return p;
}

START_TEST(enc_round_trip_no_plaintext)
{
	cipher_ring *g = tu_ring(1, 1, 1);
	vlog_options o = enc_opts(4096, g);
	vlog *v = open_ok(&o);
	vptr p[60];
	append_items(v, 0, 60, 5, p);
	vptr s = append_secret(v);
	ck_assert_uint_gt(vlog_head_fid(v), 2);
	for (int i = 0; i < 60; i++)
		check_item(v, i, &p[i]);
	/* iterate (GC's reader) decodes the same entries at the same pointers */
	visit vs = { 0, p, 0 };
	ck_assert_int_eq(vlog_iterate(v, 1, visit_fn, &vs), 0);
	ck_assert_int_gt(vs.n, 3);
	ck_assert_uint_eq(p[vs.n].fid, 2);
	vlog_close(v);
	v = open_ok(&o);
	for (int i = 0; i < 60; i++)
		check_item(v, i, &p[i]);
	buf out = { 0 };
	ck_assert_int_eq(vlog_read(v, &s, slice_make(secret_key, strlen(secret_key)), &out, NULL,
				   0), 0);
	ck_assert(out.n == strlen(secret_val) && memcmp(out.p, secret_val, out.n) == 0);
	vlog_close(v);
	for (uint32_t fid = 1; fid <= s.fid; fid++) {
		char path[4200];
		fpath(fid, path, sizeof path);
		ck_assert_uint_eq(header_key_id(fid), 1);
		ck_assert(!tu_file_contains(path, secret_val, 12));
		ck_assert(!tu_file_contains(path, secret_key, 10));
		ck_assert(!tu_file_contains(path, "key000", 6));
	}
	buf_free(&out);
	cipher_ring_free(g);
}
END_TEST

/* A flipped ciphertext byte fails that record's tag, naming file and offset. */
START_TEST(enc_flipped_byte_is_corrupt)
{
	cipher_ring *g = tu_ring(1, 1, 1);
	vlog_options o = enc_opts(1 << 20, g);
	char path[4200];
	fpath(1, path, sizeof path);
	vlog *v = open_ok(&o);
	vptr p[10];
	append_items(v, 0, 10, 10, p);
	vlog_close(v);
	long long size = tu_file_size(path);
	tu_flip_byte(path, p[4].offset + p[4].len / 2);
	/* the head keeps every byte: a complete record failing its tag is damage */
	v = open_ok(&o);
	ck_assert_int_eq(tu_file_size(path), size);
	buf out = { 0 };
	char why[512] = "", expect[4300];
	ck_assert_int_eq(vlog_read(v, &p[4], slice_make(NULL, 0), &out, why, sizeof why),
			 SETT_ECORRUPT);
	snprintf(expect, sizeof expect, "%s: corrupt entry at offset %u", path, p[4].offset);
	ck_assert_str_eq(why, expect);
	for (int i = 0; i < 10; i++)
		if (i != 4)
			check_item(v, i, &p[i]);
	ck_assert_int_eq(vlog_iterate(v, 1, NULL, NULL), SETT_ECORRUPT);
	vlog_close(v);
	buf_free(&out);
	cipher_ring_free(g);
}
END_TEST

/* Another key of the same id, or none, is SETT_EKEY at open, not corruption. */
START_TEST(enc_wrong_key)
{
	cipher_ring *g = tu_ring(1, 1, 1), *other = tu_ring(1, 1, 2);
	vlog_options o = enc_opts(1 << 20, g);
	vlog *v = open_ok(&o);
	vptr p[5];
	append_items(v, 0, 5, 5, p);
	vlog_close(v);
	char why[512] = "", path[4200];
	fpath(1, path, sizeof path);
	vlog_options wrong = enc_opts(1 << 20, other);
	ck_assert_int_eq(vlog_open(dir, &wrong, &v, why, sizeof why), SETT_EKEY);
	ck_assert_msg(strstr(why, path) && strstr(why, "data key 1") && strstr(why, "wrong key"),
		      "why: %s", why);
	vlog_options none = opts(1 << 20, 1000);
	ck_assert_int_eq(vlog_open(dir, &none, &v, why, sizeof why), SETT_EKEY);
	ck_assert_msg(strstr(why, "no key given"), "why: %s", why);
	/* the right key still reads everything */
	v = open_ok(&o);
	for (int i = 0; i < 5; i++)
		check_item(v, i, &p[i]);
	vlog_close(v);
	cipher_ring_free(g);
	cipher_ring_free(other);
}
END_TEST

/*
 * A record cut short, or ending in an unwritten sector, is a torn tail and
 * is cut; the next append goes to a new file, never over the cut offsets.
 */
START_TEST(enc_torn_tail_cut)
{
	cipher_ring *g = tu_ring(1, 1, 1);
	vlog_options o = enc_opts(1 << 20, g);
	char path[4200];
	fpath(1, path, sizeof path);
	for (int zeros = 0; zeros <= 1; zeros++) {
		vlog *v = open_ok(&o);
		vptr p[30];
		append_items(v, 0, 29, 4, p);
		/* the last record holds 3000 value bytes: a whole sector of it can be lost */
		uint8_t ik[16], *val = malloc(3000);
		memset(val, 'q', 3000);
		ikey_make(ik, "key00029", 8, 30);
		entry big = { slice_make(ik, 16), slice_make(val, 3000), 0, 0, 0 };
		ck_assert_int_eq(vlog_append(v, &big, 1, &p[29]), 0);
		free(val);
		vlog_close(v);
		uint64_t end = p[29].offset + p[29].len + CIPHER_REC_OVERHEAD;
		if (zeros) {
			FILE *f = fopen(path, "r+b");
			uint8_t z[512] = { 0 };
			uint64_t sec = (p[29].offset + 511) / 512 * 512;
			ck_assert_uint_lt(sec + 512, end);
			fseek(f, (long)sec, SEEK_SET);
			fwrite(z, 1, sizeof z, f);
			fclose(f);
		} else {
			ck_assert_int_eq(truncate(path, (off_t)(end - 7)), 0);
		}
		v = open_ok(&o);
		ck_assert_int_eq(tu_file_size(path), (long long)p[29].offset);
		for (int i = 0; i < 29; i++)
			check_item(v, i, &p[i]);
		vptr q[31];
		append_items(v, 29, 1, 1, q);
		ck_assert_uint_eq(q[29].fid, 2);
		check_item(v, 29, &q[29]);
		vlog_close(v);
		tu_rmrf(dir);
		ck_assert_int_eq(mkdir(dir, 0755), 0);
	}
	cipher_ring_free(g);
}
END_TEST

/*
 * No offset of a file is sealed twice: a reopened head with records takes
 * no appends, an empty one gets a new salt, a failed write seals the file.
 */
START_TEST(enc_no_offset_sealed_twice)
{
	cipher_ring *g = tu_ring(1, 1, 1);
	vlog_options o = enc_opts(1 << 20, g);
	char path[4200];
	fpath(2, path, sizeof path);
	vlog *v = open_ok(&o);
	vptr p[4];
	append_items(v, 0, 2, 2, p);
	vlog_close(v);
	v = open_ok(&o);
	append_items(v, 2, 1, 1, p); /* into file 2 */
	ck_assert_uint_eq(p[2].fid, 2);
	ck_assert_int_eq(vlog_rotate(v), 0); /* file 3, empty */
	vlog_close(v);
	uint8_t h1[ENC_HDR], h2[ENC_HDR];
	char p3[4200];
	fpath(3, p3, sizeof p3);
	FILE *f = fopen(p3, "rb");
	ck_assert(fread(h1, 1, sizeof h1, f) == sizeof h1);
	fclose(f);
	v = open_ok(&o);
	f = fopen(p3, "rb");
	ck_assert(fread(h2, 1, sizeof h2, f) == sizeof h2);
	fclose(f);
	ck_assert(memcmp(h1 + LOG_HEADER_SIZE + 8, h2 + LOG_HEADER_SIZE + 8, CIPHER_SALT_SIZE) != 0);
	/* a failed write: the retry goes to the next file */
	item it;
	item_make(&it, 3);
	sio_fault_fail_nth(1, -EIO);
	ck_assert_int_eq(vlog_append(v, &it.e, 1, &p[3]), -EIO);
	sio_fault_reset();
	ck_assert_int_eq(vlog_append(v, &it.e, 1, &p[3]), 0);
	ck_assert_uint_eq(p[3].fid, 4);
	item_free(&it);
	for (int i = 0; i < 4; i++)
		check_item(v, i, &p[i]);
	vlog_close(v);
	cipher_ring_free(g);
}
END_TEST

/* After a rotation to key 2 files of key 1 stay readable; new files use key 2. */
START_TEST(enc_key_rotation)
{
	cipher_ring *g1 = tu_ring(1, 1, 1), *g12 = tu_ring(1, 2, 1), *g2 = tu_ring(2, 2, 1);
	vlog_options o1 = enc_opts(1 << 20, g1), o12 = enc_opts(1 << 20, g12);
	vlog *v = open_ok(&o1);
	vptr p[10];
	append_items(v, 0, 5, 5, p);
	vlog_close(v);
	v = open_ok(&o12);
	append_items(v, 5, 5, 5, p);
	ck_assert_uint_eq(p[5].fid, 2);
	for (int i = 0; i < 10; i++)
		check_item(v, i, &p[i]);
	vlog_close(v);
	ck_assert_uint_eq(header_key_id(1), 1);
	ck_assert_uint_eq(header_key_id(2), 2);
	/* a plaintext log read with an encrypted store's keys is refused, unread */
	tu_rmrf(dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	vlog_options plain = opts(1 << 20, 1000);
	v = open_ok(&plain);
	append_items(v, 0, 5, 5, p);
	vlog_close(v);
	vlog_options o2 = enc_opts(1 << 20, g2);
	char why[512] = "";
	ck_assert_int_eq(vlog_open(dir, &o2, &v, why, sizeof why), SETT_ECORRUPT);
	ck_assert_msg(strstr(why, "000001.vlog: plaintext file in an encrypted store"), "%s", why);
	cipher_ring_free(g1);
	cipher_ring_free(g12);
	cipher_ring_free(g2);
}
END_TEST

/* Without a cipher the file is byte for byte the plaintext format. */
START_TEST(plain_format_unchanged)
{
	vlog_options o = opts(1 << 20, 1000);
	vlog *v = open_ok(&o);
	item it;
	item_make(&it, 3);
	vptr p;
	ck_assert_int_eq(vlog_append(v, &it.e, 1, &p), 0);
	vlog_close(v);
	ck_assert_uint_eq(p.offset, LOG_HEADER_SIZE);
	uint8_t want[LOG_HEADER_SIZE + 1024];
	log_header_encode(want, "SETTVLOG", 1);
	size_t n = entry_encode(want + LOG_HEADER_SIZE, &it.e);
	char path[4200];
	fpath(1, path, sizeof path);
	ck_assert_int_eq(tu_file_size(path), (long long)(LOG_HEADER_SIZE + n));
	ck_assert(tu_file_contains(path, want, LOG_HEADER_SIZE + n));
	item_free(&it);
}
END_TEST

/*
 * Values from BORROW_MIN (4 KiB) on are written from where they are, the
 * rest copied: a batch that mixes both, across a rotation, leaves the
 * bytes entry_encode gives, one after the other, and reads back.
 */
START_TEST(large_values_written_in_place)
{
	vlog_options o = opts(300000, 1000);
	vlog *v = open_ok(&o);
	static const size_t lens[] = { 10, 4095, 4096, 4097, 100, 150000, 0, 70000, 5000, 120000 };
	enum { N = sizeof lens / sizeof lens[0] };
	uint8_t ik[N][24], *val[N];
	entry e[N];
	uint64_t st = 9;
	for (int i = 0; i < N; i++) {
		char uk[16];
		int kn = snprintf(uk, sizeof uk, "big%02d", i);
		ikey_make(ik[i], uk, (size_t)kn, (uint64_t)i + 1);
		val[i] = malloc(lens[i] + 1);
		tu_fill_random(&st, val[i], lens[i]);
		e[i] = (entry){ slice_make(ik[i], (size_t)kn + 8), slice_make(val[i], lens[i]), 0,
				(uint8_t)i, 0 };
	}
	vptr p[N];
	ck_assert_int_eq(vlog_append(v, e, N, p), 0);
	ck_assert_uint_gt(p[N - 1].fid, p[0].fid); /* it rotated on the way */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			buf out = { 0 };
			char why[512] = "";
			int r = vlog_read(v, &p[i], ikey_user(e[i].key), &out, why, sizeof why);
			ck_assert_msg(r == 0, "read %d: %d %s", i, r, why);
			ck_assert_uint_eq(out.n, lens[i]);
			ck_assert(lens[i] == 0 || memcmp(out.p, val[i], lens[i]) == 0);
			buf_free(&out);
		}
		vlog_close(v);
		/* the file holds each entry as entry_encode writes it */
		for (int i = 0; i < N; i++) {
			uint8_t *want = malloc(entry_encoded_len(&e[i]));
			size_t n = entry_encode(want, &e[i]);
			ck_assert_uint_eq(n, p[i].len);
			char path[4200];
			fpath(p[i].fid, path, sizeof path);
			size_t fn;
			uint8_t *got = tu_slurp(path, &fn);
			ck_assert(got && fn >= p[i].offset + n);
			ck_assert(memcmp(got + p[i].offset, want, n) == 0);
			free(got);
			free(want);
		}
		v = open_ok(&o);
	}
	vlog_close(v);
	for (int i = 0; i < N; i++)
		free(val[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vlog");
	TCase *tc = tcase_create("vlog");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, append_read_across_rotation);
	tcase_add_test(tc, reopen_continues);
	tcase_add_test(tc, max_entries_rotation);
	tcase_add_test(tc, entry_larger_than_file_size);
	tcase_add_test(tc, torn_tail_of_last_file_cut);
	tcase_add_test(tc, crafted_tail_kept);
	tcase_add_test(tc, large_values_written_in_place);
	tcase_add_test(tc, corrupt_head_kept_and_reported);
	tcase_add_test(tc, zero_sector_tail_cut);
	tcase_add_test(tc, corrupt_value_detected_on_read);
	tcase_add_test(tc, bad_pointers_rejected);
	tcase_add_test(tc, iterate_and_remove);
	tcase_add_test(tc, rotate_on_request);
	tcase_add_test(tc, empty_dir);
	tcase_add_test(tc, concurrent_readers_during_rotation);
	tcase_add_test(tc, remove_while_reading);
	tcase_add_test(tc, sealed_file_cut_short_while_open);
	tcase_add_test(tc, power_cut_keeps_synced);
	tcase_add_test(tc, power_cut_after_rotation);
	tcase_add_test(tc, enc_round_trip_no_plaintext);
	tcase_add_test(tc, enc_flipped_byte_is_corrupt);
	tcase_add_test(tc, enc_wrong_key);
	tcase_add_test(tc, enc_torn_tail_cut);
	tcase_add_test(tc, enc_no_offset_sealed_twice);
	tcase_add_test(tc, enc_key_rotation);
	tcase_add_test(tc, plain_format_unchanged);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
