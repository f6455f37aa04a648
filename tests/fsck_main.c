/*
 * fsck_main.c - fsck.settfs's checker linked into a test as
 * fsck_settfs_main(argc, argv).  Its state is global: run it in a forked
 * child, once per store.
 */
#define main fsck_settfs_main
#include "../tools/fsck_settfs.c"
