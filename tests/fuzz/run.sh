#!/bin/sh
# run.sh - `make fuzz`: write the seed corpus, then run each fuzz target.
#
#   run.sh BUILDDIR SRCDIR SECONDS NAME...
#
# Each target fuzz_NAME runs for SECONDS over, in this order, the
# regression inputs SRCDIR/tests/fuzz/regress/NAME (committed: each once
# made a decoder misbehave), the seeds BUILDDIR/tests/fuzz/seeds/NAME
# (written anew by fuzz_seeds, so they follow the format) and the inputs
# earlier runs kept, BUILDDIR/tests/fuzz/corpus/NAME.  A crash, leak,
# sanitizer report, invariant failure or timeout fails the target and
# leaves the input in BUILDDIR/tests/fuzz/artifacts/.  FUZZ_FLAGS adds
# libFuzzer flags (e.g. -jobs=2).  Prints one line per target and a total.
set -u
b=$1/tests/fuzz
s=$2/tests/fuzz
secs=$3
shift 3

rm -rf "$b/seeds"
"$b/fuzz_seeds" "$b/seeds" >/dev/null || { echo "fuzz: fuzz_seeds failed"; exit 1; }
mkdir -p "$b/artifacts"
pass=0
fail=0
total=0
for name in "$@"; do
	mkdir -p "$b/corpus/$name"
	dirs="$b/corpus/$name $b/seeds/$name"
	[ -d "$s/regress/$name" ] && dirs="$dirs $s/regress/$name"
	log=$b/$name.log
	# shellcheck disable=SC2086
	"$b/fuzz_$name" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 \
		-print_final_stats=1 -artifact_prefix="$b/artifacts/$name-" \
		${FUZZ_FLAGS:-} $dirs >"$log" 2>&1
	rc=$?
	runs=$(awk '/stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' "$log")
	total=$((total + runs))
	if [ $rc = 0 ]; then
		pass=$((pass + 1))
		echo "fuzz_$name: $runs executions, clean"
	else
		fail=$((fail + 1))
		echo "fuzz_$name: FAILED after $runs executions (exit $rc), log $log:"
		grep -E "ERROR|invariant|SUMMARY|runtime error|Test unit written" "$log" | head -20
		grep -A30 "^==.*ERROR" "$log" | head -40
	fi
done
echo "fuzz: $total executions in all"
echo "fuzz: $pass passed, $fail failed"
[ $fail = 0 ]
