#!/bin/sh
# The daemon sets its mount's readahead and dirty page share (sysfs bdi),
# after INIT (which would reset the readahead), and -o changes them.
. "${srcdir:-.}/tests/integration/lib.sh"
bdi() {
	dev=$(awk -v m="$mnt" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo)
	[ -n "$dev" ] || fail "mount not in mountinfo"
	[ -d "/sys/class/bdi/$dev" ] || skip "no /sys/class/bdi/$dev"
	echo "$(cat "/sys/class/bdi/$dev/read_ahead_kb") $(cat "/sys/class/bdi/$dev/max_ratio")"
}
mount_fs
ls "$mnt" >/dev/null
[ "$(bdi)" = "1024 50" ] || fail "defaults: readahead/max_ratio $(bdi)"
umount_fs
mount_fs -o readahead_kb=512,dirty_ratio=20
ls "$mnt" >/dev/null
[ "$(bdi)" = "512 20" ] || fail "options: readahead/max_ratio $(bdi)"
dd if=/dev/urandom of="$mnt/f" bs=1M count=8 status=none || fail "write"
cmp "$mnt/f" "$mnt/f" || fail "read"
umount_fs
check_fsck
echo PASS
