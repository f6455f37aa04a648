/*
 * stream.h - internal pieces of the parallel ordered scan (stream.c) that
 * backup.c shares.
 *
 * Thread safety: as sett_stream (sett.h): the scan runs on its own worker
 * threads and calls the caller's callback from one thread at a time.
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
