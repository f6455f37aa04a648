/*
 * status.c - the daemon's side of the control path and `settfs status`.
 *
 * A CTL_STATUS reply is a list of records named like "vlog.gc.runs",
 * grouped by their leading parts (so the JSON form nests them), with
 * byte counts in names ending in "bytes", times in "_us" or "_s".  The
 * figures come from counters the engine and the request loop keep with
 * atomics (sett_get_stats, sfs_wire_op_stats): a status request takes
 * no lock a request or a commit holds for long.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fuse_wire.h"
#include "sendctl.h"
#include "scrub.h"
#include "status.h"

struct sfs_control {
	settfs *fs;
	const struct sfs_wire *wire;
	char *store, *mountpoint, *options;
	int64_t started;        /* unix seconds */
	struct timespec t0;     /* CLOCK_MONOTONIC at start */
	ctl_server *server;
	sfs_scrub *scrub;       /* settfs scrub */
};

static void put_level(ctl_buf *b, int l, const sett_level_info *li)
{
	char n[64];
	snprintf(n, sizeof n, "lsm.level.L%d.tables", l);
	ctl_put_u64(b, n, (uint64_t)li->tables);
	snprintf(n, sizeof n, "lsm.level.L%d.bytes", l);
	ctl_put_u64(b, n, li->bytes);
	snprintf(n, sizeof n, "lsm.level.L%d.target_bytes", l);
	ctl_put_u64(b, n, li->target_bytes);
	snprintf(n, sizeof n, "lsm.level.L%d.score", l);
	ctl_put_f64(b, n, li->score);
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

static int fill_status(sfs_control *c, ctl_buf *b)
{
	settfs_stats st;
	int r = settfs_get_stats(c->fs, &st);
	if (r)
		return r;
	const sett_stats *e = &st.engine;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double up = (double)(now.tv_sec - c->t0.tv_sec) + (double)(now.tv_nsec - c->t0.tv_nsec) / 1e9;

	ctl_put_i64(b, "status", 0);
	ctl_put_str(b, "mount.store", c->store);
	ctl_put_str(b, "mount.mountpoint", c->mountpoint);
	ctl_put_str(b, "mount.options", c->options);
	struct sfs_mount_ent *m = malloc(sizeof *m);
	if (m && sfs_mount_find(c->mountpoint, NULL, m) == 0)
		ctl_put_str(b, "mount.kernel_options", m->options);
	free(m);
	ctl_put_u64(b, "mount.pid", (uint64_t)getpid());
	ctl_put_u64(b, "mount.started", (uint64_t)c->started);
	ctl_put_f64(b, "mount.uptime_s", up);
	ctl_put_u64(b, "mount.read_only", (uint64_t)st.read_only);
	ctl_put_u64(b, "mount.degraded", (uint64_t)st.degraded);

	ctl_put_u64(b, "fs.inodes", st.inodes);
	if (st.logical_bytes != UINT64_MAX)
		ctl_put_u64(b, "fs.logical_bytes", st.logical_bytes);
	/* file data as stored (st_blocks), and how much less that is */
	char comp[32];
	ctl_put_str(b, "fs.compression",
		    settfs_compression_name(st.compression, st.compression_level, comp, sizeof comp));
	if (st.stored_bytes != UINT64_MAX) {
		ctl_put_u64(b, "fs.data_stored_bytes", st.stored_bytes);
		ctl_put_f64(b, "fs.compression_ratio", ratio(st.logical_bytes, st.stored_bytes));
	}
	ctl_put_u64(b, "fs.dirty_bytes", st.dirty_bytes);
	ctl_put_u64(b, "fs.chunk_bytes", st.chunk_size);
	ctl_put_u64(b, "fs.written_bytes", e->bytes_written_user);

	ctl_put_u64(b, "space.stored_bytes", e->lsm_bytes + e->vlog_bytes + e->wal_bytes);
	ctl_put_u64(b, "space.disk_bytes", st.space.disk_bytes);
	ctl_put_u64(b, "space.free_bytes", st.space.free_bytes);
	ctl_put_u64(b, "space.reserve_bytes", st.space.reserve);
	ctl_put_u64(b, "space.disk_written_bytes", e->bytes_written_disk);

	ctl_put_u64(b, "vlog.files", (uint64_t)e->vlog_files);
	ctl_put_u64(b, "vlog.bytes", e->vlog_bytes);
	ctl_put_u64(b, "vlog.garbage_bytes", e->vlog_discard_bytes);
	ctl_put_u64(b, "vlog.gc.runs", e->gc_runs);
	ctl_put_u64(b, "vlog.gc.files_deleted", e->gc_files_rewritten);
	ctl_put_u64(b, "vlog.gc.reclaimed_bytes", e->gc_bytes_reclaimed);
	ctl_put_u64(b, "vlog.gc.measured_bytes", e->gc_bytes_measured);
	ctl_put_u64(b, "vlog.gc.rewritten_bytes", e->gc_bytes_rewritten);
	ctl_put_u64(b, "vlog.gc.background_reclaims", e->background_reclaims);
	ctl_put_str(b, "vlog.gc.activity", e->gc_activity);

	ctl_put_u64(b, "lsm.memtables", (uint64_t)e->memtables);
	ctl_put_u64(b, "lsm.memtable_bytes", e->memtable_bytes);
	ctl_put_u64(b, "lsm.wal_bytes", e->wal_bytes);
	ctl_put_u64(b, "lsm.table_bytes", e->lsm_bytes);
	ctl_put_u64(b, "lsm.last_version", e->last_version);
	ctl_put_u64(b, "lsm.damaged_tables", (uint64_t)e->damaged_tables);
	for (int l = 0; l < SETT_MAX_LEVELS; l++)
		put_level(b, l, &e->levels[l]);

	ctl_put_u64(b, "compaction.runs", e->compactions);
	ctl_put_u64(b, "compaction.running", (uint64_t)e->compactions_running);
	ctl_put_u64(b, "compaction.pending", (uint64_t)e->compactions_pending);
	ctl_put_u64(b, "compaction.l0_tables", (uint64_t)e->levels[0].tables);
	ctl_put_u64(b, "compaction.stalls", e->write_stalls);
	ctl_put_f64(b, "compaction.stall_s", (double)e->write_stall_us / 1e6);

	ctl_put_u64(b, "cache.block.hits", e->block_cache_hits);
	ctl_put_u64(b, "cache.block.misses", e->block_cache_misses);
	ctl_put_u64(b, "cache.block.bytes", e->block_cache_bytes);
	ctl_put_f64(b, "cache.block.hit_rate",
		    ratio(e->block_cache_hits, e->block_cache_hits + e->block_cache_misses));

	struct sfs_op_stat ops[SFS_WIRE_NOPS];
	sfs_wire_op_stats(c->wire, ops);
	uint64_t total = 0;
	for (unsigned i = 0; i < SFS_WIRE_NOPS; i++)
		total += ops[i].count;
	ctl_put_u64(b, "fuse.requests", total);
	/* io_uring once a request came through a ring: the kernel does not say before */
	uint64_t ur = __atomic_load_n(&c->wire->uring_requests, __ATOMIC_RELAXED);
	ctl_put_str(b, "fuse.transport", ur ? "io_uring" : "/dev/fuse");
	ctl_put_u64(b, "fuse.async_dio", (uint64_t)__atomic_load_n(&c->wire->async_dio,
								   __ATOMIC_RELAXED));
	if (__atomic_load_n(&c->wire->uring, __ATOMIC_RELAXED)) {
		ctl_put_u64(b, "fuse.uring.queues",
			    __atomic_load_n(&c->wire->uring_queues, __ATOMIC_RELAXED));
		ctl_put_u64(b, "fuse.uring.threads",
			    __atomic_load_n(&c->wire->uring_threads, __ATOMIC_RELAXED));
		ctl_put_u64(b, "fuse.uring.requests", ur);
	}
	for (unsigned i = 0; i < SFS_WIRE_NOPS; i++) {
		const char *name = sfs_wire_op_name(i);
		if (!name || !ops[i].count)
			continue;
		char n[96];
		snprintf(n, sizeof n, "fuse.op.%s.count", name);
		ctl_put_u64(b, n, ops[i].count);
		snprintf(n, sizeof n, "fuse.op.%s.mean_us", name);
		ctl_put_f64(b, n, ratio(ops[i].sum_ns, ops[i].timed) / 1e3);
		snprintf(n, sizeof n, "fuse.op.%s.max_us", name);
		ctl_put_f64(b, n, (double)ops[i].max_ns / 1e3);
	}
	sfs_scrub_summary(c->scrub, b);
	return b->err;
}

/* `sett info` of the mounted store: its text and its --json form. */
static int fill_info(sfs_control *c, ctl_buf *b)
{
	int r = 0;
	ctl_put_i64(b, "status", 0);
	for (int json = 0; json < 2 && r == 0; json++) {
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (!f)
			return -ENOMEM;
		r = cli_info_print(settfs_engine(c->fs), c->store, json, f);
		if (fclose(f) != 0 && r == 0)
			r = -ENOMEM;
		if (r == 0) {
			ctl_put_bytes(b, json ? "json" : "text", text, len);
			r = b->err;
		}
		free(text);
	}
	return r < 0 && r > -4096 ? r : r ? -EIO : 0;
}

struct faults {
	ctl_buf *b;
	uint64_t n;
};

static void on_fault(void *arg, const char *msg)
{
	struct faults *f = arg;
	if (f->n++ < 1000) /* the count says how many more */
		ctl_put_str(f->b, "fault", msg);
}

/* `sett check` of the mounted store: what sett_verify checks of an open store */
static int fill_check(sfs_control *c, ctl_buf *b)
{
	ctl_put_i64(b, "status", 0);
	struct faults f = { b, 0 };
	int r = sett_verify(settfs_engine(c->fs), on_fault, &f);
	if (r && !f.n)
		return r < 0 && r > -4096 ? r : -EIO;
	ctl_put_u64(b, "faults", f.n);
	return b->err;
}

static int handle(void *arg, const ctl_header *h, const uint8_t *body, size_t n, ctl_buf *reply)
{
	switch (h->type) {
	case CTL_STATUS:
		return fill_status(arg, reply);
	case CTL_INFO:
		return fill_info(arg, reply);
	case CTL_CHECK:
		return fill_check(arg, reply);
	case CTL_SNAP_CREATE:
	case CTL_SNAP_LIST:
	case CTL_SNAP_DELETE:
		return sfs_snapctl_handle(((sfs_control *)arg)->fs, h, body, n, reply);
	case CTL_SEND:
		return sfs_sendctl_handle(((sfs_control *)arg)->fs, h, body, n, reply);
	case CTL_SCRUB:
	case CTL_SCRUB_STATUS:
		return sfs_scrub_request(((sfs_control *)arg)->scrub, h, body, n, reply);
	default:
		return -EOPNOTSUPP;
	}
}

/* the -o options of the command line, comma-separated */
static char *options_of(int argc, char **argv)
{
	char *out = strdup("");
	for (int i = 1; out && i < argc; i++) {
		const char *o = !strcmp(argv[i], "-o") && i + 1 < argc ? argv[++i]
			      : !strncmp(argv[i], "-o", 2) ? argv[i] + 2 : NULL;
		char *n;
		if (!o)
			continue;
		if (asprintf(&n, "%s%s%s", out, *out ? "," : "", o) < 0)
			n = NULL;
		free(out);
		out = n;
	}
	return out;
}

sfs_control *sfs_control_start(settfs *fs, const struct sfs_wire *wire, const char *store,
			       const char *mountpoint, int argc, char **argv)
{
	sfs_control *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->fs = fs;
	c->wire = wire;
	c->store = strdup(store);
	c->mountpoint = ctl_path_below(mountpoint); /* not realpath: the mount is ours */
	c->options = options_of(argc, argv);
	c->started = (int64_t)time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	c->scrub = sfs_scrub_new(fs);
	if (!c->store || !c->mountpoint || !c->options || !c->scrub) {
		sfs_control_stop(c);
		return NULL;
	}
	int r = ctl_server_start(store, handle, c, &c->server);
	if (r)
		fprintf(stderr, "settfs: no control path for %s (settfs status, sett info): %s\n",
			store, strerror(-r));
	return c;
}

void sfs_control_stop(sfs_control *c)
{
	if (!c)
		return;
	ctl_server_stop(c->server);
	sfs_scrub_free(c->scrub); /* stops a scrub under way */
	free(c->store);
	free(c->mountpoint);
	free(c->options);
	free(c);
}

ssize_t sfs_control_xattr(sfs_control *c, uid_t uid, char *buf, size_t size)
{
	if (uid != 0 && uid != geteuid())
		return -EACCES; /* as on the control path */
	ctl_buf b = { 0 };
	ctl_begin(&b, CTL_STATUS | CTL_REPLY);
	int r = fill_status(c, &b);
	if (r == 0)
		r = ctl_end(&b);
	char *text = NULL;
	size_t len = 0;
	FILE *f = r ? NULL : open_memstream(&text, &len);
	if (f) {
		r = sfs_status_print(b.p + CTL_HEADER_SIZE, b.n - CTL_HEADER_SIZE, 0, f);
		if (fclose(f) != 0 && r == 0)
			r = -ENOMEM;
	} else if (!r) {
		r = -ENOMEM;
	}
	ctl_buf_free(&b);
	ssize_t n = r ? r : (ssize_t)len;
	if (r == 0 && size && len > size)
		n = -ERANGE;
	else if (r == 0 && size)
		memcpy(buf, text, len);
	free(text);
	return n;
}

/* ---- rendering ------------------------------------------------------- */

static int ends_with(const char *s, const char *t)
{
	size_t a = strlen(s), b = strlen(t);
	return a >= b && strcmp(s + a - b, t) == 0;
}

static void json_str(FILE *out, const uint8_t *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned c = s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc((int)c, out);
	}
	fputc('"', out);
}

/* the number of leading dot-separated parts a and b share */
static int common_parts(const char *a, const char *b)
{
	int k = 0;
	for (size_t i = 0;; i++) {
		int ea = a[i] == '.' || !a[i], eb = b[i] == '.' || !b[i];
		if (ea && eb) {
			if (!a[i] || !b[i])
				return k;
			k++;
			continue;
		}
		if (ea || eb || a[i] != b[i])
			return k;
	}
}

static int count_parts(const char *a)
{
	int k = 1;
	for (; *a; a++)
		k += *a == '.';
	return k;
}

/* part i (0-based) of a dotted name into out */
static const char *part(const char *a, int i, char *out, size_t n)
{
	while (i-- > 0)
		a = strchr(a, '.') + 1;
	size_t len = strcspn(a, ".");
	snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), a);
	return out;
}

static void json_value(FILE *out, const ctl_rec *r)
{
	switch (r->kind) {
	case CTL_U64:
		fprintf(out, "%llu", (unsigned long long)r->u);
		break;
	case CTL_I64:
		fprintf(out, "%lld", (long long)r->i);
		break;
	case CTL_F64:
		if (isfinite(r->f))
			fprintf(out, "%.6g", r->f);
		else
			fputs("null", out);
		break;
	default:
		json_str(out, r->s, r->slen);
	}
}

/*
 * Nested objects from dotted names: records that share leading parts are
 * adjacent (the daemon writes them so); a name that repeats a part
 * already closed, or is a prefix of another, still yields valid JSON
 * (the later key wins in most parsers).
 */
static int print_json(const uint8_t *body, size_t n, FILE *out)
{
	ctl_cursor c;
	ctl_rec r;
	char prev[256] = "";
	int depth = 0, k, first = 1;
	ctl_cursor_init(&c, body, n);
	fputs("{", out);
	while ((k = ctl_next(&c, &r)) == 1) {
		if (r.kind < CTL_U64 || r.kind > CTL_STR || !strcmp(r.name, "status"))
			continue;
		int parts = count_parts(r.name);
		int keep = first ? 0 : common_parts(prev, r.name);
		if (keep > parts - 1)
			keep = parts - 1;
		if (keep > depth)
			keep = depth;
		for (; depth > keep; depth--)
			fputs("}", out);
		if (!first)
			fputs(",", out);
		char p[256];
		for (; depth < parts - 1; depth++) {
			part(r.name, depth, p, sizeof p);
			json_str(out, (const uint8_t *)p, strlen(p));
			fputs(":{", out);
		}
		part(r.name, parts - 1, p, sizeof p);
		json_str(out, (const uint8_t *)p, strlen(p));
		fputs(":", out);
		json_value(out, &r);
		snprintf(prev, sizeof prev, "%s", r.name);
		first = 0;
	}
	for (; depth > 0; depth--)
		fputs("}", out);
	fputs("}\n", out);
	return k < 0 ? k : 0;
}

static void text_value(FILE *out, const char *name, const ctl_rec *r)
{
	char h[32];
	switch (r->kind) {
	case CTL_U64:
		if (ends_with(name, "bytes") && r->u >= 1024) {
			cli_human(h, sizeof h, r->u);
			fprintf(out, "%s (%llu)", h, (unsigned long long)r->u);
		} else if (!strcmp(name, "mount.started")) {
			cli_time(h, sizeof h, r->u); /* a hostile reply's time may be any */
			fputs(h, out);
		} else {
			fprintf(out, "%llu", (unsigned long long)r->u);
		}
		break;
	case CTL_I64:
		fprintf(out, "%lld", (long long)r->i);
		break;
	case CTL_F64:
		if (ends_with(name, "hit_rate"))
			fprintf(out, "%.1f %%", 100 * r->f);
		else
			fprintf(out, "%.6g", r->f);
		break;
	default:
		fprintf(out, "%.*s", (int)r->slen, (const char *)r->s);
	}
}

/* rows of a table in the text form ("fuse.op.write.count": table fuse.op) */
struct table {
	char name[256];     /* "fuse.op"; "" when none is open */
	char row[256];      /* the row being filled */
	char header[1024];  /* its columns, from the first row */
	char line[1024];
	int rows;
};

static void table_flush(struct table *t, FILE *out)
{
	if (t->row[0]) {
		if (!t->rows++)
			fprintf(out, "  %-12s%s\n", strrchr(t->name, '.') + 1, t->header);
		fprintf(out, "  %-12s%s\n", t->row, t->line);
	}
	t->row[0] = t->line[0] = 0;
}

static void table_cell(struct table *t, const char *name, const ctl_rec *r)
{
	char tn[256], row[256], col[256], cell[64];
	part(name, 0, tn, sizeof tn);
	size_t k = strlen(tn);
	snprintf(tn + k, sizeof tn - k, ".%s", part(name, 1, col, sizeof col));
	part(name, 2, row, sizeof row);
	part(name, 3, col, sizeof col);
	if (strcmp(tn, t->name)) {
		snprintf(t->name, sizeof t->name, "%s", tn);
		t->rows = 0;
		t->header[0] = 0;
	}
	if (strcmp(row, t->row)) {
		snprintf(t->row, sizeof t->row, "%s", row);
		t->line[0] = 0;
	}
	if (r->kind == CTL_U64 && ends_with(col, "bytes") && r->u >= 1024)
		cli_human(cell, sizeof cell, r->u);
	else if (r->kind == CTL_U64)
		snprintf(cell, sizeof cell, "%llu", (unsigned long long)r->u);
	else if (r->kind == CTL_I64)
		snprintf(cell, sizeof cell, "%lld", (long long)r->i);
	else if (r->kind == CTL_F64)
		snprintf(cell, sizeof cell, "%.1f", r->f);
	else
		snprintf(cell, sizeof cell, "%.*s", (int)(r->slen < 40 ? r->slen : 40),
			 (const char *)r->s);
	if (!t->rows) {
		k = strlen(t->header);
		snprintf(t->header + k, sizeof t->header - k, " %12s", col);
	}
	k = strlen(t->line);
	snprintf(t->line + k, sizeof t->line - k, " %12s", cell);
}

/*
 * "section" lines, then "  rest.of.name  value"; names of four parts
 * ("lsm.level.L0.tables") as tables, a row per third part.
 */
static int print_text(const uint8_t *body, size_t n, FILE *out)
{
	ctl_cursor c;
	ctl_rec r;
	char section[256] = "";
	struct table t = { "", "", "", "", 0 };
	int k;
	ctl_cursor_init(&c, body, n);
	while ((k = ctl_next(&c, &r)) == 1) {
		if (r.kind < CTL_U64 || r.kind > CTL_STR || !strcmp(r.name, "status"))
			continue;
		char s[256], row[256];
		part(r.name, 0, s, sizeof s);
		int table = count_parts(r.name) == 4;
		if (!table || strcmp(part(r.name, 2, row, sizeof row), t.row))
			table_flush(&t, out);
		if (!table)
			t.name[0] = 0;
		if (strcmp(s, section)) {
			fprintf(out, "%s%s\n", section[0] ? "\n" : "", s);
			snprintf(section, sizeof section, "%s", s);
		}
		if (table) {
			table_cell(&t, r.name, &r);
			continue;
		}
		const char *rest = strchr(r.name, '.');
		fprintf(out, "  %-24s ", rest ? rest + 1 : r.name);
		text_value(out, r.name, &r);
		fputc('\n', out);
	}
	table_flush(&t, out);
	return k < 0 ? k : 0;
}

int sfs_status_print(const uint8_t *body, size_t n, int json, FILE *out)
{
	return json ? print_json(body, n, out) : print_text(body, n, out);
}

/* ---- settfs status ----------------------------------------------------- */

int sfs_status_command(int argc, char **argv)
{
	int json = 0, i = 2;
	if (i < argc && !strcmp(argv[i], "--json")) {
		json = 1;
		i++;
	}
	int help = i + 1 == argc && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"));
	if (!help && i < argc && argv[i][0] == '-') {
		fprintf(stderr, "settfs status: unknown option '%s' (see --help)\n", argv[i]);
		return 1;
	}
	if (help || i + 1 != argc) {
		fprintf(help ? stdout : stderr, "usage: settfs status [--json] MOUNTPOINT\n");
		return !help;
	}
	const char *arg = argv[i];
	char store[4096];
	if (ctl_store_of_mount(arg, store, sizeof store, NULL, 0) != 0) {
		fprintf(stderr, "settfs status: %s: not a settfs mount\n", arg);
		return 1;
	}
	ctl_buf q = { 0 };
	ctl_begin(&q, CTL_STATUS);
	ctl_end(&q);
	uint8_t *body;
	size_t n;
	int r = ctl_call(store, &q, &body, &n);
	ctl_buf_free(&q);
	if (r) {
		fprintf(stderr, "settfs status: %s: %s\n", arg,
			r == -ENOENT    ? "its daemon does not answer (no control path)"
			: r == -EACCES ? "refused: only root and the mount's owner may ask"
			: r == -EPERM  ? "the control endpoint is not served by the store's daemon"
				       : strerror(-r));
		return 2;
	}
	r = sfs_status_print(body, n, json, stdout);
	free(body);
	if (r || fflush(stdout) != 0) {
		fprintf(stderr, "settfs status: %s: %s\n", arg, r ? "malformed reply" : strerror(errno));
		return 2;
	}
	return 0;
}
