#!/bin/sh
# Sparse files: a 10 GiB hole costs nothing, reads zeros; SEEK_DATA/SEEK_HOLE.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"
mount_fs
truncate -s 10G "$mnt/sp" || fail "truncate"
[ "$(stat -c %s "$mnt/sp")" = 10737418240 ] || fail "size"
[ "$(du -k "$mnt/sp" | cut -f1)" -lt 64 ] || fail "du of a hole"
printf 'data' | dd of="$mnt/sp" bs=1 seek=5368709120 conv=notrunc status=none || fail "dd seek"
cmp -n 1048576 "$mnt/sp" /dev/zero || fail "hole is not zeros"
[ "$(dd if="$mnt/sp" bs=1 skip=5368709120 count=4 status=none)" = data ] || fail "data"
[ "$(du -k "$mnt/sp" | cut -f1)" -lt 256 ] || fail "du after a small write"
python3 - "$mnt/sp" <<'PY' || fail "lseek"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
assert os.lseek(fd, 0, os.SEEK_DATA) == 5368709120, os.lseek(fd, 0, os.SEEK_DATA)
assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
# the kernel's writeback cache may store the whole page around the data
h = os.lseek(fd, 5368709120, os.SEEK_HOLE)
assert 5368709124 <= h <= 5368709120 + 65536, h
PY
# punch a hole into real data
head -c 1048576 /dev/urandom > "$mnt/p"
fallocate -p -o 65536 -l 131072 "$mnt/p" || fail "punch hole"
cmp -n 131072 -i 65536:0 "$mnt/p" /dev/zero || fail "punched range not zero"
truncate -s 100000 "$mnt/p"
[ "$(stat -c %s "$mnt/p")" = 100000 ] || fail "truncate down"
umount_fs
mount_fs
[ "$(dd if="$mnt/sp" bs=1 skip=5368709120 count=4 status=none)" = data ] || fail "data after remount"
umount_fs
check_fsck
echo PASS
