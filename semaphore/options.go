package semaphore

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
)

// Defaults applied by [New] to zero fields of [Options].
const (
	DefaultPrefix        = "fencekit"
	DefaultLimit         = 1
	DefaultTTL           = 10 * time.Second
	DefaultRetryInterval = 100 * time.Millisecond
	DefaultFenceTTL      = 24 * time.Hour
	DefaultCallTimeout   = 5 * time.Second
	DefaultReplicaWait   = time.Second
)

// MinTTL is the shortest lease [Options.Validate] accepts.
const MinTTL = 10 * time.Millisecond

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
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	if o.Prefix != "" {
		if err := keys.ValidatePrefix(o.Prefix); err != nil {
			return bad("Prefix: %v", err)
		}
	}
	if o.Owner != "" {
		if err := keys.ValidateToken("owner", o.Owner); err != nil {
			return bad("Owner: %v", err)
		}
	}
	switch {
	case o.Limit < 0:
		return bad("Limit %d is negative", o.Limit)
	case o.TTL < 0:
		return bad("TTL %v is negative", o.TTL)
	case o.TTL != 0 && o.TTL < MinTTL:
		return bad("TTL %v is shorter than %v", o.TTL, MinTTL)
	case o.TTL%time.Millisecond != 0:
		return bad("TTL %v is not a whole number of milliseconds", o.TTL)
	case o.RefreshInterval < 0:
		return bad("RefreshInterval %v is negative", o.RefreshInterval)
	case o.RetryInterval < 0:
		return bad("RetryInterval %v is negative", o.RetryInterval)
	case o.RetryInterval != 0 && o.RetryInterval < time.Millisecond:
		return bad("RetryInterval %v is shorter than 1ms", o.RetryInterval)
	case o.FenceTTL > 0 && o.FenceTTL < time.Millisecond:
		return bad("FenceTTL %v is shorter than 1ms", o.FenceTTL)
	case o.MinReplicas < 0:
		return bad("MinReplicas %d is negative", o.MinReplicas)
	case o.ReplicaTimeout < 0:
		return bad("ReplicaTimeout %v is negative", o.ReplicaTimeout)
	case o.ReplicaTimeout != 0 && o.ReplicaTimeout < time.Millisecond:
		return bad("ReplicaTimeout %v is shorter than 1ms", o.ReplicaTimeout)
	case o.CallTimeout < 0:
		return bad("CallTimeout %v is negative", o.CallTimeout)
	case o.CallTimeout != 0 && o.CallTimeout < time.Millisecond:
		return bad("CallTimeout %v is shorter than 1ms", o.CallTimeout)
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if o.RefreshInterval >= ttl {
		return bad("RefreshInterval %v is not shorter than TTL %v", o.RefreshInterval, ttl)
	}
	if o.FenceTTL > 0 && o.FenceTTL < ttl {
		return bad("FenceTTL %v is shorter than TTL %v", o.FenceTTL, ttl)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Owner == "" {
		o.Owner = defaultOwner()
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = o.TTL / 3
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.FenceTTL == 0 {
		o.FenceTTL = max(DefaultFenceTTL, o.TTL)
	}
	if o.ReplicaTimeout == 0 {
		o.ReplicaTimeout = DefaultReplicaWait
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = min(max(o.TTL, time.Second), DefaultCallTimeout)
		if o.MinReplicas > 0 {
			o.CallTimeout += 2 * o.ReplicaTimeout
		}
	}
	return o
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || keys.ValidateToken("owner", host) != nil {
		host = "host"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
