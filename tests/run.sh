#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every suite and prints one closing line "N passed, N failed[, N skipped]".
#
# Each suite prints TAP-like lines: "ok - name", "not ok - name",
# "skip - name # reason". A suite that exits non-zero without printing a
# "not ok" line (a crash, a sanitizer report) counts as one failure of its own.
#
#   tests/run.sh [filter]     run suites whose path contains filter
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/test}
export BUILD SLUICE_BIN="$BUILD/bin"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
filter=${1:-}
LOG=$BUILD/test-logs
mkdir -p "$LOG"

passed=0 failed=0 skipped=0
failures=()

run_suite() {
	local name=$1
	shift
	[[ -n $filter && $name != *"$filter"* ]] && return
	local out="$LOG/$(echo "$name" | tr '/ ' '__').log"
	local start=$SECONDS
	"$@" >"$out" 2>&1
	local rc=$?
	local p f s
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^not ok - ' "$out")
	s=$(grep -c '^skip - ' "$out")
	if ((rc != 0 && f == 0)); then
		f=1
		echo "not ok - $name (exit $rc)" >>"$out"
	fi
	if ((p + f + s == 0)); then
		# A suite that ran nothing is a defect, not a pass.
		f=1
		echo "not ok - $name (no test ran)" >>"$out"
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	printf '%-44s %3d ok %3d failed %3d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - start))
	grep '^skip - ' "$out" | sed 's/^/    /'
	if ((f)); then
		failures+=("$name")
		grep -E '^not ok - ' "$out" | sed 's/^/    /'
		echo "    --- last lines of $out:"
		tail -n 25 "$out" | sed 's/^/    | /'
	fi
}

# Unit tests: one binary per module.
for t in "$BUILD"/bin/tests/test_*; do
	[[ -x $t ]] || continue
	run_suite "unit/$(basename "$t")" "$t"
done

# Fuzz corpora replay through the same code the fuzzers exercise.
for r in "$BUILD"/bin/tests/replay_fuzz_*; do
	[[ -x $r ]] || continue
	target=${r##*/replay_fuzz_}
	run_suite "fuzz/$target" "$r" "tests/fuzz/corpus/$target"
done

# Integration suites (shell), each builds and tears down its own world.
for s in tests/integration/*.sh; do
	[[ -f $s && $(basename "$s") != lib.sh ]] || continue
	run_suite "integration/$(basename "$s" .sh)" bash "$s"
done

if ((failed)); then
	echo "failed suites: ${failures[*]} (logs in $LOG/)"
fi
if ((skipped)); then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
((failed == 0))
