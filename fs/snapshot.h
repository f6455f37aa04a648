/*
 * snapshot.h - settfs snapshots on the engine: records, pins and rollback.
 *
 * A snapshot NAME is two things in the store (doc/FORMAT.md, "Snapshot
 * record"): an engine pin named SFS_SNAP_PIN_PREFIX NAME, which keeps
 * everything visible at its version, and a record under the key 'P' NAME
 * (sfs_snap: version, creation time, guid, slot).  The record is the
 * snapshot: it is written after the pin is made and deleted before the pin
 * is released, so a crash in between leaves only a pin without a record,
 * which sfs_snap_tidy releases at the next writable open.  A record whose
 * pin is missing (a repair lost it) names a damaged snapshot: listed, not
 * readable, deletable.
 *
 * These functions work on an open engine (the daemon's, or a tool's on an
 * unmounted store); the mounted filesystem's side (views, the snapshot
 * directory, taking a snapshot while writers run) is in settfs.h.
 *
 * Thread safety: callers serialise creation, deletion and rollback of one
 * store (the core holds fs->snap_mu); reads may run alongside.
 */
#ifndef SETTFS_SNAPSHOT_H
#define SETTFS_SNAPSHOT_H

#include <stdint.h>

#include "schema.h"
#include "settfs.h"

#define SFS_SNAP_PIN_PREFIX "settfs.snap:"

/* 0 for a valid snapshot name (a file name, not "." or "..", at most
 * SETTFS_SNAP_NAME_MAX bytes), else -EINVAL. */
int sfs_snap_name_ok(const char *name);
/* The record of NAME: 0, -ENOENT, -EIO (damaged record). */
int sfs_snap_get(sett_db *db, const char *name, sfs_snap *s);
/* Every snapshot, sorted by name, in a malloc'ed array. */
int sfs_snap_list(sett_db *db, settfs_snap_info **out, size_t *n);
/*
 * Pins the current version as snapshot NAME and writes its record
 * (durably).  guid NULL: a new one; created_ns 0: now.  *out (if not NULL)
 * gets the record.
 */
int sfs_snap_add(sett_db *db, const char *name, const uint8_t *guid, int64_t created_ns,
		 sfs_snap *out);
/* The same, in the lowest slot neither taken nor set in the bitmap `avoid`
 * (bit s of byte s / 8; NULL: none): -ENOSPC when there is none. */
int sfs_snap_add_avoiding(sett_db *db, const char *name, const uint8_t *guid,
			  int64_t created_ns, const uint8_t *avoid, sfs_snap *out);
/* Deletes the record, then releases the pin.  -ENOENT if none. */
int sfs_snap_remove(sett_db *db, const char *name);
/* Releases the snapshot pins that have no record (a crash between the two). */
int sfs_snap_tidy(sett_db *db);
/*
 * Makes the filesystem in the (unmounted) store what snapshot NAME holds:
 * every key but the snapshot records is rewritten or deleted to match.
 * Snapshots are kept.  Interrupted, it leaves a marker that refuses
 * mounting until it is run again (sfs_snap_rollback_pending).  *changed
 * (if not NULL): keys written or deleted.
 */
int sfs_snap_rollback(sett_db *db, const char *name, uint64_t *changed);
/*
 * The marker of an unfinished rollback or receive (doc/FORMAT.md, key `P`):
 * what it says NAME is.  A rollback, or an incremental receive (which
 * rolls back to its FROM first), goes to an existing snapshot NAME; a full
 * receive creates NAME at its end.  A marker written before the kind was
 * recorded says neither.
 */
enum { SFS_MARK_OLD = 1, SFS_MARK_ROLLBACK, SFS_MARK_CREATE };
/* Writes the marker into b. */
int sfs_snap_marker_set(sett_batch *b, int kind, const char *name);
/* A SFS_MARK_* kind with the name in name[SETTFS_SNAP_NAME_MAX + 1] when a
 * rollback or receive was interrupted, 0 when none is pending, <0 on error. */
int sfs_snap_rollback_pending(sett_db *db, char *name);
/* The same from the marker's value v[0, n): a kind, or -EIO. */
int sfs_snap_marker_decode(const void *v, size_t n, char *name);

#endif
