package stream_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/stream"
)

// ttlEnv is a Locker and every session store on one client and prefix,
// with store TTL ttl.
type ttlEnv struct {
	s       *redistest.Server
	prefix  string
	locker  *lock.Locker
	store   *statestore.Store
	streams *stream.Streams
	stager  *staging.Stager
	cps     *checkpoint.Store
}

func newTTLEnv(t *testing.T, s *redistest.Server, ttl time.Duration) *ttlEnv {
	t.Helper()
	c := s.NewClient(t)
	prefix := s.Prefix(t)
	l, err := lock.New(c, lock.Options{Prefix: prefix, TTL: 10 * time.Second, Owner: "executor-a"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	st, err := statestore.New(c, statestore.Options{Prefix: prefix, TTL: ttl, EventLog: true})
	require.NoError(t, err)
	return &ttlEnv{s: s, prefix: prefix, locker: l, store: st, streams: stream.New(st), stager: staging.New(st), cps: checkpoint.New(st)}
}

// TestAppendKeepsSessionAlive is issue 12 item 3, second bullet: with a
// store TTL of 1 s and appends every 300 ms under a held lock, the session
// (state, messages, ...) must still be there after 1.8 s, not only the
// stream. Once the appends stop, everything expires.
func TestAppendKeepsSessionAlive(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newTTLEnv(t, s, time.Second)
		ctx := t.Context()
		const id = "alive"
		lk := acquire(t, e.locker, id)
		_, err := e.store.Create(ctx, id, lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		_, err = e.store.AppendMessages(ctx, id, lk.Token(), json.RawMessage(`"m"`))
		require.NoError(t, err)
		pass := func(d time.Duration) {
			if s.Mini != nil {
				s.FastForward(d)
			} else {
				time.Sleep(d)
			}
		}
		for range 6 { // 1.8 s
			pass(300 * time.Millisecond)
			_, err := e.streams.Append(ctx, id, lk.Token(), []byte("c"))
			require.NoError(t, err)
		}
		st, err := e.store.Load(ctx, id)
		require.NoError(t, err, "the session expired while its stream was written")
		assert.Equal(t, int64(1), st.MessageCount)

		pass(1200 * time.Millisecond)
		_, err = e.store.Load(ctx, id)
		assert.ErrorIs(t, err, statestore.ErrNotFound, "without writes the session expires")
		_, err = e.streams.Read(ctx, id, stream.Seq{}, 10)
		assert.ErrorIs(t, err, stream.ErrUnknownStream)
	})
}

// TestEveryFencedWriteKeepsWholeSessionAlive: each fenced write of
// statestore, staging, checkpoint and stream gives every key of the
// session the session TTL (stream keys: at least it), so no session
// half-expires while its holder writes.
func TestEveryFencedWriteKeepsWholeSessionAlive(t *testing.T) {
	const ttl = time.Minute
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newTTLEnv(t, s, ttl)
		ctx := t.Context()
		const id = "every"
		lk := acquire(t, e.locker, id)
		tok := lk.Token()
		_, err := e.store.Create(ctx, id, tok, statestore.State{Status: "running", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		_, err = e.store.AppendMessages(ctx, id, tok, json.RawMessage(`"m"`), json.RawMessage(`"n"`))
		require.NoError(t, err)
		cp, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{MessageCount: 2})
		require.NoError(t, err)
		_, err = e.streams.Append(ctx, id, tok, []byte("c"))
		require.NoError(t, err)
		stage := func(step int64) {
			_, err := e.stager.Stage(ctx, id, step, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`{"a":1}`)})
			require.NoError(t, err)
		}
		stage(9) // keeps the stage hash in existence throughout
		k := keys.ForSession(e.prefix, id)
		data := []string{k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events, k.Out, k.OutMeta}
		writes := []struct {
			name string
			fn   func(tok fencing.Token) error
		}{
			{"Save", func(tok fencing.Token) error {
				_, err := e.store.Save(ctx, id, tok, statestore.State{Status: "running"})
				return err
			}},
			{"UpdateStatus", func(tok fencing.Token) error { _, err := e.store.UpdateStatus(ctx, id, tok, "x"); return err }},
			{"CompareAndSetStatus", func(tok fencing.Token) error {
				_, err := e.store.CompareAndSetStatus(ctx, id, tok, []statestore.Status{"x"}, "running")
				return err
			}},
			{"IncrementResumeCount", func(tok fencing.Token) error { _, err := e.store.IncrementResumeCount(ctx, id, tok); return err }},
			{"IncrementStep", func(tok fencing.Token) error { _, err := e.store.IncrementStep(ctx, id, tok); return err }},
			{"AppendMessages", func(tok fencing.Token) error {
				_, err := e.store.AppendMessages(ctx, id, tok, json.RawMessage(`"o"`))
				return err
			}},
			{"Update", func(tok fencing.Token) error {
				_, err := e.store.Update(ctx, id, tok, func(*statestore.State) error { return nil })
				return err
			}},
			{"Stage", func(tok fencing.Token) error { stage(1); return nil }},
			{"Promote", func(tok fencing.Token) error { _, err := e.stager.Promote(ctx, id, 1, tok); return err }},
			{"Discard", func(tok fencing.Token) error {
				stage(2)
				for _, key := range data {
					s.Do(t, "PEXPIRE", key, "5000")
				}
				_, err := e.stager.Discard(ctx, id, 2, tok)
				return err
			}},
			{"checkpoint Save", func(tok fencing.Token) error {
				_, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{MessageCount: 1})
				return err
			}},
			{"Restore", func(tok fencing.Token) error { _, err := e.cps.Restore(ctx, id, tok, cp); return err }},
			{"Prune", func(tok fencing.Token) error { _, err := e.cps.Prune(ctx, id, tok, 1); return err }},
			{"stream Append", func(tok fencing.Token) error { _, err := e.streams.Append(ctx, id, tok, []byte("d")); return err }},
			{"stream End", func(tok fencing.Token) error { _, err := e.streams.End(ctx, id, tok); return err }},
		}
		for _, w := range writes {
			if m := s.Do(t, "EXISTS", k.Stage); m.IsInt64() && must(m.AsInt64()) == 0 {
				stage(9) // Restore discards the stage
			}
			for _, key := range data {
				s.Do(t, "PEXPIRE", key, "5000")
			}
			require.NoError(t, w.fn(tok), w.name)
			for _, key := range data {
				m := s.Do(t, "PTTL", key)
				pttl, err := m.AsInt64()
				require.NoError(t, err)
				if w.name == "Restore" && key == k.Stage {
					assert.Equal(t, int64(-2), pttl, "Restore discards the stage")
					continue
				}
				assert.Greater(t, pttl, int64((ttl-5*time.Second)/time.Millisecond), "%s: PTTL of %s", w.name, key)
			}
		}
	})
}

// TestSessionKeysShareOneDeadline is the rule of lib_fence.lua fk_touch:
// after every fenced write, every key of the session that exists expires
// at one deadline, the state's, which lies between the TTL and the TTL +
// 1% from the write. A key a write creates gets that deadline too, also
// when the write refreshes nothing else; a store with a lower TTL brings
// every key down to it.
func TestSessionKeysShareOneDeadline(t *testing.T) {
	const ttl = time.Hour
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newTTLEnv(t, s, ttl)
		ctx := t.Context()
		const id = "deadline"
		lk := acquire(t, e.locker, id)
		tok := lk.Token()
		k := keys.ForSession(e.prefix, id)
		core := []string{k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events}
		check := func(what string, ttl time.Duration) {
			t.Helper()
			// One script reads every PTTL, so they are comparable.
			args := append([]string{"EVAL", "local r = {} for i = 1, #KEYS do r[i] = redis.call('PTTL', KEYS[i]) end return r",
				strconv.Itoa(len(core))}, core...)
			m := s.Do(t, args...)
			arr, err := m.AsIntSlice()
			require.NoError(t, err, what)
			state := arr[0]
			assert.GreaterOrEqual(t, state, ttl.Milliseconds()-5000, "%s: the state's ttl", what)
			assert.LessOrEqual(t, state, ttl.Milliseconds()+ttl.Milliseconds()/100, "%s: the state's ttl", what)
			for i, p := range arr[1:] {
				if p == -2 {
					continue // no such key (yet)
				}
				assert.InDelta(t, state, p, 2, "%s: %s expires %d ms away, the state %d", what, core[i+1], p, state)
			}
		}
		_, err := e.store.Create(ctx, id, tok, statestore.State{Status: "running", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		check("Create", ttl)
		// Each of these creates a key of the session while the state's
		// deadline needs no refresh.
		_, err = e.store.AppendMessages(ctx, id, tok, json.RawMessage(`"m"`))
		require.NoError(t, err)
		check("AppendMessages (creates the messages)", ttl)
		_, err = e.stager.Stage(ctx, id, 1, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`{"a":1}`)})
		require.NoError(t, err)
		check("Stage (creates the stage)", ttl)
		cp, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{MessageCount: 1})
		require.NoError(t, err)
		check("checkpoint Save (creates the index and payloads)", ttl)
		_, err = e.streams.Append(ctx, id, tok, []byte("c"))
		require.NoError(t, err)
		check("stream Append", ttl)
		_, err = e.store.UpdateStatus(ctx, id, tok, "paused")
		require.NoError(t, err)
		check("UpdateStatus", ttl)
		// Every other fenced write, inside the window too.
		for _, w := range []struct {
			name string
			fn   func() error
		}{
			{"Save", func() error {
				_, err := e.store.Save(ctx, id, tok, statestore.State{Status: "running"})
				return err
			}},
			{"CompareAndSetStatus", func() error {
				_, err := e.store.CompareAndSetStatus(ctx, id, tok, []statestore.Status{"running"}, "paused")
				return err
			}},
			{"IncrementResumeCount", func() error { _, err := e.store.IncrementResumeCount(ctx, id, tok); return err }},
			{"IncrementStep", func() error { _, err := e.store.IncrementStep(ctx, id, tok); return err }},
			{"Update", func() error {
				_, err := e.store.Update(ctx, id, tok, func(*statestore.State) error { return nil })
				return err
			}},
			{"Promote", func() error { _, err := e.stager.Promote(ctx, id, 1, tok); return err }},
			{"Discard", func() error {
				_, err := e.stager.Stage(ctx, id, 2, tok, staging.Change{ToolCallID: "t", Merge: json.RawMessage(`{"b":1}`)})
				require.NoError(t, err)
				_, err = e.stager.Discard(ctx, id, 2, tok)
				return err
			}},
			{"checkpoint Restore", func() error { _, err := e.cps.Restore(ctx, id, tok, cp); return err }},
			{"checkpoint Prune", func() error {
				_, err := e.cps.Save(ctx, id, tok, checkpoint.Checkpoint{MessageCount: 1})
				require.NoError(t, err)
				_, err = e.cps.Prune(ctx, id, tok, 1)
				return err
			}},
			{"stream End", func() error { _, err := e.streams.End(ctx, id, tok); return err }},
		} {
			require.NoError(t, w.fn(), w.name)
			check(w.name, ttl)
		}

		// A store with a lower TTL brings every key down to it.
		low, err := statestore.New(s.NewClient(t), statestore.Options{Prefix: e.prefix, TTL: ttl / 2, EventLog: true})
		require.NoError(t, err)
		_, err = low.UpdateStatus(ctx, id, tok, "running")
		require.NoError(t, err)
		check("UpdateStatus with half the TTL", ttl/2)
		_, err = e.store.UpdateStatus(ctx, id, tok, "paused")
		require.NoError(t, err)
		check("UpdateStatus with the TTL again", ttl)

		// On a server of its own, the command counts show the refresh
		// skipped: a write inside the window sets one or two TTLs (the event
		// log's, the keys it may create), a write outside it all of them.
		if s.Kind != redistest.Redis {
			return
		}
		p := redistest.NewPrivateRedis(t)
		pe := newTTLEnv(t, p, ttl)
		plk := acquire(t, pe.locker, id)
		_, err = pe.store.Create(ctx, id, plk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		pexpires := func(write func()) int64 {
			t.Helper()
			n0, ok := p.CommandCalls(t, "pexpire")
			require.True(t, ok)
			write()
			n1, _ := p.CommandCalls(t, "pexpire")
			return n1 - n0
		}
		status := func() {
			_, err := pe.store.UpdateStatus(ctx, id, plk.Token(), "running")
			require.NoError(t, err)
		}
		assert.LessOrEqual(t, pexpires(status), int64(1), "a write inside the window refreshes only the event log")
		assert.LessOrEqual(t, pexpires(func() {
			_, err := pe.store.AppendMessages(ctx, id, plk.Token(), json.RawMessage(`"m"`))
			require.NoError(t, err)
		}), int64(2), "AppendMessages inside the window: the event log and the messages")
		pk := keys.ForSession(pe.prefix, id)
		p.Do(t, "PEXPIRE", pk.State, "5000")
		assert.GreaterOrEqual(t, pexpires(status), int64(len(core)), "a state that expires too soon: every key is refreshed")
	})
}

// TestReadAfterSessionDeleted: a stream position of a session that was
// deleted and created again is refused by Read and Follow, with the new
// stream's entries numbered above it (Follow of the zero Seq reads them).
func TestReadAfterSessionDeleted(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{})
		ctx := t.Context()
		const id = "gone"
		lk := acquire(t, e.locker, id)
		_, err := e.store.Create(ctx, id, lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		old := e.appendN(t, id, lk, 0, 5)
		_, err = e.store.Delete(ctx, id, lk.Token())
		require.NoError(t, err)
		_, err = e.store.Create(ctx, id, lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		fresh := e.appendN(t, id, lk, 0, 7)
		assert.True(t, old[4].Less(fresh[0]), "new ids %s must follow old %s", fresh[0], old[4])
		for _, q := range []stream.Seq{old[2], old[4]} {
			_, err = e.streams.Read(ctx, id, q, 100)
			require.ErrorIs(t, err, stream.ErrSessionReplaced, "position %s", q)
			var re *stream.ReplacedError
			require.ErrorAs(t, err, &re)
			fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			f := e.streams.Follow(id, q)
			assert.False(t, f.Next(fctx))
			cancel()
			assert.ErrorIs(t, f.Err(), stream.ErrSessionReplaced)
		}
		p, err := e.streams.Read(ctx, id, stream.Seq{}, 100)
		require.NoError(t, err)
		assert.Equal(t, names(0, 7), data(p.Chunks))
		p, err = e.streams.Read(ctx, id, fresh[3], 100)
		require.NoError(t, err)
		assert.Equal(t, names(4, 3), data(p.Chunks))
		assert.Zero(t, p.Skipped)
	})
}

// TestFollowAcrossDelete: a follower blocked on the stream while the
// session is deleted and created again stops with ErrSessionReplaced
// instead of reading the new stream's entries as a continuation.
func TestFollowAcrossDelete(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, stream.Options{Block: 100 * time.Millisecond})
		ctx := t.Context()
		const id = "follow"
		lk := acquire(t, e.locker, id)
		_, err := e.store.Create(ctx, id, lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		e.appendN(t, id, lk, 0, 3)
		f := e.streams.Follow(id, stream.Seq{})
		for range 3 {
			require.True(t, f.Next(ctx))
		}
		_, err = e.store.Delete(ctx, id, lk.Token())
		require.NoError(t, err)
		_, err = e.store.Create(ctx, id, lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		e.appendN(t, id, lk, 0, 10)
		fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		assert.False(t, f.Next(fctx), "chunk %q of the new stream read as a continuation", f.Chunk().Data)
		assert.ErrorIs(t, f.Err(), stream.ErrSessionReplaced)
	})
}

func must(n int64, err error) int64 {
	if err != nil {
		panic(err)
	}
	return n
}
