// Package bench compares fencekit's lock package with a raw SET NX floor and
// with other Redis lock libraries (rueidislock, redislock, redsync).
//
// Everything lives in lock_bench_test.go; run it with run.sh, which also
// prints a benchstat table. The benchmarks start their own redis-server
// (through internal/redistest) and skip without one, or fail when
// FENCEKIT_REQUIRE_REDIS=1. See README.md for what each case measures and
// for results.
package bench
