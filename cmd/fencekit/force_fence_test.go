package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/keys"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
)

// TestForceReleaseFenceTTL: force-release keeps a fence that Lockers with
// FenceTTL -1 keep forever (it used to get the default 24 h), keeps a
// longer retention, and --fence-ttl sets the least retention (issue 21 §2).
func TestForceReleaseFenceTTL(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		prefix := s.Prefix(t)
		c := s.NewClient(t)
		base := []string{"--url", serverURL(s), "--prefix", prefix, "--by", "ops"}
		pttl := func(name string) time.Duration {
			t.Helper()
			ms, err := c.Do(ctx, c.B().Pttl().Key(keys.ForLock(prefix, name).Fence).Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			if ms < 0 {
				return time.Duration(ms)
			}
			return time.Duration(ms) * time.Millisecond
		}
		acquire := func(name string, fenceTTL time.Duration) {
			t.Helper()
			l, err := lock.New(c, lock.Options{Prefix: prefix, Owner: "exec-a", FenceTTL: fenceTTL})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := l.TryAcquire(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		force := func(name string, args ...string) {
			t.Helper()
			r := cli(t, append(append([]string{"force-release", name, "--reason", "test"}, args...), base...)...)
			if r.code != exitOK {
				t.Fatalf("force-release %s %v: exit %d\n%s", name, args, r.code, r.stderr)
			}
		}
		near := func(got, want time.Duration) bool { return got <= want && got > want-time.Minute }

		acquire("forever", -1)
		force("forever")
		if got := pttl("forever"); got != -1 {
			t.Errorf("fence of a FenceTTL -1 name after force-release: PTTL %v, want none (-1)", got)
		}
		force("forever", "--fence-ttl", "1h")
		if got := pttl("forever"); got != -1 {
			t.Errorf("--fence-ttl 1h over a fence without expiry: PTTL %v, want none (-1)", got)
		}

		acquire("long", 72*time.Hour)
		force("long")
		if got := pttl("long"); !near(got, 72*time.Hour) {
			t.Errorf("fence kept 72h: PTTL %v after force-release", got)
		}

		acquire("short", time.Hour)
		force("short")
		if got := pttl("short"); !near(got, lock.DefaultFenceTTL) {
			t.Errorf("fence kept 1h: PTTL %v after force-release, want the default %v", got, lock.DefaultFenceTTL)
		}
		force("short", "--fence-ttl", "100h")
		if got := pttl("short"); !near(got, 100*time.Hour) {
			t.Errorf("--fence-ttl 100h: PTTL %v", got)
		}
		force("short", "--fence-ttl", "-1s")
		if got := pttl("short"); got != -1 {
			t.Errorf("--fence-ttl -1s: PTTL %v, want none (-1)", got)
		}

		if r := cli(t, append([]string{"force-release", "x", "--reason", "test", "--fence-ttl", "500us"}, base...)...); r.code != exitUsage || !strings.Contains(r.stderr, "--fence-ttl") {
			t.Errorf("--fence-ttl 500us: exit %d, %s", r.code, r.stderr)
		}
	})
}
