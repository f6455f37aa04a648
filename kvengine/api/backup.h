/*
 * backup.h - the backup stream decoder (backup.c), shared by sett_load and
 * the fuzz target.  Format: doc/FORMAT.md, "Backup stream".
 *
 * The decoder treats its input as hostile: every length is checked against
 * the format's limits before anything is allocated for it, a frame is
 * parsed only after its checksum matched, and the stream is complete only
 * when its trailer (counts and the chained checksum of every frame)
 * matches what was read and nothing follows it.
 *
 * Thread safety: a decoder belongs to one thread; decoders share nothing.
 */
#ifndef SETT_BACKUP_H
#define SETT_BACKUP_H

#include "sett.h"

#define BACKUP_MAGIC "SETTBKUP"
#define BACKUP_VERSION 1
#define BACKUP_HEADER 48
#define BACKUP_FRAME_HEADER 16
enum { BACKUP_FRAME_RECORDS = 1, BACKUP_FRAME_TRAILER = 2, BACKUP_FRAME_META = 3 };
enum { BACKUP_FLAG_ALL_VERSIONS = 1, BACKUP_FLAG_DELETES = 2, BACKUP_FLAG_META = 4 };
#define BACKUP_TRAILER_LEN 40
/* A frame's payload is never longer (one maximal key and value fit). */
#define BACKUP_MAX_PAYLOAD (SETT_MAX_VALUE_SIZE + SETT_MAX_KEY_SIZE + 64u)

typedef struct backup_header {
	uint32_t flags;
	uint64_t since, version, created;
} backup_header;

/* Called with each verified records frame, parsed (kv point into the frame). */
typedef int (*backup_frame_fn)(void *arg, const sett_kv *kv, size_t n);
/* Called once, before any records frame: the verified meta frame (NULL, 0
 * for a stream without one), res with the header's since and version. */
typedef int (*backup_meta_fn)(void *arg, const void *meta, size_t n, const sett_load_result *res);

/*
 * Reads and verifies a whole stream, calling meta (may be NULL) with its
 * meta frame and fn (may be NULL) per records frame.  Returns 0 when the stream is complete and intact; SETT_ECORRUPT
 * (or SETT_EFORMAT for a wrong magic or version) with res->offset and
 * res->why; an error of read or fn as is.  res->since/version/records are
 * filled from the header and trailer.
 */
int backup_decode(sett_read_fn read, void *rarg, backup_meta_fn meta, backup_frame_fn fn,
		  void *farg, sett_load_result *res);

#endif
