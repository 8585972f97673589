package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/scripterr"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Lock is a held lease on a name, with its fencing token. Pass Token to
// every write the lock guards; fenced stores reject writes from older
// tokens even when a paused holder wakes up believing it still holds the lock.
//
// The holder judges the lease by its own monotonic clock: from the moment the
// acquiring request was sent, minus 1% for clock-rate drift. Done, Context and
// Err report the end of the lease, whatever the cause. A Lock is safe for
// concurrent use.
type Lock struct {
	locker     *Locker
	name       string
	keys       keys.Lock
	holder     string
	token      fencing.Token
	tokStr     string // token.String(), kept to spare an allocation per call
	acquiredAt int64  // ms since the epoch on the server clock; 0 if unknown

	mu       sync.Mutex
	deadline time.Time // end of the lease by the local monotonic clock
	granted  time.Time // when the grant was sent for, by the local clock
	err      error     // nil while held
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelCauseFunc
	timer    *time.Timer   // fires at deadline once someone watches
	stopDog  chan struct{} // closed to stop the watchdog
	released bool
	relErr   error
	// releasing counts Release calls in flight. A renewal that finds the
	// lock gone or taken meanwhile may only be seeing that release: its
	// loss is kept in heldLoss and applied only if the release fails.
	releasing int
	heldLoss  *LostError
}

func (l *Locker) newLock(name string, k keys.Lock, holder string, token fencing.Token, tokStr string, at int64, base time.Time, ttl time.Duration) *Lock {
	if tokStr == "" {
		tokStr = token.String()
	}
	lk := &Lock{
		locker:     l,
		name:       name,
		keys:       k,
		holder:     holder,
		token:      token,
		tokStr:     tokStr,
		acquiredAt: at,
		deadline:   base.Add(ttl - ttl/100),
		granted:    base,
	}
	if l.opts.AutoRefresh {
		// Before the timer is armed: a lease that is already over fires
		// it at once, and lose closes stopDog.
		lk.stopDog = make(chan struct{})
	}
	if l.opts.AutoRefresh || l.opts.OnLost != nil {
		lk.mu.Lock()
		lk.armLocked()
		lk.mu.Unlock()
	}
	if l.opts.AutoRefresh {
		go lk.watchdog()
	}
	return lk
}

// A nil *Lock (what a failed acquisition returns) holds nothing: its
// accessors return zero values, Err and Refresh [ErrReleased], Done a
// closed channel, Context a cancelled context, and Release nil.

// Name returns the lock name ("" for a nil Lock).
func (lk *Lock) Name() string {
	if lk == nil {
		return ""
	}
	return lk.name
}

// Token returns the fencing token of this acquisition (0, which no write
// accepts, for a nil Lock).
func (lk *Lock) Token() fencing.Token {
	if lk == nil {
		return 0
	}
	return lk.token
}

// Owner returns the Options.Owner of the Locker that acquired the lock.
func (lk *Lock) Owner() string {
	if lk == nil {
		return ""
	}
	o, _, _ := cutHolder(lk.holder)
	return o
}

// AcquiredAt returns when the lock was granted, by the server's clock, or the
// zero time when the lock was handed over in memory by another holder of the
// same Locker (see Inspect for the server's record).
func (lk *Lock) AcquiredAt() time.Time {
	if lk == nil || lk.acquiredAt == 0 {
		return time.Time{}
	}
	return time.UnixMilli(lk.acquiredAt)
}

// Deadline returns the end of the lease by the holder's monotonic clock.
func (lk *Lock) Deadline() time.Time {
	if lk == nil {
		return time.Time{}
	}
	lk.mu.Lock()
	defer lk.mu.Unlock()
	return lk.deadline
}

// TTL returns the time left on the lease by the holder's clock, 0 once the
// lock is lost or released.
func (lk *Lock) TTL() time.Duration {
	if lk.Err() != nil {
		return 0
	}
	lk.mu.Lock()
	defer lk.mu.Unlock()
	return max(time.Until(lk.deadline), 0)
}

// Err returns nil while the lease lasts, [ErrReleased] after Release, and a
// [*LostError] (matching [ErrLockLost] and [fencing.ErrNotHolder]) once it
// was lost.
func (lk *Lock) Err() error {
	if lk == nil {
		return ErrReleased
	}
	lk.mu.Lock()
	if lk.err == nil && !time.Now().Before(lk.deadline) {
		lk.mu.Unlock()
		lk.lose(&LostError{Name: lk.name, Token: lk.token, Cause: CauseExpired})
		lk.mu.Lock()
	}
	defer lk.mu.Unlock()
	return lk.err
}

// Done returns a channel that is closed when the lease ends: lost, expired
// by the holder's clock, or released.
func (lk *Lock) Done() <-chan struct{} {
	if lk == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.done == nil {
		lk.done = make(chan struct{})
		if lk.err != nil {
			close(lk.done)
		}
		lk.armLocked()
	}
	return lk.done
}

// Context returns a context that is cancelled when the lease ends, with
// [Lock.Err] as its cause (context.Cause). Derive the contexts of work done
// under the lock from it.
func (lk *Lock) Context() context.Context {
	if lk == nil {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(ErrReleased)
		return ctx
	}
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if lk.ctx == nil {
		lk.ctx, lk.cancel = context.WithCancelCause(context.Background())
		if lk.err != nil {
			lk.cancel(lk.err)
		}
		lk.armLocked()
	}
	return lk.ctx
}

// WithContext returns a context derived from parent that is also cancelled
// when the lease ends, with Lock.Err as its cause. Use it for work that must
// stop at the caller's deadline or at the end of the lease, whichever comes
// first. Call cancel when the work is done.
func (lk *Lock) WithContext(parent context.Context) (ctx context.Context, cancel context.CancelFunc) {
	c, cancelCause := context.WithCancelCause(parent)
	if lk == nil {
		cancelCause(ErrReleased)
		return c, func() {}
	}
	lease := lk.Context()
	stop := context.AfterFunc(lease, func() { cancelCause(context.Cause(lease)) })
	return c, func() {
		stop()
		cancelCause(context.Canceled)
	}
}

// armLocked starts the timer that ends the lease at its deadline.
func (lk *Lock) armLocked() {
	if lk.timer != nil || lk.err != nil {
		return
	}
	lk.timer = time.AfterFunc(time.Until(lk.deadline), lk.expire)
}

func (lk *Lock) expire() {
	lk.mu.Lock()
	if lk.err != nil {
		lk.mu.Unlock()
		return
	}
	if d := time.Until(lk.deadline); d > 0 { // renewed meanwhile
		lk.timer.Reset(d)
		lk.mu.Unlock()
		return
	}
	lk.mu.Unlock()
	lk.lose(&LostError{Name: lk.name, Token: lk.token, Cause: CauseExpired})
}

// lose ends the lease with err (a *LostError or ErrReleased); only the first
// call has an effect. OnLost runs for losses, not releases.
func (lk *Lock) lose(err error) {
	lk.mu.Lock()
	if lk.err != nil {
		lk.mu.Unlock()
		return
	}
	lk.err = err
	if lk.done != nil {
		close(lk.done)
	}
	if lk.cancel != nil {
		lk.cancel(err)
	}
	if lk.timer != nil {
		lk.timer.Stop()
	}
	if lk.stopDog != nil {
		close(lk.stopDog)
	}
	lk.mu.Unlock()
	lk.locker.observeEnd(lk, err)
	if cb := lk.locker.opts.OnLost; cb != nil && err != ErrReleased {
		cb(lk, err)
	}
}

// extend moves the deadline to base+ttl (never backwards).
func (lk *Lock) extend(base time.Time, ttl time.Duration) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if d := base.Add(ttl - ttl/100); d.After(lk.deadline) {
		lk.deadline = d
		if lk.timer != nil && lk.err == nil {
			lk.timer.Reset(time.Until(d))
		}
	}
}

// Refresh extends the lease to a full TTL from now, in one round trip. It
// never brings back a lost lease: once the lock is lost or released it
// returns that error without contacting Redis, and when Redis no longer
// names this holder and token it ends the lease and returns a [*LostError]
// (CauseGone or CauseTaken). Transport and context errors leave the lease as
// it was; with MinReplicas, too few acknowledgements return
// [ErrNotReplicated] (the lease was extended on the primary).
func (lk *Lock) Refresh(ctx context.Context) (err error) {
	if err := lk.Err(); err != nil {
		return err
	}
	ctx, sp := lk.locker.obs.Start(ctx, opRefresh, lk.name, lk.token)
	defer sp.End(&err)
	err = lk.refresh(ctx)
	if err != nil && !errors.Is(err, ErrLockLost) && !errors.Is(err, ErrReleased) {
		lk.locker.observeRefreshFailure(ctx, lk, err)
	}
	return err
}

func (lk *Lock) refresh(ctx context.Context) error {
	l := lk.locker
	keyv := [1]string{lk.keys.Lock}
	argv := [3]string{lk.holder, lk.tokStr, l.ttlArg}
	sent := time.Now()
	var res rueidis.RedisResult
	var acked int64
	if l.opts.MinReplicas > 0 {
		var err error
		res, acked, err = lua.Refresh.ExecWait(ctx, l.client, keyv[:], argv[:], l.opts.MinReplicas, l.opts.ReplicaTimeout)
		if err := waitFailed(res, err); err != nil {
			return scriptError("refresh", lk.name, err)
		}
	} else {
		if done, err := lk.refreshIfeq(ctx, sent); done {
			return err
		}
		res = lua.Refresh.Exec(ctx, l.client, keyv[:], argv[:])
	}
	arr, err := res.ToArray()
	if err != nil {
		return scriptError("refresh", lk.name, err)
	}
	if len(arr) == 0 {
		return fmt.Errorf("%w: refresh.lua returned nothing", ErrProtocol)
	}
	status, err := arr[0].AsInt64()
	if err != nil {
		return fmt.Errorf("%w: refresh.lua: %v", ErrProtocol, err)
	}
	switch status {
	case 1:
		lk.extend(sent, l.opts.TTL)
		if l.opts.MinReplicas > 0 && acked < int64(l.opts.MinReplicas) {
			return &NotReplicatedError{Name: lk.name, Acked: acked, Want: l.opts.MinReplicas}
		}
		return nil
	case 0:
		return lk.found(&LostError{Name: lk.name, Token: lk.token, Cause: CauseGone})
	default:
		lost := &LostError{Name: lk.name, Token: lk.token, Cause: CauseTaken}
		if len(arr) >= 3 {
			h, _ := arr[1].ToString()
			t, _ := arr[2].ToString()
			lost.Holder, _, _ = cutHolder(h)
			lost.HolderToken, _ = fencing.ParseToken(t)
		}
		return lk.found(lost)
	}
}

// refreshIfeq renews the lease with one native command where the server
// has it (Valkey >= 8.1):
//
//	SET <lock> <record> IFEQ <record> PX <ttl> GET
//
// rewrites the lock record, unchanged, with a new lease only if it is byte
// for byte the record of this grant ("<token>|<acquired at ms>|<holder>"),
// never creates it, and answers the record it found. That is refresh.lua's
// check (the record names this holder and token) without a script: about
// 1.2 µs of Redis CPU against refresh.lua's 6.6 on Valkey 9.1.2 (bench/
// BenchmarkConditionalCPU). done is false when refresh.lua must run
// instead: the grant's acquisition time is unknown (a hand-off learned
// from a notice), or the server answered with an error reply - a server
// without IFEQ (Redis, miniredis: "ERR syntax error"), an ACL without SET
// (NOPERM), a key of another type: remembered in Locker.noIfeq; writes
// refused (under OOM refresh.lua's PEXPIRE may still go through) or a
// server busy for now: tried again next time. The script then gives the
// canonical outcome.
func (lk *Lock) refreshIfeq(ctx context.Context, sent time.Time) (done bool, err error) {
	l := lk.locker
	if lk.acquiredAt <= 0 || l.noIfeq.Load() {
		return false, nil
	}
	rec := lk.tokStr + "|" + strconv.FormatInt(lk.acquiredAt, 10) + "|" + lk.holder
	old, err := l.client.Do(ctx, l.client.B().Arbitrary("SET").Keys(lk.keys.Lock).
		Args(rec, "IFEQ", rec, "PX", l.ttlArg, "GET").Build()).ToString()
	switch {
	case err == nil && old == rec:
		lk.extend(sent, l.opts.TTL)
		return true, nil
	case err == nil:
		tok, _, holder, ok := parseRecord(old)
		if !ok {
			return true, fmt.Errorf("%w: lock %q: record %q", ErrCorrupt, lk.name, old)
		}
		lost := &LostError{Name: lk.name, Token: lk.token, Cause: CauseTaken}
		lost.Holder, _, _ = cutHolder(holder)
		lost.HolderToken, _ = fencing.ParseToken(tok)
		return true, lk.found(lost)
	case rueidis.IsRedisNil(err):
		return true, lk.found(&LostError{Name: lk.name, Token: lk.token, Cause: CauseGone})
	}
	if rerr, ok := rueidis.IsRedisErr(err); ok {
		// rueidis drops the "ERR " of a generic error ("syntax error" from
		// a server without IFEQ), so the codes that say the server may
		// take the command later are the ones told apart.
		code, _, _ := strings.Cut(rerr.Error(), " ")
		switch {
		case scripterr.IsRefused(err):
		case code == "LOADING", code == "BUSY", code == "TRYAGAIN", code == "CLUSTERDOWN", code == "MASTERDOWN":
		default:
			l.noIfeq.Store(true)
		}
		return false, nil
	}
	return true, scriptError("refresh", lk.name, err)
}

// parseRecord splits a lock record "<token>|<acquired at ms>|<owner>|<attempt>"
// as fk_record does in Lua; ok is false for anything fencekit did not write.
func parseRecord(rec string) (tok, at, holder string, ok bool) {
	tok, rest, ok1 := strings.Cut(rec, "|")
	at, holder, ok2 := strings.Cut(rest, "|")
	if !ok1 || !ok2 || tok == "" || at == "" || !strings.Contains(holder, "|") {
		return "", "", "", false
	}
	if _, err := fencing.ParseToken(tok); err != nil {
		return "", "", "", false
	}
	if _, err := strconv.ParseInt(at, 10, 64); err != nil {
		return "", "", "", false
	}
	return tok, at, holder, true
}

// found handles a renewal that found the lock no longer held by this
// Lock. While a Release is in flight the renewal may be seeing that very
// release, so the loss is only noted: Release applies it if the release
// fails, and drops it if the release went through. Otherwise the lease
// ends with lost.
func (lk *Lock) found(lost *LostError) error {
	lk.mu.Lock()
	if lk.releasing > 0 && lk.err == nil {
		if lk.heldLoss == nil {
			lk.heldLoss = lost
		}
		lk.mu.Unlock()
		return lost
	}
	lk.mu.Unlock()
	lk.lose(lost)
	return lk.Err()
}

// watchdog renews the lease every RefreshInterval until the lock ends.
// A failed renewal is retried every RefreshInterval/4; each renewal's
// context ends with the lease, so a renewal can never outlive it.
func (lk *Lock) watchdog() {
	l := lk.locker
	every := l.opts.RefreshInterval
	t := time.NewTimer(every)
	defer t.Stop()
	var lastErr error
	for {
		select {
		case <-lk.stopDog:
			return
		case <-t.C:
		}
		deadline := lk.Deadline()
		if !time.Now().Before(deadline) {
			if lastErr != nil {
				lk.lose(&LostError{Name: lk.name, Token: lk.token, Cause: CauseRefreshFailed, Err: lastErr})
			} else {
				lk.lose(&LostError{Name: lk.name, Token: lk.token, Cause: CauseExpired})
			}
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := lk.Refresh(ctx)
		cancel()
		switch {
		case err == nil:
			lastErr = nil
			t.Reset(every)
		case errors.Is(err, ErrLockLost), errors.Is(err, ErrReleased):
			return
		case errors.Is(err, ErrNotReplicated):
			lastErr = nil
			t.Reset(every)
		default:
			lastErr = err
			if time.Now().Before(lk.Deadline()) {
				t.Reset(min(every/4, time.Until(lk.Deadline())))
			} else {
				lk.lose(&LostError{Name: lk.name, Token: lk.token, Cause: CauseRefreshFailed, Err: lastErr})
				return
			}
		}
	}
}

// Release gives the lock up with a compare-and-delete on this holder and
// token, in one round trip, and hands it to the next waiter if there is one.
// It ends the lease (Done closes, Err reports ErrReleased) and stops the
// watchdog.
//
// Release is idempotent and nil-safe: later calls return the first call's
// result without contacting Redis. It returns nil when the lock was held
// until the release; OnLost is then never called, even by a renewal that
// ran while the release was in flight. It returns the [*LostError] when the
// lease had ended before the reply arrived: by the holder's clock (Redis,
// whose clock may run behind, can still have held the record: the release
// then took effect all the same, and the lock is free or handed to the
// next waiter), or because Redis no longer named this holder; the lock of
// another holder is never touched. When Redis refuses the write
// ([fencing.ErrWriteRefused]) or does not reply ([fencing.ErrNoReply],
// after at most Options.CallTimeout), the error is returned as is, the
// lease goes on, and the next call tries again.
//
// ctx carries values (traces) only: a release is sent and waited for even
// when ctx has ended (a deferred Release with a request's context that is
// already done still gives the lock back), within Options.CallTimeout.
// Knowing its outcome is what lets Release report the lease's end truly.
func (lk *Lock) Release(ctx context.Context) (err error) {
	if lk == nil {
		return nil
	}
	lk.mu.Lock()
	if lk.released {
		err := lk.relErr
		lk.mu.Unlock()
		return err
	}
	lk.releasing++
	lk.mu.Unlock()
	ctx, sp := lk.locker.obs.Start(ctx, opRelease, lk.name, lk.token)
	defer sp.End(&err)
	lostBefore := lk.Err()
	r, err := lk.locker.runRelease(lk.locker.detach(ctx), &lk.keys, lk.holder, lk.tokStr)
	lk.mu.Lock()
	lk.releasing--
	held := lk.heldLoss
	if lk.releasing == 0 {
		lk.heldLoss = nil
	}
	lostMeanwhile := lk.err
	lk.mu.Unlock()
	if err != nil {
		if held != nil {
			lk.lose(held) // the renewal's finding stands
		}
		return scriptError("release", lk.name, err)
	}
	var result error
	switch {
	case lostBefore != nil && lostBefore != ErrReleased:
		result = lostBefore
	case lostMeanwhile != nil && lostMeanwhile != ErrReleased:
		result = lostMeanwhile // the lease ran out while the release was in flight
	case r.status == 1:
		result = nil
	case r.status == 0:
		result = &LostError{Name: lk.name, Token: lk.token, Cause: CauseGone}
	default:
		owner, _, _ := cutHolder(r.next)
		result = &LostError{Name: lk.name, Token: lk.token, Cause: CauseTaken, Holder: owner, HolderToken: r.token}
	}
	if result != nil {
		lk.lose(result)
	}
	lk.lose(ErrReleased) // no-op when lost above
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if !lk.released {
		lk.released, lk.relErr = true, result
	}
	return lk.relErr
}
