#!/bin/sh
# POSIX ACLs with setfacl/getfacl: set and get, default ACLs inherited by
# new files and directories (instead of the umask), chmod and ACL kept in
# step both ways, enforcement for another user, the owner rule and
# set-group-ID, and ACLs kept by cp -a, rsync -aHAX, tar --acls and a
# remount.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v setfacl >/dev/null 2>&1 || skip "no setfacl (acl package)"
command -v getfattr >/dev/null 2>&1 || skip "no getfattr (attr package)"
command -v setpriv >/dev/null 2>&1 || skip "no setpriv (util-linux)"

# as_nobody CMD...: run as uid/gid 65534 without supplementary groups
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# acl PATH: the ACL without the header, one line
acl() { getfacl -cpn "$1" 2>/dev/null | grep -v '^$' | tr '\n' ' '; }
mode() { stat -c %a "$1"; }
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"; }

chmod 755 "$work" # another user reaches the mount
mount_fs -o allow_other

# -- set and get; the mode follows the ACL, the mask is the group class
echo data > "$mnt/f"
chmod 644 "$mnt/f"
setfacl -m u:65534:rw "$mnt/f" || fail "setfacl"
expect "ACL" "$(acl "$mnt/f")" "user::rw- user:65534:rw- group::r-- mask::rw- other::r-- "
expect "mode from the ACL" "$(mode "$mnt/f")" 664

# -- chmod rewrites the ACL's owner, mask and other entries
chmod 750 "$mnt/f"
expect "ACL after chmod" "$(acl "$mnt/f")" \
	"user::rwx user:65534:rw-	#effective:r-- group::r-- mask::r-x other::--- "
# and an ACL the mode says all of is kept as the mode alone
touch "$mnt/plain"
setfacl -m u::rwx,g::r,o::- "$mnt/plain" || fail "setfacl base entries"
expect "mode of a base ACL" "$(mode "$mnt/plain")" 740
getfattr -n system.posix_acl_access "$mnt/plain" >/dev/null 2>&1 &&
	fail "an ACL equivalent to the mode was stored"
setfacl -b "$mnt/f" || fail "setfacl -b"
expect "ACL removed" "$(acl "$mnt/f")" "user::rwx group::r-- other::--- "
# malformed ACLs are refused (by the kernel first) and change nothing
python3 - "$mnt/f" <<'EOF' || fail "a malformed ACL was not refused"
import errno, os, sys
e = lambda tag, perm: tag.to_bytes(2, "little") + perm.to_bytes(2, "little") + b"\xff" * 4
v2 = b"\x02\x00\x00\x00"
bad = [b"\x01\x00\x00\x00" + e(1, 7) + e(4, 7) + e(0x20, 7),  # version 1
       v2 + e(1, 8) + e(4, 7) + e(0x20, 7),                   # perm beyond rwx
       v2 + e(1, 7) + e(0x20, 7),                             # no GROUP_OBJ
       v2 + e(1, 7) + e(4, 7) + e(0x20, 7) + b"\x00"]          # a partial entry
for v in bad:
    try:
        os.setxattr(sys.argv[1], "system.posix_acl_access", v)
    except OSError as x:
        if x.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
    else:
        sys.exit(1)
EOF
expect "mode after refused ACLs" "$(mode "$mnt/f")" 740

# -- enforcement: a named-user entry grants, the mask limits it
chmod 600 "$mnt/f"
as_nobody cat "$mnt/f" >/dev/null 2>&1 && fail "nobody read a 0600 file"
setfacl -m u:65534:r "$mnt/f"
as_nobody cat "$mnt/f" >/dev/null || fail "the named-user entry does not grant read"
as_nobody sh -c "echo x >> '$mnt/f'" 2>/dev/null && fail "nobody wrote with r--"
setfacl -m m::- "$mnt/f"
as_nobody cat "$mnt/f" >/dev/null 2>&1 && fail "the mask does not limit the named user"
# a named-user entry on a directory
mkdir "$mnt/shared"
chmod 700 "$mnt/shared"
setfacl -m u:65534:rwx "$mnt/shared"
as_nobody touch "$mnt/shared/by-nobody" || fail "named-user rwx on a directory"

# -- only the owner sets an ACL; setting one clears set-group-ID as chmod does
as_nobody setfacl -m u:65534:rwx "$mnt/plain" 2>/dev/null && fail "a non-owner set an ACL"
touch "$mnt/sgid"
chown 65534:0 "$mnt/sgid"
chmod 2775 "$mnt/sgid"
as_nobody setfacl -m u:1:r "$mnt/sgid" || fail "the owner's setfacl"
expect "set-group-ID after an ACL by a non-member" "$(mode "$mnt/sgid")" 775
chmod 2775 "$mnt/sgid"
setfacl -m u:2:r "$mnt/sgid"
expect "set-group-ID after an ACL by root" "$(mode "$mnt/sgid")" 2775

# -- default ACLs: inherited by files and directories, the umask not applied
mkdir "$mnt/src"
setfacl -m u:65534:rwx -d -m u::rwx,u:65534:rwx,g::r-x,m::rwx,o::- "$mnt/src"
(umask 077
	echo hi > "$mnt/src/file"
	mkdir "$mnt/src/sub"
	echo deep > "$mnt/src/sub/deeper"
	mkfifo "$mnt/src/fifo"
	ln -s file "$mnt/src/link")
expect "file's mode" "$(mode "$mnt/src/file")" 660
expect "file's ACL" "$(acl "$mnt/src/file")" \
	"user::rw- user:65534:rwx	#effective:rw- group::r-x	#effective:r-- mask::rw- other::--- "
expect "subdirectory's mode" "$(mode "$mnt/src/sub")" 770
expect "subdirectory's ACLs" "$(acl "$mnt/src/sub")" \
	"user::rwx user:65534:rwx group::r-x mask::rwx other::--- default:user::rwx default:user:65534:rwx default:group::r-x default:mask::rwx default:other::--- "
expect "file two levels down" "$(mode "$mnt/src/sub/deeper")" 660
expect "fifo's mode" "$(mode "$mnt/src/fifo")" 660
[ "$(readlink "$mnt/src/link")" = file ] || fail "symlink"
# without a default ACL the umask applies as before
(umask 027; touch "$mnt/masked"; mkdir "$mnt/masked-dir")
expect "umask without a default ACL" "$(mode "$mnt/masked") $(mode "$mnt/masked-dir")" "640 750"
# a default ACL on a file is refused
setfacl -d -m u::rwx "$mnt/plain" 2>/dev/null && fail "default ACL on a file"
setfacl -m u:65534:r "$mnt/src/file"

# -- kept by the tools that copy ACLs
tree_acls() { (cd "$1" && getfacl -R . 2>/dev/null); }
tree_acls "$mnt/src" > "$work/src.acl"
cp -a "$mnt/src" "$mnt/cp" || fail "cp -a"
tree_acls "$mnt/cp" | diff "$work/src.acl" - || fail "cp -a lost ACLs"
if command -v rsync >/dev/null 2>&1; then
	rsync -aHAX "$mnt/src/" "$mnt/rs/" || fail "rsync -aHAX exit $?"
	tree_acls "$mnt/rs" | diff "$work/src.acl" - || fail "rsync -aHAX lost ACLs"
fi
if command -v tar >/dev/null 2>&1 && tar --help 2>/dev/null | grep -q -- --acls; then
	tar --acls -cf "$work/t.tar" -C "$mnt/src" . || fail "tar --acls -c"
	mkdir "$mnt/tx"
	tar --acls -xf "$work/t.tar" -C "$mnt/tx" || fail "tar --acls -x"
	tree_acls "$mnt/tx" | diff "$work/src.acl" - || fail "tar --acls lost ACLs"
fi

# -- kept across a remount
acl "$mnt/f" > "$work/f.acl"
umount_fs
mount_fs -o allow_other
tree_acls "$mnt/src" | diff "$work/src.acl" - || fail "ACLs changed across a remount"
expect "ACL after remount" "$(acl "$mnt/f")" "$(cat "$work/f.acl")"
as_nobody cat "$mnt/src/file" >/dev/null || fail "ACL not enforced after a remount"
umount_fs
# -o noacl: refused, so that tools fall back to the mode
mount_fs -o allow_other,noacl
setfacl -m u:65534:r "$mnt/masked" 2>/dev/null && fail "setfacl with -o noacl"
umount_fs
check_fsck
echo PASS
