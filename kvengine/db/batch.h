/*
 * batch.h - the layout of a sett_batch (batch.c), for the write path that
 * turns one into log entries.  A batch is its keys and values packed in one
 * buffer plus an array of operations pointing into it.
 *
 * Thread safety: a batch belongs to its caller; none of this locks.
 */
#ifndef SETT_BATCH_H
#define SETT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "coding.h"
#include "sett.h"

typedef struct batch_op {
	size_t koff, voff;
	const uint8_t *vref; /* sett_batch_set_ref: the caller's value; NULL: at voff */
	uint32_t klen, vlen;
	uint64_t expires_at;
	uint8_t del;
	uint8_t user_meta;
} batch_op;

struct sett_batch {
	buf data;
	batch_op *ops;
	size_t n, cap;
	size_t user_bytes;
};

#endif
