/*
 * fsck_settfs.c - fsck.settfs: check and repair a settfs store.
 *
 *   fsck.settfs [-n | -p | -a | -y] [-f] [-q] [-C FD]
 *               [--key-file F | --passphrase-file F] STORE
 *
 * -n (also the default): report only; the store is opened read-only and
 * nothing is changed.  -p: fix what is safe without a person deciding (link
 * counts, block counts, inode flags, bytes past the end of a file, orphan
 * keys, the inode counter).  -y: fix everything that can be fixed: also
 * rebuild the engine's MANIFEST and damaged tables (sett_repair), remove
 * entries that point at missing inodes, link unreachable inodes and
 * detached directories into /lost+found, delete the data of missing
 * inodes and unreadable chunks.
 *
 * The engine verifies every checksum first (sett_verify); then the
 * filesystem invariants are checked over a full scan of the keys: a valid
 * superblock and inode counter; every inode decodes; every directory entry
 * names an existing inode of the type it records, under a directory; nlink
 * equals the number of entries (directories: 2 + subdirectories); every
 * directory reaches the root; an inode without entries has an orphan key;
 * chunks and xattrs belong to existing inodes, chunks lie within the file
 * size and can be read, and the stored bytes match the inode's block
 * count; a POSIX ACL is valid, a default ACL belongs to a directory and an
 * access ACL says the inode's mode.  Every fault is reported, with the path of the file it concerns.
 * The analysis reads everything first and writes its fixes afterwards (the
 * namespace and inode fixes in one batch); a fixing run is followed by a
 * quiet check, and what it still finds counts as uncorrected.
 *
 * -f is taken for fsck(8) and does nothing (every check is full); -a is
 * -p.  -C FD shows progress as e2fsck does (progress.h); without it a bar
 * is drawn on stderr when that is a terminal.  man/fsck.settfs.8 is the
 * user's description.
 *
 * An encrypted store is opened with the key of --key-file or
 * --passphrase-file (key.h); a wrong or missing key is an operational
 * error, never damage: nothing is repaired or changed.
 *
 * Exit status (as e2fsck): 0 clean, 1 errors corrected, 4 errors left
 * uncorrected (1|4 = 5: some of each), 8 operational error, 16 usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "snapshot.h"
#include <unistd.h>

#include "acl.h"
#include "fs_int.h"
#include "schema.h"
#include "getopt_std.h"
#include "key.h"
#include "settfs.h"
#include "progress.h"

enum { EXIT_CLEAN = 0, EXIT_FIXED = 1, EXIT_LEFT = 4, EXIT_OPERR = 8, EXIT_USAGE = 16 };

/* The fix level a fault needs: -p fixes FIX_SAFE, -y also FIX_ALL. */
enum { FIX_NONE = 0, FIX_SAFE = 1, FIX_ALL = 2 };

enum { INO_LIVE = 0, INO_RECLAIMED, INO_DROPPED };

typedef struct fino {
	uint64_t ino;
	sfs_inode in;
	int state;
	int orphan;
	int reach;
	int dirty;   /* `in` changed: rewrite it */
	int made;    /* created by this run (its link count is set, not a fault) */
	int unreach; /* reported unreachable and left so */
	int phantom; /* remade in memory only: this run does not fix it */
	uint64_t refs, subdirs, stored;
	size_t ent;  /* the entry that names it (SIZE_MAX: none) */
} fino;

typedef struct fent {
	uint64_t parent, child;
	uint32_t type;
	char *name;
	size_t len;
	int gone;  /* removed by a fix */
	int added; /* (re)written by a fix */
	int stored; /* the key exists in the store */
	int remade; /* it names an inode that is remade (or would be, with -y) */
} fent;

/* A key whose data the engine repair could not save. */
typedef struct lostkey {
	int kind;
	uint8_t *k, *kend;
	size_t kn, kendn;
	char *msg;
} lostkey;

static struct {
	int level;   /* FIX_* this run may apply */
	int quiet;
	long found, fixed;
	sett_db *db;
	sett_batch *ns;   /* namespace and inode fixes: committed at the end */
	sett_batch *junk; /* deletions of unreachable keys: committed as they grow */
	fino *inodes;
	size_t ninodes, capinodes;
	fent *ents;
	size_t nents, capents;
	uint32_t cs;
	uint32_t sbversion;
	uint64_t next_ino;
	uint64_t lf;      /* /lost+found, 0 until found or made */
	int remake_super; /* write a new superblock */
	int remake_props; /* write the compression setting anew (none) */
	int blocked;      /* engine faults left: nothing is fixed */
	int fatal;        /* an engine error stopped a scan: fix nothing */
	lostkey *lost;
	size_t nlost;
} ck;

/* -C, or a terminal on stderr: how far the check is (progress.h) */
static progress prog;

/* One more item of pass `pass` (2 inodes, 3 entries, 4 chunks, 5 the rest). */
static void step(int pass, const char *what)
{
	static const char *cur;
	static uint64_t n;
	if (what != cur) {
		cur = what;
		n = 0;
	}
	progress_set(&prog, pass, what, ++n, 0);
}

static const char *level_flag(int need)
{
	return need == FIX_SAFE ? "-p" : "-y";
}

static void print_key(const void *key, size_t n)
{
	const uint8_t *k = key;
	fputs(" [key ", stdout);
	for (size_t i = 0; i < n && i < 40; i++)
		printf("%02x", k[i]);
	if (n > 40)
		fputs("...", stdout);
	putchar(']');
}

/*
 * Reports one fault.  Returns 1 when this run fixes it (the caller then
 * adds the fix), 0 when it is left.  `need` FIX_NONE: cannot be fixed.
 */
static int fault(int need, const void *k, size_t kn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fault(int need, const void *k, size_t kn, const char *fmt, ...)
{
	int fix = need != FIX_NONE && ck.level >= need && !ck.fatal;
	ck.found++;
	ck.fixed += fix;
	if (ck.quiet)
		return fix;
	progress_clear(&prog);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (k)
		print_key(k, kn);
	if (fix)
		fputs(": fixed", stdout);
	else if (need != FIX_NONE && !ck.fatal)
		printf(": not fixed (needs %s)", ck.blocked ? "-y, for the engine" : level_flag(need));
	putchar('\n');
	return fix;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	if (ck.quiet)
		return;
	progress_clear(&prog);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void oom(void)
{
	fprintf(stderr, "fsck.settfs: out of memory\n");
	exit(EXIT_OPERR);
}

/* Fails the run: "fsck.settfs: STORE: what: why" (what may name the file itself). */
static void operr(const char *what, int r)
{
	const char *store = prog.store ? prog.store : "";
	progress_clear(&prog);
	if (*store && strncmp(what, store, strlen(store)) != 0)
		fprintf(stderr, "fsck.settfs: %s: %s: %s\n", store, what, sett_strerror(r));
	else
		fprintf(stderr, "fsck.settfs: %s: %s\n", what, sett_strerror(r));
	exit(EXIT_OPERR);
}

/* ---- fixes ---- */

static void junk_commit(void)
{
	if (sett_batch_count(ck.junk) == 0)
		return;
	int r = sett_write(ck.db, ck.junk, 0, NULL);
	if (r)
		operr("write", r);
	sett_batch_clear(ck.junk);
}

static void del_key(sett_batch *b, const void *k, size_t kn)
{
	int r = sett_batch_delete(b, (sett_val){ kn, k });
	if (r)
		operr("batch", r);
	if (b == ck.junk && sett_batch_count(b) >= 50000)
		junk_commit();
}

static void set_key(sett_batch *b, const void *k, size_t kn, const void *v, size_t vn)
{
	int r = sett_batch_set(b, (sett_val){ kn, k }, (sett_val){ vn, v });
	if (r)
		operr("batch", r);
}

/* ---- the in-memory tables ---- */

static fino *find(uint64_t ino)
{
	size_t lo = 0, hi = ck.ninodes;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (ck.inodes[m].ino < ino)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < ck.ninodes && ck.inodes[lo].ino == ino ? &ck.inodes[lo] : NULL;
}

static fino *live(uint64_t ino)
{
	fino *f = find(ino);
	return f && f->state == INO_LIVE ? f : NULL;
}

/* Appends an inode (numbers must come in increasing order). */
static fino *add_inode(uint64_t ino)
{
	if (ck.ninodes == ck.capinodes) {
		ck.capinodes = ck.capinodes ? ck.capinodes * 2 : 1024;
		ck.inodes = realloc(ck.inodes, ck.capinodes * sizeof *ck.inodes);
		if (!ck.inodes)
			oom();
	}
	fino *f = &ck.inodes[ck.ninodes++];
	memset(f, 0, sizeof *f);
	f->ino = ino;
	f->ent = SIZE_MAX;
	return f;
}

/* Inserts an inode at its place in the sorted table. */
static fino *insert_inode(uint64_t ino)
{
	add_inode(ino);
	size_t i = ck.ninodes - 1;
	while (i > 0 && ck.inodes[i - 1].ino > ino)
		i--;
	memmove(&ck.inodes[i + 1], &ck.inodes[i], (ck.ninodes - 1 - i) * sizeof *ck.inodes);
	memset(&ck.inodes[i], 0, sizeof ck.inodes[i]);
	ck.inodes[i].ino = ino;
	ck.inodes[i].ent = SIZE_MAX;
	return &ck.inodes[i];
}

static fent *add_ent(uint64_t parent, const char *name, size_t len, uint64_t child, uint32_t type)
{
	if (ck.nents == ck.capents) {
		ck.capents = ck.capents ? ck.capents * 2 : 1024;
		ck.ents = realloc(ck.ents, ck.capents * sizeof *ck.ents);
		if (!ck.ents)
			oom();
	}
	fent *e = &ck.ents[ck.nents++];
	memset(e, 0, sizeof *e);
	e->parent = parent;
	e->child = child;
	e->type = type;
	e->len = len;
	e->name = malloc(len + 1);
	if (!e->name)
		oom();
	memcpy(e->name, name, len);
	e->name[len] = 0;
	return e;
}

/* ---- paths ---- */

/*
 * The path of an inode through the entries that name it, written to out
 * (always NUL-terminated).  A chain that breaks (an inode nothing names, a
 * loop) starts with "<inode N>".
 */
static const char *path_of(uint64_t ino, char *out, size_t n)
{
	size_t pos = n - 1;
	out[pos] = 0;
	uint64_t cur = ino, seen[256];
	for (size_t steps = 0; cur != SETTFS_ROOT_INO; steps++) {
		fino *f = find(cur);
		fent *e = f && f->ent != SIZE_MAX ? &ck.ents[f->ent] : NULL;
		int loop = steps > ck.ninodes;
		for (size_t i = 0; i < steps && i < 256 && !loop; i++)
			loop = seen[i] == cur;
		if (steps < 256)
			seen[steps] = cur;
		if (!e || loop || e->len + 1 > pos) {
			char head[48];
			int hn = snprintf(head, sizeof head, "<inode %llu>", (unsigned long long)cur);
			if ((size_t)hn > pos)
				hn = (int)pos;
			pos -= (size_t)hn;
			memcpy(out + pos, head, (size_t)hn);
			return out + pos;
		}
		pos -= e->len;
		memcpy(out + pos, e->name, e->len);
		out[--pos] = '/';
		cur = e->parent;
	}
	if (pos == n - 1)
		out[--pos] = '/';
	return out + pos;
}

/* The path of entry `e` (which may name a missing inode). */
static const char *ent_path(const fent *e, char *out, size_t n)
{
	char pb[4096];
	const char *p = path_of(e->parent, pb, sizeof pb);
	snprintf(out, n, "%s%s%s", p, strcmp(p, "/") ? "/" : "", e->name);
	return out;
}

#define PATH(ino) path_of((ino), (char[4096]){ 0 }, 4096)

/* ---- scans ---- */

static sett_iter *scan(char tag, int key_only)
{
	uint8_t p[1] = { (uint8_t)tag };
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = key_only;
	if (tag) {
		io.prefix.data = p;
		io.prefix.size = 1;
	}
	sett_iter *it;
	int r = sett_iter_new(ck.db, &io, &it);
	if (r)
		operr("scan", r);
	sett_iter_rewind(it);
	return it;
}

/* Ends a scan; an engine error (a damaged table) stops every fix. */
static void scan_end(sett_iter *it, int r, const char *what)
{
	if (!r)
		r = sett_iter_error(it);
	sett_iter_free(it);
	if (r) {
		fault(FIX_NONE, NULL, 0, "scan of %s stopped: %s (the engine must be repaired: -y)",
		      what, sett_strerror(r));
		ck.fatal = 1;
	}
}

/* Does any key with this tag exist? */
static int any_key(char tag)
{
	sett_iter *it = scan(tag, 1);
	int any = sett_iter_valid(it);
	sett_iter_free(it);
	return any;
}

/*
 * The chunk size of a store whose superblock is lost: a chunk followed by
 * another of the same file is full, so its length is the chunk size; else
 * the largest chunk, rounded up to a power of two, and at least the default.
 */
static uint32_t guess_chunk_size(void)
{
	sett_iter *it = scan(SFS_TAG_CHUNK, 1);
	uint64_t prev_ino = 0, prev_idx = UINT64_MAX, prev_len = 0, largest = 0, full = 0;
	for (; sett_iter_valid(it) && !full; sett_iter_next(it)) {
		sett_val key = sett_iter_key(it), val;
		if (key.size != SFS_CHUNK_KEY_LEN || sett_iter_value(it, &val))
			continue;
		const uint8_t *kb = key.data;
		uint64_t ino = sfs_get_be64(kb + 1), idx = sfs_get_be64(kb + 9);
		uint32_t len; /* a compressed chunk's header says its length */
		if (sfs_chunk_len(sett_iter_user_meta(it), val.data, val.size, 1u << 20, &len))
			continue;
		if (ino == prev_ino && idx == prev_idx + 1 && prev_len >= 4096 &&
		    !(prev_len & (prev_len - 1)))
			full = prev_len;
		if (len > largest)
			largest = len;
		prev_ino = ino;
		prev_idx = idx;
		prev_len = len;
	}
	sett_iter_free(it);
	if (full && full <= (1u << 20))
		return (uint32_t)full;
	uint32_t cs = SETTFS_DEFAULT_CHUNK_SIZE;
	while (cs < largest && cs < (1u << 20))
		cs <<= 1;
	return cs;
}

static void load_super(void)
{
	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t vn = 0;
	sfs_super sb = { 0 };
	ck.cs = SETTFS_DEFAULT_CHUNK_SIZE;
	int r = sett_get(ck.db, (sett_val){ sfs_key_super(k), k }, 0, &v, &vn);
	int d = r ? 0 : sfs_super_decode(v, vn, &sb);
	if (d == -EPROTO) {
		fprintf(stderr, "fsck.settfs: settfs format %u is not supported by this fsck\n",
			sb.version);
		exit(EXIT_OPERR);
	}
	if (r || d) {
		if (r == SETT_ENOTFOUND && !any_key(SFS_TAG_INODE)) {
			fprintf(stderr, "fsck.settfs: no superblock and no inode: not a settfs store\n");
			exit(EXIT_OPERR);
		}
		sb.version = SFS_SUPER_VERSION;
		ck.cs = guess_chunk_size();
		ck.remake_super = fault(FIX_ALL, k, 1,
					"superblock %s: remade, with chunk size %u guessed from the chunks",
					r == SETT_ENOTFOUND ? "missing" : r ? sett_strerror(r) : "damaged",
					ck.cs);
	} else {
		ck.cs = sb.chunk_size;
	}
	ck.sbversion = sb.version;
	free(v);
	v = NULL;
	/* format 4 keeps the compression setting in the `F` key */
	uint8_t pk[1] = { SFS_TAG_PROPS };
	sfs_props props;
	r = ck.sbversion >= SFS_SUPER_CODEC_VERSION ? sett_get(ck.db, (sett_val){ 1, pk }, 0, &v, &vn)
						     : 0;
	if (ck.sbversion >= SFS_SUPER_CODEC_VERSION && (r || sfs_props_decode(v, vn, &props)))
		ck.remake_props = fault(FIX_ALL, pk, 1, "compression setting %s: reset to none",
					r == SETT_ENOTFOUND ? "missing" : r ? sett_strerror(r) : "damaged");
	free(v);
	v = NULL;
	ck.next_ino = 0;
	r = sett_get(ck.db, (sett_val){ sfs_key_nextino(k), k }, 0, &v, &vn);
	if (r == 0 && vn == 8)
		ck.next_ino = sfs_get_be64(v);
	else
		ck.next_ino = 0; /* checked against the inodes below */
	free(v);
}

static void load_inodes(void)
{
	sett_iter *it = scan(SFS_TAG_INODE, 0);
	int r = 0;
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		step(2, "inodes");
		sett_val key = sett_iter_key(it), val;
		if (key.size != 9) {
			if (fault(FIX_ALL, key.data, key.size, "bad inode key"))
				del_key(ck.junk, key.data, key.size);
			continue;
		}
		uint64_t ino = sfs_get_be64((const uint8_t *)key.data + 1);
		if ((r = sett_iter_value(it, &val)))
			break;
		fino *f = add_inode(ino);
		if (sfs_inode_decode(val.data, val.size, &f->in) != 0) {
			sfs_inode_free(&f->in);
			memset(&f->in, 0, sizeof f->in);
			f->state = INO_DROPPED;
			f->dirty = fault(FIX_ALL, key.data, key.size,
					 "inode %llu does not decode", (unsigned long long)ino);
		}
	}
	scan_end(it, r, "inodes");
}

static void load_orphans(void)
{
	sett_iter *it = scan(SFS_TAG_ORPHAN, 1);
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		step(2, "orphans");
		sett_val key = sett_iter_key(it);
		if (key.size != 9) {
			if (fault(FIX_ALL, key.data, key.size, "bad orphan key"))
				del_key(ck.junk, key.data, key.size);
			continue;
		}
		uint64_t ino = sfs_get_be64((const uint8_t *)key.data + 1);
		fino *f = find(ino);
		if (f) {
			f->orphan = 1;
		} else {
			/* an unfinished reclaim: mount completes it, and so does -p */
			insert_inode(ino)->state = INO_RECLAIMED;
			if (ck.level >= FIX_SAFE && !ck.fatal)
				del_key(ck.junk, key.data, key.size);
		}
	}
	scan_end(it, 0, "orphans");
}

static void load_entries(void)
{
	sett_iter *it = scan(SFS_TAG_DENTRY, 0);
	int r = 0;
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		step(3, "directory entries");
		sett_val key = sett_iter_key(it), val;
		const uint8_t *kb = key.data;
		if (key.size <= 9 || key.size > 9 + SETTFS_NAME_MAX ||
		    memchr(kb + 9, '/', key.size - 9) || memchr(kb + 9, 0, key.size - 9)) {
			if (fault(FIX_ALL, key.data, key.size, "bad directory entry name: removed"))
				del_key(ck.ns, key.data, key.size);
			continue;
		}
		uint64_t parent = sfs_get_be64(kb + 1), child;
		uint32_t type;
		if ((r = sett_iter_value(it, &val)))
			break;
		if (sfs_dentry_decode(val.data, val.size, &child, &type) != 0) {
			if (fault(FIX_ALL, key.data, key.size, "directory entry does not decode: removed"))
				del_key(ck.ns, key.data, key.size);
			continue;
		}
		add_ent(parent, (const char *)kb + 9, key.size - 9, child, type)->stored = 1;
	}
	scan_end(it, r, "directory entries");
}

/* ---- namespace analysis ---- */

static void drop_ent(fent *e)
{
	uint8_t k[SFS_KEY_MAX];
	e->gone = 1;
	if (e->stored)
		del_key(ck.ns, k, sfs_key_dentry(k, e->parent, e->name, e->len));
}

static int name_taken(uint64_t dir, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < ck.nents; i++) {
		fent *e = &ck.ents[i];
		if (e->parent == dir && e->len == len && !memcmp(e->name, name, len))
			return 1;
	}
	return 0;
}

static uint64_t new_ino(void)
{
	uint64_t ino = ck.next_ino;
	if (ck.ninodes && ck.inodes[ck.ninodes - 1].ino >= ino)
		ino = ck.inodes[ck.ninodes - 1].ino + 1;
	ck.next_ino = ino + 1;
	return ino;
}

static fino *new_dir(uint64_t parent, mode_t perm)
{
	fino *f = add_inode(new_ino());
	f->in.mode = S_IFDIR | perm;
	f->in.nlink = 2;
	f->in.atime = f->in.mtime = f->in.ctime = f->in.btime = sfs_now();
	f->in.parent = parent;
	f->dirty = 1;
	f->made = 1;
	return f;
}

/* /lost+found, made (mode 0700, as e2fsck) at the first need; NULL if impossible. */
static fino *lost_found(void)
{
	if (ck.lf)
		return live(ck.lf);
	for (size_t i = 0; i < ck.nents; i++) {
		fent *e = &ck.ents[i];
		if (!e->gone && e->parent == SETTFS_ROOT_INO && !strcmp(e->name, "lost+found")) {
			fino *f = live(e->child);
			if (!f || !S_ISDIR(f->in.mode))
				return NULL;
			ck.lf = f->ino;
			return f;
		}
	}
	fino *f = new_dir(SETTFS_ROOT_INO, 0700);
	fent *e = add_ent(SETTFS_ROOT_INO, "lost+found", 10, f->ino, S_IFDIR);
	e->added = 1;
	f->ent = (size_t)(e - ck.ents);
	f->reach = 1;
	ck.lf = f->ino;
	note("created /lost+found (inode %llu)", (unsigned long long)f->ino);
	return live(ck.lf); /* add_inode may have moved the array */
}

/* Links f into /lost+found as "#INO" (its old entry, if any, is dropped). */
static int link_lost(fino *f)
{
	uint64_t ino = f->ino;
	fino *lf = lost_found();
	f = find(ino);
	if (!lf)
		return -1;
	char name[64];
	snprintf(name, sizeof name, "#%llu", (unsigned long long)ino);
	for (int i = 1; name_taken(lf->ino, name); i++)
		snprintf(name, sizeof name, "#%llu.%d", (unsigned long long)ino, i);
	if (f->ent != SIZE_MAX)
		drop_ent(&ck.ents[f->ent]);
	fent *e = add_ent(lf->ino, name, strlen(name), ino, f->in.mode & S_IFMT);
	e->added = 1;
	f->ent = (size_t)(e - ck.ents);
	if (S_ISDIR(f->in.mode) && f->in.parent != lf->ino) {
		f->in.parent = lf->ino;
		f->dirty = 1;
	}
	return 0;
}

static void mark_reach(uint64_t dir);

/* Directory entries by parent, for the reachability walk. */
static size_t *byparent;

static int cmp_ent_parent(const void *a, const void *b)
{
	const fent *x = &ck.ents[*(const size_t *)a], *y = &ck.ents[*(const size_t *)b];
	return x->parent < y->parent ? -1 : x->parent > y->parent;
}

static void mark_reach(uint64_t dir)
{
	/* an explicit stack: trees may be deep */
	size_t cap = 64, n = 0;
	uint64_t *st = malloc(cap * sizeof *st);
	if (!st)
		oom();
	st[n++] = dir;
	while (n) {
		uint64_t d = st[--n];
		fino *df = live(d);
		if (!df || df->reach)
			continue;
		df->reach = 1;
		/* first entry of parent d in byparent */
		size_t lo = 0, hi = ck.nents;
		while (lo < hi) {
			size_t m = (lo + hi) / 2;
			if (ck.ents[byparent[m]].parent < d)
				lo = m + 1;
			else
				hi = m;
		}
		for (size_t i = lo; i < ck.nents && ck.ents[byparent[i]].parent == d; i++) {
			fent *e = &ck.ents[byparent[i]];
			fino *c = live(e->child);
			if (e->gone || !c)
				continue;
			if (S_ISDIR(c->in.mode)) {
				if (c->ent != (size_t)(e - ck.ents) || c->reach)
					continue;
				if (n == cap) {
					cap *= 2;
					st = realloc(st, cap * sizeof *st);
					if (!st)
						oom();
				}
				st[n++] = c->ino;
			} else {
				c->reach = 1;
			}
		}
	}
	free(st);
}

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	default: return "special file";
	}
}

/*
 * Whether the store holds data of a lost regular file ino: then *size is
 * where its last chunk or page ends.
 */
static int has_data(uint64_t ino, uint64_t *size)
{
	uint8_t p[SFS_KEY_MAX];
	sett_iter_options io;
	sett_iter_options_init(&io);
	io.key_only = 1;
	io.reverse = 1;
	io.prefix.data = p;
	io.prefix.size = sfs_key_ino_prefix(p, SFS_TAG_CHUNK, ino);
	sett_iter *it;
	if (sett_iter_new(ck.db, &io, &it))
		return 0;
	sett_iter_rewind(it);
	int found = sett_iter_valid(it);
	*size = 0;
	if (found) {
		sett_val key = sett_iter_key(it);
		const uint8_t *kb = key.data;
		uint64_t idx = key.size >= SFS_CHUNK_KEY_LEN ? sfs_get_be64(kb + 9) : 0;
		uint64_t start = idx * ck.cs, room = ck.cs;
		if (key.size == SFS_PAGE_KEY_LEN) {
			start += (uint64_t)sfs_get_be32(kb + 17) * SFS_PAGE_SIZE;
			room = SFS_PAGE_SIZE;
		}
		void *v = NULL;
		size_t vn = 0;
		if (sett_get(ck.db, key, 0, &v, &vn) == 0 && vn <= room)
			room = vn;
		free(v);
		*size = start + room;
	}
	sett_iter_free(it);
	return found;
}

/*
 * An entry names a regular file or a directory whose inode is lost, while
 * the file's chunks (or entries in the directory) remain: the inode is
 * remade from that evidence (type from the entry, size from the chunks,
 * owner from the parent directory, mode 0644 or 0755, times now), so the
 * data and the subtree stay where they were.
 */
static void remake_inodes(size_t nloaded)
{
	uint8_t k[SFS_KEY_MAX];
	char pb[4096];
	for (size_t i = 0; i < nloaded; i++) {
		fent *e = &ck.ents[i];
		fino *c = find(e->child);
		if ((c && c->state != INO_DROPPED) || (e->type != S_IFREG && e->type != S_IFDIR))
			continue;
		if (c && c->in.mode) /* already remade for another entry */
			continue;
		uint64_t size = 0;
		int evidence = 0;
		if (e->type == S_IFREG) {
			evidence = has_data(e->child, &size);
		} else {
			for (size_t j = 0; j < nloaded && !evidence; j++)
				evidence = ck.ents[j].parent == e->child;
		}
		if (!evidence)
			continue;
		for (size_t j = 0; j < nloaded; j++)
			if (ck.ents[j].child == e->child)
				ck.ents[j].remade = 1;
		int fix = fault(FIX_ALL, k, sfs_key_inode(k, e->child),
			   "%s (inode %llu): the inode is lost, its entry and %s remain: remade as a %s "
			   "(mode, owner and times are guesses)",
			   ent_path(e, pb, sizeof pb), (unsigned long long)e->child,
			   e->type == S_IFREG ? "data" : "entries", type_name(e->type));
		/* without the fix the rest of the check still sees it, unwritten */
		fino *p = live(e->parent);
		uint32_t uid = p ? p->in.uid : 0, gid = p ? p->in.gid : 0;
		if (!c)
			c = insert_inode(e->child);
		sfs_inode_free(&c->in);
		memset(&c->in, 0, sizeof c->in);
		c->state = INO_LIVE;
		c->in.mode = e->type | (e->type == S_IFDIR ? 0755 : 0644);
		c->in.uid = uid;
		c->in.gid = gid;
		c->in.size = size;
		c->in.atime = c->in.mtime = c->in.ctime = c->in.btime = sfs_now();
		c->in.parent = e->type == S_IFDIR ? e->parent : 0;
		c->dirty = fix;
		c->phantom = !fix;
		c->made = 1;
		c->ent = i;
	}
}

/* The entry that names each inode: the first; directories prefer the one
 * their parent pointer agrees with. */
static void pick_entries(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fent *e = &ck.ents[i];
		fino *c = live(e->child);
		if (e->gone || !c)
			continue;
		if (c->ent == SIZE_MAX || ck.ents[c->ent].gone ||
		    (S_ISDIR(c->in.mode) && ck.ents[c->ent].parent != c->in.parent &&
		     e->parent == c->in.parent))
			c->ent = i;
	}
}

/* Whether a directory entry (not removed) lies in directory dir. */
static int has_entries(uint64_t dir)
{
	for (size_t i = 0; i < ck.nents; i++)
		if (!ck.ents[i].gone && ck.ents[i].parent == dir)
			return 1;
	return 0;
}

static void check_namespace(void)
{
	uint8_t k[SFS_KEY_MAX];
	char pb[4096];
	fino *root = live(SETTFS_ROOT_INO);
	if (!root || !S_ISDIR(root->in.mode)) {
		if (fault(FIX_ALL, k, sfs_key_inode(k, SETTFS_ROOT_INO),
			  "root directory missing or not a directory: made anew")) {
			if (root) {
				sfs_inode_free(&root->in);
				memset(&root->in, 0, sizeof root->in);
			} else {
				root = insert_inode(SETTFS_ROOT_INO);
			}
			root->state = INO_LIVE;
			root->in.mode = S_IFDIR | 0755;
			root->in.nlink = 2;
			root->in.atime = root->in.mtime = root->in.ctime = root->in.btime = sfs_now();
			root->in.parent = SETTFS_ROOT_INO;
			root->dirty = 1;
		}
	}
	size_t nloaded = ck.nents, nloaded0 = nloaded;
	pick_entries(nloaded);
	/* inodes lost while their entries and data remain: remade */
	remake_inodes(nloaded0);

	/* entries: where they are and what they name */
	for (size_t i = 0; i < nloaded; i++) {
		fent *e = &ck.ents[i];
		fino *p = live(e->parent), *c = live(e->child);
		size_t kn = sfs_key_dentry(k, e->parent, e->name, e->len);
		if (!p || !S_ISDIR(p->in.mode)) {
			if (fault(FIX_ALL, k, kn, "entry \"%s\" in missing or non-directory inode %llu%s",
				  e->name, (unsigned long long)e->parent,
				  c ? " (what it names goes to /lost+found)" : ": removed")) {
				drop_ent(e);
				continue;
			}
		}
		if (!c) {
			/* paths of entries print once the tree is known (below) */
			continue;
		}
		if ((c->in.mode & S_IFMT) != e->type) {
			if (fault(FIX_SAFE, k, kn, "entry \"%s\" in inode %llu records another type than inode %llu",
				  e->name, (unsigned long long)e->parent, (unsigned long long)e->child)) {
				e->type = c->in.mode & S_IFMT;
				e->added = 1; /* rewritten at commit unless removed */
			}
		}
	}
	pick_entries(nloaded);
	/* entries that point at missing inodes: the loss, by path */
	for (size_t i = 0; i < nloaded; i++) {
		fent *e = &ck.ents[i];
		if (e->gone || e->remade || live(e->child))
			continue;
		if (fault(FIX_ALL, k, sfs_key_dentry(k, e->parent, e->name, e->len),
			  "lost: %s (inode %llu, a %s): the entry points at a missing inode; entry removed",
			  ent_path(e, pb, sizeof pb), (unsigned long long)e->child, type_name(e->type)))
			drop_ent(e);
	}
	/* a directory has one entry; its parent pointer names that entry's directory */
	for (size_t i = 0; i < nloaded; i++) {
		fent *e = &ck.ents[i];
		fino *c = live(e->child);
		if (e->gone || !c || !S_ISDIR(c->in.mode) || c->ent == i)
			continue;
		if (fault(FIX_ALL, k, sfs_key_dentry(k, e->parent, e->name, e->len),
			  "directory %s (inode %llu) has a second entry %s: removed",
			  PATH(c->ino), (unsigned long long)c->ino, ent_path(e, pb, sizeof pb)))
			drop_ent(e);
	}
	for (size_t i = 0; i < ck.ninodes; i++) {
		fino *f = &ck.inodes[i];
		if (f->state != INO_LIVE || !S_ISDIR(f->in.mode) || f->ent == SIZE_MAX ||
		    ck.ents[f->ent].gone)
			continue;
		uint64_t p = ck.ents[f->ent].parent;
		if (f->in.parent != p &&
		    fault(FIX_SAFE, k, sfs_key_inode(k, f->ino),
			  "directory %s (inode %llu) has parent %llu, its entry is in %llu",
			  PATH(f->ino), (unsigned long long)f->ino, (unsigned long long)f->in.parent,
			  (unsigned long long)p)) {
			f->in.parent = p;
			f->dirty = 1;
		}
	}
	/* an inode named only by removed entries is named by none */
	for (size_t i = 0; i < ck.ninodes; i++) {
		fino *f = &ck.inodes[i];
		if (f->ent != SIZE_MAX && ck.ents[f->ent].gone) {
			f->ent = SIZE_MAX;
			for (size_t j = 0; j < ck.nents; j++)
				if (!ck.ents[j].gone && ck.ents[j].child == f->ino &&
				    !S_ISDIR(f->in.mode)) {
					f->ent = j;
					break;
				}
		}
	}

	/* reachability from the root */
	byparent = malloc((ck.nents + 1) * sizeof *byparent);
	if (!byparent)
		oom();
	for (size_t i = 0; i < ck.nents; i++)
		byparent[i] = i;
	qsort(byparent, ck.nents, sizeof *byparent, cmp_ent_parent);
	mark_reach(SETTFS_ROOT_INO);
	/* directories first: what they hold becomes reachable with them */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < ck.ninodes; i++) {
			fino *f = &ck.inodes[i];
			if (f->state != INO_LIVE || f->reach || f->ino == SETTFS_ROOT_INO ||
			    (pass == 0) != S_ISDIR(f->in.mode))
				continue;
			uint64_t ino = f->ino;
			if (pass == 1 && f->ent != SIZE_MAX)
				continue; /* under a detached directory, reported with it */
			if (f->ent == SIZE_MAX && f->orphan && f->in.nlink == 0 &&
			    (!S_ISDIR(f->in.mode) || !has_entries(ino))) {
				/* unlinked while open (an empty directory too, rmdir'd
				 * while the kernel still knew it): the reclaim mount does too */
				if (ck.level >= FIX_SAFE && !ck.fatal) {
					f->state = INO_RECLAIMED;
					del_key(ck.ns, k, sfs_key_inode(k, ino));
					del_key(ck.ns, k, sfs_key_orphan(k, ino));
					note("reclaimed unlinked inode %llu", (unsigned long long)ino);
				}
				continue;
			}
			int fix;
			if (f->ent == SIZE_MAX)
				fix = fault(FIX_ALL, k, sfs_key_inode(k, ino),
					    "inode %llu (a %s of %llu bytes) is unreachable: linked as /lost+found/#%llu",
					    (unsigned long long)ino, type_name(f->in.mode),
					    (unsigned long long)f->in.size, (unsigned long long)ino);
			else
				fix = fault(FIX_ALL, k, sfs_key_inode(k, ino),
					    "directory %s (inode %llu) does not reach the root: moved to /lost+found/#%llu",
					    PATH(ino), (unsigned long long)ino, (unsigned long long)ino);
			if (!fix) {
				f->unreach = 1;
				continue;
			}
			size_t oldn = ck.nents;
			if (link_lost(f) != 0) {
				note("cannot link inode %llu: /lost+found is not a directory",
				     (unsigned long long)ino);
				continue;
			}
			if (ck.nents != oldn) {
				/* rebuild the index over the new entries */
				free(byparent);
				byparent = malloc((ck.nents + 1) * sizeof *byparent);
				if (!byparent)
					oom();
				for (size_t j = 0; j < ck.nents; j++)
					byparent[j] = j;
				qsort(byparent, ck.nents, sizeof *byparent, cmp_ent_parent);
			}
			f = find(ino);
			if (S_ISDIR(f->in.mode)) {
				fino *lf = live(ck.lf);
				lf->reach = 1;
				mark_reach(ino);
			} else {
				f->reach = 1;
			}
		}
	}
	free(byparent);
	byparent = NULL;

	/* link counts, from the entries that stay */
	for (size_t i = 0; i < ck.nents; i++) {
		fent *e = &ck.ents[i];
		fino *c = live(e->child), *p = live(e->parent);
		if (e->gone || !c)
			continue;
		c->refs++;
		if (S_ISDIR(c->in.mode) && p && c->ent == i)
			p->subdirs++;
	}
	for (size_t i = 0; i < ck.ninodes; i++) {
		fino *f = &ck.inodes[i];
		if (f->state != INO_LIVE)
			continue;
		uint64_t expect = f->refs;
		if (S_ISDIR(f->in.mode))
			expect = f->refs || f->ino == SETTFS_ROOT_INO ? 2 + f->subdirs : 0;
		if (f->made) {
			f->in.nlink = (uint32_t)expect;
		} else if (f->unreach) {
			/* linking it is the fix */
		} else if (f->in.nlink != expect &&
		    fault(FIX_SAFE, k, sfs_key_inode(k, f->ino), "%s (inode %llu) has nlink %u, expected %llu",
			  PATH(f->ino), (unsigned long long)f->ino, f->in.nlink,
			  (unsigned long long)expect)) {
			f->in.nlink = (uint32_t)expect;
			f->dirty = 1;
		}
		if (f->orphan && f->in.nlink > 0 &&
		    (f->refs || f->ino == SETTFS_ROOT_INO) &&
		    fault(FIX_SAFE, k, sfs_key_orphan(k, f->ino), "%s (inode %llu) has links and an orphan key",
			  PATH(f->ino), (unsigned long long)f->ino))
			del_key(ck.ns, k, sfs_key_orphan(k, f->ino));
	}
}

/* ---- data ---- */

/* The leftover keys of inode ino, which is missing: delete them? */
static int leftover(uint64_t ino, const void *k, size_t kn, const char *what, uint64_t *last)
{
	fino *f = find(ino);
	if (f && f->state == INO_RECLAIMED) {
		if (ck.level >= FIX_SAFE && !ck.fatal)
			return 1;
		return 0;
	}
	if (*last == ino) {
		/* one report per inode; the rest follow its verdict */
		ck.found++;
		int fix = ck.level >= FIX_ALL && !ck.fatal;
		ck.fixed += fix;
		return fix;
	}
	*last = ino;
	return fault(FIX_ALL, k, kn, "lost: %s of inode %llu, which is missing or not a regular file: deleted",
		     what, (unsigned long long)ino);
}

static void check_chunks(void)
{
	sett_iter *it = scan(SFS_TAG_CHUNK, 1);
	uint64_t last_missing = 0;
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		step(4, "chunks");
		sett_val key = sett_iter_key(it);
		if (key.size != SFS_CHUNK_KEY_LEN && key.size != SFS_PAGE_KEY_LEN) {
			if (fault(FIX_ALL, key.data, key.size, "bad chunk key: removed"))
				del_key(ck.junk, key.data, key.size);
			continue;
		}
		const uint8_t *kb = key.data;
		uint64_t ino = sfs_get_be64(kb + 1), idx = sfs_get_be64(kb + 9);
		int overlay = key.size == SFS_PAGE_KEY_LEN;
		uint32_t pg = overlay ? sfs_get_be32(kb + 17) : 0;
		fino *f = live(ino);
		if (!f || !S_ISREG(f->in.mode)) {
			if (leftover(ino, key.data, key.size, "data", &last_missing))
				del_key(ck.junk, key.data, key.size);
			continue;
		}
		uint64_t cs = ck.cs, room = overlay ? SFS_PAGE_SIZE : cs;
		uint64_t start = idx > (UINT64_MAX - cs) / cs ? UINT64_MAX
				 : idx * cs + (uint64_t)pg * SFS_PAGE_SIZE;
		if (overlay && pg >= cs / SFS_PAGE_SIZE) {
			if (fault(FIX_ALL, key.data, key.size, "%s: overlay page %u outside its chunk: removed",
				  PATH(ino), pg))
				del_key(ck.ns, key.data, key.size);
			continue;
		}
		/* reads skip the overlay lookup for files without the flag */
		if (overlay && !(f->in.flags & SFS_IFLAG_OVERLAYS) &&
		    fault(FIX_SAFE, key.data, key.size, "%s: overlay page of a file without the overlay flag",
			  PATH(ino))) {
			f->in.flags |= SFS_IFLAG_OVERLAYS;
			f->dirty = 1;
		}
		void *v = NULL;
		size_t vn = 0;
		uint8_t meta = 0;
		int r = sett_get_ex(ck.db, key, 0, &v, &vn, NULL, &meta);
		/* a compressed chunk (format 4) is checked by its decompressed bytes */
		const uint8_t *bytes = v;
		uint8_t *plain = NULL;
		size_t len = vn;
		const char *why = r ? sett_strerror(r) : NULL;
		if (r == 0 && meta != SFS_CODEC_RAW) {
			uint32_t l = 0;
			if (overlay || ck.sbversion < SFS_SUPER_CODEC_VERSION)
				why = overlay ? "an overlay page with a codec" : "compressed in a store before format 4";
			else if (!(plain = malloc(ck.cs)))
				operr("chunk", -ENOMEM);
			else if (sfs_chunk_decode(meta, v, vn, ck.cs, plain, &bytes, &l) != 0)
				why = "a compressed chunk that does not decode";
			len = l;
		}
		if (why) {
			uint64_t end = start + room - 1;
			if (fault(FIX_ALL, key.data, key.size, "%s: bytes %llu-%llu unreadable (%s): %s", PATH(ino),
				  (unsigned long long)start, (unsigned long long)end, why,
				  "chunk removed, the bytes read as zeros"))
				del_key(ck.ns, key.data, key.size);
			free(v);
			free(plain);
			continue;
		}
		size_t keep = len;
		if (len > room &&
		    fault(FIX_SAFE, key.data, key.size, "%s: %s", PATH(ino),
			  overlay ? "overlay larger than a page" : "chunk larger than the chunk size"))
			keep = (size_t)room;
		if (start >= f->in.size || len > f->in.size - start) {
			uint64_t upto = start >= f->in.size ? 0 : f->in.size - start;
			if (fault(FIX_SAFE, key.data, key.size, "%s: %s %llu holds bytes past the end of file",
				  PATH(ino), overlay ? "overlay page of chunk" : "chunk",
				  (unsigned long long)idx) && upto < keep)
				keep = (size_t)upto;
		}
		if (overlay && len == 0 &&
		    fault(FIX_ALL, key.data, key.size, "%s: empty overlay page: removed", PATH(ino)))
			keep = 0;
		if (keep != len) {
			/* a cut compressed chunk is written back raw */
			if (keep == 0)
				del_key(ck.ns, key.data, key.size);
			else
				set_key(ck.ns, key.data, key.size, bytes, keep);
		}
		if (keep || keep == len)
			f->stored += overlay ? SFS_PAGE_SIZE : keep == len ? vn : keep;
		free(v);
		free(plain);
	}
	scan_end(it, 0, "chunks");
}

/*
 * A POSIX ACL (doc/FORMAT.md) must be a valid one, a default ACL sit on a
 * directory, and an access ACL say the inode's mode: the daemon writes
 * both in one batch, and the mode is what stat shows, so the ACL follows.
 */
static void check_acl(fino *f, uint64_t ino, sett_val key)
{
	char name[SETTFS_XATTR_NAME_MAX + 1];
	memcpy(name, (const char *)key.data + 9, key.size - 9);
	name[key.size - 9] = 0;
	int type = sfs_acl_type(name);
	if (type == SFS_ACL_NONE)
		return;
	void *v = NULL;
	size_t vn = 0;
	int r = sett_get(ck.db, key, 0, &v, &vn);
	uint32_t mode = f->in.mode;
	if (r || sfs_acl_check(v, vn) < 0 || (type == SFS_ACL_DEFAULT && !S_ISDIR(f->in.mode))) {
		if (fault(FIX_ALL, key.data, key.size, "%s: %s %s: removed", PATH(ino), name,
			  r ? sett_strerror(r) : type == SFS_ACL_DEFAULT && !S_ISDIR(f->in.mode)
			  ? "on a non-directory" : "is not a valid ACL"))
			del_key(ck.ns, key.data, key.size);
	} else if (type == SFS_ACL_ACCESS && (sfs_acl_equiv_mode(v, vn, &mode), mode != f->in.mode)) {
		if (fault(FIX_SAFE, key.data, key.size, "%s: access ACL says mode %03o, the inode %03o",
			  PATH(ino), mode & 0777, f->in.mode & 0777)) {
			sfs_acl_chmod(v, vn, f->in.mode);
			set_key(ck.ns, key.data, key.size, v, vn);
		}
	}
	free(v);
}

static void check_xattrs(void)
{
	sett_iter *it = scan(SFS_TAG_XATTR, 1);
	uint64_t last_missing = 0;
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		step(5, "xattrs");
		sett_val key = sett_iter_key(it);
		if (key.size <= 9 || key.size > 9 + SETTFS_XATTR_NAME_MAX) {
			if (fault(FIX_ALL, key.data, key.size, "bad xattr key: removed"))
				del_key(ck.junk, key.data, key.size);
			continue;
		}
		uint64_t ino = sfs_get_be64((const uint8_t *)key.data + 1);
		fino *f = live(ino);
		if (!f) {
			if (leftover(ino, key.data, key.size, "extended attributes", &last_missing))
				del_key(ck.junk, key.data, key.size);
		} else if (ck.sbversion >= 3 && !(f->in.flags & SFS_IFLAG_XATTRS)) {
			/* from format 3 on, deleting an inode without the flag skips its xattrs */
			if (fault(FIX_SAFE, key.data, key.size, "%s: xattr of an inode without the xattr flag",
				  PATH(ino))) {
				f->in.flags |= SFS_IFLAG_XATTRS;
				f->dirty = 1;
			}
		}
		if (f)
			check_acl(f, ino, key);
	}
	scan_end(it, 0, "xattrs");
}

static void check_tags(void)
{
	sett_iter *it = scan(0, 1);
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		step(5, "keys");
		sett_val key = sett_iter_key(it);
		const char *tags = "SNIDCXOPF";
		if ((key.size == 0 || !memchr(tags, ((const uint8_t *)key.data)[0], 9)) &&
		    fault(FIX_ALL, key.data, key.size, "key with an unknown tag: removed"))
			del_key(ck.junk, key.data, key.size);
	}
	scan_end(it, 0, "keys");
}

/*
 * Snapshot records: each decodes and its pin holds its version (else what
 * it saw may be gone: the record is removed with -y, the snapshot with it).
 * An interrupted rollback or receive is reported (running it again
 * finishes it), unless it went to a snapshot that is gone or removed here:
 * then it can never be finished, and -y removes its marker (the files
 * changed since that snapshot stay as the rollback left them, each as the
 * snapshot saw it or as it was after; the namespace checks, which ran over
 * every key, took them as they are).
 */
static void check_snapshots(void)
{
	sett_iter *it = scan(SFS_TAG_SNAP, 1);
	char mark[SETTFS_SNAP_NAME_MAX + 1] = "";
	int mkind = 0, mgone = 1;
	uint8_t mkey[1];
	for (; sett_iter_valid(it); sett_iter_next(it)) {
		step(5, "snapshots");
		sett_val key = sett_iter_key(it), v;
		char name[SETTFS_SNAP_NAME_MAX + 1];
		if (key.size == 1) {
			memcpy(mkey, key.data, 1);
			mkind = sett_iter_value(it, &v) ? -EIO : sfs_snap_marker_decode(v.data, v.size, mark);
			if (mkind < 0 && fault(FIX_ALL, key.data, key.size,
					       "the marker of an interrupted rollback or receive is damaged: "
					       "removed (what it would finish cannot be known)"))
				del_key(ck.junk, key.data, key.size);
			continue;
		}
		size_t nl = key.size - 1 < SETTFS_SNAP_NAME_MAX ? key.size - 1 : SETTFS_SNAP_NAME_MAX;
		memcpy(name, (const char *)key.data + 1, nl);
		name[nl] = 0;
		sfs_snap sn;
		int bad = key.size - 1 > SETTFS_SNAP_NAME_MAX || sfs_snap_name_ok(name) ||
			  sett_iter_value(it, &v) || sfs_snap_decode(v.data, v.size, &sn);
		if (bad) {
			if (fault(FIX_ALL, key.data, key.size, "snapshot %s: damaged record: removed", name))
				del_key(ck.junk, key.data, key.size);
			continue;
		}
		int is_mark = mkind > 0 && !strcmp(name, mark);
		char pn[SETT_MAX_PIN_NAME + 1];
		snprintf(pn, sizeof pn, "%s%s", SFS_SNAP_PIN_PREFIX, name);
		int np = sett_pins(ck.db, NULL, 0), found = 0;
		sett_pin_info *pins = np > 0 ? malloc((size_t)np * sizeof *pins) : NULL;
		if (np > 0 && !pins)
			oom();
		int got = np > 0 ? sett_pins(ck.db, pins, np) : 0;
		for (int i = 0; i < got && i < np; i++)
			found |= !strcmp(pins[i].name, pn) && pins[i].version == sn.version;
		free(pins);
		if (!found && fault(FIX_ALL, key.data, key.size,
				    "snapshot %s: its pin is missing, what it saw may be gone: removed",
				    name))
			del_key(ck.junk, key.data, key.size);
		else if (is_mark)
			mgone = 0;
	}
	scan_end(it, 0, "snapshots");
	if (mkind == SFS_MARK_CREATE)
		fault(FIX_NONE, mkey, 1,
		      "a receive of snapshot %s was interrupted: `settfs receive` of that stream "
		      "must be run again",
		      mark);
	else if (mkind == SFS_MARK_ROLLBACK && mgone) {
		if (fault(FIX_ALL, mkey, 1,
			  "a rollback to snapshot %s was interrupted and %s is gone: it cannot be "
			  "finished; marker removed (files changed since %s are as the rollback "
			  "left them, each as %s saw it or as it was after)",
			  mark, mark, mark, mark))
			del_key(ck.junk, mkey, 1);
	} else if (mkind == SFS_MARK_OLD && mgone)
		fault(FIX_NONE, mkey, 1,
		      "a rollback to snapshot %s or a receive of it was interrupted, and %s is "
		      "not there: a receive finishes when run again; a rollback cannot be "
		      "finished (the marker does not say which it was)",
		      mark, mark);
	else if (mkind > 0)
		fault(FIX_NONE, mkey, 1,
		      "a rollback to snapshot %s (or a receive from it) was interrupted: "
		      "`settfs rollback` (or that `settfs receive`) must be run again",
		      mark);
}

static void check_counts(void)
{
	uint8_t k[SFS_KEY_MAX];
	uint64_t max = 0;
	for (size_t i = 0; i < ck.ninodes; i++) {
		fino *f = &ck.inodes[i];
		if (f->state == INO_DROPPED)
			continue;
		if (f->ino > max)
			max = f->ino;
		if (f->state == INO_LIVE && f->made) {
			f->in.blocks = f->stored;
		} else if (f->state == INO_LIVE && S_ISREG(f->in.mode) && f->stored != f->in.blocks &&
		    fault(FIX_SAFE, k, sfs_key_inode(k, f->ino), "%s (inode %llu) counts %llu stored bytes, chunks hold %llu",
			  PATH(f->ino), (unsigned long long)f->ino, (unsigned long long)f->in.blocks,
			  (unsigned long long)f->stored)) {
			f->in.blocks = f->stored;
			f->dirty = 1;
		}
	}
	if (ck.next_ino <= max &&
	    fault(FIX_SAFE, k, sfs_key_nextino(k), "inode counter %llu is not above inode %llu",
		  (unsigned long long)ck.next_ino, (unsigned long long)max))
		ck.next_ino = max + 1;
}

/* Writes the fixes: the namespace and every changed inode in one batch. */
static void commit(void)
{
	uint8_t k[SFS_KEY_MAX], v[8];
	for (size_t i = 0; i < ck.nents; i++) {
		fent *e = &ck.ents[i];
		if (e->added && !e->gone) {
			uint8_t dv[SFS_DENTRY_SIZE];
			sfs_dentry_encode(e->child, e->type, dv);
			set_key(ck.ns, k, sfs_key_dentry(k, e->parent, e->name, e->len), dv, sizeof dv);
		}
	}
	for (size_t i = 0; i < ck.ninodes; i++) {
		fino *f = &ck.inodes[i];
		if (f->state == INO_LIVE && f->dirty && !f->phantom) {
			int r = sfs_batch_new_inode(ck.ns, f->ino, &f->in);
			if (r)
				operr("batch", r);
		} else if (f->state == INO_DROPPED && f->dirty) {
			del_key(ck.ns, k, sfs_key_inode(k, f->ino));
		}
	}
	if (ck.remake_super) {
		sfs_super sb = { .version = SFS_SUPER_VERSION, .chunk_size = ck.cs,
				 .created_ns = sfs_now() };
		if (getrandom(sb.uuid, sizeof sb.uuid, 0) != (ssize_t)sizeof sb.uuid)
			for (size_t i = 0; i < sizeof sb.uuid; i++)
				sb.uuid[i] = (uint8_t)(sb.created_ns >> (i % 8 * 8)) ^ (uint8_t)i;
		sb.uuid[6] = (sb.uuid[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
		sb.uuid[8] = (sb.uuid[8] & 0x3f) | 0x80;
		uint8_t sv[SFS_SUPER_SIZE];
		sfs_super_encode(&sb, sv);
		set_key(ck.ns, k, sfs_key_super(k), sv, sizeof sv);
	}
	if (ck.remake_props) {
		sfs_props none = { SFS_CODEC_RAW, 0 };
		uint8_t pv[SFS_PROPS_SIZE], pk[1] = { SFS_TAG_PROPS };
		sfs_props_encode(&none, pv);
		set_key(ck.ns, pk, 1, pv, sizeof pv);
	}
	sfs_put_be64(v, ck.next_ino);
	if (sett_batch_count(ck.ns))
		set_key(ck.ns, k, sfs_key_nextino(k), v, 8);
	junk_commit();
	int r = sett_batch_count(ck.ns) ? sett_write(ck.db, ck.ns, 1, NULL) : 0;
	if (!r)
		r = sett_sync(ck.db);
	if (r)
		operr("write", r);
}

static void reset(void)
{
	for (size_t i = 0; i < ck.ninodes; i++)
		sfs_inode_free(&ck.inodes[i].in);
	for (size_t i = 0; i < ck.nents; i++)
		free(ck.ents[i].name);
	free(ck.inodes);
	free(ck.ents);
	ck.inodes = NULL;
	ck.ents = NULL;
	ck.ninodes = ck.capinodes = ck.nents = ck.capents = 0;
	ck.found = ck.fixed = 0;
	ck.lf = 0;
	ck.fatal = 0;
	ck.remake_super = 0;
	ck.remake_props = 0;
}

/* ---- what the engine repair lost, by path ---- */

/* What a settfs key names, with paths where it can: into out. */
static const char *describe(const uint8_t *k, size_t n, char *out, size_t on)
{
	if (n == 0) {
		snprintf(out, on, "(unknown)");
		return out;
	}
	uint64_t ino = n >= 9 ? sfs_get_be64(k + 1) : 0;
	switch (n >= 9 ? k[0] : 0) {
	case SFS_TAG_INODE:
		snprintf(out, on, "the inode of %s (inode %llu)", PATH(ino), (unsigned long long)ino);
		break;
	case SFS_TAG_DENTRY:
		snprintf(out, on, "the entry \"%.*s\" of directory %s", (int)(n - 9), (const char *)k + 9,
			 PATH(ino));
		break;
	case SFS_TAG_CHUNK:
		if (n >= SFS_CHUNK_KEY_LEN) {
			uint64_t start = sfs_get_be64(k + 9) * ck.cs, len = ck.cs;
			if (n == SFS_PAGE_KEY_LEN) {
				start += (uint64_t)sfs_get_be32(k + 17) * SFS_PAGE_SIZE;
				len = SFS_PAGE_SIZE;
			}
			snprintf(out, on, "%s: bytes %llu-%llu", PATH(ino), (unsigned long long)start,
				 (unsigned long long)(start + len - 1));
		} else {
			snprintf(out, on, "the data of %s", PATH(ino));
		}
		break;
	case SFS_TAG_XATTR:
		snprintf(out, on, "the xattr %.*s of %s", (int)(n - 9), (const char *)k + 9, PATH(ino));
		break;
	case SFS_TAG_ORPHAN:
		snprintf(out, on, "the orphan key of inode %llu", (unsigned long long)ino);
		break;
	default:
		if (k[0] == SFS_TAG_SUPER)
			snprintf(out, on, "the superblock");
		else if (k[0] == SFS_TAG_NEXTINO)
			snprintf(out, on, "the inode counter");
		else if (k[0] == SFS_TAG_PROPS)
			snprintf(out, on, "the compression setting");
		else
			snprintf(out, on, "a key with tag 0x%02x", k[0]);
	}
	return out;
}

static void report_lost(void)
{
	char a[4200], b[4200];
	for (size_t i = 0; i < ck.nlost; i++) {
		lostkey *l = &ck.lost[i];
		ck.found++;
		ck.fixed++;
		if (ck.quiet)
			continue;
		describe(l->k, l->kn, a, sizeof a);
		if (l->kind == SETT_REPAIR_LOST_VALUE && l->kn >= SFS_CHUNK_KEY_LEN &&
		    l->k[0] == SFS_TAG_CHUNK)
			printf("%s lost (%s)\n", a, l->msg); /* "PATH: bytes A-B lost" */
		else if (l->kind == SETT_REPAIR_LOST_VALUE)
			printf("lost: %s (%s)\n", a, l->msg);
		else if (l->kind == SETT_REPAIR_STALE)
			printf("%s may be older than it was (%s)\n", a, l->msg);
		else if (l->kn || l->kendn)
			printf("lost: the keys %s%s %s%s (%s)\n", l->kn ? "after " : "from the start",
			       l->kn ? a : "", l->kendn ? "up to " : "to the end",
			       l->kendn ? describe(l->kend, l->kendn, b, sizeof b) : "", l->msg);
		else
			printf("lost: %s\n", l->msg);
	}
}

static void *memdup(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);
	if (!q)
		oom();
	if (n)
		memcpy(q, p, n);
	return q;
}

static void on_repair(void *arg, const sett_repair_event *ev)
{
	(void)arg;
	if (ev->kind == SETT_REPAIR_NOTE) {
		note("engine: %s", ev->msg);
		return;
	}
	ck.lost = realloc(ck.lost, (ck.nlost + 1) * sizeof *ck.lost);
	if (!ck.lost)
		oom();
	lostkey *l = &ck.lost[ck.nlost++];
	l->kind = ev->kind;
	l->k = memdup(ev->key.data, ev->key.size);
	l->kn = ev->key.size;
	l->kend = memdup(ev->key_end.data, ev->key_end.size);
	l->kendn = ev->key_end.size;
	l->msg = strdup(ev->msg);
	if (!l->msg)
		oom();
}

static long engine_faults;

static void on_verify(void *arg, const char *msg)
{
	(void)arg;
	engine_faults++;
	if (!ck.quiet) {
		progress_clear(&prog);
		printf("engine: %s\n", msg);
	}
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: fsck.settfs [-n | -p | -a | -y] [-f] [-q] [-C FD]\n"
		   "                   [--key-file F | --passphrase-file F] STORE\n"
		   "  -n     report only, change nothing (the default)\n"
		   "  -p, -a fix what is safe to fix without asking\n"
		   "  -y     fix everything that can be fixed (rebuilds the engine if needed)\n"
		   "  -f     check fully (accepted for fsck(8); every check is full)\n"
		   "  -q     print only the summary\n"
		   "  -C FD  progress: 0 draws a bar on stdout, FD > 0 gets e2fsck's lines\n"
		   "         \"PASS DONE TOTAL STORE\" (default: a bar on stderr if a terminal)\n"
		   "  --key-file F, --passphrase-file F\n"
		   "         the master key of an encrypted store (F: mode 0600 or stricter)\n"
		   "  -V, --version; -h, --help\n"
		   "Exit status: 0 clean, 1 errors corrected, 4 errors left uncorrected,\n"
		   "8 operational error, 16 usage error.  See fsck.settfs(8).\n");
}

/* Does dir hold any file of a sett store? */
static int looks_like_store(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	int found = 0;
	while (!found && (de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		found = !strcmp(de->d_name, "MANIFEST") ||
			(dot && (!strcmp(dot, ".sst") || !strcmp(dot, ".vlog") || !strcmp(dot, ".mem")));
	}
	closedir(d);
	return found;
}

/* --key-file / --passphrase-file */
static key_material key;

static int open_store(const char *store, int read_only, sett_db **db, char *why, size_t whylen)
{
	settfs_options so;
	settfs_options_init(&so);
	sett_options o = so.engine;
	key_apply(&key, &o);
	o.create_if_missing = 0;
	o.read_only = read_only;
	o.num_compactors = 0;
	o.gc_discard_ratio = 0;
	o.error_buf = why;
	o.error_buf_size = whylen;
	o.progress_fn = progress_engine; /* pass 1: the engine's checksums */
	o.progress_arg = &prog;
	why[0] = 0;
	return sett_open(store, &o, db);
}

static int has_super(sett_db *db)
{
	uint8_t k[SFS_KEY_MAX];
	void *v = NULL;
	size_t vn;
	int r = sett_get(db, (sett_val){ sfs_key_super(k), k }, 0, &v, &vn);
	free(v);
	return r != SETT_ENOTFOUND;
}

/* Runs the filesystem check (and with level > 0 its fixes) on an open store. */
static void fs_check(sett_db *db, int level, int quiet)
{
	reset();
	ck.db = db;
	ck.level = level;
	ck.quiet = quiet;
	if (sett_batch_new(&ck.ns) || sett_batch_new(&ck.junk))
		oom();
	load_super();
	load_inodes();
	load_orphans();
	load_entries();
	if (ck.fatal) {
		note("the namespace checks are skipped: the scans above did not complete");
	} else {
		check_namespace();
		report_lost();
		check_chunks();
		check_xattrs();
		check_tags();
		check_snapshots();
		if (!ck.fatal)
			check_counts();
	}
	if (level > FIX_NONE && !ck.fatal)
		commit();
	sett_batch_free(ck.ns);
	sett_batch_free(ck.junk);
	ck.ns = ck.junk = NULL;
}

int main(int argc, char **argv)
{
	int c, level = FIX_NONE, modes = 0, quiet = 0, progress_fd = -1;
	const char *key_file = NULL, *pass_file = NULL;
	while ((c = std_getopt(argc, argv, "+:npayfqC:hV")) != -1) {
		switch (c) {
		case 'n': level = FIX_NONE; modes++; break;
		case 'p': case 'a': level = FIX_SAFE; modes++; break;
		case 'y': level = FIX_ALL; modes++; break;
		case 'f': break;
		case 'q': quiet = 1; break;
		case 'K': key_file = optarg; break;
		case 'P': pass_file = optarg; break;
		case 'C': {
			char *end;
			long fd = strtol(optarg, &end, 10);
			if (*end || end == optarg || fd < 0 || fd > INT32_MAX ||
			    (fd > 0 && fcntl((int)fd, F_GETFD) < 0)) {
				fprintf(stderr, "fsck.settfs: -C %s: not an open file descriptor\n",
					optarg);
				return EXIT_USAGE;
			}
			progress_fd = (int)fd;
			break;
		}
		case 'h': usage(stdout); return EXIT_CLEAN;
		case 'V': printf("fsck.settfs %s (sett %s)\n", SETT_VERSION, SETT_VERSION_STRING);
			return EXIT_CLEAN;
		case ':':
		default:
			std_bad_option("fsck.settfs", c, argv);
			return EXIT_USAGE;
		}
	}
	if (modes > 1) {
		fprintf(stderr, "fsck.settfs: only one of -n, -p and -y\n");
		return EXIT_USAGE;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "fsck.settfs: %s (see --help)\n",
			optind == argc ? "no STORE given" : "one STORE only");
		return EXIT_USAGE;
	}
	const char *store = argv[optind];
	if (key_load("fsck.settfs", key_file, pass_file, &key))
		return EXIT_OPERR;
	progress_open(&prog, "fsck.settfs", store, progress_fd);
	struct stat sst;
	if (stat(store, &sst) != 0) {
		fprintf(stderr, "fsck.settfs: %s: %s\n", store, strerror(errno));
		return EXIT_OPERR;
	}
	ck.quiet = quiet;
	char why[1024];
	long faults = 0, fixed = 0;
	sett_db *db;
	/* The first look is read-only whatever the mode: nothing changes
	 * before the store is known to open. */
	int r = open_store(store, 1, &db, why, sizeof why);
	/* a daemon just unmounted may still be flushing: wait up to 30 s */
	for (int ms = 0; r == SETT_ELOCKED && ms < 30000; ms += 100) {
		if (ms == 0)
			fprintf(stderr, "fsck.settfs: %s is in use by pid %ld, waiting up to 30 s "
					"for it to be released\n", store, sett_lock_holder(store));
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		r = open_store(store, 1, &db, why, sizeof why);
	}
	if (r == SETT_ELOCKED) {
		fprintf(stderr, "fsck.settfs: %s is in use by pid %ld (mounted?)\n", store,
			sett_lock_holder(store));
		return EXIT_OPERR;
	}
	int engine_repair = 0;
	long engine_left = 0; /* engine faults this run does not repair */
	if (r == SETT_EKEY || r == -ENOTSUP) {
		/* not damage: a repair would rebuild nothing it can read */
		if (r == SETT_EKEY)
			fprintf(stderr, "fsck.settfs: %s: %s\n", store,
				key_refused(key.has_key || key.has_pass));
		if (why[0])
			fprintf(stderr, "fsck.settfs: %s\n", why);
		else if (r != SETT_EKEY)
			fprintf(stderr, "fsck.settfs: %s: %s\n", store, sett_strerror(r));
		if (r == SETT_EKEY && !key.has_key && !key.has_pass)
			fprintf(stderr, "fsck.settfs: give its key with --key-file F or "
					"--passphrase-file F\n");
		key_wipe(&key);
		return EXIT_OPERR;
	}
	if (r) {
		if (!looks_like_store(store) || r == -ENOTDIR || r == -EACCES || r == -ENOMEM) {
			fprintf(stderr, "fsck.settfs: %s: %s\n", store, why[0] ? why : sett_strerror(r));
			return EXIT_OPERR;
		}
		faults++;
		fprintf(stderr, "fsck.settfs: cannot open %s: %s\n", store,
			why[0] ? why : sett_strerror(r));
		if (level < FIX_ALL) {
			printf("fsck.settfs: %s: the store does not open; fsck.settfs -y rebuilds it\n",
			       store);
			return EXIT_LEFT;
		}
		engine_repair = 1;
	} else {
		r = sett_verify(db, on_verify, NULL);
		if (r && r != SETT_ECORRUPT)
			operr("verify", r);
		faults += engine_faults;
		engine_left = engine_faults;
		if (engine_faults && level >= FIX_ALL) {
			engine_repair = 1;
			sett_close(db);
		}
	}
	if (!engine_repair && level >= FIX_ALL && !has_super(db)) {
		/* a MANIFEST cut short may have dropped the table that holds it */
		faults++;
		printf("engine: no superblock: rebuilding the store from all its tables\n");
		engine_repair = 1;
		sett_close(db);
	}
	if (engine_repair) {
		settfs_options so;
		settfs_options_init(&so);
		key_apply(&key, &so.engine);
		r = sett_repair(store, &so.engine, on_repair, NULL);
		if (r)
			operr("engine repair", r);
		if ((r = open_store(store, 1, &db, why, sizeof why))) {
			fprintf(stderr, "fsck.settfs: %s: does not open after the engine repair: %s\n",
				store, why[0] ? why : sett_strerror(r));
			return EXIT_OPERR;
		}
		long before = engine_faults;
		ck.quiet = 1;
		sett_verify(db, on_verify, NULL);
		ck.quiet = quiet;
		long remain = engine_faults - before;
		engine_left = remain;
		fixed += faults - (remain < faults ? remain : faults);
		if (remain)
			printf("fsck.settfs: %ld engine faults remain after the repair\n", remain);
	}

	/* the filesystem: fixes need a writable open, which the read-only one
	 * has shown to be safe; a store with engine faults left (-p) is not
	 * written to */
	if (level > FIX_NONE && !engine_left) {
		sett_close(db);
		if ((r = open_store(store, 0, &db, why, sizeof why)))
			operr(why[0] ? why : store, r);
	}
	if (engine_left && level > FIX_NONE)
		printf("fsck.settfs: the engine has faults: nothing is changed without -y\n");
	ck.blocked = engine_left && level > FIX_NONE;
	fs_check(db, engine_left ? FIX_NONE : level, quiet);
	ck.blocked = 0;
	faults += ck.found;
	fixed += ck.fixed;
	size_t ninodes = 0;
	for (size_t i = 0; i < ck.ninodes; i++)
		ninodes += ck.inodes[i].state == INO_LIVE;
	long left = faults - fixed;
	if (level > FIX_NONE && !engine_left && ck.found) {
		/* what a fresh look still finds was not corrected */
		sett_close(db);
		if ((r = open_store(store, 1, &db, why, sizeof why)))
			operr(why[0] ? why : store, r);
		ck.nlost = 0;
		engine_faults = 0;
		ck.quiet = 1;
		sett_verify(db, on_verify, NULL);
		fs_check(db, FIX_NONE, 1);
		left = ck.found + engine_faults;
		if (left > faults)
			left = faults;
		if (left && !quiet)
			printf("fsck.settfs: %ld faults remain after the repair; "
			       "run fsck.settfs -n to see them\n", left);
		fixed = faults - left;
	}
	sett_close(db);
	key_wipe(&key);
	progress_clear(&prog);
	printf("fsck.settfs: %s: %zu inodes, %ld fault%s, %ld fixed\n", store, ninodes, faults,
	       faults == 1 ? "" : "s", fixed);
	reset();
	return (fixed > 0 ? EXIT_FIXED : 0) | (left > 0 ? EXIT_LEFT : 0);
}
