package stream_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

// TestSessionDeleteRemovesStream: deleting a session deletes its output
// stream and the stream's metadata, so a session created again under the
// same id starts a fresh stream instead of finding the old one ended.
func TestSessionDeleteRemovesStream(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "d")
		_, err := e.store.Create(ctx, "d", lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		_, err = e.streams.Append(ctx, "d", lk.Token(), []byte("old"))
		require.NoError(t, err)
		_, err = e.streams.End(ctx, "d", lk.Token())
		require.NoError(t, err)

		_, err = e.store.Delete(ctx, "d", lk.Token())
		require.NoError(t, err)
		assert.Empty(t, e.s.Snapshot(t, e.keys("d").Out, stream.MetaKey(e.prefix, "d")))

		_, err = e.store.Create(ctx, "d", lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		_, err = e.streams.Append(ctx, "d", lk.Token(), []byte("new"))
		require.NoError(t, err, "the recreated session's stream must not be the old, ended one")
	})
}
