#!/bin/sh
# 1000 files in one directory: listed, stat'ed and removed.
. "${srcdir:-.}/tests/integration/lib.sh"
mount_fs
mkdir "$mnt/d"
i=0
while [ $i -lt 1000 ]; do
	: > "$mnt/d/file_$i"
	i=$((i + 1))
done
[ "$(ls "$mnt/d" | wc -l)" = 1000 ] || fail "ls count"
[ "$(ls -l "$mnt/d" | grep -c file_)" = 1000 ] || fail "ls -l count"
[ "$(find "$mnt/d" -type f | wc -l)" = 1000 ] || fail "find count"
umount_fs
mount_fs
[ "$(ls -U "$mnt/d" | wc -l)" = 1000 ] || fail "count after remount"
rm "$mnt/d"/file_* || fail "rm"
[ -z "$(ls -A "$mnt/d")" ] || fail "not empty"
rmdir "$mnt/d" || fail "rmdir"
umount_fs
check_fsck
echo PASS
