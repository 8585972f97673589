package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidislock"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// TestMain stops the redis-server that redistest starts as a child of the
// test binary (and runs its goroutine leak check).
func TestMain(m *testing.M) { redistest.Main(m) }

const (
	// ttl is the lease of every implementation in every case.
	ttl = 10 * time.Second

	// retryDelay is how often floor, redislock and redsync poll a held
	// lock in the contended cases: they have no wake-up notice, so a
	// blocking acquire is SET NX again after this delay. fencekit
	// (FIFO hand-off) and rueidislock (client-side-caching invalidation)
	// are woken when the lock is freed and keep their defaults.
	retryDelay = time.Millisecond

	// runTimeout bounds one benchmark run (one b.N): an acquire that hangs
	// (a lost wake-up) fails the run with a context error instead of
	// hanging the test binary. A run lasts about -benchtime, so this is
	// generous up to -benchtime=10s.
	runTimeout = 30 * time.Second
)

// BenchmarkLock measures acquire+release of every implementation in every
// case. Sub-benchmarks are named impl=<impl>/case=<case>, so
//
//	benchstat -row /case -col /impl out.txt
//
// puts one implementation per column.
func BenchmarkLock(b *testing.B) {
	for _, im := range impls {
		b.Run("impl="+im.name, func(b *testing.B) {
			for _, c := range cases {
				b.Run("case="+c.name, func(b *testing.B) {
					runCase(b, im, c)
				})
			}
		})
	}
}

// A benchCase says how many goroutines lock what, through how many clients.
type benchCase struct {
	name string
	// goroutines that run acquire+release; 1 runs a plain loop in the
	// benchmark goroutine, more use RunParallel.
	goroutines int
	// contended: all goroutines lock one name with the blocking acquire.
	// Otherwise every goroutine has a name of its own and uses the
	// non-blocking acquire, which must always succeed.
	contended bool
	// clientPerGoroutine gives every goroutine its own client and locker;
	// otherwise all share one.
	clientPerGoroutine bool
}

var cases = []benchCase{
	{name: "serial", goroutines: 1},
	{name: "par8", goroutines: 8},
	{name: "par64", goroutines: 64},
	{name: "contended8-1client", goroutines: 8, contended: true},
	{name: "contended8-8clients", goroutines: 8, contended: true, clientPerGoroutine: true},
}

// An impl is a lock implementation under test.
type impl struct {
	name string
	// open returns one client of s with its locker. Keys go under prefix;
	// users is how many goroutines will share the client.
	open func(b *testing.B, s *redistest.Server, prefix string, users int) backend
}

var impls = []impl{
	{"floor", openFloor},
	{"fencekit", openFencekit},
	{"rueidislock", openRueidislock},
	{"redislock", openRedislock},
	{"redsync", openRedsync},
}

// A backend is one client (connection pool) with its locker.
type backend interface {
	// worker returns the state of one goroutine that locks name, with the
	// blocking acquire when wait is set.
	worker(name string, wait bool) worker
	close()
}

// A worker locks one name; it keeps the lock handle from acquire to
// release, so the loop does not allocate closures.
type worker interface {
	acquire(ctx context.Context) error
	release(ctx context.Context) error
}

// errNotAcquired is returned by non-blocking acquires that find the lock
// held. The uncontended cases treat it as a failure.
var errNotAcquired = errors.New("lock held")

func runCase(b *testing.B, im impl, c benchCase) {
	s := redistest.NewRedis(b)
	prefix := s.Prefix(b)

	n, par := 1, 0
	if c.goroutines > 1 {
		procs := runtime.GOMAXPROCS(0)
		par = (c.goroutines + procs - 1) / procs
		n = par * procs
		if n != c.goroutines {
			b.Logf("GOMAXPROCS=%d: running %d goroutines instead of %d", procs, n, c.goroutines)
		}
	}

	backends := make([]backend, 1)
	if c.clientPerGoroutine {
		backends = make([]backend, n)
	}
	for i := range backends {
		backends[i] = im.open(b, s, prefix, n/len(backends))
	}
	defer func() {
		for _, be := range backends {
			be.close()
		}
	}()
	workers := make([]worker, n)
	for i := range workers {
		name := "shared"
		if !c.contended {
			name = "k" + strconv.Itoa(i)
		}
		workers[i] = backends[i%len(backends)].worker(name, c.contended)
	}
	// Latencies go to preallocated per-goroutine histograms: recording
	// them does not allocate.
	hists := make([]hist, n)

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var (
		holders atomic.Int32 // goroutines inside the critical section
		failed  atomic.Bool
	)
	op := func(w worker, h *hist) error {
		start := time.Now()
		if err := w.acquire(ctx); err != nil {
			return fmt.Errorf("acquire: %w", err)
		}
		h.record(time.Since(start))
		if c.contended {
			if holders.Add(1) != 1 {
				return errors.New("mutual exclusion violated: two goroutines hold the lock")
			}
			holders.Add(-1)
		}
		if err := w.release(ctx); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		return nil
	}

	// One untimed acquire+release per worker dials the connections and
	// loads the scripts outside the measurement.
	for _, w := range workers {
		if err := w.acquire(ctx); err != nil {
			b.Fatalf("warm-up acquire: %v", err)
		}
		if err := w.release(ctx); err != nil {
			b.Fatalf("warm-up release: %v", err)
		}
	}

	b.ReportAllocs()
	cpu0, cpuOK := serverCPUOf(b, s)
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
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(1) - 1
			w, h := workers[i], &hists[i]
			for pb.Next() {
				if failed.Load() {
					return
				}
				if err := op(w, h); err != nil {
					// Report the first failure; cancel makes the others
					// give up instead of waiting for a lock that may
					// never be released.
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
	if cpu1, ok := serverCPUOf(b, s); ok && cpuOK && b.N > 0 {
		b.ReportMetric((cpu1-cpu0)*1e6/float64(b.N), "srv-cpu-µs/op")
	}
}

// --- floor: SET NX PX + DEL on rueidis, no owner check, no token ---

type floorBackend struct {
	c      rueidis.Client
	prefix string
}

func openFloor(b *testing.B, s *redistest.Server, prefix string, _ int) backend {
	return &floorBackend{c: newRueidis(b, s), prefix: prefix}
}

func (f *floorBackend) worker(name string, wait bool) worker {
	key := f.prefix + ":" + name
	return &floorWorker{c: f.c, key: key, val: key, wait: wait}
}

func (f *floorBackend) close() { f.c.Close() }

type floorWorker struct {
	c        rueidis.Client
	key, val string
	wait     bool
}

func (w *floorWorker) acquire(ctx context.Context) error {
	for {
		err := w.c.Do(ctx, w.c.B().Set().Key(w.key).Value(w.val).Nx().PxMilliseconds(ttl.Milliseconds()).Build()).Error()
		if !rueidis.IsRedisNil(err) {
			return err // nil: acquired
		}
		if !w.wait {
			return errNotAcquired
		}
		if err := sleep(ctx, retryDelay); err != nil {
			return err
		}
	}
}

func (w *floorWorker) release(ctx context.Context) error {
	return w.c.Do(ctx, w.c.B().Del().Key(w.key).Build()).Error()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// --- fencekit: lock.Locker with default options but Prefix and TTL ---

type fencekitBackend struct {
	c rueidis.Client
	l *lock.Locker
}

func openFencekit(b *testing.B, s *redistest.Server, prefix string, _ int) backend {
	c := newRueidis(b, s)
	l, err := lock.New(c, lock.Options{Prefix: prefix, TTL: ttl})
	if err != nil {
		c.Close()
		b.Fatalf("lock.New: %v", err)
	}
	return &fencekitBackend{c: c, l: l}
}

func (f *fencekitBackend) worker(name string, wait bool) worker {
	return &fencekitWorker{l: f.l, name: name, wait: wait}
}

func (f *fencekitBackend) close() {
	_ = f.l.Close()
	f.c.Close()
}

type fencekitWorker struct {
	l    *lock.Locker
	name string
	wait bool
	held *lock.Lock
}

func (w *fencekitWorker) acquire(ctx context.Context) (err error) {
	if w.wait {
		w.held, err = w.l.Acquire(ctx, w.name)
	} else {
		w.held, err = w.l.TryAcquire(ctx, w.name)
	}
	return err
}

func (w *fencekitWorker) release(ctx context.Context) error {
	err := w.held.Release(ctx)
	w.held = nil
	return err
}

// --- rueidislock: one Redis, so KeyMajority 1 as its README says; Redis
// 7.0.15 >= 7.0.5, so NoLoopTracking; client-side caching on (default) ---

type rueidislockBackend struct {
	l rueidislock.Locker
}

func openRueidislock(b *testing.B, s *redistest.Server, prefix string, _ int) backend {
	l, err := rueidislock.NewLocker(rueidislock.LockerOption{
		ClientOption:   s.ClientOption(),
		KeyPrefix:      prefix,
		KeyValidity:    ttl,
		KeyMajority:    1,
		NoLoopTracking: true,
	})
	if err != nil {
		b.Fatalf("rueidislock.NewLocker: %v", err)
	}
	return &rueidislockBackend{l: l}
}

func (r *rueidislockBackend) worker(name string, wait bool) worker {
	return &rueidislockWorker{l: r.l, name: name, wait: wait}
}

func (r *rueidislockBackend) close() { r.l.Close() }

type rueidislockWorker struct {
	l      rueidislock.Locker
	name   string
	wait   bool
	cancel context.CancelFunc
}

func (w *rueidislockWorker) acquire(ctx context.Context) (err error) {
	if w.wait {
		_, w.cancel, err = w.l.WithContext(ctx, w.name)
	} else {
		_, w.cancel, err = w.l.TryWithContext(ctx, w.name)
	}
	return err
}

// release cancels the lock's context, which deletes the key and waits for
// that; rueidislock reports no release error.
func (w *rueidislockWorker) release(context.Context) error {
	w.cancel()
	w.cancel = nil
	return nil
}

// --- redislock: Obtain; blocking = LinearBackoff(retryDelay) ---

type redislockBackend struct {
	c      *goredislib.Client
	l      *redislock.Client
	prefix string
}

func openRedislock(b *testing.B, s *redistest.Server, prefix string, users int) backend {
	c := newGoRedis(s, users)
	return &redislockBackend{c: c, l: redislock.New(c), prefix: prefix}
}

// retryOpts is shared by all blocking workers: LinearBackoff keeps no state.
var retryOpts = &redislock.Options{RetryStrategy: redislock.LinearBackoff(retryDelay)}

func (r *redislockBackend) worker(name string, wait bool) worker {
	w := &redislockWorker{l: r.l, key: r.prefix + ":" + name}
	if wait {
		w.opts = retryOpts
	}
	return w
}

func (r *redislockBackend) close() { _ = r.c.Close() }

type redislockWorker struct {
	l    *redislock.Client
	key  string
	opts *redislock.Options // nil: NoRetry
	held *redislock.Lock
}

func (w *redislockWorker) acquire(ctx context.Context) (err error) {
	w.held, err = w.l.Obtain(ctx, w.key, ttl, w.opts)
	return err
}

func (w *redislockWorker) release(ctx context.Context) error {
	err := w.held.Release(ctx)
	w.held = nil
	return err
}

// --- redsync: one pool (quorum 1); blocking = LockContext with retryDelay
// between tries and enough tries to wait one TTL (its default, 32 tries
// 50-250 ms apart, would make the contended cases measure its sleep) ---

type redsyncBackend struct {
	c      *goredislib.Client
	rs     *redsync.Redsync
	prefix string
}

func openRedsync(b *testing.B, s *redistest.Server, prefix string, users int) backend {
	c := newGoRedis(s, users)
	return &redsyncBackend{c: c, rs: redsync.New(goredis.NewPool(c)), prefix: prefix}
}

func (r *redsyncBackend) worker(name string, wait bool) worker {
	// A Mutex remembers the value of its last lock: one per goroutine.
	m := r.rs.NewMutex(r.prefix+":"+name,
		redsync.WithExpiry(ttl),
		redsync.WithRetryDelay(retryDelay),
		redsync.WithTries(int(ttl/retryDelay)))
	return &redsyncWorker{m: m, wait: wait}
}

func (r *redsyncBackend) close() { _ = r.c.Close() }

type redsyncWorker struct {
	m    *redsync.Mutex
	wait bool
}

func (w *redsyncWorker) acquire(ctx context.Context) error {
	if w.wait {
		return w.m.LockContext(ctx)
	}
	return w.m.TryLockContext(ctx)
}

func (w *redsyncWorker) release(ctx context.Context) error {
	ok, err := w.m.UnlockContext(ctx)
	if err == nil && !ok {
		err = errors.New("redsync: unlock found the lock gone")
	}
	return err
}

// --- clients ---

// newRueidis returns a rueidis client with rueidis' defaults (auto
// pipelining over a few multiplexed connections serves 64 goroutines).
func newRueidis(b *testing.B, s *redistest.Server) rueidis.Client {
	c, err := rueidis.NewClient(s.ClientOption())
	if err != nil {
		b.Fatalf("rueidis.NewClient: %v", err)
	}
	return c
}

// newGoRedis returns a go-redis client with a connection per goroutine
// using it, and never fewer than go-redis' default pool (10 per CPU).
func newGoRedis(s *redistest.Server, users int) *goredislib.Client {
	return goredislib.NewClient(&goredislib.Options{
		Addr:     s.Addrs[0],
		PoolSize: max(users, 10*runtime.GOMAXPROCS(0)),
	})
}

// --- latency histogram ---

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a bucket's midpoint is within 1/2^(subBits+1) (1.6%) of any
// value in it.
const subBits = 5

// hist is a log-linear histogram of durations in nanoseconds, exact below
// 2^(subBits+1) ns. Recording does not allocate.
type hist struct {
	n      uint64
	counts [(64 - subBits + 1) << subBits]uint64
}

func bucketOf(v uint64) int {
	n := bits.Len64(v)
	if n <= subBits+1 {
		return int(v)
	}
	shift := n - subBits - 1
	return shift<<subBits + int(v>>shift)
}

// bucketMid returns the middle of the values of bucket i.
func bucketMid(i int) float64 {
	if i < 2<<subBits {
		return float64(i)
	}
	shift := i>>subBits - 1
	lo := uint64(i&(1<<subBits-1)|1<<subBits) << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

func (h *hist) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
}

func (h *hist) merge(o *hist) {
	h.n += o.n
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile returns the q-quantile in nanoseconds (NaN when empty).
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return math.NaN()
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return bucketMid(i)
		}
	}
	return math.NaN() // unreachable
}

func TestHist(t *testing.T) {
	var h hist
	for v := uint64(0); v < 1<<20; v += 7 {
		i := bucketOf(v)
		if i < 0 || i >= len(h.counts) {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		if mid := bucketMid(i); math.Abs(mid-float64(v)) > float64(v)/(1<<subBits)/2+0.5 {
			t.Fatalf("bucketMid(bucketOf(%d)) = %v, too far", v, mid)
		}
	}
	if i := bucketOf(math.MaxUint64); i != len(h.counts)-1 {
		t.Fatalf("bucketOf(max) = %d, want %d", i, len(h.counts)-1)
	}
	for d := 1; d <= 100; d++ {
		h.record(time.Duration(d) * time.Microsecond)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50e3}, {0.99, 99e3}, {1, 100e3}} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > c.want/50 {
			t.Errorf("quantile(%v) = %v, want %v ±2%%", c.q, got, c.want)
		}
	}
}
