package check

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fencekit/fencekit/chaos/history"
)

// isRecreate reports whether op belongs to the recreate workload (its
// sessions are kept apart from the other checkers: they are deleted on
// purpose and have no final state).
func isRecreate(op *history.Op) bool {
	return len(op.Session) >= len(history.RecreatePrefix) && op.Session[:len(history.RecreatePrefix)] == history.RecreatePrefix
}

// checkRecreate checks the recreate workload: every ok rc-read of
// incarnation I holds every message and chunk acknowledged in I before the
// read began (missing_message, missing_chunk; lost writes, failing only in
// the durable mode), and nothing appended in another incarnation
// (foreign_message, foreign_chunk) or never appended (phantom_message,
// phantom_chunk), which fail in every mode. Counts also has reads (ok
// reads checked) and replaced_reads (reads that saw more than one
// incarnation, not checked).
func checkRecreate(in *input, r *Report) {
	res := r.Recreate
	bySession := map[string][]history.Op{}
	for _, op := range in.recreate {
		bySession[op.Session] = append(bySession[op.Session], op)
	}
	ids := make([]string, 0, len(bySession))
	for id := range bySession {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ops := bySession[id]
		// value -> the ops that appended it (unique per run, so one).
		written := map[string]history.Op{}
		for _, op := range ops {
			if op.Kind == history.KindRcMsg || op.Kind == history.KindRcChunk {
				written[op.Kind+"\x00"+op.In] = op
			}
		}
		for _, rd := range ops {
			if rd.Kind != history.KindRcRead {
				continue
			}
			if rd.Status != history.OK {
				res.Counts["replaced_reads"]++
				continue
			}
			var got history.RecreateRead
			if err := json.Unmarshal(rd.Data, &got); err != nil || got.Incarnation == "" {
				r.Errors = append(r.Errors, fmt.Sprintf("session %q: rc-read (process %d, seq %d) without a readable result", id, rd.Process, rd.Seq))
				continue
			}
			res.Examined++
			res.Counts["reads"]++
			for _, part := range []struct {
				kind, name string
				vals       []string
			}{{history.KindRcMsg, "message", got.Messages}, {history.KindRcChunk, "chunk", got.Chunks}} {
				seen := map[string]bool{}
				for _, v := range part.vals {
					seen[v] = true
					w, ok := written[part.kind+"\x00"+v]
					switch {
					case !ok:
						res.add(in.cfg, "phantom_"+part.name, Violation{Session: id,
							What: fmt.Sprintf("a read of incarnation %s holds %s %q, never appended", got.Incarnation, part.name, v), Ops: []history.Op{rd}})
					case w.Status == history.Fail:
						res.add(in.cfg, "refused_"+part.name, Violation{Session: id,
							What: fmt.Sprintf("a read of incarnation %s holds %s %q, whose append was refused", got.Incarnation, part.name, v), Ops: []history.Op{w, rd}})
					case w.Out != got.Incarnation:
						res.add(in.cfg, "foreign_"+part.name, Violation{Session: id,
							What: fmt.Sprintf("a read of incarnation %s holds %s %q of incarnation %s", got.Incarnation, part.name, v, w.Out), Ops: []history.Op{w, rd}})
					}
				}
				for _, w := range ops {
					if w.Kind != part.kind || w.Status != history.OK || w.Out != got.Incarnation || w.Return >= rd.Call {
						continue
					}
					if !seen[w.In] {
						res.add(in.cfg, "missing_"+part.name, Violation{Session: id,
							What: fmt.Sprintf("%s %q, acknowledged in incarnation %s before the read began, is not in the read", part.name, w.In, got.Incarnation),
							Ops:  []history.Op{w, rd}})
					}
				}
			}
		}
	}
	for _, k := range []string{"phantom_message", "phantom_chunk", "refused_message", "refused_chunk", "foreign_message", "foreign_chunk"} {
		if res.Counts[k] > 0 {
			res.Fails = true
		}
	}
	if in.cfg.Mode == Durable && res.Violations > 0 {
		res.Fails = true
	}
}
