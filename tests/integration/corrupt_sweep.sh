#!/bin/sh
# Damaged stores through real mounts (issue 9; the bulk of the sweep is
# tests/test_sweep, on the filesystem core): a store of known files (many
# small ones, a few large ones in the value log, a directory tree, xattrs)
# gets one flipped byte at a time, spread over its largest table, then in
# the value log, and one cut value log.  Each damaged copy either is
# refused (settfs exits with a message, no signal) or mounts; mounted,
# every file reads as written or fails with EIO, never as other bytes; a
# mount that met the damage at open is read-only and says so; when a read
# failed, fsck.settfs does not call the store clean (and names the file
# and byte range of a damaged value-log entry).  At least one of the
# table's damaged blocks must be one the open reads (the inodes): formerly
# "cannot open store: Input/output error", now a read-only mount.
. "${srcdir:-.}/tests/integration/lib.sh"

flip() {
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 90)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

src=$work/src
mkdir -p "$src/d1/d2"
i=0
while [ $i -lt 200 ]; do
	head -c $((300 + i)) /dev/urandom > "$src/f$i"
	i=$((i + 1))
done
head -c 5000 /dev/urandom > "$src/d1/vlog"
head -c 200000 /dev/urandom > "$src/d1/d2/big"
mount_fs
cp -a "$src/." "$mnt/"
if command -v setfattr >/dev/null 2>&1; then
	setfattr -n user.tag -v d1vlog "$mnt/d1/vlog" || fail "setfattr"
	xattrs=1
fi
umount_fs
cp -a "$store" "$work/base"

# check_copy WHAT: mounts $store (a damaged copy) and checks it as above.
check_copy() {
	"$SETTFS" -f "$store" "$mnt" 2>"$work/err" &
	daemon=$!
	i=0
	while ! is_mounted; do
		i=$((i + 1))
		if ! kill -0 "$daemon" 2>/dev/null; then
			wait "$daemon"
			rc=$?
			daemon=
			[ $rc -lt 128 ] || fail "$1: settfs died of a signal ($rc)"
			grep -q "cannot open store" "$work/err" || fail "$1: settfs said: $(cat "$work/err")"
			refused=$((refused + 1))
			return
		fi
		[ $i -gt 200 ] && fail "$1: mount did not appear"
		sleep 0.1
	done
	if grep -q "mounting it read-only" "$work/err"; then
		grep " $mnt fuse" /proc/mounts | grep -q "[ ,]ro[ ,]" ||
			fail "$1: degraded mount is not read-only"
		degraded=$((degraded + 1))
	fi
	eio=0
	for f in $(cd "$src" && find . -type f); do
		if cat "$mnt/$f" > "$work/got" 2>"$work/cat.err"; then
			cmp -s "$work/got" "$src/$f" || fail "$1: $f reads as other bytes"
		else
			grep -q "Input/output error" "$work/cat.err" ||
				fail "$1: $f: $(cat "$work/cat.err")"
			eio=$((eio + 1))
		fi
	done
	if [ -n "$xattrs" ]; then
		v=$(getfattr --only-values -n user.tag "$mnt/d1/vlog" 2>"$work/x.err")
		if [ $? -eq 0 ]; then
			[ "$v" = d1vlog ] || fail "$1: xattr reads as $v"
		else
			grep -q "Input/output error" "$work/x.err" || fail "$1: getfattr: $(cat "$work/x.err")"
			eio=$((eio + 1))
		fi
	fi
	fusermount3 -u "$mnt" || fail "$1: unmount"
	wait "$daemon"
	daemon=
	if [ $eio -gt 0 ]; then
		eios=$((eios + 1))
		"$FSCK" "$store" >"$work/fsck.out" 2>&1 && fail "$1: $eio reads failed, fsck says clean"
		[ $? -lt 128 ] || fail "$1: fsck died of a signal"
		# a damaged value-log entry: fsck names the file and the bytes
		case $1 in *.vlog\ flipped*)
			grep -q "^/d1/.*: bytes [0-9]*-[0-9]* unreadable" "$work/fsck.out" ||
				fail "$1: fsck named no file: $(cat "$work/fsck.out")"
		esac
	fi
	return 0
}

refused=0
degraded=0
eios=0
sst=$(ls -S "$work/base"/*.sst | head -1)
sst=${sst##*/}
size=$(stat -c %s "$work/base/$sst")
n=${SETTFS_SWEEP_MOUNTS:-10}
k=0
while [ $k -lt $n ]; do
	off=$((size * (2 * k + 1) / (2 * n)))
	rm -rf "$store"
	cp -a "$work/base" "$store"
	flip "$store/$sst" $off
	check_copy "$sst flipped at $off"
	k=$((k + 1))
done
[ $degraded -gt 0 ] || fail "no damaged table block gave a read-only mount"
echo "$sst: $n flips: $degraded read-only mounts, $refused refused, $eios with EIO reads"

vlog=$(ls -S "$work/base"/*.vlog | head -1)
vlog=${vlog##*/}
size=$(stat -c %s "$work/base/$vlog")
for off in $((size / 3)) $((size * 2 / 3)) $((size - 20)); do
	rm -rf "$store"
	cp -a "$work/base" "$store"
	flip "$store/$vlog" $off
	check_copy "$vlog flipped at $off"
done
rm -rf "$store"
cp -a "$work/base" "$store"
truncate -s $((size / 2)) "$store/$vlog"
check_copy "$vlog cut to $((size / 2))"
echo "ok: $refused refused, $degraded read-only mounts, $eios with EIO reads in all"
