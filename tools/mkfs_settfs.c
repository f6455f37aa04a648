/*
 * mkfs_settfs.c - mkfs.settfs: create a settfs filesystem in a store.
 *
 *   mkfs.settfs [-f] [-q] [-c CHUNK_SIZE] [-u UID] [-g GID]
 *               [--key-file F | --passphrase-file F] STORE
 *
 * Writes the superblock, the inode counter and the root directory.  A
 * missing or empty directory gets a new store.  An existing store is
 * refused unless -f, which erases its keys; a non-empty directory that
 * holds no store is refused unless -f, which puts the store among what is
 * there (nothing in it is deleted).  A missing directory is made with mode
 * 0700 (the engine makes every store directory so).  With a key file or a
 * passphrase the store is encrypted at rest (key.h); -f keeps what a store
 * is: an encrypted one needs its key, an unencrypted one refuses a key.  Exit status: 0 done, 1 failed, 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "getopt_std.h"
#include "key.h"
#include "settfs.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: mkfs.settfs [-f] [-q] [-c CHUNK_SIZE] [-u UID] [-g GID] [-o OPTIONS]\n"
		     "                   [--key-file F | --passphrase-file F] STORE\n"
		     "  -f   erase an existing store, or use a non-empty directory\n"
		     "  -c   data chunk size in bytes, a power of two in 4096..1048576 (65536)\n"
		     "  -o compression=none|zstd[:LEVEL]\n"
		     "       how file data is stored (none; zstd level 1..19, 3)\n"
		     "  -u, -g  owner of the root directory (the caller)\n"
		     "  -q   print nothing on success\n"
		     "  --key-file F         encrypt the store with the master key in F\n"
		     "                       (32 bytes, or 64 hex digits; mode 0600 or stricter)\n"
		     "  --passphrase-file F  encrypt it with the passphrase on F's first line\n"
		     "                       (\"-\": standard input)\n"
		     "  -V, --version; -h, --help\n"
		     "A missing STORE directory is created with mode 0700.  See mkfs.settfs(8).\n");
}

/* -o OPTIONS: a comma-separated list; 0 if every one is known, else a message. */
static int options(char *arg, settfs_options *o)
{
	for (char *save = NULL, *opt = strtok_r(arg, ",", &save); opt;
	     opt = strtok_r(NULL, ",", &save)) {
		if (strncmp(opt, "compression=", 12) == 0) {
			if (settfs_parse_compression(opt + 12, o) == 0)
				continue;
			fprintf(stderr, "mkfs.settfs: -o %s: none, zstd or zstd:LEVEL (1..19)\n", opt);
		} else {
			fprintf(stderr, "mkfs.settfs: -o %s: unknown option\n", opt);
		}
		return -1;
	}
	return 0;
}

/* A whole number of at most `max`; 0 if so, else a message naming it. */
static int number(char opt, const char *arg, unsigned long max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 0);
	if (errno || end == arg || *end || v > max || arg[0] == '-') {
		fprintf(stderr, "mkfs.settfs: -%c %s: not a number (0..%lu)\n", opt, arg, max);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	settfs_options o;
	settfs_options_init(&o);
	settfs_ctx ctx = { (uint32_t)getuid(), (uint32_t)getgid(), NULL, 0, 0 };
	int force = 0, quiet = 0, c;
	const char *key_file = NULL, *pass_file = NULL;
	while ((c = std_getopt(argc, argv, "+:fqc:u:g:o:hV")) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'c':
			if (number('c', optarg, 1u << 30, &o.chunk_size))
				return 2;
			break;
		case 'u':
			if (number('u', optarg, UINT32_MAX - 1, &ctx.uid))
				return 2;
			break;
		case 'g':
			if (number('g', optarg, UINT32_MAX - 1, &ctx.gid))
				return 2;
			break;
		case 'o':
			if (options(optarg, &o))
				return 2;
			break;
		case 'K':
			key_file = optarg;
			break;
		case 'P':
			pass_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mkfs.settfs %s (sett %s)\n", SETT_VERSION, SETT_VERSION_STRING);
			return 0;
		case ':':
		default:
			std_bad_option("mkfs.settfs", c, argv);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "mkfs.settfs: %s (see --help)\n",
			optind == argc ? "no STORE given" : "one STORE only");
		return 2;
	}
	const char *store = argv[optind];
	char why[1024] = "";
	o.engine.error_buf = why;
	o.engine.error_buf_size = sizeof why;
	static key_material key;
	if (key_load_options("mkfs.settfs", key_file, pass_file, &key, &o.engine))
		return 1;
	int r = settfs_mkfs(store, &o, &ctx, force);
	key_wipe(&key);
	if (r == -EKEYREJECTED) {
		fprintf(stderr, "mkfs.settfs: %s: %s\n", store, key_refused(key_file || pass_file));
		if (why[0])
			fprintf(stderr, "mkfs.settfs: %s\n", why);
		return 1;
	}
	if (r == -EEXIST || r == -ENOTEMPTY) {
		fprintf(stderr, "mkfs.settfs: %s\n", why);
		if (r == -ENOTEMPTY)
			fprintf(stderr, "mkfs.settfs: use -f to create the store there anyway\n");
		return 1;
	}
	if (r) {
		if (!why[0] && r == -EINVAL)
			snprintf(why, sizeof why, "chunk size %u is not a power of two in "
				 "4096..1048576", o.chunk_size);
		fprintf(stderr, "mkfs.settfs: %s: %s\n", store, why[0] ? why : sett_strerror(r));
		return 1;
	}
	char comp[32];
	if (!quiet)
		printf("mkfs.settfs: created settfs in %s (chunk size %u, compression %s%s)\n", store,
		       o.chunk_size,
		       settfs_compression_name(o.compression, o.compression_level ? o.compression_level
										: 3, comp, sizeof comp),
		       key_file || pass_file ? ", encrypted" : "");
	return 0;
}
