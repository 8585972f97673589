package lock_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// TestForceRelease: the holder is removed and fenced out (its Refresh
// reports the loss), a waiter blocked in Acquire on another client takes
// over with the minted token, and a force release of a free lock still
// raises the fence.
func TestForceRelease(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-a", TTL: 10 * time.Second})
		b := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-b", TTL: 10 * time.Second, RetryInterval: time.Minute})
		lkA, err := a.TryAcquire(ctx, "job")
		require.NoError(t, err)

		got := make(chan *lock.Lock, 1)
		go func() {
			lk, err := b.Acquire(ctx, "job")
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
			got <- lk
		}()
		// Wait until b is queued, so the force release hands over to it.
		require.Eventually(t, func() bool {
			info, err := a.Inspect(ctx, "job")
			return err == nil && info.Waiters == 1
		}, 10*time.Second, 5*time.Millisecond)

		res, err := lock.ForceRelease(ctx, s.NewClient(t), "job", lock.ForceOptions{Prefix: prefix, Reason: "drain node", By: "ops"})
		require.NoError(t, err)
		assert.True(t, res.Released)
		assert.Equal(t, "exec-a", res.Owner)
		assert.Equal(t, lkA.Token(), res.Token)
		assert.Greater(t, res.Fence, lkA.Token())
		assert.Equal(t, "exec-b", res.Next)

		// RetryInterval is a minute: only the hand-off notice can wake b.
		lkB := <-got
		require.NotNil(t, lkB)
		assert.Equal(t, res.Fence, lkB.Token())
		assert.ErrorIs(t, lkA.Refresh(ctx), lock.ErrLockLost)
		assert.ErrorIs(t, lkA.Err(), lock.ErrLockLost)
		require.NoError(t, lkB.Release(ctx))

		// Free lock: nothing removed, the fence still moves up.
		res2, err := lock.ForceRelease(ctx, s.NewClient(t), "job", lock.ForceOptions{Prefix: prefix, Reason: "fence out stragglers"})
		require.NoError(t, err)
		assert.False(t, res2.Released)
		assert.Equal(t, "", res2.Owner)
		assert.Greater(t, res2.Fence, lkB.Token())
		info, err := a.Inspect(ctx, "job")
		require.NoError(t, err)
		assert.False(t, info.Held)
		assert.Equal(t, res2.Fence, info.Fence)
	})
}

func TestForceReleaseBadInput(t *testing.T) {
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	ctx := t.Context()
	prefix := s.Prefix(t)
	l := newLockerOn(t, c, s, lock.Options{Prefix: prefix})
	lk, err := l.TryAcquire(ctx, "x")
	require.NoError(t, err)
	k := keys.ForLock(prefix, "x")
	before := s.Snapshot(t, k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant)
	for _, tc := range []struct {
		name string
		o    lock.ForceOptions
		lock string
		want error
	}{
		{"no reason", lock.ForceOptions{Prefix: prefix}, "x", lock.ErrNoReason},
		{"bad name", lock.ForceOptions{Prefix: prefix, Reason: "r"}, "a{b}", lock.ErrInvalidName},
		{"empty name", lock.ForceOptions{Prefix: prefix, Reason: "r"}, "", lock.ErrInvalidName},
		{"bad prefix", lock.ForceOptions{Prefix: "a:b", Reason: "r"}, "x", lock.ErrInvalidOptions},
		{"long reason", lock.ForceOptions{Prefix: prefix, Reason: strings.Repeat("r", 513)}, "x", lock.ErrInvalidOptions},
		{"long by", lock.ForceOptions{Prefix: prefix, Reason: "r", By: strings.Repeat("b", 129)}, "x", lock.ErrInvalidOptions},
		{"fence ttl", lock.ForceOptions{Prefix: prefix, Reason: "r", FenceTTL: time.Microsecond}, "x", lock.ErrInvalidOptions},
	} {
		_, err := lock.ForceRelease(ctx, c, tc.lock, tc.o)
		assert.ErrorIs(t, err, tc.want, tc.name)
	}
	_, err = lock.ForceRelease(ctx, nil, "x", lock.ForceOptions{Reason: "r"})
	assert.ErrorIs(t, err, lock.ErrNilClient)
	assert.Equal(t, before, s.Snapshot(t, k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant))
	assert.NoError(t, lk.Refresh(ctx))

	// A lock record fencekit did not write: ErrCorrupt, nothing changed.
	s.Do(t, "SET", keys.ForLock(prefix, "y").Lock, "junk")
	ky := keys.ForLock(prefix, "y")
	before = s.Snapshot(t, ky.Lock, ky.Fence)
	_, err = lock.ForceRelease(ctx, c, "y", lock.ForceOptions{Prefix: prefix, Reason: "r"})
	assert.ErrorIs(t, err, lock.ErrCorrupt)
	assert.Equal(t, before, s.Snapshot(t, ky.Lock, ky.Fence))
}

// TestEventLogUnderContention: with EventLog, Lockers on separate clients
// contend for one name with hand-offs and expiries; the log must tell a
// consistent story: grants strictly increase in token, and every grant is
// closed (released, lost or force released) by its own token before the
// next grant appears.
func TestEventLogUnderContention(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 60*time.Second)
		prefix := s.Prefix(t)
		const name = "contended"
		rounds := 25
		if s.Mini != nil {
			// miniredis expires keys only when its clock is moved.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						s.FastForward(10 * time.Millisecond)
					}
				}
			}()
		}
		var wg sync.WaitGroup
		for i := range 4 {
			l := newLocker(t, s, lock.Options{Prefix: prefix, TTL: 500 * time.Millisecond, RetryInterval: 20 * time.Millisecond, EventLog: true})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range rounds {
					lk, err := l.Acquire(ctx, name)
					if err != nil {
						t.Errorf("Acquire: %v", err)
						return
					}
					if (i+j)%7 == 3 {
						// Leave one grant of each few unreleased: the next
						// holder must find it expired and log it as lost.
						continue
					}
					// A lease lost before Release (a slow -race run) is
					// logged as lost by the server: not an error here.
					if err := lk.Release(ctx); err != nil && !errors.Is(err, lock.ErrLockLost) {
						t.Errorf("Release: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		st, err := statestore.New(s.NewClient(t), statestore.Options{Prefix: prefix, EventLog: true})
		require.NoError(t, err)
		var evs []statestore.Event
		after := ""
		for {
			page, next, err := st.Events(ctx, name, after, 1000)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			evs, after = append(evs, page...), next
		}
		var open fencing.Token
		var grants, lost int
		var last fencing.Token
		for i, ev := range evs {
			switch ev.Type {
			case statestore.EventLockAcquired:
				require.Zero(t, open, "event %d: grant %v while %v is open", i, ev.Token, open)
				require.Greater(t, ev.Token, last, "event %d: tokens must increase", i)
				open, last = ev.Token, ev.Token
				grants++
			case statestore.EventLockReleased, statestore.EventLockLost:
				require.Equal(t, open, ev.Token, "event %d: %s closes a grant that is not open", i, ev.Type)
				if ev.Type == statestore.EventLockLost {
					lost++
				}
				open = 0
			default:
				t.Fatalf("event %d: unexpected type %s", i, ev.Type)
			}
		}
		assert.Equal(t, 4*rounds, grants)
		assert.Positive(t, lost)
		t.Logf("%d grants, %d lost by expiry", grants, lost)
	})
}
