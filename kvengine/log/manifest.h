/*
 * manifest.h - the MANIFEST: which table is at which level.
 *
 * File: a 16-byte header (magic "SETTMANI", u32 LE version 1, u32 LE low 32
 * bits of the XXH3-64 of the first 12 bytes) then change-set records:
 * u32 LE payload length | u64 LE XXH3 of payload | payload.  A payload is a
 * change set applied atomically: u32 LE count then `count` changes of
 * { u8 op (1 create, 2 delete, 3 next id), u64 LE table id, u8 level,
 * u8 compression } (in a version 2 file, marks are { u8 op (4 pin, 5 unpin,
 * 6 drop prefix, 7 drop done), u64 LE version, u16 LE length, name }).  A file
 * is version 2 once it holds a mark: the first one rewrites it.  Every append
 * is fsynced.  An encrypted store's MANIFEST has magic "SETTMANE" and holds
 * each record sealed (seal.h).  "Next id" N records that
 * table ids below N may have been handed out: the engine appends it before
 * it creates a table file with a higher id, so a table file below N that
 * no create names is provably the engine's own leftover.
 *
 * Replay: a last record that ends past what was written (log_torn, wal.h:
 * short, or zeros where its bytes should be) is a torn tail: replay stops
 * before it, and it is cut off by manifest_finish_open or the next apply,
 * never by the open itself, so that a caller that finds the tail cannot
 * be accounted for can refuse with the file unchanged.  A complete record
 * that fails its checksum, a bad header, or an invalid change (create of a
 * live id, delete of an unknown id, level >= 7, a next id lower than the
 * last) is SETT_ECORRUPT with the file and offset in `why`; a wrong magic or
 * version is SETT_EFORMAT.  A missing MANIFEST is -ENOENT: manifest_open
 * never creates one (manifest_create does).
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

enum {
	MANIFEST_CREATE = 1,
	MANIFEST_DELETE = 2,
	MANIFEST_NEXT_ID = 3,
	MANIFEST_MAX_VERSION = 8, /* every version <= `id` has been used (op 8) */
	/* Marks (version 2 files): named state beside the tables. */
	MANIFEST_PIN = 4,       /* pin `name` at version `id` (pin.c) */
	MANIFEST_UNPIN = 5,     /* release pin `name` */
	MANIFEST_DROP = 6,      /* keys starting with `name` are dropped at and below
				 * version `id` (a prefix drop, pin.c) */
	MANIFEST_DROP_DONE = 7  /* the drop (`name`, `id`) is carried out in every table */
};

typedef struct manifest_change {
	uint8_t op;
	uint8_t level;
	uint8_t compression;
	uint64_t id;        /* table id, allocation limit, or a mark's version */
	const void *name;   /* marks: the pin name or the dropped prefix */
	uint16_t name_len;
} manifest_change;

enum { MANIFEST_MARK_PIN = 1, MANIFEST_MARK_DROP = 2 };

/* A mark of the replayed state (name is malloc'ed and NUL-terminated). */
typedef struct manifest_mark {
	uint8_t kind;
	uint64_t version;
	uint8_t *name;
	size_t len;
} manifest_mark;

/* The replayed state: every live table and its level. */
typedef struct manifest_table {
	uint64_t id;
	uint8_t level;
	uint8_t compression;
} manifest_table;

#include "cipher.h"

typedef struct manifest manifest;

/* Opens dir/MANIFEST and replays it into *tables (malloc'ed). */
int manifest_open(const char *dir, int read_only, manifest **mp, manifest_table **tables,
		  size_t *ntables, char *why, size_t whylen);
/*
 * As manifest_open, for an encrypted store when cipher_on(c): c seals what
 * is written, `keys` finds the key the file names (its keys must outlive
 * the manifest).  An encrypted MANIFEST (doc/FORMAT.md, "Encrypted
 * MANIFEST") holds its records sealed: a key `keys` does not find is
 * SETT_EKEY; a plain MANIFEST in an encrypted store is SETT_ECORRUPT.
 * Its first change after open rewrites it whole under c and a new salt.
 */
int manifest_open_enc(const char *dir, int read_only, const sett_cipher *c,
		      const sett_keys *keys, manifest **mp, manifest_table **tables,
		      size_t *ntables, char *why, size_t whylen);
/* Creates an empty dir/MANIFEST (written aside, fsynced, renamed). */
int manifest_create(const char *dir);
/* The same, encrypted with c when cipher_on(c). */
int manifest_create_enc(const char *dir, const sett_cipher *c);
/* A copy of the current marks (free with manifest_marks_free). */
int manifest_marks(manifest *m, manifest_mark **out, size_t *n);
int manifest_marks_copy(const manifest_mark *src, size_t n, manifest_mark **out);
void manifest_marks_free(manifest_mark *m, size_t n);
/* The replayed allocation limit (0: the file records none). */
uint64_t manifest_next_id(const manifest *m);
/* The version high-water mark (op 8; 0: the file records none). */
uint64_t manifest_max_version(manifest *m);
/*
 * Whether a record read at open deleted table `id` (created and deleted
 * since the file was last written whole): its file, if still there, is a
 * leftover whatever a torn tail may have held, since ids are not reused.
 */
int manifest_deleted_at_open(const manifest *m, uint64_t id);
/* Offset of a torn tail found at open and not cut yet, or 0. */
uint64_t manifest_torn_at(const manifest *m);
/*
 * After the caller has accounted for the store: cuts the torn tail (if
 * any) and removes the remnant of an interrupted rewrite.  Writable only.
 */
int manifest_finish_open(manifest *m);
int manifest_apply(manifest *m, const manifest_change *c, size_t n);
/* The sticky error above (0 if none): after it, the file's state is uncertain. */
int manifest_error(manifest *m);
int manifest_close(manifest *m);
/*
 * Writes dir/MANIFEST anew (MANIFEST-REWRITE, fsync, rename, fsync of the
 * directory), holding exactly `tables`, next_id as the allocation limit
 * (above every table id ever used in dir), the marks (pins and drops) and
 * max_version as the version high-water mark (0: none).  For repair, which
 * rebuilds it.
 */
int manifest_write(const char *dir, const sett_cipher *cipher, const manifest_table *tables,
		   size_t n, uint64_t next_id, const manifest_mark *marks, size_t nmarks,
		   uint64_t max_version);
/*
 * For repair: what dir/MANIFEST says about the marks and the version
 * high-water mark (the tables are rebuilt anyway).  A MANIFEST that opens
 * (manifest_open_enc with keys) gives them exactly.  Otherwise a plain one
 * is read record by record: a record whose checksum fails is skipped
 * (counted in *skipped), and a mark change that does not apply to what
 * came before (its pin or drop was in a skipped record) is ignored; a
 * length that runs past the file ends the salvage.  An encrypted one that
 * does not open, or a header that does not check, is that error (why says
 * which); a missing file is -ENOENT.
 */
int manifest_salvage(const char *dir, const sett_keys *keys, manifest_mark **marks,
		     size_t *nmarks, uint64_t *max_version, size_t *skipped, char *why,
		     size_t whylen);

#endif
