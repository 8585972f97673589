package staging_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// TestStageBadInput: changes, ids and arguments that Stage refuses before
// sending anything, each with its typed error; nothing changes.
func TestStageBadInput(t *testing.T) {
	const maxBytes = 1024
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{MaxDocumentBytes: maxBytes})
		ctx := t.Context()
		const id = "bad"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{"a":1}`)
		e.stage(t, id, 1, tok, add("ok", "/b", 2, ms(0)))
		big := strings.Repeat("x", maxBytes)
		cases := []struct {
			name string
			id   string
			step int64
			tok  fencing.Token
			c    staging.Change
			want error
		}{
			{"patches not JSON", id, 1, tok, staging.Change{ToolCallID: "t", Patches: json.RawMessage(`[{"op":`)}, staging.ErrInvalidPatch},
			{"patches an object", id, 1, tok, staging.Change{ToolCallID: "t", Patches: json.RawMessage(`{"op":"add","path":"/a","value":1}`)}, staging.ErrInvalidPatch},
			{"patches null", id, 1, tok, staging.Change{ToolCallID: "t", Patches: json.RawMessage(`null`)}, staging.ErrInvalidPatch},
			{"unknown op", id, 1, tok, staging.Change{ToolCallID: "t", Patches: json.RawMessage(`[{"op":"frobnicate","path":"/a"}]`)}, staging.ErrInvalidPatch},
			{"op without path", id, 1, tok, staging.Change{ToolCallID: "t", Patches: json.RawMessage(`[{"op":"remove"}]`)}, staging.ErrInvalidPatch},
			{"add without value", id, 1, tok, staging.Change{ToolCallID: "t", Patches: json.RawMessage(`[{"op":"add","path":"/a"}]`)}, staging.ErrInvalidPatch},
			{"test without value", id, 1, tok, staging.Change{ToolCallID: "t", Patches: json.RawMessage(`[{"op":"test","path":"/a"}]`)}, staging.ErrInvalidPatch},
			{"merge an array", id, 1, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`[1]`)}, staging.ErrInvalidPatch},
			{"merge a string", id, 1, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`"x"`)}, staging.ErrInvalidPatch},
			{"merge null", id, 1, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`null`)}, staging.ErrInvalidPatch},
			{"merge not JSON", id, 1, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`{"a":`)}, staging.ErrInvalidPatch},
			{"oversized patches", id, 1, tok, add("t", "/big", big, ms(0)), statestore.ErrTooLarge},
			{"oversized merge", id, 1, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`{"big":"` + big + `"}`)}, statestore.ErrTooLarge},
			{"empty tool call id", id, 1, tok, add("", "/a", 1, ms(0)), statestore.ErrInvalidID},
			{"tool call id with |", id, 1, tok, add("a|b", "/a", 1, ms(0)), statestore.ErrInvalidID},
			{"tool call id with brace", id, 1, tok, add("a{b}", "/a", 1, ms(0)), statestore.ErrInvalidID},
			{"tool call id with newline", id, 1, tok, add("a\nb", "/a", 1, ms(0)), statestore.ErrInvalidID},
			{"invalid session id", "a{b}", 1, tok, add("t", "/a", 1, ms(0)), statestore.ErrInvalidID},
			{"empty session id", "", 1, tok, add("t", "/a", 1, ms(0)), statestore.ErrInvalidID},
			{"negative step", id, -1, tok, add("t", "/a", 1, ms(0)), statestore.ErrInvalidArgument},
			{"zero token", id, 1, 0, add("t", "/a", 1, ms(0)), fencing.ErrInvalidToken},
			{"timestamp before 1970", id, 1, tok, add("t", "/a", 1, time.UnixMilli(-5)), statestore.ErrInvalidArgument},
		}
		before := e.snapshot(t, id)
		for _, tc := range cases {
			_, err := e.stager.Stage(ctx, tc.id, tc.step, tc.tok, tc.c)
			assert.ErrorIs(t, err, tc.want, tc.name)
			if errors.Is(tc.want, staging.ErrInvalidPatch) {
				var pe *staging.PatchError
				if assert.ErrorAs(t, err, &pe, tc.name) {
					assert.Equal(t, "t", pe.ToolCallID, tc.name)
					assert.Equal(t, id, pe.ID, tc.name)
				}
			}
			assert.Equal(t, before, e.snapshot(t, id), tc.name)
		}

		// Bad ids and steps on the other calls.
		for _, bad := range []string{"", "a{b", "a|b", "a\x00"} {
			_, err := e.stager.Promote(ctx, bad, 1, tok)
			assert.ErrorIs(t, err, statestore.ErrInvalidID)
			_, err = e.stager.Discard(ctx, bad, 1, tok)
			assert.ErrorIs(t, err, statestore.ErrInvalidID)
			_, err = e.stager.List(ctx, bad)
			assert.ErrorIs(t, err, statestore.ErrInvalidID)
			_, err = e.stager.SaveStateAndPromote(ctx, bad, 1, tok, statestore.State{Status: "x"})
			assert.ErrorIs(t, err, statestore.ErrInvalidID)
		}
		_, err := e.stager.Promote(ctx, id, -1, tok)
		assert.ErrorIs(t, err, statestore.ErrInvalidArgument)
		_, err = e.stager.Discard(ctx, id, -1, tok)
		assert.ErrorIs(t, err, statestore.ErrInvalidArgument)
		_, err = e.stager.Promote(ctx, id, 1, 0)
		assert.ErrorIs(t, err, fencing.ErrInvalidToken)
		for name, st := range map[string]statestore.State{
			"empty status":     {},
			"invalid status":   {Status: "a b"},
			"data not JSON":    {Status: "x", Data: json.RawMessage(`{`)},
			"output not JSON":  {Status: "x", Output: json.RawMessage(`{`)},
			"negative step":    {Status: "x", Step: -1},
			"negative version": {Status: "x", Version: -1},
			"too large":        {Status: "x", Data: json.RawMessage(`"` + big + `"`)},
		} {
			_, err := e.stager.SaveStateAndPromote(ctx, id, 1, tok, st)
			assert.Error(t, err, name)
			assert.True(t, errors.Is(err, statestore.ErrInvalidDocument) || errors.Is(err, statestore.ErrInvalidArgument) ||
				errors.Is(err, statestore.ErrTooLarge), "%s: %v", name, err)
		}
		assert.Equal(t, before, e.snapshot(t, id))
	})
}

// TestUnknownSession: every call on a session that does not exist gets
// ErrNotFound and creates nothing.
func TestUnknownSession(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		const id = "ghost"
		tok := e.acquire(t, id).Token()
		before := e.snapshot(t, id)
		_, err := e.stager.Stage(ctx, id, 1, tok, add("t", "/a", 1, ms(0)))
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		_, err = e.stager.Promote(ctx, id, 1, tok)
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		_, err = e.stager.Discard(ctx, id, 1, tok)
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		_, err = e.stager.List(ctx, id)
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		_, err = e.stager.SaveStateAndPromote(ctx, id, 1, tok, statestore.State{Status: "x"})
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		assert.Equal(t, before, e.snapshot(t, id))
	})
}

// TestPromoteFailures: a change that does not apply, or a result above the
// size limit, fails the whole promote: nothing is written and the stage
// stays, even when earlier changes of the step applied fine.
func TestPromoteFailures(t *testing.T) {
	const maxBytes = 1024
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{MaxDocumentBytes: maxBytes})
		ctx := t.Context()
		const id = "fail"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{"n":1,"list":[1,2],"obj":{"k":"v"},"s":"`+strings.Repeat("y", 200)+`"}`)

		cases := []struct {
			name    string
			patches string
			merge   string
			want    error
			libErr  error // the json-patch error inside, if any
		}{
			{name: "test fails", patches: `[{"op":"test","path":"/n","value":2}]`, want: staging.ErrInvalidPatch, libErr: jsonpatch.ErrTestFailed},
			{name: "test on a missing path", patches: `[{"op":"test","path":"/nope","value":1}]`, want: staging.ErrInvalidPatch},
			{name: "remove a missing path", patches: `[{"op":"remove","path":"/nope"}]`, want: staging.ErrInvalidPatch},
			{name: "replace a missing path", patches: `[{"op":"replace","path":"/nope","value":1}]`, want: staging.ErrInvalidPatch},
			{name: "add under a missing parent", patches: `[{"op":"add","path":"/nope/deeper","value":1}]`, want: staging.ErrInvalidPatch},
			{name: "add beyond the end of an array", patches: `[{"op":"add","path":"/list/9","value":1}]`, want: staging.ErrInvalidPatch},
			{name: "move from a missing path", patches: `[{"op":"move","from":"/nope","path":"/x"}]`, want: staging.ErrInvalidPatch},
			{name: "index into an object", patches: `[{"op":"replace","path":"/n/0","value":1}]`, want: staging.ErrInvalidPatch},
			{name: "result too large", merge: `{"big":"` + strings.Repeat("z", 900) + `"}`, want: statestore.ErrTooLarge},
			{name: "copies too large", patches: `[` + strings.Repeat(`{"op":"copy","from":"/s","path":"/c"},`, 5) + `{"op":"copy","from":"/s","path":"/d"}]`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				// A good change first, the bad one after it.
				e.stage(t, id, 1, tok, add("good", "/good", true, ms(1)))
				c := staging.Change{ToolCallID: "bad", Timestamp: ms(2)}
				if tc.patches != "" {
					c.Patches = json.RawMessage(tc.patches)
				}
				if tc.merge != "" {
					c.Merge = json.RawMessage(tc.merge)
				}
				e.stage(t, id, 1, tok, c)
				before := e.snapshot(t, id)
				_, err := e.stager.Promote(ctx, id, 1, tok)
				require.Error(t, err)
				if tc.want != nil {
					assert.ErrorIs(t, err, tc.want)
				} else {
					assert.True(t, errors.Is(err, staging.ErrInvalidPatch) || errors.Is(err, statestore.ErrTooLarge), err)
				}
				if errors.Is(err, staging.ErrInvalidPatch) {
					var pe *staging.PatchError
					require.ErrorAs(t, err, &pe)
					assert.Equal(t, "bad", pe.ToolCallID)
					assert.Equal(t, int64(1), pe.Step)
				}
				if tc.libErr != nil {
					assert.ErrorIs(t, err, tc.libErr)
				}
				assert.Equal(t, before, e.snapshot(t, id), "nothing written, the stage stays")
				_, err = e.stager.SaveStateAndPromote(ctx, id, 1, tok, statestore.State{Status: "x",
					Data: json.RawMessage(`{"n":1,"list":[1,2],"obj":{"k":"v"},"s":"` + strings.Repeat("y", 200) + `"}`)})
				require.Error(t, err)
				assert.Equal(t, before, e.snapshot(t, id), "nothing written by SaveStateAndPromote either")
				n, err := e.stager.Discard(ctx, id, 1, tok)
				require.NoError(t, err)
				assert.Equal(t, 2, n)
			})
		}
	})
}

// TestScriptArguments calls the scripts directly with arguments the Go
// side never sends: each is refused with FENCEKIT_BADARG before any write.
func TestScriptArguments(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		const id = "args"
		tok := e.acquire(t, id).Token()
		e.create(t, id, tok, `{}`)
		e.stage(t, id, 1, tok, add("a", "/a", 1, ms(0)))
		k := e.keys(id)
		d := k.Data()
		fencedKeys := append([]string{k.Lock, k.Fence}, d[:]...)
		base := []string{tok.String(), "S", "60000"}
		v := strconv.FormatInt(e.version(t, id), 10)
		m := s.Do(t, "HGET", k.State, "inc")
		created, err := m.ToString()
		require.NoError(t, err)
		cases := []struct {
			name   string
			script *lua.Script
			keys   []string
			args   []string
		}{
			{"put: step", lua.StagePut, fencedKeys, append(base, "x", "t", "", `{"patches":[]}`)},
			{"put: tool call id with |", lua.StagePut, fencedKeys, append(base, "1", "a|b", "", `{"patches":[]}`)},
			{"put: empty tool call id", lua.StagePut, fencedKeys, append(base, "1", "", "", `{"patches":[]}`)},
			{"put: timestamp", lua.StagePut, fencedKeys, append(base, "1", "t", "-5", `{"patches":[]}`)},
			{"put: empty body", lua.StagePut, fencedKeys, append(base, "1", "t", "", `{}`)},
			{"put: body not an object", lua.StagePut, fencedKeys, append(base, "1", "t", "", `[1]`)},
			{"put: no body", lua.StagePut, fencedKeys, append(base, "1", "t", "")},
			{"put: ttl", lua.StagePut, fencedKeys, []string{tok.String(), "S", "x", "1", "t", "", `{"patches":[]}`}},
			{"put: mode", lua.StagePut, fencedKeys, []string{tok.String(), "Q", "0", "1", "t", "", `{"patches":[]}`}},
			{"put: mode QS", lua.StagePut, fencedKeys, []string{tok.String(), "QS", "0", "1", "t", "", `{"patches":[]}`}},
			{"put: mode SQQ", lua.StagePut, fencedKeys, []string{tok.String(), "SQQ", "0", "1", "t", "", `{"patches":[]}`}},
			{"put: mode sq", lua.StagePut, fencedKeys, []string{tok.String(), "sq", "0", "1", "t", "", `{"patches":[]}`}},
			{"discard: step", lua.StageDiscard, fencedKeys, append(base, "1.5")},
			{"read: step", lua.StageRead, []string{k.Lock, k.Fence, k.State, k.Stage}, []string{"", "S", "-1", "0"}},
			{"read: data flag", lua.StageRead, []string{k.Lock, k.Fence, k.State, k.Stage}, []string{"", "S", "1", "2"}},
			{"commit: expected version", lua.StageCommit, fencedKeys, append(base, "v", created, "{}", "0", "", "", "", "", "", "1|a")},
			{"commit: replace flag", lua.StageCommit, fencedKeys, append(base, v, created, "{}", "2", "", "", "", "", "", "1|a")},
			{"commit: state step", lua.StageCommit, fencedKeys, append(base, v, created, "{}", "1", "", "x", "-1", "", "", "1|a")},
			{"commit: empty status", lua.StageCommit, fencedKeys, append(base, v, created, "{}", "1", "", "", "1", "", "", "1|a")},
		}
		c := s.NewClient(t)
		before := e.snapshot(t, id)
		for _, tc := range cases {
			err := tc.script.Exec(t.Context(), c, tc.keys, tc.args).Error()
			code, _, ok := scripterr.Parse(err)
			assert.True(t, ok && code == scripterr.BadArg, "%s: %v", tc.name, err)
			assert.Equal(t, before, e.snapshot(t, id), tc.name)
		}
	})
}
