package check

import (
	"fmt"

	"github.com/fencekit/fencekit/chaos/history"
)

// checkUsage judges the usage workload (package usage) against each
// session's final usage (history.FinalUsage):
//
//   - counted_twice: an entry id appears more than once in the entries;
//   - rollup_mismatch: the rollup's entry count or token total is not the
//     recount of the entries;
//   - phantom_entry: an entry no usage op recorded;
//   - fenced_entry: an entry whose every usage op was refused (a stale
//     writer's record was applied);
//   - lost_entry: an acknowledged usage op whose entry is missing;
//   - budget_overrun: a budget (a session's or the scope's) whose spent
//     exceeds its limit, or whose acknowledged commits add up to more than
//     its limit;
//   - lost_commit: a budget spent less than its acknowledged commits;
//   - phantom_charge: a budget spent more than all its commits that may
//     have run (acknowledged or unknown).
//
// lost_entry, lost_commit and the acknowledged part of budget_overrun (a
// lost commit lets more through) fail the durable mode only; the others
// fail every mode. Counts also report refused (over-budget reservations)
// and retries (usage ops that recorded an id again).
func checkUsage(in *input, r *Report) {
	res := r.Usage
	var scope *history.FinalBudget
	var scopeOK, scopeMay int64
	for _, id := range in.order {
		s := in.sessions[id]
		byID := map[string][]*history.Op{}
		var okSum, maySum int64
		for i := range s.ops {
			op := &s.ops[i]
			switch op.Kind {
			case history.KindUsage:
				res.Examined++
				if len(byID[op.In]) > 0 {
					res.Counts["retries"]++
				}
				byID[op.In] = append(byID[op.In], op)
			case history.KindBudget:
				res.Examined++
				n, err := parseInt(op.In)
				if err != nil {
					r.Errors = append(r.Errors, fmt.Sprintf("session %q: budget op with In %q", id, op.In))
					continue
				}
				switch {
				case op.Status == history.OK:
					okSum += n
					maySum += n
				case op.Status == history.Unknown && op.Out != history.OutNoCommit:
					maySum += n
				case op.ErrKind == history.ErrOverBudget:
					res.Counts["refused"]++
				}
			}
		}
		scopeOK += okSum
		scopeMay += maySum
		if s.final == nil || s.final.Usage == nil {
			if len(byID) > 0 {
				r.Errors = append(r.Errors, fmt.Sprintf("session %q: usage ops but no final usage", id))
			}
			continue
		}
		u := s.final.Usage
		if u.Scope != nil {
			scope = u.Scope
		}
		if len(u.EntryTokens) != len(u.Entries) {
			r.Errors = append(r.Errors, fmt.Sprintf("session %q: final usage has %d ids and %d token counts", id, len(u.Entries), len(u.EntryTokens)))
			continue
		}
		seen := map[string]bool{}
		var total int64
		for i, e := range u.Entries {
			total += u.EntryTokens[i]
			if seen[e] {
				res.add(in.cfg, "counted_twice", Violation{Session: id, What: fmt.Sprintf("entry %q is stored more than once", e), Ops: ops(byID[e])})
				continue
			}
			seen[e] = true
			recs := byID[e]
			if len(recs) == 0 {
				res.add(in.cfg, "phantom_entry", Violation{Session: id, What: fmt.Sprintf("entry %q was recorded by no usage op", e)})
				continue
			}
			refused := true
			for _, op := range recs {
				refused = refused && op.Status == history.Fail
			}
			if refused {
				res.add(in.cfg, "fenced_entry", Violation{Session: id, What: fmt.Sprintf("entry %q is stored though every Record of it was refused", e), Ops: ops(recs)})
			}
		}
		if u.RollupEntries != int64(len(u.Entries)) || u.RollupTokens != total {
			res.add(in.cfg, "rollup_mismatch", Violation{Session: id, What: fmt.Sprintf("rollup says %d entries and %d tokens; the entries are %d with %d tokens",
				u.RollupEntries, u.RollupTokens, len(u.Entries), total)})
		}
		for e, recs := range byID {
			if seen[e] {
				continue
			}
			for _, op := range recs {
				if op.Status == history.OK {
					lostWrite(in, res, "lost_entry", Violation{Session: id, What: fmt.Sprintf("acknowledged Record of entry %q is not in the final entries", e), Ops: []history.Op{*op}})
					break
				}
			}
		}
		checkBudget(in, res, id, "session "+id, u.Budget, okSum, maySum)
	}
	if scope != nil || scopeMay > 0 {
		checkBudget(in, res, "", "scope", scope, scopeOK, scopeMay)
	}
	lossy := res.Counts["lost_entry"] + res.Counts["lost_commit"] + res.Counts["budget_overrun_acked"]
	res.Fails = res.Violations > 0 && (in.cfg.Mode == Durable || res.Violations > lossy)
}

// checkBudget judges one budget's final figures against the commits that
// were acknowledged (ok) and that may have run (may).
func checkBudget(in *input, res *Result, session, name string, b *history.FinalBudget, ok, may int64) {
	if b == nil {
		if ok > 0 {
			res.add(in.cfg, "lost_commit", Violation{Session: session, What: fmt.Sprintf("%s budget: %d tokens of acknowledged commits, and no budget", name, ok)})
		}
		return
	}
	if b.Spent > b.Limit {
		res.add(in.cfg, "budget_overrun", Violation{Session: session, What: fmt.Sprintf("%s budget: %d spent of %d", name, b.Spent, b.Limit)})
	}
	if ok > b.Limit {
		res.add(in.cfg, "budget_overrun_acked", Violation{Session: session, What: fmt.Sprintf("%s budget: %d tokens of acknowledged commits, limit %d", name, ok, b.Limit)})
	}
	if b.Spent < ok {
		res.add(in.cfg, "lost_commit", Violation{Session: session, What: fmt.Sprintf("%s budget: %d spent, %d acknowledged", name, b.Spent, ok)})
	}
	if b.Spent > may {
		res.add(in.cfg, "phantom_charge", Violation{Session: session, What: fmt.Sprintf("%s budget: %d spent, at most %d committed", name, b.Spent, may)})
	}
}

func ops(p []*history.Op) []history.Op {
	out := make([]history.Op, len(p))
	for i := range p {
		out[i] = *p[i]
	}
	return out
}
