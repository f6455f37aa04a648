#!/bin/sh
# kill -9 of the daemon while it still buffers writes of a file that the
# writer holds open (a close would have committed them):
# 1. rename, link, unlink and setxattr commit the inode with its buffered
#    data (no background writeback: -o dirty_expire=0), so the file never
#    comes back at its new size reading as zeros; a file written and
#    closed survives too (close commits);
# 2. after sync(2), which sends the daemon nothing, the buffers reach the
#    store within the writeback expiry (dirty_expire, default 5 s), with
#    and without the kernel's writeback cache.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

# start_writer FILE DATA: a process writes DATA to FILE and keeps it open
# (any close, even of a duplicate descriptor, sends FLUSH, which commits)
writer=
start_writer() {
	rm -f "$work/ready"
	python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
data = open(sys.argv[2], "rb").read()
assert os.write(fd, data) == len(data)
open(sys.argv[3], "w").close()
time.sleep(3600)' "$1" "$2" "$work/ready" &
	writer=$!
	i=0
	while [ ! -e "$work/ready" ]; do
		i=$((i + 1))
		[ $i -gt 600 ] && fail "writer did not start"
		kill -0 $writer 2>/dev/null || fail "writer failed"
		sleep 0.1
	done
}

# kill -9 the daemon, then end the writer and unmount
crash() {
	kill -9 "$daemon"
	wait "$daemon" 2>/dev/null
	kill $writer
	wait $writer 2>/dev/null
	writer=
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt"
	daemon=
}
trap '[ -n "$writer" ] && kill $writer; cleanup' EXIT

store_bytes() {
	find "$store" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

# A request that takes the file's node lock, so it waits for a commit of
# the file in progress (the kernel caches attributes, not xattrs).
touch_node() {
	python3 -c 'import os, sys
try:
    os.getxattr(sys.argv[1], "user.none")
except OSError:
    pass' "$1"
}

head -c 204800 /dev/urandom > "$work/ref"
for op in rename link unlink setxattr; do
	rm -rf "$store"
	mount_fs -o no_writeback_cache -o dirty_expire=0
	[ $op = unlink ] && { : > "$mnt/f"; ln "$mnt/f" "$mnt/keep"; }
	cat "$work/ref" > "$mnt/closed" || fail "write closed"
	start_writer "$mnt/f" "$work/ref"
	case $op in
	rename) mv "$mnt/f" "$mnt/g"; name=g ;;
	link) ln "$mnt/f" "$mnt/g"; name=g ;;
	unlink) rm "$mnt/f"; name=keep ;;
	setxattr) setfattr -n user.a -v 1 "$mnt/f" 2>/dev/null ||
		python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.a", b"1")' "$mnt/f"
		name=f ;;
	esac
	crash
	mount_fs
	[ "$(stat -c %s "$mnt/$name")" = 204800 ] || fail "$op: size $(stat -c %s "$mnt/$name")"
	cmp -s "$work/ref" "$mnt/$name" || fail "$op: buffered data lost (committed inode without it)"
	cmp -s "$work/ref" "$mnt/closed" || fail "$op: closed file lost"
	umount_fs
	check_fsck
done

head -c 307200 /dev/urandom > "$work/ref2"
for opts in "-o no_writeback_cache" "-o writeback_cache"; do
	rm -rf "$store"
	mount_fs $opts
	: > "$mnt/s"
	before=$(store_bytes)
	start_writer "$mnt/s" "$work/ref2"
	sync
	# Not a time limit: the store must grow by the data at some point.
	i=0
	while [ "$(store_bytes)" -lt $((before + 307200)) ]; do
		i=$((i + 1))
		[ $i -gt 600 ] && fail "$opts: buffered data not committed 60 s after sync"
		sleep 0.1
	done
	touch_node "$mnt/s"
	crash
	mount_fs
	[ "$(stat -c %s "$mnt/s")" = 307200 ] || fail "$opts: size $(stat -c %s "$mnt/s") after sync + expiry"
	cmp -s "$work/ref2" "$mnt/s" || fail "$opts: data after sync + expiry"
	umount_fs
	check_fsck
done
echo PASS
