/*
 * fsck_main.c - fsck.settfs's checker linked into a test as
 * fsck_settfs_main(argc, argv), so that a test can run it in a forked child
 * (its state is global) without an exec per store.
 */
#define main fsck_settfs_main
#include "../tools/fsck_settfs.c"
