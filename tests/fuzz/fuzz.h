/*
 * fuzz.h - shared parts of the libFuzzer targets under tests/fuzz/.
 *
 * Every target feeds bytes to a real decoder of on-disk data (doc/FORMAT.md)
 * through the entry point the engine or the filesystem uses.  Inputs start
 * with one mode byte (FUZZ_FIX_*): most formats carry XXH3 checksums that a
 * mutation almost never gets right, so with FUZZ_FIX_SUMS the target first
 * recomputes every checksum it can locate (the same way the writers do) and
 * the decoder's structure checks behind them get fuzzed; without it the
 * checksum checks themselves are.  Seeds are written by the project's own
 * writers (fuzz_seeds.c), so the corpus follows the format.
 *
 * Files go into one scratch directory per process (under $TMPDIR, /dev/shm
 * by default), emptied before every input.
 */
#ifndef SETT_FUZZ_H
#define SETT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Mode byte bits. */
#define FUZZ_FIX_SUMS 1u   /* recompute checksums before decoding */
#define FUZZ_FIX_RESYNC 2u /* log files: after a broken entry, fix entries further on */
#define FUZZ_ENC 8u        /* value log, table: read (and write) with the fuzz key ring */

/* Aborts (a finding) with a message when cond is false. */
#define FUZZ_CHECK(cond) \
	((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))
void fuzz_fail(const char *file, int line, const char *what);

/* The scratch directory, emptied (created on first use). */
const char *fuzz_dir(void);
/* Writes dir/name with n bytes; aborts on an I/O error (not a finding). */
void fuzz_write(const char *dir, const char *name, const void *p, size_t n);
/* dir/name into *out (malloc'ed, *n bytes); -1 if absent. */
int fuzz_read(const char *dir, const char *name, uint8_t **out, size_t *n);

/* A malloc'ed copy of p (at least 1 byte allocated). */
uint8_t *fuzz_dup(const uint8_t *p, size_t n);

/*
 * The input after its mode byte (*mode), copied (*n bytes), its checksums
 * repaired by fix (may be NULL) when the mode says so; NULL for an empty
 * input.
 */
typedef void (*fuzz_fix_fn)(uint8_t *p, size_t n);
uint8_t *fuzz_payload(const uint8_t *data, size_t size, fuzz_fix_fn fix, unsigned *mode,
		      size_t *n);

/* A stream over bytes in memory, read at most `piece` bytes at a time
 * (a sett_read_fn): decoders must not depend on how reads are cut. */
typedef struct fuzz_src {
	const uint8_t *p;
	size_t n, pos, piece;
} fuzz_src;
long fuzz_src_read(void *arg, void *p, size_t n);

/* Engine options for a small store without background work; no creation. */
struct sett_options;
void fuzz_sett_options(struct sett_options *o, int read_only);

/*
 * Checksum repair, in place.  Each recomputes what the writer would have
 * stored for the bytes that are there: the log header and every entry that
 * can be delimited (a WAL or value-log file), the MANIFEST header and its
 * records, the DISCARD and KEYREGISTRY checksums, a table's footer, meta
 * blocks and the data blocks its index names, and a superblock.
 */
void fuzz_fix_log(uint8_t *p, size_t n, unsigned mode);
void fuzz_fix_manifest(uint8_t *p, size_t n);
void fuzz_fix_discard(uint8_t *p, size_t n);
void fuzz_fix_keyregistry(uint8_t *p, size_t n);
/* The master key of fuzz_keyregistry's direct decode (mode bit 2). */
extern const uint8_t fuzz_master_key[32];
void fuzz_fix_table(uint8_t *p, size_t n);

/*
 * Encrypted files (doc/FORMAT.md, "Encrypted value log", "Encrypted
 * table"): the fuzz key ring has data keys 1 and 2 (2 is current).  A seed
 * of an encrypted file with FUZZ_FIX_SUMS holds it *unsealed*: every
 * record or block its plaintext in place of its ciphertext.
 * fuzz_fix_log and fuzz_fix_table seal such a file again (fixing the
 * checksums inside first, and the key check and header hashes), so
 * mutations reach the decoders behind the tags.
 */
#include "cipher.h"
sett_keys fuzz_keys(void);
sett_cipher fuzz_cipher(void);
void fuzz_unseal_log(uint8_t *p, size_t n);
void fuzz_unseal_table(uint8_t *p, size_t n);
void fuzz_fix_super(uint8_t *p, size_t n);
/* A backup stream: the header, every frame that can be delimited, and the
 * trailer's chained checksum. */
void fuzz_fix_backup(uint8_t *p, size_t n);
/* Fixes the checksum of the one log entry at p, if it can be delimited. */
void fuzz_fix_entry(uint8_t *p, size_t n);

/* FNV-1a, to compare what two decodes saw. */
uint64_t fuzz_hash(uint64_t h, const void *p, size_t n);
#define FUZZ_HASH_INIT 1469598103934665603ull

/*
 * The store container (fuzz_store, and the fs key dump of fuzz_fs): a
 * sequence of records.  Store: u8 kind | uvarint id | uvarint len | bytes.
 */
enum {
	FUZZ_F_MANIFEST = 0,
	FUZZ_F_KEYREGISTRY = 1,
	FUZZ_F_DISCARD = 2,
	FUZZ_F_WAL = 3,
	FUZZ_F_VLOG = 4,
	FUZZ_F_TABLE = 5,
	FUZZ_F_KINDS
};
/* The file name of a container record; 0, or -1 for an unknown kind. */
int fuzz_file_name(unsigned kind, uint64_t id, char *name, size_t len);

#endif
