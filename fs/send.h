/*
 * send.h - send streams of snapshots and receiving them into another store
 * (doc/FORMAT.md, "Send stream"; doc/settfs.md, "Send and receive").
 *
 * A send stream is the engine's backup stream (sett_backup) of the keys a
 * snapshot sees - all of them (a full stream), or those changed since an
 * older snapshot with the deletes (an incremental) - less the keys that
 * describe the store rather than the filesystem (the superblock 'S' and the
 * snapshot records 'P'), with a meta frame first that says what it holds:
 * the source filesystem, its chunk size and format, the snapshot's name,
 * guid, creation time and version, and for an incremental the older
 * snapshot's.  The backup stream's checksums (per frame, chained through
 * the trailer) cover it end to end.
 *
 * Receiving verifies the whole stream (sett_load_ex spools it) before the
 * target changes at all; then an incremental first rolls the target's live
 * filesystem back to the older snapshot (found by guid), the records are
 * applied, and the snapshot is recreated with the source's guid and
 * creation time.  From verification to the snapshot, the store carries the
 * rollback marker (snapshot.h): mounting is refused until the receive is
 * run again, which finishes it.
 *
 * Thread safety: sfs_send runs alongside everything else on the open
 * store (it holds the snapshots it reads with pins of its own); a receive
 * owns its store (the engine's lock).
 */
#ifndef SETTFS_SEND_H
#define SETTFS_SEND_H

#include <stdint.h>

#include "settfs.h"

#define SFS_SEND_MAGIC "SFSSEND\1"
#define SFS_SEND_VERSION 1
#define SFS_SEND_FIXED 100
#define SFS_SEND_META_MAX (SFS_SEND_FIXED + 2 * SETTFS_SNAP_NAME_MAX)
#define SFS_SEND_INCREMENTAL 1u

/* The meta frame of a send stream. */
typedef struct sfs_send_meta {
	uint32_t flags;          /* SFS_SEND_INCREMENTAL */
	uint8_t fs_uuid[16];     /* the source's superblock uuid */
	uint32_t chunk_size;
	uint32_t fs_version;     /* the source's superblock format version */
	char name[SETTFS_SNAP_NAME_MAX + 1];
	uint8_t guid[16];
	int64_t created_ns;
	uint64_t version;        /* the snapshot's engine version at the source */
	char from[SETTFS_SNAP_NAME_MAX + 1]; /* incremental: the older snapshot */
	uint8_t from_guid[16];
	uint64_t from_version;
} sfs_send_meta;

/* Encodes m into out (SFS_SEND_META_MAX bytes); returns the length. */
size_t sfs_send_meta_encode(const sfs_send_meta *m, uint8_t *out);
/* -EIO for anything but a meta frame this version writes. */
int sfs_send_meta_decode(const void *p, size_t n, sfs_send_meta *m);
/* 1 for a key a send stream carries (not 'S', not 'P', not empty). */
int sfs_send_key_ok(sett_val key);

typedef struct sfs_send_result {
	sfs_send_meta meta;
	uint64_t records, deletes, bytes;
} sfs_send_result;

/*
 * Writes the send stream of snapshot `name` of the mounted filesystem
 * (incremental from snapshot `from` if not NULL) through write(arg, ...).
 * -ENOENT: no such snapshot; -EIO: it is damaged; -EINVAL: `from` is not
 * older than `name`.
 */
int settfs_send(settfs *fs, const char *name, const char *from, sett_write_fn write,
		void *arg, sfs_send_result *res);

typedef struct sfs_recv_result {
	sfs_send_meta meta;
	sett_load_result load; /* a refused stream: load.offset, load.why */
	uint64_t rolled_back;  /* keys an incremental's rollback changed */
	int created;           /* the store was made by this receive */
	int changed;           /* the target was changed (a failure after verification) */
	char why[512];         /* what was wrong (any error) */
} sfs_recv_result;

/*
 * Receives a send stream into the store at `path`: a missing or empty
 * directory becomes a new filesystem (full streams only); an unmounted
 * settfs store takes an incremental whose older snapshot it holds.  The
 * stream is verified whole first: refused (with res->why), the target is as
 * it was (a store this receive created is removed again).  `o`: the engine
 * options (a new store's chunk size comes from the stream).
 */
int sfs_receive(const char *path, const settfs_options *o, sett_read_fn read, void *arg,
		sfs_recv_result *res);
/* Verifies a send stream without a store (what sfs_receive checks first). */
int sfs_send_check(sett_read_fn read, void *arg, sfs_recv_result *res);

#endif
