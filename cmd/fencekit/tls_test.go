package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/tlsconf"
)

// tlsPort returns the port of a TLS server's address.
func tlsPort(s *redistest.Server) string {
	_, port, _ := net.SplitHostPort(s.Addrs[0])
	return port
}

// doctorChecks runs doctor --json and returns its checks by name.
func doctorChecks(t *testing.T, schemas *schemaSet, args ...string) (map[string]checkResult, result) {
	t.Helper()
	r := cli(t, append([]string{"doctor", "--json"}, args...)...)
	if err := schemas.validate("doctor.schema.json", []byte(r.stdout)); err != nil {
		t.Fatalf("doctor --json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	var doc doctorJSON
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	m := map[string]checkResult{}
	for _, c := range doc.Checks {
		m[c.Name] = c
	}
	return m, r
}

// noSecrets fails the test when out shows the password or any line of a
// private key.
func noSecrets(t *testing.T, what, out, password string, keys ...[]byte) {
	t.Helper()
	if password != "" && strings.Contains(out, password) {
		t.Errorf("%s shows the password:\n%s", what, out)
	}
	for _, k := range keys {
		for _, line := range strings.Split(string(k), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(out, line[:16]) {
				t.Errorf("%s shows a private key line:\n%s", what, out)
			}
		}
	}
}

// TestTLSMutual runs the commands over mutual TLS as an ACL user with a
// recognizable password, with the CA and client certificate given as
// flags and as $REDIS_TLS_*, and checks what doctor reports and that no
// password or key shows. Without the client certificate the connection is
// refused with exit 3 and a reason.
func TestTLSMutual(t *testing.T) {
	schemas := loadSchemas(t)
	certs := redistest.NewCerts(t)
	s := redistest.NewTLSRedis(t, certs, redistest.TLSAuthClientsYes)
	const password = "Tls-Pw-7f3kq9"
	line := redistest.ACLLines(t, "../../docs/ACL.md", "fencekit-operator")[0]
	if err := s.SetUser(t, line, password); err != nil {
		t.Fatal(err)
	}
	d := seedPrefix(t, s, "fencekit")
	url := "rediss://fencekit-operator:" + password + "@127.0.0.1:" + tlsPort(s)
	flags := []string{"--url", url, "--tls-ca", certs.CAFile, "--tls-cert", certs.Client.CertFile, "--tls-key", certs.Client.KeyFile}
	keys := [][]byte{certs.Client.KeyPEM, certs.Server.KeyPEM}

	for _, args := range [][]string{{"locks"}, {"lock", "session-1"}, {"session", "session-1"}, {"checkpoint", "session-1", d.cpids[0]}, {"doctor"}} {
		r := cli(t, append(args, flags...)...)
		if r.code != exitOK {
			t.Errorf("fencekit %v over mutual TLS: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
		noSecrets(t, "fencekit "+args[0], r.stdout+r.stderr, password, keys...)
	}
	// The same through the environment.
	r := cliEnv(t, map[string]string{"REDIS_URL": url, "REDIS_TLS_CA_FILE": certs.CAFile,
		"REDIS_TLS_CERT_FILE": certs.Client.CertFile, "REDIS_TLS_KEY_FILE": certs.Client.KeyFile}, "lock", "session-1")
	if r.code != exitOK || !strings.Contains(r.stdout, "executor-a") {
		t.Errorf("lock with $REDIS_TLS_*: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	checks, r := doctorChecks(t, schemas, flags...)
	noSecrets(t, "doctor --json", r.stdout+r.stderr, password, keys...)
	tc := checks["tls"]
	if tc.Status != statusOK || tc.Facts["version"] != "TLS 1.3" || tc.Facts["client_cert_requested"] != "true" ||
		tc.Facts["verified"] != "true" || !strings.Contains(tc.Detail, "mutual TLS") {
		t.Errorf("tls check: %+v", tc)
	}
	if u := checks["acl-user"]; u.Status != statusOK || u.Facts["user"] != "fencekit-operator" || u.Facts["password"] != "set" {
		t.Errorf("acl-user check: %+v", u)
	}

	// No client certificate: refused, and told why.
	r = cli(t, "locks", "--url", url, "--tls-ca", certs.CAFile)
	if r.code != exitConnect || !strings.Contains(r.stderr, tlsconf.ErrClientCertRequired.Error()) {
		t.Errorf("without a client certificate: exit %d, %s", r.code, r.stderr)
	}
	noSecrets(t, "refused connection", r.stdout+r.stderr, password, keys...)
	// A key that does not belong to the certificate: a usage error naming
	// the files, not the key.
	r = cli(t, "locks", "--url", url, "--tls-ca", certs.CAFile, "--tls-cert", certs.Client.CertFile, "--tls-key", certs.Server.KeyFile)
	if r.code != exitUsage || !strings.Contains(r.stderr, "invalid TLS settings") {
		t.Errorf("mismatched key: exit %d, %s", r.code, r.stderr)
	}
	noSecrets(t, "mismatched key", r.stdout+r.stderr, password, keys...)
}

// TestTLSDoctorWarnings: tls-auth-clients optional without a client
// certificate is reported as such; a certificate that expires within 30
// days and --tls-insecure-skip-verify are warnings (exit 1 with
// --strict); skip_verify in the URL alone is refused.
func TestTLSDoctorWarnings(t *testing.T) {
	schemas := loadSchemas(t)
	certs := redistest.NewCerts(t)
	soon := *certs
	soon.Server = certs.Issue(t, redistest.CertSpec{Name: "soon", IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotAfter: time.Now().Add(10 * 24 * time.Hour)})
	s := redistest.NewTLSRedis(t, &soon, redistest.TLSAuthClientsOptional)
	url := "rediss://127.0.0.1:" + tlsPort(s)

	checks, r := doctorChecks(t, schemas, "--url", url, "--tls-ca", certs.CAFile)
	tc := checks["tls"]
	if r.code != exitOK || tc.Status != statusWarn || !strings.Contains(tc.Detail, "expires in 9 day(s)") ||
		!strings.Contains(tc.Detail, "none presented") || tc.Facts["client_cert_requested"] != "true" {
		t.Errorf("expiring certificate, no client certificate: exit %d, %+v", r.code, tc)
	}
	if r := cli(t, "doctor", "--strict", "--url", url, "--tls-ca", certs.CAFile); r.code != exitFailed {
		t.Errorf("doctor --strict with an expiring certificate: exit %d", r.code)
	}

	checks, _ = doctorChecks(t, schemas, "--url", url, "--tls-insecure-skip-verify")
	if tc := checks["tls"]; tc.Status != statusWarn || tc.Facts["verified"] != "false" || !strings.Contains(tc.Detail, "NOT verified") {
		t.Errorf("skip verify: %+v", tc)
	}
	if r := cli(t, "locks", "--url", url+"?skip_verify=true"); r.code != exitUsage || !strings.Contains(r.stderr, "--tls-insecure-skip-verify") {
		t.Errorf("skip_verify without the flag: exit %d, %s", r.code, r.stderr)
	}
	if r := cli(t, "locks", "--url", url+"?skip_verify=true", "--tls-insecure-skip-verify"); r.code != exitOK {
		t.Errorf("skip_verify with the flag: exit %d, %s", r.code, r.stderr)
	}
}

// TestTLSConnectErrors generates a wrong CA, an expired certificate and a
// certificate for another host, serves each from a TLS listener, and
// checks the CLI's exit code, its message, and that connect's error
// matches the right sentinel.
func TestTLSConnectErrors(t *testing.T) {
	certs := redistest.NewCerts(t)
	local := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, tc := range []struct {
		name string
		pair redistest.PEMPair
		ca   string
		want error
	}{
		{"wrong CA", certs.Server, certs.OtherCA(t), tlsconf.ErrUnknownAuthority},
		{"expired", certs.Issue(t, redistest.CertSpec{Name: "expired", IPs: local,
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}), certs.CAFile, tlsconf.ErrExpired},
		{"hostname mismatch", certs.Issue(t, redistest.CertSpec{Name: "other", DNSNames: []string{"other.example"}}), certs.CAFile, tlsconf.ErrHostname},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := "rediss://127.0.0.1:" + handshakeOnly(t, tc.pair)
			r := cli(t, "locks", "--url", url, "--tls-ca", tc.ca, "--timeout", "2s")
			if r.code != exitConnect || !strings.Contains(r.stderr, tc.want.Error()) {
				t.Errorf("exit %d, stderr %q, want %d and %q", r.code, r.stderr, exitConnect, tc.want)
			}
			a := &app{stdout: &syncBuffer{}, stderr: &syncBuffer{}, env: env(nil), url: url, prefix: "fencekit", timeout: 2 * time.Second}
			a.tls.CAFile = tc.ca
			if err := a.setup(); err != nil {
				t.Fatal(err)
			}
			err := a.connect(context.Background())
			if !errors.Is(err, tc.want) || exitCodeOf(err) != exitConnect {
				t.Errorf("connect: %v, want errors.Is %v", err, tc.want)
			}
		})
	}
}

// handshakeOnly serves TLS handshakes with pair on a loopback port and
// returns the port.
func handshakeOnly(t *testing.T, pair redistest.PEMPair) string {
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
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// TestTLSSentinel: the CLI reaches the primary through a Sentinel, both
// over mutual TLS, with the files given once.
func TestTLSSentinel(t *testing.T) {
	schemas := loadSchemas(t)
	certs := redistest.NewCerts(t)
	primary := redistest.NewTLSRedis(t, certs, redistest.TLSAuthClientsYes)
	sentinel := redistest.NewTLSSentinel(t, primary, certs, "tlsmaster")
	seedPrefix(t, primary, "fencekit")
	flags := []string{"--url", "rediss://" + sentinel + "?master_set=tlsmaster",
		"--tls-ca", certs.CAFile, "--tls-cert", certs.Client.CertFile, "--tls-key", certs.Client.KeyFile}
	if r := cli(t, append([]string{"lock", "session-1"}, flags...)...); r.code != exitOK || !strings.Contains(r.stdout, "executor-a") {
		t.Errorf("lock through a TLS Sentinel: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checks, r := doctorChecks(t, schemas, flags...)
	if r.code != exitOK || !strings.Contains(checks["server"].Detail, "sentinel-managed") || checks["tls"].Status != statusOK {
		t.Errorf("doctor through a TLS Sentinel: exit %d\n%s", r.code, r.stdout)
	}
}

// TestTLSCluster: the CLI and doctor on a 3-master cluster over mutual
// TLS; doctor's tls check looks at every master.
func TestTLSCluster(t *testing.T) {
	schemas := loadSchemas(t)
	certs := redistest.NewCerts(t)
	s := redistest.NewTLSCluster(t, certs)
	seedPrefix(t, s, "fencekit")
	url := "rediss://" + s.Addrs[0] + "?addr=" + s.Addrs[1] + "&addr=" + s.Addrs[2]
	flags := []string{"--url", url, "--tls-ca", certs.CAFile, "--tls-cert", certs.Client.CertFile, "--tls-key", certs.Client.KeyFile}
	if r := cli(t, append([]string{"locks"}, flags...)...); r.code != exitOK || !strings.Contains(r.stdout, "session-1") {
		t.Errorf("locks on a TLS cluster: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checks, r := doctorChecks(t, schemas, flags...)
	tc := checks["tls"]
	if r.code != exitOK || tc.Status != statusOK || tc.Facts["nodes"] != "3" || tc.Facts["client_cert_requested"] != "true" ||
		!strings.Contains(checks["server"].Detail, "cluster") {
		t.Errorf("doctor on a TLS cluster: exit %d, tls %+v\n%s", r.code, tc, r.stdout)
	}
}
