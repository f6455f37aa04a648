/*
 * snapshot.c - snapshots: records and pins (snapshot.h), taking and
 * deleting them in a mounted filesystem, the read-only views they are
 * browsed through, and the snapshot directory (settfs.h).
 *
 * A view is a settfs of its own (own inode table, own locks) that shares
 * the live filesystem's engine and reads at the snapshot's version; it
 * never writes (read_only, read_version set).  Views are opened when a
 * request first names one of their inodes and closed when the snapshot
 * is deleted or the filesystem closes; fs->views_lock (a reader-preferring
 * rwlock: requests in views take it for reading and never wait for one
 * another) keeps a view alive while a request uses it.
 */
#include "fs_int.h"
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- records --------------------------------------------------------- */

int sfs_snap_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > SETTFS_SNAP_NAME_MAX || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

static void pin_name(char out[SETT_MAX_PIN_NAME + 1], const char *name)
{
	snprintf(out, SETT_MAX_PIN_NAME + 1, "%s%s", SFS_SNAP_PIN_PREFIX, name);
}

int sfs_snap_get(sett_db *db, const char *name, sfs_snap *s)
{
	if (sfs_snap_name_ok(name))
		return -EINVAL;
	uint8_t k[1 + SETTFS_SNAP_NAME_MAX];
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(db, sfs_val(k, sfs_key_snap(k, name, strlen(name))), 0, &v, &n);
	if (r == SETT_ENOTFOUND)
		return -ENOENT;
	if (r)
		return sfs_errno(r);
	r = sfs_snap_decode(v, n, s);
	free(v);
	return r;
}

static int pin_of(sett_db *db, const char *name, uint64_t *version)
{
	int n = sett_pins(db, NULL, 0), r = -ENOENT;
	if (n <= 0)
		return n < 0 ? sfs_errno(n) : -ENOENT;
	sett_pin_info *p = malloc((size_t)n * sizeof *p);
	if (!p)
		return -ENOMEM;
	int m = sett_pins(db, p, n);
	char want[SETT_MAX_PIN_NAME + 1];
	pin_name(want, name);
	for (int i = 0; i < m && i < n && r; i++)
		if (!strcmp(p[i].name, want)) {
			*version = p[i].version;
			r = 0;
		}
	free(p);
	return r;
}

int sfs_snap_list(sett_db *db, settfs_snap_info **out, size_t *np)
{
	*out = NULL;
	*np = 0;
	uint8_t pre[1];
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.prefix = sfs_val(pre, sfs_key_snap(pre, NULL, 0));
	sett_iter *it;
	int r = sfs_errno(sett_iter_new(db, &io, &it));
	if (r)
		return r;
	settfs_snap_info *a = NULL;
	size_t n = 0, cap = 0;
	for (sett_iter_rewind(it); r == 0 && sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it), v;
		if (k.size == 1)
			continue; /* the rollback marker */
		if (k.size > 1 + SETTFS_SNAP_NAME_MAX) {
			r = -EIO;
			break;
		}
		sfs_snap s;
		if ((r = sfs_errno(sett_iter_value(it, &v))) ||
		    (r = sfs_snap_decode(v.data, v.size, &s)))
			break;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			settfs_snap_info *na = realloc(a, nc * sizeof *na);
			if (!na) {
				r = -ENOMEM;
				break;
			}
			a = na;
			cap = nc;
		}
		settfs_snap_info *e = &a[n++];
		memset(e, 0, sizeof *e);
		memcpy(e->name, (const char *)k.data + 1, k.size - 1);
		e->version = s.version;
		e->created_ns = s.created_ns;
		memcpy(e->guid, s.guid, 16);
		e->slot = s.slot;
		uint64_t pv = 0;
		e->damaged = pin_of(db, e->name, &pv) != 0 || pv != s.version;
	}
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	if (r) {
		free(a);
		return r;
	}
	*out = a;
	*np = n;
	return 0;
}

static int put_record(sett_db *db, const char *name, const sfs_snap *s)
{
	uint8_t k[1 + SETTFS_SNAP_NAME_MAX], v[SFS_SNAP_SIZE];
	sfs_snap_encode(s, v);
	sett_batch *b;
	int r = sfs_errno(sett_batch_new(&b));
	if (r)
		return r;
	r = sfs_errno(sett_batch_set(b, sfs_val(k, sfs_key_snap(k, name, strlen(name))),
				     sfs_val(v, sizeof v)));
	if (r == 0)
		r = sfs_errno(sett_write(db, b, 1, NULL));
	sett_batch_free(b);
	return r;
}

static int del_key(sett_db *db, const uint8_t *k, size_t kn)
{
	sett_batch *b;
	int r = sfs_errno(sett_batch_new(&b));
	if (r)
		return r;
	r = sfs_errno(sett_batch_delete(b, sfs_val(k, kn)));
	if (r == 0)
		r = sfs_errno(sett_write(db, b, 1, NULL));
	sett_batch_free(b);
	return r;
}

int sfs_snap_add(sett_db *db, const char *name, const uint8_t *guid, int64_t created_ns,
		 sfs_snap *out)
{
	return sfs_snap_add_avoiding(db, name, guid, created_ns, NULL, out);
}

int sfs_snap_add_avoiding(sett_db *db, const char *name, const uint8_t *guid,
			  int64_t created_ns, const uint8_t *avoid, sfs_snap *out)
{
	sfs_snap s;
	int r = sfs_snap_get(db, name, &s);
	if (r != -ENOENT)
		return r ? r : -EEXIST;
	settfs_snap_info *all;
	size_t n;
	if ((r = sfs_snap_list(db, &all, &n)))
		return r;
	/* the lowest slot neither taken nor to be avoided */
	uint8_t *used = calloc(SFS_SNAP_SLOTS / 8 + 1, 1);
	if (!used) {
		free(all);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		used[all[i].slot / 8] |= (uint8_t)(1u << (all[i].slot % 8));
	free(all);
	uint32_t slot = 1;
	while (slot <= SFS_SNAP_SLOTS &&
	       ((used[slot / 8] | (avoid ? avoid[slot / 8] : 0)) & (1u << (slot % 8))))
		slot++;
	free(used);
	if (slot > SFS_SNAP_SLOTS)
		return -ENOSPC;
	memset(&s, 0, sizeof s);
	s.slot = slot;
	s.created_ns = created_ns ? created_ns : sfs_now();
	if (guid)
		memcpy(s.guid, guid, 16);
	else if (getrandom(s.guid, 16, 0) != 16)
		return -errno;
	char pn[SETT_MAX_PIN_NAME + 1];
	pin_name(pn, name);
	r = sett_pin(db, pn, 0, &s.version);
	if (r == -EEXIST) { /* left by a crash before its record was written */
		sett_unpin(db, pn);
		r = sett_pin(db, pn, 0, &s.version);
	}
	if (r)
		return sfs_errno(r);
	if ((r = put_record(db, name, &s))) {
		sett_unpin(db, pn);
		return r;
	}
	if (out)
		*out = s;
	return 0;
}

int sfs_snap_remove(sett_db *db, const char *name)
{
	sfs_snap s;
	int r = sfs_snap_get(db, name, &s);
	if (r && r != -EIO)
		return r;
	uint8_t k[1 + SETTFS_SNAP_NAME_MAX];
	if ((r = del_key(db, k, sfs_key_snap(k, name, strlen(name)))))
		return r;
	char pn[SETT_MAX_PIN_NAME + 1];
	pin_name(pn, name);
	r = sett_unpin(db, pn);
	return r == SETT_ENOTFOUND ? 0 : sfs_errno(r);
}

int sfs_snap_tidy(sett_db *db)
{
	int n = sett_pins(db, NULL, 0);
	if (n <= 0)
		return n < 0 ? sfs_errno(n) : 0;
	sett_pin_info *p = malloc((size_t)n * sizeof *p);
	if (!p)
		return -ENOMEM;
	int m = sett_pins(db, p, n), r = 0;
	size_t pl = strlen(SFS_SNAP_PIN_PREFIX);
	for (int i = 0; i < m && i < n && r == 0; i++) {
		if (strncmp(p[i].name, SFS_SNAP_PIN_PREFIX, pl) != 0)
			continue;
		sfs_snap s;
		const char *name = p[i].name + pl;
		int g = sfs_snap_name_ok(name) ? -ENOENT : sfs_snap_get(db, name, &s);
		if (g == -ENOENT)
			r = sfs_errno(sett_unpin(db, p[i].name));
		else if (g && g != -EIO)
			r = g;
	}
	free(p);
	return r;
}

/* ---- rollback -------------------------------------------------------- */

/* Value: NUL, 'r' (SFS_MARK_ROLLBACK) or 'c' (SFS_MARK_CREATE), NAME; a
 * value that starts with a name's first byte is SFS_MARK_OLD. */
int sfs_snap_marker_set(sett_batch *b, int kind, const char *name)
{
	uint8_t k[1], v[2 + SETTFS_SNAP_NAME_MAX];
	size_t n = strlen(name);
	if (n == 0 || n > SETTFS_SNAP_NAME_MAX)
		return -EINVAL;
	v[0] = 0;
	v[1] = kind == SFS_MARK_CREATE ? 'c' : 'r';
	memcpy(v + 2, name, n);
	return sfs_errno(sett_batch_set(b, sfs_val(k, sfs_key_snap(k, NULL, 0)), sfs_val(v, n + 2)));
}

int sfs_snap_marker_decode(const void *v, size_t n, char *name)
{
	const uint8_t *p = v;
	int kind = SFS_MARK_OLD;
	if (n >= 2 && p[0] == 0) {
		if (p[1] != 'r' && p[1] != 'c')
			return -EIO;
		kind = p[1] == 'c' ? SFS_MARK_CREATE : SFS_MARK_ROLLBACK;
		p += 2;
		n -= 2;
	}
	if (n == 0 || n > SETTFS_SNAP_NAME_MAX || memchr(p, 0, n))
		return -EIO;
	memcpy(name, p, n);
	name[n] = 0;
	return kind;
}

int sfs_snap_rollback_pending(sett_db *db, char *name)
{
	uint8_t k[1];
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(db, sfs_val(k, sfs_key_snap(k, NULL, 0)), 0, &v, &n);
	if (r == SETT_ENOTFOUND)
		return 0;
	if (r)
		return sfs_errno(r);
	r = sfs_snap_marker_decode(v, n, name);
	free(v);
	return r;
}

/*
 * Keys a rollback leaves alone: the snapshot records and the marker, and
 * the inode counter (inode numbers are never handed out twice, also not
 * those used after the snapshot).
 */
static int kept_key(sett_val k)
{
	uint8_t t = k.size >= 1 ? ((const uint8_t *)k.data)[0] : 0;
	return t == SFS_TAG_SNAP || t == SFS_TAG_NEXTINO;
}

/* Commits b when it is large (or at the end, final). */
static int batch_step(sett_db *db, sett_batch *b, int final)
{
	if (sett_batch_count(b) < (final ? 1u : 512u))
		return 0;
	int r = sfs_errno(sett_write(db, b, 0, NULL));
	sett_batch_clear(b);
	return r;
}

typedef struct rollback_ctx {
	sett_db *db;
	uint64_t snapv;
	sett_batch *b;
	uint64_t *changed;
} rollback_ctx;

/* Each key changed since the snapshot gets its value there, or goes. */
static int rollback_batch(void *arg, int range, const sett_kv *kv, size_t n)
{
	(void)range;
	rollback_ctx *c = arg;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (kept_key(kv[i].key))
			continue;
		void *o = NULL;
		size_t on = 0;
		uint8_t meta = 0;
		int g = sett_get_ex(c->db, kv[i].key, c->snapv, &o, &on, NULL, &meta);
		if (g == SETT_ENOTFOUND)
			r = sfs_errno(sett_batch_delete(c->b, kv[i].key));
		else if (g == 0) /* with its user meta: a chunk's codec (doc/FORMAT.md) */
			r = sfs_errno(sett_batch_set_ex(c->b, kv[i].key, sfs_val(o, on), 0, meta));
		else
			r = sfs_errno(g);
		free(o);
		++*c->changed;
		if (r == 0)
			r = batch_step(c->db, c->b, 0);
	}
	return r;
}

/*
 * The keys a rollback must touch are those whose newest version is newer
 * than the snapshot's (a delete included: the snapshot's pin keeps the
 * tombstones over what it sees): a stream since the snapshot's version
 * finds them, reading only their values, so a rollback costs what changed
 * since, not the filesystem.
 */
static int rollback_changes(sett_db *db, uint64_t snapv, sett_batch *b, uint64_t *changed)
{
	rollback_ctx c = { db, snapv, b, changed };
	sett_stream_options so;
	sett_stream_options_init(&so);
	so.since = snapv;
	so.with_deletes = 1;
	so.threads = 1;
	return sfs_errno(sett_stream(db, &so, rollback_batch, &c, NULL));
}

int sfs_snap_rollback(sett_db *db, const char *name, uint64_t *changed)
{
	uint64_t dummy = 0;
	if (!changed)
		changed = &dummy;
	*changed = 0;
	sfs_snap s;
	int r = sfs_snap_get(db, name, &s);
	if (r)
		return r;
	uint64_t pv;
	if (pin_of(db, name, &pv) || pv != s.version)
		return -EIO; /* damaged: what it saw is no longer kept */
	uint8_t mk[1];
	sett_batch *b;
	if ((r = sfs_errno(sett_batch_new(&b))))
		return r;
	/* the marker first, durably: a crash from here on refuses mounting */
	r = sfs_snap_marker_set(b, SFS_MARK_ROLLBACK, name);
	if (r == 0)
		r = sfs_errno(sett_write(db, b, 1, NULL));
	sett_batch_clear(b);
	if (r == 0)
		r = rollback_changes(db, s.version, b, changed);
	if (r == 0)
		r = batch_step(db, b, 1);
	if (r == 0)
		r = sfs_errno(sett_sync(db));
	sett_batch_free(b);
	if (r == 0)
		r = del_key(db, mk, sfs_key_snap(mk, NULL, 0));
	return r;
}

/* ---- the mounted filesystem ------------------------------------------ */

struct sfs_view {
	uint32_t slot;
	settfs *fs;
};

void sfs_freeze_enter(settfs *fs)
{
	/* it never nests (a thread that holds it would deadlock a snapshot) */
	if (!fs->live && pthread_rwlock_rdlock(&fs->freeze_lock) != 0)
		abort();
}

void sfs_freeze_exit(settfs *fs)
{
	if (!fs->live)
		pthread_rwlock_unlock(&fs->freeze_lock);
}

static settfs *view_find(settfs *fs, uint32_t slot)
{
	for (size_t i = 0; i < fs->nviews; i++)
		if (fs->views[i].slot == slot)
			return fs->views[i].fs;
	return NULL;
}

/* A record by slot (views_lock held for writing). */
static int snap_of_slot(settfs *fs, uint32_t slot, sfs_snap *s)
{
	settfs_snap_info *all;
	size_t n;
	int r = sfs_snap_list(fs->db, &all, &n);
	if (r)
		return r;
	r = -ESTALE;
	for (size_t i = 0; i < n && r; i++)
		if (all[i].slot == slot) {
			if (all[i].damaged) {
				r = -EIO;
				break;
			}
			s->version = all[i].version;
			s->slot = slot;
			r = 0;
		}
	free(all);
	return r;
}

/* Opens the view of slot (views_lock held for writing). */
static int view_open(settfs *fs, uint32_t slot, settfs **vp)
{
	sfs_snap s;
	int r = snap_of_slot(fs, slot, &s);
	if (r)
		return r;
	if (fs->nviews == fs->capviews) {
		size_t nc = fs->capviews ? fs->capviews * 2 : 4;
		struct sfs_view *nv = realloc(fs->views, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		fs->views = nv;
		fs->capviews = nc;
	}
	settfs *v;
	if ((r = sfs_fs_alloc(fs->path, &v)))
		return r;
	v->db = fs->db;
	v->chunk_size = fs->chunk_size;
	v->xattr_flag = fs->xattr_flag;
	v->no_acl = fs->no_acl;
	v->dirty_limit = fs->dirty_limit;
	v->inode_dirty_limit = fs->inode_dirty_limit;
	v->max_batch_deletes = fs->max_batch_deletes;
	v->max_batch_bytes = fs->max_batch_bytes;
	v->corruption_fn = fs->corruption_fn;
	v->corruption_arg = fs->corruption_arg;
	v->read_only = 1;
	v->read_version = s.version;
	v->live = fs;
	v->slot = slot;
	fs->views[fs->nviews].slot = slot;
	fs->views[fs->nviews].fs = v;
	fs->nviews++;
	*vp = v;
	return 0;
}

/* Closes the view of slot, if open (views_lock held for writing). */
static void view_close(settfs *fs, uint32_t slot)
{
	for (size_t i = 0; i < fs->nviews; i++)
		if (fs->views[i].slot == slot) {
			sfs_fs_free(fs->views[i].fs);
			fs->views[i] = fs->views[--fs->nviews];
			return;
		}
}

void sfs_views_close(settfs *fs)
{
	pthread_rwlock_wrlock(&fs->views_lock);
	while (fs->nviews)
		view_close(fs, fs->views[0].slot);
	free(fs->views);
	fs->views = NULL;
	fs->capviews = 0;
	pthread_rwlock_unlock(&fs->views_lock);
}

int sfs_route(settfs *fs, uint64_t *ino, settfs **vfs)
{
	uint32_t slot = (uint32_t)(*ino >> SETTFS_SNAP_INO_SHIFT);
	if (fs->live || slot == 0) {
		*vfs = fs;
		return 0;
	}
	if (slot > SFS_SNAP_SLOTS)
		return -ESTALE; /* the snapshot directory is no view's */
	uint64_t local = *ino & SETTFS_INO_MAX;
	for (;;) {
		pthread_rwlock_rdlock(&fs->views_lock);
		settfs *v = view_find(fs, slot);
		if (v) {
			*vfs = v;
			*ino = local;
			return 0;
		}
		pthread_rwlock_unlock(&fs->views_lock);
		pthread_rwlock_wrlock(&fs->views_lock);
		int r = view_find(fs, slot) ? 0 : view_open(fs, slot, &v);
		pthread_rwlock_unlock(&fs->views_lock);
		if (r)
			return r;
	}
}

void sfs_route_end(settfs *fs, settfs *vfs)
{
	if (vfs != fs)
		pthread_rwlock_unlock(&fs->views_lock);
}

static int snap_writable(settfs *fs)
{
	if (fs->live)
		return -EROFS;
	return fs->read_only ? -EROFS : 0;
}

int settfs_snapshot_create(settfs *fs, const char *name, settfs_snap_info *info)
{
	int r = snap_writable(fs);
	if (r || (r = sfs_snap_name_ok(name)))
		return r;
	pthread_mutex_lock(&fs->snap_mu);
	sfs_snap s;
	r = sfs_snap_get(fs->db, name, &s);
	if (r == 0 || r == -EIO)
		r = -EEXIST;
	else if (r == -ENOENT)
		r = 0;
	/*
	 * Changes wait (freeze_lock) while everything buffered is committed
	 * and the version pinned: the snapshot is the filesystem as it was at
	 * one instant, every change made before it wholly in it.
	 */
	int64_t t0 = 0, t1 = 0;
	if (r == 0) {
		if (pthread_rwlock_wrlock(&fs->freeze_lock) != 0)
			abort(); /* the caller holds it: a change calling in (a bug) */
		t0 = sfs_mono_now();
		r = sfs_flush_nodes(fs, 0, 0);
		if (r == 0)
			r = sfs_snap_add_avoiding(fs->db, name, NULL, 0, fs->slots_freed, &s);
		t1 = sfs_mono_now();
		pthread_rwlock_unlock(&fs->freeze_lock);
	}
	pthread_mutex_unlock(&fs->snap_mu);
	if (r == 0 && info) {
		memset(info, 0, sizeof *info);
		snprintf(info->name, sizeof info->name, "%s", name);
		info->version = s.version;
		info->created_ns = s.created_ns;
		memcpy(info->guid, s.guid, 16);
		info->slot = s.slot;
		info->held_ns = (uint64_t)(t1 - t0);
	}
	return r;
}

/*
 * What only a deleted snapshot saw is garbage now, but nothing in the
 * engine is due to look at it (no level is over its size, no value-log
 * file has counted discards): sett_reclaim merges the tombstones with the
 * data they hide and lets GC remove the value-log files, on this thread,
 * while the filesystem goes on.  Deletions during a run ask for another.
 */
static void *giveback_main(void *arg)
{
	settfs *fs = arg;
	pthread_mutex_lock(&fs->snap_mu);
	while (fs->giveback_again && !fs->giveback_stop) {
		fs->giveback_again = 0;
		pthread_mutex_unlock(&fs->snap_mu);
		/* best effort: GC and compaction retry later; unmount stops it */
		sett_reclaim_until(fs->db, &fs->giveback_stop);
		pthread_mutex_lock(&fs->snap_mu);
	}
	fs->giveback_running = 0;
	pthread_cond_broadcast(&fs->giveback_cv);
	pthread_mutex_unlock(&fs->snap_mu);
	return NULL;
}

/* snap_mu held */
static void giveback_start(settfs *fs)
{
	fs->giveback_again = 1;
	if (fs->giveback_running || fs->giveback_stop)
		return;
	if (fs->giveback_running == 0 && fs->giveback) {
		pthread_join(fs->giveback, NULL); /* the last one's, finished */
		fs->giveback = 0;
	}
	if (pthread_create(&fs->giveback, NULL, giveback_main, fs) == 0)
		fs->giveback_running = 1;
	else
		fs->giveback = 0;
}

void sfs_giveback_stop(settfs *fs)
{
	pthread_mutex_lock(&fs->snap_mu);
	__atomic_store_n(&fs->giveback_stop, 1, __ATOMIC_RELAXED);
	while (fs->giveback_running)
		pthread_cond_wait(&fs->giveback_cv, &fs->snap_mu);
	pthread_t t = fs->giveback;
	fs->giveback = 0;
	pthread_mutex_unlock(&fs->snap_mu);
	if (t)
		pthread_join(t, NULL);
}

int settfs_snapshot_delete(settfs *fs, const char *name)
{
	int r = snap_writable(fs);
	if (r || (r = sfs_snap_name_ok(name)))
		return r == -EINVAL ? -ENOENT : r;
	pthread_mutex_lock(&fs->snap_mu);
	sfs_snap s;
	r = sfs_snap_get(fs->db, name, &s);
	if (r == 0 || r == -EIO) {
		/* no request is in the view while it closes and the pin goes */
		pthread_rwlock_wrlock(&fs->views_lock);
		if (r == 0) {
			view_close(fs, s.slot);
			/* the kernel may still hold its inodes: no other snapshot
			 * takes the slot while this filesystem is open */
			if (!fs->slots_freed)
				fs->slots_freed = calloc(SFS_SNAP_SLOTS / 8 + 1, 1);
			if (fs->slots_freed)
				fs->slots_freed[s.slot / 8] |= (uint8_t)(1u << (s.slot % 8));
		}
		r = sfs_snap_remove(fs->db, name);
		pthread_rwlock_unlock(&fs->views_lock);
		if (r == 0)
			giveback_start(fs);
	}
	pthread_mutex_unlock(&fs->snap_mu);
	return r;
}

void settfs_set_entry_fn(settfs *fs, void (*fn)(void *arg, uint64_t parent, const char *name),
			 void *arg)
{
	fs->entry_fn = fn;
	fs->entry_arg = arg;
}

void settfs_snapshot_changed(settfs *fs, const char *name)
{
	if (fs->entry_fn && !fs->no_snapdir)
		fs->entry_fn(fs->entry_arg, SETTFS_SNAPDIR_INO, name);
}

int settfs_snapshot_list(settfs *fs, settfs_snap_info **out, size_t *n)
{
	if (fs->live)
		fs = fs->live;
	return sfs_snap_list(fs->db, out, n);
}

int settfs_snapshot_space(settfs *fs, const char *name, uint64_t *bytes)
{
	if (sfs_snap_name_ok(name))
		return -ENOENT;
	char pn[SETT_MAX_PIN_NAME + 1];
	pin_name(pn, name);
	int r = sett_pin_space_of(fs->db, pn, bytes);
	return r == SETT_ENOTFOUND ? -ENOENT : sfs_errno(r);
}

/* ---- the snapshot directory ------------------------------------------ */

int sfs_snapdir_stat(settfs *fs, struct stat *st)
{
	sfs_node *n;
	int r = sfs_node_get(fs, SETTFS_ROOT_INO, &n);
	if (r)
		return r;
	sfs_fill_stat(fs, SETTFS_ROOT_INO, &n->in, st);
	sfs_node_put(fs, n);
	st->st_ino = SETTFS_SNAPDIR_INO;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = getuid(); /* who may take snapshots: the mount's owner */
	st->st_gid = getgid();
	st->st_size = 0;
	st->st_blocks = 0;
	return 0;
}

int sfs_snapdir_lookup(settfs *fs, const char *name, struct stat *st)
{
	sfs_snap s;
	int r = sfs_snap_name_ok(name) ? -ENOENT : sfs_snap_get(fs->db, name, &s);
	if (r)
		return r;
	uint64_t ino = (uint64_t)s.slot << SETTFS_SNAP_INO_SHIFT | SETTFS_ROOT_INO;
	settfs *v;
	if ((r = sfs_route(fs, &ino, &v)))
		return r;
	r = settfs_lookup(v, ino, ".", st);
	sfs_route_end(fs, v);
	return r;
}

int sfs_snapdir_readdir(settfs *fs, off_t off, int plus, settfs_fill_fn fill, void *arg)
{
	struct stat st;
	int r = sfs_snapdir_stat(fs, &st);
	if (r)
		return r;
	if (off == 0) {
		if (fill(arg, ".", &st, 1))
			return 0;
		off = 1;
	}
	if (off == 1) {
		struct stat rs;
		if ((r = settfs_getattr(fs, SETTFS_ROOT_INO, &rs)))
			return r;
		if (fill(arg, "..", &rs, 2))
			return 0;
		off = 2;
	}
	settfs_snap_info *all;
	size_t n;
	if ((r = sfs_snap_list(fs->db, &all, &n)))
		return r;
	for (size_t i = (size_t)off - 2; i < n; i++) {
		if (plus) {
			r = sfs_snapdir_lookup(fs, all[i].name, &st);
			if (r == -EIO || r == -ESTALE || r == -ENOENT) {
				r = 0; /* damaged, or deleted meanwhile */
				continue;
			}
			if (r)
				break;
		} else {
			memset(&st, 0, sizeof st);
			st.st_ino = (uint64_t)all[i].slot << SETTFS_SNAP_INO_SHIFT | SETTFS_ROOT_INO;
			st.st_mode = S_IFDIR;
		}
		if (fill(arg, all[i].name, &st, (off_t)i + 3)) {
			if (plus)
				settfs_forget(fs, st.st_ino, 1);
			break;
		}
	}
	free(all);
	return r;
}

/* mkdir and rmdir in the snapshot directory: root and the mount's owner */
int sfs_snapdir_mkdir(settfs *fs, const settfs_ctx *ctx, const char *name, struct stat *st)
{
	if (ctx->uid != 0 && ctx->uid != getuid())
		return -EPERM;
	int r = settfs_snapshot_create(fs, name, NULL);
	return r ? r : sfs_snapdir_lookup(fs, name, st);
}

int sfs_snapdir_rmdir(settfs *fs, const settfs_ctx *ctx, const char *name)
{
	if (ctx && ctx->uid != 0 && ctx->uid != getuid())
		return -EPERM;
	return settfs_snapshot_delete(fs, name);
}
