/*
 * send.c - send streams of snapshots and receiving them (send.h).
 */
#include "fs_int.h"
#include "send.h"
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the meta frame -------------------------------------------------- */

size_t sfs_send_meta_encode(const sfs_send_meta *m, uint8_t *out)
{
	size_t l1 = strlen(m->name), l2 = strlen(m->from);
	memset(out, 0, SFS_SEND_FIXED);
	memcpy(out, SFS_SEND_MAGIC, 8);
	sfs_put_be32(out + 8, SFS_SEND_VERSION);
	sfs_put_be32(out + 12, m->flags);
	memcpy(out + 16, m->fs_uuid, 16);
	sfs_put_be32(out + 32, m->chunk_size);
	sfs_put_be32(out + 36, m->fs_version);
	memcpy(out + 40, m->guid, 16);
	sfs_put_be64(out + 56, (uint64_t)m->created_ns);
	sfs_put_be64(out + 64, m->version);
	memcpy(out + 72, m->from_guid, 16);
	sfs_put_be64(out + 88, m->from_version);
	out[96] = (uint8_t)l1;
	out[97] = (uint8_t)l2;
	memcpy(out + SFS_SEND_FIXED, m->name, l1);
	memcpy(out + SFS_SEND_FIXED + l1, m->from, l2);
	return SFS_SEND_FIXED + l1 + l2;
}

static int name_of(const uint8_t *p, size_t n, char *out)
{
	if (memchr(p, 0, n))
		return -EIO;
	memcpy(out, p, n);
	out[n] = 0;
	return sfs_snap_name_ok(out) ? -EIO : 0;
}

int sfs_send_meta_decode(const void *pv, size_t n, sfs_send_meta *m)
{
	const uint8_t *p = pv;
	memset(m, 0, sizeof *m);
	if (n < SFS_SEND_FIXED || memcmp(p, SFS_SEND_MAGIC, 8) != 0 ||
	    sfs_get_be32(p + 8) != SFS_SEND_VERSION || p[98] || p[99])
		return -EIO;
	m->flags = sfs_get_be32(p + 12);
	memcpy(m->fs_uuid, p + 16, 16);
	m->chunk_size = sfs_get_be32(p + 32);
	m->fs_version = sfs_get_be32(p + 36);
	memcpy(m->guid, p + 40, 16);
	m->created_ns = (int64_t)sfs_get_be64(p + 56);
	m->version = sfs_get_be64(p + 64);
	memcpy(m->from_guid, p + 72, 16);
	m->from_version = sfs_get_be64(p + 88);
	size_t l1 = p[96], l2 = p[97];
	static const uint8_t zero[16];
	int inc = (m->flags & SFS_SEND_INCREMENTAL) != 0;
	if ((m->flags & ~SFS_SEND_INCREMENTAL) || n != SFS_SEND_FIXED + l1 + l2 ||
	    m->chunk_size < 4096 || m->chunk_size > (1u << 20) ||
	    (m->chunk_size & (m->chunk_size - 1)) || m->fs_version < SFS_SUPER_MIN_VERSION ||
	    m->fs_version > SFS_SUPER_VERSION || m->version == 0 ||
	    name_of(p + SFS_SEND_FIXED, l1, m->name))
		return -EIO;
	if (!inc)
		return l2 || m->from_version || memcmp(m->from_guid, zero, 16) ? -EIO : 0;
	if (m->from_version == 0 || m->from_version >= m->version ||
	    name_of(p + SFS_SEND_FIXED + l1, l2, m->from))
		return -EIO;
	return 0;
}

int sfs_send_key_ok(sett_val key)
{
	if (key.size == 0)
		return 0;
	uint8_t tag = ((const uint8_t *)key.data)[0];
	return tag != SFS_TAG_SUPER && tag != SFS_TAG_SNAP && tag != SFS_TAG_PROPS;
}

static int key_filter(void *arg, sett_val key)
{
	(void)arg;
	return sfs_send_key_ok(key);
}

/* ---- sending --------------------------------------------------------- */

/* The record of snapshot `name`, refused when damaged (its pin is gone). */
static int snap_info(sett_db *db, const char *name, settfs_snap_info *out)
{
	settfs_snap_info *all;
	size_t n;
	int r = sfs_snap_list(db, &all, &n);
	if (r)
		return r;
	r = -ENOENT;
	for (size_t i = 0; i < n && r == -ENOENT; i++)
		if (!strcmp(all[i].name, name)) {
			*out = all[i];
			r = all[i].damaged ? -EIO : 0;
		}
	free(all);
	return r;
}

static atomic_ulong hold_seq;

/*
 * A pin of the send's own under the snapshot prefix but with a name no
 * snapshot can have ('/'): a send holds what it reads even if the
 * snapshots are deleted meanwhile, and the next writable open releases
 * what a crash left (sfs_snap_tidy).
 */
static void hold_name(char *out, size_t n, unsigned long seq, const char *what)
{
	snprintf(out, n, "%s/send.%ld.%lu.%s", SFS_SNAP_PIN_PREFIX, (long)getpid(), seq, what);
}

int settfs_send(settfs *fs, const char *name, const char *from, sett_write_fn write,
		void *arg, sfs_send_result *res)
{
	memset(res, 0, sizeof *res);
	if (fs->live)
		fs = fs->live;
	sfs_send_meta *m = &res->meta;
	settfs_snap_info s, f;
	sfs_super sb;
	char hn[SETT_MAX_PIN_NAME + 1], hf[SETT_MAX_PIN_NAME + 1];
	unsigned long seq = atomic_fetch_add(&hold_seq, 1);
	hold_name(hn, sizeof hn, seq, "snap");
	hold_name(hf, sizeof hf, seq, "from");
	int held = 0, hold = !fs->read_only;
	pthread_mutex_lock(&fs->snap_mu);
	int r = sfs_snap_name_ok(name) ? -ENOENT : snap_info(fs->db, name, &s);
	if (r == 0 && from)
		r = sfs_snap_name_ok(from) ? -ENOENT : snap_info(fs->db, from, &f);
	if (r == 0 && from && f.version >= s.version)
		r = -EINVAL;
	if (r == 0)
		r = sfs_super_read(fs->db, 0, &sb);
	if (r == 0 && hold && (r = sfs_errno(sett_pin(fs->db, hn, s.version, NULL))) == 0)
		held = 1;
	if (r == 0 && hold && from &&
	    (r = sfs_errno(sett_pin(fs->db, hf, f.version, NULL))) == 0)
		held = 2;
	pthread_mutex_unlock(&fs->snap_mu);
	if (r == 0) {
		m->flags = from ? SFS_SEND_INCREMENTAL : 0;
		memcpy(m->fs_uuid, sb.uuid, 16);
		m->chunk_size = sb.chunk_size;
		m->fs_version = sb.version;
		snprintf(m->name, sizeof m->name, "%s", name);
		memcpy(m->guid, s.guid, 16);
		m->created_ns = s.created_ns;
		m->version = s.version;
		if (from) {
			snprintf(m->from, sizeof m->from, "%s", from);
			memcpy(m->from_guid, f.guid, 16);
			m->from_version = f.version;
		}
		uint8_t meta[SFS_SEND_META_MAX];
		sett_backup_options bo;
		sett_backup_options_init(&bo);
		bo.read_version = s.version;
		bo.since = m->from_version;
		bo.filter = key_filter;
		bo.meta = meta;
		bo.meta_size = sfs_send_meta_encode(m, meta);
		sett_backup_result br;
		r = sett_backup(fs->db, &bo, write, arg, &br);
		res->records = br.records;
		res->deletes = br.deletes;
		res->bytes = br.bytes;
		if (r < -4095) /* else an errno, the writer's too (EPIPE, ECANCELED) */
			r = sfs_errno(r);
	}
	if (held >= 1)
		sett_unpin(fs->db, hn);
	if (held >= 2)
		sett_unpin(fs->db, hf);
	return r;
}

/* ---- receiving ------------------------------------------------------- */

typedef struct recv_ctx {
	sett_db *db;        /* NULL: only check the stream */
	sfs_recv_result *res;
	int has_fs;         /* the target holds a filesystem (a superblock) */
	sfs_super sb;
	int pending;        /* the target carries the rollback marker ... */
	char marker[SETTFS_SNAP_NAME_MAX + 1]; /* ... naming this snapshot */
	char from[SETTFS_SNAP_NAME_MAX + 1];   /* the target's name of the older snapshot */
	int inc;
	int changed;        /* before_apply began changing the target */
	int finish;         /* only the marker was left: the snapshot is there */
	uint64_t next_ino;  /* the target's inode counter before the receive */
} recv_ctx;

static int why(recv_ctx *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int why(recv_ctx *c, int err, const char *fmt, ...)
{
	if (!c->res->why[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->res->why, sizeof c->res->why, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* What the target must be for this stream (checked before anything changes). */
static int check_target(recv_ctx *c)
{
	const sfs_send_meta *m = &c->res->meta;
	settfs_snap_info *all;
	size_t n;
	int r = sfs_snap_list(c->db, &all, &n);
	if (r)
		return why(c, r, "the target's snapshots cannot be read: %s", strerror(-r));
	const settfs_snap_info *same = NULL, *from = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(all[i].name, m->name))
			same = &all[i];
		if (c->inc && !memcmp(all[i].guid, m->from_guid, 16))
			from = &all[i];
	}
	if (from)
		snprintf(c->from, sizeof c->from, "%s", from->name);
	int from_damaged = from && from->damaged;
	int same_guid = same && !memcmp(same->guid, m->guid, 16);
	free(all);
	if (same && same_guid && c->pending) {
		/* cut off between recreating the snapshot and clearing the marker */
		c->finish = 1;
		return 0;
	}
	if (same)
		return why(c, -EEXIST, "the target already holds a snapshot named '%s'%s", m->name,
			   same_guid ? " (this stream was received before)" : "");
	/* formats 3 and 4 hold the same keys (4: chunks may be compressed) */
	int compat = c->sb.version == m->fs_version ||
		     (c->sb.version >= 3 && m->fs_version >= 3);
	if (c->has_fs && (c->sb.chunk_size != m->chunk_size || !compat))
		return why(c, -EINVAL,
			   "the target's chunk size or format (%u, %u) differs from the stream's "
			   "(%u, %u)",
			   c->sb.chunk_size, c->sb.version, m->chunk_size, m->fs_version);
	if (!c->inc) {
		/* a store that holds a filesystem takes a full stream only to
		 * finish the receive of that same snapshot */
		if (c->has_fs && !(c->pending && !strcmp(c->marker, m->name)))
			return why(c, -EEXIST,
				   "the target already holds a filesystem: a full stream goes into "
				   "a new or empty store (or send an incremental)");
		return 0;
	}
	if (!c->has_fs)
		return why(c, -ENOENT,
			   "an incremental stream (from '%s') needs a target that holds that "
			   "snapshot; this one holds no filesystem (receive a full stream first)",
			   m->from);
	if (!from)
		return why(c, -ENOENT,
			   "the target holds no snapshot with the guid of '%s', which this "
			   "incremental stream starts from",
			   m->from);
	if (from_damaged)
		return why(c, -EIO, "the target's snapshot '%s' is damaged (its pin is gone)",
			   c->from);
	if (c->pending && strcmp(c->marker, c->from))
		return why(c, -EUCLEAN,
			   "the target has an interrupted rollback or receive of snapshot '%s': "
			   "finish that first",
			   c->marker);
	return 0;
}

static int on_meta(void *arg, const void *meta, size_t n, const sett_load_result *lr)
{
	recv_ctx *c = arg;
	sfs_send_meta *m = &c->res->meta;
	if (!meta)
		return why(c, -EINVAL, "not a settfs send stream (a sett backup stream without "
				       "the send header)");
	if (sfs_send_meta_decode(meta, n, m))
		return why(c, -EIO, "not a settfs send stream, or of an unknown version (a bad "
				    "send header)");
	c->inc = (m->flags & SFS_SEND_INCREMENTAL) != 0;
	if (lr->since != m->from_version || lr->version != m->version)
		return why(c, -EIO, "the stream's versions (%llu..%llu) disagree with its send "
				    "header",
			   (unsigned long long)lr->since, (unsigned long long)lr->version);
	return c->db ? check_target(c) : 0;
}

static int on_record(void *arg, const sett_kv *kv)
{
	recv_ctx *c = arg;
	if (!sfs_send_key_ok(kv->key))
		return why(c, -EIO, "the stream carries a key no send stream may hold (tag %#x)",
			   kv->key.size ? ((const uint8_t *)kv->key.data)[0] : 0);
	if (kv->deleted && !c->inc)
		return why(c, -EIO, "a full stream carries a delete");
	return 0;
}

/*
 * The marker, durably; with sb, the superblock too, and for a format that
 * has the properties key (4) and a store without one, properties of its
 * own: no compression of what it writes itself (a stream's chunks keep
 * their codec; a mount's -o compression= sets it).
 */
static int put_marker(sett_db *db, int kind, const char *name, const sfs_super *sb)
{
	uint8_t k[1], pk[1] = { SFS_TAG_PROPS }, sv[SFS_SUPER_SIZE], pv[SFS_PROPS_SIZE];
	int r = 0, need_props = 0;
	if (sb && sb->version >= SFS_SUPER_CODEC_VERSION) {
		void *v = NULL;
		size_t n;
		r = sett_get(db, sfs_val(pk, 1), 0, &v, &n);
		free(v);
		need_props = r == SETT_ENOTFOUND;
		r = need_props ? 0 : sfs_errno(r);
	}
	sett_batch *b;
	if (r || (r = sfs_errno(sett_batch_new(&b))))
		return r;
	r = sfs_snap_marker_set(b, kind, name);
	if (r == 0 && sb) {
		sfs_super_encode(sb, sv);
		r = sfs_errno(sett_batch_set(b, sfs_val(k, sfs_key_super(k)), sfs_val(sv, sizeof sv)));
	}
	if (r == 0 && need_props) {
		sfs_props none = { SFS_CODEC_RAW, 0 };
		sfs_props_encode(&none, pv);
		r = sfs_errno(sett_batch_set(b, sfs_val(pk, 1), sfs_val(pv, sizeof pv)));
	}
	if (r == 0)
		r = sfs_errno(sett_write(db, b, 1, NULL));
	sett_batch_free(b);
	return r;
}

/* The inode counter of the store (0: none). */
static int read_next_ino(sett_db *db, uint64_t *out)
{
	uint8_t k[1];
	void *v = NULL;
	size_t n = 0;
	*out = 0;
	int r = sett_get(db, sfs_val(k, sfs_key_nextino(k)), 0, &v, &n);
	if (r == SETT_ENOTFOUND)
		return 0;
	if (r == 0 && n == 8)
		*out = sfs_get_be64(v);
	free(v);
	return sfs_errno(r);
}

/*
 * The stream's inode counter replaces the target's only upwards: inode
 * numbers the target handed out (before the rollback) are never handed
 * out again, as a rollback keeps the counter.
 */
static int keep_next_ino(sett_db *db, uint64_t before)
{
	uint64_t now;
	int r = read_next_ino(db, &now);
	if (r || now >= before)
		return r;
	uint8_t k[1], v[8];
	sfs_put_be64(v, before);
	return sfs_errno(sett_put(db, sfs_val(k, sfs_key_nextino(k)), sfs_val(v, 8)));
}

/* The keys a full stream's receive keeps when it clears a store. */
static int store_key(sett_val key)
{
	return !sfs_send_key_ok(key);
}

/* before_apply's "nothing more to apply" */
#define RECV_FINISHED 1

/* The stream is verified: make the target ready for its records. */
static int before_apply(void *arg, const sett_load_result *lr)
{
	(void)lr;
	recv_ctx *c = arg;
	const sfs_send_meta *m = &c->res->meta;
	int r;
	c->changed = 1;
	if (c->finish) {
		r = sfs_snap_rollback(c->db, m->name, NULL);
		return r ? why(c, r, "rolling the target to '%s': %s", m->name, strerror(-r))
			 : RECV_FINISHED;
	}
	if (c->inc) {
		/* the live filesystem becomes the older snapshot, then stays marked */
		r = sfs_snap_rollback(c->db, c->from, &c->res->rolled_back);
		/* a stream of format 4 (compressed chunks) raises a target of 3 */
		sfs_super raised = c->sb;
		raised.version = m->fs_version;
		if (r == 0)
			r = put_marker(c->db, SFS_MARK_ROLLBACK, c->from,
				       m->fs_version > c->sb.version ? &raised : NULL);
		return r ? why(c, r, "rolling the target back to '%s': %s", c->from, strerror(-r))
			 : 0;
	}
	if (c->has_fs) /* finishing an interrupted full receive */
		return (r = sfs_wipe_store(c->db, store_key))
			       ? why(c, r, "clearing the target: %s", strerror(-r))
					    : put_marker(c->db, SFS_MARK_CREATE, m->name, NULL);
	sfs_super sb;
	memset(&sb, 0, sizeof sb);
	sb.version = m->fs_version;
	sb.chunk_size = m->chunk_size;
	sb.created_ns = sfs_now();
	if (getrandom(sb.uuid, 16, 0) != 16)
		return why(c, -errno, "no random uuid: %s", strerror(errno));
	sb.uuid[6] = (sb.uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	sb.uuid[8] = (sb.uuid[8] & 0x3f) | 0x80;
	return put_marker(c->db, SFS_MARK_CREATE, m->name, &sb);
}

static const sett_load_options *load_opts(recv_ctx *c, sett_load_options *o)
{
	memset(o, 0, sizeof *o);
	o->check_meta = on_meta;
	o->check_record = on_record;
	o->before_apply = c->db ? before_apply : NULL;
	o->arg = c;
	return o;
}

/* res->why for an error of the stream itself */
static int stream_error(recv_ctx *c, int r)
{
	if (r == SETT_ECORRUPT || r == SETT_EFORMAT)
		return why(c, -EIO, "%s", c->res->load.why[0] ? c->res->load.why : sett_strerror(r));
	if (r && r > -4096)
		return why(c, r, "%s", strerror(-r));
	return r ? why(c, sfs_errno(r), "%s", sett_strerror(r)) : 0;
}

int sfs_send_check(sett_read_fn read, void *arg, sfs_recv_result *res)
{
	memset(res, 0, sizeof *res);
	recv_ctx c = { .res = res };
	sett_load_options o;
	int r = sett_backup_check(load_opts(&c, &o), read, arg, &res->load);
	return r ? stream_error(&c, r) : 0;
}

/* Removes what a refused receive created in a directory that was empty. */
static void unmake(const char *path, int keep_lock, int made_dir)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[4352];
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (keep_lock && !strcmp(de->d_name, "LOCK")))
			continue;
		snprintf(p, sizeof p, "%s/%s", path, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	if (made_dir)
		rmdir(path);
}

int sfs_receive(const char *path, const settfs_options *o, sett_read_fn read, void *arg,
		sfs_recv_result *res)
{
	memset(res, 0, sizeof *res);
	recv_ctx c = { .res = res };
	int st = sfs_dir_state(path);
	if (st < 0)
		return why(&c, st, "%s: %s", path, strerror(-st));
	if (st == SFS_DIR_OTHER)
		return why(&c, -ENOTEMPTY, "%s: not empty and holds no store", path);
	char lock[4200];
	snprintf(lock, sizeof lock, "%s/LOCK", path);
	int has_lock = access(lock, F_OK) == 0, made_dir = 0;
	if (st == SFS_DIR_EMPTY && mkdir(path, 0700) == 0)
		made_dir = 1;
	else if (st == SFS_DIR_EMPTY && errno != EEXIST)
		return why(&c, -errno, "%s: %s", path, strerror(errno));
	sett_options eo = o->engine;
	eo.create_if_missing = st == SFS_DIR_EMPTY;
	eo.read_only = 0;
	int r = sett_open(path, &eo, &c.db);
	if (r) {
		if (st == SFS_DIR_EMPTY)
			unmake(path, has_lock, made_dir);
		if (r == SETT_ELOCKED)
			return why(&c, -EBUSY, "%s is in use: mounted (unmount it first) or being "
					       "received into", path);
		return why(&c, sfs_errno(r), "%s: %s", path, sett_strerror(r));
	}
	res->created = st == SFS_DIR_EMPTY;
	r = sfs_super_read(c.db, 0, &c.sb);
	if (r == 0)
		c.has_fs = 1;
	else if (r == -EINVAL)
		r = 0; /* no superblock */
	else
		why(&c, r, "%s: the superblock cannot be read: %s", path, strerror(-r));
	if (r == 0 && !c.has_fs && !res->created) {
		/* a store without a filesystem must hold nothing at all */
		int fresh = sfs_store_is_fresh(c.db, path);
		if (fresh <= 0)
			r = why(&c, fresh ? fresh : -EEXIST,
				"%s: the store holds data but no filesystem", path);
	}
	if (r == 0 && c.has_fs && (r = read_next_ino(c.db, &c.next_ino)))
		why(&c, r, "%s: the inode counter cannot be read: %s", path, strerror(-r));
	if (r == 0 && c.has_fs) {
		int p = sfs_snap_rollback_pending(c.db, c.marker);
		if (p < 0)
			r = why(&c, p, "%s: %s", path, strerror(-p));
		c.pending = p > 0;
	}
	if (r == 0) {
		sett_load_options lo;
		r = sett_load_ex(c.db, load_opts(&c, &lo), read, arg, &res->load);
		if (r && r != RECV_FINISHED)
			r = stream_error(&c, r);
	}
	/* the records are in: the snapshot, as the source has it, then no marker */
	if (r == 0 || r == RECV_FINISHED) {
		const sfs_send_meta *m = &res->meta;
		int applied = r == 0;
		r = applied ? keep_next_ino(c.db, c.next_ino) : 0;
		if (r == 0 && applied)
			r = sfs_snap_add(c.db, m->name, m->guid, m->created_ns, NULL);
		if (r == 0) {
			uint8_t mk[1];
			sett_batch *b;
			if ((r = sfs_errno(sett_batch_new(&b))) == 0) {
				r = sfs_errno(sett_batch_delete(b, sfs_val(mk, sfs_key_snap(mk, NULL, 0))));
				if (r == 0)
					r = sfs_errno(sett_write(c.db, b, 1, NULL));
				sett_batch_free(b);
			}
		}
		if (r)
			why(&c, r, "recreating snapshot '%s': %s", m->name, strerror(-r));
	}
	res->changed = c.changed;
	int rc = sfs_errno(sett_close(c.db));
	if (r && res->created && !c.changed)
		unmake(path, has_lock, made_dir);
	if (r == 0 && rc)
		r = why(&c, rc, "%s: closing: %s", path, strerror(-rc));
	return r;
}
