/*
 * oracle.h - conflict detection for transactions (Badger's oracle).
 *
 * The oracle remembers, for every key written by a commit that an open
 * transaction may still conflict with, the fingerprint of the key (its
 * sett_hash) and the newest commit version that wrote it.  A read-write
 * transaction conflicts when a key it read has a recorded version newer
 * than its read version.
 *
 * The writer thread alone checks and records (in commit order, while it
 * assigns versions), so check + record is atomic with respect to other
 * commits.  Records are kept in commit order in a queue as well as in a
 * hash table; they are dropped from the front of the queue once their
 * version is at or below the watermark of open read versions
 * (db_oldest_read_version), so the oracle holds only what an open
 * transaction can still conflict with.
 *
 * Commits made while no read-write transaction is open are not recorded;
 * the highest such version is kept instead (unrecorded), and a transaction
 * whose read version is below it conflicts.  That is exact whatever the
 * interleaving of a transaction's begin with such a commit, and costs a
 * plain writer nothing while no transaction runs.
 */
#ifndef SETT_ORACLE_H
#define SETT_ORACLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orc_rec {
	uint64_t fp;
	uint64_t version;
} orc_rec;

typedef struct oracle {
	pthread_mutex_t mu;  /* the tables (the writer changes, stats read) */
	orc_rec *slots;      /* open addressing, fp 0 = empty */
	size_t cap, n;       /* cap: a power of two */
	orc_rec *queue;      /* ring, commit order */
	size_t qcap, qhead, qn;
	uint64_t unrecorded; /* highest commit version not recorded (writer) */
	int open_rw;         /* atomic: open read-write transactions */
	uint64_t discard_version; /* managed mode (atomic) */
} oracle;

int oracle_init(oracle *o);
void oracle_destroy(oracle *o);

/* Writer: must commits be recorded now (a read-write transaction is open)? */
int oracle_recording(oracle *o, int managed);
/* Writer: 1 if a transaction with these reads at read_version conflicts. */
int oracle_conflicts(oracle *o, const uint64_t *reads, size_t nreads, uint64_t read_version);
/* Writer: records that a commit at `version` wrote the key with fingerprint fp. */
int oracle_record(oracle *o, uint64_t fp, uint64_t version);
/* Writer: notes a commit at version that was not recorded. */
void oracle_skip(oracle *o, uint64_t version);
/* Drops the records at or below the watermark. */
void oracle_prune(oracle *o, uint64_t watermark);
size_t oracle_count(oracle *o);
/* Writer: are records held (is there anything to prune)? */
static inline int oracle_held(const oracle *o)
{
	return o->qn != 0;
}

#endif
