/*
 * batch.c - sett_batch: the keys, values and deletions one write commits
 * together (sett.h), and the accessor the write path and subscribers read
 * a batch's entries with (db_batch_entry, db_impl.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "db_impl.h"

int sett_batch_new(sett_batch **bp)
{
	*bp = calloc(1, sizeof(sett_batch));
	return *bp ? 0 : -ENOMEM;
}

void sett_batch_free(sett_batch *b)
{
	if (!b)
		return;
	buf_free(&b->data);
	free(b->ops);
	free(b);
}

void sett_batch_clear(sett_batch *b)
{
	b->data.n = 0;
	b->n = 0;
	b->user_bytes = 0;
}

size_t sett_batch_count(const sett_batch *b)
{
	return b->n;
}

size_t sett_batch_bytes(const sett_batch *b)
{
	return b->user_bytes;
}

static int batch_add(sett_batch *b, sett_val key, sett_val value, uint64_t expires_at,
		     uint8_t user_meta, int del, int ref)
{
	if (key.size > SETT_MAX_KEY_SIZE || value.size > SETT_MAX_VALUE_SIZE)
		return SETT_ETOOBIG;
	if ((key.size && !key.data) || (value.size && !value.data))
		return -EINVAL;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		batch_op *ops = realloc(b->ops, cap * sizeof *ops);
		if (!ops)
			return -ENOMEM;
		b->ops = ops;
		b->cap = cap;
	}
	batch_op *op = &b->ops[b->n];
	op->koff = b->data.n;
	op->klen = (uint32_t)key.size;
	int r = buf_append(&b->data, key.data, key.size);
	if (r)
		return r;
	op->voff = b->data.n;
	op->vlen = (uint32_t)value.size;
	op->vref = ref && value.size ? value.data : NULL;
	if (!op->vref && (r = buf_append(&b->data, value.data, value.size)))
		return r;
	op->expires_at = expires_at;
	op->user_meta = user_meta;
	op->del = (uint8_t)del;
	b->n++;
	b->user_bytes += key.size + value.size;
	return 0;
}

int sett_batch_set(sett_batch *b, sett_val key, sett_val value)
{
	return batch_add(b, key, value, 0, 0, 0, 0);
}

int sett_batch_set_ref(sett_batch *b, sett_val key, sett_val value)
{
	return batch_add(b, key, value, 0, 0, 0, 1);
}

int sett_batch_set_ex(sett_batch *b, sett_val key, sett_val value, uint64_t expires_at,
		      uint8_t user_meta)
{
	return batch_add(b, key, value, expires_at, user_meta, 0, 0);
}

int sett_batch_delete(sett_batch *b, sett_val key)
{
	sett_val none = { 0, NULL };
	return batch_add(b, key, none, 0, 0, 1, 0);
}

void db_batch_entry(const sett_batch *b, size_t i, slice *key, slice *value, int *del,
		    uint8_t *user_meta, uint64_t *expires_at)
{
	const batch_op *op = &b->ops[i];
	*key = slice_make(b->data.p + op->koff, op->klen);
	*value = slice_make(op->vref ? op->vref : b->data.p + op->voff, op->vlen);
	*del = op->del;
	*user_meta = op->user_meta;
	*expires_at = op->expires_at;
}
