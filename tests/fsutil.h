/*
 * fsutil.h - helpers of the suites that run the filesystem core
 * (settfs.h).  Each acts as root and fails the test on an error.
 */
#ifndef SETTFS_FSUTIL_H
#define SETTFS_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "settfs.h"

/* Makes directory parent/name (mode 0755); its inode. */
uint64_t tu_mkdir(settfs *fs, uint64_t parent, const char *name);
/* Writes the n bytes at data as the whole content of parent/name (a file
 * of mode 0644 made if absent, else truncated first); its inode. */
uint64_t tu_put_file(settfs *fs, uint64_t parent, const char *name, const void *data, size_t n);

#endif
