/* background.c - placeholder hooks until compaction and value-log GC land. */
#include <stdlib.h>

#include "db_impl.h"

int compaction_start(sett_db *db) { (void)db; return 0; }
void compaction_stop(sett_db *db) { (void)db; }
void compaction_kick(sett_db *db) { (void)db; }
int gc_start(sett_db *db) { (void)db; return 0; }
void gc_stop(sett_db *db) { (void)db; }
void compaction_fill_stats(sett_db *db, sett_stats *st) { (void)db; (void)st; }
int sett_flatten(sett_db *db) { return sett_flush(db); }
int sett_gc(sett_db *db, double r) { (void)db; (void)r; return SETT_ENOREWRITE; }
int sett_vlog_files(sett_db *db, sett_vlog_info *out, int max)
{
	uint32_t *fids;
	int n;
	int r = vlog_list(db->vl, &fids, &n);
	if (r)
		return r;
	for (int i = 0; i < n && i < max; i++) {
		out[i].fid = fids[i];
		out[i].bytes = vlog_file_size(db->vl, fids[i]);
		out[i].discard_bytes = 0;
	}
	free(fids);
	return n;
}
