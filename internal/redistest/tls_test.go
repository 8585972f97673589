package redistest_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
)

// TestTLSRedis starts TLS-only servers in each client-auth mode: a client
// with the test CA and certificate writes, a plaintext client gets no
// answer, and with tls-auth-clients yes a client without a certificate is
// refused while with optional it is served.
func TestTLSRedis(t *testing.T) {
	certs := redistest.NewCerts(t)
	for _, mode := range []string{redistest.TLSAuthClientsYes, redistest.TLSAuthClientsOptional} {
		t.Run(mode, func(t *testing.T) {
			s := redistest.NewTLSRedis(t, certs, mode)
			c := s.NewClient(t)
			key := s.Prefix(t) + ":k"
			if err := c.Do(ctx(t), c.B().Set().Key(key).Value("v").Build()).Error(); err != nil {
				t.Fatalf("SET over TLS: %v", err)
			}
			if got := s.Do(t, "GET", key); got.Error() != nil {
				t.Fatalf("Do GET: %v", got.Error())
			}
			if m := s.Do(t, "CONFIG", "GET", "port"); !hasConfig(&m, "port", "0") {
				v, _ := m.ToAny()
				t.Errorf("plaintext port not off: %v", v)
			}
			// A plaintext client gets no PONG from the TLS port.
			conn, err := net.DialTimeout("tcp", s.Addrs[0], time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, _ := conn.Read(buf)
			conn.Close()
			if strings.Contains(string(buf[:n]), "PONG") {
				t.Errorf("plaintext PING answered on the TLS port")
			}

			opt := s.ClientOption()
			opt.TLSConfig.Certificates = nil
			opt.DisableCache = true
			nc, err := rueidis.NewClient(opt)
			if err == nil {
				err = nc.Do(ctx(t), nc.B().Ping().Build()).Error()
				nc.Close()
			}
			switch {
			case mode == redistest.TLSAuthClientsYes && err == nil:
				t.Error("tls-auth-clients yes served a client without a certificate")
			case mode == redistest.TLSAuthClientsOptional && err != nil:
				t.Errorf("tls-auth-clients optional refused a client without a certificate: %v", err)
			}
		})
	}
}

// TestTLSCluster starts a 3-master cluster with TLS on clients, bus and
// replication, and writes keys on every node through a TLS cluster client.
func TestTLSCluster(t *testing.T) {
	certs := redistest.NewCerts(t)
	s := redistest.NewTLSCluster(t, certs)
	if len(s.Addrs) != 3 {
		t.Fatalf("addrs %v", s.Addrs)
	}
	c := s.NewClient(t)
	if c.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("client mode %v", c.Mode())
	}
	p := s.Prefix(t)
	for i := range 30 {
		key := p + ":" + strconv.Itoa(i)
		if err := c.Do(ctx(t), c.B().Set().Key(key).Value("v").Build()).Error(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
	}
	for _, kv := range [][2]string{{"tls-cluster", "yes"}, {"tls-replication", "yes"}, {"port", "0"}} {
		if m := s.Do(t, "CONFIG", "GET", kv[0]); !hasConfig(&m, kv[0], kv[1]) {
			v, _ := m.ToAny()
			t.Errorf("CONFIG GET %s: %v", kv[0], v)
		}
	}
}

func hasConfig(m *rueidis.RedisMessage, k, v string) bool {
	kv, err := m.AsStrMap()
	return err == nil && kv[k] == v
}

// TestTLSSkipAndRequire runs TestTLSRedis in child processes with fake
// redis-server binaries: one that answers like a build without TLS, one
// that answers like a TLS build but cannot start. Without TLS the tier
// skips, even with FENCEKIT_REQUIRE_REDIS=1, and fails only with
// FENCEKIT_REQUIRE_TLS=1; a TLS build that does not start fails with
// FENCEKIT_REQUIRE_REDIS=1.
func TestTLSSkipAndRequire(t *testing.T) {
	if os.Getenv("REDISTEST_CHILD") == "1" {
		t.Skip("already in the child process")
	}
	dir := t.TempDir()
	fake := func(name, says string) string {
		p := filepath.Join(dir, name)
		script := "#!/bin/sh\necho '" + says + "'\nexit 1\n"
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noTLS := fake("no-tls", "# Failed finding TLS support.")
	broken := fake("broken", "# Failed to configure TLS. Check logs for more info.")
	for _, tc := range []struct {
		name, bin, requireRedis, requireTLS string
		fail                                bool
		want                                string
	}{
		{"no TLS", noTLS, "1", "", false, "--- SKIP: TestTLSRedis/yes"},
		{"no TLS, TLS required", noTLS, "1", "1", true, "built without TLS (FENCEKIT_REQUIRE_TLS=1, so this is a failure)"},
		{"TLS build does not start", broken, "", "", false, "--- SKIP: TestTLSRedis/yes"},
		{"TLS build does not start, Redis required", broken, "1", "", true, "(FENCEKIT_REQUIRE_REDIS=1, so this is a failure)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTLSRedis$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "REDISTEST_CHILD=1", redistest.TLSServerEnv+"="+tc.bin,
				redistest.RequireEnv+"="+tc.requireRedis, redistest.RequireTLSEnv+"="+tc.requireTLS, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.fail {
				t.Errorf("child failed: %v, want failure %v\n%s", err, tc.fail, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("child output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}
