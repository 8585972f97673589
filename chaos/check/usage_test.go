package check

import (
	"testing"

	"github.com/fencekit/fencekit/chaos/history"
)

func (h *hb) record(p int, tok uint64, id string, st history.Status, call, ret int64) *hb {
	op := history.Op{Process: p, Kind: history.KindUsage, Token: tok, In: id, Out: "5", Status: st, Call: call, Return: ret}
	if st == history.Fail {
		op.ErrKind = history.ErrStale
	}
	return h.add(op)
}

func (h *hb) budget(p int, st history.Status, out string, call, ret int64) *hb {
	op := history.Op{Process: p, Kind: history.KindBudget, Token: 1, In: "7", Out: out, Status: st, Call: call, Return: ret}
	if st == history.Fail {
		op.ErrKind = history.ErrOverBudget
	}
	return h.add(op)
}

// TestUsageChecker: a history the store kept passes; each way the final
// usage can be wrong is a violation of its own kind.
func TestUsageChecker(t *testing.T) {
	base := func() *hb {
		return newHB().acquire(1, 10, 0, 1).
			record(1, 10, "a", history.OK, 2, 3).record(1, 10, "a", history.OK, 4, 5). // a retry
			record(1, 10, "b", history.Unknown, 6, 7).
			record(1, 9, "c", history.Fail, 8, 9).
			budget(1, history.OK, "r1", 10, 11).budget(1, history.Fail, history.OutNoCommit, 12, 13).
			budget(1, history.Unknown, "r3", 14, 15)
	}
	good := history.FinalUsage{Entries: []string{"a", "b"}, EntryTokens: []int64{5, 5}, RollupEntries: 2, RollupTokens: 10,
		Budget: &history.FinalBudget{Limit: 20, Spent: 7}, Scope: &history.FinalBudget{Limit: 100, Spent: 14}}
	final := func(u history.FinalUsage) history.Final { return history.Final{Usage: &u} }

	r := mustCheck(t, base().final(t, "", "", final(good)), Durable)
	wantPass(t, r)
	if r.Usage.Counts["retries"] != 1 || r.Usage.Counts["refused"] != 1 || r.Usage.Examined != 7 {
		t.Errorf("counts %v, examined %d", r.Usage.Counts, r.Usage.Examined)
	}
	// The unknown Record that did not take effect is fine too.
	notB := good
	notB.Entries, notB.EntryTokens, notB.RollupEntries, notB.RollupTokens = []string{"a"}, []int64{5}, 1, 5
	wantPass(t, mustCheck(t, base().final(t, "", "", final(notB)), Durable))

	for _, c := range []struct {
		key  string
		mod  func(u *history.FinalUsage)
		fast bool // fails the fast mode too
	}{
		{"counted_twice", func(u *history.FinalUsage) {
			u.Entries, u.EntryTokens, u.RollupEntries, u.RollupTokens = []string{"a", "b", "a"}, []int64{5, 5, 5}, 3, 15
		}, true},
		{"rollup_mismatch", func(u *history.FinalUsage) { u.RollupTokens = 15 }, true},
		{"phantom_entry", func(u *history.FinalUsage) {
			u.Entries, u.EntryTokens, u.RollupEntries, u.RollupTokens = []string{"a", "b", "z"}, []int64{5, 5, 5}, 3, 15
		}, true},
		{"fenced_entry", func(u *history.FinalUsage) {
			u.Entries, u.EntryTokens, u.RollupEntries, u.RollupTokens = []string{"a", "b", "c"}, []int64{5, 5, 5}, 3, 15
		}, true},
		{"lost_entry", func(u *history.FinalUsage) {
			u.Entries, u.EntryTokens, u.RollupEntries, u.RollupTokens = []string{"b"}, []int64{5}, 1, 5
		}, false},
		{"budget_overrun", func(u *history.FinalUsage) { u.Budget = &history.FinalBudget{Limit: 6, Spent: 7} }, true},
		{"budget_overrun_acked", func(u *history.FinalUsage) { u.Scope = &history.FinalBudget{Limit: 5, Spent: 0} }, false},
		{"lost_commit", func(u *history.FinalUsage) { u.Budget = &history.FinalBudget{Limit: 20, Spent: 0} }, false},
		{"phantom_charge", func(u *history.FinalUsage) { u.Budget = &history.FinalBudget{Limit: 20, Spent: 21} }, true},
	} {
		t.Run(c.key, func(t *testing.T) {
			u := good
			c.mod(&u)
			ops := base().final(t, "", "", final(u))
			d := mustCheck(t, ops, Durable)
			wantFail(t, d, d.Usage, c.key)
			r := mustCheck(t, ops, Fast)
			if r.Usage.Counts[c.key] == 0 {
				t.Fatalf("no %s counted:\n%s", c.key, r)
			}
			if r.Usage.Fails != c.fast {
				t.Errorf("fast mode: fails %v, want %v:\n%s", r.Usage.Fails, c.fast, r)
			}
		})
	}
}
