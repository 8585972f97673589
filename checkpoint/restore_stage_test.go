package checkpoint_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// TestRestoreDiscardsStagedChanges: changes staged after a checkpoint
// belong to the abandoned timeline and must not be promoted onto the
// restored state.
func TestRestoreDiscardsStagedChanges(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "r")
		tok := lk.Token()
		_, err := e.store.Create(ctx, "r", tok, statestore.State{Status: "running", Data: json.RawMessage(`{"n":1}`)})
		require.NoError(t, err)
		cpid, err := e.cps.Save(ctx, "r", tok, checkpoint.Checkpoint{Step: 1, State: json.RawMessage(`{"n":1}`)})
		require.NoError(t, err)
		stg := staging.New(e.store)
		_, err = stg.Stage(ctx, "r", 2, tok, staging.Change{ToolCallID: "t1", Merge: json.RawMessage(`{"n":2}`)})
		require.NoError(t, err)
		_, err = e.cps.Restore(ctx, "r", tok, cpid)
		require.NoError(t, err)
		staged, err := stg.List(ctx, "r")
		require.NoError(t, err)
		assert.Empty(t, staged)
		res, err := stg.Promote(ctx, "r", 2, tok)
		require.NoError(t, err)
		assert.Empty(t, res.Applied)
		st, err := e.store.Load(ctx, "r")
		require.NoError(t, err)
		assert.JSONEq(t, `{"n":1}`, string(st.Data))
	})
}
