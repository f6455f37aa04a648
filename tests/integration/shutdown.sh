#!/bin/sh
# Shutdown of a daemon that was handed its mount as /dev/fd/N (mount.fuse3
# -o drop_privileges) under a source other than "settfs:STORE", so that no
# mount table lookup can find it: the daemon must still know its FUSE
# connection from INIT on (its bdi is tuned: read_ahead_kb 1024 from
# FUSE's 128; the same number is what it aborts at exit when a page-cache
# push or an invalidation waits for a request nobody answers).  Then
# SIGTERM under load (reads the daemon fills the page cache for, mmap and
# direct writes), SETTFS_SHUTDOWN_ROUNDS times (default 3), on that mount
# and on ordinary ones: the daemon exits by itself within 60 s with status
# 0, and the store is clean.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v mount.fuse3 >/dev/null 2>&1 || skip "no mount.fuse3"
command -v python3 >/dev/null 2>&1 || skip "no python3"

rounds=${SETTFS_SHUTDOWN_ROUNDS:-3}

# load: a 16 MiB file read at random 4 KiB offsets after each cache drop
# (each READ is served from its whole chunk, the rest pushed), mmap
# stores and direct writes into a second file
load() {
	python3 - "$mnt" <<'PY' 2>/dev/null &
import mmap, os, random, sys, threading
d = sys.argv[1]
def reader():
    fd = os.open(d + "/big", os.O_RDONLY)
    while True:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for _ in range(64):
            os.pread(fd, 4096, random.randrange(4096) * 4096)
def mapper():
    fd = os.open(d + "/m", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 1 << 20)
    m = mmap.mmap(fd, 1 << 20)
    while True:
        o = random.randrange(256) * 4096
        m[o:o + 4096] = os.urandom(4096)
def direct():
    fd = os.open(d + "/m", os.O_RDWR | os.O_DIRECT)
    buf = mmap.mmap(-1, 65536)
    while True:
        os.pwrite(fd, buf, random.randrange(16) * 65536)
ts = [threading.Thread(target=f, daemon=True) for f in (reader, reader, mapper, direct)]
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
	load_pid=$!
}

# term PID: SIGTERM after a moment of load; the daemon must be gone in 60 s
term() {
	sleep 1
	kill -TERM "$1"
	exited "$1" 60 || fail "$2: the daemon did not exit 60 s after SIGTERM"
	kill "$load_pid" 2>/dev/null
	wait "$load_pid" 2>/dev/null
	fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
}

mount_fs
dd if=/dev/urandom of="$work/big" bs=1M count=16 2>/dev/null && cp "$work/big" "$mnt/big" ||
	fail "write big"
umount_fs

r=0
while [ $r -lt "$rounds" ]; do
	r=$((r + 1))
	# the daemon is handed /dev/fd/N; its source names another store
	mount.fuse3 "$SETTFS#$store" "$mnt" -o drop_privileges,fsname=elsewhere,subtype=settfs,default_permissions \
		2>"$work/err" || { cat "$work/err"; fail "mount.fuse3 -o drop_privileges"; }
	is_mounted || fail "not mounted with drop_privileges"
	pid=$(pgrep -f "settfs[^ ]* $store /dev/fd/") || fail "the daemon was not handed /dev/fd/N"
	cmp -s "$mnt/big" "$work/big" || fail "/dev/fd/N: data" # after INIT
	dev=$(awk -v m="$mnt" '$5 == m { print $3 }' /proc/self/mountinfo)
	ra=$(cat "/sys/class/bdi/$dev/read_ahead_kb" 2>/dev/null)
	[ -z "$ra" ] || [ "$ra" = 1024 ] ||
		fail "/dev/fd/N: read_ahead_kb $ra: the daemon does not know its connection"
	load
	term "$pid" "/dev/fd/N round $r"
	check_fsck

	mount_fs
	load
	term "$daemon" "round $r"
	wait "$daemon"
	st=$?
	daemon=
	[ "$st" = 0 ] || fail "round $r: exit status $st after SIGTERM"
	check_fsck
done
echo PASS
