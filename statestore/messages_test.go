package statestore_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

// TestMessagesCursorStability pages through a session's messages while
// another goroutine appends: every message is seen exactly once, in order.
func TestMessagesCursorStability(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "m")
		_, err := e.store.Create(ctx, "m", lk.Token(), statestore.State{Status: "running"})
		require.NoError(t, err)
		const total = 300
		msg := func(i int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)) }
		for i := range 50 {
			_, err := e.store.AppendMessages(ctx, "m", lk.Token(), msg(i))
			require.NoError(t, err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 50; i < total; i += 5 {
				batch := []json.RawMessage{msg(i), msg(i + 1), msg(i + 2), msg(i + 3), msg(i + 4)}
				if _, err := e.store.AppendMessages(ctx, "m", lk.Token(), batch...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		var seen []json.RawMessage
		cursor := ""
		deadline := time.Now().Add(30 * time.Second)
		for len(seen) < total && time.Now().Before(deadline) {
			p, err := e.store.Messages(ctx, "m", cursor, 7)
			require.NoError(t, err)
			seen = append(seen, p.Messages...)
			cursor = p.Next
			assert.LessOrEqual(t, int64(len(seen)), p.Total)
		}
		wg.Wait()
		require.Len(t, seen, total)
		for i, m := range seen {
			assert.JSONEq(t, string(msg(i)), string(m), "message %d", i)
		}
		p, err := e.store.Messages(ctx, "m", cursor, 10)
		require.NoError(t, err)
		assert.Empty(t, p.Messages)
		assert.False(t, p.HasMore)
		assert.Equal(t, cursor, p.Next, "an exhausted cursor stays where it is")
	})
}

// TestRoundTrips counts the round trips of each operation: one per
// mutation and per read, two per Update attempt.
func TestRoundTrips(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := redistest.Counting(s.NewClient(t))
		e := newEnv(t, s, statestore.Options{})
		st, err := statestore.New(c, e.store.Options())
		require.NoError(t, err)
		ctx := t.Context()
		lk := e.acquire(t, "rt")
		tok := lk.Token()
		ops := []struct {
			name  string
			trips int64
			fn    func() error
		}{
			{"Create", 1, func() error {
				_, err := st.Create(ctx, "rt", tok, statestore.State{Status: "pending"})
				return err
			}},
			{"Save", 1, func() error {
				_, err := st.Save(ctx, "rt", tok, statestore.State{Status: "pending", Data: json.RawMessage(`{}`)})
				return err
			}},
			{"Load", 1, func() error { _, err := st.Load(ctx, "rt"); return err }},
			{"UpdateStatus", 1, func() error { _, err := st.UpdateStatus(ctx, "rt", tok, "running"); return err }},
			{"CompareAndSetStatus", 1, func() error {
				_, err := st.CompareAndSetStatus(ctx, "rt", tok, []statestore.Status{"running"}, "running")
				return err
			}},
			{"IncrementResumeCount", 1, func() error { _, err := st.IncrementResumeCount(ctx, "rt", tok); return err }},
			{"IncrementStep", 1, func() error { _, err := st.IncrementStep(ctx, "rt", tok); return err }},
			{"AppendMessages", 1, func() error {
				_, err := st.AppendMessages(ctx, "rt", tok, json.RawMessage(`1`), json.RawMessage(`2`))
				return err
			}},
			{"Messages", 1, func() error { _, err := st.Messages(ctx, "rt", "", 100); return err }},
			{"Update", 2, func() error {
				_, err := st.Update(ctx, "rt", tok, func(*statestore.State) error { return nil })
				return err
			}},
			{"Delete", 1, func() error { _, err := st.Delete(ctx, "rt", tok); return err }},
		}
		// Warm the script cache: a script's first run costs EVALSHA + EVAL.
		for _, op := range ops {
			_ = op.fn()
		}
		for _, op := range ops {
			var err error
			n := c.Count(func() { err = op.fn() })
			require.NoError(t, err, op.name)
			assert.Equal(t, op.trips, n, "%s round trips", op.name)
		}
	})
}

func TestTTLRefreshedOnEveryKey(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{TTL: time.Hour})
		ctx := t.Context()
		lk := e.acquire(t, "ttl")
		seed(t, e, "ttl", lk.Token())
		k := e.keys("ttl")
		for _, key := range []string{k.State, k.Msgs} {
			m := s.Do(t, "PEXPIRE", key, "1000")
			require.NoError(t, m.Error())
		}
		_, err := e.store.UpdateStatus(ctx, "ttl", lk.Token(), "x")
		require.NoError(t, err)
		for _, key := range []string{k.State, k.Msgs} {
			m := s.Do(t, "PTTL", key)
			ms, err := m.AsInt64()
			require.NoError(t, err)
			assert.Greater(t, ms, int64(59*time.Minute/time.Millisecond), key)
		}

		forever := newEnv(t, s, statestore.Options{TTL: -1})
		lk2 := forever.acquire(t, "ttl2")
		seed(t, forever, "ttl2", lk2.Token())
		m := s.Do(t, "PTTL", forever.keys("ttl2").State)
		ms, _ := m.AsInt64()
		assert.Equal(t, int64(-1), ms, "negative TTL: no expiry")
	})
}

func TestBadInput(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{MaxDocumentBytes: 1024})
		ctx := t.Context()
		lk := e.acquire(t, "b")
		tok := lk.Token()
		seed(t, e, "b", tok)
		before := e.snapshot(t, "b")
		big := json.RawMessage(`"` + strings.Repeat("x", 1100) + `"`)
		check := func(name string, err, want error) {
			t.Helper()
			assert.ErrorIs(t, err, want, name)
			assert.Equal(t, before, e.snapshot(t, "b"), "%s changed state", name)
		}
		for _, id := range []string{"", "a{b}", "a|b", "x\x00", "\xff", strings.Repeat("i", 300)} {
			_, err := e.store.Save(ctx, id, tok, statestore.State{Status: "x"})
			check("Save id "+id, err, statestore.ErrInvalidID)
			_, err = e.store.Load(ctx, id)
			check("Load id "+id, err, statestore.ErrInvalidID)
			_, err = e.store.Messages(ctx, id, "", 10)
			check("Messages id "+id, err, statestore.ErrInvalidID)
		}
		_, err := e.store.Save(ctx, "b", 0, statestore.State{Status: "x"})
		check("zero token", err, statestore.ErrInvalidArgument)
		_, err = e.store.Save(ctx, "b", tok, statestore.State{Status: ""})
		check("empty status", err, statestore.ErrInvalidDocument)
		_, err = e.store.Save(ctx, "b", tok, statestore.State{Status: "has space"})
		check("bad status", err, statestore.ErrInvalidDocument)
		_, err = e.store.Save(ctx, "b", tok, statestore.State{Status: "x", Data: json.RawMessage(`{"a":`)})
		check("bad JSON", err, statestore.ErrInvalidDocument)
		_, err = e.store.Save(ctx, "b", tok, statestore.State{Status: "x", Output: json.RawMessage(`nope`)})
		check("bad output", err, statestore.ErrInvalidDocument)
		_, err = e.store.Save(ctx, "b", tok, statestore.State{Status: "x", Data: big})
		check("oversized", err, statestore.ErrTooLarge)
		_, err = e.store.Save(ctx, "b", tok, statestore.State{Status: "x", Step: -1})
		check("negative step", err, statestore.ErrInvalidArgument)
		_, err = e.store.AppendMessages(ctx, "b", tok, json.RawMessage(`1`), big)
		check("oversized message", err, statestore.ErrTooLarge)
		_, err = e.store.AppendMessages(ctx, "b", tok, json.RawMessage(`1`), json.RawMessage(`{`))
		check("bad message", err, statestore.ErrInvalidDocument)
		_, err = e.store.AppendMessages(ctx, "b", tok)
		check("no messages", err, statestore.ErrInvalidArgument)
		_, err = e.store.CompareAndSetStatus(ctx, "b", tok, nil, "x")
		check("CAS without expected", err, statestore.ErrInvalidArgument)
		_, err = e.store.UpdateStatus(ctx, "b", tok, "no\nnewline")
		check("bad next status", err, statestore.ErrInvalidDocument)
		for _, limit := range []int{0, -1, statestore.MaxPageSize + 1} {
			_, err = e.store.Messages(ctx, "b", "", limit)
			check(fmt.Sprint("limit ", limit), err, statestore.ErrInvalidArgument)
		}
		p, err := e.store.Messages(ctx, "b", "", 1)
		require.NoError(t, err)
		for name, cur := range map[string]string{
			"garbage":       "!!!",
			"not a cursor":  "bm90IGEgY3Vyc29y",
			"truncated":     p.Next[:len(p.Next)-2],
			"other session": otherCursor(t, e, tok),
		} {
			_, err = e.store.Messages(ctx, "b", cur, 10)
			check("cursor "+name, err, statestore.ErrInvalidCursor)
		}

		// Unknown session (its lock held: the fence check passes).
		nobody := e.acquire(t, "nobody").Token()
		for name, op := range mutations(e.store, "nobody") {
			if name == "Save" || name == "Create" || name == "Delete" {
				continue // these create or tolerate a missing session
			}
			check(name+" unknown session", op(ctx, nobody), statestore.ErrNotFound)
		}
		_, err = e.store.Messages(ctx, "nobody", "", 10)
		check("Messages unknown session", err, statestore.ErrNotFound)
		_, err = e.store.Load(ctx, "nobody")
		check("Load unknown session", err, statestore.ErrNotFound)
	})
}

// otherCursor returns a valid cursor of another session.
func otherCursor(t *testing.T, e *env, tok any) string {
	t.Helper()
	lk := e.acquire(t, "other")
	seed(t, e, "other", lk.Token())
	p, err := e.store.Messages(t.Context(), "other", "", 1)
	require.NoError(t, err)
	return p.Next
}

// TestForeignData: session keys holding data fencekit did not write get a
// typed error and no write.
func TestForeignData(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "f")
		seed(t, e, "f", lk.Token())
		k := e.keys("f")
		m := s.Do(t, "HSET", k.State, "fence", "not-a-token")
		require.NoError(t, m.Error())
		before := e.snapshot(t, "f")
		_, err := e.store.UpdateStatus(ctx, "f", lk.Token(), "x")
		assert.ErrorIs(t, err, statestore.ErrCorrupt)
		_, err = e.store.Load(ctx, "f")
		assert.ErrorIs(t, err, statestore.ErrCorrupt)
		assert.Equal(t, before, e.snapshot(t, "f"))

		m = s.Do(t, "DEL", k.Msgs)
		require.NoError(t, m.Error())
		m = s.Do(t, "SET", k.Msgs, "x")
		require.NoError(t, m.Error())
		m = s.Do(t, "HSET", k.State, "fence", lk.Token().String())
		require.NoError(t, m.Error())
		before = e.snapshot(t, "f")
		_, err = e.store.AppendMessages(ctx, "f", lk.Token(), json.RawMessage(`1`))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "WRONGTYPE")
		assert.Equal(t, before, e.snapshot(t, "f"), "a failed append must not bump the version")
	})
}
