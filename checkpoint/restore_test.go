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

func TestRestore(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{"a":1}`, 3)
		doc := json.RawMessage(" {\"a\": 1,\n \"z\":\"<>\"} ")
		cp1, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 1, State: doc, MessageCount: 3})
		require.NoError(t, err)

		// The session moves on: new state, step, output and messages.
		_, err = e.store.Save(ctx, "s1", lk.Token(), statestore.State{
			AgentType: "coder", Status: statestore.StatusSuspended, Step: 5,
			Data: json.RawMessage(`{"a":2}`), Output: json.RawMessage(`"partial"`),
		})
		require.NoError(t, err)
		e.appendN(t, "s1", lk, 3, 2)
		cp2, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 5, State: json.RawMessage(`{"a":2}`), MessageCount: 5})
		require.NoError(t, err)
		page, err := e.store.Messages(ctx, "s1", "", 2)
		require.NoError(t, err)
		oldCursor := page.Next
		before, err := e.store.Load(ctx, "s1")
		require.NoError(t, err)

		v, err := e.cps.Restore(ctx, "s1", lk.Token(), cp1)
		require.NoError(t, err)
		assert.Equal(t, before.Version+1, v)

		st, err := e.store.Load(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, v, st.Version)
		assert.Equal(t, string(doc), string(st.Data), "data is the checkpoint's state, byte for byte")
		assert.Equal(t, int64(1), st.Step)
		assert.Equal(t, int64(3), st.MessageCount)
		assert.Equal(t, lk.Token(), st.Fence)
		// Everything else stays.
		assert.Equal(t, statestore.StatusSuspended, st.Status)
		assert.Equal(t, `"partial"`, string(st.Output))
		assert.Equal(t, "coder", st.AgentType)
		assert.Equal(t, before.CreatedAt, st.CreatedAt)
		assert.Equal(t, msgNames("m0", "m1", "m2"), e.messages(t, "s1"))

		// Message cursors from before the trim are refused, new ones work.
		_, err = e.store.Messages(ctx, "s1", oldCursor, 10)
		assert.ErrorIs(t, err, statestore.ErrInvalidCursor)
		page, err = e.store.Messages(ctx, "s1", "", 2)
		require.NoError(t, err)
		page, err = e.store.Messages(ctx, "s1", page.Next, 10)
		require.NoError(t, err)
		assert.Len(t, page.Messages, 1)

		// Checkpoints after the restored one stay.
		p, err := e.cps.List(ctx, "s1", "", 10)
		require.NoError(t, err)
		assert.Equal(t, []string{cp2, cp1}, cpIDs(p.Checkpoints))

		// A state restored from a checkpoint without a document has none.
		cp3, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 2, MessageCount: 3})
		require.NoError(t, err)
		_, err = e.cps.Restore(ctx, "s1", lk.Token(), cp3)
		require.NoError(t, err)
		st, err = e.store.Load(ctx, "s1")
		require.NoError(t, err)
		assert.Nil(t, st.Data)
		assert.Equal(t, int64(2), st.Step)
	})
}

func TestRestoreWithoutTrimKeepsCursors(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{"a":1}`, 3)
		cp, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 1, State: json.RawMessage(`{"a":1}`), MessageCount: 3})
		require.NoError(t, err)
		page, err := e.store.Messages(ctx, "s1", "", 2)
		require.NoError(t, err)
		_, err = e.cps.Restore(ctx, "s1", lk.Token(), cp)
		require.NoError(t, err)
		page, err = e.store.Messages(ctx, "s1", page.Next, 10)
		require.NoError(t, err, "nothing was trimmed, so the cursor still fits")
		assert.Len(t, page.Messages, 1)
	})
}

func TestRestoreToNoMessages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 0)
		cp, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 0, State: json.RawMessage(`{}`)})
		require.NoError(t, err)
		e.appendN(t, "s1", lk, 0, 5)
		_, err = e.cps.Restore(ctx, "s1", lk.Token(), cp)
		require.NoError(t, err)
		assert.Empty(t, e.messages(t, "s1"))
		assert.Empty(t, e.snapshot(t, "s1")[e.keys("s1").Msgs], "the message list is gone")
		e.appendN(t, "s1", lk, 10, 1)
		assert.Equal(t, msgNames("m10"), e.messages(t, "s1"))
	})
}

// TestRestoreRefusesTrimmedMessages: messages are stored once, so after a
// restore trims them, a checkpoint that covered the trimmed messages must
// not be restored, even when as many new messages were appended since.
func TestRestoreRefusesTrimmedMessages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		save := func(step, n int64) string {
			t.Helper()
			cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: step, MessageCount: n})
			require.NoError(t, err)
			return cpid
		}
		restore := func(cpid string) error {
			t.Helper()
			_, err := e.cps.Restore(ctx, "s1", lk.Token(), cpid)
			return err
		}
		refused := func(cpid string) {
			t.Helper()
			before := e.snapshot(t, "s1")
			err := restore(cpid)
			assert.ErrorIs(t, err, checkpoint.ErrMessagesTrimmed)
			assert.NotErrorIs(t, err, statestore.ErrNotFound)
			assert.Equal(t, before, e.snapshot(t, "s1"))
		}

		e.create(t, "s1", lk, `{}`, 5) // m0..m4
		a := save(1, 5)                // m0..m4
		b := save(2, 2)                // m0 m1
		require.NoError(t, restore(b)) // m0 m1
		e.appendN(t, "s1", lk, 12, 3)  // m0 m1 m12 m13 m14
		c := save(3, 5)

		refused(a) // 5 messages again, but not a's
		require.NoError(t, restore(c), "c's messages are all there")
		assert.Equal(t, msgNames("m0", "m1", "m12", "m13", "m14"), e.messages(t, "s1"))

		require.NoError(t, restore(b)) // m0 m1
		refused(c)
		refused(a)
		e.appendN(t, "s1", lk, 22, 2) // m0 m1 m22 m23
		d := save(4, 4)
		e.appendN(t, "s1", lk, 24, 1)  // m0 m1 m22 m23 m24
		require.NoError(t, restore(d)) // m0 m1 m22 m23
		require.NoError(t, restore(d), "restoring twice")
		require.NoError(t, restore(b))
		require.NoError(t, restore(b))
		assert.Equal(t, msgNames("m0", "m1"), e.messages(t, "s1"))
		refused(d)
		refused(c)
		refused(a)
		first := save(5, 0)
		require.NoError(t, restore(first))
		assert.Empty(t, e.messages(t, "s1"))
		refused(b)
	})
}
