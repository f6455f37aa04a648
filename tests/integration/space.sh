#!/bin/sh
# Deleted data gives its space back on its own: on a real disk, write a set
# of files, delete half of them and wait (bounded) until the store is within
# 1.25x of the live data, then delete the rest and wait until it is below
# 64 MiB + 5 % of what was live.  No remount, no manual GC.
# SETTFS_SPACE_MB: data written (default 512); SETTFS_SPACE_DIR: where the
# store lives (default /var/tmp: not a tmpfs); SETTFS_SPACE_WAIT: seconds
# to wait for each step (default 300).
TMPDIR=${SETTFS_SPACE_DIR:-/var/tmp}
. "${srcdir:-.}/tests/integration/lib.sh"
mb=${SETTFS_SPACE_MB:-512}
wait_max=${SETTFS_SPACE_WAIT:-300}
fmb=8
nfiles=$((mb / fmb))
head -c $((fmb << 20)) /dev/urandom > "$work/ref" || fail "make reference"

store_bytes() { du -sB1 "$store" | cut -f1; }

# wait_below LIMIT WHAT: prints the size every 5 s until it is <= LIMIT.
wait_below() {
	t=0
	while :; do
		b=$(store_bytes)
		echo "  t=${t}s store $((b >> 20)) MiB (limit $(($1 >> 20)) MiB)"
		[ "$b" -le "$1" ] && return 0
		if [ $t -ge "$wait_max" ]; then
			ls -l "$store"
			"$SETTFS" status "$mnt" | grep -A12 "^vlog"
			"$SETTFS" status "$mnt" | grep -A12 "^lsm"
			fail "$2: store still $((b >> 20)) MiB after ${wait_max} s"
		fi
		sleep 5
		t=$((t + 5))
	done
}

mount_fs
i=0
while [ $i -lt $nfiles ]; do
	# each file differs from the others in its first bytes
	{ printf '%08d' $i; tail -c +9 "$work/ref"; } > "$mnt/f$i" || fail "write f$i"
	i=$((i + 1))
done
sync
echo "wrote $nfiles files of $fmb MiB: store $(($(store_bytes) >> 20)) MiB"
i=0
while [ $i -lt $nfiles ]; do
	rm "$mnt/f$i" || fail "rm f$i"
	i=$((i + 2))
done
live=$(( (nfiles / 2) * (fmb << 20) ))
echo "deleted half: live $((live >> 20)) MiB"
wait_below $((live + live / 4)) "after deleting half"
i=1
while [ $i -lt $nfiles ]; do
	{ printf '%08d' $i; tail -c +9 "$work/ref"; } | cmp -s - "$mnt/f$i" || fail "f$i differs"
	i=$((i + 2))
done
rm -f "$mnt"/f* || fail "rm the rest"
echo "deleted everything"
wait_below $(( (64 << 20) + live / 20 )) "after deleting everything"
umount_fs
check_fsck
echo PASS
