/*
 * fuse_inval.c - the settfs daemon's replies that must follow a page-cache
 * invalidation (see fuse_inval.h).  A FIFO served by one thread; each
 * entry stands for a request the kernel waits for, so the queue is bounded
 * by the kernel's own limit on requests in flight.
 */
#include "fuse_inval.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef struct inval_item {
	struct inval_item *next;
	fuse_req_t req;
	uint64_t ino, off, len;
	int slot;            /* counted in held */
	sfs_inval_done done; /* NULL: answered already */
	uint64_t a, b;
} inval_item;

struct sfs_inval {
	struct fuse_session *se;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	inval_item *head, **tail; /* under lock */
	int held;                 /* under lock: queued items with slot set */
};

static void run_item(struct fuse_session *se, const inval_item *it)
{
	/* errors are not interesting: -ENOENT when the kernel has no such inode */
	fuse_lowlevel_notify_inval_inode(se, it->ino, (off_t)it->off, (off_t)it->len);
	if (it->done)
		it->done(it->req, it->ino, it->a, it->b);
}

static void *inval_main(void *arg)
{
	sfs_inval *v = arg;
	pthread_mutex_lock(&v->lock);
	for (;;) {
		while (!v->head && !v->stop)
			pthread_cond_wait(&v->cond, &v->lock);
		inval_item *it = v->head;
		if (!it)
			break; /* stopped and drained */
		v->head = it->next;
		if (!v->head)
			v->tail = &v->head;
		pthread_mutex_unlock(&v->lock);
		run_item(v->se, it);
		pthread_mutex_lock(&v->lock);
		if (it->slot)
			v->held--;
		free(it);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

sfs_inval *sfs_inval_start(struct fuse_session *se)
{
	sfs_inval *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	v->se = se;
	v->tail = &v->head;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	if (pthread_create(&v->thread, NULL, inval_main, v) != 0) {
		pthread_cond_destroy(&v->cond);
		pthread_mutex_destroy(&v->lock);
		free(v);
		return NULL;
	}
	return v;
}

void sfs_inval_then(sfs_inval *v, struct fuse_session *se, fuse_req_t req, uint64_t ino,
		    uint64_t off, uint64_t len, int slot, sfs_inval_done done, uint64_t a,
		    uint64_t b)
{
	inval_item local = { NULL, req, ino, off, len, 0, done, a, b };
	inval_item *it = v ? malloc(sizeof *it) : NULL;
	if (!it) {
		if (slot) { /* waiting here would hold the slot as well */
			done(req, ino, a, b);
			local.done = NULL;
		}
		run_item(se, &local);
		return;
	}
	*it = local;
	pthread_mutex_lock(&v->lock);
	if (v->stop) {
		/* the thread may have drained the queue for the last time */
		pthread_mutex_unlock(&v->lock);
		free(it);
		sfs_inval_then(NULL, se, req, ino, off, len, slot, done, a, b);
		return;
	}
	if (slot && v->held >= SFS_INVAL_HELD) {
		/* answer now, outside the lock; the invalidation follows */
		pthread_mutex_unlock(&v->lock);
		done(req, ino, a, b);
		it->done = NULL;
		pthread_mutex_lock(&v->lock);
	} else if (slot) {
		it->slot = 1;
		v->held++;
	}
	*v->tail = it;
	v->tail = &it->next;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static struct timespec deadline(double secs)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	long ns = t.tv_nsec + (long)((secs - (double)(long)secs) * 1e9);
	t.tv_sec += (time_t)secs + ns / 1000000000;
	t.tv_nsec = ns % 1000000000;
	return t;
}

int sfs_join_bounded(pthread_t t, double secs, void (*unblock)(void *arg), void *arg,
		     double more)
{
	struct timespec d = deadline(secs);
	if (pthread_timedjoin_np(t, NULL, &d) == 0)
		return 0;
	if (unblock)
		unblock(arg);
	d = deadline(more);
	return pthread_timedjoin_np(t, NULL, &d) == 0 ? 0 : -1;
}

int sfs_inval_stop(sfs_inval *v, void (*unblock)(void *arg), void *arg)
{
	if (!v)
		return 0;
	pthread_mutex_lock(&v->lock);
	v->stop = 1;
	pthread_cond_signal(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if (sfs_join_bounded(v->thread, 2, unblock, arg, 10) != 0)
		return -1;
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return 0;
}
