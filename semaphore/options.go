package semaphore

import (
	"errors"
	"fmt"
	"time"

	"github.com/fencekit/fencekit/internal/leaseopt"
)

// Defaults applied by [New] to zero fields of [Options].
const (
	DefaultPrefix        = leaseopt.DefaultPrefix
	DefaultLimit         = 1
	DefaultTTL           = leaseopt.DefaultTTL
	DefaultRetryInterval = leaseopt.DefaultRetryInterval
	DefaultFenceTTL      = leaseopt.DefaultFenceTTL
	DefaultCallTimeout   = leaseopt.DefaultCallTimeout
	DefaultReplicaWait   = leaseopt.DefaultReplicaWait
)

// MinTTL is the shortest lease [Options.Validate] accepts.
const MinTTL = leaseopt.MinTTL

// Options configures a [Semaphore]. The zero value is valid: every zero
// field takes the default named in its comment.
type Options struct {
	// Prefix is the first part of every key, "<Prefix>:{<name>}:semh".
	// It may not contain ':', '{', '}' or '|'. Default: "fencekit".
	Prefix string
	// Limit is the number of permits of the name while none was stored
	// with [Semaphore.SetLimit]; a stored limit wins. Use the same Limit
	// in every process of a name, or store one. Default: 1.
	Limit int64
	// TTL is the lease of a permit set: how long permits stay held without
	// a refresh. A holder that dies frees its permits when it ends. At
	// least MinTTL, whole milliseconds. Default: 10s.
	TTL time.Duration
	// Owner names this process in holder records (shown by Inspect and the
	// fencekit CLI): printable ASCII without spaces, '|', '{' or '}'.
	// Default: "<hostname>-<pid>".
	Owner string
	// AutoRefresh starts a watchdog for every permit set that extends its
	// lease every RefreshInterval until it is released or lost.
	// Default: off.
	AutoRefresh bool
	// RefreshInterval is the watchdog's period; it must be shorter than
	// TTL. A failed renewal is retried every RefreshInterval/4 until the
	// lease runs out. Default: TTL/3.
	RefreshInterval time.Duration
	// RetryInterval bounds how long a waiter in Acquire sleeps between two
	// looks. Grants are announced, so this only matters when a notice is
	// lost; each sleep is drawn from [RetryInterval/2, RetryInterval] and
	// cut short when the soonest lease of a holder ends. A waiter that
	// stops polling for 4×RetryInterval loses its place. Default: 100ms.
	RetryInterval time.Duration
	// FenceTTL is how long the token counter and a stored limit of a name
	// are kept after the last grant. A negative value keeps them forever.
	// Default: 24h.
	FenceTTL time.Duration
	// CallTimeout bounds every round trip to Redis, whatever context the
	// caller gives: a call without a reply within it fails with an error
	// matching [fencing.ErrNoReply]. Default: TTL, but at least 1s and at
	// most 5s, plus twice ReplicaTimeout with MinReplicas.
	CallTimeout time.Duration
	// MinReplicas, when positive, makes every grant (and renewal) wait
	// with WAIT until that many replicas acknowledged it, as
	// lock.Options.MinReplicas does: fewer acknowledgements within
	// ReplicaTimeout give [ErrNotReplicated], and a grant is given back.
	// A WAIT refused with an error reply (a failover unblocks it with
	// UNBLOCKED) counts as no acknowledgement. Releases and limit changes
	// wait too, so that the grants they hand over are covered; a waiter
	// told of a grant by pub/sub looks again, so that WAIT covers it. A
	// call can take up to twice ReplicaTimeout on a server that has not
	// cached fencekit's scripts yet: give contexts that much. Default: 0,
	// no waiting.
	MinReplicas int
	// ReplicaTimeout bounds the WAIT of MinReplicas. Default: 1s.
	ReplicaTimeout time.Duration
	// OnLost, if set, is called once when a permit set is lost (not after
	// Release). It runs on the goroutine that noticed and must not block.
	OnLost func(p *Permits, err error)
}

// ErrInvalidOptions reports an invalid [Options] field; the message names it.
var ErrInvalidOptions = errors.New("semaphore: invalid options")

// Validate reports the first invalid field of o, as an error matching
// [ErrInvalidOptions]. Zero fields are valid (they take defaults).
func (o Options) Validate() error {
	if o.Limit < 0 {
		return fmt.Errorf("%w: Limit %d is negative", ErrInvalidOptions, o.Limit)
	}
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

func (o Options) withDefaults() Options {
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	l := o.lease().WithDefaults(time.Second)
	o.Prefix, o.Owner, o.TTL, o.RefreshInterval = l.Prefix, l.Owner, l.TTL, l.RefreshInterval
	o.RetryInterval, o.FenceTTL, o.CallTimeout = l.RetryInterval, l.FenceTTL, l.CallTimeout
	o.ReplicaTimeout = l.ReplicaTimeout
	return o
}
