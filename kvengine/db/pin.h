/*
 * pin.h - pinned versions: named, persistent snapshots of the store.
 *
 * A pin keeps what a read at its version sees: compaction keeps, for each
 * key, the newest version at or below every pin (and the tombstones that
 * hide older ones), and value-log GC leaves every file that holds a value
 * some pin sees.  Pins are marks in the MANIFEST (manifest.h), so they
 * survive restarts and MANIFEST rewrites.
 *
 * Thread safety: all functions may be called from any thread; the pin set
 * has its own mutex, never held across I/O, and taken after db->mu when
 * both are held.
 */
#ifndef SETT_PIN_H
#define SETT_PIN_H

#include <stddef.h>
#include <stdint.h>

struct sett_db;

/* Loads the pins the MANIFEST records (at open) / frees them (at close). */
int pins_open(struct sett_db *db);
void pins_close(struct sett_db *db);

/*
 * The distinct pinned versions below `below`, newest first (malloc'ed;
 * NULL and 0 when there is none).  A compaction takes them with its
 * discard point.
 */
int pin_points(struct sett_db *db, uint64_t below, uint64_t **pts, size_t *n);
/*
 * The rule by which compactions and flushes drop old versions: the discard
 * point D and the pins below it (pin_points(D), newest first) cut a key's
 * versions <= D into buckets - bucket b holds the versions pins[b-1] (b = 0:
 * D) sees and pins[b] does not - and of each bucket only the newest is read
 * by anyone.  Returns the bucket of version `ver` (<= D).
 */
size_t pin_bucket(const uint64_t *pins, size_t npins, uint64_t ver);

/* A counter that grows with every pin created. */
uint64_t pin_generation(struct sett_db *db);
/*
 * Whether a pin created after generation `gen` pins a version below
 * `below`: GC, which measured a file's liveness without that pin, must
 * then not delete the file.
 */
int pin_created_since(struct sett_db *db, uint64_t gen, uint64_t below);

#endif
