package statestore

import (
	"fmt"
	"github.com/fencekit/fencekit/telemetry"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
)

// Defaults applied by New to zero fields of Options.
const (
	DefaultPrefix           = "fencekit"
	DefaultTTL              = 7 * 24 * time.Hour
	DefaultMaxDocumentBytes = 1 << 20
	DefaultMaxRetries       = 16
	DefaultCallTimeout      = 5 * time.Second
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Prefix is the first part of every key. It must be the Prefix of the
	// lock.Locker whose locks guard the sessions: a strict write reads the
	// lock record "<Prefix>:{<id>}:lock". Default: "fencekit".
	Prefix string

	// TTL is how long a session's keys live after its last write: at least
	// TTL and at most TTL + TTL/100, every key of the session to the same
	// millisecond, so no session half-expires. A write refreshes every key
	// only when the session's deadline falls outside that window (once per
	// TTL/100 of a busy session; the refresh was 5-8 µs of Redis CPU per
	// write) and otherwise gives its deadline to the keys it creates.
	// Negative: keys never expire. Default: 7 days.
	TTL time.Duration

	// Relaxed accepts a write when no newer token was issued for the
	// session's lock and none was accepted by the session, even if the
	// writer's lease has ended. The default (strict) also requires the lock
	// record to still carry the writer's token, so a writer whose lease
	// expired is refused before anyone else takes over.
	Relaxed bool

	// EventLog keeps a log of every state transition of each session
	// (a Redis stream "<Prefix>:{<id>}:events", appended by the same script
	// as the write; see the package documentation), which Store.Events and
	// Store.Watch read, and which the CLI's inspect command shows. It costs
	// Redis memory (a stream node per session: about 4.7 KB per session at
	// the default stream-node-max-bytes of 4096, more than a session with a
	// 1 KiB document holds) and Redis CPU (an XADD per write). Without it
	// Events and Watch return ErrEventLogOff. The lock events a Locker with
	// lock.Options.EventLog writes into the same stream are read through a
	// Store with EventLog too. Default: off (before issue 22 the log was
	// always kept).
	EventLog bool

	// Telemetry configures spans, metrics and logs of the store and of the
	// staging, checkpoint and stream packages built on it (package
	// telemetry). Default: the global OpenTelemetry providers, no logs.
	Telemetry telemetry.Options

	// MaxDocumentBytes bounds the state document (Data plus Output), each
	// message, each staged change and each checkpoint. Default: 1 MiB.
	MaxDocumentBytes int

	// MaxRetries bounds the attempts of Update on version conflicts.
	// Default: 16.
	MaxRetries int

	// CallTimeout bounds every round trip to Redis of the store and of the
	// staging, checkpoint and stream packages built on it, whatever
	// context the caller gives (a blocking read gets its block time on
	// top). A call that gets no reply within it (Redis down, unreachable,
	// paused) fails with an error matching fencing.ErrNoReply that wraps
	// the transport or timeout error; a write that fails so may or may
	// not have been applied. Default: 5s.
	CallTimeout time.Duration
}

// Validate reports the first invalid field as an error matching
// ErrInvalidArgument.
func (o Options) Validate() error {
	if o.Prefix != "" {
		if err := keys.ValidatePrefix(o.Prefix); err != nil {
			return fmt.Errorf("statestore: %w: Prefix: %v", ErrInvalidArgument, err)
		}
	}
	switch {
	case o.TTL > 0 && o.TTL < time.Millisecond:
		return fmt.Errorf("statestore: %w: TTL %v is shorter than 1ms", ErrInvalidArgument, o.TTL)
	case o.MaxDocumentBytes < 0:
		return fmt.Errorf("statestore: %w: MaxDocumentBytes %d is negative", ErrInvalidArgument, o.MaxDocumentBytes)
	case o.MaxRetries < 0:
		return fmt.Errorf("statestore: %w: MaxRetries %d is negative", ErrInvalidArgument, o.MaxRetries)
	case o.CallTimeout < 0:
		return fmt.Errorf("statestore: %w: CallTimeout %v is negative", ErrInvalidArgument, o.CallTimeout)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxDocumentBytes == 0 {
		o.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	return o
}
