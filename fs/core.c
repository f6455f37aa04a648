/*
 * core.c - opening, formatting and closing a settfs store; statfs; orphans.
 *
 * A store is a settfs when its `S` key holds a valid superblock.  Opening
 * it loads the chunk size and the inode allocation limit (`N`), counts the
 * inodes for statfs and reclaims orphans (`O` keys): inodes unlinked while
 * still referenced when the previous mount ended.
 *
 * A filesystem is created only where nothing is: in a missing or empty
 * directory, or in a store that holds nothing at all (no key, no table,
 * nothing quarantined).  A non-empty directory without a store, and a
 * store with data but no superblock (damaged, or another program's), are
 * refused with a message in o->engine.error_buf.
 */
#include "fs_int.h"
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void settfs_options_init(settfs_options *o)
{
	memset(o, 0, sizeof *o);
	sett_options_init(&o->engine);
	/* chunks (64 KiB) go to the value log, inodes and dentries stay inline */
	o->engine.value_threshold = 2048;
	o->chunk_size = SETTFS_DEFAULT_CHUNK_SIZE;
	o->dirty_limit = 64u << 20;
	o->inode_dirty_limit = 1u << 20;
	o->compression = SETTFS_COMPRESSION_KEEP;
}

int settfs_parse_compression(const char *s, settfs_options *o)
{
	if (strcmp(s, "none") == 0) {
		o->compression = SETTFS_COMPRESSION_NONE;
		o->compression_level = 0;
		return 0;
	}
	if (strncmp(s, "zstd", 4) != 0 || (s[4] && s[4] != ':'))
		return -EINVAL;
	long level = SFS_ZSTD_DEFAULT_LEVEL;
	if (s[4] == ':') {
		char *end;
		errno = 0;
		level = strtol(s + 5, &end, 10);
		if (errno || end == s + 5 || *end || level < SFS_ZSTD_MIN_LEVEL ||
		    level > SFS_ZSTD_MAX_LEVEL)
			return -EINVAL;
	}
	o->compression = SETTFS_COMPRESSION_ZSTD;
	o->compression_level = (int)level;
	return 0;
}

const char *settfs_compression_name(int compression, int level, char *buf, size_t size)
{
	if (compression == SETTFS_COMPRESSION_ZSTD)
		snprintf(buf, size, "zstd:%d", level);
	else
		snprintf(buf, size, "none");
	return buf;
}

/* The store setting an option asks for (`keep`: the option says keep). */
static int wanted_props(const settfs_options *o, sfs_props *p, int *keep)
{
	memset(p, 0, sizeof *p);
	*keep = o->compression == SETTFS_COMPRESSION_KEEP;
	if (*keep || o->compression == SETTFS_COMPRESSION_NONE)
		return 0;
	if (o->compression != SETTFS_COMPRESSION_ZSTD)
		return -EINVAL;
	p->codec = SFS_CODEC_ZSTD;
	p->level = o->compression_level ? o->compression_level : SFS_ZSTD_DEFAULT_LEVEL;
	return p->level < SFS_ZSTD_MIN_LEVEL || p->level > SFS_ZSTD_MAX_LEVEL ? -EINVAL : 0;
}

/*
 * Add the compression setting p to b: a store that compresses (or did)
 * is format 4, with an `F` key; one that never did stays format 3 with
 * none.  `s`: its superblock, whose version this may raise.
 */
static int batch_props(sett_batch *b, sfs_super *s, const sfs_props *p)
{
	uint8_t pk[1] = { SFS_TAG_PROPS }, sk[1], pv[SFS_PROPS_SIZE], sv[SFS_SUPER_SIZE];
	if (p->codec == SFS_CODEC_RAW && s->version < SFS_SUPER_CODEC_VERSION)
		return 0;
	if (s->version < SFS_SUPER_CODEC_VERSION) {
		s->version = SFS_SUPER_CODEC_VERSION;
		sfs_super_encode(s, sv);
		int r = sfs_errno(sett_batch_set(b, sfs_val(sk, sfs_key_super(sk)), sfs_val(sv, sizeof sv)));
		if (r)
			return r;
	}
	sfs_props_encode(p, pv);
	return sfs_errno(sett_batch_set(b, sfs_val(pk, 1), sfs_val(pv, sizeof pv)));
}

uint32_t settfs_chunk_size(const settfs *fs)
{
	return fs->chunk_size;
}

sett_db *settfs_engine(settfs *fs)
{
	return fs->db;
}

int settfs_get_stats(settfs *fs, settfs_stats *st)
{
	memset(st, 0, sizeof *st);
	long long ni = atomic_load(&fs->used_inodes);
	long long dirty = atomic_load(&fs->dirty_bytes);
	st->inodes = ni > 0 ? (uint64_t)ni : 0;
	long long lb = atomic_load(&fs->logical_bytes);
	st->logical_bytes = !fs->logical_known ? UINT64_MAX : lb > 0 ? (uint64_t)lb : 0;
	long long sb = atomic_load(&fs->stored_bytes);
	st->stored_bytes = !fs->logical_known ? UINT64_MAX : sb > 0 ? (uint64_t)sb : 0;
	st->compression = fs->codec == SFS_CODEC_ZSTD ? SETTFS_COMPRESSION_ZSTD
						      : SETTFS_COMPRESSION_NONE;
	st->compression_level = fs->zlevel;
	st->dirty_bytes = dirty > 0 ? (uint64_t)dirty : 0;
	st->chunk_size = fs->chunk_size;
	st->read_only = fs->read_only;
	st->degraded = fs->degraded;
	int r = sfs_errno(sett_get_stats(fs->db, &st->engine));
	if (r == 0)
		r = sfs_errno(sett_disk_space(fs->db, &st->space));
	return r;
}

static int say(const settfs_options *o, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int say(const settfs_options *o, int err, const char *fmt, ...)
{
	if (o->engine.error_buf && o->engine.error_buf_size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(o->engine.error_buf, o->engine.error_buf_size, fmt, ap);
		va_end(ap);
	}
	return err;
}

int sfs_dir_state(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? SFS_DIR_EMPTY : -errno;
	int state = SFS_DIR_EMPTY;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "LOCK"))
			continue;
		if (!strcmp(n, "MANIFEST")) {
			state = SFS_DIR_STORE;
			break;
		}
		state = SFS_DIR_OTHER;
	}
	closedir(d);
	return state;
}

/*
 * Opens the engine, creating a store only in a missing or empty directory
 * (or anywhere with `anywhere`).  A non-empty directory without a store is
 * -ENOTEMPTY.
 */
static int open_engine(const char *path, const settfs_options *o, int anywhere, sett_db **db)
{
	sett_options eo = o->engine;
	int st = sfs_dir_state(path);
	if (st < 0)
		return st;
	if (st == SFS_DIR_OTHER && !anywhere)
		eo.create_if_missing = 0; /* the engine reports a damaged store */
	int r = sett_open(path, &eo, db);
	if (r == -ENOENT && st == SFS_DIR_OTHER && !eo.read_only)
		return say(o, -ENOTEMPTY,
			   "%s: not empty and holds no store; refusing to create one there", path);
	return sfs_errno(r);
}

static int store_is_empty(sett_db *db)
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	sett_iter *it;
	int r = sett_iter_new(db, &io, &it);
	if (r)
		return sfs_errno(r);
	sett_iter_rewind(it);
	r = sett_iter_valid(it) ? 0 : 1;
	sett_iter_free(it);
	return r;
}

int sfs_wipe_store(sett_db *db, int (*keep)(sett_val key))
{
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	sett_iter *it;
	int r = sfs_errno(sett_iter_new(db, &io, &it));
	if (r)
		return r;
	sett_batch *b;
	r = sfs_errno(sett_batch_new(&b));
	for (sett_iter_rewind(it); r == 0 && sett_iter_valid(it); sett_iter_next(it)) {
		if (keep && keep(sett_iter_key(it)))
			continue;
		r = sfs_errno(sett_batch_delete(b, sett_iter_key(it)));
		if (r == 0 && sett_batch_count(b) >= 1024) {
			r = sfs_errno(sett_write(db, b, 0, NULL));
			sett_batch_clear(b);
		}
	}
	if (r == 0 && sett_batch_count(b))
		r = sfs_errno(sett_write(db, b, 0, NULL));
	sett_batch_free(b);
	sett_iter_free(it);
	return r;
}

/*
 * Superblock, inode counter, root directory and the compression setting
 * in one durable commit.
 */
static int format_db(sett_db *db, const settfs_options *o, uint32_t uid, uint32_t gid)
{
	uint32_t chunk_size = o->chunk_size;
	if (chunk_size < 4096 || chunk_size > (1u << 20) || (chunk_size & (chunk_size - 1)))
		return -EINVAL;
	sfs_props props;
	int keep;
	if (wanted_props(o, &props, &keep))
		return -EINVAL;
	sfs_super s;
	memset(&s, 0, sizeof s);
	s.version = SFS_SUPER_PLAIN_VERSION;
	s.chunk_size = chunk_size;
	s.created_ns = sfs_now();
	if (getrandom(s.uuid, sizeof s.uuid, 0) != (ssize_t)sizeof s.uuid)
		for (size_t i = 0; i < sizeof s.uuid; i++)
			s.uuid[i] = (uint8_t)(s.created_ns >> (i % 8 * 8)) ^ (uint8_t)i;
	s.uuid[6] = (s.uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
	s.uuid[8] = (s.uuid[8] & 0x3f) | 0x80;
	uint8_t sv[SFS_SUPER_SIZE], nv[8], k[SFS_KEY_MAX];
	sfs_super_encode(&s, sv);
	sfs_put_be64(nv, SETTFS_ROOT_INO + 1);

	sfs_inode root;
	memset(&root, 0, sizeof root);
	root.mode = S_IFDIR | 0755;
	root.uid = uid;
	root.gid = gid;
	root.nlink = 2;
	root.atime = root.mtime = root.ctime = root.btime = s.created_ns;
	root.parent = SETTFS_ROOT_INO;

	sett_batch *b;
	int r = sfs_errno(sett_batch_new(&b));
	if (r)
		return r;
	r = sfs_errno(sett_batch_set(b, sfs_val(k, sfs_key_super(k)), sfs_val(sv, sizeof sv)));
	if (r == 0)
		r = sfs_errno(sett_batch_set(b, sfs_val(k, sfs_key_nextino(k)), sfs_val(nv, 8)));
	if (r == 0)
		r = sfs_batch_new_inode(b, SETTFS_ROOT_INO, &root);
	if (r == 0)
		r = batch_props(b, &s, &props);
	if (r == 0)
		r = sfs_errno(sett_write(db, b, 1, NULL));
	sett_batch_free(b);
	return r;
}

/*
 * Whether the store holds nothing a filesystem could be made of: no key,
 * no table, nothing quarantined (1), or something (0).
 */
int sfs_store_is_fresh(sett_db *db, const char *path)
{
	int r = store_is_empty(db);
	if (r != 1)
		return r;
	sett_stats st;
	if ((r = sfs_errno(sett_get_stats(db, &st))))
		return r;
	for (int l = 0; l < SETT_MAX_LEVELS; l++)
		if (st.levels[l].tables)
			return 0;
	char q[4200];
	snprintf(q, sizeof q, "%s/quarantine", path);
	return sfs_dir_state(q) == SFS_DIR_EMPTY;
}

static int has_super(sett_db *db)
{
	uint8_t k[1];
	void *v = NULL;
	size_t n;
	int r = sett_get(db, sfs_val(k, sfs_key_super(k)), 0, &v, &n);
	free(v);
	if (r == SETT_ENOTFOUND)
		return 0;
	return r < 0 ? sfs_errno(r) : 1;
}

int settfs_mkfs(const char *path, const settfs_options *o, const settfs_ctx *ctx,
		int force)
{
	settfs_options mo = *o;
	mo.engine.create_if_missing = 1;
	mo.engine.read_only = 0;
	sett_db *db;
	int r = open_engine(path, &mo, force, &db);
	if (r)
		return r;
	int fresh = sfs_store_is_fresh(db, path);
	if (fresh < 0)
		r = fresh;
	else if (!fresh && !force)
		r = say(o, -EEXIST, "%s: already holds a store (-f erases it)", path);
	else if (!fresh)
		r = sfs_wipe_store(db, NULL);
	if (r == 0)
		r = format_db(db, o, ctx ? ctx->uid : 0, ctx ? ctx->gid : 0);
	int rc = sfs_errno(sett_close(db));
	return r ? r : rc;
}

static int drain_orphans(settfs *fs)
{
	uint8_t p[1] = { SFS_TAG_ORPHAN };
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	io.prefix = sfs_val(p, 1);
	sett_iter *it;
	int r = sfs_errno(sett_iter_new(fs->db, &io, &it));
	if (r)
		return r;
	for (sett_iter_rewind(it); r == 0 && sett_iter_valid(it); sett_iter_next(it)) {
		sett_val k = sett_iter_key(it);
		if (k.size != 9)
			continue; /* fsck reports it */
		uint64_t ino = sfs_get_be64((const uint8_t *)k.data + 1);
		sfs_node *n;
		int g = sfs_node_get(fs, ino, &n);
		if (g == -ENOENT) {
			/* inode already gone: finish the cleanup */
			atomic_fetch_add(&fs->used_inodes, 1);
			r = sfs_reclaim(fs, ino, NULL, -1);
			continue;
		}
		if (g) {
			r = g;
			break;
		}
		if (n->in.nlink > 0) {
			uint8_t ok[9];
			r = sfs_errno(sett_del(fs->db, sfs_val(ok, sfs_key_orphan(ok, ino))));
		}
		/* nlink 0 and unreferenced: sfs_node_put reclaims it */
		sfs_node_put(fs, n);
	}
	if (r == 0)
		r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	return r;
}

/*
 * Counts the inodes (for statfs) and adds up the sizes of regular files
 * (logical_bytes, for settfs status).  A value that cannot be read (a
 * damaged store) leaves the sizes unknown and the inodes counted by key.
 */
static int count_inodes_pass(settfs *fs, int sizes)
{
	uint8_t p[1] = { SFS_TAG_INODE };
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = !sizes;
	io.prefix = sfs_val(p, 1);
	sett_iter *it;
	int r = sfs_errno(sett_iter_new(fs->db, &io, &it));
	if (r)
		return r;
	long long n = 0, bytes = 0, stored = 0;
	for (sett_iter_rewind(it); sett_iter_valid(it); sett_iter_next(it)) {
		n++;
		sett_val v;
		sfs_inode in;
		if (!sizes || sett_iter_value(it, &v) != 0)
			continue;
		if (sfs_inode_decode(v.data, v.size, &in) == 0 && S_ISREG(in.mode) &&
		    in.size <= INT64_MAX / 2 && in.blocks <= INT64_MAX / 2) {
			bytes += (long long)in.size;
			stored += (long long)in.blocks;
		}
		sfs_inode_free(&in);
	}
	r = sfs_errno(sett_iter_error(it));
	sett_iter_free(it);
	if (r == 0) {
		atomic_store(&fs->used_inodes, n);
		atomic_store(&fs->logical_bytes, bytes);
		atomic_store(&fs->stored_bytes, stored);
		fs->logical_known = sizes;
	}
	return r;
}

static int count_inodes(settfs *fs)
{
	return count_inodes_pass(fs, 1) == 0 ? 0 : count_inodes_pass(fs, 0);
}

/*
 * Inode numbers are never reused, and the `N` key says where allocation
 * resumes; a damaged `N` below a number in use would hand that number out
 * again, and the new inode would take over the old one's keys.  So
 * allocation resumes above every inode number that any key names (inodes,
 * the parents of directory entries, chunks, xattrs, orphan markers),
 * whatever `N` says.
 */
static int raise_next_ino(settfs *fs)
{
	static const char tags[] = { SFS_TAG_INODE, SFS_TAG_DENTRY, SFS_TAG_CHUNK,
				     SFS_TAG_XATTR, SFS_TAG_ORPHAN };
	int r = 0;
	for (size_t i = 0; i < sizeof tags && r == 0; i++) {
		uint8_t p[1] = { (uint8_t)tags[i] };
		sett_iter_options io;
		sett_iter_options_init(&io);
		io.key_only = 1;
		io.reverse = 1;
		io.prefix = sfs_val(p, 1);
		sett_iter *it;
		if ((r = sfs_errno(sett_iter_new(fs->db, &io, &it))))
			break;
		sett_iter_rewind(it);
		if (sett_iter_valid(it)) {
			sett_val k = sett_iter_key(it);
			uint64_t ino = k.size >= 9 ? sfs_get_be64((const uint8_t *)k.data + 1) : 0;
			if (ino >= fs->next_ino) /* at UINT64_MAX allocation stops (ENOSPC) */
				fs->next_ino = fs->ino_limit = ino < UINT64_MAX ? ino + 1 : ino;
		}
		r = sfs_errno(sett_iter_error(it));
		sett_iter_free(it);
	}
	return r;
}

/* The `F` key of a format 4 store: how new chunks are stored. */
static int load_props(settfs *fs)
{
	uint8_t k[1] = { SFS_TAG_PROPS };
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(fs->db, sfs_val(k, 1), fs->read_version, &v, &n);
	if (r)
		return r == SETT_ENOTFOUND ? -EIO : sfs_errno(r);
	sfs_props p;
	r = sfs_props_decode(v, n, &p);
	free(v);
	if (r == 0) {
		fs->codec = p.codec;
		fs->zlevel = p.level;
	}
	return r;
}

/*
 * A compression option that differs from the store's setting becomes the
 * store's setting (durably), on a writable open that has checked the
 * store; a read-only one writes nothing and keeps the store's.
 */
static int set_props(settfs *fs, const settfs_options *o)
{
	sfs_props p;
	int keep;
	int r = wanted_props(o, &p, &keep);
	if (r || keep || o->engine.read_only || (p.codec == fs->codec && p.level == fs->zlevel))
		return r;
	sfs_super s;
	r = sfs_super_read(fs->db, 0, &s);
	sett_batch *b = NULL;
	if (r == 0)
		r = sfs_errno(sett_batch_new(&b));
	if (r == 0)
		r = batch_props(b, &s, &p);
	if (r == 0 && sett_batch_count(b))
		r = sfs_errno(sett_write(fs->db, b, 1, NULL));
	sett_batch_free(b);
	if (r == 0) {
		fs->codec = p.codec;
		fs->zlevel = p.level;
	}
	return r;
}

int sfs_super_read(sett_db *db, uint64_t version, sfs_super *sb)
{
	uint8_t k[1];
	void *v = NULL;
	size_t n = 0;
	int r = sett_get(db, sfs_val(k, sfs_key_super(k)), version, &v, &n);
	if (r)
		return r == SETT_ENOTFOUND ? -EINVAL : sfs_errno(r);
	r = sfs_super_decode(v, n, sb);
	free(v);
	return r;
}

static int load_super(settfs *fs)
{
	sfs_super s;
	int r = sfs_super_read(fs->db, fs->read_version, &s);
	if (r)
		return r;
	fs->chunk_size = s.chunk_size;
	fs->xattr_flag = s.version >= 3;
	if (s.version >= SFS_SUPER_CODEC_VERSION && (r = load_props(fs)) != 0)
		return r;
	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t n = 0;
	r = sett_get(fs->db, sfs_val(k, sfs_key_nextino(k)), fs->read_version, &v, &n);
	if (r)
		return r == SETT_ENOTFOUND ? -EIO : sfs_errno(r);
	if (n != 8) {
		free(v);
		return -EIO;
	}
	fs->next_ino = fs->ino_limit = sfs_get_be64(v);
	free(v);
	return fs->next_ino > SETTFS_ROOT_INO ? 0 : -EIO;
}

/* Every SETT_ECORRUPT a read meets: the first is kept (the mount's reason to degrade). */
static void sfs_corrupt(void *arg, const char *why)
{
	settfs *fs = arg;
	/* no lock: the engine may call this under any of the filesystem's locks */
	if (!atomic_exchange(&fs->first_corrupt_taken, 1))
		snprintf(fs->first_corrupt, sizeof fs->first_corrupt, "%s", why);
	if (fs->corruption_fn)
		fs->corruption_fn(fs->corruption_arg, why);
}

/*
 * Opens the engine and the filesystem in it.  With engine.open_damaged
 * (read-only), inodes that cannot be counted are left out of statfs.
 */
static int open_fs(settfs *fs, const char *path, const settfs_options *o)
{
	settfs_options mo = *o;
	mo.engine.corruption_fn = sfs_corrupt;
	mo.engine.corruption_arg = fs;
	fs->read_only = o->engine.read_only;
	int r = open_engine(path, &mo, 0, &fs->db);
	if (r == 0) {
		int s = has_super(fs->db);
		int fresh = s == 0 ? sfs_store_is_fresh(fs->db, path) : 0;
		if (s < 0 || fresh < 0)
			r = s < 0 ? s : fresh;
		else if (s == 0 && fresh && o->engine.create_if_missing && !o->engine.read_only)
			r = format_db(fs->db, o, (uint32_t)getuid(), (uint32_t)getgid());
		else if (s == 0 && fresh)
			r = say(o, -EINVAL, "%s: an empty store, not a settfs (mkfs.settfs makes one)",
				path);
		else if (s == 0)
			r = say(o, -EINVAL,
				"%s: the store holds data but no settfs superblock: damaged, or not "
				"a settfs; not formatted (fsck.settfs reports what it holds)",
				path);
	}
	if (r == 0)
		r = load_super(fs);
	char rb[SETTFS_SNAP_NAME_MAX + 1];
	int pending = r == 0 ? sfs_snap_rollback_pending(fs->db, rb) : 0;
	if (pending < 0)
		r = pending;
	else if (pending == SFS_MARK_CREATE)
		r = say(o, -EUCLEAN,
			"%s: a receive of snapshot '%s' was interrupted: run that `settfs receive` "
			"again to finish it",
			path, rb);
	else if (pending)
		r = say(o, -EUCLEAN,
			"%s: a rollback to snapshot '%s' (or a receive from it) was interrupted: "
			"run `settfs rollback %s %s` (or that `settfs receive`) again to finish it",
			path, rb, path, rb);
	if (r == 0) {
		r = count_inodes(fs);
		if (r == -EIO && o->engine.open_damaged && o->engine.read_only)
			r = 0;
	}
	/* only a writable filesystem allocates inode numbers */
	if (r == 0 && !o->engine.read_only)
		r = raise_next_ino(fs);
	if (r == 0 && !o->engine.read_only)
		r = drain_orphans(fs);
	if (r == 0)
		r = set_props(fs, o);
	if (r == 0 && !o->engine.read_only)
		r = sfs_snap_tidy(fs->db);
	if (r && fs->db) {
		sett_close(fs->db);
		fs->db = NULL;
	}
	return r;
}

int settfs_degraded(const settfs *fs)
{
	return fs->degraded;
}

int sfs_fs_alloc(const char *path, settfs **fsp)
{
	settfs *fs = calloc(1, sizeof *fs);
	if (!fs)
		return -ENOMEM;
	fs->path = strdup(path);
	fs->nbuckets = 1024;
	fs->buckets = calloc(fs->nbuckets, sizeof *fs->buckets);
	if (!fs->path || !fs->buckets) {
		free(fs->path);
		free(fs->buckets);
		free(fs);
		return -ENOMEM;
	}
	/* creates must not starve behind a stream of lookups; no reader nests */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->ns_lock, &ra);
	/* nor snapshots behind a stream of changes (no change nests one) */
	pthread_rwlock_init(&fs->freeze_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_rwlock_init(&fs->views_lock, NULL); /* readers first: see snapshot.c */
	pthread_mutex_init(&fs->snap_mu, NULL);
	pthread_cond_init(&fs->giveback_cv, NULL);
	pthread_mutex_init(&fs->tab_lock, NULL);
	pthread_mutex_init(&fs->space_mu, NULL);
	pthread_mutex_init(&fs->reclaim_mu, NULL);
	pthread_mutex_init(&fs->wb_lock, NULL);
	*fsp = fs;
	return 0;
}

void sfs_fs_free(settfs *fs)
{
	for (size_t i = 0; i < fs->nbuckets; i++) {
		sfs_node *n = fs->buckets[i];
		while (n) {
			sfs_node *next = n->hnext;
			sfs_node_destroy(fs, n);
			n = next;
		}
	}
	while (fs->open_dirs) /* never released: the connection was aborted */
		settfs_releasedir(fs, fs->open_dirs);
	free(fs->buckets);
	free(fs->path);
	pthread_rwlock_destroy(&fs->ns_lock);
	pthread_rwlock_destroy(&fs->freeze_lock);
	pthread_rwlock_destroy(&fs->views_lock);
	free(fs->slots_freed);
	pthread_mutex_destroy(&fs->snap_mu);
	pthread_cond_destroy(&fs->giveback_cv);
	pthread_mutex_destroy(&fs->tab_lock);
	pthread_mutex_destroy(&fs->space_mu);
	pthread_mutex_destroy(&fs->reclaim_mu);
	pthread_mutex_destroy(&fs->wb_lock);
	free(fs);
}

int settfs_open(const char *path, const settfs_options *o, settfs **fsp)
{
	settfs *fs;
	int r = sfs_fs_alloc(path, &fs);
	if (r)
		return r;
	fs->dirty_limit = o->dirty_limit ? o->dirty_limit : 64u << 20;
	fs->inode_dirty_limit = o->inode_dirty_limit ? o->inode_dirty_limit : 1u << 20;
	/* the engine takes a batch of at most half a memtable, ~100 bytes a delete */
	fs->no_acl = o->no_acl;
	fs->max_batch_deletes = o->engine.mem_table_size / 2 / 128;
	if (fs->max_batch_deletes > 8192)
		fs->max_batch_deletes = 8192;
	if (fs->max_batch_deletes < 16)
		fs->max_batch_deletes = 16;
	if (o->max_batch_deletes && o->max_batch_deletes < fs->max_batch_deletes)
		fs->max_batch_deletes = o->max_batch_deletes;
	/* value bytes a batch that rewrites data may carry (at most a quarter
	 * of a memtable: with its entries' overhead, within the engine's half) */
	fs->max_batch_bytes = o->engine.mem_table_size / 4;
	fs->no_snapdir = o->no_snapdir;
	fs->corruption_fn = o->engine.corruption_fn;
	fs->corruption_arg = o->engine.corruption_arg;
	r = open_fs(fs, path, o);
	/*
	 * Damage (a table that cannot be opened, a block that the open's own
	 * reads need): open again read-only, with damaged tables failing the
	 * reads that need them, so that everything else can be read.  Nothing
	 * is written, so nothing is rewritten around the damage.
	 */
	if (r == -EIO && !o->engine.open_damaged) {
		char first[1024] = "";
		if (o->engine.error_buf && o->engine.error_buf_size)
			snprintf(first, sizeof first, "%s", o->engine.error_buf);
		if (!first[0])
			snprintf(first, sizeof first, "%s", fs->first_corrupt);
		settfs_options ro = *o;
		ro.engine.read_only = 1;
		ro.engine.open_damaged = 1;
		if (open_fs(fs, path, &ro) == 0) {
			fs->degraded = 1;
			r = 0;
		}
		/* the first failure is the damage; a second one says no more */
		say(o, 0, "%s", first[0] ? first : "input/output error");
	}
	sett_space sp;
	if (r == 0 && sett_disk_space(fs->db, &sp) == 0)
		fs->reserve = sp.reserve;
	if (r) {
		if (fs->db)
			sett_close(fs->db);
		sfs_fs_free(fs);
		return r;
	}
	*fsp = fs;
	return 0;
}

int settfs_writeback(settfs *fs, unsigned age_ms)
{
	int64_t age = (int64_t)age_ms * 1000000;
	int r = sfs_flush_nodes(fs, age, 0);
	pthread_mutex_lock(&fs->wb_lock);
	uint64_t v = sett_current_version(fs->db);
	int64_t now = sfs_mono_now();
	if (v != fs->synced_version && now - fs->synced_at >= age) {
		int s = sfs_errno(sett_sync(fs->db));
		if (s == 0) {
			fs->synced_version = v;
			fs->synced_at = now;
		}
		if (r == 0)
			r = s;
	}
	pthread_mutex_unlock(&fs->wb_lock);
	return r;
}

int settfs_sync(settfs *fs)
{
	int r = sfs_flush_nodes(fs, 0, 1);
	int s = sfs_errno(sett_sync(fs->db));
	return r ? r : s;
}

int settfs_close(settfs *fs)
{
	sfs_giveback_stop(fs);
	int r = sfs_flush_nodes(fs, 0, 1);
	sfs_views_close(fs);
	sett_db *db = fs->db;
	sfs_fs_free(fs);
	int s = sfs_errno(sett_sync(db));
	int c = sfs_errno(sett_close(db));
	return r ? r : s ? s : c;
}

/*
 * The free space is measured (statvfs) at most once a second while it is
 * well above the reserve, and for every admission within SPACE_NEAR of it;
 * in between, admitted bytes are taken off the last measurement.
 */
#define SPACE_NEAR (64ull << 20)

/*
 * A refused admission first has the engine give back what deletions and
 * overwrites hold (sett_reclaim: their tombstones may still sit in the
 * memtable or L0 above the data, so GC has not counted any garbage), then
 * measures again.  One reclaim at a time; writers refused meanwhile take
 * its result.  After a reclaim that found nothing, none runs for
 * RECLAIM_BACKOFF: on a disk full of live data a writer must not pay for
 * a full compaction every time.
 */
#define RECLAIM_BACKOFF (5 * 1000000000LL)

static int space_try(settfs *fs, uint64_t bytes, int remeasure)
{
	pthread_mutex_lock(&fs->space_mu);
	int64_t now = sfs_now();
	if (remeasure || now - fs->space_measured >= 1000000000LL ||
	    fs->space_free < fs->reserve + bytes + SPACE_NEAR) {
		sett_space sp;
		if (sett_disk_space(fs->db, &sp) != 0) {
			pthread_mutex_unlock(&fs->space_mu);
			return 0; /* unknown: the write itself will tell */
		}
		fs->space_free = sp.free_bytes;
		fs->space_measured = now;
	}
	int r = 0;
	if (fs->space_free < fs->reserve + bytes)
		r = -ENOSPC;
	else
		fs->space_free -= bytes;
	pthread_mutex_unlock(&fs->space_mu);
	return r;
}

int sfs_space_admit_locked(settfs *fs, uint64_t bytes)
{
	/* before anything is buffered: a buffered write could never commit */
	if (fs->read_only)
		return -EROFS;
	if (!fs->reserve)
		return 0;
	int r = space_try(fs, bytes, 0);
	return r == -ENOSPC ? SFS_ERECLAIM : r;
}

void sfs_space_reclaim(settfs *fs, uint64_t gen)
{
	pthread_mutex_lock(&fs->reclaim_mu);
	if (fs->reclaim_gen == gen && sfs_now() >= fs->reclaim_after) {
		int g = sett_reclaim(fs->db);
		fs->reclaim_after = g == 0 ? 0 : sfs_now() + RECLAIM_BACKOFF;
		__atomic_store_n(&fs->reclaim_gen, gen + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&fs->reclaim_mu);
}

uint64_t sfs_space_reclaim_gen(settfs *fs)
{
	return __atomic_load_n(&fs->reclaim_gen, __ATOMIC_ACQUIRE);
}

int sfs_space_admit(settfs *fs, uint64_t bytes)
{
	uint64_t gen = sfs_space_reclaim_gen(fs);
	int r = sfs_space_admit_locked(fs, bytes);
	if (r != SFS_ERECLAIM)
		return r;
	sfs_space_reclaim(fs, gen);
	return space_try(fs, bytes, 1);
}

int settfs_statfs(settfs *fs, struct statvfs *sv)
{
	struct statvfs disk;
	if (statvfs(fs->path, &disk) != 0)
		return -errno;
	sett_stats st;
	uint64_t used = 0;
	if (sett_get_stats(fs->db, &st) == 0)
		used = st.lsm_bytes + st.vlog_bytes + st.wal_bytes + st.memtable_bytes;
	unsigned long frsize = disk.f_frsize ? disk.f_frsize : 4096;
	memset(sv, 0, sizeof *sv);
	sv->f_bsize = fs->chunk_size;
	sv->f_frsize = frsize;
	/* Free space net of the reserve: df shows 100 % before writers get
	 * ENOSPC; f_bfree counts the reserve (as ext4's reserved blocks). */
	uint64_t rblocks = (fs->reserve + frsize - 1) / frsize;
	sv->f_bavail = disk.f_bavail > rblocks ? disk.f_bavail - rblocks : 0;
	sv->f_bfree = disk.f_bavail;
	sv->f_blocks = disk.f_bavail + (used + frsize - 1) / frsize;
	long long ni = atomic_load(&fs->used_inodes);
	uint64_t ffree = disk.f_ffree ? disk.f_ffree : (1ull << 32);
	sv->f_files = (fsfilcnt_t)(ni + (long long)ffree);
	sv->f_ffree = ffree;
	sv->f_favail = ffree;
	sv->f_namemax = SETTFS_NAME_MAX;
	return 0;
}
