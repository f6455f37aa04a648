/*
 * sett.c - the `sett` command: inspect and use a sett store.
 *
 *   sett put STORE KEY VALUE        sett get STORE KEY
 *   sett del STORE KEY              sett scan [--prefix P] [--reverse] [--keys] STORE
 *   sett info STORE                 sett check STORE
 *   sett gc STORE [RATIO]           sett flatten STORE
 *   sett pin STORE NAME [VERSION]   sett unpin STORE NAME
 *   sett backup [--since V] [--all-versions] [--pin NAME] STORE > FILE
 *   sett load STORE < FILE
 *   sett bench [--workload NAME] [--dir DIR]   (also backup_small, load_small, ...)
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

#include "cli.h"
#include "control.h"

int cli_fail(const char *cmd, const char *what, int err)
{
	fprintf(stderr, "sett %s: %s: %s\n", cmd, what, sett_strerror(err));
	return 1;
}

int cli_open(const char *cmd, const char *path, int read_only, sett_db **db)
{
	sett_options o;
	sett_options_init(&o);
	o.read_only = read_only;
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

/*
 * A mounted store: its daemon answers a request of `type` (0 and the
 * reply body in *body).  -ENOENT: no daemon serves the store.  Other
 * errors are reported.
 */
static int ask_daemon(const char *cmd, const char *store, uint16_t type, uint8_t **body,
		      size_t *n)
{
	char *real = realpath(store, NULL);
	if (!real)
		return -ENOENT;
	ctl_buf q = { 0 };
	ctl_begin(&q, type);
	ctl_end(&q);
	int r = ctl_call(real, &q, body, n);
	ctl_buf_free(&q);
	free(real);
	if (r && r != -ENOENT)
		fprintf(stderr, "sett %s: %s: the daemon of the mounted store %s\n", cmd, store,
			r == -EACCES ? "refused: only root and the mount's owner may ask"
				     : strerror(-r));
	return r;
}

static int cmd_info(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	uint8_t *body;
	size_t n;
	int r = ask_daemon("info", argv[1], CTL_INFO, &body, &n);
	if (r == 0) {
		ctl_rec t;
		if (ctl_find(body, n, "text", &t) == 1 && t.kind == CTL_STR)
			fwrite(t.s, 1, t.slen, stdout);
		free(body);
		return 0;
	}
	if (r != -ENOENT)
		return 1;
	sett_db *db;
	if (cli_open("info", argv[1], 1, &db))
		return 1;
	r = cli_info_print(db, argv[1], stdout);
	sett_close(db);
	return r ? cli_fail("info", argv[1], r) : 0;
}

static void report_line(void *arg, const char *msg)
{
	int *n = arg;
	(*n)++;
	fprintf(stderr, "sett check: %s\n", msg);
}

static int cmd_check(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	uint8_t *body;
	size_t n;
	int faults = 0;
	int r = ask_daemon("check", argv[1], CTL_CHECK, &body, &n);
	if (r == 0) {
		/* what the daemon can check of the store it has open */
		ctl_cursor c;
		ctl_rec rec;
		uint64_t total = 0;
		ctl_cursor_init(&c, body, n);
		while (ctl_next(&c, &rec) == 1) {
			if (!strcmp(rec.name, "fault") && rec.kind == CTL_STR)
				fprintf(stderr, "sett check: %.*s\n", (int)rec.slen, (const char *)rec.s);
			if (!strcmp(rec.name, "faults") && rec.kind == CTL_U64)
				total = rec.u;
		}
		free(body);
		faults = total > INT32_MAX ? INT32_MAX : (int)total;
	} else if (r != -ENOENT) {
		return 1;
	} else {
		sett_db *db;
		if (cli_open("check", argv[1], 1, &db))
			return 1;
		r = sett_verify(db, report_line, &faults);
		sett_close(db);
	}
	if (r && !faults)
		return cli_fail("check", argv[1], r);
	if (faults) {
		fprintf(stderr, "sett check: %s: %d fault(s)\n", argv[1], faults);
		return 1;
	}
	printf("%s: no faults\n", argv[1]);
	return 0;
}

static void repair_line(void *arg, const sett_repair_event *ev)
{
	(void)arg;
	printf("%s%s\n", ev->kind == SETT_REPAIR_NOTE ? "" : "lost: ", ev->msg);
}

static int cmd_repair(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	int r = sett_repair(argv[1], NULL, repair_line, NULL);
	return r ? cli_fail("repair", argv[1], r) : 0;
}

static int cmd_gc(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return 2;
	double ratio = argc == 3 ? atof(argv[2]) : 0.5;
	if (ratio <= 0 || ratio > 1) {
		fprintf(stderr, "sett gc: ratio must be in (0, 1]\n");
		return 2;
	}
	sett_db *db;
	if (cli_open("gc", argv[1], 0, &db))
		return 1;
	int r, runs = 0;
	while ((r = sett_gc(db, ratio)) == 0)
		runs++;
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

static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *usage;
	const char *help;
} commands[] = {
	{ "put", cmd_put, "STORE KEY VALUE", "set KEY to VALUE (durably)" },
	{ "get", cmd_get, "STORE KEY", "print the value of KEY (exit 3 if absent)" },
	{ "del", cmd_del, "STORE KEY", "delete KEY" },
	{ "scan", cmd_scan, "[--prefix P] [--reverse] [--keys] STORE", "list keys (and values)" },
	{ "info", cmd_info, "STORE", "levels, tables, value-log files, cache statistics" },
	{ "check", cmd_check, "STORE", "verify every checksum (exit 1 on corruption)" },
	{ "repair", cmd_repair, "STORE", "rebuild the store from its tables, logs and value log (see sett.h)" },
	{ "gc", cmd_gc, "STORE [RATIO]", "run value-log GC until nothing qualifies" },
	{ "flatten", cmd_flatten, "STORE", "flush and compact every level" },
	{ "backup", cmd_backup, "[--since VERSION] [--all-versions] [--pin NAME] STORE > FILE",
	  "write a checksummed backup stream; prints the version it is complete to" },
	{ "load", cmd_load, "STORE < FILE", "apply a backup stream (a damaged one changes nothing)" },
	{ "pin", cmd_pin, "STORE NAME [VERSION]", "pin the current (or an older) version; prints it" },
	{ "unpin", cmd_unpin, "STORE NAME", "release a pin (compaction and GC free its space)" },
	{ "bench", cmd_bench, "[--workload NAME] [--dir DIR] [--scale F]", "run the engine workloads" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: sett COMMAND ARGS\n\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  sett %s %s\n      %s\n", commands[i].name, commands[i].usage,
			commands[i].help);
	fprintf(f, "\n  sett help COMMAND | sett --version\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("sett %s\n", SETT_VERSION_STRING);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		for (size_t i = 0; argc > 2 && i < sizeof commands / sizeof commands[0]; i++) {
			if (!strcmp(argv[2], commands[i].name)) {
				printf("usage: sett %s %s\n%s\n", commands[i].name, commands[i].usage,
				       commands[i].help);
				return 0;
			}
		}
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (!strcmp(argv[1], commands[i].name)) {
			int r = commands[i].fn(argc - 1, argv + 1);
			if (r == 2)
				fprintf(stderr, "usage: sett %s %s\n", commands[i].name, commands[i].usage);
			return r;
		}
	}
	fprintf(stderr, "sett: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
