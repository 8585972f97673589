#!/usr/bin/env bash
# Runs every lock benchmark COUNT times and prints benchstat tables, one
# implementation per column (the first, floor, is the base of the deltas).
# The session-store benchmarks (BenchmarkState) get tables of their own,
# one row per op and goroutine count (BENCH=State runs only those), and so
# do the memory benchmarks (BenchmarkMemory; BENCH=Memory runs only those)
# and the output-stream benchmarks (BenchmarkStream; BENCH=Stream).
#
#   COUNT      runs of each benchmark          (default 5)
#   BENCHTIME  go test -benchtime              (default 1s: ~6 min at COUNT=5 on 2 cores)
#   BENCH      go test -bench regexp           (default .)
#   OUT        raw go test output file         (default results/bench-<UTC time>.txt)
#
# Needs redis-server in PATH (the benchmarks start their own) and the Go
# module proxy for benchstat. Extra arguments go to benchstat.
set -euo pipefail
cd "$(dirname "$0")"

count=${COUNT:-5}
benchtime=${BENCHTIME:-1s}
bench=${BENCH:-.}
out=${OUT:-results/bench-$(date -u +%Y%m%dT%H%M%SZ).txt}
benchstat=${BENCHSTAT:-golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da}

mkdir -p "$(dirname "$out")"
{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(go version)"
	echo "# $(redis-server --version)"
	echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//') x$(getconf _NPROCESSORS_ONLN)"
	echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
} >"$out"

echo "writing $out" >&2
status=0
FENCEKIT_REQUIRE_REDIS=1 go test -run '^$' -bench "$bench" -benchmem \
	-count "$count" -benchtime "$benchtime" -timeout 60m ./... | tee -a "$out" || status=$?
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" >>"$out"

# A failed run (for example an acquire that hit the 30 s run timeout) leaves
# a "--- FAIL" line; benchstat warns about it and tables the other runs.
# With -count > 1, go test still exits 0 when a repetition after the first
# fails (testing does not propagate those failures), so look for the lines.
if ((status == 0)) && grep -q -- '--- FAIL' "$out"; then
	status=1
fi
echo >&2
# Each table only when its benchmarks ran (BENCH=State or BENCH=Memory runs
# no lock benchmark).
if grep -q '^BenchmarkLock/' "$out"; then
	go run "$benchstat" -filter .name:Lock -row /case -col /impl "$@" "$out"
fi
# The session-store benchmarks (state_bench_test.go) in a table of their own:
# one row per op and goroutine count, hset-floor (save4k only) as the base.
if grep -q '^BenchmarkState/' "$out"; then
	echo
	go run "$benchstat" -filter .name:State -row /op,/par -col /impl "$@" "$out"
fi
# The memory benchmarks (memory_bench_test.go): one row per op and
# goroutine count, hset-floor (put1 only) as the base.
if grep -q '^BenchmarkMemory/' "$out"; then
	echo
	go run "$benchstat" -filter .name:Memory -row /op,/par -col /impl "$@" "$out"
fi
# The output-stream benchmarks (stream_bench_test.go): one row per op and
# goroutine count, xadd-floor (append256 only) as the base.
if grep -q '^BenchmarkStream/' "$out"; then
	echo
	go run "$benchstat" -filter .name:Stream -row /op,/par -col /impl "$@" "$out"
fi
if ((status != 0)); then
	echo "run.sh: some benchmark runs failed; see the --- FAIL lines in $out:" >&2
	grep -A1 -- '--- FAIL' "$out" | grep -v '^--$' | sed 's/^.*--- FAIL: /  FAIL /' >&2
fi
exit "$status"
