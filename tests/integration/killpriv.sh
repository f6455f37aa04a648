#!/bin/sh
# Writes, truncates, fallocate (every mode) and chown clear
# set-user-ID/set-group-ID as on a kernel (set-group-ID without group
# execute only when the caller is not in the file's group)
# filesystem (the daemon does it when the kernel hands it the job with
# FUSE_HANDLE_KILLPRIV_V2; for fallocate it decides by the caller's uid), a
# writer with CAP_FSETID keeps them, and a write or fallocate removes
# security.capability, also after earlier writes let the kernel stop asking.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v setpriv >/dev/null 2>&1 || skip "no setpriv (util-linux)"
command -v setfattr >/dev/null 2>&1 || skip "no setfattr (attr package)"
chmod 755 "$work"
mount_fs -o allow_other
m=$mnt
# as an unprivileged user without CAP_FSETID
asuser() { setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c "$1"; }
mode() { stat -c %a "$1"; }

for f in w t o; do echo data > "$m/$f"; chmod 4777 "$m/$f"; done
echo data > "$m/g"; chmod 2777 "$m/g"
echo data > "$m/r"; chmod 4777 "$m/r"
echo data > "$m/c"; chmod 4755 "$m/c"
[ "$(mode "$m/w")" = 4777 ] || fail "setup: mode $(mode "$m/w")"

asuser "echo more >> '$m/w'" || fail "write as user"
[ "$(mode "$m/w")" = 777 ] || fail "write kept set-user-ID: $(mode "$m/w")"
asuser "echo more >> '$m/g'" || fail "write as user"
[ "$(mode "$m/g")" = 777 ] || fail "write kept set-group-ID: $(mode "$m/g")"
# set-group-ID without group execute: a member keeps it, a non-member drops it
# (Linux's setattr_should_drop_sgid); write and truncate, user not in group 0
for op in "echo more >>" "truncate -s 1"; do
	echo data > "$m/n"; chmod 2767 "$m/n"
	asuser "$op '$m/n'" || fail "$op as user"
	[ "$(mode "$m/n")" = 767 ] || fail "$op by a non-member kept set-group-ID: $(mode "$m/n")"
	chgrp 65534 "$m/n"; chmod 2767 "$m/n"
	asuser "$op '$m/n'" || fail "$op as user"
	[ "$(mode "$m/n")" = 2767 ] || fail "$op by a member cleared set-group-ID: $(mode "$m/n")"
	rm "$m/n"
done
asuser "truncate -s 2 '$m/t'" || fail "truncate as user"
[ "$(mode "$m/t")" = 777 ] || fail "truncate kept set-user-ID: $(mode "$m/t")"
[ "$(stat -c %s "$m/t")" = 2 ] || fail "truncate size"
asuser ": > '$m/o'" || fail "O_TRUNC open as user"
[ "$(mode "$m/o")" = 777 ] || fail "O_TRUNC kept set-user-ID: $(mode "$m/o")"
# fallocate: the request carries no kill flag, the daemon decides by the caller
command -v fallocate >/dev/null 2>&1 || skip "no fallocate (util-linux)"
for a in "-l 100000" "-n -l 100000" "-p -o 0 -l 2" "-z -o 0 -l 2" "-z -n -o 0 -l 2"; do
	f=$m/fa$(echo "$a" | tr -dc a-z)
	echo data > "$f"; chmod 6777 "$f"
	asuser "fallocate $a '$f'" || fail "fallocate $a as user"
	[ "$(mode "$f")" = 777 ] || fail "fallocate $a kept set-user-ID: $(mode "$f")"
	chmod 2767 "$f"
	asuser "fallocate $a '$f'" || fail "fallocate $a as user"
	[ "$(mode "$f")" = 767 ] || fail "fallocate $a by a non-member kept set-group-ID: $(mode "$f")"
	chgrp 65534 "$f"; chmod 2767 "$f"
	asuser "fallocate $a '$f'" || fail "fallocate $a as user"
	[ "$(mode "$f")" = 2767 ] || fail "fallocate $a by a member cleared set-group-ID without g+x: $(mode "$f")"
	chgrp 0 "$f"
	chmod 6777 "$f"
	fallocate $a "$f" || fail "fallocate $a as root"
	[ "$(mode "$f")" = 6777 ] || fail "root's fallocate $a cleared the bits: $(mode "$f")"
	chmod 6777 "$f"
	asuser "fallocate $a '$f'" || fail "fallocate $a as user"
done
echo root >> "$m/r"
[ "$(mode "$m/r")" = 4777 ] || fail "root's write cleared set-user-ID: $(mode "$m/r")"
chown 65534 "$m/c"
[ "$(mode "$m/c")" = 755 ] || fail "chown kept set-user-ID: $(mode "$m/c")"

# security.capability: cap_net_raw+ep (VFS_CAP_REVISION_2, effective)
cap=0x0100000200200000000000000000000000000000
echo data > "$m/x"
echo more >> "$m/x"
setfattr -n security.capability -v $cap "$m/x" || fail "set capability"
getfattr -n security.capability "$m/x" >/dev/null 2>&1 || fail "capability not set"
echo more >> "$m/x"
getfattr -n security.capability "$m/x" >/dev/null 2>&1 && fail "write kept security.capability"
setfattr -n security.capability -v $cap "$m/x" || fail "set capability"
fallocate -z -o 0 -l 2 "$m/x" || fail "fallocate"
getfattr -n security.capability "$m/x" >/dev/null 2>&1 && fail "fallocate kept security.capability"
[ "$(cat "$m/w")" = "data
more" ] || fail "content of w"

umount_fs
mount_fs
[ "$(mode "$m/w")" = 777 ] && [ "$(mode "$m/r")" = 4777 ] || fail "modes after remount"
[ "$(mode "$m/faznol")" = 777 ] || fail "fallocate's mode after remount: $(mode "$m/faznol")"
umount_fs

# With KILLPRIV_V2 negotiated the kernel stops asking for security.capability
# before each write(2) once it checked the inode (without: one GETXATTR per write).
mount_fs -d 2>"$work/debug.log"
dd if=/dev/zero of="$m/many" bs=4096 count=200 status=none || fail "writes"
umount_fs
n=$(grep -c "opcode: GETXATTR" "$work/debug.log")
[ "$n" -lt 20 ] || fail "$n GETXATTR requests for 200 writes"
check_fsck
echo PASS
