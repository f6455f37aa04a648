/*
 * info.c - the report of `sett info` (text, or JSON with --json), printed
 * by the tool for a store it opens and by the settfs daemon for the store
 * it has mounted.  A store that holds a settfs filesystem also shows its
 * superblock and inode count (fs/schema.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "schema.h"
#include "settfs.h"

void cli_human(char *out, size_t n, uint64_t b)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)b;
	int i = 0;
	while (d >= 1024 && i < 4) {
		d /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", d, u[i]);
}

void cli_time(char *out, size_t n, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t > INT64_MAX || !localtime_r(&tt, &tm) ||
	    !strftime(out, n, "%Y-%m-%d %H:%M:%S %z", &tm))
		snprintf(out, n, "%llu", (unsigned long long)t);
}

/* A JSON string. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(f, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(f, "\\u%04x", *c);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

/* What a settfs filesystem in the store holds (its superblock key, fs/schema.h). */
typedef struct fs_info {
	int present;  /* a superblock key exists */
	int valid;    /* ... and decodes */
	sfs_super sb;
	uint64_t next_ino;
	uint64_t inodes;
	int count_err;
	int props_ok;          /* the compression setting decodes (format 4) or is none */
	sfs_props props;
	uint64_t logical, stored; /* regular files: sizes, and bytes their data holds */
} fs_info;

static void read_fs_info(sett_db *db, fs_info *fi)
{
	memset(fi, 0, sizeof *fi);
	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t n = 0;
	if (sett_get(db, (sett_val){ sfs_key_super(k), k }, 0, &v, &n) != 0)
		return;
	fi->present = 1;
	fi->valid = sfs_super_decode(v, n, &fi->sb) == 0;
	free(v);
	if (sett_get(db, (sett_val){ sfs_key_nextino(k), k }, 0, &v, &n) == 0) {
		if (n == 8)
			fi->next_ino = sfs_get_be64(v);
		free(v);
	}
	fi->props_ok = 1;
	if (fi->valid && fi->sb.version >= SFS_SUPER_CODEC_VERSION) {
		uint8_t pk[1] = { SFS_TAG_PROPS };
		v = NULL;
		fi->props_ok = sett_get(db, (sett_val){ 1, pk }, 0, &v, &n) == 0 &&
			       sfs_props_decode(v, n, &fi->props) == 0;
		free(v);
	}
	/* the live inodes, and the sizes and stored bytes of the regular files */
	uint8_t tag = SFS_TAG_INODE;
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.prefix = (sett_val){ 1, &tag };
	sett_iter *it;
	int r = sett_iter_new(db, &io, &it);
	if (!r) {
		for (r = sett_iter_rewind(it); !r && sett_iter_valid(it); r = sett_iter_next(it)) {
			fi->inodes++;
			sett_val val;
			sfs_inode in;
			if ((r = sett_iter_value(it, &val)) != 0)
				break;
			if (sfs_inode_decode(val.data, val.size, &in) == 0 && S_ISREG(in.mode)) {
				fi->logical += in.size;
				fi->stored += in.blocks;
			}
			sfs_inode_free(&in);
		}
		if (!r)
			r = sett_iter_error(it);
		sett_iter_free(it);
	}
	fi->count_err = r;
}

static void print_fs_text(FILE *f, const fs_info *fi)
{
	if (!fi->present) {
		fprintf(f, "settfs: no superblock (not a settfs filesystem)\n");
		return;
	}
	if (!fi->valid) {
		fprintf(f, "settfs: the superblock does not decode (fsck.settfs reports the damage)\n");
		return;
	}
	const uint8_t *u = fi->sb.uuid;
	time_t t = (time_t)(fi->sb.created_ns / 1000000000);
	char when[64] = "?";
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(f, "settfs format %u, chunk size %u, created %s\n", fi->sb.version, fi->sb.chunk_size,
	       when);
	fprintf(f, "settfs uuid %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	       "%02x%02x%02x%02x%02x%02x\n", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
	       u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	if (fi->count_err)
		fprintf(f, "settfs inodes: not counted (%s); inode counter %llu\n",
		       sett_strerror(fi->count_err), (unsigned long long)fi->next_ino);
	else
		fprintf(f, "settfs inodes %llu; inode counter %llu\n", (unsigned long long)fi->inodes,
		       (unsigned long long)fi->next_ino);
	char comp[32], a[32], b[32];
	fprintf(f, "settfs compression %s\n",
		!fi->props_ok ? "(setting damaged)"
			      : settfs_compression_name(fi->props.codec == SFS_CODEC_ZSTD, fi->props.level,
							comp, sizeof comp));
	if (!fi->count_err)
		fprintf(f, "settfs file data %s, stored in %s (ratio %.2f)\n",
			(cli_human(a, sizeof a, fi->logical), a), (cli_human(b, sizeof b, fi->stored), b),
			fi->stored ? (double)fi->logical / (double)fi->stored : 0.0);
}

static void print_fs_json(FILE *f, const fs_info *fi)
{
	if (!fi->present || !fi->valid) {
		fprintf(f, "null");
		return;
	}
	const uint8_t *u = fi->sb.uuid;
	char comp[32];
	fprintf(f, "{\"format\": %u, \"chunk_size\": %u, \"uuid\": \"%02x%02x%02x%02x-%02x%02x-"
	       "%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\", \"created_ns\": %lld, "
	       "\"inodes\": %llu, \"inode_counter\": %llu, \"compression\": \"%s\", "
	       "\"logical_bytes\": %llu, \"data_stored_bytes\": %llu}",
	       fi->sb.version, fi->sb.chunk_size, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
	       u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15], (long long)fi->sb.created_ns,
	       (unsigned long long)fi->inodes, (unsigned long long)fi->next_ino,
	       !fi->props_ok ? "damaged"
			     : settfs_compression_name(fi->props.codec == SFS_CODEC_ZSTD, fi->props.level,
						       comp, sizeof comp),
	       (unsigned long long)fi->logical, (unsigned long long)fi->stored);
}

int cli_info_print(sett_db *db, const char *store, int json, FILE *f)
{
	sett_options o;
	sett_options_init(&o);
	sett_stats st;
	int r = sett_get_stats(db, &st);
	if (r)
		return r;
	enum { MAXV = 4096 };
	sett_vlog_info *vi = calloc(MAXV, sizeof *vi);
	int n = vi ? sett_vlog_files(db, vi, MAXV) : 0;
	if (n < 0)
		n = 0;
	int shown = n < MAXV ? n : MAXV;
	uint64_t garbage = 0, live = 0;
	for (int i = 0; i < shown; i++) {
		live += vi[i].live_bytes;
		garbage += vi[i].bytes - vi[i].live_bytes;
	}
	sett_space sp;
	int have_space = sett_disk_space(db, &sp) == 0;
	fs_info fi;
	read_fs_info(db, &fi);
	/* sett and settfs open stores with the engine's default options */
	const char *compression = o.compression == SETT_COMPRESS_ZSTD ? "zstd" : "none";
	if (json) {
		fprintf(f, "{\"store\": ");
		json_str(f, store);
		fprintf(f, ", \"last_version\": %llu, \"memtables\": %d, \"memtable_bytes\": %llu,\n",
		       (unsigned long long)st.last_version, st.memtables,
		       (unsigned long long)st.memtable_bytes);
		fprintf(f, " \"levels\": [");
		for (int l = 0; l < SETT_MAX_LEVELS; l++)
			fprintf(f, "%s{\"tables\": %d, \"bytes\": %llu, \"target_bytes\": %llu, "
			       "\"score\": %.4f}", l ? ", " : "", st.levels[l].tables,
			       (unsigned long long)st.levels[l].bytes,
			       (unsigned long long)st.levels[l].target_bytes, st.levels[l].score);
		fprintf(f, "],\n \"table_bytes\": %llu, \"wal_bytes\": %llu, \"compression\": \"%s\",\n",
		       (unsigned long long)st.lsm_bytes, (unsigned long long)st.wal_bytes,
		       compression);
		fprintf(f, " \"value_log\": {\"files\": %d, \"bytes\": %llu, \"live_bytes\": %llu, "
		       "\"garbage_bytes\": %llu, \"file\": [", n, (unsigned long long)st.vlog_bytes,
		       (unsigned long long)live, (unsigned long long)garbage);
		for (int i = 0; i < shown; i++)
			fprintf(f, "%s{\"fid\": %u, \"bytes\": %llu, \"live_bytes\": %llu, "
			       "\"gc_picked\": %s}", i ? ", " : "", vi[i].fid,
			       (unsigned long long)vi[i].bytes, (unsigned long long)vi[i].live_bytes,
			       vi[i].gc_picked ? "true" : "false");
		fprintf(f, "]},\n \"gc\": {\"activity\": ");
		json_str(f, st.gc_activity);
		fprintf(f, ", \"runs\": %llu, \"files_deleted\": %llu, \"bytes_measured\": %llu, "
		       "\"bytes_rewritten\": %llu},\n", (unsigned long long)st.gc_runs,
		       (unsigned long long)st.gc_files_rewritten,
		       (unsigned long long)st.gc_bytes_measured,
		       (unsigned long long)st.gc_bytes_rewritten);
		if (have_space)
			fprintf(f, " \"disk\": {\"bytes\": %llu, \"free_bytes\": %llu, \"reserve\": %llu},\n",
			       (unsigned long long)sp.disk_bytes, (unsigned long long)sp.free_bytes,
			       (unsigned long long)sp.reserve);
		fprintf(f, " \"block_cache\": {\"hits\": %llu, \"misses\": %llu, \"bytes\": %llu},\n",
		       (unsigned long long)st.block_cache_hits,
		       (unsigned long long)st.block_cache_misses,
		       (unsigned long long)st.block_cache_bytes);
		fprintf(f, " \"settfs\": ");
		print_fs_json(f, &fi);
		fprintf(f, "}\n");
		free(vi);
		return 0;
	}
	char a[32], b[32];
	fprintf(f, "store %s\n", store);
	print_fs_text(f, &fi);
	fprintf(f, "last version %llu\n", (unsigned long long)st.last_version);
	fprintf(f, "memtables %d (%s)\n", st.memtables, (cli_human(a, sizeof a, st.memtable_bytes), a));
	fprintf(f, "table compression %s\n", compression);
	fprintf(f, "level  tables        size      target   score\n");
	for (int l = 0; l < SETT_MAX_LEVELS; l++) {
		cli_human(a, sizeof a, st.levels[l].bytes);
		cli_human(b, sizeof b, st.levels[l].target_bytes);
		fprintf(f, "L%-5d %6d %11s %11s %7.2f\n", l, st.levels[l].tables, a, b, st.levels[l].score);
	}
	cli_human(a, sizeof a, st.lsm_bytes);
	fprintf(f, "tables total %s\n", a);
	cli_human(a, sizeof a, st.vlog_bytes);
	cli_human(b, sizeof b, garbage);
	fprintf(f, "value log %d files, %s, garbage %s (%.0f%%)\n", n, a, b,
	       st.vlog_bytes ? 100.0 * (double)garbage / (double)st.vlog_bytes : 0.0);
	for (int i = 0; i < shown; i++) {
		uint64_t g = vi[i].bytes - vi[i].live_bytes;
		char c[32];
		cli_human(a, sizeof a, vi[i].bytes);
		cli_human(b, sizeof b, vi[i].live_bytes);
		cli_human(c, sizeof c, g);
		fprintf(f, "  %06u.vlog %11s  live %11s  garbage %11s (%3.0f%%)%s%s\n", vi[i].fid, a, b,
		       c, vi[i].bytes ? 100.0 * (double)g / (double)vi[i].bytes : 0.0,
		       i == n - 1 ? "  head" : "", vi[i].gc_picked ? "  GC picks it" : "");
	}
	cli_human(a, sizeof a, live);
	cli_human(b, sizeof b, st.lsm_bytes + st.wal_bytes + live);
	fprintf(f, "live values %s; with tables and logs %s\n", a, b);
	sett_pin_info pins[64];
	int npins = sett_pins(db, pins, 64);
	if (npins > 0) {
		uint64_t held = 0;
		/* every version a pin sees and a current read does not (a scan) */
		int pr = sett_pin_space(db, &held);
		fprintf(f, "pins %d, holding %s only they see\n", npins,
			pr ? sett_strerror(pr) : (cli_human(a, sizeof a, held), a));
		for (int i = 0; i < npins && i < 64; i++)
			fprintf(f, "  %s at version %llu\n", pins[i].name,
				(unsigned long long)pins[i].version);
	}
	fprintf(f, "gc %s; %llu pass(es), %llu file(s) deleted, %s measured, ",
	       st.gc_activity, (unsigned long long)st.gc_runs,
	       (unsigned long long)st.gc_files_rewritten,
	       (cli_human(a, sizeof a, st.gc_bytes_measured), a));
	fprintf(f, "%s rewritten\n", (cli_human(a, sizeof a, st.gc_bytes_rewritten), a));
	if (have_space) {
		char c[32];
		cli_human(a, sizeof a, sp.disk_bytes);
		cli_human(b, sizeof b, sp.free_bytes);
		cli_human(c, sizeof c, sp.reserve);
		fprintf(f, "disk %s, free %s, reserve %s (default rule; settfs -o reserve= sets it)\n", a,
		       b, c);
	}
	fprintf(f, "block cache hits %llu misses %llu (%s)\n", (unsigned long long)st.block_cache_hits,
	       (unsigned long long)st.block_cache_misses,
	       (cli_human(a, sizeof a, st.block_cache_bytes), a));
	free(vi);
	return 0;
}

