/*
 * sett.c - the `sett` command: inspect and use a sett store.
 *
 *   sett put STORE KEY VALUE        sett get STORE KEY
 *   sett del STORE KEY              sett scan [--prefix P] [--reverse] [--keys] STORE
 *   sett info [--json] STORE        sett check STORE
 *   sett gc STORE [RATIO]           sett repair STORE
 *   sett flatten STORE              sett bench [--workload NAME] [--dir DIR]
 *
 * Options come before "--"; an unknown one is refused, naming it.  `check`,
 * `repair` and `gc` show their progress on stderr when it is a terminal.
 * man/sett.1 documents every command.
 *
 * Exit status: 0 success, 1 failure (the first line on stderr says what
 * failed and the key or file involved), 2 usage error; `get` exits 3 when
 * the key does not exist, `check` exits 1 when it finds corruption.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "schema.h"

int cli_fail(const char *cmd, const char *what, int err)
{
	fprintf(stderr, "sett %s: %s: %s\n", cmd, what, sett_strerror(err));
	return 1;
}

int cli_open(const char *cmd, const char *path, int read_only, sett_db **db)
{
	return cli_open_progress(cmd, path, read_only, NULL, db);
}

int cli_open_progress(const char *cmd, const char *path, int read_only, progress *p,
		      sett_db **db)
{
	sett_options o;
	sett_options_init(&o);
	o.read_only = read_only;
	o.progress_fn = p ? progress_engine : NULL;
	o.progress_arg = p;
	o.create_if_missing = !read_only;
	/* A short-lived command runs no automatic GC (a read-only open has no GC
	 * thread and keeps the ratio for the plan `sett info` shows). */
	if (!read_only)
		o.gc_discard_ratio = 0;
	char why[1024] = "";
	o.error_buf = why;
	o.error_buf_size = sizeof why;
	int r = sett_open(path, &o, db);
	/* a daemon just unmounted may still be flushing: wait up to 30 s */
	for (int ms = 0; r == SETT_ELOCKED && ms < 30000; ms += 100) {
		if (ms == 0)
			fprintf(stderr, "sett %s: %s is in use by pid %ld, waiting up to 30 s for it "
					"to be released\n", cmd, path, sett_lock_holder(path));
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		why[0] = 0;
		r = sett_open(path, &o, db);
	}
	if (r && why[0]) {
		fprintf(stderr, "sett %s: %s\n", cmd, why);
		return 1;
	}
	if (r)
		return cli_fail(cmd, path, r);
	return 0;
}

static sett_val val_of(const char *s)
{
	sett_val v = { strlen(s), s };
	return v;
}

/* Prints bytes, escaping what is not printable. */
static void print_bytes(FILE *f, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		if (c[i] >= 0x20 && c[i] < 0x7f && c[i] != '\\')
			fputc(c[i], f);
		else
			fprintf(f, "\\x%02x", c[i]);
	}
}

static int cmd_put(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	sett_db *db;
	if (cli_open("put", argv[1], 0, &db))
		return 1;
	sett_batch *b;
	int r = sett_batch_new(&b);
	if (!r)
		r = sett_batch_set(b, val_of(argv[2]), val_of(argv[3]));
	if (!r)
		r = sett_write(db, b, 1, NULL);
	sett_batch_free(b);
	int c = sett_close(db);
	if (r || c)
		return cli_fail("put", argv[2], r ? r : c);
	return 0;
}

static int cmd_get(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	sett_db *db;
	if (cli_open("get", argv[1], 1, &db))
		return 1;
	void *v;
	size_t n;
	int r = sett_get(db, val_of(argv[2]), 0, &v, &n);
	if (r == 0) {
		fwrite(v, 1, n, stdout);
		fputc('\n', stdout);
		free(v);
	}
	sett_close(db);
	if (r == SETT_ENOTFOUND) {
		fprintf(stderr, "sett get: %s: key not found\n", argv[2]);
		return 3;
	}
	return r ? cli_fail("get", argv[2], r) : 0;
}

static int cmd_del(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	sett_db *db;
	if (cli_open("del", argv[1], 0, &db))
		return 1;
	sett_batch *b;
	int r = sett_batch_new(&b);
	if (!r)
		r = sett_batch_delete(b, val_of(argv[2]));
	if (!r)
		r = sett_write(db, b, 1, NULL);
	sett_batch_free(b);
	int c = sett_close(db);
	return r || c ? cli_fail("del", argv[2], r ? r : c) : 0;
}

static int cmd_scan(int argc, char **argv)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	const char *store = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--prefix") && i + 1 < argc)
			io.prefix = val_of(argv[++i]);
		else if (!strcmp(argv[i], "--reverse"))
			io.reverse = 1;
		else if (!strcmp(argv[i], "--keys"))
			io.key_only = 1;
		else if (!store && argv[i][0] != '-')
			store = argv[i];
		else
			return 2;
	}
	if (!store)
		return 2;
	sett_db *db;
	if (cli_open("scan", store, 1, &db))
		return 1;
	sett_iter *it;
	int r = sett_iter_new(db, &io, &it);
	long n = 0;
	if (!r) {
		for (r = sett_iter_rewind(it); !r && sett_iter_valid(it); r = sett_iter_next(it)) {
			sett_val k = sett_iter_key(it);
			print_bytes(stdout, k.data, k.size);
			if (!io.key_only) {
				sett_val v;
				if ((r = sett_iter_value(it, &v)))
					break;
				fputc('\t', stdout);
				print_bytes(stdout, v.data, v.size);
			}
			fputc('\n', stdout);
			n++;
		}
		if (!r)
			r = sett_iter_error(it);
		sett_iter_free(it);
	}
	sett_close(db);
	return r ? cli_fail("scan", store, r) : 0;
}

static void human(char *out, size_t n, uint64_t b)
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

/* A JSON string. */
static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

/* What a settfs filesystem in the store holds (its superblock key, fs/schema.h). */
typedef struct fs_info {
	int present;  /* a superblock key exists */
	int valid;    /* ... and decodes */
	sfs_super sb;
	uint64_t next_ino;
	uint64_t inodes;
	int count_err;
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
	/* the live inodes: a key-only scan of the inode keys */
	uint8_t tag = SFS_TAG_INODE;
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.prefix = (sett_val){ 1, &tag };
	io.key_only = 1;
	sett_iter *it;
	int r = sett_iter_new(db, &io, &it);
	if (!r) {
		for (r = sett_iter_rewind(it); !r && sett_iter_valid(it); r = sett_iter_next(it))
			fi->inodes++;
		if (!r)
			r = sett_iter_error(it);
		sett_iter_free(it);
	}
	fi->count_err = r;
}

static void print_fs_text(const fs_info *fi)
{
	if (!fi->present) {
		printf("settfs: no superblock (not a settfs filesystem)\n");
		return;
	}
	if (!fi->valid) {
		printf("settfs: the superblock does not decode (fsck.settfs reports the damage)\n");
		return;
	}
	const uint8_t *u = fi->sb.uuid;
	time_t t = (time_t)(fi->sb.created_ns / 1000000000);
	char when[64] = "?";
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("settfs format %u, chunk size %u, created %s\n", fi->sb.version, fi->sb.chunk_size,
	       when);
	printf("settfs uuid %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	       "%02x%02x%02x%02x%02x%02x\n", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
	       u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	if (fi->count_err)
		printf("settfs inodes: not counted (%s); inode counter %llu\n",
		       sett_strerror(fi->count_err), (unsigned long long)fi->next_ino);
	else
		printf("settfs inodes %llu; inode counter %llu\n", (unsigned long long)fi->inodes,
		       (unsigned long long)fi->next_ino);
}

static void print_fs_json(const fs_info *fi)
{
	if (!fi->present || !fi->valid) {
		printf("null");
		return;
	}
	const uint8_t *u = fi->sb.uuid;
	printf("{\"format\": %u, \"chunk_size\": %u, \"uuid\": \"%02x%02x%02x%02x-%02x%02x-"
	       "%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\", \"created_ns\": %lld, "
	       "\"inodes\": %llu, \"inode_counter\": %llu}",
	       fi->sb.version, fi->sb.chunk_size, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7],
	       u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15], (long long)fi->sb.created_ns,
	       (unsigned long long)fi->inodes, (unsigned long long)fi->next_ino);
}

static int cmd_info(int argc, char **argv)
{
	int json = 0;
	const char *store = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!store)
			store = argv[i];
		else
			return 2;
	}
	if (!store)
		return 2;
	sett_db *db;
	sett_options o;
	sett_options_init(&o);
	if (cli_open("info", store, 1, &db))
		return 1;
	sett_stats st;
	int r = sett_get_stats(db, &st);
	if (r) {
		sett_close(db);
		return cli_fail("info", store, r);
	}
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
		printf("{\"store\": ");
		json_str(store);
		printf(", \"last_version\": %llu, \"memtables\": %d, \"memtable_bytes\": %llu,\n",
		       (unsigned long long)st.last_version, st.memtables,
		       (unsigned long long)st.memtable_bytes);
		printf(" \"levels\": [");
		for (int l = 0; l < SETT_MAX_LEVELS; l++)
			printf("%s{\"tables\": %d, \"bytes\": %llu, \"target_bytes\": %llu, "
			       "\"score\": %.4f}", l ? ", " : "", st.levels[l].tables,
			       (unsigned long long)st.levels[l].bytes,
			       (unsigned long long)st.levels[l].target_bytes, st.levels[l].score);
		printf("],\n \"table_bytes\": %llu, \"wal_bytes\": %llu, \"compression\": \"%s\",\n",
		       (unsigned long long)st.lsm_bytes, (unsigned long long)st.wal_bytes,
		       compression);
		printf(" \"value_log\": {\"files\": %d, \"bytes\": %llu, \"live_bytes\": %llu, "
		       "\"garbage_bytes\": %llu, \"file\": [", n, (unsigned long long)st.vlog_bytes,
		       (unsigned long long)live, (unsigned long long)garbage);
		for (int i = 0; i < shown; i++)
			printf("%s{\"fid\": %u, \"bytes\": %llu, \"live_bytes\": %llu, "
			       "\"gc_picked\": %s}", i ? ", " : "", vi[i].fid,
			       (unsigned long long)vi[i].bytes, (unsigned long long)vi[i].live_bytes,
			       vi[i].gc_picked ? "true" : "false");
		printf("]},\n \"gc\": {\"activity\": ");
		json_str(st.gc_activity);
		printf(", \"runs\": %llu, \"files_deleted\": %llu, \"bytes_measured\": %llu, "
		       "\"bytes_rewritten\": %llu},\n", (unsigned long long)st.gc_runs,
		       (unsigned long long)st.gc_files_rewritten,
		       (unsigned long long)st.gc_bytes_measured,
		       (unsigned long long)st.gc_bytes_rewritten);
		if (have_space)
			printf(" \"disk\": {\"bytes\": %llu, \"free_bytes\": %llu, \"reserve\": %llu},\n",
			       (unsigned long long)sp.disk_bytes, (unsigned long long)sp.free_bytes,
			       (unsigned long long)sp.reserve);
		printf(" \"block_cache\": {\"hits\": %llu, \"misses\": %llu, \"bytes\": %llu},\n",
		       (unsigned long long)st.block_cache_hits,
		       (unsigned long long)st.block_cache_misses,
		       (unsigned long long)st.block_cache_bytes);
		printf(" \"settfs\": ");
		print_fs_json(&fi);
		printf("}\n");
		free(vi);
		sett_close(db);
		return 0;
	}
	char a[32], b[32];
	printf("store %s\n", store);
	print_fs_text(&fi);
	printf("last version %llu\n", (unsigned long long)st.last_version);
	printf("memtables %d (%s)\n", st.memtables, (human(a, sizeof a, st.memtable_bytes), a));
	printf("table compression %s\n", compression);
	printf("level  tables        size      target   score\n");
	for (int l = 0; l < SETT_MAX_LEVELS; l++) {
		human(a, sizeof a, st.levels[l].bytes);
		human(b, sizeof b, st.levels[l].target_bytes);
		printf("L%-5d %6d %11s %11s %7.2f\n", l, st.levels[l].tables, a, b, st.levels[l].score);
	}
	human(a, sizeof a, st.lsm_bytes);
	printf("tables total %s\n", a);
	human(a, sizeof a, st.vlog_bytes);
	human(b, sizeof b, garbage);
	printf("value log %d files, %s, garbage %s (%.0f%%)\n", n, a, b,
	       st.vlog_bytes ? 100.0 * (double)garbage / (double)st.vlog_bytes : 0.0);
	for (int i = 0; i < shown; i++) {
		uint64_t g = vi[i].bytes - vi[i].live_bytes;
		char c[32];
		human(a, sizeof a, vi[i].bytes);
		human(b, sizeof b, vi[i].live_bytes);
		human(c, sizeof c, g);
		printf("  %06u.vlog %11s  live %11s  garbage %11s (%3.0f%%)%s%s\n", vi[i].fid, a, b,
		       c, vi[i].bytes ? 100.0 * (double)g / (double)vi[i].bytes : 0.0,
		       i == n - 1 ? "  head" : "", vi[i].gc_picked ? "  GC picks it" : "");
	}
	human(a, sizeof a, live);
	human(b, sizeof b, st.lsm_bytes + st.wal_bytes + live);
	printf("live values %s; with tables and logs %s\n", a, b);
	printf("gc %s; %llu pass(es), %llu file(s) deleted, %s measured, ",
	       st.gc_activity, (unsigned long long)st.gc_runs,
	       (unsigned long long)st.gc_files_rewritten,
	       (human(a, sizeof a, st.gc_bytes_measured), a));
	printf("%s rewritten\n", (human(a, sizeof a, st.gc_bytes_rewritten), a));
	if (have_space) {
		char c[32];
		human(a, sizeof a, sp.disk_bytes);
		human(b, sizeof b, sp.free_bytes);
		human(c, sizeof c, sp.reserve);
		printf("disk %s, free %s, reserve %s (default rule; settfs -o reserve= sets it)\n", a,
		       b, c);
	}
	printf("block cache hits %llu misses %llu (%s)\n", (unsigned long long)st.block_cache_hits,
	       (unsigned long long)st.block_cache_misses,
	       (human(a, sizeof a, st.block_cache_bytes), a));
	free(vi);
	sett_close(db);
	return 0;
}

struct check {
	progress p;
	int faults;
};

static void report_line(void *arg, const char *msg)
{
	struct check *c = arg;
	progress_clear(&c->p);
	c->faults++;
	fprintf(stderr, "sett check: %s\n", msg);
}

static int cmd_check(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	sett_db *db;
	struct check c = { .faults = 0 };
	progress_open(&c.p, "sett check", argv[1], -1);
	if (cli_open_progress("check", argv[1], 1, &c.p, &db))
		return 1;
	int r = sett_verify(db, report_line, &c);
	progress_clear(&c.p);
	sett_close(db);
	if (r && !c.faults)
		return cli_fail("check", argv[1], r);
	if (c.faults) {
		fprintf(stderr, "sett check: %s: %d fault(s)\n", argv[1], c.faults);
		return 1;
	}
	printf("%s: no faults\n", argv[1]);
	return 0;
}

static void repair_line(void *arg, const sett_repair_event *ev)
{
	progress_clear(arg);
	printf("%s%s\n", ev->kind == SETT_REPAIR_NOTE ? "" : "lost: ", ev->msg);
}

static int cmd_repair(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	progress p;
	progress_open(&p, "sett repair", argv[1], -1);
	sett_options o;
	sett_options_init(&o);
	o.progress_fn = progress_engine;
	o.progress_arg = &p;
	int r = sett_repair(argv[1], &o, repair_line, &p);
	progress_clear(&p);
	return r ? cli_fail("repair", argv[1], r) : 0;
}

static int cmd_gc(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return 2;
	char *end = NULL;
	double ratio = argc == 3 ? strtod(argv[2], &end) : 0.5;
	if ((end && *end) || !(ratio > 0 && ratio <= 1)) {
		fprintf(stderr, "sett gc: %s: the ratio must be a number in (0, 1]\n", argv[2]);
		return 2;
	}
	sett_db *db;
	if (cli_open("gc", argv[1], 0, &db))
		return 1;
	progress p;
	progress_open(&p, "sett gc", argv[1], -1);
	int r, runs = 0;
	while ((r = sett_gc(db, ratio)) == 0)
		progress_set(&p, 1, "GC passes that rewrote files", (uint64_t)++runs, 0);
	progress_clear(&p);
	int c = sett_close(db);
	if (r != SETT_ENOREWRITE)
		return cli_fail("gc", argv[1], r);
	if (c)
		return cli_fail("gc", argv[1], c);
	printf("%s: %d GC pass(es) rewrote files\n", argv[1], runs);
	return 0;
}

static int cmd_flatten(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	sett_db *db;
	if (cli_open("flatten", argv[1], 0, &db))
		return 1;
	int r = sett_flatten(db);
	int c = sett_close(db);
	return r || c ? cli_fail("flatten", argv[1], r ? r : c) : 0;
}

/*
 * `opts`: the options a command takes, space-separated; "=" after one: it
 * takes a value (the next argument).  main() refuses any other argument
 * that starts with '-' (until "--"), naming it.
 */
static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *opts;
	const char *usage;
	const char *help;
} commands[] = {
	{ "put", cmd_put, "", "STORE KEY VALUE", "set KEY to VALUE (durably)" },
	{ "get", cmd_get, "", "STORE KEY", "print the value of KEY (exit 3 if absent)" },
	{ "del", cmd_del, "", "STORE KEY", "delete KEY" },
	{ "scan", cmd_scan, "--prefix= --reverse --keys", "[--prefix P] [--reverse] [--keys] STORE",
	  "list keys (and values)" },
	{ "info", cmd_info, "--json", "[--json] STORE",
	  "levels, tables, value-log files, cache statistics, the settfs superblock" },
	{ "check", cmd_check, "", "STORE", "verify every checksum (exit 1 on corruption)" },
	{ "repair", cmd_repair, "", "STORE",
	  "rebuild the store from its tables, logs and value log" },
	{ "gc", cmd_gc, "", "STORE [RATIO]", "run value-log GC until nothing qualifies" },
	{ "flatten", cmd_flatten, "", "STORE", "flush and compact every level" },
	{ "bench", cmd_bench, "--workload= --dir= --scale=",
	  "[--workload NAME] [--dir DIR] [--scale F]", "run the engine workloads" },
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
	fprintf(f, "usage: sett COMMAND ARGS\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  sett %s %s\n      %s\n", commands[i].name, commands[i].usage,
			commands[i].help);
	fprintf(f, "\n  sett help [COMMAND] | sett COMMAND --help | sett --version\n"
		   "\nExit status: 0 done, 1 failed (or check found corruption), 2 usage error,\n"
		   "3 get: no such key.  See sett(1).\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static void command_help(const struct command *c)
{
	printf("usage: sett %s %s\n%s\n", c->name, c->usage, c->help);
}

/* Does `opts` list `arg`?  *value: it takes one. */
static int takes_option(const char *opts, const char *arg, int *value)
{
	size_t n = strlen(arg);
	for (const char *o = opts; (o = strstr(o, arg)); o += n) {
		int start = o == opts || o[-1] == ' ';
		if (start && (o[n] == 0 || o[n] == ' ' || o[n] == '=')) {
			*value = o[n] == '=';
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "sett: no command (sett --help lists them)\n");
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("sett %s\n", SETT_VERSION_STRING);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		if (argc > 3) {
			fprintf(stderr, "sett help: one command at most\n");
			return 2;
		}
		if (argc == 3) {
			const struct command *c = find_command(argv[2]);
			if (!c) {
				fprintf(stderr, "sett: unknown command '%s'\n", argv[2]);
				return 2;
			}
			command_help(c);
			return 0;
		}
		usage(stdout);
		return 0;
	}
	const struct command *c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "sett: unknown %s '%s' (sett --help lists the commands)\n",
			argv[1][0] == '-' ? "option" : "command", argv[1]);
		return 2;
	}
	/* the command's arguments: options checked here, "--" dropped */
	char **av = calloc((size_t)argc, sizeof *av);
	int ac = 0, opts_done = 0;
	if (!av)
		return 1;
	av[ac++] = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int value = 0;
		if (opts_done || a[0] != '-' || !a[1]) {
			av[ac++] = argv[i];
		} else if (!strcmp(a, "--")) {
			opts_done = 1;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			command_help(c);
			free(av);
			return 0;
		} else if (takes_option(c->opts, a, &value)) {
			if (value && i + 1 >= argc) {
				fprintf(stderr, "sett %s: option '%s' needs a value\n", c->name, a);
				free(av);
				return 2;
			}
			av[ac++] = argv[i];
			if (value)
				av[ac++] = argv[++i];
		} else {
			fprintf(stderr, "sett %s: unknown option '%s' (sett help %s)\n", c->name, a,
				c->name);
			free(av);
			return 2;
		}
	}
	av[ac] = NULL;
	int r = c->fn(ac, av);
	if (r == 2)
		fprintf(stderr, "usage: sett %s %s\n", c->name, c->usage);
	free(av);
	return r;
}
