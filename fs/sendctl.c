/*
 * sendctl.c - `settfs send` and `settfs receive`, and the daemon's side of
 * a send (CTL_SEND on the control path, doc/FORMAT.md "Control protocol").
 *
 * The daemon owns the store while it is mounted, so it writes the stream:
 * `settfs send` passes its standard output to it with the request
 * (SCM_RIGHTS), the daemon writes the stream there directly and then
 * replies with the counts.  A client that goes away (its end of the
 * control connection closes) stops the send at the next write.
 * `settfs receive` needs no daemon: it opens the unmounted store itself.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "key.h"
#include "send.h"
#include "sendctl.h"

/* ---- the daemon ------------------------------------------------------ */

typedef struct fd_writer {
	int fd, conn, stop;
	int kind; /* 0 a file: plain writes; 1 a pipe; 2 a socket */
} fd_writer;

/*
 * Writes to the client's descriptor without ever blocking in a write for
 * long: it waits in poll, where the client going away (its end of the
 * control connection closes) or the daemon stopping ends the send.  A pipe
 * that poll found writable takes at least a page without blocking; a
 * socket is written with MSG_DONTWAIT; a file does not block for long.
 */
static int write_fd(void *arg, const void *p, size_t n)
{
	fd_writer *w = arg;
	const char *c = p;
	while (n) {
		struct pollfd pf[3] = { { w->fd, POLLOUT, 0 }, { w->conn, POLLRDHUP, 0 },
					{ w->stop, POLLIN, 0 } };
		if (poll(pf, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pf[1].revents || pf[2].revents)
			return -ECANCELED; /* the client is gone, or the daemon stops */
		if (!pf[0].revents)
			continue;
		size_t want = w->kind == 1 && n > 4096 ? 4096 : n > (1u << 20) ? 1u << 20 : n;
		ssize_t k = w->kind == 2 ? send(w->fd, c, want, MSG_DONTWAIT | MSG_NOSIGNAL)
					 : write(w->fd, c, want);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return -errno;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static int str_rec(const uint8_t *body, size_t n, const char *name, char *out, size_t max)
{
	ctl_rec r;
	int k = ctl_find(body, n, name, &r);
	if (k < 0)
		return -EPROTO;
	if (k == 0)
		return 0;
	if (r.kind != CTL_STR || r.slen == 0 || r.slen >= max || memchr(r.s, 0, r.slen))
		return -EINVAL;
	memcpy(out, r.s, r.slen);
	out[r.slen] = 0;
	return 1;
}

int sfs_sendctl_handle(settfs *fs, const ctl_header *h, const uint8_t *body, size_t n,
		       ctl_buf *reply)
{
	char name[SETTFS_SNAP_NAME_MAX + 1], from[SETTFS_SNAP_NAME_MAX + 1];
	int k = str_rec(body, n, "name", name, sizeof name);
	if (k <= 0)
		return k < 0 ? k : -EINVAL;
	int inc = str_rec(body, n, "from", from, sizeof from);
	if (inc < 0)
		return inc;
	if (h->fd < 0)
		return -EBADF;
	struct stat st;
	if (fstat(h->fd, &st) != 0)
		return -errno;
	fd_writer w = { h->fd, h->conn, h->stop,
			S_ISFIFO(st.st_mode) ? 1 : S_ISSOCK(st.st_mode) ? 2 : 0 };
	sfs_send_result res;
	int r = settfs_send(fs, name, inc ? from : NULL, write_fd, &w, &res);
	if (r)
		return r;
	ctl_put_i64(reply, "status", 0);
	ctl_put_u64(reply, "records", res.records);
	ctl_put_u64(reply, "deletes", res.deletes);
	ctl_put_u64(reply, "bytes", res.bytes);
	ctl_put_u64(reply, "version", res.meta.version);
	return reply->err;
}

/* ---- settfs send ----------------------------------------------------- */

static const char send_usage[] = "usage: settfs send [-v] [-i FROM] MOUNTPOINT NAME > FILE\n";

int sfs_send_command(int argc, char **argv)
{
	const char *from = NULL;
	int verbose = 0, i = 2;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(send_usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[i], "-i") && i + 1 < argc) {
			from = argv[++i];
		} else {
			fprintf(stderr, "settfs send: %s '%s' (see --help)\n",
				strcmp(argv[i], "-i") ? "unknown option" : "option needs a snapshot name:",
				argv[i]);
			return 1;
		}
	}
	if (i + 2 != argc) {
		fputs(send_usage, stderr);
		return 1;
	}
	const char *mnt = argv[i], *name = argv[i + 1];
	if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "settfs send: standard output is a terminal: redirect the stream "
				"to a file or a pipe\n");
		return 1;
	}
	char store[4096];
	if (ctl_store_of_mount(mnt, store, sizeof store, NULL, 0) != 0) {
		fprintf(stderr, "settfs send: %s: not a settfs mount\n", mnt);
		return 1;
	}
	ctl_buf q = { 0 };
	ctl_begin(&q, CTL_SEND);
	ctl_put_str(&q, "name", name);
	if (from)
		ctl_put_str(&q, "from", from);
	ctl_end(&q);
	uint8_t *body = NULL;
	size_t n = 0;
	int r = ctl_call_fd(store, &q, STDOUT_FILENO, 0, &body, &n);
	if (r == -ENOENT) {
		/* no snapshot of that name, or no daemon at all? */
		ctl_buf s = { 0 };
		ctl_begin(&s, CTL_STATUS);
		ctl_end(&s);
		uint8_t *sb;
		size_t sn;
		int alive = ctl_call(store, &s, &sb, &sn) != -ENOENT;
		if (alive)
			free(sb);
		ctl_buf_free(&s);
		if (!alive)
			r = -ENOTCONN;
	}
	ctl_buf_free(&q);
	if (r) {
		fprintf(stderr, "settfs send: %s: %s\n", mnt,
			r == -ENOTCONN	 ? "its daemon does not answer (no control path)"
			: r == -ENOENT	 ? (from ? "no such snapshot (NAME or FROM)" : "no such snapshot")
			: r == -EIO	 ? "the snapshot is damaged (its pin is gone) or unreadable"
			: r == -EINVAL	 ? "FROM is not older than NAME (or a bad name)"
			: r == -EACCES	 ? "refused: only root and the mount's owner may send"
			: r == -EPERM	 ? "the control endpoint is not served by the store's daemon"
			: r == -EOPNOTSUPP ? "its daemon is older and cannot send"
			: r == -ECANCELED ? "cancelled: the filesystem is being unmounted"
					   : strerror(-r));
		return 2;
	}
	if (verbose) {
		ctl_rec rec;
		uint64_t v[3] = { 0, 0, 0 };
		const char *names[3] = { "records", "deletes", "bytes" };
		for (int j = 0; j < 3; j++)
			if (ctl_find(body, n, names[j], &rec) == 1 && rec.kind == CTL_U64)
				v[j] = rec.u;
		fprintf(stderr, "settfs send: %s%s%s: %llu records (%llu deletes), %llu bytes\n",
			name, from ? " incremental from " : " (full)", from ? from : "",
			(unsigned long long)v[0], (unsigned long long)v[1], (unsigned long long)v[2]);
	}
	free(body);
	return 0;
}

/* ---- settfs receive -------------------------------------------------- */

static long read_stdin(void *arg, void *p, size_t n)
{
	(void)arg;
	for (;;) {
		ssize_t k = read(STDIN_FILENO, p, n);
		if (k >= 0)
			return (long)k;
		if (errno != EINTR)
			return -errno;
	}
}

static const char recv_usage[] =
	"usage: settfs receive [-v] [--key-file F | --passphrase-file F] STORE < FILE\n";

int sfs_receive_command(int argc, char **argv)
{
	const char *key_file = NULL, *pass_file = NULL;
	int verbose = 0, i = 2;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(recv_usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "-v")) {
			verbose = 1;
		} else if (!key_arg(argc, argv, &i, &key_file, &pass_file)) {
			fprintf(stderr, "settfs receive: unknown option '%s' (see --help)\n", argv[i]);
			return 1;
		}
	}
	if (i + 1 != argc || (key_file && pass_file)) {
		fputs(recv_usage, stderr);
		return 1;
	}
	const char *store = argv[i];
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, "settfs receive: standard input is a terminal: give the stream "
				"(settfs send ... |, or < FILE)\n");
		return 1;
	}
	key_material key;
	settfs_options o;
	settfs_options_init(&o);
	if (key_load_options("settfs receive", key_file, pass_file, &key, &o.engine))
		return 2;
	sfs_recv_result *res = malloc(sizeof *res);
	if (!res) {
		key_wipe(&key);
		fprintf(stderr, "settfs receive: %s\n", strerror(ENOMEM));
		return 2;
	}
	int r = sfs_receive(store, &o, read_stdin, NULL, res);
	key_wipe(&key);
	if (r == -EKEYREJECTED)
		snprintf(res->why, sizeof res->why, "%s", key_refused(key_file || pass_file));
	const sfs_send_meta *m = &res->meta;
	if (r) {
		fprintf(stderr, "settfs receive: %s: %s\n", store,
			res->why[0] ? res->why : strerror(-r));
		if (res->changed)
			fprintf(stderr, "settfs receive: %s: the stream was verified and the receive "
					"had begun: run it again with the same stream to finish it (the "
					"store refuses mounting until then)\n", store);
		else
			fprintf(stderr, "settfs receive: %s: nothing was changed\n", store);
		free(res);
		return 2;
	}
	if (verbose)
		fprintf(stderr, "settfs receive: %s: snapshot %s%s%s: %llu records applied%s\n",
			store, m->name, m->from[0] ? " incremental from " : " (full)", m->from,
			(unsigned long long)res->load.applied, res->created ? " (a new store)" : "");
	free(res);
	return 0;
}
