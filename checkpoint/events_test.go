package checkpoint_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

// TestEvents: Save, Restore and Prune append "checkpoint", "restored" and
// "pruned" events with the versions they produced; a Prune with nothing
// to delete appends none.
func TestEvents(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "cpev"
		lk, err := e.locker.Acquire(ctx, id)
		require.NoError(t, err)
		t.Cleanup(func() { _ = lk.Release(t.Context()) })
		tok := lk.Token()
		_, err = e.store.Create(ctx, id, tok, statestore.State{Status: statestore.StatusRunning, Step: 3, Data: json.RawMessage(`{"a":1}`)})
		require.NoError(t, err)
		cp1, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{Step: 3, State: json.RawMessage(`{"a":1}`)})
		require.NoError(t, err)
		cp2, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{Step: 4, State: json.RawMessage(`{"a":2}`)})
		require.NoError(t, err)
		v, err := e.cps.Restore(ctx, id, tok, cp1)
		require.NoError(t, err)
		n, err := e.cps.Prune(ctx, id, tok, 1)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = e.cps.Prune(ctx, id, tok, 1)
		require.NoError(t, err)
		require.Equal(t, 0, n)

		evs, _, err := e.store.Events(ctx, id, "", 0)
		require.NoError(t, err)
		require.Len(t, evs, 5)
		types := make([]statestore.EventType, len(evs))
		for i, ev := range evs {
			types[i] = ev.Type
			assert.Equal(t, int64(i+1), ev.Version)
			assert.Equal(t, tok, ev.Token)
		}
		assert.Equal(t, []statestore.EventType{statestore.EventCreated, statestore.EventCheckpoint,
			statestore.EventCheckpoint, statestore.EventRestored, statestore.EventPruned}, types)
		assert.Equal(t, map[string]string{"id": cp1, "seq": "1", "step": "3"}, evs[1].Fields)
		assert.Equal(t, map[string]string{"id": cp2, "seq": "2", "step": "4"}, evs[2].Fields)
		assert.Equal(t, map[string]string{"id": cp1, "step": "3", "count": "0"}, evs[3].Fields)
		assert.Equal(t, v, evs[3].Version)
		assert.Equal(t, map[string]string{"removed": "1", "kept": "1"}, evs[4].Fields)
	})
}
