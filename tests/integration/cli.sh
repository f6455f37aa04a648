#!/bin/sh
# Every program's command line, as e2fsprogs behave: --help (exit 0, on
# stdout), --version (its own name and version first), an unknown command
# or option refused (non-zero) with one line that names it; fsck.settfs's
# e2fsck exit codes and -C progress; progress only on a terminal; sett
# info --json; the mode of the store directories the tools make; key
# files others can read refused.  Needs
# neither FUSE nor root.
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
top=$(pwd)
[ -x "$top/settfs" ] || skip "not built in $top"
srcdir=${srcdir:-.}
work=$(mktemp -d "${TMPDIR:-/tmp}/settfs-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/mnt"
version=$("$top/sett" --version | sed -n 's/^sett //p')
[ -n "$version" ] || fail "sett --version: no version"

# run NAME CMD...: stdout in $work/out, stderr in $work/err, status in $rc
run() {
	name=$1
	shift
	"$@" > "$work/out" 2> "$work/err"
	rc=$?
}
# one_line WHAT WORD: stderr is one line, naming WORD
one_line() {
	[ "$(wc -l < "$work/err")" -eq 1 ] || { cat "$work/err"; fail "$1: not one line on stderr"; }
	grep -qF -- "$2" "$work/err" || { cat "$work/err"; fail "$1: '$2' not named"; }
}

mount_settfs="$top/tools/mount.settfs"
for prog in settfs mount.settfs mkfs.settfs fsck.settfs sett; do
	exe=$top/$prog
	[ "$prog" = mount.settfs ] && exe=$mount_settfs
	for h in --help -h; do
		run "$prog $h" "$exe" $h
		[ $rc = 0 ] || fail "$prog $h: exit $rc"
		[ -s "$work/out" ] || fail "$prog $h: nothing on stdout"
		[ -s "$work/err" ] && { cat "$work/err"; fail "$prog $h: wrote to stderr"; }
	done
	for v in --version -V; do
		run "$prog $v" "$exe" $v
		[ $rc = 0 ] || fail "$prog $v: exit $rc"
		first=$(head -n 1 "$work/out")
		case $first in
		"$prog $version"|"$prog $version "*) ;;
		*) fail "$prog $v: first line '$first', not '$prog $version'" ;;
		esac
	done
	run "$prog --bogus-option" "$exe" --bogus-option "$work/store" "$work/mnt"
	[ $rc != 0 ] || fail "$prog --bogus-option: exit 0"
	one_line "$prog --bogus-option" "--bogus-option"
	grep -q "^$prog" "$work/err" || fail "$prog: message does not begin with the program"
done

# settfs: clone_fd listed once; an unknown -o option named, nothing created
n=$("$top/settfs" --help | grep -c "clone_fd")
[ "$n" = 1 ] || fail "settfs --help lists clone_fd $n times"
run "settfs -o" "$top/settfs" -o no_such_option "$work/new" "$work/mnt"
[ $rc != 0 ] || fail "settfs -o no_such_option: exit 0"
one_line "settfs -o no_such_option" "no_such_option"
[ -e "$work/new" ] && fail "settfs -o no_such_option created the store"
run "settfs umount" "$top/settfs" umount --bogus "$work/mnt"
[ $rc = 1 ] || fail "settfs umount --bogus: exit $rc"
one_line "settfs umount --bogus" "--bogus"
run "settfs umount --help" "$top/settfs" umount --help
[ $rc = 0 ] && [ -s "$work/out" ] || fail "settfs umount --help"

# sett: unknown commands, help of one, options of a command
run "sett help foo" "$top/sett" help foo
[ $rc != 0 ] || fail "sett help foo: exit 0"
one_line "sett help foo" "sett: unknown command 'foo'"
run "sett foo" "$top/sett" foo
[ $rc != 0 ] || fail "sett foo: exit 0"
one_line "sett foo" "'foo'"
run "sett help info" "$top/sett" help info
[ $rc = 0 ] && grep -q "usage: sett info" "$work/out" || fail "sett help info"
run "sett info --help" "$top/sett" info --help
[ $rc = 0 ] && grep -q "usage: sett info" "$work/out" || fail "sett info --help"
run "sett scan --bogus" "$top/sett" scan --bogus "$work/store"
[ $rc = 2 ] || fail "sett scan --bogus: exit $rc"
one_line "sett scan --bogus" "--bogus"
run "sett" "$top/sett"
[ $rc = 2 ] || fail "sett without a command: exit $rc"

# store directories the tools make: 0700
run mkfs "$top/mkfs.settfs" -q "$work/store"
[ $rc = 0 ] || { cat "$work/err"; fail "mkfs.settfs: exit $rc"; }
[ -s "$work/out" ] && fail "mkfs.settfs -q printed"
[ "$(stat -c %a "$work/store")" = 700 ] || fail "mkfs.settfs made mode $(stat -c %a "$work/store")"
run put "$top/sett" put "$work/kv" k v
[ "$(stat -c %a "$work/kv")" = 700 ] || fail "sett put made mode $(stat -c %a "$work/kv")"
run mkfs "$top/mkfs.settfs" -c 12x "$work/store2"
[ $rc = 2 ] || fail "mkfs.settfs -c 12x: exit $rc"
one_line "mkfs.settfs -c 12x" "12x"
run mkfs "$top/mkfs.settfs" -q -c 16384 "$work/store2"
[ $rc = 0 ] || fail "mkfs.settfs -c 16384"

# fsck.settfs: e2fsck's exit codes, -f, -C
run fsck "$top/fsck.settfs" -x "$work/store"
[ $rc = 16 ] || fail "fsck.settfs -x: exit $rc, not 16"
one_line "fsck.settfs -x" "-x"
run fsck "$top/fsck.settfs" -n -y "$work/store"
[ $rc = 16 ] || fail "fsck.settfs -n -y: exit $rc, not 16"
run fsck "$top/fsck.settfs" -C
[ $rc = 16 ] || fail "fsck.settfs -C without FD: exit $rc, not 16"
run fsck "$top/fsck.settfs" -C 97 "$work/store"
[ $rc = 16 ] || fail "fsck.settfs -C 97 (not open): exit $rc, not 16"
run fsck "$top/fsck.settfs" "$work/no-such-store"
[ $rc = 8 ] || fail "fsck.settfs of a missing store: exit $rc, not 8"
run fsck "$top/fsck.settfs" -f -p "$work/store"
[ $rc = 0 ] || { cat "$work/out" "$work/err"; fail "fsck.settfs -f -p: exit $rc"; }
[ -s "$work/err" ] && { cat "$work/err"; fail "fsck.settfs: progress on stderr that is not a terminal"; }
run fsck "$top/fsck.settfs" -C 0 "$work/store"
[ $rc = 0 ] || fail "fsck.settfs -C 0: exit $rc"
grep -q "$(printf '\r')fsck.settfs: $work/store: tables" "$work/out" || fail "fsck.settfs -C 0: no progress on stdout"
"$top/fsck.settfs" -C 3 "$work/store" 3> "$work/lines" > /dev/null || fail "fsck.settfs -C 3"
grep -q "^1 1 1 $work/store\$" "$work/lines" || { cat "$work/lines"; fail "fsck.settfs -C 3: no pass 1 line"; }
grep -q "^2 1 0 $work/store\$" "$work/lines" || { cat "$work/lines"; fail "fsck.settfs -C 3: no pass 2 line"; }

# progress on a terminal (script(1) gives the program one), quiet otherwise
if command -v script >/dev/null 2>&1; then
	for cmd in "$top/fsck.settfs $work/store" "$top/sett check $work/store"; do
		script -qec "$cmd" /dev/null > "$work/tty" 2>&1 < /dev/null
		grep -q "$(printf '\r').*tables" "$work/tty" || { cat -v "$work/tty"; fail "$cmd: no progress on a terminal"; }
	done
	run check "$top/sett" check "$work/store"
	[ -s "$work/err" ] && { cat "$work/err"; fail "sett check: progress on stderr that is not a terminal"; }
fi

# key and passphrase files: one group or others may read is refused by
# every program (as ssh refuses such a private key), so is one that holds
# no key, before anything is created; a missing value is a usage error
head -c 32 /dev/urandom > "$work/key"
chmod 644 "$work/key"
printf '\n' > "$work/empty-pass"
chmod 600 "$work/empty-pass"
printf 'short\n' > "$work/not-a-key"
chmod 600 "$work/not-a-key"
for p in "mkfs.settfs 1" "fsck.settfs 8" "sett 1" "settfs 1"; do
	prog=${p% *}
	want=${p#* }
	case $prog in
	sett) set -- "$top/sett" put --key-file "$work/key" "$work/new" k v ;;
	settfs) set -- "$top/settfs" -o key_file="$work/key" "$work/new" "$work/mnt" ;;
	*) set -- "$top/$prog" --key-file "$work/key" "$work/new" ;;
	esac
	run "$prog key file 0644" "$@"
	[ $rc = "$want" ] || { cat "$work/err"; fail "$prog, key file of mode 0644: exit $rc, not $want"; }
	one_line "$prog key file 0644" "$work/key: permissions 0644 are too open"
	[ -e "$work/new" ] && fail "$prog with a refused key file created the store"
done
chmod 600 "$work/key"
run "sett put --key-file (not a key)" "$top/sett" put --key-file "$work/not-a-key" "$work/new" k v
[ $rc = 1 ] || fail "sett put with a file holding no key: exit $rc"
one_line "sett put --key-file (not a key)" "$work/not-a-key: not a key file"
run "mkfs.settfs --passphrase-file (empty)" "$top/mkfs.settfs" --passphrase-file "$work/empty-pass" "$work/new"
[ $rc = 1 ] || fail "mkfs.settfs with an empty passphrase: exit $rc"
one_line "mkfs.settfs --passphrase-file (empty)" "$work/empty-pass"
run "mkfs.settfs --key-file --passphrase-file" "$top/mkfs.settfs" --key-file "$work/key" \
	--passphrase-file "$work/key" "$work/new"
[ $rc = 1 ] || fail "mkfs.settfs with a key and a passphrase: exit $rc"
one_line "mkfs.settfs --key-file --passphrase-file" "not both"
[ -e "$work/new" ] && fail "a refused key created the store"
run "fsck.settfs --key-file" "$top/fsck.settfs" --key-file
[ $rc = 16 ] || fail "fsck.settfs --key-file without a value: exit $rc, not 16"
one_line "fsck.settfs --key-file" "'--key-file' needs a value"
run "sett get --passphrase-file" "$top/sett" get "$work/kv" k --passphrase-file
[ $rc = 2 ] || fail "sett get --passphrase-file without a value: exit $rc, not 2"
run "sett bench --key-file" "$top/sett" bench --key-file "$work/key"
[ $rc = 2 ] || fail "sett bench --key-file: exit $rc, not 2 (bench takes --encrypt)"

# sett info: the settfs superblock, and --json for scripts
run info "$top/sett" info "$work/store2"
grep -q "chunk size 16384" "$work/out" || { cat "$work/out"; fail "sett info: no chunk size"; }
grep -q "settfs inodes 1;" "$work/out" || { cat "$work/out"; fail "sett info: no inode count"; }
grep -q "created 20" "$work/out" || fail "sett info: no creation time"
grep -q "compression" "$work/out" || fail "sett info: no compression"
if command -v python3 >/dev/null 2>&1; then
	"$top/sett" info --json "$work/store2" > "$work/json" || fail "sett info --json"
	python3 - "$work/json" <<-'EOF' || fail "sett info --json: $(cat "$work/json")"
	import json, sys
	d = json.load(open(sys.argv[1]))
	fs = d["settfs"]
	assert fs["chunk_size"] == 16384 and fs["inodes"] == 1 and fs["format"] >= 2, fs
	assert fs["created_ns"] > 0 and len(fs["uuid"]) == 36, fs
	assert len(d["levels"]) == 7 and "garbage_bytes" in d["value_log"], d
	assert d["compression"] in ("none", "zstd"), d
	EOF
	"$top/sett" info --json "$work/kv" > "$work/json" || fail "sett info --json (no settfs)"
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["settfs"] is None' \
		"$work/json" || fail "sett info --json of a plain store: settfs not null"
fi
echo PASS
