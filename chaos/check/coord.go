package check

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/fencekit/fencekit/chaos/history"
)

// isSem and isElect report whether op belongs to the semaphore or the
// election workload (kept apart from the sessions' checkers).
func isSem(op *history.Op) bool   { return strings.HasPrefix(op.Session, history.SemPrefix) }
func isElect(op *history.Op) bool { return strings.HasPrefix(op.Session, history.ElectPrefix) }

// semLease is one ok grant of the semaphore workload and the interval in
// which it was surely held by a live lease on the server.
type semLease struct {
	op       history.Op
	n        int64
	limit    int64 // Options.Limit of the granting process
	from     int64 // the grant happened in [from, op.Return]
	end      int64 // surely live on the server until end (exclusive)
	excluded bool  // a clock jump may have ended it early: never counted
}

// leaseKey names a grant: the process and its token.
type leaseKey struct {
	p   int
	tok uint64
}

// checkSemaphore checks the semaphore workload, per semaphore:
//
//   - over_limit: a grant made while other grants were surely held by live
//     leases whose permits, with its own, exceed every limit that can have
//     been in effect when it was made;
//   - lost_permits: the runner's drain (every lease ended, every executor
//     stopped) could not take all the permits of the limit in effect.
//
// A grant of n permits happened between the start of its lease by its
// holder's clock (SemGrant.From, the send time of the look that saw it)
// and the return of its Acquire. Another grant is counted only when it was
// surely held through all of that window: acknowledged before it began,
// and its lease (From + TTL less a 1% drift allowance and 2 ms, extended
// by each acknowledged Refresh from the Refresh's call) not ended and not
// released (the first Release call) before the window ended. A lease that
// overlaps a clock-jump fault is never counted (a forward jump ends leases
// early by the server's clock), nor, once a clock was stepped, one that
// overlaps a server fault (a failover can put the stepped clock in charge
// of it); such a lease is not checked as a grant either, since its
// window cannot be trusted: the holder dates its lease from the pttl the
// server reports, which a clock stepped back inflates (CI saw a lease
// "start" 6.6 s after its Acquire returned, and the grants made meanwhile
// counted against it). The limits that can have been in effect
// are those of the limit changes not known to be superseded before the
// window began (an unacknowledged change may apply at any time after its
// call), and Options.Limit while no change was acknowledged before it.
//
// over_limit fails the durable mode (a failover without WAIT can forget
// grants, so the fast mode only counts them); lost_permits fails every
// mode. Counts also has grants (checked), drains, limits (changes
// acknowledged) and uncounted_leases (leases never counted as held, for a
// clock jump). FIFO order is not checked: a waiter's place in the queue
// is taken at an unknown moment inside its Acquire, and a waiter that
// stops polling (a paused process) loses it by design.
func checkSemaphore(in *input, r *Report) {
	res := r.Semaphore
	byName := map[string][]history.Op{}
	for _, op := range in.sem {
		byName[op.Session] = append(byName[op.Session], op)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	lost := 0
	for _, name := range names {
		ops := byName[name]
		var leases []*semLease
		byKey := map[leaseKey]*semLease{}
		var limits []history.Op
		for _, op := range ops {
			res.Examined++
			switch op.Kind {
			case history.KindSemAcquire:
				if op.Status != history.OK {
					continue
				}
				var g history.SemGrant
				n, err := strconv.ParseInt(op.In, 10, 64)
				if err2 := json.Unmarshal(op.Data, &g); err != nil || err2 != nil || g.From == 0 || g.TTL <= 0 || n <= 0 {
					r.Errors = append(r.Errors, fmt.Sprintf("semaphore %q: sem-acquire (process %d, seq %d) without a readable grant", name, op.Process, op.Seq))
					continue
				}
				l := &semLease{op: op, n: n, limit: g.Limit, from: g.From, end: g.From + g.TTL - g.TTL/100 - 2e6}
				leases = append(leases, l)
				byKey[leaseKey{op.Process, op.Token}] = l
			case history.KindSemLimit:
				if op.Status != history.Fail {
					if _, err := strconv.ParseInt(op.In, 10, 64); err != nil {
						r.Errors = append(r.Errors, fmt.Sprintf("semaphore %q: sem-limit with In %q", name, op.In))
						continue
					}
					limits = append(limits, op)
					if op.Status == history.OK {
						res.Counts["limits"]++
					}
				}
			case history.KindSemDrain:
				res.Counts["drains"]++
				if op.Status != history.OK {
					res.add(in.cfg, "lost_permits", Violation{Session: name,
						What: fmt.Sprintf("after every holder was gone, the %s permits of the limit could not be taken: %s", op.In, op.Err), Ops: []history.Op{op}})
					lost++
				}
			}
		}
		// Refreshes extend, releases end the surely-held intervals.
		for _, op := range ops {
			l := byKey[leaseKey{op.Process, op.Token}]
			if l == nil {
				continue
			}
			switch op.Kind {
			case history.KindSemRefresh:
				var g history.SemGrant
				_ = json.Unmarshal(l.op.Data, &g)
				if op.Status == history.OK && op.Call+g.TTL-g.TTL/100-2e6 > l.end {
					l.end = op.Call + g.TTL - g.TTL/100 - 2e6
				}
			}
		}
		for _, op := range ops {
			if l := byKey[leaseKey{op.Process, op.Token}]; l != nil && op.Kind == history.KindSemRelease && op.Call < l.end {
				l.end = op.Call
			}
		}
		// A forward clock jump ends leases early by the server's clock; and
		// once a node's clock was stepped, a failover (or restart) can put
		// it in charge of leases granted by another clock.
		firstJump := int64(history.Never)
		for _, f := range in.faults {
			if f.In == "clock-jump" {
				firstJump = min(firstJump, f.Call)
			}
		}
		for _, l := range leases {
			// A lease start after its Acquire returned cannot be: the
			// holder took it from a pttl the server inflated (a clock
			// stepped back between the grant and the look that reported
			// it), and the grant cannot be dated.
			if l.from > l.op.Return {
				l.excluded = true
			}
			for _, f := range in.faults {
				// From the Acquire's call: the grant may precede the
				// lease start its holder computed (see above).
				overlaps := f.Call < l.end && f.Return > min(l.from, l.op.Call)
				server := f.In != "executor-sigstop" && f.In != "executor-sigkill"
				if overlaps && (f.In == "clock-jump" || (server && firstJump < l.end)) {
					l.excluded = true
				}
			}
			if l.excluded {
				res.Counts["uncounted_leases"]++
			}
		}
		for _, a := range leases {
			res.Counts["grants"]++
			if a.excluded {
				continue // not dated either: neither counted nor checked
			}
			held := a.n
			var with []history.Op
			for _, b := range leases {
				if b == a || b.excluded || b.op.Return > a.from || b.end <= a.op.Return {
					continue
				}
				held += b.n
				with = append(with, b.op)
			}
			if max := maxLimit(a, limits); held > max {
				sort.Slice(with, func(i, j int) bool { return with[i].Return < with[j].Return })
				res.add(in.cfg, "over_limit", Violation{Session: name,
					What: fmt.Sprintf("process %d was granted %d permits (token %d) while %d grants holding %d were surely live: %d > limit %d",
						a.op.Process, a.n, a.op.Token, len(with), held-a.n, held, max), Ops: append(with, a.op)})
			}
		}
	}
	res.Fails = lost > 0 || (in.cfg.Mode == Durable && res.Violations > 0)
}

// maxLimit is the largest limit that can have been in effect when a was
// granted (see checkSemaphore).
func maxLimit(a *semLease, limits []history.Op) int64 {
	start, end := a.from, a.op.Return
	best := int64(0)
	acked := false // a change was acknowledged before the window
	for _, s := range limits {
		if s.Status == history.OK && s.Return < start {
			acked = true
		}
	}
	if !acked {
		best = a.limit
	}
	for _, s := range limits {
		if s.Call >= end {
			continue // sent after the grant
		}
		superseded := false
		for _, s2 := range limits {
			if s2.Status == history.OK && s.Return < s2.Call && s2.Return < start {
				superseded = true
				break
			}
		}
		if !superseded {
			v, _ := strconv.ParseInt(s.In, 10, 64)
			best = max(best, v)
		}
	}
	return best
}

// checkElection checks the election workload, per election:
//
//   - dup_term: two won campaigns with the same term;
//   - term_order: a campaign won with a term not above that of a campaign
//     won before it was called (terms must grow in real-time order);
//   - foreign_write: an accepted write of a term its process did not win;
//   - stale_write: an accepted write of a term below the term of a
//     campaign or accepted write that returned before the write was
//     called (a write fenced by a stale term must be refused).
//
// All fail the durable mode; the fast mode only counts them (a failover
// without WAIT can forget a term, and the old primary accepts its writes
// for a while). Counts also has terms (won campaigns) and writes
// (accepted) and refused (writes refused).
func checkElection(in *input, r *Report) {
	res := r.Election
	byName := map[string][]history.Op{}
	for _, op := range in.elect {
		byName[op.Session] = append(byName[op.Session], op)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		var won, acc []history.Op
		owner := map[uint64]history.Op{}
		for _, op := range byName[name] {
			res.Examined++
			switch {
			case op.Kind == history.KindElCampaign && op.Status == history.OK:
				res.Counts["terms"]++
				if prev, ok := owner[op.Token]; ok {
					res.add(in.cfg, "dup_term", Violation{Session: name,
						What: fmt.Sprintf("term %d was won by process %d and again by process %d", op.Token, prev.Process, op.Process), Ops: []history.Op{prev, op}})
				} else {
					owner[op.Token] = op
				}
				won = append(won, op)
			case op.Kind == history.KindElWrite && op.Status == history.OK:
				res.Counts["writes"]++
				acc = append(acc, op)
			case op.Kind == history.KindElWrite && op.Status == history.Fail:
				res.Counts["refused"]++
			}
		}
		for _, w := range acc {
			if c, ok := owner[w.Token]; !ok || c.Process != w.Process {
				res.add(in.cfg, "foreign_write", Violation{Session: name,
					What: fmt.Sprintf("process %d's write under term %d was accepted; the process did not win that term", w.Process, w.Token), Ops: []history.Op{w}})
			}
		}
		// The highest term known before each call (by return time), of
		// won campaigns only and of those and accepted writes.
		for _, c := range won {
			if h, ok := highest(won, c.Call); ok && c.Token <= h.Token {
				res.add(in.cfg, "term_order", Violation{Session: name,
					What: fmt.Sprintf("process %d won term %d after term %d had been won", c.Process, c.Token, h.Token), Ops: []history.Op{h, c}})
			}
		}
		known := append(append([]history.Op{}, won...), acc...)
		for _, w := range acc {
			if h, ok := highest(known, w.Call); ok && h.Token > w.Token {
				res.add(in.cfg, "stale_write", Violation{Session: name,
					What: fmt.Sprintf("process %d's write under term %d was accepted after term %d was known", w.Process, w.Token, h.Token), Ops: []history.Op{h, w}})
			}
		}
	}
	res.Fails = in.cfg.Mode == Durable && res.Violations > 0
}

// highest returns the op of ops with the highest token among those that
// returned before call.
func highest(ops []history.Op, call int64) (best history.Op, found bool) {
	for _, k := range ops {
		if k.Return < call && (!found || k.Token > best.Token) {
			best, found = k, true
		}
	}
	return best, found
}
