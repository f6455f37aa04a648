/*
 * status.h - what the daemon answers on its control path (control.h):
 * `settfs status MNT` (live figures of the mount), `sett info STORE` of a
 * mounted store, and the root directory's "settfs.stats" xattr.
 */
#ifndef SETTFS_STATUS_H
#define SETTFS_STATUS_H

#include <stdio.h>
#include <sys/types.h>

#include "control.h"
#include "settfs.h"

struct sfs_wire;
typedef struct sfs_control sfs_control;

/*
 * Starts the control server of a mounted store (the daemon, after the
 * store is open): `argv` is the daemon's command line (its -o options are
 * shown).  A server that cannot listen is reported on stderr; the mount
 * goes on without it.  NULL only without memory.
 */
sfs_control *sfs_control_start(settfs *fs, const struct sfs_wire *wire, const char *store,
			       const char *mountpoint, int argc, char **argv);
/* Stops the server (before the store is closed). */
void sfs_control_stop(sfs_control *c);
/*
 * getxattr of "settfs.stats" on the root by user `uid`: the status text
 * (size 0: its length); -EACCES for others than root and the daemon's user.
 */
ssize_t sfs_control_xattr(sfs_control *c, uid_t uid, char *buf, size_t size);

/* The records of a CTL_STATUS reply as text (json 0) or JSON (json 1). */
int sfs_status_print(const uint8_t *body, size_t n, int json, FILE *out);

/* settfs status [--json] MOUNTPOINT: exit 0, 1 (usage, not a settfs mount), 2 (failed). */
int sfs_status_command(int argc, char **argv);

/* snapctl.c: the snapshot requests (CTL_SNAP_*) of the daemon's handler */
int sfs_snapctl_handle(settfs *fs, const ctl_header *h, const uint8_t *body, size_t n,
		       ctl_buf *reply);
/* settfs snapshot create|list|delete ...; settfs rollback STORE NAME: exit 0, 1, 2 */
int sfs_snapshot_command(int argc, char **argv);
int sfs_rollback_command(int argc, char **argv);

#endif
