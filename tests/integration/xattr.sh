#!/bin/sh
# Extended attributes with setfattr/getfattr, kept across a remount.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v setfattr >/dev/null 2>&1 || skip "no setfattr (attr package)"
mount_fs
echo x > "$mnt/f"
mkdir "$mnt/d"
setfattr -n user.color -v blue "$mnt/f" || fail "setfattr"
setfattr -n user.empty "$mnt/f" || fail "setfattr empty"
setfattr -n user.dir -v yes "$mnt/d" || fail "setfattr dir"
[ "$(getfattr --only-values -n user.color "$mnt/f")" = blue ] || fail "getfattr"
getfattr -n user.missing "$mnt/f" 2>/dev/null && fail "missing attribute found"
umount_fs
mount_fs
[ "$(getfattr --only-values -n user.color "$mnt/f")" = blue ] || fail "after remount"
getfattr -d "$mnt/f" | grep -q 'user.empty' || fail "list"
setfattr -x user.color "$mnt/f" || fail "remove"
getfattr -n user.color "$mnt/f" 2>/dev/null && fail "removed attribute found"
umount_fs
check_fsck
echo PASS
