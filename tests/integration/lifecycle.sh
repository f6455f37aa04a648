#!/bin/sh
# The mount life cycle: `settfs umount` returns only once the store is
# released (of a bind mount: at once, the other mount keeps the store in
# use); a second daemon on a mounted store fails at once, naming the
# first; the daemon does not keep descriptors it inherited; `-o ro` mounts a
# store on read-only media; fsck.settfs and sett wait for a store being
# released.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v flock >/dev/null 2>&1 || skip "no flock"

ro=$work/ro
ro_cleanup() {
	grep -q " $mnt fuse" /proc/mounts && "$SETTFS" umount "$mnt"
	grep -q " $ro " /proc/mounts && umount "$ro"
	grep -q " $work/bind " /proc/mounts && umount "$work/bind"
	cleanup
}
trap ro_cleanup EXIT

# store_free: nothing holds the store's LOCK (not even a daemon still flushing)
store_free() { flock -n "$store/LOCK" true; }

# SETTFS_LIFECYCLE_ROUNDS rounds of SETTFS_LIFECYCLE_MIB MiB each (20 of
# 4 by default; the race of "fusermount3 -u && fsck" was seen after 64 MiB)
rounds=${SETTFS_LIFECYCLE_ROUNDS:-20}
mib=${SETTFS_LIFECYCLE_MIB:-4}
head -c $((mib << 20)) /dev/urandom > "$work/big" || fail "test data"

# 1. umount, then at once fsck: the store is free every time
for round in $(seq 1 "$rounds"); do
	mount_fs
	cp "$work/big" "$mnt/big" || fail "write (round $round)"
	"$SETTFS" umount "$mnt" || fail "settfs umount exit $? (round $round)"
	store_free || fail "store still held after settfs umount returned (round $round)"
	"$FSCK" "$store" > "$work/fsck.out" 2>&1 || { cat "$work/fsck.out"; fail "fsck.settfs (round $round)"; }
	wait "$daemon" || fail "settfs exit status $?"
	daemon=
done
"$SETTFS" umount "$mnt" 2>/dev/null && fail "settfs umount of a directory that is not a mount"
[ $? = 1 ] || fail "settfs umount of a non-mount: exit status not 1"

# 2. a second daemon on the mounted store: refused at once, naming the first
mount_fs
mkdir -p "$work/mnt2"
timeout 20 "$SETTFS" "$store" "$work/mnt2" 2> "$work/second.err" && fail "second daemon mounted"
cat "$work/second.err"
grep -q "mounted at $mnt by pid $daemon" "$work/second.err" || fail "second daemon: holder not named"
grep -q "waiting" "$work/second.err" && fail "second daemon waited for a live mount"
cmp "$work/big" "$mnt/big" || fail "data"
# a bind mount of it: its unmount does not wait for the store, still in use
mkdir -p "$work/bind"
mount --bind "$mnt" "$work/bind" || fail "bind mount"
"$SETTFS" umount -t 2 "$work/bind" || fail "settfs umount of a bind mount: exit $?"
grep -q " $work/bind " /proc/mounts && fail "bind mount still there"
cmp "$work/big" "$mnt/big" || fail "data after the bind mount went"
"$SETTFS" umount "$mnt" || fail "settfs umount"
wait "$daemon"
daemon=

# 3. a lock the daemon inherited is not held until unmount
touch "$work/flockfile"
flock "$work/flockfile" "$SETTFS" "$store" "$mnt" || fail "settfs under flock"
daemon=background
is_mounted || fail "not mounted"
cmp "$work/big" "$mnt/big" || fail "data (background daemon)"
flock -n "$work/flockfile" true || fail "the daemon holds the lock it inherited"
"$SETTFS" umount "$mnt" || fail "settfs umount (background daemon)"
daemon=
store_free || fail "store held after settfs umount"

# 3b. every inherited descriptor is closed, however high (here 300 open,
# the lock on the last)
if command -v python3 >/dev/null 2>&1; then
	python3 - "$work/flockfile" "$SETTFS" "$store" "$mnt" <<-'EOF' || fail "settfs with 300 descriptors"
	import fcntl, os, subprocess, sys
	path, prog, store, mnt = sys.argv[1:]
	fds = [os.open(path, os.O_RDONLY) for _ in range(300)]
	fcntl.flock(fds[-1], fcntl.LOCK_EX)
	subprocess.check_call([prog, store, mnt], pass_fds=fds)
	EOF
	daemon=background
	is_mounted || fail "not mounted (300 descriptors)"
	flock -n "$work/flockfile" true || fail "the daemon holds a lock it inherited on fd 300+"
	"$SETTFS" umount "$mnt" || fail "settfs umount (300 descriptors)"
	daemon=
fi

# 4. fsck.settfs and sett wait for a store being released
for prog in "$FSCK" "$top/sett info"; do
	flock "$store/LOCK" sleep 2 &
	holder=$!
	i=0
	while store_free; do
		i=$((i + 1))
		[ $i -gt 200 ] && fail "flock did not take the store's lock"
		sleep 0.05
	done
	$prog "$store" > /dev/null 2> "$work/wait.err" || { cat "$work/wait.err"; fail "$prog did not wait for the store"; }
	grep -q "in use by pid $holder, waiting" "$work/wait.err" || { cat "$work/wait.err"; fail "$prog: no word of the wait"; }
	wait "$holder"
done

# a daemon's release that takes a moment is waited for without a word
flock "$store/LOCK" sleep 0.1 &
holder=$!
"$SETTFS" "$store" "$mnt" 2> "$work/wait.err" || { cat "$work/wait.err"; fail "settfs did not wait"; }
daemon=background
grep "waiting" "$work/wait.err" && fail "settfs spoke of a short wait"
wait "$holder"
"$SETTFS" umount "$mnt" || fail "settfs umount (after a short wait)"
daemon=

# 5. -o ro on a read-only bind mount of the store
mkdir -p "$ro"
mount --bind "$store" "$ro" && mount -o remount,bind,ro "$ro" || skip "no read-only bind mount"
touch "$ro/x" 2>/dev/null && fail "bind mount is writable"
rw=$store
store=$ro
mount_fs -o ro
store=$rw
cmp "$work/big" "$mnt/big" || fail "read on a read-only mount"
echo new 2> "$work/w.err" > "$mnt/new" && fail "write on a read-only mount"
grep -q "Read-only file system" "$work/w.err" || { cat "$work/w.err"; fail "write: not EROFS"; }
rm "$mnt/big" 2> "$work/w.err" && fail "unlink on a read-only mount"
grep -q "Read-only file system" "$work/w.err" || { cat "$work/w.err"; fail "unlink: not EROFS"; }
"$SETTFS" umount "$mnt" || fail "settfs umount (read-only)"
wait "$daemon" || fail "settfs -o ro exit status $?"
daemon=
umount "$ro"
check_fsck

# 6. the holder is named on btrfs too (a subvolume's st_dev is not the
# device /proc/locks shows)
bt=$work/btrfs
if command -v mkfs.btrfs >/dev/null 2>&1 && truncate -s 300M "$work/btrfs.img" &&
	mkfs.btrfs -q "$work/btrfs.img" >/dev/null 2>&1 && mkdir -p "$bt" &&
	mount -o loop "$work/btrfs.img" "$bt" 2>/dev/null; then
	trap 'grep -q " $bt " /proc/mounts && umount "$bt"; ro_cleanup' EXIT
	btrfs subvolume create "$bt/sub" >/dev/null || fail "btrfs subvolume"
	"$MKFS" -q "$bt/sub/store" || fail "mkfs.settfs on btrfs"
	flock "$bt/sub/store/LOCK" sleep 2 &
	holder=$!
	i=0
	while flock -n "$bt/sub/store/LOCK" true; do
		i=$((i + 1))
		[ $i -gt 200 ] && fail "flock did not take the lock on btrfs"
		sleep 0.05
	done
	"$FSCK" "$bt/sub/store" > /dev/null 2> "$work/wait.err" || fail "fsck.settfs on btrfs"
	grep -q "in use by pid $holder," "$work/wait.err" || { cat "$work/wait.err"; fail "btrfs: holder not named"; }
	wait "$holder"
	umount "$bt"
else
	echo "no btrfs (btrfs-progs, loop devices): its lock holder not checked"
fi
echo PASS
