#!/bin/sh
# dev.sh - the project's set-up commands (see README.md).
#
#   ./dev.sh run [STORE [MOUNTPOINT]]  install dependencies, build, mount a store
#   ./dev.sh test                      install dependencies, build, run every test
#   ./dev.sh test-asan                 the same under AddressSanitizer + UBSan
#   ./dev.sh test-tsan                 the engine's threaded suites under ThreadSanitizer
#   ./dev.sh fuzz [SECONDS]            build the fuzz targets with clang and run
#                                      each for SECONDS [60] (doc/TESTING.md)
#
# Dependencies come from Debian's archive; apt-get runs only when something
# is missing (as root, or through sudo).
set -eu
cd "$(dirname "$0")"

BUILD_DEPS="build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3 libzstd-dev libxxhash-dev libssl-dev check liburing-dev"
TEST_DEPS="attr acl tar rsync python3 fio git util-linux man-db btrfs-progs"
FUZZ_DEPS="clang libclang-rt-dev"
# The suites that run engine threads (writer, flusher, compactors, GC) or
# start their own.
TSAN_TESTS="tests/test_cache tests/test_memtable tests/test_table tests/test_vlog \
tests/test_db tests/test_gc tests/test_compaction tests/test_crash tests/test_txn \
tests/test_control tests/test_pin tests/test_backup tests/test_drop tests/test_encrypt \
tests/test_snapshot tests/test_scrub"

install_deps() { # install_deps [extra packages]
	missing=""
	for p in $BUILD_DEPS $TEST_DEPS "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "dev.sh: installing$missing" >&2
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
}

build() { # build DIR [configure args]
	dir=$1
	shift
	[ -x configure ] || ./autogen.sh
	mkdir -p "$dir"
	(cd "$dir" && { [ -f Makefile ] || ../configure -q "$@"; } && make -j"$(nproc)")
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
run)
	install_deps
	build build
	store=${1:-$PWD/store}
	mnt=${2:-$PWD/mnt}
	mkdir -p "$mnt"
	./build/settfs "$store" "$mnt"
	echo "settfs: $store mounted at $mnt (unmount: fusermount3 -u $mnt)"
	;;
test)
	install_deps
	build build
	make -C build check
	;;
test-asan)
	install_deps
	build build-asan --enable-sanitizers
	# the sanitizers slow every power cut: fewer of them than in `test`
	SETTFS_POWERCUT_ITERATIONS=${SETTFS_POWERCUT_ITERATIONS:-20} \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		make -C build-asan check
	;;
fuzz)
	install_deps $FUZZ_DEPS
	build build-fuzz CC=clang --enable-fuzz
	make -C build-fuzz fuzz FUZZ_SECONDS="${1:-60}"
	;;
test-tsan)
	install_deps
	build build-tsan --enable-tsan
	# A race fails the test that ran into it (the forked test exits 66).
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
		make -C build-tsan check TESTS="$TSAN_TESTS"
	;;
*)
	echo "usage: $0 run [STORE [MOUNTPOINT]] | test | test-asan | test-tsan | fuzz [SECONDS]" >&2
	exit 2
	;;
esac
