/*
 * test_control.c - the control protocol (fs/control.h): message round
 * trips, every malformed header and record rejected without reading past
 * the bytes, the JSON form of a reply, and a server that survives hostile
 * clients and refuses other users.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "status.h"
#include "testutil.h"

static void build_sample(ctl_buf *b)
{
	ctl_begin(b, CTL_STATUS | CTL_REPLY);
	ctl_put_i64(b, "status", 0);
	ctl_put_u64(b, "a.b", 1);
	ctl_put_str(b, "a.c", "x\"y");
	ctl_put_f64(b, "d", 2.5);
	ctl_put_i64(b, "e.f.g", -7);
	ctl_put_bytes(b, "e.h", "\0\n", 2);
	ck_assert_int_eq(ctl_end(b), 0);
}

START_TEST(round_trip)
{
	ctl_buf b = { 0 };
	build_sample(&b);
	ctl_header h;
	ck_assert_int_eq(ctl_header_decode(b.p, b.n, CTL_MAX_REPLY, &h), 0);
	ck_assert_uint_eq(h.version, CTL_VERSION);
	ck_assert_uint_eq(h.type, CTL_STATUS | CTL_REPLY);
	ck_assert_uint_eq(h.len, b.n - CTL_HEADER_SIZE);
	ck_assert(memcmp(b.p, "SFSC", 4) == 0);
	ctl_cursor c;
	ctl_rec r;
	ctl_cursor_init(&c, b.p + CTL_HEADER_SIZE, h.len);
	ck_assert_int_eq(ctl_next(&c, &r), 1);
	ck_assert_str_eq(r.name, "status");
	ck_assert_int_eq(r.kind, CTL_I64);
	ck_assert_int_eq(r.i, 0);
	ck_assert_int_eq(ctl_next(&c, &r), 1);
	ck_assert_str_eq(r.name, "a.b");
	ck_assert_int_eq(r.kind, CTL_U64);
	ck_assert_uint_eq(r.u, 1);
	ck_assert_int_eq(ctl_next(&c, &r), 1);
	ck_assert_int_eq(r.kind, CTL_STR);
	ck_assert_uint_eq(r.slen, 3);
	ck_assert(memcmp(r.s, "x\"y", 3) == 0);
	ck_assert_int_eq(ctl_next(&c, &r), 1);
	ck_assert_int_eq(r.kind, CTL_F64);
	ck_assert(r.f == 2.5);
	ck_assert_int_eq(ctl_next(&c, &r), 1);
	ck_assert_int_eq(r.i, -7);
	ck_assert_int_eq(ctl_next(&c, &r), 1);
	ck_assert_uint_eq(r.slen, 2);
	ck_assert_int_eq(ctl_next(&c, &r), 0);
	ck_assert_int_eq(ctl_find(b.p + CTL_HEADER_SIZE, h.len, "d", &r), 1);
	ck_assert_int_eq(ctl_find(b.p + CTL_HEADER_SIZE, h.len, "nothing", &r), 0);
	ctl_buf_free(&b);
}
END_TEST

START_TEST(bad_names_refused)
{
	static const char *bad[] = { "", ".a", "a.", "a..b", "a b", "a\"b", "a/b", "\xc3\xa9" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ctl_buf b = { 0 };
		ctl_begin(&b, CTL_STATUS);
		ctl_put_u64(&b, bad[i], 1);
		ck_assert_int_eq(ctl_end(&b), -EINVAL);
		ctl_buf_free(&b);
	}
	char longname[300];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	ctl_buf b = { 0 };
	ctl_begin(&b, CTL_STATUS);
	ctl_put_u64(&b, longname, 1);
	ck_assert_int_eq(ctl_end(&b), -EINVAL);
	ctl_buf_free(&b);
}
END_TEST

START_TEST(headers_checked)
{
	ctl_buf b = { 0 };
	build_sample(&b);
	ctl_header h;
	for (size_t n = 0; n < CTL_HEADER_SIZE; n++)
		ck_assert_int_eq(ctl_header_decode(b.p, n, CTL_MAX_REPLY, &h), -EINVAL);
	ck_assert_int_eq(ctl_header_decode(b.p, b.n, (uint32_t)(b.n - CTL_HEADER_SIZE) - 1, &h),
			 -EMSGSIZE);
	for (int i = 0; i < 4; i++) {
		b.p[i] ^= 0x20;
		ck_assert_int_eq(ctl_header_decode(b.p, b.n, CTL_MAX_REPLY, &h), -EPROTO);
		b.p[i] ^= 0x20;
	}
	b.p[4] = b.p[5] = 0; /* version 0 */
	ck_assert_int_eq(ctl_header_decode(b.p, b.n, CTL_MAX_REPLY, &h), -EPROTO);
	ctl_buf_free(&b);
}
END_TEST

/* decodes a whole body: the number of records, or the error */
static int walk(const uint8_t *p, size_t n)
{
	ctl_cursor c;
	ctl_rec r;
	int k, recs = 0;
	ctl_cursor_init(&c, p, n);
	while ((k = ctl_next(&c, &r)) == 1)
		recs++;
	return k < 0 ? k : recs;
}

START_TEST(truncations_and_damage_rejected)
{
	ctl_buf b = { 0 };
	build_sample(&b);
	const uint8_t *body = b.p + CTL_HEADER_SIZE;
	size_t n = b.n - CTL_HEADER_SIZE;
	ck_assert_int_eq(walk(body, n), 6);
	/* each cut is an exact copy on the heap: ASan sees any read past it */
	int clean = 0;
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		memcpy(p, body, cut);
		int k = walk(p, cut);
		ck_assert(k == -EPROTO || (k >= 0 && k < 6));
		clean += k >= 0;
		free(p);
	}
	ck_assert_int_eq(clean, 6); /* only at record boundaries (and 0) */
	/* every single byte changed: decodes or is refused, never more records */
	uint64_t state = 3;
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = malloc(n);
		memcpy(p, body, n);
		p[i] = (uint8_t)tu_rand(&state);
		int k = walk(p, n);
		ck_assert(k == -EPROTO || (k >= 1 && k <= 6));
		free(p);
	}
	ctl_buf_free(&b);
}
END_TEST

START_TEST(fixed_sizes_and_unknown_kinds)
{
	/* kind 1 with a 4-byte value: refused; kind 9: skipped */
	uint8_t bad[] = { 1, 1, 4, 0, 0, 0, 'x', 1, 2, 3, 4 };
	ck_assert_int_eq(walk(bad, sizeof bad), -EPROTO);
	uint8_t unk[] = { 9, 1, 2, 0, 0, 0, 'x', 1, 2, 1, 1, 8, 0, 0, 0, 'y', 5, 0, 0, 0, 0, 0, 0, 0 };
	ck_assert_int_eq(walk(unk, sizeof unk), 2);
	ctl_rec r;
	ck_assert_int_eq(ctl_find(unk, sizeof unk, "y", &r), 1);
	ck_assert_uint_eq(r.u, 5);
	/* a length that wraps past the end */
	uint8_t wrap[] = { 4, 1, 0xff, 0xff, 0xff, 0xff, 'x' };
	ck_assert_int_eq(walk(wrap, sizeof wrap), -EPROTO);
}
END_TEST

START_TEST(json_form)
{
	ctl_buf b = { 0 };
	build_sample(&b);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_int_eq(sfs_status_print(b.p + CTL_HEADER_SIZE, b.n - CTL_HEADER_SIZE, 1, f), 0);
	fclose(f);
	ck_assert_str_eq(text, "{\"a\":{\"b\":1,\"c\":\"x\\\"y\"},\"d\":2.5,"
			       "\"e\":{\"f\":{\"g\":-7},\"h\":\"\\u0000\\u000a\"}}\n");
	free(text);
	ctl_buf_free(&b);
}
END_TEST

/* ---- server ---- */

static int slow_pipe[2];

static int echo(void *arg, const ctl_header *h, const uint8_t *body, size_t n, ctl_buf *reply)
{
	(void)arg;
	if (h->type == 7)
		return -ENOSPC;
	if (h->type == 9) { /* writes to the descriptor the request passed */
		if (h->fd < 0)
			return -EBADF;
		ck_assert_int_eq(write(h->fd, "through the fd", 14), 14);
	}
	if (h->type == 8) { /* a long request: waits for a byte on slow_pipe */
		char c;
		ck_assert_int_eq(read(slow_pipe[0], &c, 1), 1);
	}
	ctl_put_i64(reply, "status", 0);
	ctl_put_bytes(reply, "echo", body, n);
	return 0;
}

/* raw bytes to the server; the status of its reply (or a connection error) */
static int raw(const char *store, const void *p, size_t n)
{
	struct sockaddr_un sa;
	unsigned salen;
	ctl_address(store, &sa, &salen);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, salen), 0);
	if (n)
		ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	shutdown(fd, SHUT_WR);
	uint8_t buf[4096];
	size_t got = 0;
	ssize_t k;
	while ((k = read(fd, buf + got, sizeof buf - got)) > 0)
		got += (size_t)k;
	close(fd);
	ctl_header h;
	ctl_rec r;
	if (ctl_header_decode(buf, got, sizeof buf, &h) != 0 || got < CTL_HEADER_SIZE + h.len)
		return -ECONNRESET;
	ck_assert_int_eq(ctl_find(buf + CTL_HEADER_SIZE, h.len, "status", &r), 1);
	return (int)r.i;
}

static void *slow_call(void *arg)
{
	ctl_buf q = { 0 };
	uint8_t *body;
	size_t n;
	ctl_begin(&q, 8);
	ctl_end(&q);
	int r = ctl_call(arg, &q, &body, &n);
	if (r == 0)
		free(body);
	ctl_buf_free(&q);
	return r ? (void *)1 : NULL;
}

/* A descriptor passed with a request reaches the handler, and is closed after it. */
START_TEST(server_takes_a_passed_descriptor)
{
	char *store = tu_tmpdir("control-fd");
	ctl_server *s;
	ck_assert_int_eq(ctl_server_start(store, echo, NULL, &s), 0);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ctl_buf q = { 0 };
	ctl_begin(&q, 9);
	ctl_put_str(&q, "name", "x");
	ck_assert_int_eq(ctl_end(&q), 0);
	uint8_t *body;
	size_t n;
	ck_assert_int_eq(ctl_call_fd(store, &q, p[1], 0, &body, &n), 0);
	free(body);
	ck_assert_int_eq(ctl_call(store, &q, &body, &n), -EBADF);
	close(p[1]);
	char buf[64];
	ssize_t k = read(p[0], buf, sizeof buf); /* EOF after it: the server closed its copy */
	ck_assert_int_eq(k, 14);
	ck_assert_int_eq(memcmp(buf, "through the fd", 14), 0);
	ck_assert_int_eq(read(p[0], buf, sizeof buf), 0);
	close(p[0]);
	ctl_buf_free(&q);
	ctl_server_stop(s);
	tu_rmrf(store);
	free(store);
}
END_TEST

START_TEST(server_round_trip_and_hostile_clients)
{
	char *store = tu_tmpdir("control");
	ctl_server *s;
	ck_assert_int_eq(ctl_server_start(store, echo, NULL, &s), 0);
	ctl_server *s2;
	ck_assert_int_eq(ctl_server_start(store, echo, NULL, &s2), -EADDRINUSE);

	ctl_buf q = { 0 };
	ctl_begin(&q, CTL_STATUS);
	ctl_put_str(&q, "name", "snap-1");
	ck_assert_int_eq(ctl_end(&q), 0);
	uint8_t *body;
	size_t n;
	ck_assert_int_eq(ctl_call(store, &q, &body, &n), 0);
	ctl_rec r;
	ck_assert_int_eq(ctl_find(body, n, "echo", &r), 1);
	ck_assert_uint_eq(r.slen, q.n - CTL_HEADER_SIZE);
	free(body);

	/* hostile: garbage, a bad magic, a huge length, a future version, a reply type */
	ck_assert_int_eq(raw(store, "garbage-garbage", 15), -EPROTO);
	uint8_t h[CTL_HEADER_SIZE];
	memcpy(h, q.p, CTL_HEADER_SIZE);
	h[8] = h[9] = h[10] = h[11] = 0xff;
	ck_assert_int_eq(raw(store, h, sizeof h), -EMSGSIZE);
	memcpy(h, q.p, CTL_HEADER_SIZE);
	h[4] = 2;
	h[8] = h[9] = h[10] = h[11] = 0;
	ck_assert_int_eq(raw(store, h, sizeof h), -EPROTONOSUPPORT);
	h[4] = 1;
	h[7] = 0x80;
	ck_assert_int_eq(raw(store, h, sizeof h), -EINVAL);
	/* a short body and a client that hangs up: no reply, server still fine */
	memcpy(h, q.p, CTL_HEADER_SIZE);
	ck_assert_int_eq(raw(store, h, sizeof h), -ECONNRESET);
	ck_assert_int_eq(raw(store, NULL, 0), -ECONNRESET);
	/* a handler's error is the call's result */
	ctl_begin(&q, 7);
	ck_assert_int_eq(ctl_end(&q), 0);
	ck_assert_int_eq(ctl_call(store, &q, &body, &n), -ENOSPC);
	ctl_begin(&q, CTL_INFO);
	ck_assert_int_eq(ctl_end(&q), 0);
	ck_assert_int_eq(ctl_call(store, &q, &body, &n), 0);
	free(body);

	/* a long request does not hold up others */
	ck_assert_int_eq(pipe(slow_pipe), 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, slow_call, store), 0);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(ctl_call(store, &q, &body, &n), 0);
		free(body);
	}
	ck_assert_int_eq(write(slow_pipe[1], "x", 1), 1);
	void *res;
	ck_assert_int_eq(pthread_join(t, &res), 0);
	ck_assert_ptr_null(res);
	close(slow_pipe[0]);
	close(slow_pipe[1]);

	/* another user is refused (root only: it can become one) */
	if (geteuid() == 0) {
		pid_t c = fork();
		if (c == 0) {
			if (setgid(65534) || setuid(65534))
				_exit(3);
			_exit(ctl_call(store, &q, &body, &n) == -EACCES ? 0 : 1);
		}
		int st;
		ck_assert_int_eq(waitpid(c, &st, 0), c);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	ctl_server_stop(s);
	ck_assert_int_eq(ctl_call(store, &q, &body, &n), -ENOENT);
	ctl_buf_free(&q);
	tu_rmrf(store);
	free(store);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("control");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, bad_names_refused);
	tcase_add_test(tc, headers_checked);
	tcase_add_test(tc, truncations_and_damage_rejected);
	tcase_add_test(tc, fixed_sizes_and_unknown_kinds);
	tcase_add_test(tc, json_form);
	tcase_add_test(tc, server_round_trip_and_hostile_clients);
	tcase_add_test(tc, server_takes_a_passed_descriptor);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
