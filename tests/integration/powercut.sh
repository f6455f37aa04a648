#!/bin/sh
# Power cuts through a real mount.  The daemon runs with its test-only power
# cut armed (SETTFS_TEST_POWERCUT_FIFO, fs/fuse_main.c); a writer creates
# files under temporary names, fsyncs them, renames them into place and
# fsyncs the directory, and logs each file once that returned.  At a random
# moment the daemon drops every byte the engine had not fsynced and dies.
# After a remount every logged file must be there with its content, every
# other file present under its final name must be whole (the rename came
# after the fsync), and fsck.settfs must be clean.  Meanwhile snapshots are
# taken (`settfs snapshot create`): every one acknowledged must be there
# after the power cut, holding every file logged before it was asked for,
# each whole; none left half made (fsck checks records against pins).
#
# SETTFS_POWERCUT_ITERATIONS (default 100) sets the number of power cuts.
. "${srcdir:-.}/tests/integration/lib.sh"
iters=${SETTFS_POWERCUT_ITERATIONS:-100}
fifo=$work/powercut
mkfifo "$fifo" || fail "mkfifo"
head -c 1100000 /dev/urandom > "$work/ref"

# content I: up to 96 KiB of ref, from an offset that depends on I
content() {
	tail -c +$(( ($1 * 7919) % 1000000 + 1 )) "$work/ref" | head -c $(( ($1 * 104729) % 98304 + 1 ))
}

# a failed check keeps the store and the listing for inspection
lost() {
	KEEP=1
	ls -la "$mnt/d" > "$work/listing" 2>&1
	fail "iteration $it: $* (store and listing kept in $work)"
}

writer() {
	i=$1
	while :; do
		{ content $i > "$mnt/d/tmp.$i"; } 2>/dev/null || exit 0
		sync "$mnt/d/tmp.$i" 2>/dev/null || exit 0
		mv "$mnt/d/tmp.$i" "$mnt/d/f.$i" 2>/dev/null || exit 0
		sync "$mnt/d" 2>/dev/null || exit 0
		echo $i >> "$work/acked"
		i=$((i + 1))
	done
}

# takes snapshots pIT.N while the writer runs; logs "NAME COUNT" for each
# acknowledged one, COUNT being the files logged before it was asked for
snapshotter() {
	n=0
	while :; do
		c=$(wc -l < "$work/acked")
		"$SETTFS" snapshot create "$mnt" "p$it.$n" > /dev/null 2>&1 || exit 0
		echo "p$it.$n $c" >> "$work/snaps"
		n=$((n + 1))
		sleep 0.05
	done
}

next=1
cuts=0
snaps=0
checked=0
it=0
while [ $it -lt "$iters" ]; do
	it=$((it + 1))
	: > "$work/acked"
	SETTFS_TEST_POWERCUT_FIFO=$fifo
	export SETTFS_TEST_POWERCUT_FIFO
	mount_fs
	unset SETTFS_TEST_POWERCUT_FIFO
	mkdir -p "$mnt/d"
	: > "$work/snaps"
	writer $next &
	wpid=$!
	snapshotter &
	spid=$!
	# 50 to 800 ms of writing, then the power cut
	sleep "0.$(printf '%03d' $(( $(od -An -N2 -tu2 /dev/urandom) % 750 + 50 )))"
	timeout 10 sh -c "echo x > '$fifo'" || fail "iteration $it: the daemon did not take the power cut"
	wait "$daemon" 2>/dev/null
	daemon=
	wait $wpid 2>/dev/null
	wait $spid 2>/dev/null
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt"
	cuts=$((cuts + 1))

	mount_fs
	while read -r name c; do
		sd=$mnt/.snapshots/$name/d
		[ -d "$sd" ] || lost "acknowledged snapshot $name lost"
		for i in $(head -n "$c" "$work/acked"); do
			[ -f "$sd/f.$i" ] || lost "snapshot $name lacks f.$i, logged before it was taken"
		done
		for f in "$sd"/f.*; do
			[ -e "$f" ] || continue
			content "${f##*/f.}" | cmp -s - "$f" || lost "$f has the wrong content"
		done
		snaps=$((snaps + 1))
	done < "$work/snaps"
	for s in "$mnt"/.snapshots/*; do
		[ -e "$s" ] || continue
		rmdir "$s" || fail "iteration $it: rmdir $s"
	done
	for i in $(cat "$work/acked"); do
		[ -f "$mnt/d/f.$i" ] || lost "acknowledged file f.$i lost"
	done
	for f in "$mnt"/d/f.*; do
		[ -e "$f" ] || continue
		i=${f##*/f.}
		content $i | cmp -s - "$f" || lost "$f has the wrong content"
		checked=$((checked + 1))
		[ "$i" -ge "$next" ] && next=$((i + 1))
	done
	for f in "$mnt"/d/tmp.*; do
		[ -e "$f" ] || continue
		i=${f##*/tmp.}
		[ "$i" -ge "$next" ] && next=$((i + 1))
	done
	# unlinks too, then a clean unmount and fsck
	rm -rf "$mnt/d" || fail "iteration $it: rm"
	umount_fs
	"$FSCK" -q "$store" >/dev/null || lost "fsck.settfs exit $?"
done
echo "PASS: $cuts power cuts, $checked files checked, $snaps snapshots checked"
