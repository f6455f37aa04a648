/*
 * seal.h - sealed records: how an encrypted log file (the WAL, the
 * MANIFEST) holds its appends (doc/FORMAT.md, "Sealed records").
 *
 * After the file's own header come 44 bytes: the key head of cipher.h
 * (u64 LE data key id | 12-byte random salt | 16-byte key check, the GCM
 * tag of nothing authenticating the file's header, key id and salt under
 * the nonce of counter 2^64-1, which no record uses), then a u64 LE
 * XXH3-64 of those 36 bytes: a damaged block fails the hash, the wrong key
 * the check.
 * Then one sealed record per append:
 *   u32 LE n | u64 LE counter | n bytes of AES-256-GCM ciphertext | tag
 * The nonce is the salt with its last 8 bytes XORed with the counter, which
 * grows with every seal of the file, failed appends included, so an offset
 * cut back and written again gets a new nonce; the additional data is the
 * file id and the record's offset, so a record moved elsewhere fails.  A
 * file whose last counter is unknown (any file opened after a crash) is
 * never appended to under its salt again.
 */
#ifndef SETT_SEAL_H
#define SETT_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "cipher.h"
#include "crypt.h"

#define SEAL_HEADER 44 /* CIPHER_HEAD_SIZE key head | hash */
#define SEAL_REC_HEAD 12
#define SEAL_REC_OVERHEAD (SEAL_REC_HEAD + CRYPT_TAG_SIZE)

typedef struct seal {
	crypt_key *k;     /* the key ring's: borrowed */
	uint64_t key_id;
	uint32_t fid;     /* in every record's additional data */
	uint32_t min_len; /* the smallest plaintext a record can hold */
	uint8_t salt[CRYPT_NONCE_SIZE];
	uint64_t seq;     /* the next record's counter */
	uint8_t *buf;     /* the record seal_record made */
	size_t cap;
} seal;

/* A new file's, sealed with c (seal_header draws its salt). */
int seal_new(const sett_cipher *c, uint32_t fid, uint32_t min_len, seal **out);
void seal_free(seal *s);
/*
 * The SEAL_HEADER bytes at hdr + hlen, after the file's own header hdr[0,
 * hlen) (which the key check authenticates), with a fresh random salt.
 */
int seal_header(seal *s, uint8_t *hdr, size_t hlen);
/*
 * Reads the block after the file's header from data[0, n): a failed hash
 * is SETT_ECORRUPT; no keys, a key id they do not hold or a failed key
 * check is SETT_EKEY; `why` names the file and the key id.
 */
int seal_open_header(const char *path, const sett_keys *keys, uint32_t fid,
		     uint32_t min_len, const uint8_t *data, size_t hlen, size_t n, seal **out,
		     char *why, size_t whylen);
/* Seals n bytes as the record at file offset off into s->buf (n + SEAL_REC_OVERHEAD bytes). */
int seal_record(seal *s, uint64_t off, const void *p, size_t n);
/*
 * Opens the records of data[from, n) into *plain (`lead` unused bytes,
 * then the plaintext of every record), the torn-tail rule of "Torn tails"
 * applying to whole records: a record that is incomplete or fails its tag
 * is a torn tail when log_torn says so and no authentic record starts after
 * it, otherwise SETT_ECORRUPT, "PATH: corrupt record at offset N".
 * bounds[2i], bounds[2i+1] are the plaintext and file ends of record i.
 */
int seal_open_records(const char *path, seal *s, const uint8_t *data, size_t n, size_t from,
		      size_t lead, uint8_t **plain, size_t *pn, size_t **bounds, size_t *nrec,
		      char *why, size_t whylen);
/* The file end of the last record that ends at or before plaintext offset `valid`. */
size_t seal_file_end(const size_t *bounds, size_t nrec, size_t from, size_t valid);
/* The file offset of the record holding plaintext offset `pos`. */
size_t seal_record_at(const size_t *bounds, size_t nrec, size_t from, size_t pos);

#endif
