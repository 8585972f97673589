package statestore_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// TestLockEvents: with lock.Options.EventLog the session's log interleaves
// the lock's transitions (acquired, released, lost by expiry, force
// released) with the store's, each written by the script that made it,
// and a stale write after a force release appends nothing.
func TestLockEvents(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := t.Context()
		c := s.NewClient(t)
		prefix := s.Prefix(t)
		newLocker := func(owner string, ttl time.Duration) *lock.Locker {
			l, err := lock.New(c, lock.Options{Prefix: prefix, Owner: owner, TTL: ttl, EventLog: true})
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			return l
		}
		st, err := statestore.New(c, statestore.Options{Prefix: prefix, EventLog: true})
		require.NoError(t, err)
		const id = "lockev"

		a := newLocker("exec-a", 10*time.Second)
		lkA, err := a.TryAcquire(ctx, id)
		require.NoError(t, err)
		_, err = st.Create(ctx, id, lkA.Token(), statestore.State{Status: statestore.StatusPending, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		require.NoError(t, lkA.Release(ctx))

		b := newLocker("exec-b", 50*time.Millisecond)
		lkB, err := b.TryAcquire(ctx, id)
		require.NoError(t, err)
		s.FastForward(time.Second)
		if s.Mini == nil {
			time.Sleep(120 * time.Millisecond)
		}
		cl := newLocker("exec-c", 10*time.Second)
		lkC, err := cl.TryAcquire(ctx, id)
		require.NoError(t, err)

		fr, err := lock.ForceRelease(ctx, c, id, lock.ForceOptions{Prefix: prefix, Reason: "stuck tool call", By: "ops@test", EventLog: true})
		require.NoError(t, err)
		assert.True(t, fr.Released)
		assert.Equal(t, "exec-c", fr.Owner)
		assert.Equal(t, lkC.Token(), fr.Token)
		assert.Greater(t, fr.Fence, lkC.Token())

		// C still believes it holds the lock: its write is refused and logs nothing.
		_, err = st.Save(ctx, id, lkC.Token(), statestore.State{Status: statestore.StatusFailed, Data: json.RawMessage(`{}`)})
		var stale *fencing.StaleTokenError
		require.True(t, errors.As(err, &stale), "got %v", err)

		evs, _, err := st.Events(ctx, id, "", 0)
		require.NoError(t, err)
		type ev struct {
			Type    statestore.EventType
			Version int64
			Token   fencing.Token
			Owner   string
		}
		got := make([]ev, len(evs))
		for i, e := range evs {
			owner, _, _ := cutLast(e.Fields["holder"])
			got[i] = ev{e.Type, e.Version, e.Token, owner}
		}
		assert.Equal(t, []ev{
			{statestore.EventLockAcquired, 0, lkA.Token(), "exec-a"},
			{statestore.EventCreated, 1, lkA.Token(), ""},
			{statestore.EventLockReleased, 0, lkA.Token(), "exec-a"},
			{statestore.EventLockAcquired, 0, lkB.Token(), "exec-b"},
			{statestore.EventLockLost, 0, lkB.Token(), "exec-b"},
			{statestore.EventLockAcquired, 0, lkC.Token(), "exec-c"},
			{statestore.EventLockForceReleased, 0, fr.Fence, "exec-c"},
		}, got)
		if len(evs) == 7 {
			assert.Equal(t, "expired", evs[4].Fields["cause"])
			assert.Equal(t, "10000", evs[5].Fields["ttl"])
			f := evs[6].Fields
			assert.Equal(t, lkC.Token().String(), f["holder_tok"])
			assert.Equal(t, "stuck tool call", f["reason"])
			assert.Equal(t, "ops@test", f["by"])
			for _, e := range evs {
				assert.Equal(t, e.Type.IsLock(), e.Version == 0, "%s", e.Type)
			}
		}
	})
}

// cutLast splits a holder "<owner>|<attempt>" at its last '|'.
func cutLast(h string) (string, string, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == '|' {
			return h[:i], h[i+1:], true
		}
	}
	return h, "", false
}

// TestEventsRejectForeignEntries: an entry whose version does not fit its
// type (a lock event with a version, a state event without one) is
// reported as corrupt, not passed on.
func TestEventsRejectForeignEntries(t *testing.T) {
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	prefix := s.Prefix(t)
	st, err := statestore.New(c, statestore.Options{Prefix: prefix, EventLog: true})
	require.NoError(t, err)
	for i, fields := range [][]string{
		{"type", "lock_acquired", "v", "3", "tok", "5", "holder", "o|a"},
		{"type", "saved", "v", "0", "tok", "5"},
		{"type", "saved", "v", "-1", "tok", "5"},
		{"type", "lock_lost", "v", "0", "tok", "0", "holder", "o|a"},
	} {
		id := "foreign" + string(rune('a'+i))
		args := append([]string{"XADD", prefix + ":{" + id + "}:events", "*"}, fields...)
		msg := s.Do(t, args...)
		require.NoError(t, msg.Error())
		_, _, err := st.Events(t.Context(), id, "", 0)
		assert.ErrorIs(t, err, statestore.ErrCorrupt, "%q", fields)
	}
	// The well-formed lock event decodes.
	args := []string{"XADD", prefix + ":{fine}:events", "*", "type", "lock_released", "v", "0", "tok", "7", "holder", "o|a"}
	msg := s.Do(t, args...)
	require.NoError(t, msg.Error())
	evs, _, err := st.Events(t.Context(), "fine", "", 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, statestore.EventLockReleased, evs[0].Type)
	assert.Equal(t, fencing.Token(7), evs[0].Token)
}
