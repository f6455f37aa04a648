/*
 * getopt_std.h - the option parsing mkfs.settfs and fsck.settfs share, as
 * e2fsprogs behave: -h/--help and -V/--version, and one line naming an
 * unknown option or an option without its value.  Both also take the
 * master key of an encrypted store: --key-file F ('K') or
 * --passphrase-file F ('P'), read with key.h.
 */
#ifndef SETTFS_GETOPT_STD_H
#define SETTFS_GETOPT_STD_H

#include <getopt.h>
#include <stdio.h>

/* getopt_long(3) with --help ('h'), --version ('V'), --key-file ('K') and
 * --passphrase-file ('P'); getopt prints nothing. */
static inline int std_getopt(int argc, char **argv, const char *shortopts)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "key-file", required_argument, NULL, 'K' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 }
	};
	opterr = 0;
	return getopt_long(argc, argv, shortopts, longopts, NULL);
}

/* The message for what std_getopt returned as ':' (shortopts start "+:") or '?'. */
static inline void std_bad_option(const char *prog, int c, char **argv)
{
	if (c == ':' && (optopt == 'K' || optopt == 'P'))
		fprintf(stderr, "%s: option '%s' needs a value\n", prog, argv[optind - 1]);
	else if (c == ':')
		fprintf(stderr, "%s: option '-%c' needs a value\n", prog, optopt);
	else if (optopt)
		fprintf(stderr, "%s: unknown option '-%c' (see --help)\n", prog, optopt);
	else
		fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, argv[optind - 1]);
}

#endif
