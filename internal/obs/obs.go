// Package obs is the instrumentation machinery behind package telemetry:
// spans, metrics and logs for fencekit's components, with no allocations
// when nothing listens (no SDK, or no-op providers).
package obs

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/telemetry"
)

// Scope is the instrumentation scope of every tracer and meter.
const Scope = "github.com/fencekit/fencekit"

// Outcomes of an operation (attribute fencekit.outcome).
const (
	OK        = "ok"
	Stale     = "stale"
	NotHolder = "not_holder"
	Refused   = "refused"
	Failed    = "error"
)

var outcomes = [...]string{OK, Stale, NotHolder, Refused, Failed}

// T instruments one component. A nil *T instruments nothing.
type T struct {
	tp     trace.TracerProvider // nil: the global provider
	tcache atomic.Pointer[tracerCache]
	log    *slog.Logger

	opDur      metric.Float64Histogram
	rejections metric.Int64Counter

	// Lock.
	AcquireDur   metric.Float64Histogram
	HoldDur      metric.Float64Histogram
	Handoffs     metric.Int64Counter
	Lost         metric.Int64Counter
	RefreshFails metric.Int64Counter
	// Staging, checkpoint, memory.
	Promotions metric.Int64Counter
	Discards   metric.Int64Counter
	CpSize     metric.Int64Histogram
	SearchDur  metric.Float64Histogram
}

type tracerCache struct {
	tp     trace.TracerProvider
	tracer trace.Tracer // nil: tracing off
}

// New returns the instrumentation of a component configured by o.
// Instruments the meter provider refuses are replaced by no-ops.
func New(o telemetry.Options) *T {
	t := &T{tp: o.TracerProvider, log: o.Logger}
	mp := o.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(Scope)
	sec := metric.WithUnit("s")
	t.opDur = f64h(m, "fencekit.operation.duration", "Duration of fencekit operations (one Lua script each, Promote and Update two).", sec)
	t.rejections = i64c(m, "fencekit.fencing.rejections", "Writes refused by the fence (stale token or not the holder).")
	t.AcquireDur = f64h(m, "fencekit.lock.acquire.duration", "Time to acquire a lock, including the wait.", sec)
	t.HoldDur = f64h(m, "fencekit.lock.hold.duration", "Time a lock was held, from grant to release or loss.", sec)
	t.Handoffs = i64c(m, "fencekit.lock.handoffs", "Releases that handed the lock straight to a waiter.")
	t.Lost = i64c(m, "fencekit.lock.lost", "Leases lost, by cause.")
	t.RefreshFails = i64c(m, "fencekit.lock.refresh.failures", "Lease renewals that failed.")
	t.Promotions = i64c(m, "fencekit.staging.promotions", "Promote calls that applied staged changes.")
	t.Discards = i64c(m, "fencekit.staging.discards", "Discard calls that dropped staged changes.")
	t.CpSize = i64h(m, "fencekit.checkpoint.size", "Size of saved checkpoints.", metric.WithUnit("By"))
	t.SearchDur = f64h(m, "fencekit.memory.search.duration", "Duration of vector searches, by backend.", sec)
	if t.tp != nil {
		t.tcache.Store(&tracerCache{tp: t.tp, tracer: tracerOf(t.tp)})
	}
	return t
}

func f64h(m metric.Meter, name, desc string, opts ...metric.Float64HistogramOption) metric.Float64Histogram {
	h, err := m.Float64Histogram(name, append(opts, metric.WithDescription(desc))...)
	if err != nil || h == nil {
		h, _ = noopMeter.Float64Histogram(name)
	}
	return h
}

func i64h(m metric.Meter, name, desc string, opts ...metric.Int64HistogramOption) metric.Int64Histogram {
	h, err := m.Int64Histogram(name, append(opts, metric.WithDescription(desc))...)
	if err != nil || h == nil {
		h, _ = noopMeter.Int64Histogram(name)
	}
	return h
}

func i64c(m metric.Meter, name, desc string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithDescription(desc))
	if err != nil || c == nil {
		c, _ = noopMeter.Int64Counter(name)
	}
	return c
}

// tracer returns the tracer to use now, or nil when tracing is off: the
// provider is a no-op, or it is the global default with no SDK behind it.
func (t *T) tracer() trace.Tracer {
	tp := t.tp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if c := t.tcache.Load(); c != nil && sameProvider(c.tp, tp) {
		return c.tracer
	}
	c := &tracerCache{tp: tp, tracer: tracerOf(tp)}
	t.tcache.Store(c)
	return c.tracer
}

func sameProvider(a, b trace.TracerProvider) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta != nil && ta.Comparable() && a == b
}

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	switch tp.(type) {
	case nil, tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return nil
	}
	rt := reflect.TypeOf(tp)
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if rt.PkgPath() == "go.opentelemetry.io/otel/internal/global" {
		return nil // the global default before an SDK is installed
	}
	return tp.Tracer(Scope)
}

// Op is an operation kind: its span name and prebuilt metric attributes.
type Op struct {
	Name    string
	refused func(error) bool
	attrs   [len(outcomes)]metric.MeasurementOption
	reasons [2]metric.MeasurementOption // stale, not_holder
}

// NewOp returns the operation name ("statestore.Save"); refused, if not
// nil, tells expected refusals (outcome "refused") from failures.
func NewOp(name string, refused func(error) bool) *Op {
	op := &Op{Name: name, refused: refused}
	for i, o := range outcomes {
		op.attrs[i] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("fencekit.op", name), attribute.String("fencekit.outcome", o)))
	}
	op.reasons[0] = metric.WithAttributeSet(attribute.NewSet(
		attribute.String("fencekit.op", name), attribute.String("fencekit.reason", Stale)))
	op.reasons[1] = metric.WithAttributeSet(attribute.NewSet(
		attribute.String("fencekit.op", name), attribute.String("fencekit.reason", NotHolder)))
	return op
}

// Outcome classifies err for op: OK, Stale, NotHolder, Refused or Failed.
func (op *Op) Outcome(err error) string {
	return outcomes[op.outcome(err)]
}

func (op *Op) outcome(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, fencing.ErrStaleToken):
		return 1
	case errors.Is(err, fencing.ErrNotHolder):
		return 2
	case op.refused != nil && op.refused(err):
		return 3
	}
	return 4
}

// Span is one running operation; the zero Span records nothing.
type Span struct {
	t     *T
	op    *Op
	ctx   context.Context
	span  trace.Span
	start time.Time
}

// Start begins op on the object id (session, lock or scope) with token
// (0: none). It returns ctx unchanged, and a zero Span, when nothing
// listens.
func (t *T) Start(ctx context.Context, op *Op, id string, token fencing.Token) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	tr := t.tracer()
	if tr == nil && !t.opDur.Enabled(ctx) && !t.rejections.Enabled(ctx) {
		return ctx, Span{}
	}
	s := Span{t: t, op: op, start: time.Now()}
	if tr != nil {
		ctx, s.span = tr.Start(ctx, op.Name, trace.WithSpanKind(trace.SpanKindClient))
		if s.span.IsRecording() {
			s.span.SetAttributes(attribute.String("fencekit.id", id))
			if token != 0 {
				s.span.SetAttributes(attribute.Int64("fencekit.token", int64(token)))
			}
		}
	}
	s.ctx = ctx
	return ctx, s
}

// End finishes the span with the operation's error (*err, which may be
// nil): it records the duration and outcome, counts fencing rejections
// and marks the span. Use it as defer sp.End(&err) with a named result.
func (s Span) End(err *error) {
	if s.t == nil {
		return
	}
	var e error
	if err != nil {
		e = *err
	}
	i := s.op.outcome(e)
	s.t.opDur.Record(s.ctx, time.Since(s.start).Seconds(), s.op.attrs[i])
	if i == 1 || i == 2 {
		s.t.rejections.Add(s.ctx, 1, s.op.reasons[i-1])
	}
	if s.span == nil {
		return
	}
	if s.span.IsRecording() {
		s.span.SetAttributes(attribute.String("fencekit.outcome", outcomes[i]))
		if i == 4 {
			s.span.RecordError(e)
			s.span.SetStatus(codes.Error, e.Error())
		}
	}
	s.span.End()
}

// Recording reports whether the span records attributes. Check it before
// building attributes for SetAttributes: a variadic call allocates.
func (s Span) Recording() bool { return s.span != nil && s.span.IsRecording() }

// SetAttributes adds attributes to the span (when it records).
func (s Span) SetAttributes(kv ...attribute.KeyValue) {
	if s.Recording() {
		s.span.SetAttributes(kv...)
	}
}

// Logger returns the component's logger, or nil when it logs nothing or
// not at level.
func (t *T) Logger(ctx context.Context, level slog.Level) *slog.Logger {
	if t == nil || t.log == nil || !t.log.Enabled(ctx, level) {
		return nil
	}
	return t.log
}

var noopMeter = metricnoop.NewMeterProvider().Meter(Scope)
