/*
 * control.c - the control protocol's codec, server and client (control.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "sett.h"

/* ---- codec ----------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int ctl_header_decode(const uint8_t *p, size_t n, uint32_t max, ctl_header *h)
{
	if (n < CTL_HEADER_SIZE)
		return -EINVAL;
	if (memcmp(p, CTL_MAGIC, 4) != 0)
		return -EPROTO;
	h->version = get16(p + 4);
	h->type = get16(p + 6);
	h->len = get32(p + 8);
	h->fd = h->conn = h->stop = -1;
	if (h->version == 0)
		return -EPROTO;
	if (h->len > max)
		return -EMSGSIZE;
	return 0;
}

static int grow(ctl_buf *b, size_t more)
{
	if (b->err)
		return b->err;
	if (more > CTL_MAX_REPLY || b->n + more > CTL_HEADER_SIZE + (size_t)CTL_MAX_REPLY)
		return b->err = -EMSGSIZE;
	if (b->n + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

void ctl_begin(ctl_buf *b, uint16_t type)
{
	b->n = 0;
	b->err = 0;
	if (grow(b, CTL_HEADER_SIZE))
		return;
	memcpy(b->p, CTL_MAGIC, 4);
	put16(b->p + 4, CTL_VERSION);
	put16(b->p + 6, type);
	put32(b->p + 8, 0);
	b->n = CTL_HEADER_SIZE;
}

/* [A-Za-z0-9_-] parts joined by single dots, 1..255 bytes */
static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 255 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.'
			     : !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				 (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void put_rec(ctl_buf *b, int kind, const char *name, const void *v, size_t vn)
{
	size_t nn = strlen(name);
	if (b->err)
		return;
	if (!name_ok(name, nn) || vn > UINT32_MAX) {
		b->err = -EINVAL;
		return;
	}
	if (grow(b, 6 + nn + vn))
		return;
	uint8_t *p = b->p + b->n;
	p[0] = (uint8_t)kind;
	p[1] = (uint8_t)nn;
	put32(p + 2, (uint32_t)vn);
	memcpy(p + 6, name, nn);
	if (vn)
		memcpy(p + 6 + nn, v, vn);
	b->n += 6 + nn + vn;
}

void ctl_put_u64(ctl_buf *b, const char *name, uint64_t v)
{
	uint8_t e[8];
	put64(e, v);
	put_rec(b, CTL_U64, name, e, 8);
}

void ctl_put_i64(ctl_buf *b, const char *name, int64_t v)
{
	uint8_t e[8];
	put64(e, (uint64_t)v);
	put_rec(b, CTL_I64, name, e, 8);
}

void ctl_put_f64(ctl_buf *b, const char *name, double v)
{
	uint64_t u;
	uint8_t e[8];
	memcpy(&u, &v, 8);
	put64(e, u);
	put_rec(b, CTL_F64, name, e, 8);
}

void ctl_put_bytes(ctl_buf *b, const char *name, const void *p, size_t n)
{
	put_rec(b, CTL_STR, name, p, n);
}

void ctl_put_str(ctl_buf *b, const char *name, const char *s)
{
	put_rec(b, CTL_STR, name, s ? s : "", s ? strlen(s) : 0);
}

int ctl_end(ctl_buf *b)
{
	if (b->err)
		return b->err;
	if (b->n < CTL_HEADER_SIZE)
		return b->err = -EINVAL;
	put32(b->p + 8, (uint32_t)(b->n - CTL_HEADER_SIZE));
	return 0;
}

void ctl_buf_free(ctl_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

void ctl_cursor_init(ctl_cursor *c, const uint8_t *body, size_t n)
{
	c->p = body;
	c->n = n;
	c->off = 0;
}

int ctl_next(ctl_cursor *c, ctl_rec *r)
{
	if (c->off >= c->n)
		return 0;
	size_t left = c->n - c->off;
	const uint8_t *p = c->p + c->off;
	if (left < 6)
		return -EPROTO;
	size_t nn = p[1];
	uint32_t vn = get32(p + 2);
	if (nn > left - 6 || vn > left - 6 - nn || !name_ok((const char *)p + 6, nn))
		return -EPROTO;
	memset(r, 0, sizeof *r);
	r->kind = p[0];
	memcpy(r->name, p + 6, nn);
	r->name[nn] = 0;
	const uint8_t *v = p + 6 + nn;
	switch (r->kind) {
	case CTL_U64:
	case CTL_I64:
	case CTL_F64:
		if (vn != 8)
			return -EPROTO;
		r->u = get64(v);
		r->i = (int64_t)r->u;
		memcpy(&r->f, &r->u, 8);
		if (r->kind != CTL_U64)
			r->u = 0;
		if (r->kind != CTL_I64)
			r->i = 0;
		if (r->kind != CTL_F64)
			r->f = 0;
		break;
	default: /* CTL_STR, or a kind this version does not know */
		break;
	}
	r->s = v;
	r->slen = vn;
	c->off += 6 + nn + vn;
	return 1;
}

int ctl_find(const uint8_t *body, size_t n, const char *name, ctl_rec *r)
{
	ctl_cursor c;
	ctl_cursor_init(&c, body, n);
	int k;
	while ((k = ctl_next(&c, r)) == 1)
		if (strcmp(r->name, name) == 0)
			return 1;
	return k;
}

int ctl_address(const char *store, struct sockaddr_un *sa, unsigned *salen)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
	for (const unsigned char *c = (const unsigned char *)store; *c; c++)
		h = (h ^ *c) * 0x100000001b3ull;
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	/* sun_path[0] = 0: the abstract namespace */
	int k = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "settfs/%016llx",
			 (unsigned long long)h);
	*salen = (unsigned)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)k);
	return 0;
}

/* ---- I/O ------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t k = recv(fd, c, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		if (k == 0)
			return -ECONNRESET;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * The first bytes of a request, with the descriptor it may pass (the
 * ancillary data comes with the first byte): *passed gets it (or -1);
 * further descriptors are closed.
 */
static int recv_first(int fd, void *p, size_t n, int *passed)
{
	*passed = -1;
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} cm;
	struct iovec iov = { p, n };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cm.b;
	m.msg_controllen = sizeof cm.b;
	ssize_t k;
	while ((k = recvmsg(fd, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (k < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int d;
			memcpy(&d, CMSG_DATA(c) + i * sizeof(int), sizeof d);
			if (*passed < 0)
				*passed = d;
			else
				close(d);
		}
	}
	if (k == 0)
		return -ECONNRESET;
	return (size_t)k < n ? read_all(fd, (char *)p + k, n - (size_t)k) : 0;
}

/* Reads one message: header into *h, body (malloc'ed, NUL-terminated) into
 * *body; passed (if not NULL) gets a descriptor sent with it, or -1. */
static int read_msg(int fd, uint32_t max, ctl_header *h, uint8_t **body, int *passed)
{
	uint8_t hb[CTL_HEADER_SIZE];
	int r = passed ? recv_first(fd, hb, sizeof hb, passed) : read_all(fd, hb, sizeof hb);
	if (r == 0)
		r = ctl_header_decode(hb, sizeof hb, max, h);
	if (r)
		return r;
	*body = malloc((size_t)h->len + 1);
	if (!*body)
		return -ENOMEM;
	r = read_all(fd, *body, h->len);
	if (r) {
		free(*body);
		*body = NULL;
		return r;
	}
	(*body)[h->len] = 0;
	return 0;
}

static void set_timeouts(int fd, int secs)
{
	struct timeval tv = { secs, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* ---- server ---------------------------------------------------------- */

#define CTL_MAX_CONNS 4 /* served at once; more wait in the listen queue */

struct ctl_server {
	int lfd;
	int wake[2];
	pthread_t thread;
	ctl_handler fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* a connection ended */
	int active;         /* connection threads running (under mu) */
};

struct conn {
	ctl_server *s;
	int fd;
};

static void reply_error(int fd, uint16_t type, int err)
{
	ctl_buf b = { 0 };
	ctl_begin(&b, (uint16_t)(type | CTL_REPLY));
	ctl_put_i64(&b, "status", err);
	if (err == -EPROTONOSUPPORT)
		ctl_put_u64(&b, "version", CTL_VERSION);
	if (ctl_end(&b) == 0)
		write_all(fd, b.p, b.n);
	ctl_buf_free(&b);
}

static void serve_one(ctl_server *s, int fd)
{
	set_timeouts(fd, 5);
	struct ucred cr;
	socklen_t cl = sizeof cr;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		reply_error(fd, 0, -EACCES);
		return;
	}
	ctl_header h;
	uint8_t *body = NULL;
	int passed = -1;
	int r = read_msg(fd, CTL_MAX_REQUEST, &h, &body, &passed);
	if (r) {
		if (r == -EPROTO || r == -EMSGSIZE)
			reply_error(fd, 0, r);
		if (passed >= 0)
			close(passed);
		return;
	}
	if (h.version != CTL_VERSION || (h.type & CTL_REPLY)) {
		reply_error(fd, h.type & ~CTL_REPLY, h.version != CTL_VERSION ? -EPROTONOSUPPORT
									   : -EINVAL);
		free(body);
		if (passed >= 0)
			close(passed);
		return;
	}
	h.fd = passed;
	h.conn = fd;
	h.stop = s->wake[0];
	ctl_buf b = { 0 };
	ctl_begin(&b, (uint16_t)(h.type | CTL_REPLY));
	r = s->fn(s->arg, &h, body, h.len, &b);
	if (passed >= 0)
		close(passed);
	if (r == 0)
		r = ctl_end(&b);
	if (r)
		reply_error(fd, h.type, r);
	else
		write_all(fd, b.p, b.n);
	ctl_buf_free(&b);
	free(body);
}

/*
 * Closing a Unix socket that still holds unread bytes resets it, and the
 * client would see ECONNRESET instead of the reply sent before (a refusal,
 * a request found malformed): read what is left first, bounded in bytes
 * and time.
 */
static void drain_close(int fd)
{
	shutdown(fd, SHUT_WR);
	set_timeouts(fd, 1);
	char buf[4096];
	for (size_t got = 0; got < 2 * CTL_MAX_REQUEST;) {
		ssize_t k = recv(fd, buf, sizeof buf, 0);
		if (k <= 0 && !(k < 0 && errno == EINTR))
			break;
		got += k > 0 ? (size_t)k : 0;
	}
	close(fd);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	ctl_server *s = c->s;
	serve_one(s, c->fd);
	drain_close(c->fd);
	free(c);
	pthread_mutex_lock(&s->mu);
	s->active--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void *server_main(void *arg)
{
	ctl_server *s = arg;
	for (;;) {
		struct pollfd pf[2] = { { s->lfd, POLLIN, 0 }, { s->wake[0], POLLIN, 0 } };
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* a thread per connection: a long request (a check) does not hold up a status */
		struct conn *c = malloc(sizeof *c);
		pthread_t t;
		pthread_attr_t at;
		int started = 0;
		pthread_mutex_lock(&s->mu);
		while (s->active >= CTL_MAX_CONNS)
			pthread_cond_wait(&s->cv, &s->mu);
		if (c && pthread_attr_init(&at) == 0) {
			pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
			*c = (struct conn){ s, fd };
			started = pthread_create(&t, &at, conn_main, c) == 0;
			pthread_attr_destroy(&at);
		}
		s->active += started;
		pthread_mutex_unlock(&s->mu);
		if (!started) {
			free(c);
			serve_one(s, fd);
			drain_close(fd);
		}
	}
	/* the handler uses what the caller closes after ctl_server_stop */
	pthread_mutex_lock(&s->mu);
	while (s->active)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int ctl_server_start(const char *store, ctl_handler fn, void *arg, ctl_server **sp)
{
	ctl_server *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->fn = fn;
	s->arg = arg;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	struct sockaddr_un sa;
	unsigned salen;
	ctl_address(store, &sa, &salen);
	int r = 0;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, salen) != 0 ||
	    listen(s->lfd, 16) != 0 || pipe2(s->wake, O_CLOEXEC) != 0)
		r = -errno;
	if (r == 0 && (r = -pthread_create(&s->thread, NULL, server_main, s)) == 0) {
		*sp = s;
		return 0;
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return r;
}

void ctl_server_stop(ctl_server *s)
{
	if (!s)
		return;
	char c = 1;
	while (write(s->wake[1], &c, 1) < 0 && errno == EINTR)
		;
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- client ---------------------------------------------------------- */

/* Writes the whole request, passing fd (>= 0) with its first byte. */
static int send_request(int sock, const ctl_buf *req, int fd)
{
	if (fd < 0)
		return write_all(sock, req->p, req->n);
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof cm);
	struct iovec iov = { req->p, req->n };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cm.b;
	m.msg_controllen = sizeof cm.b;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	ssize_t k;
	while ((k = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (k <= 0)
		return k < 0 ? -errno : -EPIPE;
	return (size_t)k < req->n ? write_all(sock, req->p + k, req->n - (size_t)k) : 0;
}

int ctl_call(const char *store, const ctl_buf *req, uint8_t **body, size_t *n)
{
	return ctl_call_fd(store, req, -1, 30, body, n);
}

int ctl_call_fd(const char *store, const ctl_buf *req, int pass, int timeout_s, uint8_t **body,
		size_t *n)
{
	*body = NULL;
	*n = 0;
	if (req->err || req->n < CTL_HEADER_SIZE)
		return req->err ? req->err : -EINVAL;
	struct sockaddr_un sa;
	unsigned salen;
	ctl_address(store, &sa, &salen);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int r = 0;
	if (connect(fd, (struct sockaddr *)&sa, salen) != 0)
		r = errno == ECONNREFUSED ? -ENOENT : -errno;
	/*
	 * Anyone may bind an abstract name: the peer must be the daemon that
	 * holds the store (or, where the holder cannot be told, root or us).
	 */
	struct ucred cr;
	socklen_t cl = sizeof cr;
	if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0)
		r = -errno;
	if (r == 0) {
		long holder = sett_lock_holder(store);
		if (holder ? holder != (long)cr.pid : cr.uid != 0 && cr.uid != geteuid())
			r = -EPERM;
	}
	set_timeouts(fd, timeout_s);
	if (r == 0)
		r = send_request(fd, req, pass);
	ctl_header h;
	uint8_t *b = NULL;
	if (r == 0)
		r = read_msg(fd, CTL_MAX_REPLY, &h, &b, NULL);
	close(fd);
	if (r)
		return r;
	ctl_rec st;
	int k = ctl_find(b, h.len, "status", &st);
	if (!(h.type & CTL_REPLY) || k != 1 || st.kind != CTL_I64)
		r = -EPROTO;
	else if (st.i < 0 && st.i > INT32_MIN)
		r = (int)st.i;
	else if (st.i != 0)
		r = -EPROTO;
	if (r) {
		free(b);
		return r;
	}
	*body = b;
	*n = h.len;
	return 0;
}

/* ---- mounts ---------------------------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unmangle(const char *in, char *out, size_t n)
{
	char *o = out;
	for (const char *c = in; *c && o < out + n - 1; c++) {
		if (c[0] == '\\' && c[1] >= '0' && c[1] <= '3' && c[2] && c[3]) {
			*o++ = (char)((c[1] - '0') * 64 + (c[2] - '0') * 8 + (c[3] - '0'));
			c += 3;
		} else {
			*o++ = *c;
		}
	}
	*o = 0;
}

int sfs_mount_find(const char *mountpoint, const char *source, struct sfs_mount_ent *m)
{
	int found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = malloc(16384);
	while (f && line && fgets(line, 16384, f)) {
		unsigned a, b;
		char mp[4096], src[4096], opts[1024];
		/* id parent major:minor root mountpoint opts [tags] - type source superopts */
		const char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*d %*d %u:%u %*s %4095s %1023s", &a, &b, mp, opts) != 4 ||
		    sscanf(dash, " - %*s %4095s", src) != 1)
			continue;
		struct sfs_mount_ent e = { a, b, "", "", "" };
		unmangle(mp, e.mountpoint, sizeof e.mountpoint);
		unmangle(src, e.source, sizeof e.source);
		snprintf(e.options, sizeof e.options, "%s", opts);
		if (mountpoint ? strcmp(e.mountpoint, mountpoint) == 0
		    : source   ? strcmp(e.source, source) == 0
			       : e.maj == m->maj && e.min == m->min) {
			*m = e;
			found = 1;
		}
	}
	free(line);
	if (f)
		fclose(f);
	return found ? 0 : -1;
}

char *ctl_path_below(const char *path)
{
	char *dup = strdup(path);
	if (!dup)
		return NULL;
	size_t len = strlen(dup);
	while (len > 1 && dup[len - 1] == '/')
		dup[--len] = 0;
	char *slash = strrchr(dup, '/');
	const char *base = slash ? slash + 1 : dup;
	char *full = NULL;
	if (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(dup, "/")) {
		full = realpath(path, NULL); /* "MNT/." and the like */
	} else {
		char *parent;
		if (slash == dup)
			parent = strdup("/");
		else if (slash)
			parent = (*slash = 0, realpath(dup, NULL));
		else
			parent = realpath(".", NULL);
		if (parent && asprintf(&full, "%s%s%s", parent, strcmp(parent, "/") ? "/" : "",
				       base) < 0)
			full = NULL;
		free(parent);
	}
	free(dup);
	return full;
}

int ctl_store_of_mount(const char *path, char *store, size_t n, char *mountpoint, size_t mn)
{
	char *full = ctl_path_below(path);
	struct sfs_mount_ent *m = malloc(sizeof *m);
	int r = -ENOENT;
	if (full && m && sfs_mount_find(full, NULL, m) == 0 &&
	    strncmp(m->source, "settfs:", 7) == 0) {
		snprintf(store, n, "%s", m->source + 7);
		if (mountpoint)
			snprintf(mountpoint, mn, "%s", m->mountpoint);
		r = 0;
	}
	free(m);
	free(full);
	return r;
}
