#!/bin/sh
# SEEK_DATA/SEEK_HOLE see data that is still in the kernel's writeback
# cache: written through a handle that is still open, neither fsynced nor
# written back.  The data/hole map must cover every written byte and end
# at the file's size, and cp --sparse=auto (which follows SEEK_DATA) of
# such a file must copy it exactly.  Run with and without the writeback
# cache.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

run() {
	python3 - "$mnt" "$work" <<'PY' || fail "seek on unflushed data $*"
import os, subprocess, sys
mnt, work = sys.argv[1], sys.argv[2]
M = 1 << 20

def data_map(fd, size):
    """The data segments SEEK_DATA/SEEK_HOLE report, as (start, end)."""
    segs, pos = [], 0
    while pos < size:
        try:
            d = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == 6:  # ENXIO: no data past pos
                break
            raise
        h = os.lseek(fd, d, os.SEEK_HOLE)
        assert d < h <= size, (d, h, size)
        segs.append((d, h))
        pos = h
    assert os.lseek(fd, 0, os.SEEK_HOLE) <= size
    return segs

def covered(segs, start, end):
    return any(s <= start and end <= e for s, e in segs)

# one write only, at 0
p = os.path.join(mnt, "one")
fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
os.write(fd, b"x" * 5000)
assert os.fstat(fd).st_size == 5000
assert os.lseek(fd, 0, os.SEEK_DATA) == 0, "SEEK_DATA at 0 of a written file"
assert os.lseek(fd, 0, os.SEEK_HOLE) == 5000
os.close(fd)

# data, a hole, data (no truncate: it would write the pages back)
p = os.path.join(mnt, "sparse")
fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
parts = [(0, os.urandom(70000)), (3 * M + 100, os.urandom(9000))]
for off, b in parts:
    os.pwrite(fd, b, off)
size = parts[-1][0] + len(parts[-1][1])
segs = data_map(fd, size)
for off, b in parts:
    assert covered(segs, off, off + len(b)), ("not data", off, segs)
# cp while the writer still holds the file open
out = os.path.join(work, "copy")
subprocess.run(["cp", "--sparse=auto", p, out], check=True)
want = bytearray(size)
for off, b in parts:
    want[off:off + len(b)] = b
assert open(out, "rb").read() == want, "cp --sparse=auto of unflushed data differs"
os.unlink(out)
os.close(fd)
PY
}

both_caches run
echo "PASS"
