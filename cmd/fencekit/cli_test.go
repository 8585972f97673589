package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/internal/skew"
	"github.com/fencekit/fencekit/lock"
)

// TestCommands seeds data with the real packages on every server kind and
// compares the CLI's text output with the golden files (the same files for
// every server kind) and its --json output with the schemas.
func TestCommands(t *testing.T) {
	schemas := loadSchemas(t)
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		d := seedData(t, s)
		url := serverURL(s)
		base := []string{"--url", url, "--prefix", d.prefix}
		runOK := func(args ...string) result {
			t.Helper()
			r := cli(t, append(append([]string{}, args[:1]...), append(base, args[1:]...)...)...)
			if r.code != exitOK {
				t.Fatalf("fencekit %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
			}
			return r
		}
		validJSON := func(schema string, args ...string) map[string]any {
			t.Helper()
			r := runOK(append(args, "--json")...)
			if err := schemas.validate(schema, []byte(r.stdout)); err != nil {
				t.Fatalf("fencekit %v --json does not follow %s: %v\n%s", args, schema, err, r.stdout)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
				t.Fatal(err)
			}
			return m
		}

		golden(t, "locks", runOK("locks").stdout, d.prefix)
		golden(t, "lock", runOK("lock", "session-1").stdout, d.prefix)
		golden(t, "lock_released", runOK("lock", "done-3").stdout, d.prefix)
		golden(t, "session", runOK("session", "session-1").stdout, d.prefix)
		golden(t, "checkpoints_page1", runOK("checkpoints", "session-1", "--limit", "2").stdout, d.prefix)
		golden(t, "checkpoint", runOK("checkpoint", "session-1", d.cpids[0]).stdout, d.prefix)

		// The second page, through the cursor the first page printed.
		m := validJSON("checkpoints.schema.json", "checkpoints", "session-1", "--limit", "2")
		if m["has_more"] != true || m["total"] != float64(3) {
			t.Fatalf("page 1: %v", m)
		}
		page2 := runOK("checkpoints", "session-1", "--limit", "2", "--cursor", m["next_cursor"].(string))
		golden(t, "checkpoints_page2", page2.stdout, d.prefix)

		locks := validJSON("locks.schema.json", "locks")
		var names []string
		for _, l := range locks["locks"].([]any) {
			l := l.(map[string]any)
			names = append(names, l["name"].(string))
			if l["name"] == "session-1" && l["token"] != d.session.Token().String() {
				t.Errorf("locks --json: token %v, want %s", l["token"], d.session.Token())
			}
		}
		if strings.Join(names, ",") != "job-7,session-1" {
			t.Errorf("locks --json: names %v, want job-7 and session-1", names)
		}
		l := validJSON("lock.schema.json", "lock", "job-7")
		if l["owner"] != "executor-b" || l["token"] != d.job.Token().String() || l["fence"] != d.job.Token().String() {
			t.Errorf("lock job-7 --json: %v", l)
		}
		validJSON("lock.schema.json", "lock", "done-3")
		sess := validJSON("session.schema.json", "session", "session-1")
		if sess["accepted_token"] != d.session.Token().String() || sess["message_count"] != float64(3) ||
			sess["resume_count"] != float64(1) || sess["step"] != float64(3) || len(sess["staged"].([]any)) != 2 {
			t.Errorf("session --json: %v", sess)
		}
		if lc := sess["latest_checkpoint"].(map[string]any); lc["id"] != d.cpids[2] {
			t.Errorf("session --json: latest checkpoint %v, want %s", lc["id"], d.cpids[2])
		}
		cp := validJSON("checkpoint.schema.json", "checkpoint", "session-1", d.cpids[1])
		if cp["step"] != float64(2) || cp["seq"] != float64(2) {
			t.Errorf("checkpoint --json: %v", cp)
		}
		// Text and --json print the same checkpoint document.
		if a, b := runOK("checkpoint", "session-1", d.cpids[1]).stdout, runOK("checkpoint", "session-1", d.cpids[1], "--json").stdout; a != b {
			t.Errorf("checkpoint text and --json differ:\n%s\n%s", a, b)
		}

		// Not found: exit 4.
		for _, args := range [][]string{
			{"lock", "no-such-lock"},
			{"session", "no-such-session"},
			{"checkpoints", "no-such-session"},
			{"checkpoint", "session-1", strings.Replace(d.cpids[0], "-s1-", "-s9-", 1)},
		} {
			r := cli(t, append(args, base...)...)
			if r.code != exitNotFound {
				t.Errorf("fencekit %v: exit %d, want %d (stderr %q)", args, r.code, exitNotFound, r.stderr)
			}
			if !strings.Contains(r.stderr, "not found") {
				t.Errorf("fencekit %v: stderr %q", args, r.stderr)
			}
		}
		// A cursor of another session is a usage error.
		if r := cli(t, append([]string{"checkpoints", "session-1", "--cursor", "bogus"}, base...)...); r.code != exitUsage {
			t.Errorf("bad cursor: exit %d, want %d (%s)", r.code, exitUsage, r.stderr)
		}
	})
}

// TestWatch follows a lock with --watch while it is released and taken by
// another executor, and checks that exactly those changes are printed.
func TestWatch(t *testing.T) {
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		d := seedData(t, s)
		schemas := loadSchemas(t)
		for _, asJSON := range []bool{false, true} {
			name := "watch-" + strconv.FormatBool(asJSON)
			c := d.client
			locker, err := lock.New(c, lock.Options{Prefix: d.prefix, Owner: "executor-c", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			first, err := locker.TryAcquire(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var out, errb syncBuffer
			args := []string{"lock", name, "--watch", "--interval", "10ms", "--url", serverURL(s), "--prefix", d.prefix}
			if asJSON {
				args = append(args, "--json")
			}
			done := make(chan int, 1)
			go func() { done <- run(ctx, args, &out, &errb, env(nil)) }()
			waitFor(t, &out, "executor-c", 1)
			if err := first.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
			released, acquired := "released "+name, "acquired "+name+" owner=executor-d"
			if asJSON {
				released, acquired = `"event":"released"`, `"event":"acquired"`
			}
			waitFor(t, &out, released, 1)
			other, err := lock.New(c, lock.Options{Prefix: d.prefix, Owner: "executor-d", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			second, err := other.TryAcquire(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, &out, acquired, 1)
			cancel()
			if code := <-done; code != exitOK {
				t.Fatalf("watch exited %d: %s", code, errb.String())
			}
			_ = second.Release(context.Background())
			_ = other.Close()
			_ = locker.Close()

			text := out.String()
			if asJSON {
				// The first document is the indented lock, then one line per event.
				dec := json.NewDecoder(strings.NewReader(text))
				var first json.RawMessage
				if err := dec.Decode(&first); err != nil {
					t.Fatal(err)
				}
				if err := schemas.validate("lock.schema.json", first); err != nil {
					t.Fatal(err)
				}
				var events []string
				for dec.More() {
					var ev json.RawMessage
					if err := dec.Decode(&ev); err != nil {
						t.Fatal(err)
					}
					if err := schemas.validate("lock-event.schema.json", ev); err != nil {
						t.Fatalf("%v: %s", err, ev)
					}
					var e lockEventJSON
					_ = json.Unmarshal(ev, &e)
					events = append(events, e.Event+":"+e.Lock.Owner)
				}
				if got := strings.Join(events, " "); got != "released: acquired:executor-d" {
					t.Errorf("events %q, want released then acquired by executor-d\n%s", got, text)
				}
				continue
			}
			var events []string
			for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
				f := strings.Fields(line)
				if len(f) > 2 && (f[1] == "released" || f[1] == "acquired" || f[1] == "changed") {
					events = append(events, f[1])
					if f[1] == "acquired" && !strings.Contains(line, "owner=executor-d token="+second.Token().String()) {
						t.Errorf("acquired line %q", line)
					}
				}
			}
			if got := strings.Join(events, " "); got != "released acquired" {
				t.Errorf("events %q, want \"released acquired\"\n%s", got, text)
			}
		}
	})
}

// waitFor waits until out contains want n times. It fails the test after
// a generous deadline; it asserts nothing about timing.
func waitFor(t *testing.T, out *syncBuffer, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(out.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLocksWatch follows all locks: a new lock shows up as acquired.
func TestLocksWatch(t *testing.T) {
	s := redistest.NewMini(t)
	d := seedData(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"locks", "--watch", "--interval", "10ms", "--url", serverURL(s), "--prefix", d.prefix}, &out, &errb, env(nil))
	}()
	waitFor(t, &out, "job-7", 1)
	lk, err := d.lockers[0].TryAcquire(context.Background(), "new-lock")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "acquired new-lock owner=executor-a", 1)
	if err := d.job.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "released job-7", 1)
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	_ = lk.Release(context.Background())
	if strings.Contains(out.String(), "changed") {
		t.Errorf("a TTL going down was reported as a change:\n%s", out.String())
	}
}

func TestDoctor(t *testing.T) {
	schemas := loadSchemas(t)
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		r := cli(t, "doctor", "--url", serverURL(s))
		if r.code != exitOK {
			t.Fatalf("doctor: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		golden(t, "doctor_"+s.Name()+serverTier(t, s), r.stdout, "")
		r = cli(t, "doctor", "--url", serverURL(s), "--json")
		if err := schemas.validate("doctor.schema.json", []byte(r.stdout)); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
		}
		var doc doctorJSON
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		status := map[string]string{}
		for _, c := range doc.Checks {
			status[c.Name] = c.Status
			if i := s.Info(t); c.Name == "server" && i.Name == "valkey" && i.AtLeast(9, 0) &&
				(c.Facts["set_ifeq"] != "true" || c.Facts["delifeq"] != "true" || c.Facts["redis_mode"] != string(s.Kind) && s.Kind == redistest.Cluster) {
				t.Errorf("Valkey %s: server facts %v, want set_ifeq, delifeq and its server_mode", i.Version, c.Facts)
			}
		}
		switch s.Kind {
		case redistest.Mini:
			// miniredis lacks INFO server, CONFIG and CLIENT TRACKING:
			// those checks degrade, none fails.
			for _, name := range []string{"server", "persistence", "maxmemory-policy", "replication"} {
				if status[name] != statusUnknown {
					t.Errorf("miniredis: %s is %q, want unknown", name, status[name])
				}
			}
			if status["client-side-caching"] != statusWarn {
				t.Errorf("miniredis: client-side-caching %q, want warn", status["client-side-caching"])
			}
		default:
			// The test servers run without AOF and RDB (see redistest).
			if status["persistence"] != statusWarn {
				t.Errorf("persistence %q, want warn", status["persistence"])
			}
			for _, name := range []string{"server", "maxmemory-policy", "replication", "client-side-caching"} {
				if status[name] != statusOK {
					t.Errorf("%s is %q, want ok", name, status[name])
				}
			}
			if doc.Result != statusWarn {
				t.Errorf("result %q, want warn", doc.Result)
			}
			// --strict turns the persistence warning into exit 1.
			if r := cli(t, "doctor", "--strict", "--url", serverURL(s)); r.code != exitFailed {
				t.Errorf("doctor --strict: exit %d, want %d", r.code, exitFailed)
			}
		}
		// The backend memory would pick: vset where COMMAND INFO knows
		// VCARD (Redis 8), scan elsewhere (no test server has FT.*).
		want := "exact scan fallback"
		if s.HasCommand(t, "VCARD") {
			want = "vector sets (VADD/VSIM) available"
		}
		if status["vector-search"] != statusOK || !strings.Contains(r.stdout, want) {
			t.Errorf("vector-search: %q, want ok and %q\n%s", status["vector-search"], want, r.stdout)
		}
	})
}

// serverTier is the golden-file suffix for the server s runs: "" for
// miniredis and Redis 7, "_redis8" for Redis 8 (vector sets), "_valkey"
// for Valkey. The output names the server and what it has, so each tier
// has its own expected output.
func serverTier(t *testing.T, s *redistest.Server) string {
	t.Helper()
	switch i := s.Info(t); {
	case i.Name == "valkey":
		return "_valkey"
	case i.Name == "redis" && i.Major >= 8:
		return "_redis8"
	}
	return ""
}

// TestDoctorEviction sets each kind of maxmemory-policy on a private server.
func TestDoctorEviction(t *testing.T) {
	s := redistest.NewPrivateRedis(t, "--maxmemory", "100mb", "--appendonly", "yes")
	for policy, want := range map[string]string{
		"noeviction":     statusOK,
		"allkeys-lru":    statusWarn,
		"volatile-ttl":   statusWarn,
		"allkeys-random": statusWarn,
	} {
		if msg := s.Do(t, "CONFIG", "SET", "maxmemory-policy", policy); msg.Error() != nil {
			t.Fatal(msg.Error())
		}
		r := cli(t, "doctor", "--json", "--url", serverURL(s))
		var doc doctorJSON
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		for _, c := range doc.Checks {
			switch c.Name {
			case "maxmemory-policy":
				if c.Status != want || c.Facts["maxmemory_policy"] != policy {
					t.Errorf("%s: %+v, want %s", policy, c, want)
				}
				if strings.HasPrefix(policy, "allkeys-") && !strings.Contains(c.Detail, "EVICT LOCK AND FENCE KEYS") {
					t.Errorf("%s: not loud enough: %s", policy, c.Detail)
				}
			case "persistence":
				if c.Status != statusOK || c.Facts["aof_enabled"] != "1" {
					t.Errorf("persistence with AOF on: %+v", c)
				}
			}
		}
	}
}

func TestExitCodes(t *testing.T) {
	// A port nobody listens on: bind one, note it, close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "redis://" + l.Addr().String()
	l.Close()
	s := redistest.NewMini(t)
	live := serverURL(s)
	for _, tc := range []struct {
		args []string
		code int
		in   string // expected in stderr
	}{
		{nil, exitUsage, "Usage"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"lock"}, exitUsage, "want 1 argument"},
		{[]string{"lock", "a", "b", "--url", live}, exitUsage, "want 1 argument"},
		{[]string{"locks", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"checkpoints", "s", "--limit", "0", "--url", live}, exitUsage, "--limit"},
		{[]string{"locks", "--watch", "--interval", "0s", "--url", live}, exitUsage, "--interval"},
		{[]string{"locks", "--url", "http://example.com"}, exitUsage, "invalid URL scheme"},
		{[]string{"locks", "--prefix", "a:b", "--url", live}, exitUsage, "--prefix"},
		{[]string{"lock", "bad{name}", "--url", live}, exitUsage, "invalid id"},
		{[]string{"lock", "", "--url", live}, exitUsage, "empty id"},
		{[]string{"checkpoint", "s", "not-a-checkpoint-id", "--url", live}, exitUsage, "invalid"},
		{[]string{"session", strings.Repeat("x", 300), "--url", live}, exitUsage, "invalid id"},
		{[]string{"locks", "--timeout", "-1s", "--url", live}, exitUsage, "--timeout"},
		{[]string{"locks", "--url", dead}, exitConnect, "cannot connect"},
		{[]string{"doctor", "--url", dead}, exitConnect, "cannot connect"},
		{[]string{"session", "x", "--url", dead}, exitConnect, "cannot connect"},
		{[]string{"lock", "nothing-here", "--url", live}, exitNotFound, "not found"},
	} {
		r := cli(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.in) {
			t.Errorf("fencekit %q: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.in)
		}
	}
	// help is not an error.
	if r := cli(t, "help"); r.code != exitOK || !strings.Contains(r.stdout, "Exit codes:") {
		t.Errorf("help: exit %d\n%s", r.code, r.stdout)
	}
	if r := cli(t, "help", "doctor"); r.code != exitOK || !strings.Contains(r.stdout, "--strict") {
		t.Errorf("help doctor: exit %d\n%s", r.code, r.stdout)
	}
	// REDIS_URL is the default of --url.
	if r := cliEnv(t, map[string]string{"REDIS_URL": dead}, "locks"); r.code != exitConnect || !strings.Contains(r.stderr, dead) {
		t.Errorf("REDIS_URL: exit %d, stderr %q", r.code, r.stderr)
	}
	// doctor --json reports the failed connection as a check.
	r := cli(t, "doctor", "--json", "--url", dead)
	if err := loadSchemas(t).validate("doctor.schema.json", []byte(r.stdout)); err != nil || r.code != exitConnect {
		t.Errorf("doctor --json on a dead port: exit %d, %v\n%s", r.code, err, r.stdout)
	}
}

// TestPasswordsNeverShown connects with an ACL user and password and with a
// wrong password: neither the output nor the errors contain the password.
func TestPasswordsNeverShown(t *testing.T) {
	s := redistest.NewMini(t)
	const password = "s3cr3t-pass"
	s.Mini.RequireUserAuth("ops", password)
	good := "redis://ops:" + password + "@" + s.Addrs[0]
	bad := "redis://ops:" + password + "-wrong@" + s.Addrs[0]
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"doctor", "--url", good}, exitOK},
		{[]string{"doctor", "--json", "--url", good}, exitOK},
		{[]string{"locks", "--url", good}, exitOK},
		{[]string{"locks", "--url", bad}, exitConnect},
		{[]string{"doctor", "--json", "--url", bad}, exitConnect},
		{[]string{"session", "nope", "--url", good}, exitNotFound},
	} {
		r := cli(t, tc.args...)
		if r.code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s\n%s", tc.args, r.code, tc.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "s3cr3t") {
			t.Errorf("%v: password shown:\n%s\n%s", tc.args, r.stdout, r.stderr)
		}
	}
	r := cli(t, "doctor", "--url", good)
	if !strings.Contains(r.stdout, "redis://ops:xxxxx@") {
		t.Errorf("doctor does not show the redacted URL:\n%s", r.stdout)
	}
}

// TestPerNode: on a cluster the worst master decides, and the report says
// how many masters it concerns.
func TestPerNode(t *testing.T) {
	d := &doctor{a: &app{}}
	for i, p := range []string{"noeviction", "allkeys-lru", "noeviction"} {
		d.nodes = append(d.nodes, &node{addr: "10.0.0." + strconv.Itoa(i+1) + ":6379", config: map[string]string{"maxmemory-policy": p, "maxmemory": "0"}})
	}
	r := d.perNode((*node).checkEviction)
	if r.Status != statusWarn || !strings.Contains(r.Detail, "on 1 of 3 masters, e.g. 10.0.0.2:6379") || r.Facts["worst_node"] != "10.0.0.2:6379" {
		t.Errorf("%+v", r)
	}
	d.nodes[1].config["maxmemory-policy"] = "noeviction"
	if r := d.perNode((*node).checkEviction); r.Status != statusOK || !strings.HasSuffix(r.Detail, "(all 3 masters)") {
		t.Errorf("%+v", r)
	}
	// An unknown node does not hide a failing one.
	d.nodes[0].config = nil
	d.nodes[2].repl = map[string]string{"role": "master", "connected_slaves": "0"}
	d.nodes[2].config["min-replicas-to-write"] = "1"
	if r := d.perNode((*node).checkReplication); r.Status != statusFail || r.Facts["worst_node"] != "10.0.0.3:6379" {
		t.Errorf("%+v", r)
	}
}

// TestDoctorSentinel: a URL naming a Sentinel without ?master_set= fails
// with the master sets it monitors and the URL to use; with master_set the
// doctor checks the primary behind it.
func TestDoctorSentinel(t *testing.T) {
	schemas := loadSchemas(t)
	primary := redistest.NewPrivateRedis(t)
	addr := redistest.NewSentinel(t, primary, "fkset")

	r := cli(t, "doctor", "--url", "redis://"+addr)
	if r.code != exitFailed {
		t.Fatalf("doctor on a Sentinel: exit %d, want %d\n%s\n%s", r.code, exitFailed, r.stdout, r.stderr)
	}
	for _, want := range []string{"fail  server", "Redis Sentinel", "redis://" + addr + "?master_set=fkset", "it monitors fkset at " + primary.Addrs[0]} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor on a Sentinel: no %q in\n%s", want, r.stdout)
		}
	}
	r = cli(t, "doctor", "--json", "--url", "redis://"+addr)
	if err := schemas.validate("doctor.schema.json", []byte(r.stdout)); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	var doc doctorJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Result != statusFail || len(doc.Checks) != 1 || doc.Checks[0].Facts["master_sets"] != "fkset" || doc.Checks[0].Facts["redis_mode"] != "sentinel" {
		t.Errorf("doctor --json on a Sentinel: %+v", doc)
	}

	r = cli(t, "doctor", "--json", "--url", "redis://"+addr+"?master_set=fkset")
	if r.code != exitOK {
		t.Fatalf("doctor with master_set: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	doc = doctorJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Checks {
		if c.Name == "server" && (c.Status != statusOK || !strings.Contains(c.Detail, "sentinel-managed (master set fkset)") || c.Facts["role"] != "master") {
			t.Errorf("server check through the Sentinel: %+v", c)
		}
	}
}

// TestDoctorReplicaClocks: doctor reads every replica's clock and warns
// when one is far from its primary's: a failover to it would mint tokens
// from the replicated fence alone.
func TestDoctorReplicaClocks(t *testing.T) {
	check := func(t *testing.T, args ...string) (checkResult, int) {
		t.Helper()
		r := cli(t, append([]string{"doctor", "--json"}, args...)...)
		var doc doctorJSON
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%v\n%s\n%s", err, r.stdout, r.stderr)
		}
		for _, c := range doc.Checks {
			if c.Name == "replica-clocks" {
				return c, r.code
			}
		}
		t.Fatalf("no replica-clocks check in\n%s", r.stdout)
		return checkResult{}, 0
	}
	skewOf := func(t *testing.T, c checkResult) time.Duration {
		t.Helper()
		us, err := strconv.ParseInt(c.Facts["max_skew_us"], 10, 64)
		if err != nil {
			t.Fatalf("max_skew_us: %v in %+v", err, c)
		}
		return time.Duration(us) * time.Microsecond
	}

	t.Run("in sync", func(t *testing.T) {
		primary, _ := redistest.NewRedisWithReplica(t)
		c, _ := check(t, "--url", serverURL(primary))
		if c.Status != statusOK || c.Facts["replicas"] != "1" || c.Facts["worst"] == "" {
			t.Fatalf("%+v", c)
		}
		if d := skewOf(t, c); d > clockWarn || d < -clockWarn {
			t.Errorf("replica on the same host %v off", d)
		}
	})

	t.Run("9.5 s behind", func(t *testing.T) {
		dir := t.TempDir()
		lib, err := skew.Build(dir)
		if err != nil {
			if os.Getenv(redistest.RequireEnv) == "1" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
		file := filepath.Join(dir, "offset")
		if err := skew.Set(file, -9500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		primary, _ := redistest.NewRedisWithReplicaEnv(t, skew.Env(lib, file))
		c, code := check(t, "--url", serverURL(primary))
		t.Log(c.Detail)
		if c.Status != statusWarn || !strings.Contains(c.Detail, "behind its primary") || !strings.Contains(c.Detail, "MinReplicas") {
			t.Fatalf("%+v", c)
		}
		if d := skewOf(t, c); d > -9*time.Second || d < -10*time.Second {
			t.Errorf("skew %v, want about -9.5s", d)
		}
		if code != exitOK {
			t.Errorf("a warning without --strict: exit %d", code)
		}
		if _, code := check(t, "--strict", "--url", serverURL(primary)); code != exitFailed {
			t.Errorf("a warning with --strict: exit %d, want %d", code, exitFailed)
		}
	})
}

// TestDoctorSessionMemory: session-memory warns about a
// hash-max-listpack-value below 1 KiB, and (with --event-log only) about a
// stream-node-max-bytes above 1 KiB.
func TestDoctorSessionMemory(t *testing.T) {
	s := redistest.NewPrivateRedis(t)
	for _, tc := range []struct {
		listpack, node string
		eventLog       bool
		want, mention  string
	}{
		{"64", "4096", false, statusWarn, "hash-max-listpack-value 64: a session"},
		{"2048", "4096", false, statusOK, "if you turn event logs on"},
		{"2048", "4096", true, statusWarn, "stream-node-max-bytes 4096: every session event log"},
		{"2048", "512", true, statusOK, "stream-node-max-bytes 512: a session event log starts small"},
		{"1024", "0", true, statusWarn, "stream-node-max-bytes 0"},
	} {
		for _, kv := range [][2]string{{"hash-max-listpack-value", tc.listpack}, {"stream-node-max-bytes", tc.node}} {
			if msg := s.Do(t, "CONFIG", "SET", kv[0], kv[1]); msg.Error() != nil {
				t.Fatal(msg.Error())
			}
		}
		args := []string{"doctor", "--json", "--url", serverURL(s)}
		if tc.eventLog {
			args = append(args, "--event-log")
		}
		r := cli(t, args...)
		var doc doctorJSON
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		found := false
		for _, c := range doc.Checks {
			if c.Name != "session-memory" {
				continue
			}
			found = true
			if c.Status != tc.want || !strings.Contains(c.Detail, tc.mention) || c.Facts["hash_max_listpack_value"] != tc.listpack {
				t.Errorf("%+v: got %s %q %v", tc, c.Status, c.Detail, c.Facts)
			}
		}
		if !found {
			t.Errorf("%+v: no session-memory check\n%s", tc, r.stdout)
		}
	}
}
