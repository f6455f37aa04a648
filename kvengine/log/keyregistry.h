/*
 * keyregistry.h - KEYREGISTRY: the data keys of an encrypted store, each
 * wrapped (AES-256-GCM) with the master key (doc/FORMAT.md, "KEYREGISTRY").
 * An unencrypted store has a registry with no keys, byte for byte the
 * 24-byte file of version 1.
 *
 * Thread safety: a keyreg is built at open and then only read; keyreg_rotate
 * and keyreg_write run while the store opens, before other threads exist.
 */
#ifndef SETT_KEYREGISTRY_H
#define SETT_KEYREGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "crypt.h"

#define KEYREG_MAGIC "SETTKEYR"
#define KEYREG_HDR_SIZE 24   /* the whole file of an unencrypted store */
#define KEYREG_KDF_END 48    /* kdf | iterations | salt */
#define KEYREG_REC_SIZE 76   /* id | created | nonce | wrapped key | tag */
#define KEYREG_MAX_KEYS 65536
#define KEYREG_MAX_ITER 100000000u
#define KEYREG_DEFAULT_ITER 600000u

enum { KEYREG_KDF_NONE = 0, KEYREG_KDF_PBKDF2 = 1 };

/* The master key material a caller has: a key or a passphrase (or none). */
typedef struct keyreg_master {
	const uint8_t *key;     /* CRYPT_KEY_SIZE bytes */
	const char *passphrase; /* NUL-terminated */
	uint32_t iterations;    /* PBKDF2 iterations for a new registry (0: default) */
} keyreg_master;

typedef struct keyreg_key {
	uint64_t id;      /* 1, 2, ...: what a file's header names */
	uint64_t created; /* unix seconds */
	uint8_t key[CRYPT_KEY_SIZE];
} keyreg_key;

typedef struct keyreg {
	uint32_t kdf, iterations;
	uint8_t salt[CRYPT_SALT_SIZE];
	uint8_t master[CRYPT_KEY_SIZE]; /* to wrap a rotated key */
	int master_wiped;               /* keyreg_forget_master: nothing to wrap with */
	size_t n;
	keyreg_key *keys; /* id order; the last is the current key */
} keyreg;

/*
 * Decode a KEYREGISTRY's bytes.  A registry without keys decodes to
 * *out = NULL (an unencrypted store) whatever `m` holds; one with keys
 * needs `m`.  Errors: SETT_EFORMAT (not a KEYREGISTRY, or a version or
 * field this code does not know), SETT_ECORRUPT (a checksum or structure
 * check failed, or a key record fails authentication under a master key
 * that opened the first), SETT_EKEY (no master key, the wrong kind, or the
 * first key record fails authentication: the wrong key).  `why` names the
 * offset.
 */
int keyreg_decode(const uint8_t *p, size_t n, const keyreg_master *m, keyreg **out,
		  char *why, size_t whylen);
/* Encode (freshly wrapped: every record gets a new random nonce). */
int keyreg_encode(const keyreg *kr, uint8_t **p, size_t *n);
/* A new registry with one data key, for a new encrypted store. */
int keyreg_create(const keyreg_master *m, uint64_t now, keyreg **out);
/* Add a new current data key created at `now`. */
int keyreg_rotate(keyreg *kr, uint64_t now);
void keyreg_free(keyreg *kr);
/*
 * Wipe kr's copy of the master key (once the registry is written: the
 * data keys stay); keyreg_encode of kr is then -EINVAL.
 */
void keyreg_forget_master(keyreg *kr);

/* The data key with id `id`, or NULL. */
const uint8_t *keyreg_find(const keyreg *kr, uint64_t id);

/*
 * Open DIR/KEYREGISTRY: create it when missing (not read-only; with keys
 * when `m` holds a key or passphrase), decode it, and when the current
 * key is older than `rotate_seconds` (0: never) add a new one.  Every
 * write is atomic: KEYREGISTRY.tmp, fsync, rename, directory fsync.  A
 * master key for a store without keys is SETT_EKEY too.
 */
int keyreg_open(const char *dir, const keyreg_master *m, int read_only,
		uint64_t rotate_seconds, keyreg **out, char *why, size_t whylen);
/* Write `kr` (NULL: the unencrypted registry) to DIR/KEYREGISTRY atomically. */
int keyreg_write(const char *dir, const keyreg *kr);

#endif
