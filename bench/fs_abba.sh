#!/usr/bin/env bash
# fs_abba.sh BUILD_DIR OUT.jsonl [ORDER]
#
# fsbench.sh on libfuse's passthrough_ll over ext4 (P), settfs over
# /dev/fuse (S: fuse module enable_uring=0, -o no_io_uring) and settfs over
# io_uring (U: enable_uring=1, -o io_uring), in ORDER (default "P S U U S P"),
# each run on a fresh store / source directory, the file system unmounted
# and mounted again between workloads.  Appends one JSON line per workload
# to OUT.jsonl with the system, the run number, the 1-minute load average
# at the end of the workload, and (for settfs) the daemon's VmHWM and
# fuse.transport read just before each unmount.  Needs root.
#
# Knobs: PTLL (passthrough_ll binary), FSBENCH (fsbench.sh), BASE (scratch
# directory on ext4), and fsbench.sh's own FSBENCH_* variables.
set -euo pipefail
export LC_ALL=C
BUILD=$(cd "$1" && pwd)
OUT=$2
ORDER=${3:-P S U U S P}
PTLL=${PTLL:-/work/pt/passthrough_ll}
FSBENCH=${FSBENCH:-/work/shared/bench/fsbench.sh}
BASE=${BASE:-/tmp/fs_abba.$$}
URING=/sys/module/fuse/parameters/enable_uring
ulimit -n "$(ulimit -Hn)"   # passthrough_ll holds one fd per inode

mkdir -p "$BASE"
MNT=$BASE/mnt
mkdir -p "$MNT"
run=0
for sys in $ORDER; do
	run=$((run + 1))
	D=$BASE/run$run
	rm -rf "$D"; mkdir -p "$D"
	case $sys in
	P)
		echo 0 >"$URING"
		mkdir "$D/src"
		MOUNT="$PTLL -o source=$D/src,writeback,cache=always $MNT"
		;;
	S|U)
		if [ "$sys" = U ]; then echo 1 >"$URING"; o=io_uring; else echo 0 >"$URING"; o=no_io_uring; fi
		"$BUILD/mkfs.settfs" -q "$D/store"
		MOUNT="$BUILD/settfs -o $o $D/store $MNT"
		;;
	esac
	# before each unmount: the daemon's peak RSS and (settfs) its transport
	cat >"$D/hook.sh" <<EOF
pid=\$(pgrep -f -- "$D/[s]" | head -1)
hwm=\$(awk '/VmHWM/ { print \$2 }' /proc/\$pid/status 2>/dev/null || echo 0)
tr=\$("$BUILD/settfs" status "$MNT" 2>/dev/null | awk '/transport/ { print \$NF; exit }')
echo "\$hwm \${tr:-none}" >>"$D/rss"
fusermount3 -u "$MNT"
while kill -0 \$pid 2>/dev/null; do sleep 0.1; done
$MOUNT
EOF
	$MOUNT
	echo "fs_abba: run $run $sys: $MOUNT ($(uptime))" >&2
	FSBENCH_REMOUNT="bash $D/hook.sh" bash "$FSBENCH" "$MNT" | while read -r line; do
		load=$(awk '{ print $1 }' /proc/loadavg)
		echo "$line" | sed "s/^{/{\"system\":\"$sys\",\"run\":$run,\"load1\":$load,/" >>"$OUT"
		echo "$sys $line load $load" >&2
	done
	# final sample and unmount (hook.sh minus the remount)
	head -n -1 "$D/hook.sh" | bash
	awk -v s="$sys" -v r="$run" 'BEGIN { m = 0 } { if ($1 > m) m = $1; t[$2]++ }
		END { tt = ""; for (k in t) tt = tt k "x" t[k] " ";
		      printf("{\"system\":\"%s\",\"run\":%d,\"workload\":\"peak_rss_kb\",\"value\":%d,\"transport\":\"%s\"}\n", s, r, m, tt) }' \
		"$D/rss" >>"$OUT"
	rm -rf "$D"
done
echo 0 >"$URING"
rmdir "$MNT" "$BASE" 2>/dev/null || true
