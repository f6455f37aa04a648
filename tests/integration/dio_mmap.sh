#!/bin/sh
# Many asynchronous direct writes in flight while mmap writes keep dirtying
# the same pages (xfstests generic/095 mixes them so).  The daemon answers a
# direct write only after it has dropped the written range from the page
# cache, which first writes the range's dirty pages back; that writeback is
# a background request like the asynchronous writes themselves, so if every
# one of the kernel's background slots were held by a direct write waiting
# for its invalidation, nothing would move again (processes stuck in D
# state).  The writes must finish; a watchdog aborts the connection if they
# do not.  Then the same over io_uring when the kernel offers it (the
# fuse module's enable_uring is set for that run and put back after):
# there a queue's waiting background requests move only when one of that
# queue's own ends, so a direct write held on a queue would keep the
# writeback behind it for good.  SETTFS_DIO_MMAP_SECONDS sets the length
# of each run (default 10).
. "${srcdir:-.}/tests/integration/lib.sh"
command -v fio >/dev/null 2>&1 || skip "no fio"
command -v unshare >/dev/null 2>&1 || skip "no unshare"

secs=${SETTFS_DIO_MMAP_SECONDS:-10}
param=/sys/module/fuse/parameters/enable_uring

# run [mount options]: the fio job against a fresh mount; the transport it used
run() {
	mount_fs "$@"
	cat > "$work/job.fio" <<-EOF
	[global]
	directory=$mnt
	filename=f
	size=1m
	time_based=1
	runtime=$secs
	randrepeat=1
	[aio]
	ioengine=libaio
	iodepth=64
	iodepth_batch=16
	direct=1
	rw=randwrite
	bs=4k
	numjobs=2
	[mmap]
	ioengine=mmap
	rw=randwrite
	bs=1k
	EOF
	fio --output="$work/fio.out" "$work/job.fio" &
	finish_or_abort $! $((secs + 60)) "direct writes with dirty mmap pages" ||
		fail "fio exit status $? ($(tail -3 "$work/fio.out"))"
	transport=$("$SETTFS" status "$mnt" | awk '$1 == "transport" { print $2 }')
	umount_fs
	check_fsck
}

run
if [ -z "${SETTFS_TEST_MOUNT_OPTS:-}" ] && [ -w "$param" ]; then
	old=$(cat "$param")
	trap 'echo "$old" > "$param"; cleanup' EXIT
	if echo 1 > "$param"; then
		run -o io_uring
		echo "$old" > "$param"
		[ "$transport" = io_uring ] || echo "note: the io_uring run went through $transport"
	fi
fi
echo PASS
