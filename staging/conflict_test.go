package staging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// beforeCommit is a client that runs a hook before each EVALSHA of
// stage_commit.lua it forwards (not before the EVAL that follows a
// NOSCRIPT reply): a deterministic way to put another write between a
// promote's read and its commit.
type beforeCommit struct {
	rueidis.Client
	hook    func()
	commits atomic.Int64
}

func (c *beforeCommit) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if args := cmd.Commands(); len(args) > 1 && args[0] == "EVALSHA" && args[1] == lua.StageCommit.SHA1() {
		c.commits.Add(1)
		c.hook()
	}
	return c.Client.Do(ctx, cmd)
}

// hooked returns a Stager whose commits run hook first, and the client.
func hooked(t *testing.T, s *redistest.Server, e *env, opts statestore.Options, hook func()) (*staging.Stager, *beforeCommit) {
	t.Helper()
	c := &beforeCommit{Client: s.NewClient(t), hook: hook}
	opts.Prefix = e.store.Options().Prefix
	st, err := statestore.New(c, opts)
	require.NoError(t, err)
	return staging.New(st), c
}

// TestPromoteConflicts puts writes between a promote's read and its
// commit: the commit is refused and the promote starts over with what is
// staged then; it gives up after MaxRetries attempts, writing nothing.
func TestPromoteConflicts(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := t.Context()
		e := newEnv(t, s, statestore.Options{})
		const id = "conf"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{"log":[]}`)

		t.Run("discard in between: nothing left to promote", func(t *testing.T) {
			e.stage(t, id, 1, tok, add("a", "/log/-", "a", ms(1)))
			var removed int
			sg, c := hooked(t, s, e, statestore.Options{}, func() {
				if removed == 0 {
					var err error
					removed, err = e.stager.Discard(ctx, id, 1, tok)
					require.NoError(t, err)
				}
			})
			res, err := sg.Promote(ctx, id, 1, tok)
			require.NoError(t, err)
			assert.Equal(t, 1, removed)
			assert.Empty(t, res.Applied)
			assert.Equal(t, int64(1), c.commits.Load(), "the second attempt found nothing to commit")
			assert.JSONEq(t, `{"log":[]}`, e.data(t, id))
		})

		t.Run("stage in between: the retry applies it too", func(t *testing.T) {
			e.stage(t, id, 2, tok, add("a", "/log/-", "a", ms(1)))
			staged := false
			sg, c := hooked(t, s, e, statestore.Options{}, func() {
				if !staged {
					staged = true
					e.stage(t, id, 2, tok, add("b", "/log/-", "b", ms(2)))
				}
			})
			res, err := sg.Promote(ctx, id, 2, tok)
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "b"}, calls(res.Applied))
			assert.Equal(t, int64(2), c.commits.Load())
			assert.JSONEq(t, `{"log":["a","b"]}`, e.data(t, id))
		})

		t.Run("a write before every commit: gives up after MaxRetries", func(t *testing.T) {
			e.stage(t, id, 3, tok, add("a", "/log/-", "a", ms(1)))
			sg, c := hooked(t, s, e, statestore.Options{MaxRetries: 3}, func() {
				_, err := e.store.IncrementStep(ctx, id, tok)
				require.NoError(t, err)
			})
			doc := e.data(t, id)
			_, err := sg.Promote(ctx, id, 3, tok)
			var ce *statestore.ConflictError
			require.ErrorAs(t, err, &ce)
			assert.ErrorIs(t, err, statestore.ErrConflict)
			assert.Equal(t, ce.Expected+1, ce.Current)
			assert.Equal(t, int64(3), c.commits.Load())
			assert.Equal(t, doc, e.data(t, id))
			list, err := e.stager.List(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, []string{"a"}, calls(list), "the stage stays")
			n, err := e.stager.Discard(ctx, id, 3, tok)
			require.NoError(t, err)
			assert.Equal(t, 1, n)
		})

		t.Run("save and promote with an expected version: no retry", func(t *testing.T) {
			e.stage(t, id, 4, tok, add("a", "/log/-", "a", ms(1)))
			n := 0
			sg, c := hooked(t, s, e, statestore.Options{}, func() {
				if n++; n <= 2 {
					e.stage(t, id, 4, tok, add(fmt.Sprintf("b%d", n), "/log/-", "b", ms(1+n)))
				}
			})
			v := e.version(t, id)
			_, err := sg.SaveStateAndPromote(ctx, id, 4, tok, statestore.State{Status: "x", Data: json.RawMessage(`{"log":[]}`), Version: v})
			var ce *statestore.ConflictError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, v, ce.Expected)
			assert.Equal(t, v+1, ce.Current)
			assert.Contains(t, err.Error(), fmt.Sprintf("is at version %d, not %d", v+1, v))
			assert.Equal(t, int64(1), c.commits.Load())
			st, err := e.store.Load(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, statestore.StatusRunning, st.Status)

			// Without an expected version it retries and succeeds.
			res, err := sg.SaveStateAndPromote(ctx, id, 4, tok, statestore.State{Status: "x", Data: json.RawMessage(`{"log":[]}`)})
			require.NoError(t, err)
			assert.Equal(t, []string{"a", "b1", "b2"}, calls(res.Applied))
			assert.Equal(t, int64(3), c.commits.Load())
			assert.JSONEq(t, `{"log":["a","b","b"]}`, e.data(t, id))
		})

		t.Run("session deleted and re-created in between", func(t *testing.T) {
			e.stage(t, id, 5, tok, add("a", "/log/-", "a", ms(1)))
			done := false
			var before map[string]string
			sg, _ := hooked(t, s, e, statestore.Options{}, func() {
				if done {
					return
				}
				done = true
				// Re-created at the same version as read: only the
				// incarnation differs.
				v := e.version(t, id)
				_, err := e.store.Delete(ctx, id, tok)
				require.NoError(t, err)
				e.create(t, id, tok, `{"fresh":true}`)
				for e.version(t, id) < v {
					_, err := e.store.IncrementStep(ctx, id, tok)
					require.NoError(t, err)
				}
				before = e.snapshot(t, id)
			})
			_, err := sg.Promote(ctx, id, 5, tok)
			// The changes read belong to the deleted session: refused, not
			// retried on the new one, nothing written.
			require.ErrorIs(t, err, statestore.ErrSessionReplaced)
			require.ErrorIs(t, err, statestore.ErrConflict)
			var re *statestore.ReplacedError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, "state", re.What)
			assert.Equal(t, before, e.snapshot(t, id))
			assert.JSONEq(t, `{"fresh":true}`, e.data(t, id))
		})
	})
}
