/*
 * info.c - the text of `sett info`, printed by the tool for a store it
 * opens and by the settfs daemon for the store it has mounted.
 */
#include <stdio.h>

#include "cli.h"

void cli_human(char *out, size_t n, uint64_t b)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)b;
	int i = 0;
	while (d >= 1024 && i < 4) {
		d /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", d, u[i]);
}

int cli_info_print(sett_db *db, const char *store, FILE *f)
{
	sett_stats st;
	int r = sett_get_stats(db, &st);
	if (r)
		return r;
	char a[32], b[32];
	fprintf(f, "store %s\n", store);
	fprintf(f, "last version %llu\n", (unsigned long long)st.last_version);
	fprintf(f, "memtables %d (%s)\n", st.memtables, (cli_human(a, sizeof a, st.memtable_bytes), a));
	fprintf(f, "level  tables        size      target   score\n");
	for (int l = 0; l < SETT_MAX_LEVELS; l++) {
		cli_human(a, sizeof a, st.levels[l].bytes);
		cli_human(b, sizeof b, st.levels[l].target_bytes);
		fprintf(f, "L%-5d %6d %11s %11s %7.2f\n", l, st.levels[l].tables, a, b, st.levels[l].score);
	}
	cli_human(a, sizeof a, st.lsm_bytes);
	fprintf(f, "tables total %s\n", a);
	sett_vlog_info vi[1024];
	int n = sett_vlog_files(db, vi, 1024);
	uint64_t garbage = 0, live = 0;
	for (int i = 0; i < n && i < 1024; i++) {
		live += vi[i].live_bytes;
		garbage += vi[i].bytes - vi[i].live_bytes;
	}
	cli_human(a, sizeof a, st.vlog_bytes);
	cli_human(b, sizeof b, garbage);
	fprintf(f, "value log %d files, %s, garbage %s (%.0f%%)\n", n < 0 ? 0 : n, a, b,
		st.vlog_bytes ? 100.0 * (double)garbage / (double)st.vlog_bytes : 0.0);
	for (int i = 0; i < n && i < 1024; i++) {
		uint64_t g = vi[i].bytes - vi[i].live_bytes;
		char c[32];
		cli_human(a, sizeof a, vi[i].bytes);
		cli_human(b, sizeof b, vi[i].live_bytes);
		cli_human(c, sizeof c, g);
		fprintf(f, "  %06u.vlog %11s  live %11s  garbage %11s (%3.0f%%)%s%s\n", vi[i].fid, a, b,
			c, vi[i].bytes ? 100.0 * (double)g / (double)vi[i].bytes : 0.0,
			i == n - 1 ? "  head" : "", vi[i].gc_picked ? "  GC picks it" : "");
	}
	cli_human(a, sizeof a, live);
	cli_human(b, sizeof b, st.lsm_bytes + st.wal_bytes + live);
	fprintf(f, "live values %s; with tables and logs %s\n", a, b);
	sett_pin_info pins[64];
	int npins = sett_pins(db, pins, 64);
	if (npins > 0) {
		uint64_t held = 0;
		/* every version a pin sees and a current read does not (a scan) */
		int pr = sett_pin_space(db, &held);
		fprintf(f, "pins %d, holding %s only they see\n", npins,
			pr ? sett_strerror(pr) : (cli_human(a, sizeof a, held), a));
		for (int i = 0; i < npins && i < 64; i++)
			fprintf(f, "  %s at version %llu\n", pins[i].name,
				(unsigned long long)pins[i].version);
	}
	fprintf(f, "gc %s; %llu pass(es), %llu file(s) deleted, %s measured, ",
		st.gc_activity, (unsigned long long)st.gc_runs,
		(unsigned long long)st.gc_files_rewritten,
		(cli_human(a, sizeof a, st.gc_bytes_measured), a));
	fprintf(f, "%s rewritten\n", (cli_human(a, sizeof a, st.gc_bytes_rewritten), a));
	sett_space sp;
	if (sett_disk_space(db, &sp) == 0) {
		char c[32];
		cli_human(a, sizeof a, sp.disk_bytes);
		cli_human(b, sizeof b, sp.free_bytes);
		cli_human(c, sizeof c, sp.reserve);
		fprintf(f, "disk %s, free %s, reserve %s (default rule; settfs -o reserve= sets it)\n", a,
			b, c);
	}
	fprintf(f, "block cache hits %llu misses %llu (%s)\n", (unsigned long long)st.block_cache_hits,
		(unsigned long long)st.block_cache_misses,
		(cli_human(a, sizeof a, st.block_cache_bytes), a));
	return 0;
}

