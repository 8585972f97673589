package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/fencing"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
)

// TestForceRelease takes locks away with the CLI: the holder's next write
// is refused, the fence moved past its token, who and why are logged to
// stderr and to the session's event log.
func TestForceRelease(t *testing.T) {
	schemas := loadSchemas(t)
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		d := seedData(t, s)
		base := []string{"--url", serverURL(s), "--prefix", d.prefix}
		old := d.session.Token()

		r := cli(t, append([]string{"force-release", "session-1", "--reason", "executor stuck in a GC pause", "--by", "ops@test"}, base...)...)
		if r.code != exitOK {
			t.Fatalf("force-release: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		golden(t, "force_release", r.stdout, d.prefix)
		for _, want := range []string{"force-release", "lock=session-1", "by=ops@test", `reason="executor stuck in a GC pause"`, "owner=executor-a", "token=" + old.String()} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("log line lacks %q: %s", want, r.stderr)
			}
		}

		// The old holder is fenced out.
		store, err := statestore.New(d.client, statestore.Options{Prefix: d.prefix, EventLog: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = store.AppendMessages(ctx, "session-1", old, json.RawMessage(`{"late":true}`))
		if !errors.Is(err, fencing.ErrStaleToken) && !errors.Is(err, fencing.ErrNotHolder) {
			t.Fatalf("write with the old token after force-release: %v", err)
		}
		l := cli(t, append([]string{"lock", "session-1", "--json"}, base...)...)
		var lj lockJSON
		if err := json.Unmarshal([]byte(l.stdout), &lj); err != nil {
			t.Fatal(err)
		}
		if lj.Held || lj.Fence <= old.String() || len(lj.Fence) != len(old.String()) {
			t.Errorf("after force-release: %+v (old token %s)", lj, old)
		}
		evs, _, err := store.Events(ctx, "session-1", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		last := evs[len(evs)-1]
		if last.Type != statestore.EventLockForceReleased || last.Fields["by"] != "ops@test" || last.Fields["reason"] != "executor stuck in a GC pause" {
			t.Errorf("event log: last event %+v", last)
		}

		// --json, default --by from $USER; a waiter is handed the lock.
		waiter, err := lock.New(d.client, lock.Options{Prefix: d.prefix, Owner: "executor-w", TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer waiter.Close()
		got := make(chan *lock.Lock, 1)
		go func() {
			lk, err := waiter.Acquire(ctx, "job-7")
			if err != nil {
				t.Error(err)
			}
			got <- lk
		}()
		for {
			in, err := waiter.Inspect(ctx, "job-7")
			if err != nil {
				t.Fatal(err)
			}
			if in.Waiters > 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		r = cli(t, append([]string{"force-release", "job-7", "--reason", "rebalance", "--json"}, base...)...)
		if r.code != exitOK {
			t.Fatalf("force-release --json: exit %d\n%s", r.code, r.stderr)
		}
		if err := schemas.validate("force-release.schema.json", []byte(r.stdout)); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		var fj forceJSON
		_ = json.Unmarshal([]byte(r.stdout), &fj)
		host, _ := os.Hostname()
		if !fj.Released || fj.Owner != "executor-b" || fj.Token != d.job.Token().String() || fj.By != "tester@"+host || fj.Next != "executor-w" {
			t.Errorf("force-release --json: %+v", fj)
		}
		if lk := <-got; lk == nil || lk.Token().String() != fj.Fence {
			t.Errorf("waiter got %v, want the lock with token %s", lk, fj.Fence)
		} else {
			_ = lk.Release(ctx)
		}

		// A lock nobody holds: nothing released, the fence still moves.
		r = cli(t, append([]string{"force-release", "done-3", "--reason", "cleanup", "--json"}, base...)...)
		if err := schemas.validate("force-release.schema.json", []byte(r.stdout)); err != nil || r.code != exitOK {
			t.Fatalf("exit %d, %v\n%s", r.code, err, r.stdout)
		}
		var free forceJSON
		_ = json.Unmarshal([]byte(r.stdout), &free)
		if free.Released || free.Owner != "" || free.Fence == "" {
			t.Errorf("force-release of a free lock: %+v", free)
		}

		// Usage errors.
		if r := cli(t, append([]string{"force-release", "x"}, base...)...); r.code != exitUsage || !strings.Contains(r.stderr, "--reason is required") {
			t.Errorf("without --reason: exit %d, %s", r.code, r.stderr)
		}
		if r := cli(t, append([]string{"force-release", "x", "--reason", strings.Repeat("x", 600)}, base...)...); r.code != exitUsage {
			t.Errorf("reason too long: exit %d, %s", r.code, r.stderr)
		}
	})
}

// TestForceReleaseACL: the operator of docs/ACL.md may force-release, the
// viewer may not (NOPERM, exit 1), and the operator's run is not refused
// anything.
func TestForceReleaseACL(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	const password = "operator-test-password"
	for _, user := range []string{"fencekit-operator", "fencekit-viewer"} {
		s.ApplyACL(t, "../../docs/ACL.md", user, password)
	}
	seedPrefix(t, s, "fencekit")
	s.ResetACLLog(t)
	r := cli(t, "force-release", "session-1", "--reason", "test", "--url", "redis://fencekit-viewer:"+password+"@"+s.Addrs[0])
	if r.code != exitFailed || !strings.Contains(r.stderr, "NOPERM") {
		t.Errorf("viewer force-release: exit %d, %s", r.code, r.stderr)
	}
	s.ResetACLLog(t)
	r = cli(t, "force-release", "session-1", "--reason", "test", "--url", "redis://fencekit-operator:"+password+"@"+s.Addrs[0])
	if r.code != exitOK || !strings.Contains(r.stdout, "released lock") {
		t.Errorf("operator force-release: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if log := s.ACLLog(t); len(log) > 0 {
		t.Errorf("operator force-release was refused: %v", log)
	}
}
