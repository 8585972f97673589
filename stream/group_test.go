package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/stream"
)

func TestGroupReadAckClaim(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")

		created, err := e.streams.Group(ctx, "s1", "fanout")
		require.NoError(t, err)
		require.True(t, created)
		created, err = e.streams.Group(ctx, "s1", "fanout")
		require.NoError(t, err)
		require.False(t, created)

		seqs := e.appendN(t, "s1", lk, 0, 5)
		end, err := e.streams.End(ctx, "s1", lk.Token())
		require.NoError(t, err)

		got, err := e.streams.ReadGroup(ctx, "s1", "fanout", "w1", 3, 0)
		require.NoError(t, err)
		require.Equal(t, names(0, 3), data(got))
		n, err := e.streams.Ack(ctx, "s1", "fanout", seqs[0], seqs[1])
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		pending, err := e.streams.Pending(ctx, "s1", "fanout")
		require.NoError(t, err)
		require.EqualValues(t, 1, pending)

		// w1 dies holding c2; w2 recovers it once it is idle long enough.
		time.Sleep(60 * time.Millisecond)
		cl, err := e.streams.Claim(ctx, "s1", "fanout", "w2", 50*time.Millisecond, stream.Seq{}, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"c2"}, data(cl.Chunks))
		require.True(t, cl.Next.IsZero())
		require.Empty(t, cl.Deleted)
		cl2, err := e.streams.Claim(ctx, "s1", "fanout", "w3", time.Hour, stream.Seq{}, 10)
		require.NoError(t, err)
		require.Empty(t, cl2.Chunks, "not idle for an hour")

		rest, err := e.streams.ReadGroup(ctx, "s1", "fanout", "w2", 10, 0)
		require.NoError(t, err)
		require.Len(t, rest, 3)
		require.Equal(t, names(3, 2), data(rest[:2]))
		require.Equal(t, stream.KindEnd, rest[2].Kind)
		require.Equal(t, end, rest[2].Seq)
		n, err = e.streams.Ack(ctx, "s1", "fanout", cl.Chunks[0].Seq, rest[0].Seq, rest[1].Seq, rest[2].Seq)
		require.NoError(t, err)
		require.EqualValues(t, 4, n)
		pending, err = e.streams.Pending(ctx, "s1", "fanout")
		require.NoError(t, err)
		require.Zero(t, pending)

		// Nothing new: a bounded block returns empty.
		start := time.Now()
		none, err := e.streams.ReadGroup(ctx, "s1", "fanout", "w2", 10, 100*time.Millisecond)
		require.NoError(t, err)
		require.Empty(t, none)
		require.Less(t, time.Since(start), 20*time.Second, "the 100 ms block was not honoured")
	})
}

// What the package documentation says about trimming, tested: MAXLEN ~
// keeps at least MaxLen entries and never the oldest beyond what it must;
// it drops entries a group has not acknowledged (their ids stay pending,
// and Claim reports them as Deleted on Redis, not on miniredis), and
// readers see the loss as Skipped / ErrTrimmed, never as a silent gap.
func TestTrimming(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		const maxLen = 10
		e := newEnv(t, s, stream.Options{MaxLen: maxLen})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		_, err := e.streams.Group(ctx, "s1", "g")
		require.NoError(t, err)
		first := e.appendN(t, "s1", lk, 0, 5)
		got, err := e.streams.ReadGroup(ctx, "s1", "g", "w1", 5, 0)
		require.NoError(t, err)
		require.Len(t, got, 5) // delivered, never acknowledged

		const total = 400
		e.appendN(t, "s1", lk, 5, total-5)
		m := s.Do(t, "XLEN", e.keys("s1").Out)
		xlen, err := m.AsInt64()
		require.NoError(t, err)
		require.GreaterOrEqual(t, xlen, int64(maxLen), "MAXLEN ~ keeps at least MaxLen entries")
		if s.Kind == redistest.Mini {
			require.EqualValues(t, maxLen, xlen, "miniredis trims exactly")
		} else {
			require.Less(t, xlen, int64(total), "Redis trimmed whole nodes")
		}

		// A reader from the start learns how much it missed.
		p, err := e.streams.Read(ctx, "s1", stream.Seq{}, 5)
		require.NoError(t, err)
		require.EqualValues(t, total-xlen, p.Skipped)
		require.EqualValues(t, p.Skipped+1, p.Chunks[0].Seq.N())
		// A follower behind the trimmed entries stops with ErrTrimmed.
		f := e.streams.Follow("s1", first[4])
		require.False(t, f.Next(ctx))
		var te *stream.TrimmedError
		require.ErrorAs(t, f.Err(), &te)
		require.ErrorIs(t, f.Err(), stream.ErrTrimmed)
		require.EqualValues(t, total-xlen-5, te.Missed)

		// The unacknowledged, trimmed entries are still pending on Redis
		// (miniredis hides them from XPENDING)...
		pending, err := e.streams.Pending(ctx, "s1", "g")
		require.NoError(t, err)
		if s.Kind == redistest.Mini {
			require.Zero(t, pending)
		} else {
			require.EqualValues(t, 5, pending)
		}
		cl, err := e.streams.Claim(ctx, "s1", "g", "w2", 0, stream.Seq{}, 10)
		require.NoError(t, err)
		require.Empty(t, cl.Chunks, "their data is gone")
		if s.Kind == redistest.Mini {
			require.Empty(t, cl.Deleted, "miniredis v2.40.0 does not report deleted pending entries")
		} else {
			// ...and Redis 7 reports and drops them.
			require.Equal(t, first, cl.Deleted)
			pending, err = e.streams.Pending(ctx, "s1", "g")
			require.NoError(t, err)
			require.Zero(t, pending)
		}
		// The group's next delivery jumps past the trimmed entries: the
		// gap in N shows it.
		next, err := e.streams.ReadGroup(ctx, "s1", "g", "w1", 1, 0)
		require.NoError(t, err)
		require.Len(t, next, 1)
		require.EqualValues(t, total-xlen+1, next[0].Seq.N())
	})
}
