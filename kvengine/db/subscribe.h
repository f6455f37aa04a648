/*
 * subscribe.h - subscriptions to committed entries (sett_subscribe).
 *
 * The writer thread hands every batch it committed to subs_publish(), in
 * commit order.  Each subscription has a bounded queue of its own; the
 * writer appends a batch's matching entries whole, or, when they do not fit,
 * cuts the subscription off (its reader then sees SETT_ESUBBEHIND) and goes
 * on.  The writer never waits for a reader: it only takes the short locks
 * of the subscription list and of each queue.
 */
#ifndef SETT_SUBSCRIBE_H
#define SETT_SUBSCRIBE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "sett.h"

typedef struct subs_state {
	pthread_mutex_t mu;   /* the list (the writer holds it while publishing) */
	sett_sub **subs;
	size_t n, cap;
	int active;           /* atomic: n, read without mu */
} subs_state;

void subs_init(subs_state *s);
void subs_destroy(subs_state *s);
/* Writer: queues the entries of a committed batch for the subscriptions. */
void subs_publish(sett_db *db, const sett_batch *b, uint64_t version);

#endif
