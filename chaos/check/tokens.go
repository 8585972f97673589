package check

import (
	"fmt"
	"sort"

	"github.com/fencekit/fencekit/chaos/history"
)

// checkTokens is C1: per session, the tokens of ok acquires are unique and
// increase in real time.
func checkTokens(in *input, r *Report) {
	for _, id := range in.order {
		tokenOrder(in.cfg, r.C1, id, in.sessions[id].ops, history.KindAcquire, in.faults)
	}
}

// Tokens runs C1's token checks on the ok ops of kind in ops, grouped by
// Session, and returns the result (Counts: duplicates, order_violations,
// max_regression; ByFault: by the nemesis ops in ops). Use it for token sources outside the session workload,
// such as a plain INCR baseline recorded with Token = the value. Fails is
// set when anything was found. It returns ErrInvalidConfig for a bad cfg
// (Mode is not needed).
func Tokens(ops []history.Op, kind string, cfg Config) (*Result, error) {
	if cfg.Mode == "" {
		cfg.Mode = Durable
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	res := newResult("tokens " + kind)
	by := map[string][]history.Op{}
	var ids []string
	var faults []history.Op
	for _, op := range history.Merge(ops) {
		if op.Kind == history.KindNemesis {
			faults = append(faults, op)
			continue
		}
		if _, ok := by[op.Session]; !ok {
			ids = append(ids, op.Session)
		}
		by[op.Session] = append(by[op.Session], op)
	}
	sort.Strings(ids)
	for _, id := range ids {
		tokenOrder(&cfg, res, id, by[id], kind, faults)
	}
	res.Fails = res.Violations > 0
	return res, nil
}

func tokenOrder(cfg *Config, res *Result, id string, ops []history.Op, kind string, faults []history.Op) {
	count := func(op history.Op) {
		if res.ByFault == nil {
			res.ByFault = map[string]int{}
		}
		res.ByFault[faultAt(faults, op.Call)]++
	}
	var acq []history.Op
	for _, op := range ops {
		if op.Kind == kind && op.Status == history.OK {
			acq = append(acq, op)
		}
	}
	res.Examined += len(acq)
	if len(acq) == 0 {
		return
	}
	first := map[uint64]int{}
	for i, op := range acq {
		if op.Token == 0 {
			res.add(cfg, "zero_token", Violation{Session: id, What: "acquire acknowledged with token 0", Ops: []history.Op{op}})
			continue
		}
		if j, dup := first[op.Token]; dup {
			count(op)
			res.add(cfg, "duplicates", Violation{Session: id,
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
			count(b)
			res.add(cfg, "order_violations", Violation{Session: id,
				What: fmt.Sprintf("token %d granted after token %d had been returned (regression %d)", b.Token, maxTok, maxTok-b.Token),
				Ops:  []history.Op{maxOp, b}})
			if reg := int(min(maxTok-b.Token, 1<<31)); reg > res.Counts["max_regression"] {
				res.Counts["max_regression"] = reg
			}
		}
	}
}

// faultAt names the fault in effect at t: the latest that began at or
// before t and whose window holds t, else the latest that began before t
// (its aftermath); "none" before the first fault.
func faultAt(faults []history.Op, t int64) string {
	j := sort.Search(len(faults), func(i int) bool { return faults[i].Call > t })
	if j == 0 {
		return "none"
	}
	for i := j - 1; i >= 0 && i >= j-64; i-- {
		if faults[i].Return >= t {
			return faults[i].In
		}
	}
	return faults[j-1].In
}
