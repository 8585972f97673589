package check

import (
	"testing"

	"github.com/fencekit/fencekit/chaos/history"
)

// hb builds handcrafted histories of one session "s".
type hb struct {
	ops []history.Op
	seq map[int]int64
}

func newHB() *hb { return &hb{seq: map[int]int64{}} }

func (h *hb) add(op history.Op) *hb {
	h.seq[op.Process]++
	op.Seq = h.seq[op.Process]
	if op.Session == "" {
		op.Session = "s"
	}
	if op.Status == history.Unknown {
		op.ErrKind = history.ErrTimeout
	}
	h.ops = append(h.ops, op)
	return h
}

func (h *hb) acquire(p int, tok uint64, call, ret int64) *hb {
	return h.add(history.Op{Process: p, Kind: history.KindAcquire, Token: tok, Status: history.OK, Call: call, Return: ret})
}

func (h *hb) save(p int, tok uint64, val, status string, ver int64, st history.Status, call, ret int64) *hb {
	op := history.Op{Process: p, Kind: history.KindSave, Token: tok, In: val, SessionStatus: status, Version: ver, Status: st, Call: call, Return: ret}
	if st == history.Fail {
		op.ErrKind, op.Version = history.ErrStale, 0
	}
	return h.add(op)
}

func (h *hb) load(p int, tok uint64, val, status string, ver int64, call, ret int64) *hb {
	return h.add(history.Op{Process: p, Kind: history.KindLoad, Token: tok, Out: val, SessionStatus: status, Version: ver, Status: history.OK, Call: call, Return: ret})
}

func (h *hb) cas(p int, tok uint64, from, to string, ver int64, st history.Status, call, ret int64) *hb {
	return h.add(history.Op{Process: p, Kind: history.KindCAS, Token: tok, In: from + ">" + to, Out: from, Version: ver, Status: st, Call: call, Return: ret})
}

func (h *hb) conflict(p int, tok uint64, from, to, found string, ver int64, call, ret int64) *hb {
	return h.add(history.Op{Process: p, Kind: history.KindCAS, Token: tok, In: from + ">" + to, Out: found, Version: ver,
		Status: history.Fail, ErrKind: history.ErrConflict, Call: call, Return: ret})
}

func (h *hb) appendChunk(p int, tok uint64, chunk, seq string, st history.Status, call, ret int64) *hb {
	op := history.Op{Process: p, Kind: history.KindAppend, Token: tok, In: chunk, Out: seq, Status: st, Call: call, Return: ret}
	if st == history.Fail {
		op.ErrKind, op.Out = history.ErrStale, ""
	}
	return h.add(op)
}

func (h *hb) checkpoint(p int, tok uint64, id string, st history.Status, call, ret int64) *hb {
	return h.add(history.Op{Process: p, Kind: history.KindCheckpoint, Token: tok, In: "1", Out: id, Status: st, Call: call, Return: ret})
}

func (h *hb) nemesis(name string, call, ret int64) *hb {
	h.ops = append(h.ops, history.Op{Kind: history.KindNemesis, In: name, Status: history.OK, Call: call, Return: ret})
	return h
}

// ev is shorthand for a logged event.
func ev(v int64, tok uint64, typ string, kv ...string) history.FinalEvent {
	e := history.FinalEvent{Version: v, Token: tok, Type: typ}
	if len(kv) > 0 {
		e.Fields = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Fields[kv[i]] = kv[i+1]
		}
	}
	return e
}

// final appends session "s"'s final op: the state follows the newest event,
// with value val and status st.
func (h *hb) final(t testing.TB, val, st string, f history.Final, events ...history.FinalEvent) []history.Op {
	t.Helper()
	f.Events = events
	for _, e := range events {
		if e.Version > 0 {
			f.Found = true
			f.State = history.FinalState{Version: e.Version, Token: e.Token, Value: val, Status: st}
		}
	}
	op, err := history.NewFinal("s", 1<<40, f)
	if err != nil {
		t.Fatal(err)
	}
	return append(append([]history.Op(nil), h.ops...), op)
}

func wantPass(t *testing.T, r *Report) {
	t.Helper()
	if !r.OK() {
		t.Fatalf("want pass:\n%s", r)
	}
}

func wantFail(t *testing.T, r *Report, res *Result, key string) {
	t.Helper()
	if r.OK() || !res.Fails {
		t.Fatalf("want %s to fail the run:\n%s", res.Name, r)
	}
	if key != "" && res.Counts[key] == 0 {
		t.Fatalf("want %s %s > 0, got %v:\n%s", res.Name, key, res.Counts, r)
	}
}
