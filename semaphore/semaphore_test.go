package semaphore_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/semaphore"
)

func TestTryAcquire(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		prefix := s.Prefix(t)
		sem := newSem(t, s, "llm", semaphore.Options{Prefix: prefix, Limit: 3})

		a, err := sem.TryAcquire(ctx, 2)
		require.NoError(t, err)
		_, err = sem.TryAcquire(ctx, 2)
		var na *semaphore.NotAcquiredError
		require.ErrorAs(t, err, &na)
		assert.ErrorIs(t, err, semaphore.ErrNotAcquired)
		assert.Equal(t, int64(2), na.Used)
		assert.Equal(t, int64(3), na.Limit)
		b, err := sem.TryAcquire(ctx, 1)
		require.NoError(t, err)
		assert.Greater(t, b.Token(), a.Token(), "tokens grow")
		_, err = sem.TryAcquire(ctx, 4)
		assert.ErrorIs(t, err, semaphore.ErrTooMany)
		_, err = sem.TryAcquire(ctx, 0)
		assert.ErrorIs(t, err, semaphore.ErrTooMany)

		info, err := sem.Inspect(ctx)
		require.NoError(t, err)
		assert.Equal(t, int64(3), info.Used)
		assert.Len(t, info.Holders, 2)
		assert.Equal(t, b.Token(), info.Fence)

		require.NoError(t, a.Release(ctx))
		require.NoError(t, a.Release(ctx), "Release is idempotent")
		assert.ErrorIs(t, a.Err(), semaphore.ErrReleased)
		c, err := sem.TryAcquire(ctx, 2)
		require.NoError(t, err)
		assert.Greater(t, c.Token(), b.Token())
		require.NoError(t, b.Release(ctx))
		require.NoError(t, c.Release(ctx))
		var nilP *semaphore.Permits
		assert.NoError(t, nilP.Release(ctx), "nil-safe")

		info, err = sem.Inspect(ctx)
		require.NoError(t, err)
		assert.Zero(t, info.Used)
		s.RequireExpiring(t, prefix)
	})
}

// A large request is not starved: once it waits, smaller requests that
// would fit queue behind it.
func TestFIFOLargeNotStarved(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		opts := semaphore.Options{Prefix: prefix, Limit: 4}
		holderSem := newSem(t, s, "pool", opts)
		bigSem := newSem(t, s, "pool", opts)
		smallSem := newSem(t, s, "pool", opts)

		held, err := holderSem.TryAcquire(ctx, 3)
		require.NoError(t, err)
		got := acquireAsync(ctx, bigSem, 4)
		waitFor(t, "the large request to queue", func() bool {
			info, err := holderSem.Inspect(ctx)
			return err == nil && len(info.Waiters) == 1
		})
		// One permit is free, but the large request came first.
		_, err = smallSem.TryAcquire(ctx, 1)
		require.ErrorIs(t, err, semaphore.ErrNotAcquired)
		smallDone := acquireAsync(ctx, smallSem, 1)
		waitFor(t, "the small request to queue", func() bool {
			info, err := holderSem.Inspect(ctx)
			return err == nil && len(info.Waiters) == 2
		})
		select {
		case <-smallDone:
			t.Fatal("a later small request overtook the large one")
		case <-time.After(200 * time.Millisecond):
		}
		require.NoError(t, held.Release(ctx))
		big := (<-got).get(t)
		assert.Equal(t, int64(4), big.N())
		assert.Greater(t, big.Token(), held.Token())
		select {
		case <-smallDone:
			t.Fatal("the small request got a permit while the large one held all four")
		case <-time.After(100 * time.Millisecond):
		}
		require.NoError(t, big.Release(ctx))
		small := (<-smallDone).get(t)
		assert.Greater(t, small.Token(), big.Token())
		require.NoError(t, small.Release(ctx))
	})
}

// Holders that die (never release) free their permits when their leases
// end: all N become available again.
func TestDeadHoldersFreePermits(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		dying := newSem(t, s, "slots", semaphore.Options{Prefix: prefix, Limit: 3, TTL: 300 * time.Millisecond})
		for i := 0; i < 3; i++ {
			_, err := dying.TryAcquire(ctx, 1) // never released: the holder "dies"
			require.NoError(t, err)
		}
		live := newSem(t, s, "slots", semaphore.Options{Prefix: prefix, Limit: 3, TTL: 5 * time.Second, RetryInterval: 50 * time.Millisecond})
		_, err := live.TryAcquire(ctx, 1)
		require.ErrorIs(t, err, semaphore.ErrNotAcquired)
		start := time.Now()
		p, err := live.Acquire(ctx, 3)
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 5*time.Second)
		assert.Equal(t, int64(3), p.N())
		require.NoError(t, p.Release(ctx))
		info, err := live.Inspect(ctx)
		require.NoError(t, err)
		assert.Zero(t, info.Used)
		assert.Empty(t, info.Holders)
	})
}

// No lost wake-up: with every pub/sub notice lost, a waiter still gets
// freed permits by looking again within RetryInterval.
func TestNoLostWakeup(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		holder := newSem(t, s, "w", semaphore.Options{Prefix: prefix, Limit: 1, TTL: 10 * time.Second})
		waiter := newSemOn(t, mutedClient{s.NewClient(t)}, s, "w",
			semaphore.Options{Prefix: prefix, Limit: 1, TTL: 10 * time.Second, RetryInterval: 100 * time.Millisecond})
		held, err := holder.TryAcquire(ctx, 1)
		require.NoError(t, err)
		got := acquireAsync(ctx, waiter, 1)
		waitFor(t, "the waiter to queue", func() bool {
			info, err := holder.Inspect(ctx)
			return err == nil && len(info.Waiters) == 1
		})
		released := time.Now()
		require.NoError(t, held.Release(ctx))
		res := <-got
		p := res.get(t)
		require.NoError(t, p.Release(ctx))
		at := res.at
		// RetryInterval past the free permit, with a generous allowance
		// for a loaded machine.
		assert.Less(t, at.Sub(released), 3*time.Second)
	})
}

// A waiter that gives up is never granted: its place is given back, and
// permits handed to it meanwhile too.
func TestGiveUp(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		opts := semaphore.Options{Prefix: prefix, Limit: 2}
		a := newSem(t, s, "g", opts)
		b := newSem(t, s, "g", opts)
		held, err := a.TryAcquire(ctx, 2)
		require.NoError(t, err)
		wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err = b.Acquire(wctx, 1)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, semaphore.ErrNotAcquired)
		info, err := a.Inspect(ctx)
		require.NoError(t, err)
		assert.Empty(t, info.Waiters, "the place was given back")
		require.NoError(t, held.Release(ctx))
		info, err = a.Inspect(ctx)
		require.NoError(t, err)
		assert.Zero(t, info.Used, "nothing was handed to the waiter that gave up")
	})
}

func TestSetLimit(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		opts := semaphore.Options{Prefix: prefix, Limit: 2}
		a := newSem(t, s, "lim", opts)
		b := newSem(t, s, "lim", opts)
		p1, err := a.TryAcquire(ctx, 2)
		require.NoError(t, err)
		got := acquireAsync(ctx, b, 1)
		waitFor(t, "the waiter to queue", func() bool {
			info, err := a.Inspect(ctx)
			return err == nil && len(info.Waiters) == 1
		})
		prev, err := a.SetLimit(ctx, 3)
		require.NoError(t, err)
		assert.Zero(t, prev)
		p2 := (<-got).get(t) // granted inside SetLimit's script

		// Lowering the limit takes nothing back.
		prev, err = b.SetLimit(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, int64(3), prev)
		require.NoError(t, p1.Err())
		require.NoError(t, p1.Refresh(ctx))
		_, err = a.TryAcquire(ctx, 1)
		require.ErrorIs(t, err, semaphore.ErrNotAcquired)
		_, err = a.TryAcquire(ctx, 2)
		require.ErrorIs(t, err, semaphore.ErrTooMany, "the stored limit wins over Options.Limit")
		require.NoError(t, p1.Release(ctx))
		_, err = a.TryAcquire(ctx, 1)
		require.ErrorIs(t, err, semaphore.ErrNotAcquired, "p2 still holds the only permit")
		require.NoError(t, p2.Release(ctx))
		p3, err := a.TryAcquire(ctx, 1)
		require.NoError(t, err)
		require.NoError(t, p3.Release(ctx))
		info, err := a.Inspect(ctx)
		require.NoError(t, err)
		assert.True(t, info.Stored)
		assert.Equal(t, int64(1), info.Limit)
		s.RequireExpiring(t, prefix)
	})
}

func TestLeaseEndsAndRefresh(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		sem := newSem(t, s, "lease", semaphore.Options{Limit: 1, TTL: 500 * time.Millisecond})
		p, err := sem.TryAcquire(ctx, 1)
		require.NoError(t, err)
		require.NoError(t, p.Refresh(ctx))
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the lease did not end")
		}
		assert.ErrorIs(t, p.Err(), semaphore.ErrLost)
		assert.ErrorIs(t, p.Err(), fencing.ErrNotHolder)
		assert.ErrorIs(t, context.Cause(p.Context()), semaphore.ErrLost)
		assert.ErrorIs(t, p.Refresh(ctx), semaphore.ErrLost, "an ended lease is never renewed")
		assert.ErrorIs(t, p.Release(ctx), semaphore.ErrLost)

		// With the watchdog the lease outlives several TTLs (generous
		// enough for a loaded machine: it renews every TTL/3 and retries
		// every TTL/12).
		dog := newSem(t, s, "dog", semaphore.Options{Limit: 1, TTL: 600 * time.Millisecond, AutoRefresh: true})
		q, err := dog.TryAcquire(ctx, 1)
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		require.NoError(t, q.Err())
		require.NoError(t, q.Release(ctx))
	})
}

// The invariants under contention, with the race detector: never more
// than N permits held by live leases, FIFO hand-off keeps everyone
// progressing, and every permit is back at the end.
func TestHammer(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 60*time.Second)
		prefix := s.Prefix(t)
		const limit, workers, rounds = 4, 8, 6
		var inUse, maxInUse atomic.Int64
		var lastTok sync.Map
		var wg sync.WaitGroup
		sems := make([]*semaphore.Semaphore, 3)
		for i := range sems {
			sems[i] = newSem(t, s, "hammer", semaphore.Options{Prefix: prefix, Limit: limit, TTL: 5 * time.Second, RetryInterval: 50 * time.Millisecond})
		}
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem := sems[w%len(sems)]
				for r := 0; r < rounds; r++ {
					n := int64(1 + rand.IntN(3))
					p, err := sem.Acquire(ctx, n)
					if !assert.NoError(t, err) {
						return
					}
					if v, ok := lastTok.Load(w); ok {
						assert.Greater(t, p.Token(), v.(fencing.Token))
					}
					lastTok.Store(w, p.Token())
					cur := inUse.Add(n)
					for {
						m := maxInUse.Load()
						if cur <= m || maxInUse.CompareAndSwap(m, cur) {
							break
						}
					}
					time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
					assert.NoError(t, p.Err(), "a lease ended while held")
					inUse.Add(-n)
					assert.NoError(t, p.Release(ctx))
				}
			}()
		}
		// The server's own view, sampled while the workers run.
		stop := make(chan struct{})
		var serverMax atomic.Int64
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if info, err := sems[0].Inspect(ctx); err == nil && info.Used > serverMax.Load() {
					serverMax.Store(info.Used)
				}
			}
		}()
		wg.Wait()
		close(stop)
		<-sampled
		assert.LessOrEqual(t, serverMax.Load(), int64(limit), "permits held by live leases on the server")
		assert.LessOrEqual(t, maxInUse.Load(), int64(limit))
		assert.Positive(t, maxInUse.Load())
		info, err := sems[0].Inspect(ctx)
		require.NoError(t, err)
		assert.Zero(t, info.Used, "every permit is back")
		all, err := sems[0].TryAcquire(ctx, limit)
		require.NoError(t, err)
		require.NoError(t, all.Release(ctx))
	})
}

func TestOptionsAndNew(t *testing.T) {
	_, err := semaphore.New(nil, "x", semaphore.Options{})
	assert.ErrorIs(t, err, semaphore.ErrNilClient)
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	_, err = semaphore.New(c, "a{b", semaphore.Options{})
	assert.ErrorIs(t, err, semaphore.ErrInvalidName)
	for _, o := range []semaphore.Options{
		{Limit: -1}, {TTL: time.Millisecond}, {TTL: time.Second, RefreshInterval: time.Second},
		{RetryInterval: time.Microsecond}, {CallTimeout: -1}, {Prefix: "a:b"}, {Owner: "a b"},
		{MinReplicas: -1}, {ReplicaTimeout: -1}, {ReplicaTimeout: time.Microsecond},
	} {
		_, err := semaphore.New(c, "x", o)
		assert.ErrorIs(t, err, semaphore.ErrInvalidOptions, "%+v", o)
	}
	sem, err := semaphore.New(c, "x", semaphore.Options{})
	require.NoError(t, err)
	require.NoError(t, sem.Close())
	require.NoError(t, sem.Close())
	_, err = sem.TryAcquire(context.Background(), 1)
	assert.True(t, errors.Is(err, semaphore.ErrClosed))
}

// acquired is the outcome of an Acquire run by acquireAsync.
type acquired struct {
	p   *semaphore.Permits
	err error
	at  time.Time
}

func (a acquired) get(t *testing.T) *semaphore.Permits {
	t.Helper()
	require.NoError(t, a.err)
	return a.p
}

// acquireAsync runs Acquire on its own goroutine; the outcome arrives on
// the channel (the test goroutine asserts on it).
func acquireAsync(ctx context.Context, sem *semaphore.Semaphore, n int64) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		p, err := sem.Acquire(ctx, n)
		ch <- acquired{p, err, time.Now()}
	}()
	return ch
}
