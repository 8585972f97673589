package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

func TestSmoke(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		l := newLocker(t, s, lock.Options{TTL: time.Second})
		lk, err := l.TryAcquire(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		t.Log(lk.Token(), lk.TTL())
		_, err = l.TryAcquire(ctx, "a")
		var na *lock.NotAcquiredError
		if !errors.As(err, &na) {
			t.Fatalf("got %v", err)
		}
		t.Logf("%+v", na)
		info, err := l.Inspect(ctx, "a")
		t.Logf("%+v %v", info, err)
		done := make(chan *lock.Lock)
		go func() {
			lk2, err := l.Acquire(ctx, "a")
			if err != nil {
				t.Error(err)
			}
			done <- lk2
		}()
		time.Sleep(50 * time.Millisecond)
		st := time.Now()
		if err := lk.Release(ctx); err != nil {
			t.Fatal(err)
		}
		lk2 := <-done
		t.Log("handoff", time.Since(st), lk2.Token())
		if err := lk2.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
