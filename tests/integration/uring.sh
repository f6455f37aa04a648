#!/bin/sh
# FUSE over io_uring (the default where offered): with the fuse module's enable_uring
# set for the test (and put back after), the daemon must say it serves
# requests through io_uring and `settfs status` must show it; then a mix
# through the rings: small files, a big file written and read back after
# the page cache is dropped, mmap stores, O_DIRECT writes (synchronous over
# the rings), SEEK_DATA with dirty pages, xattrs, parallel
# writers, a short fsx run; with threads=2 SEEK_DATA on dirty mmap pages
# from four threads on one CPU (the waiting workers must not use up the
# queue); kill -9 during writes, remount, fsck; a
# clean SIGTERM shutdown; with enable_uring off, the fallback to
# /dev/fuse with its log line; the default (silent: io_uring where
# offered, else /dev/fuse); -o no_io_uring.  Skips (77) without the kernel's
# CONFIG_FUSE_IO_URING or a settfs built with liburing.
. "${srcdir:-.}/tests/integration/lib.sh"
unset SETTFS_TEST_MOUNT_OPTS # each mount here says what it wants
command -v python3 >/dev/null 2>&1 || skip "no python3"
param=/sys/module/fuse/parameters/enable_uring
[ -w "$param" ] || skip "the kernel has no FUSE over io_uring ($param)"
old=$(cat "$param")
trap 'echo "$old" > "$param"; cleanup' EXIT
echo 1 > "$param" || skip "cannot set $param"

# mount_log [opts]: mount_fs with the daemon's stderr in $work/log
mount_log() {
	mount_fs -o io_uring "$@" 2>"$work/log"
}
status_of() { # status_of KEY: one figure of `settfs status --json`
	"$SETTFS" status --json "$mnt" | python3 -c "import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].split('.'):
    d = d.get(k, {}) if isinstance(d, dict) else {}
print(d if d != {} else '')" "$1"
}

mount_log
echo probe > "$mnt/probe"
if grep -q "without liburing" "$work/log"; then
	skip "settfs built without liburing"
fi
grep -q "serving requests through io_uring" "$work/log" || {
	cat "$work/log"
	fail "no io_uring log line"
}
[ "$(status_of fuse.transport)" = io_uring ] || fail "status transport: $(status_of fuse.transport)"
[ "$(status_of fuse.uring.queues)" -ge 1 ] || fail "no queues in status"
# direct I/O synchronous over the rings (doc/settfs.md, Requests over io_uring)
[ "$(status_of fuse.async_dio)" = 0 ] || fail "asynchronous direct I/O over io_uring"

# small files: create, rename, read back, unlink
mkdir "$mnt/d" || fail "mkdir"
i=0
while [ $i -lt 300 ]; do
	echo "file $i" > "$mnt/d/f$i" || fail "create f$i"
	i=$((i + 1))
done
mv "$mnt/d/f7" "$mnt/d/seven" || fail "rename"
[ "$(cat "$mnt/d/seven")" = "file 7" ] || fail "renamed content"
[ "$(ls "$mnt/d" | wc -l)" -eq 300 ] || fail "listing"
rm "$mnt/d/f1" "$mnt/d/f2" || fail "unlink"
[ "$(ls "$mnt/d" | wc -l)" -eq 298 ] || fail "listing after unlink"

# a big file, sequential, read back past the page cache
head -c 48M /dev/urandom > "$work/big" || fail "random data"
cp "$work/big" "$mnt/big" || fail "big write"
sync
echo 3 > /proc/sys/vm/drop_caches
cmp "$work/big" "$mnt/big" || fail "big read back"

# parallel writers: the queues may gain workers
writers=
for n in 1 2 3 4 5 6; do
	dd if="$work/big" of="$mnt/p$n" bs=64k count=160 status=none &
	writers="$writers $!"
done
for w in $writers; do
	wait "$w" || fail "parallel writer"
done
for n in 1 2 3 4 5 6; do
	cmp -n 10485760 "$work/big" "$mnt/p$n" || fail "parallel writer $n"
done

# mmap stores, O_DIRECT writes (synchronous: answered at once),
# SEEK_DATA while pages are dirty, xattrs
python3 - "$mnt" <<'PY' || fail "mmap/direct/seek/xattr"
import mmap, os, sys
root = sys.argv[1]
p = os.path.join(root, "m")
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20)
for i in range(0, 1 << 20, 4096):
    m[i:i + 8] = (i // 4096).to_bytes(8, "little")
m.flush()
m.close()
os.close(fd)
os.system("echo 3 > /proc/sys/vm/drop_caches")
with open(p, "rb") as f:
    data = f.read()
for i in range(0, 1 << 20, 4096):
    assert data[i:i + 8] == (i // 4096).to_bytes(8, "little"), "mmap page %d" % (i // 4096)
p = os.path.join(root, "dio")
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
buf = mmap.mmap(-1, 1 << 16)
for r in range(20):
    buf[:] = bytes([r]) * (1 << 16)
    assert os.pwrite(fd, buf, r * 4096) == 1 << 16
    with open(p, "rb") as f:
        f.seek(r * 4096)
        assert f.read(1 << 16) == bytes([r]) * (1 << 16), "direct write %d" % r
os.close(fd)
p = os.path.join(root, "sparse")
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b"x" * 4096, 1 << 20)
assert os.lseek(fd, 0, os.SEEK_DATA) == 1 << 20, "SEEK_DATA"
os.close(fd)
os.setxattr(p, "user.k", b"v" * 100)
assert os.getxattr(p, "user.k") == b"v" * 100
assert "user.k" in os.listxattr(p)
os.removexattr(p, "user.k")
PY

# a short fsx through the rings
SETTFS_FSX_OPS=${SETTFS_URING_FSX_OPS:-60} SETTFS_TEST_MOUNT_OPTS=io_uring \
	sh "${srcdir:-.}/tests/integration/fsx.sh" >"$work/fsx.log" 2>&1 || {
	cat "$work/fsx.log"
	fail "fsx over io_uring"
}

[ "$(status_of fuse.uring.requests)" -gt 0 ] || fail "no requests through the rings"
threads=$(status_of fuse.uring.threads)
queues=$(status_of fuse.uring.queues)
[ "$threads" -ge $((2 * queues)) ] || fail "$threads workers for $queues queues"
echo "io_uring: $queues queues, $threads workers, $(status_of fuse.uring.requests) requests"
umount_fs
check_fsck

# Requests that wait for another thread's reply do not use up a queue's
# workers: with threads=2, four threads on one CPU (so one queue) store
# through mmap and then SEEK_DATA, which waits until the dirty pages are
# written back - through the same queue.
mount_log -o threads=2
python3 - "$mnt" <<'PY' &
import mmap, os, sys, threading
root = sys.argv[1]
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
err = []
def work(t):
    try:
        fd = os.open(os.path.join(root, "seek%d" % t), os.O_RDWR | os.O_CREAT, 0o644)
        size = 4 << 20
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size)
        for r in range(20):
            for i in range(0, size, 4096):
                m[i:i + 8] = (r * size + i).to_bytes(8, "little")
            assert os.lseek(fd, 0, os.SEEK_DATA) == 0, "SEEK_DATA"
        m.close()
        os.close(fd)
    except Exception as e:
        err.append(e)
ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
sys.exit("%s" % err if err else 0)
PY
finish_or_abort $! 120 "SEEK_DATA on dirty mmap pages with threads=2" || fail "seek threads"
umount_fs
check_fsck

# kill -9 while writing, remount, fsck
mount_log
sync
(dd if="$work/big" of="$mnt/killed" bs=1M status=none; true) &
writer=$!
sleep 0.3
kill -9 "$daemon"
wait "$daemon" 2>/dev/null
wait "$writer" 2>/dev/null
fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt"
daemon=
check_fsck
mount_log
cmp "$work/big" "$mnt/big" || fail "big after kill -9"
[ "$(cat "$mnt/d/seven")" = "file 7" ] || fail "small file after kill -9"
# a clean stop by SIGTERM
kill -TERM "$daemon"
wait "$daemon" || fail "exit status $? after SIGTERM"
daemon=
check_fsck

# the kernel does not offer it: /dev/fuse, said in the log
echo 0 > "$param"
mount_log
cmp "$work/big" "$mnt/big" || fail "big over /dev/fuse"
grep -q "does not offer FUSE over io_uring" "$work/log" || {
	cat "$work/log"
	fail "no fallback log line"
}
[ "$(status_of fuse.transport)" = /dev/fuse ] || fail "fallback transport"
[ "$(status_of fuse.async_dio)" = 1 ] || fail "no asynchronous direct I/O over /dev/fuse"
umount_fs
# by default: silently, /dev/fuse where not offered, else io_uring; -o no_io_uring
mount_fs 2>"$work/log"
cat "$mnt/d/seven" >/dev/null || fail "read, default, not offered"
[ "$(status_of fuse.transport)" = /dev/fuse ] || fail "default transport, not offered"
umount_fs
[ -s "$work/log" ] && { cat "$work/log"; fail "default mount said something"; }
echo 1 > "$param"
mount_fs 2>"$work/log"
cat "$mnt/d/seven" >/dev/null || fail "read, default"
[ "$(status_of fuse.transport)" = io_uring ] || fail "default transport: $(status_of fuse.transport)"
umount_fs
[ -s "$work/log" ] && { cat "$work/log"; fail "default mount said something"; }
mount_fs -o no_io_uring
cat "$mnt/d/seven" >/dev/null || fail "read, no_io_uring"
[ "$(status_of fuse.transport)" = /dev/fuse ] || fail "no_io_uring transport"
umount_fs
check_fsck
echo "PASS"
