/*
 * crypt.c - AES-256-GCM, CSPRNG and PBKDF2 through OpenSSL's EVP interface
 * (crypt.h).  No cipher is implemented here.
 */
#include "crypt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fileio.h"
#include "sett.h"

/* A context keyed (key != NULL) for direction `enc`, or NULL. */
static EVP_CIPHER_CTX *ctx_new(int enc, const uint8_t *key)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (c && (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
		  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CRYPT_NONCE_SIZE, NULL) != 1 ||
		  EVP_CipherInit_ex(c, NULL, NULL, key, NULL, enc) != 1)) {
		EVP_CIPHER_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* One message through keyed context c: the nonce is set, the key kept. */
static int gcm_ctx(EVP_CIPHER_CTX *c, int enc, const uint8_t *nonce, const void *aad,
		   size_t aadlen, const void *in, size_t n, void *out, uint8_t *tag)
{
	if (n > (size_t)0x7fffffff || aadlen > (size_t)0x7fffffff)
		return -EINVAL;
	int len;
	if (EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, enc) != 1)
		return -EIO;
	if (aadlen && EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen) != 1)
		return -EIO;
	if (n && EVP_CipherUpdate(c, out, &len, in, (int)n) != 1)
		return -EIO;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CRYPT_TAG_SIZE, tag) != 1)
		return -EIO;
	if (EVP_CipherFinal_ex(c, (uint8_t *)out + n, &len) != 1)
		return enc ? -EIO : SETT_ECORRUPT;
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CRYPT_TAG_SIZE, tag) != 1)
		return -EIO;
	return 0;
}

static int gcm(int enc, const uint8_t *key, const uint8_t *nonce, const void *aad,
	       size_t aadlen, const void *in, size_t n, void *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = ctx_new(enc, key);
	if (!c)
		return -EIO;
	int r = gcm_ctx(c, enc, nonce, aad, aadlen, in, n, out, tag);
	EVP_CIPHER_CTX_free(c);
	return r;
}

/* ---- crypt_key: keyed contexts, pooled ---- */

#define POOL_MAX 16 /* idle contexts kept per direction */

struct crypt_key {
	pthread_mutex_t mu;
	EVP_CIPHER_CTX *tmpl[2];           /* keyed templates: [0] open, [1] seal */
	EVP_CIPHER_CTX *idle[2][POOL_MAX]; /* borrowed by calls */
	int nidle[2];
};

int crypt_key_new(const uint8_t key[CRYPT_KEY_SIZE], crypt_key **out)
{
	crypt_key *k = calloc(1, sizeof *k);
	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->mu, NULL);
	k->tmpl[0] = ctx_new(0, key);
	k->tmpl[1] = ctx_new(1, key);
	if (!k->tmpl[0] || !k->tmpl[1]) {
		crypt_key_free(k);
		return -EIO;
	}
	*out = k;
	return 0;
}

void crypt_key_free(crypt_key *k)
{
	if (!k)
		return;
	for (int d = 0; d < 2; d++) {
		EVP_CIPHER_CTX_free(k->tmpl[d]);
		for (int i = 0; i < k->nidle[d]; i++)
			EVP_CIPHER_CTX_free(k->idle[d][i]);
	}
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static int key_gcm(crypt_key *k, int enc, const uint8_t *nonce, const void *aad,
		   size_t aadlen, const void *in, size_t n, void *out, uint8_t *tag)
{
	EVP_CIPHER_CTX *c = NULL;
	pthread_mutex_lock(&k->mu);
	if (k->nidle[enc])
		c = k->idle[enc][--k->nidle[enc]];
	pthread_mutex_unlock(&k->mu);
	if (!c) {
		/* a copy of the template keeps its key schedule */
		if (!(c = EVP_CIPHER_CTX_new()))
			return -ENOMEM;
		if (EVP_CIPHER_CTX_copy(c, k->tmpl[enc]) != 1) {
			EVP_CIPHER_CTX_free(c);
			return -EIO;
		}
	}
	int r = gcm_ctx(c, enc, nonce, aad, aadlen, in, n, out, tag);
	pthread_mutex_lock(&k->mu);
	if (k->nidle[enc] < POOL_MAX) {
		k->idle[enc][k->nidle[enc]++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&k->mu);
	EVP_CIPHER_CTX_free(c);
	return r;
}

int crypt_key_seal(crypt_key *k, const uint8_t nonce[CRYPT_NONCE_SIZE], const void *aad,
		   size_t aadlen, const void *in, size_t n, void *out, uint8_t tag[CRYPT_TAG_SIZE])
{
	return key_gcm(k, 1, nonce, aad, aadlen, in, n, out, tag);
}

int crypt_key_open(crypt_key *k, const uint8_t nonce[CRYPT_NONCE_SIZE], const void *aad,
		   size_t aadlen, const void *in, size_t n, void *out,
		   const uint8_t tag[CRYPT_TAG_SIZE])
{
	uint8_t t[CRYPT_TAG_SIZE];
	memcpy(t, tag, sizeof t);
	return key_gcm(k, 0, nonce, aad, aadlen, in, n, out, t);
}

int crypt_seal(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[CRYPT_NONCE_SIZE],
	       const void *aad, size_t aadlen, const void *in, size_t n, void *out,
	       uint8_t tag[CRYPT_TAG_SIZE])
{
	return gcm(1, key, nonce, aad, aadlen, in, n, out, tag);
}

int crypt_open(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[CRYPT_NONCE_SIZE],
	       const void *aad, size_t aadlen, const void *in, size_t n, void *out,
	       const uint8_t tag[CRYPT_TAG_SIZE])
{
	uint8_t t[CRYPT_TAG_SIZE];
	memcpy(t, tag, sizeof t);
	return gcm(0, key, nonce, aad, aadlen, in, n, out, t);
}

int crypt_random(void *p, size_t n)
{
	return n > (size_t)0x7fffffff || RAND_bytes(p, (int)n) != 1 ? -EIO : 0;
}

int crypt_pbkdf2(const char *pass, size_t passlen, const uint8_t *salt, size_t saltlen,
		 uint32_t iterations, uint8_t out[CRYPT_KEY_SIZE])
{
	if (passlen > (size_t)0x7fffffff || iterations == 0 || iterations > 0x7fffffff)
		return -EINVAL;
	return PKCS5_PBKDF2_HMAC(pass, (int)passlen, salt, (int)saltlen, (int)iterations,
				 EVP_sha256(), CRYPT_KEY_SIZE, out) == 1 ? 0 : -EIO;
}

void crypt_wipe(void *p, size_t n)
{
	OPENSSL_cleanse(p, n);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int crypt_key_parse(const void *buf, size_t n, uint8_t key[CRYPT_KEY_SIZE])
{
	const uint8_t *p = buf;
	if (n == CRYPT_KEY_SIZE) {
		memcpy(key, p, CRYPT_KEY_SIZE);
		return 0;
	}
	if (n == 2 * CRYPT_KEY_SIZE + 1 && p[n - 1] == '\n')
		n--;
	else if (n == 2 * CRYPT_KEY_SIZE + 2 && p[n - 2] == '\r' && p[n - 1] == '\n')
		n -= 2;
	if (n != 2 * CRYPT_KEY_SIZE)
		return -EINVAL;
	for (size_t i = 0; i < CRYPT_KEY_SIZE; i++) {
		int h = hexval(p[2 * i]), l = hexval(p[2 * i + 1]);
		if (h < 0 || l < 0) {
			crypt_wipe(key, CRYPT_KEY_SIZE);
			return -EINVAL;
		}
		key[i] = (uint8_t)(h << 4 | l);
	}
	return 0;
}

int sett_key_file_read(const char *path, uint8_t key[32])
{
	sfile *f;
	int r = sfile_open(path, O_RDONLY, &f);
	if (r)
		return r;
	uint8_t b[2 * CRYPT_KEY_SIZE + 3];
	ssize_t got = sfile_pread(f, b, sizeof b, 0);
	sfile_close(f);
	if (got < 0)
		return (int)got;
	r = crypt_key_parse(b, (size_t)got, key);
	crypt_wipe(b, sizeof b);
	return r;
}
