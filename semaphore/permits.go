package semaphore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/scripts/lua"
)

// Permits is a held lease on n permits of a semaphore, with its fencing
// token (every grant's token is larger than every earlier one of the
// name). The holder judges the lease by its own monotonic clock, from the
// moment the granting request was sent, minus 1% for clock drift; Done,
// Context and Err report its end. Permits are safe for concurrent use.
type Permits struct {
	sem    *Semaphore
	holder string
	n      int64
	token  fencing.Token
	tokStr string
	start  time.Time

	mu       sync.Mutex
	deadline time.Time
	err      error
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelCauseFunc
	timer    *time.Timer
	stopDog  chan struct{}
	released bool
	relErr   error
	// releasing counts Release calls in flight: a renewal that finds the
	// grant gone meanwhile may only be seeing that release, so its loss
	// is kept in heldLoss and applied only if the release fails.
	releasing int
	heldLoss  *LostError
}

func (s *Semaphore) newPermits(holder string, n int64, token fencing.Token, base time.Time, ttl time.Duration) *Permits {
	p := &Permits{
		sem:      s,
		holder:   holder,
		n:        n,
		token:    token,
		tokStr:   token.String(),
		start:    base,
		deadline: base.Add(ttl - ttl/100),
	}
	if s.opts.AutoRefresh {
		p.stopDog = make(chan struct{})
	}
	if s.opts.AutoRefresh || s.opts.OnLost != nil {
		p.mu.Lock()
		p.armLocked()
		p.mu.Unlock()
	}
	if s.opts.AutoRefresh {
		go p.watchdog()
	}
	return p
}

// Name returns the semaphore's name.
func (p *Permits) Name() string { return p.sem.name }

// N returns the number of permits held.
func (p *Permits) N() int64 { return p.n }

// Token returns the fencing token of this grant.
func (p *Permits) Token() fencing.Token { return p.token }

// Deadline returns the end of the lease by the holder's monotonic clock.
func (p *Permits) Deadline() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deadline
}

// Err returns nil while the lease lasts, [ErrReleased] after Release, and
// a [*LostError] (matching [ErrLost] and [fencing.ErrNotHolder]) once it
// was lost.
func (p *Permits) Err() error {
	p.mu.Lock()
	if p.err == nil && !time.Now().Before(p.deadline) {
		p.mu.Unlock()
		p.lose(p.lost(CauseExpired, nil))
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	return p.err
}

// Done returns a channel closed when the lease ends: lost, expired by the
// holder's clock, or released.
func (p *Permits) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = make(chan struct{})
		if p.err != nil {
			close(p.done)
		}
		p.armLocked()
	}
	return p.done
}

// Context returns a context cancelled when the lease ends, with
// [Permits.Err] as its cause. Derive the contexts of work done under the
// permits from it.
func (p *Permits) Context() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil {
		p.ctx, p.cancel = context.WithCancelCause(context.Background())
		if p.err != nil {
			p.cancel(p.err)
		}
		p.armLocked()
	}
	return p.ctx
}

func (p *Permits) lost(cause LostCause, err error) *LostError {
	return &LostError{Name: p.sem.name, Token: p.token, Cause: cause, Err: err, Since: time.Since(p.start)}
}

func (p *Permits) armLocked() {
	if p.timer != nil || p.err != nil {
		return
	}
	p.timer = time.AfterFunc(time.Until(p.deadline), p.expire)
}

func (p *Permits) expire() {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return
	}
	if d := time.Until(p.deadline); d > 0 {
		p.timer.Reset(d)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.lose(p.lost(CauseExpired, nil))
}

// lose ends the lease with err; only the first call has an effect.
func (p *Permits) lose(err error) {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return
	}
	p.err = err
	if p.done != nil {
		close(p.done)
	}
	if p.cancel != nil {
		p.cancel(err)
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.stopDog != nil {
		close(p.stopDog)
	}
	p.mu.Unlock()
	if cb := p.sem.opts.OnLost; cb != nil && err != ErrReleased {
		cb(p, err)
	}
}

func (p *Permits) extend(base time.Time, ttl time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := base.Add(ttl - ttl/100); d.After(p.deadline) {
		p.deadline = d
		if p.timer != nil && p.err == nil {
			p.timer.Reset(time.Until(d))
		}
	}
}

// Refresh extends the lease to a full TTL from now, in one round trip. It
// never brings back an ended lease: once lost or released it returns that
// error without contacting Redis, and when Redis no longer has the grant
// it ends the lease and returns a [*LostError] (CauseGone). Errors
// matching [fencing.ErrWriteRefused] or [fencing.ErrNoReply], and context
// errors, leave the lease as it was; with MinReplicas, too few
// acknowledgements return [ErrNotReplicated] (the lease was extended on
// the primary).
func (p *Permits) Refresh(ctx context.Context) error {
	if err := p.Err(); err != nil {
		return err
	}
	s := p.sem
	sent := time.Now()
	arr, acked, err := s.exec(ctx, lua.SemRefresh, []string{s.keys.Holders, s.keys.HolderInfo},
		[]string{p.holder, p.tokStr, s.ttlArg})
	if err != nil {
		return scriptError("refresh", s.name, err)
	}
	if len(arr) == 0 {
		return fmt.Errorf("%w: sem_refresh.lua returned nothing", ErrProtocol)
	}
	status, err := arr[0].AsInt64()
	if err != nil {
		return fmt.Errorf("%w: sem_refresh.lua: %v", ErrProtocol, err)
	}
	if status == 1 {
		p.extend(sent, s.opts.TTL)
		if !s.replicated(acked) {
			return &NotReplicatedError{Name: s.name, Acked: acked, Want: s.opts.MinReplicas}
		}
		return nil
	}
	lost := p.lost(CauseGone, nil)
	p.mu.Lock()
	if p.releasing > 0 && p.err == nil {
		if p.heldLoss == nil {
			p.heldLoss = lost
		}
		p.mu.Unlock()
		return lost
	}
	p.mu.Unlock()
	p.lose(lost)
	return p.Err()
}

// watchdog renews the lease every RefreshInterval until it ends; a failed
// renewal is retried every RefreshInterval/4, each bounded by the lease.
func (p *Permits) watchdog() {
	every := p.sem.opts.RefreshInterval
	t := time.NewTimer(every)
	defer t.Stop()
	var lastErr error
	for {
		select {
		case <-p.stopDog:
			return
		case <-t.C:
		}
		deadline := p.Deadline()
		if !time.Now().Before(deadline) {
			p.lose(p.lost(causeOf(lastErr), lastErr))
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := p.Refresh(ctx)
		cancel()
		switch {
		case err == nil:
			lastErr = nil
			t.Reset(every)
		case errors.Is(err, ErrLost), errors.Is(err, ErrReleased):
			return
		case errors.Is(err, ErrNotReplicated):
			// Extended on the primary: renewed as far as this process
			// can tell; the next renewal waits again.
			lastErr = nil
			t.Reset(every)
		default:
			lastErr = err
			if d := time.Until(p.Deadline()); d > 0 {
				t.Reset(min(every/4, d))
			} else {
				p.lose(p.lost(CauseRefreshFailed, lastErr))
				return
			}
		}
	}
}

func causeOf(err error) LostCause {
	if err != nil {
		return CauseRefreshFailed
	}
	return CauseExpired
}

// Release gives the permits back in one round trip and hands them to the
// waiters in the same script. It ends the lease (Done closes, Err reports
// ErrReleased) and stops the watchdog.
//
// Release is idempotent and nil-safe: later calls return the first call's
// result. It returns nil when the permits were held until the release, and
// the [*LostError] when the lease had ended before (by the holder's clock,
// or Redis no longer had the grant). When Redis refuses the write
// ([fencing.ErrWriteRefused]) or does not reply ([fencing.ErrNoReply]),
// the error is returned, the lease goes on, and the next call tries again.
func (p *Permits) Release(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	if p.released {
		err := p.relErr
		p.mu.Unlock()
		return err
	}
	p.releasing++
	p.mu.Unlock()
	lostBefore := p.Err()
	status, err := p.sem.runRelease(ctx, p.holder, p.tokStr)
	p.mu.Lock()
	p.releasing--
	held := p.heldLoss
	if p.releasing == 0 {
		p.heldLoss = nil
	}
	p.mu.Unlock()
	if err != nil {
		if held != nil {
			p.lose(held) // the renewal's finding stands
		}
		return scriptError("release", p.sem.name, err)
	}
	var result error
	switch {
	case lostBefore != nil && lostBefore != ErrReleased:
		result = lostBefore
	case status == 1:
		if err := p.Err(); err != nil && err != ErrReleased {
			result = err // the lease ran out while the release was in flight
		}
	default:
		result = p.lost(CauseGone, nil)
	}
	if result != nil {
		p.lose(result)
	}
	p.lose(ErrReleased)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.released {
		p.released, p.relErr = true, result
	}
	return p.relErr
}

// String returns "<name> n=<n> token=<token>".
func (p *Permits) String() string {
	return p.sem.name + " n=" + strconv.FormatInt(p.n, 10) + " token=" + p.tokStr
}
