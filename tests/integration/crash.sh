#!/bin/sh
# kill -9 of the daemon after an fsync: the data survives, fsck is clean.
# SIGTERM unmounts cleanly and commits what was written.
. "${srcdir:-.}/tests/integration/lib.sh"
head -c 3000000 /dev/urandom > "$work/ref"
want=$(sha256sum < "$work/ref")
mount_fs
mkdir "$mnt/dir"
dd if="$work/ref" of="$mnt/dir/file" bs=64k conv=fsync status=none || fail "write+fsync"
echo "small" > "$mnt/dir/small"
sync "$mnt/dir/small" 2>/dev/null || sync
kill -9 "$daemon"
wait "$daemon" 2>/dev/null
fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt"
daemon=
mount_fs
[ "$(sha256sum < "$mnt/dir/file")" = "$want" ] || fail "fsynced data lost"
[ "$(cat "$mnt/dir/small")" = small ] || fail "synced small file lost"
echo "after term" > "$mnt/dir/t"
kill -TERM "$daemon"
wait "$daemon" || fail "settfs exit status $? after SIGTERM"
daemon=
is_mounted && fail "still mounted after SIGTERM"
check_fsck
mount_fs
[ "$(cat "$mnt/dir/t")" = "after term" ] || fail "data written before SIGTERM"
umount_fs
check_fsck
echo PASS
