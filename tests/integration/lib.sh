# lib.sh - shared setup of the settfs mount tests (sourced, not run).
#
# Skips (exit 77) unless /dev/fuse, fusermount3 and root are available.
# Provides: $work (temp dir), $store, $mnt, mount_fs [opts], umount_fs,
# check_fsck, exited, and a trap that unmounts and kills the daemon on any exit.
# SETTFS_TEST_MOUNT_OPTS: options for every mount_fs (see there).

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v fusermount3 >/dev/null 2>&1 || skip "no fusermount3"
[ "$(id -u)" = 0 ] || skip "not root"

top=$(pwd)
SETTFS=${SETTFS:-$top/settfs}
FSCK=${FSCK:-$top/fsck.settfs}
MKFS=${MKFS:-$top/mkfs.settfs}
[ -x "$SETTFS" ] || skip "settfs not built at $SETTFS"

work=$(mktemp -d "${TMPDIR:-/tmp}/settfs-it.XXXXXX")
store=$work/store
mnt=$work/mnt
mkdir -p "$mnt"
daemon=

cleanup() {
	if [ -n "$daemon" ]; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null
		kill "$daemon" 2>/dev/null
		sleep 0.2
		kill -9 "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	elif is_mounted; then
		# mounted by mount(8) or mount.settfs: the daemon is not a job
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	[ -n "$KEEP" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

is_mounted() { grep -q " $mnt fuse" /proc/mounts; }

# mount_fs [-o opts]: start the daemon in the foreground (as a job) and wait.
# SETTFS_TEST_MOUNT_OPTS adds options to every mount (before the test's
# own), e.g. io_uring to run a suite with requests over io_uring.
mount_fs() {
	[ -n "${SETTFS_TEST_MOUNT_OPTS:-}" ] && set -- -o "$SETTFS_TEST_MOUNT_OPTS" "$@"
	"$SETTFS" -f "$@" "$store" "$mnt" &
	daemon=$!
	i=0
	while ! is_mounted; do
		i=$((i + 1))
		[ $i -gt 100 ] && fail "mount did not appear"
		kill -0 "$daemon" 2>/dev/null || fail "settfs exited"
		sleep 0.1
	done
}

umount_fs() {
	fusermount3 -u "$mnt" || fail "unmount"
	wait "$daemon" || fail "settfs exit status $?"
	daemon=
}

# exited PID SECONDS: true once PID has gone, false if it still runs after SECONDS
exited() {
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt $(($2 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	! kill -0 "$1" 2>/dev/null
}

# finish_or_abort PID SECONDS WHAT: wait for the job PID; if it still runs
# after SECONDS the mount is stuck: abort its FUSE connection (fusectl,
# mounted in a mount namespace of its own where it is not already), so
# that the job's requests fail and it ends, then fail with WHAT.
finish_or_abort() {
	_dev=$(mountpoint -d "$mnt" | cut -d: -f2)
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt $(($2 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		unshare -m --propagation private sh -c "mount -t fusectl none '$work' 2>/dev/null &&
			echo 1 > '$work/$_dev/abort'" ||
			echo 1 > "/sys/fs/fuse/connections/$_dev/abort" 2>/dev/null
		wait "$1"
		fail "$3 did not finish in $2 s (connection aborted)"
	fi
	wait "$1"
}

check_fsck() {
	"$FSCK" "$store" || fail "fsck.settfs exit $?"
}

# both_caches FUNC: FUNC on a mount with the writeback cache and again on
# one without; FUNC gets the mount option as its argument.  Ends unmounted
# and checked.
both_caches() {
	for opt in writeback_cache no_writeback_cache; do
		mount_fs -o "$opt"
		"$1" "$opt"
		umount_fs
	done
	check_fsck
}
