/*
 * cipher.h - what a file-level reader or writer is told about encryption
 * at rest, and the pieces the encrypted file formats share
 * (doc/FORMAT.md, "Encryption at rest": "Encrypted WAL", "Encrypted value
 * log", "Encrypted table").
 *
 * A writer gets a sett_cipher: the data key new files are sealed with and
 * the id their header names (key NULL: the file is written in today's
 * plaintext format, byte for byte).  A reader gets a sett_keys: a lookup
 * from the id a file names to its key, so files written under older keys
 * stay readable after a rotation (NULL, or a find that returns NULL: a
 * file that names a key is SETT_EKEY).
 *
 * Shared layout pieces:
 * - a salt of CIPHER_SALT_SIZE random bytes per file; the nonce of counter
 *   c is the salt with its last 8 bytes XORed with c (LE).  Counter
 *   CIPHER_CHECK_CTR (2^64-1) is the key check's and no record's.
 * - the key head, CIPHER_HEAD_SIZE bytes: u64 key id | salt | key check,
 *   the GCM tag of an empty plaintext whose additional data is every byte
 *   of the file's header up to the key check (so a wrong key is told from
 *   damage: SETT_EKEY, not SETT_ECORRUPT).
 * - a sealed record: u32 n | n bytes of ciphertext | 16-byte tag (no
 *   additional data), CIPHER_REC_OVERHEAD bytes more than its plaintext.
 */
#ifndef SETT_CIPHER_H
#define SETT_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"

typedef struct sett_cipher {
	uint64_t key_id; /* the id new files name */
	crypt_key *key;  /* NULL: write plaintext */
} sett_cipher;

typedef struct sett_keys {
	crypt_key *(*find)(void *arg, uint64_t id); /* NULL when id is unknown */
	void *arg;
	size_t n; /* keys the store holds: not 0, the store is encrypted */
} sett_keys;

#define CIPHER_SALT_SIZE CRYPT_NONCE_SIZE
#define CIPHER_HEAD_SIZE (8 + CIPHER_SALT_SIZE + CRYPT_TAG_SIZE)
#define CIPHER_CHECK_CTR UINT64_MAX
#define CIPHER_REC_HEAD 4
#define CIPHER_REC_OVERHEAD (CIPHER_REC_HEAD + CRYPT_TAG_SIZE)

static inline int cipher_on(const sett_cipher *c)
{
	return c && c->key;
}

/*
 * A file in the plaintext format, at path, read with keys: 0 when the
 * store is unencrypted (keys NULL or holding none), else SETT_ECORRUPT
 * with why ("plaintext file in an encrypted store"): such a file is never
 * read, whatever it holds.
 */
int cipher_plain_check(const sett_keys *keys, const char *path, char *why, size_t whylen);

/* The nonce of counter ctr under salt. */
void cipher_nonce(const uint8_t salt[CIPHER_SALT_SIZE], uint64_t ctr,
		  uint8_t nonce[CRYPT_NONCE_SIZE]);

/*
 * Writes the key head of a new file at h + at: c's key id, `salt` (a new
 * file's: crypt_random) and the key check over h[0, at + 20).  0, or -EIO.
 */
int cipher_head_put(const sett_cipher *c, uint8_t *h, size_t at,
		    const uint8_t salt[CIPHER_SALT_SIZE]);
/*
 * Reads the key head at h + at: *key (from keys), *id and salt.
 * SETT_EKEY when keys has no key of that id or the key check fails (a key
 * of that id with other bytes); then `why` gets "PATH: encrypted with data
 * key ID, <reason>".
 */
int cipher_head_get(const sett_keys *keys, const uint8_t *h, size_t at, const char *path,
		    crypt_key **key, uint64_t *id, uint8_t salt[CIPHER_SALT_SIZE], char *why,
		    size_t whylen);

/*
 * Seals the n plaintext bytes at `in` into the record rec[0, n +
 * CIPHER_REC_OVERHEAD) with the nonce of ctr (in may be rec +
 * CIPHER_REC_HEAD).
 */
int cipher_rec_seal(crypt_key *k, const uint8_t salt[CIPHER_SALT_SIZE], uint64_t ctr,
		    const void *in, size_t n, uint8_t *rec);
/*
 * Opens the record rec[0, len): its len - CIPHER_REC_OVERHEAD plaintext
 * bytes go to out (which may be rec + CIPHER_REC_HEAD).  SETT_ECORRUPT
 * when its length field disagrees with len or its tag fails.
 */
int cipher_rec_open(crypt_key *k, const uint8_t salt[CIPHER_SALT_SIZE], uint64_t ctr,
		    const uint8_t *rec, size_t len, uint8_t *out);

/*
 * The data keys of a KEYREGISTRY made ready for use (a crypt_key each):
 * current() for writers, keys() for readers.  An unencrypted registry
 * (NULL or no keys) gives a cipher with key NULL and a lookup that finds
 * nothing.
 */
struct keyreg;
typedef struct cipher_ring cipher_ring;
int cipher_ring_new(const struct keyreg *kr, cipher_ring **out);
void cipher_ring_free(cipher_ring *ring);
sett_cipher cipher_ring_current(const cipher_ring *ring);
sett_keys cipher_ring_keys(cipher_ring *ring);
crypt_key *cipher_ring_find(void *ring, uint64_t id);

#endif
