package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TLSServerEnv names the redis-server binary for the TLS tier. Unset, the
// tier uses the first TLS-capable one of redis-server in PATH and
// /usr/bin/redis-server (Debian's is built with TLS; a build with
// BUILD_TLS=no is passed over).
const TLSServerEnv = "FENCEKIT_TLS_REDIS_SERVER"

// RequireTLSEnv, set to "1", makes the TLS tier fail instead of skip when
// no TLS-capable redis-server is found. RequireEnv alone does not: a
// developer whose redis-server lacks TLS gets skips, not failures; a TLS
// server that is found but does not start fails under RequireEnv as any
// other server does. CI sets both.
const RequireTLSEnv = "FENCEKIT_REQUIRE_TLS"

// Client authentication modes of a TLS server (tls-auth-clients).
const (
	TLSAuthClientsYes      = "yes"      // mutual TLS: a client certificate is required
	TLSAuthClientsOptional = "optional" // checked when presented
	TLSAuthClientsNo       = "no"       // not asked for
)

// errNoTLS marks a redis-server built without TLS.
var errNoTLS = errors.New("built without TLS")

var tlsBinary struct {
	once sync.Once
	path string
	err  error
}

// tlsServerBinary returns a TLS-capable redis-server (see TLSServerEnv).
func tlsServerBinary() (string, error) {
	tlsBinary.once.Do(func() {
		var candidates []string
		if p := os.Getenv(TLSServerEnv); p != "" {
			candidates = []string{p}
		} else {
			if p, err := exec.LookPath("redis-server"); err == nil {
				candidates = append(candidates, p)
			}
			if p := "/usr/bin/redis-server"; len(candidates) == 0 || candidates[0] != p {
				candidates = append(candidates, p)
			}
		}
		var errs []error
		for _, bin := range candidates {
			err := probeTLS(bin)
			if err == nil {
				tlsBinary.path = bin
				return
			}
			errs = append(errs, fmt.Errorf("%s: %w", bin, err))
		}
		tlsBinary.err = fmt.Errorf("no TLS-capable redis-server (set %s): %w", TLSServerEnv, errors.Join(errs...))
	})
	return tlsBinary.path, tlsBinary.err
}

// probeTLS starts bin with a tls-port and no certificate: a TLS build
// exits complaining about the certificate, a build without TLS about TLS
// support itself. Neither gets as far as listening.
func probeTLS(bin string) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (%v)", errNoTLS, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "--port", "0", "--tls-port", "1", "--save", "", "--tls-cert-file", "").CombinedOutput()
	switch s := string(out); {
	case strings.Contains(s, "tls-cert-file"), strings.Contains(s, "Failed to configure TLS"):
		return nil
	case strings.Contains(s, "TLS support"), strings.Contains(s, "connection type tls"), strings.Contains(s, "Bad directive"):
		return errNoTLS
	default:
		return fmt.Errorf("%w? unexpected output of the TLS probe: %s", errNoTLS, strings.TrimSpace(s))
	}
}

// tlsUnavailable ends a test for which no TLS-capable server exists: a
// skip, or a failure with RequireTLSEnv=1.
func tlsUnavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireTLSEnv) == "1" {
		t.Fatalf("redistest: %v (%s=1, so this is a failure)", err, RequireTLSEnv)
	}
	t.Skipf("redistest: %v; set %s=1 to make this a failure", err, RequireTLSEnv)
}

// tlsArgs are the server arguments of a TLS-only server on port: the
// plaintext port off, certificates from c.
func tlsArgs(c *Certs, port int, authClients string) []string {
	return []string{
		"--port", "0",
		"--tls-port", strconv.Itoa(port),
		"--tls-cert-file", c.Server.CertFile,
		"--tls-key-file", c.Server.KeyFile,
		"--tls-ca-cert-file", c.CAFile,
		"--tls-auth-clients", authClients,
	}
}

// NewTLSRedis starts a standalone redis-server for this test only that
// listens on a tls-port only (port 0), with certificates of c (see
// NewCerts) and tls-auth-clients set to authClients (TLSAuthClients*).
// The Server's ClientOption trusts c's CA and presents c's client
// certificate. The server is stopped at t.Cleanup. Without a TLS-capable
// redis-server the test is skipped (see RequireTLSEnv); a server that does
// not start skips or fails it as NewPrivateRedis does.
func NewTLSRedis(t testing.TB, c *Certs, authClients string, extraArgs ...string) *Server {
	t.Helper()
	bin, err := tlsServerBinary()
	if err != nil {
		tlsUnavailable(t, err)
	}
	cfg := c.ClientTLS(t)
	dir, err := newDir()
	if err != nil {
		t.Fatal(err)
	}
	p, err := startServer(bin, dir, false, func(port int) []string {
		tlsAddrs.Store(addrOf(port), cfg)
		return append(tlsArgs(c, port, authClients), extraArgs...)
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		unavailable(t, fmt.Errorf("cannot start redis-server with TLS: %w", err))
	}
	s := &Server{Kind: Redis, Addrs: []string{p.addr()}, procs: []*proc{p}, dir: dir, private: true, tls: cfg}
	t.Cleanup(s.stop)
	return s
}

// NewTLSCluster starts a 3-master Redis Cluster for this test only whose
// nodes listen on tls-ports only, with tls-cluster and tls-replication on
// (the cluster bus is TLS too) and tls-auth-clients yes. It needs a
// TLS-capable redis-cli too (the one beside redis-server, else PATH). Skip
// and failure rules are those of NewTLSRedis.
func NewTLSCluster(t testing.TB, c *Certs) *Server {
	t.Helper()
	bin, err := tlsServerBinary()
	if err != nil {
		tlsUnavailable(t, err)
	}
	cli := filepath.Join(filepath.Dir(bin), "redis-cli")
	if _, err := os.Stat(cli); err != nil {
		if cli, err = lookPath("redis-cli"); err != nil {
			unavailable(t, fmt.Errorf("%w (needed to create the cluster)", err))
		}
	}
	cfg := c.ClientTLS(t)
	s, err := startClusterWith(bin, cli, func(port int) []string {
		tlsAddrs.Store(addrOf(port), cfg)
		return append(tlsArgs(c, port, TLSAuthClientsYes), "--tls-cluster", "yes", "--tls-replication", "yes")
	}, []string{"--tls", "--cacert", c.CAFile, "--cert", c.Client.CertFile, "--key", c.Client.KeyFile}, cfg)
	if err != nil {
		unavailable(t, fmt.Errorf("cannot start a TLS cluster: %w", err))
	}
	s.private = true
	t.Cleanup(s.stop)
	return s
}

// TLSConfig returns a copy of the client TLS configuration of a TLS server,
// nil for others.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

func addrOf(port int) string {
	return "127.0.0.1:" + strconv.Itoa(port)
}

// NewTLSSentinel starts a Sentinel that listens on a tls-port only (with
// tls-auth-clients yes), reaches primary (from NewTLSRedis with the same
// certificates) over TLS (tls-replication yes) and monitors it as master
// set name with quorum 1. It returns the Sentinel's address and stops it
// at t.Cleanup. It runs the TLS-capable redis-server with --sentinel; skip
// and failure rules are those of NewTLSRedis.
func NewTLSSentinel(t testing.TB, primary *Server, c *Certs, name string) string {
	t.Helper()
	bin, err := tlsServerBinary()
	if err != nil {
		tlsUnavailable(t, err)
	}
	addr, err := startTLSSentinel(t, bin, primary.Addrs[0], c, name)
	if err != nil {
		unavailable(t, err)
	}
	return addr
}

func startTLSSentinel(t testing.TB, bin, primary string, c *Certs, name string) (string, error) {
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return "", err
	}
	dir, err := newDir()
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p, err := launchOnFreePort(false, func(sp int) (*proc, error) {
		tlsAddrs.Store(addrOf(sp), c.ClientTLS(t))
		// Sentinel rewrites its config file, so it gets one of its own.
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port 0\ntls-port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"tls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients yes\ntls-replication yes\n"+
			"sentinel monitor %s %s %s 1\n",
			sp, dir, c.Server.CertFile, c.Server.KeyFile, c.CAFile, name, host, port)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, err
		}
		return &proc{bin: bin, port: sp, dir: dir, logPath: filepath.Join(dir, "sentinel.log"), args: []string{conf, "--sentinel"}}, nil
	})
	if err != nil {
		return "", fmt.Errorf("cannot start a TLS Sentinel: %w", err)
	}
	t.Cleanup(p.stop)
	// Ready once it sees the primary over TLS.
	err = waitFor(startTimeout, func() error {
		v, err := rawDo(p.addr(), probeTimeout, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
		if err != nil {
			return err
		}
		if a, ok := v.([]any); !ok || len(a) != 2 {
			return fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME %s: %v", name, v)
		}
		return nil
	})
	if err != nil {
		return "", p.errorf("TLS Sentinel does not know the primary: %v", err)
	}
	return p.addr(), nil
}
