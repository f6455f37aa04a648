#!/bin/sh
# `mount -t fuse.settfs STORE DIR -o opts` (via mount.fuse3) and mount.settfs,
# its remounts, and a STORE given as settfs:/STORE (the mount's source).
. "${srcdir:-.}/tests/integration/lib.sh"
command -v mount >/dev/null 2>&1 || skip "no mount"
command -v mount.fuse3 >/dev/null 2>&1 || [ -x /sbin/mount.fuse3 ] || skip "no mount.fuse3"
PATH=$(dirname "$SETTFS"):$PATH
export PATH
# mounts made through mount(8) have no $daemon for cleanup to stop
helper_cleanup() {
	is_mounted && { "$SETTFS" umount -t 10 "$mnt" || fusermount3 -u -z "$mnt"; }
	cleanup
}
trap helper_cleanup EXIT
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
sh "$top/tools/mount.settfs" "settfs:$store" "$mnt" -o rw || fail "mount.settfs"
is_mounted || fail "not mounted by mount.settfs"
[ "$(cat "$mnt/x")" = hi ] || fail "data"
# as settfs mounts by itself: nosuid,nodev unless asked, and its fsname
grep " $mnt " /proc/mounts | grep -q "^settfs:$store .*,nosuid,nodev," || { grep " $mnt " /proc/mounts; fail "mount.settfs: not nosuid,nodev settfs:STORE"; }
# a remount changes the kernel's mount, it starts no second daemon
sh "$top/tools/mount.settfs" "$store" "$mnt" -o remount,ro || fail "remount,ro"
grep " $mnt " /proc/mounts | grep -q " ro," || fail "not read-only after remount,ro"
(echo y > "$mnt/y") 2>/dev/null && fail "a write on the read-only remount"
[ "$(cat "$mnt/x")" = hi ] || fail "data after remount,ro"
sh "$top/tools/mount.settfs" "settfs:$store" "$mnt" -o remount,rw || fail "remount,rw"
echo y > "$mnt/y" || fail "write after remount,rw"
umount "$mnt" || fail "umount 2"
i=0
while pgrep -f "settfs.*$store" >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
sh "$top/tools/mount.settfs" "$store" "$mnt" -o suid || fail "mount.settfs -o suid"
grep " $mnt " /proc/mounts | grep -q ",nosuid" && fail "mount.settfs -o suid: nosuid"
"$SETTFS" umount "$mnt" || fail "settfs umount (suid)"

# drop_privileges: mount.fuse3 mounts and hands settfs /dev/fd/N.  The
# daemon finds its mount by the source mount.settfs names (its bdi is
# tuned: read_ahead_kb 1024 from FUSE's 128) and `settfs umount` finds it
sh "$top/tools/mount.settfs" "$store" "$mnt" -o drop_privileges || fail "mount.settfs -o drop_privileges"
is_mounted || fail "not mounted with drop_privileges"
pgrep -f "settfs $store /dev/fd/" >/dev/null || fail "drop_privileges: the daemon was not handed /dev/fd/N"
grep " $mnt " /proc/mounts | grep -q "^settfs:$store .*,nosuid,nodev,.*default_permissions" || { grep " $mnt " /proc/mounts; fail "drop_privileges: mount options"; }
[ "$(cat "$mnt/x")" = hi ] || fail "data (drop_privileges)"
dev=$(awk -v m="$mnt" '$5 == m { print $3 }' /proc/self/mountinfo)
ra=$(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null)
[ -z "$ra" ] || [ "$ra" = 1024 ] || fail "drop_privileges: read_ahead_kb $ra: the daemon did not find its mount"
"$SETTFS" umount "$mnt" || fail "settfs umount (drop_privileges)"
# allow_dev (dev as mount(8) passes it on) also where mount.fuse3 mounts
sh "$top/tools/mount.settfs" "$store" "$mnt" -o drop_privileges,allow_dev || fail "mount.settfs -o drop_privileges,allow_dev"
is_mounted || fail "not mounted with drop_privileges,allow_dev"
grep " $mnt " /proc/mounts | grep -q "^settfs:$store .*,nosuid,relatime,.*default_permissions" || { grep " $mnt " /proc/mounts; fail "drop_privileges,allow_dev: mount options"; }
"$SETTFS" umount "$mnt" || fail "settfs umount (drop_privileges,allow_dev)"
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
