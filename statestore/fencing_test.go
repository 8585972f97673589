package statestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/statestore"
)

func (e *env) keys(id string) keys.Session {
	return keys.ForSession(e.store.Options().Prefix, id)
}

func (e *env) snapshot(t *testing.T, id string) map[string]string {
	t.Helper()
	k := e.keys(id)
	return e.s.Snapshot(t, k.All()...)
}

// mutations lists every mutating call of the Store, run with token.
func mutations(st *statestore.Store, id string) map[string]func(ctx context.Context, tok fencing.Token) error {
	return map[string]func(ctx context.Context, tok fencing.Token) error{
		"Save": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.Save(ctx, id, tok, statestore.State{Status: "hijacked", Data: json.RawMessage(`{"x":1}`)})
			return err
		},
		"Create": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.Create(ctx, id, tok, statestore.State{Status: "hijacked"})
			return err
		},
		"UpdateStatus": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.UpdateStatus(ctx, id, tok, "hijacked")
			return err
		},
		"CompareAndSetStatus": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.CompareAndSetStatus(ctx, id, tok, []statestore.Status{statestore.StatusRunning}, "hijacked")
			return err
		},
		"IncrementResumeCount": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.IncrementResumeCount(ctx, id, tok)
			return err
		},
		"IncrementStep": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.IncrementStep(ctx, id, tok)
			return err
		},
		"AppendMessages": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.AppendMessages(ctx, id, tok, json.RawMessage(`"late"`))
			return err
		},
		"Update": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.Update(ctx, id, tok, func(s *statestore.State) error { s.Status = "hijacked"; return nil })
			return err
		},
		"Delete": func(ctx context.Context, tok fencing.Token) error {
			_, err := st.Delete(ctx, id, tok)
			return err
		},
	}
}

// seed creates session id under lk's token, with messages.
func seed(t *testing.T, e *env, id string, tok fencing.Token) {
	t.Helper()
	ctx := t.Context()
	_, err := e.store.Create(ctx, id, tok, statestore.State{AgentType: "a", Status: statestore.StatusRunning, Data: json.RawMessage(`{"n":0}`)})
	require.NoError(t, err)
	_, err = e.store.AppendMessages(ctx, id, tok, json.RawMessage(`"m1"`), json.RawMessage(`"m2"`))
	require.NoError(t, err)
}

// TestStaleWriterRejected: executor A holds the session, its lease is
// taken over by B, and every mutation A then attempts is refused with
// ErrStaleToken, leaving every byte as it was. In both modes.
func TestStaleWriterRejected(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		for _, relaxed := range []bool{false, true} {
			t.Run(fmt.Sprintf("relaxed=%v", relaxed), func(t *testing.T) {
				e := newEnv(t, s, statestore.Options{Relaxed: relaxed})
				ctx := t.Context()
				const id = "sess"
				a := e.acquire(t, id)
				seed(t, e, id, a.Token())
				// A pauses; its lease ends (deleted here, as by expiry) and B takes over.
				m := s.Do(t, "DEL", e.keys(id).Lock)
				require.NoError(t, m.Error())
				b := e.acquire(t, id)
				require.Greater(t, b.Token(), a.Token())

				before := e.snapshot(t, id)
				for name, op := range mutations(e.store, id) {
					err := op(ctx, a.Token())
					var se *fencing.StaleTokenError
					if assert.ErrorAs(t, err, &se, name) {
						assert.Equal(t, a.Token(), se.Presented, name)
						assert.Equal(t, b.Token(), se.Highest, name)
						assert.Equal(t, id, se.Resource, name)
					}
					assert.ErrorIs(t, err, fencing.ErrStaleToken, name)
					assert.Equal(t, before, e.snapshot(t, id), "%s changed state", name)
				}
				// B writes; then A's token is also older than the session's fence.
				_, err := e.store.UpdateStatus(ctx, id, b.Token(), statestore.StatusCompleted)
				require.NoError(t, err)
				st, err := e.store.Load(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, b.Token(), st.Fence)
				for name, op := range mutations(e.store, id) {
					assert.ErrorIs(t, op(ctx, a.Token()), fencing.ErrStaleToken, name)
				}
			})
		}
	})
}

// TestExpiredHolder: A's lease ended and nobody took over. Strict mode
// refuses A (ErrNotHolder); relaxed mode accepts it, since no newer token
// exists.
func TestExpiredHolder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := t.Context()
		strict := newEnv(t, s, statestore.Options{})
		relaxed, err := statestore.New(s.NewClient(t), statestore.Options{Prefix: strict.store.Options().Prefix, Relaxed: true})
		require.NoError(t, err)
		const id = "exp"
		a := strict.acquire(t, id)
		seed(t, strict, id, a.Token())
		m := s.Do(t, "DEL", strict.keys(id).Lock)
		require.NoError(t, m.Error())

		before := strict.snapshot(t, id)
		for name, op := range mutations(strict.store, id) {
			err := op(ctx, a.Token())
			assert.ErrorIs(t, err, fencing.ErrNotHolder, name)
			var nh *statestore.NotHolderError
			if assert.ErrorAs(t, err, &nh, name) {
				assert.Equal(t, a.Token(), nh.Presented)
				assert.Zero(t, nh.Holder)
			}
			assert.Equal(t, before, strict.snapshot(t, id), "%s changed state", name)
		}
		v, err := relaxed.IncrementResumeCount(ctx, id, a.Token())
		require.NoError(t, err, "relaxed mode accepts the latest token without a lease")
		assert.Equal(t, int64(1), v)

		// A token that was never issued (above the fence) does not hold the lock either.
		b := strict.acquire(t, id)
		_, err = strict.store.UpdateStatus(ctx, id, b.Token()+1, "x")
		assert.ErrorIs(t, err, fencing.ErrNotHolder)
	})
}

// TestCASRace: N writers compare-and-set the same transition; exactly one wins.
func TestCASRace(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		for round := range 5 {
			id := fmt.Sprintf("cas-%d", round)
			lk := e.acquire(t, id)
			_, err := e.store.Create(ctx, id, lk.Token(), statestore.State{Status: statestore.StatusPending})
			require.NoError(t, err)
			const n = 16
			var wins sync.WaitGroup
			var mu sync.Mutex
			won := 0
			var results []statestore.CASResult
			for range n {
				wins.Add(1)
				go func() {
					defer wins.Done()
					r, err := e.store.CompareAndSetStatus(ctx, id, lk.Token(), []statestore.Status{statestore.StatusPending}, statestore.StatusRunning)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					results = append(results, r)
					if r.OK {
						won++
					}
				}()
			}
			wins.Wait()
			assert.Equal(t, 1, won, "round %d", round)
			for _, r := range results {
				if !r.OK {
					assert.Equal(t, statestore.StatusRunning, r.CurrentStatus)
					assert.Equal(t, int64(2), r.CurrentVersion)
				}
			}
		}
	})
}

func TestSaveVersions(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "v")
		tok := lk.Token()
		_, err := e.store.Save(ctx, "v", tok, statestore.State{Status: "a", Version: 3})
		assert.ErrorIs(t, err, statestore.ErrNotFound, "an expected version needs a session")
		v, err := e.store.Save(ctx, "v", tok, statestore.State{Status: "a"})
		require.NoError(t, err)
		assert.Equal(t, int64(1), v)
		_, err = e.store.Create(ctx, "v", tok, statestore.State{Status: "a"})
		assert.ErrorIs(t, err, statestore.ErrExists)
		v, err = e.store.Save(ctx, "v", tok, statestore.State{Status: "b", Version: 1})
		require.NoError(t, err)
		assert.Equal(t, int64(2), v)
		before := e.snapshot(t, "v")
		_, err = e.store.Save(ctx, "v", tok, statestore.State{Status: "c", Version: 1})
		var ce *statestore.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.ErrorIs(t, err, statestore.ErrConflict)
		assert.Equal(t, int64(1), ce.Expected)
		assert.Equal(t, int64(2), ce.Current)
		assert.Equal(t, before, e.snapshot(t, "v"))

		st, err := e.store.Load(ctx, "v")
		require.NoError(t, err)
		assert.Equal(t, statestore.Status("b"), st.Status)
		assert.Equal(t, int64(2), st.Version)
		assert.False(t, st.CreatedAt.IsZero())
		assert.False(t, st.UpdatedAt.Before(st.CreatedAt))

		existed, err := e.store.Delete(ctx, "v", tok)
		require.NoError(t, err)
		assert.True(t, existed)
		existed, err = e.store.Delete(ctx, "v", tok)
		require.NoError(t, err)
		assert.False(t, existed)
		_, err = e.store.Load(ctx, "v")
		assert.ErrorIs(t, err, statestore.ErrNotFound)
		info, err := e.locker.Inspect(ctx, "v")
		require.NoError(t, err)
		assert.True(t, info.Held, "Delete leaves the lock alone")
	})
}

// TestUpdateConcurrent: Update's retry loop makes concurrent read-modify-
// write cycles lose no update.
func TestUpdateConcurrent(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{MaxRetries: 1000})
		ctx := t.Context()
		lk := e.acquire(t, "u")
		_, err := e.store.Create(ctx, "u", lk.Token(), statestore.State{Status: "x", Data: json.RawMessage(`{"n":0}`)})
		require.NoError(t, err)
		const workers, each = 4, 10
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					_, err := e.store.Update(ctx, "u", lk.Token(), func(st *statestore.State) error {
						var d struct{ N int }
						if err := json.Unmarshal(st.Data, &d); err != nil {
							return err
						}
						d.N++
						st.Data, _ = json.Marshal(map[string]int{"n": d.N})
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		st, err := e.store.Load(ctx, "u")
		require.NoError(t, err)
		assert.JSONEq(t, fmt.Sprintf(`{"n":%d}`, workers*each), string(st.Data))
		assert.Equal(t, int64(1+workers*each), st.Version)

		boom := errors.New("boom")
		_, err = e.store.Update(ctx, "u", lk.Token(), func(*statestore.State) error { return boom })
		assert.ErrorIs(t, err, boom)
		_, err = e.store.Update(ctx, "missing", lk.Token(), func(*statestore.State) error { return nil })
		assert.ErrorIs(t, err, statestore.ErrNotFound)
	})
}

// TestUpdateSeesRecreation: between Update's read and its write the session
// is deleted and created again, and written until it is back at the version
// Update read. The write must not land on the new session's state.
func TestUpdateSeesRecreation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		lk := e.acquire(t, "aba")
		tok := lk.Token()
		_, err := e.store.Create(ctx, "aba", tok, statestore.State{Status: "old"})
		require.NoError(t, err)
		_, err = e.store.UpdateStatus(ctx, "aba", tok, "old") // version 2
		require.NoError(t, err)
		attempts := 0
		st, err := e.store.Update(ctx, "aba", tok, func(st *statestore.State) error {
			attempts++
			if attempts == 1 {
				time.Sleep(2 * time.Millisecond) // a new creation time
				_, err := e.store.Delete(ctx, "aba", tok)
				require.NoError(t, err)
				_, err = e.store.Create(ctx, "aba", tok, statestore.State{Status: "new"})
				require.NoError(t, err)
				_, err = e.store.UpdateStatus(ctx, "aba", tok, "new") // version 2 again
				require.NoError(t, err)
			}
			st.Error = fmt.Sprintf("seen %s", st.Status)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, 2, attempts)
		assert.Equal(t, "seen new", st.Error)
		got, err := e.store.Load(ctx, "aba")
		require.NoError(t, err)
		assert.Equal(t, "seen new", got.Error)
	})
}
