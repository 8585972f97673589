// Package bench measures fencekit against floors and peers on a real
// redis-server: lock_bench_test.go compares the lock package with a raw
// SET NX floor and with rueidislock, redislock and redsync;
// state_bench_test.go measures the session stores (statestore, staging,
// checkpoint) beside a raw HSET floor.
//
// Run it with run.sh, which also prints benchstat tables. The benchmarks
// start their own redis-server (through internal/redistest) and skip without
// one, or fail when FENCEKIT_REQUIRE_REDIS=1. See README.md for what each
// case measures and for results.
package bench
