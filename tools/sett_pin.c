/*
 * sett_pin.c - `sett pin STORE NAME [VERSION]` and `sett unpin STORE NAME`:
 * create and release pinned versions (sett.h, "pinned versions").  `sett
 * info` lists the pins and the space only they hold.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cmd_pin(int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		return 2;
	uint64_t version = 0;
	if (argc == 4) {
		char *end;
		version = strtoull(argv[3], &end, 10);
		if (*end || !version)
			return 2;
	}
	sett_db *db;
	if (cli_open("pin", argv[1], 0, &db))
		return 1;
	uint64_t pinned;
	int r = sett_pin(db, argv[2], version, &pinned);
	int c = sett_close(db);
	if (r || c)
		return cli_fail("pin", argv[2], r ? r : c);
	printf("%llu\n", (unsigned long long)pinned);
	return 0;
}

int cmd_unpin(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	sett_db *db;
	if (cli_open("unpin", argv[1], 0, &db))
		return 1;
	int r = sett_unpin(db, argv[2]);
	int c = sett_close(db);
	return r || c ? cli_fail("unpin", argv[2], r ? r : c) : 0;
}
