/* fsutil.c - helpers of the suites that run the filesystem core (fsutil.h). */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <check.h>

static const settfs_ctx root_ctx = { 0, 0, NULL, 0, 0 };

uint64_t tu_mkdir(settfs *fs, uint64_t parent, const char *name)
{
	struct stat st;
	ck_assert_int_eq(settfs_mkdir(fs, &root_ctx, parent, name, 0755, &st), 0);
	settfs_forget(fs, st.st_ino, 1);
	return st.st_ino;
}

uint64_t tu_put_file(settfs *fs, uint64_t parent, const char *name, const void *data, size_t n)
{
	struct stat st;
	int r = settfs_lookup(fs, parent, name, &st);
	if (r == -ENOENT)
		r = settfs_create(fs, &root_ctx, parent, name, 0644, O_RDWR, &st);
	else if (r == 0)
		r = settfs_file_open(fs, st.st_ino, O_RDWR | O_TRUNC);
	ck_assert_msg(r == 0, "create %s: %d", name, r);
	if (n)
		ck_assert_int_eq(settfs_write(fs, st.st_ino, 0, data, n, 0), (ssize_t)n);
	ck_assert_int_eq(settfs_release(fs, st.st_ino, O_RDWR), 0);
	settfs_forget(fs, st.st_ino, 1);
	return st.st_ino;
}
