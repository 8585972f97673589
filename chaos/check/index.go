package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fencekit/fencekit/chaos/history"
)

// input is the history split by session, with each session's final state
// indexed and every operation classified against it.
type input struct {
	cfg      *Config
	sessions map[string]*sess
	order    []string     // session ids, sorted
	faults   []history.Op // nemesis ops, by Call
	recreate []history.Op // ops of the recreate workload's sessions (see recreate.go)
	sem      []history.Op // ops of the semaphore workload (see coord.go)
	elect    []history.Op // ops of the election workload (see coord.go)
}

// sess is one session's part of the history.
type sess struct {
	id    string
	ops   []history.Op // client ops, in history order
	ann   []ann        // parallel to ops
	final *history.Final

	ev           map[int64]*history.FinalEvent // by version
	firstVer     int64                         // lowest version in the log (0: empty log)
	lastVer      int64
	status       map[int64]string // status after each logged version, where known
	cpEvent      map[string]*history.FinalEvent
	cpSeq        map[string]int64 // checkpoint id -> seq (list, else event)
	claimedBy    map[int64]int    // version -> index of the ok op that owns its event
	unknownMin   map[uint64]int64 // token -> earliest Call of an unknown write (or a lost one of no known version) with it
	lostAt       map[[2]int64]int64
	anyUnvouched int64   // earliest Call of an unknown or lost write (0: none)
	ownedVers    []int64 // versions owned by an ok write, ascending
	ackedFrom    []int64 // [k]: earliest Return of the owners of ownedVers[k:]
	unexplained  []history.FinalEvent
	written      map[string]bool // save markers written by saves not refused
	statuses     map[string]bool // statuses written by saves and cas not refused
}

// ann says how the checkers treat one operation.
type ann struct {
	ver     int64 // the version an ok write produced (reported, or derived from the log); 0 unknown
	vouched bool  // an ok write whose event the final log holds (or that cannot be checked)
	lost    bool  // an ok write the final log does not hold
	below   bool  // an ok write older than the log's first entry: not checkable
	dirty   bool  // an observation of a state the final log does not hold, explained by an unvouched write
	phantom bool  // an observation of a state the final log does not hold, that no write explains
	stale   bool  // an observation of a logged state that a newer acknowledged write had replaced before it began
	absent  bool  // an unknown write the final log proves did not take effect (left out of the models)
	pinned  bool  // an unknown write that is the only possible author of an event: modelled as acknowledged at that version
}

// eventTypes are the event types each write kind produces.
var eventTypes = map[string][]string{
	history.KindSave:       {"created", "saved"},
	history.KindCAS:        {"status"},
	history.KindStage:      {"staged"},
	history.KindPromote:    {"promoted"},
	history.KindCheckpoint: {"checkpoint"},
}

func isWrite(kind string) bool { _, ok := eventTypes[kind]; return ok }

func typeOK(kind, typ string) bool {
	for _, t := range eventTypes[kind] {
		if t == typ {
			return true
		}
	}
	return false
}

func isNoop(op *history.Op) bool {
	return op.Kind == history.KindPromote && op.Status == history.OK && op.Out == history.OutNoop
}

// isConflictObs reports a refused cas that reported what it found.
func isConflictObs(op *history.Op) bool {
	return op.Kind == history.KindCAS && op.Status == history.Fail && op.ErrKind == history.ErrConflict && op.Version > 0
}

var knownKinds = map[string]bool{
	history.KindAcquire: true, history.KindRelease: true, history.KindSave: true, history.KindLoad: true,
	history.KindCAS: true, history.KindStage: true, history.KindPromote: true, history.KindAppend: true,
	history.KindCheckpoint: true, history.KindUsage: true, history.KindBudget: true,
}

func index(ops []history.Op, r *Report) *input {
	in := &input{cfg: &r.cfg, sessions: map[string]*sess{}}
	get := func(id string) *sess {
		s := in.sessions[id]
		if s == nil {
			s = &sess{id: id}
			in.sessions[id] = s
		}
		return s
	}
	for i := range ops {
		op := ops[i]
		switch op.Kind {
		case history.KindNemesis:
			in.faults = append(in.faults, op)
			continue
		case history.KindFinal:
			s := get(op.Session)
			f, err := op.Final()
			switch {
			case err != nil:
				r.Errors = append(r.Errors, err.Error())
			case s.final != nil:
				r.Errors = append(r.Errors, fmt.Sprintf("session %q: more than one final op", op.Session))
			case f.Err != "":
				r.Errors = append(r.Errors, fmt.Sprintf("session %q: final state not read: %s", op.Session, f.Err))
			default:
				// Lock events (statestore.EventLockAcquired ..., Version 0)
				// are not state writes.
				kept := f.Events[:0:0]
				for _, e := range f.Events {
					if e.Version != 0 && !strings.HasPrefix(e.Type, "lock_") {
						kept = append(kept, e)
					}
				}
				f.Events = kept
				s.final = &f
			}
			continue
		}
		switch op.Status {
		case history.OK, history.Fail, history.Unknown:
		default:
			r.Errors = append(r.Errors, fmt.Sprintf("op %d (process %d %s %q): unknown status %q", i, op.Process, op.Kind, op.Session, op.Status))
			continue
		}
		if isSem(&op) || isElect(&op) {
			if op.Status == history.Unknown {
				op.Return = history.Never
			}
			if isSem(&op) {
				in.sem = append(in.sem, op)
			} else {
				in.elect = append(in.elect, op)
			}
			continue
		}
		if isRecreate(&op) {
			if op.Status == history.Unknown {
				op.Return = history.Never
			}
			in.recreate = append(in.recreate, op)
			continue
		}
		if !knownKinds[op.Kind] {
			r.Errors = append(r.Errors, fmt.Sprintf("op %d (process %d): unknown kind %q", i, op.Process, op.Kind))
			continue
		}
		if op.Session == "" {
			r.Errors = append(r.Errors, fmt.Sprintf("op %d (process %d %s): no session", i, op.Process, op.Kind))
			continue
		}
		if op.Status == history.Unknown {
			op.Return = history.Never
		}
		s := get(op.Session)
		s.ops = append(s.ops, op)
	}
	sort.Slice(in.faults, func(i, j int) bool { return in.faults[i].Call < in.faults[j].Call })
	for id, s := range in.sessions {
		in.order = append(in.order, id)
		if s.final == nil && len(s.ops) > 0 {
			r.Errors = append(r.Errors, fmt.Sprintf("session %q: no final state (a final op)", id))
		}
		s.ann = make([]ann, len(s.ops))
		s.indexFinal()
		s.classify()
	}
	sort.Strings(in.order)
	return in
}

// indexFinal indexes the final event log and checkpoint list.
func (s *sess) indexFinal() {
	s.ev = map[int64]*history.FinalEvent{}
	s.status = map[int64]string{}
	s.cpEvent = map[string]*history.FinalEvent{}
	s.cpSeq = map[string]int64{}
	s.claimedBy = map[int64]int{}
	if s.final == nil {
		return
	}
	known, st := false, ""
	for i := range s.final.Events {
		e := &s.final.Events[i]
		if _, dup := s.ev[e.Version]; !dup {
			s.ev[e.Version] = e
		}
		if s.firstVer == 0 || e.Version < s.firstVer {
			s.firstVer = e.Version
		}
		s.lastVer = max(s.lastVer, e.Version)
		if v, ok := e.Fields["status"]; ok && (e.Type == "created" || e.Type == "saved" || e.Type == "status") {
			known, st = true, v
		}
		if known {
			s.status[e.Version] = st
		}
		if e.Type == "checkpoint" {
			if id := e.Fields["id"]; id != "" {
				s.cpEvent[id] = e
				if seq, err := parseInt(e.Fields["seq"]); err == nil {
					s.cpSeq[id] = seq
				}
			}
		}
	}
	for _, c := range s.final.Checkpoints {
		s.cpSeq[c.ID] = c.Seq
	}
}

// classify vouches ok writes and observations against the final log; see
// the package doc ("What the surviving store vouches for").
func (s *sess) classify() {
	if s.final == nil {
		for i := range s.ops {
			s.ann[i].vouched = s.ops[i].Status == history.OK
			s.ann[i].ver = s.ops[i].Version
		}
		return
	}
	horizon := s.firstVer > 1 // the log lost its oldest entries
	claims := map[int64][]int{}
	for i := range s.ops {
		op, a := &s.ops[i], &s.ann[i]
		if !isWrite(op.Kind) || op.Status != history.OK || isNoop(op) {
			continue
		}
		a.ver = op.Version
		if op.Kind == history.KindCheckpoint {
			if e := s.cpEvent[op.Out]; e != nil && e.Token == op.Token {
				a.ver = e.Version
				claims[e.Version] = append(claims[e.Version], i)
				continue
			}
			if _, listed := s.cpSeq[op.Out]; listed && horizon {
				a.below, a.vouched = true, true
				continue
			}
			a.lost = true
			continue
		}
		switch e := s.ev[op.Version]; {
		case op.Version <= 0:
			a.vouched = true // no version reported: nothing to check it against
		case horizon && op.Version < s.firstVer:
			a.below, a.vouched = true, true
		case e != nil && e.Token == op.Token && typeOK(op.Kind, e.Type):
			claims[op.Version] = append(claims[op.Version], i)
		default:
			a.lost = true
		}
	}
	// One event, one acknowledgement: of several ok writes that claim the
	// same event, the last acknowledged owns it and the others were lost.
	for v, idx := range claims {
		best := idx[0]
		for _, i := range idx[1:] {
			if s.ops[i].Return > s.ops[best].Return {
				best = i
			}
		}
		for _, i := range idx {
			if i == best {
				s.ann[i].vouched = true
				s.claimedBy[v] = i
			} else {
				s.ann[i].lost = true
			}
		}
	}
	s.matchEvents()
	// Writes that may have taken effect without the final log holding them:
	// unknown writes (with their token) and lost acknowledgements (with
	// their token and version).
	s.unknownMin = map[uint64]int64{}
	s.lostAt = map[[2]int64]int64{}
	for i := range s.ops {
		op := &s.ops[i]
		if !isWrite(op.Kind) {
			continue
		}
		switch {
		case op.Status == history.Unknown, s.ann[i].lost && s.ann[i].ver == 0:
			// (A lost checkpoint reports no version: any version will do.)
			if m, ok := s.unknownMin[op.Token]; !ok || op.Call < m {
				s.unknownMin[op.Token] = op.Call
			}
		case s.ann[i].lost:
			k := [2]int64{int64(op.Token), s.ann[i].ver}
			if m, ok := s.lostAt[k]; !ok || op.Call < m {
				s.lostAt[k] = op.Call
			}
		default:
			continue
		}
		if s.anyUnvouched == 0 || op.Call < s.anyUnvouched {
			s.anyUnvouched = op.Call
		}
	}
	s.indexAcked()
	for i := range s.ops {
		op, a := &s.ops[i], &s.ann[i]
		var vouched, explained bool
		switch {
		case op.Kind == history.KindLoad && op.Status == history.OK:
			vouched = s.vouchLoad(op)
			if !vouched && !s.wasWritten(op) {
				break // a value or status no write wrote: never explained
			}
			m, ok := s.unknownMin[op.Token]
			explained = ok && m <= op.Return
			if m, ok := s.lostAt[[2]int64{int64(op.Token), op.Version}]; ok && m <= op.Return {
				explained = true
			}
		case isConflictObs(op):
			vouched = s.vouchConflict(op)
			explained = s.anyUnvouched != 0 && s.anyUnvouched <= op.Return
		default:
			continue
		}
		switch {
		case vouched:
			a.stale = s.isStale(op)
		case explained:
			a.dirty = true
		default:
			a.phantom = true
		}
	}
}

// matchEvents matches the events no ok write owns to the writes that may
// have written them, by token and kind: unknown writes, and ok writes that
// own no event because they reported no version or are below the horizon.
// An event no such write can explain is unexplained. An unknown write that
// is the one candidate of the one event of its token and kind is pinned to
// it; with a complete log (no horizon), an unknown write no event matches
// did not take effect on the surviving store: absent.
func (s *sess) matchEvents() {
	type key struct {
		tok  uint64
		kind string
	}
	owned := map[int]bool{}
	for _, i := range s.claimedBy {
		owned[i] = true
	}
	evs := map[key][]int64{}
	for _, e := range s.final.Events {
		if _, ok := s.claimedBy[e.Version]; !ok {
			k := key{e.Token, kindOfEvent[e.Type]}
			evs[k] = append(evs[k], e.Version)
		}
	}
	cands := map[key][]int{}
	for i := range s.ops {
		op, a := &s.ops[i], &s.ann[i]
		if !isWrite(op.Kind) || isNoop(op) || owned[i] {
			continue
		}
		if op.Status == history.Unknown || (op.Status == history.OK && a.vouched) {
			k := key{op.Token, op.Kind}
			cands[k] = append(cands[k], i)
			if op.Status == history.Unknown && len(evs[k]) == 0 && s.firstVer <= 1 {
				a.absent = true
			}
		}
	}
	for k, vs := range evs {
		c := cands[k]
		if len(vs) == 1 && len(c) == 1 && s.ops[c[0]].Status == history.Unknown {
			s.ann[c[0]].pinned, s.ann[c[0]].ver = true, vs[0]
			s.claimedBy[vs[0]] = c[0]
			continue
		}
		for _, v := range vs[min(len(c), len(vs)):] {
			s.unexplained = append(s.unexplained, *s.ev[v])
		}
	}
	sort.Slice(s.unexplained, func(i, j int) bool { return s.unexplained[i].Version < s.unexplained[j].Version })
}

// indexAcked lists the versions the log holds that an ok write owns, with
// the earliest acknowledgement at or above each (for isStale).
func (s *sess) indexAcked() {
	for v := range s.claimedBy {
		s.ownedVers = append(s.ownedVers, v)
	}
	slices.Sort(s.ownedVers)
	s.ackedFrom = make([]int64, len(s.ownedVers))
	m := int64(history.Never)
	for k := len(s.ownedVers) - 1; k >= 0; k-- {
		m = min(m, s.ops[s.claimedBy[s.ownedVers[k]]].Return)
		s.ackedFrom[k] = m
	}
}

// isStale reports an observation of version v begun after a write the log
// holds above v was acknowledged: a read served by a node that had not yet
// seen that write (a demoted primary during a failover, for one).
func (s *sess) isStale(op *history.Op) bool {
	k, _ := slices.BinarySearch(s.ownedVers, op.Version+1)
	return k < len(s.ownedVers) && s.ackedFrom[k] < op.Call
}

// wasWritten reports whether the value and status a load saw were written
// by some save (and cas, for the status) that may have taken effect.
func (s *sess) wasWritten(load *history.Op) bool {
	if s.written == nil {
		s.written = map[string]bool{"": true}
		s.statuses = map[string]bool{"": true}
		for i := range s.ops {
			op := &s.ops[i]
			if op.Status == history.Fail {
				continue
			}
			switch op.Kind {
			case history.KindSave:
				s.written[op.In] = true
				s.statuses[op.SessionStatus] = true
			case history.KindCAS:
				_, to, _ := strings.Cut(op.In, ">")
				s.statuses[to] = true
			}
		}
	}
	return s.written[load.Out] && s.statuses[load.SessionStatus]
}

// beforeAuthor reports an observation of version v that returned before
// the write that the log says produced v was called: it saw another
// lineage's v.
func (s *sess) beforeAuthor(op *history.Op) bool {
	i, ok := s.claimedBy[op.Version]
	return ok && s.ops[i].Call > op.Return
}

func (s *sess) vouchLoad(op *history.Op) bool {
	v := op.Version
	if v == 0 || (s.firstVer > 1 && v < s.firstVer) {
		return true
	}
	if s.beforeAuthor(op) {
		return false
	}
	e := s.ev[v]
	if e == nil || e.Token != op.Token {
		return false
	}
	if st, ok := s.status[v]; ok && st != op.SessionStatus {
		return false
	}
	if v == s.final.State.Version && s.final.State.Value != op.Out {
		return false
	}
	return true
}

func (s *sess) vouchConflict(op *history.Op) bool {
	v := op.Version
	if s.firstVer > 1 && v < s.firstVer {
		return true
	}
	if s.ev[v] == nil || s.beforeAuthor(op) {
		return false
	}
	st, ok := s.status[v]
	return !ok || st == op.Out
}

func parseInt(s string) (int64, error) {
	var n int64
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' || n > (1<<62)/10 {
			return 0, fmt.Errorf("not a number: %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}
