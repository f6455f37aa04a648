/*
 * entry.c - encoding of log entries, value pointers and LSM value structs
 * (doc/FORMAT.md, "Log entry"; entry.h).
 *
 * The same log entry is the record of both the WAL and the value log, so
 * one decoder serves recovery, value reads and GC.  It trusts nothing: every
 * length is range-checked before it is used, and the checksum covers every
 * byte before it, so a flipped byte, a torn write or garbage yields 0 or
 * SETT_ECORRUPT, never an entry with wrong contents.
 */
#include "entry.h"

#include "sett.h"

#define META_KNOWN (META_DELETE | META_VALUE_POINTER | META_TXN | META_FIN_TXN)

/* Key lengths: internal keys carry an 8-byte version suffix. */
#define KEY_MIN 8u
#define KEY_MAX (SETT_MAX_KEY_SIZE + 8u)

static int meta_valid(uint8_t meta)
{
	if (meta & ~META_KNOWN)
		return 0;
	/* A batch's last entry is also part of the batch. */
	if ((meta & META_FIN_TXN) && !(meta & META_TXN))
		return 0;
	return 1;
}

static size_t header_len(const entry *e)
{
	return 2 + varint_len(e->key.n) + varint_len(e->value.n) + varint_len(e->expires_at);
}

size_t entry_encoded_len(const entry *e)
{
	return header_len(e) + e->key.n + e->value.n + ENTRY_CHECKSUM;
}

int entry_value_len(size_t total, size_t klen, uint64_t expires_at, size_t *vlen)
{
	size_t fixed = 2 + varint_len(klen) + varint_len(expires_at) + klen + ENTRY_CHECKSUM;
	/* the value's varint takes s bytes: at most one s fits */
	for (size_t s = 1; s <= VARINT_MAX && total >= fixed + s; s++)
		if (varint_len(total - fixed - s) == s) {
			*vlen = total - fixed - s;
			return 0;
		}
	return SETT_ECORRUPT;
}

size_t entry_encode_head(uint8_t *out, const entry *e)
{
	size_t n = 0;
	out[n++] = e->meta;
	out[n++] = e->user_meta;
	n += varint_put(out + n, e->key.n);
	n += varint_put(out + n, e->value.n);
	n += varint_put(out + n, e->expires_at);
	if (e->key.n)
		memcpy(out + n, e->key.p, e->key.n);
	return n + e->key.n;
}

size_t entry_encode(uint8_t *out, const entry *e)
{
	size_t n = entry_encode_head(out, e);
	if (e->value.n)
		memcpy(out + n, e->value.p, e->value.n);
	n += e->value.n;
	put_le64(out + n, sett_hash(out, n));
	return n + ENTRY_CHECKSUM;
}

int entry_append(buf *b, const entry *e)
{
	size_t len = entry_encoded_len(e);
	int r = buf_reserve(b, len);
	if (r)
		return r;
	b->n += entry_encode(b->p + b->n, e);
	return 0;
}

/*
 * One varint of a header: 1 on success, 0 if the input ends inside it,
 * SETT_ECORRUPT if it is longer than 10 bytes or overflows.
 */
static int header_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	size_t k = varint_get(*p, end, v);
	if (k) {
		*p += k;
		return 1;
	}
	return end - *p >= VARINT_MAX ? SETT_ECORRUPT : 0;
}

int entry_decode_header(const uint8_t *p, size_t n, entry *e, size_t *hlen, size_t *total)
{
	const uint8_t *q = p, *end = p + n;
	uint64_t klen, vlen, exp;
	int r;

	if (n < 2)
		return 0;
	if (!meta_valid(p[0]))
		return SETT_ECORRUPT;
	q += 2;
	if ((r = header_varint(&q, end, &klen)) != 1)
		return r;
	if (klen < KEY_MIN || klen > KEY_MAX)
		return SETT_ECORRUPT;
	if ((r = header_varint(&q, end, &vlen)) != 1)
		return r;
	if (vlen > SETT_MAX_VALUE_SIZE)
		return SETT_ECORRUPT;
	if ((r = header_varint(&q, end, &exp)) != 1)
		return r;

	e->meta = p[0];
	e->user_meta = p[1];
	e->expires_at = exp;
	e->key = slice_make(NULL, (size_t)klen);
	e->value = slice_make(NULL, (size_t)vlen);
	*hlen = (size_t)(q - p);
	*total = *hlen + (size_t)klen + (size_t)vlen + ENTRY_CHECKSUM;
	return 1;
}

uint64_t log_search_budget(uint64_t span)
{
	/* random bytes of a torn last value up to ~1.5 MiB stay below it */
	return 256 * span + ((uint64_t)1 << 30);
}

long entry_decode(const uint8_t *p, size_t n, entry *e)
{
	entry h;
	size_t hlen, total;
	int r = entry_decode_header(p, n, &h, &hlen, &total);
	if (r != 1)
		return r;
	if (total > n)
		return 0;
	size_t body = total - ENTRY_CHECKSUM;
	if (get_le64(p + body) != sett_hash(p, body))
		return SETT_ECORRUPT;
	h.key.p = p + hlen;
	h.value.p = p + hlen + h.key.n;
	*e = h;
	return (long)total;
}

void vptr_encode(uint8_t *out, const vptr *v)
{
	put_le32(out, v->fid);
	put_le32(out + 4, v->len);
	put_le32(out + 8, v->offset);
}

int vptr_decode(const uint8_t *p, size_t n, vptr *v)
{
	if (n < VPTR_SIZE)
		return SETT_ECORRUPT;
	v->fid = get_le32(p);
	v->len = get_le32(p + 4);
	v->offset = get_le32(p + 8);
	return 0;
}

size_t vstruct_encoded_len(const vstruct *v)
{
	return 2 + varint_len(v->expires_at) + v->data.n;
}

size_t vstruct_encode(uint8_t *out, const vstruct *v)
{
	size_t n = 0;
	out[n++] = v->meta;
	out[n++] = v->user_meta;
	n += varint_put(out + n, v->expires_at);
	if (v->data.n)
		memcpy(out + n, v->data.p, v->data.n);
	return n + v->data.n;
}

int vstruct_append(buf *b, const vstruct *v)
{
	size_t len = vstruct_encoded_len(v);
	int r = buf_reserve(b, len);
	if (r)
		return r;
	b->n += vstruct_encode(b->p + b->n, v);
	return 0;
}

int vstruct_decode(const uint8_t *p, size_t n, vstruct *v)
{
	uint64_t exp;
	if (n < 3 || (p[0] & ~META_KNOWN))
		return SETT_ECORRUPT;
	size_t k = varint_get(p + 2, p + n, &exp);
	if (!k)
		return SETT_ECORRUPT;
	size_t off = 2 + k;
	if ((p[0] & META_VALUE_POINTER) && n - off != VPTR_SIZE)
		return SETT_ECORRUPT;
	v->meta = p[0];
	v->user_meta = p[1];
	v->expires_at = exp;
	v->data = slice_make(p + off, n - off);
	return 0;
}

void log_header_encode(uint8_t *out, const char magic[8], uint32_t fid)
{
	memcpy(out, magic, 8);
	put_le32(out + 8, LOG_FORMAT_VERSION);
	put_le32(out + 12, fid);
	put_le64(out + 16, sett_hash(out, 16));
}

int log_header_decode(const uint8_t *p, size_t n, const char magic[8], uint32_t *fid)
{
	if (n < LOG_HEADER_SIZE)
		return SETT_ECORRUPT;
	if (memcmp(p, magic, 8) != 0)
		return SETT_EFORMAT;
	if (get_le64(p + 16) != sett_hash(p, 16))
		return SETT_ECORRUPT;
	if (get_le32(p + 8) != LOG_FORMAT_VERSION)
		return SETT_EFORMAT;
	*fid = get_le32(p + 12);
	return 0;
}
