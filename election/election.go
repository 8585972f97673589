package election

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/bounded"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/scripts/lua"
)

var (
	// ErrNotLeader reports a Proclaim by a leader whose term has ended: the
	// lock of the election no longer carries its term. It matches
	// [fencing.ErrNotHolder] (or [fencing.ErrStaleToken] when a newer
	// term exists), and so [fencing.ErrFenced].
	ErrNotLeader = errors.New("election: not the leader")

	// ErrNilClient is returned by New for a nil client.
	ErrNilClient = errors.New("election: nil client")

	// ErrInvalidName reports a name that cannot be used in a key (the same
	// value as lock.ErrInvalidName).
	ErrInvalidName = fencing.ErrInvalidID

	// ErrCorrupt reports an election key holding data fencekit did not write.
	ErrCorrupt = fencing.ErrCorrupt

	// ErrProtocol reports a script reply of an unexpected shape.
	ErrProtocol = fencing.ErrProtocol
)

// Options configures an [Election].
type Options struct {
	// Lock configures the lock the leader holds (see lock.Options: Prefix,
	// TTL, Owner, RetryInterval, CallTimeout, MinReplicas, ...). AutoRefresh
	// and EventLog are always on: the watchdog keeps the leadership, and the
	// lock's event log is the election's history. Default: lock's defaults.
	Lock lock.Options
}

// Election is one election, named like the lock its leader holds. It is
// safe for concurrent use.
type Election struct {
	name   string
	locker *lock.Locker
	client rueidis.Client
	opts   lock.Options
	lk     keys.Lock
	ek     keys.Election
}

// New returns the election name on client (which it does not close). It
// returns [ErrNilClient] for a nil client, an error matching
// [ErrInvalidName] for a bad name, and one matching lock.ErrInvalidOptions
// for invalid options.
func New(client rueidis.Client, name string, opts Options) (*Election, error) {
	if client == nil {
		return nil, ErrNilClient
	}
	if err := keys.ValidateID(name); err != nil {
		return nil, fmt.Errorf("election: %w", err)
	}
	lo := opts.Lock
	lo.AutoRefresh, lo.EventLog = true, true
	locker, err := lock.New(client, lo)
	if err != nil {
		return nil, err
	}
	o := locker.Options()
	return &Election{
		name:   name,
		locker: locker,
		client: bounded.Wrap(client, o.CallTimeout),
		opts:   o,
		lk:     keys.ForLock(o.Prefix, name),
		ek:     keys.ForElection(o.Prefix, name),
	}, nil
}

// Name returns the election's name.
func (e *Election) Name() string { return e.name }

// Locker returns the Locker whose lock the leader holds.
func (e *Election) Locker() *lock.Locker { return e.locker }

// Close closes the election's Locker: pending Campaigns return
// lock.ErrClosed. Leaderships already won keep going until resigned or
// lost. Close is idempotent and nil-safe.
func (e *Election) Close() error {
	if e == nil {
		return nil
	}
	return e.locker.Close()
}

// Campaign waits until this process leads the election (as long as ctx
// allows), proclaims value, and returns the Leadership. Candidates are
// served in arrival order; when the leader resigns, its lock is handed to
// the next candidate inside the same script. The leadership's term is a
// fencing token larger than every earlier term.
//
// It returns the errors of lock.Locker.Acquire (errors.Join of
// lock.ErrNotAcquired with ctx.Err() when ctx ends first,
// [fencing.ErrNoReply], lock.ErrClosed) and those of Proclaim; when the
// proclamation fails, the leadership is resigned before Campaign returns.
func (e *Election) Campaign(ctx context.Context, value string) (*Leadership, error) {
	lk, err := e.locker.Acquire(ctx, e.name)
	if err != nil {
		return nil, fmt.Errorf("election: campaign %q: %w", e.name, err)
	}
	l := &Leadership{e: e, lk: lk}
	if err := l.Proclaim(ctx, value); err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.CallTimeout)
		defer cancel()
		_ = lk.Release(rctx)
		return nil, err
	}
	return l, nil
}

// Leadership is a won election: the lock of the election name with its
// token as the term. It ends when resigned or when the lease is lost.
type Leadership struct {
	e  *Election
	lk *lock.Lock

	mu    sync.Mutex
	value string
}

// Term returns the leader's term, a fencing token: pass it to every write
// the leader makes (statestore, fencing.Guard, fencing.ExecFenced).
func (l *Leadership) Term() fencing.Token { return l.lk.Token() }

// Lock returns the lock held by the leader.
func (l *Leadership) Lock() *lock.Lock { return l.lk }

// Context returns a context cancelled when the leadership ends, with the
// lock's error as its cause.
func (l *Leadership) Context() context.Context { return l.lk.Context() }

// Done returns a channel closed when the leadership ends.
func (l *Leadership) Done() <-chan struct{} { return l.lk.Done() }

// Err returns nil while the leadership lasts, lock.ErrReleased after
// Resign, and a *lock.LostError (matching lock.ErrLockLost and
// [fencing.ErrNotHolder]) once it was lost.
func (l *Leadership) Err() error { return l.lk.Err() }

// Value returns the value last proclaimed.
func (l *Leadership) Value() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.value
}

// Proclaim sets the leader's value without an election, in one round
// trip fenced by the term: it is written (and logged for Observe) only
// while the lock carries this term. It returns an error matching
// [ErrNotLeader] and [fencing.ErrFenced] when the leadership has ended
// (the lease is then ended locally too), [fencing.ErrWriteRefused] when
// the server does not take writes, [fencing.ErrNoReply] without a reply,
// and Redis or context errors.
func (l *Leadership) Proclaim(ctx context.Context, value string) error {
	if err := l.lk.Err(); err != nil {
		return fmt.Errorf("election: proclaim %q: %w: %w (%w)", l.e.name, ErrNotLeader, fencing.ErrNotHolder, err)
	}
	e := l.e
	keep := e.opts.FenceTTL
	if keep <= 0 {
		keep = 24 * time.Hour
	}
	_, err := lua.ElectProclaim.Exec(ctx, e.client, []string{e.lk.Lock, e.ek.Value, e.lk.Events},
		[]string{l.Term().String(), value, strconv.FormatInt(keep.Milliseconds(), 10)}).ToArray()
	if err != nil {
		return e.scriptError("proclaim", err)
	}
	l.mu.Lock()
	l.value = value
	l.mu.Unlock()
	return nil
}

// Resign gives up the leadership (lock.Lock.Release) and hands it to the
// next candidate. It returns the errors of Release: nil when the
// leadership lasted until then, a *lock.LostError when it had ended.
func (l *Leadership) Resign(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.lk.Release(ctx)
}

func (e *Election) scriptError(op string, err error) error {
	if code, detail, ok := scripterr.Parse(err); ok {
		switch code {
		case scripterr.NotHolder:
			return fmt.Errorf("election: %s %q: %w: %w (%s)", op, e.name, ErrNotLeader, fencing.ErrNotHolder, detail)
		case scripterr.Stale:
			return fmt.Errorf("election: %s %q: %w: %w (%s)", op, e.name, ErrNotLeader, fencing.ErrStaleToken, detail)
		case scripterr.Corrupt:
			return fmt.Errorf("%w: election %q: %s", ErrCorrupt, e.name, detail)
		}
	}
	if scripterr.IsRefused(err) {
		err = scripterr.Refused(err)
	}
	return fmt.Errorf("election: %s %q: %w", op, e.name, err)
}

// Leader is the state of an election at one moment.
type Leader struct {
	// Held is false when nobody leads; Term then names the last term
	// that ended, if an event said so.
	Held  bool
	Owner string        // the leader's lock.Options.Owner
	Term  fencing.Token // the leader's term
	// Value is the leader's proclaimed value ("" until it proclaimed:
	// Campaign proclaims before it returns).
	Value string
	// TTL is the lease left on the server (Leader only; 0 from Observe).
	TTL time.Duration
	// Change says what made this state: "" for the state read when
	// observing began (or by Leader), then "elected", "proclaimed",
	// "resigned", "expired" or "forced" (lock.ForceRelease).
	Change string
	// Seq is the id of the event log entry this state follows ("" when
	// the log was empty); ObserveAfter resumes after it.
	Seq string
}

// Leader reads the current leader, its term and value in one round trip.
// It returns Held false when nobody leads, an error matching [ErrCorrupt]
// for data fencekit did not write, [fencing.ErrNoReply] without a reply,
// and Redis or context errors.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	arr, err := lua.ElectLeader.Exec(ctx, e.client, []string{e.lk.Lock, e.ek.Value, e.lk.Events}, nil).ToArray()
	if err != nil {
		return Leader{}, e.scriptError("leader", err)
	}
	if len(arr) != 4 {
		return Leader{}, fmt.Errorf("%w: elect_leader.lua returned %d elements", ErrProtocol, len(arr))
	}
	rec, err1 := arr[0].ToString()
	pttl, err2 := arr[1].AsInt64()
	val, err3 := arr[2].ToString()
	seq, err4 := arr[3].ToString()
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Leader{}, fmt.Errorf("%w: elect_leader.lua: %v", ErrProtocol, err)
	}
	ld := Leader{Seq: seq}
	if rec == "" {
		return ld, nil
	}
	r, err := lock.ParseRecord(rec)
	if err != nil {
		return ld, fmt.Errorf("%w: election %q: %v", ErrCorrupt, e.name, err)
	}
	ld.Held, ld.Owner, ld.Term, ld.TTL = true, r.Owner, r.Token, time.Duration(pttl)*time.Millisecond
	if t, v, ok := strings.Cut(val, "|"); ok && t == r.Token.String() {
		ld.Value = v
	}
	return ld, nil
}

// watchBlock bounds each blocking read of Observe on the server.
const watchBlock = time.Second

// Observe yields the current leader, then every change of leader, term or
// value in the order it happened, until ctx ends (then it yields nothing
// more) or a read fails (the error is yielded once; resume with
// ObserveAfter from the last Seq). Changes come from the election's event
// log, written by the same scripts as the changes, so none is missed
// while the log keeps it (about the newest 10000 events). A leader whose
// lease ran out unreleased shows up as "expired" only when the next
// candidate finds the lock free, just before its "elected".
func (e *Election) Observe(ctx context.Context) iter.Seq2[Leader, error] {
	return func(yield func(Leader, error) bool) {
		ld, err := e.Leader(ctx)
		if err != nil {
			if ctx.Err() == nil {
				yield(Leader{}, err)
			}
			return
		}
		if !yield(ld, nil) {
			return
		}
		e.follow(ctx, ld, yield)
	}
}

// ObserveAfter yields every change logged after seq (a Leader.Seq), as
// Observe does after its first state.
func (e *Election) ObserveAfter(ctx context.Context, seq string) iter.Seq2[Leader, error] {
	return func(yield func(Leader, error) bool) {
		e.follow(ctx, Leader{Seq: seq}, yield)
	}
}

func (e *Election) follow(ctx context.Context, cur Leader, yield func(Leader, error) bool) {
	c := e.client
	pos := cur.Seq
	if pos == "" {
		pos = "0-0"
	}
	for ctx.Err() == nil {
		res, err := c.Do(ctx, c.B().Xread().Count(100).Block(watchBlock.Milliseconds()).
			Streams().Key(e.lk.Events).Id(pos).Build()).AsXRead()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				yield(Leader{}, e.scriptError("observe", err))
			}
			return
		}
		for _, ent := range res[e.lk.Events] {
			pos = ent.ID
			next, ok := apply(cur, ent)
			if !ok {
				continue
			}
			cur = next
			if ctx.Err() != nil || !yield(cur, nil) {
				return
			}
		}
	}
}

// apply returns the state after event ent, and false for events that do
// not concern the leadership (a session's own events share the log).
func apply(cur Leader, ent rueidis.XRangeEntry) (Leader, bool) {
	f := ent.FieldValues
	tok, err := fencing.ParseToken(f["tok"])
	if err != nil {
		return cur, false
	}
	owner := f["holder"]
	if i := strings.LastIndexByte(owner, '|'); i >= 0 {
		owner = owner[:i]
	}
	next := Leader{Seq: ent.ID, Term: tok}
	switch f["type"] {
	case "lock_acquired":
		next.Held, next.Owner, next.Change = true, owner, "elected"
	case "lock_proclaimed":
		next.Held, next.Owner, next.Value, next.Change = true, owner, f["value"], "proclaimed"
	case "lock_released":
		next.Owner, next.Change = owner, "resigned"
	case "lock_lost":
		next.Owner, next.Change = owner, "expired"
	case "lock_force_released":
		next.Change = "forced"
		if h := f["holder"]; h != "" {
			next.Owner = owner
		}
	default:
		return cur, false
	}
	return next, true
}
