package usage_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/usage"
)

// TestReserveRace has 24 executors (each its own client) race for the last
// units of a session budget and a scope budget that lives in another
// cluster slot: the budgets never commit more than their limits, and
// exactly as many reservations succeed as fit.
func TestReserveRace(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{BudgetTTL: time.Hour})
		ctx := t.Context()
		if s.Kind == redistest.Cluster {
			require.NotEqual(t, slot(keys.ForUsage(e.prefix, "r1").Budget.Limits), slot(keys.ForBudget(e.prefix, "tenant").Limits),
				"the test wants the scope budget in another slot than the session")
		}
		require.NoError(t, e.store.SetBudget(ctx, "tenant", usage.Limit{Tokens: 100}))
		require.NoError(t, e.store.SetSessionBudget(ctx, "r1", usage.Limit{Cost: 10_000}))
		stores := make([]*usage.Store, 24)
		for i := range stores {
			st, err := usage.New(s.NewClient(t), usage.Options{Prefix: e.prefix})
			require.NoError(t, err)
			stores[i] = st
		}
		var ok, over atomic.Int64
		var wg sync.WaitGroup
		for _, st := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					r, err := st.Reserve(ctx, "r1", usage.Amount{Tokens: 7, Cost: 300}, "tenant")
					if errors.Is(err, usage.ErrOverBudget) {
						over.Add(1)
						continue
					}
					if !assert.NoError(t, err) {
						return
					}
					ok.Add(1)
					assert.NoError(t, r.Commit(ctx, usage.Amount{Tokens: 7, Cost: 300}))
					assert.NoError(t, r.Commit(ctx, usage.Amount{Tokens: 7, Cost: 300})) // a retry: charged once
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int64(14), ok.Load(), "100 tokens hold 14 reservations of 7")
		assert.Equal(t, int64(72-14), over.Load())
		b, err := e.store.Budget(ctx, "tenant")
		require.NoError(t, err)
		assert.Equal(t, usage.Amount{Tokens: 98, Cost: 4200}, b.Spent, "spent is counted in both units, limited or not")
		assert.Equal(t, usage.Amount{}, b.Held)
		sb, err := e.store.SessionBudget(ctx, "r1")
		require.NoError(t, err)
		assert.Equal(t, usage.Amount{Tokens: 98, Cost: 4200}, sb.Spent)
		assert.LessOrEqual(t, sb.Spent.Cost, sb.Limit.Cost)
		s.RequireExpiring(t, e.prefix+":")
	})
}

func slot(key string) string { return keys.TagOf(key) }

func TestBudgetRules(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{HoldTTL: 300 * time.Millisecond})
		ctx := t.Context()
		require.NoError(t, e.store.SetBudget(ctx, "acme", usage.Limit{Tokens: 1000, Cost: 5000}))

		// No budget at all: a reservation holds nothing and is free.
		r0, err := e.store.Reserve(ctx, "nob", usage.Amount{Tokens: 1 << 40})
		require.NoError(t, err)
		assert.Empty(t, r0.Budgets())
		require.NoError(t, r0.Commit(ctx, usage.Amount{Tokens: 5}))

		r1, err := e.store.Reserve(ctx, "s", usage.Amount{Tokens: 600, Cost: 100}, "acme")
		require.NoError(t, err)
		assert.Equal(t, []string{"scope:acme"}, r1.Budgets())
		_, err = e.store.Reserve(ctx, "s", usage.Amount{Tokens: 500}, "acme")
		var ob *usage.OverBudgetError
		require.ErrorAs(t, err, &ob)
		assert.Equal(t, usage.OverBudgetError{Budget: "scope:acme", Unit: "tokens", Limit: 1000, Spent: 0, Held: 600, Requested: 500}, *ob)
		assert.ErrorIs(t, err, usage.ErrOverBudget)
		_, err = e.store.Reserve(ctx, "s", usage.Amount{Tokens: 1, Cost: 4901}, "acme")
		require.ErrorAs(t, err, &ob)
		assert.Equal(t, "cost", ob.Unit)

		// Commit above the reservation is refused; below it gives back the rest.
		assert.ErrorIs(t, r1.Commit(ctx, usage.Amount{Tokens: 601}), usage.ErrAboveReservation)
		require.NoError(t, r1.Commit(ctx, usage.Amount{Tokens: 550, Cost: 80}))
		require.NoError(t, r1.Release(ctx)) // after Commit: nothing changes
		b, err := e.store.Budget(ctx, "acme")
		require.NoError(t, err)
		assert.Equal(t, usage.Amount{Tokens: 550, Cost: 80}, b.Spent)
		assert.Equal(t, 0, b.Holds)

		// A refusal by the session budget gives back the scope's hold.
		require.NoError(t, e.store.SetSessionBudget(ctx, "s", usage.Limit{Tokens: 100}))
		_, err = e.store.Reserve(ctx, "s", usage.Amount{Tokens: 200}, "acme")
		require.ErrorAs(t, err, &ob)
		assert.Equal(t, "session:s", ob.Budget)
		b, err = e.store.Budget(ctx, "acme")
		require.NoError(t, err)
		assert.Equal(t, 0, b.Holds)

		// An abandoned hold expires: its holder died.
		_, err = e.store.Reserve(ctx, "t", usage.Amount{Tokens: 400}, "acme")
		require.NoError(t, err)
		_, err = e.store.Reserve(ctx, "t", usage.Amount{Tokens: 400}, "acme")
		require.ErrorIs(t, err, usage.ErrOverBudget)
		if s.Mini != nil {
			s.Mini.SetTime(time.Now().Add(time.Second))
			s.FastForward(time.Second)
		} else {
			time.Sleep(400 * time.Millisecond)
		}
		r3, err := e.store.Reserve(ctx, "t", usage.Amount{Tokens: 400}, "acme")
		require.NoError(t, err)
		b, err = e.store.Budget(ctx, "acme")
		require.NoError(t, err)
		assert.Equal(t, usage.Amount{Tokens: 400}, b.Held)
		assert.Equal(t, 1, b.Holds)
		require.NoError(t, r3.Release(ctx))
		require.NoError(t, r3.Release(ctx))

		_, err = e.store.Budget(ctx, "nobody")
		assert.ErrorIs(t, err, usage.ErrNotFound)
		s.RequireExpiring(t, e.prefix+":")
	})
}

// TestRandomRollupRecount records random entries from several executors
// (with repeated ids, batches and sub-agents) and compares every rollup
// with a recount of the entries read back, and with what was generated.
func TestRandomRollupRecount(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{AllowUnfenced: true, EntryTTL: time.Hour, RollupTTL: 2 * time.Hour})
		ctx := t.Context()
		sessions := []string{"root", "k1", "k2"}
		gen := map[string]map[string]usage.Entry{}
		for _, id := range sessions {
			gen[id] = map[string]usage.Entry{}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := newRand(uint64(w))
				for range 40 {
					id := sessions[rng.IntN(len(sessions))]
					n := 1 + rng.IntN(4)
					batch := make([]usage.Entry, n)
					for i := range batch {
						batch[i] = randomEntry(rng, sessions)
					}
					_, err := e.store.Record(ctx, id, 0, batch...)
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					for _, en := range batch {
						if _, dup := gen[id][en.ID]; !dup {
							gen[id][en.ID] = en
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for _, id := range sessions {
			if len(gen[id]) == 0 {
				continue
			}
			var all []usage.Entry
			q := usage.Query{Limit: 7}
			for {
				p, err := e.store.Entries(ctx, id, q)
				require.NoError(t, err)
				all = append(all, p.Entries...)
				if !p.HasMore {
					break
				}
				q.Cursor = p.Next
			}
			require.Len(t, all, len(gen[id]), id)
			want := recount(all)
			got, err := e.store.Rollup(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, want.Totals, got.Totals, id)
			assert.Equal(t, want.ByModel, got.ByModel, id)
			assert.Equal(t, want.ByTool, got.ByTool, id)
			assert.Equal(t, want.Custom, got.Custom, id)
			assert.Equal(t, want.ToolCalls, got.ToolCalls, id)
			assert.Equal(t, want.ToolErrors, got.ToolErrors, id)
			// What was read back is what was generated, first of each id.
			for _, en := range all {
				g := gen[id][en.ID]
				assert.Equal(t, g.Tokens.Prompt, en.Tokens.Prompt)
				assert.Equal(t, g.Cost, en.Cost)
			}
		}
		s.RequireExpiring(t, e.prefix+":")
	})
}

type rnd interface {
	IntN(int) int
	Int64N(int64) int64
}

func randomEntry(rng rnd, sessions []string) usage.Entry {
	en := usage.Entry{ID: fmt.Sprintf("e%d", rng.IntN(120)), Step: rng.Int64N(10), Cost: usage.Cost(rng.Int64N(5000))}
	// The id decides the content, as it would in a real executor: a
	// repeated id is the same entry recorded again.
	h := 0
	for _, c := range en.ID {
		h = h*31 + int(c)
	}
	switch h % 4 {
	case 0:
		en.Kind, en.Model = usage.KindTokens, []string{"gpt", "claude"}[h%3%2]
		en.Tokens = usage.Tokens{Prompt: int64(h % 1000), Completion: int64(h % 77), Cached: int64(h % 13)}
	case 1:
		en.Kind = usage.KindTool
		en.Tool = usage.ToolCall{Name: []string{"grep", "web"}[h%2], Duration: time.Duration(h%50) * time.Millisecond, Outcome: []string{"ok", "error", "ok"}[h%3]}
	case 2:
		en.Kind, en.SubAgent = usage.KindSubAgent, sessions[h%len(sessions)]
	default:
		en.Kind, en.Custom = usage.KindCustom, usage.Custom{Name: "q", Value: int64(h % 9)}
	}
	en.Step, en.Cost = int64(h%10), usage.Cost(h%5000)
	return en
}

func recount(all []usage.Entry) *usage.Rollup {
	r := &usage.Rollup{ByModel: map[string]usage.Totals{}, ByTool: map[string]usage.ToolTotals{}, Custom: map[string]int64{}}
	for _, en := range all {
		r.Entries++
		r.Cost += en.Cost
		if en.Model != "" {
			m := r.ByModel[en.Model]
			m.Entries++
			m.Cost += en.Cost
			m.Prompt += en.Tokens.Prompt
			m.Completion += en.Tokens.Completion
			m.Cached += en.Tokens.Cached
			m.Total += en.Tokens.Total
			r.ByModel[en.Model] = m
		}
		switch en.Kind {
		case usage.KindTokens:
			r.Prompt += en.Tokens.Prompt
			r.Completion += en.Tokens.Completion
			r.Cached += en.Tokens.Cached
			r.Total += en.Tokens.Total
		case usage.KindTool:
			r.ToolCalls++
			tt := r.ByTool[en.Tool.Name]
			tt.Calls++
			tt.Time += en.Tool.Duration
			tt.Cost += en.Cost
			if en.Tool.Outcome != "ok" {
				r.ToolErrors++
				tt.Errors++
			}
			r.ByTool[en.Tool.Name] = tt
		case usage.KindCustom:
			r.Custom[en.Custom.Name] += en.Custom.Value
		}
	}
	if len(r.Custom) == 0 {
		r.Custom = map[string]int64{}
	}
	return r
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 15)) }

// TestCommitAfterExpiry: a holder whose hold expired (it was presumed
// dead) and whose amount went to another is charged only if it still
// fits; otherwise Commit says which budget refused and charges nothing.
func TestCommitAfterExpiry(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		e := newEnv(t, s, usage.Options{HoldTTL: 300 * time.Millisecond})
		ctx := t.Context()
		require.NoError(t, e.store.SetBudget(ctx, "x", usage.Limit{Tokens: 100}))
		late, err := e.store.Reserve(ctx, "s", usage.Amount{Tokens: 60}, "x")
		require.NoError(t, err)
		if s.Mini != nil {
			s.Mini.SetTime(time.Now().Add(time.Second))
		} else {
			time.Sleep(400 * time.Millisecond)
		}
		other, err := e.store.Reserve(ctx, "s", usage.Amount{Tokens: 60}, "x")
		require.NoError(t, err, "the expired hold no longer counts")
		err = late.Commit(ctx, usage.Amount{Tokens: 50})
		var ob *usage.OverBudgetError
		require.ErrorAs(t, err, &ob)
		assert.Equal(t, usage.OverBudgetError{Budget: "scope:x", Unit: "tokens", Limit: 100, Spent: 0, Held: 60, Requested: 50}, *ob)
		require.NoError(t, other.Commit(ctx, usage.Amount{Tokens: 60}))
		require.NoError(t, late.Commit(ctx, usage.Amount{Tokens: 40}), "40 still fits")
		b, err := e.store.Budget(ctx, "x")
		require.NoError(t, err)
		assert.Equal(t, int64(100), b.Spent.Tokens)
	})
}
