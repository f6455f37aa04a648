/*
 * progress.h - progress of a long operation (sett gc/check/repair,
 * fsck.settfs), as e2fsck shows it.
 *
 * Shown on a terminal only: progress_open(p, prog, -1) draws a one-line
 * bar on stderr when stderr is a terminal and stays quiet otherwise;
 * fd 0 draws it on stdout whatever stdout is (fsck -C 0); fd N > 0 writes
 * e2fsck's machine-readable lines "PASS DONE TOTAL STORE" to descriptor N
 * (fsck -C N, for a front end).
 */
#ifndef SETT_PROGRESS_H
#define SETT_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct progress {
	FILE *bar;         /* the terminal line, or NULL */
	int fd;            /* machine-readable lines, or -1 */
	const char *prog;  /* "fsck.settfs", "sett check" */
	const char *store;
	int pass;
	double last;       /* when the bar was last drawn */
	int drawn;         /* the bar's line holds text */
} progress;

void progress_open(progress *p, const char *prog, const char *store, int fd);
/* Step `pass` (1, 2, ...), named `what`, is at `done` of `total` (0: not known). */
void progress_set(progress *p, int pass, const char *what, uint64_t done, uint64_t total);
/* A sett_options.progress_fn: arg is a progress; the engine's work is pass 1. */
void progress_engine(void *arg, const char *what, uint64_t done, uint64_t total);
/* Clears the bar (before other output, and at the end). */
void progress_clear(progress *p);

#endif
