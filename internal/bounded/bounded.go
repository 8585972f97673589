// Package bounded puts a time limit on every command fencekit sends, and
// marks every error that is not a reply from Redis.
//
// rueidis retries a read-only command or a script marked retryable after a
// broken connection until the caller's context ends, so with
// context.Background() a call made while Redis is unreachable would block
// until the server comes back. Every store wraps the client it is given
// with [Wrap]: each command then gets at most the store's call timeout
// (plus the command's own BLOCK time), whatever context the caller passes,
// and an error without a reply matches fencing.ErrNoReply.
package bounded

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
)

// NoReplyError is an error of a command that got no reply: a transport
// error, a closed client, or a context that ended, the caller's or the
// bound's. It matches fencing.ErrNoReply and wraps the underlying error.
type NoReplyError struct {
	// Timeout is the bound that ran out, or 0 when something else ended
	// the call.
	Timeout time.Duration
	Err     error
}

// Error implements error.
func (e *NoReplyError) Error() string {
	if e.Timeout > 0 {
		return fmt.Sprintf("no reply from redis within %v: %v", e.Timeout, e.Err)
	}
	return fmt.Sprintf("no reply from redis: %v", e.Err)
}

// Is makes errors.Is(err, fencing.ErrNoReply) true.
func (e *NoReplyError) Is(target error) bool { return target == fencing.ErrNoReply }

// Unwrap returns the transport or context error.
func (e *NoReplyError) Unwrap() error { return e.Err }

// Client is a rueidis.Client whose commands are bounded (see the package
// documentation). Subscriptions (Receive), streams (DoStream) and the
// clients returned by Nodes are passed through unbounded.
type Client struct {
	rueidis.Client
	d time.Duration
}

// Wrap returns c with every command bounded by d (d <= 0: no bound, errors
// are still marked). A client that Wrap returned is unwrapped first, so
// wrapping twice does not stack bounds.
func Wrap(c rueidis.Client, d time.Duration) *Client {
	if b, ok := c.(*Client); ok {
		c = b.Client
	}
	return &Client{Client: c, d: d}
}

// Unwrap returns the client Wrap was given.
func (c *Client) Unwrap() rueidis.Client { return c.Client }

// Timeout returns the bound of one command.
func (c *Client) Timeout() time.Duration { return c.d }

// Do implements rueidis.Client.
func (c *Client) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	return do(ctx, c.d, c.Client, cmd)
}

// DoMulti implements rueidis.Client.
func (c *Client) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	return doMulti(ctx, c.d, c.Client, multi)
}

// do runs cmd on c within d (plus its BLOCK time).
func do(ctx context.Context, d time.Duration, c rueidis.CommandClient, cmd rueidis.Completed) rueidis.RedisResult {
	ctx, cancel, applied := bound(ctx, d, blockOf(&cmd))
	res := c.Do(ctx, cmd)
	cancel()
	return mark(res, applied)
}

// doMulti runs multi on c within d (plus the longest BLOCK time).
func doMulti(ctx context.Context, d time.Duration, c rueidis.CommandClient, multi []rueidis.Completed) []rueidis.RedisResult {
	var block time.Duration
	for i := range multi {
		block = max(block, blockOf(&multi[i]))
	}
	ctx, cancel, applied := bound(ctx, d, block)
	out := c.DoMulti(ctx, multi...)
	cancel()
	for i := range out {
		out[i] = mark(out[i], applied)
	}
	return out
}

// DoCache implements rueidis.Client.
func (c *Client) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	ctx, cancel, d := bound(ctx, c.d, 0)
	res := c.Client.DoCache(ctx, cmd, ttl)
	cancel()
	return mark(res, d)
}

// DoMultiCache implements rueidis.Client.
func (c *Client) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	ctx, cancel, d := bound(ctx, c.d, 0)
	out := c.Client.DoMultiCache(ctx, multi...)
	cancel()
	for i := range out {
		out[i] = mark(out[i], d)
	}
	return out
}

// Dedicated implements rueidis.Client; the dedicated client's commands are
// bounded too.
func (c *Client) Dedicated(fn func(rueidis.DedicatedClient) error) error {
	return c.Client.Dedicated(func(dc rueidis.DedicatedClient) error {
		return fn(&dedicated{DedicatedClient: dc, d: c.d})
	})
}

// Dedicate implements rueidis.Client; the dedicated client's commands are
// bounded too.
func (c *Client) Dedicate() (rueidis.DedicatedClient, func()) {
	dc, cancel := c.Client.Dedicate()
	return &dedicated{DedicatedClient: dc, d: c.d}, cancel
}

type dedicated struct {
	rueidis.DedicatedClient
	d time.Duration
}

func (c *dedicated) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	return do(ctx, c.d, c.DedicatedClient, cmd)
}

func (c *dedicated) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	return doMulti(ctx, c.d, c.DedicatedClient, multi)
}

func noop() {}

// bound returns ctx limited to d+block from now, unless ctx already ends
// sooner; the returned duration is the bound applied (0 when none was).
// A ctx that ends sooner costs nothing. A ctx that cannot be cancelled
// (Done() == nil: context.Background, or context.WithoutCancel as the lock
// uses for its looks) gets a deadline context that shares its channel with
// every other call ending in the same tick (see wheel): one small
// allocation and no timer of its own. Only a cancellable ctx without a
// near deadline pays for context.WithTimeout.
func bound(ctx context.Context, d, block time.Duration) (context.Context, context.CancelFunc, time.Duration) {
	if d <= 0 || block < 0 {
		return ctx, noop, 0
	}
	d += block
	dl, ok := ctx.Deadline()
	if ok && time.Until(dl) <= d+tick { // a Detach of the same bound ends up to a tick late
		return ctx, noop, 0
	}
	if ctx.Done() == nil {
		at, done := ticks.after(d)
		return &tickCtx{parent: ctx, deadline: at, done: done}, noop, d
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, d
}

// Detach returns a context with ctx's values that ctx's cancellation does
// not end and that ends d from now (up to one tick later), without a timer
// of its own: for a request that, once sent, must be waited for so that its
// outcome is known (the lock's looks and releases). d <= 0: no deadline.
func Detach(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return context.WithoutCancel(ctx)
	}
	at, done := ticks.after(d)
	return &tickCtx{parent: ctx, deadline: at, done: done}
}

// tickCtx is a context with its parent's values that its parent cannot
// cancel and that ends at deadline, when its shared done channel closes.
type tickCtx struct {
	parent   context.Context
	deadline time.Time
	done     <-chan struct{}
}

func (c *tickCtx) Value(key any) any           { return c.parent.Value(key) }
func (c *tickCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *tickCtx) Done() <-chan struct{}       { return c.done }
func (c *tickCtx) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// tick is the resolution of shared deadlines: a bound ends up to one tick
// later than asked.
const tick = 10 * time.Millisecond

// wheel hands out channels that close at tick boundaries, one channel and
// one timer per boundary in use, however many calls share it.
type wheel struct {
	mu   sync.Mutex
	last atomic.Pointer[slot]
	m    map[int64]*slot
}

type slot struct {
	at   int64 // unix nanoseconds, a multiple of tick
	done chan struct{}
}

var ticks = &wheel{m: map[int64]*slot{}}

// after returns the first tick boundary at least d from now and a channel
// closed at that moment.
func (w *wheel) after(d time.Duration) (time.Time, <-chan struct{}) {
	at := (time.Now().Add(d).UnixNano()/int64(tick) + 1) * int64(tick)
	if s := w.last.Load(); s != nil && s.at == at {
		return time.Unix(0, at), s.done
	}
	w.mu.Lock()
	s := w.m[at]
	if s == nil {
		s = &slot{at: at, done: make(chan struct{})}
		w.m[at] = s
		time.AfterFunc(time.Until(time.Unix(0, at)), func() {
			w.mu.Lock()
			delete(w.m, at)
			w.mu.Unlock()
			close(s.done)
		})
	}
	w.mu.Unlock()
	w.last.Store(s)
	return time.Unix(0, at), s.done
}

// blockOf returns how long cmd may block on the server by itself: its
// BLOCK argument (XREAD, XREADGROUP) or last argument (BLPOP and the
// like, WAIT's timeout), 0 for commands that do not block, and -1 for a
// command that may block forever (timeout 0), which is left unbounded.
func blockOf(cmd *rueidis.Completed) time.Duration {
	if !cmd.IsBlock() {
		return 0
	}
	args := cmd.Commands()
	if len(args) == 0 {
		return 0
	}
	name := strings.ToUpper(args[0])
	var ms float64
	var err error
	switch name {
	case "XREAD", "XREADGROUP":
		for i := 1; i+1 < len(args); i++ {
			if strings.EqualFold(args[i], "BLOCK") {
				ms, err = strconv.ParseFloat(args[i+1], 64)
				break
			}
		}
	case "WAIT", "WAITAOF":
		ms, err = strconv.ParseFloat(args[len(args)-1], 64)
	default: // BLPOP, BZPOPMIN, ...: timeout in seconds, last
		var s float64
		s, err = strconv.ParseFloat(args[len(args)-1], 64)
		ms = s * 1000
	}
	if err != nil {
		return 0
	}
	if ms <= 0 {
		return -1
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// mark wraps an error that is not a Redis reply in a *NoReplyError; d is
// the bound that applied, reported when it was the bound that ran out.
func mark(res rueidis.RedisResult, d time.Duration) rueidis.RedisResult {
	err := res.Error()
	if err == nil {
		return res
	}
	if _, ok := err.(*rueidis.RedisError); ok { // a reply, nil included
		return res
	}
	var nr *NoReplyError
	if errors.As(err, &nr) {
		return res
	}
	e := &NoReplyError{Err: err}
	if d > 0 && errors.Is(err, context.DeadlineExceeded) {
		e.Timeout = d
	}
	return rueidis.NewErrorResult(e)
}
