#!/usr/bin/env bash
# compress_abba.sh BUILD_DIR [ORDER]
#
# Compression ratio and throughput of settfs with -o compression=none (N)
# and =zstd (Z, level $LEVEL), alternated in ORDER (default "N Z Z N"), on
# the data sets $SETS (default "doc text rand") staged in /dev/shm: doc, a
# copy of $DOC (default /usr/share/doc, a real text tree with its .gz
# files); text, the same without its .gz, .xz and .bz2 files; rand,
# $RAND_MB MiB of random data in 16 MiB files.  Each run: a fresh store (mkfs.settfs -o compression=...)
# under $BASE (the disk), `cp -a` of the set into the mount and the unmount
# (which commits and syncs everything) timed as the write; the page cache
# dropped, a new mount, `tar cf - .` of the mount to a pipe timed as the
# read (bytes compared by sha256 of the tar stream against the first
# run's); the daemon's CPU time (user + system) in each; the store's
# allocated size after the unmount (du -B1); the daemons' peak RSS
# (VmHWM, the larger of the two mounts).  Prints one
# line per run and a table of the medians per set and system.  Needs
# root (drop_caches, FUSE).
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "$1" && pwd)
ORDER=${2:-N Z Z N}
LEVEL=${LEVEL:-3}
DOC=${DOC:-/usr/share/doc}
RAND_MB=${RAND_MB:-128}
BASE=${BASE:-/tmp/compress_abba.$$}
STAGE=${STAGE:-/dev/shm/compress_abba.$$}

mkdir -p "$BASE/mnt" "$STAGE/rand"
trap 'fusermount3 -u "$BASE/mnt" 2>/dev/null || true; rm -rf "$BASE" "$STAGE"' EXIT
cp -a "$DOC" "$STAGE/doc"
mkdir "$STAGE/text"
tar -C "$DOC" --exclude='*.gz' --exclude='*.xz' --exclude='*.bz2' -cf - . | tar -C "$STAGE/text" -xf -
for i in $(seq 1 $((RAND_MB / 16))); do
	head -c $((16 << 20)) /dev/urandom >"$STAGE/rand/r$i"
done
now() { date +%s.%N; }

mount_store() { # mount_store STORE: the daemon's pid in $pid
	"$BUILD/settfs" -f "$1" "$BASE/mnt" &
	pid=$!
	while ! grep -q " $BASE/mnt fuse" /proc/mounts; do sleep 0.05; done
}
umount_store() { # the daemon's VmHWM (KiB) in $hwm, its CPU seconds (user + system) in $cpu
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
	cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$pid/stat")
	fusermount3 -u "$BASE/mnt"
	wait "$pid"
}

results=$BASE/results
: >"$results"
run=0
for set in ${SETS:-doc text rand}; do
	bytes=$(du -s --apparent-size -B1 "$STAGE/$set" | cut -f1)
	for sys in $ORDER; do
		run=$((run + 1))
		comp=none
		[ "$sys" = Z ] && comp=zstd:$LEVEL
		store=$BASE/store$run
		"$BUILD/mkfs.settfs" -q -o compression=$comp "$store"
		mount_store "$store"
		t0=$(now)
		cp -a "$STAGE/$set/." "$BASE/mnt/"
		umount_store
		t1=$(now)
		rss1=$hwm
		wcpu=$cpu
		stored=$(du -s -B1 "$store" | cut -f1)
		sync
		echo 3 >/proc/sys/vm/drop_caches
		mount_store "$store"
		t2=$(now)
		sum=$(tar cf - -C "$BASE/mnt" . | sha256sum | cut -c1-16)
		t3=$(now)
		umount_store
		rss=$((rss1 > hwm ? rss1 : hwm))
		load=$(cut -d' ' -f1 /proc/loadavg)
		echo "$set $sys $run $bytes $t0 $t1 $t2 $t3 $stored $rss $load $sum $wcpu $cpu" >>"$results"
		awk -v l="$(tail -1 "$results")" 'BEGIN { split(l, f, " ");
			w = f[6] - f[5]; r = f[8] - f[7];
			printf "run %d %s %s: write %.2f s (%.1f MB/s, daemon CPU %.2f s), " \
			       "read %.2f s (%.1f MB/s, daemon CPU %.2f s), store %d bytes " \
			       "(ratio %.2f), peak RSS %d KiB, load %s, tar %s\n",
			       f[3], f[1], f[2], w, f[4] / w / 1e6, f[13], r, f[4] / r / 1e6, f[14],
			       f[9], f[4] / f[9], f[10], f[11], f[12] }' >&2
		rm -rf "$store"
	done
done
# every run of a set read back the same bytes
awk '{ if ($1 in s && s[$1] != $12) bad = 1; s[$1] = $12 } END { exit bad }' "$results" ||
	{ echo "compress_abba: a run read back different bytes" >&2; exit 1; }
echo "| data | compression | bytes | store (du) | ratio | write MB/s | write CPU s | read MB/s | read CPU s | peak RSS MiB | runs |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
awk -v level="$LEVEL" '
function median(a, n,   i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 " " $2; n[k]++; b[k] = $4
  w[k, n[k]] = $4 / ($6 - $5) / 1e6; r[k, n[k]] = $4 / ($8 - $7) / 1e6
  s[k, n[k]] = $9; m[k, n[k]] = $10 / 1024; wc[k, n[k]] = $13; rc[k, n[k]] = $14; if (!(k in seen)) { seen[k] = 1; keys[++nk] = k } }
END {
	for (i = 1; i <= nk; i++) {
		k = keys[i]; split(k, p, " ")
		for (j = 1; j <= n[k]; j++) {
			W[j] = w[k, j]; R[j] = r[k, j]; S[j] = s[k, j]; M[j] = m[k, j]
			WC[j] = wc[k, j]; RC[j] = rc[k, j]
		}
		st = median(S, n[k])
		printf "| %s | %s | %d | %d | %.2f | %.1f | %.2f | %.1f | %.2f | %.0f | %d |\n", p[1],
		       p[2] == "Z" ? "zstd:" level : "none", b[k], st, b[k] / st, median(W, n[k]),
		       median(WC, n[k]), median(R, n[k]), median(RC, n[k]), median(M, n[k]), n[k]
	}
}' "$results"
