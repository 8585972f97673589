package check

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/fencekit/fencekit/chaos/history"
)

// projection selects what a model tracks of the session register.
type projection int

const (
	fenced projection = iota // C2: (token, version, value)
	casReg                   // C4: (version, status)
)

// regState is the session register: the token of the last accepted write
// (the highest accepted, since accepted tokens never decrease), the
// version, the save marker and the status. A projection leaves the fields
// it does not track at their zero value.
type regState struct {
	Tok uint64
	Ver int64
	Val string
	St  string
}

// outcome of an operation as the model sees it.
type outcome uint8

const (
	outOK      outcome = iota // acknowledged
	outRefused                // certainly not applied (any refusal)
	outUnknown                // maybe applied (at any time after Call)
)

// mIn is a model operation's input; mOut its output.
type mIn struct {
	Kind     string
	Tok      uint64
	Val      string // save: the marker written
	St       string // save: the status written
	From, To string // cas
}

type mOut struct {
	Outcome outcome
	Ver     int64  // ok write: the version produced (0: not known); load, conflict: the version seen (0: not observed)
	Tok     uint64 // load: the token read
	Val     string // load: the marker read
	St      string // load: the status read; conflict: the status found
	Noop    bool   // promote that wrote nothing
	Obs     bool   // the output is an observation the model must match
}

func step(p projection, s regState, in mIn, out mOut) (bool, regState) {
	if in.Kind == history.KindLoad {
		if out.Ver == 0 { // no session: nothing else to compare
			return s.Ver == 0, s
		}
		if p == fenced {
			return out.Ver == s.Ver && out.Tok == s.Tok && out.Val == s.Val, s
		}
		return out.Ver == s.Ver && out.St == s.St, s
	}
	switch out.Outcome {
	case outRefused:
		if !out.Obs { // stale, not_holder, conflict without a report: always safe
			return true, s
		}
		// A cas that found another status: a read of (version, status).
		ok := out.Ver == s.Ver
		if p == casReg {
			ok = ok && out.St == s.St && s.St != in.From
		}
		return ok, s
	case outUnknown:
		panic("check: step of an unknown write (use stepSet)")
	}
	if out.Noop {
		return true, s
	}
	if !canApply(p, s, in) || (out.Ver != 0 && out.Ver != s.Ver+1) {
		return false, s
	}
	return true, apply(p, s, in)
}

func canApply(p projection, s regState, in mIn) bool {
	if p == fenced {
		return in.Tok >= s.Tok
	}
	return in.Kind != history.KindCAS || s.St == in.From
}

func apply(p projection, s regState, in mIn) regState {
	s.Ver++
	if p == fenced {
		s.Tok = in.Tok
		if in.Kind == history.KindSave {
			s.Val = in.Val
		}
		return s
	}
	switch in.Kind {
	case history.KindSave:
		s.St = in.St
	case history.KindCAS:
		s.St = in.To
	}
	return s
}

// regSet is the set of states the register may be in: a write of unknown
// outcome forks it into "applied here" and "not applied (yet)"; the
// following operations prune it. A set is never mutated, and holds no
// duplicates.
type regSet []regState

func stepSet(p projection, set regSet, in mIn, out mOut) (bool, regSet) {
	if len(set) == 1 && out.Outcome != outUnknown { // the common case
		ok, ns := step(p, set[0], in, out)
		switch {
		case !ok:
			return false, nil
		case ns == set[0]:
			return true, set
		}
		return true, regSet{ns}
	}
	next := make(regSet, 0, len(set)+1)
	add := func(s regState) {
		for _, x := range next {
			if x == s {
				return
			}
		}
		next = append(next, s)
	}
	for _, s := range set {
		if out.Outcome == outUnknown {
			add(s)
			if canApply(p, s, in) {
				add(apply(p, s, in))
			}
			continue
		}
		if ok, ns := step(p, s, in, out); ok {
			add(ns)
		}
	}
	return len(next) > 0, next
}

var hashSeed = maphash.MakeSeed()

func hashState(s regState) uint64 {
	var h maphash.Hash
	h.SetSeed(hashSeed)
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], s.Tok)
	binary.LittleEndian.PutUint64(b[8:], uint64(s.Ver))
	h.Write(b[:])
	h.WriteString(s.Val)
	h.WriteByte(0)
	h.WriteString(s.St)
	return h.Sum64()
}

func describeState(p projection, s regState) string {
	if p == fenced {
		return fmt.Sprintf("tok=%d v=%d val=%q", s.Tok, s.Ver, s.Val)
	}
	return fmt.Sprintf("v=%d status=%q", s.Ver, s.St)
}

func newModel(p projection) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return regSet{{}} },
		Step: func(st, in, out any) (bool, any) {
			return stepSet(p, st.(regSet), in.(mIn), out.(mOut))
		},
		Equal: func(a, b any) bool {
			x, y := a.(regSet), b.(regSet)
			if len(x) != len(y) {
				return false
			}
		outer:
			for _, s := range x {
				for _, t := range y {
					if s == t {
						continue outer
					}
				}
				return false
			}
			return true
		},
		Hash: func(st any) uint64 {
			var h uint64
			for _, s := range st.(regSet) {
				h ^= hashState(s)
			}
			return h
		},
		DescribeOperation: func(in, out any) string { return describeOp(p, in.(mIn), out.(mOut)) },
		DescribeState: func(st any) string {
			set := st.(regSet)
			if len(set) == 1 {
				return describeState(p, set[0])
			}
			parts := make([]string, len(set))
			for i, s := range set {
				parts[i] = describeState(p, s)
			}
			return "{" + strings.Join(parts, " | ") + "}"
		},
		DescribeOperationMetadata: func(m any) string {
			if m == nil {
				return ""
			}
			return fmt.Sprint(m)
		},
	}
}

func describeOp(p projection, in mIn, out mOut) string {
	var b strings.Builder
	switch in.Kind {
	case history.KindLoad:
		if p == fenced {
			fmt.Fprintf(&b, "load -> tok=%d v=%d val=%q", out.Tok, out.Ver, out.Val)
		} else {
			fmt.Fprintf(&b, "load -> v=%d status=%q", out.Ver, out.St)
		}
		return b.String()
	case history.KindSave:
		fmt.Fprintf(&b, "save(tok=%d val=%q status=%q)", in.Tok, in.Val, in.St)
	case history.KindCAS:
		fmt.Fprintf(&b, "cas(tok=%d %s>%s)", in.Tok, in.From, in.To)
	default:
		fmt.Fprintf(&b, "%s(tok=%d)", in.Kind, in.Tok)
	}
	switch {
	case out.Outcome == outUnknown:
		b.WriteString(" -> unknown")
	case out.Outcome == outRefused && out.Obs:
		fmt.Fprintf(&b, " -> conflict v=%d status=%q", out.Ver, out.St)
	case out.Outcome == outRefused:
		b.WriteString(" -> refused")
	case out.Noop:
		b.WriteString(" -> noop")
	default:
		fmt.Fprintf(&b, " -> ok v=%d", out.Ver)
	}
	return b.String()
}

// modelOps turns a session's ops into porcupine operations for projection
// p, applying the classification: in the fast mode a lost acknowledgement
// is an unknown write; dirty observations are left out (loads) or lose
// their observation (refused cas). It returns, parallel to the result, the
// index of each op in s.ops.
func modelOps(s *sess, mode Mode) ([]porcupine.Operation, []int) {
	clients := map[int]int{}
	var ops []porcupine.Operation
	var idx []int
	for i := range s.ops {
		op, a := &s.ops[i], &s.ann[i]
		in := mIn{Kind: op.Kind, Tok: op.Token}
		out := mOut{}
		switch {
		case op.Kind == history.KindLoad:
			if op.Status != history.OK || a.dirty {
				continue
			}
			out = mOut{Outcome: outOK, Ver: op.Version, Tok: op.Token, Val: op.Out, St: op.SessionStatus, Obs: true}
		case isWrite(op.Kind):
			if a.absent || (a.lost && mode == Fast) {
				continue // did not take effect on the surviving store
			}
			switch op.Kind {
			case history.KindSave:
				in.Val, in.St = op.In, op.SessionStatus
			case history.KindCAS:
				in.From, in.To, _ = strings.Cut(op.In, ">")
			}
			switch {
			case op.Status == history.Unknown && a.pinned:
				out.Outcome, out.Ver = outOK, a.ver
			case op.Status == history.Unknown:
				out.Outcome = outUnknown
			case op.Status == history.Fail:
				out.Outcome = outRefused
				if isConflictObs(op) && !a.dirty {
					out.Obs, out.Ver, out.St = true, op.Version, op.Out
				}
			default:
				out.Outcome, out.Ver, out.Noop = outOK, a.ver, isNoop(op)
			}
		default:
			continue
		}
		c, ok := clients[op.Process]
		if !ok {
			c = len(clients)
			clients[op.Process] = c
		}
		call, ret := op.Call, op.Return
		if out.Outcome == outUnknown || op.Status == history.Unknown {
			ret = history.Never
		}
		if a.stale && out.Obs {
			// A stale read is judged against the states the register
			// went through before it returned, not against real time.
			call = 0
		}
		ops = append(ops, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret,
			Metadata: fmt.Sprintf("p%d #%d", op.Process, op.Seq)})
		idx = append(idx, i)
	}
	return ops, idx
}
