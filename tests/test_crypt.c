/*
 * test_crypt.c - encryption at rest: the AES-256-GCM primitive (crypt.c)
 * and KEYREGISTRY (keyregistry.c).
 *
 * - The primitive matches a published AES-256-GCM vector, and any changed
 *   byte of ciphertext, tag, nonce or additional data fails with
 *   SETT_ECORRUPT; a pooled crypt_key agrees with it from many threads.
 * - A registry round-trips under its master key (a key or a passphrase);
 *   the wrong key, the wrong kind of key or none is SETT_EKEY, never keys
 *   of garbage; every flipped byte is an error; a record re-signed after
 *   tampering still fails authentication.
 * - Neither the master key nor a data key appears in the file.
 * - Keys rotate on schedule across reopen; old keys keep their id and bytes.
 * - An encrypted WAL holds no plaintext of its keys and values and replays
 *   under its registry; no key or another registry's is SETT_EKEY; a
 *   flipped byte of a complete record is SETT_ECORRUPT naming its offset; a
 *   zero or cut tail is torn; a failed and retried append seals its record
 *   with a new counter (nonce); a replayed encrypted WAL takes no appends.
 * - sett_open: an unencrypted store's KEYREGISTRY is the 24-byte version 1
 *   file; a registry with keys is SETT_EKEY naming the file; a master key
 *   for an unencrypted store is SETT_EKEY; sett_repair without the master
 *   key of a registry with keys is SETT_EKEY and changes nothing.
 *   (Encrypted stores through sett_open: test_encrypt.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cipher.h"
#include "coding.h"
#include "crypt.h"
#include "fileio.h"
#include "ikey.h"
#include "keyregistry.h"
#include "seal.h"
#include "sett.h"
#include "testutil.h"
#include "wal.h"

static const uint8_t KEY1[32] = "0123456789abcdef0123456789abcde";
static const uint8_t KEY2[32] = "0123456789abcdef0123456789abcdX";

static void unhex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}



/* NIST GCM test case 14 (AES-256, zero key and IV, one zero block). */
START_TEST(test_gcm_vector)
{
	uint8_t key[32] = { 0 }, nonce[12] = { 0 }, pt[16] = { 0 }, ct[16], tag[16];
	uint8_t want_ct[16], want_tag[16];
	unhex("cea7403d4d606b6e074ec5d3baf39d18", want_ct);
	unhex("d0d1c8a799996bf0265b98b5d48ab919", want_tag);
	ck_assert_int_eq(crypt_seal(key, nonce, NULL, 0, pt, 16, ct, tag), 0);
	ck_assert_mem_eq(ct, want_ct, 16);
	ck_assert_mem_eq(tag, want_tag, 16);
	uint8_t back[16];
	ck_assert_int_eq(crypt_open(key, nonce, NULL, 0, ct, 16, back, tag), 0);
	ck_assert_mem_eq(back, pt, 16);
}
END_TEST

START_TEST(test_gcm_tamper)
{
	uint8_t nonce[12] = "nonce-nonce", aad[9] = "aad-bytes", pt[100], ct[100], tag[16],
		back[100];
	for (int i = 0; i < 100; i++)
		pt[i] = (uint8_t)i;
	ck_assert_int_eq(crypt_seal(KEY1, nonce, aad, sizeof aad, pt, sizeof pt, ct, tag), 0);
	ck_assert(memcmp(ct, pt, sizeof pt) != 0);
	ck_assert_int_eq(crypt_open(KEY1, nonce, aad, sizeof aad, ct, sizeof ct, back, tag), 0);
	ck_assert_mem_eq(back, pt, sizeof pt);
	for (size_t i = 0; i < sizeof ct; i++) {
		ct[i] ^= 1;
		ck_assert_int_eq(crypt_open(KEY1, nonce, aad, sizeof aad, ct, sizeof ct, back, tag),
				 SETT_ECORRUPT);
		ct[i] ^= 1;
	}
	for (size_t i = 0; i < sizeof tag; i++) {
		tag[i] ^= 0x80;
		ck_assert_int_eq(crypt_open(KEY1, nonce, aad, sizeof aad, ct, sizeof ct, back, tag),
				 SETT_ECORRUPT);
		tag[i] ^= 0x80;
	}
	nonce[0] ^= 1;
	ck_assert_int_eq(crypt_open(KEY1, nonce, aad, sizeof aad, ct, sizeof ct, back, tag),
			 SETT_ECORRUPT);
	nonce[0] ^= 1;
	aad[8] ^= 1;
	ck_assert_int_eq(crypt_open(KEY1, nonce, aad, sizeof aad, ct, sizeof ct, back, tag),
			 SETT_ECORRUPT);
	aad[8] ^= 1;
	ck_assert_int_eq(crypt_open(KEY2, nonce, aad, sizeof aad, ct, sizeof ct, back, tag),
			 SETT_ECORRUPT);
}
END_TEST

/* A pooled crypt_key agrees with the one-shot calls, from many threads,
 * and a failed open leaves its context fit for the next call. */
typedef struct kthread {
	crypt_key *k;
	int id, bad;
} kthread;

static void *key_thread(void *arg)
{
	kthread *t = arg;
	uint8_t msg[300], ct[300], ct1[300], back[300], tag[16], tag1[16], nonce[12] = { 0 };
	for (int i = 0; i < 500; i++) {
		size_t n = (size_t)(i * 7 % 300);
		for (size_t j = 0; j < n; j++)
			msg[j] = (uint8_t)(j + (size_t)i + (size_t)t->id);
		put_le32(nonce, (uint32_t)t->id);
		put_le32(nonce + 4, (uint32_t)i);
		if (crypt_key_seal(t->k, nonce, "ad", 2, msg, n, ct, tag) ||
		    crypt_seal(KEY1, nonce, "ad", 2, msg, n, ct1, tag1) ||
		    memcmp(ct, ct1, n) || memcmp(tag, tag1, 16))
			t->bad++;
		tag[i % 16] ^= 4;
		if (crypt_key_open(t->k, nonce, "ad", 2, ct, n, back, tag) != SETT_ECORRUPT)
			t->bad++;
		tag[i % 16] ^= 4;
		if (crypt_key_open(t->k, nonce, "ad", 2, ct, n, back, tag) || memcmp(back, msg, n))
			t->bad++;
	}
	return NULL;
}

START_TEST(test_key_pool)
{
	crypt_key *k;
	ck_assert_int_eq(crypt_key_new(KEY1, &k), 0);
	pthread_t th[4];
	kthread t[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (kthread){ .k = k, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, key_thread, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].bad, 0);
	}
	crypt_key_free(k);
}
END_TEST

START_TEST(test_key_parse)
{
	uint8_t k[32];
	ck_assert_int_eq(crypt_key_parse(KEY1, 32, k), 0);
	ck_assert_mem_eq(k, KEY1, 32);
	char hex[70];
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02X", KEY1[i]);
	strcat(hex, "\n");
	ck_assert_int_eq(crypt_key_parse(hex, 65, k), 0);
	ck_assert_mem_eq(k, KEY1, 32);
	ck_assert_int_eq(crypt_key_parse(hex, 64, k), 0);
	ck_assert_int_eq(crypt_key_parse(hex, 31, k), -EINVAL);
	hex[5] = 'g';
	ck_assert_int_eq(crypt_key_parse(hex, 65, k), -EINVAL);

	char *dir = tu_tmpdir("crypt-kf");
	char path[4200];
	snprintf(path, sizeof path, "%s/key", dir);
	FILE *f = fopen(path, "w");
	fwrite(KEY2, 1, 32, f);
	fclose(f);
	ck_assert_int_eq(sett_key_file_read(path, k), 0);
	ck_assert_mem_eq(k, KEY2, 32);
	f = fopen(path, "w");
	fputs("too short\n", f);
	fclose(f);
	ck_assert_int_eq(sett_key_file_read(path, k), -EINVAL);
	snprintf(path, sizeof path, "%s/none", dir);
	ck_assert_int_eq(sett_key_file_read(path, k), -ENOENT);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A registry of three keys under KEY1, encoded. */
static keyreg *three_keys(uint8_t **p, size_t *n)
{
	keyreg_master m = { .key = KEY1 };
	keyreg *kr;
	ck_assert_int_eq(keyreg_create(&m, 1000, &kr), 0);
	ck_assert_int_eq(keyreg_rotate(kr, 2000), 0);
	ck_assert_int_eq(keyreg_rotate(kr, 3000), 0);
	ck_assert_int_eq(keyreg_encode(kr, p, n), 0);
	ck_assert_uint_eq(*n, KEYREG_KDF_END + 3 * KEYREG_REC_SIZE + 8);
	return kr;
}

START_TEST(test_registry_roundtrip)
{
	uint8_t *p;
	size_t n;
	keyreg *kr = three_keys(&p, &n);
	char why[256];
	keyreg_master m = { .key = KEY1 };
	keyreg *back;
	ck_assert_int_eq(keyreg_decode(p, n, &m, &back, why, sizeof why), 0);
	ck_assert_uint_eq(back->n, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_uint_eq(back->keys[i].id, i + 1);
		ck_assert_uint_eq(back->keys[i].created, 1000 * (i + 1));
		ck_assert_mem_eq(back->keys[i].key, kr->keys[i].key, 32);
		ck_assert_ptr_eq(keyreg_find(back, i + 1), back->keys[i].key);
		/* neither the data keys nor the master key are in the file */
		ck_assert(!tu_contains(p, n, kr->keys[i].key, 8));
	}
	ck_assert(!tu_contains(p, n, KEY1, 8));
	ck_assert_ptr_null(keyreg_find(back, 4));
	keyreg_free(back);

	/* wrong key, no key, the wrong kind of key: SETT_EKEY, nothing decoded */
	keyreg_master wrong = { .key = KEY2 }, none = { 0 }, pass = { .passphrase = "x" };
	back = (keyreg *)1;
	ck_assert_int_eq(keyreg_decode(p, n, &wrong, &back, why, sizeof why), SETT_EKEY);
	ck_assert_ptr_null(back);
	ck_assert_ptr_nonnull(strstr(why, "wrong master key"));
	ck_assert_int_eq(keyreg_decode(p, n, &none, &back, why, sizeof why), SETT_EKEY);
	ck_assert_int_eq(keyreg_decode(p, n, NULL, &back, why, sizeof why), SETT_EKEY);
	ck_assert_int_eq(keyreg_decode(p, n, &pass, &back, why, sizeof why), SETT_EKEY);
	keyreg_free(kr);
	free(p);
}
END_TEST

START_TEST(test_registry_passphrase)
{
	keyreg_master m = { .passphrase = "correct horse", .iterations = 1000 };
	keyreg *kr;
	ck_assert_int_eq(keyreg_create(&m, 5, &kr), 0);
	uint8_t *p;
	size_t n;
	ck_assert_int_eq(keyreg_encode(kr, &p, &n), 0);
	ck_assert_uint_eq(get_le32(p + 24), KEYREG_KDF_PBKDF2);
	ck_assert_uint_eq(get_le32(p + 28), 1000);
	char why[256];
	keyreg *back;
	keyreg_master again = { .passphrase = "correct horse" };
	ck_assert_int_eq(keyreg_decode(p, n, &again, &back, why, sizeof why), 0);
	ck_assert_mem_eq(back->keys[0].key, kr->keys[0].key, 32);
	keyreg_free(back);
	keyreg_master wrong = { .passphrase = "correct horsE" }, key = { .key = KEY1 };
	ck_assert_int_eq(keyreg_decode(p, n, &wrong, &back, why, sizeof why), SETT_EKEY);
	ck_assert_int_eq(keyreg_decode(p, n, &key, &back, why, sizeof why), SETT_EKEY);
	keyreg_free(kr);
	free(p);
}
END_TEST

/* Every flipped byte is an error; re-signed tampering fails authentication. */
START_TEST(test_registry_flip)
{
	uint8_t *p;
	size_t n;
	keyreg *kr = three_keys(&p, &n);
	keyreg_master m = { .key = KEY1 };
	char why[256];
	keyreg *back;
	for (size_t i = 0; i < n; i++) {
		p[i] ^= 0x10;
		int r = keyreg_decode(p, n, &m, &back, why, sizeof why);
		ck_assert_msg(r == SETT_ECORRUPT || r == SETT_EFORMAT, "flip at %zu: %d", i, r);
		ck_assert_ptr_null(back);
		/* with both checksums made good again, a record byte still fails */
		if (i >= KEYREG_KDF_END && i < n - 8) {
			put_le64(p + n - 8, sett_hash(p, n - 8));
			r = keyreg_decode(p, n, &m, &back, why, sizeof why);
			int first = i < KEYREG_KDF_END + KEYREG_REC_SIZE;
			ck_assert_msg(r == (first ? SETT_EKEY : SETT_ECORRUPT), "tamper at %zu: %d",
				      i, r);
			ck_assert_ptr_null(back);
		}
		p[i] ^= 0x10;
		put_le64(p + n - 8, sett_hash(p, n - 8));
	}
	for (size_t cut = 0; cut < n; cut++)
		ck_assert_int_lt(keyreg_decode(p, cut, &m, &back, why, sizeof why), 0);
	ck_assert_int_eq(keyreg_decode(p, n, &m, &back, why, sizeof why), 0);
	keyreg_free(back);
	keyreg_free(kr);
	free(p);
}
END_TEST

START_TEST(test_registry_rotation)
{
	char *dir = tu_tmpdir("crypt-rot");
	keyreg_master m = { .key = KEY1 }, wrong = { .key = KEY2 };
	char why[512] = "";
	keyreg *kr;
	/* a registry whose only key is 10 days old */
	ck_assert_int_eq(keyreg_create(&m, (uint64_t)time(NULL) - 10 * 86400, &kr), 0);
	ck_assert_int_eq(keyreg_write(dir, kr), 0);
	uint8_t old[32];
	memcpy(old, kr->keys[0].key, 32);
	keyreg_free(kr);

	char path[4200];
	snprintf(path, sizeof path, "%s/KEYREGISTRY", dir);
	size_t n0;
	uint8_t *before = tu_slurp(path, &n0);
	/* the wrong key changes nothing, even where rotation is due */
	ck_assert_int_eq(keyreg_open(dir, &wrong, 0, 86400, &kr, why, sizeof why), SETT_EKEY);
	ck_assert_ptr_nonnull(strstr(why, "KEYREGISTRY"));
	size_t n1;
	uint8_t *after = tu_slurp(path, &n1);
	ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
	free(after);
	/* not yet due at 30 days; read-only never rotates */
	ck_assert_int_eq(keyreg_open(dir, &m, 0, 30 * 86400, &kr, why, sizeof why), 0);
	ck_assert_uint_eq(kr->n, 1);
	keyreg_free(kr);
	ck_assert_int_eq(keyreg_open(dir, &m, 1, 86400, &kr, why, sizeof why), 0);
	ck_assert_uint_eq(kr->n, 1);
	keyreg_free(kr);
	/* due at 1 day: a new current key; the old one keeps id and bytes */
	ck_assert_int_eq(keyreg_open(dir, &m, 0, 86400, &kr, why, sizeof why), 0);
	ck_assert_uint_eq(kr->n, 2);
	keyreg_free(kr);
	ck_assert_int_eq(keyreg_open(dir, &m, 0, 86400, &kr, why, sizeof why), 0);
	ck_assert_uint_eq(kr->n, 2);
	ck_assert_uint_eq(kr->keys[1].id, 2);
	ck_assert_mem_eq(keyreg_find(kr, 1), old, 32);
	ck_assert(memcmp(keyreg_find(kr, 2), old, 32) != 0);
	keyreg_free(kr);
	snprintf(path, sizeof path, "%s/KEYREGISTRY.tmp", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	free(before);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(test_open_store)
{
	char *dir = tu_tmpdir("crypt-open");
	sett_options o;
	sett_options_init(&o);
	char why[512] = "";
	o.error_buf = why;
	o.error_buf_size = sizeof why;
	sett_db *db;
	/* an unencrypted store: the version 1 file, no keys */
	ck_assert_int_eq(sett_open(dir, &o, &db), 0);
	ck_assert_int_eq(sett_close(db), 0);
	char path[4200];
	snprintf(path, sizeof path, "%s/KEYREGISTRY", dir);
	size_t n;
	uint8_t *p = tu_slurp(path, &n);
	ck_assert_uint_eq(n, 24);
	ck_assert_mem_eq(p, "SETTKEYR\1\0\0\0\0\0\0\0", 16);
	ck_assert_uint_eq(get_le64(p + 16), sett_hash(p, 16));
	free(p);

	/* a master key for this unencrypted store is refused, nothing touched */
	uint64_t digest = tu_dir_digest(dir);
	o.encryption_key = KEY1;
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	ck_assert_ptr_nonnull(strstr(why, "not encrypted"));
	o.encryption_key = NULL;
	o.encryption_passphrase = "pass";
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	o.encryption_passphrase = NULL;
	ck_assert_uint_eq(tu_dir_digest(dir), digest);

	/* a registry with keys: SETT_EKEY naming the file, read-only too */
	keyreg_master m = { .key = KEY1 };
	keyreg *kr;
	ck_assert_int_eq(keyreg_create(&m, 1, &kr), 0);
	ck_assert_int_eq(keyreg_write(dir, kr), 0);
	keyreg_free(kr);
	digest = tu_dir_digest(dir);
	why[0] = 0;
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	ck_assert_ptr_nonnull(strstr(why, "KEYREGISTRY"));
	ck_assert_ptr_nonnull(strstr(why, "master key is needed"));
	o.read_only = 1;
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	ck_assert_uint_eq(tu_dir_digest(dir), digest);
	/* repair without the master key changes nothing (the registry holds
	 * the only copy of the data keys, and every encrypted file needs them) */
	o.read_only = 0;
	ck_assert_int_eq(sett_repair(dir, &o, NULL, NULL), SETT_EKEY);
	ck_assert_uint_eq(tu_dir_digest(dir), digest);
	p = tu_slurp(path, &n);
	ck_assert_uint_eq(n, KEYREG_KDF_END + KEYREG_REC_SIZE + 8);
	free(p);
	ck_assert_int_eq(sett_open(dir, &o, &db), SETT_EKEY);
	ck_assert_str_eq(sett_strerror(SETT_EKEY),
			 "wrong or missing master key for an encrypted store");
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* ---- encrypted WAL ---- */

#define WAL_ENC_HDR (LOG_HEADER_SIZE + 44) /* log header | key id | salt | check | hash */
#define WAL_REC_OVER 28                    /* u32 n | u64 seq | tag */

/* Appends batch `b` of n entries "secret-key-<i>" = "secret-value-<i>". */
static void secret_batch(buf *b, int first, int n)
{
	for (int i = first; i < first + n; i++) {
		char uk[32], val[32];
		uint8_t ik[64];
		int kn = snprintf(uk, sizeof uk, "secret-key-%d", i);
		int vn = snprintf(val, sizeof val, "secret-value-%d", i);
		ikey_make(ik, uk, (size_t)kn, (uint64_t)i + 1);
		uint8_t meta = n > 1 ? META_TXN | (i == first + n - 1 ? META_FIN_TXN : 0) : 0;
		entry e = { slice_make(ik, (size_t)kn + 8), slice_make(val, (size_t)vn), meta, 0, 0 };
		ck_assert_int_eq(entry_append(b, &e), 0);
	}
}

static int count_apply(void *arg, const entry *e)
{
	char want[32];
	int *n = arg;
	snprintf(want, sizeof want, "secret-value-%d", *n);
	ck_assert_uint_eq(e->value.n, strlen(want));
	ck_assert_mem_eq(e->value.p, want, e->value.n);
	(*n)++;
	return 0;
}

/* The key ring of a new registry under master (its one key made ready). */
static cipher_ring *one_key(const uint8_t *master)
{
	keyreg_master m = { .key = master };
	keyreg *kr;
	cipher_ring *g;
	ck_assert_int_eq(keyreg_create(&m, 1000, &kr), 0);
	ck_assert_int_eq(cipher_ring_new(kr, &g), 0);
	keyreg_free(kr);
	return g;
}


/* An encrypted WAL at path with three records of 3, 1 and 2 entries. */
static void enc_wal(const char *path, const cipher_ring *kr, size_t ends[3])
{
	wal *w;
	sett_cipher c = cipher_ring_current(kr);
	ck_assert_int_eq(wal_create_enc(path, 7, &c, &w), 0);
	int first = 0, sizes[3] = { 3, 1, 2 };
	for (int i = 0; i < 3; i++) {
		buf b = { 0 };
		secret_batch(&b, first, sizes[i]);
		first += sizes[i];
		ck_assert_int_eq(wal_append(w, b.p, b.n), 0);
		ends[i] = wal_size(w);
		buf_free(&b);
	}
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_int_eq(wal_close(w, 0), 0);
}

static int replay_count(const char *path, cipher_ring *kr, int writable, char *why)
{
	int n = 0;
	why[0] = 0;
	sett_keys keys = cipher_ring_keys(kr);
	int r = wal_open_replay_enc(path, writable, NULL, kr ? &keys : NULL, NULL, count_apply, &n,
				    NULL, why, 256);
	return r ? r : n;
}

START_TEST(test_wal_encrypted)
{
	char *dir = tu_tmpdir("crypt");
	char path[4096], why[256];
	snprintf(path, sizeof path, "%s/00007.mem", dir);
	cipher_ring *kr = one_key(KEY1);
	size_t ends[3];
	enc_wal(path, kr, ends);

	size_t n;
	uint8_t *p = tu_slurp(path, &n);
	ck_assert_uint_eq(n, ends[2]);
	ck_assert(!tu_contains(p, n, "secret", 6));
	ck_assert_int_eq(replay_count(path, kr, 0, why), 6);

	/* No key, or another registry's keys: SETT_EKEY, never garbage. */
	ck_assert_int_eq(replay_count(path, NULL, 0, why), SETT_EKEY);
	ck_assert_ptr_nonnull(strstr(why, "00007.mem"));
	cipher_ring *other = one_key(KEY2);
	ck_assert_int_eq(replay_count(path, other, 0, why), SETT_EKEY);
	/* The plain reader does not take it for a WAL of its own. */
	ck_assert_int_eq(wal_open_replay(path, 0, count_apply, &(int){ 0 }, NULL, why, 256),
			 SETT_EKEY);

	/* A flipped byte of any complete record (the last one too) is corruption at it. */
	size_t starts[3] = { WAL_ENC_HDR, ends[0], ends[1] };
	for (int i = 0; i < 3; i++) {
		for (size_t at = starts[i]; at < ends[i]; at += 7) {
			tu_flip_byte(path, (long long)at);
			ck_assert_int_eq(replay_count(path, kr, 0, why), SETT_ECORRUPT);
			char want[64];
			snprintf(want, sizeof want, "record at offset %zu", starts[i]);
			ck_assert_msg(strstr(why, want), "%s (flipped %zu)", why, at);
			tu_flip_byte(path, (long long)at);
		}
	}
	ck_assert_int_eq(replay_count(path, kr, 0, why), 6);

	/* A zero tail is torn: replay succeeds and a writable open cuts it. */
	ck_assert_int_eq(truncate(path, (off_t)(n + 700)), 0);
	ck_assert_int_eq(replay_count(path, kr, 1, why), 6);
	ck_assert_int_eq(tu_file_size(path), (long long)n);
	/* So is a record cut short (the file ends inside it). */
	ck_assert_int_eq(truncate(path, (off_t)(ends[2] - 5)), 0);
	ck_assert_int_eq(replay_count(path, kr, 1, why), 4);
	ck_assert_int_eq(tu_file_size(path), (long long)ends[1]);

	/* A replayed encrypted WAL takes no appends: its next nonce is unknown. */
	wal *w;
	sett_keys keys = cipher_ring_keys(kr);
	ck_assert_int_eq(wal_open_replay_enc(path, 1, NULL, &keys, NULL, NULL, NULL, &w, why, 256),
			 0);
	ck_assert_int_eq(wal_append(w, "x", 1), -EBADF);
	wal_close(w, 0);

	free(p);
	cipher_ring_free(kr);
	cipher_ring_free(other);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/*
 * Sealed records: after a record claiming to run past the end, a tail
 * whose every 12 bytes claim a record reaching to its end.  The search for
 * an authentic record after the first stops at its budget: corruption,
 * the file kept whole (opening every claim took minutes for 4 MiB).
 */
START_TEST(test_wal_crafted_tail_bounded)
{
	char *dir = tu_tmpdir("crypt");
	char path[4096], why[256];
	snprintf(path, sizeof path, "%s/00007.mem", dir);
	cipher_ring *kr = one_key(KEY1);
	size_t ends[3];
	enc_wal(path, kr, ends);
	tu_append_claims(path, 4u << 20, SEAL_REC_OVERHEAD, 1);
	long long size = tu_file_size(path);
	for (int writable = 0; writable <= 1; writable++) {
		ck_assert_int_eq(replay_count(path, kr, writable, why), SETT_ECORRUPT);
		char want[64];
		snprintf(want, sizeof want, "record at offset %zu", ends[2]);
		ck_assert_msg(strstr(why, want), "%s", why);
		ck_assert_int_eq(tu_file_size(path), size);
	}
	cipher_ring_free(kr);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

/* A failed append cut back and retried at the same offset gets a new nonce. */
START_TEST(test_wal_retry_new_nonce)
{
	char *dir = tu_tmpdir("crypt");
	char path[4096], path2[4096], why[256];
	snprintf(path, sizeof path, "%s/00001.mem", dir);
	snprintf(path2, sizeof path2, "%s/00002.mem", dir);
	cipher_ring *kr = one_key(KEY1);
	buf a = { 0 }, c = { 0 };
	secret_batch(&a, 0, 2);
	secret_batch(&c, 2, 2);
	wal *w;
	sett_cipher cur = cipher_ring_current(kr);
	ck_assert_int_eq(wal_create_enc(path, 1, &cur, &w), 0);
	ck_assert_int_eq(wal_append(w, a.p, a.n), 0);
	sio_fault_fail_nth(1, ENOSPC);
	ck_assert_int_eq(wal_append(w, c.p, c.n), -ENOSPC);
	sio_fault_reset();
	ck_assert_uint_eq(wal_size(w), WAL_ENC_HDR + WAL_REC_OVER + a.n);
	ck_assert_int_eq(wal_append(w, c.p, c.n), 0);
	ck_assert_int_eq(wal_close(w, 0), 0);
	ck_assert_int_eq(replay_count(path, kr, 0, why), 4);

	size_t n;
	uint8_t *p = tu_slurp(path, &n);
	size_t second = WAL_ENC_HDR + WAL_REC_OVER + a.n;
	ck_assert_uint_eq(get_le64(p + WAL_ENC_HDR + 4), 0);
	ck_assert_uint_eq(get_le64(p + second + 4), 2); /* 1 sealed the failed write */

	/* Two files of one key never share a salt. */
	ck_assert_int_eq(wal_create_enc(path2, 2, &cur, &w), 0);
	ck_assert_int_eq(wal_close(w, 0), 0);
	size_t n2;
	uint8_t *p2 = tu_slurp(path2, &n2);
	ck_assert_uint_eq(n2, WAL_ENC_HDR);
	ck_assert_uint_eq(get_le64(p2 + LOG_HEADER_SIZE), 1); /* key id */
	ck_assert(memcmp(p + LOG_HEADER_SIZE + 8, p2 + LOG_HEADER_SIZE + 8, 12) != 0);

	free(p);
	free(p2);
	buf_free(&a);
	buf_free(&c);
	cipher_ring_free(kr);
	tu_rmrf(dir);
	free(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crypt");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_gcm_vector);
	tcase_add_test(tc, test_gcm_tamper);
	tcase_add_test(tc, test_key_pool);
	tcase_add_test(tc, test_key_parse);
	tcase_add_test(tc, test_registry_roundtrip);
	tcase_add_test(tc, test_registry_passphrase);
	tcase_add_test(tc, test_registry_flip);
	tcase_add_test(tc, test_registry_rotation);
	tcase_add_test(tc, test_open_store);
	tcase_add_test(tc, test_wal_encrypted);
	tcase_add_test(tc, test_wal_crafted_tail_bounded);
	tcase_add_test(tc, test_wal_retry_new_nonce);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
