/*
 * txn.h - transactions (sett_txn_*), internals shared with db_iter.c.
 *
 * A transaction buffers its writes in a private memtable, at its read
 * version: a point read looks there first, and an iterator merges that
 * memtable in front of the store (the buffered entry hides the store's
 * versions of the same key, a buffered delete hides the key).  The commit
 * turns the memtable into a batch and hands it to the writer thread with
 * the fingerprints of the keys read, for the oracle's check (oracle.h).
 */
#ifndef SETT_TXN_H
#define SETT_TXN_H

#include "db_impl.h"

/* An iterator at read_version over the store, merged with `pending` (taken
 * over; may be NULL) in front; `txn` (may be NULL) is told each key it yields
 * (txn_note_read) and when it is freed (txn_iter_closed). */
int db_iter_new_ex(sett_db *db, const sett_iter_options *o, uint64_t read_version, sit *pending,
		   sett_txn *txn, sett_iter **itp);
void txn_note_read(sett_txn *txn, slice key);
void txn_iter_closed(sett_txn *txn);

#endif
