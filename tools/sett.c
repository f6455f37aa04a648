/*
 * sett.c - the `sett` command: inspect and use a sett store.
 *
 *   sett put STORE KEY VALUE        sett get STORE KEY
 *   sett del STORE KEY              sett scan [--prefix P] [--reverse] [--keys] STORE
 *   sett info [--json] STORE        sett check STORE
 *   sett gc STORE [RATIO]           sett repair STORE
 *   sett flatten STORE
 *   sett pin STORE NAME [VERSION]   sett unpin STORE NAME
 *   sett backup [--since V] [--all-versions] [--pin NAME] STORE > FILE
 *   sett load STORE < FILE
 *   sett bench [--workload NAME] [--dir DIR]   (also backup_small, load_small, ...)
 *
 * Every command that opens a store also takes --key-file F or
 * --passphrase-file F, the master key of an encrypted store (key.h).
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
#include "control.h"
#include "key.h"

/* --key-file / --passphrase-file, read by main() before the command runs */
static key_material cli_key;

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
	key_apply(&cli_key, &o);
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
	return r ? cli_open_failed(cmd, path, r, why) : 0;
}

int cli_open_failed(const char *cmd, const char *path, int err, const char *why)
{
	if (err == SETT_EKEY) {
		fprintf(stderr, "sett %s: %s: %s\n", cmd, path,
			key_refused(cli_key.has_key || cli_key.has_pass));
		if (!cli_key.has_key && !cli_key.has_pass)
			fprintf(stderr, "sett %s: give its key with --key-file F or "
					"--passphrase-file F\n", cmd);
	}
	if (why[0])
		fprintf(stderr, "sett %s: %s\n", cmd, why);
	else if (err != SETT_EKEY)
		cli_fail(cmd, path, err);
	return 1;
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

/* sett put STORE KEY VALUE (value set) or sett del STORE KEY (value NULL):
 * one durable batch. */
static int write_one(const char *cmd, const char *store, const char *key, const char *value)
{
	sett_db *db;
	if (cli_open(cmd, store, 0, &db))
		return 1;
	sett_batch *b;
	int r = sett_batch_new(&b);
	if (!r)
		r = value ? sett_batch_set(b, val_of(key), val_of(value))
			  : sett_batch_delete(b, val_of(key));
	if (!r)
		r = sett_write(db, b, 1, NULL);
	sett_batch_free(b);
	int c = sett_close(db);
	return r || c ? cli_fail(cmd, key, r ? r : c) : 0;
}

static int cmd_put(int argc, char **argv)
{
	return argc != 4 ? 2 : write_one("put", argv[1], argv[2], argv[3]);
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
	return argc != 3 ? 2 : write_one("del", argv[1], argv[2], NULL);
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
	uint8_t *body;
	size_t n;
	int r = ask_daemon("info", store, CTL_INFO, &body, &n);
	if (r == 0) {
		ctl_rec t;
		if (ctl_find(body, n, json ? "json" : "text", &t) == 1 && t.kind == CTL_STR)
			fwrite(t.s, 1, t.slen, stdout);
		free(body);
		return 0;
	}
	if (r != -ENOENT)
		return 1;
	sett_db *db;
	if (cli_open("info", store, 1, &db))
		return 1;
	r = cli_info_print(db, store, json, stdout);
	sett_close(db);
	return r ? cli_fail("info", store, r) : 0;
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
	uint8_t *body;
	size_t n;
	struct check c = { .faults = 0 };
	int r = ask_daemon("check", argv[1], CTL_CHECK, &body, &n);
	if (r == 0) {
		/* what the daemon can check of the store it has open */
		ctl_cursor cur;
		ctl_rec rec;
		uint64_t total = 0;
		ctl_cursor_init(&cur, body, n);
		while (ctl_next(&cur, &rec) == 1) {
			if (!strcmp(rec.name, "fault") && rec.kind == CTL_STR)
				fprintf(stderr, "sett check: %.*s\n", (int)rec.slen, (const char *)rec.s);
			if (!strcmp(rec.name, "faults") && rec.kind == CTL_U64)
				total = rec.u;
		}
		free(body);
		c.faults = total > INT32_MAX ? INT32_MAX : (int)total;
	} else if (r != -ENOENT) {
		return 1;
	} else {
		sett_db *db;
		progress_open(&c.p, "sett check", argv[1], -1);
		if (cli_open_progress("check", argv[1], 1, &c.p, &db))
			return 1;
		r = sett_verify(db, report_line, &c);
		progress_clear(&c.p);
		sett_close(db);
	}
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
	key_apply(&cli_key, &o);
	int r = sett_repair(argv[1], &o, repair_line, &p);
	progress_clear(&p);
	return r ? cli_open_failed("repair", argv[1], r, "") : 0;
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
 * takes a value (the next argument).  Every command but bench also takes
 * KEY_OPTS, which main() reads itself.  main() refuses any other argument
 * that starts with '-' (until "--"), naming it.
 */
#define KEY_OPTS "--key-file= --passphrase-file="
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
	{ "backup", cmd_backup, "--since= --all-versions --pin=",
	  "[--since VERSION] [--all-versions] [--pin NAME] STORE > FILE",
	  "write a checksummed backup stream; prints the version it is complete to" },
	{ "load", cmd_load, "", "STORE < FILE",
	  "apply a backup stream (a damaged one changes nothing)" },
	{ "pin", cmd_pin, "", "STORE NAME [VERSION]",
	  "pin the current (or an older) version; prints it" },
	{ "unpin", cmd_unpin, "", "STORE NAME",
	  "release a pin (compaction and GC free its space)" },
	{ "bench", cmd_bench, "--workload= --dir= --scale= --encrypt --cache=",
	  "[--workload NAME] [--dir DIR] [--scale F] [--encrypt] [--cache MB]",
	  "run the engine workloads (--encrypt: on encrypted stores; --cache: block cache size)" },
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
	fprintf(f, "usage: sett COMMAND ARGS\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  sett %s %s\n      %s\n", commands[i].name, commands[i].usage,
			commands[i].help);
	fprintf(f, "\n  Every command but bench takes --key-file F or --passphrase-file F:\n"
		   "      the master key of an encrypted store (F: mode 0600 or stricter)\n");
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
	if (c->fn != cmd_bench)
		printf("--key-file F, --passphrase-file F: the master key of an encrypted "
		       "store\n(a key file, or a passphrase file's first line; \"-\": stdin)\n");
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
	const char *key_file = NULL, *pass_file = NULL;
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
		} else if (takes_option(c->opts, a, &value) ||
			   (c->fn != cmd_bench && takes_option(KEY_OPTS, a, &value))) {
			if (value && i + 1 >= argc) {
				fprintf(stderr, "sett %s: option '%s' needs a value\n", c->name, a);
				free(av);
				return 2;
			}
			if (!key_arg(argc, argv, &i, &key_file, &pass_file)) {
				av[ac++] = argv[i];
				if (value)
					av[ac++] = argv[++i];
			}
		} else {
			fprintf(stderr, "sett %s: unknown option '%s' (sett help %s)\n", c->name, a,
				c->name);
			free(av);
			return 2;
		}
	}
	av[ac] = NULL;
	if (key_load("sett", key_file, pass_file, &cli_key)) {
		free(av);
		return 1;
	}
	int r = c->fn(ac, av);
	key_wipe(&cli_key);
	if (r == 2)
		fprintf(stderr, "usage: sett %s %s\n", c->name, c->usage);
	free(av);
	return r;
}
