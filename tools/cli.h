/*
 * cli.h - shared pieces of the `sett` command: one function per
 * subcommand, listed in the table in sett.c.
 */
#ifndef SETT_CLI_H
#define SETT_CLI_H

#include <stdio.h>

#include "sett.h"
#include "progress.h"

/* Prints "sett CMD: what failed: why" to stderr; returns exit status 1. */
int cli_fail(const char *cmd, const char *what, int err);
/* Opens STORE with the default options (read_only as asked) and the key
 * main() read from --key-file or --passphrase-file. */
int cli_open(const char *cmd, const char *path, int read_only, sett_db **db);
/* The same, reporting the engine's progress (sett_verify) to p. */
int cli_open_progress(const char *cmd, const char *path, int read_only, progress *p,
		      sett_db **db);
/* Says why an open (or sett_repair) of `path` failed with err (why: the
 * engine's description, or ""); returns exit status 1. */
int cli_open_failed(const char *cmd, const char *path, int err, const char *why);

int cmd_bench(int argc, char **argv);
int cmd_pin(int argc, char **argv);
int cmd_unpin(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_load(int argc, char **argv);

/* "12.3 MiB" */
void cli_human(char *out, size_t n, uint64_t bytes);
/* Unix time t as "2026-12-01 19:30:00 +0000" (local time), or its number
 * when no calendar date holds it. */
void cli_time(char *out, size_t n, uint64_t t);
/* The report of `sett info` for an open store, as text or (json) one JSON
 * object (read-only; any thread). */
int cli_info_print(sett_db *db, const char *store, int json, FILE *f);

#endif
