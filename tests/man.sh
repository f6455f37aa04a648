#!/bin/sh
# The man pages (man/): lint-clean under man-db's groff warnings (as
# Debian's lintian runs it), of this version, and naming every option and
# command the programs' --help lists, so the two cannot drift apart.
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
top=$(pwd)
srcdir=${srcdir:-.}
command -v man >/dev/null 2>&1 || skip "no man (Debian package man-db)"
[ -x "$top/sett" ] || skip "not built in $top"
work=$(mktemp -d "${TMPDIR:-/tmp}/settfs-man.XXXXXX")
trap 'rm -rf "$work"' EXIT
version=$("$top/sett" --version | sed -n 's/^sett //p')

# render PAGE: the page as plain text in $work/PAGE.txt, warnings checked
render() {
	page=$srcdir/man/$1
	[ -f "$page" ] || fail "$page missing"
	LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=200 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" \
		> "$work/$1.out" 2> "$work/$1.warn"
	if [ -s "$work/$1.warn" ]; then
		cat "$work/$1.warn"
		fail "$1: groff warnings"
	fi
	LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$page" 2>/dev/null | col -bx > "$work/$1.txt"
	grep -q "settfs $version" "$page" || fail "$1: not of version $version"
}
for page in settfs.8 mount.settfs.8 mkfs.settfs.8 fsck.settfs.8 sett.1 settfs.5; do
	render $page
done

# has PAGE WORD WHAT: the rendered page names WORD
has() {
	grep -qF -- "$2" "$work/$1.txt" || fail "$1 does not document $3 '$2' (in --help)"
}
# every -o option of settfs --help in settfs(5), every flag in settfs(8)
"$top/settfs" --help > "$work/help"
for o in $(sed -n 's/^ *-o \([a-z_]*\).*/\1/p' "$work/help"); do
	has settfs.5 "$o" "settfs option"
done
for o in $(sed -n 's/^ *\(-[a-zA-Z]\)[ ,].*/\1/p' "$work/help"); do
	has settfs.8 "$o" "settfs flag"
done
has settfs.8 "settfs umount" "command"
# the short options of mkfs.settfs and fsck.settfs
for prog in mkfs.settfs fsck.settfs; do
	"$top/$prog" --help > "$work/help"
	for o in $(grep -o -- ' -[a-zA-Z]\b' "$work/help" | sort -u); do
		has $prog.8 "$o" "$prog option"
	done
done
# every sett command
"$top/sett" --help > "$work/help"
for c in $(sed -n 's/^  sett \([a-z]*\) .*/\1/p' "$work/help"); do
	has sett.1 "$c" "sett command"
done
has sett.1 "--json" "sett info option"
# the exit codes fsck.settfs --help gives
for code in 0 1 4 8 16; do
	grep -q "^ *$code  *[A-Z]" "$work/fsck.settfs.8.txt" || fail "fsck.settfs.8: exit status $code"
done
echo PASS
