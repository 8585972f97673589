package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// TestHandOffWakesWaiter: a waiter blocked in Acquire gets the lock after
// Release by the hand-off alone. RetryInterval and TTL are far longer than
// the test's deadline, so polling or expiry cannot be what wakes it.
func TestHandOffWakesWaiter(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		prefix := s.Prefix(t)
		opts := lock.Options{Prefix: prefix, TTL: time.Minute, RetryInterval: time.Minute}
		holderL := newLocker(t, s, opts)
		for _, tc := range []struct {
			name   string
			waiter *lock.Locker
		}{
			{"other locker", newLocker(t, s, opts)}, // woken by pub/sub
			{"same locker", holderL},                // handed over in memory
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := ctxT(t, 10*time.Second)
				held, err := holderL.TryAcquire(ctx, "h")
				require.NoError(t, err)
				got := make(chan *lock.Lock, 1)
				go func() {
					lk, err := tc.waiter.Acquire(ctx, "h")
					if err != nil {
						t.Errorf("Acquire: %v", err)
					}
					got <- lk
				}()
				// Wait until the waiter is queued.
				require.Eventually(t, func() bool {
					info, err := holderL.Inspect(ctx, "h")
					return err == nil && info.Waiters == 1
				}, 5*time.Second, time.Millisecond)
				time.Sleep(20 * time.Millisecond) // let it subscribe, if it will
				require.NoError(t, held.Release(ctx))
				lk := <-got
				require.NotNil(t, lk)
				assert.Greater(t, lk.Token(), held.Token())
				assert.NoError(t, lk.Err())
				info, err := holderL.Inspect(ctx, "h")
				require.NoError(t, err)
				assert.Equal(t, lk.Token(), info.Token)
				assert.Zero(t, info.Waiters)
				require.NoError(t, lk.Release(ctx))
			})
		}
	})
}

// TestWaiterWithoutNotice: the lock becomes free without any notice (its
// key deleted by hand, as when it expires or Redis loses it). The waiter
// must find out by its own polling, not wait forever.
func TestWaiterWithoutNotice(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Minute})
		b := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Minute, RetryInterval: 20 * time.Millisecond})
		held, err := a.TryAcquire(ctx, "q")
		require.NoError(t, err)
		got := make(chan *lock.Lock, 1)
		go func() {
			lk, err := b.Acquire(ctx, "q")
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
			got <- lk
		}()
		time.Sleep(50 * time.Millisecond)
		del := s.Do(t, "DEL", keys.ForLock(prefix, "q").Lock)
		require.NoError(t, del.Error())
		lk := <-got
		require.NotNil(t, lk)
		assert.Greater(t, lk.Token(), held.Token())
		require.NoError(t, lk.Release(ctx))
		assert.ErrorIs(t, held.Release(ctx), lock.ErrLockLost)
	})
}

// TestLostWakeup: many Lockers, each on its own client, hand one key to
// each other thousands of times with zero hold time. Every acquisition must
// complete: a hand-off that never reaches its waiter would leave it
// hanging. The longest wait is logged (on an idle machine it stays below
// a TTL); the bound is loose on purpose, see below.
func TestLostWakeup(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		const lockers, perLocker = 8, 2
		total := 2000
		if testing.Short() || s.Kind == redistest.Cluster {
			total = 800
		}
		const ttl = time.Second
		ctx := ctxT(t, 2*time.Minute)
		prefix := s.Prefix(t)
		var (
			mu      sync.Mutex
			done    int
			maxWait time.Duration
		)
		var wg sync.WaitGroup
		for i := range lockers {
			l := newLocker(t, s, lock.Options{Prefix: prefix, TTL: ttl, Owner: fmt.Sprintf("l%d", i)})
			for range perLocker {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						if done >= total {
							mu.Unlock()
							return
						}
						mu.Unlock()
						start := time.Now()
						lk, err := l.Acquire(ctx, "hot")
						if err != nil {
							t.Errorf("Acquire: %v", err)
							return
						}
						wait := time.Since(start)
						mu.Lock()
						done++
						maxWait = max(maxWait, wait)
						mu.Unlock()
						// A holder starved of CPU past its TTL (a loaded
						// -race run) finds its lease lost: not a bug here.
						if err := lk.Release(ctx); err != nil && !errors.Is(err, lock.ErrLockLost) {
							t.Errorf("Release: %v", err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		t.Logf("%d hand-offs, longest wait %v", done, maxWait)
		// A missed hand-off costs a waiter at most the holder's remaining
		// lease (it re-polls then), so waits stay around a TTL on an idle
		// machine; CPU starvation stretches them. The bound only catches a
		// waiter that hangs (it would wait for its context: 2 minutes); it
		// is not a latency assertion.
		assert.Less(t, maxWait, 30*ttl, "a waiter hung")
	})
}

func TestAcquireGivesUpCleanly(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: time.Minute})
		b := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Minute})
		held, err := a.TryAcquire(ctx, "g")
		require.NoError(t, err)

		short, cancel := context.WithTimeout(ctx, 2*time.Second) // long enough for a reply under -race on 2 cores
		defer cancel()
		_, err = b.Acquire(short, "g")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, lock.ErrNotAcquired)
		var na *lock.NotAcquiredError
		require.ErrorAs(t, err, &na)
		assert.Equal(t, "a", na.Owner)

		// It left the queue: the holder's release frees the lock.
		info, err := a.Inspect(ctx, "g")
		require.NoError(t, err)
		assert.Zero(t, info.Waiters)
		require.NoError(t, held.Release(ctx))
		info, err = a.Inspect(ctx, "g")
		require.NoError(t, err)
		assert.False(t, info.Held, "released lock was handed to a waiter that gave up")

		// Close wakes pending waiters with ErrClosed.
		held, err = a.TryAcquire(ctx, "g")
		require.NoError(t, err)
		c := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Minute})
		errCh := make(chan error, 1)
		go func() {
			_, err := c.Acquire(ctx, "g")
			errCh <- err
		}()
		require.Eventually(t, func() bool {
			info, err := a.Inspect(ctx, "g")
			return err == nil && info.Waiters == 1
		}, 5*time.Second, time.Millisecond)
		require.NoError(t, c.Close())
		require.ErrorIs(t, <-errCh, lock.ErrClosed)
		_, err = c.TryAcquire(ctx, "g")
		require.ErrorIs(t, err, lock.ErrClosed)
		_, err = c.Acquire(ctx, "g")
		require.ErrorIs(t, err, lock.ErrClosed)
		require.NoError(t, held.Release(ctx))
		info, err = a.Inspect(ctx, "g")
		require.NoError(t, err)
		assert.False(t, info.Held)
		assert.Zero(t, info.Waiters)
	})
}

// TestAcquireFIFO: waiters get the lock in the order they queued.
func TestAcquireFIFO(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		holder := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Minute})
		held, err := holder.TryAcquire(ctx, "fifo")
		require.NoError(t, err)
		const n = 4
		order := make(chan int, n)
		var wg sync.WaitGroup
		defer wg.Wait() // the Releases finish before the Lockers close
		for i := range n {
			// A waiter that stops polling for 4×RetryInterval loses its
			// place: a long interval keeps a CPU-starved -race run from
			// reordering the queue (hand-offs wake the waiters anyway).
			l := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Minute, RetryInterval: 2 * time.Second})
			wg.Add(1)
			go func() {
				defer wg.Done()
				lk, err := l.Acquire(ctx, "fifo")
				if err != nil {
					t.Errorf("Acquire: %v", err)
					order <- -1
					return
				}
				order <- i
				if err := lk.Release(ctx); err != nil {
					t.Errorf("Release: %v", err)
				}
			}()
			require.Eventually(t, func() bool {
				info, err := holder.Inspect(ctx, "fifo")
				return err == nil && info.Waiters == int64(i+1)
			}, 5*time.Second, time.Millisecond)
		}
		require.NoError(t, held.Release(ctx))
		for want := range n {
			assert.Equal(t, want, <-order)
		}
	})
}
