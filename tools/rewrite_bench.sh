#!/usr/bin/env bash
# rewrite_bench.sh MODE DIR - sustained rewrites of one file inside DIR (a
# settfs mount, or any other file system to compare with), printing the
# throughput per interval: with cost that does not grow with the file's
# history the figures stay flat.  One JSON line per interval on stdout.
#
#   fio: REWRITE_MINUTES (10) minutes; each minute 30 s of 4 KiB and 30 s
#        of 1 MiB random overwrites (fio, psync, fsync at the end of each
#        job) of one REWRITE_SIZE_MB (1024) file, written once before.
#   fsx: xfstests' fsx on a 16 MiB file with operations up to 1 MiB and
#        no mmap (`fsx -N REWRITE_OPS -R -W -l 16777216 -o 1048576 -S 1`,
#        REWRITE_OPS 100000), the binary in REWRITE_FSX; a line about every
#        5,000 operations (fsx reports only some of them) with the ops/s
#        since the last one.
#
# REWRITE_PID: the file system daemon's pid; each line then also carries
# its CPU time per operation (less sensitive to a busy machine than wall
# time) and its peak RSS.
set -euo pipefail
export LC_ALL=C
[ $# -eq 2 ] && [ -d "$2" ] || { echo "usage: $0 fio|fsx DIR" >&2; exit 2; }
mode=$1
f=$(cd "$2" && pwd -P)/rewrite_bench.$$
pid=${REWRITE_PID:-}
trap 'rm -f "$f" "$f".fsx*' EXIT

cpu() { [ -n "$pid" ] && awk '{ print ($14 + $15) / 100 }' "/proc/$pid/stat" || echo 0; }
hwm() { [ -n "$pid" ] && awk '/VmHWM/ { print $2 }' "/proc/$pid/status" || echo 0; }
# line NAME INTERVAL OPS SECONDS CPU0 CPU1 [MIB]
line() {
	awk -v n="$1" -v i="$2" -v o="$3" -v s="$4" -v c0="$5" -v c1="$6" -v mb="${7:-}" \
	    -v rss="$(hwm)" 'BEGIN {
		if (s <= 0) s = 1e-9;
		printf("{\"workload\":\"%s\",\"interval\":%d,\"ops\":%d,\"seconds\":%.1f,\"ops_per_s\":%.1f", n, i, o, s, o / s);
		if (mb != "") printf(",\"mb_per_s\":%.1f", mb / s);
		if (c1 > 0) printf(",\"daemon_cpu_ms_per_op\":%.3f,\"daemon_peak_rss_kb\":%d", 1000 * (c1 - c0) / (o ? o : 1), rss);
		printf("}\n");
	}'
}

case $mode in
fio)
	command -v fio >/dev/null || { echo "rewrite_bench: no fio" >&2; exit 1; }
	size=${REWRITE_SIZE_MB:-1024}
	dd if=/dev/urandom of="$f" bs=1M count="$size" conv=fsync status=none
	for m in $(seq "${REWRITE_MINUTES:-10}"); do
		for bs in 4k 1m; do
			c0=$(cpu)
			out=$(fio --name=rw --filename="$f" --rw=randwrite --bs=$bs --size=${size}M \
				--ioengine=psync --time_based --runtime=30 --end_fsync=1 \
				--randrepeat=0 --output-format=json)
			c1=$(cpu)
			read -r ios secs mib < <(echo "$out" | jq -r '.jobs[0].write |
				"\(.total_ios) \(.runtime / 1000) \(.io_bytes / 1048576)"')
			line "rewrite_$bs" "$m" "$ios" "$secs" "$c0" "$c1" "$mib"
		done
	done
	;;
fsx)
	fsx=${REWRITE_FSX:?set REWRITE_FSX to an fsx binary (xfstests ltp/fsx.c)}
	n=${REWRITE_OPS:-100000}
	t0=$EPOCHREALTIME
	c0=$(cpu)
	last=0 tl=$t0 cl=$c0 i=0
	while read -r op _; do
		case $op in
		[0-9]*) ;;
		All) op=$n ;;
		*) continue ;;
		esac
		[ "$op" -gt "$last" ] || continue
		t=$EPOCHREALTIME c=$(cpu) i=$((i + 1))
		line fsx_nommap_big "$i" $((op - last)) "$(echo "$t - $tl" | bc)" "$cl" "$c"
		last=$op tl=$t cl=$c
	done < <("$fsx" -q -N "$n" -p 5000 -R -W -l 16777216 -o 1048576 -S 1 "$f" 2>&1)
	line fsx_nommap_big_total 0 "$n" "$(echo "$EPOCHREALTIME - $t0" | bc)" "$c0" "$(cpu)"
	;;
*)
	echo "usage: $0 fio|fsx DIR" >&2
	exit 2
	;;
esac
