package statestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/bounded"
	"github.com/fencekit/fencekit/internal/fenced"
	"github.com/fencekit/fencekit/internal/jsonv"
	"github.com/fencekit/fencekit/internal/obs"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Store keeps agent session state in Redis. Every method costs one round
// trip (Update: two per attempt), and every mutation is one Lua script that
// checks the writer's fencing token before it writes anything. A Store is
// safe for concurrent use.
type Store struct {
	cfg  fenced.Config
	opts Options
}

// New returns a Store on client. It returns an error matching
// ErrInvalidArgument for invalid options and for a nil client.
func New(client rueidis.Client, opts Options) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("statestore: %w: nil client", ErrInvalidArgument)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	s := &Store{opts: o, cfg: fenced.Config{
		Client: bounded.Wrap(client, o.CallTimeout), Prefix: o.Prefix, TTL: o.TTL, Relaxed: o.Relaxed, EventLog: o.EventLog, MaxDocBytes: o.MaxDocumentBytes,
		Obs: obs.New(o.Telemetry),
	}}
	s.cfg.Init()
	return s, nil
}

// Options returns the options in effect, defaults filled in.
func (s *Store) Options() Options { return s.opts }

// begin validates id and token and starts a fenced write.
func (s *Store) begin(id string, token fencing.Token, extra int) (fenced.Write, error) {
	_, w, err := s.cfg.Begin("statestore", id, token, extra)
	return w, err
}

// Create stores a new session with the state st, fenced by token, and
// returns its version (1). It returns ErrExists if the session exists.
// See Save for the other errors.
func (s *Store) Create(ctx context.Context, id string, token fencing.Token, st State) (version int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opCreate, id, token)
	defer sp.End(&err)
	return s.save(ctx, "create", id, token, &st, "0", "")
}

// Save stores st as the state of session id, creating the session if
// needed, and returns the new version. st.Version, when not 0, is the
// version the caller expects the stored state to have: if it has another,
// Save writes nothing and returns a [*ConflictError] (ErrNotFound if there
// is no session). With st.Version, st.Incarnation (when not 0, as Load
// fills it in) is the incarnation the caller expects: if the session was
// deleted and created again since, Save writes nothing and returns a
// [*ReplacedError] (matching ErrSessionReplaced and ErrConflict), whatever
// its version. The fields the store maintains (ResumeCount, counters,
// times, Incarnation) are kept.
//
// Every write of the session bumps its version, not only Save: a State
// loaded before AppendMessages, IncrementStep, a staged change or a
// checkpoint of the same session carries an older Version, and Save with it
// returns a *ConflictError. Set st.Version to the version the last write
// returned (Create, Save, UpdateStatus, Stage, Restore and Promote return
// it), Load again, or use [Store.Update], which reloads and retries.
//
// Like every write, Save checks token inside its script: a token older than
// one the session or its lock has seen gets a [*fencing.StaleTokenError];
// in strict mode, a token the lock record does not carry gets a
// [*NotHolderError] (matching [fencing.ErrNotHolder]). Invalid input gets
// ErrInvalidID, ErrInvalidDocument, ErrTooLarge or ErrInvalidArgument before
// anything is sent.
func (s *Store) Save(ctx context.Context, id string, token fencing.Token, st State) (version int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opSave, id, token)
	defer sp.End(&err)
	want, wantInc := "", ""
	if st.Version > 0 {
		want = strconv.FormatInt(st.Version, 10)
		if st.Incarnation > 0 {
			wantInc = strconv.FormatInt(st.Incarnation, 10)
		}
	}
	return s.save(ctx, "save", id, token, &st, want, wantInc)
}

func (s *Store) save(ctx context.Context, op, id string, token fencing.Token, st *State, want, wantInc string) (int64, error) {
	w, err := s.begin(id, token, 8)
	if err != nil {
		return 0, err
	}
	if err := st.Validate(s.opts.MaxDocumentBytes); err != nil {
		return 0, fmt.Errorf("statestore: %w", err)
	}
	w.Args = append(w.Args, want, st.AgentType, string(st.Status), strconv.FormatInt(st.Step, 10),
		string(st.Data), string(st.Output), st.Error, wantInc)
	arr, err := s.cfg.Exec(ctx, lua.StateSave, w)
	if err != nil {
		err = fenced.Error("statestore", op, id, err)
		var ce *ConflictError
		if errors.As(err, &ce) {
			ce.Expected = st.Version
		}
		return 0, err
	}
	return fenced.Int(arr, 0, "state_save.lua")
}

// Load returns the state of session id, or ErrNotFound.
func (s *Store) Load(ctx context.Context, id string) (_ State, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opLoad, id, 0)
	defer sp.End(&err)
	k, err := s.cfg.Keys(id)
	if err != nil {
		return State{}, fmt.Errorf("statestore: %w", err)
	}
	arr, err := lua.StateLoad.Exec(ctx, s.cfg.Client, []string{k.State, k.Msgs}, nil).ToArray()
	if err != nil {
		return State{}, fenced.Error("statestore", "load", id, err)
	}
	if len(arr) == 0 {
		return State{}, fmt.Errorf("statestore: load %q: %w", id, ErrNotFound)
	}
	st, err := decodeState(id, arr)
	if err != nil {
		return State{}, fmt.Errorf("statestore: load %q: %w", id, err)
	}
	return st, nil
}

// Delete removes every key of session id but its lock (the event log
// included), fenced by token, and reports whether there was a session;
// deleting twice is harmless. It keeps one small key (with the session TTL;
// none when Options.TTL is negative) so that a session created again under id is a new incarnation: its
// Incarnation, message and checkpoint cursors, event ids and stream
// positions all follow those of the deleted one, and positions of the
// deleted one are refused with ErrSessionReplaced (see the package
// documentation).
//
// Delete is not retried after a lost reply, because the retry could
// delete a session created again in between: a transport or context error
// after sending is returned wrapped in ErrOutcomeUnknown. See Save for the
// fencing errors.
func (s *Store) Delete(ctx context.Context, id string, token fencing.Token) (_ bool, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opDelete, id, token)
	defer sp.End(&err)
	w, err := s.begin(id, token, 0)
	if err != nil {
		return false, err
	}
	n, err := lua.StateDelete.Exec(ctx, s.cfg.Client, w.Keys, w.Args).AsInt64()
	if err != nil { // without a reply it matches ErrOutcomeUnknown (internal/bounded)
		return false, fenced.Error("statestore", "delete", id, err)
	}
	return n == 1, nil
}

// CASResult is the outcome of CompareAndSetStatus.
type CASResult struct {
	// OK reports whether the status was set.
	OK bool
	// Version is the new version when OK.
	Version int64
	// CurrentStatus and CurrentVersion describe the state that did not
	// match, when !OK.
	CurrentStatus  Status
	CurrentVersion int64
}

// UpdateStatus sets the status of session id, fenced by token, and returns
// the new version. It returns ErrNotFound without a session; see Save for
// the fencing errors.
func (s *Store) UpdateStatus(ctx context.Context, id string, token fencing.Token, next Status) (version int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opUpdateStatus, id, token)
	defer sp.End(&err)
	r, err := s.setStatus(ctx, "update status", id, token, nil, next)
	return r.Version, err
}

// CompareAndSetStatus sets the status of session id to next if it is one of
// expected, fenced by token, in one script. When the status is not one of
// expected nothing is written and the result says what it is; that is not
// an error. expected must not be empty (use UpdateStatus). It returns
// ErrNotFound without a session; see Save for the fencing errors.
func (s *Store) CompareAndSetStatus(ctx context.Context, id string, token fencing.Token, expected []Status, next Status) (_ CASResult, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opCompareAndSetStatus, id, token)
	defer sp.End(&err)
	if len(expected) == 0 {
		return CASResult{}, fmt.Errorf("statestore: %w: no expected status", ErrInvalidArgument)
	}
	return s.setStatus(ctx, "compare-and-set status", id, token, expected, next)
}

func (s *Store) setStatus(ctx context.Context, op, id string, token fencing.Token, expected []Status, next Status) (CASResult, error) {
	var r CASResult
	w, err := s.begin(id, token, 1+len(expected))
	if err != nil {
		return r, err
	}
	if !next.Valid() {
		return r, fmt.Errorf("statestore: %w: status %q", ErrInvalidDocument, next)
	}
	for _, st := range expected {
		if !st.Valid() {
			return r, fmt.Errorf("statestore: %w: status %q", ErrInvalidDocument, st)
		}
	}
	w.Args = append(w.Args, string(next))
	for _, st := range expected {
		w.Args = append(w.Args, string(st))
	}
	arr, err := s.cfg.Exec(ctx, lua.StateStatus, w)
	if err != nil {
		return r, fenced.Error("statestore", op, id, err)
	}
	ok, err := fenced.Int(arr, 0, "state_status.lua")
	if err != nil {
		return r, err
	}
	if ok == 1 {
		r.OK = true
		r.Version, err = fenced.Int(arr, 1, "state_status.lua")
		return r, err
	}
	cur, err := fenced.Str(arr, 1, "state_status.lua")
	if err != nil {
		return r, err
	}
	r.CurrentStatus = Status(cur)
	r.CurrentVersion, err = fenced.Int(arr, 2, "state_status.lua")
	return r, err
}

// IncrementResumeCount adds one to the resume count of session id, fenced
// by token, and returns the new count. It returns ErrNotFound without a
// session; see Save for the fencing errors.
func (s *Store) IncrementResumeCount(ctx context.Context, id string, token fencing.Token) (resumeCount int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opIncrementResumeCount, id, token)
	defer sp.End(&err)
	return s.incr(ctx, "increment resume count", id, token, "resume_count")
}

// IncrementStep adds one to the step count of session id, fenced by token,
// and returns the new count. It returns ErrNotFound without a session; see
// Save for the fencing errors.
func (s *Store) IncrementStep(ctx context.Context, id string, token fencing.Token) (step int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opIncrementStep, id, token)
	defer sp.End(&err)
	return s.incr(ctx, "increment step", id, token, "step")
}

func (s *Store) incr(ctx context.Context, op, id string, token fencing.Token, field string) (int64, error) {
	w, err := s.begin(id, token, 2)
	if err != nil {
		return 0, err
	}
	w.Args = append(w.Args, field, "1")
	arr, err := s.cfg.Exec(ctx, lua.StateIncr, w)
	if err != nil {
		return 0, fenced.Error("statestore", op, id, err)
	}
	return fenced.Int(arr, 0, "state_incr.lua")
}

// AppendMessages appends msgs (each a JSON document) to the messages of
// session id, fenced by token, and returns the number of messages after the
// append. It returns ErrNotFound without a session, ErrInvalidDocument for a
// message that is not JSON and ErrTooLarge for one above
// Options.MaxDocumentBytes (nothing is appended then); see Save for the
// fencing errors.
func (s *Store) AppendMessages(ctx context.Context, id string, token fencing.Token, msgs ...json.RawMessage) (messageCount int64, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opAppendMessages, id, token)
	defer sp.End(&err)
	if len(msgs) == 0 {
		return 0, fmt.Errorf("statestore: %w: no messages", ErrInvalidArgument)
	}
	w, err := s.begin(id, token, len(msgs))
	if err != nil {
		return 0, err
	}
	for i, m := range msgs {
		if len(m) > s.opts.MaxDocumentBytes {
			return 0, fmt.Errorf("statestore: %w: message %d of %d bytes (max %d)", ErrTooLarge, i, len(m), s.opts.MaxDocumentBytes)
		}
		if !jsonv.Valid(m) {
			return 0, fmt.Errorf("statestore: %w: message %d is not valid JSON", ErrInvalidDocument, i)
		}
		w.Args = append(w.Args, string(m))
	}
	arr, err := s.cfg.Exec(ctx, lua.MsgsAppend, w)
	if err != nil {
		return 0, fenced.Error("statestore", "append messages", id, err)
	}
	return fenced.Int(arr, 0, "msgs_append.lua")
}

// MaxPageSize is the largest page Messages returns.
const MaxPageSize = 1000

// Page is one page of messages.
type Page struct {
	Messages []json.RawMessage
	// Next is the cursor of the following page; pass it to Messages.
	Next string
	// HasMore reports whether messages follow this page (at the time it was read).
	HasMore bool
	// Total is the number of messages of the session.
	Total int64
}

// Messages returns up to limit messages of session id (1..MaxPageSize),
// starting at cursor ("" for the first message), in one round trip.
// Cursors are exclusive positions: messages appended while a caller pages
// appear on later pages, and no message is skipped or repeated. A cursor
// from another session, a malformed one, or one issued before a checkpoint
// restore rewrote the messages gets ErrInvalidCursor; one issued before
// the session was deleted and created again gets a [*ReplacedError]
// (matching ErrSessionReplaced and ErrInvalidCursor); no session gets
// ErrNotFound.
func (s *Store) Messages(ctx context.Context, id, cursor string, limit int) (_ Page, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opMessages, id, 0)
	defer sp.End(&err)
	var p Page
	k, err := s.cfg.Keys(id)
	if err != nil {
		return p, fmt.Errorf("statestore: %w", err)
	}
	if limit < 1 || limit > MaxPageSize {
		return p, fmt.Errorf("statestore: %w: limit %d (1..%d)", ErrInvalidArgument, limit, MaxPageSize)
	}
	inc, epoch, start := "", "", int64(0)
	if cursor != "" {
		c, err := decodeCursor(id, cursor)
		if err != nil {
			return p, fmt.Errorf("statestore: messages %q: %w", id, err)
		}
		inc, epoch, start = strconv.FormatInt(c.inc, 10), strconv.FormatInt(c.epoch, 10), c.index
	}
	arr, err := lua.MsgsPage.Exec(ctx, s.cfg.Client, []string{k.State, k.Msgs},
		[]string{inc, epoch, strconv.FormatInt(start, 10), strconv.Itoa(limit)}).ToArray()
	if err != nil {
		return p, fenced.ReadError("statestore", "messages", id, err)
	}
	var c msgCursor
	for i, f := range []*int64{&c.inc, &c.epoch} {
		str, err := fenced.Str(arr, i, "msgs_page.lua")
		if err != nil {
			return p, err
		}
		if *f, err = parseCount(str); err != nil {
			return p, fmt.Errorf("statestore: messages %q: %w: incarnation or message epoch %q", id, ErrCorrupt, str)
		}
	}
	if p.Total, err = fenced.Int(arr, 2, "msgs_page.lua"); err != nil {
		return p, err
	}
	items := arr[3:]
	if len(items) > limit {
		p.HasMore = true
		items = items[:limit]
	}
	p.Messages = make([]json.RawMessage, len(items))
	for i := range items {
		m, err := items[i].ToString()
		if err != nil {
			return p, fmt.Errorf("%w: msgs_page.lua: message %d: %v", ErrProtocol, i, err)
		}
		p.Messages[i] = json.RawMessage(m)
	}
	c.index = start + int64(len(items))
	p.Next = encodeCursor(id, c)
	return p, nil
}

// Update runs fn on the current state of session id and saves the result if
// the state did not change in between, retrying on conflicts (in the style
// of etcd's STM) up to Options.MaxRetries times with a short jittered pause.
// fn may run several times and must not have other side effects; an error
// from fn aborts Update and is returned as is. It returns the state as
// saved. ErrNotFound without a session; see Save for the other errors.
func (s *Store) Update(ctx context.Context, id string, token fencing.Token, fn func(*State) error) (_ State, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opUpdate, id, token)
	defer sp.End(&err)
	var last error
	for attempt := range s.opts.MaxRetries {
		st, err := s.Load(ctx, id)
		if err != nil {
			return State{}, err
		}
		loaded, inc := st.Version, st.Incarnation
		if err := fn(&st); err != nil {
			return State{}, err
		}
		st.Version, st.Incarnation = loaded, inc
		// The incarnation guards against a session deleted and created
		// again that reached the loaded version once more.
		v, err := s.save(ctx, "update", id, token, &st, strconv.FormatInt(loaded, 10), strconv.FormatInt(inc, 10))
		if err == nil {
			st.Version = v
			st.Fence = token
			return st, nil
		}
		if !errors.Is(err, ErrConflict) {
			return State{}, err
		}
		if log := s.cfg.Obs.Logger(ctx, slog.LevelDebug); log != nil {
			log.LogAttrs(ctx, slog.LevelDebug, "fencekit: update retried after a conflict",
				slog.String("session", id), slog.Int("attempt", attempt+1), slog.String("error", err.Error()))
		}
		last = err
		pause := time.Duration(rand.N(1+attempt)) * time.Millisecond
		select {
		case <-ctx.Done():
			return State{}, errors.Join(last, ctx.Err())
		case <-time.After(pause):
		}
	}
	return State{}, last
}
