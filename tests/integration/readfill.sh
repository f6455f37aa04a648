#!/bin/sh
# Page-cache fill: a 4 KiB read loads its whole chunk and the daemon pushes
# the chunk's other pages into the page cache.  Scattered reads see the
# right bytes; a push must never bring back older bytes: not over pages a
# writer holds open (dirty in the writeback cache), not past a truncate
# done by path while another process reads.  Checked in the page cache
# and after a remount.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"
model=$work/model
mount_fs
# 8 chunks and a short tail chunk that ends inside a page
python3 - "$mnt/f" "$model" <<'PY' || fail "write"
import os, sys
data = os.urandom(8 * 65536 + 3 * 4096 + 1000)
for p in sys.argv[1:]:
    with open(p, "wb") as f:
        f.write(data)
PY
umount_fs
mount_fs

python3 - "$mnt/f" "$model" <<'PY' || fail "scattered reads"
import os, random, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
ref = open(sys.argv[2], "rb").read()
pages = list(range((len(ref) + 4095) // 4096))
random.seed(1)
random.shuffle(pages)
for p in pages:
    got = os.pread(fd, 4096, p * 4096)
    assert got == ref[p * 4096:(p + 1) * 4096], "page %d" % p
# an unaligned read and one across a chunk boundary
assert os.pread(fd, 100, 65536 * 3 - 50) == ref[65536 * 3 - 50:65536 * 3 + 50]
assert os.pread(fd, 5000, len(ref) - 1000) == ref[-1000:]
PY
cmp "$mnt/f" "$model" || fail "content after scattered reads"

# A writer keeps the file open O_RDWR and overwrites pages while a reader
# (another process) keeps missing on other pages of the same chunks.
python3 - "$mnt/f" "$model" <<'PY' || fail "reads while a writer has the file open"
import os, random, sys, time
path, model = sys.argv[1], sys.argv[2]
ref = bytearray(open(model, "rb").read())
npages = len(ref) // 4096
written = set(random.Random(2).sample(range(npages), npages // 3))
untouched = [p for p in range(npages) if p not in written]
pid = os.fork()
if pid == 0:
    # reader: pages nobody writes must always read right
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    rnd = random.Random(3)
    end = time.time() + 4
    while time.time() < end:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for p in rnd.sample(untouched, 16):
            if os.pread(fd, 4096, p * 4096) != bytes(ref[p * 4096:(p + 1) * 4096]):
                os._exit(1)
        for p in rnd.sample(sorted(written), 8):
            os.pread(fd, 4096, p * 4096)
    os._exit(0)
fd = os.open(path, os.O_RDWR)
rnd = random.Random(4)
end = time.time() + 4
while time.time() < end:
    p = rnd.choice(sorted(written))
    b = os.urandom(4096)
    os.pwrite(fd, b, p * 4096)
    ref[p * 4096:(p + 1) * 4096] = b
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    time.sleep(0.002)
os.close(fd)
_, st = os.waitpid(pid, 0)
assert st == 0, "reader saw wrong bytes"
open(model, "wb").write(ref)
PY
cmp "$mnt/f" "$model" || fail "page cache differs after the writer"
umount_fs
mount_fs
cmp "$mnt/f" "$model" || fail "store differs after the writer"

# Truncate by path (no open handle) while another process reads: bytes
# past the cut must read as zeros, never as pushed old data.
python3 - "$mnt/f" "$model" <<'PY' || fail "truncate while reading"
import os, random, sys, time
path, model = sys.argv[1], sys.argv[2]
ref = open(model, "rb").read()
size = len(ref)
cut = 2 * 65536 + 4096 + 123
pid = os.fork()
if pid == 0:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    rnd = random.Random(5)
    end = time.time() + 3
    while time.time() < end:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for p in rnd.sample(range(size // 4096), 16):
            got = os.pread(fd, 4096, p * 4096)
            want = ref[p * 4096:(p + 1) * 4096]
            # before or after a cut: old bytes, zeros or short
            if any(c != w and c != 0 for c, w in zip(got, want)):
                os._exit(1)
    os._exit(0)
end = time.time() + 3
while time.time() < end:
    os.truncate(path, cut)
    time.sleep(0.005)
    # a late push of old bytes would also move the kernel's end of file
    now = os.stat(path).st_size
    if now != cut:
        os.kill(pid, 9)
        raise SystemExit("size %d after a truncate to %d" % (now, cut))
    os.truncate(path, size)
    time.sleep(0.005)
_, st = os.waitpid(pid, 0)
assert st == 0, "reader saw bytes that were never there"
want = ref[:cut] + bytes(size - cut)
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
for p in random.Random(6).sample(range(size // 4096), size // 4096):
    assert os.pread(fd, 4096, p * 4096) == want[p * 4096:(p + 1) * 4096], "page %d" % p
open(model, "wb").write(want)
PY
cmp "$mnt/f" "$model" || fail "page cache differs after truncates"
umount_fs
mount_fs
cmp "$mnt/f" "$model" || fail "store differs after truncates"
umount_fs

# -o nofill still reads right
mount_fs -o nofill
cmp "$mnt/f" "$model" || fail "content with nofill"
dd if=/dev/urandom of="$mnt/g" bs=64k count=32 status=none || fail "write g"
umount_fs

# The fill is what turns later reads into page-cache hits: count the READs
# the daemon gets (its -d log) for every page of a 32-chunk file read once
# in random order, with and without it.  One page of each chunk is read
# first and the pushes are given time to finish (they are asynchronous:
# on a loaded machine a reader racing the filler would count its misses).
reads() {
	mount_fs -d "$@" 2>"$work/debug.log"
	python3 - "$mnt/g" <<'PY' || fail "random reads of g"
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
pages = list(range(os.fstat(fd).st_size // 4096))
rnd = random.Random(9)
for c in range(len(pages) // 16):
    os.pread(fd, 4096, (c * 16 + rnd.randrange(16)) * 4096)
time.sleep(2)
rnd.shuffle(pages)
for p in pages:
    os.pread(fd, 4096, p * 4096)
PY
	umount_fs
	grep -c "opcode: READ (" "$work/debug.log"
}
with=$(reads)
without=$(reads -o nofill)
[ "$without" -ge 400 ] || fail "$without READs for 512 pages without the fill"
[ "$with" -le 160 ] || fail "$with READs for 512 pages (32 chunks) with the fill"
check_fsck
echo PASS
