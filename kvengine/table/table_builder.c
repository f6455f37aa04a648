/*
 * table_builder.c - writes a sorted table (NNNNNN.sst) from entries given
 * in ikey_cmp order: data blocks as they fill, then the bloom filter, the
 * index, the properties and the footer (doc/FORMAT.md, "Sorted table").
 *
 * Data blocks are prefix-compressed with a restart point every
 * TABLE_RESTART_INTERVAL entries, so a reader binary-searches the restart
 * points and decodes at most that many entries.  A block is zstd-compressed
 * when the table asks for it and it saves at least an eighth; otherwise it
 * is stored raw, so readers never pay decompression for nothing.
 *
 * The user-key hashes for the bloom filter are kept in memory (8 bytes per
 * distinct user key) and the filter is sized from their count at finish.
 *
 * A table with no entries is refused (finish returns -EINVAL and removes
 * the file): an empty table has no smallest or largest key to place it on a
 * level, and the caller has nothing to record.
 *
 * Thread safety: a builder belongs to one thread.
 */
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <zstd.h>

#include "bloom.h"
#include "fileio.h"
#include "ikey.h"
#include "sett.h"
#include "table_format.h"

struct table_builder {
	char *path;
	sfile *f;
	table_options o;
	uint64_t off; /* bytes written so far */
	int err;      /* sticky: the first failure */

	buf block;        /* entries of the open data block */
	buf restarts;     /* its restart offsets, u32 LE each */
	int since_restart;
	buf last_key;     /* last ikey added */
	uint64_t block_entries;

	buf index;        /* encoded index block entries */
	uint64_t *hashes; /* sett_hash of each distinct user key */
	size_t nhashes, caphashes;

	buf smallest;
	uint64_t count, nblocks, raw_bytes;
	uint64_t min_version, max_version;

	buf out;          /* scratch: a block with its trailer */
	ZSTD_CCtx *zc;
	uint8_t salt[CIPHER_SALT_SIZE]; /* with o.cipher.key: this table's */
};

int table_builder_new(const char *path, const table_options *o, table_builder **bp)
{
	table_builder *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->o = *o;
	if (b->o.block_size == 0)
		b->o.block_size = 4096;
	if (!(b->o.bloom_fp > 0.0 && b->o.bloom_fp < 1.0))
		b->o.bloom_fp = 0.01;
	b->min_version = UINT64_MAX;
	b->path = strdup(path);
	if (!b->path) {
		free(b);
		return -ENOMEM;
	}
	if (b->o.compression == SETT_COMPRESS_ZSTD) {
		b->zc = ZSTD_createCCtx();
		if (!b->zc) {
			free(b->path);
			free(b);
			return -ENOMEM;
		}
	} else if (b->o.compression != SETT_COMPRESS_NONE) {
		free(b->path);
		free(b);
		return -EINVAL;
	}
	/* a new salt for every table: no (salt, offset) is sealed twice */
	int r = cipher_on(&b->o.cipher) ? crypt_random(b->salt, sizeof b->salt) : 0;
	if (!r)
		r = sfile_open(path, O_RDWR | O_CREAT | O_EXCL, &b->f);
	if (r) {
		ZSTD_freeCCtx(b->zc);
		free(b->path);
		free(b);
		return r;
	}
	*bp = b;
	return 0;
}

static void builder_free(table_builder *b)
{
	buf_free(&b->block);
	buf_free(&b->restarts);
	buf_free(&b->last_key);
	buf_free(&b->index);
	buf_free(&b->smallest);
	buf_free(&b->out);
	free(b->hashes);
	ZSTD_freeCCtx(b->zc);
	free(b->path);
	free(b);
}

static int put_uvarint(buf *b, uint64_t v)
{
	uint8_t tmp[VARINT_MAX];
	return buf_append(b, tmp, varint_put(tmp, v));
}

static int put_u32(buf *b, uint32_t v)
{
	uint8_t tmp[4];
	put_le32(tmp, v);
	return buf_append(b, tmp, 4);
}

/*
 * Writes `raw` as one block (compressed if worthwhile and allowed) at the
 * end of the file; *size gets its on-disk size including the trailer.
 */
static int write_block(table_builder *b, slice raw, int may_compress, uint64_t *size)
{
	/* encrypted: room for the sealed record's length before the payload */
	int enc = cipher_on(&b->o.cipher);
	size_t pre = enc ? CIPHER_REC_HEAD : 0;
	b->out.n = 0;
	uint8_t type = TABLE_BLOCK_RAW;
	int r;
	if ((r = buf_reserve(&b->out, pre)))
		return r;
	b->out.n = pre;
	if (may_compress && b->zc) {
		size_t bound = ZSTD_compressBound(raw.n);
		if ((r = buf_reserve(&b->out, bound + TABLE_ENC_TRAILER)))
			return r;
		size_t zn = ZSTD_compressCCtx(b->zc, b->out.p + pre, bound, raw.p, raw.n,
					      b->o.zstd_level);
		if (!ZSTD_isError(zn) && zn <= raw.n - raw.n / 8) {
			b->out.n = pre + zn;
			type = TABLE_BLOCK_ZSTD;
		}
	}
	if (type == TABLE_BLOCK_RAW && (r = buf_append(&b->out, raw.p, raw.n)))
		return r;
	if ((r = buf_reserve(&b->out, TABLE_ENC_TRAILER)))
		return r;
	size_t n = b->out.n;
	b->out.p[n] = type;
	if (enc) {
		if ((r = cipher_rec_seal(b->o.cipher.key, b->salt, b->off, b->out.p + pre,
					 n - pre + 1, b->out.p)))
			return r;
		b->out.n = n + 1 + CRYPT_TAG_SIZE;
	} else {
		put_le64(b->out.p + n + 1, table_block_checksum(b->out.p, n));
		b->out.n = n + TABLE_BLOCK_TRAILER;
	}
	if ((r = sfile_pwrite(b->f, b->out.p, b->out.n, b->off)))
		return r;
	b->off += b->out.n;
	*size = b->out.n;
	return 0;
}

static int flush_data_block(table_builder *b)
{
	if (b->block_entries == 0)
		return 0;
	int r;
	if ((r = buf_append(&b->block, b->restarts.p, b->restarts.n)) ||
	    (r = put_u32(&b->block, (uint32_t)(b->restarts.n / 4))))
		return r;
	uint64_t off = b->off, size;
	if ((r = write_block(b, slice_make(b->block.p, b->block.n), 1, &size)))
		return r;
	b->raw_bytes += b->block.n;
	b->nblocks++;
	/* index entry: the block's last key, its offset and on-disk size */
	if ((r = put_uvarint(&b->index, b->last_key.n)) ||
	    (r = buf_append(&b->index, b->last_key.p, b->last_key.n)) ||
	    (r = put_uvarint(&b->index, off)) || (r = put_uvarint(&b->index, size)))
		return r;
	b->block.n = 0;
	b->restarts.n = 0;
	b->since_restart = 0;
	b->block_entries = 0;
	return 0;
}

static int add_hash(table_builder *b, uint64_t h)
{
	if (b->nhashes == b->caphashes) {
		size_t cap = b->caphashes ? b->caphashes * 2 : 1024;
		uint64_t *p = realloc(b->hashes, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		b->hashes = p;
		b->caphashes = cap;
	}
	b->hashes[b->nhashes++] = h;
	return 0;
}

int table_builder_add(table_builder *b, slice ikey, slice vstruct)
{
	if (b->err)
		return b->err;
	if (ikey.n < IKEY_SUFFIX || ikey.n > SETT_MAX_KEY_SIZE + IKEY_SUFFIX ||
	    vstruct.n > TABLE_MAX_BLOCK / 2)
		return -EINVAL;
	slice last = slice_make(b->last_key.p, b->last_key.n);
	if (b->count && ikey_cmp(last, ikey) >= 0)
		return -EINVAL;
	int r = 0;

	slice uk = ikey_user(ikey);
	if (!b->count || slice_cmp(ikey_user(last), uk) != 0)
		r = add_hash(b, sett_hash(uk.p, uk.n));

	size_t shared = 0;
	if (!r && b->since_restart == TABLE_RESTART_INTERVAL)
		b->since_restart = 0;
	if (!r && b->since_restart == 0) {
		r = put_u32(&b->restarts, (uint32_t)b->block.n);
	} else if (!r) {
		size_t max = last.n < ikey.n ? last.n : ikey.n;
		while (shared < max && last.p[shared] == ikey.p[shared])
			shared++;
	}
	if (!r && !(r = put_uvarint(&b->block, shared)) &&
	    !(r = put_uvarint(&b->block, ikey.n - shared)) &&
	    !(r = put_uvarint(&b->block, vstruct.n)) &&
	    !(r = buf_append(&b->block, ikey.p + shared, ikey.n - shared)))
		r = buf_append(&b->block, vstruct.p, vstruct.n);
	if (!r && b->count == 0)
		r = buf_append(&b->smallest, ikey.p, ikey.n);
	if (!r) {
		b->last_key.n = 0;
		r = buf_append(&b->last_key, ikey.p, ikey.n);
	}
	if (r)
		return b->err = r;
	b->since_restart++;
	b->block_entries++;
	b->count++;
	uint64_t v = ikey_version(ikey);
	if (v > b->max_version)
		b->max_version = v;
	if (v < b->min_version)
		b->min_version = v;

	if (b->block.n + b->restarts.n + 4 >= b->o.block_size && (r = flush_data_block(b)))
		return b->err = r;
	return 0;
}

uint64_t table_builder_size(const table_builder *b)
{
	return b->off + b->block.n + b->restarts.n + b->index.n + b->nhashes * 10 / 8 +
	       b->smallest.n + b->last_key.n + 64 + TABLE_FOOTER_SIZE;
}

uint64_t table_builder_count(const table_builder *b)
{
	return b->count;
}

static int write_meta(table_builder *b, slice raw, uint64_t *off, uint64_t *size)
{
	*off = b->off;
	return write_block(b, raw, 0, size);
}

static int finish_file(table_builder *b)
{
	int r;
	uint64_t bloom_off, bloom_size, index_off, index_size, props_off, props_size;
	buf meta = { 0 };
	if ((r = flush_data_block(b)))
		goto out;

	if ((r = bloom_build(b->hashes, b->nhashes, b->o.bloom_fp, &meta)) ||
	    (r = write_meta(b, slice_make(meta.p, meta.n), &bloom_off, &bloom_size)))
		goto out;
	if ((r = write_meta(b, slice_make(b->index.p, b->index.n), &index_off, &index_size)))
		goto out;

	meta.n = 0;
	uint8_t comp = (uint8_t)b->o.compression;
	if ((r = put_uvarint(&meta, b->count)) || (r = put_uvarint(&meta, b->nblocks)) ||
	    (r = put_uvarint(&meta, b->min_version)) ||
	    (r = put_uvarint(&meta, b->max_version)) ||
	    (r = put_uvarint(&meta, b->raw_bytes)) || (r = buf_append(&meta, &comp, 1)) ||
	    (r = put_uvarint(&meta, b->smallest.n)) ||
	    (r = buf_append(&meta, b->smallest.p, b->smallest.n)) ||
	    (r = put_uvarint(&meta, b->last_key.n)) ||
	    (r = buf_append(&meta, b->last_key.p, b->last_key.n)))
		goto out;
	if ((r = write_meta(b, slice_make(meta.p, meta.n), &props_off, &props_size)))
		goto out;

	uint8_t foot[TABLE_ENC_FOOTER_SIZE];
	uint64_t fields[6] = { bloom_off, bloom_size, index_off, index_size, props_off, props_size };
	for (int i = 0; i < 6; i++)
		put_le64(foot + 8 * i, fields[i]);
	put_le32(foot + 48, TABLE_FORMAT_VERSION);
	size_t hashed = TABLE_FOOTER_FIELDS;
	if (cipher_on(&b->o.cipher)) {
		if ((r = cipher_head_put(&b->o.cipher, foot, TABLE_FOOTER_FIELDS, b->salt)))
			goto out;
		hashed = TABLE_ENC_FOOTER_HASH;
	}
	put_le64(foot + hashed, sett_hash(foot, hashed));
	memcpy(foot + hashed + 8, hashed == TABLE_FOOTER_FIELDS ? TABLE_MAGIC : TABLE_ENC_MAGIC, 8);
	if ((r = sfile_pwrite(b->f, foot, hashed + 16, b->off)))
		goto out;
	b->off += hashed + 16;
	r = sfile_sync(b->f);
out:
	buf_free(&meta);
	return r;
}

/*
 * Consumes b whatever the outcome.  On any failure (including an empty
 * table, -EINVAL) the partial file is removed.
 */
int table_builder_finish(table_builder *b)
{
	int r = b->err;
	if (!r && b->count == 0)
		r = -EINVAL;
	if (!r)
		r = finish_file(b);
	int cr = sfile_close(b->f);
	if (!r)
		r = cr;
	if (!r) {
		/* make the new name durable too */
		char *dir = strdup(b->path);
		r = dir ? sio_sync_dir(dirname(dir)) : -ENOMEM;
		free(dir);
	}
	if (r)
		sio_unlink(b->path);
	builder_free(b);
	return r;
}

void table_builder_abandon(table_builder *b)
{
	if (!b)
		return;
	sfile_close(b->f);
	sio_unlink(b->path);
	builder_free(b);
}
