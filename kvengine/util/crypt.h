/*
 * crypt.h - the authenticated encryption primitive of encryption at rest:
 * AES-256-GCM, random bytes and the passphrase KDF, all from OpenSSL's
 * libcrypto (doc/FORMAT.md, "Encryption at rest").
 */
#ifndef SETT_CRYPT_H
#define SETT_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#define CRYPT_KEY_SIZE 32   /* AES-256 */
#define CRYPT_NONCE_SIZE 12 /* GCM's 96-bit IV */
#define CRYPT_TAG_SIZE 16   /* GCM's full tag */
#define CRYPT_SALT_SIZE 16  /* passphrase KDF salt */

/*
 * Encrypt n bytes of `in` into `out` (may be the same buffer) with `key` and
 * `nonce`, authenticating `aad` too; the tag goes to `tag`.  A nonce must
 * never be used twice with one key.  0, or -EIO if libcrypto fails.
 */
int crypt_seal(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[CRYPT_NONCE_SIZE],
	       const void *aad, size_t aadlen, const void *in, size_t n, void *out,
	       uint8_t tag[CRYPT_TAG_SIZE]);
/*
 * The inverse: 0, or SETT_ECORRUPT when the tag does not authenticate the
 * bytes (then `out` holds nothing the caller may use), -EIO if libcrypto
 * fails.
 */
int crypt_open(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[CRYPT_NONCE_SIZE],
	       const void *aad, size_t aadlen, const void *in, size_t n, void *out,
	       const uint8_t tag[CRYPT_TAG_SIZE]);

/*
 * A data key made ready for many seals and opens: its AES key schedule is
 * computed once and kept in libcrypto contexts that calls borrow from a
 * pool (about 0.2 us a call instead of 2 us for crypt_seal's setup).  Any
 * number of threads may use one crypt_key at once.
 */
typedef struct crypt_key crypt_key;
int crypt_key_new(const uint8_t key[CRYPT_KEY_SIZE], crypt_key **out);
void crypt_key_free(crypt_key *k);
/* As crypt_seal and crypt_open, with k's key. */
int crypt_key_seal(crypt_key *k, const uint8_t nonce[CRYPT_NONCE_SIZE], const void *aad,
		   size_t aadlen, const void *in, size_t n, void *out, uint8_t tag[CRYPT_TAG_SIZE]);
int crypt_key_open(crypt_key *k, const uint8_t nonce[CRYPT_NONCE_SIZE], const void *aad,
		   size_t aadlen, const void *in, size_t n, void *out,
		   const uint8_t tag[CRYPT_TAG_SIZE]);

/* n bytes from the CSPRNG; 0 or -EIO. */
int crypt_random(void *p, size_t n);

/* PBKDF2-HMAC-SHA256 of a passphrase to a master key; 0 or -EIO. */
int crypt_pbkdf2(const char *pass, size_t passlen, const uint8_t *salt, size_t saltlen,
		 uint32_t iterations, uint8_t out[CRYPT_KEY_SIZE]);

/* Overwrite key material before it is freed. */
void crypt_wipe(void *p, size_t n);

/*
 * A master key from a key file's bytes: exactly 32 raw bytes, or 64 hex
 * digits (an ending newline allowed).  0 or -EINVAL.
 */
int crypt_key_parse(const void *p, size_t n, uint8_t key[CRYPT_KEY_SIZE]);

#endif
