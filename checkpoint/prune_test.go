package checkpoint_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

func TestPrune(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 0)
		var ids []string
		for i := range 6 {
			cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: int64(5 - i)}) // steps fall: order is by save
			require.NoError(t, err)
			ids = append(ids, cpid)
		}

		v := e.version(t, "s1")
		n, err := e.cps.Prune(ctx, "s1", lk.Token(), 2)
		require.NoError(t, err)
		assert.Equal(t, 4, n)
		assert.Equal(t, v+1, e.version(t, "s1"))
		p, err := e.cps.List(ctx, "s1", "", 10)
		require.NoError(t, err)
		assert.Equal(t, []string{ids[5], ids[4]}, cpIDs(p.Checkpoints))
		assert.Equal(t, int64(2), p.Total)
		for _, cpid := range ids[:4] {
			_, err := e.cps.Get(ctx, "s1", cpid)
			assert.ErrorIs(t, err, statestore.ErrNotFound)
			_, err = e.cps.Restore(ctx, "s1", lk.Token(), cpid)
			assert.ErrorIs(t, err, statestore.ErrNotFound)
		}
		k := e.keys("s1")
		assert.Equal(t, int64(2), mustInt(t, s.Do(t, "HLEN", k.Cpd)), "payloads are deleted with the index entries")

		// Nothing to delete: nothing is written.
		before := e.snapshot(t, "s1")
		for _, keep := range []int{2, 3, 1000} {
			n, err = e.cps.Prune(ctx, "s1", lk.Token(), keep)
			require.NoError(t, err)
			assert.Zero(t, n)
		}
		assert.Equal(t, before, e.snapshot(t, "s1"))

		// Sequences go on after a prune.
		cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{})
		require.NoError(t, err)
		cp, err := e.cps.Latest(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, cpid, cp.ID)
		assert.Equal(t, int64(7), cp.Seq)

		n, err = e.cps.Prune(ctx, "s1", lk.Token(), 0)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		_, err = e.cps.Latest(ctx, "s1")
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		snap := e.snapshot(t, "s1")
		assert.NotContains(t, snap, k.Cps)
		assert.NotContains(t, snap, k.Cpd)
	})
}

func TestPruneMany(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 0)
		// More checkpoints than one HDEL call of the script deletes.
		k := e.keys("s1")
		args := []string{"HSET", k.Cpd}
		zargs := []string{"ZADD", k.Cps}
		for i := range 2500 {
			cpid := cpidOf("s1", i)
			args = append(args, cpid, payload(i+1))
			zargs = append(zargs, itoa(i+1), cpid)
		}
		s.Do(t, args...)
		s.Do(t, zargs...)
		s.Do(t, "HSET", k.State, "cp_seq", "2500")
		n, err := e.cps.Prune(ctx, "s1", lk.Token(), 10)
		require.NoError(t, err)
		assert.Equal(t, 2490, n)
		assert.Equal(t, int64(10), mustInt(t, s.Do(t, "HLEN", k.Cpd)))
		cp, err := e.cps.Latest(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, int64(2500), cp.Seq)
		assert.Equal(t, cpidOf("s1", 2499), cp.ID)
	})
}

// TestSeqAboveIndex: should the state's cp_seq lag behind the index (the
// state hash lost while the index stayed), new checkpoints still get
// sequences above every indexed one.
func TestSeqAboveIndex(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 0)
		for range 3 {
			_, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{})
			require.NoError(t, err)
		}
		s.Do(t, "HSET", e.keys("s1").State, "cp_seq", "1")
		cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{})
		require.NoError(t, err)
		cp, err := e.cps.Latest(ctx, "s1")
		require.NoError(t, err)
		assert.Equal(t, cpid, cp.ID)
		assert.Equal(t, int64(4), cp.Seq)
		assert.Equal(t, "4", mustString(t, s.Do(t, "HGET", e.keys("s1").State, "cp_seq")))
	})
}
