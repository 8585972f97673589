package staging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// env is a Locker, a Store and a Stager sharing a client and a prefix.
type env struct {
	s      *redistest.Server
	locker *lock.Locker
	store  *statestore.Store
	stager *staging.Stager
}

func newEnv(t *testing.T, s *redistest.Server, opts statestore.Options) *env {
	t.Helper()
	c := s.NewClient(t)
	if opts.Prefix == "" {
		opts.Prefix = s.Prefix(t)
	}
	l, err := lock.New(c, lock.Options{Prefix: opts.Prefix, TTL: 10 * time.Second, Owner: "exec-a"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	st, err := statestore.New(c, opts)
	require.NoError(t, err)
	return &env{s: s, locker: l, store: st, stager: staging.New(st)}
}

// second returns another executor on the same server and prefix, with a
// client and Locker of its own.
func (e *env) second(t *testing.T) *env {
	t.Helper()
	c := e.s.NewClient(t)
	l, err := lock.New(c, lock.Options{Prefix: e.store.Options().Prefix, TTL: 10 * time.Second, Owner: "exec-b"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	st, err := statestore.New(c, e.store.Options())
	require.NoError(t, err)
	return &env{s: e.s, locker: l, store: st, stager: staging.New(st)}
}

func (e *env) acquire(t *testing.T, id string) *lock.Lock {
	t.Helper()
	lk, err := e.locker.Acquire(t.Context(), id)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lk.Release(context.Background()) })
	return lk
}

func (e *env) keys(id string) keys.Session {
	return keys.ForSession(e.store.Options().Prefix, id)
}

// snapshot returns every key of session id, lock and fence included.
func (e *env) snapshot(t *testing.T, id string) map[string]string {
	t.Helper()
	k := e.keys(id)
	return e.s.Snapshot(t, k.All()...)
}

// create makes session id with document data.
func (e *env) create(t *testing.T, id string, tok fencing.Token, data string) {
	t.Helper()
	st := statestore.State{AgentType: "agent", Status: statestore.StatusRunning}
	if data != "" {
		st.Data = json.RawMessage(data)
	}
	_, err := e.store.Create(t.Context(), id, tok, st)
	require.NoError(t, err)
}

// stage stages c and fails the test on an error.
func (e *env) stage(t *testing.T, id string, step int64, tok fencing.Token, c staging.Change) int64 {
	t.Helper()
	v, err := e.stager.Stage(t.Context(), id, step, tok, c)
	require.NoError(t, err)
	return v
}

// data returns the stored document of session id.
func (e *env) data(t *testing.T, id string) string {
	t.Helper()
	st, err := e.store.Load(t.Context(), id)
	require.NoError(t, err)
	return string(st.Data)
}

func (e *env) version(t *testing.T, id string) int64 {
	t.Helper()
	st, err := e.store.Load(t.Context(), id)
	require.NoError(t, err)
	return st.Version
}

// ms is a fixed timestamp plus n milliseconds.
func ms(n int) time.Time { return time.UnixMilli(1_700_000_000_000 + int64(n)) }

// add returns a change adding value at path.
func add(call, path string, value any, at time.Time) staging.Change {
	v, err := json.Marshal(value)
	if err != nil {
		panic(err)
	}
	return staging.Change{
		ToolCallID: call,
		Patches:    json.RawMessage(fmt.Sprintf(`[{"op":"add","path":%q,"value":%s}]`, path, v)),
		Timestamp:  at,
	}
}

// calls returns the tool call ids of list, in order.
func calls(list []staging.Staged) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ToolCallID
	}
	return out
}
