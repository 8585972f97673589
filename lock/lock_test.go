package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// snapshot returns the keys of lock name with their types and values, to
// compare the state before and after a failed call.
func snapshot(t *testing.T, s *redistest.Server, prefix, name string) map[string]string {
	t.Helper()
	k := keys.ForLock(prefix, name)
	return s.Snapshot(t, k.Lock, k.Fence, k.Queue, k.QueueInfo)
}

func TestTryAcquireHeldByOther(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-a", TTL: 5 * time.Second})
		b := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-b", TTL: 5 * time.Second})

		lk, err := a.TryAcquire(ctx, "session-1")
		require.NoError(t, err)
		assert.True(t, lk.Token().Valid())
		assert.Equal(t, "exec-a", lk.Owner())
		assert.Equal(t, "session-1", lk.Name())
		assert.NoError(t, lk.Err())
		assert.InDelta(t, float64(5*time.Second), float64(lk.TTL()), float64(time.Second))
		assert.WithinDuration(t, time.Now(), lk.AcquiredAt(), 5*time.Second)

		_, err = b.TryAcquire(ctx, "session-1")
		require.ErrorIs(t, err, lock.ErrNotAcquired)
		var na *lock.NotAcquiredError
		require.ErrorAs(t, err, &na)
		assert.Equal(t, "session-1", na.Name)
		assert.Equal(t, "exec-a", na.Owner)
		assert.Equal(t, lk.Token(), na.Token)
		assert.Greater(t, na.TTL, 3*time.Second)
		assert.LessOrEqual(t, na.TTL, 5*time.Second)

		info, err := b.Inspect(ctx, "session-1")
		require.NoError(t, err)
		assert.True(t, info.Held)
		assert.Equal(t, "exec-a", info.Owner)
		assert.Equal(t, lk.Token(), info.Token)
		assert.Equal(t, lk.Token(), info.Fence)
		assert.Equal(t, lk.AcquiredAt(), info.AcquiredAt)
		assert.Greater(t, info.TTL, 3*time.Second)

		// A name is a name: another one is free.
		other, err := b.TryAcquire(ctx, "session-2")
		require.NoError(t, err)
		require.NoError(t, other.Release(ctx))

		require.NoError(t, lk.Release(ctx))
		assert.ErrorIs(t, lk.Err(), lock.ErrReleased)
		info, err = b.Inspect(ctx, "session-1")
		require.NoError(t, err)
		assert.False(t, info.Held)
		assert.Equal(t, lk.Token(), info.Fence, "the fence outlives the lease")

		next, err := b.TryAcquire(ctx, "session-1")
		require.NoError(t, err)
		assert.Greater(t, next.Token(), lk.Token())
		require.NoError(t, next.Release(ctx))
	})
}

// TestHammer runs many Lockers, each on its own client, acquiring a few
// names over and over. At most one of them may hold a name at a time, and
// every token granted for a name must be larger than every token granted
// for it before.
func TestHammer(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		const lockers, names = 6, 3
		iters := 60
		if testing.Short() {
			iters = 15
		}
		ctx := ctxT(t, 60*time.Second)
		prefix := s.Prefix(t)
		type state struct {
			mu      sync.Mutex
			holders atomic.Int32
			last    fencing.Token
			grants  int
		}
		var st [names]state
		var wg sync.WaitGroup
		for i := range lockers {
			l := newLocker(t, s, lock.Options{Prefix: prefix, TTL: 5 * time.Second, Owner: fmt.Sprintf("w%d", i)})
			for g := range 2 { // two goroutines share each Locker
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := range iters {
						idx := (i + g + n) % names
						name := fmt.Sprintf("n%d", idx)
						var lk *lock.Lock
						var err error
						if n%3 == 0 {
							lk, err = l.TryAcquire(ctx, name)
							if errors.Is(err, lock.ErrNotAcquired) {
								continue
							}
						} else {
							lk, err = l.Acquire(ctx, name)
						}
						if err != nil {
							t.Errorf("acquire %s: %v", name, err)
							return
						}
						s := &st[idx]
						if h := s.holders.Add(1); h != 1 {
							t.Errorf("%s: %d holders at once", name, h)
						}
						s.mu.Lock()
						if lk.Token() <= s.last {
							t.Errorf("%s: token %d granted after %d", name, lk.Token(), s.last)
						}
						s.last = lk.Token()
						s.grants++
						s.mu.Unlock()
						s.holders.Add(-1)
						if err := lk.Release(ctx); err != nil {
							t.Errorf("release %s: %v", name, err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		total := 0
		for i := range st {
			total += st[i].grants
		}
		t.Logf("%d grants", total)
		assert.Greater(t, total, lockers*2*iters/2)
	})
}

// TestTokenMonotonicWithoutFence deletes the fence key between acquisitions:
// the next token comes from the server clock and is still larger.
func TestTokenMonotonicWithoutFence(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		prefix := s.Prefix(t)
		l := newLocker(t, s, lock.Options{Prefix: prefix, TTL: time.Second})
		k := keys.ForLock(prefix, "m")
		var last fencing.Token
		for i := range 5 {
			lk, err := l.TryAcquire(ctx, "m")
			require.NoError(t, err)
			require.Greater(t, lk.Token(), last, "round %d", i)
			last = lk.Token()
			require.NoError(t, lk.Release(ctx))
			del := s.Do(t, "DEL", k.Fence)
			require.NoError(t, del.Error())
		}
		// A token is never below the server clock in µs.
		now := time.Now().UnixMicro()
		assert.Greater(t, int64(last), now-int64(time.Minute/time.Microsecond))
	})
}

func TestTokenMonotonicAfterFlushAll(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	ctx := ctxT(t, 10*time.Second)
	l := newLocker(t, s, lock.Options{TTL: time.Minute})
	held, err := l.TryAcquire(ctx, "f")
	require.NoError(t, err)
	s.Flush(t) // the lock, its fence, everything: as after a restart without persistence
	lk, err := l.TryAcquire(ctx, "f")
	require.NoError(t, err, "the lock is gone with the data")
	assert.Greater(t, lk.Token(), held.Token())
	require.NoError(t, lk.Release(ctx))
	// The old holder finds out at its next renewal and cannot release the new lock.
	assert.ErrorIs(t, held.Refresh(ctx), lock.ErrLockLost)
}

func TestLeaseExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		prefix := s.Prefix(t)
		const ttl = 100 * time.Millisecond
		var lostCalls atomic.Int32
		a := newLocker(t, s, lock.Options{Prefix: prefix, TTL: ttl, OnLost: func(*lock.Lock, error) { lostCalls.Add(1) }})
		b := newLocker(t, s, lock.Options{Prefix: prefix, TTL: 10 * time.Second})

		lk, err := a.TryAcquire(ctx, "e")
		require.NoError(t, err)
		lkCtx := lk.Context()
		select {
		case <-lk.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after the lease ran out")
		}
		<-lkCtx.Done()
		var lost *lock.LostError
		require.ErrorAs(t, lk.Err(), &lost)
		assert.Equal(t, lock.CauseExpired, lost.Cause)
		assert.ErrorIs(t, lk.Err(), fencing.ErrNotHolder)
		assert.ErrorIs(t, context.Cause(lkCtx), lock.ErrLockLost)
		assert.Zero(t, lk.TTL())
		require.Eventually(t, func() bool { return lostCalls.Load() == 1 }, 5*time.Second, time.Millisecond)

		// Let the server expire it too, then someone else takes it.
		time.Sleep(ttl / 2)
		s.FastForward(ttl)
		other, err := b.Acquire(ctx, "e")
		require.NoError(t, err)
		assert.Greater(t, other.Token(), lk.Token())

		// The expired holder gets ErrLockLost from Refresh and Release and
		// touches nothing.
		assert.ErrorIs(t, lk.Refresh(ctx), lock.ErrLockLost)
		assert.ErrorIs(t, lk.Release(ctx), lock.ErrLockLost)
		assert.ErrorIs(t, lk.Release(ctx), fencing.ErrNotHolder)
		info, err := b.Inspect(ctx, "e")
		require.NoError(t, err)
		assert.True(t, info.Held)
		assert.Equal(t, other.Token(), info.Token)
		assert.Greater(t, info.TTL, 5*time.Second)
		assert.Equal(t, int32(1), lostCalls.Load())
		require.NoError(t, other.Release(ctx))
	})
}

// TestRefreshNeverResurrects: a holder whose record is gone from Redis (or
// taken over) learns it from Refresh, which does not bring the lock back.
func TestRefreshNeverResurrects(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: 10 * time.Second})
		b := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "b", TTL: 10 * time.Second})
		k := keys.ForLock(prefix, "r")

		// Gone: the record expired on the server (deleted here).
		lk, err := a.TryAcquire(ctx, "r")
		require.NoError(t, err)
		del := s.Do(t, "DEL", k.Lock)
		require.NoError(t, del.Error())
		err = lk.Refresh(ctx)
		var lost *lock.LostError
		require.ErrorAs(t, err, &lost)
		assert.Equal(t, lock.CauseGone, lost.Cause)
		ex := s.Do(t, "EXISTS", k.Lock)
		n, _ := ex.AsInt64()
		assert.Zero(t, n, "Refresh brought the lock back")
		assert.ErrorIs(t, lk.Refresh(ctx), lock.ErrLockLost, "a lost lock stays lost")
		<-lk.Done()

		// Taken: someone else holds it now.
		lk, err = a.TryAcquire(ctx, "r")
		require.NoError(t, err)
		del = s.Do(t, "DEL", k.Lock)
		require.NoError(t, del.Error())
		taker, err := b.TryAcquire(ctx, "r")
		require.NoError(t, err)
		err = lk.Refresh(ctx)
		require.ErrorAs(t, err, &lost)
		assert.Equal(t, lock.CauseTaken, lost.Cause)
		assert.Equal(t, "b", lost.Holder)
		assert.Equal(t, taker.Token(), lost.HolderToken)
		assert.ErrorIs(t, lk.Release(ctx), lock.ErrLockLost)
		info, err := b.Inspect(ctx, "r")
		require.NoError(t, err)
		assert.Equal(t, taker.Token(), info.Token, "the loser's release touched the new holder")
		require.NoError(t, taker.Release(ctx))
	})
}

func TestRefreshExtends(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 10*time.Second)
		l := newLocker(t, s, lock.Options{TTL: 400 * time.Millisecond})
		lk, err := l.TryAcquire(ctx, "x")
		require.NoError(t, err)
		d0 := lk.Deadline()
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, lk.Refresh(ctx))
		assert.True(t, lk.Deadline().After(d0))
		info, err := l.Inspect(ctx, "x")
		require.NoError(t, err)
		assert.Equal(t, lk.Token(), info.Token, "refresh keeps the token")
		assert.Greater(t, info.TTL, 300*time.Millisecond)
		require.NoError(t, lk.Release(ctx))
		assert.ErrorIs(t, lk.Refresh(ctx), lock.ErrReleased)
	})
}

func TestAutoRefresh(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		lostCh := make(chan error, 1)
		l := newLocker(t, s, lock.Options{Prefix: prefix, TTL: 900 * time.Millisecond, AutoRefresh: true,
			OnLost: func(_ *lock.Lock, err error) { lostCh <- err }})
		lk, err := l.TryAcquire(ctx, "w")
		require.NoError(t, err)
		// Held across several TTLs by the watchdog alone.
		for range 4 {
			time.Sleep(400 * time.Millisecond)
			s.FastForward(400 * time.Millisecond)
			require.NoError(t, lk.Err())
		}
		info, err := l.Inspect(ctx, "w")
		require.NoError(t, err)
		assert.True(t, info.Held)
		assert.Equal(t, lk.Token(), info.Token)

		// Taken over behind its back: the watchdog notices and ends the lease.
		k := keys.ForLock(prefix, "w")
		del := s.Do(t, "DEL", k.Lock)
		require.NoError(t, del.Error())
		other := newLocker(t, s, lock.Options{Prefix: prefix, TTL: 10 * time.Second})
		taker, err := other.TryAcquire(ctx, "w")
		require.NoError(t, err)
		select {
		case err := <-lostCh:
			assert.ErrorIs(t, err, lock.ErrLockLost)
		case <-time.After(5 * time.Second):
			t.Fatal("OnLost not called")
		}
		<-lk.Done()
		assert.ErrorIs(t, context.Cause(lk.Context()), lock.ErrLockLost)
		info, err = l.Inspect(ctx, "w")
		require.NoError(t, err)
		assert.Equal(t, taker.Token(), info.Token)
		require.NoError(t, taker.Release(ctx))
		assert.ErrorIs(t, lk.Release(ctx), lock.ErrLockLost)
	})
}

func TestWithContext(t *testing.T) {
	s := redistest.NewMini(t)
	ctx := t.Context()
	l := newLocker(t, s, lock.Options{TTL: time.Minute})
	lk, err := l.TryAcquire(ctx, "c")
	require.NoError(t, err)

	parent, cancelParent := context.WithCancel(ctx)
	work, done := lk.WithContext(parent)
	cancelParent()
	<-work.Done()
	assert.ErrorIs(t, context.Cause(work), context.Canceled, "the parent ended first")
	done()

	work, done = lk.WithContext(ctx)
	defer done()
	require.NoError(t, lk.Release(ctx))
	<-work.Done()
	assert.ErrorIs(t, context.Cause(work), lock.ErrReleased, "the lease ended first")
}
