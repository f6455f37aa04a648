/*
 * explore.h - a crash-state explorer over the engine's I/O layer.
 *
 * xp_record_start() copies the store directory (the state on disk when
 * recording starts: the store must be closed, so that all of it is durable)
 * and turns on the recorder of kvengine/util/fileio.c; the workload then runs and
 * drops marks (sio_record_mark) after the events it acknowledges;
 * xp_record_stop() takes the log.  xp_explore() then builds crash states
 * from the log, materialises each into a scratch directory and hands it to
 * a checker.  See explore.c for the persistence model.
 */
#ifndef SETT_EXPLORE_H
#define SETT_EXPLORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct xp_log xp_log;

xp_log *xp_record_start(const char *dir);
void xp_record_stop(xp_log *l);
size_t xp_nrecs(const xp_log *l);
void xp_free(xp_log *l);

/*
 * Checks the crash state in `state_dir`, a crash after every mark up to
 * `last_mark` was dropped (0: none) and before the next one.  Returns 0 if
 * the state is fine, otherwise 1 with the reason in why.
 */
typedef int (*xp_check_fn)(void *arg, const char *state_dir, uint64_t last_mark, char *why,
			   size_t whylen);

typedef struct xp_result {
	long states;   /* crash states checked */
	long failures; /* of which failed */
} xp_result;

/*
 * Explores `nstates` crash states drawn with `seed` (state i uses a seed
 * derived from seed and i, printed with every failure).  Prints the first
 * failures with the state's description to stderr.  If `only` >= 0, checks
 * only state number `only` and keeps its directory for inspection.
 */
void xp_explore(xp_log *l, const char *name, long nstates, uint64_t seed, long only,
		xp_check_fn check, void *arg, xp_result *res);

#endif
