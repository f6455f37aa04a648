#!/bin/sh
# Random operations on files against an in-memory model, through the
# kernel: writes, truncates, fallocate (allocate, KEEP_SIZE, punch hole,
# zero range with and without KEEP_SIZE; collapse and insert range when the
# kernel passes them on, which Linux 6.18's FUSE client does not: the
# run says so) and mmap stores under a writable handle, then
# read phases with only read-only handles (where the daemon pushes whole
# chunks into the page cache) with truncates by path in between, page
# cache drops so reads miss, and a remount at the end.  Any byte that
# differs from the model fails.  SETTFS_FSX_OPS sets the number of rounds,
# SETTFS_FSX_SEED replays a run (the seed is printed).
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"
mount_fs
python3 - "$mnt" "$work/model" "${SETTFS_FSX_OPS:-300}" "${SETTFS_FSX_SEED:-0}" <<'PY' || fail "fsx"
import ctypes, errno, mmap, os, random, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
KEEP, PUNCH, COLLAPSE, ZERO, INSERT = 1, 2, 8, 16, 32

def fallocate(fd, mode, off, n):
    if libc.fallocate(fd, mode, off, n) != 0:
        e = ctypes.get_errno()
        sys.exit("fallocate(%d, %d, %d): %s, seed %d" % (mode, off, n, os.strerror(e), seed))
root, modeldir, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(modeldir)
# does the kernel pass collapse and insert on?
probe = os.path.join(root, "probe")
fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, bytes(8192), 0)
moves = [m for m in (COLLAPSE, INSERT) if libc.fallocate(fd, m, 0, 4096) == 0
         or ctypes.get_errno() != errno.EOPNOTSUPP]
os.close(fd)
os.unlink(probe)
print("collapse/insert range:", "tested" if moves else "refused by the kernel, not tested")
seed = int(sys.argv[4]) or random.SystemRandom().randrange(1, 1 << 30)
rnd = random.Random(seed)
print("seed", seed)
CH = 65536
files = {"a": bytearray(), "b": bytearray()}

def check(name, fd, off, n):
    got = os.pread(fd, n, off)
    want = bytes(files[name][off:off + n])
    if got != want:
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                 min(len(got), len(want)))
        sys.exit("%s: %d bytes at %d differ from byte %d (len got %d want %d), seed %d"
                 % (name, n, off, off + i, len(got), len(want), seed))

def rand_off(size):
    return rnd.randrange(0, max(1, size + 2 * CH))

for r in range(rounds):
    name = rnd.choice(list(files))
    path = os.path.join(root, name)
    m = files[name]
    # write phase: one writable handle
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    for _ in range(rnd.randrange(1, 12)):
        op = rnd.random()
        if op < 0.6:
            off = rand_off(len(m))
            n = rnd.choice([1, 100, 4096, 5000, CH, 3 * CH + 17])
            if rnd.random() < 0.5:
                off -= off % 4096
            data = os.urandom(n)
            os.pwrite(fd, data, off)
            if off > len(m):
                m.extend(bytes(off - len(m)))
            m[off:off + n] = data
        elif op < 0.7 and moves and rnd.random() < 0.3:
            # whole blocks; a collapse ends before the end, an insert starts before it
            mode = rnd.choice(moves)
            off = rnd.randrange(0, len(m) // 4096 + 1) * 4096
            n = 4096 * rnd.choice([1, 2, 16, 17])
            if mode == COLLAPSE and off + n < len(m):
                fallocate(fd, mode, off, n)
                del m[off:off + n]
            elif mode == INSERT and off < len(m):
                fallocate(fd, mode, off, n)
                m[off:off] = bytes(n)
        elif op < 0.7:
            mode = rnd.choice([0, KEEP, PUNCH | KEEP, ZERO, ZERO | KEEP])
            off = rand_off(len(m))
            n = rnd.choice([1, 2, 4096, 5000, CH, 3 * CH + 17])
            if rnd.random() < 0.5:
                off -= off % 4096
            fallocate(fd, mode, off, n)
            if not mode & KEEP and off + n > len(m):
                m.extend(bytes(off + n - len(m)))
            if mode & (PUNCH | ZERO):
                e = min(off + n, len(m))
                m[off:e] = bytes(max(0, e - off))
        elif op < 0.8:
            size = rnd.randrange(0, len(m) + CH + 1)
            os.ftruncate(fd, size)
            del m[size:]
            m.extend(bytes(size - len(m)))
        elif len(m) >= 4096:
            mm = mmap.mmap(fd, len(m))
            off = rnd.randrange(0, len(m) - 100)
            data = os.urandom(100)
            mm[off:off + 100] = data
            m[off:off + 100] = data
            if rnd.random() < 0.5:
                mm.flush()
            mm.close()
        if rnd.random() < 0.2:
            os.fsync(fd)
    os.close(fd)
    # read phase: read-only handles, cold pages, scattered small reads
    fds = [os.open(path, os.O_RDONLY) for _ in range(2)]
    for f in fds:
        os.posix_fadvise(f, 0, 0, os.POSIX_FADV_RANDOM)
    os.posix_fadvise(fds[0], 0, 0, os.POSIX_FADV_DONTNEED)
    for _ in range(rnd.randrange(5, 40)):
        f = rnd.choice(fds)
        if rnd.random() < 0.05:
            # truncate by path while the readers keep their handles
            size = rnd.randrange(0, len(m) + 1)
            os.truncate(path, size)
            del m[size:]
            os.posix_fadvise(f, 0, 0, os.POSIX_FADV_DONTNEED)
        off = rnd.randrange(0, len(m) + 4096)
        if rnd.random() < 0.7:
            off -= off % 4096
        check(name, f, off, rnd.choice([1, 4096, 4096, 9000]))
    for f in fds:
        check(name, f, 0, len(m) + 10)
        os.close(f)
for name, m in files.items():
    open(os.path.join(modeldir, name), "wb").write(m)
PY
umount_fs
mount_fs
for f in a b; do
	cmp "$mnt/$f" "$work/model/$f" || fail "$f differs after remount"
done
umount_fs
check_fsck
echo PASS
