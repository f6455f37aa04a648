/*
 * seal.c - sealed records of encrypted log files (seal.h; doc/FORMAT.md,
 * "Sealed records").
 */
#include "seal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cipher.h"
#include "coding.h"
#include "sett.h"
#include "wal.h"

void seal_free(seal *s)
{
	if (s) {
		free(s->buf);
		crypt_wipe(s, sizeof *s);
		free(s);
	}
}

int seal_new(const sett_cipher *c, uint32_t fid, uint32_t min_len, seal **out)
{
	if (!cipher_on(c))
		return -EINVAL;
	seal *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->k = c->key;
	s->key_id = c->key_id;
	s->fid = fid;
	s->min_len = min_len ? min_len : 1;
	*out = s;
	return 0;
}

static void rec_aad(uint32_t fid, uint64_t off, uint8_t aad[12])
{
	put_le32(aad, fid);
	put_le64(aad + 4, off);
}

int seal_header(seal *s, uint8_t *hdr, size_t hlen)
{
	sett_cipher c = { s->key_id, s->k };
	int r = crypt_random(s->salt, sizeof s->salt);
	if (!r)
		r = cipher_head_put(&c, hdr, hlen, s->salt);
	if (!r)
		put_le64(hdr + hlen + CIPHER_HEAD_SIZE, sett_hash(hdr + hlen, CIPHER_HEAD_SIZE));
	return r;
}

int seal_open_header(const char *path, const sett_keys *keys, uint32_t fid, uint32_t min_len,
		     const uint8_t *data, size_t hlen, size_t n, seal **out, char *why,
		     size_t whylen)
{
	const uint8_t *x = data + hlen;
	if (n < hlen + SEAL_HEADER ||
	    get_le64(x + CIPHER_HEAD_SIZE) != sett_hash(x, CIPHER_HEAD_SIZE)) {
		if (why && whylen)
			snprintf(why, whylen, "%s: corrupt header at offset %zu", path, hlen);
		return SETT_ECORRUPT;
	}
	seal *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	int r = cipher_head_get(keys, data, hlen, path, &s->k, &s->key_id, s->salt, why, whylen);
	if (r) {
		seal_free(s);
		return r;
	}
	s->fid = fid;
	s->min_len = min_len ? min_len : 1;
	*out = s;
	return 0;
}

int seal_record(seal *s, uint64_t off, const void *p, size_t n)
{
	if (n > UINT32_MAX)
		return -EFBIG;
	if (s->cap < n + SEAL_REC_OVERHEAD) {
		uint8_t *nb = realloc(s->buf, n + SEAL_REC_OVERHEAD);
		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = n + SEAL_REC_OVERHEAD;
	}
	uint8_t nonce[CRYPT_NONCE_SIZE], aad[12];
	uint64_t seq = s->seq++;
	put_le32(s->buf, (uint32_t)n);
	put_le64(s->buf + 4, seq);
	cipher_nonce(s->salt, seq, nonce);
	rec_aad(s->fid, off, aad);
	uint8_t *ct = s->buf + SEAL_REC_HEAD;
	return crypt_key_seal(s->k, nonce, aad, sizeof aad, p, n, ct, ct + n);
}

/*
 * Opens the sealed record at `off` of data[0, n) into out (room for n
 * bytes): its plaintext length, or -1 when the record is incomplete or
 * fails its tag; *end is where the record claims to end (n + 1 when even
 * its length is missing).
 */
static long open_record(const seal *s, const uint8_t *data, size_t n, size_t off, uint8_t *out,
			uint64_t *end)
{
	if (n - off < SEAL_REC_HEAD) {
		*end = (uint64_t)n + 1;
		return -1;
	}
	uint32_t len = get_le32(data + off);
	*end = off + (uint64_t)SEAL_REC_OVERHEAD + len;
	if (*end > n || len < s->min_len)
		return -1;
	uint8_t nonce[CRYPT_NONCE_SIZE], aad[12];
	cipher_nonce(s->salt, get_le64(data + off + 4), nonce);
	rec_aad(s->fid, off, aad);
	const uint8_t *ct = data + off + SEAL_REC_HEAD;
	if (crypt_key_open(s->k, nonce, aad, sizeof aad, ct, len, out, ct + len) != 0)
		return -1;
	return len;
}

int seal_open_records(const char *path, seal *s, const uint8_t *data, size_t n, size_t from,
		      size_t lead, uint8_t **plain, size_t *pn, size_t **bounds, size_t *nrec,
		      char *why, size_t whylen)
{
	uint8_t *p = malloc(n + lead + 1);
	size_t *b = NULL, cap = 0, nr = 0, pos = lead, off = from;
	if (!p)
		return -ENOMEM;
	while (off < n) {
		uint64_t end;
		long k = open_record(s, data, n, off, p + pos, &end);
		if (k < 0) {
			int torn = log_torn(data, n, off, end), after = 0;
			uint64_t e2, budget = log_search_budget(n - off);
			for (size_t c = off + 1; torn && !after &&
						 c + SEAL_REC_OVERHEAD + s->min_len <= n;
			     c++) {
				uint64_t len = get_le32(data + c); /* what opening it costs */
				if (len > n - c)
					continue;
				if (len > budget)
					after = 1; /* spent: one may follow (entry.h) */
				else
					budget -= len;
				after = after || open_record(s, data, n, c, p + pos, &e2) >= 0;
			}
			if (!torn || after) {
				if (why && whylen)
					snprintf(why, whylen, "%s: corrupt record at offset %zu", path,
						 off);
				free(p);
				free(b);
				return SETT_ECORRUPT;
			}
			break; /* torn tail */
		}
		if (nr == cap) {
			cap = cap ? 2 * cap : 16;
			size_t *nb = realloc(b, 2 * cap * sizeof *nb);
			if (!nb) {
				free(p);
				free(b);
				return -ENOMEM;
			}
			b = nb;
		}
		pos += (size_t)k;
		off = (size_t)end;
		b[2 * nr] = pos;
		b[2 * nr + 1] = off;
		nr++;
	}
	*plain = p;
	*pn = pos;
	*bounds = b;
	*nrec = nr;
	return 0;
}

size_t seal_file_end(const size_t *bounds, size_t nrec, size_t from, size_t valid)
{
	size_t fend = from;
	for (size_t i = 0; i < nrec && bounds[2 * i] <= valid; i++)
		fend = bounds[2 * i + 1];
	return fend;
}

size_t seal_record_at(const size_t *bounds, size_t nrec, size_t from, size_t pos)
{
	size_t start = from;
	for (size_t i = 0; i < nrec && bounds[2 * i] <= pos; i++)
		start = bounds[2 * i + 1];
	return start;
}
