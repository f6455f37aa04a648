#!/bin/sh
# encrypt_abba.sh - encryption at rest and backup/load, sett beside Badger,
# in A B B A order (A: unencrypted, B: encrypted) so that a drift of the
# machine's load falls on both alike.  doc/PERFORMANCE.md quotes it.
#
#   bench/encrypt_abba.sh SETT BADGER_BENCH DIR [SCALE] [REPS]
#
# SETT: a built `sett`; BADGER_BENCH: bench/badger/build.sh's program; DIR:
# scratch space (emptied).  SCALE (0.2) scales the key counts of
# WORKLOADS.md.  sett: four store sets are filled in A B B A order
# (fillseq_small, fillrandom_large), then every read-side workload runs on
# the four in that order, REPS (3) times over.  Badger runs all its
# workloads in one process per set, A B B A.  One JSON line per workload
# on stdout, each with "run" (1-4: A B B A), "rep", "encrypted", "load1"
# (the load average when it started) and "cpu_s": the user + system
# seconds of the sett workload's process, which a busy machine distorts
# less than the wall clock (Badger: of its whole process, line "process").
set -e
sett=$1 badger=$2 dir=$3 scale=${4:-0.2} reps=${5:-3}
[ -x "$sett" ] && [ -x "$badger" ] && [ -n "$dir" ] || {
	echo "usage: $0 SETT BADGER_BENCH DIR [SCALE] [REPS]" >&2
	exit 2
}
rm -rf "$dir"
mkdir -p "$dir"
load1() { cut -d' ' -f1 /proc/loadavg; }
# one RUN REP WORKLOAD: a sett workload on store set RUN (2, 3 encrypted)
one() {
	enc=
	[ "$1" = 2 ] || [ "$1" = 3 ] && enc=1
	l=$(load1)
	/usr/bin/time -f '%U %S' -o "$dir/cpu" \
		"$sett" bench ${enc:+--encrypt} --scale "$scale" --workload "$3" --dir "$dir/s$1" \
		> "$dir/line"
	sed -e "s/^{/{\"run\":$1,\"rep\":$2,\"load1\":$l,/" \
		-e "s/}\$/,\"cpu_s\":$(awk '{ print $1 + $2 }' "$dir/cpu")}/" "$dir/line"
}
for w in fillseq_small fillrandom_large; do
	for run in 1 2 3 4; do
		one $run 1 $w
	done
done
rep=0
while [ $rep -lt "$reps" ]; do
	rep=$((rep + 1))
	for w in readrandom_small readrandom_large scan_small backup_small load_small \
		backup_large load_large; do
		for run in 1 2 3 4; do
			one $run $rep $w
		done
	done
done
rm -rf "$dir"/s?
for run in 1 2 3 4; do
	enc=
	[ $run = 2 ] || [ $run = 3 ] && enc=1
	l=$(load1)
	/usr/bin/time -f '%U %S' -o "$dir/cpu" \
		"$badger" -scale "$scale" -backup -no-overwrite ${enc:+-encrypt} -dir "$dir" \
		2>/dev/null > "$dir/lines"
	grep -v '"workload":"config"' "$dir/lines" | sed "s/^{/{\"run\":$run,\"rep\":1,\"load1\":$l,/"
	echo "{\"run\":$run,\"rep\":1,\"load1\":$l,\"engine\":\"badger\",\"workload\":\"process\"${enc:+,\"encrypted\":true},\"cpu_s\":$(awk '{ print $1 + $2 }' "$dir/cpu")}"
done
rm -rf "$dir"
