package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"
)

// NewMini returns a fresh miniredis server (miniredis.RunT), closed at the
// end of the test.
func NewMini(t testing.TB) *Server {
	t.Helper()
	m := miniredis.RunT(t)
	s := &Server{Kind: Mini, Addrs: []string{m.Addr()}, Mini: m}
	t.Cleanup(s.stop) // runs before miniredis' own cleanup
	return s
}

// NewPrivateRedis starts a fresh standalone redis-server for this test only,
// for tests that flush, restart or reconfigure the server. extraArgs are
// appended to the command line (for example "--maxmemory", "10mb"). The
// server is stopped at t.Cleanup. If redis-server is missing or does not
// start, the test is skipped (or fails, see RequireEnv).
func NewPrivateRedis(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	s, err := startStandalone(extraArgs)
	if err != nil {
		unavailable(t, err)
	}
	s.private = true
	t.Cleanup(s.stop)
	return s
}

// NewRedisWithReplica starts a fresh standalone primary and one replica of
// it, and waits until the replica's link is up and the primary reports
// connected_slaves:1, so that WAIT 1 succeeds after a write. Both are
// stopped at t.Cleanup. stopReplica stops the replica early; it may be
// called more than once. The primary supports Restart. Skip and failure
// rules are those of NewPrivateRedis.
func NewRedisWithReplica(t testing.TB) (primary *Server, stopReplica func()) {
	t.Helper()
	return NewRedisWithReplicaEnv(t, nil)
}

// NewRedisWithReplicaEnv is NewRedisWithReplica with env added to the
// replica's environment (for example the clock shim of package
// internal/skew, see skew.Env).
func NewRedisWithReplicaEnv(t testing.TB, env []string) (primary *Server, stopReplica func()) {
	t.Helper()
	primary, err := startStandalone([]string{"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"})
	if err != nil {
		unavailable(t, err)
	}
	primary.private = true
	t.Cleanup(primary.stop)

	replica, err := startServer(primary.procs[0].bin, primary.dir, false, func(int) []string {
		return []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.procs[0].port), "--repl-diskless-load", "on-empty-db"}
	}, env...)
	if err != nil {
		unavailable(t, fmt.Errorf("cannot start replica: %w", err))
	}
	var once sync.Once
	stopReplica = func() { once.Do(replica.stop) }
	t.Cleanup(stopReplica) // runs before primary.stop

	err = waitFor(startTimeout, func() error {
		info, err := rawString(replica.addr(), probeTimeout, "INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica: master link not up yet:\n%s", info)
		}
		info, err = rawString(primary.Addrs[0], probeTimeout, "INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "connected_slaves:1") || !strings.Contains(info, "state=online") {
			return fmt.Errorf("primary: replica not online yet:\n%s", info)
		}
		// Online is not enough: right after the sync, the replica does not
		// acknowledge the first write until its next periodic ACK (up to
		// a second later). Only a write that WAIT saw acknowledged proves
		// the link is ready.
		out, err := rawPipeline(primary.Addrs[0], probeTimeout,
			[]string{"SET", "redistest:replica-probe", "1"},
			[]string{"WAIT", "1", "100"},
			[]string{"DEL", "redistest:replica-probe"},
			[]string{"WAIT", "1", "100"})
		if err != nil {
			return err
		}
		if out[1] != int64(1) || out[3] != int64(1) {
			return fmt.Errorf("primary: WAIT 1 after a write answered %v and %v", out[1], out[3])
		}
		return nil
	})
	if err != nil {
		unavailable(t, errorWithTails(fmt.Errorf("replication did not come up: %w", err), []*proc{primary.procs[0], replica}))
	}
	return primary, stopReplica
}

// startStandalone starts a standalone redis-server in a new directory.
func startStandalone(extraArgs []string) (*Server, error) {
	bin, err := lookPath("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := newDir()
	if err != nil {
		return nil, err
	}
	p, err := startServer(bin, dir, false, func(int) []string { return extraArgs })
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("cannot start redis-server: %w", err)
	}
	return &Server{Kind: Redis, Addrs: []string{p.addr()}, procs: []*proc{p}, dir: dir}, nil
}

// startCluster starts a Redis Cluster of 3 masters without replicas and
// waits until every node agrees that all slots are served and a rueidis
// cluster client can write to every node.
func startCluster() (_ *Server, err error) {
	bin, err := lookPath("redis-server")
	if err != nil {
		return nil, err
	}
	cli, err := lookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("%w (needed to create the cluster)", err)
	}
	return startClusterWith(bin, cli, nil, nil, nil)
}

// startClusterWith is startCluster with the given binaries, extra node
// arguments, extra redis-cli arguments and, for a TLS cluster, the client
// configuration (registered for the raw probes by nodeArgs' caller).
func startClusterWith(bin, cli string, nodeArgs func(port int) []string, cliArgs []string, tlsCfg *tls.Config) (_ *Server, err error) {
	dir, err := newDir()
	if err != nil {
		return nil, err
	}
	s := &Server{Kind: Cluster, dir: dir, tls: tlsCfg}
	defer func() {
		if err != nil {
			err = errorWithTails(err, s.procs)
			s.stop()
		}
	}()
	for range 3 {
		p, err := startServer(bin, dir, true, func(port int) []string {
			args := []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes-" + strconv.Itoa(port) + ".conf",
				"--cluster-node-timeout", "2000",
			}
			if nodeArgs != nil {
				args = append(args, nodeArgs(port)...)
			}
			return args
		})
		if err != nil {
			return nil, fmt.Errorf("cannot start cluster node: %w", err)
		}
		s.procs = append(s.procs, p)
		s.Addrs = append(s.Addrs, p.addr())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(append([]string(nil), cliArgs...), "--cluster", "create")
	args = append(args, s.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	logPath := filepath.Join(dir, "cluster-create.log")
	_ = os.WriteFile(logPath, out, 0o644)
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n--- last lines of its output ---\n%s", err, fileTail(logPath, logTailLines))
	}

	if err := waitFor(startTimeout, func() error { return clusterReady(s.Addrs) }); err != nil {
		return nil, fmt.Errorf("cluster not ready: %w", err)
	}
	if err := waitFor(startTimeout, s.probeCluster); err != nil {
		return nil, fmt.Errorf("rueidis cluster client does not work: %w", err)
	}
	return s, nil
}

// clusterReady checks that every node reports cluster_state:ok, knows all
// nodes and lists all 16384 slots as served in CLUSTER SLOTS.
func clusterReady(addrs []string) error {
	for _, addr := range addrs {
		info, err := rawString(addr, probeTimeout, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
		}
		for _, want := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_known_nodes:" + strconv.Itoa(len(addrs))} {
			if !strings.Contains(info, want+"\r\n") {
				return fmt.Errorf("%s: CLUSTER INFO lacks %s:\n%s", addr, want, info)
			}
		}
		v, err := rawDo(addr, probeTimeout, "CLUSTER", "SLOTS")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER SLOTS: %w", addr, err)
		}
		ranges, _ := v.([]any)
		served := int64(0)
		for _, r := range ranges {
			if r, ok := r.([]any); ok && len(r) >= 3 {
				from, _ := r[0].(int64)
				to, _ := r[1].(int64)
				served += to - from + 1
			}
		}
		if served != 16384 {
			return fmt.Errorf("%s: CLUSTER SLOTS serves %d slots, want 16384", addr, served)
		}
	}
	return nil
}

// probeCluster writes, reads and deletes keys on all nodes through a new
// rueidis cluster client.
func (s *Server) probeCluster() error {
	opt := s.ClientOption()
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i := range 32 {
		key := "redistest:probe:" + strconv.Itoa(i)
		if err := c.Do(ctx, c.B().Set().Key(key).Value("1").Ex(time.Minute).Build()).Error(); err != nil {
			return fmt.Errorf("SET %s: %w", key, err)
		}
		if v, err := c.Do(ctx, c.B().Get().Key(key).Build()).ToString(); err != nil || v != "1" {
			return fmt.Errorf("GET %s = %q, %v", key, v, err)
		}
		if err := c.Do(ctx, c.B().Del().Key(key).Build()).Error(); err != nil {
			return fmt.Errorf("DEL %s: %w", key, err)
		}
	}
	return nil
}

// waitFor calls check every 50 ms until it returns nil or timeout passes,
// and then returns the last error.
func waitFor(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
