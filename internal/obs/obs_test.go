package obs_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/obs"
	"github.com/fencekit/fencekit/telemetry"
)

var errRefused = errors.New("refused")

var op = obs.NewOp("test.Op", func(err error) bool { return errors.Is(err, errRefused) })

func run(t *obs.T, err error) {
	ctx, sp := t.Start(context.Background(), op, "s1", 42)
	_ = ctx
	sp.End(&err)
}

// TestNoAllocsWhenUnused: with the global providers and no SDK, with
// explicit no-op providers, and with a nil *T, an operation's
// instrumentation allocates nothing.
func TestNoAllocsWhenUnused(t *testing.T) {
	for name, tt := range map[string]*obs.T{
		"global":  obs.New(telemetry.Options{}),
		"noop":    obs.New(telemetry.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}),
		"nil":     nil,
		"noopPtr": obs.New(telemetry.Options{TracerProvider: new(tracenoop.TracerProvider)}),
	} {
		for _, err := range []error{nil, &fencing.StaleTokenError{Presented: 1, Highest: 2}, errRefused} {
			if n := testing.AllocsPerRun(200, func() { run(tt, err) }); n != 0 {
				t.Errorf("%s, err %v: %v allocations per operation, want 0", name, err, n)
			}
		}
	}
}

// TestRecords: with an SDK, an operation makes a client span with the id,
// token and outcome, an error status for failures, a duration by op and
// outcome, and counts fencing rejections by reason.
func TestRecords(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tt := obs.New(telemetry.Options{TracerProvider: tp, MeterProvider: mp})

	run(tt, nil)
	run(tt, &fencing.StaleTokenError{Presented: 1, Highest: 2})
	run(tt, errRefused)
	run(tt, errors.New("boom"))

	spans := sr.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	wantOutcome := []string{"ok", "stale", "refused", "error"}
	for i, s := range spans {
		attrs := attribute.NewSet(s.Attributes()...)
		if v, _ := attrs.Value("fencekit.id"); v.AsString() != "s1" {
			t.Errorf("span %d: fencekit.id %q", i, v.AsString())
		}
		if v, _ := attrs.Value("fencekit.token"); v.AsInt64() != 42 {
			t.Errorf("span %d: fencekit.token %d", i, v.AsInt64())
		}
		if v, _ := attrs.Value("fencekit.outcome"); v.AsString() != wantOutcome[i] {
			t.Errorf("span %d: outcome %q, want %q", i, v.AsString(), wantOutcome[i])
		}
		if s.Name() != "test.Op" {
			t.Errorf("span %d: name %q", i, s.Name())
		}
		if failed := s.Status().Code.String() == "Error"; failed != (i == 3) {
			t.Errorf("span %d: status %v", i, s.Status())
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != obs.Scope {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			counts := map[string]int64{}
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					o, _ := p.Attributes.Value("fencekit.outcome")
					counts[o.AsString()] += int64(p.Count)
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					r, _ := p.Attributes.Value("fencekit.reason")
					counts[r.AsString()] += p.Value
				}
			}
			got[m.Name] = counts
		}
	}
	want := map[string]map[string]int64{
		"fencekit.operation.duration": {"ok": 1, "stale": 1, "refused": 1, "error": 1},
		"fencekit.fencing.rejections": {"stale": 1},
	}
	for name, w := range want {
		for k, v := range w {
			if got[name][k] != v {
				t.Errorf("%s[%s] = %d, want %d (all: %v)", name, k, got[name][k], v, got)
			}
		}
	}
}
