/*
 * db_impl.h - the internals of sett_db, shared by the db/ layer: state.c
 * (views, versions, read versions, lookups, edits), version.c (LSM
 * shapes), write.c (writer and flusher), compaction.c and vlog_gc.c (the
 * background work), db_iter.c (the public iterator), and above them by
 * api/ (open.c opens and closes the store; repair, streams, backups).
 *
 * Locking: db->mu protects the memtable list, the current version, the
 * table/file id counters, the list of open read versions and the
 * background-work state.  It is never held across file I/O except for
 * short metadata operations.  The writer thread alone appends to the
 * active memtable, its WAL and the value log.
 */
#ifndef SETT_DB_IMPL_H
#define SETT_DB_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "sett.h"
#include "cache.h"
#include "entry.h"
#include "iter.h"
#include "manifest.h"
#include "memtable.h"
#include "oracle.h"
#include "subscribe.h"
#include "table.h"
#include "vlog.h"
#include "wal.h"

#define MAX_LEVELS SETT_MAX_LEVELS

/*
 * An immutable shape of the LSM tree: the tables of every level.  L0 holds
 * tables newest first (they may overlap); L1.. hold non-overlapping tables
 * sorted by smallest key.  A version holds a reference on each of its
 * tables; readers hold a reference on the version.
 */
typedef struct lsm_version {
	int refs; /* atomic */
	int ntables[MAX_LEVELS];
	table **tables[MAX_LEVELS];
	/*
	 * Read-only opens with open_damaged: L1.. levels that hold a damaged
	 * table (table_open_damaged) somewhere between their readable ones,
	 * with its key range unknown; one of them, referenced.  Damaged L0
	 * tables are in tables[0] in their place.
	 */
	table *damaged[MAX_LEVELS];
	/* The largest version any table of the level holds (lookups: can a
	 * deeper source hold a newer version than a hit above it?). */
	uint64_t max_version[MAX_LEVELS];
} lsm_version;

/* A change of shape: tables removed and tables added (with their level). */
typedef struct version_edit {
	uint64_t *del_ids;
	size_t ndel;
	table **add;
	uint8_t *add_levels;
	size_t nadd;
} version_edit;

lsm_version *version_new_empty(void);
void version_ref(lsm_version *v);
void version_unref(lsm_version *v);
/*
 * Builds base - del + add.  Added tables get a new reference; tables of base
 * that are kept get one too.  L0 additions go in front (newest first).
 */
int version_apply(const lsm_version *base, const version_edit *e, lsm_version **out);
uint64_t version_level_bytes(const lsm_version *v, int level);

/*
 * A memtable and its write-ahead log.  A memtable replayed at open may hold
 * the contents of several WALs (w and more[]): all of them go when it is
 * flushed, none before.
 */
typedef struct memslot {
	memtable *mt;
	wal *w;
	wal **more;
	int nmore;
} memslot;

#define MAX_MEMTABLES 32
enum { STOP_WRITERS = 1, STOP_FLUSHER = 2 }; /* sett_db.stopping */
enum { STALL_MEMTABLES, STALL_L0 };

struct write_req;
struct compactor_state;
struct gc_state;

struct sett_db {
	char *dir;
	sett_options opt;
	int lock_fd;

	manifest *man;
	/*
	 * An encrypted store's data keys (KEYREGISTRY, each made ready once),
	 * for the life of the store; the last one is the current key, which
	 * new files use.  NULL for an unencrypted store.  Freed (wiped) after
	 * every file that borrows its keys is closed.
	 */
	struct keyreg *kr;
	struct cipher_ring *ring; /* kr's keys as tables and the value log take them */
	sett_keys keys;           /* finds the key a file names (nothing when unencrypted) */
	vlog *vl;
	cache *bcache;
	table_options topt;

	pthread_mutex_t mu;
	pthread_mutex_t install_mu; /* orders manifest appends with version swaps */
	pthread_cond_t cv_flush;  /* flusher: an immutable memtable is waiting */
	pthread_cond_t cv_room;   /* writers: a memtable was flushed / L0 shrank */
	pthread_cond_t cv_bg;     /* compactors and GC: work may be waiting */

	memslot active;
	memslot imm[MAX_MEMTABLES]; /* oldest first */
	int nimm;
	lsm_version *current;

	uint64_t next_table_id;
	uint64_t table_id_limit; /* ids below it are recorded allocated (install_mu) */
	uint32_t next_wal_id;

	/* The newest version whose batch is fully applied (readers use it). */
	uint64_t last_version; /* atomic */
	uint64_t next_version; /* writer thread only */

	/* Conflict records of transactions (oracle.h) and subscriptions. */
	oracle orc;
	subs_state subs;

	/* Read versions of open iterators and transactions (for compaction's
	 * discard point). */
	uint64_t *readers;
	size_t nreaders, capreaders;

	/* Writer thread queue. */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;       /* writer: requests queued */
	pthread_cond_t done_cv;   /* submitters: a group was written */
	struct write_req *qhead, *qtail;
	pthread_t writer;
	pthread_t flusher;
	int have_writer, have_flusher;
	int writing;   /* a group is being written (by the writer or a caller); under wmu */
	/*
	 * The WAL record and value-struct buffers of the group being written,
	 * kept for the next group (at most GROUP_BUF_KEEP bytes each): only
	 * the one writing a group (writing = 1) touches them.
	 */
	buf gwbuf, gvsbuf;
	/*
	 * Lowest value-log file a group being written may point into before its
	 * entries reach the memtable (UINT32_MAX: none); GC leaves it alone.
	 */
	uint32_t inflight_fid; /* atomic */

	int closing; /* under wmu: writes are refused; the writer exits once idle */
	/*
	 * Under mu: how far sett_close is.  STOP_WRITERS: writers no longer
	 * stall on a deep L0, and waits for flushes give up; STOP_FLUSHER: the
	 * writer has exited and the last memtable was handed to the flusher,
	 * which flushes what is left and exits.
	 */
	int stopping;
	/*
	 * First error after which the state on disk is uncertain (a failed
	 * fsync or cut-back, corruption): every later write fails with it until
	 * the store is reopened.
	 */
	int bg_error;
	/*
	 * The last flush (STALL_MEMTABLES) or compaction (STALL_L0) failed
	 * without harm (full disk...) and is being retried; cleared by the next
	 * one that succeeds.  A writer that would have to wait for that kind of
	 * room fails with it instead.  Under mu.
	 */
	int stall_error[2];
	uint64_t flush_failures; /* failed flushes so far (under mu) */

	/*
	 * Background work (compaction.c, vlog_gc.c); NULL when not running.
	 * Set by sett_open before the writer, flusher and GC threads start and
	 * cleared by sett_close after they stopped, so they read it unlocked.
	 */
	struct compactor_state *compactors;
	uint64_t compaction_kicks; /* mu; the compactors sleep on cv_bg until it moves */
	struct gc_state *gc;
	/* Per value-log file discard statistics (discard.h): compaction adds,
	 * GC reads and corrects them; loaded read-only too, for sett info. */
	struct discard *discard;
	struct pin_state *pins; /* pinned versions (pin.h) */
	struct drop_state *drops; /* prefix drops (drop.h) */

	/* Counters (atomic). */
	uint64_t stat_user_bytes;
	uint64_t stat_write_stalls;
	uint64_t stat_write_stall_us;
	int damaged_tables; /* opened with table_open_damaged */
	table **damaged_below_l0; /* those below L0 (referenced), for sett_verify */
	int ndamaged_below_l0;
	uint64_t stat_compactions;
	uint64_t stat_gc_runs;
	uint64_t stat_gc_files;
	uint64_t stat_gc_bytes_measured;
	uint64_t stat_gc_bytes_rewritten;
	uint64_t stat_iter_entries;
	uint64_t stat_gc_bytes_reclaimed;
	uint64_t stat_background_reclaims;
};

/* ---- shared state (state.c) for the rest of the engine ---- */

/* The ids of the files named NNNN<suffix> in dir, sorted (malloc'ed). */
int db_list_ids(const char *dir, const char *suffix, uint64_t **ids, size_t *n);
/* Paths of the store's files (snprintf into out). */
void db_table_path(const sett_db *db, uint64_t id, char *out, size_t n);

/*
 * A consistent view for a reader: memtables newest first and the version.
 * db_view_release drops the references.
 */
typedef struct db_view {
	memtable *mts[MAX_MEMTABLES + 1];
	int nmts;
	lsm_version *v;
} db_view;
void db_view_get(sett_db *db, db_view *vw);
/* Same, for a snapshot reader: picks *rv (requested, or the newest if 0 or
 * newer) and registers it (db_reader_remove(db, *rv) when done). */
void db_view_get_reader(sett_db *db, db_view *vw, uint64_t requested, uint64_t *rv);
void db_view_release(db_view *vw);

/* An internal iterator over everything in the view (merge, newest first). */
sit *db_view_iter(sett_db *db, db_view *vw);

/*
 * Newest version <= read_version of ukey: returns 1 and fills *version and
 * vs (value struct bytes), 0 if absent, <0 on error.  Tombstones are
 * returned as found (vs meta has META_DELETE).
 */
int db_lookup(sett_db *db, slice ukey, uint64_t read_version, uint64_t *version, buf *vs);

/* Resolves a value struct to the value bytes (reading the value log). */
int db_resolve_value(sett_db *db, slice ukey, const vstruct *v, buf *out);

/* Oldest read version still in use (by an iterator or a transaction), or
 * last_version; in managed mode never above the discard version. */
uint64_t db_oldest_read_version(sett_db *db);
/* Picks (requested, or the newest if 0 or newer; any in managed mode) and
 * registers a read version (db_reader_remove when done). */
uint64_t db_reader_begin(sett_db *db, uint64_t requested);
void db_reader_add(sett_db *db, uint64_t v);
void db_reader_remove(sett_db *db, uint64_t v);

/* Hands why (a SETT_ECORRUPT a read met) to opt.corruption_fn; a table reporter. */
void db_report_corrupt(void *db, const char *why);

/* Records a background error (first one wins) and wakes everyone. */
void db_set_bg_error(sett_db *db, int err);
/* Records (err < 0) or clears (0) stall_error[which] and wakes writers
 * waiting for room. */
void db_set_stall_error(sett_db *db, int which, int err);
/*
 * Waits until every immutable memtable is flushed: 0, or bg_error, or the
 * error of a flush that failed meanwhile (SETT_ECLOSED when closing).
 */
int db_wait_flushed(sett_db *db);

/*
 * Installs a new version after a flush or compaction: writes the manifest
 * change set, swaps db->current, marks removed tables obsolete.  Takes mu.  When it fails with the MANIFEST's state
 * uncertain (it may name the new tables), it sets bg_error itself; any
 * other failure changed nothing.
 */
int db_install_edit(sett_db *db, const version_edit *e);
/* Wakes the compactors (a new L0 table, a version change, a pin released). */
void db_kick_compaction(sett_db *db);

uint64_t db_new_table_id(sett_db *db);

/*
 * Value-log GC write-back: for each entry, if a read of its key at `at[i]`
 * (0: the published version; else a pinned version) still finds version
 * `versions[i]` pointing at the value log position `old[i]`, rewrite the
 * value (under the same version) into the head of the value log;
 * otherwise skip it.  Runs on the writer thread so the check and the
 * write are atomic with respect to other writes.
 *
 * A pinned version so copied sits above the newer versions that hide it
 * from current reads, and compaction assumes the other way round: it
 * drops a tombstone at the bottom once no pin needs it, whatever older
 * version lies above.  So a copy is written only with what hides it: when
 * the key's newest version is a tombstone, the entry after it must be
 * that tombstone (at GC_AT_HIDER), written with it, so the two stay
 * together in every table they reach (a key's versions never span two
 * tables of a level); a live newest version without expiry hides the copy
 * by itself.  Anything else (an expiring or missing newest version, a
 * prefix drop) fails the request with SETT_ENOREWRITE before anything is
 * written: the file then stays.
 */
#define GC_AT_HIDER UINT64_MAX
int db_gc_rewrite(sett_db *db, const entry *entries, const uint64_t *versions,
		  const vptr *old, const uint64_t *at, int n);
/* A transaction's commit, for the writer's conflict check (oracle.h). */
typedef struct txn_commit {
	const uint64_t *reads;   /* fingerprints of the keys it read */
	size_t nreads;
	uint64_t read_version;
	uint64_t commit_version; /* managed mode; 0: the next version */
} txn_commit;
/* sett_write with a transaction's check (tc may be NULL); a batch over the
 * limit fails with SETT_ETXNTOOBIG when tc is set. */
int db_write_ex(sett_db *db, sett_batch *b, const txn_commit *tc, int sync, uint64_t *version);
/* What an entry costs in a memtable, and what one commit may hold (write.c). */
size_t db_entry_lsm_bytes(const sett_db *db, size_t klen, size_t vlen);
size_t db_batch_limit(const sett_db *db);
/* Entry i of a batch. */
void db_batch_entry(const sett_batch *b, size_t i, slice *key, slice *value, int *del,
		    uint8_t *user_meta, uint64_t *expires_at);

/* Fills the GC part of sett_get_stats (vlog_gc.c). */
void gc_fill_stats(sett_db *db, sett_stats *st);
/* Asks the writer to make a non-empty active memtable immutable (to be flushed). */
int db_rotate_memtable(sett_db *db);
/* The writer and flusher threads, the writer's sync request and a new
 * active memtable with its WAL (write.c). */
void *db_writer_main(void *arg);
void *db_flusher_main(void *arg);
int db_sync_request(sett_db *db);
int db_new_memslot_locked(sett_db *db, memslot *s);
/* Closes every WAL of s (removing the files if remove) and drops its
 * memtable; wal_sync_all / wal_bytes cover every WAL of s. */
void db_memslot_free(memslot *s, int remove);
int db_memslot_sync(memslot *s);
uint64_t db_memslot_wal_bytes(memslot *s);

/* Hooks into the background work; no-ops until it is started. */
int compaction_start(sett_db *db);
void compaction_stop(sett_db *db);
int gc_start(sett_db *db);
void gc_stop(sett_db *db);

#endif
