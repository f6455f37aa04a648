#!/bin/sh
# An encrypted store end to end: mkfs.settfs --key-file, a mount with
# -o key_file, a tree whose names and contents (small files, a large one)
# carry a marker; once unmounted no file of the store holds the marker
# (the same tree on an unencrypted store does, so the search can find it);
# a wrong key, no key and a key file others can read are refused without
# changing the store (sett repair without the key too); fsck.settfs and sett
# with the key find it clean, also after sett repair; a passphrase from a
# file or stdin; a mount through mount.settfs (as fstab's key_file=) reads
# every byte back.
# Skips while the engine refuses keys (sett_open: -ENOTSUP).
. "${srcdir:-.}/tests/integration/lib.sh"
SETT=${SETT:-$top/sett}
# mounts made through mount.settfs have no $daemon for cleanup to stop
enc_cleanup() {
	is_mounted && { "$SETTFS" umount -t 10 "$mnt" || fusermount3 -u -z "$mnt"; }
	cleanup
}
trap enc_cleanup EXIT

key=$work/key
head -c 32 /dev/urandom > "$key"
chmod 600 "$key"
wrong=$work/wrong
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$wrong" # 64 hex digits
echo >> "$wrong"
chmod 600 "$wrong"

# the store's files, byte for byte (LOCK aside)
store_sum() { (cd "$store" && find . -type f ! -name LOCK | sort | xargs cat | sha256sum); }

# a tree with the marker in file names, a directory name, small files, a
# symlink target and (incompressible around it) a large file
marker=settfs-marker-$$-Qz7
src=$work/src
make_tree() {
	mkdir -p "$src/dir-$marker/sub"
	for i in 1 2 3 4 5 6 7 8; do
		echo "small file $i: $marker" > "$src/dir-$marker/small$i"
	done
	echo "$marker" > "$src/file-$marker.txt"
	ln -s "target-$marker" "$src/dir-$marker/link"
	: > "$src/big"
	for i in 1 2 3 4; do
		head -c 700000 /dev/urandom >> "$src/big"
		printf '%s' "$marker" >> "$src/big"
	done
	head -c 5000 /dev/urandom > "$src/dir-$marker/sub/bin"
}
make_tree

# control: the marker is found in an unencrypted store of the same tree
mount_fs
cp -a "$src" "$mnt/tree" || fail "copy to the plain store"
umount_fs
grep -rqF -- "$marker" "$store" || fail "the marker is not found even in an unencrypted store"
rm -rf "$store"

# an encrypted store; the engine may not offer encryption yet
"$MKFS" -q --key-file "$key" "$store" > "$work/out" 2>&1
rc=$?
if [ $rc != 0 ] && grep -q "not available\|not supported" "$work/out"; then
	cat "$work/out"
	skip "the engine does not encrypt yet (sett_open: -ENOTSUP for a key)"
fi
[ $rc = 0 ] || { cat "$work/out"; fail "mkfs.settfs --key-file: exit $rc"; }

# a key file group or others can read is refused, as ssh refuses such keys
chmod 640 "$key"
"$SETTFS" -o key_file="$key" "$store" "$mnt" > "$work/out" 2>&1 && fail "mounted with a key file of mode 0640"
is_mounted && fail "a mount with a key file of mode 0640"
grep -q "too open" "$work/out" || { cat "$work/out"; fail "no 'too open' for mode 0640"; }
chmod 600 "$key"

mount_fs -o key_file="$key"
cp -a "$src" "$mnt/tree" || fail "copy"
umount_fs
grep -rlF -- "$marker" "$store" && fail "the marker is in the encrypted store's files (above)"

# a wrong key and no key are refused, naming the store; nothing changes
before=$(store_sum)
"$SETTFS" -o key_file="$wrong" "$store" "$mnt" > "$work/out" 2>&1
rc=$?
is_mounted && fail "mounted with a wrong key"
[ $rc = 1 ] || { cat "$work/out"; fail "wrong key: exit $rc, not 1"; }
grep -q "cannot open store $store: the key given does not open it" "$work/out" ||
	{ cat "$work/out"; fail "wrong key: no message naming the store"; }
"$SETTFS" "$store" "$mnt" > "$work/out" 2>&1
rc=$?
is_mounted && fail "mounted without a key"
[ $rc = 1 ] || { cat "$work/out"; fail "no key: exit $rc, not 1"; }
grep -q "cannot open store $store: it is encrypted and no key was given" "$work/out" ||
	{ cat "$work/out"; fail "no key: no message naming the store"; }
"$FSCK" -y "$store" > "$work/out" 2>&1
rc=$?
[ $rc = 8 ] || { cat "$work/out"; fail "fsck.settfs -y without the key: exit $rc, not 8"; }
"$SETT" check --key-file "$wrong" "$store" > "$work/out" 2>&1 && fail "sett check with a wrong key"
grep -q "sett check: $store: the key given does not open it" "$work/out" ||
	{ cat "$work/out"; fail "sett check, wrong key: message"; }

"$SETT" repair "$store" > "$work/out" 2>&1 && fail "sett repair without the key"
[ "$(store_sum)" = "$before" ] || fail "a refused open or repair changed the store"

# with the key: clean, and a repair keeps every file (checked below)
"$FSCK" --key-file "$key" "$store" > "$work/out" 2>&1 || { cat "$work/out"; fail "fsck.settfs --key-file: exit $?"; }
"$SETT" check --key-file "$key" "$store" > "$work/out" 2>&1 || { cat "$work/out"; fail "sett check --key-file"; }
"$SETT" repair --key-file "$key" "$store" > "$work/out" 2>&1 || { cat "$work/out"; fail "sett repair --key-file"; }
"$FSCK" --key-file "$key" "$store" > "$work/out" 2>&1 || { cat "$work/out"; fail "fsck.settfs after sett repair: exit $?"; }

# a passphrase, from a file and from standard input
printf 'correct horse battery staple\n' > "$work/pass"
chmod 600 "$work/pass"
"$MKFS" -q --passphrase-file "$work/pass" "$work/pstore" || fail "mkfs.settfs --passphrase-file"
echo "wrong passphrase" | "$SETT" check --passphrase-file - "$work/pstore" > "$work/out" 2>&1 &&
	fail "sett check with a wrong passphrase"
grep -q "the key given does not open it" "$work/out" || { cat "$work/out"; fail "wrong passphrase: message"; }
"$SETT" check --passphrase-file - "$work/pstore" < "$work/pass" > "$work/out" 2>&1 ||
	{ cat "$work/out"; fail "sett check --passphrase-file -"; }

# remount (through mount.settfs when mount.fuse3 is there, as fstab would)
# and read back byte for byte
if command -v mount.fuse3 >/dev/null 2>&1 || [ -x /sbin/mount.fuse3 ]; then
	PATH=$(dirname "$SETTFS"):$PATH sh "$top/tools/mount.settfs" "$store" "$mnt" \
		-o key_file="$key" || fail "mount.settfs -o key_file"
	is_mounted || fail "not mounted by mount.settfs"
else
	mount_fs -o key_file="$key"
fi
diff -r --no-dereference "$src" "$mnt/tree" || fail "the tree read back differs"
cmp "$src/big" "$mnt/tree/big" || fail "big read back differs"
[ "$(readlink "$mnt/tree/dir-$marker/link")" = "target-$marker" ] || fail "symlink target"
if [ -n "$daemon" ]; then
	umount_fs
else
	"$SETTFS" umount -t 30 "$mnt" || fail "settfs umount"
fi
grep -rlF -- "$marker" "$store" && fail "the marker is in the store's files after the remount"
echo PASS
