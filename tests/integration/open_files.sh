#!/bin/sh
# Unlink and rename-over of open files: data stays readable until close;
# O_APPEND; O_WRONLY files; then the space is reclaimed.  Run with the
# kernel's writeback cache (default) and without (the daemon appends).
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"
for opts in "-o writeback_cache" "-o no_writeback_cache"; do
rm -rf "$store"
mount_fs $opts
python3 - "$mnt" <<'PY' || fail "open-file semantics"
import os, sys
m = sys.argv[1]
p = os.path.join(m, "u")
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"still here" * 1000)
os.unlink(p)
assert not os.path.exists(p)
os.lseek(fd, 0, 0)
assert os.read(fd, 10) == b"still here"
assert os.fstat(fd).st_nlink == 0
os.write(fd, b"more")
os.close(fd)

a, b = os.path.join(m, "a"), os.path.join(m, "b")
open(a, "w").write("new")
open(b, "w").write("old contents")
fd = os.open(b, os.O_RDONLY)
os.rename(a, b)
assert os.read(fd, 100) == b"old contents"
os.close(fd)
assert open(b).read() == "new"

c = os.path.join(m, "c")
open(c, "w").write("12")
fd = os.open(c, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"34")
os.lseek(fd, 0, 0)
os.write(fd, b"56")
os.close(fd)
assert open(c).read() == "123456", open(c).read()

# exchange and noreplace through renameat2 where available
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    open(a, "w").write("A")
    r = libc.renameat2(-100, a.encode(), -100, b.encode(), 2)  # RENAME_EXCHANGE
    if r == 0:
        assert open(a).read() == "new" and open(b).read() == "A"
        r = libc.renameat2(-100, a.encode(), -100, b.encode(), 1)  # NOREPLACE
        assert r == -1 and ctypes.get_errno() == 17
except AttributeError:
    pass
PY
umount_fs
check_fsck
done
echo PASS
