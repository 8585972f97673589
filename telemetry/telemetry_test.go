package telemetry_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/obs/obstest"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/memory"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestStores: the session stores and memory report their operations,
// fencing rejections, promotions, discards, checkpoint sizes and search
// durations by backend, with spans carrying the session id and token.
func TestStores(t *testing.T) {
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	ctx := t.Context()
	sdk, tel := obstest.New()
	var logs bytes.Buffer
	tel.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prefix := s.Prefix(t)
	l, err := lock.New(c, lock.Options{Prefix: prefix})
	require.NoError(t, err)
	defer l.Close()
	st, err := statestore.New(c, statestore.Options{Prefix: prefix, Telemetry: tel})
	require.NoError(t, err)
	stg, cps, out := staging.New(st), checkpoint.New(st), stream.New(st)

	lk, err := l.TryAcquire(ctx, "s1")
	require.NoError(t, err)
	tok := lk.Token()
	_, err = st.Create(ctx, "s1", tok, statestore.State{Status: statestore.StatusPending, Data: json.RawMessage(`{"n":0}`)})
	require.NoError(t, err)
	_, err = stg.Stage(ctx, "s1", 1, tok, staging.Change{ToolCallID: "t1", Patches: json.RawMessage(`[{"op":"replace","path":"/n","value":1}]`)})
	require.NoError(t, err)
	_, err = stg.Promote(ctx, "s1", 1, tok)
	require.NoError(t, err)
	_, err = stg.Stage(ctx, "s1", 2, tok, staging.Change{ToolCallID: "t2", Merge: json.RawMessage(`{"x":1}`)})
	require.NoError(t, err)
	_, err = stg.Discard(ctx, "s1", 2, tok)
	require.NoError(t, err)
	_, err = cps.Save(ctx, "s1", tok, checkpoint.Checkpoint{Step: 1, State: json.RawMessage(`{"n":1}`)})
	require.NoError(t, err)
	_, err = out.Append(ctx, "s1", tok, []byte("hello"))
	require.NoError(t, err)
	_, err = st.Load(ctx, "missing")
	require.ErrorIs(t, err, statestore.ErrNotFound)
	// A stale writer.
	require.NoError(t, lk.Release(ctx))
	lk2, err := l.TryAcquire(ctx, "s1")
	require.NoError(t, err)
	defer lk2.Release(ctx)
	_, err = st.Save(ctx, "s1", tok, statestore.State{Status: statestore.StatusFailed})
	require.ErrorIs(t, err, fencing.ErrStaleToken)
	_, err = out.Append(ctx, "s1", tok, []byte("stale"))
	require.ErrorIs(t, err, fencing.ErrStaleToken)

	mem, err := memory.New(c, memory.Options{Prefix: prefix, Dim: 2, Telemetry: tel})
	require.NoError(t, err)
	name, err := mem.LockName("user/1")
	require.NoError(t, err)
	ml, err := l.TryAcquire(ctx, name)
	require.NoError(t, err)
	defer ml.Release(ctx)
	require.NoError(t, mem.Put(ctx, []memory.Record{{ID: "r1", Scope: "user/1", Embedding: []float32{1, 0}}}, memory.WithToken(ml.Token())))
	res, err := mem.Search(ctx, []float32{1, 0}, memory.SearchOptions{Scope: "user/1", K: 1})
	require.NoError(t, err)
	require.Len(t, res, 1)

	m := sdk.Points(t)
	for k, want := range map[string]int64{
		"fencekit.operation.duration{statestore.Create,ok}":    1,
		"fencekit.operation.duration{statestore.Load,refused}": 1,
		"fencekit.operation.duration{statestore.Save,stale}":   1,
		"fencekit.fencing.rejections{statestore.Save,stale}":   1,
		"fencekit.fencing.rejections{stream.Append,stale}":     1,
		"fencekit.operation.duration{staging.Promote,ok}":      1,
		"fencekit.staging.promotions{}":                        1,
		"fencekit.staging.discards{}":                          1,
		"fencekit.checkpoint.size{}":                           1,
		"fencekit.memory.search.duration{scan}":                1,
		"fencekit.operation.duration{memory.Put,ok}":           1,
	} {
		assert.Equal(t, want, m[k], "%s (all: %v)", k, m)
	}
	var saw bool
	for _, sp := range sdk.Spans.Ended() {
		if sp.Name() == "statestore.Save" {
			saw = true
			a := attribute.NewSet(sp.Attributes()...)
			id, _ := a.Value("fencekit.id")
			tv, _ := a.Value("fencekit.token")
			oc, _ := a.Value("fencekit.outcome")
			assert.Equal(t, "s1", id.AsString())
			assert.Equal(t, int64(tok), tv.AsInt64())
			assert.Equal(t, "stale", oc.AsString())
		}
	}
	assert.True(t, saw, "no statestore.Save span")
	assert.Contains(t, logs.String(), `msg="fencekit: memory backend" backend=scan probed=true`)
}
