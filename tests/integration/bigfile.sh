#!/bin/sh
# A big file written through the mount reads back identical after a remount.
# Size in MiB: SETTFS_BIG_MB (default 256).
. "${srcdir:-.}/tests/integration/lib.sh"
mb=${SETTFS_BIG_MB:-256}
head -c $((mb * 1048576)) /dev/urandom > "$work/big" || fail "make reference"
want=$(sha256sum < "$work/big")
mount_fs
dd if="$work/big" of="$mnt/big" bs=1M status=none || fail "write"
[ "$(sha256sum < "$mnt/big")" = "$want" ] || fail "sha256 before remount"
umount_fs
mount_fs
[ "$(stat -c %s "$mnt/big")" = $((mb * 1048576)) ] || fail "size"
[ "$(sha256sum < "$mnt/big")" = "$want" ] || fail "sha256 after remount"
# overwrite in the middle with small writes, compare against the same on disk
dd if=/dev/urandom of="$work/patch" bs=4096 count=37 status=none
dd if="$work/patch" of="$work/big" bs=4096 seek=1001 conv=notrunc status=none
dd if="$work/patch" of="$mnt/big" bs=4096 seek=1001 conv=notrunc status=none
cmp "$work/big" "$mnt/big" || fail "patched file differs"
umount_fs
check_fsck
echo PASS
