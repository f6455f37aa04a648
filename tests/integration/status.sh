#!/bin/sh
# The control path of a mounted store: `settfs status` on a busy mount
# answers and its counters move with the work; `--json` parses; a user
# other than root and the mount's owner is refused; `sett info`, `sett
# check` and the root's settfs.stats xattr go through the daemon; a daemon killed with
# SIGKILL leaves nothing that stops the next mount from serving status;
# two mounts each answer for their own store; a read-only mount answers.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

SETT=${SETT:-$top/sett}
writer=
st_cleanup() {
	[ -n "$writer" ] && kill "$writer" 2>/dev/null && wait "$writer" 2>/dev/null
	grep -q " $work/mnt2 fuse" /proc/mounts && fusermount3 -u "$work/mnt2"
	cleanup
}
trap st_cleanup EXIT

# fields JSON_FILE a.b.c ...: figures of a `settfs status --json` reply
# (one python3 run per reply: json.load fails on what does not parse)
fields() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
out = []
for name in sys.argv[2:]:
    v = d
    for k in name.split("."):
        v = v[k]
    out.append(str(v))
print(" ".join(out))' "$@" || { cat "$1"; fail "status --json: does not parse, or lacks one of ${*#* }"; }
}

status_json() { # status_json OUT [MNT]
	timeout 10 "$SETTFS" status --json "${2:-$mnt}" > "$1" || fail "settfs status --json exit $?"
}

chmod 755 "$work" # let the unprivileged user below reach the mountpoint
mount_fs

# 1. a busy mount: a writer keeps writing while status is asked
( i=0; while :; do
	head -c 262144 /dev/urandom > "$mnt/busy.$((i % 4))" || exit 1
	i=$((i + 1))
done ) &
writer=$!
status_json "$work/s1.json"
timeout 10 "$SETTFS" status "$mnt" > "$work/s1.txt" || fail "settfs status exit $?"
grep -q "^fuse" "$work/s1.txt" || fail "status text has no request figures"
grep -q "store  *$store\$" "$work/s1.txt" || { cat "$work/s1.txt"; fail "status text does not name the store"; }
# a known amount of work between two snapshots
head -c $((4 << 20)) /dev/urandom > "$work/four"
dd if="$work/four" of="$mnt/work" bs=1M conv=fsync 2>/dev/null || fail "write"
status_json "$work/s2.json"
# an online check while the writer goes on: no faults, no waiting for the lock
timeout 120 "$SETT" check "$store" > "$work/check.out" 2> "$work/check.err" ||
	{ cat "$work/check.err"; fail "sett check of the mounted store exit $?"; }
grep -q "no faults" "$work/check.out" || fail "sett check output"
grep -q "in use" "$work/check.err" && fail "sett check waited for the lock"
kill "$writer"
wait "$writer" 2>/dev/null
writer=
set -- $(fields "$work/s1.json" fuse.requests fuse.op.write.count fs.written_bytes)
r1=$1 w1=$2 b1=$3
set -- $(fields "$work/s2.json" fuse.requests fuse.op.write.count fs.written_bytes mount.pid mount.store)
r2=$1 w2=$2 b2=$3 pid=$4 st=$5
echo "requests $r1 -> $r2, writes $w1 -> $w2, bytes committed $b1 -> $b2"
[ "$r2" -gt "$r1" ] || fail "request count did not grow"
[ "$w2" -gt "$w1" ] || fail "write count did not grow"
[ "$b2" -ge $((b1 + (4 << 20))) ] || fail "committed bytes did not grow by the 4 MiB written"
[ "$pid" = "$daemon" ] || fail "mount.pid is not the daemon"
[ "$st" = "$store" ] || fail "mount.store"

# 2. the xattr view and sett info through the daemon
getfattr --only-values -n settfs.stats "$mnt" > "$work/xattr.txt" || fail "getfattr settfs.stats"
grep -q "^fuse" "$work/xattr.txt" || fail "settfs.stats has no request figures"
timeout 10 "$SETT" info "$store" > "$work/info.txt" 2> "$work/info.err" || { cat "$work/info.err"; fail "sett info of the mounted store"; }
grep -q "^store $store" "$work/info.txt" || fail "sett info output"
grep -q "in use" "$work/info.err" && fail "sett info waited for the lock"
grep -q "^settfs inodes [1-9]" "$work/info.txt" || fail "sett info of the mounted store: no inode count"
timeout 10 "$SETT" info --json "$store" > "$work/info.json" || fail "sett info --json of the mounted store"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["settfs"]["inodes"] >= 1' \
	"$work/info.json" || { cat "$work/info.json"; fail "sett info --json of the mounted store"; }

# 3. others are refused (and the path itself was not the obstacle)
command -v setpriv >/dev/null 2>&1 || skip "no setpriv"
setpriv --reuid=65534 --regid=65534 --clear-groups "$SETTFS" status "$mnt" > /dev/null 2> "$work/refused.err" &&
	fail "an unprivileged user got the status"
cat "$work/refused.err"
grep -q "refused" "$work/refused.err" || fail "unprivileged user: not refused by the daemon"
setpriv --reuid=65534 --regid=65534 --clear-groups "$SETT" info "$store" > /dev/null 2> "$work/refused2.err" &&
	fail "an unprivileged user got sett info"
# the xattr too, on a mount that lets others in
"$SETTFS" umount "$mnt" || fail "settfs umount"
wait "$daemon" || fail "settfs exit status $?"
daemon=
mount_fs -o allow_other
ls "$mnt" > /dev/null || fail "allow_other mount"
setpriv --reuid=65534 --regid=65534 --clear-groups ls "$mnt" > /dev/null || fail "allow_other: others cannot list"
setpriv --reuid=65534 --regid=65534 --clear-groups getfattr --only-values -n settfs.stats "$mnt" \
	> /dev/null 2>&1 && fail "an unprivileged user read settfs.stats"
getfattr --only-values -n settfs.stats "$mnt" > /dev/null || fail "root cannot read settfs.stats"

# 4. a second mount answers for its own store
mkdir -p "$work/mnt2"
"$SETTFS" "$work/store2" "$work/mnt2" || fail "second mount"
status_json "$work/m2.json" "$work/mnt2"
[ "$(fields "$work/m2.json" mount.store)" = "$work/store2" ] || fail "second mount: wrong store"
status_json "$work/m1.json"
[ "$(fields "$work/m1.json" mount.store)" = "$store" ] || fail "first mount: wrong store"
"$SETTFS" umount "$work/mnt2" || fail "settfs umount of the second mount"
"$SETTFS" status "$work/mnt2" 2>/dev/null && fail "status of an unmounted directory"

# 5. kill -9: the next mount serves status again
kill -9 "$daemon"
wait "$daemon" 2>/dev/null
daemon=
fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt"
mount_fs
status_json "$work/s3.json"
set -- $(fields "$work/s3.json" mount.pid fs.logical_bytes)
[ "$1" = "$daemon" ] || fail "after kill -9: status not from the new daemon"
l1=$2
# logical bytes: the sizes of the regular files, counted at mount and kept
sizes() {
	python3 -c 'import os, sys
print(sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(sys.argv[1]) for f in fs
          if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f))))' "$mnt"
}
ln -s "a-target" "$mnt/link" || fail "symlink"
mkdir "$mnt/dir" || fail "mkdir"
z=$(sizes)
[ "$l1" = "$z" ] || fail "logical bytes $l1 at mount, files hold $z"
dd if="$work/four" of="$mnt/dir/new" bs=1M count=1 conv=fsync 2>/dev/null || fail "write"
truncate -s 100 "$mnt/work" || fail "truncate"
status_json "$work/s5.json"
l2=$(fields "$work/s5.json" fs.logical_bytes)
z=$(sizes)
echo "logical bytes $l1 -> $l2 (files: $z)"
[ "$l2" = "$z" ] || fail "logical bytes $l2 after a write and a truncate, files hold $z"
umount_fs

# 6. a read-only mount answers too
mount_fs -o ro
status_json "$work/s4.json"
[ "$(fields "$work/s4.json" mount.read_only)" = 1 ] || fail "read-only mount: read_only not 1"
umount_fs
check_fsck
echo "PASS"
