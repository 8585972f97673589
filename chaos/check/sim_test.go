package check

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/fencekit/fencekit/chaos/history"
)

// The simulator produces legal histories of the fault-suite workload: P
// processes per session run operations against an in-memory store that
// implements fencekit's rules (fenced, versioned writes, one event per
// write), each operation taking effect at one instant between its call and
// its return. It injects indeterminacy (a client that gives up: applied or
// not), and failovers: the store is replaced by a lagging replica (fast) or
// a synchronous one (durable) while the demoted primary keeps serving the
// processes that have not switched yet. In the durable mode no write on a
// demoted primary is acknowledged (its WAIT cannot succeed): it is unknown.

type simConfig struct {
	Seed      uint64
	Mode      Mode
	Sessions  int
	Procs     int     // per session
	Ops       int     // completed operations per session, roughly
	PUnknown  float64 // a client gives up on an operation
	PFailover float64 // per tick and session
	// BypassFence makes the store accept one stale save (the mutant
	// "fencing comparison removed"); the op is returned by gen.
	BypassFence bool
}

type simStore struct {
	st        regState
	events    []history.FinalEvent
	stream    []history.FinalChunk
	streamTok uint64
	cps       []history.FinalCheckpoint
	cpSeq     int64
	staged    int
	lockCtr   uint64
}

func (s *simStore) clone() *simStore {
	c := *s
	c.events = slices.Clone(s.events)
	c.stream = slices.Clone(s.stream)
	c.cps = slices.Clone(s.cps)
	return &c
}

type simProc struct {
	id    int
	seq   int64
	tok   uint64
	onOld bool
	cur   *simPending
}

type simPending struct {
	op      history.Op
	applied bool
	giveUp  bool
	skip    bool // a given-up op that never takes effect
	lossy   bool // applied on a demoted primary in the durable mode
}

type simSession struct {
	id      string
	primary *simStore
	replica *simStore
	old     *simStore
	fault   int // index in sim.faults of the failover in progress
	procs   []*simProc
}

type sim struct {
	cfg      simConfig
	rng      *rand.Rand
	t        int64
	chunk    int
	ops      []history.Op
	faults   []history.Op
	bypassed *history.Op
	sessions []*simSession
}

var simStatuses = []string{"pending", "running", "done"}

// gen returns a legal history (with its final ops) under cfg.
func gen(cfg simConfig) []history.Op {
	ops, _ := genSim(cfg)
	return ops
}

// genSim is gen that also returns the simulation (for its bypassed op).
func genSim(cfg simConfig) ([]history.Op, *sim) {
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 7)), t: 1000}
	pid := 0
	for i := 0; i < cfg.Sessions; i++ {
		ss := &simSession{id: fmt.Sprintf("s%d", i), primary: &simStore{}}
		ss.replica = ss.primary.clone()
		for p := 0; p < cfg.Procs; p++ {
			pid++
			ss.procs = append(ss.procs, &simProc{id: pid})
		}
		s.sessions = append(s.sessions, ss)
	}
	target := cfg.Ops * cfg.Sessions
	for len(s.ops) < target {
		s.tick(true)
	}
	for busy := true; busy; {
		busy = false
		for _, ss := range s.sessions {
			for _, p := range ss.procs {
				busy = busy || p.cur != nil
			}
		}
		if busy {
			s.tick(false)
		}
	}
	out := append(s.ops, s.faults...)
	for _, ss := range s.sessions {
		st := ss.primary
		f := history.Final{Found: st.st.Ver > 0, State: history.FinalState{Version: st.st.Ver, Token: st.st.Tok, Value: st.st.Val, Status: st.st.St},
			Events: st.events, Stream: st.stream, StreamToken: st.streamTok, Checkpoints: st.cps}
		op, err := history.NewFinal(ss.id, s.t+1, f)
		if err != nil {
			panic(err)
		}
		out = append(out, op)
	}
	return out, s
}

func (s *sim) tick(start bool) {
	s.t += 1 + int64(s.rng.IntN(3))
	ss := s.sessions[s.rng.IntN(len(s.sessions))]
	if ss.old == nil && s.cfg.PFailover > 0 && s.rng.Float64() < s.cfg.PFailover {
		s.failover(ss)
		return
	}
	if ss.old != nil {
		for _, p := range ss.procs {
			if p.onOld && s.rng.IntN(8) == 0 {
				p.onOld = false
			}
		}
		if !slices.ContainsFunc(ss.procs, func(p *simProc) bool { return p.onOld }) {
			ss.old = nil
			s.faults[ss.fault].Return = s.t
		}
	}
	if s.cfg.Mode == Fast && s.rng.IntN(4) == 0 {
		ss.replica = ss.primary.clone() // replication catches up now and then
	}
	p := ss.procs[s.rng.IntN(len(ss.procs))]
	switch {
	case p.cur == nil && start:
		s.call(ss, p)
	case p.cur != nil && !p.cur.applied:
		s.apply(ss, p)
	case p.cur != nil:
		s.ret(p)
	}
}

func (s *sim) failover(ss *simSession) {
	ss.old = ss.primary
	ss.primary = ss.replica.clone()
	for _, p := range ss.procs {
		p.onOld = true
	}
	ss.fault = len(s.faults)
	s.faults = append(s.faults, history.Op{Kind: history.KindNemesis, In: "failover", Out: ss.id, Status: history.OK, Call: s.t, Return: s.t})
}

func (s *sim) call(ss *simSession, p *simProc) {
	p.seq++
	op := history.Op{Process: p.id, Seq: p.seq, Session: ss.id, Call: s.t, Token: p.tok}
	r := s.rng.IntN(100)
	switch {
	case p.tok == 0 || r < 8:
		op.Kind = history.KindAcquire
		op.Token = 0
	case r < 28:
		op.Kind = history.KindSave
		op.In = "v" + strconv.Itoa(p.id) + "-" + strconv.FormatInt(p.seq, 10)
		op.SessionStatus = simStatuses[s.rng.IntN(len(simStatuses))]
	case r < 44:
		op.Kind = history.KindLoad
		op.Token = 0
	case r < 58:
		op.Kind = history.KindCAS
		op.In = simStatuses[s.rng.IntN(len(simStatuses))] + ">" + simStatuses[s.rng.IntN(len(simStatuses))]
	case r < 68:
		op.Kind = history.KindStage
		op.In = "1/call" + strconv.FormatInt(p.seq, 10)
	case r < 76:
		op.Kind = history.KindPromote
		op.In = "1"
	case r < 90:
		op.Kind = history.KindAppend
		s.chunk++
		op.In = "c" + strconv.Itoa(s.chunk)
	default:
		op.Kind = history.KindCheckpoint
		op.In = "1"
	}
	pd := &simPending{op: op}
	if s.rng.Float64() < s.cfg.PUnknown {
		pd.giveUp = true
		pd.skip = s.rng.IntN(2) == 0
	}
	p.cur = pd
}

func (s *sim) apply(ss *simSession, p *simProc) {
	pd := p.cur
	pd.applied = true
	if pd.skip {
		return
	}
	st := ss.primary
	if p.onOld && ss.old != nil {
		st = ss.old
		pd.lossy = s.cfg.Mode == Durable
	}
	op := &pd.op
	op.Status = history.OK
	stale := func() bool {
		if op.Token >= st.st.Tok {
			return false
		}
		if s.cfg.BypassFence && s.bypassed == nil && op.Kind == history.KindSave && !pd.giveUp && !pd.lossy && st == ss.primary {
			return false // the mutant: accepted all the same
		}
		op.Status, op.ErrKind = history.Fail, history.ErrStale
		return true
	}
	write := func(typ string, fields map[string]string) {
		st.st.Ver++
		st.st.Tok = op.Token
		op.Version = st.st.Ver
		st.events = append(st.events, history.FinalEvent{Version: st.st.Ver, Token: op.Token, Type: typ, Fields: fields})
	}
	switch op.Kind {
	case history.KindAcquire:
		tok := max(st.lockCtr+1, uint64(s.t)*16)
		st.lockCtr = tok
		op.Token = tok
		p.tok = tok
	case history.KindLoad:
		op.Version, op.Token, op.Out, op.SessionStatus = st.st.Ver, st.st.Tok, st.st.Val, st.st.St
	case history.KindSave:
		if stale() {
			break
		}
		if op.Token < st.st.Tok {
			s.bypassed = op
		}
		typ := "saved"
		if st.st.Ver == 0 {
			typ = "created"
		}
		st.st.Val, st.st.St = op.In, op.SessionStatus
		write(typ, map[string]string{"status": op.SessionStatus})
	case history.KindAppend:
		if op.Token < max(st.streamTok, st.st.Tok) {
			op.Status, op.ErrKind = history.Fail, history.ErrStale
			break
		}
		st.streamTok = op.Token
		n := len(st.stream) + 1
		op.Out = fmt.Sprintf("%d-%d", s.t, n)
		st.stream = append(st.stream, history.FinalChunk{Seq: op.Out, Kind: "c", Data: op.In})
	default:
		if st.st.Ver == 0 {
			op.Status, op.ErrKind = history.Fail, history.ErrOther // no session yet
			break
		}
		if stale() {
			break
		}
		switch op.Kind {
		case history.KindCAS:
			from, to := op.In[:indexByte(op.In, '>')], op.In[indexByte(op.In, '>')+1:]
			if st.st.St != from {
				op.Status, op.ErrKind, op.Out, op.Version = history.Fail, history.ErrConflict, st.st.St, st.st.Ver
				break
			}
			st.st.St = to
			op.Out = from
			write("status", map[string]string{"from": from, "status": to})
		case history.KindStage:
			st.staged++
			write("staged", map[string]string{"step": "1", "call": op.In})
		case history.KindPromote:
			if st.staged == 0 {
				op.Out, op.Version = history.OutNoop, st.st.Ver
				break
			}
			st.staged = 0
			write("promoted", nil)
		case history.KindCheckpoint:
			st.cpSeq++
			id := fmt.Sprintf("cp-%s-%d-%d", ss.id, st.cpSeq, s.t)
			op.Out = id
			write("checkpoint", map[string]string{"id": id, "seq": strconv.FormatInt(st.cpSeq, 10)})
			st.cps = append(st.cps, history.FinalCheckpoint{ID: id, Seq: st.cpSeq, Token: op.Token})
		}
	}
	if s.cfg.Mode == Durable && st == ss.primary {
		ss.replica = ss.primary.clone() // WAIT: replicated before the ack
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func (s *sim) ret(p *simProc) {
	pd := p.cur
	p.cur = nil
	op := pd.op
	op.Return = s.t
	if pd.giveUp || (pd.lossy && op.Kind != history.KindLoad) {
		op = history.Op{Process: op.Process, Seq: op.Seq, Session: op.Session, Kind: op.Kind, Token: pd.op.Token,
			In: op.In, SessionStatus: op.SessionStatus, Status: history.Unknown, ErrKind: history.ErrTimeout, Call: op.Call, Return: op.Return}
		if op.Kind == history.KindAcquire || op.Kind == history.KindLoad {
			op.Token = 0
		}
	}
	if op.Kind == history.KindAcquire && op.Status != history.OK {
		p.tok = 0
	}
	if pd.skip && op.Kind == history.KindAcquire {
		p.tok = 0
	}
	if s.bypassed != nil && s.bypassed.Process == op.Process && s.bypassed.Seq == op.Seq {
		s.bypassed = &op
	}
	s.ops = append(s.ops, op)
}
