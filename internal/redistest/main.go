package redistest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fencekit/fencekit/internal/leakcheck"
)

// mainRunning is set by Main; shared servers need it to be stopped.
var mainRunning atomic.Bool

// shared holds the servers shared by all tests of the binary. A start
// attempt happens at most once per kind; its error is remembered.
var shared struct {
	mu         sync.Mutex
	redis      *Server
	redisErr   error
	cluster    *Server
	clusterErr error
}

var errNoMain = errors.New("shared servers need func TestMain(m *testing.M) { redistest.Main(m) } in the test package")

// sharedServer returns the shared server of kind k (Redis or Cluster),
// starting it on first use.
func sharedServer(k Kind) (*Server, error) {
	if !mainRunning.Load() {
		return nil, errNoMain
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	switch k {
	case Redis:
		if shared.redis == nil && shared.redisErr == nil {
			shared.redis, shared.redisErr = startStandalone(nil)
		}
		return shared.redis, shared.redisErr
	default:
		if shared.cluster == nil && shared.clusterErr == nil {
			shared.cluster, shared.clusterErr = startCluster()
		}
		return shared.cluster, shared.clusterErr
	}
}

// get returns the shared server of kind k or ends the test: a missing
// TestMain fails it, an unavailable server skips (or fails) it.
func get(t testing.TB, k Kind) *Server {
	t.Helper()
	s, err := sharedServer(k)
	if errors.Is(err, errNoMain) {
		t.Fatalf("redistest: %v", err)
	}
	if err != nil {
		unavailable(t, err)
	}
	return s
}

// NewRedis returns the standalone redis-server shared by all tests of this
// test binary, started on first use and stopped by Main. Tests must isolate
// their keys with Prefix. If redis-server is missing or does not start, the
// test is skipped (or fails, see RequireEnv); the start is not retried.
func NewRedis(t testing.TB) *Server {
	t.Helper()
	return get(t, Redis)
}

// NewCluster returns the Redis Cluster (3 masters, no replicas) shared by
// all tests of this test binary, started on first use and stopped by Main.
// It needs redis-server and redis-cli; rules are those of NewRedis.
func NewCluster(t testing.TB) *Server {
	t.Helper()
	return get(t, Cluster)
}

// All returns a fresh miniredis server, the shared standalone server and the
// shared cluster, leaving out (with a log line) the real servers that are
// unavailable. With FENCEKIT_REQUIRE_REDIS=1 an unavailable server fails the
// test instead.
func All(t testing.TB) []*Server {
	t.Helper()
	servers := []*Server{NewMini(t)}
	for _, k := range []Kind{Redis, Cluster} {
		s, err := sharedServer(k)
		switch {
		case errors.Is(err, errNoMain):
			t.Fatalf("redistest: %v", err)
		case err != nil && required():
			t.Fatal(unavailableMsg(fmt.Errorf("%s: %w", k, err)))
		case err != nil:
			t.Log(unavailableMsg(fmt.Errorf("leaving out %s: %w", k, err)))
		default:
			servers = append(servers, s)
		}
	}
	return servers
}

// Each runs fn in a subtest per server kind, named after it: "miniredis"
// (fresh for the subtest), "redis" and "cluster" (shared). A subtest whose
// server is unavailable is skipped (or fails, see RequireEnv) while the
// others run. fn must not call t.Parallel: the subtests run one after the
// other.
func Each(t *testing.T, fn func(t *testing.T, s *Server)) {
	t.Helper()
	for _, k := range []Kind{Mini, Redis, Cluster} {
		t.Run(string(k), func(t *testing.T) {
			var s *Server
			if k == Mini {
				s = NewMini(t)
			} else {
				s = get(t, k)
			}
			fn(t, s)
		})
	}
}

// Main runs the tests, checks for leaked goroutines (package leakcheck) if
// they passed, stops the shared servers and exits with the right code. Use
// it as
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	// Check for leaks while the servers still run: a leaked goroutine that
	// talks to Redis should not be hidden by its connection breaking.
	code = leakcheck.Check(code)
	stopShared()
	os.Exit(code)
}

// stopShared stops the shared servers that were started.
func stopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range []*Server{shared.redis, shared.cluster} {
		if s != nil {
			wg.Go(s.stop)
		}
	}
	wg.Wait()
}
