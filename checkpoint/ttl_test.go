package checkpoint_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

// TestWritesRefreshTTL: every checkpoint write gives every key of the
// session the session TTL again.
func TestWritesRefreshTTL(t *testing.T) {
	const ttl = time.Minute
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{TTL: ttl})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 2)
		k := e.keys("s1")
		expireAll := func() {
			for _, key := range []string{k.State, k.Msgs, k.Cps, k.Cpd} {
				s.Do(t, "PEXPIRE", key, "5000")
			}
		}
		refreshed := func(what string, keys ...string) {
			t.Helper()
			for _, key := range keys {
				pttl := mustInt(t, s.Do(t, "PTTL", key))
				assert.Greater(t, pttl, int64(ttl/time.Millisecond)-5000, "%s: PTTL of %s", what, key)
			}
		}
		cp, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 1, MessageCount: 1})
		require.NoError(t, err)
		refreshed("save", k.State, k.Msgs, k.Cps, k.Cpd)
		_, err = e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 2, MessageCount: 2})
		require.NoError(t, err)

		expireAll()
		_, err = e.cps.Restore(ctx, "s1", lk.Token(), cp)
		require.NoError(t, err)
		refreshed("restore", k.State, k.Msgs, k.Cps, k.Cpd)

		expireAll()
		n, err := e.cps.Prune(ctx, "s1", lk.Token(), 1)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		refreshed("prune", k.State, k.Msgs, k.Cps, k.Cpd)
	})
}
