#!/bin/sh
# `mount -t fuse.settfs STORE DIR -o opts` (via mount.fuse3) and mount.settfs.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v mount >/dev/null 2>&1 || skip "no mount"
command -v mount.fuse3 >/dev/null 2>&1 || [ -x /sbin/mount.fuse3 ] || skip "no mount.fuse3"
PATH=$(dirname "$SETTFS"):$PATH
export PATH
"$MKFS" "$store" >/dev/null || fail "mkfs.settfs"
"$MKFS" "$store" 2>/dev/null && fail "mkfs.settfs overwrote a store"
# mount(8) runs its helpers with a standard PATH: use the installed settfs
# when there is one, else name the built program in the source (type#store).
if PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v settfs >/dev/null; then
	mount -t fuse.settfs "$store" "$mnt" -o timeout=2 || fail "mount -t fuse.settfs"
else
	mount -t fuse "$SETTFS#$store" "$mnt" -o timeout=2 || fail "mount -t fuse PROG#STORE"
fi
is_mounted || fail "not mounted"
grep " $mnt " /proc/mounts | grep -q "fuse.settfs" || fail "type in /proc/mounts"
grep " $mnt " /proc/mounts | grep -q "default_permissions" || fail "default_permissions"
echo hi > "$mnt/x"
umount "$mnt" || fail "umount"
sleep 0.5
sh "$top/tools/mount.settfs" "$store" "$mnt" -o rw || fail "mount.settfs"
is_mounted || fail "not mounted by mount.settfs"
[ "$(cat "$mnt/x")" = hi ] || fail "data"
umount "$mnt" || fail "umount 2"
# an fstab line (mount --fstab reads a private file instead of /etc/fstab)
if PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v settfs >/dev/null; then
	echo "$store $mnt fuse.settfs defaults,noauto,_netdev 0 0" > "$work/fstab"
else
	echo "$SETTFS#$store $mnt fuse defaults,noauto,_netdev 0 0" > "$work/fstab"
fi
i=0
while pgrep -f "settfs.*$store" >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
mount --fstab "$work/fstab" "$mnt" || fail "mount from fstab"
is_mounted || fail "not mounted from fstab"
[ "$(cat "$mnt/x")" = hi ] || fail "data via fstab mount"
umount "$mnt" || fail "umount 3"
i=0
while pgrep -f "settfs.*$store" >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check_fsck
echo PASS
