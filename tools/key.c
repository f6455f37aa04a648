/*
 * key.c - reading a store's master key or passphrase from a file (key.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"

/* A regular file group or others may access is refused, as ssh refuses an
 * unprotected private key; pipes, terminals and descriptors are taken. */
static int check_mode(const char *prog, const char *path, const struct stat *st)
{
	if (!S_ISREG(st->st_mode) || !(st->st_mode & 077))
		return 0;
	fprintf(stderr, "%s: %s: permissions %04o are too open: a key or passphrase file "
			"must be accessible by its owner only (chmod 600 %s)\n",
		prog, path, (unsigned)(st->st_mode & 07777), path);
	return -1;
}

static int read_pass(const char *prog, const char *path, key_material *k)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		if (fd > 0)
			close(fd);
		return -1;
	}
	if (check_mode(prog, path, &st)) {
		if (fd > 0)
			close(fd);
		return -1;
	}
	/* the first line; a passphrase longer than the buffer is refused */
	size_t n = 0;
	int done = 0, err = 0;
	while (!done && n < sizeof k->pass) {
		ssize_t got = read(fd, k->pass + n, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			err = errno;
		if (got <= 0 || k->pass[n] == '\n')
			done = 1;
		else
			n++;
	}
	if (fd > 0)
		close(fd);
	const char *why = err ? strerror(err) : !done ? "the passphrase is longer than 1023 bytes"
			: n == 0 ? "no passphrase in it (an empty first line)" : NULL;
	if (n && k->pass[n - 1] == '\r')
		n--;
	if (why || n == 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, why ? why : "an empty passphrase");
		key_wipe(k);
		return -1;
	}
	k->pass[n] = 0;
	k->has_pass = 1;
	return 0;
}

int key_load(const char *prog, const char *key_file, const char *pass_file, key_material *k)
{
	memset(k, 0, sizeof *k);
	(void)mlock(k, sizeof *k); /* best effort: an unprivileged limit may refuse */
	if (key_file && pass_file) {
		fprintf(stderr, "%s: a key file or a passphrase file, not both\n", prog);
		return -1;
	}
	if (pass_file)
		return read_pass(prog, pass_file, k);
	if (!key_file)
		return 0;
	struct stat st;
	if (stat(key_file, &st) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, key_file, strerror(errno));
		return -1;
	}
	if (check_mode(prog, key_file, &st))
		return -1;
	int r = sett_key_file_read(key_file, k->key);
	if (r) {
		fprintf(stderr, "%s: %s: %s\n", prog, key_file,
			r == -EINVAL ? "not a key file (32 bytes, or 64 hex digits and a newline)"
				     : sett_strerror(r));
		key_wipe(k);
		return -1;
	}
	k->has_key = 1;
	return 0;
}

void key_apply(const key_material *k, sett_options *o)
{
	if (k->has_key)
		o->encryption_key = k->key;
	if (k->has_pass)
		o->encryption_passphrase = k->pass;
}

int key_load_options(const char *prog, const char *key_file, const char *pass_file,
		     key_material *k, sett_options *o)
{
	if (key_load(prog, key_file, pass_file, k))
		return -1;
	key_apply(k, o);
	return 0;
}

int key_arg(int argc, char **argv, int *i, const char **key_file, const char **pass_file)
{
	const char **to = !strcmp(argv[*i], "--key-file")	    ? key_file
			  : !strcmp(argv[*i], "--passphrase-file") ? pass_file : NULL;
	if (!to || *i + 1 >= argc)
		return 0;
	*to = argv[++*i];
	return 1;
}

void key_relock(key_material *k)
{
	(void)mlock(k, sizeof *k);
}

void key_wipe(key_material *k)
{
	explicit_bzero(k, sizeof *k);
	(void)munlock(k, sizeof *k);
}

const char *key_refused(int has_key)
{
	return has_key ? "the key given does not open it; nothing was changed"
		       : "it is encrypted and no key was given; nothing was changed";
}
