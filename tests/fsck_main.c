/*
 * fsck_main.c - fsck.settfs's checker linked into a test: fsck_settfs_run()
 * runs tools/fsck_settfs.c's main on a store in this process and hands back
 * its exit status and the first line it printed.
 */
#include <stdio.h>

#define main fsck_settfs_main
#include "../tools/fsck_settfs.c"
#undef main

int fsck_settfs_run(const char *store, char *first, size_t n);

int fsck_settfs_run(const char *store, char *first, size_t n)
{
	/* its state is global: start afresh (a failed run may leak its table) */
	faults = 0;
	quiet = 0;
	inodes = NULL;
	ninodes = capinodes = 0;
	optind = 0;
	FILE *out = tmpfile();
	if (!out)
		return -1;
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2);
	dup2(fileno(out), 1);
	dup2(fileno(out), 2);
	char *argv[] = { "fsck.settfs", (char *)store, NULL };
	int st = fsck_settfs_main(2, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	rewind(out);
	if (!fgets(first, (int)n, out))
		first[0] = 0;
	first[strcspn(first, "\n")] = 0;
	fclose(out);
	return st;
}
