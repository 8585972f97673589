package checkpoint_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/statestore"
)

// TestConcurrentSaves: saves racing each other get distinct ids and
// sequences 1..n, with no gap.
func TestConcurrentSaves(t *testing.T) {
	const workers, each = 8, 10
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 0)
		v0 := e.version(t, "s1")
		var mu sync.Mutex
		ids := map[string]bool{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for range each {
					cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: int64(w)})
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					ids[cpid] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, ids, workers*each)
		p, err := e.cps.List(ctx, "s1", "", checkpoint.MaxPageSize)
		require.NoError(t, err)
		require.Len(t, p.Checkpoints, workers*each)
		for i, cp := range p.Checkpoints {
			assert.Equal(t, int64(workers*each-i), cp.Seq)
			assert.True(t, ids[cp.ID])
		}
		assert.Equal(t, v0+workers*each, e.version(t, "s1"))
	})
}

// TestSaveIDCollision: the script refuses an id that is taken (same step,
// millisecond and random digits) and writes nothing; Save then retries with
// other digits. Only miniredis can stop the clock.
func TestSaveIDCollision(t *testing.T) {
	s := redistest.NewMini(t)
	s.Mini.SetTime(time.UnixMilli(1700000000000))
	e := newEnv(t, s, statestore.Options{})
	ctx := t.Context()
	lk := acquire(t, e.locker, "s1")
	e.create(t, "s1", lk, `{}`, 0)
	k := e.keys("s1")
	args := []string{lk.Token().String(), "S", "0", "s1", "3", "0", "abcdef", `{"a":1}`, ""}
	keys := []string{k.Lock, k.Fence, k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events, k.Out}
	cpid, err := lua.CpSave.Exec(ctx, e.client, keys, args).ToArray()
	require.NoError(t, err)
	id, _ := cpid[0].ToString()
	assert.Equal(t, "cpv1-s1-s3-t1700000000000-abcdef", id)
	before := e.snapshot(t, "s1")
	err = lua.CpSave.Exec(ctx, e.client, keys, args).Error()
	assert.ErrorContains(t, err, "FENCEKIT_EXISTS checkpoint")
	assert.Equal(t, before, e.snapshot(t, "s1"))

	// Through the API, the same step in the same millisecond gets new ids.
	for range 20 {
		_, err := e.cps.Save(context.Background(), "s1", lk.Token(), checkpoint.Checkpoint{Step: 3})
		require.NoError(t, err)
	}
	p, err := e.cps.List(ctx, "s1", "", 100)
	require.NoError(t, err)
	assert.Len(t, p.Checkpoints, 21)
}
