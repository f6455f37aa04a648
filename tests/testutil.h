/* testutil.h - helpers shared by the Check suites. */
#ifndef SETT_TESTUTIL_H
#define SETT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <check.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'ed path. */
char *tu_tmpdir(const char *tag);
/* rm -rf path. */
void tu_rmrf(const char *path);
/* Deterministic pseudo-random numbers (xorshift64*). */
uint64_t tu_rand(uint64_t *state);
void tu_fill_random(uint64_t *state, void *p, size_t n);
/* Size in bytes of a file, or -1. */
long long tu_file_size(const char *path);
/* Total size of the regular files directly in dir. */
uint64_t tu_dir_bytes(const char *dir);
/* Flip one bit of the byte at off in file path. */
void tu_flip_byte(const char *path, long long off);
/*
 * A digest of a directory tree: every name (sorted) and every file's bytes,
 * LOCK files left out (they hold the pid of the last opener).  Equal
 * digests: nothing was created, deleted, renamed or written.
 */
uint64_t tu_dir_digest(const char *dir);
/* Runs a suite; returns the process exit status (0 if every test passed). */
int tu_run(Suite *s);

#endif
