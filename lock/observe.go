package lock

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/fencekit/fencekit/internal/obs"
)

// The operations of a Locker as spans and metrics (package telemetry).
var (
	notAcquired  = func(err error) bool { return errors.Is(err, ErrNotAcquired) }
	opTryAcquire = obs.NewOp("lock.TryAcquire", notAcquired)
	opAcquire    = obs.NewOp("lock.Acquire", notAcquired)
	opRelease    = obs.NewOp("lock.Release", func(err error) bool { return errors.Is(err, ErrLockLost) })
	opRefresh    = obs.NewOp("lock.Refresh", func(err error) bool { return errors.Is(err, ErrLockLost) })

	acquireOutcome = map[string]metric.MeasurementOption{}
	lostCause      = map[LostCause]metric.MeasurementOption{}
)

func init() {
	for _, o := range []string{obs.OK, obs.Refused, obs.Failed} {
		acquireOutcome[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("fencekit.outcome", o)))
	}
	for _, c := range []LostCause{CauseExpired, CauseGone, CauseTaken, CauseRefreshFailed} {
		lostCause[c] = metric.WithAttributeSet(attribute.NewSet(attribute.String("fencekit.cause", string(c))))
	}
}

// startAcquire begins the span of TryAcquire or Acquire (op) and returns
// the time the acquire duration is measured from (zero when no meter
// listens).
func (l *Locker) startAcquire(ctx context.Context, op *obs.Op, name string) (context.Context, obs.Span, time.Time) {
	ctx, sp := l.obs.Start(ctx, op, name, 0)
	var start time.Time
	if l.obs.AcquireDur.Enabled(ctx) {
		start = time.Now()
	}
	return ctx, sp, start
}

// endAcquire ends the span of TryAcquire or Acquire, with the token
// granted, and records how long it took.
func (l *Locker) endAcquire(ctx context.Context, sp obs.Span, start time.Time, lk **Lock, err *error) {
	if *lk != nil && sp.Recording() {
		sp.SetAttributes(attribute.Int64("fencekit.token", int64((*lk).token)))
	}
	sp.End(err)
	if start.IsZero() {
		return
	}
	o := opAcquire.Outcome(*err)
	if o != obs.OK && o != obs.Refused {
		o = obs.Failed
	}
	l.obs.AcquireDur.Record(ctx, time.Since(start).Seconds(), acquireOutcome[o])
}

// observeEnd records the end of a lease: its hold time, and for a loss the
// cause (metric and a warning log).
func (l *Locker) observeEnd(lk *Lock, err error) {
	ctx := context.Background()
	if l.obs.HoldDur.Enabled(ctx) {
		l.obs.HoldDur.Record(ctx, time.Since(lk.granted).Seconds())
	}
	lost, ok := err.(*LostError) // lose is given a *LostError or ErrReleased
	if !ok {
		return
	}
	if l.obs.Lost.Enabled(ctx) {
		l.obs.Lost.Add(ctx, 1, lostCause[lost.Cause])
	}
	if log := l.obs.Logger(ctx, slog.LevelWarn); log != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "fencekit: lease lost",
			slog.String("lock", lk.name), slog.Uint64("token", uint64(lk.token)),
			slog.String("cause", string(lost.Cause)), slog.String("error", err.Error()))
	}
}

// observeRefreshFailure records a renewal that failed without finding the
// lease lost (a transport or context error, too few replicas): the lease
// may still be saved by a retry.
func (l *Locker) observeRefreshFailure(ctx context.Context, lk *Lock, err error) {
	if l.obs.RefreshFails.Enabled(ctx) {
		l.obs.RefreshFails.Add(ctx, 1)
	}
	if log := l.obs.Logger(ctx, slog.LevelWarn); log != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "fencekit: lease renewal failed",
			slog.String("lock", lk.name), slog.Uint64("token", uint64(lk.token)),
			slog.Duration("lease_left", time.Until(lk.Deadline())), slog.String("error", err.Error()))
	}
}
