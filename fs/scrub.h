/*
 * scrub.h - online scrub of a mounted store: `settfs scrub MNT`.
 *
 * The daemon runs sett_scrub (every checksum of the store, read from the
 * disk at a bounded rate) on a thread of its own while the filesystem
 * serves, one scrub at a time, and names the files each fault hits: a
 * damaged key's inode (chunk, overlay, xattr, inode and orphan keys carry
 * it; a table block's key range names every inode in it that a directory
 * entry names) and that inode's path (a scan of the directory entries of
 * the live filesystem, then of each snapshot).
 * Requests CTL_SCRUB (start) and CTL_SCRUB_STATUS on the control path
 * (control.h; records in doc/FORMAT.md, "Control protocol").
 */
#ifndef SETTFS_SCRUB_H
#define SETTFS_SCRUB_H

#include <stdint.h>
#include <stdio.h>

#include "control.h"
#include "settfs.h"

#define SFS_SCRUB_RATE (64ull << 20) /* default bytes per second */
#define SFS_SCRUB_MAX_FAULTS 1000    /* faults kept (and named) per scrub */

typedef struct sfs_scrub sfs_scrub;

/* The scrub state of a mount (NULL: no memory).  free stops a running scrub. */
sfs_scrub *sfs_scrub_new(settfs *fs);
void sfs_scrub_free(sfs_scrub *s);

/* Answers CTL_SCRUB (request: optional "rate", bytes/s, 0 no limit) and
 * CTL_SCRUB_STATUS; as a ctl_handler's result (-EBUSY: one is running). */
int sfs_scrub_request(sfs_scrub *s, const ctl_header *h, const uint8_t *body, size_t n,
		      ctl_buf *reply);

/* The scrub's state, progress and first faults as records "scrub.*" of
 * a CTL_STATUS reply (`settfs status`). */
void sfs_scrub_summary(sfs_scrub *s, ctl_buf *b);

/*
 * Prints a CTL_SCRUB_STATUS reply (paths under `mountpoint`); *state gets
 * what the scrub is at: 0 clean, 1 damage found, 2 failed or stopped, 3
 * running, 4 none run yet.  0, or -EPROTO for a malformed reply.
 */
int sfs_scrub_print(const uint8_t *body, size_t n, const char *mountpoint, FILE *out, int *state);

/* settfs scrub [--no-wait] [--rate MB/s] [--status] MOUNTPOINT:
 * exit 0 clean, 1 damage found, 2 failed (or refused, or not a mount). */
int sfs_scrub_command(int argc, char **argv);

#endif
