/*
 * oracle.c - the conflict records of transactions (see oracle.h).
 */
#include "oracle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int oracle_init(oracle *o)
{
	memset(o, 0, sizeof *o);
	return -pthread_mutex_init(&o->mu, NULL);
}

void oracle_destroy(oracle *o)
{
	free(o->slots);
	free(o->queue);
	pthread_mutex_destroy(&o->mu);
}

int oracle_recording(oracle *o, int managed)
{
	return managed || __atomic_load_n(&o->open_rw, __ATOMIC_ACQUIRE) > 0;
}

static uint64_t fp_norm(uint64_t fp)
{
	return fp ? fp : 1;
}

static size_t slot_of(const oracle *o, uint64_t fp)
{
	size_t mask = o->cap - 1, i = (size_t)(fp * 0x9e3779b97f4a7c15ull >> 17) & mask;
	while (o->slots[i].fp && o->slots[i].fp != fp)
		i = (i + 1) & mask;
	return i;
}

int oracle_conflicts(oracle *o, const uint64_t *reads, size_t nreads, uint64_t read_version)
{
	if (!nreads)
		return 0;
	if (o->unrecorded > read_version)
		return 1;
	/* Only the writer changes the tables: no lock needed to read them here. */
	if (!o->n)
		return 0;
	for (size_t i = 0; i < nreads; i++) {
		size_t s = slot_of(o, fp_norm(reads[i]));
		if (o->slots[s].fp && o->slots[s].version > read_version)
			return 1;
	}
	return 0;
}

static int grow(oracle *o)
{
	size_t cap = o->cap ? o->cap * 2 : 1024;
	orc_rec *ns = calloc(cap, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	orc_rec *old = o->slots;
	size_t ocap = o->cap;
	o->slots = ns;
	o->cap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].fp)
			o->slots[slot_of(o, old[i].fp)] = old[i];
	free(old);
	return 0;
}

int oracle_record(oracle *o, uint64_t fp, uint64_t version)
{
	fp = fp_norm(fp);
	pthread_mutex_lock(&o->mu);
	int r = 0;
	if ((o->n + 1) * 2 > o->cap)
		r = grow(o);
	if (!r && o->qn == o->qcap) {
		size_t cap = o->qcap ? o->qcap * 2 : 1024;
		orc_rec *q = malloc(cap * sizeof *q);
		if (!q) {
			r = -ENOMEM;
		} else {
			for (size_t i = 0; i < o->qn; i++)
				q[i] = o->queue[(o->qhead + i) % o->qcap];
			free(o->queue);
			o->queue = q;
			o->qcap = cap;
			o->qhead = 0;
		}
	}
	if (r) {
		/* Without a record the key must count as written after every
		 * read version up to this one. */
		if (version > o->unrecorded)
			o->unrecorded = version;
		pthread_mutex_unlock(&o->mu);
		return r;
	}
	size_t s = slot_of(o, fp);
	if (!o->slots[s].fp) {
		o->slots[s].fp = fp;
		o->slots[s].version = version;
		o->n++;
	} else if (version > o->slots[s].version) {
		o->slots[s].version = version;
	}
	o->queue[(o->qhead + o->qn++) % o->qcap] = (orc_rec){ fp, version };
	pthread_mutex_unlock(&o->mu);
	return 0;
}

void oracle_skip(oracle *o, uint64_t version)
{
	if (version > o->unrecorded)
		o->unrecorded = version;
}

/* Removes slot s, shifting back the entries of its probe run. */
static void slot_delete(oracle *o, size_t s)
{
	size_t mask = o->cap - 1, i = s;
	for (;;) {
		i = (i + 1) & mask;
		if (!o->slots[i].fp)
			break;
		size_t home = (size_t)(o->slots[i].fp * 0x9e3779b97f4a7c15ull >> 17) & mask;
		/* Move i back to s unless its home lies cyclically in (s, i]. */
		if ((s < i) ? (home <= s || home > i) : (home <= s && home > i)) {
			o->slots[s] = o->slots[i];
			s = i;
		}
	}
	o->slots[s].fp = 0;
	o->slots[s].version = 0;
	o->n--;
}

void oracle_prune(oracle *o, uint64_t watermark)
{
	pthread_mutex_lock(&o->mu);
	while (o->qn && o->queue[o->qhead].version <= watermark) {
		orc_rec q = o->queue[o->qhead];
		o->qhead = (o->qhead + 1) % o->qcap;
		o->qn--;
		size_t s = slot_of(o, q.fp);
		/* A newer commit of the same key keeps the record alive. */
		if (o->slots[s].fp && o->slots[s].version <= watermark)
			slot_delete(o, s);
	}
	if (o->qn == 0 && o->cap > 1024) {
		free(o->slots);
		free(o->queue);
		o->slots = o->queue = NULL;
		o->cap = o->qcap = o->qhead = 0;
		o->n = 0;
	}
	pthread_mutex_unlock(&o->mu);
}

size_t oracle_count(oracle *o)
{
	pthread_mutex_lock(&o->mu);
	size_t n = o->n;
	pthread_mutex_unlock(&o->mu);
	return n;
}
