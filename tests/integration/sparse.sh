#!/bin/sh
# Sparse files: a 10 GiB hole costs nothing, reads zeros; SEEK_DATA/SEEK_HOLE;
# fallocate modes.
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
# fallocate allocates: an unaligned range counts in st_blocks, and writing
# there adds none (xfstests generic/568)
fallocate -o 4095 -l 2 "$mnt/fa" || fail "fallocate"
b0=$(stat -c %b "$mnt/fa")
[ "$b0" -gt 0 ] || fail "fallocate allocated nothing"
printf ab | dd of="$mnt/fa" bs=1 seek=4095 conv=notrunc status=none || fail "write"
sync "$mnt/fa"
[ "$(stat -c %b "$mnt/fa")" = "$b0" ] || fail "blocks grew from $b0 to $(stat -c %b "$mnt/fa")"
# zero range, keeping the size and not
head -c 300000 /dev/urandom > "$mnt/z"
fallocate -z -o 1000 -l 140000 "$mnt/z" || fail "zero range"
cmp -n 140000 -i 1000:0 "$mnt/z" /dev/zero || fail "zeroed range not zero"
fallocate -z -n -o 290000 -l 100000 "$mnt/z" || fail "zero range, keep size"
[ "$(stat -c %s "$mnt/z")" = 300000 ] || fail "zero range changed the size"
fallocate -z -o 299000 -l 100000 "$mnt/z" || fail "zero range past the end"
[ "$(stat -c %s "$mnt/z")" = 399000 ] || fail "zero range size"
cmp -n 109000 -i 290000:0 "$mnt/z" /dev/zero || fail "zeroed tail not zero"
truncate -s 100000 "$mnt/p"
[ "$(stat -c %s "$mnt/p")" = 100000 ] || fail "truncate down"
umount_fs
mount_fs
[ "$(dd if="$mnt/sp" bs=1 skip=5368709120 count=4 status=none)" = data ] || fail "data after remount"
[ "$(stat -c %b "$mnt/fa")" = "$b0" ] || fail "blocks after remount"
umount_fs
# more than the free space above the reserve: ENOSPC (xfstests generic/213),
# with a reserve that leaves 512 MiB (so a failure writes 1.5 GiB at most)
free=$(( $(stat -f -c '%a * %S' "$work") ))
if [ "$free" -gt 2147483648 ]; then
	mount_fs -o reserve=$(( free - 536870912 ))
	fallocate -l 1610612736 "$mnt/huge" 2>"$work/err" && fail "fallocate beyond the free space succeeded"
	grep -q "No space left" "$work/err" || fail "fallocate: $(cat "$work/err")"
	[ "$(stat -c %s "$mnt/huge")" = 0 ] || fail "a refused fallocate changed the size"
	fallocate -l 1048576 "$mnt/huge" || fail "fallocate within the free space"
	umount_fs
fi
check_fsck
echo PASS
