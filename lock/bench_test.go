package lock_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/telemetry"
)

// BenchmarkTryAcquireRelease measures one uncontended acquire and release on
// a real server: plain, with the lock's event log, and with telemetry
// (no-op providers, and an SDK); bench/ compares it with other libraries.
func BenchmarkTryAcquireRelease(b *testing.B) {
	s := redistest.NewRedis(b)
	for _, bc := range []struct {
		name string
		opts lock.Options
	}{
		{"plain", lock.Options{}},
		{"eventlog", lock.Options{EventLog: true}},
		// Telemetry: explicit no-op providers must cost nothing; an SDK
		// shows what recording costs.
		{"noop-telemetry", lock.Options{Telemetry: telemetry.Options{
			TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}}},
		{"sdk-telemetry", lock.Options{Telemetry: telemetry.Options{
			TracerProvider: sdktrace.NewTracerProvider(),
			MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newLocker(b, s, bc.opts)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				lk, err := l.TryAcquire(ctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if err := lk.Release(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
