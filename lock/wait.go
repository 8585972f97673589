package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/internal/waiter"
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

// The waiters, their in-memory hand-offs and subscriptions, the sleep
// between looks and the rule by which a delivered grant is taken are
// package internal/waiter's, shared with package semaphore.

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
	w := l.waits.Add(holder)
	subscribed := false
	defer func() { l.waits.Remove(holder, k.Wake, subscribed) }()

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
			sleep = waiter.SleepFor(l.opts.RetryInterval, 0)
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
			if waiter.Live(r.sent, r.pttl) {
				return l.newLock(name, k, holder, r.token, r.tokStr, r.at, r.sent, r.pttl), nil
			}
			// The reply came after the lease it reports ran out: look
			// again (the record may be gone, or be ours still).
		default:
			na := l.notAcquired(name, r)
			last, lastLook, lastSeen = na, r.sent, r.token
			sleep = waiter.SleepFor(l.opts.RetryInterval, r.pttl)
			if !subscribed {
				l.waits.Subscribe(k.Wake, holder)
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
		case g := <-w.Grant:
			// Taken unless unreplicated (the look makes WAIT cover it), a
			// late notice (the last answered look already saw a newer
			// holder: tokens only grow, its lease is over) or run out
			// before it reached us; otherwise the waiter looks again.
			if g, ok := g.Take(lastLook, lastSeen); ok {
				return l.newLock(name, k, holder, g.Token, "", 0, g.Base, g.TTL), nil
			}
			continue
		case <-w.Poke:
		case <-timer.C:
		case <-ctx.Done():
			l.abandon(&k, holder)
			return nil, errors.Join(last, ctx.Err())
		case <-l.waits.Done():
			l.abandon(&k, holder)
			return nil, ErrClosed
		}
	}
}
