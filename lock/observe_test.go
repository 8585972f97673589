package lock_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/telemetry"
)

// collect returns every data point count (histograms) or value (sums) of
// reader's metrics by "<name>{<attr values>}".
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]int64{}
	key := func(name string, attrs attribute.Set) string {
		var vals []string
		for _, kv := range attrs.ToSlice() {
			vals = append(vals, kv.Value.Emit())
		}
		return name + "{" + strings.Join(vals, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] += int64(p.Count)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] += p.Value
				}
			}
		}
	}
	return out
}

// TestTelemetry: a Locker with an SDK records acquisitions by outcome, hold
// times, hand-offs, lost leases by cause and refresh failures, spans with
// the lock name and token, and logs a lost lease.
func TestTelemetry(t *testing.T) {
	s := redistest.NewMini(t)
	ctx := ctxT(t, 10*time.Second)
	sr := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	var logs bytes.Buffer
	tel := telemetry.Options{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)),
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
	}
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

	m := collect(t, reader)
	assert.Equal(t, int64(2), m["fencekit.lock.acquire.duration{ok}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.acquire.duration{refused}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.handoffs{}"], "%v", m)
	assert.Equal(t, int64(2), m["fencekit.lock.hold.duration{}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.lost{gone}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.lock.refresh.failures{}"], "%v", m)
	assert.Equal(t, int64(1), m["fencekit.operation.duration{lock.Release,ok}"], "%v", m)

	names := map[string]int{}
	for _, sp := range sr.Ended() {
		names[sp.Name()]++
		attrs := attribute.NewSet(sp.Attributes()...)
		v, _ := attrs.Value("fencekit.id")
		assert.Equal(t, "job", v.AsString(), sp.Name())
	}
	assert.Equal(t, map[string]int{"lock.TryAcquire": 2, "lock.Acquire": 1, "lock.Release": 1, "lock.Refresh": 2}, names)

	out := logs.String()
	assert.Contains(t, out, `msg="fencekit: lease lost" lock=job token=`+lkB.Token().String()+` cause=gone`)
}
