/*
 * sett_backup.c - `sett backup` and `sett load`: write a store's entries to
 * a backup stream on stdout, and apply such a stream from stdin
 * (doc/FORMAT.md, "Backup stream").
 *
 *   sett backup [--since VERSION] [--all-versions] [--pin NAME] STORE > FILE
 *   sett load STORE < FILE
 *
 * backup ends by printing, on stderr, the version the stream is complete
 * to: the --since of the next incremental.  An incremental needs a pin at
 * or below VERSION, so that the store kept its deletes: --pin NAME pins
 * the complete version (moving an older pin of that name).  load shows
 * progress when stderr is a terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int write_fd(void *arg, const void *p, size_t n)
{
	int fd = *(int *)arg;
	const char *c = p;
	while (n) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static long read_fd(void *arg, void *p, size_t n)
{
	int fd = *(int *)arg;
	for (;;) {
		ssize_t k = read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		return k < 0 ? -errno : (long)k;
	}
}

int cmd_backup(int argc, char **argv)
{
	sett_backup_options o;
	sett_backup_options_init(&o);
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--since") && i + 1 < argc) {
			char *end;
			o.since = strtoull(argv[++i], &end, 10);
			if (*end)
				return 2;
		} else if (!strcmp(argv[i], "--all-versions")) {
			o.all_versions = 1;
		} else if (!strcmp(argv[i], "--pin") && i + 1 < argc) {
			o.pin = argv[++i];
		} else {
			return 2;
		}
	}
	if (i != argc - 1)
		return 2;
	if (isatty(1)) {
		fprintf(stderr, "sett backup: refusing to write a backup stream to a terminal\n");
		return 2;
	}
	sett_db *db;
	/* with a pin to move the store is written; otherwise only read */
	if (cli_open("backup", argv[i], o.pin == NULL, &db))
		return 1;
	int fd = 1;
	sett_backup_result res;
	int r = sett_backup(db, &o, write_fd, &fd, &res);
	int c = sett_close(db);
	if (r == SETT_ENOHISTORY) {
		fprintf(stderr, "sett backup: %s: no pin at or below version %llu keeps the deletes "
				"since then; take a full backup with --pin NAME, then incrementals "
				"--since its version\n", argv[i], (unsigned long long)o.since);
		return 1;
	}
	if (r || c)
		return cli_fail("backup", argv[i], r ? r : c);
	fprintf(stderr, "sett backup: %llu entries (%llu deletes), %llu bytes; complete to version "
			"%llu\n", (unsigned long long)res.records, (unsigned long long)res.deletes,
		(unsigned long long)res.bytes, (unsigned long long)res.version);
	if (res.skipped)
		fprintf(stderr, "sett backup: %llu old versions skipped (value-log GC had taken "
				"their values)\n", (unsigned long long)res.skipped);
	return 0;
}

/* sett_load's progress: phase 0 verifies the stream (bytes), 1 applies it. */
static void load_progress(void *arg, int phase, uint64_t done, uint64_t total)
{
	if (phase == 0)
		progress_set(arg, 1, "MiB verified", done >> 20, 0);
	else
		progress_set(arg, 2, "entries applied", done, total);
}

int cmd_load(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	if (isatty(0)) {
		fprintf(stderr, "sett load: reads a backup stream on standard input\n");
		return 2;
	}
	sett_db *db;
	if (cli_open("load", argv[1], 0, &db))
		return 1;
	int fd = 0;
	progress p;
	progress_open(&p, "sett load", argv[1], -1);
	sett_load_result res;
	int r = sett_load(db, read_fd, &fd, p.bar ? load_progress : NULL, &p, &res);
	progress_clear(&p);
	int c = sett_close(db);
	if ((r == SETT_ECORRUPT || r == SETT_EFORMAT) && res.why[0]) {
		fprintf(stderr, "sett load: %s; %s is unchanged\n", res.why, argv[1]);
		return 1;
	}
	if (r) {
		if (res.applied)
			fprintf(stderr, "sett load: %llu of %llu entries were applied before the "
					"error; loading the same stream again completes it\n",
				(unsigned long long)res.applied, (unsigned long long)res.records);
		return cli_fail("load", argv[1], r);
	}
	if (c)
		return cli_fail("load", argv[1], c);
	fprintf(stderr, "sett load: %llu entries applied (versions %llu to %llu of the source)\n",
		(unsigned long long)res.applied, (unsigned long long)res.since,
		(unsigned long long)res.version);
	return 0;
}
