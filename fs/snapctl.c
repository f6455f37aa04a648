/*
 * snapctl.c - snapshots over the control path (`settfs snapshot
 * create|list|delete MNT [NAME]`) and `settfs rollback STORE NAME` of an
 * unmounted store.
 *
 * Requests (doc/FORMAT.md, "Control protocol"): CTL_SNAP_CREATE and
 * CTL_SNAP_DELETE carry "name"; CTL_SNAP_LIST carries "space" (U64 1:
 * also the bytes each snapshot alone holds, a scan of the store per
 * snapshot).  A create reply has "version", "slot", "created_ns"; a list
 * reply one group of "snap.name", "snap.created_ns", "snap.version",
 * "snap.slot", "snap.damaged" (and "snap.space_bytes") per snapshot, in
 * name order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "key.h"
#include "snapshot.h"
#include "status.h"

/* ---- the daemon's side ------------------------------------------------ */

static int req_name(const uint8_t *body, size_t n, char *name)
{
	ctl_rec r;
	int f = ctl_find(body, n, "name", &r);
	if (f < 0)
		return f;
	if (f == 0 || r.kind != CTL_STR || r.slen == 0 || r.slen > SETTFS_SNAP_NAME_MAX ||
	    memchr(r.s, 0, r.slen))
		return -EINVAL;
	memcpy(name, r.s, r.slen);
	name[r.slen] = 0;
	return sfs_snap_name_ok(name);
}

int sfs_snapctl_handle(settfs *fs, const ctl_header *h, const uint8_t *body, size_t n,
		       ctl_buf *b)
{
	char name[SETTFS_SNAP_NAME_MAX + 1];
	int r;
	switch (h->type) {
	case CTL_SNAP_CREATE: {
		settfs_snap_info si;
		if ((r = req_name(body, n, name)) || (r = settfs_snapshot_create(fs, name, &si)))
			return r;
		settfs_snapshot_changed(fs, name);
		ctl_put_i64(b, "status", 0);
		ctl_put_u64(b, "version", si.version);
		ctl_put_u64(b, "slot", si.slot);
		ctl_put_i64(b, "created_ns", si.created_ns);
		ctl_put_u64(b, "held_us", si.held_ns / 1000);
		return b->err;
	}
	case CTL_SNAP_DELETE:
		if ((r = req_name(body, n, name)) || (r = settfs_snapshot_delete(fs, name)))
			return r;
		settfs_snapshot_changed(fs, name);
		ctl_put_i64(b, "status", 0);
		return b->err;
	case CTL_SNAP_LIST: {
		ctl_rec sp;
		int space = ctl_find(body, n, "space", &sp) == 1 && sp.kind == CTL_U64 && sp.u;
		settfs_snap_info *all;
		size_t k;
		if ((r = settfs_snapshot_list(fs, &all, &k)))
			return r;
		ctl_put_i64(b, "status", 0);
		for (size_t i = 0; i < k && r == 0; i++) {
			ctl_put_str(b, "snap.name", all[i].name);
			ctl_put_i64(b, "snap.created_ns", all[i].created_ns);
			ctl_put_u64(b, "snap.version", all[i].version);
			ctl_put_u64(b, "snap.slot", all[i].slot);
			ctl_put_u64(b, "snap.damaged", (uint64_t)all[i].damaged);
			uint64_t bytes = 0;
			if (space && !all[i].damaged &&
			    (r = settfs_snapshot_space(fs, all[i].name, &bytes)) == 0)
				ctl_put_u64(b, "snap.space_bytes", bytes);
		}
		free(all);
		return r ? r : b->err;
	}
	default:
		return -EOPNOTSUPP;
	}
}

/* ---- the commands ----------------------------------------------------- */

static void human(uint64_t v, char *out, size_t n)
{
	const char *u = "BKMGTP";
	double d = (double)v;
	while (d >= 1024 && u[1]) {
		d /= 1024;
		u++;
	}
	snprintf(out, n, *u == 'B' ? "%.0f%c" : "%.1f%c", d, *u);
}

static int snap_usage(FILE *f)
{
	fprintf(f, "usage: settfs snapshot create MOUNTPOINT NAME\n"
		   "       settfs snapshot delete MOUNTPOINT NAME\n"
		   "       settfs snapshot list [--space] MOUNTPOINT\n"
		   "       settfs rollback [--key-file F | --passphrase-file F] STORE NAME\n");
	return f == stdout ? 0 : 1;
}

static const char *why(int r)
{
	switch (r) {
	case -ENOENT: return "no such snapshot";
	case -EEXIST: return "a snapshot of that name exists";
	case -EINVAL: return "not a snapshot name (a file name of at most 240 bytes)";
	case -EROFS: return "the store is mounted read-only";
	case -EACCES: return "refused: only root and the mount's owner may ask";
	default: return strerror(-r);
	}
}

int sfs_snapshot_command(int argc, char **argv)
{
	if (argc < 3 || !strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))
		return snap_usage(argc < 3 ? stderr : stdout);
	const char *verb = argv[2];
	int i = 3, space = 0;
	if (!strcmp(verb, "list") && i < argc && !strcmp(argv[i], "--space")) {
		space = 1;
		i++;
	}
	int named = strcmp(verb, "create") == 0 || strcmp(verb, "delete") == 0;
	if ((!named && strcmp(verb, "list")) || argc != i + 1 + named)
		return snap_usage(stderr);
	const char *mnt = argv[i], *name = named ? argv[i + 1] : NULL;
	char store[4096];
	if (ctl_store_of_mount(mnt, store, sizeof store, NULL, 0) != 0) {
		fprintf(stderr, "settfs snapshot: %s: not a settfs mount\n", mnt);
		return 1;
	}
	uint16_t type = !strcmp(verb, "create") ? CTL_SNAP_CREATE
		      : !strcmp(verb, "delete") ? CTL_SNAP_DELETE : CTL_SNAP_LIST;
	if (type == CTL_SNAP_CREATE) {
		/* what the kernel still buffers goes to the daemon first */
		int fd = open(mnt, O_RDONLY | O_DIRECTORY);
		if (fd < 0 || syncfs(fd) != 0) {
			fprintf(stderr, "settfs snapshot: %s: %s\n", mnt, strerror(errno));
			if (fd >= 0)
				close(fd);
			return 2;
		}
		close(fd);
	}
	ctl_buf q = { 0 };
	ctl_begin(&q, type);
	if (name)
		ctl_put_str(&q, "name", name);
	if (space)
		ctl_put_u64(&q, "space", 1);
	ctl_end(&q);
	uint8_t *body;
	size_t n;
	int r = ctl_call(store, &q, &body, &n);
	ctl_buf_free(&q);
	if (r) {
		fprintf(stderr, "settfs snapshot %s: %s%s%s: %s\n", verb, mnt, name ? " " : "",
			name ? name : "", r == -ENOENT && !name ? "its daemon does not answer" : why(r));
		return (r == -ENOENT && name) || r == -EEXIST || r == -EINVAL ? 1 : 2;
	}
	if (type == CTL_SNAP_LIST) {
		ctl_cursor c;
		ctl_rec rec;
		ctl_cursor_init(&c, body, n);
		printf("%-24s %-20s %10s\n", "NAME", "CREATED", space ? "ONLY_IT" : "");
		char nm[SETTFS_SNAP_NAME_MAX + 1] = "", when[32] = "", sz[32] = "";
		int have = 0, got;
		while ((got = ctl_next(&c, &rec)) >= 0) {
			int name_rec = got == 1 && !strcmp(rec.name, "snap.name") && rec.kind == CTL_STR;
			if ((got == 0 || name_rec) && have)
				printf("%-24s %-20s %10s\n", nm, when, sz);
			if (got == 0)
				break;
			if (name_rec) {
				size_t l = rec.slen < sizeof nm - 1 ? rec.slen : sizeof nm - 1;
				memcpy(nm, rec.s, l);
				nm[l] = 0;
				when[0] = sz[0] = 0;
				have = 1;
			} else if (!strcmp(rec.name, "snap.created_ns") && rec.kind == CTL_I64) {
				time_t t = (time_t)(rec.i / 1000000000);
				struct tm tm;
				localtime_r(&t, &tm);
				strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
			} else if (!strcmp(rec.name, "snap.space_bytes") && rec.kind == CTL_U64) {
				human(rec.u, sz, sizeof sz);
			} else if (!strcmp(rec.name, "snap.damaged") && rec.kind == CTL_U64 && rec.u) {
				snprintf(sz, sizeof sz, "damaged");
			}
		}
		if (got < 0) {
			fprintf(stderr, "settfs snapshot list: %s: malformed reply\n", mnt);
			free(body);
			return 2;
		}
	} else if (type == CTL_SNAP_CREATE) {
		ctl_rec v;
		printf("snapshot %s of %s taken", name, mnt);
		if (ctl_find(body, n, "version", &v) == 1 && v.kind == CTL_U64)
			printf(" (version %llu", (unsigned long long)v.u);
		if (ctl_find(body, n, "held_us", &v) == 1 && v.kind == CTL_U64)
			printf(", changes held %.1f ms", (double)v.u / 1000);
		printf(")");
		printf("; browse it at %s/%s/%s\n", mnt, SETTFS_SNAPDIR_NAME, name);
	}
	free(body);
	return fflush(stdout) ? 2 : 0;
}

int sfs_rollback_command(int argc, char **argv)
{
	const char *key_file = NULL, *pass_file = NULL;
	int i = 2;
	while (i < argc && key_arg(argc, argv, &i, &key_file, &pass_file))
		i++;
	if (i < argc && (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")))
		return snap_usage(stdout);
	if (argc != i + 2 || (key_file && pass_file))
		return snap_usage(stderr);
	const char *store = argv[i], *name = argv[i + 1];
	key_material key;
	settfs_options o;
	settfs_options_init(&o);
	if (key_load_options("settfs rollback", key_file, pass_file, &key, &o.engine))
		return 2;
	sett_db *db;
	int r = sett_open(store, &o.engine, &db);
	key_wipe(&key);
	if (r) {
		fprintf(stderr, "settfs rollback: %s: %s\n", store,
			r == SETT_EKEY ? key_refused(key_file || pass_file)
			: r == SETT_ELOCKED ? "the store is in use (mounted?): unmount it first"
					    : sett_strerror(r));
		return 2;
	}
	uint64_t changed = 0;
	r = sfs_snap_rollback(db, name, &changed);
	int c = sett_close(db);
	if (r) {
		fprintf(stderr, "settfs rollback: %s: %s: %s\n", store, name,
			r == -EIO ? "the snapshot is damaged or unreadable" : why(r));
		return r == -ENOENT ? 1 : 2;
	}
	if (c) {
		fprintf(stderr, "settfs rollback: %s: closing: %s\n", store, sett_strerror(c));
		return 2;
	}
	printf("%s rolled back to snapshot %s (%llu keys changed)\n", store, name,
	       (unsigned long long)changed);
	return 0;
}
