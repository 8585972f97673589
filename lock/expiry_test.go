package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// TestNoKeyLivesForever runs every lock path that writes - grants,
// hand-offs, releases, expired leases, give-ups, force releases of used
// and never-used names - with lock events on, and then requires every key
// under the prefix to have a TTL (issue 12 §3, issue 21 §3). Before the
// fix the event logs of names without a session never expired. With
// FenceTTL < 0 the caller asked to keep fences forever: only they may
// stay.
func TestNoKeyLivesForever(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		for _, tc := range []struct {
			name     string
			fenceTTL time.Duration
			allow    []string
		}{
			{"fence ttl", 0, nil},
			{"fence kept forever", -1, []string{":fence"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := ctxT(t, 30*time.Second)
				prefix := s.Prefix(t)
				opts := lock.Options{Prefix: prefix, TTL: 5 * time.Second, EventLog: true, FenceTTL: tc.fenceTTL, RetryInterval: 10 * time.Millisecond}
				a := newLocker(t, s, opts)
				b := newLocker(t, s, opts)
				short := opts
				short.TTL = 100 * time.Millisecond
				brief := newLocker(t, s, short)

				lk, err := a.TryAcquire(ctx, "plain")
				require.NoError(t, err)
				require.NoError(t, lk.Release(ctx))

				held, err := a.TryAcquire(ctx, "handoff")
				require.NoError(t, err)
				got := make(chan *lock.Lock, 1)
				go func() {
					lk, err := b.Acquire(ctx, "handoff")
					if err != nil {
						t.Errorf("Acquire: %v", err)
					}
					got <- lk
				}()
				waitQueued(t, a, "handoff", 1)
				require.NoError(t, held.Release(ctx))
				require.NoError(t, (<-got).Release(ctx))

				_, err = brief.TryAcquire(ctx, "expired") // never released
				require.NoError(t, err)
				s.FastForward(time.Second)
				time.Sleep(150 * time.Millisecond)
				lk, err = b.TryAcquire(ctx, "expired") // logs lock_lost first
				require.NoError(t, err)
				require.NoError(t, lk.Release(ctx))

				held, err = a.TryAcquire(ctx, "gaveup")
				require.NoError(t, err)
				wait, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
				_, err = b.Acquire(wait, "gaveup")
				cancel()
				require.Error(t, err)
				require.NoError(t, held.Release(ctx))

				c := s.NewClient(t)
				for _, name := range []string{"plain", "never-used"} {
					_, err = lock.ForceRelease(ctx, c, name, lock.ForceOptions{Prefix: prefix, Reason: "test", EventLog: true, FenceTTL: tc.fenceTTL})
					require.NoError(t, err)
				}
				s.RequireExpiring(t, prefix, tc.allow...)
			})
		}
	})
}
