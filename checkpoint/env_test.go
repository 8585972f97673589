package checkpoint_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// env is a Locker, a statestore.Store and a checkpoint.Store sharing a
// (round-trip counting) client and a prefix.
type env struct {
	s      *redistest.Server
	client *redistest.CountingClient
	prefix string
	locker *lock.Locker
	store  *statestore.Store
	cps    *checkpoint.Store
}

func newEnv(t *testing.T, s *redistest.Server, opts statestore.Options) *env {
	t.Helper()
	c := redistest.Counting(s.NewClient(t))
	if opts.Prefix == "" {
		opts.Prefix = s.Prefix(t)
	}
	l, err := lock.New(c, lock.Options{Prefix: opts.Prefix, TTL: 10 * time.Second, Owner: "executor-a"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	st, err := statestore.New(c, opts)
	require.NoError(t, err)
	return &env{s: s, client: c, prefix: opts.Prefix, locker: l, store: st, cps: checkpoint.New(st)}
}

// secondLocker returns another executor's Locker on the same prefix.
func (e *env) secondLocker(t *testing.T) *lock.Locker {
	t.Helper()
	l, err := lock.New(e.client, lock.Options{Prefix: e.prefix, TTL: 10 * time.Second, Owner: "executor-b"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func acquire(t *testing.T, l *lock.Locker, id string) *lock.Lock {
	t.Helper()
	lk, err := l.Acquire(t.Context(), id)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lk.Release(context.Background()) })
	return lk
}

func (e *env) keys(id string) keys.Session { return keys.ForSession(e.prefix, id) }

// snapshot returns the content of every data key of session id (and of
// its lock), to compare before and after a call that must not write.
func (e *env) snapshot(t *testing.T, id string) map[string]string {
	t.Helper()
	k := e.keys(id)
	return e.s.Snapshot(t, k.All()...)
}

// create makes session id with a state document and n messages "m0".."m<n-1>".
func (e *env) create(t *testing.T, id string, lk *lock.Lock, data string, n int) {
	t.Helper()
	ctx := t.Context()
	_, err := e.store.Create(ctx, id, lk.Token(), statestore.State{
		AgentType: "coder", Status: statestore.StatusRunning, Step: 1, Data: json.RawMessage(data),
	})
	require.NoError(t, err)
	e.appendN(t, id, lk, 0, n)
}

// appendN appends messages "m<from>".."m<from+n-1>".
func (e *env) appendN(t *testing.T, id string, lk *lock.Lock, from, n int) {
	t.Helper()
	if n == 0 {
		return
	}
	msgs := make([]json.RawMessage, n)
	for i := range msgs {
		msgs[i] = json.RawMessage(fmt.Sprintf(`"m%d"`, from+i))
	}
	_, err := e.store.AppendMessages(t.Context(), id, lk.Token(), msgs...)
	require.NoError(t, err)
}

func (e *env) version(t *testing.T, id string) int64 {
	t.Helper()
	st, err := e.store.Load(t.Context(), id)
	require.NoError(t, err)
	return st.Version
}

// messages reads every message of session id.
func (e *env) messages(t *testing.T, id string) []string {
	t.Helper()
	p, err := e.store.Messages(t.Context(), id, "", statestore.MaxPageSize)
	require.NoError(t, err)
	out := make([]string, len(p.Messages))
	for i, m := range p.Messages {
		out[i] = string(m)
	}
	return out
}

func msgNames(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = `"` + n + `"`
	}
	return out
}
