// Package leaseopt validates and completes the option fields that
// lock.Options and semaphore.Options share (a lease with a token, a
// watchdog, waiters that poll, WAIT for replicas, a bound on every call),
// so that the two read and behave alike.
package leaseopt

import (
	"fmt"
	"os"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
)

// Defaults of the shared fields (the packages export them under their own
// names).
const (
	DefaultPrefix        = "fencekit"
	DefaultTTL           = 10 * time.Second
	DefaultRetryInterval = 100 * time.Millisecond
	DefaultFenceTTL      = 24 * time.Hour
	DefaultReplicaWait   = time.Second
	DefaultCallTimeout   = 5 * time.Second
)

// MinTTL is the shortest lease Validate accepts.
const MinTTL = 10 * time.Millisecond

// Lease holds the shared fields; see lock.Options for what each means.
type Lease struct {
	Prefix          string
	Owner           string
	TTL             time.Duration
	RefreshInterval time.Duration
	RetryInterval   time.Duration
	FenceTTL        time.Duration
	CallTimeout     time.Duration
	MinReplicas     int
	ReplicaTimeout  time.Duration
}

// Validate reports the first invalid field of o, naming it; zero fields
// are valid (they take defaults). The caller wraps the error with its
// package's ErrInvalidOptions.
func (o Lease) Validate() error {
	bad := func(format string, args ...any) error { return fmt.Errorf(format, args...) }
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
	case o.MinReplicas < 0:
		return bad("MinReplicas %d is negative", o.MinReplicas)
	case o.ReplicaTimeout < 0:
		return bad("ReplicaTimeout %v is negative", o.ReplicaTimeout)
	case o.ReplicaTimeout != 0 && o.ReplicaTimeout < time.Millisecond:
		// WAIT takes whole milliseconds, and WAIT ... 0 waits forever.
		return bad("ReplicaTimeout %v is shorter than 1ms", o.ReplicaTimeout)
	case o.FenceTTL > 0 && o.FenceTTL < time.Millisecond:
		return bad("FenceTTL %v is shorter than 1ms", o.FenceTTL)
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

// WithDefaults returns o with every zero field set to its default. The
// default CallTimeout is TTL, but at least minCall and at most
// DefaultCallTimeout, plus twice ReplicaTimeout with MinReplicas.
func (o Lease) WithDefaults(minCall time.Duration) Lease {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Owner == "" {
		o.Owner = DefaultOwner()
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
		o.CallTimeout = min(max(o.TTL, minCall), DefaultCallTimeout)
		if o.MinReplicas > 0 {
			o.CallTimeout += 2 * o.ReplicaTimeout
		}
	}
	return o
}

// DefaultOwner is "<hostname>-<pid>" ("host-<pid>" when the host name
// cannot be used in a holder record).
func DefaultOwner() string {
	host, err := os.Hostname()
	if err != nil || keys.ValidateToken("owner", host) != nil {
		host = "host"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}
