package statestore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// TestRelaxedAfterFenceExpiry: the lock's fence counter expires after
// FenceTTL, also while a newer holder still holds the lock (refresh does
// not touch the fence): B renews past FenceTTL. A takes the lock and writes; its lease ends; B
// takes over and writes nothing; B's fence expires. A relaxed write with
// A's token must still be refused: the lock record carries B's newer token
// (issue 12 §2). Before the fix every relaxed mutation was accepted.
func TestRelaxedAfterFenceExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := t.Context()
		e := newEnv(t, s, statestore.Options{})
		prefix := e.store.Options().Prefix
		relaxed, err := statestore.New(s.NewClient(t), statestore.Options{Prefix: prefix, Relaxed: true})
		require.NoError(t, err)
		const fenceTTL = time.Second
		short, err := lock.New(s.NewClient(t), lock.Options{Prefix: prefix, Owner: "a", TTL: 100 * time.Millisecond, FenceTTL: fenceTTL})
		require.NoError(t, err)
		t.Cleanup(func() { _ = short.Close() })
		long, err := lock.New(s.NewClient(t), lock.Options{Prefix: prefix, Owner: "b", TTL: fenceTTL, FenceTTL: fenceTTL})
		require.NoError(t, err)
		t.Cleanup(func() { _ = long.Close() })

		const id = "relaxed-fence"
		a, err := short.TryAcquire(ctx, id)
		require.NoError(t, err)
		seed(t, e, id, a.Token())
		wait := func(d time.Duration) {
			if s.Kind == redistest.Mini {
				s.FastForward(d)
			} else {
				time.Sleep(d)
			}
		}
		wait(150 * time.Millisecond) // a's lease is over
		b, err := long.TryAcquire(ctx, id)
		require.NoError(t, err)
		defer func() { _ = b.Release(ctx) }()
		// b renews (as AutoRefresh would, at a third of its TTL: slack for
		// a loaded machine) past the fence's TTL.
		for range 3 {
			wait(400 * time.Millisecond)
			require.NoError(t, b.Refresh(ctx))
		}
		m := s.Do(t, "EXISTS", e.keys(id).Fence)
		n, _ := m.AsInt64()
		require.Zero(t, n, "the fence should have expired")

		before := e.snapshot(t, id)
		for name, op := range mutations(relaxed, id) {
			err := op(ctx, a.Token())
			assert.ErrorIs(t, err, fencing.ErrStaleToken, "%s: relaxed mode accepted an older token than the holder's", name)
			assert.ErrorIs(t, err, fencing.ErrFenced, name)
			var st *fencing.StaleTokenError
			if assert.ErrorAs(t, err, &st, name) {
				assert.Equal(t, b.Token(), st.Highest, name)
			}
		}
		assert.Equal(t, before, e.snapshot(t, id), "a refused write changed the session")
		// b, the holder, still writes in relaxed mode.
		_, err = relaxed.IncrementResumeCount(ctx, id, b.Token())
		require.NoError(t, err)
	})
}
