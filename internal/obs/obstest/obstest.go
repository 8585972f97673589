// Package obstest reads what fencekit's instrumentation recorded, for
// tests: an OpenTelemetry SDK meter and tracer with in-memory readers.
package obstest

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fencekit/fencekit/telemetry"
)

// SDK is an in-memory OpenTelemetry SDK.
type SDK struct {
	Spans  *tracetest.SpanRecorder
	Reader *sdkmetric.ManualReader
}

// New returns an SDK and telemetry options that report to it.
func New() (*SDK, telemetry.Options) {
	s := &SDK{Spans: tracetest.NewSpanRecorder(), Reader: sdkmetric.NewManualReader()}
	return s, telemetry.Options{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.Spans)),
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.Reader)),
	}
}

// Points returns every metric's data points: the count of a histogram's
// data point, the value of a counter's, by "<name>{<attribute values in
// key order, comma-separated>}".
func (s *SDK) Points(t testing.TB) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.Reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect metrics: %v", err)
	}
	out := map[string]int64{}
	key := func(name string, attrs attribute.Set) string {
		var v []string
		for _, kv := range attrs.ToSlice() {
			v = append(v, kv.Value.Emit())
		}
		return name + "{" + strings.Join(v, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] += int64(p.Count)
				}
			case metricdata.Histogram[int64]:
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
