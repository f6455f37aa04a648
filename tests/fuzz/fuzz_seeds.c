/*
 * fuzz_seeds.c - writes the seed corpus of every fuzz target with the
 * project's own writers, so that the seeds follow the current format.
 *
 *   fuzz_seeds OUTDIR
 *
 * Builds two engine stores (tables without and with zstd) and a settfs
 * filesystem in scratch directories, then writes OUTDIR/<target>/<name>
 * for every target (fuzz_<target>): the store's files, single log entries
 * and value structs, the filesystem's values and a dump of its keys.  Each
 * seed starts with the target's mode byte (fuzz.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "acl.h"
#include "coding.h"
#include "control.h"
#include "entry.h"
#include "fuzz.h"
#include "ikey.h"
#include "keyregistry.h"
#include "schema.h"
#include "send.h"
#include "settfs.h"
#include "table.h"
#include "vlog.h"

static const char *out;
static int nseeds;

#define DIE(...) do { fprintf(stderr, "fuzz_seeds: " __VA_ARGS__); fprintf(stderr, "\n"); exit(1); } while (0)
#define OK(call) do { long r_ = (long)(call); if (r_ < 0) DIE("%s: %ld", #call, r_); } while (0)

/* OUTDIR/target/name = prefix (plen bytes) + p. */
static void seed(const char *target, const char *name, const void *prefix, size_t plen,
		 const void *p, size_t n)
{
	char path[8192];
	snprintf(path, sizeof path, "%s/%s", out, target);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/%s/%s", out, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(prefix, 1, plen, f) != plen || (n && fwrite(p, 1, n, f) != n) ||
	    fclose(f))
		DIE("cannot write %s", path);
	nseeds++;
}

static void seed1(const char *target, const char *name, uint8_t mode, const void *p, size_t n)
{
	seed(target, name, &mode, 1, p, n);
}

/* ---- the engine's files ---- */

/* Registries with keys under fuzz_master_key, for the direct decode. */
static void keyregistry_seeds(void)
{
	keyreg_master m = { .key = fuzz_master_key };
	keyreg *kr;
	if (keyreg_create(&m, 1, &kr))
		DIE("keyreg_create");
	for (int k = 1; k <= 3; k++) {
		uint8_t *p;
		size_t n;
		if (keyreg_encode(kr, &p, &n))
			DIE("keyreg_encode");
		char name[64];
		snprintf(name, sizeof name, "keys-%d", k);
		seed1("keyregistry", name, FUZZ_FIX_SUMS | 2, p, n);
		free(p);
		if (keyreg_rotate(kr, 1 + (uint64_t)k))
			DIE("keyreg_rotate");
	}
	keyreg_free(kr);
}

static void put(sett_db *db, const char *k, size_t vlen, int salt)
{
	char v[4096];
	for (size_t i = 0; i < vlen; i++)
		v[i] = (char)('a' + (i * 7 + (size_t)salt) % 26);
	OK(sett_put(db, (sett_val){ .data = k, .size = strlen(k) }, (sett_val){ .data = v, .size = vlen }));
}

/* One file of the store: its kind for the container, and its id. */
static int classify(const char *name, unsigned *kind, uint64_t *id)
{
	static const char *fixed[] = { "MANIFEST", "KEYREGISTRY", "DISCARD" };
	for (unsigned i = 0; i < 3; i++)
		if (!strcmp(name, fixed[i])) {
			*kind = i;
			*id = 0;
			return 0;
		}
	char *end;
	unsigned long long v = strtoull(name, &end, 10);
	if (end == name)
		return -1;
	*id = v;
	if (!strcmp(end, ".mem"))
		*kind = FUZZ_F_WAL;
	else if (!strcmp(end, ".vlog"))
		*kind = FUZZ_F_VLOG;
	else if (!strcmp(end, ".sst"))
		*kind = FUZZ_F_TABLE;
	else
		return -1;
	return 0;
}

/* Seeds of every per-file target, and the whole directory for fuzz_store. */
static void seed_store(const char *dir, const char *tag)
{
	DIR *d = opendir(dir);
	if (!d)
		DIE("opendir %s", dir);
	buf all = { 0 };
	uint8_t mode = FUZZ_FIX_SUMS;
	OK(buf_append(&all, &mode, 1));
	struct dirent *de;
	int nentries = 0;
	while ((de = readdir(d))) {
		unsigned kind;
		uint64_t id;
		if (classify(de->d_name, &kind, &id))
			continue;
		uint8_t *p;
		size_t n;
		if (fuzz_read(dir, de->d_name, &p, &n))
			DIE("read %s", de->d_name);
		uint8_t hdr[1 + 2 * VARINT_MAX];
		size_t hn = 0;
		hdr[hn++] = (uint8_t)kind;
		hn += varint_put(hdr + hn, id);
		hn += varint_put(hdr + hn, n);
		OK(buf_append(&all, hdr, hn));
		OK(buf_append(&all, p, n));

		char name[300];
		snprintf(name, sizeof name, "%s-%s", tag, de->d_name);
		switch (kind) {
		case FUZZ_F_MANIFEST:
			seed1("manifest", name, FUZZ_FIX_SUMS, p, n);
			break;
		case FUZZ_F_DISCARD:
			seed1("discard", name, FUZZ_FIX_SUMS, p, n);
			break;
		case FUZZ_F_KEYREGISTRY:
			seed1("keyregistry", name, FUZZ_FIX_SUMS, p, n);
			break;
		case FUZZ_F_TABLE:
			seed1("table", name, FUZZ_FIX_SUMS, p, n);
			snprintf(name, sizeof name, "%s-cached-%s", tag, de->d_name);
			seed1("table", name, FUZZ_FIX_SUMS | 4, p, n);
			break;
		case FUZZ_F_WAL:
			seed1("wal", name, FUZZ_FIX_SUMS, p, n);
			/* its entries, one by one */
			for (size_t off = LOG_HEADER_SIZE; off < n && nentries < 64;) {
				entry e;
				long k = entry_decode(p + off, n - off, &e);
				if (k <= 0)
					break;
				snprintf(name, sizeof name, "%s-entry-%d", tag, nentries++);
				seed1("entry", name, FUZZ_FIX_SUMS, p + off, (size_t)k);
				off += (size_t)k;
			}
			break;
		case FUZZ_F_VLOG: {
			/* probe the first entry */
			uint8_t pre[1 + VPTR_SIZE] = { FUZZ_FIX_SUMS };
			entry e;
			long k = n > LOG_HEADER_SIZE ? entry_decode(p + LOG_HEADER_SIZE,
								 n - LOG_HEADER_SIZE, &e) : 0;
			vptr vp = { (uint32_t)id, k > 0 ? (uint32_t)k : 0, LOG_HEADER_SIZE };
			vptr_encode(pre + 1, &vp);
			seed("vlog", name, pre, sizeof pre, p, n);
			break;
		}
		default:
			break;
		}
		free(p);
	}
	closedir(d);
	seed("store", tag, NULL, 0, all.p, all.n);
	buf_free(&all);
}

/*
 * Encrypted value-log files and tables, written with the fuzz key ring:
 * each as it is (mode FUZZ_ENC: the tags get fuzzed) and unsealed (with
 * FUZZ_FIX_SUMS, sealed again by the target: what is behind them).
 */
static void encrypted_seeds(const char *base)
{
	char dir[4200], why[512];
	snprintf(dir, sizeof dir, "%s/encrypted", base);
	mkdir(dir, 0755);
	vlog_options vo = { .file_size = 8 << 10, .max_entries = 100, .verify_checksum = 1,
			    .cipher = fuzz_cipher(), .keys = fuzz_keys() };
	vlog *v;
	OK(vlog_open(dir, &vo, &v, why, sizeof why));
	char k[32];
	uint8_t ik[48], val[300];
	for (int i = 0; i < 60; i++) {
		int kn = snprintf(k, sizeof k, "key%05d", i);
		ikey_make(ik, k, (size_t)kn, (uint64_t)i + 1);
		size_t vl = (size_t)(i * 37) % sizeof val;
		memset(val, 'a' + i % 26, vl);
		entry e = { slice_make(ik, (size_t)kn + 8), slice_make(val, vl), 0, 0, 0 };
		vptr p;
		OK(vlog_append(v, &e, 1, &p));
	}
	OK(vlog_close(v));
	for (int z = 0; z < 2; z++) {
		char path[4300];
		snprintf(path, sizeof path, "%s/%06d.sst", dir, z + 1);
		table_options to = { .block_size = 512, .zstd_level = 1, .bloom_fp = 0.01,
				     .compression = z ? SETT_COMPRESS_ZSTD : SETT_COMPRESS_NONE,
				     .cipher = fuzz_cipher() };
		table_builder *b;
		OK(table_builder_new(path, &to, &b));
		for (int i = 0; i < 200; i++) {
			int kn = snprintf(k, sizeof k, "key%05d", i);
			ikey_make(ik, k, (size_t)kn, (uint64_t)i + 1);
			size_t vl = 3 + (size_t)(i * 13) % 60;
			memset(val, 0, 3); /* meta, user_meta, expires_at: a value struct */
			memset(val + 3, 'a' + i % 26, vl - 3);
			OK(table_builder_add(b, slice_make(ik, (size_t)kn + 8), slice_make(val, vl)));
		}
		OK(table_builder_finish(b));
	}
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		unsigned kind;
		uint64_t id;
		uint8_t *p;
		size_t n;
		if (classify(de->d_name, &kind, &id) || fuzz_read(dir, de->d_name, &p, &n))
			continue;
		char name[300];
		for (int unsealed = 0; unsealed <= 1; unsealed++) {
			uint8_t mode = (uint8_t)(FUZZ_ENC | (unsealed ? FUZZ_FIX_SUMS : 0));
			snprintf(name, sizeof name, "enc-%s%s", unsealed ? "unsealed-" : "", de->d_name);
			if (kind == FUZZ_F_VLOG) {
				if (unsealed)
					fuzz_unseal_log(p, n);
				/* probe the first record */
				const size_t at = LOG_HEADER_SIZE + CIPHER_HEAD_SIZE + 8;
				uint8_t pre[1 + VPTR_SIZE] = { mode };
				vptr vp = { (uint32_t)id, n > at + 4 ? get_le32(p + at) : 0, (uint32_t)at };
				vptr_encode(pre + 1, &vp);
				seed("vlog", name, pre, sizeof pre, p, n);
			} else if (kind == FUZZ_F_TABLE) {
				if (unsealed)
					fuzz_unseal_table(p, n);
				seed1("table", name, mode, p, n);
				snprintf(name, sizeof name, "enc-%scached-%s", unsealed ? "unsealed-" : "",
					 de->d_name);
				seed1("table", name, (uint8_t)(mode | 4), p, n);
			}
		}
		free(p);
	}
	if (d)
		closedir(d);
}

static void copy_dir(const char *from, const char *to)
{
	mkdir(to, 0755);
	DIR *d = opendir(from);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "LOCK"))
			continue;
		uint8_t *p;
		size_t n;
		if (fuzz_read(from, de->d_name, &p, &n) == 0) {
			fuzz_write(to, de->d_name, p, n);
			free(p);
		}
	}
	if (d)
		closedir(d);
}

static int seed_write(void *arg, const void *p, size_t n)
{
	return buf_append(arg, p, n);
}

/* A full and an incremental backup stream (the pin puts a mark in the MANIFEST). */
static void seed_backups(sett_db *db, const char *tag)
{
	buf full = { 0 }, inc = { 0 };
	sett_backup_options bo;
	sett_backup_options_init(&bo);
	bo.pin = "seed";
	bo.all_versions = 1;
	sett_backup_result res;
	OK(sett_backup(db, &bo, seed_write, &full, &res));
	for (int i = 0; i < 10; i++) {
		char k[32];
		snprintf(k, sizeof k, "key%05d", i * 9);
		if (i % 2)
			put(db, k, (size_t)(i * 17), i + 7);
		else
			OK(sett_del(db, (sett_val){ .data = k, .size = strlen(k) }));
	}
	bo.since = res.version;
	bo.all_versions = 0;
	OK(sett_backup(db, &bo, seed_write, &inc, &res));
	char name[300];
	snprintf(name, sizeof name, "%s-full", tag);
	seed1("backup", name, FUZZ_FIX_SUMS, full.p, full.n);
	snprintf(name, sizeof name, "%s-full-sums", tag);
	seed1("backup", name, 0, full.p, full.n);
	snprintf(name, sizeof name, "%s-incremental", tag);
	seed1("backup", name, FUZZ_FIX_SUMS, inc.p, inc.n);
	buf_free(&full);
	buf_free(&inc);
}

static void engine_store(const char *base, const char *tag, int compression)
{
	char dir[4200], live[4200];
	snprintf(dir, sizeof dir, "%s/%s", base, tag);
	snprintf(live, sizeof live, "%s/%s-live", base, tag);
	sett_options o;
	sett_options_init(&o);
	o.value_threshold = 64;
	o.mem_table_size = 64 << 10;
	o.block_size = 512;
	o.compression = compression;
	o.value_log_file_size = 64 << 10;
	o.value_log_max_entries = 100;
	o.num_compactors = 0;
	o.gc_discard_ratio = 0;
	sett_db *db;
	OK(sett_open(dir, &o, &db));
	char k[64];
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof k, "key%05d", i * 3);
		put(db, k, (size_t)(i % 150), i);
	}
	/* a batch of several entries: META_TXN / META_FIN_TXN in the WAL */
	sett_batch *b;
	OK(sett_batch_new(&b));
	for (int i = 0; i < 5; i++) {
		snprintf(k, sizeof k, "batch%02d", i);
		OK(sett_batch_set(b, (sett_val){ .data = k, .size = strlen(k) },
				  (sett_val){ .data = "v", .size = 1 }));
	}
	OK(sett_batch_delete(b, (sett_val){ .data = "key00003", .size = 8 }));
	OK(sett_write(db, b, 1, NULL));
	sett_batch_free(b);
	OK(sett_flush(db));
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof k, "key%05d", i * 6);
		if (i % 3)
			put(db, k, (size_t)(i * 5 % 200), i + 1);
		else
			OK(sett_del(db, (sett_val){ .data = k, .size = strlen(k) }));
	}
	OK(sett_flush(db));
	OK(sett_flatten(db));
	/* entries left in the WAL, synced, while the store is open */
	for (int i = 0; i < 20; i++) {
		snprintf(k, sizeof k, "wal%03d", i);
		put(db, k, (size_t)(i * 11), i);
	}
	sett_batch_new(&b);
	for (int i = 0; i < 3; i++) {
		snprintf(k, sizeof k, "walbatch%d", i);
		OK(sett_batch_set(b, (sett_val){ .data = k, .size = strlen(k) },
				  (sett_val){ .data = "0123456789", .size = 10 }));
	}
	OK(sett_write(db, b, 1, NULL));
	sett_batch_free(b);
	OK(sett_sync(db));
	seed_backups(db, tag);
	copy_dir(dir, live);
	OK(sett_close(db));
	seed_store(live, tag);
	snprintf(k, sizeof k, "%s-closed", tag);
	seed_store(dir, k);
}

/* ---- the filesystem's values ---- */

static void fs_store(const char *base)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/fs", base);
	settfs_options o;
	settfs_options_init(&o);
	o.chunk_size = 16384;
	o.engine.num_compactors = 0;
	o.engine.gc_discard_ratio = 0;
	settfs_ctx ctx = { .uid = 1000, .gid = 1000 };
	OK(settfs_mkfs(dir, &o, &ctx, 0));
	settfs *fs;
	o.engine.create_if_missing = 0;
	OK(settfs_open(dir, &o, &fs));
	struct stat d, e, st;
	OK(settfs_mkdir(fs, &ctx, SETTFS_ROOT_INO, "dir", 0755, &d));
	/* a default ACL (inherited by what "dir" gets) and an access ACL, as Linux writes them */
	static const uint8_t acl[] = { 2, 0, 0, 0,
		0x01, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,  /* user:: rwx */
		0x02, 0, 6, 0, 0xe8, 0x03, 0, 0,        /* user:1000: rw- */
		0x04, 0, 5, 0, 0xff, 0xff, 0xff, 0xff,  /* group:: r-x */
		0x08, 0, 4, 0, 0x32, 0, 0, 0,           /* group:50: r-- */
		0x10, 0, 7, 0, 0xff, 0xff, 0xff, 0xff,  /* mask:: rwx */
		0x20, 0, 1, 0, 0xff, 0xff, 0xff, 0xff }; /* other:: --x */
	OK(settfs_setxattr(fs, d.st_ino, SFS_ACL_DEFAULT_NAME, acl, sizeof acl, 0));
	OK(settfs_setxattr(fs, SETTFS_ROOT_INO, SFS_ACL_ACCESS_NAME, acl, sizeof acl, 0));
	OK(settfs_mkdir(fs, &ctx, d.st_ino, "sub", 0700, &e));
	static uint8_t data[3 * 16384 + 1000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 31 + i / 4096);
	OK(settfs_create(fs, &ctx, d.st_ino, "small", 0644, O_RDWR, &st));
	OK(settfs_write(fs, st.st_ino, 0, data, 100, 0));
	OK(settfs_setxattr(fs, st.st_ino, "user.color", "blue", 4, 0));
	OK(settfs_setxattr(fs, st.st_ino, "user.big", data, 3000, 0));
	OK(settfs_release(fs, st.st_ino, O_RDWR));
	OK(settfs_link(fs, st.st_ino, e.st_ino, "hardlink", &st));
	OK(settfs_create(fs, &ctx, SETTFS_ROOT_INO, "big", 0600, O_RDWR, &st));
	OK(settfs_write(fs, st.st_ino, 0, data, sizeof data, 0));
	OK(settfs_flush(fs, st.st_ino));
	/* small writes into stored chunks: overlay pages */
	OK(settfs_write(fs, st.st_ino, 4100, "overlay", 7, 0));
	OK(settfs_write(fs, st.st_ino, 16384 + 8192, "page", 4, 0));
	OK(settfs_release(fs, st.st_ino, O_RDWR));
	OK(settfs_create(fs, &ctx, SETTFS_ROOT_INO, "sparse", 0644, O_RDWR, &st));
	OK(settfs_write(fs, st.st_ino, 5 * 16384 + 77, "end", 3, 0));
	OK(settfs_release(fs, st.st_ino, O_RDWR));
	OK(settfs_symlink(fs, &ctx, SETTFS_ROOT_INO, "link", "dir/small", &st));
	OK(settfs_mknod(fs, &ctx, d.st_ino, "fifo", S_IFIFO | 0644, 0, &st));
	OK(settfs_mknod(fs, &ctx, d.st_ino, "null", S_IFCHR | 0666, makedev(1, 3), &st));
	OK(settfs_close(fs));

	/* fuzz_schema: chunk values (codec byte first), raw and compressed, and properties */
	{
		static uint8_t text[1 + 65536], z[1 + 65536];
		for (size_t i = 1; i < sizeof text; i++)
			text[i] = (uint8_t)"settfs chunk\n"[i % 13] ^ (uint8_t)(i % 97 == 0);
		text[0] = SFS_CODEC_RAW;
		seed1("schema", "chunk-raw", 4 << 1, text, 1 + 3000);
		long zn = sfs_chunk_compress(3, text + 1, 65536, z + 1, 65536);
		if (zn <= 0)
			DIE("sfs_chunk_compress");
		z[0] = SFS_CODEC_ZSTD;
		seed1("schema", "chunk-zstd", 4 << 1, z, 1 + (size_t)zn);
		zn = sfs_chunk_compress(1, text + 1, 16384, z + 1, 16384);
		if (zn <= 0)
			DIE("sfs_chunk_compress");
		seed1("schema", "chunk-zstd-16k", (4 << 1) | 16, z, 1 + (size_t)zn);
		sfs_props pr = { SFS_CODEC_ZSTD, 3 };
		uint8_t pv[SFS_PROPS_SIZE];
		sfs_props_encode(&pr, pv);
		seed1("schema", "props", 5 << 1, pv, sizeof pv);
	}

	sett_db *db;
	OK(sett_open(dir, &o.engine, &db));
	sett_iter *it;
	OK(sett_iter_new(db, NULL, &it));
	buf dump = { 0 };
	uint8_t mode = FUZZ_FIX_SUMS;
	OK(buf_append(&dump, &mode, 1));
	int ni = 0, nd = 0, na = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v;
		OK(sett_iter_value(it, &v));
		uint8_t h[VARINT_MAX];
		OK(buf_append(&dump, h, varint_put(h, k.size)));
		OK(buf_append(&dump, k.data, k.size));
		OK(buf_append(&dump, h, varint_put(h, v.size)));
		OK(buf_append(&dump, v.data, v.size));
		char name[64];
		char tag = k.size ? *(const char *)k.data : 0;
		/* fuzz_schema: mode bits 1-2 pick the decoder */
		if (tag == SFS_TAG_SUPER) {
			seed1("schema", "super", FUZZ_FIX_SUMS, v.data, v.size);
		} else if (tag == SFS_TAG_INODE) {
			snprintf(name, sizeof name, "inode-%d", ni++);
			seed1("schema", name, 1 << 1, v.data, v.size);
		} else if (tag == SFS_TAG_DENTRY) {
			snprintf(name, sizeof name, "dentry-%d", nd++);
			seed1("schema", name, 2 << 1, v.data, v.size);
		} else if (tag == SFS_TAG_XATTR && k.size > 9 && k.size - 9 < sizeof name) {
			memcpy(name, (const char *)k.data + 9, k.size - 9);
			name[k.size - 9] = 0;
			if (sfs_acl_type(name) != SFS_ACL_NONE) {
				/* fuzz_acl: the mode byte is the mode's low bits */
				snprintf(name, sizeof name, "acl-%d", na++);
				seed1("acl", name, 0644 & 0xff, v.data, v.size);
			}
		}
		/* value structs of the engine, as tables store them */
		if (ni + nd < 4) {
			vstruct vs = { .meta = 0, .user_meta = 0, .expires_at = 0,
				       .data = slice_make(v.data, v.size) };
			buf b = { 0 };
			OK(vstruct_append(&b, &vs));
			snprintf(name, sizeof name, "vstruct-%d", ni + nd);
			seed1("entry", name, 0, b.p, b.n);
			buf_free(&b);
		}
	}
	sett_iter_free(it);
	seed("fs", "fs", NULL, 0, dump.p, dump.n);
	buf_free(&dump);
	/* the same filesystem with its chunks compressed where they compress
	 * (fuzz_fs mode bits 1 and 2: zstd codec, compression on) */
	buf zdump = { 0 };
	mode = FUZZ_FIX_SUMS | 2 | 4;
	OK(buf_append(&zdump, &mode, 1));
	OK(sett_iter_new(db, NULL, &it));
	static uint8_t z[16384];
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v;
		OK(sett_iter_value(it, &v));
		long zn = 0;
		if (k.size == SFS_CHUNK_KEY_LEN && *(const char *)k.data == SFS_TAG_CHUNK &&
		    v.size <= sizeof z)
			zn = sfs_chunk_compress(1, v.data, (uint32_t)v.size, z, sizeof z);
		if (zn > 0)
			v = (sett_val){ .size = (size_t)zn, .data = z };
		uint8_t h[VARINT_MAX];
		OK(buf_append(&zdump, h, varint_put(h, k.size)));
		OK(buf_append(&zdump, k.data, k.size));
		OK(buf_append(&zdump, h, varint_put(h, v.size)));
		OK(buf_append(&zdump, v.data, v.size));
	}
	sett_iter_free(it);
	OK(sett_close(db));
	seed("fs", "fs-zstd", NULL, 0, zdump.p, zdump.n);
	buf_free(&zdump);

	/* a value pointer struct and a log header for fuzz_entry */
	uint8_t vp[VPTR_SIZE], b[32];
	vptr_encode(vp, &(vptr){ 1, 40, 24 });
	vstruct vs = { .meta = META_VALUE_POINTER, .expires_at = 1234567, .data = slice_make(vp, sizeof vp) };
	seed1("entry", "vstruct-pointer", 0, b, vstruct_encode(b, &vs));
	log_header_encode(b, "SETTVLOG", 7);
	seed1("entry", "log-header", FUZZ_FIX_SUMS | 2, b, LOG_HEADER_SIZE);
}

/* ---- the control protocol (fuzz_control) ---- */

static void control_seeds(void)
{
	ctl_buf b = { 0 };
	ctl_begin(&b, CTL_STATUS);
	OK(ctl_end(&b));
	seed1("control", "request", FUZZ_FIX_SUMS, b.p, b.n);
	ctl_begin(&b, CTL_STATUS | CTL_REPLY);
	ctl_put_i64(&b, "status", 0);
	ctl_put_str(&b, "mount.store", "/srv/store");
	ctl_put_u64(&b, "fs.inodes", 12345);
	ctl_put_f64(&b, "mount.uptime_s", 3.25);
	ctl_put_u64(&b, "lsm.level.L0.tables", 3);
	ctl_put_f64(&b, "lsm.level.L0.score", 0.6);
	ctl_put_u64(&b, "fuse.op.write.count", 99);
	ctl_put_f64(&b, "fuse.op.write.mean_us", 12.5);
	ctl_put_bytes(&b, "x", "\0\xff", 2);
	OK(ctl_end(&b));
	seed1("control", "status-reply", FUZZ_FIX_SUMS, b.p, b.n);
	seed1("control", "status-reply-raw", 0, b.p, b.n);
	ctl_begin(&b, CTL_SCRUB_STATUS | CTL_REPLY);
	ctl_put_i64(&b, "status", 0);
	ctl_put_str(&b, "scrub.state", "damaged");
	ctl_put_u64(&b, "scrub.started", 1764600000);
	ctl_put_u64(&b, "scrub.ended", 1764600010);
	ctl_put_u64(&b, "scrub.rate_bytes", 64 << 20);
	ctl_put_u64(&b, "scrub.done_bytes", 1 << 20);
	ctl_put_u64(&b, "scrub.total_bytes", 1 << 20);
	ctl_put_u64(&b, "scrub.faults", 1);
	ctl_put_str(&b, "fault", "/srv/store/000001.vlog: corrupt entry at offset 131176");
	ctl_put_str(&b, "fault.path", "/dir/big.bin (data, bytes 131072-196607)");
	ctl_put_u64(&b, "fault.more", 1);
	OK(ctl_end(&b));
	seed1("control", "scrub-reply", FUZZ_FIX_SUMS, b.p, b.n);
	ctl_buf_free(&b);
}

static void rm_rf(const char *path)
{
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_seeds: could not remove %s\n", path);
}

/* ---- send streams ---- */

/* A full and an incremental send stream of a small filesystem. */
static void send_seeds(const char *base)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/send", base);
	settfs_options o;
	settfs_options_init(&o);
	o.chunk_size = 16384;
	o.engine.num_compactors = 0;
	o.engine.gc_discard_ratio = 0;
	settfs *fs;
	OK(settfs_open(dir, &o, &fs));
	settfs_ctx ctx = { .uid = 1000, .gid = 1000 };
	struct stat st;
	OK(settfs_mkdir(fs, &ctx, SETTFS_ROOT_INO, "dir", 0755, &st));
	uint64_t d = st.st_ino;
	const char *names[] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		OK(settfs_create(fs, &ctx, d, names[i], 0644, O_RDWR, &st));
		char text[64];
		snprintf(text, sizeof text, "file %s", names[i]);
		if (settfs_write(fs, st.st_ino, 0, text, strlen(text), 0) != (ssize_t)strlen(text))
			DIE("settfs_write");
		OK(settfs_setxattr(fs, st.st_ino, "user.k", names[i], 1, 0));
		OK(settfs_release(fs, st.st_ino, O_RDWR));
	}
	OK(settfs_snapshot_create(fs, "s1", NULL));
	OK(settfs_unlink(fs, d, "a"));
	OK(settfs_rename(fs, d, "b", SETTFS_ROOT_INO, "b2", 0));
	OK(settfs_snapshot_create(fs, "s2", NULL));
	buf full = { 0 }, inc = { 0 };
	sfs_send_result res;
	OK(settfs_send(fs, "s1", NULL, seed_write, &full, &res));
	OK(settfs_send(fs, "s2", "s1", seed_write, &inc, &res));
	OK(settfs_close(fs));
	seed1("send", "full", FUZZ_FIX_SUMS, full.p, full.n);
	seed1("send", "full-sums", 0, full.p, full.n);
	seed1("send", "incremental", FUZZ_FIX_SUMS, inc.p, inc.n);
	buf_free(&full);
	buf_free(&inc);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds OUTDIR\n");
		return 2;
	}
	out = argv[1];
	mkdir(out, 0755);
	char base[4200];
	const char *t = getenv("TMPDIR");
	snprintf(base, sizeof base, "%s/sett-seeds-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(base))
		DIE("mkdtemp");
	engine_store(base, "plain", SETT_COMPRESS_NONE);
	engine_store(base, "zstd", SETT_COMPRESS_ZSTD);
	fs_store(base);
	send_seeds(base);
	keyregistry_seeds();
	encrypted_seeds(base);
	control_seeds();
	rm_rf(base);
	printf("fuzz_seeds: %d seeds in %s\n", nseeds, out);
	return 0;
}
