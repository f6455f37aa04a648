#!/bin/sh
# sett_backup.sh - `sett backup` and `sett load` as a script uses them: a
# full backup and an incremental rebuild a copy that scans equal to the
# source (deletes included); a truncated or damaged stream is refused with
# exit 1 and leaves the target as it was; an incremental without a pin is
# refused.  Needs no mount.
set -u
top=$(pwd)
SETT=${SETT:-$top/sett}
[ -x "$SETT" ] || { echo "SKIP: sett not built at $SETT"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/sett-backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
src=$work/src
dst=$work/dst

for i in 1 2 3 4 5 6 7 8 9; do "$SETT" put "$src" "k$i" "value $i" || fail "put"; done
"$SETT" backup --pin bk "$src" >"$work/full" 2>"$work/err" || fail "full backup: $(cat "$work/err")"
v=$(sed -n 's/.*complete to version \([0-9]*\).*/\1/p' "$work/err")
[ -n "$v" ] || fail "backup did not print the version: $(cat "$work/err")"
"$SETT" del "$src" k2
"$SETT" put "$src" k3 changed
"$SETT" put "$src" k10 new
"$SETT" backup --since "$v" --pin bk "$src" >"$work/inc" 2>"$work/err" || fail "incremental: $(cat "$work/err")"

"$SETT" load "$dst" <"$work/full" 2>"$work/err" || fail "load full: $(cat "$work/err")"
"$SETT" scan "$dst" >"$work/before"
# damaged: cut short, then one byte flipped; both refused, the target unchanged
size=$(wc -c <"$work/inc")
head -c $((size - 3)) "$work/inc" >"$work/cut"
if "$SETT" load "$dst" <"$work/cut" 2>"$work/err"; then fail "a truncated stream was loaded"; fi
grep -q "truncated\|trailer" "$work/err" || fail "no reason given: $(cat "$work/err")"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[60] ^= 1; open(sys.argv[2], "wb").write(b)' \
	"$work/inc" "$work/flip" || fail "python3"
if "$SETT" load "$dst" <"$work/flip" 2>"$work/err"; then fail "a damaged stream was loaded"; fi
"$SETT" scan "$dst" >"$work/after"
cmp -s "$work/before" "$work/after" || fail "a refused stream changed the target"

"$SETT" load "$dst" <"$work/inc" 2>"$work/err" || fail "load incremental: $(cat "$work/err")"
"$SETT" scan "$src" >"$work/s"
"$SETT" scan "$dst" >"$work/d"
cmp -s "$work/s" "$work/d" || fail "the copy differs from the source: $(diff "$work/s" "$work/d")"
grep -q '^k2	' "$work/d" && fail "the delete was not applied"

"$SETT" unpin "$src" bk || fail "unpin"
if "$SETT" backup --since "$v" "$src" >"$work/x" 2>"$work/err"; then
	fail "an incremental without a pin was written"
fi
echo "1 passed, 0 failed"
