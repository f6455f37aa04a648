/*
 * sequence.c - leased monotonic counters (sett_sequence_*), as Badger's
 * Sequence.  The key holds the upper bound of the lease (8 bytes, big
 * endian; doc/FORMAT.md): every number below it may have been handed out.
 * A lease is committed durably (sync) before any of its numbers is, so a
 * crash never repeats a number; it loses the rest of the lease.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"

struct sett_sequence {
	sett_db *db;
	pthread_mutex_t mu;
	void *key;
	size_t klen;
	uint64_t bandwidth;
	uint64_t next, leased; /* numbers next .. leased-1 are ours */
};

/* Reads the stored bound in txn: 0 and *v (0 when absent), or an error. */
static int read_bound(sett_txn *txn, sett_sequence *s, uint64_t *v)
{
	void *val;
	size_t n;
	sett_val k = { s->klen, s->key };
	int r = sett_txn_get(txn, k, &val, &n);
	if (r == SETT_ENOTFOUND) {
		*v = 0;
		return 0;
	}
	if (r)
		return r;
	r = n == 8 ? 0 : SETT_ECORRUPT;
	if (!r)
		*v = get_be64(val);
	free(val);
	return r;
}

/*
 * Replaces the stored bound in one transaction, retried on conflict.
 * lease: bound = stored + bandwidth (ours: stored .. bound-1).  release:
 * bound = s->next, only if the stored bound is still our lease's.
 */
static int update(sett_sequence *s, int lease)
{
	for (;;) {
		sett_txn *txn;
		int r = sett_txn_begin(s->db, 1, &txn);
		if (r)
			return r;
		uint64_t cur = 0, nb = 0;
		r = read_bound(txn, s, &cur);
		int write = 1;
		if (!r && lease) {
			nb = cur + s->bandwidth;
			if (nb < cur)
				r = -EOVERFLOW;
		} else if (!r) {
			nb = s->next;
			write = cur == s->leased && s->next < s->leased;
		}
		uint8_t be[8];
		put_be64(be, nb);
		sett_val k = { s->klen, s->key }, v = { 8, be };
		if (!r && write)
			r = sett_txn_set(txn, k, v);
		if (!r)
			r = sett_txn_commit(txn, 1, NULL);
		sett_txn_discard(txn);
		if (r == SETT_ECONFLICT)
			continue;
		if (!r && lease) {
			s->next = cur;
			s->leased = nb;
		}
		return r;
	}
}

int sett_sequence_get(sett_db *db, sett_val key, uint64_t bandwidth, sett_sequence **seqp)
{
	if (!bandwidth || db->opt.managed || key.size > SETT_MAX_KEY_SIZE || (key.size && !key.data))
		return -EINVAL;
	sett_sequence *s = calloc(1, sizeof *s);
	if (!s || !(s->key = malloc(key.size ? key.size : 1))) {
		free(s);
		return -ENOMEM;
	}
	if (key.size)
		memcpy(s->key, key.data, key.size);
	s->klen = key.size;
	s->db = db;
	s->bandwidth = bandwidth;
	pthread_mutex_init(&s->mu, NULL);
	int r = update(s, 1);
	if (r) {
		pthread_mutex_destroy(&s->mu);
		free(s->key);
		free(s);
		return r;
	}
	*seqp = s;
	return 0;
}

int sett_sequence_next(sett_sequence *s, uint64_t *out)
{
	pthread_mutex_lock(&s->mu);
	int r = 0;
	if (s->next >= s->leased)
		r = update(s, 1);
	if (!r)
		*out = s->next++;
	pthread_mutex_unlock(&s->mu);
	return r;
}

int sett_sequence_release(sett_sequence *s)
{
	if (!s)
		return 0;
	pthread_mutex_lock(&s->mu);
	int r = update(s, 0);
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_destroy(&s->mu);
	free(s->key);
	free(s);
	return r;
}
