package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/semaphore"
)

// BenchmarkCoord measures the semaphore and the election on the real
// redis-server. Sub-benchmarks are named op=<op>/impl=<impl>, so
//
//	benchstat -filter .name:Coord -row /op -col /impl out.txt
//
// puts the implementations of one op side by side:
//
//   - op=permit: take one permit and give it back, one goroutine, a
//     limit nobody reaches. impl=raw is the raw commands a counter
//     semaphore would send (INCRBY, then DECRBY; no lease, no token, no
//     queue), impl=semaphore is TryAcquire(1)+Release.
//   - op=handoff8: 8 goroutines, each with its own client, take turns on
//     one name with the blocking acquire: the contended hand-off latency.
//     impl=lock is lock.Locker.Acquire+Release, impl=semaphore1 a
//     semaphore of one permit, impl=semaphore4 of four permits,
//     impl=election Campaign+Resign.
//
// Each run reports ops/s, p50/p99 of the acquire in µs, and the CPU per
// op of the redis-server (srv-cpu-µs/op) and of this process
// (cli-cpu-µs/op, runs of 250 ms or more).
func BenchmarkCoord(b *testing.B) {
	for _, cb := range coordBenches {
		b.Run("op="+cb.op+"/impl="+cb.impl, func(b *testing.B) { runCoord(b, cb) })
	}
}

type coordBench struct {
	op, impl   string
	goroutines int
	open       func(b *testing.B, c rueidis.Client, prefix string) coordWorker
}

// coordWorker takes and gives back one unit of whatever it coordinates.
type coordWorker interface {
	acquire(ctx context.Context) error
	release(ctx context.Context) error
}

var coordBenches = []coordBench{
	{"permit", "raw", 1, openRawPermit},
	{"permit", "semaphore", 1, openSemPermit(1 << 20)},
	{"handoff8", "lock", 8, openLockWorker},
	{"handoff8", "semaphore1", 8, openSemWaiter(1)},
	{"handoff8", "semaphore4", 8, openSemWaiter(4)},
	{"handoff8", "election", 8, openElectionWorker},
}

func runCoord(b *testing.B, cb coordBench) {
	s := redistest.NewRedis(b)
	prefix := s.Prefix(b)
	n, par := 1, 0
	if cb.goroutines > 1 {
		procs := runtime.GOMAXPROCS(0)
		par = (cb.goroutines + procs - 1) / procs
		n = par * procs
	}
	workers := make([]coordWorker, n)
	for i := range workers {
		workers[i] = cb.open(b, newRueidis(b, s), prefix)
	}
	hists := make([]hist, n)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	for _, w := range workers { // dial and load scripts outside the timer
		if err := w.acquire(ctx); err != nil {
			b.Fatalf("warm-up acquire: %v", err)
		}
		if err := w.release(ctx); err != nil {
			b.Fatalf("warm-up release: %v", err)
		}
	}
	op := func(w coordWorker, h *hist) error {
		start := time.Now()
		if err := w.acquire(ctx); err != nil {
			return fmt.Errorf("acquire: %w", err)
		}
		h.record(time.Since(start))
		return w.release(ctx)
	}
	srv0, srvOK := redisCPU(b, s)
	cli0, cliOK := clientCPU()
	b.ReportAllocs()
	b.ResetTimer()
	if par == 0 {
		for i := 0; i < b.N; i++ {
			if err := op(workers[0], &hists[0]); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism(par)
		var next atomic.Int32
		var failed atomic.Bool
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(1) - 1
			for pb.Next() {
				if failed.Load() {
					return
				}
				if err := op(workers[i], &hists[i]); err != nil {
					if !failed.Swap(true) {
						b.Error(err)
						cancel()
					}
					return
				}
			}
		})
	}
	b.StopTimer()
	var all hist
	for i := range hists {
		all.merge(&hists[i])
	}
	if secs := b.Elapsed().Seconds(); secs > 0 {
		b.ReportMetric(float64(b.N)/secs, "ops/s")
	}
	b.ReportMetric(all.quantile(0.50)/1e3, "p50-µs")
	b.ReportMetric(all.quantile(0.99)/1e3, "p99-µs")
	if srv1, ok := redisCPU(b, s); ok && srvOK && b.N > 0 {
		b.ReportMetric((srv1-srv0)*1e6/float64(b.N), "srv-cpu-µs/op")
	}
	if cli1, ok := clientCPU(); ok && cliOK && b.N > 0 && b.Elapsed() >= 250*time.Millisecond {
		b.ReportMetric((cli1-cli0)*1e6/float64(b.N), "cli-cpu-µs/op")
	}
}

// redisCPU returns the CPU seconds (user + system) of the redis-server.
func redisCPU(b *testing.B, s *redistest.Server) (float64, bool) {
	msg := s.Do(b, "INFO", "cpu")
	info, err := msg.ToString()
	if err != nil {
		return 0, false
	}
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		sum += f
		found++
	}
	return sum, found == 2
}

// --- raw: INCRBY then DECRBY on a counter; the floor of any semaphore ---

type rawPermit struct {
	c   rueidis.Client
	key string
}

func openRawPermit(b *testing.B, c rueidis.Client, prefix string) coordWorker {
	b.Cleanup(c.Close)
	return &rawPermit{c: c, key: prefix + ":{p}:count"}
}

func (w *rawPermit) acquire(ctx context.Context) error {
	n, err := w.c.Do(ctx, w.c.B().Incrby().Key(w.key).Increment(1).Build()).AsInt64()
	if err == nil && n > 1<<20 {
		err = errNotAcquired
	}
	return err
}

func (w *rawPermit) release(ctx context.Context) error {
	return w.c.Do(ctx, w.c.B().Decrby().Key(w.key).Decrement(1).Build()).Error()
}

// --- semaphore ---

type semWorker struct {
	s    *semaphore.Semaphore
	wait bool
	held *semaphore.Permits
}

func openSem(b *testing.B, c rueidis.Client, prefix string, limit int64, wait bool) coordWorker {
	s, err := semaphore.New(c, "bench", semaphore.Options{Prefix: prefix, Limit: limit, TTL: ttl})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(); c.Close() })
	return &semWorker{s: s, wait: wait}
}

func openSemPermit(limit int64) func(*testing.B, rueidis.Client, string) coordWorker {
	return func(b *testing.B, c rueidis.Client, prefix string) coordWorker {
		return openSem(b, c, prefix, limit, false)
	}
}

func openSemWaiter(limit int64) func(*testing.B, rueidis.Client, string) coordWorker {
	return func(b *testing.B, c rueidis.Client, prefix string) coordWorker {
		return openSem(b, c, prefix, limit, true)
	}
}

func (w *semWorker) acquire(ctx context.Context) (err error) {
	if w.wait {
		w.held, err = w.s.Acquire(ctx, 1)
	} else {
		w.held, err = w.s.TryAcquire(ctx, 1)
	}
	return err
}

func (w *semWorker) release(ctx context.Context) error {
	err := w.held.Release(ctx)
	w.held = nil
	return err
}

// --- lock, for the hand-off beside the semaphore and the election ---

type lockWorker struct {
	l    *lock.Locker
	held *lock.Lock
}

func openLockWorker(b *testing.B, c rueidis.Client, prefix string) coordWorker {
	l, err := lock.New(c, lock.Options{Prefix: prefix, TTL: ttl})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close(); c.Close() })
	return &lockWorker{l: l}
}

func (w *lockWorker) acquire(ctx context.Context) (err error) {
	w.held, err = w.l.Acquire(ctx, "bench")
	return err
}

func (w *lockWorker) release(ctx context.Context) error {
	err := w.held.Release(ctx)
	w.held = nil
	return err
}

// --- election ---

type electionWorker struct {
	e    *election.Election
	lead *election.Leadership
}

func openElectionWorker(b *testing.B, c rueidis.Client, prefix string) coordWorker {
	e, err := election.New(c, "bench", election.Options{Lock: lock.Options{Prefix: prefix, TTL: ttl}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close(); c.Close() })
	return &electionWorker{e: e}
}

func (w *electionWorker) acquire(ctx context.Context) (err error) {
	w.lead, err = w.e.Campaign(ctx, "v")
	return err
}

func (w *electionWorker) release(ctx context.Context) error {
	err := w.lead.Resign(ctx)
	w.lead = nil
	return err
}
