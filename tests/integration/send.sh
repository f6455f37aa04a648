#!/bin/sh
# send.sh - `settfs send` and `settfs receive`: a full stream of a snapshot
# taken while mounted goes into a new store, then two incrementals of a
# 1 % change each; the replica's live tree and its snapshots equal the
# source's snapshots (rsync -anc shows nothing); an incremental stream is a
# small fraction of the full one; a truncated or damaged stream is refused
# and leaves the replica's store byte for byte as it was; a mounted store is
# refused as a target.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v rsync >/dev/null 2>&1 || skip "no rsync"
command -v setfattr >/dev/null 2>&1 || skip "no setfattr (Debian package attr)"

rep=$work/replica
mnt2=$work/mnt2
mkdir -p "$mnt2"
send_cleanup() {
	grep -q " $mnt2 fuse" /proc/mounts && fusermount3 -u "$mnt2" 2>/dev/null
	cleanup
}
trap send_cleanup EXIT

# digest DIR: the store's files (not LOCK), byte for byte
digest() { (cd "$1" && find . -type f ! -name LOCK -exec md5sum {} + | sort | md5sum); }
size() { wc -c < "$1"; }
# same A B: rsync finds no difference from A to B (content, modes, times, xattrs)
same() {
	out=$(rsync -ancX --delete -i "$1/" "$2/") || fail "rsync $1 $2 exit $?"
	[ -z "$out" ] || { echo "$out" | head -20; fail "$2 differs from $1"; }
}
receive() { "$SETTFS" receive "$rep" < "$1" 2> "$work/err"; }

mount_fs
mkdir -p "$mnt/t/a" "$mnt/t/b"
i=0
while [ $i -lt 200 ]; do
	head -c $((4096 + i * 211)) /dev/urandom > "$mnt/t/$([ $((i % 2)) = 0 ] && echo a || echo b)/f$i"
	i=$((i + 1))
done
ln -s a/f0 "$mnt/t/link"
setfattr -n user.tag -v one "$mnt/t/a/f0"

# a writer keeps changing the live tree while the snapshots are taken and sent
( j=0; while :; do echo "$j" > "$mnt/busy"; j=$((j + 1)); done ) &
writer=$!
mkdir "$mnt/.snapshots/s1" || fail "snapshot s1"
"$SETTFS" send "$mnt" s1 > "$work/full" 2> "$work/err" || fail "send s1: $(cat "$work/err")"
receive "$work/full" || fail "receive full: $(cat "$work/err")"
# only root and the mount's owner may send
if command -v setpriv >/dev/null 2>&1; then
	chmod 755 "$work"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$SETTFS" send "$mnt" s1 \
		> /dev/null 2> "$work/refused" && fail "another user could send"
	grep -q "refused" "$work/refused" || fail "no reason given: $(cat "$work/refused")"
fi

# 1 %: an overwrite, a delete, a rename, an xattr
head -c 5000 /dev/urandom > "$mnt/t/a/f10"
rm "$mnt/t/b/f11"
mv "$mnt/t/a/f12" "$mnt/t/b/f12.moved"
setfattr -n user.tag -v two "$mnt/t/a/f0"
mkdir "$mnt/.snapshots/s2" || fail "snapshot s2"
"$SETTFS" send -i s1 "$mnt" s2 > "$work/inc1" 2> "$work/err" || fail "send s2: $(cat "$work/err")"
receive "$work/inc1" || fail "receive inc1: $(cat "$work/err")"
[ $(($(size "$work/inc1") * 20)) -lt "$(size "$work/full")" ] ||
	fail "an incremental of 1 % is $(size "$work/inc1") bytes, the full stream $(size "$work/full")"

rm -r "$mnt/t/b/f13" "$mnt/t/b/f15"
mkdir "$mnt/t/c"
echo new > "$mnt/t/c/new"
dd if=/dev/urandom of="$mnt/t/a/f20" bs=1000 seek=2 count=1 conv=notrunc 2>/dev/null
setfattr -x user.tag "$mnt/t/a/f0"
mkdir "$mnt/.snapshots/s3" || fail "snapshot s3"
"$SETTFS" send -i s2 "$mnt" s3 > "$work/inc2" 2> "$work/err" || fail "send s3: $(cat "$work/err")"
kill "$writer"
wait "$writer" 2>/dev/null

# damaged streams: refused, the replica's store unchanged
before=$(digest "$rep")
n=$(size "$work/inc2")
head -c $((n - 7)) "$work/inc2" > "$work/cut"
receive "$work/cut" && fail "a truncated stream was received"
grep -q "truncated" "$work/err" || fail "no reason given: $(cat "$work/err")"
head -c $((n / 2)) "$work/inc2" > "$work/cut"
receive "$work/cut" && fail "a stream cut in half was received"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 4; open(sys.argv[2], "wb").write(b)' \
	"$work/inc2" "$work/flip" || fail "python3"
receive "$work/flip" && fail "a damaged stream was received"
grep -q "checksum" "$work/err" || fail "no reason given: $(cat "$work/err")"
[ "$(digest "$rep")" = "$before" ] || fail "a refused stream changed the replica"
receive "$work/inc2" || fail "receive inc2: $(cat "$work/err")"

# the replica, mounted: its live tree and snapshots are the source's snapshots
"$SETTFS" "$rep" "$mnt2" || fail "mount the replica"
receive "$work/inc2" && fail "a mounted store took a stream"
grep -q "in use" "$work/err" || fail "no reason given: $(cat "$work/err")"
same "$mnt/.snapshots/s3" "$mnt2"
for s in s1 s2 s3; do
	same "$mnt/.snapshots/$s" "$mnt2/.snapshots/$s"
done
[ "$(getfattr --only-values -n user.tag "$mnt2/.snapshots/s2/t/a/f0" 2>/dev/null)" = two ] ||
	fail "the xattr of s2 did not come over"
"$SETTFS" umount "$mnt2" || fail "unmount the replica"
"$FSCK" "$rep" > "$work/fsck" 2>&1 || fail "fsck.settfs of the replica: $(cat "$work/fsck")"
umount_fs
check_fsck
echo "1 passed, 0 failed"
