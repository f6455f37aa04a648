/*
 * fuse_fill.c - the settfs daemon's page-cache filler (see fuse_fill.h).
 *
 * A bounded ring of pushes, each owning its bytes, served by one thread.
 * The bound keeps the daemon's memory at most SFS_FILL_QUEUE chunks above
 * what requests use, and a push that would not fit is dropped: the kernel
 * will READ those pages if it needs them.
 */
#define FUSE_USE_VERSION 312

#include "fuse_fill.h"
#include "fuse_inval.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define SFS_FILL_QUEUE 32

typedef struct fill_item {
	uint64_t ino, token, off;
	uint8_t *buf;
	size_t len, skip_from, skip_to;
} fill_item;

struct sfs_filler {
	struct fuse_session *se;
	settfs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	size_t head, count;   /* under lock */
	fill_item ring[SFS_FILL_QUEUE];
};

/* Errors are not interesting: -ENOENT when the kernel dropped the inode. */
static void store_range(struct fuse_session *se, const fill_item *it, size_t from, size_t to)
{
	if (from >= to)
		return;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(to - from);
	bv.buf[0].mem = it->buf + from;
	fuse_lowlevel_notify_store(se, it->ino, it->off + from, &bv, 0);
}

struct push_arg {
	struct fuse_session *se;
	const fill_item *it;
};

/* Runs under the node's fill_lock: no data change can start meanwhile. */
static int push_item(void *arg)
{
	struct push_arg *p = arg;
	store_range(p->se, p->it, 0, p->it->skip_from);
	store_range(p->se, p->it, p->it->skip_to, p->it->len);
	return 0;
}

static void *filler_main(void *arg)
{
	sfs_filler *f = arg;
	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->stop && f->count == 0)
			pthread_cond_wait(&f->cond, &f->lock);
		if (f->stop)
			break;
		fill_item it = f->ring[f->head];
		f->head = (f->head + 1) % SFS_FILL_QUEUE;
		f->count--;
		pthread_mutex_unlock(&f->lock);

		struct push_arg p = { f->se, &it };
		settfs_fill_run(f->fs, it.ino, it.token, push_item, &p);
		free(it.buf);
		pthread_mutex_lock(&f->lock);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

sfs_filler *sfs_filler_start(struct fuse_session *se, settfs *fs)
{
	sfs_filler *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->se = se;
	f->fs = fs;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (pthread_create(&f->thread, NULL, filler_main, f) != 0) {
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	return f;
}

void sfs_filler_queue(sfs_filler *f, uint64_t ino, uint64_t token, uint64_t off,
		      void *buf, size_t len, size_t skip_from, size_t skip_to)
{
	if (skip_from == 0 && skip_to >= len) {
		free(buf); /* the reply covered everything */
		return;
	}
	pthread_mutex_lock(&f->lock);
	if (f->stop || f->count == SFS_FILL_QUEUE) {
		pthread_mutex_unlock(&f->lock);
		free(buf);
		return;
	}
	fill_item *it = &f->ring[(f->head + f->count) % SFS_FILL_QUEUE];
	it->ino = ino;
	it->token = token;
	it->off = off;
	it->buf = buf;
	it->len = len;
	it->skip_from = skip_from;
	it->skip_to = skip_to;
	f->count++;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

int sfs_filler_has_room(sfs_filler *f)
{
	pthread_mutex_lock(&f->lock);
	int room = !f->stop && f->count < SFS_FILL_QUEUE;
	pthread_mutex_unlock(&f->lock);
	return room;
}

int sfs_filler_stop(sfs_filler *f, void (*unblock)(void *arg), void *arg)
{
	if (!f)
		return 0;
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (sfs_join_bounded(f->thread, 2, unblock, arg, 10) != 0)
		return -1;
	for (; f->count; f->count--) {
		free(f->ring[f->head].buf);
		f->head = (f->head + 1) % SFS_FILL_QUEUE;
	}
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}
