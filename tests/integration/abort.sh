#!/bin/sh
# The FUSE connection aborted (fusectl's "abort") while requests are in
# flight: creates, opens, lookups and readdirs in parallel, buffered and
# direct writes, fsyncs, (with fio) mmap writes.  After an abort every
# reply the daemon writes fails with ENOENT, and libfuse frees the request
# whatever the reply returned.  Each round the daemon must exit by itself,
# with status 0 or 1 and no sanitizer report or heap-check abort on
# stderr; the store must then be clean for fsck.settfs, and at the end
# every file whose fsync returned reads back as written.  Odd rounds mount
# with -o sync_writes (every commit synced: slower requests, more of them
# in flight at the abort).  SETTFS_ABORT_ROUNDS sets the rounds (default
# 4); SETTFS_ABORT_SEED replays the abort points.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

rounds=${SETTFS_ABORT_ROUNDS:-4}
seed=${SETTFS_ABORT_SEED:-$$}
echo "seed $seed"
# freed memory is overwritten: a use of a freed request fails at once
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_free_fill_size=4096"
export MALLOC_PERTURB_=165

abort_conn() {
	[ -e "/sys/fs/fuse/connections/$1/abort" ] &&
		echo 1 > "/sys/fs/fuse/connections/$1/abort" 2>/dev/null && return 0
	unshare -m --propagation private sh -c "mount -t fusectl none '$work/ctl' &&
		echo 1 > '$work/ctl/$1/abort'" 2>/dev/null
}
mkdir -p "$work/ctl"

# load_fsynced DIR LOG: files written and fsynced; each is logged (name,
# sha256) only once its fsync has returned
load_fsynced() {
	python3 - "$1" "$2" <<'PY' 2>/dev/null
import hashlib, os, sys
d, log = sys.argv[1], sys.argv[2]
i = 0
with open(log, "a") as lg:
    while True:
        i += 1
        data = os.urandom(1000 + i * 3571 % 300000)
        name = os.path.join(d, "s%d" % i)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
        except OSError:
            break
        lg.write("%s %s\n" % (name, hashlib.sha256(data).hexdigest()))
        lg.flush()
PY
}

r=0
while [ $r -lt "$rounds" ]; do
	r=$((r + 1))
	opt=
	[ $((r % 2)) = 1 ] && opt="-o sync_writes"
	# shellcheck disable=SC2086
	mount_fs $opt 2>"$work/err.$r"
	minor=$(mountpoint -d "$mnt" | cut -d: -f2) || fail "no device number"
	mkdir -p "$mnt/r$r"
	pids=
	load_fsynced "$mnt/r$r" "$work/fsynced" & pids="$pids $!"
	# metadata in parallel: creates, opens, lookups, readdirs, unlinks
	python3 - "$mnt/r$r" <<'PY' 2>/dev/null &
import os, sys, threading
def runner(d):
    os.makedirs(d, exist_ok=True)
    i = 0
    try:
        while True:
            i += 1
            fd = os.open("%s/f%d" % (d, i), os.O_RDWR | os.O_CREAT, 0o644)
            os.write(fd, b"%d" % i)
            os.close(fd)
            os.close(os.open("%s/f%d" % (d, i // 2 + 1), os.O_RDONLY))
            if not os.path.exists("%s/g%d" % (d, i)) and i % 5 == 0:
                os.unlink("%s/f%d" % (d, i - 3))
    except OSError:
        pass
def lister(d):
    try:
        while True:
            for n in os.listdir(d):
                os.listdir(os.path.join(d, n))
    except OSError:
        pass
ts = [threading.Thread(target=runner, args=("%s/d%d" % (sys.argv[1], j),)) for j in range(8)]
ts.append(threading.Thread(target=lister, args=(sys.argv[1],)))
for t in ts:
    t.start()
for t in ts:
    t.join()
PY
	pids="$pids $!"
	(while dd if=/dev/zero of="$mnt/r$r/dio" bs=64k count=32 oflag=direct conv=notrunc \
		2>/dev/null; do :; done) & pids="$pids $!"
	if command -v fio >/dev/null 2>&1; then
		fio --name=mm --directory="$mnt/r$r" --size=2m --ioengine=mmap --rw=randwrite \
			--bs=4k --time_based=1 --runtime=30 > /dev/null 2>&1 & pids="$pids $!"
	fi
	# abort 0.3 to 1.5 s in
	ms=$(awk -v s="$seed" -v r="$r" 'BEGIN { srand(s + r); print int(300 + rand() * 1200) }')
	sleep "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')"
	abort_conn "$minor" || fail "cannot abort connection $minor (fusectl)"
	exited "$daemon" 30 || fail "round $r: the daemon did not exit 30 s after the abort"
	wait "$daemon"
	st=$?
	daemon=
	# shellcheck disable=SC2086
	kill $pids 2>/dev/null
	wait
	fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	if grep -qE "AddressSanitizer|LeakSanitizer|runtime error|corrupted|double free|free\(\)" \
		"$work/err.$r"; then
		cat "$work/err.$r"
		fail "round $r (abort at $ms ms): sanitizer or heap-check report"
	fi
	[ "$st" -le 1 ] || { cat "$work/err.$r"; fail "round $r (abort at $ms ms): exit status $st"; }
	check_fsck
done

mount_fs
n=0
while read -r name sum; do
	n=$((n + 1))
	got=$(sha256sum < "$name" | cut -d' ' -f1) || fail "$name: unreadable"
	[ "$got" = "$sum" ] || fail "$name: fsynced, then read other bytes"
done < "$work/fsynced"
echo "$n fsynced files intact after $rounds aborts"
umount_fs
check_fsck
echo PASS
