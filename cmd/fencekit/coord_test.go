package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fencekit/fencekit/election"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/semaphore"
)

func TestElectionAndSemaphoreCommands(t *testing.T) {
	schemas := loadSchemas(t)
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		ctx := context.Background()
		prefix := s.Prefix(t)
		base := []string{"--url", serverURL(s), "--prefix", prefix}
		runCmd := func(args ...string) result {
			t.Helper()
			return cli(t, append(append([]string{}, args[:1]...), append(base, args[1:]...)...)...)
		}
		asJSON := func(schema string, args ...string) map[string]any {
			t.Helper()
			r := runCmd(append(args, "--json")...)
			if r.code != exitOK {
				t.Fatalf("fencekit %v: exit %d: %s", args, r.code, r.stderr)
			}
			if err := schemas.validate(schema, []byte(r.stdout)); err != nil {
				t.Fatalf("fencekit %v --json does not follow %s: %v\n%s", args, schema, err, r.stdout)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
				t.Fatal(err)
			}
			return m
		}

		if r := runCmd("election", "sched"); r.code != exitNotFound {
			t.Fatalf("election of nothing: exit %d, want %d", r.code, exitNotFound)
		}
		if r := runCmd("semaphore", "slots"); r.code != exitNotFound {
			t.Fatalf("semaphore of nothing: exit %d, want %d", r.code, exitNotFound)
		}

		e, err := election.New(s.NewClient(t), "sched", election.Options{Lock: lock.Options{Prefix: prefix, Owner: "replica-a"}})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		lead, err := e.Campaign(ctx, "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		m := asJSON("election.schema.json", "election", "sched")
		if m["owner"] != "replica-a" || m["term"] != lead.Term().String() || m["value"] != "10.0.0.1:80" || m["held"] != true {
			t.Errorf("election --json: %v", m)
		}
		if out := runCmd("election", "sched").stdout; !strings.Contains(out, "replica-a") || !strings.Contains(out, lead.Term().String()) {
			t.Errorf("election text: %s", out)
		}

		sem, err := semaphore.New(s.NewClient(t), "slots", semaphore.Options{Prefix: prefix, Owner: "exec-1", Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer sem.Close()
		p, err := sem.TryAcquire(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		m = asJSON("semaphore.schema.json", "semaphore", "slots")
		hs := m["holders"].([]any)
		if m["used"] != float64(2) || m["limit_stored"] != false || len(hs) != 1 || hs[0].(map[string]any)["token"] != p.Token().String() {
			t.Errorf("semaphore --json: %v", m)
		}
		if _, err := sem.SetLimit(ctx, 4); err != nil {
			t.Fatal(err)
		}
		if m = asJSON("semaphore.schema.json", "semaphore", "slots"); m["limit"] != float64(4) || m["limit_stored"] != true {
			t.Errorf("semaphore --json after SetLimit: %v", m)
		}
		if out := runCmd("semaphore", "slots").stdout; !strings.Contains(out, "exec-1") || !strings.Contains(out, p.Token().String()) {
			t.Errorf("semaphore text: %s", out)
		}

		// --watch prints a line per change.
		wctx, cancel := context.WithCancel(ctx)
		var mu sync.Mutex
		var out strings.Builder
		done := make(chan int, 1)
		go func() {
			done <- run(wctx, append([]string{"semaphore"}, append(base, "slots", "--watch", "--interval", "20ms", "--json")...),
				lockedWriter{&mu, &out}, &strings.Builder{}, func(string) string { return "" })
		}()
		time.Sleep(200 * time.Millisecond)
		if err := p.Release(ctx); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			txt := out.String()
			mu.Unlock()
			if strings.Contains(txt, `"used":0`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("--watch did not print the release:\n%s", txt)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("watch exited %d", code)
		}
		_ = lead.Resign(ctx)
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
