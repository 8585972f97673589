package acltest

import (
	"testing"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redistest"
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
			runSuite(t, c, func() []redistest.ACLLogEntry { return s.ACLLog(t) })
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
	runSuite(t, c, nil)
}
