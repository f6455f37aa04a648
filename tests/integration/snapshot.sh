#!/bin/sh
# Snapshots of a mounted store: taken with mkdir in /.snapshots and with
# `settfs snapshot`, hidden from the root's listing, read-only, with their
# own inode numbers; each one instant of the filesystem while a writer
# runs; kept across a remount and a kill -9 of the daemon; deleting one
# gives its space back; `settfs rollback` of the unmounted store.
. "${srcdir:-.}/tests/integration/lib.sh"

writer=
sn_cleanup() {
	[ -n "$writer" ] && kill -CONT "$writer" 2>/dev/null && kill "$writer" 2>/dev/null
	[ -n "$writer" ] && wait "$writer" 2>/dev/null
	cleanup
}
trap sn_cleanup EXIT

snaps=$mnt/.snapshots
mount_fs
mkdir -p "$mnt/tree/sub"
for i in 0 1 2 3 4 5 6 7 8 9; do
	echo "gen 0" > "$mnt/tree/f$i"
done
head -c 300000 /dev/urandom > "$mnt/tree/sub/blob"
ln -s f0 "$mnt/tree/link"
setfattr -n user.tag -v one "$mnt/tree/sub/blob" 2>/dev/null

# a writer rewrites f0..f9 in turn, each with the next round's number,
# and records each completed rewrite in a log outside the mount
( g=1; while :; do
	for i in 0 1 2 3 4 5 6 7 8 9; do
		echo "gen $g" > "$mnt/tree/f$i.tmp" && mv "$mnt/tree/f$i.tmp" "$mnt/tree/f$i" || exit 1
	done
	g=$((g + 1))
done ) &
writer=$!
sleep 0.5

# 1. one instant: f0..fk at round g+1, the rest at round g
check_instant() { # check_instant DIR
	prev=
	first=
	for i in 0 1 2 3 4 5 6 7 8 9; do
		line=$(cat "$1/tree/f$i") || fail "$1/tree/f$i unreadable"
		case "$line" in "gen "*) ;; *) fail "$1/tree/f$i holds '$line'" ;; esac
		g=${line#gen }
		[ -z "$first" ] && first=$g
		[ -n "$prev" ] && [ "$g" -gt "$prev" ] && fail "$1: f$i at round $g ahead of the file before it ($prev)"
		[ "$g" -lt $((first - 1)) ] && fail "$1: f$i at round $g, f0 at $first: not one instant"
		prev=$g
	done
}
mkdir "$snaps/s1" || fail "mkdir $snaps/s1"
"$SETTFS" snapshot create "$mnt" s2 > "$work/create.out" || fail "settfs snapshot create exit $?"
grep -q "taken" "$work/create.out" || fail "create output"
check_instant "$snaps/s1"
check_instant "$snaps/s2"

# 2. equal to a copy made at the same quiescence point
kill -STOP "$writer"
cp -a "$mnt/tree" "$work/copy3"
mkdir "$snaps/s3" || fail "mkdir s3"
kill -CONT "$writer"
sleep 0.3
diff -r "$work/copy3" "$snaps/s3/tree" || fail "s3 differs from the tree when it was taken"
if command -v getfattr >/dev/null 2>&1; then
	[ "$(getfattr --only-values -n user.tag "$snaps/s3/tree/sub/blob" 2>/dev/null)" = one ] ||
		fail "s3 lost the xattr"
fi
kill "$writer"
wait "$writer" 2>/dev/null
writer=

# 3. hidden from the root's listing, enterable, read-only, own inodes
ls -a "$mnt" | grep -q "^\.snapshots$" && fail ".snapshots is listed in the root"
[ "$(ls "$snaps" | tr '\n' ' ')" = "s1 s2 s3 " ] || fail "snapshots listed: $(ls "$snaps")"
[ "$(readlink "$snaps/s3/tree/link")" = f0 ] || fail "symlink in the snapshot"
touch "$snaps/s3/tree/new" 2>/dev/null && fail "created a file in a snapshot"
echo x >> "$snaps/s3/tree/f0" 2>/dev/null && fail "wrote into a snapshot"
rm "$snaps/s3/tree/f0" 2>/dev/null && fail "removed a file from a snapshot"
mv "$snaps/s3/tree/f0" "$snaps/s3/tree/g0" 2>/dev/null && fail "renamed in a snapshot"
setfattr -n user.x -v y "$snaps/s3/tree/f0" 2>/dev/null && fail "set an xattr in a snapshot"
touch "$mnt/.snapshots" 2>/dev/null
mkdir "$mnt/.snapshots" 2>/dev/null && fail "made a directory over .snapshots"
live_ino=$(stat -c %i "$mnt/tree/sub/blob")
snap_ino=$(stat -c %i "$snaps/s3/tree/sub/blob")
[ "$live_ino" != "$snap_ino" ] || fail "the snapshot's inode number is the live one's"
cmp "$work/copy3/sub/blob" "$snaps/s3/tree/sub/blob" || fail "blob in s3"

# 4. the CLI lists with the space each holds alone, deletes
"$SETTFS" snapshot list --space "$mnt" > "$work/list.out" || fail "list exit $?"
for s in s1 s2 s3; do grep -q "^$s " "$work/list.out" || { cat "$work/list.out"; fail "list lacks $s"; }; done
"$SETTFS" snapshot create "$mnt" s2 2>/dev/null && fail "took a second s2"
"$SETTFS" snapshot delete "$mnt" s2 || fail "delete s2"
[ -e "$snaps/s2" ] && fail "s2 still there after the CLI deleted it"
"$SETTFS" snapshot delete "$mnt" s2 2>/dev/null && fail "deleted s2 twice"
"$SETTFS" snapshot create "$mnt" s4 > /dev/null || fail "create s4"
[ -d "$snaps/s4/tree" ] || fail "s4 not visible after the CLI took it"

# 5. kept across a remount and a kill -9
umount_fs
mount_fs
diff -r "$work/copy3" "$snaps/s3/tree" || fail "s3 changed across a remount"
cp -a "$mnt/tree" "$work/copy5"
"$SETTFS" snapshot create "$mnt" s5 > /dev/null || fail "create s5"
kill -9 "$daemon"
wait "$daemon" 2>/dev/null
daemon=
fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null
mount_fs
diff -r "$work/copy5" "$snaps/s5/tree" || fail "s5 lost with the daemon"
[ "$(ls "$snaps" | tr '\n' ' ')" = "s1 s3 s4 s5 " ] || fail "after kill -9: $(ls "$snaps")"

# 6. deleting a snapshot gives its space back
rm -rf "$mnt/tree"
head -c $((48 << 20)) /dev/urandom > "$mnt/big"
sync
mkdir "$snaps/big" || fail "mkdir big"
rm "$mnt/big"
for s in s1 s4 s5; do rmdir "$snaps/$s" || fail "rmdir $s"; done
# the kernel may hold the removed file a while (its data goes with the
# last reference): a remount lets go of it
umount_fs
mount_fs
held=$(du -sm "$store" | cut -f1)
[ "$held" -ge 48 ] || fail "the snapshot holds only ${held} MiB"
rmdir "$snaps/big" || fail "rmdir big"
i=0
while [ "$(du -sm "$store" | cut -f1)" -ge $((held - 24)) ]; do
	i=$((i + 1))
	if [ $i -gt 120 ]; then
		ls -l "$store"
		"$SETTFS" status "$mnt" | grep -A8 "^vlog"
		fail "space not given back after rmdir: $(du -sm "$store" | cut -f1) MiB (held $held)"
	fi
	sleep 0.5
done

# 7. rollback of the unmounted store
umount_fs
"$SETTFS" rollback "$store" s3 > "$work/rb.out" || fail "rollback exit $?"
"$SETTFS" rollback "$store" nope 2>/dev/null && fail "rolled back to a missing snapshot"
check_fsck
mount_fs
diff -r "$work/copy3" "$mnt/tree" || fail "the rolled-back tree differs from s3"
[ -e "$mnt/big" ] && fail "big came back"
[ "$(ls "$snaps" | tr '\n' ' ')" = "s3 " ] || fail "after rollback: $(ls "$snaps")"
umount_fs
check_fsck
echo "PASS"
