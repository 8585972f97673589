package lock_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/fencekit/fencekit/internal/obs/obstest"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// TestTelemetry: a Locker with an SDK records acquisitions by outcome, hold
// times, hand-offs, lost leases by cause and refresh failures, spans with
// the lock name and token, and logs a lost lease.
func TestTelemetry(t *testing.T) {
	s := redistest.NewMini(t)
	ctx := ctxT(t, 10*time.Second)
	sdk, tel := obstest.New()
	var logs bytes.Buffer
	tel.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	prefix := s.Prefix(t)
	a := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "a", TTL: time.Second, Telemetry: tel})
	b := newLocker(t, s, lock.Options{Prefix: prefix, Owner: "b", TTL: time.Second, RetryInterval: time.Minute, Telemetry: tel})

	lk, err := a.TryAcquire(ctx, "job")
	require.NoError(t, err)
	_, err = b.TryAcquire(ctx, "job")
	require.ErrorIs(t, err, lock.ErrNotAcquired)

	got := make(chan *lock.Lock, 1)
	go func() {
		l2, err := b.Acquire(ctx, "job")
		assert.NoError(t, err)
		got <- l2
	}()
	require.Eventually(t, func() bool {
		info, err := a.Inspect(ctx, "job")
		return err == nil && info.Waiters == 1
	}, 5*time.Second, 2*time.Millisecond)
	require.NoError(t, lk.Release(ctx)) // hands over to b
	lkB := <-got
	require.NotNil(t, lkB)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	require.Error(t, lkB.Refresh(cancelled)) // a failed renewal, lease intact
	s.Do(t, "DEL", prefix+":{job}:lock")
	require.ErrorIs(t, lkB.Refresh(ctx), lock.ErrLockLost) // gone

	m := sdk.Points(t)
	assert.Equal(t, int64(2), m["fencekit.lock.acquire.duration{ok}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.acquire.duration{refused}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.handoffs{}"], "%v", m)
	assert.Equal(t, int64(2), m["fencekit.lock.hold.duration{}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.lost{gone}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.refresh.failures{}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.operation.duration{lock.Release,ok}"], "%v", m)

	names := map[string]int{}
	for _, sp := range sdk.Spans.Ended() {
		names[sp.Name()]++
		attrs := attribute.NewSet(sp.Attributes()...)
		v, _ := attrs.Value("fencekit.id")
		assert.Equal(t, "job", v.AsString(), sp.Name())
	}
	assert.Equal(t, map[string]int{"lock.TryAcquire": 2, "lock.Acquire": 1, "lock.Release": 1, "lock.Refresh": 2}, names)

	out := logs.String()
	assert.Contains(t, out, `msg="fencekit: lease lost" lock=job token=`+lkB.Token().String()+` cause=gone`)
}
