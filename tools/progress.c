/*
 * progress.c - see progress.h.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

void progress_open(progress *p, const char *prog, const char *store, int fd)
{
	memset(p, 0, sizeof *p);
	p->prog = prog;
	p->store = store;
	p->fd = -1;
	p->last = -1;
	if (fd < 0)
		p->bar = isatty(STDERR_FILENO) ? stderr : NULL;
	else if (fd == 0)
		p->bar = stdout;
	else
		p->fd = fd;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_set(progress *p, int pass, const char *what, uint64_t done, uint64_t total)
{
	if (!p || (!p->bar && p->fd < 0))
		return;
	int step = pass != p->pass;
	p->pass = pass;
	/* at most ten times a second, and at each new pass */
	double t = now();
	if (!step && done != total && t - p->last < 0.1)
		return;
	p->last = t;
	if (p->fd >= 0) {
		dprintf(p->fd, "%d %llu %llu %s\n", pass, (unsigned long long)done,
			(unsigned long long)total, p->store);
		return;
	}
	if (total)
		fprintf(p->bar, "\r%s: %s: %s %llu/%llu (%3.0f%%)\033[K", p->prog, p->store, what,
			(unsigned long long)done, (unsigned long long)total,
			100.0 * (double)done / (double)total);
	else
		fprintf(p->bar, "\r%s: %s: %s %llu\033[K", p->prog, p->store, what,
			(unsigned long long)done);
	fflush(p->bar);
	p->drawn = 1;
}

void progress_engine(void *arg, const char *what, uint64_t done, uint64_t total)
{
	progress_set(arg, 1, what, done, total);
}

void progress_clear(progress *p)
{
	if (!p || !p->bar || !p->drawn)
		return;
	fprintf(p->bar, "\r\033[K");
	fflush(p->bar);
	p->drawn = 0;
}
