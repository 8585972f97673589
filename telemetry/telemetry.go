// Package telemetry configures what fencekit reports about itself: traces
// and metrics through the OpenTelemetry API and logs through log/slog.
//
// Every fencekit component (lock.Locker, statestore.Store, staging,
// checkpoint, memory, stream) takes an [Options] in its own options. The
// zero value uses the global OpenTelemetry providers (otel.GetTracerProvider,
// otel.GetMeterProvider) and logs nothing. fencekit depends on the API
// only, never on an SDK: with no SDK installed (or with the no-op
// providers) every instrumentation point reduces to a few loads and
// compares, with no allocations, which the packages' benchmarks check.
//
// # Spans
//
// Every public operation that talks to Redis runs in a span named after it
// ("lock.Acquire", "statestore.Save", "staging.Promote", ...), of kind
// client, with the attributes fencekit.id (session, lock or scope) and
// fencekit.token (when the operation carries a fencing token). A failed
// operation records its error and sets the span status to Error; refusals
// that are part of the protocol (a held lock, a version conflict, a missing
// session) set fencekit.outcome instead.
//
// # Metrics
//
// All under the meter "github.com/fencekit/fencekit":
//
//	fencekit.operation.duration   histogram, s   every public operation (one Lua script each, Promote and Update two); fencekit.op, fencekit.outcome
//	fencekit.fencing.rejections   counter        writes refused by the fence; fencekit.op, fencekit.reason (stale | not_holder)
//	fencekit.lock.acquire.duration histogram, s  TryAcquire and Acquire, including the wait; fencekit.outcome
//	fencekit.lock.hold.duration   histogram, s   from grant to release or loss
//	fencekit.lock.handoffs        counter        releases that handed the lock straight to a waiter
//	fencekit.lock.lost            counter        leases lost; fencekit.cause (expired | gone | taken | refresh_failed)
//	fencekit.lock.refresh.failures counter       renewals that failed (the lease may still be saved by a retry)
//	fencekit.staging.promotions   counter        Promote calls that applied changes
//	fencekit.staging.discards     counter        Discard calls that dropped changes
//	fencekit.checkpoint.size      histogram, By  size of each saved checkpoint
//	fencekit.memory.search.duration histogram, s vector searches; fencekit.memory.backend
//
// fencekit.outcome is one of ok, stale, not_holder, refused (an expected
// refusal: lock held, conflict, not found, exists) and error.
//
// # Logs
//
// With a Logger, fencekit logs what an operator wants to know and no more:
// a lost lease (warn), a failed renewal (warn while the lease may still be
// saved), the vector backend a memory store chose (info), and retries:
// of optimistic updates after a conflict, of Acquire after a transport
// error (debug). Tokens are logged; passwords and data never.
package telemetry

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Options configures the telemetry of one fencekit component. The zero
// value uses the global OpenTelemetry providers and logs nothing.
type Options struct {
	// TracerProvider for spans; nil: the global one, looked up at each
	// operation (so installing an SDK later takes effect).
	TracerProvider trace.TracerProvider
	// MeterProvider for metrics; nil: the global one (whose instruments
	// start recording once an SDK is installed).
	MeterProvider metric.MeterProvider
	// Logger for operational logs; nil: silent.
	Logger *slog.Logger
}
