/*
 * manifest.h - the MANIFEST: which table is at which level.
 *
 * File: a 16-byte header (magic "SETTMANI", u32 LE version 1, u32 LE low 32
 * bits of the XXH3-64 of the first 12 bytes) then change-set records:
 * u32 LE payload length | u64 LE XXH3 of payload | payload.  A payload is a change set applied atomically: u32 LE count then
 * `count` changes of { u8 op (1 create, 2 delete), u64 LE table id,
 * u8 level, u8 compression }.  Every append is fsynced.
 *
 * Replay: a torn last record (short, zero bytes, or failing its checksum with
 * only zero bytes after it) ends replay and is cut off; a checksum mismatch
 * followed by more bytes, a bad header, or an invalid change (create of a
 * live id, delete of an unknown id, level >= 7) is SETT_ECORRUPT with the
 * file and offset in `why`; a wrong magic or version is SETT_EFORMAT.  A
 * read-only open of a store without MANIFEST returns -ENOENT.
 *
 * manifest_apply: an invalid change set is -EINVAL; on any failure the
 * in-memory state is unchanged.  After a failed fsync the file's state is
 * uncertain, so every later apply fails with that error (reopen to go on).  When
 * deletions dominate, the file is rewritten (MANIFEST-REWRITE, fsync,
 * rename, fsync dir).  A new MANIFEST is created the same way, so it
 * never exists without its header.
 *
 * Thread safety: manifest_apply serialises itself with an internal mutex.
 */
#ifndef SETT_MANIFEST_H
#define SETT_MANIFEST_H

#include <stdint.h>
#include <stddef.h>

enum { MANIFEST_CREATE = 1, MANIFEST_DELETE = 2 };

typedef struct manifest_change {
	uint8_t op;
	uint8_t level;
	uint8_t compression;
	uint64_t id;
} manifest_change;

/* The replayed state: every live table and its level. */
typedef struct manifest_table {
	uint64_t id;
	uint8_t level;
	uint8_t compression;
} manifest_table;

typedef struct manifest manifest;

/* Opens or creates dir/MANIFEST and replays it into *tables (malloc'ed). */
int manifest_open(const char *dir, int read_only, manifest **mp, manifest_table **tables,
		  size_t *ntables, char *why, size_t whylen);
int manifest_apply(manifest *m, const manifest_change *c, size_t n);
/* The sticky error above (0 if none): after it, the file's state is uncertain. */
int manifest_error(manifest *m);
int manifest_close(manifest *m);

#endif
