package usage

import (
	"fmt"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
)

// Defaults applied by New to zero fields of Options.
const (
	DefaultPrefix              = "fencekit"
	DefaultEntryTTL            = 7 * 24 * time.Hour
	DefaultBudgetTTL           = 31 * 24 * time.Hour
	DefaultHoldTTL             = time.Minute
	DefaultMaxEntryBytes       = 64 << 10
	DefaultMaxSubAgentDepth    = 16
	DefaultMaxSubAgentSessions = 1000
	DefaultCallTimeout         = 5 * time.Second
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Prefix is the first part of every key. It must be the Prefix of the
	// lock.Locker (and statestore.Store) of the sessions: a fenced write
	// reads the lock record "<Prefix>:{<id>}:lock". Default: "fencekit".
	Prefix string

	// Relaxed accepts a write whose token is the newest issued for the
	// session even if its lease has ended (see statestore.Options.Relaxed).
	// Default: strict.
	Relaxed bool

	// AllowUnfenced lets Record and Delete run with the zero token, without
	// any fencing check. Default: false (the zero token gets
	// ErrInvalidArgument).
	AllowUnfenced bool

	// EntryTTL is how long a session's entries (and the entry ids that make
	// Record idempotent) live after its last Record. Negative: forever.
	// Default: 7 days.
	EntryTTL time.Duration

	// RollupTTL is how long a session's rollup and sub-agent links live
	// after its last Record; at least EntryTTL (a rollup must outlive the
	// entries it counts). Negative: forever (EntryTTL may still be
	// positive). Default: EntryTTL.
	RollupTTL time.Duration

	// BudgetTTL is how long a budget lives after its last write (SetBudget,
	// Reserve, Commit, Release, and for a session budget every Record), when
	// SetBudget does not say otherwise. Negative: forever. Default: 31 days.
	BudgetTTL time.Duration

	// HoldTTL is how long a reservation holds its amount unless committed
	// or released: a holder that dies gives its hold back after it.
	// Default: 1 minute.
	HoldTTL time.Duration

	// MaxEntryBytes bounds one entry as stored (JSON). Default: 64 KiB.
	MaxEntryBytes int

	// MaxSubAgentDepth bounds how many levels of sub-agents Rollup with
	// IncludeSubAgents follows (one round trip per level). Default: 16.
	MaxSubAgentDepth int

	// MaxSubAgentSessions bounds how many sessions Rollup with
	// IncludeSubAgents sums. Default: 1000.
	MaxSubAgentSessions int

	// CallTimeout bounds every round trip to Redis, whatever context the
	// caller gives. A call without a reply within it fails with an error
	// matching fencing.ErrNoReply; a write that fails so may or may not have
	// been applied (Record and the budget calls are safe to retry).
	// Default: 5s.
	CallTimeout time.Duration
}

// Validate reports the first invalid field as an error matching
// ErrInvalidArgument.
func (o Options) Validate() error {
	if o.Prefix != "" {
		if err := keys.ValidatePrefix(o.Prefix); err != nil {
			return fmt.Errorf("usage: %w: Prefix: %v", ErrInvalidArgument, err)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"EntryTTL", o.EntryTTL}, {"RollupTTL", o.RollupTTL}, {"BudgetTTL", o.BudgetTTL}} {
		if d.v > 0 && d.v < time.Millisecond {
			return fmt.Errorf("usage: %w: %s %v is shorter than 1ms", ErrInvalidArgument, d.name, d.v)
		}
	}
	switch {
	case o.HoldTTL < 0 || (o.HoldTTL > 0 && o.HoldTTL < time.Millisecond):
		return fmt.Errorf("usage: %w: HoldTTL %v (at least 1ms)", ErrInvalidArgument, o.HoldTTL)
	case o.MaxEntryBytes < 0:
		return fmt.Errorf("usage: %w: MaxEntryBytes %d is negative", ErrInvalidArgument, o.MaxEntryBytes)
	case o.MaxSubAgentDepth < 0:
		return fmt.Errorf("usage: %w: MaxSubAgentDepth %d is negative", ErrInvalidArgument, o.MaxSubAgentDepth)
	case o.MaxSubAgentSessions < 0:
		return fmt.Errorf("usage: %w: MaxSubAgentSessions %d is negative", ErrInvalidArgument, o.MaxSubAgentSessions)
	case o.CallTimeout < 0:
		return fmt.Errorf("usage: %w: CallTimeout %v is negative", ErrInvalidArgument, o.CallTimeout)
	}
	d := o.withDefaults()
	if d.EntryTTL < 0 && d.RollupTTL >= 0 || d.RollupTTL >= 0 && d.RollupTTL < d.EntryTTL {
		return fmt.Errorf("usage: %w: RollupTTL %v is shorter than EntryTTL %v", ErrInvalidArgument, d.RollupTTL, d.EntryTTL)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.EntryTTL == 0 {
		o.EntryTTL = DefaultEntryTTL
	}
	if o.RollupTTL == 0 {
		o.RollupTTL = o.EntryTTL
	}
	if o.BudgetTTL == 0 {
		o.BudgetTTL = DefaultBudgetTTL
	}
	if o.HoldTTL == 0 {
		o.HoldTTL = DefaultHoldTTL
	}
	if o.MaxEntryBytes == 0 {
		o.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if o.MaxSubAgentDepth == 0 {
		o.MaxSubAgentDepth = DefaultMaxSubAgentDepth
	}
	if o.MaxSubAgentSessions == 0 {
		o.MaxSubAgentSessions = DefaultMaxSubAgentSessions
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	return o
}

// ttlArg formats a TTL for a script: ms, "0" for none.
func ttlArg(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return fmt.Sprint(d.Milliseconds())
}
