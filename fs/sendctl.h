/*
 * sendctl.h - `settfs send`, `settfs receive` and the daemon's side of a
 * send (sendctl.c).
 */
#ifndef SETTFS_SENDCTL_H
#define SETTFS_SENDCTL_H

#include "control.h"
#include "settfs.h"

/* CTL_SEND: writes the stream to h->fd, then fills the reply. */
int sfs_sendctl_handle(settfs *fs, const ctl_header *h, const uint8_t *body, size_t n,
		       ctl_buf *reply);
/* settfs send [-v] [-i FROM] MNT NAME: exit 0, 1 (usage, not a mount), 2 (failed). */
int sfs_send_command(int argc, char **argv);
/* settfs receive [-v] STORE: exit 0, 1 (usage), 2 (refused or failed). */
int sfs_receive_command(int argc, char **argv);

#endif
