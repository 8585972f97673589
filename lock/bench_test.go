package lock_test

import (
	"context"
	"testing"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// BenchmarkTryAcquireRelease measures one uncontended acquire and release on
// a real server, without and with the lock's event log; bench/ compares it
// with other libraries.
func BenchmarkTryAcquireRelease(b *testing.B) {
	s := redistest.NewRedis(b)
	for _, bc := range []struct {
		name string
		opts lock.Options
	}{
		{"plain", lock.Options{}},
		{"eventlog", lock.Options{EventLog: true}},
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
