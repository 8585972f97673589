package checkpoint_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

func TestSaveGetLatestList(t *testing.T) {
	// A session id with the separators of checkpoint ids and cursors in it.
	const id = "run-s1-t2-abc.de:f"
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, id)
		e.create(t, id, lk, `{"a":0}`, 3)

		inputs := []checkpoint.Checkpoint{
			{Step: 0, State: json.RawMessage(`{"a":0}`), MessageCount: 0},
			// Whitespace, key order and HTML characters survive byte for byte.
			{Step: 7, State: json.RawMessage(" { \"b\" : [1, 2] ,\"a\":\"<&>\" }\n"), MessageCount: 2,
				Metadata: json.RawMessage(`{ "tool": "search", "n": 1e3 }`)},
			{Step: 8, MessageCount: 3, Metadata: json.RawMessage(`{}`)}, // no state document
		}
		idRE := regexp.MustCompile(`^cpv1-` + regexp.QuoteMeta(id) + `-s(\d+)-t(\d+)-[0-9a-f]{6}$`)
		var ids []string
		for i, in := range inputs {
			v0 := e.version(t, id)
			t0 := time.Now()
			cpid, err := e.cps.Save(ctx, id, lk.Token(), in)
			require.NoError(t, err)
			t1 := time.Now()
			m := idRE.FindStringSubmatch(cpid)
			require.NotNil(t, m, "checkpoint id %q", cpid)
			assert.Equal(t, strconv.FormatInt(in.Step, 10), m[1])
			ms, _ := strconv.ParseInt(m[2], 10, 64)
			assert.InDelta(t, t0.UnixMilli(), ms, float64(t1.Sub(t0).Milliseconds()+2000))
			assert.Equal(t, v0+1, e.version(t, id), "Save bumps the version")
			ids = append(ids, cpid)

			got, err := e.cps.Get(ctx, id, cpid)
			require.NoError(t, err)
			assert.Equal(t, cpid, got.ID)
			assert.Equal(t, int64(i+1), got.Seq)
			assert.Equal(t, in.Step, got.Step)
			assert.Equal(t, in.MessageCount, got.MessageCount)
			assert.Equal(t, string(in.State), string(got.State))
			assert.Equal(t, in.State == nil, got.State == nil)
			assert.Equal(t, string(in.Metadata), string(got.Metadata))
			assert.Equal(t, in.Metadata == nil, got.Metadata == nil)
			assert.Equal(t, lk.Token(), got.Token)
			assert.Equal(t, ms, got.CreatedAt.UnixMilli())
		}

		latest, err := e.cps.Latest(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, ids[2], latest.ID)
		assert.Equal(t, int64(3), latest.Seq)

		p, err := e.cps.List(ctx, id, "", 10)
		require.NoError(t, err)
		assert.Equal(t, []string{ids[2], ids[1], ids[0]}, cpIDs(p.Checkpoints))
		assert.False(t, p.HasMore)
		assert.Empty(t, p.Next)
		assert.Equal(t, int64(3), p.Total)
		one, _ := e.cps.Get(ctx, id, ids[1])
		assert.Equal(t, one, p.Checkpoints[1], "List returns what Get does")

		p, err = e.cps.List(ctx, id, "", 2)
		require.NoError(t, err)
		assert.Equal(t, []string{ids[2], ids[1]}, cpIDs(p.Checkpoints))
		assert.True(t, p.HasMore)
		p, err = e.cps.List(ctx, id, p.Next, 2)
		require.NoError(t, err)
		assert.Equal(t, []string{ids[0]}, cpIDs(p.Checkpoints))
		assert.False(t, p.HasMore)
	})
}

func TestSaveAtMessageCount(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 4)
		_, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 1, MessageCount: 4})
		require.NoError(t, err, "a checkpoint may cover every message")
		before := e.snapshot(t, "s1")
		_, err = e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 1, MessageCount: 5})
		assert.ErrorIs(t, err, statestore.ErrInvalidArgument)
		assert.Equal(t, before, e.snapshot(t, "s1"))
	})
}

func TestLatestAndGetMissing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		_, err := e.cps.Latest(ctx, "nobody")
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 0)
		_, err = e.cps.Latest(ctx, "s1")
		assert.ErrorIs(t, err, statestore.ErrNotFound, "a session without checkpoints")
		_, err = e.cps.Get(ctx, "s1", "cpv1-s1-s1-t1700000000000-abcdef")
		assert.ErrorIs(t, err, statestore.ErrNotFound)
	})
}

func cpIDs(cps []checkpoint.Checkpoint) []string {
	out := make([]string, len(cps))
	for i := range cps {
		out[i] = cps[i].ID
	}
	return out
}
