package statestore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// env is a Locker and a Store sharing a client and a prefix.
type env struct {
	s      *redistest.Server
	locker *lock.Locker
	store  *statestore.Store
}

func newEnv(t *testing.T, s *redistest.Server, opts statestore.Options) *env {
	t.Helper()
	c := s.NewClient(t)
	if opts.Prefix == "" {
		opts.Prefix = s.Prefix(t)
	}
	l, err := lock.New(c, lock.Options{Prefix: opts.Prefix, TTL: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	st, err := statestore.New(c, opts)
	require.NoError(t, err)
	return &env{s: s, locker: l, store: st}
}

func (e *env) acquire(t *testing.T, id string) *lock.Lock {
	t.Helper()
	lk, err := e.locker.Acquire(t.Context(), id)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lk.Release(context.Background()) })
	return lk
}

func TestSmokeFlow(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "s1")
		v, err := e.store.Create(ctx, "s1", lk.Token(), statestore.State{AgentType: "coder", Status: statestore.StatusPending, Data: json.RawMessage(`{"a":1}`)})
		require.NoError(t, err)
		assert.Equal(t, int64(1), v)
		st, err := e.store.Load(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, "coder", st.AgentType)
		assert.JSONEq(t, `{"a":1}`, string(st.Data))
		assert.Equal(t, lk.Token(), st.Fence)
		r, err := e.store.CompareAndSetStatus(ctx, "s1", lk.Token(), []statestore.Status{statestore.StatusPending}, statestore.StatusRunning)
		require.NoError(t, err)
		assert.True(t, r.OK)
		n, err := e.store.AppendMessages(ctx, "s1", lk.Token(), json.RawMessage(`"hi"`), json.RawMessage(`{"role":"user"}`))
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		p, err := e.store.Messages(ctx, "s1", "", 1)
		require.NoError(t, err)
		assert.True(t, p.HasMore)
		p, err = e.store.Messages(ctx, "s1", p.Next, 10)
		require.NoError(t, err)
		assert.False(t, p.HasMore)
		assert.Len(t, p.Messages, 1)

		// A stale holder is refused.
		old := lk.Token()
		require.NoError(t, lk.Release(ctx))
		lk2 := e.acquire(t, "s1")
		_, err = e.store.Save(ctx, "s1", old, statestore.State{Status: statestore.StatusFailed})
		assert.ErrorIs(t, err, fencing.ErrStaleToken)
		_, err = e.store.IncrementResumeCount(ctx, "s1", lk2.Token())
		require.NoError(t, err)
	})
}

// TestCompareAndSetStatusLeavesExpectedAlone: expected is only read, even
// when it has room to grow (append(expected, next) used to write next
// into the caller's backing array: a data race when the slice is shared).
func TestCompareAndSetStatusLeavesExpectedAlone(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "cas")
		_, err := e.store.Create(ctx, "cas", lk.Token(), statestore.State{Status: statestore.StatusPending})
		require.NoError(t, err)
		backing := []statestore.Status{statestore.StatusPending, "untouched"}
		expected := backing[:1]
		r, err := e.store.CompareAndSetStatus(ctx, "cas", lk.Token(), expected, statestore.StatusRunning)
		require.NoError(t, err)
		assert.True(t, r.OK)
		assert.Equal(t, statestore.Status("untouched"), backing[1])
	})
}

// TestConflictErrorMessage: the message names the expected version (it
// said "not -1": rendered before Expected was filled in).
func TestConflictErrorMessage(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "conflict")
		_, err := e.store.Create(ctx, "conflict", lk.Token(), statestore.State{Status: statestore.StatusPending})
		require.NoError(t, err)
		_, err = e.store.Save(ctx, "conflict", lk.Token(), statestore.State{Status: statestore.StatusRunning, Version: 3})
		var ce *statestore.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, int64(3), ce.Expected)
		assert.Equal(t, `statestore: save "conflict": fencekit: session "conflict" is at version 1, not 3`, err.Error())
	})
}
