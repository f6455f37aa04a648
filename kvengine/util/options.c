/* options.c - option defaults and error strings. */
#include <string.h>

#include "sett.h"

void sett_options_init(sett_options *o)
{
	memset(o, 0, sizeof *o);
	o->create_if_missing = 1;
	o->value_threshold = 1024;
	o->mem_table_size = 64u << 20;
	o->num_memtables = 5;
	o->num_level_zero_tables = 5;
	o->num_level_zero_tables_stall = 15;
	o->base_table_size = 2u << 20;
	o->base_level_size = 10u << 20;
	o->level_size_multiplier = 10;
	o->num_compactors = 2;
	o->block_size = 4096;
	o->compression = SETT_COMPRESS_NONE;
	o->zstd_level = 1;
	o->bloom_false_positive = 0.01;
	o->block_cache_size = 64u << 20;
	o->value_log_file_size = 256u << 20;
	o->value_log_max_entries = 1000000;
	o->gc_discard_ratio = 0.5;
	o->gc_interval_ms = 10000;
	o->gc_garbage_share = 0.15;
	o->disk_reserve = -1;
	o->reclaim_below = -1;
	o->verify_value_checksum = 1;
	o->key_rotation_days = 30;
}

uint64_t sett_default_reserve(uint64_t disk_bytes)
{
	uint64_t r = disk_bytes / 50;
	if (r < (32u << 20))
		r = 32u << 20;
	if (r > (1u << 30))
		r = 1u << 30;
	if (r > disk_bytes / 8)
		r = disk_bytes / 8;
	return r;
}

void sett_iter_options_init(sett_iter_options *o)
{
	memset(o, 0, sizeof *o);
}

const char *sett_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case SETT_ENOTFOUND:
		return "key not found";
	case SETT_ECORRUPT:
		return "data corruption detected (checksum or structure mismatch)";
	case SETT_ELOCKED:
		return "store is locked by another process";
	case SETT_ETOOBIG:
		return "batch, key or value too big";
	case SETT_EFORMAT:
		return "unknown file format or version";
	case SETT_ECLOSED:
		return "database is closed";
	case SETT_ENOREWRITE:
		return "value-log GC found no file to rewrite";
	case SETT_ECONFLICT:
		return "transaction conflict: a key it read was changed since (retry it)";
	case SETT_ETXNTOOBIG:
		return "transaction too big for one commit";
	case SETT_ESUBBEHIND:
		return "subscriber fell behind and was cut off";
	case SETT_ENOHISTORY:
		return "the versions asked for are no longer kept (no pin at or below them)";
	case SETT_EKEY:
		return "wrong or missing master key for an encrypted store";
	default:
		if (err < 0 && err > -4096)
			return strerror(-err);
		return "unknown error";
	}
}
