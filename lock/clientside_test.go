package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/scripts/lua"
)

// The lock's client side under load (issue 18): each test injects the
// delay that load would cause, deterministically, through faultClient.

// fault changes one script call of a faultClient.
type fault struct {
	before time.Duration // the command reaches Redis this much later
	after  time.Duration // its reply reaches the caller this much later
	fail   bool          // the command fails without reaching Redis
}

// faultClient is a rueidis.Client whose script calls can be delayed or
// failed by script name, and whose pub/sub messages can be delayed. A
// delayed call behaves like a command in flight in rueidis: when the
// caller's context ends first the caller gets the context's error, and the
// command still reaches Redis.
type faultClient struct {
	rueidis.Client
	mu     sync.Mutex
	rule   func(script string) fault
	notice time.Duration
	wg     sync.WaitGroup
	failed atomic.Int64 // calls failed by a fault{fail: true}
}

var errInjected = errors.New("injected: connection reset")

var scriptNames = func() map[string]string {
	m := map[string]string{}
	for _, s := range lua.All() {
		m[s.SHA1()] = s.Name()
		m[s.Source()] = s.Name()
	}
	return m
}()

func newFaultClient(t *testing.T, c rueidis.Client) *faultClient {
	fc := &faultClient{Client: c}
	t.Cleanup(fc.wg.Wait) // before the client is closed (cleanups run last first)
	return fc
}

func (c *faultClient) set(rule func(script string) fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rule = rule
}

// setFailing sets a rule that fails calls and returns once a call has
// failed by it: a call that passed the old rule just before (a look whose
// goroutine was descheduled between the check and the send, seen under
// CI load) has then been answered, since a waiter looks one look at a
// time, and every later call meets the new rule.
func (c *faultClient) setFailing(t *testing.T, rule func(script string) fault) {
	t.Helper()
	n := c.failed.Load()
	c.set(rule)
	require.Eventually(t, func() bool { return c.failed.Load() > n }, 10*time.Second, time.Millisecond,
		"no call failed by the new rule")
}

func (c *faultClient) delayNotices(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notice = d
}

func (c *faultClient) faultOf(cmd rueidis.Completed) fault {
	c.mu.Lock()
	rule := c.rule
	c.mu.Unlock()
	args := cmd.Commands()
	if rule == nil || len(args) < 2 || (args[0] != "EVALSHA" && args[0] != "EVAL") {
		return fault{}
	}
	return rule(scriptNames[args[1]])
}

func (c *faultClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	f := c.faultOf(cmd)
	switch {
	case f.fail:
		c.failed.Add(1)
		return rueidis.NewErrorResult(errInjected)
	case f.before == 0 && f.after == 0:
		return c.Client.Do(ctx, cmd)
	}
	done := make(chan rueidis.RedisResult, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		time.Sleep(f.before)
		res := c.Client.Do(context.Background(), cmd)
		time.Sleep(f.after)
		done <- res
	}()
	select {
	case res := <-done:
		return res
	case <-ctx.Done():
		return rueidis.NewErrorResult(ctx.Err())
	}
}

func (c *faultClient) Receive(ctx context.Context, sub rueidis.Completed, fn func(rueidis.PubSubMessage)) error {
	return c.Client.Receive(ctx, sub, func(m rueidis.PubSubMessage) {
		c.mu.Lock()
		d := c.notice
		c.mu.Unlock()
		if d == 0 {
			fn(m)
			return
		}
		c.wg.Add(1)
		time.AfterFunc(d, func() { defer c.wg.Done(); fn(m) })
	})
}

func only(name string, f fault) func(string) fault {
	return func(script string) fault {
		if script == name {
			return f
		}
		return fault{}
	}
}

// waitQueued waits until name has n wait queue entries.
func waitQueued(t *testing.T, l *lock.Locker, name string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		info, err := l.Inspect(context.Background(), name)
		return err == nil && info.Waiters == n
	}, 10*time.Second, time.Millisecond, "waiting for %d queued on %s", n, name)
}

// TestGiveUpWhileLookInFlight: a waiter whose context ends while a look
// at the lock is still on its way to Redis must not be put back in the
// queue by that look after it gave up its place (issue 18 §1). Before
// the fix the give-up overtook the look and the next release handed the
// lock to the departed waiter.
func TestGiveUpWhileLookInFlight(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 30*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: time.Minute})
		held, err := a.TryAcquire(ctx, "g")
		require.NoError(t, err)
		fc := newFaultClient(t, s.NewClient(t))
		b := newLockerOn(t, fc, s, lock.Options{Prefix: prefix, Owner: "b", TTL: time.Minute, RetryInterval: 20 * time.Millisecond})
		_, err = b.TryAcquire(ctx, "g") // caches the scripts
		require.ErrorIs(t, err, lock.ErrNotAcquired)

		fc.set(only("acquire.lua", fault{before: 300 * time.Millisecond}))
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err = b.Acquire(short, "g")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, lock.ErrNotAcquired, "the last NotAcquiredError is kept")
		var na *lock.NotAcquiredError
		require.ErrorAs(t, err, &na)
		assert.Equal(t, "a", na.Owner)
		fc.set(nil)
		fc.wg.Wait() // every look has landed

		info, err := a.Inspect(ctx, "g")
		require.NoError(t, err)
		assert.Zero(t, info.Waiters, "a look put the waiter back in the queue after it gave up")
		require.NoError(t, held.Release(ctx))
		info, err = a.Inspect(ctx, "g")
		require.NoError(t, err)
		assert.False(t, info.Held, "the lock went to a waiter that gave up (owner %s)", info.Owner)

		// TryAcquire: the attempt's outcome is waited for, and a grant
		// that comes after the caller gave up is given back.
		fc.set(only("acquire.lua", fault{before: 300 * time.Millisecond}))
		short, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
		lk, err := b.TryAcquire(short, "g")
		cancel()
		assert.Nil(t, lk)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		fc.set(nil)
		fc.wg.Wait()
		info, err = a.Inspect(ctx, "g")
		require.NoError(t, err)
		assert.False(t, info.Held, "TryAcquire's late grant was kept by nobody (owner %s)", info.Owner)
	})
}

// TestLeaseNotCountedFromFailedLook: a waiter handed the lock by a notice
// counts its lease from a look that Redis answered before the grant, never
// from a later look that failed (issue 18 §2): its lease never ends later
// than the server's.
func TestLeaseNotCountedFromFailedLook(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 30*time.Second)
		prefix := s.Prefix(t)
		const ttl = 2 * time.Second
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: ttl})
		held, err := a.TryAcquire(ctx, "f")
		require.NoError(t, err)
		fc := newFaultClient(t, s.NewClient(t))
		b := newLockerOn(t, fc, s, lock.Options{Prefix: prefix, Owner: "b", TTL: ttl, RetryInterval: 40 * time.Millisecond})
		got := make(chan *lock.Lock, 1)
		go func() {
			lk, err := b.Acquire(ctx, "f")
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
			got <- lk
		}()
		waitQueued(t, a, "f", 1)
		time.Sleep(100 * time.Millisecond) // subscribed, several answered looks

		// From now on every look fails and notices arrive 400 ms late.
		fc.setFailing(t, only("acquire.lua", fault{fail: true}))
		fc.delayNotices(400 * time.Millisecond)
		require.NoError(t, held.Release(ctx))
		released := time.Now() // the grant to b happened before this
		lk := <-got
		require.NotNil(t, lk)
		fc.set(nil)
		assert.False(t, lk.Deadline().After(released.Add(ttl)),
			"b believes its lease ends %v after the latest possible end on the server", lk.Deadline().Sub(released.Add(ttl)))
		require.NoError(t, lk.Release(ctx))
	})
}

// TestReleaseRacingWatchdog: a renewal that runs while Release is in
// flight sees the lock gone; that must not count as a loss when the
// release succeeds (issue 18 §3).
func TestReleaseRacingWatchdog(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 30*time.Second)
		var lost atomic.Int32
		fc := newFaultClient(t, s.NewClient(t))
		l := newLockerOn(t, fc, s, lock.Options{Owner: "w", TTL: 600 * time.Millisecond, AutoRefresh: true,
			RefreshInterval: 20 * time.Millisecond, OnLost: func(*lock.Lock, error) { lost.Add(1) }})
		lk, err := l.TryAcquire(ctx, "r")
		require.NoError(t, err)
		time.Sleep(60 * time.Millisecond) // renewals run
		fc.set(only("release.lua", fault{after: 200 * time.Millisecond}))
		require.NoError(t, lk.Release(ctx))
		fc.set(nil)
		assert.ErrorIs(t, lk.Err(), lock.ErrReleased)
		time.Sleep(100 * time.Millisecond)
		assert.Zero(t, lost.Load(), "OnLost called after a successful Release")
	})
}

// TestLateGrantNeverReturnedExpired: a grant whose lease has run out by
// the time it reaches the caller is not returned as a Lock (issue 12 §6,
// issue 18 §4: with AutoRefresh the watchdog of such a lock raced the
// timer under -race).
func TestLateGrantNeverReturnedExpired(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 30*time.Second)
		prefix := s.Prefix(t)
		fc := newFaultClient(t, s.NewClient(t))
		l := newLockerOn(t, fc, s, lock.Options{Prefix: prefix, Owner: "p", TTL: 100 * time.Millisecond, AutoRefresh: true, CallTimeout: 5 * time.Second})
		probe := newLocker(t, s, lock.Options{Prefix: prefix})

		// TryAcquire: the reply comes 300 ms after the grant of 100 ms.
		fc.set(only("acquire.lua", fault{after: 300 * time.Millisecond}))
		lk, err := l.TryAcquire(ctx, "x")
		fc.set(nil)
		assert.Nil(t, lk)
		require.ErrorIs(t, err, lock.ErrLockLost)
		var le *lock.LostError
		require.ErrorAs(t, err, &le)
		assert.Equal(t, lock.CauseExpired, le.Cause)

		// Acquire: a notice that arrives after the lease it announces.
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: time.Minute})
		held, err := a.TryAcquire(ctx, "y")
		require.NoError(t, err)
		w := newLockerOn(t, fc, s, lock.Options{Prefix: prefix, Owner: "w", TTL: 150 * time.Millisecond, RetryInterval: time.Minute})
		got := make(chan *lock.Lock, 1)
		go func() {
			lk, err := w.Acquire(ctx, "y")
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
			got <- lk
		}()
		waitQueued(t, a, "y", 1)
		time.Sleep(100 * time.Millisecond) // subscribed
		fc.delayNotices(400 * time.Millisecond)
		require.NoError(t, held.Release(ctx))
		lk = <-got
		require.NotNil(t, lk)
		require.NoError(t, lk.Err(), "Acquire returned a lease that was already over")
		info, err := probe.Inspect(ctx, "y")
		require.NoError(t, err)
		assert.Equal(t, lk.Token(), info.Token, "the Lock returned is the one Redis holds")
		_ = lk.Release(ctx)
	})
}

// TestCloseWaitsForGiveUps: Close returns only after every pending Acquire
// gave up its place, so a client closed right after cannot strand a lock
// handed to a waiter that is gone (issue 18 §5).
func TestCloseWaitsForGiveUps(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 30*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: time.Minute})
		held, err := a.TryAcquire(ctx, "c")
		require.NoError(t, err)
		fc := newFaultClient(t, s.NewClient(t))
		c, err := lock.New(fc, lock.Options{Prefix: prefix, Owner: "c", TTL: time.Minute})
		require.NoError(t, err)
		errs := make(chan error, 3)
		for range 3 {
			go func() {
				_, err := c.Acquire(ctx, "c")
				errs <- err
			}()
		}
		waitQueued(t, a, "c", 3)
		fc.set(only("release.lua", fault{after: 200 * time.Millisecond}))
		require.NoError(t, c.Close())
		info, err := a.Inspect(ctx, "c") // at once: the client may be closed now
		require.NoError(t, err)
		assert.Zero(t, info.Waiters, "Close returned before the waiters gave up their places")
		fc.set(nil)
		for range 3 {
			require.ErrorIs(t, <-errs, lock.ErrClosed)
		}
		require.NoError(t, held.Release(ctx))
	})
}

// TestGiveUpStress gives up hundreds of waits with deadlines of 0-3 ms
// while the holder releases and takes the lock again, on unmodified
// clients. No grant may go to a waiter that gave up: at the end the lock
// is free and its queue empty.
func TestGiveUpStress(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 120*time.Second)
		prefix := s.Prefix(t)
		const lockers, perLocker = 4, 100
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: time.Minute})
		var ls []*lock.Locker
		for i := range lockers {
			ls = append(ls, newLocker(t, s, lock.Options{Prefix: prefix, Owner: fmt.Sprintf("w%d", i), TTL: time.Minute, RetryInterval: 5 * time.Millisecond}))
		}
		stop := make(chan struct{})
		holderDone := make(chan error, 1)
		go func() { // the holder lets go and takes the lock back
			var err error
			defer func() { holderDone <- err }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var lk *lock.Lock
				lk, err = a.Acquire(ctx, "s")
				if err != nil {
					return
				}
				time.Sleep(time.Millisecond)
				if err = lk.Release(ctx); err != nil {
					return
				}
			}
		}()
		var wg sync.WaitGroup
		var got, gaveUp atomic.Int32
		for i, l := range ls {
			wg.Go(func() {
				for n := range perLocker {
					d := time.Duration((i*perLocker+n)%4) * time.Millisecond
					short, cancel := context.WithTimeout(ctx, d)
					lk, err := l.Acquire(short, "s")
					cancel()
					switch {
					case err == nil:
						got.Add(1)
						if err := lk.Release(ctx); err != nil && !errors.Is(err, lock.ErrLockLost) {
							t.Errorf("release: %v", err)
						}
					case errors.Is(err, context.DeadlineExceeded):
						gaveUp.Add(1)
					default:
						t.Errorf("Acquire: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		require.NoError(t, <-holderDone)
		t.Logf("%d waits given up, %d granted", gaveUp.Load(), got.Load())
		info, err := a.Inspect(ctx, "s")
		require.NoError(t, err)
		assert.False(t, info.Held, "lock held by %s after every caller returned", info.Owner)
		assert.Zero(t, info.Waiters, "queue entries left by waiters that gave up")
		if info.Held || info.Waiters != 0 {
			t.Logf("state: %+v", info)
		}
	})
}

// TestLateNoticeAfterNewerHolder: a hand-off notice delayed past the end
// of the lease it announces, and past a look that saw the next holder,
// must not make the waiter believe it holds the lock: the look saw a
// newer token than the notice's, so the notice is stale. Before the fix
// the waiter counted the old grant's lease from that later look and
// returned a Lock while another Locker held it.
func TestLateNoticeAfterNewerHolder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 30*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: time.Minute})
		x := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "x", TTL: time.Minute})
		held, err := a.TryAcquire(ctx, "late")
		require.NoError(t, err)
		fc := newFaultClient(t, s.NewClient(t))
		const lease = 300 * time.Millisecond
		w := newLockerOn(t, fc, s, lock.Options{Prefix: prefix, Owner: "w", TTL: lease, RetryInterval: 50 * time.Millisecond})
		type result struct {
			lk  *lock.Lock
			err error
		}
		got := make(chan result, 1)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		go func() {
			lk, err := w.Acquire(wctx, "late")
			got <- result{lk, err}
		}()
		waitQueued(t, a, "late", 1)
		time.Sleep(100 * time.Millisecond) // subscribed

		// w's looks fail and its notices arrive 800 ms late. A look that
		// reached Redis after the release would be a real grant to w,
		// which the test does not mean: setFailing waits until no look
		// is in flight any more.
		fc.setFailing(t, only("acquire.lua", fault{fail: true}))
		fc.delayNotices(800 * time.Millisecond)
		require.NoError(t, held.Release(ctx)) // w is granted a 300 ms lease it never hears of in time
		time.Sleep(lease + 100*time.Millisecond)
		s.FastForward(lease + 100*time.Millisecond)
		xAt := time.Now()
		xl, err := x.TryAcquire(ctx, "late") // w's lease is over: x takes the lock
		require.NoError(t, err)
		fc.set(nil) // w's next look sees x
		select {
		case r := <-got:
			if r.lk != nil {
				info, _ := x.Inspect(ctx, "late")
				t.Fatalf("w returned a Lock (token %d, Err %v, its lease ending %v after x's TryAcquire was sent) while %s holds token %d",
					r.lk.Token(), r.lk.Err(), r.lk.Deadline().Sub(xAt), info.Owner, info.Token)
			}
			t.Fatalf("w's Acquire returned %v", r.err)
		case <-time.After(time.Second): // the late notice has arrived and been ignored
		}
		require.NoError(t, xl.Release(ctx)) // now w is handed the lock for real
		r := <-got
		require.NoError(t, r.err)
		info, err := x.Inspect(ctx, "late")
		require.NoError(t, err)
		assert.Equal(t, r.lk.Token(), info.Token, "w holds what Redis holds")
		require.NoError(t, r.lk.Release(ctx))
	})
}
