/*
 * drop.h - prefix drops (sett_drop_prefix, sett_drop_all): a range
 * tombstone over every key with a prefix, at a version.
 *
 * A drop (P, V) hides, from every read at a version > V, each entry whose
 * key starts with P and whose version is <= V; reads at V or below (older
 * iterators, pins) still see them.  It is a mark in the MANIFEST (op 6)
 * until no table can hold an entry it hides (op 7).  Compaction drops the
 * entries it hides once no reader or pin below V can see them; whole
 * tables inside P are dropped at once when nothing older reads them.
 *
 * Thread safety: any thread.  The marks are under a read-write lock;
 * drops_hide() is lock-free while the store has no drop.
 */
#ifndef SETT_DROP_H
#define SETT_DROP_H

#include <stddef.h>
#include <stdint.h>

#include "coding.h"

struct sett_db;

int drops_open(struct sett_db *db);
void drops_close(struct sett_db *db);

/*
 * Whether a read at rv must not see the entry (ukey, ver); *v (if not
 * NULL) is the version of the drop that hides it.
 */
int drops_hide(struct sett_db *db, slice ukey, uint64_t ver, uint64_t rv, uint64_t *v);

/*
 * For compaction with discard point D and pins (newest first): 1 when the
 * entry is hidden by a drop no reader or pin can see past (V <= D and no
 * pin in [ver, V]): it can go; 2 when it is hidden but must stay.
 */
int drops_compact(struct sett_db *db, slice ukey, uint64_t ver, uint64_t D,
		  const uint64_t *pins, size_t npins);
/*
 * Before installing a compaction that kept hidden entries (2 above) in new
 * tables, or that started before a drop (drops_generation() changed since)
 * and so may have kept entries it hides.
 */
void drops_note_kept(struct sett_db *db);
uint64_t drops_generation(struct sett_db *db);
/* Retires the drops no table can hold an entry of any more (after a
 * compaction is installed). */
void drops_maybe_retire(struct sett_db *db);

#endif
