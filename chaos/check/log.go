package check

import (
	"fmt"

	"github.com/fencekit/fencekit/chaos/history"
)

// checkLog is the direct part of C2, on the log the surviving store keeps:
// versions contiguous, tokens never decreasing along versions, the state
// agreeing with the newest event, and every event explained by a recorded
// write.
func checkLog(in *input, r *Report) {
	res := r.C2
	for _, id := range in.order {
		s := in.sessions[id]
		for i := range s.ops {
			switch a := &s.ann[i]; {
			case a.dirty:
				res.Counts["dirty_reads"]++
			case a.phantom:
				res.Counts["unexplained_reads"]++
			case a.stale:
				res.Counts["stale_reads"]++
			}
			if a := &s.ann[i]; a.lost && in.cfg.Mode == Fast {
				res.Counts["lost_left_out"]++
			}
			if a := &s.ann[i]; a.absent {
				res.Counts["unknown_absent"]++
			}
			if a := &s.ann[i]; a.pinned {
				res.Counts["unknown_pinned"]++
			}
		}
		f := s.final
		if f == nil {
			continue
		}
		evs := f.Events
		res.Examined += len(evs)
		if !f.Found {
			if len(evs) > 0 {
				res.add(in.cfg, "state_mismatch", Violation{Session: id, What: fmt.Sprintf("no session but %d events", len(evs))})
			}
			continue
		}
		for i := 1; i < len(evs); i++ {
			p, e := evs[i-1], evs[i]
			if e.Version != p.Version+1 {
				res.add(in.cfg, "log_gaps", Violation{Session: id,
					What: fmt.Sprintf("event log goes from version %d to %d", p.Version, e.Version)})
			}
			if e.Token < p.Token {
				res.add(in.cfg, "token_regressions", Violation{Session: id,
					What: fmt.Sprintf("the store accepted token %d (v%d %s) after token %d (v%d %s)", e.Token, e.Version, e.Type, p.Token, p.Version, p.Type),
					Ops:  s.opsOfEvents(p.Version, e.Version)})
			}
		}
		if n := len(evs); n > 0 {
			last := evs[n-1]
			if f.State.Version != last.Version || f.State.Token != last.Token {
				res.add(in.cfg, "state_mismatch", Violation{Session: id,
					What: fmt.Sprintf("state (v%d tok %d) disagrees with the newest event (v%d tok %d)", f.State.Version, f.State.Token, last.Version, last.Token)})
			}
		} else if f.State.Version != 0 {
			res.add(in.cfg, "state_mismatch", Violation{Session: id, What: fmt.Sprintf("state at v%d with an empty event log", f.State.Version)})
		}
		s.checkExplained(in, res)
	}
}

// opsOfEvents returns the ok ops that own the events of the versions.
func (s *sess) opsOfEvents(versions ...int64) []history.Op {
	var out []history.Op
	for _, v := range versions {
		if i, ok := s.claimedBy[v]; ok {
			out = append(out, s.ops[i])
		}
	}
	return out
}

// checkExplained reports the events that no recorded write explains (see
// matchEvents).
func (s *sess) checkExplained(in *input, res *Result) {
	for _, e := range s.unexplained {
		res.add(in.cfg, "unexplained_events", Violation{Session: s.id,
			What: fmt.Sprintf("event v%d %s with token %d: no recorded write explains it", e.Version, e.Type, e.Token)})
	}
}

// kindOfEvent maps an event type to the op kind that writes it.
var kindOfEvent = func() map[string]string {
	m := map[string]string{}
	for kind, types := range eventTypes {
		for _, t := range types {
			m[t] = kind
		}
	}
	return m
}()
