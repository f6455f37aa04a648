#!/bin/sh
# A mount namespace made while the store is mounted holds a copy of the
# mount.  Unmounting the original does not end the FUSE connection: the
# daemon goes on serving the copy, and holds the store, until the copy is
# unmounted too (the store lock is released only when no request can be
# served).  `settfs umount` says so within seconds (exit 3) instead of waiting
# for a release that cannot come; once the namespace is gone the daemon
# exits by itself and the store is clean.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v unshare >/dev/null 2>&1 || skip "no unshare"
command -v nsenter >/dev/null 2>&1 || skip "no nsenter"

holder=
trap 'kill "$holder" 2>/dev/null; cleanup' EXIT
mount_fs
echo hello > "$mnt/f" || fail "write"
unshare -m sh -c "echo \$\$ > '$work/holder'; exec sleep 120" &
holder=$!
i=0
while [ ! -s "$work/holder" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$work/holder" ] || fail "no namespace"
holder=$(cat "$work/holder")
"$SETTFS" umount -t 20 "$mnt" 2>"$work/err"
st=$?
cat "$work/err"
[ "$st" = 3 ] || fail "settfs umount: exit $st, not 3"
grep -q "still mounted elsewhere" "$work/err" || fail "settfs umount does not say the mount lives on"
is_mounted && fail "still mounted here"
kill -0 "$daemon" 2>/dev/null || fail "the daemon stopped serving the copy"
[ "$(nsenter -t "$holder" -m cat "$mnt/f")" = hello ] || fail "the copy does not read"
kill "$holder"
holder=
exited "$daemon" 30 || fail "the daemon did not exit once the copy was gone"
wait "$daemon" || fail "exit status $?"
daemon=
check_fsck
echo PASS
