package statestore_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// TestEventLogOff: without Options.EventLog (the default) no write of the
// store, staging or checkpoint creates the event log, every key written
// still expires, and Events and Watch refuse with ErrEventLogOff; a store
// with the log on, sharing the keyspace, starts the log with its first
// write and reads it.
func TestEventLogOff(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		require.False(t, e.store.Options().EventLog)
		ctx := t.Context()
		const id = "nolog"
		lk := e.acquire(t, id)
		tok := lk.Token()
		st := statestore.State{AgentType: "a", Status: statestore.StatusPending, Data: json.RawMessage(`{"n":1}`)}
		_, err := e.store.Create(ctx, id, tok, st)
		require.NoError(t, err)
		_, err = e.store.Save(ctx, id, tok, st)
		require.NoError(t, err)
		r, err := e.store.CompareAndSetStatus(ctx, id, tok, []statestore.Status{statestore.StatusPending}, statestore.StatusRunning)
		require.NoError(t, err)
		require.True(t, r.OK)
		_, err = e.store.IncrementStep(ctx, id, tok)
		require.NoError(t, err)
		_, err = e.store.AppendMessages(ctx, id, tok, json.RawMessage(`1`))
		require.NoError(t, err)
		sg := staging.New(e.store)
		_, err = sg.Stage(ctx, id, 1, tok, staging.Change{ToolCallID: "c1", Merge: json.RawMessage(`{"n":2}`)})
		require.NoError(t, err)
		_, err = sg.Promote(ctx, id, 1, tok)
		require.NoError(t, err)
		cps := checkpoint.New(e.store)
		cp, err := cps.Save(ctx, id, tok, checkpoint.Checkpoint{Step: 1, State: json.RawMessage(`{"n":2}`)})
		require.NoError(t, err)
		_, err = cps.Restore(ctx, id, tok, cp)
		require.NoError(t, err)

		prefix := e.store.Options().Prefix
		k := keys.ForSession(prefix, id)
		assert.Zero(t, exists(t, s, k.Events), "the event log exists")
		s.RequireExpiring(t, prefix, keys.ForLock(prefix, id).Fence)

		_, after, err := e.store.Events(ctx, id, "", 0)
		require.ErrorIs(t, err, statestore.ErrEventLogOff)
		assert.Equal(t, "", after)
		var watchErr error
		for _, err := range e.store.Watch(ctx, id, "") {
			watchErr = err
			break
		}
		require.ErrorIs(t, watchErr, statestore.ErrEventLogOff)

		// Turned on: the next write starts the log.
		on, err := statestore.New(s.NewClient(t), statestore.Options{Prefix: prefix, EventLog: true})
		require.NoError(t, err)
		evs, _, err := on.Events(ctx, id, "", 0)
		require.NoError(t, err)
		assert.Empty(t, evs)
		v, err := on.IncrementResumeCount(ctx, id, tok)
		require.NoError(t, err)
		evs, _, err = on.Events(ctx, id, "", 0)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		assert.Equal(t, statestore.EventResumed, evs[0].Type)
		assert.Equal(t, "1", evs[0].Fields["resume_count"])
		assert.Equal(t, v, int64(1))

		// Delete (log off) removes the log too; a new incarnation keeps
		// working without one.
		_, err = e.store.Delete(ctx, id, tok)
		require.NoError(t, err)
		_, err = e.store.Create(ctx, id, tok, st)
		require.NoError(t, err)
		assert.Zero(t, exists(t, s, k.Events), "the event log exists")
	})
}

func exists(t *testing.T, s *redistest.Server, key string) int64 {
	t.Helper()
	msg := s.Do(t, "EXISTS", key)
	n, err := msg.AsInt64()
	require.NoError(t, err)
	return n
}
