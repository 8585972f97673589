package statestore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
)

// EventType names a state transition in a session's event log.
type EventType string

// The event types. Every fenced write that changes a session's version
// appends exactly one event, in the same script as the write, so the log
// and the state never disagree.
const (
	EventCreated    EventType = "created"    // Create or Save on no state; Fields: status, step
	EventSaved      EventType = "saved"      // Save, Update on an existing state; Fields: status, step
	EventStatus     EventType = "status"     // UpdateStatus, CompareAndSetStatus when set; Fields: from, status
	EventResumed    EventType = "resumed"    // IncrementResumeCount; Fields: resume_count
	EventStep       EventType = "step"       // IncrementStep; Fields: step
	EventMessages   EventType = "messages"   // AppendMessages; Fields: added, count
	EventStaged     EventType = "staged"     // staging: Stage; Fields: step, call
	EventPromoted   EventType = "promoted"   // staging: Promote; Fields: removed, fields
	EventDiscarded  EventType = "discarded"  // staging: Discard that dropped changes; Fields: step, removed
	EventCheckpoint EventType = "checkpoint" // checkpoint: Save; Fields: id, seq, step
	EventRestored   EventType = "restored"   // checkpoint: Restore; Fields: id, step, count
	EventPruned     EventType = "pruned"     // checkpoint: Prune that deleted some; Fields: removed, kept
)

// Lock events: transitions of the lock named like the session, logged by
// the lock's own scripts when the Locker has lock.Options.EventLog (and by
// lock.ForceRelease with ForceOptions.EventLog). They carry Version 0 (a
// lock transition produces no state version); Token is the token the
// event concerns and Fields["holder"] the holder "<owner>|<attempt>".
const (
	EventLockAcquired      EventType = "lock_acquired"       // a grant (also a hand-off); Fields: holder, ttl (ms)
	EventLockReleased      EventType = "lock_released"       // Release by the holder; Fields: holder
	EventLockLost          EventType = "lock_lost"           // the lease expired unreleased; Fields: holder, cause ("expired")
	EventLockForceReleased EventType = "lock_force_released" // lock.ForceRelease; Token is the new fence; Fields: holder, holder_tok, reason, by
)

// IsLock reports whether t is a lock event type.
func (t EventType) IsLock() bool { return strings.HasPrefix(string(t), "lock_") }

// Event is one entry of a session's event log.
type Event struct {
	Seq     string        // the stream entry id; pass it as after to read on
	Type    EventType     // what happened
	Version int64         // the state version the transition produced (0 for lock events)
	Token   fencing.Token // the token the write was accepted with
	// Incarnation is the incarnation of the session the write went to
	// (State.Incarnation; 0 for lock events and for sessions written
	// before incarnations existed).
	Incarnation int64
	Fields      map[string]string
	Time        time.Time // server time of the write (from Seq), millisecond precision
}

// Event log reads.
const (
	defaultEventCount = 100
	maxEventCount     = 10000
	watchBlock        = time.Second
)

// Events returns up to count events of session id's log after the
// sequence after ("" or "0": from the start), in order, and the sequence to
// pass as after next time (after itself when there are none). One round
// trip. count <= 0 means 100; at most 10,000.
//
// The log is bounded (about the newest 10,000 events are kept) and is
// deleted with the session by [Store.Delete]; a session created again
// starts a new log whose ids follow the deleted log's, so after an id of
// the deleted log Events returns the new log from its "created" event (see
// [Event.Incarnation] to tell the incarnations apart). An after that is
// not a stream id gets ErrInvalidArgument. A Store without
// Options.EventLog gets ErrEventLogOff (nothing is sent).
func (s *Store) Events(ctx context.Context, id, after string, count int) (_ []Event, _ string, err error) {
	ctx, sp := s.cfg.Obs.Start(ctx, opEvents, id, 0)
	defer sp.End(&err)
	if !s.opts.EventLog {
		return nil, after, fmt.Errorf("statestore: events %q: %w", id, ErrEventLogOff)
	}
	k, err := s.cfg.Keys(id)
	if err != nil {
		return nil, after, fmt.Errorf("statestore: %w", err)
	}
	start, err := nextSeq(after)
	if err != nil {
		return nil, after, err
	}
	if count <= 0 {
		count = defaultEventCount
	}
	count = min(count, maxEventCount)
	c := s.cfg.Client
	entries, err := c.Do(ctx, c.B().Xrange().Key(k.Events).Start(start).End("+").Count(int64(count)).Build()).AsXRange()
	if err != nil {
		return nil, after, fmt.Errorf("statestore: events %q: %w", id, err)
	}
	evs, err := decodeEvents(id, entries)
	if err != nil {
		return nil, after, err
	}
	next := after
	if len(evs) > 0 {
		next = evs[len(evs)-1].Seq
	}
	return evs, next, nil
}

// Watch follows session id's event log from after ("": from the start;
// "$": only events appended from now on), yielding each event in order,
// and stops when ctx is done (yielding nothing more) or at the first error
// (yielded once). It blocks on the server at most a second at a time and
// starts no goroutine. A Store without Options.EventLog yields
// ErrEventLogOff once (nothing is sent).
func (s *Store) Watch(ctx context.Context, id, after string) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if !s.opts.EventLog {
			yield(Event{}, fmt.Errorf("statestore: watch %q: %w", id, ErrEventLogOff))
			return
		}
		k, err := s.cfg.Keys(id)
		if err != nil {
			yield(Event{}, fmt.Errorf("statestore: %w", err))
			return
		}
		c := s.cfg.Client
		cur := after
		switch cur {
		case "", "0":
			cur = "0-0"
		case "$":
			last, err := c.Do(ctx, c.B().Xrevrange().Key(k.Events).End("+").Start("-").Count(1).Build()).AsXRange()
			if err != nil {
				if ctx.Err() == nil {
					yield(Event{}, fmt.Errorf("statestore: watch %q: %w", id, err))
				}
				return
			}
			cur = "0-0"
			if len(last) > 0 {
				cur = last[0].ID
			}
		default:
			if _, err := nextSeq(cur); err != nil {
				yield(Event{}, err)
				return
			}
		}
		for ctx.Err() == nil {
			res, err := c.Do(ctx, c.B().Xread().Count(defaultEventCount).Block(watchBlock.Milliseconds()).
				Streams().Key(k.Events).Id(cur).Build()).AsXRead()
			if rueidis.IsRedisNil(err) {
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				yield(Event{}, fmt.Errorf("statestore: watch %q: %w", id, err))
				return
			}
			evs, err := decodeEvents(id, res[k.Events])
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, ev := range evs {
				cur = ev.Seq
				if ctx.Err() != nil || !yield(ev, nil) {
					return
				}
			}
		}
	}
}

// nextSeq returns the smallest stream id after seq ("" or "0": "-"), so
// that XRANGE's start is exclusive on every server.
func nextSeq(seq string) (string, error) {
	if seq == "" || seq == "0" {
		return "-", nil
	}
	ms, n, err := parseSeq(seq)
	if err != nil {
		return "", err
	}
	if n == ^uint64(0) {
		return strconv.FormatUint(ms+1, 10) + "-0", nil
	}
	return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(n+1, 10), nil
}

var errBadSeq = errors.New("not an event sequence")

func parseSeq(seq string) (ms, n uint64, err error) {
	a, b, ok := strings.Cut(seq, "-")
	if ok {
		ms, err = strconv.ParseUint(a, 10, 64)
		if err == nil {
			n, err = strconv.ParseUint(b, 10, 64)
		}
	}
	if !ok || err != nil || ms == ^uint64(0) {
		return 0, 0, fmt.Errorf("statestore: %w: %w: %q", ErrInvalidArgument, errBadSeq, seq)
	}
	return ms, n, nil
}

func decodeEvents(id string, entries []rueidis.XRangeEntry) ([]Event, error) {
	evs := make([]Event, 0, len(entries))
	for _, e := range entries {
		ms, _, err := parseSeq(e.ID)
		if err != nil {
			return nil, fmt.Errorf("statestore: events %q: %w: entry id %q", id, ErrProtocol, e.ID)
		}
		ev := Event{Seq: e.ID, Time: time.UnixMilli(int64(ms)), Fields: map[string]string{}}
		for f, v := range e.FieldValues {
			switch f {
			case "type":
				ev.Type = EventType(v)
			case "v":
				ev.Version, err = strconv.ParseInt(v, 10, 64)
			case "tok":
				ev.Token, err = fencing.ParseToken(v)
			case "inc":
				ev.Incarnation, err = strconv.ParseInt(v, 10, 64)
				if err == nil && ev.Incarnation < 0 {
					err = errBadSeq
				}
			default:
				ev.Fields[f] = v
			}
			if err != nil {
				return nil, fmt.Errorf("statestore: events %q: %w: entry %s field %s", id, ErrCorrupt, e.ID, f)
			}
		}
		if ev.Type == "" || ev.Version < 0 || (ev.Version == 0) != ev.Type.IsLock() || !ev.Token.Valid() {
			return nil, fmt.Errorf("statestore: events %q: %w: entry %s", id, ErrCorrupt, e.ID)
		}
		evs = append(evs, ev)
	}
	return evs, nil
}
