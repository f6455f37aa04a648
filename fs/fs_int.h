/*
 * fs_int.h - internal structures of the settfs core, shared by its files.
 *
 * The in-memory state of an inode lives in an sfs_node, found through a
 * hash table keyed by inode number.  A node exists while the kernel holds
 * lookup references, while the inode is open, or while a request is using
 * it; its `in` copy is the authority for the inode (buffered writes update
 * size and mtime there before the chunk batch persists them).
 *
 * Locks, always taken in this order:
 *   fs->snap_mu: taking and deleting snapshots, one at a time.
 *   fs->freeze_lock (rwlock, writers first): every change of what the
 *       filesystem shows holds it for reading, from its public entry
 *       point on (never nested); taking a snapshot holds it for writing
 *       while it commits the buffers and pins the version.
 *   fs->views_lock (rwlock, readers first): a request in a snapshot's
 *       view holds it for reading; opening or closing a view (deleting a
 *       snapshot) for writing.  Views have their own locks below.
 *   fs->ns_lock (rwlock): namespace changes (create, unlink, rename, ...)
 *       take it for writing, lookups and readdir for reading.  Every
 *       operation that locks more than one node holds it for writing, so
 *       node locks never deadlock against each other.
 *   node->fill_lock: changes of the node's data generation and writable
 *       opens (sfs_node_get_change), and the page-cache fill that must not
 *       overlap them (settfs_fill_run).  A fill holds it while the kernel
 *       copies pages, which can wait for a READ being served: so it is
 *       never taken with node->lock held, and reads never take it.
 *   node->lock: the node's inode copy and write buffers.
 *   fs->tab_lock: the hash table and the reference counts; held briefly.
 */
#ifndef SETTFS_FS_INT_H
#define SETTFS_FS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "schema.h"
#include "settfs.h"

/* Most overlay pages a chunk can have (1 MiB chunks / 4 KiB pages). */
#define SFS_MAX_PAGES 256

/*
 * A buffered (dirty) chunk of a file, held whole: written when a write
 * starts a chunk past the end of file or covers a whole chunk.  On commit
 * it replaces the stored chunk and deletes its overlay pages.
 */
typedef struct sfs_chunk {
	uint64_t idx;
	uint32_t len;         /* bytes of data valid in buf */
	uint32_t stored_len;  /* bytes the chunk held in the engine (blocks) */
	uint8_t *buf;         /* chunk_size bytes */
	int borrowed;         /* buf is the writer's, held only within settfs_write */
	uint64_t ovl[SFS_MAX_PAGES / 64]; /* stored overlay pages to delete */
} sfs_chunk;

/*
 * A buffered (dirty) page of a chunk that is not buffered whole: a small
 * write into a stored chunk costs a page, not a chunk.  On commit it
 * becomes an overlay page (or is folded into the chunk).  A chunk never
 * has both an sfs_chunk and sfs_pages.
 */
typedef struct sfs_page {
	uint64_t idx;         /* chunk */
	uint32_t pg;          /* page within the chunk */
	uint32_t len;         /* bytes of data valid in buf (the rest is zero) */
	uint8_t *buf;         /* SFS_PAGE_SIZE bytes */
} sfs_page;

/* Which overlay pages a stored chunk has: an entry of a node's overlay map. */
typedef struct sfs_ovl {
	uint64_t idx;         /* chunk + 1; 0: a free slot */
	uint64_t pages[SFS_MAX_PAGES / 64];
} sfs_ovl;

/*
 * Why a node's inode must be written.  An atime-only change is best
 * effort: a read must never fail for lack of disk space, so when its write
 * fails the new atime is dropped.
 */
#define SFS_DIRTY_META 1
#define SFS_DIRTY_ATIME 2

typedef struct sfs_node {
	uint64_t ino;
	struct sfs_node *hnext;
	/* under fs->tab_lock */
	uint64_t nlookup;
	uint64_t nopen;
	int refs;
	/* under lock */
	pthread_mutex_t lock;
	int loaded;           /* `in` holds the inode */
	int gone;             /* deleted from the store */
	int meta_dirty;       /* `in` differs from the store: SFS_DIRTY_* bits */
	/*
	 * CLOCK_MONOTONIC ns when `in` or the buffers last went from clean to
	 * dirty, 0 while clean; written under lock, read by the expiry scan
	 * under tab_lock only.
	 */
	atomic_llong dirty_since;
	int xattrs;           /* -1 unknown, 0 none, 1 some */
	sfs_inode in;
	uint64_t counted;     /* what this node adds to fs->logical_bytes */
	uint64_t counted_blocks; /* ... and to fs->stored_bytes */
	sfs_chunk *chunks;
	size_t nchunks, capchunks;
	sfs_page *pages;
	size_t npages, cappages;
	/*
	 * The overlay map (data.c): for the chunks whose keys were looked at,
	 * which overlay pages the store holds, so that reads and commits name
	 * a chunk's keys (point reads) instead of walking them with an
	 * iterator, which steps over every deleted one too.  It is what the
	 * node's own commits wrote: ovl_pend is what the batch being built
	 * makes of it (sfs_batch_node), applied by sfs_node_committed; a
	 * truncate, punch or move forgets the chunks it changes.  A hash
	 * table of capovl slots (a power of two, at most half used).
	 * Chunks from ovl_void on that are not in it have no keys at all:
	 * each commit lowers it to the end of file (past which nothing is
	 * stored), each chunk forgotten raises it past that chunk.
	 */
	sfs_ovl *ovl;
	size_t novl, capovl;
	uint64_t ovl_void;
	sfs_ovl *ovl_pend;
	size_t npend, cappend;
	/*
	 * Page-cache fill (settfs_fill_token): written with fill_lock and lock
	 * held, read with either.  data_gen changes with every writable open,
	 * truncate and fallocate; its values come from fs->data_gen_next, so a
	 * node that was dropped and loaded again never repeats an old one.
	 */
	pthread_mutex_t fill_lock;
	uint64_t data_gen;
	uint64_t writers;     /* open handles with O_WRONLY or O_RDWR */
} sfs_node;

struct settfs {
	sett_db *db;
	char *path;
	uint32_t chunk_size;
	int xattr_flag;       /* format >= 3: SFS_IFLAG_XATTRS is kept */
	int no_acl;           /* settfs_options.no_acl */
	uint8_t codec;        /* SFS_CODEC_* of chunks written from now on */
	int zlevel;           /* its zstd level */
	size_t dirty_limit, inode_dirty_limit;
	size_t max_batch_deletes; /* deletions per commit, to fit a memtable */
	size_t max_batch_bytes;   /* value bytes per commit that rewrites data */
	pthread_rwlock_t ns_lock;
	pthread_mutex_t tab_lock;
	sfs_node **buckets;
	size_t nbuckets, nnodes;
	/* handles of settfs_opendir not yet released, under tab_lock: freed
	 * by settfs_close (an aborted FUSE connection sends no RELEASEDIR) */
	struct settfs_dir *open_dirs;
	/* inode allocation, under ns_lock (write) */
	uint64_t next_ino, ino_limit;
	atomic_llong dirty_bytes;
	atomic_llong used_inodes;
	/* sizes of the regular files: counted at open, kept by sfs_node_put */
	atomic_llong logical_bytes;
	atomic_llong stored_bytes; /* their blocks, likewise */
	int logical_known;    /* the count at open read every inode */
	atomic_ullong data_gen_next; /* source of sfs_node.data_gen values */
	int read_only;        /* the engine is open read-only */
	int degraded;         /* opened read-only around damage (settfs_degraded) */
	atomic_int first_corrupt_taken;
	char first_corrupt[512]; /* the first SETT_ECORRUPT a read met (read after open) */
	void (*corruption_fn)(void *, const char *); /* the caller's engine.corruption_fn */
	void *corruption_arg;
	void (*attr_fn)(void *, uint64_t); /* settfs_set_attr_fn; NULL: none */
	void *attr_arg;
	/* the reserve (sfs_space_admit), under space_mu */
	pthread_mutex_t space_mu;
	uint64_t reserve;
	uint64_t space_free;      /* free bytes of the disk, less what was admitted since */
	int64_t space_measured;   /* sfs_now() of the last statvfs */
	/* sett_reclaim runs for a refused admission (sfs_space_admit), one at a time */
	pthread_mutex_t reclaim_mu;
	uint64_t reclaim_gen;     /* reclaims run so far */
	int64_t reclaim_after;    /* sfs_now() before which none runs (it found nothing) */
	/* settfs_writeback: engine version last made durable, and when (ns) */
	pthread_mutex_t wb_lock;
	uint64_t synced_version;
	int64_t synced_at;
	/*
	 * Snapshots (snapshot.c).  A view is a read-only settfs of one
	 * snapshot sharing the live one's engine: read_version is the
	 * snapshot's version (0 in the live filesystem), `live` the
	 * filesystem it belongs to, `slot` its inode space.
	 */
	uint64_t read_version;
	settfs *live;
	uint32_t slot;
	/* live only: every change of what the filesystem shows holds
	 * freeze_lock for reading; taking a snapshot holds it for writing
	 * while it commits the buffers and pins the version */
	pthread_rwlock_t freeze_lock;
	pthread_mutex_t snap_mu;      /* snapshot creation and deletion, one at a time */
	pthread_rwlock_t views_lock;  /* requests in views: read; opening/closing one: write */
	struct sfs_view *views;       /* open views */
	size_t nviews, capviews;
	uint8_t *slots_freed;         /* under snap_mu: slots of snapshots deleted while open */
	int no_snapdir;               /* settfs_options.no_snapdir */
	void (*entry_fn)(void *, uint64_t, const char *); /* settfs_set_entry_fn */
	void *entry_arg;
	/* the space a deleted snapshot held comes back on a thread of its own
	 * (sett_reclaim), under snap_mu: running, asked again, closing */
	pthread_t giveback;
	int giveback_running, giveback_again, giveback_stop;
	pthread_cond_t giveback_cv;
};

/* An inode number as the mount shows it: a view's lie in its slot's space. */
static inline uint64_t sfs_ino_out(const settfs *fs, uint64_t ino)
{
	return fs->live ? (uint64_t)fs->slot << SETTFS_SNAP_INO_SHIFT | ino : ino;
}

/* A settfs with its locks and inode table, nothing open (settfs_open, views). */
/* A missing or empty directory (a lone LOCK counts as empty), a store (it
 * has a MANIFEST), something else; or -errno. */
enum { SFS_DIR_EMPTY, SFS_DIR_STORE, SFS_DIR_OTHER };
int sfs_dir_state(const char *path);
/* 1 when the open store holds nothing a filesystem could be made of (no
 * key, no table, nothing quarantined), 0 if it does, or -errno. */
int sfs_store_is_fresh(sett_db *db, const char *path);
/* Deletes every key of the store but those keep (may be NULL) returns 1 for. */
int sfs_wipe_store(sett_db *db, int (*keep)(sett_val key));
int sfs_fs_alloc(const char *path, settfs **fsp);
/* Frees the inode table, directory handles and locks; not the engine. */
void sfs_fs_free(settfs *fs);
/* Closes every view (settfs_close). */
void sfs_views_close(settfs *fs);
/* Waits for the space-giveback thread of deleted snapshots (settfs_close). */
void sfs_giveback_stop(settfs *fs);
/* The snapshot directory (snapshot.c). */
int sfs_snapdir_stat(settfs *fs, struct stat *st);
int sfs_snapdir_lookup(settfs *fs, const char *name, struct stat *st);
int sfs_snapdir_readdir(settfs *fs, off_t off, int plus, settfs_fill_fn fill, void *arg);
int sfs_snapdir_mkdir(settfs *fs, const settfs_ctx *ctx, const char *name, struct stat *st);
int sfs_snapdir_rmdir(settfs *fs, const settfs_ctx *ctx, const char *name);
/* Is `name` in `parent` the snapshot directory? */
static inline int sfs_is_snapdir_name(const settfs *fs, uint64_t parent, const char *name)
{
	return !fs->live && !fs->no_snapdir && parent == SETTFS_ROOT_INO &&
	       strcmp(name, SETTFS_SNAPDIR_NAME) == 0;
}

/* Hold off snapshot creation while a change is made (live filesystem only). */
void sfs_freeze_enter(settfs *fs);
void sfs_freeze_exit(settfs *fs);
/*
 * Routes a request for the mount's inode *ino: 0 with *vfs the filesystem
 * that holds it (fs itself, or a view of a snapshot, then with
 * fs->views_lock held for reading) and *ino its number there; release
 * with sfs_route_end.  -ESTALE for a snapshot deleted since.
 */
int sfs_route(settfs *fs, uint64_t *ino, settfs **vfs);
void sfs_route_end(settfs *fs, settfs *vfs);
/* A snapshot's inode (or the snapshot directory): not to be changed. */
static inline int sfs_is_snap_ino(const settfs *fs, uint64_t ino)
{
	return !fs->live && (ino >> SETTFS_SNAP_INO_SHIFT) != 0;
}
/*
 * The body of a public function that reads: run `call` (which names
 * v_ and i_) in the filesystem that holds `ino` and return its result.
 */
#define SFS_IN_VIEW(fs, ino, call)                                   \
	do {                                                          \
		if (sfs_is_snap_ino(fs, ino)) {                       \
			uint64_t i_ = (ino);                          \
			settfs *v_;                                   \
			long long r_ = sfs_route(fs, &i_, &v_);       \
			if (r_ == 0) {                                \
				r_ = (call);                          \
				sfs_route_end(fs, v_);                \
			}                                             \
			return r_;                                    \
		}                                                     \
	} while (0)

/*
 * Admits an operation that grows the store by about `bytes`: -EROFS on a
 * store open read-only (-o ro, a degraded mount: the kernel's ro flag may
 * be missing or remounted away, and a write buffered here would be lost),
 * -ENOSPC when the store's disk would have less than the reserve free even
 * after the engine gave back what deletions hold (sett_reclaim).  Operations that
 * free space (unlink, rmdir, truncate down, punch hole, removexattr,
 * rename) and metadata updates do not ask.
 */
int sfs_space_admit(settfs *fs, uint64_t bytes);
/*
 * The same check for a caller that holds node locks: it never reclaims
 * (a reclaim takes as long as a compaction of the store, and readers and
 * writers of the node would wait for it) but returns SFS_ERECLAIM where
 * sfs_space_admit would reclaim.  The caller then drops its locks, calls
 * sfs_space_reclaim with the generation it read before the check, and
 * starts over once; a second SFS_ERECLAIM means ENOSPC.
 */
#define SFS_ERECLAIM (-0x10000)
int sfs_space_admit_locked(settfs *fs, uint64_t bytes);
uint64_t sfs_space_reclaim_gen(settfs *fs);
/* Runs sett_reclaim unless one ran since generation gen, or the last found
 * nothing less than RECLAIM_BACKOFF ago.  No node lock may be held. */
void sfs_space_reclaim(settfs *fs, uint64_t gen);
/* What a new inode or dentry costs the store, roughly (for sfs_space_admit). */
#define SFS_INODE_ESTIMATE 512

struct settfs_dir {
	struct settfs_dir *prev, *next; /* settfs.open_dirs */
	uint64_t ino;
	off_t last_off;       /* cookie of the last entry returned */
	size_t last_len;
	char last_name[SETTFS_NAME_MAX + 1];
};

#define SFS_INO_BATCH 1024

static inline sett_val sfs_val(const void *p, size_t n)
{
	sett_val v = { n, p };
	return v;
}

int64_t sfs_now(void);
int64_t sfs_mono_now(void); /* CLOCK_MONOTONIC ns */
int sfs_errno(int err);  /* engine error -> -errno */
/* A key-only iterator (values load on demand) at fs->read_version over
 * the keys that start with the n bytes at p; reverse: largest first. */
int sfs_prefix_iter(settfs *fs, const void *p, size_t n, int reverse, sett_iter **it);
/* The superblock of db at `version` (0: the newest): 0, -EINVAL if there
 * is none (not a settfs store), or the read's or the decode's error. */
int sfs_super_read(sett_db *db, uint64_t version, sfs_super *sb);

/*
 * Get the node of `ino` with its lock held and its inode loaded (-ENOENT
 * when the inode does not exist).  Release with sfs_node_put().
 */
int sfs_node_get(settfs *fs, uint64_t ino, sfs_node **np);
/*
 * sfs_node_get() for an operation that changes the node's data, size or
 * writable opens: node->fill_lock is taken before node->lock, so the change
 * waits for a page-cache fill of the node in progress.  Release with
 * sfs_node_put_change().
 */
int sfs_node_get_change(settfs *fs, uint64_t ino, sfs_node **np);
void sfs_node_put_change(settfs *fs, sfs_node *n);
/* A fill token taken before now no longer matches (both node locks held). */
void sfs_node_data_changed(settfs *fs, sfs_node *n);
/* Count a writable open handle that was added without settfs_file_open. */
void sfs_note_writer(settfs *fs, uint64_t ino);
/* The node of ino if it is in the table (fs->tab_lock held), else NULL. */
sfs_node *sfs_node_find_locked(settfs *fs, uint64_t ino);
/* Unlock and drop the reference; an unreferenced unlinked inode is reclaimed. */
void sfs_node_put(settfs *fs, sfs_node *n);
/* Frees a node that left the table (its buffers dropped, unwritten). */
void sfs_node_destroy(settfs *fs, sfs_node *n);
/* Adjust counts (under tab_lock internally). */
void sfs_node_ref(settfs *fs, sfs_node *n, int64_t dlookup, int64_t dopen);
/* Add an inode that has no node yet (a new one) to batch b. */
int sfs_batch_new_inode(sett_batch *b, uint64_t ino, const sfs_inode *in);
/*
 * Add `in`, the new state of node n's inode (a copy of n->in with the
 * operation's changes), to b with n's buffered chunks and pages, so that
 * no stored inode has a size covering data the store does not hold.
 * Updates in->blocks and in->flags.  Every commit of an existing inode
 * goes through here (most by way of sfs_commit_node); after the commit
 * succeeded, sfs_node_committed().
 */
int sfs_batch_node(settfs *fs, sett_batch *b, sfs_node *n, sfs_inode *in);
/* n->in = *in, clean: the buffers were committed with it. */
void sfs_node_committed(settfs *fs, sfs_node *n, const sfs_inode *in);
/*
 * sfs_batch_node, a write of b (synced with `sync`) and, once it is
 * written, sfs_node_committed.  b stays the caller's to free or clear.
 */
int sfs_commit_node(settfs *fs, sett_batch *b, sfs_node *n, sfs_inode *in, int sync);
/* n->in was changed in memory (what: SFS_DIRTY_*) or buffers were added. */
void sfs_node_dirtied(sfs_node *n, int what);
/* Write the node's dirty chunks and inode in one commit. */
int sfs_node_flush(settfs *fs, sfs_node *n, int sync);
/*
 * sfs_node_flush() every node that has been dirty for at least min_age_ns
 * (0: every dirty node); with drop_failed, a node whose commit fails
 * drops its buffers (its data is lost, the node may go).
 */
int sfs_flush_nodes(settfs *fs, int64_t min_age_ns, int drop_failed);
/* Drop buffered chunks and pages (after they were committed or discarded). */
void sfs_node_drop_chunks(settfs *fs, sfs_node *n);
/* The overlay map after a commit of ovl_pend succeeded (sfs_node_committed). */
void sfs_ovl_committed(settfs *fs, sfs_node *n);
/* Forget the overlay map's chunks [lo, hi) (their keys are being changed). */
void sfs_ovl_forget(sfs_node *n, uint64_t lo, uint64_t hi);
/* Free the node's overlay map. */
void sfs_ovl_free(sfs_node *n);
/*
 * Add the node's buffered chunks and pages to b (node locked): whole
 * chunks replace stored ones, pages become overlay keys or are folded into
 * their chunk.  *blocks (the inode's stored byte count) is updated.
 */
int sfs_data_batch(settfs *fs, sfs_node *n, sett_batch *b, uint64_t *blocks);
/*
 * Delete every key of an unlinked inode (chunks, xattrs, inode, orphan).
 * `in` (may be NULL) and `xattrs` (-1 unknown, 0 none) let it skip scans.
 */
int sfs_reclaim(settfs *fs, uint64_t ino, const sfs_inode *in, int xattrs);
void sfs_fill_stat(const settfs *fs, uint64_t ino, const sfs_inode *in, struct stat *st);

/* dentry lookup under ns_lock; -ENOENT when absent */
int sfs_dentry_get(settfs *fs, uint64_t parent, const char *name, uint64_t *ino,
		   uint32_t *type);
int sfs_check_name(const char *name);
/*
 * Truncate helper (n flushed, locked): adds the chunk deletions and the
 * tail cut to b and sets in->size and in->blocks; `in` is the caller's
 * copy of n->in.  A truncate too large for one batch commits intermediate
 * ones first, each a legal state (see data.c), and updates n->in with them.
 */
int sfs_truncate_batch(settfs *fs, sfs_node *n, sfs_inode *in, uint64_t size, sett_batch *b);
/*
 * chmod of node n (locked) to `mode`: adds its access ACL, rewritten to
 * agree with the mode, to b if it has one.  -EIO for a damaged ACL.
 */
int sfs_acl_chmod_batch(settfs *fs, sfs_node *n, uint32_t mode, sett_batch *b);
/*
 * A new inode `ino` of *mode in directory p (locked): with a default ACL
 * on p, adds the inode's access ACL (unless the mode says all of it) and,
 * for a directory, its default ACL to b, and masks *mode's permission bits
 * by the ACL; returns 1 if it added an attribute, else 0.  Without one,
 * clears `umask` from *mode and returns 0.
 */
int sfs_acl_inherit(settfs *fs, sfs_node *p, uint64_t ino, uint32_t *mode, uint32_t umask,
		    sett_batch *b);
/* Does the directory have entries? 1 yes, 0 no, <0 error */
int sfs_dir_nonempty(settfs *fs, uint64_t ino);

#endif
