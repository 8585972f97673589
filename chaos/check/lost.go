package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fencekit/fencekit/chaos/history"
)

// checkLost is C3 for the session register's writes: every ok save, cas,
// stage, promote and checkpoint is in the final event log (its version
// with its token; a checkpoint by id). Appends are checked by checkStream.
func checkLost(in *input, r *Report) {
	res := r.C3
	for _, id := range in.order {
		s := in.sessions[id]
		for i := range s.ops {
			op, a := &s.ops[i], &s.ann[i]
			if !isWrite(op.Kind) || op.Status != history.OK || isNoop(op) {
				continue
			}
			res.Examined++
			if a.below {
				res.Counts["below_horizon"]++
			}
			if !a.lost {
				continue
			}
			what := fmt.Sprintf("acknowledged %s (token %d, v%d) is not in the final event log", op.Kind, op.Token, op.Version)
			if op.Kind == history.KindCheckpoint {
				what = fmt.Sprintf("acknowledged checkpoint %s (token %d) is not in the final log or list", op.Out, op.Token)
			}
			lostWrite(in, res, "lost_"+op.Kind, Violation{Session: id, What: what, Ops: []history.Op{*op}})
		}
	}
}

// lostWrite records a lost acknowledged write and attributes it to a fault.
func lostWrite(in *input, res *Result, key string, v Violation) {
	res.add(in.cfg, key, v)
	if res.ByFault == nil {
		res.ByFault = map[string]int{}
	}
	res.ByFault[faultOf(in.faults, v.Ops[0].Return)]++
}

// lossy names the faults that can lose acknowledged data.
var lossy = []string{"restart", "failover", "kill9", "kill-9", "takeover", "flush", "rollback"}

func isLossy(name string) bool {
	name = strings.ToLower(name)
	for _, l := range lossy {
		if strings.Contains(name, l) {
			return true
		}
	}
	return false
}

// faultOf names the fault a write acknowledged at t was lost to (see the
// package doc, C3); "none" without faults.
func faultOf(faults []history.Op, t int64) string {
	if len(faults) == 0 {
		return "none"
	}
	// faults are sorted by Call; j is the first that began after t.
	j := sort.Search(len(faults), func(i int) bool { return faults[i].Call > t })
	first := j // the earliest fault whose window holds t, else j
	for i := j - 1; i >= 0 && i >= j-64; i-- {
		if faults[i].Return >= t {
			first = i
		}
	}
	for i := first; i < len(faults); i++ {
		if (i >= j || faults[i].Return >= t) && isLossy(faults[i].In) {
			return faults[i].In
		}
	}
	if first < len(faults) {
		return faults[first].In
	}
	return faults[len(faults)-1].In
}
