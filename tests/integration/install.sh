#!/bin/sh
# `make install` leaves working programs: installed (DESTDIR) and seen at
# /usr/local and /sbin in a private mount namespace, with LD_LIBRARY_PATH
# unset and no ldconfig run, every program starts; the man pages are
# installed; and a store mounted directly (settfs), with `mount -t
# fuse.settfs`, from an fstab line and as contrib/mnt-backup.mount says
# (what systemd runs for it) gets the same nosuid,nodev and source, and
# suid or dev only where allow_suid or allow_dev asks for it.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v unshare >/dev/null 2>&1 || skip "no unshare"
unshare -m true 2>/dev/null || skip "no mount namespaces"
command -v mount.fuse3 >/dev/null 2>&1 || [ -x /sbin/mount.fuse3 ] || skip "no mount.fuse3"
src=$(cd "${srcdir:-.}" && pwd)
[ "$(sed -n 's/^prefix = //p' "$top/Makefile")" = /usr/local ] || skip "configured with a prefix other than /usr/local"
[ "$(sed -n 's/^mounthelperdir = //p' "$top/Makefile")" = /sbin ] || skip "mount helper not in /sbin"
inst=$work/inst
make -s -C "$top" install DESTDIR="$inst" > "$work/install.log" 2>&1 ||
	{ tail -20 "$work/install.log"; fail "make install"; }
for f in bin/settfs bin/sett sbin/mkfs.settfs sbin/fsck.settfs sbin/mount.settfs \
	sbin/mount.fuse.settfs share/man/man8/settfs.8 share/man/man8/mount.settfs.8 \
	share/man/man8/mkfs.settfs.8 share/man/man8/fsck.settfs.8 share/man/man1/sett.1 \
	share/man/man5/settfs.5; do
	[ -e "$inst/usr/local/$f" ] || fail "not installed: /usr/local/$f"
done
[ -L "$inst/sbin/mount.fuse.settfs" ] || fail "mount.fuse.settfs not linked in /sbin"

# what systemd runs for the example unit: mount -t TYPE -o OPTIONS WHAT WHERE
unit=$src/contrib/mnt-backup.mount
unit_type=$(sed -n 's/^Type=//p' "$unit")
unit_opts=$(sed -n 's/^Options=//p' "$unit")
[ "$unit_type" = fuse.settfs ] || fail "unit: Type=$unit_type"
if command -v systemd-analyze >/dev/null 2>&1; then
	systemd-analyze verify --man=no "$unit" || fail "systemd-analyze verify $unit"
fi

# the rest runs in a mount namespace that sees the installed tree
sbin=$(readlink -f /sbin)
cat > "$work/inner.sh" <<EOF
set -u
fail() { echo "FAIL: \$*"; exit 1; }
mnt=$mnt
store=$store
work=$work
cleanup() {
	grep -q " \$mnt fuse" /proc/mounts && { settfs umount "\$mnt" || umount -l "\$mnt"; }
	for p in \$(pgrep -f "settfs \$store" 2>/dev/null); do kill \$p; done
}
trap cleanup EXIT
mount --bind "$inst/usr/local" /usr/local || fail "bind /usr/local"
# /sbin with mount.fuse.settfs added: links to a second view of the real one
mkdir -p "\$work/realsbin" "\$work/sbin"
mount --bind "$sbin" "\$work/realsbin" || fail "bind sbin"
for f in "\$work/realsbin"/*; do ln -s "\$f" "\$work/sbin/\${f##*/}"; done
cp -P "$inst/sbin/mount.fuse.settfs" "\$work/sbin/"
mount --bind "\$work/sbin" "$sbin" || fail "bind over $sbin"
unset LD_LIBRARY_PATH
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
[ "\$(command -v settfs)" = /usr/local/bin/settfs ] || fail "settfs is \$(command -v settfs)"
for p in settfs sett mkfs.settfs fsck.settfs mount.settfs; do
	\$p --version > "\$work/v" 2>&1 || { cat "\$work/v"; fail "installed \$p does not start"; }
done
man -w settfs.5 2>/dev/null | grep -q /usr/local/share/man || echo "note: man does not search /usr/local"
mkfs.settfs -q "\$store" || fail "installed mkfs.settfs"
# opts_of: the mount's options and source, as /proc/mounts gives them
opts_of() {
	grep " \$mnt fuse" /proc/mounts | awk '{ n = split(\$4, o, ","); s = ""; for (i = 1; i <= n; i++) if (o[i] ~ /^(nosuid|nodev|suid|dev|default_permissions)\$/) s = s o[i] " "; print \$1, \$3, s }'
}
mounted() {
	i=0
	while ! grep -q " \$mnt fuse" /proc/mounts; do
		i=\$((i + 1)); [ \$i -gt 100 ] && fail "\$1: not mounted"; sleep 0.1
	done
	o=\$(opts_of)
	echo "\$1: \$o"
	[ "\$o" = "settfs:\$store fuse.settfs \${3-nosuid nodev }default_permissions " ] || fail "\$1: \$o"
	echo "\$1" > "\$mnt/\$2" || fail "\$1: write"
	settfs umount "\$mnt" || fail "\$1: settfs umount"
}
settfs "\$store" "\$mnt" || fail "settfs"
mounted "settfs" a
mount -t fuse.settfs "\$store" "\$mnt" || fail "mount -t fuse.settfs"
mounted "mount -t fuse.settfs" b
echo "\$store \$mnt fuse.settfs defaults,noauto,_netdev 0 0" > "\$work/fstab"
mount --fstab "\$work/fstab" "\$mnt" || fail "mount from fstab"
mounted "fstab" c
mount -t "$unit_type" -o "$unit_opts" "\$store" "\$mnt" || fail "mount as the unit says"
mounted "systemd unit" d
# mount(8) keeps suid and dev for itself (a helper gets neither): they are
# asked for as allow_suid and allow_dev, from the command line and fstab
mount -t fuse.settfs -o allow_suid,allow_dev "\$store" "\$mnt" || fail "mount -o allow_suid,allow_dev"
mounted "mount -o allow_suid,allow_dev" e ""
echo "\$store \$mnt fuse.settfs defaults,noauto,allow_dev 0 0" > "\$work/fstab"
mount --fstab "\$work/fstab" "\$mnt" || fail "mount from fstab (allow_dev)"
mounted "fstab, allow_dev" f "nosuid "
settfs -o allow_suid "\$store" "\$mnt" || fail "settfs -o allow_suid"
mounted "settfs -o allow_suid" g "nodev "
fsck.settfs "\$store" || fail "installed fsck.settfs"
EOF
unshare -m sh "$work/inner.sh" || fail "installed programs"
echo PASS
