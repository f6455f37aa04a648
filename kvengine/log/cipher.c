/*
 * cipher.c - nonces, key heads, sealed records and the key ring shared by
 * the encrypted WAL, value log and tables (cipher.h).
 */
#include "cipher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "keyregistry.h"
#include "sett.h"

void cipher_nonce(const uint8_t salt[CIPHER_SALT_SIZE], uint64_t ctr,
		  uint8_t nonce[CRYPT_NONCE_SIZE])
{
	memcpy(nonce, salt, CRYPT_NONCE_SIZE);
	for (int i = 0; i < 8; i++)
		nonce[CRYPT_NONCE_SIZE - 8 + i] ^= (uint8_t)(ctr >> (8 * i));
}

int cipher_head_put(const sett_cipher *c, uint8_t *h, size_t at,
		    const uint8_t salt[CIPHER_SALT_SIZE])
{
	uint8_t *x = h + at, nonce[CRYPT_NONCE_SIZE];
	put_le64(x, c->key_id);
	memcpy(x + 8, salt, CIPHER_SALT_SIZE);
	cipher_nonce(salt, CIPHER_CHECK_CTR, nonce);
	return crypt_key_seal(c->key, nonce, h, at + 8 + CIPHER_SALT_SIZE, x, 0, x,
			      x + 8 + CIPHER_SALT_SIZE);
}

int cipher_head_get(const sett_keys *keys, const uint8_t *h, size_t at, const char *path,
		    crypt_key **key, uint64_t *id, uint8_t salt[CIPHER_SALT_SIZE], char *why,
		    size_t whylen)
{
	const uint8_t *x = h + at;
	*id = get_le64(x);
	memcpy(salt, x + 8, CIPHER_SALT_SIZE);
	crypt_key *k = keys && keys->find ? keys->find(keys->arg, *id) : NULL;
	const char *what = keys && keys->find ? "not in KEYREGISTRY" : "and no key given";
	int r = k ? 0 : SETT_EKEY;
	if (k) {
		uint8_t nonce[CRYPT_NONCE_SIZE], none[1];
		cipher_nonce(salt, CIPHER_CHECK_CTR, nonce);
		r = crypt_key_open(k, nonce, h, at + 8 + CIPHER_SALT_SIZE, none, 0, none,
				   x + 8 + CIPHER_SALT_SIZE);
		if (r == SETT_ECORRUPT) {
			r = SETT_EKEY;
			what = "which KEYREGISTRY holds with other bytes (wrong key)";
		}
	}
	if (r == SETT_EKEY && why && whylen)
		snprintf(why, whylen, "%s: encrypted with data key %llu, %s", path,
			 (unsigned long long)*id, what);
	*key = r ? NULL : k;
	return r;
}

int cipher_rec_seal(crypt_key *k, const uint8_t salt[CIPHER_SALT_SIZE], uint64_t ctr,
		    const void *in, size_t n, uint8_t *rec)
{
	if (n > UINT32_MAX)
		return -EFBIG;
	uint8_t nonce[CRYPT_NONCE_SIZE];
	cipher_nonce(salt, ctr, nonce);
	put_le32(rec, (uint32_t)n);
	uint8_t *p = rec + CIPHER_REC_HEAD;
	return crypt_key_seal(k, nonce, NULL, 0, in, n, p, p + n);
}

int cipher_rec_open(crypt_key *k, const uint8_t salt[CIPHER_SALT_SIZE], uint64_t ctr,
		    const uint8_t *rec, size_t len, uint8_t *out)
{
	if (len < CIPHER_REC_OVERHEAD || get_le32(rec) != len - CIPHER_REC_OVERHEAD)
		return SETT_ECORRUPT;
	uint8_t nonce[CRYPT_NONCE_SIZE];
	cipher_nonce(salt, ctr, nonce);
	size_t n = len - CIPHER_REC_OVERHEAD;
	const uint8_t *p = rec + CIPHER_REC_HEAD;
	return crypt_key_open(k, nonce, NULL, 0, p, n, out, p + n);
}

/* ---- the key ring ---- */

struct cipher_ring {
	size_t n;
	uint64_t *ids;
	crypt_key **keys;
};

int cipher_ring_new(const keyreg *kr, cipher_ring **out)
{
	cipher_ring *g = calloc(1, sizeof *g);
	size_t n = kr ? kr->n : 0;
	if (!g)
		return -ENOMEM;
	g->ids = calloc(n ? n : 1, sizeof *g->ids);
	g->keys = calloc(n ? n : 1, sizeof *g->keys);
	if (!g->ids || !g->keys) {
		cipher_ring_free(g);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int r = crypt_key_new(kr->keys[i].key, &g->keys[i]);
		if (r) {
			cipher_ring_free(g);
			return r;
		}
		g->ids[i] = kr->keys[i].id;
		g->n = i + 1;
	}
	*out = g;
	return 0;
}

void cipher_ring_free(cipher_ring *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++)
		crypt_key_free(g->keys[i]);
	free(g->ids);
	free(g->keys);
	free(g);
}

sett_cipher cipher_ring_current(const cipher_ring *g)
{
	sett_cipher c = { 0, NULL };
	if (g && g->n) {
		c.key_id = g->ids[g->n - 1];
		c.key = g->keys[g->n - 1];
	}
	return c;
}

crypt_key *cipher_ring_find(void *arg, uint64_t id)
{
	const cipher_ring *g = arg;
	size_t lo = 0, hi = g ? g->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return g && lo < g->n && g->ids[lo] == id ? g->keys[lo] : NULL;
}

sett_keys cipher_ring_keys(cipher_ring *g)
{
	sett_keys k = { cipher_ring_find, g, g ? g->n : 0 };
	return k;
}

int cipher_plain_check(const sett_keys *keys, const char *path, char *why, size_t whylen)
{
	if (!keys || !keys->n)
		return 0;
	if (why && whylen)
		snprintf(why, whylen, "%s: plaintext file in an encrypted store "
			 "(KEYREGISTRY holds data keys)", path);
	return SETT_ECORRUPT;
}
