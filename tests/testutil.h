/* testutil.h - helpers shared by the Check suites. */
#ifndef SETT_TESTUTIL_H
#define SETT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <check.h>

#include "sett.h"

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
/* The whole file at path (malloc'ed, one byte more than *n); fails the test if unreadable. */
uint8_t *tu_slurp(const char *path, size_t *n);
/* Whether the n bytes at p hold the m bytes of needle. */
int tu_contains(const uint8_t *p, size_t n, const void *needle, size_t m);
/* Flip one bit of the byte at off in file path. */
void tu_flip_byte(const char *path, long long off);
/*
 * Appends to the file at path a crafted log tail of n bytes: at every few
 * bytes a record header whose record fits and ends at the file's last
 * byte but one (and fails its check): plain entries (sealed_overhead 0;
 * every 8 bytes) or sealed records whose u32 length leaves sealed_overhead
 * bytes of framing (every 12).  With past_end, the first claims a record
 * running past the end of the file, as a torn one does.  A search for a
 * valid record after a bad one pays for each claim (log_search_budget,
 * entry.h).
 */
void tu_append_claims(const char *path, size_t n, size_t sealed_overhead, int past_end);
/* The path of a file in dir whose name ends in suffix (".sst"): 1, or 0 if none. */
int tu_find_file(const char *dir, const char *suffix, char *out, size_t n);
/*
 * A digest of a directory tree: every name (sorted) and every file's bytes,
 * LOCK files left out (they hold the pid of the last opener).  Equal
 * digests: nothing was created, deleted, renamed or written.
 */
uint64_t tu_dir_digest(const char *dir);
/*
 * A byte stream in memory: tu_mem_write appends (a sett_write_fn),
 * tu_mem_read reads from pos in odd-sized pieces of at most 777 bytes, so
 * that what a reader decodes straddles reads (a sett_read_fn).
 */
typedef struct tu_mem {
	uint8_t *p;
	size_t n, cap, pos;
} tu_mem;
int tu_mem_write(void *arg, const void *p, size_t n);
long tu_mem_read(void *arg, void *p, size_t n);
/* Whether the file at path holds the n bytes at p anywhere. */
int tu_file_contains(const char *path, const void *p, size_t n);
/*
 * A key ring of data keys with ids first..last; key i's bytes depend on i
 * and `seed` only (rings of one seed agree on every id they share).
 */
struct cipher_ring;
struct cipher_ring *tu_ring(uint64_t first, uint64_t last, unsigned seed);
/*
 * Engine options for a store that flushes, compacts and fills value-log
 * files (of value_log_file_size bytes) soon: 256 KiB memtables, values
 * over 1 KiB in the value log, 64 KiB tables, 256 KiB at level 1, two
 * level-0 tables before compaction, a 1 MiB block cache, no GC thread.
 */
void tu_small_options(sett_options *o, uint64_t value_log_file_size);
/* Runs a suite; returns the process exit status (0 if every test passed). */
int tu_run(Suite *s);

#endif
