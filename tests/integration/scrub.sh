#!/bin/sh
# settfs scrub: a clean store scrubs clean (exit 0); a byte flipped in a
# chunk of a large file (its bytes in the value log) and in a small file
# (its chunk in a table block) is found by `settfs scrub MNT` (exit 1),
# which names the damaged file's path and, for the value-log record, none
# of the healthy ones; --no-wait and --status; a second scrub while one
# runs is refused; a user other than root and the mount's owner is refused;
# a file deleted since a snapshot is named by its path in the snapshot.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

scrub() { timeout 60 "$SETTFS" scrub "$@"; }

# offset_of PATTERN FILE...: "FILE OFFSET" of the one place PATTERN is stored
offset_of() {
	python3 - "$@" <<'EOF'
import sys
pat = sys.argv[1].encode()
hits = []
for f in sys.argv[2:]:
    data = open(f, "rb").read()
    i = data.find(pat)
    while i >= 0:
        hits.append((f, i))
        i = data.find(pat, i + 1)
if len(hits) != 1:
    sys.exit("%d copies of %s" % (len(hits), sys.argv[1]))
print(hits[0][0], hits[0][1])
EOF
}

# flip FILE OFFSET: xor one byte with 0x5a
flip() {
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 90)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# file NAME SIZE TAG: random bytes, with "scrub-TAG-N" at the start of each 64 KiB
file() {
	python3 - "$@" <<'EOF'
import os, sys
name, size, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(name, "wb") as f:
    for off in range(0, size, 65536):
        n = min(65536, size - off)
        head = ("scrub-%s-%d-" % (tag, off // 65536)).encode()
        f.write((head + os.urandom(n))[:n])
EOF
}

# scrub_damaged PATTERN OUT: (unmounted) flips a byte of the one value-log
# record holding PATTERN (in $vf at $voff), mounts, scrubs into OUT: exit 1
scrub_damaged() {
	set -- "$1" "$2" $(offset_of "$1" "$store"/*.vlog) || fail "$1 not found once"
	vf=$3 voff=$(($4 + 40))
	flip "$vf" $voff
	mount_fs
	scrub "$mnt" > "$2" 2>&1
	rc=$?
	cat "$2"
	[ $rc = 1 ] || fail "scrub of a damaged value-log record exit $rc, not 1"
}

chmod 755 "$work"
mount_fs
mkdir "$mnt/dir"
file "$mnt/dir/big.bin" $((4 * 65536)) big
file "$mnt/healthy.bin" $((3 * 65536)) healthy
file "$mnt/dir/small.txt" 1000 small
file "$mnt/other.txt" 1200 other
# small files after it: its table block then holds none of the keys a
# mount reads (inodes, superblock), which sort after every chunk key
mkdir "$mnt/fill"
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do file "$mnt/fill/$i" 1000 fill$i; done

# 1. clean: exit 0, everything checked
scrub "$mnt" > "$work/clean.out" 2>&1 || { cat "$work/clean.out"; fail "scrub of a clean store exit $?"; }
grep -q "^scrub: clean" "$work/clean.out" || { cat "$work/clean.out"; fail "clean scrub output"; }
grep -q "(100 %)" "$work/clean.out" || { cat "$work/clean.out"; fail "clean scrub did not check everything"; }

# 2. a non-owner is refused
if command -v setpriv >/dev/null 2>&1; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$SETTFS" scrub "$mnt" \
		> /dev/null 2> "$work/refused.err"
	rc=$?
	[ $rc = 2 ] || fail "scrub by another user exit $rc, not 2"
	grep -q "refused" "$work/refused.err" || { cat "$work/refused.err"; fail "refusal message"; }
fi
umount_fs

# 3. a flipped byte in the third chunk of big.bin, in the value log
scrub_damaged scrub-big-2- "$work/vlog.out"
grep -q "^    $mnt/dir/big.bin (data, bytes 131072-196607)" "$work/vlog.out" ||
	fail "scrub does not name big.bin's damaged chunk"
grep -q "healthy\|small\|other" "$work/vlog.out" && fail "scrub names a healthy file"
# the last scrub's state stays readable
scrub --status "$mnt" > "$work/status.out" 2>&1
[ $? = 1 ] || { cat "$work/status.out"; fail "scrub --status after damage: exit not 1"; }
grep -q "dir/big.bin" "$work/status.out" || fail "scrub --status does not name big.bin"
grep -q "ended" "$work/status.out" || fail "scrub --status has no end time"
# and settfs status shows it
timeout 10 "$SETTFS" status "$mnt" > "$work/st.out" || fail "settfs status exit $?"
grep -q "^  state  *damaged" "$work/st.out" || { cat "$work/st.out"; fail "settfs status: no scrub state"; }
grep -q "^  fault.1 .*vlog: corrupt entry .*(/dir/big.bin" "$work/st.out" ||
	{ cat "$work/st.out"; fail "settfs status: no scrub fault"; }
umount_fs
flip "$vf" $voff

# 4. a flipped byte in small.txt's chunk, in a table block; with --no-wait
set -- $(offset_of scrub-small-0- "$store"/*.sst) || fail "small.txt's chunk not found once"
sst=$1 sstoff=$(($2 + 40))
flip "$sst" $sstoff
mount_fs
scrub --no-wait "$mnt" > "$work/nowait.out" 2>&1 || { cat "$work/nowait.out"; fail "scrub --no-wait exit $?"; }
i=0
while :; do
	scrub --status "$mnt" > "$work/lsm.out" 2>&1
	rc=$?
	grep -q "^scrub: running" "$work/lsm.out" || break
	i=$((i + 1))
	[ $i -gt 300 ] && fail "scrub still running after 30 s"
	sleep 0.1
done
cat "$work/lsm.out"
[ $rc = 1 ] || fail "scrub of a damaged table block exit $rc, not 1"
grep -q "^    $mnt/dir/small.txt" "$work/lsm.out" || fail "scrub does not name small.txt"
grep -q "\.sst: corrupt block at offset" "$work/lsm.out" || fail "scrub does not name the table block"

# 5. one scrub at a time: a slow one runs, a second is refused
scrub --rate 0.01 --no-wait "$mnt" > /dev/null 2>&1 || fail "slow scrub did not start"
scrub "$mnt" > /dev/null 2> "$work/busy.err"
rc=$?
[ $rc = 2 ] || fail "second scrub exit $rc, not 2"
grep -q "running already" "$work/busy.err" || { cat "$work/busy.err"; fail "second scrub message"; }
# the filesystem serves while it runs
head -c 1048576 /dev/urandom > "$work/during"
cp "$work/during" "$mnt/during" && sync "$mnt/during" || fail "write while a scrub runs"
cmp "$work/during" "$mnt/during" || fail "read while a scrub runs"
scrub --status "$mnt" | grep -q "^scrub: running" || fail "the slow scrub is not running"
umount_fs # stops the running scrub
flip "$sst" $sstoff

# 6. a file deleted since a snapshot: named by its path in the snapshot
mount_fs
file "$mnt/dir/gone.bin" $((2 * 65536)) gone
"$SETTFS" snapshot create "$mnt" before >/dev/null || fail "snapshot create"
rm "$mnt/dir/gone.bin"
umount_fs
scrub_damaged scrub-gone-1- "$work/snap.out"
grep -q "^    $mnt/.snapshots/before/dir/gone.bin (data, bytes 65536-131071)" "$work/snap.out" ||
	fail "scrub does not name gone.bin in the snapshot"
umount_fs
echo "ok"
