package acltest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/embedded"
	"github.com/fencekit/fencekit/internal/obs/obstest"
	"github.com/fencekit/fencekit/internal/redistest"
	"github.com/fencekit/fencekit/lock"
	"github.com/fencekit/fencekit/statestore"
	"github.com/fencekit/fencekit/telemetry"
)

// TestExecutorACLOverTLS runs the suite of TestExecutorACL as the
// restricted executor user on TLS-only servers (plaintext port off): with
// tls-auth-clients yes the client presents its certificate; with optional
// it presents none.
func TestExecutorACLOverTLS(t *testing.T) {
	certs := redistest.NewCerts(t)
	for _, mode := range []string{redistest.TLSAuthClientsYes, redistest.TLSAuthClientsOptional} {
		t.Run("tls-auth-clients="+mode, func(t *testing.T) {
			s := redistest.NewTLSRedis(t, certs, mode)
			opt := s.ClientOptionAs(user, password)
			if mode == redistest.TLSAuthClientsOptional {
				opt.TLSConfig.Certificates = nil
			}
			c := restrictedClient(t, s, opt)
			runSuite(t, c, func() []redistest.ACLLogEntry { return s.ACLLog(t) }, telemetry.Options{})
		})
	}
}

// TestClusterOverTLS runs the suite on a 3-master cluster whose clients,
// cluster bus and replication all use TLS (mutual TLS), as the default
// user: ACL SETUSER would have to be sent to every node.
func TestClusterOverTLS(t *testing.T) {
	s := redistest.NewTLSCluster(t, redistest.NewCerts(t))
	c := s.NewClient(t)
	if c.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("client mode %s, want cluster", c.Mode())
	}
	runSuite(t, c, nil, telemetry.Options{})
}

// TestNoSecretsOverTLS runs the suite over mutual TLS as the executor user
// with debug logs and spans recorded, then provokes errors (a stale write,
// a wrong password, a missing client certificate, a lock held by another
// owner), and greps every log line, span (name, attributes, events,
// status) and error text for the password and for every line of the
// client's and the server's private keys.
func TestNoSecretsOverTLS(t *testing.T) {
	certs := redistest.NewCerts(t)
	s := redistest.NewTLSRedis(t, certs, redistest.TLSAuthClientsYes)
	c := restrictedClient(t, s, s.ClientOptionAs(user, password))
	sdk, tel := obstest.New()
	var logs bytes.Buffer
	tel.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	runSuite(t, c, func() []redistest.ACLLogEntry { return s.ACLLog(t) }, tel)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	note := func(err error) {
		if err == nil {
			t.Error("an operation meant to fail succeeded")
			return
		}
		errs = append(errs, err)
	}
	l1, err := lock.New(c, lock.Options{Owner: "one", Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := lock.New(c, lock.Options{Owner: "two", Telemetry: tel})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	st, err := statestore.New(c, statestore.Options{Telemetry: tel, EventLog: true})
	if err != nil {
		t.Fatal(err)
	}
	old, err := l1.TryAcquire(ctx, "secret-test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, "secret-test", old.Token(), statestore.State{Status: statestore.StatusPending, Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = l2.TryAcquire(ctx, "secret-test")
	note(err)
	if _, err := lock.ForceRelease(ctx, c, "secret-test", lock.ForceOptions{Reason: "test", By: "acltest"}); err != nil {
		t.Fatal(err)
	}
	_, err = st.UpdateStatus(ctx, "secret-test", old.Token(), statestore.StatusRunning)
	note(err)

	wrong := s.ClientOptionAs(user, password+"-wrong")
	_, err = rueidis.NewClient(wrong)
	note(err)
	noCert := s.ClientOptionAs(user, password)
	noCert.TLSConfig.Certificates = nil
	srv := &embedded.Server{Option: noCert}
	_, err = srv.NewClient()
	note(err)

	var text strings.Builder
	text.WriteString(logs.String())
	for _, sp := range sdk.Spans.Ended() {
		fmt.Fprintln(&text, sp.Name(), sp.Attributes(), sp.Status())
		for _, ev := range sp.Events() {
			fmt.Fprintln(&text, ev.Name, ev.Attributes)
		}
	}
	for _, err := range errs {
		fmt.Fprintln(&text, err.Error())
	}
	out := text.String()
	if len(sdk.Spans.Ended()) == 0 || logs.Len() == 0 || len(errs) != 4 {
		t.Fatalf("nothing to search: %d spans, %d bytes of logs, %d errors", len(sdk.Spans.Ended()), logs.Len(), len(errs))
	}
	if strings.Contains(out, password) {
		t.Errorf("the password appears in logs, spans or errors")
	}
	for _, key := range [][]byte{certs.Client.KeyPEM, certs.Server.KeyPEM} {
		for _, line := range strings.Split(string(key), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(out, line[:16]) {
				t.Errorf("a private key line appears in logs, spans or errors")
			}
		}
	}
	t.Logf("searched %d log bytes, %d spans, %d errors", logs.Len(), len(sdk.Spans.Ended()), len(errs))
}

// TestSentinelOverTLS runs the suite through a Sentinel: the Sentinel,
// the primary and the connection between them all use mutual TLS, and
// the client's options come from a rediss:// URL with ?master_set= and
// the TLS files (embedded.TLSFiles), as a program's would.
func TestSentinelOverTLS(t *testing.T) {
	certs := redistest.NewCerts(t)
	primary := redistest.NewTLSRedis(t, certs, redistest.TLSAuthClientsYes)
	sentinel := redistest.NewTLSSentinel(t, primary, certs, "tlsmaster")
	opt, err := rueidis.ParseURL("rediss://" + sentinel + "?master_set=tlsmaster")
	if err != nil {
		t.Fatal(err)
	}
	files := embedded.TLSFiles{CAFile: certs.CAFile, CertFile: certs.Client.CertFile, KeyFile: certs.Client.KeyFile}
	if err := files.Apply(&opt); err != nil {
		t.Fatal(err)
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("client through the TLS Sentinel: %v", err)
	}
	defer c.Close()
	if c.Mode() != rueidis.ClientModeSentinel {
		t.Fatalf("client mode %s, want sentinel", c.Mode())
	}
	runSuite(t, c, nil, telemetry.Options{})
}
