package redistest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"
)

// Kind says what kind of server a Server is.
type Kind string

// The kinds of servers.
const (
	Mini    Kind = "miniredis" // in-process github.com/alicebob/miniredis/v2
	Redis   Kind = "redis"     // real redis-server, standalone
	Cluster Kind = "cluster"   // real Redis Cluster, 3 masters, no replicas
)

// RequireEnv is the environment variable that turns skips for missing or
// broken real servers into test failures when set to "1".
const RequireEnv = "FENCEKIT_REQUIRE_REDIS"

// Server is a Redis server (or cluster) for tests.
type Server struct {
	// Kind is the kind of server.
	Kind Kind
	// Addrs are the host:port addresses for rueidis.ClientOption.InitAddress:
	// one for Mini and Redis, all nodes for Cluster.
	Addrs []string
	// Mini is the miniredis instance; non-nil only for Kind == Mini.
	Mini *miniredis.Miniredis

	procs   []*proc     // real server processes, masters first
	dir     string      // directory holding the processes' directories
	private bool        // owned by one test, so Restart is allowed
	tls     *tls.Config // client configuration of a TLS server, nil for plaintext

	adminMu sync.Mutex
	admin   rueidis.Client // for Do, created on first use

	stopOnce sync.Once
}

// Name returns the name of the server kind ("miniredis", "redis" or
// "cluster"), used as the subtest name by Each.
func (s *Server) Name() string {
	return string(s.Kind)
}

// ClientOption returns options for a rueidis client of this server:
// InitAddress is Addrs, dials time out after 2 s and ConnWriteTimeout is 5 s.
// A TLS server (NewTLSRedis, NewTLSCluster) sets TLSConfig: trust the
// test CA, present the client certificate.
// For Mini and Redis the client is a single-node client (ForceSingleClient:
// miniredis answers CLUSTER SLOTS, which would otherwise make rueidis build
// a cluster client). Mini also sets DisableCache, because miniredis has no
// CLIENT TRACKING, and AlwaysRESP2, because miniredis refuses every command
// on a RESP3 connection that has a subscription; real servers keep rueidis'
// defaults.
// Callers may change the returned options before creating a client.
func (s *Server) ClientOption() rueidis.ClientOption {
	opt := rueidis.ClientOption{
		InitAddress:      append([]string(nil), s.Addrs...),
		Dialer:           net.Dialer{Timeout: 2 * time.Second},
		ConnWriteTimeout: 5 * time.Second,
	}
	switch s.Kind {
	case Mini:
		opt.DisableCache = true
		opt.AlwaysRESP2 = true
		opt.ForceSingleClient = true
	case Redis:
		opt.ForceSingleClient = true
	}
	if s.tls != nil {
		opt.TLSConfig = s.tls.Clone()
	}
	return opt
}

// NewClient returns a new rueidis client for the server, closed in
// t.Cleanup. It calls t.Fatal if the client cannot be created.
func (s *Server) NewClient(t testing.TB) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(s.ClientOption())
	if err != nil {
		t.Fatalf("redistest: new rueidis client for %s %v: %v", s.Name(), s.Addrs, err)
	}
	t.Cleanup(c.Close)
	return c
}

var prefixes struct {
	mu   sync.Mutex
	seen map[string]bool
}

// Prefix returns a key prefix that no other call in this test binary
// returned: "t" followed by 8 random hex digits, without braces or colons.
// Tests put it in front of their keys to stay apart from other tests on a
// shared server (for cluster hash tags, wrap it: "{"+p+"}").
func (s *Server) Prefix(t testing.TB) string {
	t.Helper()
	prefixes.mu.Lock()
	defer prefixes.mu.Unlock()
	if prefixes.seen == nil {
		prefixes.seen = map[string]bool{}
	}
	for {
		b := make([]byte, 4)
		_, _ = rand.Read(b) // never fails, see crypto/rand.Read
		p := "t" + hex.EncodeToString(b)
		if !prefixes.seen[p] {
			prefixes.seen[p] = true
			return p
		}
	}
}

// FastForward moves time forward by d on miniredis (Miniredis.FastForward),
// which expires keys whose TTL ran out. On real servers it does nothing:
// tests that need keys to expire there must sleep.
func (s *Server) FastForward(d time.Duration) {
	if s.Mini != nil {
		s.Mini.FastForward(d)
	}
}

// Do runs a raw command through a client kept for this server and returns
// the reply. Redis error replies are returned as messages (check
// msg.Error()); connection errors fail the test. On a cluster the command is
// routed by its first key (by numkeys for EVAL, EVALSHA and FCALL), and
// rueidis follows MOVED redirections; keyless commands go to an arbitrary
// node, so use Flush for FLUSHALL.
func (s *Server) Do(t testing.TB, args ...string) rueidis.RedisMessage {
	t.Helper()
	if len(args) == 0 || args[0] == "" || strings.HasSuffix(strings.ToUpper(args[0]), "SUBSCRIBE") {
		t.Fatalf("redistest: Do needs a command other than (P|S)SUBSCRIBE, got %q", args)
	}
	c, err := s.adminClient()
	if err != nil {
		t.Fatalf("redistest: client for %s %v: %v", s.Name(), s.Addrs, err)
	}
	var cmd rueidis.Completed
	if head, key, tail, ok := splitKey(args); ok {
		cmd = c.B().Arbitrary(head...).Keys(key).Args(tail...).Build()
	} else {
		cmd = c.B().Arbitrary(args...).Build()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := c.Do(ctx, cmd)
	if err := res.NonRedisError(); err != nil {
		t.Fatalf("redistest: %s on %s %v: %v", strings.Join(args, " "), s.Name(), s.Addrs, err)
	}
	msg, _ := res.ToMessage()
	return msg
}

// keylessCommands take no key as their first argument.
var keylessCommands = map[string]bool{
	"ACL": true, "AUTH": true, "BGREWRITEAOF": true, "BGSAVE": true, "CLIENT": true,
	"CLUSTER": true, "COMMAND": true, "CONFIG": true, "DBSIZE": true, "DEBUG": true,
	"DISCARD": true, "ECHO": true, "EXEC": true, "FLUSHALL": true, "FLUSHDB": true,
	"FUNCTION": true, "HELLO": true, "INFO": true, "KEYS": true, "LASTSAVE": true,
	"LATENCY": true, "MEMORY": true, "MULTI": true, "OBJECT": true, "PING": true,
	"PUBLISH": true, "PUBSUB": true, "RANDOMKEY": true, "READONLY": true,
	"READWRITE": true, "REPLICAOF": true, "ROLE": true, "SAVE": true, "SCAN": true,
	"SCRIPT": true, "SELECT": true, "SLAVEOF": true, "SLOWLOG": true, "SWAPDB": true,
	"TIME": true, "UNWATCH": true, "WAIT": true, "WAITAOF": true,
}

// splitKey splits a command into the arguments before the key that routes
// it on a cluster, that key, and the arguments after it. ok is false for
// commands without a key.
func splitKey(args []string) (head []string, key string, tail []string, ok bool) {
	name := strings.ToUpper(args[0])
	switch {
	case keylessCommands[name] || len(args) < 2:
		return nil, "", nil, false
	case name == "EVAL" || name == "EVALSHA" || name == "EVAL_RO" || name == "EVALSHA_RO" ||
		name == "FCALL" || name == "FCALL_RO":
		// EVAL script numkeys key [key ...] [arg ...]
		if len(args) < 4 {
			return nil, "", nil, false
		}
		if n, err := strconv.Atoi(args[2]); err != nil || n < 1 {
			return nil, "", nil, false
		}
		return args[:3], args[3], args[4:], true
	default:
		return args[:1], args[1], args[2:], true
	}
}

func (s *Server) adminClient() (rueidis.Client, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.admin == nil {
		opt := s.ClientOption()
		opt.DisableCache = true
		c, err := rueidis.NewClient(opt)
		if err != nil {
			return nil, err
		}
		s.admin = c
	}
	return s.admin, nil
}

// Flush runs FLUSHALL on every node (on a cluster: every master; replicas
// are skipped). Shared servers are shared by all tests of the binary, so
// prefer Prefix and use Flush sparingly.
func (s *Server) Flush(t testing.TB) {
	t.Helper()
	if s.Mini != nil {
		s.Mini.FlushAll()
		return
	}
	for _, addr := range s.Addrs {
		_, err := rawDo(addr, 5*time.Second, "FLUSHALL")
		var re respError
		if errors.As(err, &re) && strings.HasPrefix(string(re), "READONLY") {
			continue
		}
		if err != nil {
			t.Fatalf("redistest: FLUSHALL on %s: %v", addr, err)
		}
	}
}

// Restart kills the server with SIGKILL and starts it again on the same
// port with the same arguments, then waits until it answers PING. Nothing
// is persisted, so all data is lost. Existing clients reconnect by
// themselves, but the first command on each of their old connections may
// fail with an I/O error such as EOF; retry it or make a new client. Only
// servers owned by one test support Restart: those from NewPrivateRedis and
// the primary from NewRedisWithReplica.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if !s.private || len(s.procs) != 1 {
		t.Fatalf("redistest: Restart needs a server from NewPrivateRedis, not a shared %s server", s.Name())
	}
	s.closeAdmin() // Do gets a new client with fresh connections
	if err := s.procs[0].restart(); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// stop closes the Do client, stops all processes and removes the
// directories. It is idempotent.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		s.closeAdmin()
		stopAll(s.procs)
		if s.dir != "" {
			_ = os.RemoveAll(s.dir)
		}
	})
}

// closeAdmin closes the client used by Do, if any.
func (s *Server) closeAdmin() {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if s.admin != nil {
		s.admin.Close()
		s.admin = nil
	}
}

// stopAll stops processes concurrently.
func stopAll(procs []*proc) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// unavailable skips the test because a real server is unavailable, or fails
// it if RequireEnv is set to "1".
func unavailable(t testing.TB, err error) {
	t.Helper()
	if required() {
		t.Fatal(unavailableMsg(err))
	}
	t.Skip(unavailableMsg(err))
}

// required reports whether RequireEnv is set to "1".
func required() bool {
	return os.Getenv(RequireEnv) == "1"
}

// unavailableMsg formats err for unavailable, with the hint about RequireEnv
// after the first line (before any log tail).
func unavailableMsg(err error) string {
	first, rest, _ := strings.Cut(err.Error(), "\n")
	if rest != "" {
		rest = "\n" + rest
	}
	if required() {
		return fmt.Sprintf("redistest: %s (%s=1, so this is a failure)%s", first, RequireEnv, rest)
	}
	return fmt.Sprintf("redistest: %s; set %s=1 to make this a failure%s", first, RequireEnv, rest)
}

// newDir makes a directory for the processes of one server.
func newDir() (string, error) {
	return os.MkdirTemp("", "redistest-")
}

// errorWithTails appends the log tails of procs to err.
func errorWithTails(err error, procs []*proc) error {
	var b strings.Builder
	b.WriteString(err.Error())
	for _, p := range procs {
		fmt.Fprintf(&b, "\n%s", p.logSection())
	}
	return errors.New(b.String())
}
