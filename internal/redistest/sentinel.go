package redistest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// NewSentinel starts a redis-sentinel that monitors primary (a redis-server
// started by this package) as master set name, with quorum 1, and returns
// its address. It is stopped at t.Cleanup. If redis-sentinel is missing or
// does not start, the test is skipped (or fails, see RequireEnv).
func NewSentinel(t testing.TB, primary *Server, name string) string {
	t.Helper()
	addr, err := startSentinel(primary.Addrs[0], name, t.Cleanup)
	if err != nil {
		unavailable(t, err)
	}
	return addr
}

func startSentinel(primary, name string, cleanup func(func())) (string, error) {
	bin, err := lookPath("redis-sentinel")
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return "", err
	}
	dir, err := newDir()
	if err != nil {
		return "", err
	}
	cleanup(func() { _ = os.RemoveAll(dir) })
	p, err := launchOnFreePort(false, func(sp int) (*proc, error) {
		// Sentinel rewrites its config file, so it gets one of its own.
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\nsentinel monitor %s %s %s 1\n", sp, dir, name, host, port)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, err
		}
		return &proc{bin: bin, port: sp, dir: dir, logPath: filepath.Join(dir, "sentinel.log"), args: []string{conf}}, nil
	})
	if err != nil {
		return "", fmt.Errorf("cannot start redis-sentinel: %w", err)
	}
	cleanup(p.stop)
	return p.addr(), nil
}
