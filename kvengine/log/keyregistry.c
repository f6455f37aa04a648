/*
 * keyregistry.c - the KEYREGISTRY file (keyregistry.h; doc/FORMAT.md,
 * "KEYREGISTRY").
 */
#include "keyregistry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coding.h"
#include "fileio.h"
#include "sett.h"

static int has_master(const keyreg_master *m)
{
	return m && (m->key || m->passphrase);
}

void keyreg_free(keyreg *kr)
{
	if (!kr)
		return;
	if (kr->keys)
		crypt_wipe(kr->keys, kr->n * sizeof *kr->keys);
	free(kr->keys);
	crypt_wipe(kr, sizeof *kr);
	free(kr);
}

void keyreg_forget_master(keyreg *kr)
{
	if (!kr)
		return;
	crypt_wipe(kr->master, sizeof kr->master);
	kr->master_wiped = 1;
}

const uint8_t *keyreg_find(const keyreg *kr, uint64_t id)
{
	for (size_t i = 0; kr && i < kr->n; i++)
		if (kr->keys[i].id == id)
			return kr->keys[i].key;
	return NULL;
}

/* Bytes 24..47 of the file: kdf | iterations | salt. */
static void kdf_block(const keyreg *kr, uint8_t b[KEYREG_KDF_END - KEYREG_HDR_SIZE])
{
	put_le32(b, kr->kdf);
	put_le32(b + 4, kr->iterations);
	memcpy(b + 8, kr->salt, CRYPT_SALT_SIZE);
}

/* The additional data of a key record: the kdf block, then id | created. */
static void rec_aad(const uint8_t *kdf, const uint8_t *rec, uint8_t aad[40])
{
	memcpy(aad, kdf, 24);
	memcpy(aad + 24, rec, 16);
}

static int derive(keyreg *kr, const keyreg_master *m)
{
	if (kr->kdf == KEYREG_KDF_NONE) {
		memcpy(kr->master, m->key, CRYPT_KEY_SIZE);
		return 0;
	}
	return crypt_pbkdf2(m->passphrase, strlen(m->passphrase), kr->salt, sizeof kr->salt,
			    kr->iterations, kr->master);
}

int keyreg_decode(const uint8_t *p, size_t n, const keyreg_master *m, keyreg **out,
		  char *why, size_t whylen)
{
	*out = NULL;
	if (n < KEYREG_HDR_SIZE) {
		snprintf(why, whylen, "short file (%zu bytes) at offset 0", n);
		return SETT_ECORRUPT;
	}
	if (memcmp(p, KEYREG_MAGIC, 8) != 0) {
		snprintf(why, whylen, "bad magic at offset 0");
		return SETT_EFORMAT;
	}
	if (get_le64(p + 16) != sett_hash(p, 16)) {
		snprintf(why, whylen, "bad header checksum at offset 16");
		return SETT_ECORRUPT;
	}
	uint32_t count = get_le32(p + 12);
	if (get_le32(p + 8) != 1 || count > KEYREG_MAX_KEYS) {
		snprintf(why, whylen, "unknown version or key count at offset 8");
		return SETT_EFORMAT;
	}
	if (count == 0)
		return 0; /* an unencrypted store */
	size_t want = KEYREG_KDF_END + (size_t)count * KEYREG_REC_SIZE + 8;
	if (n != want) {
		snprintf(why, whylen, "%zu bytes where %u keys take %zu, at offset %zu", n, count,
			 want, n < want ? n : want);
		return SETT_ECORRUPT;
	}
	if (get_le64(p + n - 8) != sett_hash(p, n - 8)) {
		snprintf(why, whylen, "bad checksum at offset %zu", n - 8);
		return SETT_ECORRUPT;
	}
	keyreg *kr = calloc(1, sizeof *kr);
	if (!kr)
		return -ENOMEM;
	int r = SETT_EFORMAT;
	kr->kdf = get_le32(p + 24);
	kr->iterations = get_le32(p + 28);
	memcpy(kr->salt, p + 32, CRYPT_SALT_SIZE);
	if (!(kr->kdf == KEYREG_KDF_NONE && kr->iterations == 0) &&
	    !(kr->kdf == KEYREG_KDF_PBKDF2 && kr->iterations >= 1 &&
	      kr->iterations <= KEYREG_MAX_ITER)) {
		snprintf(why, whylen, "unknown key derivation at offset 24");
		goto fail;
	}
	r = SETT_EKEY;
	if (!has_master(m)) {
		snprintf(why, whylen, "the store is encrypted: a master key is needed");
		goto fail;
	}
	if (kr->kdf == KEYREG_KDF_NONE && !m->key) {
		snprintf(why, whylen, "the store's master key is a key file, not a passphrase");
		goto fail;
	}
	if (kr->kdf == KEYREG_KDF_PBKDF2 && !m->passphrase) {
		snprintf(why, whylen, "the store's master key is a passphrase, not a key file");
		goto fail;
	}
	if ((r = derive(kr, m)))
		goto fail;
	r = -ENOMEM;
	if (!(kr->keys = calloc(count, sizeof *kr->keys)))
		goto fail;
	kr->n = count;
	for (size_t i = 0; i < count; i++) {
		size_t off = KEYREG_KDF_END + i * KEYREG_REC_SIZE;
		const uint8_t *rec = p + off;
		keyreg_key *k = &kr->keys[i];
		k->id = get_le64(rec);
		k->created = get_le64(rec + 8);
		uint8_t aad[40];
		rec_aad(p + 24, rec, aad);
		r = crypt_open(kr->master, rec + 16, aad, sizeof aad, rec + 28, CRYPT_KEY_SIZE,
			       k->key, rec + 60);
		if (r == SETT_ECORRUPT && i == 0) {
			snprintf(why, whylen, "wrong master key (key record at offset %zu fails "
				 "authentication)", off);
			r = SETT_EKEY;
			goto fail;
		}
		if (r == SETT_ECORRUPT) {
			snprintf(why, whylen, "key record at offset %zu fails authentication", off);
			goto fail;
		}
		if (r)
			goto fail;
		if (k->id == 0 || (i && k->id <= kr->keys[i - 1].id)) {
			snprintf(why, whylen, "key id out of order at offset %zu", off);
			r = SETT_ECORRUPT;
			goto fail;
		}
	}
	*out = kr;
	return 0;
fail:
	keyreg_free(kr);
	return r;
}

static int encode_unencrypted(uint8_t **pp, size_t *np)
{
	uint8_t *p = malloc(KEYREG_HDR_SIZE);
	if (!p)
		return -ENOMEM;
	memcpy(p, KEYREG_MAGIC, 8);
	put_le32(p + 8, 1);
	put_le32(p + 12, 0);
	put_le64(p + 16, sett_hash(p, 16));
	*pp = p;
	*np = KEYREG_HDR_SIZE;
	return 0;
}

int keyreg_encode(const keyreg *kr, uint8_t **pp, size_t *np)
{
	if (!kr)
		return encode_unencrypted(pp, np);
	if (kr->n == 0 || kr->n > KEYREG_MAX_KEYS || kr->master_wiped)
		return -EINVAL;
	size_t n = KEYREG_KDF_END + kr->n * KEYREG_REC_SIZE + 8;
	uint8_t *p = malloc(n);
	if (!p)
		return -ENOMEM;
	memcpy(p, KEYREG_MAGIC, 8);
	put_le32(p + 8, 1);
	put_le32(p + 12, (uint32_t)kr->n);
	put_le64(p + 16, sett_hash(p, 16));
	kdf_block(kr, p + 24);
	for (size_t i = 0; i < kr->n; i++) {
		uint8_t *rec = p + KEYREG_KDF_END + i * KEYREG_REC_SIZE;
		put_le64(rec, kr->keys[i].id);
		put_le64(rec + 8, kr->keys[i].created);
		uint8_t aad[40];
		rec_aad(p + 24, rec, aad);
		int r = crypt_random(rec + 16, CRYPT_NONCE_SIZE);
		if (!r)
			r = crypt_seal(kr->master, rec + 16, aad, sizeof aad, kr->keys[i].key,
				       CRYPT_KEY_SIZE, rec + 28, rec + 60);
		if (r) {
			free(p);
			return r;
		}
	}
	put_le64(p + n - 8, sett_hash(p, n - 8));
	*pp = p;
	*np = n;
	return 0;
}

int keyreg_rotate(keyreg *kr, uint64_t now)
{
	if (kr->n >= KEYREG_MAX_KEYS)
		return SETT_ETOOBIG;
	keyreg_key *k = realloc(kr->keys, (kr->n + 1) * sizeof *k);
	if (!k)
		return -ENOMEM;
	kr->keys = k;
	k = &kr->keys[kr->n];
	k->id = kr->n ? kr->keys[kr->n - 1].id + 1 : 1;
	k->created = now;
	int r = crypt_random(k->key, CRYPT_KEY_SIZE);
	if (r)
		return r;
	kr->n++;
	return 0;
}

int keyreg_create(const keyreg_master *m, uint64_t now, keyreg **out)
{
	*out = NULL;
	if (!has_master(m))
		return -EINVAL;
	keyreg *kr = calloc(1, sizeof *kr);
	if (!kr)
		return -ENOMEM;
	int r = 0;
	if (m->key) {
		kr->kdf = KEYREG_KDF_NONE;
	} else {
		kr->kdf = KEYREG_KDF_PBKDF2;
		kr->iterations = m->iterations ? m->iterations : KEYREG_DEFAULT_ITER;
		if (kr->iterations > KEYREG_MAX_ITER)
			r = -EINVAL;
		if (!r)
			r = crypt_random(kr->salt, sizeof kr->salt);
	}
	if (!r)
		r = derive(kr, m);
	if (!r)
		r = keyreg_rotate(kr, now);
	if (r) {
		keyreg_free(kr);
		return r;
	}
	*out = kr;
	return 0;
}

int keyreg_write(const char *dir, const keyreg *kr)
{
	uint8_t *p;
	size_t n;
	int r = keyreg_encode(kr, &p, &n);
	if (r)
		return r;
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/KEYREGISTRY", dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	sfile *f;
	if ((r = sfile_open(tmp, O_RDWR | O_CREAT | O_TRUNC, &f)) == 0) {
		r = sfile_pwrite(f, p, n, 0);
		if (!r)
			r = sfile_sync(f);
		sfile_close(f);
		if (!r)
			r = sio_rename(tmp, path);
		if (!r)
			r = sio_sync_dir(dir);
	}
	free(p);
	return r;
}

int keyreg_open(const char *dir, const keyreg_master *m, int read_only,
		uint64_t rotate_seconds, keyreg **out, char *why, size_t whylen)
{
	*out = NULL;
	char path[4096];
	snprintf(path, sizeof path, "%s/KEYREGISTRY", dir);
	uint64_t now = (uint64_t)time(NULL);
	sfile *f;
	int r = sfile_open(path, O_RDONLY, &f);
	if (r == -ENOENT) {
		if (read_only) {
			if (!has_master(m))
				return 0;
			snprintf(why, whylen, "%s: missing, so the store is not encrypted", path);
			return SETT_EKEY;
		}
		keyreg *kr = NULL;
		if (has_master(m) && (r = keyreg_create(m, now, &kr)))
			return r;
		if ((r = keyreg_write(dir, kr)) == 0)
			*out = kr;
		else
			keyreg_free(kr);
		return r;
	}
	if (r)
		return r;
	int64_t size = sfile_size(f);
	uint8_t *p = NULL;
	if (size < 0)
		r = (int)size;
	else if (size > KEYREG_KDF_END + (int64_t)KEYREG_MAX_KEYS * KEYREG_REC_SIZE + 8)
		r = SETT_EFORMAT;
	else if (!(p = malloc((size_t)size + 1)))
		r = -ENOMEM;
	else
		r = sfile_pread_full(f, p, (size_t)size, 0);
	sfile_close(f);
	char what[256] = "";
	keyreg *kr = NULL;
	if (!r)
		r = keyreg_decode(p, (size_t)size, m, &kr, what, sizeof what);
	else
		snprintf(what, sizeof what, "cannot be read whole");
	free(p);
	if (r) {
		snprintf(why, whylen, "%s: %s", path, what);
		return r;
	}
	if (!kr && has_master(m)) {
		snprintf(why, whylen, "%s: the store is not encrypted, but a master key was given",
			 path);
		return SETT_EKEY;
	}
	if (kr && !read_only && rotate_seconds &&
	    now >= kr->keys[kr->n - 1].created + rotate_seconds) {
		if (!(r = keyreg_rotate(kr, now)))
			r = keyreg_write(dir, kr);
		if (r) {
			keyreg_free(kr);
			return r;
		}
	}
	*out = kr;
	return 0;
}
