/*
 * compaction.h - the levels controller's interface beyond the hooks in
 * db_impl.h (compaction_start/stop/kick).
 *
 * Level sizing follows Badger / RocksDB "dynamic level bytes": the last
 * level (L6) holds most of the data and sets the targets; each level up
 * has 1/level_size_multiplier of the one below; levels whose target would
 * be below base_level_size are skipped, so L0 compacts straight into the
 * "base level", which moves up (towards L1) as the store grows.
 *
 * Thread safety: all functions may be called from any thread.
 */
#ifndef SETT_COMPACTION_H
#define SETT_COMPACTION_H

#include "db_impl.h"
/* Fills levels[0..SETT_MAX_LEVELS-1] from the current version. */
void compaction_level_info(sett_db *db, sett_level_info *levels);

/* Fills the per-level part of sett_get_stats (targets and scores). */
void compaction_fill_stats(sett_db *db, sett_stats *st);

/*
 * Removes, in one MANIFEST change set, every table whose keys all start
 * with prefix and whose newest version is <= version (a prefix drop,
 * drop.h), except tables a running compaction holds; does nothing while a
 * reader or pin below version may read them.  Their value pointers count
 * as garbage for value-log GC.
 */
int compaction_drop_tables(sett_db *db, slice prefix, uint64_t version);

/*
 * Flushes the memtables and compacts every level above the last into it
 * (sett_flatten without its rewrite of the last level's tables): every
 * tombstone then meets what it hides.  Returns SETT_ECLOSED early when the
 * store closes or *stop (if stop) becomes non-zero.
 */
int compaction_push_down(sett_db *db, const int *stop);
/* sett_flatten, returning SETT_ECLOSED early as compaction_push_down does. */
int compaction_flatten(sett_db *db, const int *stop);

/* Table size growth per level below the base level. */
#define TABLE_SIZE_MULTIPLIER 2

#endif
