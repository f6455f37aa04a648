/*
 * iter.h - the internal iterator interface and the merge iterator.
 *
 * Internal iterators walk (internal key, value struct) pairs in ikey_cmp
 * order, both ways.  Memtables, table blocks, tables, levels and the merge
 * of all of them implement it; the db's public iterator (sett_iter) sits on
 * top and hides versions, tombstones and expired entries.
 *
 * key() and value() are valid until the iterator moves.  After an error
 * valid() is 0 and error() returns it.
 *
 * Thread safety: an iterator belongs to one thread at a time; what it reads
 * (memtables, tables) may be shared (see their headers).
 */
#ifndef SETT_ITER_H
#define SETT_ITER_H

#include "coding.h"

typedef struct sit sit;

struct sit_ops {
	void (*seek)(sit *it, slice ikey);          /* first >= ikey */
	void (*seek_for_prev)(sit *it, slice ikey); /* last <= ikey */
	void (*first)(sit *it);
	void (*last)(sit *it);
	void (*next)(sit *it);
	void (*prev)(sit *it);
	int (*valid)(const sit *it);
	slice (*key)(const sit *it);
	slice (*value)(const sit *it);
	int (*error)(const sit *it);
	void (*free)(sit *it);
};

struct sit {
	const struct sit_ops *ops;
};

static inline void sit_seek(sit *it, slice k) { it->ops->seek(it, k); }
static inline void sit_seek_for_prev(sit *it, slice k) { it->ops->seek_for_prev(it, k); }
static inline void sit_first(sit *it) { it->ops->first(it); }
static inline void sit_last(sit *it) { it->ops->last(it); }
static inline void sit_next(sit *it) { it->ops->next(it); }
static inline void sit_prev(sit *it) { it->ops->prev(it); }
static inline int sit_valid(const sit *it) { return it->ops->valid(it); }
static inline slice sit_key(const sit *it) { return it->ops->key(it); }
static inline slice sit_value(const sit *it) { return it->ops->value(it); }
static inline int sit_error(const sit *it) { return it->ops->error(it); }
static inline void sit_free(sit *it) { if (it) it->ops->free(it); }

/*
 * Merges n children (ownership passes to the merge iterator).  Children are
 * given newest source first: when two children hold the same internal key,
 * the entry of the lower-numbered child is returned and the others are
 * skipped.  Works in both directions, including changes of direction.
 */
sit *merge_iter_new(sit **children, int n);
/*
 * The same, but every child's entry is returned: the entries of one
 * internal key come one after another, lowest-numbered child first.
 * Forward only (first, seek, next).
 */
sit *merge_iter_new_all(sit **children, int n);

/* An iterator over nothing. */
sit *empty_iter_new(int error);

#endif
