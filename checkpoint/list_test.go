package checkpoint_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

func TestListPages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 0)
		p, err := e.cps.List(ctx, "s1", "", 5)
		require.NoError(t, err)
		assert.Empty(t, p.Checkpoints)
		assert.False(t, p.HasMore)
		assert.Empty(t, p.Next)

		var saved []string
		for i := range 25 {
			cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: int64(i % 3)}) // steps repeat
			require.NoError(t, err)
			saved = append(saved, cpid)
		}
		for _, limit := range []int{1, 7, 24, 25, 26, checkpoint.MaxPageSize} {
			var got []string
			var sizes []int
			cursor := ""
			for {
				p, err := e.cps.List(ctx, "s1", cursor, limit)
				require.NoError(t, err)
				assert.Equal(t, int64(25), p.Total)
				got = append(got, cpIDs(p.Checkpoints)...)
				sizes = append(sizes, len(p.Checkpoints))
				assert.Equal(t, p.HasMore, p.Next != "")
				if !p.HasMore {
					break
				}
				cursor = p.Next
			}
			want := make([]string, len(saved))
			for i := range saved {
				want[i] = saved[len(saved)-1-i]
			}
			assert.Equal(t, want, got, "limit %d", limit)
			assert.Len(t, sizes, (25+limit-1)/limit, "limit %d: pages %v", limit, sizes)
		}
	})
}

// TestCursorStability pages through checkpoints and messages while another
// goroutine saves checkpoints and appends messages: no page skips or
// repeats an entry.
func TestCursorStability(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 10)
		existing := map[string]int64{}
		for i := range 30 {
			cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: int64(i), MessageCount: 10})
			require.NoError(t, err)
			existing[cpid] = int64(i + 1)
		}

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var writerErr error
		var written []string
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.store.AppendMessages(ctx, "s1", lk.Token(), json.RawMessage(fmt.Sprintf(`"m%d"`, 10+i))); err != nil {
					writerErr = err
					return
				}
				cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: int64(100 + i), MessageCount: int64(11 + i)})
				if err != nil {
					writerErr = err
					return
				}
				written = append(written, cpid)
			}
		})

		for round := range 3 {
			// Checkpoints: newest first from where the listing started.
			seen := map[string]bool{}
			var lastSeq int64 = -1
			cursor := ""
			for {
				p, err := e.cps.List(ctx, "s1", cursor, 4)
				require.NoError(t, err)
				for _, cp := range p.Checkpoints {
					require.False(t, seen[cp.ID], "round %d: %s repeated", round, cp.ID)
					seen[cp.ID] = true
					if lastSeq >= 0 {
						require.Less(t, cp.Seq, lastSeq, "round %d: not newest first", round)
					}
					lastSeq = cp.Seq
				}
				if !p.HasMore {
					break
				}
				cursor = p.Next
			}
			for cpid := range existing {
				require.True(t, seen[cpid], "round %d: %s skipped", round, cpid)
			}
			assert.Equal(t, int64(1), lastSeq, "round %d: the listing ends at the first checkpoint", round)

			// Messages: m0, m1, ... in order, every one once.
			next := 0
			cursor = ""
			for {
				p, err := e.store.Messages(ctx, "s1", cursor, 3)
				require.NoError(t, err)
				for _, m := range p.Messages {
					require.Equal(t, fmt.Sprintf(`"m%d"`, next), string(m), "round %d", round)
					next++
				}
				if !p.HasMore {
					break
				}
				cursor = p.Next
			}
			require.GreaterOrEqual(t, next, 10)
		}
		close(stop)
		wg.Wait()
		require.NoError(t, writerErr)
		t.Logf("%d checkpoints saved while listing", len(written))

		// Everything the writer saved is there, once, in save order.
		var all []string
		cursor := ""
		for {
			p, err := e.cps.List(ctx, "s1", cursor, 50)
			require.NoError(t, err)
			all = append(all, cpIDs(p.Checkpoints)...)
			if !p.HasMore {
				break
			}
			cursor = p.Next
		}
		require.Len(t, all, 30+len(written))
		for i, cpid := range written {
			assert.Equal(t, cpid, all[len(written)-1-i])
		}
	})
}

func TestListInvalidCursor(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.create(t, "s1", lk, `{}`, 2)
		lk2 := acquire(t, e.locker, "s2")
		e.create(t, "s2", lk2, `{}`, 0)
		var ids []string
		for i := range 4 {
			cpid, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: int64(i)})
			require.NoError(t, err)
			ids = append(ids, cpid)
		}
		for range 2 {
			_, err := e.cps.Save(ctx, "s2", lk2.Token(), checkpoint.Checkpoint{Step: 1})
			require.NoError(t, err)
		}
		p, err := e.cps.List(ctx, "s1", "", 1)
		require.NoError(t, err)
		good := p.Next // after ids[3]
		p2, err := e.cps.List(ctx, "s2", "", 1)
		require.NoError(t, err)
		msgs, err := e.store.Messages(ctx, "s1", "", 1)
		require.NoError(t, err)

		raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		bad := map[string]string{
			"garbage":                  "!!!",
			"not base64 of a cursor":   raw("hello"),
			"padded base64":            base64.URLEncoding.EncodeToString([]byte("c1.3." + ids[2])),
			"another session's cursor": checkpoint.EncodeCursor(1, "cpv1-s2-s1-t1700000000000-abcdef"),
			"a message cursor":         msgs.Next,
			"wrong version":            raw("c2.3." + ids[2]),
			"negative seq":             raw("c1.-3." + ids[2]),
			"seq with a leading zero":  raw("c1.03." + ids[2]),
			"seq mismatch":             checkpoint.EncodeCursor(2, ids[2]),
			"unknown checkpoint":       checkpoint.EncodeCursor(3, "cpv1-s1-s2-t1700000000000-abcdef"),
			"too long":                 raw("c1.3." + ids[2] + string(make([]byte, 400))),
			"s2's cursor":              p2.Next,
		}
		require.NotEmpty(t, p2.Next)
		before := e.snapshot(t, "s1")
		for name, cursor := range bad {
			_, err := e.cps.List(ctx, "s1", cursor, 10)
			assert.ErrorIs(t, err, statestore.ErrInvalidCursor, name)
		}
		assert.Equal(t, before, e.snapshot(t, "s1"))

		// A cursor whose checkpoint was pruned is refused, not "everything".
		p, err = e.cps.List(ctx, "s1", good, 10)
		require.NoError(t, err)
		assert.Equal(t, []string{ids[2], ids[1], ids[0]}, cpIDs(p.Checkpoints))
		p, err = e.cps.List(ctx, "s1", "", 2)
		require.NoError(t, err)
		afterSecond := p.Next // after ids[2]
		_, err = e.cps.Prune(ctx, "s1", lk.Token(), 2)
		require.NoError(t, err)
		p, err = e.cps.List(ctx, "s1", good, 10)
		require.NoError(t, err, "ids[3] is still there")
		assert.Equal(t, []string{ids[2]}, cpIDs(p.Checkpoints))
		_, err = e.cps.Prune(ctx, "s1", lk.Token(), 1)
		require.NoError(t, err)
		_, err = e.cps.List(ctx, "s1", afterSecond, 10)
		assert.ErrorIs(t, err, statestore.ErrInvalidCursor)

		// So is a cursor of a session that was deleted and created again
		// (sequences start over).
		_, err = e.store.Delete(ctx, "s1", lk.Token())
		require.NoError(t, err)
		e.create(t, "s1", lk, `{}`, 0)
		for range 4 {
			_, err := e.cps.Save(ctx, "s1", lk.Token(), checkpoint.Checkpoint{Step: 1})
			require.NoError(t, err)
		}
		_, err = e.cps.List(ctx, "s1", good, 10)
		assert.ErrorIs(t, err, statestore.ErrInvalidCursor)
	})
}
