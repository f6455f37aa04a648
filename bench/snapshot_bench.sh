#!/usr/bin/env bash
# snapshot_bench.sh BUILD_DIR
#
# Snapshots of a mounted settfs (doc/PERFORMANCE.md, "Snapshots"):
#  1. creation time while a writer streams 64 MiB rewrites of four files:
#     SNAPS snapshots (`settfs snapshot create`, syncfs included) taken
#     0.5 s apart; each one's wall time, and the writer's MB/s over the
#     same time without snapshots and with them (alternated A B B A);
#  2. write throughput with HELD snapshots held, each of different data
#     (taken after a rewrite of the file), against none, alternated A B B
#     A, each on a fresh store: ROUNDS rewrites of a 64 MiB file, fsync'd.
# Prints markdown rows and the daemon's peak RSS (VmHWM) of each run.
# Knobs: BASE (scratch directory) [/tmp/snapbench.$$], SNAPS [20],
# HELD [16], ROUNDS [8], SECONDS_BUSY [10].  Needs root and /dev/fuse.
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "$1" && pwd)
SETTFS=$BUILD/settfs
BASE=${BASE:-/tmp/snapbench.$$}
SNAPS=${SNAPS:-20}
HELD=${HELD:-16}
ROUNDS=${ROUNDS:-8}
BUSY=${SECONDS_BUSY:-10}
mkdir -p "$BASE"
MNT=$BASE/mnt
mkdir -p "$MNT"
head -c $((64 << 20)) /dev/urandom > "$BASE/rand64"
daemon=
cleanup() {
	touch "$BASE/stop" 2>/dev/null || true
	[ -n "${writer:-}" ] && wait "$writer" 2>/dev/null || true
	fusermount3 -u "$MNT" 2>/dev/null || true
	[ -n "$daemon" ] && wait "$daemon" 2>/dev/null || true
	rm -rf "$BASE"
}
trap cleanup EXIT

mount_fresh() {
	rm -rf "$BASE/store"
	"$SETTFS" -f "$BASE/store" "$MNT" &
	daemon=$!
	for _ in $(seq 100); do grep -q " $MNT fuse" /proc/mounts && return; sleep 0.1; done
	echo "mount failed" >&2
	exit 1
}
umount_now() { # sets hwm: the daemon's VmHWM in kB
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
	fusermount3 -u "$MNT"
	wait "$daemon" || true
	daemon=
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# writer: 64 MiB rewrites of w0..w3 until killed; counts in $BASE/count
start_writer() {
	: > "$BASE/count"
	rm -f "$BASE/stop"
	( i=0; while [ ! -e "$BASE/stop" ]; do
		dd if="$BASE/rand64" of="$MNT/w$((i % 4))" bs=1M conv=notrunc 2>/dev/null
		echo x >> "$BASE/count"
		i=$((i + 1))
	done ) &
	writer=$!
}
stop_writer() { touch "$BASE/stop"; wait "$writer" 2>/dev/null || true; writer=; }

echo "## 1. creation time with a busy writer"
for mode in none snaps snaps none; do
	mount_fresh
	start_writer
	sleep 1
	: > "$BASE/count"
	t0=$(now_ms)
	times=()
	held=()
	if [ $mode = snaps ]; then
		for s in $(seq "$SNAPS"); do
			a=$(now_ms)
			"$SETTFS" snapshot create "$MNT" "s$s" > "$BASE/created"
			b=$(now_ms)
			times+=($((b - a)))
			held+=($(sed -n 's/.*changes held \([0-9.]*\) ms.*/\1/p' "$BASE/created"))
			sleep 0.5
		done
	else
		sleep $((SNAPS / 2))
	fi
	t1=$(now_ms)
	n=$(wc -l < "$BASE/count")
	stop_writer
	umount_now
	mbs=$(awk -v n="$n" -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", n * 64 / (ms / 1000) }')
	if [ $mode = snaps ]; then
		sorted=$(printf '%s\n' "${times[@]}" | sort -n)
		min=$(echo "$sorted" | head -1)
		med=$(echo "$sorted" | sed -n "$(( (${#times[@]} + 1) / 2 ))p")
		max=$(echo "$sorted" | tail -1)
		hs=$(printf '%s\n' "${held[@]}" | sort -n)
		hmed=$(echo "$hs" | sed -n "$(( (${#held[@]} + 1) / 2 ))p")
		hmax=$(echo "$hs" | tail -1)
		echo "| with $SNAPS snapshots | writer ${mbs} MB/s | create (syncfs included) min ${min} ms, median ${med} ms, max ${max} ms; changes held median ${hmed} ms, max ${hmax} ms | VmHWM ${hwm} kB |"
	else
		echo "| no snapshots | writer ${mbs} MB/s | - | VmHWM ${hwm} kB |"
	fi
done

echo "## 2. write throughput with $HELD snapshots held"
for mode in none held held none; do
	mount_fresh
	dd if="$BASE/rand64" of="$MNT/f" bs=1M conv=fsync 2>/dev/null
	if [ $mode = held ]; then
		for s in $(seq "$HELD"); do
			dd if="$BASE/rand64" of="$MNT/f" bs=1M conv=notrunc,fsync 2>/dev/null
			"$SETTFS" snapshot create "$MNT" "h$s" > /dev/null
		done
	fi
	t0=$(now_ms)
	for r in $(seq "$ROUNDS"); do
		dd if="$BASE/rand64" of="$MNT/f" bs=1M conv=notrunc,fsync 2>/dev/null
	done
	t1=$(now_ms)
	store=$(du -sm "$BASE/store" | cut -f1)
	umount_now
	mbs=$(awk -v r="$ROUNDS" -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", r * 64 / (ms / 1000) }')
	echo "| $mode | ${mbs} MB/s | store ${store} MiB | VmHWM ${hwm} kB |"
done
