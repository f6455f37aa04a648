#!/bin/sh
# xfstests.sh - run xfstests (fstests) on settfs through its FUSE support.
#
#   XFSTESTS_DIR=/path/to/xfstests-src tests/xfstests.sh [TEST... | -g GROUP ...]
#
# With no arguments a short list runs (XFSTESTS_SHORT, a few minutes); give
# `-g quick` for the quick group (hours on a small machine), or any list of
# tests and check(8) options.  doc/XFSTESTS.md has the results and what each
# failure means.
#
# XFSTESTS_DIR is an xfstests source tree (git://git.kernel.org/pub/scm/fs/
# xfs/xfstests-dev.git; this script fetches nothing).  It is copied to
# XFSTESTS_BUILD (default XFSTESTS_DIR.settfs), built there with make (its
# Debian build deps: xfslibs-dev uuid-dev libattr1-dev libacl1-dev
# libaio-dev liburing-dev libgdbm-dev xfsprogs) and given the one change it
# needs: its _fs_type (common/rc) reports a FUSE mount as the kernel names
# it, `fuse.settfs`, where FSTYP=fuse expects `fuse`.  A second one makes
# _scratch_mkfs a mkfs: for FSTYP=fuse it only removes the files, which on
# settfs leaves their space in the value log until compaction and GC get to
# it (after a test that filled the scratch store, the next ones would fail
# with ENOSPC); here it runs FUSE_SCRATCH_MKFS, which removes the store
# (settfs makes a new one at the next mount).
#
# The settfs programs come from SETTFS_BUILD (default: the directory this is
# run from when it holds `settfs`, else ./build; mount.settfs from its
# tools/, else the source's).  `make check` runs it too: it skips without XFSTESTS_DIR.  Everything runs in a
# private mount namespace: the TEST and SCRATCH stores live on two ext4
# images of XFSTESTS_SIZE (default 8G, sparse) under XFSTESTS_WORK (default
# a new directory in $TMPDIR), so a test that fills its filesystem fills an
# image, not the host; /sbin gets mount.fuse.settfs (so `mount -t
# fuse.settfs` finds this build; it mounts with suid,dev, see below; umount.fuse.settfs waits for the daemon
# to release the store, as `settfs umount` does) and /etc/passwd the users fsgqa, fsgqa2
# and 123456-fsgqa that xfstests runs unprivileged tests as.  None of it is
# visible outside, and every mount and daemon ends with the run, on failure
# too.  TEST_DEV and SCRATCH_DEV are `settfs:STORE`, the source the mounts
# show in /proc/mounts, so that xfstests' unmounts by device work.
# SETTFS_MOUNT_OPTIONS adds settfs options (e.g. no_writeback_cache).
# XFSTESTS_PASSTHROUGH_LL=/path/to/passthrough_ll runs the same on libfuse's
# example filesystem over a directory on the ext4 images instead, for
# comparison (built from libfuse's source: example/passthrough_ll.c).
#
# Exit status: 0 every test passed or was not run, 1 a test failed, 77
# xfstests, root, /dev/fuse or an ext4 image cannot be had (a skip).  The
# results stay in XFSTESTS_WORK/results (check.log, *.out.bad, *.full).
set -u

skip() { echo "SKIP: $*"; exit 77; }

XFSTESTS_SHORT=${XFSTESTS_SHORT:-"generic/001 generic/013 generic/075 generic/091 generic/112 generic/286 generic/436 generic/451"}

if [ "${XFSTESTS_INNER:-}" != 1 ]; then
	[ -n "${XFSTESTS_DIR:-}" ] || skip "XFSTESTS_DIR is not set (an xfstests source tree)"
	[ -f "$XFSTESTS_DIR/check" ] || skip "no xfstests at $XFSTESTS_DIR"
	[ "$(id -u)" = 0 ] || skip "not root"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	for p in unshare mkfs.ext4 losetup mount.fuse3 make; do
		command -v $p >/dev/null 2>&1 || [ -x /sbin/$p ] || skip "no $p"
	done
	grep -qw overlay /proc/filesystems || skip "no overlayfs (mount.fuse.settfs is overlaid on /sbin)"
	here=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
	if [ -z "${SETTFS_BUILD:-}" ]; then
		if [ -x ./settfs ]; then SETTFS_BUILD=$(pwd); else SETTFS_BUILD=$(pwd)/build; fi
	fi
	SETTFS_BUILD=$(cd "$SETTFS_BUILD" 2>/dev/null && pwd) || skip "no settfs build directory"
	# the libtool wrapper runs the program in .libs; either is a program
	[ -x "$SETTFS_BUILD/settfs" ] || skip "settfs not built in $SETTFS_BUILD"
	XFSTESTS_DIR=$(cd "$XFSTESTS_DIR" && pwd)
	XFSTESTS_BUILD=${XFSTESTS_BUILD:-$XFSTESTS_DIR.settfs}

	# the build copy: a copy of the tree, made and patched
	mkdir -p "$XFSTESTS_BUILD" || exit 1
	if [ ! -f "$XFSTESTS_BUILD/.settfs-copied" ]; then
		cp -a "$XFSTESTS_DIR/." "$XFSTESTS_BUILD/" || exit 1
		touch "$XFSTESTS_BUILD/.settfs-copied"
	fi
	if [ ! -x "$XFSTESTS_BUILD/ltp/fsstress" ]; then
		echo "xfstests.sh: building xfstests in $XFSTESTS_BUILD" >&2
		(cd "$XFSTESTS_BUILD" && make -j"$(nproc)" >build.log 2>&1) ||
			{ echo "xfstests.sh: xfstests does not build: $XFSTESTS_BUILD/build.log" >&2; exit 1; }
	fi
	rc=$XFSTESTS_BUILD/common/rc
	if ! grep -q "settfs: fuse.SUBTYPE" "$rc"; then
		# _fs_type: `fuse.SUBTYPE` (how /proc/mounts names a FUSE mount) is `fuse`
		sed -i "s|-e 's/fuse.ceph-fuse/ceph-fuse/'\$|& -e 's/^fuse\\\\..*/fuse/' # settfs: fuse.SUBTYPE|" "$rc"
		grep -q "settfs: fuse.SUBTYPE" "$rc" ||
			{ echo "xfstests.sh: cannot patch _fs_type in $rc" >&2; exit 1; }
	fi
	if ! grep -q "settfs: a new scratch" "$rc"; then
		# _scratch_mkfs: FSTYP=fuse only removes the files; run FUSE_SCRATCH_MKFS
		sed -i '/^_scratch_mkfs()$/{n;s/$/\n\t[ -n "${FUSE_SCRATCH_MKFS:-}" ] \&\& { $FUSE_SCRATCH_MKFS; return $?; } # settfs: a new scratch/}' "$rc"
		grep -q "settfs: a new scratch" "$rc" ||
			{ echo "xfstests.sh: cannot patch _scratch_mkfs in $rc" >&2; exit 1; }
	fi

	if [ -z "${XFSTESTS_WORK:-}" ]; then
		XFSTESTS_WORK=$(mktemp -d "${TMPDIR:-/tmp}/settfs-xfstests.XXXXXX") || exit 1
	fi
	mkdir -p "$XFSTESTS_WORK" || exit 1
	XFSTESTS_WORK=$(cd "$XFSTESTS_WORK" && pwd)
	export XFSTESTS_INNER=1 XFSTESTS_BUILD XFSTESTS_WORK SETTFS_BUILD
	unshare --mount --propagation private sh "$here" "$@" &
	inner=$!
	trap 'kill -TERM $inner 2>/dev/null' INT TERM
	wait $inner
	status=$?
	# the namespace lives while a daemon does: end the ones this run started
	# (their STORE is in XFSTESTS_WORK) in case the inner run was killed
	for d in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q "^[^ ]*settfs .*$XFSTESTS_WORK/disk" &&
			kill -TERM "${d#/proc/}" 2>/dev/null
	done
	echo "xfstests.sh: results in $XFSTESTS_WORK/results"
	exit $status
fi

# ---- inside the private mount namespace ----
w=$XFSTESTS_WORK
SETTFS=$SETTFS_BUILD/settfs
loops=
cleanup() {
	for m in "$w/test" "$w/scratch"; do
		if grep -q " $m fuse" /proc/self/mounts; then
			"$SETTFS" umount -t 60 "$m" >/dev/null 2>&1 || umount "$m" 2>/dev/null ||
				umount -l "$m" 2>/dev/null
		fi
	done
	for i in test scratch; do
		umount "$w/disk/$i" 2>/dev/null || umount -l "$w/disk/$i" 2>/dev/null
	done
	for l in $loops; do losetup -d "$l" 2>/dev/null; done
	rm -f "$w/test.img" "$w/scratch.img" # the results stay
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mkdir -p "$w/test" "$w/scratch" "$w/sbin" "$w/etc" "$w/results" || exit 1
for i in test scratch; do
	rm -f "$w/$i.img"
	truncate -s "${XFSTESTS_SIZE:-8G}" "$w/$i.img" &&
		mkfs.ext4 -q -F "$w/$i.img" || skip "cannot make an ext4 image"
	l=$(losetup -f --show "$w/$i.img") || skip "no loop device"
	loops="$loops $l"
	mkdir -p "$w/disk/$i" && mount "$l" "$w/disk/$i" || skip "cannot mount the ext4 image"
done

# mount.settfs: made from tools/mount.settfs.in in the build directory (or
# in the source tree by an in-tree build)
helper=$SETTFS_BUILD/tools/mount.settfs
[ -f "$helper" ] || helper=$(cd "$(dirname "$0")/../tools" && pwd)/mount.settfs
[ -f "$helper" ] || skip "no $helper"
# suid,dev: the tests make device nodes and set-ID files (generic/184, 306,
# 434, 633), and mount(8) does not pass those two on to its helper (they
# are the kernel's defaults), while mount.settfs mounts nosuid,nodev unless
# asked: so the helper here asks
cat >"$w/sbin/mount.fuse.settfs" <<EOF
#!/bin/sh
PATH=$SETTFS_BUILD:\$PATH
export PATH
exec sh "$helper" "\$@" -o suid,dev
EOF
# umount(8) runs this one: return once the daemon has released the store, so
# that the next mount of it (xfstests remounts all the time) does not wait
cat >"$w/sbin/umount.fuse.settfs" <<EOF
#!/bin/sh
m=\$1
shift
o=
for a; do case \$a in -l|-f) o="\$o \$a" ;; esac; done
[ -z "\$o" ] || exec umount -i \$o "\$m"
exec "$SETTFS" umount "\$m"
EOF
# for comparison: libfuse's example passthrough_ll over a directory (the
# set-up of xfstests' README.fuse)
pt=${XFSTESTS_PASSTHROUGH_LL:-}
if [ -n "$pt" ]; then
	cat >"$w/sbin/mount.fuse.passthrough_ll" <<EOF
#!/bin/sh
ulimit -n \$(ulimit -Hn)
exec "$pt" -ofsname="\$@"
EOF
	chmod +x "$w/sbin/mount.fuse.passthrough_ll"
	mkdir -p "$w/disk/test/dir" "$w/disk/scratch/dir"
fi
chmod +x "$w/sbin/mount.fuse.settfs" "$w/sbin/umount.fuse.settfs" # run with a standard PATH
if [ -n "$pt" ]; then src=$w/disk/scratch/dir; else src=$w/disk/scratch/store; fi
cat >"$w/scratch-mkfs" <<EOF
#!/bin/sh
if grep -q " $w/scratch fuse" /proc/self/mounts; then
	"$SETTFS" umount "$w/scratch" 2>/dev/null || umount "$w/scratch" || exit 1
fi
rm -rf "$src" && mkdir "$src"
EOF
chmod +x "$w/scratch-mkfs"
sbin=$(readlink -f /sbin)
mount -t overlay overlay -o "lowerdir=$w/sbin:$sbin" "$sbin" ||
	skip "cannot overlay $sbin"

# the users xfstests' unprivileged tests run as
for f in passwd group shadow; do cp "/etc/$f" "$w/etc/$f" || exit 1; done
n=0
for u in fsgqa fsgqa2 123456-fsgqa; do
	n=$((n + 1))
	grep -q "^$u:" "$w/etc/passwd" && continue
	echo "$u:x:$((64000 + n)):$((64000 + n))::/tmp:/bin/sh" >>"$w/etc/passwd"
	echo "$u:x:$((64000 + n)):" >>"$w/etc/group"
	echo "$u:!:19000::::::" >>"$w/etc/shadow"
done
for f in passwd group shadow; do mount --bind "$w/etc/$f" "/etc/$f" || exit 1; done

if [ -n "$pt" ]; then
	cat >"$w/local.config" <<EOF
export FSTYP=fuse
export FUSE_SUBTYP=.passthrough_ll
export TEST_DEV=pt-test
export TEST_DIR=$w/test
export SCRATCH_DEV=pt-scratch
export SCRATCH_MNT=$w/scratch
export TEST_FS_MOUNT_OPTS="-osource=$w/disk/test/dir,allow_other,default_permissions"
export MOUNT_OPTIONS="-osource=$w/disk/scratch/dir,allow_other,default_permissions"
export RESULT_BASE=$w/results
EOF
else
	cat >"$w/local.config" <<EOF
export FSTYP=fuse
export FUSE_SUBTYP=.settfs
export TEST_DEV=settfs:$w/disk/test/store
export TEST_DIR=$w/test
export SCRATCH_DEV=settfs:$w/disk/scratch/store
export SCRATCH_MNT=$w/scratch
export TEST_FS_MOUNT_OPTS="-o allow_other${SETTFS_MOUNT_OPTIONS:+,$SETTFS_MOUNT_OPTIONS}"
export MOUNT_OPTIONS="-o allow_other${SETTFS_MOUNT_OPTIONS:+,$SETTFS_MOUNT_OPTIONS}"
export RESULT_BASE=$w/results
EOF
fi
echo "export FUSE_SCRATCH_MKFS=$w/scratch-mkfs" >>"$w/local.config"
[ $# -gt 0 ] || set -- $XFSTESTS_SHORT
cd "$XFSTESTS_BUILD" || exit 1
HOST_OPTIONS=$w/local.config PATH=$SETTFS_BUILD:$PATH ./check "$@"
status=$?
cleanup
trap - EXIT
exit $status
