package check

import (
	"fmt"
	"sort"

	"github.com/fencekit/fencekit/chaos/history"
)

// checkCheckpoints is the checkpoint-sequence part of C4.
func checkCheckpoints(in *input, r *Report) {
	res := r.C4
	for _, id := range in.order {
		s := in.sessions[id]
		if s.final == nil {
			continue
		}
		list := append([]history.FinalCheckpoint(nil), s.final.Checkpoints...)
		res.Examined += len(list)
		sort.SliceStable(list, func(i, j int) bool { return list[i].Seq < list[j].Seq })
		ids := map[string]history.FinalCheckpoint{}
		for i, c := range list {
			if _, dup := ids[c.ID]; dup {
				res.add(in.cfg, "duplicate_ids", Violation{Session: id, What: fmt.Sprintf("checkpoint %s listed twice", c.ID)})
			}
			ids[c.ID] = c
			if i == 0 {
				continue
			}
			p := list[i-1]
			if c.Seq == p.Seq {
				res.add(in.cfg, "duplicate_seqs", Violation{Session: id, What: fmt.Sprintf("checkpoints %s and %s share seq %d", p.ID, c.ID, c.Seq)})
			}
			if c.Token < p.Token {
				res.add(in.cfg, "token_regressions", Violation{Session: id,
					What: fmt.Sprintf("checkpoint seq %d has token %d below seq %d's %d", c.Seq, c.Token, p.Seq, p.Token)})
			}
		}
		// The log, in acceptance order, against the list.
		var lastSeq int64
		logged := map[string]bool{}
		for _, e := range s.final.Events {
			if e.Type != "checkpoint" {
				continue
			}
			cid := e.Fields["id"]
			seq, err := parseInt(e.Fields["seq"])
			if cid == "" || err != nil {
				res.add(in.cfg, "log_mismatch", Violation{Session: id, What: fmt.Sprintf("checkpoint event v%d without id or seq", e.Version)})
				continue
			}
			logged[cid] = true
			if seq <= lastSeq {
				res.add(in.cfg, "seq_order", Violation{Session: id,
					What: fmt.Sprintf("checkpoint %s accepted at v%d with seq %d after seq %d", cid, e.Version, seq, lastSeq)})
			}
			lastSeq = max(lastSeq, seq)
			c, listed := ids[cid]
			switch {
			case !listed:
				res.add(in.cfg, "log_mismatch", Violation{Session: id, What: fmt.Sprintf("checkpoint %s logged at v%d but not listed", cid, e.Version)})
			case c.Seq != seq || c.Token != e.Token:
				res.add(in.cfg, "log_mismatch", Violation{Session: id,
					What: fmt.Sprintf("checkpoint %s: listed seq %d token %d, logged seq %d token %d", cid, c.Seq, c.Token, seq, e.Token)})
			}
		}
		if s.firstVer <= 1 {
			for _, c := range list {
				if !logged[c.ID] {
					res.add(in.cfg, "log_mismatch", Violation{Session: id, What: fmt.Sprintf("checkpoint %s listed but never logged", c.ID)})
				}
			}
		}
		// Real time: a checkpoint acknowledged before another was
		// requested has the lower seq.
		type cp struct {
			op  history.Op
			seq int64
		}
		var cps []cp
		for i := range s.ops {
			op := &s.ops[i]
			if op.Kind == history.KindCheckpoint && op.Status == history.OK && s.ann[i].vouched {
				if seq, ok := s.cpSeq[op.Out]; ok {
					cps = append(cps, cp{*op, seq})
				}
			}
		}
		byCall := append([]cp(nil), cps...)
		sort.SliceStable(byCall, func(i, j int) bool { return byCall[i].op.Call < byCall[j].op.Call })
		sort.SliceStable(cps, func(i, j int) bool { return cps[i].op.Return < cps[j].op.Return })
		k, best := 0, -1
		for _, b := range byCall {
			for k < len(cps) && cps[k].op.Return < b.op.Call {
				if best < 0 || cps[k].seq > cps[best].seq {
					best = k
				}
				k++
			}
			if best >= 0 && cps[best].seq >= b.seq {
				res.add(in.cfg, "seq_realtime", Violation{Session: id,
					What: fmt.Sprintf("checkpoint seq %d requested after seq %d was acknowledged", b.seq, cps[best].seq),
					Ops:  []history.Op{cps[best].op, b.op}})
			}
		}
	}
}
