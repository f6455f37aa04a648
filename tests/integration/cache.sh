#!/bin/sh
# The kernel keeps entries and attributes for SFS_CACHE_TIMEOUT (a day):
# a change made through one name or handle is seen through every other
# one at once - through the kernel's own updates (hard links, rename over,
# unlink of an open file, chmod by setfacl, mkdir) or the daemon's
# notifications (st_blocks after a commit at close or fsync, set-user-ID
# cleared by a write).  Each check first primes the cache of the name it
# then reads.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v setpriv >/dev/null 2>&1 || skip "no setpriv (util-linux)"
chmod 755 "$work"

st() { stat -c "$1" "$2"; }
expect() { # WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: $2, expected $3"
}

checks() {
	m=$mnt/$1
	mkdir "$m"
	# hard link: nlink through the other name
	echo a > "$m/a"
	st %h "$m/a" >/dev/null
	ln "$m/a" "$m/b"
	expect "nlink after link, seen through the first name" "$(st %h "$m/a")" 2
	rm "$m/b"
	expect "nlink after unlink of the second name" "$(st %h "$m/a")" 1

	# rename over an entry with a second name
	echo old > "$m/victim"
	ln "$m/victim" "$m/victim2"
	echo new > "$m/src"
	st %h "$m/victim2" >/dev/null
	st %i "$m/victim" >/dev/null
	mv "$m/src" "$m/victim"
	expect "nlink of the replaced inode" "$(st %h "$m/victim2")" 1
	expect "contents after rename over" "$(cat "$m/victim")" new

	# unlink of an open file: its handle sees nlink 0
	echo open > "$m/o"
	exec 3<"$m/o"
	st %h "$m/o" >/dev/null
	rm "$m/o"
	expect "nlink of an open unlinked file" "$(stat -L -c %h /proc/$$/fd/3)" 0
	exec 3<&-

	# setfacl changes the mode, seen through another name
	if command -v setfacl >/dev/null 2>&1; then
		echo acl > "$m/acl"
		chmod 600 "$m/acl"
		ln "$m/acl" "$m/acl2"
		st %a "$m/acl2" >/dev/null
		setfacl -m u::rwx,g::r,o::r "$m/acl"
		expect "mode after setfacl" "$(st %a "$m/acl2")" 744
	fi

	# mkdir: the parent's nlink
	st %h "$m" >/dev/null
	mkdir "$m/sub"
	expect "parent nlink after mkdir" "$(st %h "$m")" 3

	# st_blocks moves when the daemon commits (here at close), after a
	# stat while the data was still buffered
	exec 3>"$m/blk"
	head -c 262144 /dev/urandom >&3
	st %b "$m/blk" >/dev/null
	exec 3>&-
	[ "$(st %b "$m/blk")" -gt 0 ] || fail "st_blocks 0 after close ($1)"
	# and at an fsync of a handle that stays open
	if command -v python3 >/dev/null 2>&1; then
		b=$(python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, os.urandom(262144))
os.stat(sys.argv[1])
os.fsync(fd)
print(os.stat(sys.argv[1]).st_blocks)
os.close(fd)' "$m/fs")
		[ "$b" -gt 0 ] || fail "st_blocks 0 after fsync ($1)"
	fi

	# set-user-ID cleared by an unprivileged write, seen through another name
	echo s > "$m/suid"
	chmod 4777 "$m/suid"
	ln "$m/suid" "$m/suid2"
	st %a "$m/suid2" >/dev/null
	setpriv --reuid=65534 --regid=65534 --clear-groups -- sh -c "echo x >> '$m/suid'" ||
		fail "write as user"
	expect "mode after a write cleared set-user-ID" "$(st %a "$m/suid2")" 777
}

mount_fs -o allow_other
checks wb
umount_fs
mount_fs -o allow_other,no_writeback_cache
checks nowb
umount_fs
check_fsck
echo PASS
