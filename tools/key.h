/*
 * key.h - the master key of an encrypted store as every program takes it:
 * a key file (32 raw bytes or 64 hex digits, sett_key_file_read) or a
 * passphrase file (its first line; "-" is standard input, /dev/fd/N a
 * descriptor), never a command-line argument.
 *
 * A key or passphrase file that is a regular file must be accessible by
 * its owner only: one that group or others may read, write or run is
 * refused, as ssh(1) refuses such a private key.  The material lives in
 * locked memory (not swapped) and is wiped by key_wipe.
 */
#ifndef SETTFS_KEY_H
#define SETTFS_KEY_H

#include <stdint.h>

#include "sett.h"

typedef struct key_material {
	uint8_t key[32];
	char pass[1024];
	int has_key, has_pass;
} key_material;

/*
 * Reads `key_file` or `pass_file` (either may be NULL; not both set) into
 * *k, which must stay where it is until key_wipe.  0, or -1 after a message
 * "PROG: FILE: why" on stderr.
 */
int key_load(const char *prog, const char *key_file, const char *pass_file, key_material *k);
/* Gives the engine options k's key or passphrase (nothing if k holds none). */
void key_apply(const key_material *k, sett_options *o);
/* key_load, then key_apply to o. */
int key_load_options(const char *prog, const char *key_file, const char *pass_file,
		     key_material *k, sett_options *o);
/*
 * Takes argv[*i] if it is --key-file F or --passphrase-file F with F after
 * it: F goes to *key_file or *pass_file, *i to F's index, and it returns
 * 1; anything else leaves all as it is and returns 0.
 */
int key_arg(int argc, char **argv, int *i, const char **key_file, const char **pass_file);
/* Locks k's memory again in a forked child (locks are not inherited). */
void key_relock(key_material *k);
/* Wipes and unlocks k. */
void key_wipe(key_material *k);

/* What to say after `err`, an open of `store` with (has_key) or without a
 * key failed with SETT_EKEY or -EKEYREJECTED: one line, no newline. */
const char *key_refused(int has_key);

#endif
