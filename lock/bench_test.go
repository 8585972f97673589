package lock_test

import (
	"context"
	"testing"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// BenchmarkTryAcquireRelease measures one uncontended acquire and release on
// a real server; bench/ compares it with other libraries.
func BenchmarkTryAcquireRelease(b *testing.B) {
	s := redistest.NewRedis(b)
	l := newLocker(b, s, lock.Options{})
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
}
