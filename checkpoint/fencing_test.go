package checkpoint_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// TestStaleExecutorRejected: executor A holds session s1, saves a
// checkpoint, then loses the lock to executor B. Every checkpoint write of
// A with its old token is refused and leaves every key as it was; B's
// writes go through.
func TestStaleExecutorRejected(t *testing.T) {
	type takeover func(t *testing.T, e *env, a *lock.Lock) *lock.Lock // returns B's lock or nil
	releasedThenB := func(t *testing.T, e *env, a *lock.Lock) *lock.Lock {
		require.NoError(t, a.Release(t.Context()))
		return acquire(t, e.secondLocker(t), "s1")
	}
	expiredThenB := func(t *testing.T, e *env, a *lock.Lock) *lock.Lock {
		// A paused past its lease: the record is gone (as after PX ran out)
		// and B acquires.
		e.s.Do(t, "DEL", e.keys("s1").Lock)
		return acquire(t, e.secondLocker(t), "s1")
	}
	cases := []struct {
		name     string
		relaxed  bool
		takeover takeover
		bWrites  bool // B writes (and releases) before A tries
		want     error
	}{
		{"strict/released, B holds", false, releasedThenB, false, fencing.ErrStaleToken},
		{"strict/expired, B holds", false, expiredThenB, false, fencing.ErrStaleToken},
		{"strict/expired, nobody holds", false, func(t *testing.T, e *env, a *lock.Lock) *lock.Lock {
			e.s.Do(t, "DEL", e.keys("s1").Lock)
			return nil
		}, false, fencing.ErrNotHolder},
		{"strict/B wrote and released", false, releasedThenB, true, fencing.ErrStaleToken}, // a newer token was issued: stale before not-holder
		{"relaxed/released, B holds", true, releasedThenB, false, fencing.ErrStaleToken},
		{"relaxed/expired, B holds", true, expiredThenB, false, fencing.ErrStaleToken},
		{"relaxed/B wrote and released", true, expiredThenB, true, fencing.ErrStaleToken},
	}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, s, statestore.Options{Relaxed: tc.relaxed})
				ctx := t.Context()
				a := acquire(t, e.locker, "s1")
				e.create(t, "s1", a, `{"by":"a"}`, 4)
				cp1, err := e.cps.Save(ctx, "s1", a.Token(), checkpoint.Checkpoint{Step: 1, State: json.RawMessage(`{"by":"a"}`), MessageCount: 2})
				require.NoError(t, err)
				_, err = e.cps.Save(ctx, "s1", a.Token(), checkpoint.Checkpoint{Step: 2, MessageCount: 4})
				require.NoError(t, err)

				b := tc.takeover(t, e, a)
				if tc.bWrites {
					_, err := e.cps.Save(ctx, "s1", b.Token(), checkpoint.Checkpoint{Step: 3, MessageCount: 4})
					require.NoError(t, err)
					require.NoError(t, b.Release(ctx))
				}

				before := e.snapshot(t, "s1")
				_, err = e.cps.Save(ctx, "s1", a.Token(), checkpoint.Checkpoint{Step: 9, State: json.RawMessage(`{"late":true}`), MessageCount: 1})
				assert.ErrorIs(t, err, tc.want, "save")
				_, err = e.cps.Restore(ctx, "s1", a.Token(), cp1)
				assert.ErrorIs(t, err, tc.want, "restore")
				_, err = e.cps.Prune(ctx, "s1", a.Token(), 0)
				assert.ErrorIs(t, err, tc.want, "prune")
				assert.Equal(t, before, e.snapshot(t, "s1"), "the stale executor changed stored bytes")

				if tc.want == fencing.ErrStaleToken {
					var stale *fencing.StaleTokenError
					_, err = e.cps.Prune(ctx, "s1", a.Token(), 0)
					require.ErrorAs(t, err, &stale)
					assert.Equal(t, a.Token(), stale.Presented)
					assert.True(t, stale.Highest.Newer(a.Token()))
				}

				if b == nil || tc.bWrites {
					return
				}
				// The new holder's writes go through.
				_, err = e.cps.Save(ctx, "s1", b.Token(), checkpoint.Checkpoint{Step: 3, MessageCount: 4})
				require.NoError(t, err)
				_, err = e.cps.Restore(ctx, "s1", b.Token(), cp1)
				require.NoError(t, err)
				n, err := e.cps.Prune(ctx, "s1", b.Token(), 1)
				require.NoError(t, err)
				assert.Equal(t, 2, n)
			})
		}
	})
}
