package staging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

// mutations lists every mutating call of the Stager on session id, step
// 1, run with a token.
func mutations(sg *staging.Stager, id string) map[string]func(ctx context.Context, tok fencing.Token) error {
	return map[string]func(ctx context.Context, tok fencing.Token) error{
		"Stage": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.Stage(ctx, id, 1, tok, add("late", "/late", true, ms(99)))
			return err
		},
		"Stage other step": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.Stage(ctx, id, 2, tok, add("late", "/late", true, ms(99)))
			return err
		},
		"Promote": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.Promote(ctx, id, 1, tok)
			return err
		},
		"Promote adopting": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.Promote(ctx, id, 1, tok, staging.AdoptStale())
			return err
		},
		"Promote empty step": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.Promote(ctx, id, 9, tok)
			return err
		},
		"Discard": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.Discard(ctx, id, 1, tok)
			return err
		},
		"Discard empty step": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.Discard(ctx, id, 9, tok)
			return err
		},
		"SaveStateAndPromote": func(ctx context.Context, tok fencing.Token) error {
			_, err := sg.SaveStateAndPromote(ctx, id, 1, tok, statestore.State{Status: "hijacked", Data: json.RawMessage(`{"x":1}`)})
			return err
		},
	}
}

// TestStaleExecutor: executor A holds the session and stages changes; its
// lease is taken over by executor B (another Locker on the same prefix);
// every staging call A makes with its old token is refused and leaves
// every byte as it was. Then B promotes: A's changes are skipped unless B
// adopts them.
func TestStaleExecutor(t *testing.T) {
	takeovers := map[string]func(t *testing.T, a *env, lk *lock.Lock){
		// A gives the lock up (or its lease ends) and B acquires.
		"released": func(t *testing.T, a *env, lk *lock.Lock) { require.NoError(t, lk.Release(t.Context())) },
		// The lock record disappears under A (expiry, a failover) and B acquires.
		"lock deleted": func(t *testing.T, a *env, lk *lock.Lock) {
			m := a.s.Do(t, "DEL", a.keys(lk.Name()).Lock)
			require.NoError(t, m.Error())
		},
	}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		for _, relaxed := range []bool{false, true} {
			for name, takeover := range takeovers {
				t.Run(fmt.Sprintf("%s relaxed=%v", name, relaxed), func(t *testing.T) {
					a := newEnv(t, s, statestore.Options{Relaxed: relaxed})
					b := a.second(t)
					ctx := t.Context()
					const id = "sess"
					lkA := a.acquire(t, id)
					tokA := lkA.Token()
					a.create(t, id, tokA, `{"n":0}`)
					a.stage(t, id, 1, tokA, add("a1", "/a1", 1, ms(1)))
					a.stage(t, id, 1, tokA, add("a2", "/a2", 2, ms(2)))

					takeover(t, a, lkA)
					lkB := b.acquire(t, id)
					tokB := lkB.Token()
					require.Greater(t, tokB, tokA)

					before := a.snapshot(t, id)
					for op, call := range mutations(a.stager, id) {
						err := call(ctx, tokA)
						var se *fencing.StaleTokenError
						if assert.ErrorAs(t, err, &se, op) {
							assert.Equal(t, tokA, se.Presented, op)
							assert.Equal(t, tokB, se.Highest, op)
							assert.Equal(t, id, se.Resource, op)
						}
						assert.ErrorIs(t, err, fencing.ErrStaleToken, op)
						assert.Equal(t, before, a.snapshot(t, id), "%s changed stored bytes", op)
					}

					// B stages its own change; A's are left from before.
					b.stage(t, id, 1, tokB, add("b1", "/b1", 3, ms(0)))
					res, err := b.stager.Promote(ctx, id, 1, tokB)
					require.NoError(t, err)
					assert.Equal(t, []string{"b1"}, calls(res.Applied))
					assert.Equal(t, []string{"a1", "a2"}, calls(res.Skipped))
					for _, sk := range res.Skipped {
						assert.Equal(t, tokA, sk.Token)
					}
					assert.JSONEq(t, `{"n":0,"b1":3}`, b.data(t, id), "A's late changes are not promoted")
					list, err := b.stager.List(ctx, id)
					require.NoError(t, err)
					assert.Empty(t, list, "skipped changes are removed with the step")

					// Once B has written, A is also behind the session's fence.
					for op, call := range mutations(a.stager, id) {
						assert.ErrorIs(t, call(ctx, tokA), fencing.ErrStaleToken, op)
					}
				})
			}
		}
	})
}

// TestAdoptStale: with AdoptStale the new holder applies what the old one
// staged, in the same order as its own changes.
func TestAdoptStale(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		a := newEnv(t, s, statestore.Options{})
		b := a.second(t)
		ctx := t.Context()
		const id = "adopt"
		lkA := a.acquire(t, id)
		tokA := lkA.Token()
		a.create(t, id, tokA, `{"log":[]}`)
		a.stage(t, id, 1, tokA, add("a1", "/log/-", "a1", ms(1)))
		a.stage(t, id, 1, tokA, add("a3", "/log/-", "a3", ms(3)))
		require.NoError(t, lkA.Release(ctx))
		tokB := b.acquire(t, id).Token()
		b.stage(t, id, 1, tokB, add("b2", "/log/-", "b2", ms(2)))

		res, err := b.stager.Promote(ctx, id, 1, tokB, staging.AdoptStale())
		require.NoError(t, err)
		assert.Equal(t, []string{"a1", "b2", "a3"}, calls(res.Applied))
		assert.Empty(t, res.Skipped)
		assert.JSONEq(t, `{"log":["a1","b2","a3"]}`, b.data(t, id))
		st, err := b.store.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, tokB, st.Fence)

		// The same through SaveStateAndPromote.
		a.stage(t, id, 2, tokB, add("b", "/b", 1, ms(0)))
		res, err = b.stager.SaveStateAndPromote(ctx, id, 2, tokB, statestore.State{Status: "done", Data: json.RawMessage(`{}`)}, staging.AdoptStale())
		require.NoError(t, err)
		assert.Equal(t, []string{"b"}, calls(res.Applied))
		assert.JSONEq(t, `{"b":1}`, b.data(t, id))
	})
}

// TestExpiredHolderStaging: A's lease ended and nobody took over. Strict
// mode refuses A with ErrNotHolder and changes nothing.
func TestExpiredHolderStaging(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, statestore.Options{})
		ctx := t.Context()
		const id = "exp"
		lk := e.acquire(t, id)
		tok := lk.Token()
		e.create(t, id, tok, `{}`)
		e.stage(t, id, 1, tok, add("a1", "/a1", 1, ms(1)))
		m := s.Do(t, "DEL", e.keys(id).Lock)
		require.NoError(t, m.Error())

		before := e.snapshot(t, id)
		for op, call := range mutations(e.stager, id) {
			err := call(ctx, tok)
			assert.ErrorIs(t, err, fencing.ErrNotHolder, op)
			var nh *statestore.NotHolderError
			if assert.ErrorAs(t, err, &nh, op) {
				assert.Equal(t, tok, nh.Presented, op)
				assert.Zero(t, nh.Holder, op)
			}
			assert.Equal(t, before, e.snapshot(t, id), "%s changed stored bytes", op)
		}
	})
}
