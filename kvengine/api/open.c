/*
 * open.c - opening and closing a store and its statistics.
 * The state the rest of the engine shares is in db/state.c, below this
 * file: open.c starts and stops the writer, flusher, compactors and GC and
 * nothing below calls back up into it.
 *
 * Open sequence (doc/FORMAT.md, "Store directory"):
 *   1. lock the directory (LOCK, an flock the kernel drops when we die);
 *   2. KEYREGISTRY (keyregistry.c; one that holds data keys needs the
 *      master key, and its keys decrypt every other file; a key due for
 *      rotation gets its successor, which new files use);
 *   3. MANIFEST: which table is at which level (created only in a
 *      directory that holds no store file; missing or damaged while store
 *      files exist, it is a hard error and nothing is changed);
 *   4. open the tables named by the manifest, level by level, and sort the
 *      table files it does not name: leftovers it proves (an id it
 *      allocated), others (quarantined); when its tail is torn, the
 *      ids prove nothing and step 6 judges the tables by their contents;
 *   5. open the value log (the last file's torn tail is cut);
 *   6. replay every NNNNN.mem WAL, in order, into an immutable memtable
 *      (value pointers of the newest one are checked against the log);
 *      with a torn MANIFEST tail, an unnamed table all of whose entries
 *      the store already holds is a leftover, any other a hard error;
 *   7. only then delete the proven leftovers, move the others to
 *      quarantine/, cut the MANIFEST's torn tail, write a missing
 *      KEYREGISTRY of an unencrypted store;
 *   8. start the writer, the flusher, compaction and value-log GC.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "compaction.h"
#include "db_impl.h"
#include "discard.h"
#include "fileio.h"
#include "ikey.h"
#include "drop.h"
#include "pin.h"
#include "cipher.h"
#include "keyregistry.h"


/* ---- KEYREGISTRY ---- */

static int has_store_files(const char *dir, char *name, size_t n);

/* The rotation period of data keys, in seconds (0: never). */
static uint64_t rotation_seconds(const sett_options *o)
{
	return o->key_rotation_days > 0 ? (uint64_t)o->key_rotation_days * 86400 : 0;
}

/*
 * Step 2: the data keys (keyregistry.c), before anything that may be
 * encrypted is read.  A missing KEYREGISTRY is made here only for a new
 * store (with keys when a master key is given); in an existing store it
 * means an unencrypted one, whose 24-byte registry is written once the
 * open has succeeded (write_missing_registry).  When the current data
 * key is older than key_rotation_days, a writable open adds a new one
 * here, before anything could be written under it (the one change a
 * refused open may leave: the registry with one more key).
 */
static int keyregistry_open(sett_db *db, int *missing, char *why, size_t whylen)
{
	keyreg_master m = { .key = db->opt.encryption_key,
			    .passphrase = db->opt.encryption_passphrase };
	char path[4096], name[256];
	snprintf(path, sizeof path, "%s/KEYREGISTRY", db->dir);
	struct stat st;
	int ro = db->opt.read_only;
	*missing = 0;
	if (lstat(path, &st) != 0 && errno == ENOENT) {
		snprintf(path, sizeof path, "%s/MANIFEST", db->dir);
		int has = lstat(path, &st) == 0 ? 1 : has_store_files(db->dir, name, sizeof name);
		if (has < 0)
			return has;
		/* no store, and none to be made: the MANIFEST step says so */
		if (!has && !db->opt.create_if_missing)
			return 0;
		/* an existing store without one: unencrypted (a key is refused) */
		*missing = has;
		ro |= has;
	}
	int r = keyreg_open(db->dir, &m, ro, rotation_seconds(&db->opt), &db->kr, why, whylen);
	/* Rotation is done and written: only the data keys stay in memory. */
	keyreg_forget_master(db->kr);
	/* Nothing keeps the caller's key: the registry holds what it needs. */
	db->opt.encryption_key = NULL;
	db->opt.encryption_passphrase = NULL;
	if (!r)
		r = cipher_ring_new(db->kr, &db->ring);
	if (!r) {
		/* new tables, and (vlog_open) new value-log files, use the current key */
		db->keys = cipher_ring_keys(db->ring);
		db->topt.cipher = cipher_ring_current(db->ring);
	}
	return r;
}

static int write_missing_registry(sett_db *db, int missing)
{
	return missing && !db->opt.read_only ? keyreg_write(db->dir, NULL) : 0;
}

/* ---- open ---- */

typedef struct replay_ctx {
	memtable *mt;
	uint64_t max_version;
	size_t applied;
	buf vs;
	vlog *vl;          /* set for the newest WAL only */
	uint32_t max_fid;  /* newest value log file */
} replay_ctx;

/*
 * Value pointers of the newest WAL must lie inside the value log.  One that
 * does not means the WAL reached the disk and the value log's tail did not
 * (neither was synced before the crash; a retired WAL always was, after the
 * value log): that batch and everything after it are a torn tail.  A
 * pointer to a missing file older than the newest is a value GC moved and
 * deleted; the moved copy is a newer version that shadows it.
 */
static int replay_check(void *arg, const entry *e)
{
	replay_ctx *c = arg;
	if (!c->vl || !(e->meta & META_VALUE_POINTER))
		return 0;
	vptr p;
	if (vptr_decode(e->value.p, e->value.n, &p))
		return SETT_ECORRUPT;
	uint64_t size = vlog_file_size(c->vl, p.fid);
	if (size == 0)
		return p.fid > c->max_fid ? WAL_REPLAY_TORN : 0;
	return (uint64_t)p.offset + p.len > size ? WAL_REPLAY_TORN : 0;
}

static int replay_apply(void *arg, const entry *e)
{
	replay_ctx *c = arg;
	if (e->key.n < IKEY_SUFFIX)
		return SETT_ECORRUPT;
	vstruct v = { .meta = e->meta & META_LSM_MASK, .user_meta = e->user_meta,
		      .expires_at = e->expires_at, .data = e->value };
	c->vs.n = 0;
	int r = vstruct_append(&c->vs, &v);
	if (r)
		return r;
	uint64_t ver = ikey_version(e->key);
	if (ver > c->max_version)
		c->max_version = ver;
	c->applied++;
	return memtable_put(c->mt, e->key, slice_make(c->vs.p, c->vs.n));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Lists files named NNNN<suffix> in dir (ids sorted). */
static int list_ids(const char *dir, const char *suffix, uint64_t **ids, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	size_t cap = 0, cnt = 0;
	uint64_t *out = NULL;
	size_t sl = strlen(suffix);
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l <= sl || strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		char *end;
		unsigned long long id = strtoull(de->d_name, &end, 10);
		if (end != de->d_name + l - sl)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *p = realloc(out, cap * sizeof *p);
			if (!p) {
				free(out);
				closedir(d);
				return -ENOMEM;
			}
			out = p;
		}
		out[cnt++] = id;
	}
	closedir(d);
	if (cnt)
		qsort(out, cnt, sizeof *out, cmp_u64);
	*ids = out;
	*n = cnt;
	return 0;
}

static int lock_dir(sett_db *db)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/LOCK", db->dir);
	int fd = open(path, db->opt.read_only ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC,
		      0644);
	if (fd < 0)
		return db->opt.read_only && errno == ENOENT ? 0 : -errno;
	if (flock(fd, (db->opt.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? SETT_ELOCKED : -e;
	}
	if (!db->opt.read_only) {
		char pid[32];
		int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) {
			/* The pid is informational only. */
		}
	}
	db->lock_fd = fd;
	return 0;
}

/* Does process `pid` have a descriptor open on the file (dev, ino)? */
static int holds_file(long pid, dev_t dev, ino_t ino)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		char fd[330];
		struct stat st;
		snprintf(fd, sizeof fd, "%s/%s", dir, de->d_name);
		found = de->d_name[0] != '.' && stat(fd, &st) == 0 && st.st_dev == dev &&
			st.st_ino == ino;
	}
	closedir(d);
	return found;
}

/*
 * /proc/locks names a lock's file by the device of its filesystem's
 * superblock and its inode.  That device is stat's st_dev on most
 * filesystems, not on btrfs (a subvolume has a device of its own) or
 * overlayfs: a lock on the same inode number whose device differs counts
 * when its process has the file open.
 */
long sett_lock_holder(const char *path)
{
	char lock[4096];
	snprintf(lock, sizeof lock, "%s/LOCK", path);
	struct stat st;
	if (stat(lock, &st) != 0)
		return 0;
	/* /proc/locks: "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" */
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	char line[256];
	long pid = 0;
	long other[16];
	int nother = 0;
	while (!pid && fgets(line, sizeof line, f)) {
		char kind[16];
		long p;
		unsigned maj, min;
		unsigned long long ino;
		if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", kind, &p, &maj, &min, &ino) != 5 ||
		    strcmp(kind, "FLOCK") != 0 || ino != (unsigned long long)st.st_ino)
			continue;
		if (maj == major(st.st_dev) && min == minor(st.st_dev))
			pid = p;
		else if (nother < 16)
			other[nother++] = p;
	}
	fclose(f);
	for (int i = 0; !pid && i < nother; i++)
		if (holds_file(other[i], st.st_dev, st.st_ino))
			pid = other[i];
	return pid;
}

/* Table files the MANIFEST does not name, sorted at open (step 3). */
typedef struct unnamed_tables {
	uint64_t *ids;
	size_t n;
	size_t nleftover; /* ids[0, nleftover): proven leftovers; the rest: quarantine */
	uint64_t torn;    /* the MANIFEST's torn record's offset, or 0 */
} unnamed_tables;

static int open_tables(sett_db *db, manifest_table *mt, size_t nmt, unnamed_tables *un,
		       char *why, size_t whylen)
{
	lsm_version *v = version_new_empty();
	if (!v)
		return -ENOMEM;
	uint64_t max_id = 0, max_version = 0;
	int r = 0;
	table **opened = calloc(nmt ? nmt : 1, sizeof *opened);
	uint8_t *levels = calloc(nmt ? nmt : 1, 1);
	if (!opened || !levels)
		r = -ENOMEM;
	for (size_t i = 0; i < nmt && !r; i++) {
		char path[4096];
		db_table_path(db, mt[i].id, path, sizeof path);
		r = table_open_enc(path, mt[i].id, db->bcache, &db->keys, &opened[i], why, whylen);
		if (r == -ENOENT) {
			snprintf(why, whylen, "%s: named by MANIFEST but missing", path);
			r = SETT_ECORRUPT;
		}
		if (r == SETT_ECORRUPT && db->opt.read_only && db->opt.open_damaged) {
			r = table_open_damaged(path, mt[i].id, why, &opened[i]);
			db->damaged_tables++;
			why[0] = 0;
		}
		if (!r)
			table_set_reporter(opened[i], db_report_corrupt, db);
		levels[i] = mt[i].level;
		if (mt[i].id > max_id)
			max_id = mt[i].id;
		if (!r && table_max_version(opened[i]) > max_version)
			max_version = table_max_version(opened[i]);
	}
	/* A damaged table below L0 marks its level: its place in it is unknown. */
	size_t nadd = 0;
	if (!r && db->damaged_tables &&
	    !(db->damaged_below_l0 = calloc((size_t)db->damaged_tables, sizeof(table *))))
		r = -ENOMEM;
	for (size_t i = 0; i < nmt && !r; i++) {
		if (levels[i] > 0 && table_is_damaged(opened[i])) {
			if (!v->damaged[levels[i]]) {
				v->damaged[levels[i]] = opened[i];
				table_ref(opened[i]);
			}
			db->damaged_below_l0[db->ndamaged_below_l0++] = opened[i];
			opened[i] = NULL;
			continue;
		}
		levels[nadd] = levels[i];
		opened[nadd] = opened[i];
		if (nadd++ != i)
			opened[i] = NULL;
	}
	if (!r) {
		/* L0 newest first: version_apply puts later additions in front. */
		version_edit e = { .add = opened, .add_levels = levels, .nadd = nadd };
		lsm_version *nv;
		r = version_apply(v, &e, &nv);
		if (!r) {
			version_unref(v);
			v = nv;
		}
	}
	for (size_t i = 0; i < nmt; i++)
		if (opened && opened[i])
			table_unref(opened[i]);
	free(opened);
	free(levels);
	if (r) {
		version_unref(v);
		return r;
	}
	/* Versions continue after the newest ever used, even where its
	 * entries are gone (the MANIFEST's high-water mark, pins, drops). */
	if (manifest_max_version(db->man) > max_version)
		max_version = manifest_max_version(db->man);
	manifest_mark *mk;
	size_t nmk;
	if ((r = manifest_marks(db->man, &mk, &nmk))) {
		version_unref(v);
		return r;
	}
	for (size_t i = 0; i < nmk; i++)
		if (mk[i].version > max_version)
			max_version = mk[i].version;
	manifest_marks_free(mk, nmk);
	db->current = v;
	db->last_version = max_version;

	/*
	 * Table files the MANIFEST does not name.  One whose id the MANIFEST
	 * recorded as allocated (below its next id) is the engine's own: a
	 * table written but never recorded (a crash in between) or recorded
	 * deleted and not yet unlinked.  Any other is not accounted for and
	 * is kept aside.  With a torn MANIFEST tail the id proves nothing (the
	 * lost record may have named the table, or the MANIFEST may have lost
	 * more than its last append): prove_unnamed() decides after replay.
	 */
	uint64_t next = manifest_next_id(db->man), torn = manifest_torn_at(db->man);
	uint64_t *ids;
	size_t n;
	if ((r = list_ids(db->dir, ".sst", &ids, &n)))
		return r;
	/*
	 * New ids start at the limit: not past the unnamed files, which are
	 * gone (deleted or quarantined) by the time an id is handed out, and
	 * whose ids the engine never allocated if they are at or above it.
	 */
	db->table_id_limit = next;
	db->next_table_id = max_id + 1 > next ? max_id + 1 : next;
	un->ids = ids;
	un->n = 0;
	un->nleftover = 0;
	un->torn = torn;
	for (size_t i = 0; i < n; i++) {
		uint64_t id = ids[i];
		int known = 0;
		for (size_t k = 0; k < nmt && !known; k++)
			known = mt[k].id == id;
		if (known)
			continue;
		/* Leftovers first, in id order, then the others. */
		if (id < next) {
			memmove(&ids[un->nleftover + 1], &ids[un->nleftover],
				(un->n - un->nleftover) * sizeof *ids);
			ids[un->nleftover++] = id;
		} else {
			ids[un->n] = id;
		}
		un->n++;
	}
	return 0;
}

/*
 * Whether every entry of table `id` is also in the store as opened: the
 * same key at the same version, in a named table or a replayed WAL.
 * 0 if so, SETT_ECORRUPT (naming the first entry that is not) otherwise.
 */
static int table_accounted(sett_db *db, uint64_t id, char *why, size_t whylen)
{
	char path[4096];
	db_table_path(db, id, path, sizeof path);
	table *t;
	/* No block cache: a quarantined table's id may be handed out again. */
	int r = table_open_enc(path, id, NULL, &db->keys, &t, why, whylen);
	if (r)
		return r == -ENOENT ? 0 : r;
	sit *it = table_iter_new(t);
	table_unref(t);
	if (!it)
		return -ENOMEM;
	buf vs = { 0 };
	for (sit_first(it); !r && sit_valid(it); sit_next(it)) {
		slice ik = sit_key(it);
		uint64_t ver = ikey_version(ik), cur = 0;
		int f = db_lookup(db, ikey_user(ik), ver, &cur, &vs);
		if (f < 0)
			r = f;
		else if (f == 0 || cur != ver) {
			snprintf(why, whylen, "%s holds entries (version %llu) that no named table "
				 "or WAL holds", path, (unsigned long long)ver);
			r = SETT_ECORRUPT;
		}
	}
	if (!r)
		r = sit_error(it);
	buf_free(&vs);
	sit_free(it);
	return r;
}

/*
 * Step 6b: with a torn MANIFEST tail, an unnamed table is a crash leftover
 * only if the store as named already holds all of it.  A power cut tears
 * at most the last append, and everything that append's edit added (a
 * flush's table, a compaction's outputs) is still in the WAL or the input
 * tables it came from: those are deleted only after the edit is durable.
 * A table an intact record deleted (its unlink waits for its last reader)
 * is a leftover too: ids are never reused.  A table that holds anything
 * else was named by records the MANIFEST lost (a MANIFEST cut short or
 * damaged): the open is refused.
 */
static int prove_unnamed(sett_db *db, unnamed_tables *un, char *why, size_t whylen)
{
	if (!un->torn)
		return 0;
	for (size_t i = 0; i < un->n; i++) {
		/* deleted by an intact record: the lost one cannot bring it back */
		if (manifest_deleted_at_open(db->man, un->ids[i]))
			continue;
		char whyt[768] = "";
		int r = table_accounted(db, un->ids[i], whyt, sizeof whyt);
		if (r) {
			snprintf(why, whylen, "%s/MANIFEST: torn record at offset %llu, and %s",
				 db->dir, (unsigned long long)un->torn,
				 whyt[0] ? whyt : sett_strerror(r));
			return r;
		}
	}
	return 0;
}

/* Moves dir/name into dir/quarantine/ (never over an earlier one). */
static int quarantine(sett_db *db, const char *name)
{
	char qdir[4096], from[4200], to[4300];
	snprintf(qdir, sizeof qdir, "%s/quarantine", db->dir);
	snprintf(from, sizeof from, "%s/%s", db->dir, name);
	int r = sio_mkdir(qdir);
	if (r)
		return r;
	struct stat st;
	for (int i = 0;; i++) {
		if (i)
			snprintf(to, sizeof to, "%s/%s.%d", qdir, name, i);
		else
			snprintf(to, sizeof to, "%s/%s", qdir, name);
		if (lstat(to, &st) != 0)
			break;
	}
	if ((r = sio_rename(from, to)) || (r = sio_sync_dir(qdir)))
		return r;
	return sio_sync_dir(db->dir);
}

/* Step 7: deletes the proven leftovers and quarantines the other unnamed tables. */
static int settle_unnamed(sett_db *db, const unnamed_tables *un)
{
	for (size_t i = 0; i < un->n; i++) {
		char path[4096];
		db_table_path(db, un->ids[i], path, sizeof path);
		int r;
		if (i < un->nleftover)
			r = sio_unlink(path);
		else
			r = quarantine(db, strrchr(path, '/') + 1);
		if (r && r != -ENOENT)
			return r;
	}
	return 0;
}

/*
 * Whether dir holds a file with data of a store (a missing MANIFEST is then
 * damage, not a new store): the first one found goes to `name`.  LOCK,
 * KEYREGISTRY (keys only) and DISCARD (advisory) hold none, and neither
 * does a MANIFEST-REWRITE without them: it only names tables, and alone it
 * is what a crash inside the open that creates a store leaves.
 */
static int has_store_files(const char *dir, char *name, size_t n)
{
	static const char *const exact[] = { "quarantine" };
	static const char *const suffix[] = { ".sst", ".vlog", ".mem" };
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int found = 0;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		for (size_t i = 0; i < sizeof exact / sizeof *exact && !found; i++)
			found = strcmp(de->d_name, exact[i]) == 0;
		for (size_t i = 0; i < sizeof suffix / sizeof *suffix && !found; i++) {
			size_t sl = strlen(suffix[i]);
			found = l > sl && strcmp(de->d_name + l - sl, suffix[i]) == 0;
		}
		if (found)
			snprintf(name, n, "%s", de->d_name);
	}
	closedir(d);
	return found;
}

/*
 * Step 2.  A MANIFEST is created only where no store is: a missing one in
 * a directory that holds tables, value logs or WALs is a hard error.
 */
static int open_manifest(sett_db *db, manifest_table **mt, size_t *nmt, char *why,
			 size_t whylen)
{
	char path[4096], name[256];
	snprintf(path, sizeof path, "%s/MANIFEST", db->dir);
	struct stat st;
	if (lstat(path, &st) != 0 && errno == ENOENT) {
		int has = has_store_files(db->dir, name, sizeof name);
		if (has < 0)
			return has;
		if (has) {
			snprintf(why, whylen, "%s: missing, but the store holds %s/%s", path,
				 db->dir, name);
			return SETT_ECORRUPT;
		}
		if (db->opt.read_only || !db->opt.create_if_missing) {
			snprintf(why, whylen, "%s: no such file (not a store)", path);
			return -ENOENT;
		}
		int r = manifest_create_enc(db->dir, &db->topt.cipher);
		if (r)
			return r;
	}
	return manifest_open_enc(db->dir, db->opt.read_only, &db->topt.cipher, &db->keys, &db->man,
				 mt, nmt, why, whylen);
}

/*
 * Each WAL is replayed into a memtable of its own, as long as that
 * leaves a writer room to rotate (num_memtables - 1 slots); the WALs beyond
 * go into the newest replayed memtable, which keeps them all until it is
 * flushed.  Any number of WALs opens: a full disk fails every close's
 * flush and leaves one more WAL each time.
 */
static int replay_wals(sett_db *db, char *why, size_t whylen)
{
	uint64_t *ids;
	size_t n;
	int r = list_ids(db->dir, ".mem", &ids, &n);
	if (r)
		return r;
	db->next_wal_id = 1;
	uint32_t max_fid = vlog_head_fid(db->vl); /* the head is the newest file */
	int slots = db->opt.num_memtables - 1 < MAX_MEMTABLES - 1 ? db->opt.num_memtables - 1
								     : MAX_MEMTABLES - 1;
	for (size_t i = 0; i < n && !r; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%05llu.mem", db->dir, (unsigned long long)ids[i]);
		replay_ctx c = { 0 };
		if (i == n - 1) {
			c.vl = db->vl;
			c.max_fid = max_fid;
		}
		memslot *into = db->nimm >= slots ? &db->imm[db->nimm - 1] : NULL;
		if (into)
			c.mt = into->mt;
		else if ((r = memtable_new(&c.mt)))
			break;
		wal *w = NULL;
		r = wal_open_replay_enc(path, !db->opt.read_only, &db->topt.cipher, &db->keys,
					replay_check, replay_apply, &c, &w, why, whylen);
		buf_free(&c.vs);
		if (r) {
			if (!into)
				memtable_unref(c.mt);
			break;
		}
		if (c.max_version > db->last_version)
			db->last_version = c.max_version;
		db->next_wal_id = (uint32_t)ids[i] + 1;
		if (c.applied == 0 && !db->opt.read_only) {
			wal_close(w, 1);
			if (!into)
				memtable_unref(c.mt);
			continue;
		}
		if (!into) {
			db->imm[db->nimm++] = (memslot){ .mt = c.mt, .w = w };
			continue;
		}
		wal **more = realloc(into->more, (size_t)(into->nmore + 1) * sizeof *more);
		if (!more) {
			wal_close(w, 0);
			r = -ENOMEM;
			break;
		}
		into->more = more;
		into->more[into->nmore++] = w;
	}
	free(ids);
	return r;
}

static int check_options(const sett_options *o)
{
	if (o->mem_table_size < (64u << 10) || o->num_memtables < 2 || o->block_size < 256 ||
	    o->value_threshold < 1 || o->value_log_file_size < (1u << 16) ||
	    o->value_log_file_size > 0xffffffffull || o->num_level_zero_tables < 1 ||
	    o->num_level_zero_tables_stall <= o->num_level_zero_tables ||
	    o->level_size_multiplier < 2 || o->num_compactors < 0 ||
	    o->bloom_false_positive <= 0 || o->bloom_false_positive >= 1 ||
	    (o->compression != SETT_COMPRESS_NONE && o->compression != SETT_COMPRESS_ZSTD) ||
	    !(o->gc_garbage_share >= 0 && o->gc_garbage_share < 1))
		return -EINVAL;
	return 0;
}

/* Divides a memory budget between memtables and the block cache. */
static void apply_memory_budget(sett_options *o)
{
	if (!o->memory_budget)
		return;
	size_t per_mem = o->memory_budget / 2 / (size_t)o->num_memtables;
	if (per_mem < (1u << 20))
		per_mem = 1u << 20;
	if (o->mem_table_size > per_mem)
		o->mem_table_size = per_mem;
	size_t cache_bytes = o->memory_budget / 4;
	if (o->block_cache_size > cache_bytes)
		o->block_cache_size = cache_bytes;
}

static void db_free(sett_db *db)
{
	for (int i = 0; i < db->nimm; i++)
		db_memslot_free(&db->imm[i], 0);
	if (db->active.w)
		wal_close(db->active.w, memtable_count(db->active.mt) == 0);
	if (db->active.mt)
		memtable_unref(db->active.mt);
	if (db->current)
		version_unref(db->current);
	for (int i = 0; i < db->ndamaged_below_l0; i++)
		table_unref(db->damaged_below_l0[i]);
	free(db->damaged_below_l0);
	if (db->discard)
		discard_close(db->discard);
	if (db->vl)
		vlog_close(db->vl);
	if (db->man)
		manifest_close(db->man);
	pins_close(db);
	drops_close(db);
	if (db->bcache)
		cache_free(db->bcache);
	cipher_ring_free(db->ring);
	keyreg_free(db->kr); /* wipes the keys; nothing borrows them any more */
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->install_mu);
	pthread_mutex_destroy(&db->wmu);
	pthread_cond_destroy(&db->cv_flush);
	pthread_cond_destroy(&db->cv_room);
	pthread_cond_destroy(&db->cv_bg);
	pthread_cond_destroy(&db->wcv);
	pthread_cond_destroy(&db->done_cv);
	free(db->readers);
	buf_free(&db->gwbuf);
	buf_free(&db->gvsbuf);
	oracle_destroy(&db->orc);
	subs_destroy(&db->subs);
	free(db->dir);
	free(db);
}

int sett_open(const char *path, const sett_options *opt, sett_db **dbp)
{
	sett_options o;
	if (opt)
		o = *opt;
	else
		sett_options_init(&o);
	int r = check_options(&o);
	if (r)
		return r;
	apply_memory_budget(&o);

	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !o.create_if_missing || o.read_only)
			return -errno;
		if ((r = sio_mkdir(path)))
			return r;
	} else if (!S_ISDIR(st.st_mode)) {
		return -ENOTDIR;
	}

	/* GC works file by file: no file may take a large share of the disk. */
	struct statvfs sv;
	uint64_t disk = statvfs(path, &sv) == 0 ? (uint64_t)sv.f_blocks * sv.f_frsize : 0;
	if (disk && o.value_log_file_size > disk / 16)
		o.value_log_file_size = disk / 16 > (1u << 20) ? disk / 16 : (1u << 20);

	sett_db *db = calloc(1, sizeof *db);
	if (!db || !(db->dir = strdup(path))) {
		free(db);
		return -ENOMEM;
	}
	db->opt = o;
	db->lock_fd = -1;
	db->inflight_fid = UINT32_MAX;
	pthread_mutex_init(&db->mu, NULL);
	pthread_mutex_init(&db->install_mu, NULL);
	pthread_mutex_init(&db->wmu, NULL);
	pthread_cond_init(&db->cv_flush, NULL);
	pthread_cond_init(&db->cv_room, NULL);
	pthread_cond_init(&db->cv_bg, NULL);
	pthread_cond_init(&db->wcv, NULL);
	pthread_cond_init(&db->done_cv, NULL);
	oracle_init(&db->orc);
	subs_init(&db->subs);
	db->topt = (table_options){ .block_size = o.block_size, .compression = o.compression,
				    .zstd_level = o.zstd_level, .bloom_fp = o.bloom_false_positive };

	char why[1024] = "";
	manifest_table *mt = NULL;
	size_t nmt = 0;
	unnamed_tables un = { 0 };
	int no_registry = 0;
	if ((r = lock_dir(db)))
		goto fail;
	if ((r = keyregistry_open(db, &no_registry, why, sizeof why)))
		goto fail;
	if ((r = cache_new(o.block_cache_size, &db->bcache)))
		goto fail;
	if ((r = open_manifest(db, &mt, &nmt, why, sizeof why)))
		goto fail;
	if ((r = pins_open(db)))
		goto fail;
	if ((r = open_tables(db, mt, nmt, &un, why, sizeof why)))
		goto fail;
	/* the value log first: replay checks the WAL's pointers against it */
	vlog_options vo = { .file_size = o.value_log_file_size,
			    .max_entries = o.value_log_max_entries,
			    .read_only = o.read_only,
			    .verify_checksum = o.verify_value_checksum,
			    .cipher = db->topt.cipher, .keys = db->keys };
	if ((r = vlog_open(db->dir, &vo, &db->vl, why, sizeof why)))
		goto fail;
	if ((r = replay_wals(db, why, sizeof why)))
		goto fail;
	if ((r = prove_unnamed(db, &un, why, sizeof why)))
		goto fail;
	/* Advisory: a damaged DISCARD starts empty (compaction and GC rebuild it). */
	r = discard_open(db->dir, o.read_only, &db->discard, NULL, 0);
	if (r == SETT_ECORRUPT)
		r = discard_new(db->dir, o.read_only, &db->discard);
	if (r)
		goto fail;
	db->next_version = db->last_version;
	if ((r = drops_open(db)))
		goto fail;
	free(mt);
	mt = NULL;

	if (o.read_only) {
		/* Replayed memtables stay in memory; nothing is written. */
		free(un.ids);
		if ((r = memtable_new(&db->active.mt)))
			goto fail;
		*dbp = db;
		return 0;
	}
	r = settle_unnamed(db, &un);
	free(un.ids);
	un.ids = NULL;
	if (r || (r = manifest_finish_open(db->man)) ||
	    (r = write_missing_registry(db, no_registry)))
		goto fail;
	pthread_mutex_lock(&db->mu);
	r = db_new_memslot_locked(db, &db->active);
	pthread_mutex_unlock(&db->mu);
	if (r)
		goto fail;
	/* The compactors first: the writer and the flusher read db->compactors
	 * without a lock, which is safe only if it is set before they start. */
	if ((r = compaction_start(db)))
		goto fail_threads;
	if ((r = pthread_create(&db->writer, NULL, db_writer_main, db))) {
		r = -r;
		goto fail_threads;
	}
	db->have_writer = 1;
	if ((r = pthread_create(&db->flusher, NULL, db_flusher_main, db))) {
		r = -r;
		goto fail_threads;
	}
	db->have_flusher = 1;
	if ((r = gc_start(db)))
		goto fail_threads;
	*dbp = db;
	return 0;

fail_threads:
	sett_close(db);
	return r;
fail:
	if (o.error_buf && o.error_buf_size)
		snprintf(o.error_buf, o.error_buf_size, "%s", why[0] ? why : sett_strerror(r));
	free(mt);
	free(un.ids);
	db_free(db);
	return r;
}

int sett_close(sett_db *db)
{
	if (!db)
		return 0;
	int r = 0;
	if (!db->opt.read_only) {
		gc_stop(db);
		/* The writer finishes what is queued and exits. */
		pthread_mutex_lock(&db->wmu);
		db->closing = 1;
		pthread_cond_broadcast(&db->wcv);
		pthread_mutex_unlock(&db->wmu);
		/* A writer stalled on a deep L0 goes on: compactions that cannot
		 * progress must not hang close (see rotate()). */
		pthread_mutex_lock(&db->mu);
		db->stopping = STOP_WRITERS;
		pthread_cond_broadcast(&db->cv_room);
		pthread_mutex_unlock(&db->mu);
		if (db->have_writer)
			pthread_join(db->writer, NULL);
		db->have_writer = 0;
		/* Flush everything, so the next open replays nothing. */
		pthread_mutex_lock(&db->mu);
		if (!db->bg_error && db->active.mt && memtable_count(db->active.mt) &&
		    db->nimm < MAX_MEMTABLES) {
			db->imm[db->nimm++] = db->active;
			db->active = (memslot){ 0 };
		}
		db->stopping = STOP_FLUSHER;
		pthread_cond_broadcast(&db->cv_flush);
		pthread_mutex_unlock(&db->mu);
		if (db->have_flusher)
			pthread_join(db->flusher, NULL);
		db->have_flusher = 0;
		compaction_stop(db);
		r = db->bg_error;
		if (!r && db->vl)
			r = vlog_sync(db->vl);
		/* A flush that failed (full disk) left memtables: their WALs,
		 * made durable here, are replayed at the next open. */
		for (int i = 0; !r && i < db->nimm; i++)
			r = db_memslot_sync(&db->imm[i]);
		if (!r && db->nimm)
			r = db->stall_error[STALL_MEMTABLES] ? db->stall_error[STALL_MEMTABLES] : -EIO;
	}
	db_free(db);
	return r;
}


int sett_get_stats(sett_db *db, sett_stats *st)
{
	memset(st, 0, sizeof *st);
	db_view vw;
	db_view_get(db, &vw);
	for (int l = 0; l < MAX_LEVELS; l++) {
		st->levels[l].tables = vw.v->ntables[l];
		st->levels[l].bytes = version_level_bytes(vw.v, l);
		st->lsm_bytes += st->levels[l].bytes;
	}
	st->memtables = vw.nmts;
	for (int i = 0; i < vw.nmts; i++)
		st->memtable_bytes += memtable_bytes(vw.mts[i]);
	db_view_release(&vw);
	compaction_fill_stats(db, st);
	pthread_mutex_lock(&db->mu);
	if (db->active.w)
		st->wal_bytes += wal_size(db->active.w);
	for (int i = 0; i < db->nimm; i++)
		st->wal_bytes += db_memslot_wal_bytes(&db->imm[i]);
	pthread_mutex_unlock(&db->mu);
	sett_vlog_info vi[256];
	int n = sett_vlog_files(db, vi, 256);
	st->vlog_files = n > 0 ? n : 0;
	for (int i = 0; i < n && i < 256; i++) {
		st->vlog_bytes += vi[i].bytes;
		st->vlog_discard_bytes += vi[i].discard_bytes;
	}
	if (db->bcache) {
		cache_stats cs;
		cache_get_stats(db->bcache, &cs);
		st->block_cache_hits = cs.hits;
		st->block_cache_misses = cs.misses;
		st->block_cache_bytes = cs.bytes;
	}
	st->last_version = sett_current_version(db);
	st->bytes_written_user = __atomic_load_n(&db->stat_user_bytes, __ATOMIC_RELAXED);
	st->bytes_written_disk = sio_bytes_written();
	st->compactions = __atomic_load_n(&db->stat_compactions, __ATOMIC_RELAXED);
	st->gc_runs = __atomic_load_n(&db->stat_gc_runs, __ATOMIC_RELAXED);
	st->gc_files_rewritten = __atomic_load_n(&db->stat_gc_files, __ATOMIC_RELAXED);
	gc_fill_stats(db, st);
	st->write_stalls = __atomic_load_n(&db->stat_write_stalls, __ATOMIC_RELAXED);
	st->write_stall_us = __atomic_load_n(&db->stat_write_stall_us, __ATOMIC_RELAXED);
	st->damaged_tables = db->damaged_tables;
	return 0;
}

int db_list_ids(const char *dir, const char *suffix, uint64_t **ids, size_t *n)
{
	return list_ids(dir, suffix, ids, n);
}
