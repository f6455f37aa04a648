#!/bin/sh
# Damage each kind of store file (a flipped byte or a cut at a random
# offset, SWEEP_RUNS times per file), then fsck.settfs -y: it never crashes
# or hangs, leaves a store that fsck then calls clean and that mounts, and
# every file it does not name as damaged reads back as it was written (or,
# when what held it is lost without a trace, is gone and a loss reported).
. "${srcdir:-.}/tests/integration/lib.sh"
src=${srcdir:-.}
runs=${SWEEP_RUNS:-6}
mount_fs
mkdir "$mnt/t"
cp "$src"/kvengine/*/*.c "$mnt/t/" || fail "copy"
head -c 400000 /dev/urandom > "$mnt/big"
umount_fs
mount_fs
echo "second" > "$mnt/t/second"
umount_fs
check_fsck
mkdir "$work/ref" && cp "$src"/kvengine/*/*.c "$work/ref/"
echo second > "$work/ref/second"
cp -r "$store" "$work/base"
# SWEEP_FILES: only these store files.
files=${SWEEP_FILES:-$(cd "$work/base" && ls | grep -v LOCK)}
seed=1
for f in $files; do
	size=$(stat -c %s "$work/base/$f")
	k=0
	while [ $k -lt "$runs" ]; do
		k=$((k + 1))
		seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
		off=$((seed % size))
		rm -rf "$store" && cp -r "$work/base" "$store"
		if [ $((k % 3)) = 0 ]; then
			truncate -s $off "$store/$f"; what="cut at $off"
		else
			b=$(od -An -tu1 -j$off -N1 "$store/$f" | tr -d ' ')
			printf "$(printf '\\%03o' $(( b ^ 90 )))" |
				dd of="$store/$f" bs=1 seek=$off conv=notrunc status=none
			what="byte $off flipped"
		fi
		timeout 120 "$FSCK" -y "$store" > "$work/out" 2>&1
		rc=$?
		case $rc in
		0|1) ;;
		8) grep -q "not a settfs store\|not supported\|does not open after" "$work/out" &&
			continue ;;
		esac
		[ $rc -le 1 ] || { cat "$work/out"; fail "$f, $what: fsck -y exit $rc"; }
		timeout 120 "$FSCK" -n "$store" > "$work/out2" 2>&1 ||
			{ cat "$work/out" "$work/out2"; fail "$f, $what: not clean after -y"; }
		mount_fs
		for r in "$work"/ref/*; do
			n=$(basename "$r")
			grep -q "/t/$n\b\|/t (inode\|lost+found" "$work/out" && continue
			if [ ! -e "$mnt/t/$n" ]; then
				# gone without a trace (a whole table or block lost): said so
				grep -q "lost" "$work/out" && continue
				cat "$work/out"
				fail "$f, $what: /t/$n gone and no loss reported"
			fi
			cmp -s "$r" "$mnt/t/$n" || { cat "$work/out"; fail "$f, $what: /t/$n differs"; }
		done
		umount_fs
	done
done
echo PASS
