#!/bin/sh
# send_bench.sh - settfs send and receive throughput, and an incremental
# of a 1 % change (doc/PERFORMANCE.md, "Send and receive").
#
#   bench/send_bench.sh [BUILDDIR]      (root; FUSE)
#
# Mounts a new store under $DIR (default: a temporary directory in
# ${TMPDIR:-/tmp}), writes FILES files of KB KiB of random bytes (10000 x
# 48 KiB: 469 MiB) in 100 directories, snapshot s1, and times: a full send
# to a file, its receive into a new store, then, after overwriting 1 % of
# the files, snapshot s2 and the incremental send and receive.  Prints
# each step's seconds, bytes and MB/s.  Not a test: nothing is asserted.
set -eu
b=${1:-$(pwd)}
SETTFS=$b/settfs
FILES=${FILES:-10000}
KB=${KB:-48}
dir=$(mktemp -d "${DIR:-${TMPDIR:-/tmp}}/send-bench.XXXXXX")
mnt=$dir/mnt
mkdir -p "$mnt"
trap 'fusermount3 -u "$mnt" 2>/dev/null; rm -rf "$dir"' EXIT

now() { date +%s.%N; }
# step NAME BYTES START END
step() {
	awk -v n="$1" -v b="$2" -v s="$3" -v e="$4" 'BEGIN {
		t = e - s; printf "%-22s %8.2f s %14d bytes %9.1f MB/s\n", n, t, b, b / t / 1e6 }'
}

"$SETTFS" "$dir/store" "$mnt"
i=0
while [ $i -lt 100 ]; do mkdir "$mnt/d$i"; i=$((i + 1)); done
head -c $((KB * 1024)) /dev/urandom > "$dir/blob"
python3 - "$mnt" "$FILES" "$KB" <<'EOF'
import os, sys
mnt, files, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(files):
    with open(f"{mnt}/d{i % 100}/f{i}", "wb") as f:
        f.write(os.urandom(kb * 1024))
EOF
sync
tree=$((FILES * KB * 1024))
echo "tree: $FILES files of $KB KiB ($tree bytes)"

mkdir "$mnt/.snapshots/s1"
t0=$(now)
"$SETTFS" send "$mnt" s1 > "$dir/full"
t1=$(now)
step "send full" "$(wc -c < "$dir/full")" "$t0" "$t1"
t0=$(now)
"$SETTFS" send "$mnt" s1 | cat > /dev/null
t1=$(now)
step "send full, a pipe" "$(wc -c < "$dir/full")" "$t0" "$t1"
t0=$(now)
"$SETTFS" receive "$dir/replica" < "$dir/full"
t1=$(now)
step "receive full" "$(wc -c < "$dir/full")" "$t0" "$t1"
rm "$dir/full"

python3 - "$mnt" "$FILES" "$KB" <<'EOF'
import os, sys
mnt, files, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(0, files, 100):
    with open(f"{mnt}/d{i % 100}/f{i}", "wb") as f:
        f.write(os.urandom(kb * 1024))
EOF
mkdir "$mnt/.snapshots/s2"
t0=$(now)
"$SETTFS" send -i s1 "$mnt" s2 > "$dir/inc"
t1=$(now)
step "send incremental 1 %" "$(wc -c < "$dir/inc")" "$t0" "$t1"
t0=$(now)
"$SETTFS" receive "$dir/replica" < "$dir/inc"
t1=$(now)
step "receive incremental" "$(wc -c < "$dir/inc")" "$t0" "$t1"
