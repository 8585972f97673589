package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/bounded"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/scripts/lua"
)

// ForceOptions configures [ForceRelease].
type ForceOptions struct {
	// Prefix is the key prefix of the lock; default [DefaultPrefix].
	Prefix string
	// Reason says why the lock is taken away: required, at most 512 bytes.
	// It is written to the event log (with EventLog).
	Reason string
	// By names who asked: at most 128 bytes; default "<user>@<host>".
	By string
	// EventLog logs lock_force_released (preceded by lock_lost when the
	// last grant had expired, followed by lock_acquired when a waiter
	// takes over) to the event log of the session of the same name, like
	// [Options.EventLog].
	EventLog bool
	// CallTimeout bounds the call's round trip to Redis, whatever context
	// the caller gives; no reply within it gives an error matching
	// [fencing.ErrNoReply] (the force release may or may not have
	// happened: look with Inspect). Default: [DefaultCallTimeout].
	CallTimeout time.Duration
	// FenceTTL is the fence counter's TTL, as [Options.FenceTTL]; default
	// [DefaultFenceTTL], negative for none. It only ever lengthens the
	// fence's retention: a fence without expiry (Lockers with a negative
	// FenceTTL) keeps none, and one with more time left keeps it.
	FenceTTL time.Duration
}

// ForceResult reports what [ForceRelease] did.
type ForceResult struct {
	// Released is true when a holder was removed; Owner and Token name it.
	Released bool
	Owner    string
	Token    fencing.Token
	// Fence is the token ForceRelease minted: the lock's fence is now at
	// least Fence, so every token issued before it (the removed holder's
	// among them) is refused as stale by every fenced write.
	Fence fencing.Token
	// Next is the owner of the longest-waiting live waiter, who was handed
	// the lock with token Fence, or "" when the lock was left free.
	Next string
}

// ErrNoReason is returned by [ForceRelease] without a reason.
var ErrNoReason = errors.New("lock: force release needs a reason")

// ForceRelease takes lock name away from whoever holds it, for operators
// (the fencekit CLI's force-release): in one script it mints a new token
// above every token issued for the name, writes it to the fence so that
// the removed holder is fenced out of every session write, and hands the
// lock to the longest-waiting live waiter with that token (announced like
// any hand-off) or leaves it free. It runs whether or not the lock is held,
// so it also fences out a holder whose lease already expired. It never
// shortens the fence's retention (see [ForceOptions.FenceTTL]).
//
// The removed holder learns of it at its next Refresh or fenced write (an
// ErrLockLost or a *fencing.StaleTokenError); its Context is not cancelled
// before that. ForceRelease is not idempotent: a second call mints another
// token and takes the lock from the waiter that received it.
//
// Errors: [ErrInvalidName], [ErrNoReason], [ErrInvalidOptions] for a bad
// Prefix, By or Reason, [ErrCorrupt], and Redis or context errors.
func ForceRelease(ctx context.Context, client rueidis.Client, name string, o ForceOptions) (ForceResult, error) {
	var res ForceResult
	if client == nil {
		return res, ErrNilClient
	}
	if err := keys.ValidateID(name); err != nil {
		return res, fmt.Errorf("lock: %w", err)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	} else if err := keys.ValidatePrefix(o.Prefix); err != nil {
		return res, fmt.Errorf("%w: Prefix: %v", ErrInvalidOptions, err)
	}
	switch {
	case o.Reason == "":
		return res, ErrNoReason
	case len(o.Reason) > 512:
		return res, fmt.Errorf("%w: Reason is longer than 512 bytes", ErrInvalidOptions)
	case len(o.By) > 128:
		return res, fmt.Errorf("%w: By is longer than 128 bytes", ErrInvalidOptions)
	case o.FenceTTL > 0 && o.FenceTTL < time.Millisecond:
		return res, fmt.Errorf("%w: FenceTTL %v is shorter than 1ms", ErrInvalidOptions, o.FenceTTL)
	case o.CallTimeout < 0:
		return res, fmt.Errorf("%w: CallTimeout %v is negative", ErrInvalidOptions, o.CallTimeout)
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	client = bounded.Wrap(client, o.CallTimeout)
	if o.By == "" {
		o.By = whoAmI()
	}
	fenceTTL := "0"
	switch {
	case o.FenceTTL == 0:
		fenceTTL = strconv.FormatInt(DefaultFenceTTL.Milliseconds(), 10)
	case o.FenceTTL > 0:
		fenceTTL = strconv.FormatInt(o.FenceTTL.Milliseconds(), 10)
	}
	mode := "P"
	if client.Mode() == rueidis.ClientModeCluster {
		mode = "S"
	}
	k := keys.ForLock(o.Prefix, name)
	keyv := []string{k.Lock, k.Fence, k.Queue, k.QueueInfo, k.Events, k.Grant, k.Inc}
	if !o.EventLog {
		keyv = keyv[:4]
	}
	arr, err := lua.ForceRelease.Exec(ctx, client, keyv, []string{fenceTTL, k.Wake, mode, o.Reason, o.By}).ToArray()
	if err != nil {
		return res, scriptError("force-release", name, err)
	}
	if len(arr) != 6 {
		return res, fmt.Errorf("%w: force_release.lua returned %d elements", ErrProtocol, len(arr))
	}
	status, err1 := arr[0].AsInt64()
	holder, err2 := arr[1].ToString()
	held, err3 := arr[2].ToString()
	fence, err4 := arr[3].ToString()
	next, err5 := arr[4].ToString()
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return res, fmt.Errorf("%w: force_release.lua: %v", ErrProtocol, err)
	}
	if res.Fence, err = fencing.ParseToken(fence); err != nil {
		return res, fmt.Errorf("%w: force_release.lua: %v", ErrProtocol, err)
	}
	if status == 1 {
		res.Released = true
		res.Owner, _, _ = cutHolder(holder)
		if res.Token, err = fencing.ParseToken(held); err != nil {
			return res, fmt.Errorf("%w: force_release.lua: %v", ErrProtocol, err)
		}
	}
	if next != "" {
		res.Next, _, _ = cutHolder(next)
	}
	return res, nil
}

// whoAmI returns "<user>@<host>" for ForceOptions.By.
func whoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}
