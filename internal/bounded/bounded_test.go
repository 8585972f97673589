package bounded

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/fencing"
)

func TestDetach(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx := Detach(parent, 30*time.Millisecond)
	cancel()
	if ctx.Err() != nil {
		t.Fatal("the parent's cancellation ended the detached context")
	}
	if ctx.Value(key{}) != "v" {
		t.Fatal("values are lost")
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > 30*time.Millisecond+tick {
		t.Fatalf("deadline %v, %v", time.Until(dl), ok)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("never ended")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err %v", ctx.Err())
	}
	// bound does not stack another timer on a Detach of the same bound.
	d := Detach(context.Background(), time.Second)
	if got, _, applied := bound(d, time.Second, 0); got != d || applied != 0 {
		t.Fatal("bound wrapped a context that already ends in time")
	}
	// A cancellable parent without a deadline gets one; an uncancellable
	// one gets a shared tick.
	c, cancel2, applied := bound(context.Background(), time.Second, 0)
	defer cancel2()
	if _, ok := c.(*tickCtx); !ok || applied != time.Second {
		t.Fatalf("Background got %T, %v", c, applied)
	}
	c2, cancel3, _ := bound(parent, time.Second, 0)
	defer cancel3()
	if _, ok := c2.Deadline(); !ok {
		t.Fatal("no deadline")
	}
}

func TestMark(t *testing.T) {
	reply := rueidis.NewErrorResult(errors.New("x")) // a transport-like error
	err := mark(reply, time.Second).Error()
	if !errors.Is(err, fencing.ErrNoReply) {
		t.Fatalf("%v does not match ErrNoReply", err)
	}
	timeout := mark(rueidis.NewErrorResult(context.DeadlineExceeded), time.Second).Error()
	var nr *NoReplyError
	if !errors.As(timeout, &nr) || nr.Timeout != time.Second || !errors.Is(timeout, context.DeadlineExceeded) {
		t.Fatalf("%v", timeout)
	}
	if mark(rueidis.NewErrorResult(timeout), time.Second).Error() != timeout {
		t.Fatal("marked twice")
	}
}
