#!/bin/sh
# File handles (name_to_handle_at/open_by_handle_at, what NFS export and
# xfstests' exportfs tests use) outlive the kernel's inode cache: handles of
# a file, a directory and a file in it, taken before a remount, open the
# same inodes after it (the kernel has forgotten them and looks each up as
# "." in its inode number), and a handle of a file deleted meanwhile is
# stale (ESTALE).
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

mount_fs
mkdir "$mnt/d"
echo one > "$mnt/f"
echo two > "$mnt/d/g"
echo three > "$mnt/gone"
python3 - "$mnt" "$work/handles" take <<'PY' || fail "name_to_handle_at"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mnt, out = sys.argv[1], sys.argv[2]
with open(out, "w") as o:
    for name in ("f", "d", "d/g", "gone"):
        buf = ctypes.create_string_buffer(8 + 128)
        ctypes.c_uint.from_buffer(buf, 0).value = 128
        mid = ctypes.c_int()
        if libc.name_to_handle_at(-100, os.path.join(mnt, name).encode(), buf,
                                  ctypes.byref(mid), 0) != 0:
            e = ctypes.get_errno()
            sys.exit("%s: %s" % (name, os.strerror(e)))
        n = ctypes.c_uint.from_buffer(buf, 0).value
        o.write("%s %s\n" % (name, buf.raw[:8 + n].hex()))
PY
rm "$mnt/gone"
umount_fs
mount_fs
python3 - "$mnt" "$work/handles" <<'PY' || fail "open_by_handle_at after a remount"
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mnt, path = sys.argv[1], sys.argv[2]
mfd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
for line in open(path):
    name, h = line.split()
    buf = ctypes.create_string_buffer(bytes.fromhex(h))
    flags = os.O_RDONLY | (os.O_DIRECTORY if name == "d" else 0)
    fd = libc.open_by_handle_at(mfd, buf, flags)
    e = ctypes.get_errno()
    if name == "gone":
        if fd >= 0 or e != errno.ESTALE:
            sys.exit("handle of a deleted file: fd %d, %s" % (fd, os.strerror(e)))
        continue
    if fd < 0:
        sys.exit("%s: %s" % (name, os.strerror(e)))
    if name == "d":
        got = sorted(os.listdir(fd))
        want = ["g"]
    else:
        got = os.read(fd, 100)
        want = {"f": b"one\n", "d/g": b"two\n"}[name]
    if got != want:
        sys.exit("%s: %r, not %r" % (name, got, want))
    os.close(fd)
PY
umount_fs
check_fsck
echo PASS
