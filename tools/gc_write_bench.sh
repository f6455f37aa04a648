#!/bin/sh
# gc_write_bench.sh - foreground write throughput through settfs with
# value-log GC idle (A) and while the background GC rewrites (B), measured
# alternately A B B A on fresh stores.  Run from the build directory:
#
#   cd build && TMPDIR=/var/tmp srcdir=.. sh ../tools/gc_write_bench.sh [SET_MB [WRITE_MB]]
#
# Each round: a fresh store with SET_MB (default 4096) of 8 MiB files, then
#   A: 8 s idle, then WRITE_MB (default 1024) written into a new file with
#      dd conv=fsync;
#   B: every other file deleted; once GC is seen rewriting (the store grows
#      by 16 MiB with nobody writing: about 6 s after the deletes), the
#      same write.
# Prints one line per round: MB/s of the write, and the store's size before
# and after it.  Needs what the mount tests need (tests/integration/lib.sh).
. "${srcdir:-.}/tests/integration/lib.sh"
set_mb=${1:-4096}
write_mb=${2:-1024}
head -c $((8 << 20)) /dev/urandom > "$work/ref"
src=/dev/shm/gcbench-src.$$
head -c $((write_mb << 20)) /dev/urandom > "$src"
trap 'rm -f "$src"; cleanup' EXIT

mb() { echo $(($(du -sB1 "$store" | cut -f1) >> 20)); }
now() { date +%s.%N; }

round() {
	rm -rf "$store"
	mount_fs
	i=0
	while [ $i -lt $((set_mb / 8)) ]; do
		cp "$work/ref" "$mnt/f$i"
		i=$((i + 1))
	done
	sync
	if [ "$1" = A ]; then
		sleep 8
	else
		i=0
		while [ $i -lt $((set_mb / 8)) ]; do
			rm "$mnt/f$i"
			i=$((i + 2))
		done
		base=$(mb)
		t=0
		while [ "$(mb)" -lt $((base + 16)) ]; do
			sleep 0.2
			t=$((t + 1))
			[ $t -lt 300 ] || fail "B: GC did not start within 60 s"
		done
	fi
	before=$(mb)
	t0=$(now)
	dd if="$src" of="$mnt/new" bs=1M conv=fsync status=none || fail "write"
	t1=$(now)
	echo "$1: $(echo "$write_mb / ($t1 - $t0)" | bc -l | cut -c1-6) MB/s" \
		"(store $before MiB before the write, $(mb) MiB after)"
	umount_fs
}

for r in A B B A; do
	round "$r"
done
