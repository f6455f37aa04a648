/*
 * control.h - the control path of a mounted settfs: a request/response
 * protocol over a Unix socket, served by the daemon on its own thread
 * (`settfs status`, `settfs scrub`, `sett info` of a mounted store).  The wire format is
 * in doc/FORMAT.md ("Control protocol"); who may connect, in doc/settfs.md.
 *
 * The socket lives in the abstract namespace (no file: nothing to create
 * on a read-only store, nothing left behind by a killed daemon), named
 * after the store directory, so a client finds it from the store path or
 * from a mountpoint (its mountinfo source is "settfs:STORE").
 *
 * Messages: a 12-byte header (magic, version, type, body length) and a
 * body of named records (an unsigned or signed integer, a double or a
 * byte string).  The decoder (ctl_header_decode, ctl_next) accepts any
 * bytes without reading past them.
 *
 * This file needs neither FUSE nor the filesystem: the `sett` tool links it.
 */
#ifndef SETTFS_CONTROL_H
#define SETTFS_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_MAGIC "SFSC"
#define CTL_VERSION 1
#define CTL_HEADER_SIZE 12
#define CTL_MAX_REQUEST (64u << 10)  /* a server refuses larger request bodies */
#define CTL_MAX_REPLY (16u << 20)    /* a client refuses larger reply bodies */
#define CTL_REPLY 0x8000u            /* type bit of a reply */

/* Request types (a reply has the request's type | CTL_REPLY). */
enum ctl_type {
	CTL_STATUS = 1, /* live figures of the mount (reply: records, see status.c) */
	CTL_INFO = 2,   /* the text of `sett info` for the store (reply: "text") */
	CTL_CHECK = 3,  /* sett_verify of the open store (reply: "faults", "fault"...) */
	CTL_SNAP_CREATE = 4, /* snapshots (snapctl.c) */
	CTL_SNAP_LIST = 5,
	CTL_SNAP_DELETE = 6,
	CTL_SEND = 7,   /* a send stream of a snapshot, written to the descriptor the
			 * request passes (reply: "records", "bytes"...; sendctl.c) */
	CTL_SCRUB = 10, /* start an online scrub (scrub.h; reply: "status") */
	CTL_SCRUB_STATUS = 11 /* the running or last scrub (reply: "scrub.*", "fault"...) */
};

/* Record kinds. */
enum ctl_kind { CTL_U64 = 1, CTL_I64 = 2, CTL_F64 = 3, CTL_STR = 4 };

typedef struct ctl_header {
	uint16_t version;
	uint16_t type;
	uint32_t len; /* body bytes after the header */
	/* server side: a descriptor the request passed (SCM_RIGHTS), else -1
	 * (the server closes it after the handler); the connection; and a
	 * descriptor that becomes readable when the server is being stopped
	 * (a long handler polls the last two to give up early) */
	int fd;
	int conn;
	int stop;
} ctl_header;

/*
 * 0: `p` (n >= CTL_HEADER_SIZE bytes) is a header of a body of at most
 * `max` bytes; -EPROTO: bad magic or version 0; -EMSGSIZE: body too long;
 * -EINVAL: n too short.
 */
int ctl_header_decode(const uint8_t *p, size_t n, uint32_t max, ctl_header *h);

/* A message being built.  Errors (no memory, a bad name) stick in err. */
typedef struct ctl_buf {
	uint8_t *p;
	size_t n, cap;
	int err;
} ctl_buf;

void ctl_begin(ctl_buf *b, uint16_t type); /* empties b, writes the header */
void ctl_put_u64(ctl_buf *b, const char *name, uint64_t v);
void ctl_put_i64(ctl_buf *b, const char *name, int64_t v);
void ctl_put_f64(ctl_buf *b, const char *name, double v);
void ctl_put_str(ctl_buf *b, const char *name, const char *s);
void ctl_put_bytes(ctl_buf *b, const char *name, const void *p, size_t n);
/* Sets the body length; 0 or b->err (-ENOMEM, -EINVAL, -EMSGSIZE). */
int ctl_end(ctl_buf *b);
void ctl_buf_free(ctl_buf *b);

/* One decoded record.  `s` points into the body. */
typedef struct ctl_rec {
	int kind;          /* enum ctl_kind, or an unknown kind (to be skipped) */
	char name[256];    /* NUL-terminated; [A-Za-z0-9_.-], dot-separated parts */
	uint64_t u;        /* CTL_U64 */
	int64_t i;         /* CTL_I64 */
	double f;          /* CTL_F64 */
	const uint8_t *s;  /* CTL_STR (and unknown kinds): the value's bytes */
	size_t slen;
} ctl_rec;

typedef struct ctl_cursor {
	const uint8_t *p;
	size_t n, off;
} ctl_cursor;

void ctl_cursor_init(ctl_cursor *c, const uint8_t *body, size_t n);
/* 1: *r is the next record; 0: end of body; -EPROTO: malformed. */
int ctl_next(ctl_cursor *c, ctl_rec *r);
/* The first record named `name`: 1 found, 0 not, -EPROTO malformed. */
int ctl_find(const uint8_t *body, size_t n, const char *name, ctl_rec *r);

/* The socket address of the daemon serving the store at `store` (a real
 * path): abstract name "settfs/" + 16 hex digits of a hash of the path. */
struct sockaddr_un;
int ctl_address(const char *store, struct sockaddr_un *sa, unsigned *salen);

/* ---- server ---------------------------------------------------------- */

/*
 * Answers one request: fills `reply` (ctl_begin done with the reply type,
 * record "status" I64 0 first is the caller's to add) and returns 0, or
 * returns a negative errno to send as the status of an empty reply.
 */
typedef int (*ctl_handler)(void *arg, const ctl_header *h, const uint8_t *body, size_t n,
			   ctl_buf *reply);

typedef struct ctl_server ctl_server;
/*
 * Listens for the store at `store` and serves requests on a thread of its
 * own, each connection on a thread of its own (at most 4 at once), each
 * read and write bounded by a timeout.  Peers other
 * than root and this process's user are refused (status -EACCES).
 * Fails with -EADDRINUSE when another process serves that name.
 */
int ctl_server_start(const char *store, ctl_handler fn, void *arg, ctl_server **sp);
/* Stops serving; returns once the requests under way have finished. */
void ctl_server_stop(ctl_server *s);

/* ---- client ---------------------------------------------------------- */

/*
 * Sends a request (a built ctl_buf) to the daemon of the store at `store`
 * and reads its reply: 0 and the reply body in *body (malloc'ed) with its
 * "status" record checked: a non-zero status is returned as the result
 * (e.g. -EACCES: refused).  -ENOENT: no daemon serves the store.  The
 * server must be the process that holds the store's lock.
 */
int ctl_call(const char *store, const ctl_buf *req, uint8_t **body, size_t *n);
/*
 * ctl_call that passes the descriptor fd (>= 0) with the request
 * (SCM_RIGHTS) and waits up to timeout_s seconds (0: as long as it takes)
 * for the reply.
 */
int ctl_call_fd(const char *store, const ctl_buf *req, int fd, int timeout_s, uint8_t **body,
		size_t *n);

/*
 * The store directory of the settfs mount at `path` (the topmost mount
 * there in /proc/self/mountinfo; `path` is resolved without touching the
 * mount itself, whose daemon may not answer).  0, or -ENOENT: not a
 * settfs mount.  *mountpoint (if not NULL) gets the mount's path.
 */
int ctl_store_of_mount(const char *path, char *store, size_t n, char *mountpoint, size_t mn);
/* `path` made absolute with its directory resolved and its last part kept
 * (a mount there is not looked into); malloc'ed, NULL on failure. */
char *ctl_path_below(const char *path);

/*
 * The topmost mount in /proc/self/mountinfo whose mountpoint is
 * `mountpoint` (a real path) or, with mountpoint NULL, whose source is
 * `source`, or with both NULL, of the device m->maj:m->min.  0 if found.
 */
struct sfs_mount_ent {
	unsigned maj, min;
	char mountpoint[4096];
	char source[4096]; /* "settfs:STORE" for a settfs mount */
	char options[1024]; /* the mount's options (field 6) */
};
int sfs_mount_find(const char *mountpoint, const char *source, struct sfs_mount_ent *m);

#endif
