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

// TestRoundTrips: every operation is one round trip once the server knows
// its script (the first call of a script on a server is EVALSHA, NOSCRIPT,
// then EVAL).
func TestRoundTrips(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{"a":1}`, 5)
		tok := lk.Token()
		cp := checkpoint.Checkpoint{Step: 2, State: json.RawMessage(`{"a":1}`), MessageCount: 5, Metadata: json.RawMessage(`{"k":1}`)}

		var cpid, next string
		ops := []struct {
			name string
			fn   func() error
		}{
			{"Save", func() error { var err error; cpid, err = e.cps.Save(ctx, "s1", tok, cp); return err }},
			{"Get", func() error { _, err := e.cps.Get(ctx, "s1", cpid); return err }},
			{"Latest", func() error { _, err := e.cps.Latest(ctx, "s1"); return err }},
			{"List first page", func() error {
				p, err := e.cps.List(ctx, "s1", "", 1)
				next = p.Next
				return err
			}},
			{"List next page", func() error { _, err := e.cps.List(ctx, "s1", next, 100); return err }},
			{"Restore", func() error { _, err := e.cps.Restore(ctx, "s1", tok, cpid); return err }},
			{"Prune", func() error { _, err := e.cps.Prune(ctx, "s1", tok, 2); return err }},
			{"Prune, nothing to delete", func() error { _, err := e.cps.Prune(ctx, "s1", tok, 2); return err }},
		}
		for round := range 3 {
			for _, op := range ops {
				var err error
				n := e.client.Count(func() { err = op.fn() })
				require.NoError(t, err, op.name)
				if round > 0 { // round 0 warms the script cache
					assert.Equal(t, int64(1), n, "%s: round trips", op.name)
				}
			}
		}
	})
}
