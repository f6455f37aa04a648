#!/bin/sh
# A full disk is survivable: with the store on a small tmpfs, several
# writers fill it until they get ENOSPC; the full store is fsck clean and
# remounts, and every fsynced file reads back; after deletes, new writes
# succeed again without a remount (bounded wait); fsck is clean after each
# cycle and the fsynced files kept from every cycle stay intact.
# SETTFS_ENOSPC_MB: tmpfs size (default 256); SETTFS_ENOSPC_CYCLES (3).
. "${srcdir:-.}/tests/integration/lib.sh"
mb=${SETTFS_ENOSPC_MB:-256}
cycles=${SETTFS_ENOSPC_CYCLES:-3}
writers=4
disk=$(mktemp -d "${TMPDIR:-/tmp}/settfs-disk.XXXXXX")
trap 'cleanup; umount "$disk" 2>/dev/null; rmdir "$disk"' EXIT
mount -t tmpfs -o size=${mb}m tmpfs "$disk" || skip "cannot mount a tmpfs"
store=$disk/store

w=0
while [ $w -lt $writers ]; do
	head -c $((4 << 20)) /dev/urandom > "$work/ref$w" || fail "make reference"
	w=$((w + 1))
done

# writer ID CYCLE: 4 MiB files, each fsynced, until the first failure,
# which must be ENOSPC.  Lists the files that were fsynced.
writer() {
	i=0
	while :; do
		f=$mnt/c$2/w$1-$i
		if dd if="$work/ref$1" of="$f" bs=256k conv=fsync status=none 2>"$work/err$1"; then
			echo "$f $1" >> "$work/synced"
		else
			grep -q "No space left" "$work/err$1" ||
				{ cat "$work/err$1"; echo "writer $1: not ENOSPC" > "$work/bad$1"; }
			return
		fi
		i=$((i + 1))
	done
}

check_kept() {
	[ -s "$work/kept" ] || return 0
	while read -r f id; do
		cmp -s "$work/ref$id" "$f" || fail "$f (fsynced) differs from its reference"
	done < "$work/kept"
}

mkdir -p "$store"
mount_fs
mkdir "$mnt/keep" || fail "mkdir keep"
c=1
while [ $c -le $cycles ]; do
	mkdir "$mnt/c$c" || fail "cycle $c: mkdir"
	: > "$work/synced"
	w=0
	pids=
	while [ $w -lt $writers ]; do
		writer $w $c &
		pids="$pids $!"
		w=$((w + 1))
	done
	wait $pids
	ls "$work"/bad* >/dev/null 2>&1 && fail "cycle $c: a writer failed with another error"
	n=$(wc -l < "$work/synced")
	[ "$n" -ge 1 ] || fail "cycle $c: no file was written before ENOSPC"
	avail=$(df -k --output=avail "$mnt" | tail -1)
	echo "cycle $c: $n files fsynced before ENOSPC; df avail ${avail} KiB; store $(du -sm "$store" | cut -f1) MiB"
	[ "$avail" -lt 16384 ] || fail "cycle $c: df shows $avail KiB available after ENOSPC"

	# a full disk: the store remounts (so what follows reads the store,
	# not the page cache), reads, listing and stat work; so do deletes
	# and renames
	umount_fs
	check_fsck
	mount_fs
	while read -r f id; do
		cmp -s "$work/ref$id" "$f" || fail "cycle $c: reading $f on a full disk"
	done < "$work/synced"
	check_kept
	ls -l "$mnt/c$c" > /dev/null || fail "cycle $c: ls"
	head -2 "$work/synced" > "$work/tokeep"
	while read -r f id; do
		b=$(basename "$f")
		mv "$f" "$mnt/keep/$c-$b" || fail "cycle $c: rename on a full disk"
		echo "$mnt/keep/$c-$b $id" >> "$work/kept"
	done < "$work/tokeep"
	truncate -s 1M "$(sed -n 3p "$work/synced" | cut -d' ' -f1)" 2>/dev/null
	rm -rf "$mnt/c$c" || fail "cycle $c: rm -rf on a full disk"

	# space comes back without a remount
	t=0
	until dd if="$work/ref0" of="$mnt/probe" bs=256k conv=fsync status=none 2>/dev/null; do
		rm -f "$mnt/probe"
		t=$((t + 2))
		[ $t -le 180 ] || fail "cycle $c: writes still fail 180 s after the deletes"
		sleep 2
	done
	echo "cycle $c: writes work again ${t} s after the deletes; store $(du -sm "$store" | cut -f1) MiB"
	cmp -s "$work/ref0" "$mnt/probe" || fail "cycle $c: probe file differs"
	rm -f "$mnt/probe"
	# and the space of what was deleted comes back: below 64 MiB plus
	# 1.25x of the kept files
	limit=$(( (64 << 20) + $(wc -l < "$work/kept") * (5 << 20) ))
	t=0
	while [ "$(du -sB1 "$store" | cut -f1)" -gt $limit ]; do
		t=$((t + 2))
		[ $t -le 180 ] || fail "cycle $c: store still $(du -sm "$store" | cut -f1) MiB 180 s after the deletes"
		sleep 2
	done
	echo "cycle $c: store $(du -sm "$store" | cut -f1) MiB ${t} s later (limit $((limit >> 20)) MiB)"
	mkdir "$mnt/after$c" && rmdir "$mnt/after$c" || fail "cycle $c: mkdir after the deletes"
	umount_fs
	check_fsck
	mount_fs
	check_kept
	c=$((c + 1))
done
umount_fs
check_fsck
echo PASS
