// Package fenced holds what the session stores (statestore, staging,
// checkpoint, stream) share: their configuration, the keys and arguments of
// a fenced write, the sentinel errors, and the translation of script error
// replies into those errors.
//
// Every fenced script takes KEYS = [lock, fence, state, msgs, stage, cps,
// cpd, events, out, outmeta, inc] (the first two of the lock named after
// the session) and
// ARGV = [token, mode, ttl, ...]; see scripts/lua/lib_fence.lua.
package fenced

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/obs"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Sentinel errors of the session stores: those of package fencing, under
// the names the internal code uses; the public packages re-export them.
var (
	ErrNotFound        = fencing.ErrNotFound
	ErrExists          = fencing.ErrExists
	ErrConflict        = fencing.ErrConflict
	ErrTooLarge        = fencing.ErrTooLarge
	ErrInvalidDocument = fencing.ErrInvalidDocument
	ErrInvalidCursor   = fencing.ErrInvalidCursor
	ErrInvalidArgument = fencing.ErrInvalidArgument
	ErrSessionReplaced = fencing.ErrSessionReplaced
	ErrOutcomeUnknown  = fencing.ErrNoReply
)

// Constructors of the detailed errors ConflictError and ReplacedError,
// whose types belong to package statestore (public, so that go doc shows
// their fields): statestore sets them in its init, since fenced, which it
// imports, cannot import it. Every package that uses fenced takes a
// *statestore.Store, so they are set before any call.
var (
	// NewConflictError returns a *statestore.ConflictError.
	NewConflictError func(id string, expected, current int64) error
	// NewReplacedError returns a *statestore.ReplacedError.
	NewReplacedError func(id, what string, current int64, also error) error
	// StoreConfig returns the Config of a *statestore.Store for staging,
	// checkpoint and stream (an exported method would put this internal
	// type into statestore's API).
	StoreConfig func(store any) *Config
)

// Config is the configuration every session store of one deployment shares.
type Config struct {
	Client      rueidis.Client
	Prefix      string
	TTL         time.Duration // <= 0: no expiry
	Relaxed     bool
	EventLog    bool // keep the session event log (statestore.Options.EventLog)
	MaxDocBytes int
	Obs         *obs.T // telemetry; nil: none

	ttlArg  string
	modeArg string
}

// Init fills the derived fields; call it once after setting the others.
func (c *Config) Init() {
	c.ttlArg = "0"
	if c.TTL > 0 {
		c.ttlArg = strconv.FormatInt(c.TTL.Milliseconds(), 10)
	}
	c.modeArg = "S"
	if c.Relaxed {
		c.modeArg = "R"
	}
	if !c.EventLog {
		c.modeArg += "Q" // see lib_fence.lua: no event log
	}
}

// Keys validates id and returns its keys. The error matches
// keys.ErrInvalidID.
func (c *Config) Keys(id string) (keys.Session, error) {
	if err := keys.ValidateID(id); err != nil {
		return keys.Session{}, err
	}
	return keys.ForSession(c.Prefix, id), nil
}

// Write is the KEYS and first ARGV of a fenced write.
type Write struct {
	Keys []string
	Args []string
}

// NewWrite starts the KEYS and ARGV of a fenced write on session k with
// token; extra reserves room for the operation's own arguments.
func (c *Config) NewWrite(k *keys.Session, token fencing.Token, extra int) Write {
	w := Write{
		Keys: []string{k.Lock, k.Fence, k.State, k.Msgs, k.Stage, k.Cps, k.Cpd, k.Events, k.Out, k.OutMeta, k.Inc},
		Args: make([]string, 3, 3+extra),
	}
	w.Args[0], w.Args[1], w.Args[2] = token.String(), c.modeArg, c.ttlArg
	return w
}

// Begin validates id and token and starts a fenced write on session id; its
// errors are prefixed with "<pkg>: ".
func (c *Config) Begin(pkg, id string, token fencing.Token, extra int) (keys.Session, Write, error) {
	k, err := c.Keys(id)
	if err != nil {
		return k, Write{}, fmt.Errorf("%s: %w", pkg, err)
	}
	if err := CheckToken(token); err != nil {
		return k, Write{}, fmt.Errorf("%s: %w", pkg, err)
	}
	return k, c.NewWrite(&k, token, extra), nil
}

// CheckToken rejects the zero token before anything is sent.
func CheckToken(token fencing.Token) error {
	if !token.Valid() {
		return fmt.Errorf("%w: %w: token %d", ErrInvalidArgument, fencing.ErrInvalidToken, token)
	}
	return nil
}

// Exec runs a script and returns its reply as an array.
func (c *Config) Exec(ctx context.Context, s *lua.Script, w Write) ([]rueidis.RedisMessage, error) {
	return s.Exec(ctx, c.Client, w.Keys, w.Args).ToArray()
}

// opError prefixes an error with "<pkg>: <op> <id>: ". Unlike fmt.Errorf it
// renders the wrapped error when asked, so details filled in after wrapping
// (statestore.ConflictError.Expected) show in the message.
type opError struct {
	prefix string
	err    error
}

func (e *opError) Error() string { return e.prefix + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// Wrap prefixes err with "<pkg>: <op> <id>: ", rendering err's message when
// the result's is asked for.
func Wrap(pkg, op, id string, err error) error {
	return &opError{prefix: fmt.Sprintf("%s: %s %q: ", pkg, op, id), err: err}
}

// Error turns the error of a script run for session id into the package's
// errors, prefixed with "<pkg>: <op> <id>". Transport and context errors are
// wrapped unchanged. A FENCEKIT_REPLACED reply becomes a *statestore.ReplacedError
// that also matches ErrConflict (see ReadError for reads at a position).
func Error(pkg, op, id string, err error) error {
	return scriptError(pkg, op, id, err, true)
}

// ReadError is Error for a script that reads at a position: a
// FENCEKIT_REPLACED reply also matches ErrInvalidCursor.
func ReadError(pkg, op, id string, err error) error {
	return scriptError(pkg, op, id, err, false)
}

func scriptError(pkg, op, id string, err error, write bool) error {
	if err == nil {
		return nil
	}
	code, detail, ok := scripterr.Parse(err)
	if !ok {
		if scripterr.IsRefused(err) {
			err = scripterr.Refused(err)
		}
		return Wrap(pkg, op, id, err)
	}
	var e error
	a, b, _ := strings.Cut(detail, " ")
	switch code {
	case scripterr.Stale:
		p, err1 := fencing.ParseToken(a)
		h, err2 := fencing.ParseToken(b)
		if err1 != nil || err2 != nil {
			e = fmt.Errorf("%w: %s", scripterr.ErrProtocol, err)
			break
		}
		e = &fencing.StaleTokenError{Resource: id, Presented: p, Highest: h}
	case scripterr.NotHolder:
		p, _ := fencing.ParseToken(a)
		var h fencing.Token
		if b != "" {
			h, _ = fencing.ParseToken(b)
		}
		e = &fencing.NotHolderError{ID: id, Presented: p, Holder: h}
	case scripterr.Conflict:
		cur, _ := strconv.ParseInt(a, 10, 64)
		e = NewConflictError(id, -1, cur)
	case scripterr.Exists:
		e = fmt.Errorf("%w: session %q", ErrExists, id)
	case scripterr.NotFound:
		e = fmt.Errorf("%w: %s of session %q", ErrNotFound, detail, id)
	case scripterr.Cursor:
		e = fmt.Errorf("%w: %s", ErrInvalidCursor, detail)
	case scripterr.Replaced:
		what, also, cur := "cursor", ErrInvalidCursor, int64(0)
		if write {
			what, also = "state", ErrConflict
		}
		if a == "stream" {
			what = "stream position"
		} else {
			cur, _ = strconv.ParseInt(a, 10, 64)
		}
		e = NewReplacedError(id, what, cur, also)
	case scripterr.Corrupt:
		e = fmt.Errorf("%w: %s", scripterr.ErrCorrupt, detail)
	case scripterr.BadArg:
		e = fmt.Errorf("%w: script argument %s", ErrInvalidArgument, detail)
	default:
		e = fmt.Errorf("%w: %v", scripterr.ErrProtocol, err)
	}
	return Wrap(pkg, op, id, e)
}

// Int returns element i of a reply as an int64, or an ErrProtocol error.
func Int(arr []rueidis.RedisMessage, i int, script string) (int64, error) {
	if i >= len(arr) {
		return 0, fmt.Errorf("%w: %s returned %d elements", scripterr.ErrProtocol, script, len(arr))
	}
	n, err := arr[i].AsInt64()
	if err != nil {
		return 0, fmt.Errorf("%w: %s: element %d: %v", scripterr.ErrProtocol, script, i, err)
	}
	return n, nil
}

// Str returns element i of a reply as a string, or an ErrProtocol error.
func Str(arr []rueidis.RedisMessage, i int, script string) (string, error) {
	if i >= len(arr) {
		return "", fmt.Errorf("%w: %s returned %d elements", scripterr.ErrProtocol, script, len(arr))
	}
	s, err := arr[i].ToString()
	if err != nil {
		return "", fmt.Errorf("%w: %s: element %d: %v", scripterr.ErrProtocol, script, i, err)
	}
	return s, nil
}

// Refused reports whether err is an expected refusal of a store operation
// (not found, exists, conflict), for telemetry outcomes.
func Refused(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrConflict)
}
