/*
 * fuse_uring.c - FUSE requests over io_uring (see fuse_uring.h).
 *
 * The kernel's side is fs/fuse/dev_uring.c.  Each ring entry is two
 * buffers registered with FUSE_IO_URING_CMD_REGISTER: a header (the
 * fuse_in_header or fuse_out_header, the request's first argument - its
 * per-opcode struct, at most 128 bytes - and the entry's commit id and
 * payload size) and a payload (the other arguments: names, data).  The
 * command completes when the kernel has put a request there; the reply
 * goes back in the same buffers with FUSE_IO_URING_CMD_COMMIT_AND_FETCH,
 * which also waits for the next request.  Once every CPU's queue has an
 * entry waiting the kernel sends requests there, to the queue of the CPU
 * the requesting task runs on, and no longer to /dev/fuse.
 *
 * A request is handed to libfuse in the layout of /dev/fuse: header and
 * first argument are copied in front of the payload, into the page the
 * payload buffer leaves free before it, so that data is not copied.
 */
#define FUSE_USE_VERSION 312

#include "fuse_uring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBURING

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "fuse_wire.h"

/* The kernel's ABI (<linux/fuse.h> 7.42), newer than Debian's headers. */
enum { URING_CMD_REGISTER = 1, URING_CMD_COMMIT_AND_FETCH = 2 };
struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* to pass back with the reply */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};
struct uring_req_header {
	char in_out[128]; /* fuse_in_header, then fuse_out_header */
	char op_in[128];  /* the request's first argument */
	struct uring_ent_in_out ent;
};
struct uring_cmd_req { /* in the 80-byte command area of a 128-byte SQE */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

enum { TAG_ENT = 1, TAG_STOP = 2 };
#define FIRST_WORKERS 2 /* per queue, started at INIT */
/*
 * Workers a queue may have beyond max_threads while some of its workers
 * wait for a reply another thread sends (serve): each holds its entry
 * meanwhile, and the request the reply waits for (the write-back of a
 * page) may come to the same queue.
 */
#define WAITING_MAX 256

struct queue {
	sfs_uring *u;
	unsigned qid;
	unsigned nthreads; /* under u->lock */
	unsigned waiting;  /* under u->lock: workers waiting for another thread's reply */
	int idle;          /* workers with an entry waiting for a request (atomic) */
};

struct worker {
	sfs_uring *u;
	struct queue *q;
	pthread_t thread;
	int ring_ok;
	struct io_uring ring;
	char *mem; /* header page, a free page, the payload */
	size_t mem_size;
	struct uring_req_header *hdr;
	char *payload;
	struct iovec iov[2];
	unsigned last_cmd;
	uint64_t commit_id;
	uint64_t unique;  /* the request being served, 0 once answered (atomic) */
	int replied;      /* atomic; set under u->lock by another thread */
	int state;        /* under u->lock: 0 starting, 1 set up, -1 failed */
};

struct sfs_uring {
	struct fuse_session *se;
	int quiet;
	int fd;
	struct sfs_wire *w;
	unsigned nq, max_threads;
	size_t payload;
	size_t page;
	int stop_fd;
	int stop; /* atomic */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* replies from other threads, starts, exits, go */
	int go;              /* under lock: the queues may be registered */
	unsigned live;       /* under lock: worker threads running */
	struct queue *queues;
	struct worker **workers; /* nq * (max_threads + WAITING_MAX) slots */
	unsigned nworkers;       /* atomic: slots filled */
	int said_serving, said_failed; /* atomic */
};

static _Thread_local struct worker *self;

/* The number of queues the kernel makes: one per possible CPU. */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	unsigned hi = 0;
	int ok = 0;
	if (f) {
		char line[256];
		if (fgets(line, sizeof line, f)) {
			/* "0-3" or "0,2-5": the highest number counts */
			for (char *p = line; *p;) {
				if (*p < '0' || *p > '9') {
					p++;
					continue;
				}
				char *end;
				unsigned long v = strtoul(p, &end, 10);
				if (v > hi)
					hi = (unsigned)v;
				ok = 1;
				p = end;
			}
		}
		fclose(f);
	}
	if (ok)
		return hi + 1;
	int n = get_nprocs_conf();
	return n > 0 ? (unsigned)n : 1;
}

static void prep_cmd(struct worker *wk, struct io_uring_sqe *sqe, unsigned cmd)
{
	memset(sqe, 0, 128); /* a 128-byte SQE (IORING_SETUP_SQE128) */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0; /* /dev/fuse, registered as file 0 */
	sqe->cmd_op = cmd;
	if (cmd == URING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)wk->iov;
		sqe->len = 2;
	}
	struct uring_cmd_req *c = (struct uring_cmd_req *)sqe->cmd;
	c->qid = (uint16_t)wk->q->qid;
	c->commit_id = cmd == URING_CMD_COMMIT_AND_FETCH ? wk->commit_id : 0;
	io_uring_sqe_set_data64(sqe, TAG_ENT);
	wk->last_cmd = cmd;
}

/* queue the entry's next command; it goes with the next submit */
static int queue_cmd(struct worker *wk, unsigned cmd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&wk->ring);
	if (!sqe)
		return -EBUSY;
	prep_cmd(wk, sqe, cmd);
	return 0;
}

static void pin(unsigned cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof set, &set); /* best effort: a cpuset may forbid it */
}

/* ring, buffers, /dev/fuse registered, the stop poll queued */
static int worker_setup(struct worker *wk)
{
	sfs_uring *u = wk->u;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = IORING_SETUP_SQE128;
	int r = io_uring_queue_init_params(4, &wk->ring, &p);
	if (r < 0)
		return r;
	wk->ring_ok = 1;
	r = io_uring_register_files(&wk->ring, &u->fd, 1);
	if (r < 0)
		return r;
	wk->mem_size = 2 * u->page + u->payload;
	void *m = mmap(NULL, wk->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	wk->mem = m;
	wk->hdr = m;
	wk->payload = wk->mem + 2 * u->page;
	wk->iov[0].iov_base = wk->hdr;
	wk->iov[0].iov_len = sizeof *wk->hdr;
	wk->iov[1].iov_base = wk->payload;
	wk->iov[1].iov_len = u->payload;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&wk->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, u->stop_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_STOP);
	return 0;
}

/* the reply (header in oh, body in `len` bytes at the payload) is in place */
static void set_reply(struct worker *wk, const struct fuse_out_header *oh, size_t len)
{
	memcpy(wk->hdr->in_out, oh, sizeof *oh);
	wk->hdr->ent.payload_sz = (uint32_t)len;
}

static void reply_status(struct worker *wk, uint64_t unique, int error)
{
	struct fuse_out_header oh = { sizeof oh, error, unique };
	__atomic_store_n(&wk->unique, 0, __ATOMIC_RELEASE);
	set_reply(wk, &oh, 0);
	__atomic_store_n(&wk->replied, 1, __ATOMIC_RELEASE);
}

static int start_worker(sfs_uring *u, struct queue *q);
static void add_worker(struct queue *q);

/* Hands the request in the entry to libfuse; returns once it is answered. */
static void serve(struct worker *wk)
{
	sfs_uring *u = wk->u;
	struct fuse_in_header in;
	struct uring_ent_in_out e;
	memcpy(&in, wk->hdr->in_out, sizeof in);
	memcpy(&e, &wk->hdr->ent, sizeof e);
	wk->commit_id = e.commit_id;
	__atomic_store_n(&wk->replied, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&wk->unique, in.unique, __ATOMIC_RELEASE);
	size_t hs = sizeof in, pl = e.payload_sz;
	size_t op = in.len >= hs + pl ? in.len - hs - pl : SIZE_MAX;
	if (pl > u->payload || op > sizeof wk->hdr->op_in) {
		fprintf(stderr, "settfs: io_uring: malformed request (opcode %u, %u bytes, "
				"payload %zu): failed with EIO\n", in.opcode, in.len, pl);
		reply_status(wk, in.unique, -EIO);
		return;
	}
	if (__atomic_fetch_add(&u->w->uring_requests, 1, __ATOMIC_RELAXED) == 0 && !u->quiet &&
	    !__atomic_exchange_n(&u->said_serving, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "settfs: serving requests through io_uring (%u queues)\n", u->nq);
	char *m = wk->payload - hs - op;
	memcpy(m, &in, hs);
	memcpy(m + hs, wk->hdr->op_in, op);
	ssize_t n = sfs_wire_received(m, (ssize_t)(hs + op + pl), u->w);
	struct fuse_buf fb;
	memset(&fb, 0, sizeof fb);
	fb.mem = m;
	fb.size = (size_t)n;
	fuse_session_process_buf(u->se, &fb);
	if (__atomic_load_n(&wk->replied, __ATOMIC_ACQUIRE))
		return;
	switch (in.opcode) {
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
	case FUSE_NOTIFY_REPLY:
		/* no reply, but the entry comes back only with a commit */
		if (__atomic_load_n(&wk->unique, __ATOMIC_ACQUIRE) == in.unique)
			reply_status(wk, in.unique, 0);
		return;
	}
	/*
	 * Answered later by another thread (fuse_inval.h), maybe only once a
	 * request to this queue has been served: this worker does not count
	 * against max_threads while it waits.
	 */
	pthread_mutex_lock(&u->lock);
	wk->q->waiting++;
	if (__atomic_load_n(&wk->q->idle, __ATOMIC_ACQUIRE) <= 0)
		add_worker(wk->q);
	while (!__atomic_load_n(&wk->replied, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&u->cond, &u->lock);
	wk->q->waiting--;
	pthread_mutex_unlock(&u->lock);
}

/* Under u->lock: one more worker for q, if it may have one. */
static void add_worker(struct queue *q)
{
	sfs_uring *u = q->u;
	if (!__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE) &&
	    q->nthreads - q->waiting < u->max_threads && q->nthreads < u->max_threads + WAITING_MAX)
		start_worker(u, q);
}

static void say_failed(sfs_uring *u, const char *what, int err)
{
	if (!__atomic_exchange_n(&u->said_failed, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "settfs: io_uring: %s: %s; requests go through /dev/fuse\n", what,
			strerror(-err));
}

/* a worker took a request: if it was the queue's last one waiting, add one */
static void took_request(struct worker *wk)
{
	sfs_uring *u = wk->u;
	if (__atomic_sub_fetch(&wk->q->idle, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	pthread_mutex_lock(&u->lock);
	add_worker(wk->q);
	pthread_mutex_unlock(&u->lock);
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	sfs_uring *u = wk->u;
	pin(wk->q->qid);
	int r = worker_setup(wk);
	pthread_mutex_lock(&u->lock);
	wk->state = r == 0 ? 1 : -1;
	pthread_cond_broadcast(&u->cond);
	while (r == 0 && !u->go && !__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE))
		pthread_cond_wait(&u->cond, &u->lock);
	pthread_mutex_unlock(&u->lock);
	if (r) {
		say_failed(u, "setting up a queue", r);
		goto out;
	}
	self = wk;
	queue_cmd(wk, URING_CMD_REGISTER);
	__atomic_add_fetch(&wk->q->idle, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE)) {
		r = io_uring_submit_and_wait(&wk->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN) {
			say_failed(u, "waiting for a request", r);
			break;
		}
		struct io_uring_cqe *cqe;
		if (io_uring_peek_cqe(&wk->ring, &cqe) != 0)
			continue;
		uint64_t tag = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&wk->ring, cqe);
		if (tag == TAG_STOP)
			break;
		if (res == -EINTR || res == -EAGAIN) {
			queue_cmd(wk, wk->last_cmd);
			continue;
		}
		if (res < 0) {
			/* ENOTCONN, ECONNABORTED: the connection ended (unmounted, aborted) */
			if (res != -ENOTCONN && res != -ECONNABORTED && res != -ECANCELED)
				say_failed(u, wk->last_cmd == URING_CMD_REGISTER
						      ? "registering a queue" : "a reply",
					   res);
			break;
		}
		took_request(wk);
		serve(wk);
		queue_cmd(wk, URING_CMD_COMMIT_AND_FETCH);
		if (__atomic_load_n(&u->stop, __ATOMIC_ACQUIRE)) {
			io_uring_submit(&wk->ring); /* the reply; no further request */
			break;
		}
		__atomic_add_fetch(&wk->q->idle, 1, __ATOMIC_ACQ_REL);
	}
	self = NULL;
out:
	pthread_mutex_lock(&u->lock);
	u->live--;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* Under u->lock.  The thread sets itself up; 0 if it was started. */
static int start_worker(sfs_uring *u, struct queue *q)
{
	unsigned i = __atomic_load_n(&u->nworkers, __ATOMIC_ACQUIRE);
	if (i >= u->nq * (u->max_threads + WAITING_MAX))
		return -ENOSPC;
	struct worker *wk = calloc(1, sizeof *wk);
	if (!wk)
		return -ENOMEM;
	wk->u = u;
	wk->q = q;
	/* no signals: libfuse's loop takes them */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = pthread_create(&wk->thread, NULL, worker_main, wk);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		free(wk);
		return -r;
	}
	u->workers[i] = wk;
	__atomic_store_n(&u->nworkers, i + 1, __ATOMIC_RELEASE);
	q->nthreads++;
	u->live++;
	__atomic_add_fetch(&u->w->uring_threads, 1, __ATOMIC_RELAXED);
	return 0;
}

sfs_uring *sfs_uring_new(struct fuse_session *se, int fd, struct sfs_wire *w,
			 unsigned max_threads, int quiet, char *why, size_t why_size)
{
	sfs_uring *u = calloc(1, sizeof *u);
	if (!u) {
		snprintf(why, why_size, "%s", strerror(ENOMEM));
		return NULL;
	}
	u->se = se;
	u->quiet = quiet;
	u->fd = fd;
	u->w = w;
	u->nq = possible_cpus();
	u->max_threads = max_threads < FIRST_WORKERS ? FIRST_WORKERS : max_threads;
	long pg = sysconf(_SC_PAGESIZE);
	u->page = pg > 0 ? (size_t)pg : 4096;
	u->stop_fd = eventfd(0, EFD_CLOEXEC);
	u->queues = calloc(u->nq, sizeof *u->queues);
	u->workers = calloc((size_t)u->nq * (u->max_threads + WAITING_MAX), sizeof *u->workers);
	if (u->stop_fd < 0 || !u->queues || !u->workers) {
		snprintf(why, why_size, "%s", strerror(u->stop_fd < 0 ? errno : ENOMEM));
		if (u->stop_fd >= 0)
			close(u->stop_fd);
		free(u->queues);
		free(u->workers);
		free(u);
		return NULL;
	}
	for (unsigned i = 0; i < u->nq; i++) {
		u->queues[i].qid = i;
		u->queues[i].u = u;
	}
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	return u;
}

static void join_all(sfs_uring *u)
{
	unsigned n = __atomic_load_n(&u->nworkers, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++)
		if (u->workers[i]->thread) {
			pthread_join(u->workers[i]->thread, NULL);
			u->workers[i]->thread = 0;
		}
}

int sfs_uring_prepare(void *arg, int offered, size_t payload)
{
	sfs_uring *u = arg;
	if (!offered && u->quiet)
		return -1;
	if (!offered) {
		FILE *f = fopen("/sys/module/fuse/parameters/enable_uring", "r");
		int c = f ? fgetc(f) : EOF;
		if (f)
			fclose(f);
		fprintf(stderr, "settfs: the kernel does not offer FUSE over io_uring (%s); "
				"requests go through /dev/fuse\n",
			c == 'N' ? "/sys/module/fuse/parameters/enable_uring is N"
				 : c == EOF ? "its fuse module has no enable_uring parameter"
					    : "its FUSE protocol is older than 7.42");
		return -1;
	}
	u->payload = payload;
	pthread_mutex_lock(&u->lock);
	int r = 0;
	for (unsigned q = 0; q < u->nq && r == 0; q++)
		for (unsigned i = 0; i < FIRST_WORKERS && r == 0; i++)
			r = start_worker(u, &u->queues[q]);
	/* every one set up, or one failed: else the kernel would wait for a queue forever */
	int failed = r != 0;
	for (;;) {
		unsigned n = __atomic_load_n(&u->nworkers, __ATOMIC_ACQUIRE), ready = 0;
		for (unsigned i = 0; i < n; i++) {
			failed |= u->workers[i]->state < 0;
			ready += u->workers[i]->state > 0;
		}
		if (failed || ready == n)
			break;
		pthread_cond_wait(&u->cond, &u->lock);
	}
	if (failed) {
		__atomic_store_n(&u->stop, 1, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&u->cond);
	}
	pthread_mutex_unlock(&u->lock);
	if (failed) {
		join_all(u);
		say_failed(u, "setting up the queues", r ? r : -EIO);
		return -1;
	}
	__atomic_store_n(&u->w->uring_queues, u->nq, __ATOMIC_RELAXED);
	return 0;
}

void sfs_uring_go(sfs_uring *u)
{
	pthread_mutex_lock(&u->lock);
	u->go = 1;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

static struct worker *find(sfs_uring *u, uint64_t unique)
{
	unsigned n = __atomic_load_n(&u->nworkers, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++)
		if (__atomic_load_n(&u->workers[i]->unique, __ATOMIC_ACQUIRE) == unique)
			return u->workers[i];
	return NULL;
}

int sfs_uring_reply(void *arg, const struct iovec *iov, int count)
{
	sfs_uring *u = arg;
	struct fuse_out_header oh;
	memcpy(&oh, iov[0].iov_base, sizeof oh);
	struct worker *wk = self;
	int own = wk && __atomic_load_n(&wk->unique, __ATOMIC_ACQUIRE) == oh.unique;
	if (!own && !(wk = find(u, oh.unique)))
		return 0; /* read from /dev/fuse */
	uint64_t expect = oh.unique;
	if (!__atomic_compare_exchange_n(&wk->unique, &expect, 0, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return 0; /* a second reply: /dev/fuse refuses it */
	/* the body: what follows the header, from wherever the iovecs hold it */
	size_t len = 0, skip = sizeof oh;
	for (int i = 0; i < count; i++) {
		const char *p = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		if (skip) {
			size_t k = n < skip ? n : skip;
			p += k;
			n -= k;
			skip -= k;
		}
		if (len + n > u->payload) {
			oh.error = -EIO;
			len = 0;
			break;
		}
		if (n && p != wk->payload + len)
			memmove(wk->payload + len, p, n);
		len += n;
	}
	oh.len = (uint32_t)(sizeof oh + len);
	set_reply(wk, &oh, len);
	if (own) {
		__atomic_store_n(&wk->replied, 1, __ATOMIC_RELEASE);
	} else {
		pthread_mutex_lock(&u->lock);
		__atomic_store_n(&wk->replied, 1, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&u->cond);
		pthread_mutex_unlock(&u->lock);
	}
	return 1;
}

void sfs_uring_stop(sfs_uring *u, void (*unblock)(void *arg), void *arg)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	__atomic_store_n(&u->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	uint64_t one = 1;
	if (write(u->stop_fd, &one, sizeof one) != sizeof one)
		perror("settfs: io_uring stop");
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	int unblocked = 0;
	pthread_mutex_lock(&u->lock);
	while (u->live) {
		if (unblocked) {
			pthread_cond_wait(&u->cond, &u->lock);
		} else if (pthread_cond_timedwait(&u->cond, &u->lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&u->lock);
			if (unblock)
				unblock(arg);
			unblocked = 1;
			pthread_mutex_lock(&u->lock);
		}
	}
	pthread_mutex_unlock(&u->lock);
	join_all(u);
}

void sfs_uring_free(sfs_uring *u)
{
	if (!u)
		return;
	unsigned n = __atomic_load_n(&u->nworkers, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++) {
		struct worker *wk = u->workers[i];
		if (wk->ring_ok)
			io_uring_queue_exit(&wk->ring);
		if (wk->mem)
			munmap(wk->mem, wk->mem_size);
		free(wk);
	}
	close(u->stop_fd);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u->workers);
	free(u->queues);
	free(u);
}

#else /* !HAVE_LIBURING */

sfs_uring *sfs_uring_new(struct fuse_session *se, int fd, struct sfs_wire *w,
			 unsigned max_threads, int quiet, char *why, size_t why_size)
{
	(void)se;
	(void)quiet;
	(void)fd;
	(void)w;
	(void)max_threads;
	snprintf(why, why_size, "this settfs was built without liburing");
	return NULL;
}

int sfs_uring_prepare(void *arg, int offered, size_t payload)
{
	(void)arg;
	(void)offered;
	(void)payload;
	return -1;
}

void sfs_uring_go(sfs_uring *u)
{
	(void)u;
}

int sfs_uring_reply(void *arg, const struct iovec *iov, int count)
{
	(void)arg;
	(void)iov;
	(void)count;
	return 0;
}

void sfs_uring_stop(sfs_uring *u, void (*unblock)(void *arg), void *arg)
{
	(void)u;
	(void)unblock;
	(void)arg;
}

void sfs_uring_free(sfs_uring *u)
{
	(void)u;
}

#endif
