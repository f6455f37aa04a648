#!/bin/sh
# encrypt_abba.sh - encryption at rest and backup/load, sett beside Badger,
# in A B B A order (A: unencrypted, B: encrypted) so that a drift of the
# machine's load falls on both alike.  doc/PERFORMANCE.md quotes it.
#
#   bench/encrypt_abba.sh SETT BADGER_BENCH DIR [SCALE]
#
# SETT: a built `sett`; BADGER_BENCH: bench/badger/build.sh's program; DIR:
# scratch space (emptied per run).  SCALE (0.2) scales the key counts of
# WORKLOADS.md.  One JSON line per workload on stdout, each with "run"
# (1-4), "encrypted", "load1" (the load average when it started) and, for
# sett, "cpu_s" (user + system seconds of the workload's process, which a
# busy machine distorts less than the wall clock); Badger runs every
# workload in one process, whose CPU seconds end its run ("process").
set -e
sett=$1 badger=$2 dir=$3 scale=${4:-0.2}
[ -x "$sett" ] && [ -x "$badger" ] && [ -n "$dir" ] || {
	echo "usage: $0 SETT BADGER_BENCH DIR [SCALE]" >&2
	exit 2
}
workloads="fillseq_small fillrandom_large readrandom_small readrandom_large scan_small
backup_small load_small backup_large load_large"
tag() { sed "s/^{/{\"run\":$1,\"load1\":$(cut -d' ' -f1 /proc/loadavg),/"; }
run=0
for mode in plain enc enc plain; do
	run=$((run + 1))
	enc=
	[ $mode = enc ] && enc=1
	rm -rf "$dir/sett" && mkdir -p "$dir/sett"
	for w in $workloads; do
		/usr/bin/time -f '%U %S' -o "$dir/cpu" \
			"$sett" bench ${enc:+--encrypt} --scale "$scale" --workload "$w" --dir "$dir/sett" \
			> "$dir/line"
		sed "s/}\$/,\"cpu_s\":$(awk '{ print $1 + $2 }' "$dir/cpu")}/" "$dir/line"
	done | tag $run
	rm -rf "$dir/sett"
	/usr/bin/time -f '%U %S' -o "$dir/cpu" \
		"$badger" -scale "$scale" -backup -no-overwrite ${enc:+-encrypt} -dir "$dir" 2>/dev/null |
		grep -v '"workload":"config"' | tag $run
	echo "{\"engine\":\"badger\",\"workload\":\"process\"${enc:+,\"encrypted\":true},\"cpu_s\":$(awk '{ print $1 + $2 }' "$dir/cpu")}" |
		tag $run
done
