/*
 * memtable.h - the in-memory sorted table: a skiplist in an arena.
 *
 * Keys are internal keys (ikey.h), values are LSM value structs (entry.h).
 * One writer inserts; any number of readers and iterators run concurrently
 * without locks (nodes are published with release stores and never freed
 * before the memtable itself).  Inserting an ikey that is already present
 * replaces its value pointer (a later write of the same version wins).
 *
 * Reference counted: the db, readers and iterators each hold a reference;
 * the arena is freed with the last one.
 *
 * Thread safety: one writer (the write path, or a transaction's own
 * memtable's owner), any number of concurrent readers, as above.
 */
#ifndef SETT_MEMTABLE_H
#define SETT_MEMTABLE_H

#include "coding.h"
#include "iter.h"

typedef struct memtable memtable;

int memtable_new(memtable **mtp);
void memtable_ref(memtable *mt);
void memtable_unref(memtable *mt);

/* Writer only. */
int memtable_put(memtable *mt, slice ikey, slice vstruct);

/* Bytes of memory used (arena), for the flush decision. */
size_t memtable_bytes(const memtable *mt);
size_t memtable_count(const memtable *mt);
/* Entries put in front of an older version of their user key. */
size_t memtable_shadowed(const memtable *mt);

/*
 * Finds the newest version <= read_version of ukey.  Returns 1 and fills
 * *version and *vs (pointing into the arena; valid while the caller holds a
 * reference) if found, 0 if not.
 */
int memtable_get(memtable *mt, slice ukey, uint64_t read_version, uint64_t *version,
		 slice *vs);

/* An iterator over all entries (holds a reference to mt). */
sit *memtable_iter_new(memtable *mt);

/* The largest version put so far (any thread). */
uint64_t memtable_max_version(const memtable *mt);

#endif
