/*
 * stream.h - internal pieces of the parallel ordered scan (stream.c) that
 * backup.c shares.
 */
#ifndef SETT_STREAM_H
#define SETT_STREAM_H

#include "sett.h"

/*
 * sett_stream with a read version the caller already registered as a
 * reader (db_view_get_reader), so that it can pin it afterwards.
 */
int stream_run(sett_db *db, const sett_stream_options *o, uint64_t rv, sett_stream_fn fn,
	       void *arg);

#endif
