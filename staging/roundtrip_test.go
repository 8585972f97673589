package staging_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// TestRoundTrips counts the round trips of each operation (scripts
// cached): Stage, Discard and List one each, Promote and
// SaveStateAndPromote two (read, commit), Promote of an empty step one.
func TestRoundTrips(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := redistest.Counting(s.NewClient(t))
		e := newEnv(t, s, statestore.Options{})
		st, err := statestore.New(c, e.store.Options())
		require.NoError(t, err)
		sg := staging.New(st)
		ctx := t.Context()
		const id = "rt"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{"log":[]}`)
		// prepare stages ten changes under step 1 through the other client.
		prepare := func() {
			for i := range 10 {
				e.stage(t, id, 1, tok, add(string(rune('a'+i)), "/log/-", i, ms(i)))
			}
		}
		ops := []struct {
			name   string
			staged bool // run with ten changes staged under step 1
			trips  int64
			fn     func() error
		}{
			{"Stage", false, 1, func() error {
				_, err := sg.Stage(ctx, id, 2, tok, add("x", "/x", 1, ms(0)))
				return err
			}},
			{"List", true, 1, func() error { _, err := sg.List(ctx, id); return err }},
			{"Discard", true, 1, func() error { _, err := sg.Discard(ctx, id, 1, tok); return err }},
			{"Promote", true, 2, func() error {
				res, err := sg.Promote(ctx, id, 1, tok)
				if err == nil && len(res.Applied) != 10 {
					t.Errorf("Promote applied %d changes, want 10", len(res.Applied))
				}
				return err
			}},
			{"Promote nothing staged", false, 1, func() error { _, err := sg.Promote(ctx, id, 1, tok); return err }},
			{"SaveStateAndPromote", true, 2, func() error {
				_, err := sg.SaveStateAndPromote(ctx, id, 1, tok, statestore.State{Status: "running", Data: json.RawMessage(`{"log":[]}`)})
				return err
			}},
		}
		// Warm the script cache: a script's first run costs EVALSHA + EVAL.
		for _, op := range ops {
			prepare()
			_ = op.fn()
		}
		for _, op := range ops {
			if _, err := e.stager.Discard(ctx, id, 1, tok); err != nil {
				t.Fatal(err)
			}
			if op.staged {
				prepare()
			}
			var err error
			n := c.Count(func() { err = op.fn() })
			require.NoError(t, err, op.name)
			assert.Equal(t, op.trips, n, "%s round trips", op.name)
			t.Logf("%s: %d round trip(s)", op.name, n)
		}
	})
}
