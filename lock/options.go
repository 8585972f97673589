package lock

import (
	"errors"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/internal/leaseopt"
	"github.com/fencekit/fencekit/telemetry"
)

// Defaults applied by [New] to zero fields of [Options].
const (
	DefaultPrefix        = leaseopt.DefaultPrefix
	DefaultTTL           = leaseopt.DefaultTTL
	DefaultRetryInterval = leaseopt.DefaultRetryInterval
	DefaultFenceTTL      = leaseopt.DefaultFenceTTL
	DefaultReplicaWait   = leaseopt.DefaultReplicaWait
	DefaultCallTimeout   = leaseopt.DefaultCallTimeout
)

// MinTTL is the shortest lease [Options.Validate] accepts.
const MinTTL = leaseopt.MinTTL

// Options configures a [Locker]. The zero value is valid: every zero field
// takes the default named in its comment.
type Options struct {
	// Prefix is the first part of every key, "<Prefix>:{<name>}:lock".
	// It may not contain ':', '{', '}' or '|'. Default: "fencekit".
	Prefix string

	// TTL is the lease: how long a lock stays held without a refresh.
	// At least MinTTL, whole milliseconds. Default: 10s.
	TTL time.Duration

	// Owner names this process in lock records (shown by Inspect and the
	// fencekit CLI): printable ASCII without spaces, '|', '{' or '}'.
	// Default: "<hostname>-<pid>".
	Owner string

	// AutoRefresh starts a watchdog for every lock that extends the lease
	// every RefreshInterval until the lock is released or lost. Default: off.
	AutoRefresh bool

	// RefreshInterval is the watchdog's period; it must be shorter than TTL.
	// A failed renewal is retried every RefreshInterval/4 until the lease
	// runs out. Default: TTL/3.
	RefreshInterval time.Duration

	// RetryInterval bounds how long a waiter in Acquire sleeps between two
	// looks at the lock. Hand-offs are announced (directly to waiters of the
	// same Locker, by pub/sub to others), so this only matters when a notice
	// is lost; each sleep is drawn uniformly from [RetryInterval/2,
	// RetryInterval] and is cut short when the holder's lease ends sooner.
	// A waiter that stops polling for 4×RetryInterval loses its place in the
	// queue. Default: 100ms.
	RetryInterval time.Duration

	// FenceTTL is how long the fence counter of a name is kept after its
	// last acquisition. Tokens are time-seeded, so a lost counter does not
	// make them go backwards; the TTL only bounds memory. A negative value
	// keeps counters forever. Default: 24h.
	FenceTTL time.Duration

	// MinReplicas, when positive, makes every acquisition (and renewal)
	// wait with WAIT until that many replicas acknowledged it; fewer
	// acknowledgements within ReplicaTimeout give ErrNotReplicated (and an
	// acquisition is given back). A WAIT refused with an error reply (a
	// failover unblocks it with UNBLOCKED) counts as no acknowledgement.
	// A call can take up to twice ReplicaTimeout on a server that has not
	// cached fencekit's scripts yet: give contexts that much. Default: 0,
	// no waiting.
	MinReplicas int

	// ReplicaTimeout bounds the WAIT of MinReplicas. Default: 1s.
	ReplicaTimeout time.Duration

	// EventLog makes every grant, release, hand-off and lost lease of a
	// lock appear in the event log of the session of the same name,
	// "<Prefix>:{<name>}:events" (see statestore's Events and Watch), written
	// by the same script as the transition: lock_acquired, lock_released
	// and lock_lost (a lease that expired unreleased, logged when the next
	// lock script finds the lock free, before that script's own events).
	// [ForceRelease] logs lock_force_released. It costs two more commands
	// and one XADD per transition on the server. Use the same setting in
	// every Locker of a name. Default: off.
	EventLog bool

	// CallTimeout bounds every round trip to Redis, whatever context the
	// caller gives: a call that gets no reply within it (Redis down,
	// unreachable, paused) fails with an error matching
	// [fencing.ErrNoReply] that wraps the transport or timeout error.
	// TryAcquire, Refresh, Release and Inspect therefore return within
	// CallTimeout (plus the give-up described at TryAcquire); Acquire
	// returns when three looks in a row and CallTimeout went by without
	// any reply, even if its context would let it wait longer. Default:
	// TTL, but at least 2s (a slow reply is not an outage) and at most 5s
	// (a reply much later than the lease is of no use to a holder), plus
	// twice ReplicaTimeout with MinReplicas.
	CallTimeout time.Duration

	// Telemetry configures spans, metrics and logs (package telemetry).
	// Default: the global OpenTelemetry providers, no logs.
	Telemetry telemetry.Options

	// OnLost, if set, is called once when a lock is lost (its lease
	// expired by the holder's own clock, a renewal found it gone or taken,
	// or renewals kept failing until the lease ran out), including a loss
	// that Release discovers; not after a successful Release. It runs on the goroutine that noticed the loss and must
	// not block.
	OnLost func(l *Lock, err error)
}

// ErrInvalidOptions reports an invalid [Options] field; the message names it.
var ErrInvalidOptions = errors.New("lock: invalid options")

// Validate reports the first invalid field of o, as an error matching
// [ErrInvalidOptions]. Zero fields are valid (they take defaults).
func (o Options) Validate() error {
	if err := o.lease().Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return nil
}

// lease returns the fields o shares with the other lease options
// (package internal/leaseopt).
func (o Options) lease() leaseopt.Lease {
	return leaseopt.Lease{
		Prefix: o.Prefix, Owner: o.Owner, TTL: o.TTL, RefreshInterval: o.RefreshInterval,
		RetryInterval: o.RetryInterval, FenceTTL: o.FenceTTL, CallTimeout: o.CallTimeout,
		MinReplicas: o.MinReplicas, ReplicaTimeout: o.ReplicaTimeout,
	}
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	l := o.lease().WithDefaults(2 * time.Second)
	o.Prefix, o.Owner, o.TTL, o.RefreshInterval = l.Prefix, l.Owner, l.TTL, l.RefreshInterval
	o.RetryInterval, o.FenceTTL, o.CallTimeout = l.RetryInterval, l.FenceTTL, l.CallTimeout
	o.ReplicaTimeout = l.ReplicaTimeout
	return o
}
