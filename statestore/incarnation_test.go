package statestore_test

// Issue 19: a session deleted and created again under the same id is a new
// incarnation. These tests keep positions of one incarnation (message and
// checkpoint cursors, event ids, stream positions, an expected state) and
// present them to the next, with Delete and Create forced into one server
// millisecond: on miniredis by freezing its clock, on redis-server and the
// cluster by sending the scripts in one pipeline and repeating until the
// replies show one millisecond.

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/scripts/lua"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

// sessionKeys is the KEYS of a fenced session write (fenced.NewWrite).
func sessionKeys(k keys.Session) []string {
	return []string{k.Lock, k.Fence, k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events, k.Out, k.OutMeta, k.Inc}
}

func eval(c rueidis.Client, s *lua.Script, keys, args []string) rueidis.Completed {
	return c.B().Eval().Script(s.Source()).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// twoIncarnations is what recreateInOneMs saw: incarnation A, created,
// written and deleted, and B, created after it, all in one millisecond.
type twoIncarnations struct {
	incA, incB       int64
	createdMs        int64  // created_at of both A and B
	lastEventA       string // the newest event id of A's log
	chunkA, chunkB   string // the entry ids of A's and B's stream chunk
	versionA         int64  // A's version when deleted
	tries            int
	createdA, savedA []rueidis.RedisMessage
}

// recreateInOneMs sends, in one pipeline: Delete, Create A, Save A (an
// event), an append to A's stream, XREVRANGE of A's event log, Delete,
// Create B and an append to B's stream, and repeats until Create A, Save A,
// A's chunk and Create B carry one server millisecond. On miniredis the
// clock is frozen first, so the first try does.
func recreateInOneMs(t *testing.T, e *env, id string, tok fencing.Token) twoIncarnations {
	t.Helper()
	if e.s.Mini != nil {
		e.s.Mini.SetTime(time.Now())
	}
	c := e.s.NewClient(t)
	k := keys.ForSession(e.store.Options().Prefix, id)
	ks := sessionKeys(k)
	ttl := strconv.FormatInt(e.store.Options().TTL.Milliseconds(), 10)
	w := []string{tok.String(), "S", ttl}
	save := func(want string) []string {
		return append(append([]string{}, w...), want, "agent", "running", "0", `{}`, "", "", "")
	}
	chunk := append(append([]string{}, w...), "0", "0", "c", "0", "x")
	for try := 1; try <= 200; try++ {
		res := c.DoMulti(t.Context(),
			eval(c, lua.StateDelete, ks, w),
			// A starts as a session never deleted before, so its ids are
			// at the server time, not above an earlier floor.
			c.B().Del().Key(k.Inc).Build(),
			eval(c, lua.StateSave, ks, save("0")),
			eval(c, lua.StateSave, ks, save("")),
			eval(c, lua.StreamAppend, ks, chunk),
			c.B().Xrevrange().Key(k.Events).End("+").Start("-").Count(1).Build(),
			eval(c, lua.StateDelete, ks, w),
			eval(c, lua.StateSave, ks, save("0")),
			eval(c, lua.StreamAppend, ks, chunk),
		)
		for i, r := range res {
			require.NoError(t, r.Error(), "pipeline step %d", i)
		}
		arr := func(i int) []rueidis.RedisMessage {
			a, err := res[i].ToArray()
			require.NoError(t, err)
			return a
		}
		num := func(a []rueidis.RedisMessage, i int) int64 {
			n, err := a[i].AsInt64()
			if err != nil {
				s, err2 := a[i].ToString()
				require.NoError(t, err2)
				n, err = strconv.ParseInt(s, 10, 64)
			}
			require.NoError(t, err)
			return n
		}
		str := func(a []rueidis.RedisMessage, i int) string {
			s, err := a[i].ToString()
			require.NoError(t, err)
			return s
		}
		createA, saveA, createB := arr(2), arr(3), arr(7)
		last, err := res[5].AsXRange()
		require.NoError(t, err)
		require.Len(t, last, 1)
		r := twoIncarnations{
			incA: num(createA, 3), incB: num(createB, 3), createdMs: num(createA, 1),
			lastEventA: last[0].ID, chunkA: str(arr(4), 0), chunkB: str(arr(8), 0),
			versionA: num(saveA, 0), tries: try, createdA: createA, savedA: saveA,
		}
		chunkMs, _, _ := cutSeq(r.chunkA)
		lastMs, _, _ := cutSeq(r.lastEventA)
		if num(createB, 1) == r.createdMs && num(saveA, 2) == r.createdMs && chunkMs == r.createdMs && lastMs == r.createdMs {
			t.Logf("one millisecond after %d tries", try)
			return r
		}
	}
	t.Fatal("Delete and Create never fell in one server millisecond in 200 pipelines")
	return twoIncarnations{}
}

func cutSeq(s string) (ms, n int64, err error) {
	q, err := stream.ParseSeq(s)
	return q.Time().UnixMilli(), q.N(), err
}

// TestIncarnationsInOneMillisecond: positions of incarnation A presented
// to incarnation B, created in the same millisecond A was created,
// written and deleted in, are refused or lie below everything of B.
func TestIncarnationsInOneMillisecond(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "inc1ms"
		tok := e.acquire(t, id).Token()
		st := stream.New(e.store)
		r := recreateInOneMs(t, e, id, tok)

		// Two creates in one millisecond: distinct, growing incarnations.
		assert.Greater(t, r.incB, r.incA)
		loaded, err := e.store.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, r.incB, loaded.Incarnation)
		assert.Equal(t, r.createdMs, loaded.CreatedAt.UnixMilli(), "created_at alone cannot tell A from B")

		// Event ids keep growing: after A's last event comes B's "created".
		evs, _, err := e.store.Events(ctx, id, r.lastEventA, 10)
		require.NoError(t, err)
		require.NotEmpty(t, evs, "B's events must follow A's last id %s", r.lastEventA)
		assert.Equal(t, statestore.EventCreated, evs[0].Type)
		assert.Equal(t, r.incB, evs[0].Incarnation)
		all, _, err := e.store.Events(ctx, id, "", 10)
		require.NoError(t, err)
		assert.Equal(t, all, evs, "Events(after A's last) must return B's whole log")

		// Watch from A's last id sees B's "created" too.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for ev, err := range e.store.Watch(wctx, id, r.lastEventA) {
			require.NoError(t, err)
			assert.Equal(t, statestore.EventCreated, ev.Type)
			assert.Equal(t, r.incB, ev.Incarnation)
			break
		}
		cancel()

		// Stream: B's chunk lies after A's, and A's position is refused.
		a, err := stream.ParseSeq(r.chunkA)
		require.NoError(t, err)
		b, err := stream.ParseSeq(r.chunkB)
		require.NoError(t, err)
		assert.True(t, a.Less(b), "B's chunk %s must follow A's %s", b, a)
		_, err = st.Read(ctx, id, a, 10)
		assert.ErrorIs(t, err, stream.ErrSessionReplaced)
		fctx, fcancel := context.WithTimeout(ctx, 3*time.Second) // a follower that believes it is caught up blocks
		f := st.Follow(id, a)
		assert.False(t, f.Next(fctx))
		fcancel()
		assert.ErrorIs(t, f.Err(), stream.ErrSessionReplaced)
		p, err := st.Read(ctx, id, stream.Seq{}, 10)
		require.NoError(t, err)
		require.Len(t, p.Chunks, 1)
		assert.Equal(t, b, p.Chunks[0].Seq)

		// Save with A's version and incarnation, once B reached that
		// version: refused, nothing written.
		for {
			cur, err := e.store.Load(ctx, id)
			require.NoError(t, err)
			if cur.Version >= r.versionA {
				require.Equal(t, r.versionA, cur.Version)
				break
			}
			_, err = e.store.IncrementStep(ctx, id, tok)
			require.NoError(t, err)
		}
		before := e.snapshot(t, id)
		_, err = e.store.Save(ctx, id, tok, statestore.State{Status: "stale", Version: r.versionA, Incarnation: r.incA})
		require.ErrorIs(t, err, statestore.ErrSessionReplaced)
		require.ErrorIs(t, err, statestore.ErrConflict)
		var re *statestore.ReplacedError
		require.ErrorAs(t, err, &re)
		assert.Equal(t, r.incB, re.Current)
		assert.Equal(t, before, e.snapshot(t, id))

		// A promote's commit computed from A's read: refused.
		k := e.keys(id)
		args := []string{tok.String(), "S", "0", strconv.FormatInt(r.versionA, 10), strconv.FormatInt(r.incA, 10), `{"x":1}`, "0", "", "", "", "", ""}
		err = lua.StageCommit.Exec(ctx, e.s.NewClient(t), sessionKeys(k), args).Error()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "FENCEKIT_REPLACED "+strconv.FormatInt(r.incB, 10))
		assert.Equal(t, before, e.snapshot(t, id))
	})
}

// TestMessagesCursorAcrossDelete is the reproduction of issue 19: a cursor
// at the end of A's 5 messages, presented to B with 7, was accepted and
// skipped B's first 5. Also with a restore in each incarnation (both reach
// message epoch 1).
func TestMessagesCursorAcrossDelete(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "mcur"
		tok := e.acquire(t, id).Token()
		cps := checkpoint.New(e.store)
		if s.Mini != nil {
			s.Mini.SetTime(time.Now()) // every create below in one millisecond
		}
		msgs := func(n int) []json.RawMessage {
			out := make([]json.RawMessage, n)
			for i := range out {
				out[i] = json.RawMessage(strconv.Itoa(i))
			}
			return out
		}
		incarnation := func(n int, restore bool) string {
			_, err := e.store.Create(ctx, id, tok, statestore.State{Status: "running"})
			require.NoError(t, err)
			_, err = e.store.AppendMessages(ctx, id, tok, msgs(n)...)
			require.NoError(t, err)
			if restore {
				cp, err := cps.Save(ctx, id, tok, checkpoint.Checkpoint{MessageCount: 0})
				require.NoError(t, err)
				_, err = cps.Restore(ctx, id, tok, cp)
				require.NoError(t, err)
				_, err = e.store.AppendMessages(ctx, id, tok, msgs(n)...)
				require.NoError(t, err)
			}
			p, err := e.store.Messages(ctx, id, "", 100)
			require.NoError(t, err)
			require.Len(t, p.Messages, n)
			return p.Next
		}
		for _, restore := range []bool{false, true} {
			cur := incarnation(5, restore)
			_, err := e.store.Delete(ctx, id, tok)
			require.NoError(t, err)
			incarnation(7, restore)
			_, err = e.store.Messages(ctx, id, cur, 100)
			require.ErrorIs(t, err, statestore.ErrSessionReplaced, "restore %v", restore)
			require.ErrorIs(t, err, statestore.ErrInvalidCursor)
			var re *statestore.ReplacedError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, "cursor", re.What)
			_, err = e.store.Delete(ctx, id, tok)
			require.NoError(t, err)
		}
	})
}

// TestCheckpointCursorAcrossDelete: a List cursor of A presented to B is
// refused, even when B has a checkpoint with the same sequence.
func TestCheckpointCursorAcrossDelete(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "ccur"
		tok := e.acquire(t, id).Token()
		cps := checkpoint.New(e.store)
		if s.Mini != nil {
			s.Mini.SetTime(time.Now())
		}
		create := func() {
			_, err := e.store.Create(ctx, id, tok, statestore.State{Status: "running"})
			require.NoError(t, err)
			for range 3 {
				_, err := cps.Save(ctx, id, tok, checkpoint.Checkpoint{})
				require.NoError(t, err)
			}
		}
		create()
		p, err := cps.List(ctx, id, "", 1)
		require.NoError(t, err)
		require.NotEmpty(t, p.Next)
		_, err = e.store.Delete(ctx, id, tok)
		require.NoError(t, err)
		create()
		_, err = cps.List(ctx, id, p.Next, 1)
		require.ErrorIs(t, err, statestore.ErrSessionReplaced)
		require.ErrorIs(t, err, statestore.ErrInvalidCursor)
		// B's own cursors work.
		p, err = cps.List(ctx, id, "", 1)
		require.NoError(t, err)
		p, err = cps.List(ctx, id, p.Next, 5)
		require.NoError(t, err)
		assert.Len(t, p.Checkpoints, 2)
	})
}

// TestUpdateAcrossDelete: an Update whose session is deleted and created
// again (on miniredis in the same microsecond) between its Load and its
// Save, reaching the loaded version again, starts over on the new
// incarnation instead of overwriting it with the old one's fn result.
func TestUpdateAcrossDelete(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		ctx := t.Context()
		const id = "upd"
		tok := e.acquire(t, id).Token()
		if s.Mini != nil {
			s.Mini.SetTime(time.Now())
		}
		_, err := e.store.Create(ctx, id, tok, statestore.State{Status: "running", Data: json.RawMessage(`{"gen":"A"}`)})
		require.NoError(t, err)
		var seen []string
		got, err := e.store.Update(ctx, id, tok, func(st *statestore.State) error {
			seen = append(seen, string(st.Data))
			if len(seen) == 1 {
				_, err := e.store.Delete(ctx, id, tok)
				require.NoError(t, err)
				_, err = e.store.Create(ctx, id, tok, statestore.State{Status: "running", Data: json.RawMessage(`{"gen":"B"}`)})
				require.NoError(t, err)
			}
			st.Status = "updated"
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, []string{`{"gen":"A"}`, `{"gen":"B"}`}, seen)
		assert.JSONEq(t, `{"gen":"B"}`, string(got.Data))
		cur, err := e.store.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, got.Incarnation, cur.Incarnation)
		assert.Equal(t, int64(2), cur.Version)
	})
}

// TestDeleteNotRetried: Delete is not retried after it may have been sent
// (the retry could delete the next incarnation); its transport and
// context errors say the outcome is unknown.
func TestDeleteNotRetried(t *testing.T) {
	assert.False(t, lua.StateDelete.Retryable())
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{EventLog: true})
		tok := e.acquire(t, "del").Token()
		_, err := e.store.Create(t.Context(), "del", tok, statestore.State{Status: "running"})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = e.store.Delete(ctx, "del", tok)
		assert.ErrorIs(t, err, statestore.ErrOutcomeUnknown)
		assert.ErrorIs(t, err, context.Canceled)
		// A refusal by the script is not "unknown".
		_, err = e.store.Delete(t.Context(), "del", tok+1)
		assert.ErrorIs(t, err, fencing.ErrNotHolder)
		assert.False(t, errors.Is(err, statestore.ErrOutcomeUnknown))
	})
}

// TestIncarnationOutlivesDelete: the inc key Delete leaves carries the
// session ttl and is consumed by the next Create; incarnations grow even
// with the server clock frozen (miniredis), across many cycles.
func TestIncarnationOutlivesDelete(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{TTL: time.Hour, EventLog: true})
		ctx := t.Context()
		const id = "incs"
		tok := e.acquire(t, id).Token()
		k := e.keys(id)
		if s.Mini != nil {
			s.Mini.SetTime(time.Now())
		}
		var last int64
		for i := range 5 {
			_, err := e.store.Create(ctx, id, tok, statestore.State{Status: "running"})
			require.NoError(t, err)
			st, err := e.store.Load(ctx, id)
			require.NoError(t, err)
			assert.Greater(t, st.Incarnation, last, "cycle %d", i)
			last = st.Incarnation
			assert.EqualValues(t, 0, doInt(t, s, "EXISTS", k.Inc), "Create consumes the inc key")
			_, err = e.store.Delete(ctx, id, tok)
			require.NoError(t, err)
			pttl := doInt(t, s, "PTTL", k.Inc)
			assert.Greater(t, pttl, int64(time.Hour/time.Millisecond)-60_000)
			assert.LessOrEqual(t, pttl, int64(time.Hour/time.Millisecond))
			m := s.Do(t, "HGET", k.Inc, "inc")
			got, err := m.ToString()
			require.NoError(t, err)
			assert.Equal(t, strconv.FormatInt(last, 10), got)
		}
	})
}

func doInt(t *testing.T, s *redistest.Server, args ...string) int64 {
	t.Helper()
	m := s.Do(t, args...)
	n, err := m.AsInt64()
	require.NoError(t, err)
	return n
}

// TestCreatedEventAfterLockEvents: with lock.Options.EventLog, lock events
// appended between Delete and Create start a new log. The server's next id
// would lie below the deleted log's last id when they fall in its
// millisecond (forced on miniredis): the lock scripts read the session's
// id floor (its inc key) and place the first lock event above it, and the
// new incarnation's "created" event follows, so Events after the old last
// id returns all of them.
func TestCreatedEventAfterLockEvents(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := t.Context()
		c := s.NewClient(t)
		prefix := s.Prefix(t)
		l, err := lock.New(c, lock.Options{Prefix: prefix, Owner: "exec-a", TTL: 10 * time.Second, EventLog: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		st, err := statestore.New(c, statestore.Options{Prefix: prefix, EventLog: true})
		require.NoError(t, err)
		const id = "lockev-inc"
		if s.Mini != nil {
			s.Mini.SetTime(time.Now())
		}
		lk, err := l.TryAcquire(ctx, id)
		require.NoError(t, err)
		_, err = st.Create(ctx, id, lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		for range 3 {
			_, err = st.IncrementStep(ctx, id, lk.Token())
			require.NoError(t, err)
		}
		old, _, err := st.Events(ctx, id, "", 100)
		require.NoError(t, err)
		lastOld := old[len(old)-1].Seq
		_, err = st.Delete(ctx, id, lk.Token())
		require.NoError(t, err)
		require.NoError(t, lk.Release(ctx))
		lk, err = l.TryAcquire(ctx, id)
		require.NoError(t, err)
		defer func() { _ = lk.Release(context.Background()) }()
		_, err = st.Create(ctx, id, lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		evs, _, err := st.Events(ctx, id, lastOld, 100)
		require.NoError(t, err)
		var types []string
		for _, ev := range evs {
			types = append(types, string(ev.Type))
		}
		// The lock events appended after the Delete (the release, then
		// the grant) come after the old log's last id as well: a reader
		// that kept it sees every one of them.
		assert.Equal(t, []string{"lock_released", "lock_acquired", string(statestore.EventCreated)}, types,
			"Events after %s: %+v", lastOld, evs)
	})
}
