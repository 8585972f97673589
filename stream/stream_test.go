package stream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/stream"
)

func TestAppendReadEnd(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")

		_, err := e.streams.Read(ctx, "s1", stream.Seq{}, 10)
		require.ErrorIs(t, err, stream.ErrUnknownStream)
		require.ErrorIs(t, err, stream.ErrNotFound)

		seqs := e.appendN(t, "s1", lk, 0, 1) // loads the script (EVALSHA, then EVAL)
		trips := e.client.Count(func() {
			q, err := e.streams.Append(ctx, "s1", lk.Token(), []byte("c1"))
			require.NoError(t, err)
			seqs = append(seqs, q)
		})
		require.EqualValues(t, 1, trips, "Append is one round trip")
		seqs = append(seqs, e.appendN(t, "s1", lk, 2, 3)...)
		for i, q := range seqs {
			require.EqualValues(t, i+1, q.N())
			if i > 0 {
				require.True(t, seqs[i-1].Less(q))
			}
		}

		var p stream.Page
		trips = e.client.Count(func() {
			p, err = e.streams.Read(ctx, "s1", stream.Seq{}, 3)
			require.NoError(t, err)
		})
		require.EqualValues(t, 1, trips, "Read is one round trip")
		require.Equal(t, names(0, 3), data(p.Chunks))
		require.Equal(t, seqs[2], p.Next)
		require.True(t, p.More)
		require.Equal(t, stream.StatusRunning, p.Status)
		require.Zero(t, p.Skipped)

		endSeq, err := e.streams.End(ctx, "s1", lk.Token())
		require.NoError(t, err)
		require.EqualValues(t, 6, endSeq.N())

		// The reader still behind the marker sees running, then ended in
		// order after the remaining chunks.
		p, err = e.streams.Read(ctx, "s1", seqs[2], 100)
		require.NoError(t, err)
		require.Equal(t, names(3, 2), data(p.Chunks))
		require.Equal(t, stream.StatusEnded, p.Status)
		require.Equal(t, endSeq, p.Next)
		require.False(t, p.More)

		p, err = e.streams.Read(ctx, "s1", endSeq, 100)
		require.NoError(t, err)
		require.Empty(t, p.Chunks)
		require.Equal(t, stream.StatusEnded, p.Status)

		before := e.snapshot(t, "s1")
		_, err = e.streams.Append(ctx, "s1", lk.Token(), []byte("late"))
		var ee *stream.EndedError
		require.ErrorAs(t, err, &ee)
		require.ErrorIs(t, err, stream.ErrEnded)
		require.Equal(t, stream.StatusEnded, ee.Status)
		_, err = e.streams.Fail(ctx, "s1", lk.Token(), "x")
		require.ErrorIs(t, err, stream.ErrEnded)
		require.Equal(t, before, e.snapshot(t, "s1"))
	})
}

func TestFailVisibleInOrder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.appendN(t, "s1", lk, 0, 3)
		_, err := e.streams.Fail(ctx, "s1", lk.Token(), "tool crashed")
		require.NoError(t, err)

		f := e.streams.Follow("s1", stream.Seq{})
		var got []string
		for f.Next(ctx) {
			got = append(got, string(f.Chunk().Data))
		}
		require.NoError(t, f.Err())
		require.Equal(t, names(0, 3), got)
		require.Equal(t, stream.StatusFailed, f.Status())
		require.Equal(t, "tool crashed", f.Reason())
		require.EqualValues(t, 4, f.Last().N())

		// Following again from the marker stops at once.
		f = e.streams.Follow("s1", f.Last())
		require.False(t, f.Next(ctx))
		require.NoError(t, f.Err())
		require.Equal(t, stream.StatusFailed, f.Status())

		p, err := e.streams.Read(ctx, "s1", stream.Seq{}, 2)
		require.NoError(t, err)
		require.Equal(t, stream.StatusRunning, p.Status, "the marker is not in this page yet")
		p, err = e.streams.Read(ctx, "s1", p.Next, 2)
		require.NoError(t, err)
		require.Equal(t, names(2, 1), data(p.Chunks))
		require.Equal(t, stream.StatusFailed, p.Status)
		require.Equal(t, "tool crashed", p.Reason)
	})
}

func TestStaleHolderRejected(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{})
		ctx := t.Context()
		a, err := e.locker.Acquire(ctx, "s1")
		require.NoError(t, err)
		e.appendN(t, "s1", a, 0, 2)

		// A's lease ends without a successor: strict mode refuses it.
		require.NoError(t, a.Release(ctx))
		before := e.snapshot(t, "s1")
		_, err = e.streams.Append(ctx, "s1", a.Token(), []byte("A-orphan"))
		require.ErrorIs(t, err, fencing.ErrNotHolder)
		var nh *stream.NotHolderError
		require.ErrorAs(t, err, &nh)
		require.Equal(t, before, e.snapshot(t, "s1"))

		// B takes over and writes; A, paused, wakes up and appends.
		b := acquire(t, e.secondLocker(t), "s1")
		e.appendN(t, "s1", b, 2, 2)
		before = e.snapshot(t, "s1")
		for _, op := range []func() error{
			func() error { _, err := e.streams.Append(ctx, "s1", a.Token(), []byte("A-stale")); return err },
			func() error { _, err := e.streams.End(ctx, "s1", a.Token()); return err },
			func() error { _, err := e.streams.Fail(ctx, "s1", a.Token(), "A-stale"); return err },
		} {
			err := op()
			require.ErrorIs(t, err, fencing.ErrStaleToken)
			var se *fencing.StaleTokenError
			require.ErrorAs(t, err, &se)
			require.Equal(t, a.Token(), se.Presented)
		}
		require.Equal(t, before, e.snapshot(t, "s1"))

		p, err := e.streams.Read(ctx, "s1", stream.Seq{}, 100)
		require.NoError(t, err)
		require.Equal(t, names(0, 4), data(p.Chunks))
		for _, c := range p.Chunks {
			require.NotContains(t, string(c.Data), "A-")
		}
	})
}

func TestRelaxedStaleByStreamFence(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := s.NewClient(t)
		prefix := s.Prefix(t)
		st, err := newRelaxedStore(c, prefix)
		require.NoError(t, err)
		ss := stream.New(st)
		ctx := t.Context()
		// Relaxed mode, no lock at all: the stream's own fence orders writers.
		_, err = ss.Append(ctx, "s1", 7, []byte("t7"))
		require.NoError(t, err)
		_, err = ss.Append(ctx, "s1", 5, []byte("t5"))
		require.ErrorIs(t, err, fencing.ErrStaleToken)
		_, err = ss.Append(ctx, "s1", 7, []byte("t7b"))
		require.NoError(t, err)
		p, err := ss.Read(ctx, "s1", stream.Seq{}, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"t7", "t7b"}, data(p.Chunks))
	})
}

func TestBadInput(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{MaxChunkBytes: 8})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.appendN(t, "s1", lk, 0, 1)
		before := e.snapshot(t, "s1")
		trips := e.client.Count(func() {
			_, err := e.streams.Append(ctx, "s1", lk.Token(), []byte("123456789"))
			require.ErrorIs(t, err, stream.ErrTooLarge)
			_, err = e.streams.Fail(ctx, "s1", lk.Token(), "123456789")
			require.ErrorIs(t, err, stream.ErrTooLarge)
			_, err = e.streams.Append(ctx, "s1", 0, []byte("x"))
			require.ErrorIs(t, err, stream.ErrInvalidArgument)
			_, err = e.streams.Append(ctx, "bad{id}", lk.Token(), []byte("x"))
			require.ErrorIs(t, err, stream.ErrInvalidID)
			_, err = e.streams.Read(ctx, "s1", stream.Seq{}, 0)
			require.ErrorIs(t, err, stream.ErrInvalidArgument)
			_, err = e.streams.Read(ctx, "s1", stream.Seq{}, stream.MaxPageSize+1)
			require.ErrorIs(t, err, stream.ErrInvalidArgument)
			_, err = e.streams.Group(ctx, "s1", "")
			require.ErrorIs(t, err, stream.ErrInvalidArgument)
			_, err = e.streams.ReadGroup(ctx, "s1", "g", "bad\nname", 1, 0)
			require.ErrorIs(t, err, stream.ErrInvalidArgument)
			_, err = e.streams.Ack(ctx, "s1", "g", stream.Seq{})
			require.ErrorIs(t, err, stream.ErrInvalidSeq)
		})
		require.Zero(t, trips, "bad input is refused before anything is sent")
		require.Equal(t, before, e.snapshot(t, "s1"))

		for _, bad := range []string{"x", "1-", "-1", "1-2-3", " 1-2", "1-0x1", "99999999999999999-1", "5-0", "+", "(1-2"} {
			_, err := stream.ParseSeq(bad)
			require.ErrorIs(t, err, stream.ErrInvalidSeq, bad)
			require.ErrorIs(t, err, stream.ErrInvalidArgument, bad)
		}
		for _, good := range []string{"", "0", "0-0", "1700000000000-12"} {
			_, err := stream.ParseSeq(good)
			require.NoError(t, err, good)
		}
		var q stream.Seq
		require.ErrorIs(t, q.UnmarshalText([]byte("nope")), stream.ErrInvalidSeq)

		_, err := e.streams.ReadGroup(ctx, "s1", "nogroup", "c1", 1, 0)
		require.ErrorIs(t, err, stream.ErrUnknownGroup)
		require.ErrorIs(t, err, stream.ErrNotFound)
		_, err = e.streams.Read(ctx, "other", stream.Seq{}, 1)
		require.ErrorIs(t, err, stream.ErrUnknownStream)
		f := e.streams.Follow("other", stream.Seq{})
		require.False(t, f.Next(ctx))
		require.ErrorIs(t, f.Err(), stream.ErrUnknownStream)
	})
}

func TestTTLTiers(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{RunningTTL: time.Hour, FinishedTTL: time.Minute})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		k := e.keys("s1")
		meta := stream.MetaKey(e.prefix, "s1")
		pttl := func(key string) int64 {
			m := s.Do(t, "PTTL", key)
			n, err := m.AsInt64()
			require.NoError(t, err)
			return n
		}
		e.appendN(t, "s1", lk, 0, 1)
		require.InDelta(t, time.Hour.Milliseconds(), pttl(k.Out), 5000)
		require.InDelta(t, time.Hour.Milliseconds(), pttl(meta), 5000)

		// Extended, never shortened.
		s.Do(t, "PEXPIRE", k.Out, "60000")
		s.Do(t, "PEXPIRE", meta, "7200000")
		e.appendN(t, "s1", lk, 1, 1)
		require.InDelta(t, time.Hour.Milliseconds(), pttl(k.Out), 5000)
		require.Greater(t, pttl(meta), 2*time.Hour.Milliseconds()-5000)

		// Keys an operator made persistent stay persistent while running.
		s.Do(t, "PERSIST", k.Out)
		s.Do(t, "PERSIST", meta)
		e.appendN(t, "s1", lk, 2, 1)
		require.Equal(t, int64(-1), pttl(k.Out))
		require.Equal(t, int64(-1), pttl(meta))

		_, err := e.streams.End(ctx, "s1", lk.Token())
		require.NoError(t, err)
		require.LessOrEqual(t, pttl(k.Out), time.Minute.Milliseconds())
		require.Greater(t, pttl(k.Out), int64(0))
		require.LessOrEqual(t, pttl(meta), time.Minute.Milliseconds())

		// A stream created by Group gets the running TTL.
		_, err = e.streams.Group(ctx, "s2", "g")
		require.NoError(t, err)
		require.InDelta(t, time.Hour.Milliseconds(), pttl(e.keys("s2").Out), 5000)
	})
}

func TestOptions(t *testing.T) {
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	st, err := newRelaxedStore(c, "p")
	require.NoError(t, err)
	for _, o := range []stream.Options{{MaxChunkBytes: -1}, {RunningTTL: time.Microsecond}, {Block: -time.Second}} {
		_, err := stream.NewWithOptions(st, o)
		require.ErrorIs(t, err, stream.ErrInvalidArgument)
	}
	o := stream.New(st).Options()
	require.EqualValues(t, stream.DefaultMaxLen, o.MaxLen)
	require.Equal(t, stream.DefaultFinishedTTL, o.FinishedTTL)
	require.Equal(t, statestoreDefaultTTL, o.RunningTTL)
	require.Panics(t, func() { stream.New(nil) })
}

func TestFollowBlocksAndWakes(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		// Blocks of a minute: a follower that missed a wake-up (or ignored
		// its context) would sit out a whole block, so the bounds below
		// tell a wake-up from a timeout without being latency targets.
		e := newEnv(t, s, stream.Options{Block: time.Minute})
		ctx := t.Context()
		lk := acquire(t, e.locker, "s1")
		e.appendN(t, "s1", lk, 0, 1)

		f := e.streams.Follow("s1", stream.Seq{})
		require.True(t, f.Next(ctx))
		require.Equal(t, "c0", string(f.Chunk().Data))

		done := make(chan time.Time, 1)
		go func() {
			time.Sleep(200 * time.Millisecond)
			_, _ = e.streams.Append(context.Background(), "s1", lk.Token(), []byte("c1"))
			done <- time.Now()
		}()
		require.True(t, f.Next(ctx))
		woke := time.Now()
		appended := <-done
		require.Equal(t, "c1", string(f.Chunk().Data))
		require.Less(t, woke.Sub(appended), 20*time.Second, "follower slept through the append")

		go func() {
			time.Sleep(200 * time.Millisecond)
			_, _ = e.streams.End(context.Background(), "s1", lk.Token())
		}()
		start := time.Now()
		require.False(t, f.Next(ctx))
		require.NoError(t, f.Err())
		require.Equal(t, stream.StatusEnded, f.Status())
		require.Less(t, time.Since(start), 20*time.Second, "follower slept through the end marker")

		// A bounded context stops a follower of a quiet stream.
		lk2 := acquire(t, e.locker, "s2")
		e.appendN(t, "s2", lk2, 0, 1)
		f = e.streams.Follow("s2", stream.Seq{})
		require.True(t, f.Next(ctx))
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start = time.Now()
		require.False(t, f.Next(cctx))
		require.True(t, errors.Is(f.Err(), context.DeadlineExceeded), "%v", f.Err())
		require.Less(t, time.Since(start), 20*time.Second, "follower ignored its context")
	})
}

func TestBinaryChunks(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{})
		lk := acquire(t, e.locker, "s1")
		blob := []byte("\x00\xff\r\n" + strings.Repeat("é", 100))
		_, err := e.streams.Append(t.Context(), "s1", lk.Token(), blob)
		require.NoError(t, err)
		_, err = e.streams.Append(t.Context(), "s1", lk.Token(), nil)
		require.NoError(t, err)
		p, err := e.streams.Read(t.Context(), "s1", stream.Seq{}, 10)
		require.NoError(t, err)
		require.Equal(t, blob, p.Chunks[0].Data)
		require.Empty(t, p.Chunks[1].Data)
	})
}
