#!/bin/sh
# A damaged store is refused, never made worse (issue 9): with the MANIFEST
# missing, cut short (to 30 bytes) or with a flipped byte in its last
# record, `settfs` and `fsck.settfs` refuse, naming the MANIFEST, and no
# file of the store changes; `fsck.settfs -y` rebuilds it with every file.  A non-empty directory that is not a store is
# refused by settfs and mkfs.settfs; mkfs.settfs -f uses it anyway.
. "${srcdir:-.}/tests/integration/lib.sh"

# Every file of the store but LOCK (the opener's pid), names and bytes.
digest() { (cd "$1" && find . -path ./LOCK -prune -o -print | LC_ALL=C sort |
	while read -r f; do [ -f "$f" ] && sha256sum "$f" || echo "$f"; done) | sha256sum; }

# expect_refused DIR WHAT: settfs and fsck.settfs fail on DIR, saying WHAT;
# DIR is unchanged.
expect_refused() {
	before=$(digest "$1")
	if "$SETTFS" "$1" "$mnt" 2>"$work/err"; then
		fusermount3 -u "$mnt"
		fail "settfs mounted $1 ($2)"
	fi
	is_mounted && fail "mounted"
	grep -q "$2" "$work/err" || fail "settfs said: $(cat "$work/err"), expected $2"
	if "$FSCK" "$1" >"$work/out" 2>"$work/err"; then
		fail "fsck.settfs called $1 clean ($2)"
	fi
	grep -q "$2" "$work/err" || fail "fsck.settfs said: $(cat "$work/err"), expected $2"
	[ "$(digest "$1")" = "$before" ] || fail "$1 changed ($2)"
}

# expect_repaired WHAT: fsck.settfs -y on a copy of the store rebuilds it
# (exit 1), then it is clean and every file is back.
expect_repaired() {
	rm -rf "$work/copy"
	cp -rp "$store" "$work/copy"
	"$FSCK" -y "$work/copy" >"$work/out" 2>&1
	rc=$?
	[ $rc = 1 ] || { cat "$work/out"; fail "fsck.settfs -y ($1): exit $rc, not 1"; }
	"$FSCK" "$work/copy" >"$work/out" 2>&1 || { cat "$work/out"; fail "not clean after -y ($1)"; }
	keep=$store
	store=$work/copy
	mount_fs
	[ "$(cat "$mnt/one")" = one ] && [ "$(cat "$mnt/two")" = two ] || fail "files lost ($1)"
	[ "$(sha256sum < "$mnt/big")" = "$want" ] || fail "big file differs ($1)"
	umount_fs
	store=$keep
}

# flip FILE OFFSET: xor one byte with 0x5a.
flip() {
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 90)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Two mounts, two tables.
mount_fs
echo one > "$mnt/one"
head -c 300000 /dev/urandom > "$mnt/big"
want=$(sha256sum < "$mnt/big")
umount_fs
mount_fs
echo two > "$mnt/two"
umount_fs
ls "$store"/*.sst >/dev/null 2>&1 || fail "no tables"
cp -p "$store/MANIFEST" "$work/MANIFEST.keep"
size=$(stat -c %s "$store/MANIFEST")

rm "$store/MANIFEST"
expect_refused "$store" "MANIFEST: missing"
expect_repaired "MANIFEST missing"
cp -p "$work/MANIFEST.keep" "$store/MANIFEST"
truncate -s 30 "$store/MANIFEST"
expect_refused "$store" "MANIFEST: torn record at offset 16"
expect_repaired "MANIFEST cut short"
cp -p "$work/MANIFEST.keep" "$store/MANIFEST"
flip "$store/MANIFEST" $((size - 5))
expect_refused "$store" "MANIFEST: corrupt record at offset"
expect_repaired "MANIFEST record flipped"

# The intact MANIFEST brings everything back.
cp -p "$work/MANIFEST.keep" "$store/MANIFEST"
check_fsck
mount_fs
[ "$(cat "$mnt/one")" = one ] && [ "$(cat "$mnt/two")" = two ] || fail "files lost"
[ "$(sha256sum < "$mnt/big")" = "$want" ] || fail "big file differs"
umount_fs

# Another program's non-empty directory.
other=$work/other
mkdir "$other"
echo "ref: refs/heads/main" > "$other/HEAD"
before=$(digest "$other")
"$SETTFS" "$other" "$mnt" 2>"$work/err" && { fusermount3 -u "$mnt"; fail "settfs used $other"; }
grep -q "not empty and holds no store" "$work/err" || fail "settfs said: $(cat "$work/err")"
"$MKFS" "$other" 2>"$work/err" && fail "mkfs.settfs used a non-empty directory"
grep -q "not empty" "$work/err" || fail "mkfs.settfs said: $(cat "$work/err")"
[ "$(digest "$other")" = "$before" ] || fail "$other changed"
"$MKFS" -f "$other" >/dev/null || fail "mkfs.settfs -f"
[ "$(cat "$other/HEAD")" = "ref: refs/heads/main" ] || fail "mkfs -f touched HEAD"
"$FSCK" "$other" >/dev/null || fail "fsck after mkfs -f"

# mkfs.settfs: a new directory works, an existing store needs -f.
"$MKFS" "$work/new" >/dev/null || fail "mkfs.settfs on a missing directory"
"$MKFS" "$work/new" 2>/dev/null && fail "mkfs.settfs erased a store without -f"
"$MKFS" -f "$work/new" >/dev/null || fail "mkfs.settfs -f on a store"
echo PASS
