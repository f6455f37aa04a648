#!/bin/sh
# cp -a and rsync -aH of a tree with symlinks, hard links, modes and times;
# compared with diff -r and stat, again after a remount; fsck clean.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v rsync >/dev/null 2>&1 || skip "no rsync"

src=$work/src
mkdir -p "$src/a/b/c" "$src/empty" "$src/modes"
i=0
while [ $i -lt 40 ]; do
	head -c $((i * 997)) /dev/urandom > "$src/a/f$i"
	i=$((i + 1))
done
head -c 200000 /dev/urandom > "$src/a/b/big"
echo hello > "$src/a/b/c/deep"
ln -s ../a/b/c/deep "$src/empty/../link"
ln -s /nonexistent/target "$src/dangling"
ln "$src/a/f3" "$src/a/b/hard3"
ln "$src/a/f3" "$src/hard3b"
mkfifo "$src/fifo"
for m in 600 640 755 4755 2755 1777 444; do
	echo "$m" > "$src/modes/m$m"
	chmod "$m" "$src/modes/m$m"
done
chmod 700 "$src/a/b"
touch -h -d '2001-02-03 04:05:06.123456789' "$src/link"
find "$src" -exec touch -h -d '2010-01-01 00:00:00.5' {} + 2>/dev/null
touch -d '1999-12-31 23:59:59.987654321' "$src/a/f1"
[ -d /usr/include/linux ] && cp -a /usr/include/linux "$src/linux"

listing() {
	(cd "$1" && find . ! -type d -printf '%p %y %m %U %G %s %T@ %l\n' | sort)
	(cd "$1" && find . -type d -printf '%p %y %m %U %G %T@\n' | sort)
	(cd "$1" && find . ! -type d -printf '%p %n\n' | sort)
}

mount_fs
cp -a "$src" "$mnt/cp" || fail "cp -a"
rsync -aH "$src/" "$mnt/rs/" || fail "rsync -aH"
check_trees() {
	diff -r --no-dereference -x fifo "$src" "$mnt/cp" || fail "diff cp"
	diff -r --no-dereference -x fifo "$src" "$mnt/rs" || fail "diff rsync"
	[ -p "$mnt/cp/fifo" ] && [ -p "$mnt/rs/fifo" ] || fail "fifo"
	listing "$src" > "$work/want"
	listing "$mnt/cp" > "$work/got_cp"
	listing "$mnt/rs" > "$work/got_rs"
	diff "$work/want" "$work/got_cp" || fail "stat cp"
	# rsync -H makes the hard links of the top directory after it has set
	# that directory's times (ext4 shows the same), so "." is not compared
	grep -v '^\. d ' "$work/want" > "$work/want_rs"
	grep -v '^\. d ' "$work/got_rs" > "$work/got_rs_top"
	diff "$work/want_rs" "$work/got_rs_top" || fail "stat rsync"
	# inode numbers of hard links agree
	a=$(stat -c %i "$mnt/rs/a/f3")
	b=$(stat -c %i "$mnt/rs/hard3b")
	[ "$a" = "$b" ] || fail "hard link inode numbers"
	# directory nlink = 2 + subdirectories
	n=$(stat -c %h "$mnt/cp/a")
	[ "$n" = 3 ] || fail "nlink of a is $n"
}
check_trees
ino_before=$(stat -c %i "$mnt/cp/a/b/big")
umount_fs
check_fsck
mount_fs
check_trees
[ "$(stat -c %i "$mnt/cp/a/b/big")" = "$ino_before" ] || fail "inode number changed"
rm -rf "$mnt/cp" "$mnt/rs" || fail "rm -rf"
[ -z "$(ls -A "$mnt")" ] || fail "not empty after rm -rf"
umount_fs
check_fsck
echo PASS
