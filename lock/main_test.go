package lock_test

import (
	"testing"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// newLocker returns a Locker on its own client of s, with keys under a prefix
// no other test uses. Both are closed in t.Cleanup.
func newLocker(t testing.TB, s *redistest.Server, opts lock.Options) *lock.Locker {
	t.Helper()
	return newLockerOn(t, s.NewClient(t), s, opts)
}

func newLockerOn(t testing.TB, c rueidis.Client, s *redistest.Server, opts lock.Options) *lock.Locker {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = s.Prefix(t)
	}
	l, err := lock.New(c, opts)
	if err != nil {
		t.Fatalf("lock.New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}
