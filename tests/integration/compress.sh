#!/bin/sh
# Compression of file data: a store made with -o compression=zstd holds a
# text tree in clearly fewer bytes than its size (du of the mount, and the
# store directory itself), random data stored raw, everything byte-exact
# (sha256) after a remount; `settfs status` and `sett info` show the
# setting, the logical and stored totals and the ratio; -o compression=
# at mount changes the setting and a later mount keeps it; fsck clean.
# SETTFS_COMPRESS_MB sets the size of the generated text (8 MiB).
. "${srcdir:-.}/tests/integration/lib.sh"
command -v sha256sum >/dev/null 2>&1 || skip "no sha256sum"
command -v python3 >/dev/null 2>&1 || skip "no python3"

mb=${SETTFS_COMPRESS_MB:-8}
src=$work/src
mkdir -p "$src/gen" "$src/rand"
# text: numbered lines in files of 100 KiB to 1 MiB, and a copy of real
# headers when there are any
i=0
while [ $((i * 512)) -lt $((mb * 1024)) ]; do
	seq -f "line %g of a settfs compression test, with some words repeated" \
		$((i * 7000)) $((i * 7000 + 6999)) | head -c $((100000 + i * 4099 % 900000)) \
		> "$src/gen/t$i.txt"
	i=$((i + 1))
done
[ -d /usr/include/linux ] && cp -a /usr/include/linux "$src/linux"
head -c 3000000 /dev/urandom > "$src/rand/big"
head -c 70000 /dev/urandom > "$src/rand/small"
text_bytes=$(du -s --apparent-size -B1 "$src/gen" | cut -f1)
[ -d "$src/linux" ] && text_bytes=$((text_bytes + $(du -s --apparent-size -B1 "$src/linux" | cut -f1)))
(cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$work/sums"

"$MKFS" -q -o compression=zstd "$store" || fail "mkfs.settfs -o compression=zstd"
"$MKFS" -q -o compression=lz4 "$work/bad" 2>/dev/null && fail "mkfs took compression=lz4"
mount_fs
"$SETTFS" status "$mnt" | grep -q "compression *zstd:3" || fail "status: no zstd:3"
cp -a "$src/." "$mnt/" || fail "cp -a"
sync
(cd "$mnt" && sha256sum -c --quiet "$work/sums") || fail "sha256 before remount"
cmp "$src/rand/big" "$mnt/rand/big" || fail "random data differs"

# du of the mount counts stored (compressed) bytes: the text takes well
# under half its size, the random data at least its own
text_du=$(du -s -B1 "$mnt/gen" | cut -f1)
[ -d "$mnt/linux" ] && text_du=$((text_du + $(du -s -B1 "$mnt/linux" | cut -f1)))
rand_du=$(du -s -B1 "$mnt/rand" | cut -f1)
echo "text: $text_bytes bytes, du $text_du; random: 3070000 bytes, du $rand_du"
[ "$text_du" -lt $((text_bytes / 2)) ] || fail "text takes $text_du of $text_bytes bytes"
[ "$rand_du" -ge 3070000 ] || fail "random data counts $rand_du bytes"

"$SETTFS" status --json "$mnt" > "$work/status.json" || fail "status --json"
python3 - "$work/status.json" "$text_bytes" <<'EOF' || fail "status figures"
import json, sys
fs = json.load(open(sys.argv[1]))["fs"]
assert fs["compression"] == "zstd:3", fs
assert fs["data_stored_bytes"] < fs["logical_bytes"], fs
assert fs["compression_ratio"] > 1.3, fs
EOF
umount_fs
check_fsck

# the store itself: clearly smaller than what it holds
total=$(du -s --apparent-size -B1 "$src" | cut -f1)
stored=$(du -s -B1 "$store" | cut -f1)
echo "tree $total bytes, store $stored bytes"
[ "$stored" -lt $((total * 3 / 4)) ] || fail "store $stored bytes for a $total-byte tree"
"$top/sett" info "$store" > "$work/info" || fail "sett info"
grep -q "settfs compression zstd:3" "$work/info" || fail "sett info: no compression"
grep -q "settfs file data .*stored in .*(ratio" "$work/info" || fail "sett info: no ratio"

# off at mount: kept by the next mount without the option; old chunks read
mount_fs -o compression=none
cat "$src/gen/t0.txt" "$src/gen/t1.txt" "$src/gen/t2.txt" | head -c 200000 > "$mnt/raw.txt"
umount_fs
mount_fs
"$SETTFS" status "$mnt" | grep -q "compression *none" || fail "setting none not kept"
raw_du=$(du -B1 "$mnt/raw.txt" | cut -f1)
[ "$raw_du" -ge 200000 ] || fail "raw.txt stored compressed ($raw_du bytes)"
(cd "$mnt" && sha256sum -c --quiet "$work/sums") || fail "sha256 after remount"
umount_fs
mount_fs -o compression=zstd:1
"$SETTFS" status "$mnt" | grep -q "compression *zstd:1" || fail "zstd:1 not set"
umount_fs
timeout 10 "$SETTFS" -f -o compression=gzip "$store" "$mnt" 2> "$work/err"
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] && ! is_mounted || fail "settfs took compression=gzip ($rc)"
grep -q "compression=gzip" "$work/err" || fail "no word on compression=gzip"
check_fsck
echo PASS
