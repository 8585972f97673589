package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/scripterr"
)

// How waiting works.
//
// A waiter that finds the lock held joins a FIFO queue kept next to the lock
// (acquire.lua). Whoever frees the lock (release.lua, or acquire.lua finding
// an expired lease) passes it straight to the longest-waiting live waiter
// with a new token, in the same script. The new holder learns of it in one of
// three ways, fastest first:
//
//  1. the releaser runs in the same Locker: it finds the waiter in memory and
//     hands over token and lease directly, with no extra round trip;
//  2. otherwise the script announces the hand-off on the lock's pub/sub
//     channel; a Locker with waiters for that name is subscribed and pokes
//     the named waiter, which looks again and finds itself the holder;
//  3. every waiter looks again after at most RetryInterval (jittered) or
//     when the holder's lease ends, whichever is sooner, so a lost notice or a
//     crashed holder costs at most that long. This look also keeps the
//     waiter's queue entry alive; entries not refreshed for 4×RetryInterval
//     are skipped, so a crashed waiter is not handed the lock.
//
// Because the queue decides who is next, waiters are served in arrival order
// and a releaser cannot immediately take the lock back from them.

// grant is a hand-off delivered in memory.
type grant struct {
	token      fencing.Token
	base       time.Time     // a time before the lease began; zero: the waiter's last look
	ttl        time.Duration // lease length from base
	replicated bool          // MinReplicas acknowledged the grant
}

// waiter is one blocked Acquire call.
type waiter struct {
	grant chan grant    // buffered 1
	poke  chan struct{} // buffered 1
}

// wakeSub is a Locker's subscription to one lock's hand-off channel, shared
// by its waiters for that name and kept for a moment after the last leaves.
type wakeSub struct {
	refs   int
	cancel context.CancelFunc
	linger *time.Timer
	// holders of the waiters using the subscription, to poke them all
	// when the subscription (re)starts.
	holders map[string]struct{}
}

func (s *wakeSub) stop() {
	if s.linger != nil {
		s.linger.Stop()
	}
	s.cancel()
}

// subLinger is how long a subscription outlives its last waiter, so that
// steady contention does not resubscribe on every acquisition.
const subLinger = time.Second

// deliver hands a grant to a blocked waiter of this Locker, if holder is one.
func (l *Locker) deliver(holder string, g grant) {
	l.mu.Lock()
	w := l.waiters[holder]
	l.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.grant <- g:
	default:
	}
}

// announced handles a hand-off notice "<holder> <token> <ttl_ms>": the
// waiter holder, if it is one of ours, gets the lock without another round
// trip. The scripts announce only grants already written. Its lease is
// measured from its last look at the lock that Redis answered with another
// holder (Acquire fills in base): that look reached Redis before the grant.
// A notice it cannot parse still pokes the waiter, which then looks.
func (l *Locker) announced(msg string) {
	holder, rest, ok1 := strings.Cut(msg, " ")
	tok, ttl, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		l.poke(holder)
		return
	}
	token, err1 := fencing.ParseToken(tok)
	ms, err2 := strconv.ParseInt(ttl, 10, 64)
	if err1 != nil || err2 != nil || ms <= 0 {
		l.poke(holder)
		return
	}
	// With MinReplicas the waiter must look again so that WAIT covers
	// the grant.
	l.deliver(holder, grant{token: token, ttl: time.Duration(ms) * time.Millisecond, replicated: l.opts.MinReplicas == 0})
}

// poke asks a blocked waiter to look at the lock again.
func (l *Locker) poke(holder string) {
	l.mu.Lock()
	w := l.waiters[holder]
	l.mu.Unlock()
	if w != nil {
		pokeWaiter(w)
	}
}

func pokeWaiter(w *waiter) {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

func (l *Locker) addWaiter(holder string) *waiter {
	w := &waiter{grant: make(chan grant, 1), poke: make(chan struct{}, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiters[holder] = w
	return w
}

func (l *Locker) removeWaiter(name, holder string, subscribed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.waiters, holder)
	if !subscribed {
		return
	}
	s := l.subs[name]
	if s == nil {
		return
	}
	delete(s.holders, holder)
	if s.refs--; s.refs > 0 {
		return
	}
	s.linger = time.AfterFunc(subLinger, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if cur := l.subs[name]; cur == s && s.refs == 0 {
			s.cancel()
			delete(l.subs, name)
		}
	})
}

// subscribe makes sure this Locker listens for hand-offs of name while
// holder waits. When the subscription becomes active every waiter of the
// name is poked, which closes the gap between joining the queue and
// listening.
func (l *Locker) subscribe(name, channel, holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if s := l.subs[name]; s != nil {
		s.refs++
		s.holders[holder] = struct{}{}
		if s.linger != nil {
			s.linger.Stop()
			s.linger = nil
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &wakeSub{refs: 1, cancel: cancel, holders: map[string]struct{}{holder: {}}}
	l.subs[name] = s
	l.wg.Add(1)
	go l.listen(ctx, s, channel)
}

func (l *Locker) listen(ctx context.Context, s *wakeSub, channel string) {
	defer l.wg.Done()
	var cmd rueidis.Completed
	if l.pubArg == "S" {
		cmd = l.client.B().Ssubscribe().Channel(channel).Build()
	} else {
		cmd = l.client.B().Subscribe().Channel(channel).Build()
	}
	hooked := rueidis.WithOnSubscriptionHook(ctx, func(ps rueidis.PubSubSubscription) {
		if ps.Kind == "subscribe" || ps.Kind == "ssubscribe" {
			l.pokeAll(s)
		}
	})
	for {
		err := l.client.Receive(hooked, cmd, func(m rueidis.PubSubMessage) { l.announced(m.Message) })
		if ctx.Err() != nil {
			l.unsubscribe(channel)
			return
		}
		if err != nil { // the connection broke; waiters keep polling meanwhile
			select {
			case <-ctx.Done():
				return
			case <-time.After(l.opts.RetryInterval):
			}
		} // else: unsubscribed by someone else; subscribe again at once
		if l.pubArg == "S" {
			cmd = l.client.B().Ssubscribe().Channel(channel).Build()
		} else {
			cmd = l.client.B().Subscribe().Channel(channel).Build()
		}
	}
}

// unsubscribe tells the server to stop sending a channel's messages; rueidis
// only stops listening when Receive's context ends.
func (l *Locker) unsubscribe(channel string) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cleanupTimeout())
	defer cancel()
	if l.pubArg == "S" {
		l.client.Do(ctx, l.client.B().Sunsubscribe().Channel(channel).Build())
	} else {
		l.client.Do(ctx, l.client.B().Unsubscribe().Channel(channel).Build())
	}
}

func (l *Locker) pokeAll(s *wakeSub) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for h := range s.holders {
		if w := l.waiters[h]; w != nil {
			pokeWaiter(w)
		}
	}
}

// sleepFor is how long a waiter sleeps before looking again, given the
// holder's remaining lease.
func (l *Locker) sleepFor(holderTTL time.Duration) time.Duration {
	ri := l.opts.RetryInterval
	d := ri/2 + rand.N(ri/2+1)
	if holderTTL > 0 && holderTTL+time.Millisecond < d {
		d = holderTTL + time.Millisecond
	}
	return d
}

// Acquire takes the lock name, waiting as long as ctx allows. Waiters are
// served in arrival order and woken by the hand-off described in the package
// documentation; the first attempt costs one round trip like TryAcquire.
//
// It returns an error matching [ErrInvalidName] for a bad name, [ErrClosed]
// when the Locker is closed while waiting, [ErrNotReplicated] when
// MinReplicas are not reached, Redis errors that retrying cannot fix, and,
// when ctx ends first, errors.Join of the last [*NotAcquiredError] (or,
// before any look was answered, the last error) with ctx.Err(). While
// Redis refuses writes ([fencing.ErrWriteRefused]) or does not answer,
// Acquire keeps waiting; once three looks in a row went unanswered and
// Options.CallTimeout passed since the last reply, it returns the last
// error, which matches [fencing.ErrNoReply].
//
// A waiter that gives up also gives back its place in the queue, and the
// lock if it was handed over in the meantime, before Acquire returns. A
// look at the lock that is in flight when ctx ends is waited for first
// (one round trip; at most CallTimeout when Redis does not answer), so
// that it cannot put the waiter back in the queue after it gave up.
//
// The Lock returned always has a live lease by the caller's clock: a
// grant whose lease has already run out when it reaches the waiter (a
// paused process, a notice delayed past the lease) is not returned; the
// waiter looks again instead.
func (l *Locker) Acquire(ctx context.Context, name string) (lk *Lock, err error) {
	ctx, sp, start := l.startAcquire(ctx, opAcquire, name)
	defer l.endAcquire(ctx, sp, start, &lk, &err)
	return l.acquire(ctx, name)
}

func (l *Locker) acquire(ctx context.Context, name string) (*Lock, error) {
	if err := keys.ValidateID(name); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := l.begin(); err != nil {
		return nil, err
	}
	defer l.end()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock: acquire %q: %w", name, err) // nothing sent
	}
	k, holder := l.newAttempt(name)
	w := l.addWaiter(holder)
	subscribed := false
	defer func() { l.removeWaiter(name, holder, subscribed) }()

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// last is the last *NotAcquiredError, or the last error while no look
	// was answered; lastLook is the send time of the last look the server
	// answered with another holder: it reached Redis before any later
	// grant to us, so a lease announced later is counted from it.
	var last error
	var lastLook time.Time
	var lastSeen fencing.Token          // the holder's token in that look
	lastReply, noReply := time.Now(), 0 // noReply: looks in a row without a reply
	for {
		r, err := l.runAcquire(l.detach(ctx), &k, holder, true)
		var sleep time.Duration
		replied := err == nil || scripterr.IsRedis(err)
		if replied {
			lastReply, noReply = time.Now(), 0
		}
		switch {
		case err == nil:
		case replied && !scripterr.IsRefused(err):
			l.abandon(&k, holder)
			return nil, scriptError("acquire", name, err)
		default: // no reply, or writes refused for now: try again
			err = scriptError("acquire", name, err)
			if _, ok := last.(*NotAcquiredError); !ok {
				last = err
			}
			if noReply++; !replied && noReply >= 3 && time.Since(lastReply) >= l.opts.CallTimeout {
				l.abandon(&k, holder)
				return nil, err
			}
			sleep = l.sleepFor(0)
			if log := l.obs.Logger(ctx, slog.LevelDebug); log != nil {
				log.LogAttrs(ctx, slog.LevelDebug, "fencekit: acquire retried",
					slog.String("lock", name), slog.Duration("after", sleep), slog.String("error", err.Error()))
			}
		}
		switch {
		case err != nil:
		case r.granted:
			if ctx.Err() != nil {
				break // given back below: the caller has gone
			}
			if err := l.checkReplicated(name, &k, holder, r.acked); err != nil {
				return nil, err
			}
			if live(r.sent, r.pttl) {
				return l.newLock(name, k, holder, r.token, r.tokStr, r.at, r.sent, r.pttl), nil
			}
			// The reply came after the lease it reports ran out: look
			// again (the record may be gone, or be ours still).
		default:
			na := l.notAcquired(name, r)
			last, lastLook, lastSeen = na, r.sent, r.token
			sleep = l.sleepFor(r.pttl)
			if !subscribed {
				l.subscribe(name, k.Wake, holder)
				subscribed = true
			}
		}
		if ctx.Err() != nil {
			l.abandon(&k, holder)
			return nil, errors.Join(last, ctx.Err())
		}
		if timer == nil {
			timer = time.NewTimer(sleep)
		} else {
			timer.Reset(sleep)
		}
		select {
		case g := <-w.grant:
			if !g.replicated {
				continue // look again: the look makes WAIT cover the grant
			}
			if g.base.IsZero() {
				// Announced: the grant followed the last answered look,
				// unless that look already saw a newer holder (tokens only
				// grow): then the notice is late, its lease is over, and
				// the waiter looks again.
				if lastLook.IsZero() || g.token <= lastSeen {
					continue
				}
				g.base = lastLook
			}
			if !live(g.base, g.ttl) {
				continue // the lease ran out before it reached us: look again
			}
			return l.newLock(name, k, holder, g.token, "", 0, g.base, g.ttl), nil
		case <-w.poke:
		case <-timer.C:
		case <-ctx.Done():
			l.abandon(&k, holder)
			return nil, errors.Join(last, ctx.Err())
		case <-l.closeCh:
			l.abandon(&k, holder)
			return nil, ErrClosed
		}
	}
}
