package embedded_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/internal/redistest"
)

// tlsListener serves TLS handshakes with the given certificate on a
// loopback port (and nothing else), for the client-side failures.
func tlsListener(t *testing.T, pair redistest.PEMPair) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

func setTLSEnv(t *testing.T, url, ca, cert, key string) {
	t.Setenv("REDIS_URL", url)
	t.Setenv("REDIS_TLS_CA_FILE", ca)
	t.Setenv("REDIS_TLS_CERT_FILE", cert)
	t.Setenv("REDIS_TLS_KEY_FILE", key)
	t.Setenv("REDIS_TLS_INSECURE_SKIP_VERIFY", "")
}

// TestTLSFailures generates a certificate for each failure a user meets
// (a CA the client does not trust, an expired certificate, a certificate
// for another host) and checks that NewClient's error matches the right
// sentinel, and no other.
func TestTLSFailures(t *testing.T) {
	certs := redistest.NewCerts(t)
	local := []net.IP{net.IPv4(127, 0, 0, 1)}
	all := []error{embedded.ErrTLSUnknownAuthority, embedded.ErrTLSExpired, embedded.ErrTLSHostname, embedded.ErrTLSClientCertRequired, embedded.ErrTLSConfig}
	for _, tc := range []struct {
		name string
		pair redistest.PEMPair
		ca   string
		want error
	}{
		{"wrong CA", certs.Server, certs.OtherCA(t), embedded.ErrTLSUnknownAuthority},
		{"expired", certs.Issue(t, redistest.CertSpec{Name: "expired", IPs: local,
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}), certs.CAFile, embedded.ErrTLSExpired},
		{"hostname mismatch", certs.Issue(t, redistest.CertSpec{Name: "other", DNSNames: []string{"other.example"}}), certs.CAFile, embedded.ErrTLSHostname},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tlsListener(t, tc.pair)
			setTLSEnv(t, "rediss://"+addr, tc.ca, "", "")
			s, err := embedded.Start()
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.NewClient()
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			for _, e := range all {
				if got := errors.Is(err, e); got != (e == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, e, got)
				}
			}
			var te *embedded.TLSError
			if !errors.As(err, &te) || te.Kind != tc.want {
				t.Errorf("not a *TLSError of kind %v: %#v", tc.want, err)
			}
		})
	}
}

// TestTLSConfigErrors: unusable settings are refused before connecting.
func TestTLSConfigErrors(t *testing.T) {
	certs := redistest.NewCerts(t)
	for _, tc := range []struct {
		name, url, ca, cert, key string
	}{
		{"missing CA file", "rediss://127.0.0.1:1", "/nonexistent/ca.pem", "", ""},
		{"CA file without PEM", "rediss://127.0.0.1:1", certs.Client.KeyFile + ".nope", "", ""},
		{"cert without key", "rediss://127.0.0.1:1", certs.CAFile, certs.Client.CertFile, ""},
		{"key of another cert", "rediss://127.0.0.1:1", certs.CAFile, certs.Client.CertFile, certs.Server.KeyFile},
		{"skip_verify without opt-in", "rediss://127.0.0.1:1?skip_verify=true", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setTLSEnv(t, tc.url, tc.ca, tc.cert, tc.key)
			_, err := embedded.Start()
			if !errors.Is(err, embedded.ErrTLSConfig) {
				t.Fatalf("Start: %v, want ErrTLSConfig", err)
			}
			for _, k := range [][]byte{certs.Client.KeyPEM, certs.Server.KeyPEM} {
				body := strings.Split(string(k), "\n")[1]
				if strings.Contains(err.Error(), body[:16]) {
					t.Errorf("error shows a private key: %v", err)
				}
			}
		})
	}
	// With the explicit opt-in, skip_verify is accepted and shown.
	setTLSEnv(t, "rediss://127.0.0.1:1?skip_verify=true", "", "", "")
	t.Setenv("REDIS_TLS_INSECURE_SKIP_VERIFY", "1")
	s, err := embedded.Start()
	if err != nil || !s.Option.TLSConfig.InsecureSkipVerify || !strings.Contains(s.Description, "NOT verified") {
		t.Fatalf("opt-in skip_verify: %v, %+v", err, s)
	}
}

// TestTLSRealServer connects to a TLS-only redis-server with mutual TLS
// through REDIS_URL and the REDIS_TLS_* files; without the client
// certificate the server refuses, with ErrTLSClientCertRequired.
func TestTLSRealServer(t *testing.T) {
	certs := redistest.NewCerts(t)
	srv := redistest.NewTLSRedis(t, certs, redistest.TLSAuthClientsYes)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		port := srv.Addrs[0][strings.LastIndex(srv.Addrs[0], ":")+1:]
		setTLSEnv(t, "rediss://"+host+":"+port, certs.CAFile, certs.Client.CertFile, certs.Client.KeyFile)
		s, err := embedded.Start()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s.Description, "over TLS") {
			t.Errorf("Description %q", s.Description)
		}
		s.Option.InitAddress = []string{srv.Addrs[0]} // localhost may resolve to ::1 first
		c, err := s.NewClient()
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		got, err := c.Do(context.Background(), c.B().Ping().Build()).ToString()
		c.Close()
		if err != nil || got != "PONG" {
			t.Fatalf("PING: %q %v", got, err)
		}
	}

	setTLSEnv(t, "rediss://"+srv.Addrs[0], certs.CAFile, "", "")
	s, err := embedded.Start()
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.NewClient()
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, embedded.ErrTLSClientCertRequired) {
		t.Fatalf("without a client certificate: %v, want ErrTLSClientCertRequired", err)
	}
}
