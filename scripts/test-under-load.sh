#!/usr/bin/env bash
# Runs the whole test suite N times (default 10) while two busy loops keep
# both CPUs of a 2-core machine busy, stopping at the first failing run.
# Tests must not depend on timing: one that fails only here is a bug.
#
#   scripts/test-under-load.sh [RUNS] [-- CARGO TEST ARGS...]
#
# Each run's output goes to target/test-under-load/run-N.log; the summary
# line of each run and the total time are printed. The busy loops are
# stopped on exit, however the script ends (Ctrl-C included).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-10}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift

logs=target/test-under-load
mkdir -p "$logs"

load_pids=()
stop_load() {
    for pid in "${load_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap stop_load EXIT

# The tests are built before the load starts: the point is to run them on
# busy CPUs, not to time the compiler.
cargo test --locked --no-run "$@" >/dev/null 2>&1 || cargo test --locked --no-run "$@"

for _ in 1 2; do
    yes >/dev/null &
    load_pids+=($!)
done
echo "load: ${load_pids[*]} (yes > /dev/null); $(nproc) CPUs; $runs runs of cargo test $*"

start=$(date +%s)
for run in $(seq 1 "$runs"); do
    log="$logs/run-$run.log"
    run_start=$(date +%s)
    if cargo test --locked "$@" >"$log" 2>&1; then
        passed=$(grep -E '^test result: ok' "$log" | awk '{s += $4} END {print s}')
        echo "run $run: ok, $passed tests passed in $(($(date +%s) - run_start)) s"
    else
        echo "run $run: FAILED after $(($(date +%s) - run_start)) s; see $log" >&2
        grep -E '^test .* FAILED$|^---- |panicked at' "$log" >&2 || true
        exit 1
    fi
done
echo "all $runs runs passed in $(($(date +%s) - start)) s"
