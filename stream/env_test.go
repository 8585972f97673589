package stream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

// env is a Locker, a statestore.Store and Streams sharing a (round-trip
// counting) client and a prefix.
type env struct {
	s       *redistest.Server
	client  *redistest.CountingClient
	prefix  string
	locker  *lock.Locker
	store   *statestore.Store
	streams *stream.Streams
}

func newEnv(t *testing.T, s *redistest.Server, opts stream.Options) *env {
	t.Helper()
	c := redistest.Counting(s.NewClient(t))
	prefix := s.Prefix(t)
	l, err := lock.New(c, lock.Options{Prefix: prefix, TTL: 10 * time.Second, Owner: "executor-a"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	st, err := statestore.New(c, statestore.Options{Prefix: prefix})
	require.NoError(t, err)
	ss, err := stream.NewWithOptions(st, opts)
	require.NoError(t, err)
	return &env{s: s, client: c, prefix: prefix, locker: l, store: st, streams: ss}
}

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

// snapshot returns the content of every key of session id, its lock included.
func (e *env) snapshot(t *testing.T, id string) map[string]string {
	t.Helper()
	k := e.keys(id)
	return e.s.Snapshot(t, k.All()...)
}

// appendN appends chunks "c<from>".."c<from+n-1>".
func (e *env) appendN(t *testing.T, id string, lk *lock.Lock, from, n int) []stream.Seq {
	t.Helper()
	out := make([]stream.Seq, n)
	for i := range n {
		q, err := e.streams.Append(t.Context(), id, lk.Token(), fmt.Appendf(nil, "c%d", from+i))
		require.NoError(t, err)
		out[i] = q
	}
	return out
}

func data(cs []stream.Chunk) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Data)
	}
	return out
}

func names(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%d", from+i)
	}
	return out
}
