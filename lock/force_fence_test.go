package lock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// TestForceReleaseKeepsFenceTTL: a force release with the default FenceTTL
// (24 h) never shortens the fence's retention. A name whose Lockers keep
// the fence forever (FenceTTL -1) keeps it so, held or not and with a
// hand-off; a longer retention is kept; a shorter one is raised
// (issue 21 §2).
func TestForceReleaseKeepsFenceTTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := ctxT(t, 20*time.Second)
		prefix := s.Prefix(t)
		c := s.NewClient(t)
		pttl := func(name string) time.Duration {
			t.Helper()
			ms, err := c.Do(ctx, c.B().Pttl().Key(keys.ForLock(prefix, name).Fence).Build()).AsInt64()
			require.NoError(t, err)
			if ms < 0 {
				return time.Duration(ms)
			}
			return time.Duration(ms) * time.Millisecond
		}
		force := func(name string) lock.ForceResult {
			t.Helper()
			res, err := lock.ForceRelease(ctx, c, name, lock.ForceOptions{Prefix: prefix, Reason: "test", By: "ops"})
			require.NoError(t, err)
			return res
		}
		forever := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-a", FenceTTL: -1})
		lk, err := forever.TryAcquire(ctx, "forever")
		require.NoError(t, err)
		require.Equal(t, time.Duration(-1), pttl("forever"), "FenceTTL -1 sets no expiry")
		res := force("forever")
		assert.True(t, res.Released)
		assert.Greater(t, res.Fence, lk.Token())
		assert.Equal(t, time.Duration(-1), pttl("forever"), "force release of a held lock")
		force("forever")
		assert.Equal(t, time.Duration(-1), pttl("forever"), "force release of a free lock")

		// A hand-off to a waiter keeps it too.
		lk2, err := forever.TryAcquire(ctx, "forever")
		require.NoError(t, err)
		other := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-b", FenceTTL: -1})
		got := make(chan error, 1)
		go func() {
			_, err := other.Acquire(ctx, "forever")
			got <- err
		}()
		require.Eventually(t, func() bool {
			info, err := forever.Inspect(ctx, "forever")
			return err == nil && info.Waiters == 1
		}, 10*time.Second, 5*time.Millisecond)
		res = force("forever")
		assert.Equal(t, "exec-b", res.Next)
		assert.Greater(t, res.Fence, lk2.Token())
		require.NoError(t, <-got)
		assert.Equal(t, time.Duration(-1), pttl("forever"), "force release with a hand-off")

		long := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-a", FenceTTL: 72 * time.Hour})
		_, err = long.TryAcquire(ctx, "long")
		require.NoError(t, err)
		force("long")
		assert.InDelta(t, float64(72*time.Hour), float64(pttl("long")), float64(time.Minute), "a longer retention is kept")

		short := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "exec-a", FenceTTL: time.Hour})
		_, err = short.TryAcquire(ctx, "short")
		require.NoError(t, err)
		force("short")
		assert.InDelta(t, float64(lock.DefaultFenceTTL), float64(pttl("short")), float64(time.Minute), "a shorter one is raised to the default")
	})
}
