package check

import (
	"fmt"
	"sort"

	"github.com/fencekit/fencekit/chaos/history"
)

// checkTokens is C1: per session, the tokens of ok acquires are unique and
// increase in real time.
func checkTokens(in *input, r *Report) {
	res := r.C1
	for _, id := range in.order {
		s := in.sessions[id]
		var acq []history.Op
		for _, op := range s.ops {
			if op.Kind == history.KindAcquire && op.Status == history.OK {
				acq = append(acq, op)
			}
		}
		res.Examined += len(acq)
		if len(acq) == 0 {
			continue
		}
		first := map[uint64]int{}
		for i, op := range acq {
			if op.Token == 0 {
				res.add(in.cfg, "zero_token", Violation{Session: id, What: "acquire acknowledged with token 0", Ops: []history.Op{op}})
				continue
			}
			if j, dup := first[op.Token]; dup {
				res.add(in.cfg, "duplicates", Violation{Session: id,
					What: fmt.Sprintf("token %d granted twice (processes %d and %d)", op.Token, acq[j].Process, op.Process),
					Ops:  []history.Op{acq[j], op}})
				continue
			}
			first[op.Token] = i
		}
		// Real-time order: B violates if some A returned before B was
		// called with token(A) >= token(B). Sweep B by Call while adding
		// the A's by Return.
		byCall := append([]history.Op(nil), acq...)
		sort.SliceStable(byCall, func(i, j int) bool { return byCall[i].Call < byCall[j].Call })
		byRet := append([]history.Op(nil), acq...)
		sort.SliceStable(byRet, func(i, j int) bool { return byRet[i].Return < byRet[j].Return })
		var maxTok uint64
		var maxOp history.Op
		k := 0
		for _, b := range byCall {
			for k < len(byRet) && byRet[k].Return < b.Call {
				if byRet[k].Token >= maxTok {
					maxTok, maxOp = byRet[k].Token, byRet[k]
				}
				k++
			}
			if k > 0 && maxTok >= b.Token {
				res.add(in.cfg, "order_violations", Violation{Session: id,
					What: fmt.Sprintf("token %d granted after token %d had been returned (regression %d)", b.Token, maxTok, maxTok-b.Token),
					Ops:  []history.Op{maxOp, b}})
				if reg := int(min(maxTok-b.Token, 1<<31)); reg > res.Counts["max_regression"] {
					res.Counts["max_regression"] = reg
				}
			}
		}
	}
	// max_regression is a figure, not a violation count.
	if res.Counts["max_regression"] == 0 {
		delete(res.Counts, "max_regression")
	}
}
