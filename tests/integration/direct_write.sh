#!/bin/sh
# Direct writes and the page cache: a file is rewritten again and again
# with asynchronous O_DIRECT writes (kernel AIO) while other processes read
# it through the page cache.  After each write completes, a buffered read -
# through a new open and through a handle opened before the write - and a
# direct read must all see the new bytes (xfstests generic/451).  The
# kernel drops its cached pages of the range before the write is sent, but
# for an asynchronous write not after it, so a concurrent reader can put
# the old bytes back in the cache in between.  Run with and without the
# writeback cache.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

run() {
	python3 - "$mnt/f" "${SETTFS_DIO_ROUNDS:-300}" <<'PY' || fail "direct writes $*"
import ctypes, mmap, os, struct, sys
path, rounds = sys.argv[1], int(sys.argv[2])
SIZE = 655360
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_io_setup, SYS_io_destroy, SYS_io_getevents, SYS_io_submit = 206, 207, 208, 209
if os.uname().machine != "x86_64":
    sys.exit(77)

def sc(*a):
    r = libc.syscall(*a)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r

ctx = ctypes.c_ulong(0)
sc(SYS_io_setup, 1, ctypes.byref(ctx))
bufs = []
for pat in (0x55, 0xAA):
    m = mmap.mmap(-1, SIZE)
    m.write(bytes([pat]) * SIZE)
    bufs.append(m)
want = [bytes(b[:]) for b in bufs]

def aio_write(fd, i):
    addr = ctypes.addressof(ctypes.c_char.from_buffer(bufs[i]))
    # struct iocb: data, key, rw_flags, opcode (1 = PWRITE), reqprio, fildes,
    # buf, nbytes, offset, reserved2, flags, resfd
    cb = ctypes.create_string_buffer(struct.pack("=QIiHhIQQqQII", 0, 0, 0, 1, 0, fd,
                                                 addr, SIZE, 0, 0, 0, 0), 64)
    cbs = (ctypes.c_void_p * 1)(ctypes.addressof(cb))
    sc(SYS_io_submit, ctx, 1, cbs)
    ev = ctypes.create_string_buffer(32)
    sc(SYS_io_getevents, ctx, 1, 1, ev, None)
    res = struct.unpack("=QQqq", ev.raw)[2]
    if res != SIZE:
        sys.exit("aio write returned %d" % res)

fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o644)
os.pwritev(fd, [bufs[0]], 0)
os.close(fd)
held = os.open(path, os.O_RDONLY)
running = path + ".running"
open(running, "w").close()
readers = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        try:
            while os.path.exists(running):
                r = os.open(path, os.O_RDONLY)
                os.pread(r, SIZE, 0)
                os.close(r)
        finally:
            os._exit(0)
    readers.append(pid)

bad = None
dbuf = mmap.mmap(-1, SIZE)
try:
    for n in range(rounds):
        i = (n + 1) % 2
        fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        aio_write(fd, i)
        os.close(fd)
        r = os.open(path, os.O_RDONLY)
        fresh = os.pread(r, SIZE, 0) == want[i]
        os.close(r)
        if not fresh:
            bad = "round %d: a buffered read through a new open saw old bytes" % n
            break
        if os.pread(held, SIZE, 0) != want[i]:
            bad = "round %d: a buffered read through an older handle saw old bytes" % n
            break
        d = os.open(path, os.O_RDONLY | os.O_DIRECT)
        got = os.preadv(d, [dbuf], 0)
        os.close(d)
        if got != SIZE or dbuf[:] != want[i]:
            bad = "round %d: a direct read saw old bytes" % n
            break
finally:
    os.unlink(running)
    for pid in readers:
        os.waitpid(pid, 0)
sc(SYS_io_destroy, ctx)
sys.exit(bad)
PY
}

both_caches run
echo "PASS"
