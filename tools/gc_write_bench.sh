#!/bin/sh
# gc_write_bench.sh - foreground write throughput through settfs with
# value-log GC idle (A) and while the background GC rewrites (B), measured
# alternately A B B A on fresh stores.
#
#   tools/gc_write_bench.sh BUILD_DIR STORE_PARENT [SET_MB [WRITE_MB]]
#
# Each round: a fresh store with SET_MB (default 4096) of 8 MiB files, then
#   A: WRITE_MB (default 1024) written into a new file with dd conv=fsync;
#   B: every other file deleted; once GC is seen rewriting (the store grows
#      by 16 MiB with nobody writing), the same write.
# Prints one line per round: MB/s of the write, and the store's size
# before and after it.  Needs root, /dev/fuse and fusermount3.
set -e
build=$(cd "$1" && pwd)
parent=$2
set_mb=${3:-4096}
write_mb=${4:-1024}
work=$(mktemp -d "$parent/gcbench.XXXXXX")
mnt=$work/mnt
store=$work/store
mkdir -p "$mnt"
daemon=
cleanup() {
	[ -n "$daemon" ] && { fusermount3 -u "$mnt" 2>/dev/null; wait "$daemon" 2>/dev/null; }
	rm -rf "$work"
}
trap cleanup EXIT
head -c $((8 << 20)) /dev/urandom > "$work/ref"
src=${TMPDIR:-/dev/shm}/gcbench-src.$$
head -c $((write_mb << 20)) /dev/urandom > "$src"
trap 'rm -f "$src"; cleanup' EXIT

mb() { echo $(($(du -sB1 "$store" | cut -f1) >> 20)); }
now() { date +%s.%N; }

round() {
	rm -rf "$store"
	"$build/settfs" -f "$store" "$mnt" &
	daemon=$!
	while ! grep -q " $mnt fuse" /proc/mounts; do sleep 0.1; done
	i=0
	while [ $i -lt $((set_mb / 8)) ]; do
		cp "$work/ref" "$mnt/f$i"
		i=$((i + 1))
	done
	sync
	if [ "$1" = B ]; then
		i=0
		while [ $i -lt $((set_mb / 8)) ]; do
			rm "$mnt/f$i"
			i=$((i + 2))
		done
		base=$(mb)
		t=0
		while [ $(mb) -lt $((base + 16)) ]; do
			sleep 0.2
			t=$((t + 1))
			[ $t -lt 300 ] || { echo "B: GC did not start within 60 s" >&2; exit 1; }
		done
	fi
	before=$(mb)
	t0=$(now)
	dd if="$src" of="$mnt/new" bs=1M conv=fsync status=none
	t1=$(now)
	after=$(mb)
	echo "$1: $(echo "$write_mb / ($t1 - $t0)" | bc -l | cut -c1-6) MB/s" \
		"(store $before MiB before the write, $after MiB after)"
	fusermount3 -u "$mnt"
	wait "$daemon"
	daemon=
}

for r in A B B A; do
	round $r
done
