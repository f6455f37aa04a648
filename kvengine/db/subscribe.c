/*
 * subscribe.c - subscriptions: per-subscriber bounded queues filled by the
 * writer thread, drained by sett_sub_next on the subscriber's thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_impl.h"

typedef struct qent {
	struct qent *next;
	sett_sub_entry e;
	uint8_t data[]; /* key, then value */
} qent;

struct sett_sub {
	sett_db *db;
	sett_val *prefixes; /* copies */
	size_t nprefixes;
	size_t max_entries, max_bytes;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	qent *head, *tail;
	size_t qn, qbytes;
	int err;            /* SETT_ESUBBEHIND once cut off */

	/* Handed out by the last sett_sub_next (reader only). */
	qent *held;
	sett_sub_entry *out;
	size_t outcap;
};

void subs_init(subs_state *s)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
}

void subs_destroy(subs_state *s)
{
	free(s->subs);
	pthread_mutex_destroy(&s->mu);
}

void sett_sub_options_init(sett_sub_options *o)
{
	o->max_entries = 65536;
	o->max_bytes = 64u << 20;
}

static int matches(const sett_sub *sub, slice key)
{
	if (!sub->nprefixes)
		return 1;
	for (size_t i = 0; i < sub->nprefixes; i++)
		if (key.n >= sub->prefixes[i].size &&
		    (!sub->prefixes[i].size || memcmp(key.p, sub->prefixes[i].data, sub->prefixes[i].size) == 0))
			return 1;
	return 0;
}

static void qfree(qent *q)
{
	while (q) {
		qent *n = q->next;
		free(q);
		q = n;
	}
}

/* Queues the batch's entries for one subscription: all of them, or none
 * and the subscription is cut off. */
static void publish_one(sett_sub *sub, const sett_batch *b, uint64_t version)
{
	qent *head = NULL, **tail = &head;
	size_t n = 0, bytes = 0;
	int nomem = 0;
	for (size_t i = 0; i < sett_batch_count(b); i++) {
		slice k, v;
		int del;
		uint8_t um;
		uint64_t exp;
		db_batch_entry(b, i, &k, &v, &del, &um, &exp);
		if (!matches(sub, k))
			continue;
		qent *q = malloc(sizeof *q + k.n + v.n);
		if (!q) {
			nomem = 1;
			break;
		}
		q->next = NULL;
		if (k.n)
			memcpy(q->data, k.p, k.n);
		if (v.n)
			memcpy(q->data + k.n, v.p, v.n);
		q->e = (sett_sub_entry){ .key = { k.n, q->data }, .value = { v.n, q->data + k.n },
					 .version = version, .expires_at = exp, .user_meta = um,
					 .deleted = (uint8_t)(del != 0) };
		*tail = q;
		tail = &q->next;
		n++;
		bytes += k.n + v.n;
	}
	if (!n && !nomem)
		return;
	pthread_mutex_lock(&sub->mu);
	if (!sub->err && (nomem || sub->qn + n > sub->max_entries ||
			  sub->qbytes + bytes > sub->max_bytes))
		sub->err = SETT_ESUBBEHIND;
	if (!sub->err) {
		if (sub->tail)
			sub->tail->next = head;
		else
			sub->head = head;
		sub->tail = (qent *)((char *)tail - offsetof(qent, next));
		sub->qn += n;
		sub->qbytes += bytes;
		head = NULL;
	}
	pthread_cond_signal(&sub->cv);
	pthread_mutex_unlock(&sub->mu);
	qfree(head);
}

void subs_publish(sett_db *db, const sett_batch *b, uint64_t version)
{
	subs_state *s = &db->subs;
	if (!__atomic_load_n(&s->active, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n; i++)
		publish_one(s->subs[i], b, version);
	pthread_mutex_unlock(&s->mu);
}

int sett_subscribe(sett_db *db, const sett_val *prefixes, size_t nprefixes,
		   const sett_sub_options *o, sett_sub **subp)
{
	sett_sub_options def;
	if (!o) {
		sett_sub_options_init(&def);
		o = &def;
	}
	if (!o->max_entries || o->max_entries > INT32_MAX || !o->max_bytes ||
	    (nprefixes && !prefixes))
		return -EINVAL;
	sett_sub *sub = calloc(1, sizeof *sub);
	if (!sub)
		return -ENOMEM;
	sub->db = db;
	sub->max_entries = o->max_entries;
	sub->max_bytes = o->max_bytes;
	pthread_mutex_init(&sub->mu, NULL);
	pthread_cond_init(&sub->cv, NULL);
	int r = 0;
	if (nprefixes && !(sub->prefixes = calloc(nprefixes, sizeof *sub->prefixes)))
		r = -ENOMEM;
	for (size_t i = 0; !r && i < nprefixes; i++, sub->nprefixes++) {
		void *p = malloc(prefixes[i].size ? prefixes[i].size : 1);
		if (!p) {
			r = -ENOMEM;
			break;
		}
		if (prefixes[i].size)
			memcpy(p, prefixes[i].data, prefixes[i].size);
		sub->prefixes[i] = (sett_val){ prefixes[i].size, p };
	}
	subs_state *s = &db->subs;
	pthread_mutex_lock(&s->mu);
	if (!r && s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		sett_sub **a = realloc(s->subs, cap * sizeof *a);
		if (a) {
			s->subs = a;
			s->cap = cap;
		} else {
			r = -ENOMEM;
		}
	}
	if (!r) {
		s->subs[s->n++] = sub;
		__atomic_store_n(&s->active, (int)s->n, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&s->mu);
	if (r) {
		sub->db = NULL;
		sett_sub_close(sub);
		return r;
	}
	*subp = sub;
	return 0;
}

int sett_sub_next(sett_sub *sub, const sett_sub_entry **entries, int timeout_ms)
{
	qfree(sub->held);
	sub->held = NULL;
	struct timespec ts;
	if (timeout_ms > 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&sub->mu);
	while (!sub->qn && !sub->err && timeout_ms != 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&sub->cv, &sub->mu);
		else if (pthread_cond_timedwait(&sub->cv, &sub->mu, &ts) == ETIMEDOUT)
			break;
	}
	size_t n = sub->qn;
	qent *q = sub->head;
	int err = sub->err;
	sub->head = sub->tail = NULL;
	sub->qn = sub->qbytes = 0;
	pthread_mutex_unlock(&sub->mu);
	if (!n)
		return err;
	if (n > sub->outcap) {
		sett_sub_entry *o = realloc(sub->out, n * sizeof *o);
		if (!o) {
			/* Put them back: nothing is lost. */
			pthread_mutex_lock(&sub->mu);
			qent *t = q;
			while (t->next)
				t = t->next;
			t->next = sub->head;
			if (!sub->head)
				sub->tail = t;
			sub->head = q;
			sub->qn += n;
			pthread_mutex_unlock(&sub->mu);
			return -ENOMEM;
		}
		sub->out = o;
		sub->outcap = n;
	}
	size_t i = 0;
	for (qent *t = q; t; t = t->next)
		sub->out[i++] = t->e;
	sub->held = q;
	*entries = sub->out;
	return (int)n;
}

void sett_sub_close(sett_sub *sub)
{
	if (!sub)
		return;
	if (sub->db) {
		subs_state *s = &sub->db->subs;
		pthread_mutex_lock(&s->mu);
		for (size_t i = 0; i < s->n; i++) {
			if (s->subs[i] == sub) {
				s->subs[i] = s->subs[--s->n];
				break;
			}
		}
		__atomic_store_n(&s->active, (int)s->n, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&s->mu);
	}
	qfree(sub->head);
	qfree(sub->held);
	for (size_t i = 0; i < sub->nprefixes; i++)
		free((void *)sub->prefixes[i].data);
	free(sub->prefixes);
	free(sub->out);
	pthread_cond_destroy(&sub->cv);
	pthread_mutex_destroy(&sub->mu);
	free(sub);
}
