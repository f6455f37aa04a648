/*
 * mkfs_settfs.c - mkfs.settfs: create a settfs filesystem in a store.
 *
 *   mkfs.settfs [-f] [-c CHUNK_SIZE] [-u UID] [-g GID] STORE
 *
 * Writes the superblock, the inode counter and the root directory.  A
 * missing or empty directory gets a new store.  An existing store is
 * refused unless -f, which erases its keys; a non-empty directory that
 * holds no store is refused unless -f, which puts the store among what is
 * there (nothing in it is deleted).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settfs.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: mkfs.settfs [-f] [-c CHUNK_SIZE] [-u UID] [-g GID] STORE\n"
		     "  -f   erase an existing store, or use a non-empty directory\n"
		     "  -c   data chunk size in bytes, a power of two in 4096..1048576 (65536)\n"
		     "  -u, -g  owner of the root directory (the caller)\n");
}

int main(int argc, char **argv)
{
	settfs_options o;
	settfs_options_init(&o);
	settfs_ctx ctx = { (uint32_t)getuid(), (uint32_t)getgid(), NULL, 0, 0 };
	int force = 0, c;
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("mkfs.settfs %s\n", SETT_VERSION);
		return 0;
	}
	while ((c = getopt(argc, argv, "fc:u:g:h")) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case 'c':
			o.chunk_size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'u':
			ctx.uid = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'g':
			ctx.gid = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	const char *store = argv[optind];
	char why[1024] = "";
	o.engine.error_buf = why;
	o.engine.error_buf_size = sizeof why;
	int r = settfs_mkfs(store, &o, &ctx, force);
	if (r == -EEXIST || r == -ENOTEMPTY) {
		fprintf(stderr, "mkfs.settfs: %s\n", why);
		if (r == -ENOTEMPTY)
			fprintf(stderr, "mkfs.settfs: use -f to create the store there anyway\n");
		return 1;
	}
	if (r) {
		fprintf(stderr, "mkfs.settfs: %s: %s\n", store,
			why[0] ? why : r == -EINVAL ? "invalid chunk size" : sett_strerror(r));
		return 1;
	}
	printf("mkfs.settfs: created settfs in %s (chunk size %u)\n", store, o.chunk_size);
	return 0;
}
