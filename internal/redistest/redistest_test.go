package redistest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEachSetGet(t *testing.T) {
	seen := map[string]bool{}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		seen[s.Name()] = true
		if s.Name() != string(s.Kind) || len(s.Addrs) == 0 || (s.Mini != nil) != (s.Kind == redistest.Mini) {
			t.Fatalf("inconsistent server %+v", s)
		}
		c := s.NewClient(t)
		key := s.Prefix(t) + ":k"
		if err := c.Do(ctx(t), c.B().Set().Key(key).Value("v").Build()).Error(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		got, err := c.Do(ctx(t), c.B().Get().Key(key).Build()).ToString()
		if err != nil || got != "v" {
			t.Fatalf("GET = %q, %v; want v", got, err)
		}
		msg := s.Do(t, "GET", key)
		if got, err := msg.ToString(); err != nil || got != "v" {
			t.Fatalf("Do GET = %q, %v; want v", got, err)
		}
		if msg := s.Do(t, "NOSUCHCOMMAND"); msg.Error() == nil {
			t.Fatalf("Do NOSUCHCOMMAND returned no error")
		}
	})
	if !seen["miniredis"] {
		t.Errorf("Each did not run the miniredis subtest")
	}
}

func TestAll(t *testing.T) {
	servers := redistest.All(t)
	var names []string
	for _, s := range servers {
		names = append(names, s.Name())
	}
	if len(servers) == 0 || names[0] != "miniredis" {
		t.Fatalf("All = %v, want miniredis first", names)
	}
	if os.Getenv(redistest.RequireEnv) == "1" && strings.Join(names, ",") != "miniredis,redis,cluster" {
		t.Fatalf("All = %v with %s=1", names, redistest.RequireEnv)
	}
}

func TestSharedServersAreShared(t *testing.T) {
	a, b := redistest.NewRedis(t), redistest.NewRedis(t)
	if a.Addrs[0] != b.Addrs[0] {
		t.Errorf("NewRedis returned %v and %v", a.Addrs, b.Addrs)
	}
	c, d := redistest.NewCluster(t), redistest.NewCluster(t)
	if strings.Join(c.Addrs, ",") != strings.Join(d.Addrs, ",") || len(c.Addrs) != 3 {
		t.Errorf("NewCluster returned %v and %v", c.Addrs, d.Addrs)
	}
}

func TestPrefix(t *testing.T) {
	s := redistest.NewMini(t)
	re := regexp.MustCompile(`^t[0-9a-f]{8}$`)
	seen := map[string]bool{}
	for range 1000 {
		p := s.Prefix(t)
		if !re.MatchString(p) || seen[p] {
			t.Fatalf("Prefix = %q (duplicate: %v)", p, seen[p])
		}
		seen[p] = true
	}
}

func TestClusterKeysAcrossSlots(t *testing.T) {
	s := redistest.NewCluster(t)
	c := s.NewClient(t)
	p := s.Prefix(t)

	// Enough keys to hit every master.
	const n = 200
	for i := range n {
		key := p + ":" + strconv.Itoa(i)
		if err := c.Do(ctx(t), c.B().Set().Key(key).Value(strconv.Itoa(i)).Build()).Error(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
	}
	for i := range n {
		key := p + ":" + strconv.Itoa(i)
		if got, err := c.Do(ctx(t), c.B().Get().Key(key).Build()).ToString(); err != nil || got != strconv.Itoa(i) {
			t.Fatalf("GET %s = %q, %v", key, got, err)
		}
		if msg := s.Do(t, "GET", key); !isString(&msg, strconv.Itoa(i)) {
			got, err := msg.ToString()
			t.Fatalf("Do GET %s = %q, %v", key, got, err)
		}
	}
	// Every master holds some of them.
	for _, addr := range s.Addrs {
		node, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, ForceSingleClient: true, DisableCache: true})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := node.Do(ctx(t), node.B().Keys().Pattern(p+":*").Build()).AsStrSlice()
		node.Close()
		if err != nil || len(keys) == 0 {
			t.Errorf("node %s holds %d of the keys (%v)", addr, len(keys), err)
		}
	}

	// A multi-key script on hash-tagged keys.
	k1, k2 := "{"+p+"}:a", "{"+p+"}:b"
	script := `redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return redis.call('MGET', KEYS[1], KEYS[2])`
	got, err := c.Do(ctx(t), c.B().Eval().Script(script).Numkeys(2).Key(k1, k2).Arg("x").Build()).AsStrSlice()
	if err != nil || strings.Join(got, ",") != "x,x" {
		t.Fatalf("EVAL = %v, %v; want [x x]", got, err)
	}
	// The same through Do, which routes EVAL by its first key.
	msg := s.Do(t, "EVAL", `return redis.call('MGET', KEYS[1], KEYS[2])`, "2", k1, k2)
	got, err = msg.AsStrSlice()
	if err != nil || strings.Join(got, ",") != "x,x" {
		t.Fatalf("Do EVAL = %v, %v; want [x x]", got, err)
	}
	// Without a hash tag the keys are in different slots.
	if msg := s.Do(t, "EVAL", `return redis.call('MGET', KEYS[1], KEYS[2])`, "2", p+":1", p+":2"); msg.Error() == nil {
		t.Errorf("cross-slot EVAL succeeded")
	}
}

func TestFastForward(t *testing.T) {
	s := redistest.NewMini(t)
	c := s.NewClient(t)
	key := s.Prefix(t)
	if err := c.Do(ctx(t), c.B().Set().Key(key).Value("v").Px(time.Second).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	s.FastForward(500 * time.Millisecond)
	if got := s.Do(t, "EXISTS", key); mustInt(t, got) != 1 {
		t.Fatalf("key expired after 500ms of 1s")
	}
	s.FastForward(600 * time.Millisecond)
	if got := s.Do(t, "EXISTS", key); mustInt(t, got) != 0 {
		t.Fatalf("key still exists after FastForward past its TTL")
	}

	// A no-op on real servers.
	r := redistest.NewRedis(t)
	r.FastForward(time.Hour)
	r.Do(t, "SET", key, "v", "PX", "60000")
	if got := r.Do(t, "EXISTS", key); mustInt(t, got) != 1 {
		t.Fatalf("FastForward changed a real server")
	}
	r.Do(t, "DEL", key)
}

func isString(m *rueidis.RedisMessage, want string) bool {
	got, err := m.ToString()
	return err == nil && got == want
}

func mustInt(t *testing.T, m rueidis.RedisMessage) int64 {
	t.Helper()
	n, err := (&m).AsInt64()
	if err != nil {
		t.Fatalf("reply is not an integer: %v", err)
	}
	return n
}

func TestPrivateRedisRestartLosesData(t *testing.T) {
	s := redistest.NewPrivateRedis(t, "--maxmemory", "10mb")
	if shared := redistest.NewRedis(t); shared.Addrs[0] == s.Addrs[0] {
		t.Fatalf("private server has the shared address %s", s.Addrs[0])
	}
	c := s.NewClient(t)
	cfg, err := c.Do(ctx(t), c.B().ConfigGet().Parameter("maxmemory").Build()).AsStrMap()
	if err != nil || cfg["maxmemory"] != "10485760" {
		t.Fatalf("CONFIG GET maxmemory = %v, %v: extra args not applied", cfg, err)
	}
	if err := c.Do(ctx(t), c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}

	s.Restart(t)

	// The old client reconnects (its first command on each old connection may
	// fail with an I/O error); the data is gone, the arguments are kept.
	if err := retryIO(t, func() rueidis.RedisResult { return c.Do(ctx(t), c.B().Get().Key("k").Build()) }).Error(); !rueidis.IsRedisNil(err) {
		t.Fatalf("GET after Restart: %v, want nil reply", err)
	}
	res := retryIO(t, func() rueidis.RedisResult { return c.Do(ctx(t), c.B().ConfigGet().Parameter("maxmemory").Build()) })
	if cfg, err := res.AsStrMap(); err != nil || cfg["maxmemory"] != "10485760" {
		t.Fatalf("after Restart CONFIG GET maxmemory = %v, %v", cfg, err)
	}

	s.Do(t, "SET", "k2", "v")
	s.Flush(t)
	if msg := s.Do(t, "GET", "k2"); !msg.IsNil() {
		t.Fatalf("Flush did not remove k2")
	}
}

// retryIO calls do until it returns no I/O error, for at most 5 s.
func retryIO(t *testing.T, do func() rueidis.RedisResult) rueidis.RedisResult {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		res := do()
		if res.NonRedisError() == nil || time.Now().After(deadline) {
			return res
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFlush(t *testing.T) {
	m := redistest.NewMini(t)
	m.Do(t, "SET", "k", "v")
	m.Flush(t)
	if m.Mini.Exists("k") {
		t.Errorf("Flush left k on miniredis")
	}

	// Flushing the shared cluster is safe here: the tests of this package
	// do not run in parallel.
	s := redistest.NewCluster(t)
	p := s.Prefix(t)
	for i := range 30 {
		s.Do(t, "SET", p+strconv.Itoa(i), "v")
	}
	s.Flush(t)
	for i := range 30 {
		if msg := s.Do(t, "GET", p+strconv.Itoa(i)); !msg.IsNil() {
			t.Fatalf("Flush left %s on the cluster", p+strconv.Itoa(i))
		}
	}
}

func TestRestartRejectsSharedServer(t *testing.T) {
	// Restart must refuse shared servers. A fake testing.TB records the
	// failure; Fatalf ends the helper goroutine like testing.T would.
	s := redistest.NewRedis(t)
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Restart(ft)
	}()
	<-done
	if !strings.Contains(ft.msg, "Restart needs a server from NewPrivateRedis") {
		t.Fatalf("Restart of a shared server: %q", ft.msg)
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	redistest.NewRedis(t) // skips unless redis-server works at all
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		redistest.NewPrivateRedis(ft, "--no-such-option", "x")
		t.Error("NewPrivateRedis with a bad option returned")
	}()
	<-done
	hint := "; set " + redistest.RequireEnv + "=1 to make this a failure\n"
	if os.Getenv(redistest.RequireEnv) == "1" {
		hint = " (" + redistest.RequireEnv + "=1, so this is a failure)\n"
	}
	for _, want := range []string{"redistest: cannot start redis-server", "exited during startup", hint, "--- last lines of the log", "no-such-option"} {
		if !strings.Contains(ft.msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, ft.msg)
		}
	}
	wantSkip := os.Getenv(redistest.RequireEnv) != "1"
	if ft.skipped != wantSkip {
		t.Errorf("skipped = %v, want %v (%s=%q)", ft.skipped, wantSkip, redistest.RequireEnv, os.Getenv(redistest.RequireEnv))
	}
}

// fatalTB records Fatal(f) and Skip(f) and ends the goroutine like
// testing.T does.
type fatalTB struct {
	testing.TB
	msg     string
	skipped bool
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalTB) Skipf(format string, args ...any) {
	f.skipped = true
	f.Fatalf(format, args...)
}

func (f *fatalTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fatalTB) Skip(args ...any) { f.Skipf("%s", fmt.Sprint(args...)) }

func TestReplica(t *testing.T) {
	primary, stopReplica := redistest.NewRedisWithReplica(t)
	c := primary.NewClient(t)
	if err := c.Do(ctx(t), c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx(t), c.B().Wait().Numreplicas(1).Timeout(1000).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 1000 = %d, %v; want 1", n, err)
	}

	stopReplica()
	stopReplica() // idempotent

	if err := c.Do(ctx(t), c.B().Set().Key("k").Value("w").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx(t), c.B().Wait().Numreplicas(1).Timeout(200).Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("WAIT 1 200 after stopReplica = %d, %v; want 0", n, err)
	}
}

// TestSkipAndRequire runs this test binary again with a PATH that lacks
// redis-server (or redis-cli) and checks that Each skips the real servers
// with a message, or fails them with FENCEKIT_REQUIRE_REDIS=1, while the
// miniredis subtest still passes.
func TestSkipAndRequire(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		t.Skip("already in the child process")
	}
	redisServer, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(redistest.RequireEnv) == "1" {
			t.Fatal("needs redis-server to build a PATH with only redis-server")
		}
		t.Skip("needs redis-server to build a PATH with only redis-server")
	}
	// A launcher rather than a symlink: redis-server may itself be a
	// wrapper script (Valkey's, in ../shared/servers) that finds its binary
	// next to its own path and needs dirname from the system PATH.
	onlyServer := t.TempDir()
	launcher := "#!/bin/sh\nPATH=/usr/bin:/bin exec '" + redisServer + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(onlyServer, "redis-server"), []byte(launcher), 0o755); err != nil {
		t.Fatal(err)
	}

	run := func(path, require string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildEach$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "PATH="+path, "REDISTEST_CHILD=1", redistest.RequireEnv+"="+require)
		if os.Getenv("GORACE") == "" {
			// Under -race, skip the detector's default 1 s sleep at exit.
			cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run(t.TempDir(), "")
	if err != nil {
		t.Fatalf("child without redis-server failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"--- PASS: TestChildEach/miniredis",
		"--- SKIP: TestChildEach/redis",
		"--- SKIP: TestChildEach/cluster",
		"redistest: redis-server not found in PATH; set FENCEKIT_REQUIRE_REDIS=1 to make this a failure",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child without redis-server: output lacks %q:\n%s", want, out)
		}
	}

	out, err = run(onlyServer, "")
	if err != nil {
		t.Fatalf("child with only redis-server failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"--- PASS: TestChildEach/miniredis",
		"--- PASS: TestChildEach/redis",
		"--- SKIP: TestChildEach/cluster",
		"redistest: redis-cli not found in PATH (needed to create the cluster); set FENCEKIT_REQUIRE_REDIS=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child with only redis-server: output lacks %q:\n%s", want, out)
		}
	}

	out, err = run(t.TempDir(), "1")
	if err == nil {
		t.Fatalf("child with %s=1 and no redis-server passed:\n%s", redistest.RequireEnv, out)
	}
	for _, want := range []string{
		"--- PASS: TestChildEach/miniredis",
		"--- FAIL: TestChildEach/redis",
		"--- FAIL: TestChildEach/cluster",
		"redistest: redis-server not found in PATH (FENCEKIT_REQUIRE_REDIS=1, so this is a failure)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child with %s=1: output lacks %q:\n%s", redistest.RequireEnv, want, out)
		}
	}
}

// TestChildEach is run by TestSkipAndRequire in a child process.
func TestChildEach(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") != "1" {
		t.Skip("only runs as the child of TestSkipAndRequire")
	}
	redistest.Each(t, func(t *testing.T, s *redistest.Server) {
		c := s.NewClient(t)
		if err := c.Do(ctx(t), c.B().Ping().Build()).Error(); err != nil {
			t.Fatal(err)
		}
	})
}
