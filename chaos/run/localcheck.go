package run

import (
	"sort"

	"github.com/fencekit/fencekit/chaos/check"
	"github.com/fencekit/fencekit/chaos/history"
)

// LocalCheck holds the runner's own quick counts over a history. They are
// a cross-check beside package check, not a replacement: each is a simple
// necessary condition of the property named.
type LocalCheck struct {
	// C1: ok acquires of one session with the same token, and pairs where
	// an acquire that returned before another was invoked got a token not
	// below the later one's.
	DupTokens, OrderViolations int
	// C2: ok writes whose token is below the token of an ok write on the
	// same session that returned before they were invoked.
	StaleAccepted int
	// C3: ok operations that report a version below one an ok write of
	// the session reported before they were invoked (acknowledged writes
	// rolled back), final states behind the highest acknowledged version,
	// and ok appends missing from the final stream.
	VersionRegressions, FinalBehind, LostAppends int
	// Stream entries whose chunk appears more than once in a final stream.
	DupAppends int
}

// IncrStats is C1 (package check's Tokens) on the plain INCR baseline.
type IncrStats struct {
	Acked                      int
	DupTokens, OrderViolations int
}

type tokOp struct {
	call, ret int64
	tok       uint64
}

// orderCheck counts duplicate tokens and real-time order violations.
func orderCheck(ops []tokOp) (dups, order int) {
	seen := map[uint64]bool{}
	for _, o := range ops {
		if seen[o.tok] {
			dups++
		}
		seen[o.tok] = true
	}
	byRet := append([]tokOp(nil), ops...)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].ret < byRet[j].ret })
	byCall := append([]tokOp(nil), ops...)
	sort.Slice(byCall, func(i, j int) bool { return byCall[i].call < byCall[j].call })
	var maxTok uint64
	j := 0
	for _, o := range byCall {
		for j < len(byRet) && byRet[j].ret < o.call {
			maxTok = max(maxTok, byRet[j].tok)
			j++
		}
		if maxTok != 0 && o.tok <= maxTok {
			order++
		}
	}
	return dups, order
}

func localCheck(ops []history.Op) LocalCheck {
	var lc LocalCheck
	acq := map[string][]tokOp{}
	writes := map[string][]tokOp{} // tok field: token; also versions below
	vers := map[string][]tokOp{}   // tok field: version
	reads := map[string][]tokOp{}  // loads: tok field: version
	appended := map[string]map[string]bool{}
	finals := map[string]history.Final{}
	for _, op := range ops {
		if op.Status != history.OK {
			continue
		}
		t := tokOp{op.Call, op.Return, op.Token}
		switch {
		case op.Kind == history.KindAcquire:
			acq[op.Session] = append(acq[op.Session], t)
		case op.Kind == history.KindFinal:
			if f, err := op.Final(); err == nil {
				finals[op.Session] = f
			}
		case op.Kind == history.KindLoad:
			reads[op.Session] = append(reads[op.Session], tokOp{op.Call, op.Return, uint64(op.Version)})
		case isWrite(op.Kind):
			writes[op.Session] = append(writes[op.Session], t)
			if op.Version > 0 && op.Out != history.OutNoop {
				vers[op.Session] = append(vers[op.Session], tokOp{op.Call, op.Return, uint64(op.Version)})
			}
			if op.Kind == history.KindAppend {
				if appended[op.Session] == nil {
					appended[op.Session] = map[string]bool{}
				}
				appended[op.Session][op.In] = true
			}
		}
	}
	for _, a := range acq {
		d, o := orderCheck(a)
		lc.DupTokens += d
		lc.OrderViolations += o
	}
	for _, w := range writes {
		lc.StaleAccepted += belowEarlier(w, w, false)
	}
	for s, v := range vers {
		// A write's version must exceed every version acknowledged before
		// it was invoked; a load's must not be below.
		lc.VersionRegressions += belowEarlier(v, v, true) + belowEarlier(reads[s], v, false)
		var top uint64
		for _, x := range v {
			top = max(top, x.tok)
		}
		if f, ok := finals[s]; ok && uint64(f.State.Version) < top {
			lc.FinalBehind++
		}
	}
	for s, f := range finals {
		count := map[string]int{}
		for _, c := range f.Stream {
			count[c.Data]++
			if count[c.Data] == 2 {
				lc.DupAppends++
			}
		}
		for chunk := range appended[s] {
			if count[chunk] == 0 {
				lc.LostAppends++
			}
		}
	}
	return lc
}

// belowEarlier counts ops in xs whose value is below (or, with strict, not
// above) the highest value of ys that returned before the op was invoked.
func belowEarlier(xs, ys []tokOp, strict bool) int {
	byRet := append([]tokOp(nil), ys...)
	sort.Slice(byRet, func(i, j int) bool { return byRet[i].ret < byRet[j].ret })
	byCall := append([]tokOp(nil), xs...)
	sort.Slice(byCall, func(i, j int) bool { return byCall[i].call < byCall[j].call })
	var top uint64
	n, j := 0, 0
	for _, o := range byCall {
		for j < len(byRet) && byRet[j].ret < o.call {
			top = max(top, byRet[j].tok)
			j++
		}
		if o.tok < top || (strict && top != 0 && o.tok == top) {
			n++
		}
	}
	return n
}

// incrStats runs package check's C1 token checks on the INCR baseline.
func incrStats(ops []history.Op) (IncrStats, error) {
	var s IncrStats
	for _, op := range ops {
		if op.Kind == "incr" && op.Status == history.OK {
			s.Acked++
		}
	}
	if s.Acked == 0 {
		return s, nil
	}
	r, err := check.Tokens(ops, "incr", check.Config{})
	if err != nil {
		return s, err
	}
	s.DupTokens, s.OrderViolations = r.Counts["duplicates"], r.Counts["order_violations"]
	return s, nil
}
