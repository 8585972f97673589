package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fencekit/fencekit/chaos/history"
)

// seqN returns n of a stream sequence "<ms>-<n>".
func seqN(seq string) (int64, bool) {
	_, n, ok := strings.Cut(seq, "-")
	if !ok {
		return 0, false
	}
	v, err := parseInt(n)
	return v, err == nil
}

// checkStream checks each session's output stream against its appends;
// lost acknowledged appends go to C3.
func checkStream(in *input, r *Report) {
	res := r.Stream
	for _, id := range in.order {
		s := in.sessions[id]
		byChunk := map[string][]int{}
		for i := range s.ops {
			if s.ops[i].Kind == history.KindAppend {
				byChunk[s.ops[i].In] = append(byChunk[s.ops[i].In], i)
				res.Examined++
			}
		}
		if s.final == nil {
			continue
		}
		pos := map[string][]int{} // chunk -> positions in the stream
		nAt := map[string]int64{} // chunk -> seq n of its first entry
		var firstN int64 = -1
		var order []string // chunks in stream order
		for _, c := range s.final.Stream {
			if firstN < 0 {
				if n, ok := seqN(c.Seq); ok {
					firstN = n
				}
			}
			if c.Kind != "c" {
				continue
			}
			if _, seen := nAt[c.Data]; !seen {
				nAt[c.Data], _ = seqN(c.Seq)
			}
			pos[c.Data] = append(pos[c.Data], len(order))
			order = append(order, c.Data)
		}
		tokOf := func(chunk string) (uint64, bool) {
			for _, i := range byChunk[chunk] {
				if s.ops[i].Status != history.Fail {
					return s.ops[i].Token, true
				}
			}
			return 0, false
		}
		var prevTok, maxTok uint64
		prevChunk := ""
		for p, chunk := range order {
			ps := pos[chunk]
			if len(ps) > 1 && ps[0] == p {
				res.add(in.cfg, "duplicates", Violation{Session: id,
					What: fmt.Sprintf("chunk %q appears %d times (stream positions %v)", chunk, len(ps), ps), Ops: s.pick(byChunk[chunk])})
			}
			idx := byChunk[chunk]
			if len(idx) == 0 {
				res.add(in.cfg, "phantom_chunks", Violation{Session: id, What: fmt.Sprintf("chunk %q at position %d was never appended", chunk, p)})
				continue
			}
			tok, live := tokOf(chunk)
			if !live {
				res.add(in.cfg, "refused_present", Violation{Session: id,
					What: fmt.Sprintf("chunk %q was refused (%s) but is in the stream", chunk, s.ops[idx[0]].ErrKind), Ops: s.pick(idx)})
				continue
			}
			if tok < prevTok {
				res.add(in.cfg, "token_regressions", Violation{Session: id,
					What: fmt.Sprintf("chunk %q (token %d) follows %q (token %d)", chunk, tok, prevChunk, prevTok),
					Ops:  append(s.pick(byChunk[prevChunk]), s.pick(idx)...)})
			}
			prevTok, prevChunk = tok, chunk
			maxTok = max(maxTok, tok)
		}
		if st := s.final.StreamToken; st != 0 && maxTok > st {
			res.add(in.cfg, "meta_token", Violation{Session: id, What: fmt.Sprintf("stream holds token %d above its accepted token %d", maxTok, st)})
		}
		// Acknowledged appends: present, where they were acknowledged.
		type placed struct {
			op  history.Op
			pos int
		}
		var present []placed
		for i := range s.ops {
			if op := &s.ops[i]; op.Kind == history.KindAppend {
				chunk := op.In
				ps := pos[chunk]
				if op.Status == history.OK {
					r.C3.Examined++
					n, hasN := seqN(op.Out)
					switch {
					case len(ps) == 0 && hasN && firstN > 0 && n < firstN:
						r.C3.Counts["below_horizon"]++
					case len(ps) == 0:
						lostWrite(in, r.C3, "lost_append", Violation{Session: id,
							What: fmt.Sprintf("acknowledged chunk %q (token %d, seq %s) is not in the final stream", chunk, op.Token, op.Out),
							Ops:  []history.Op{*op}})
					case hasN && nAt[chunk] != n:
						res.add(in.cfg, "moved", Violation{Session: id,
							What: fmt.Sprintf("chunk %q acknowledged as seq %s is entry %d", chunk, op.Out, nAt[chunk]), Ops: []history.Op{*op}})
					}
				}
				if len(ps) > 0 && op.Status != history.Fail {
					present = append(present, placed{*op, ps[0]})
				}
			}
		}
		// Real-time order: a chunk acknowledged before another was
		// appended comes first.
		byCall := append([]placed(nil), present...)
		sort.SliceStable(byCall, func(i, j int) bool { return byCall[i].op.Call < byCall[j].op.Call })
		var acked []placed
		for _, p := range present {
			if p.op.Status == history.OK {
				acked = append(acked, p)
			}
		}
		sort.SliceStable(acked, func(i, j int) bool { return acked[i].op.Return < acked[j].op.Return })
		k, best := 0, -1
		for _, b := range byCall {
			for k < len(acked) && acked[k].op.Return < b.op.Call {
				if best < 0 || acked[k].pos > acked[best].pos {
					best = k
				}
				k++
			}
			if best >= 0 && acked[best].pos > b.pos {
				res.add(in.cfg, "order", Violation{Session: id,
					What: fmt.Sprintf("chunk %q (position %d) was appended after %q (position %d) was acknowledged", b.op.In, b.pos, acked[best].op.In, acked[best].pos),
					Ops:  []history.Op{acked[best].op, b.op}})
			}
		}
	}
}

func (s *sess) pick(idx []int) []history.Op {
	out := make([]history.Op, 0, len(idx))
	for _, i := range idx {
		out = append(out, s.ops[i])
	}
	return out
}
