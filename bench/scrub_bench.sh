#!/bin/sh
# scrub_bench.sh BUILDDIR [DIR] - settfs scrub throughput and its effect on
# a concurrent workload (doc/PERFORMANCE.md, "Online scrub").
# Run it on a quiet machine: its figures are times of one run each.
#
# Makes a store in DIR (default /var/tmp) holding SCRUB_BENCH_MB MiB of
# file data (default 512: one large file and 2000 small ones), remounts it,
# then: (1) scrubs at the default rate and with no limit, printing each
# scrub's MB/s; (2) runs a workload (write 2 x SCRUB_BENCH_MB MiB with
# fsync, then read a file of SCRUB_BENCH_MB/2 MiB four times with
# O_DIRECT; dd bs=1M) with no scrub, with a
# scrub at the default rate and with an unlimited one running beside it,
# in the order A B C C B A, printing each run's time.  Needs root, FUSE.
set -eu
b=$(cd "$1" && pwd)
dir=${2:-/var/tmp}
mb=${SCRUB_BENCH_MB:-512}
work=$(mktemp -d "$dir/scrub-bench.XXXXXX")
store=$work/store
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
	fusermount3 -u "$mnt" 2>/dev/null || true
	sleep 1
	rm -rf "$work"
}
trap cleanup EXIT

mount_fs() {
	"$b/settfs" "$store" "$mnt"
}
umount_fs() {
	"$b/settfs" umount "$mnt" >/dev/null
}
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

mount_fs
head -c $((mb << 20)) /dev/urandom > "$mnt/large"
mkdir "$mnt/small"
i=0
while [ $i -lt 2000 ]; do
	head -c 1500 /dev/urandom > "$mnt/small/$i"
	i=$((i + 1))
done
head -c $((mb << 19)) /dev/urandom > "$mnt/readback"
umount_fs
mount_fs
echo "store: $(du -sm "$store" | cut -f1) MiB on $(df --output=source "$dir" | tail -1)"

scrub_once() { # scrub_once RATE_ARGS...
	t0=$(now)
	"$b/settfs" scrub "$@" "$mnt" > "$work/scrub.out" || { cat "$work/scrub.out"; exit 1; }
	t1=$(now)
	total=$(du -sb "$store" | cut -f1)
	echo "scrub $*: $(secs "$t0" "$t1") s for $((total >> 20)) MiB: $(echo "$total / 1048576 / ($t1 - $t0)" | bc) MiB/s"
}
scrub_once
scrub_once --rate 0

workload() { # workload LABEL SCRUB_ARGS (or "none")
	rm -f "$mnt/w"
	if [ "$2" != none ]; then
		# shellcheck disable=SC2086
		"$b/settfs" scrub --no-wait $2 "$mnt" >/dev/null
	fi
	t0=$(now)
	dd if=/dev/zero of="$mnt/w" bs=1M count=$((2 * mb)) conv=fsync status=none
	t1=$(now)
	# O_DIRECT: every read reaches the daemon, not the mount's page cache
	for k in 1 2 3 4; do
		dd if="$mnt/readback" of=/dev/null bs=1M iflag=direct status=none
	done
	t2=$(now)
	state=$("$b/settfs" scrub --status "$mnt" | head -1)
	echo "workload $1: write $(secs "$t0" "$t1") s, read $(secs "$t1" "$t2") s ($state at its end)"
	# let a scrub still running finish (or restart it with the next run)
	while "$b/settfs" scrub --status "$mnt" | grep -q running; do sleep 0.5; done
}
for run in none default unlimited unlimited default none; do
	case $run in
	none) workload "no scrub" none ;;
	default) workload "scrub at 64 MiB/s" "" ;;
	unlimited) workload "scrub, no limit" "--rate 0" ;;
	esac
done
