#!/bin/sh
# The MANIFEST lost: fsck.settfs -n refuses (exit 4) and changes nothing,
# -y rebuilds it from the tables (exit 1), the store is then clean, mounts
# and holds every file as last written (an unlinked one stays gone).
. "${srcdir:-.}/tests/integration/lib.sh"
src=${srcdir:-.}
mount_fs
cp -r "$src/kvengine" "$mnt/tree" || fail "copy"
head -c 5000000 /dev/urandom > "$work/big"
want=$(sha256sum < "$work/big")
cp "$work/big" "$mnt/big"
umount_fs
mount_fs
echo "second" > "$mnt/tree/second"
rm "$mnt/tree/api/open.c"
umount_fs
check_fsck

rm "$store/MANIFEST"
before=$(cd "$store" && ls | grep -v LOCK | xargs cat | sha256sum)
"$FSCK" -n "$store" > "$work/out" 2>&1
rc=$?
[ $rc = 4 ] || { cat "$work/out"; fail "fsck -n without MANIFEST: exit $rc, not 4"; }
after=$(cd "$store" && ls | grep -v LOCK | xargs cat | sha256sum)
[ "$before" = "$after" ] || fail "fsck -n changed the store"
"$FSCK" -y "$store" > "$work/out" 2>&1
rc=$?
[ $rc = 1 ] || { cat "$work/out"; fail "fsck -y: exit $rc, not 1"; }
check_fsck
mount_fs
diff -r -x open.c -x second "$src/kvengine" "$mnt/tree" || fail "tree differs after the rebuild"
[ -e "$mnt/tree/api/open.c" ] && fail "an unlinked file came back"
[ "$(cat "$mnt/tree/second")" = second ] || fail "the newer file"
[ "$(sha256sum < "$mnt/big")" = "$want" ] || fail "big file differs"
umount_fs
echo PASS
