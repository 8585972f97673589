package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/checkpoint"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/staging"
	"github.com/fencekit/fencekit/statestore"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) { redistest.Main(m) }

// serverURL is the --url of a test server: the cluster's other nodes go in
// addr= parameters.
func serverURL(s *redistest.Server) string {
	u := "redis://" + s.Addrs[0]
	for i, a := range s.Addrs[1:] {
		if i == 0 {
			u += "?addr=" + a
		} else {
			u += "&addr=" + a
		}
	}
	return u
}

// result is what one run of the CLI printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is the environment the CLI sees in tests: nothing but USER.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func cli(t *testing.T, args ...string) result {
	t.Helper()
	return cliEnv(t, map[string]string{"USER": "tester"}, args...)
}

func cliEnv(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	var out, errb syncBuffer
	code := run(context.Background(), args, &out, &errb, env(vars))
	return result{out.String(), errb.String(), code}
}

// Normalisation of volatile values before golden comparison. Each rule
// replaces a value that differs from run to run with a placeholder:
// the test's random key prefix with PREFIX, server timestamps with <time>,
// 16-digit time-seeded fencing tokens with <token>, durations (TTLs,
// latencies, clock offsets) with <dur>, checkpoint ids' time and random
// parts with t<ms>-<hex>, cursors with <cursor>, loopback ports with
// <port>, the server version with <version>. Then runs of spaces are
// folded into one, because tabwriter's column widths follow the widths of
// the replaced values. The statuses of the clock and latency checks depend
// on the machine's load and are replaced by <status>, and so are the
// counts of ok and warn checks and the sign of the clock offset.
var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "<time>"},
	{regexp.MustCompile(`\b[1-9]\d{15}\b`), "<token>"},
	{regexp.MustCompile(`-t\d+-[0-9a-f]{6}\b`), "-t<ms>-<hex>"},
	{regexp.MustCompile(`--cursor \S+`), "--cursor <cursor>"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:<port>"},
	{regexp.MustCompile(`\b(\d+(\.\d+)?(h|ms|µs|ns|m|s))+\b`), "<dur>"},
	{regexp.MustCompile(`(Redis|Valkey) \d+\.\d+\.\d+`), "$1 <version>"},
	{regexp.MustCompile(`(?m)^  (ok|warn|fail|unknown)(\s+(clock|latency)\s)`), "  <status>$2"},
	{regexp.MustCompile(`\d+ ok, \d+ warning\(s\)`), "<n> ok, <n> warning(s)"},
	{regexp.MustCompile(`(ahead of|behind) ours`), "<ahead of/behind> ours"},
	{regexp.MustCompile(`[ ]{2,}`), " "},
}

func normalise(s, prefix string) string {
	if prefix != "" {
		s = strings.ReplaceAll(s, prefix, "PREFIX")
	}
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// golden compares got (normalised) with testdata/<name>.golden, or
// rewrites the file with -update.
func golden(t *testing.T, name, got, prefix string) {
	t.Helper()
	got = normalise(got, prefix)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (normalised):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// seeded is the data seedData writes.
type seeded struct {
	prefix  string
	session *lock.Lock // holds "session-1"
	job     *lock.Lock // holds "job-7"
	cpids   []string   // oldest first
	lockers []*lock.Locker
	client  rueidis.Client
}

// seedData writes, with the real packages, one session "session-1" held by
// executor-a (3 messages, 2 staged changes, 3 checkpoints, resumed once),
// a lock "job-7" held by executor-b, and a lock "done-3" acquired and
// released (fence only).
func seedData(t *testing.T, s *redistest.Server) *seeded {
	t.Helper()
	return seedPrefix(t, s, s.Prefix(t))
}

// seedPrefix is seedData with the key prefix given.
func seedPrefix(t *testing.T, s *redistest.Server, prefix string) *seeded {
	t.Helper()
	ctx := context.Background()
	c := s.NewClient(t)
	d := &seeded{prefix: prefix, client: c}
	newLocker := func(owner string) *lock.Locker {
		l, err := lock.New(c, lock.Options{Prefix: d.prefix, Owner: owner, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		d.lockers = append(d.lockers, l)
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	a, b := newLocker("executor-a"), newLocker("executor-b")
	var err error
	if d.session, err = a.TryAcquire(ctx, "session-1"); err != nil {
		t.Fatal(err)
	}
	if d.job, err = b.TryAcquire(ctx, "job-7"); err != nil {
		t.Fatal(err)
	}
	done, err := b.TryAcquire(ctx, "done-3")
	if err != nil {
		t.Fatal(err)
	}
	if err := done.Release(ctx); err != nil {
		t.Fatal(err)
	}

	store, err := statestore.New(c, statestore.Options{Prefix: d.prefix})
	if err != nil {
		t.Fatal(err)
	}
	tok := d.session.Token()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.Create(ctx, "session-1", tok, statestore.State{AgentType: "coder", Status: statestore.StatusPending, Data: json.RawMessage(`{"items":[]}`)}))
	must(store.CompareAndSetStatus(ctx, "session-1", tok, []statestore.Status{statestore.StatusPending}, statestore.StatusRunning))
	must(store.AppendMessages(ctx, "session-1", tok, json.RawMessage(`{"role":"user","text":"hi"}`), json.RawMessage(`{"role":"assistant","text":"hello"}`)))
	must(store.IncrementResumeCount(ctx, "session-1", tok))
	cps := checkpoint.New(store)
	for step := int64(1); step <= 3; step++ {
		must(store.IncrementStep(ctx, "session-1", tok))
		id, err := cps.Save(ctx, "session-1", tok, checkpoint.Checkpoint{
			Step: step, State: json.RawMessage(`{"items":[` + strings.Repeat("1,", int(step-1)) + `1]}`), MessageCount: 2,
			Metadata: json.RawMessage(`{"reason":"step done"}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		d.cpids = append(d.cpids, id)
	}
	must(store.AppendMessages(ctx, "session-1", tok, json.RawMessage(`{"role":"tool","text":"ok"}`)))
	st := staging.New(store)
	must(st.Stage(ctx, "session-1", 4, tok, staging.Change{ToolCallID: "call-1", Patches: json.RawMessage(`[{"op":"add","path":"/items/-","value":4}]`)}))
	must(st.Stage(ctx, "session-1", 4, tok, staging.Change{ToolCallID: "call-2", Merge: json.RawMessage(`{"note":"x"}`)}))
	return d
}
