package staging_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// TestStagePromote: changes staged out of order are applied in (timestamp,
// tool call id) order, patches before merge; the version bumps with each
// write; the stage of the step is gone and other steps stay.
func TestStagePromote(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		const id = "flow"
		lk := e.acquire(t, id)
		tok := lk.Token()
		e.create(t, id, tok, `{"log":[],"n":0}`)
		v0 := e.version(t, id)

		// Staged in an order that differs from the order of application.
		v1 := e.stage(t, id, 3, tok, add("c", "/log/-", "c@20", ms(20)))
		v2 := e.stage(t, id, 3, tok, add("b", "/log/-", "b@10", ms(10)))
		v3 := e.stage(t, id, 3, tok, add("a", "/log/-", "a@20", ms(20))) // same time as c: id order
		v4 := e.stage(t, id, 3, tok, staging.Change{
			ToolCallID: "d",
			Patches:    json.RawMessage(`[{"op":"test","path":"/log/0","value":"b@10"},{"op":"replace","path":"/n","value":1}]`),
			Merge:      json.RawMessage(`{"n":2,"merged":{"ok":true}}`), // after the patches
			Timestamp:  ms(30),
		})
		v5 := e.stage(t, id, 4, tok, add("later", "/log/-", "step 4", ms(0)))
		assert.Equal(t, []int64{v0 + 1, v0 + 2, v0 + 3, v0 + 4, v0 + 5}, []int64{v1, v2, v3, v4, v5}, "each Stage bumps the version")

		res, err := e.stager.Promote(ctx, id, 3, tok)
		require.NoError(t, err)
		assert.Equal(t, []string{"b", "a", "c", "d"}, calls(res.Applied))
		assert.Empty(t, res.Skipped)
		assert.Equal(t, v5+1, res.Version)
		want := `{"log":["b@10","a@20","c@20"],"n":2,"merged":{"ok":true}}`
		assert.JSONEq(t, want, string(res.Data))
		assert.JSONEq(t, want, e.data(t, id))
		for _, a := range res.Applied {
			assert.Equal(t, tok, a.Token)
			assert.Equal(t, int64(3), a.Step)
		}
		assert.Equal(t, ms(10), res.Applied[0].Timestamp)

		st, err := e.store.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, res.Version, st.Version)
		assert.Equal(t, tok, st.Fence)
		assert.Equal(t, statestore.StatusRunning, st.Status, "Promote keeps the other fields")
		assert.Equal(t, "agent", st.AgentType)

		list, err := e.stager.List(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, []string{"later"}, calls(list), "only step 4 is still staged")

		// Promoting the step again finds nothing: no write.
		again, err := e.stager.Promote(ctx, id, 3, tok)
		require.NoError(t, err)
		assert.Empty(t, again.Applied)
		assert.Equal(t, res.Version, again.Version)
		assert.JSONEq(t, want, string(again.Data))
		assert.Equal(t, res.Version, e.version(t, id))

		res, err = e.stager.Promote(ctx, id, 4, tok)
		require.NoError(t, err)
		assert.Equal(t, []string{"later"}, calls(res.Applied))
		m := s.Do(t, "EXISTS", e.keys(id).Stage)
		n, err := m.AsInt64()
		require.NoError(t, err)
		assert.Zero(t, n, "an empty stage hash does not exist")
	})
}

// TestStagedValue: the stored change records the token that staged it and
// its time; restaging a tool call replaces its change; a zero Timestamp is
// the server time.
func TestStagedValue(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		const id = "val"
		lk := e.acquire(t, id)
		tok := lk.Token()
		e.create(t, id, tok, "")

		before := time.Now().Add(-time.Second)
		e.stage(t, id, 7, tok, staging.Change{ToolCallID: "t1", Merge: json.RawMessage(` { "a" : 1 } `)})
		after := time.Now().Add(time.Second)
		m := s.Do(t, "HGET", e.keys(id).Stage, "7|t1")
		raw, err := m.ToString()
		require.NoError(t, err)
		var v struct {
			Token   fencing.Token   `json:"token"`
			TS      int64           `json:"ts"`
			Patches json.RawMessage `json:"patches"`
			Merge   json.RawMessage `json:"merge"`
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &v), raw)
		assert.Equal(t, tok, v.Token)
		assert.True(t, v.TS >= before.UnixMilli() && v.TS <= after.UnixMilli(), "ts %d is the server time", v.TS)
		assert.JSONEq(t, `[]`, string(v.Patches))
		assert.Equal(t, `{"a":1}`, string(v.Merge))

		// Restaging replaces.
		e.stage(t, id, 7, tok, staging.Change{ToolCallID: "t1", Merge: json.RawMessage(`{"a":2}`), Timestamp: ms(5)})
		list, err := e.stager.List(ctx, id)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, staging.Staged{Step: 7, Token: tok, Change: staging.Change{
			ToolCallID: "t1", Merge: json.RawMessage(`{"a":2}`), Timestamp: ms(5),
		}}, list[0])

		// The stage takes the session TTL: the session's keys live at least
		// the TTL after a write, at most 1% longer (scripts/lua/lib_fence.lua).
		m = s.Do(t, "PTTL", e.keys(id).Stage)
		pttl, err := m.AsInt64()
		require.NoError(t, err)
		ttl := statestore.DefaultTTL.Milliseconds()
		assert.GreaterOrEqual(t, pttl, ttl-5000)
		assert.LessOrEqual(t, pttl, ttl+ttl/100)
	})
}

// TestNullDocument: a session without a document (or with null) is
// patched as {}.
func TestNullDocument(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		for i, doc := range []string{"", "null", " null "} {
			id := "nil" + strconv.Itoa(i)
			tok := e.acquire(t, id).Token()
			e.create(t, id, tok, doc)
			e.stage(t, id, 0, tok, add("p", "/a", 1, ms(1)))
			e.stage(t, id, 0, tok, staging.Change{ToolCallID: "m", Merge: json.RawMessage(`{"b":2}`), Timestamp: ms(2)})
			res, err := e.stager.Promote(ctx, id, 0, tok)
			require.NoError(t, err, "doc %q", doc)
			assert.JSONEq(t, `{"a":1,"b":2}`, string(res.Data))
			assert.JSONEq(t, `{"a":1,"b":2}`, e.data(t, id))
		}
	})
}

// TestList: every staged change of a session, by step, time and id, in one
// call; a session without a stage lists nothing.
func TestList(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		const id = "list"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{}`)
		list, err := e.stager.List(ctx, id)
		require.NoError(t, err)
		assert.Empty(t, list)

		e.stage(t, id, 10, tok, add("x", "/x", 1, ms(1)))
		e.stage(t, id, 2, tok, add("z", "/z", 1, ms(1)))
		e.stage(t, id, 2, tok, add("y", "/y", 1, ms(0)))
		e.stage(t, id, 2, tok, add("a", "/a", 1, ms(1)))
		list, err = e.stager.List(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, []string{"y", "a", "z", "x"}, calls(list))
		assert.Equal(t, []int64{2, 2, 2, 10}, []int64{list[0].Step, list[1].Step, list[2].Step, list[3].Step})
		assert.JSONEq(t, `[{"op":"add","path":"/x","value":1}]`, string(list[3].Patches))
	})
}

// TestDiscard drops one step, bumps the version, and is a no-op (no write)
// when nothing is staged.
func TestDiscard(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		const id = "disc"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{"k":0}`)
		e.stage(t, id, 1, tok, add("a", "/a", 1, ms(0)))
		e.stage(t, id, 1, tok, add("b", "/b", 1, ms(0)))
		e.stage(t, id, 11, tok, add("c", "/c", 1, ms(0))) // "11|" must not match step 1
		v := e.version(t, id)

		n, err := e.stager.Discard(ctx, id, 1, tok)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		assert.Equal(t, v+1, e.version(t, id))
		list, err := e.stager.List(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, []string{"c"}, calls(list))
		assert.JSONEq(t, `{"k":0}`, e.data(t, id))

		before := e.snapshot(t, id)
		n, err = e.stager.Discard(ctx, id, 1, tok)
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Equal(t, before, e.snapshot(t, id), "discarding nothing writes nothing")
	})
}

// TestSaveStateAndPromote: st replaces the state and the step's changes
// apply on top of st.Data, in one write; an expected version is checked.
func TestSaveStateAndPromote(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		const id = "sap"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{"old":true}`)
		e.stage(t, id, 5, tok, add("t1", "/items/-", 1, ms(1)))
		e.stage(t, id, 5, tok, add("t2", "/items/-", 2, ms(2)))
		v := e.version(t, id)

		// A wrong expected version: nothing written, no retry.
		before := e.snapshot(t, id)
		_, err := e.stager.SaveStateAndPromote(ctx, id, 5, tok, statestore.State{Status: "x", Version: v - 1})
		var ce *statestore.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, v-1, ce.Expected)
		assert.Equal(t, v, ce.Current)
		assert.ErrorIs(t, err, statestore.ErrConflict)
		assert.Equal(t, before, e.snapshot(t, id))

		res, err := e.stager.SaveStateAndPromote(ctx, id, 5, tok, statestore.State{
			AgentType: "planner", Status: statestore.StatusSuspended, Step: 6,
			Data: json.RawMessage(`{"items":[0]}`), Output: json.RawMessage(`"out"`), Error: "e", Version: v,
		})
		require.NoError(t, err)
		assert.Equal(t, []string{"t1", "t2"}, calls(res.Applied))
		assert.Equal(t, v+1, res.Version)
		assert.JSONEq(t, `{"items":[0,1,2]}`, string(res.Data))
		st, err := e.store.Load(ctx, id)
		require.NoError(t, err)
		assert.JSONEq(t, `{"items":[0,1,2]}`, string(st.Data))
		assert.Equal(t, "planner", st.AgentType)
		assert.Equal(t, statestore.StatusSuspended, st.Status)
		assert.Equal(t, int64(6), st.Step)
		assert.Equal(t, `"out"`, string(st.Output))
		assert.Equal(t, "e", st.Error)
		assert.Equal(t, v+1, st.Version)
		list, err := e.stager.List(ctx, id)
		require.NoError(t, err)
		assert.Empty(t, list)

		// Nothing staged: the state is still saved.
		res, err = e.stager.SaveStateAndPromote(ctx, id, 5, tok, statestore.State{Status: statestore.StatusCompleted})
		require.NoError(t, err)
		assert.Empty(t, res.Applied)
		assert.Equal(t, v+2, res.Version)
		st, err = e.store.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, statestore.StatusCompleted, st.Status)
		assert.Empty(t, st.Data)

		// No session.
		nobody := e.acquire(t, "nobody").Token()
		_, err = e.stager.SaveStateAndPromote(ctx, "nobody", 5, nobody, statestore.State{Status: "x"})
		assert.ErrorIs(t, err, statestore.ErrNotFound)
	})
}
