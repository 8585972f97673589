// Package embedded gives fencekit's examples, and programs that want the
// same convenience, a Redis to talk to: the server named by the REDIS_URL
// environment variable, or else an in-process miniredis.
//
// REDIS_URL may be a rediss:// URL; REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE
// and REDIS_TLS_KEY_FILE add a CA to trust and a client certificate, and
// only REDIS_TLS_INSECURE_SKIP_VERIFY=1 turns verification off (see
// TLSFiles). TLS failures are typed: ErrTLSUnknownAuthority,
// ErrTLSExpired, ErrTLSHostname, ErrTLSClientCertRequired, ErrTLSConfig.
//
// miniredis is enough to see fencekit work; it is not a production server
// (it keeps everything in memory, runs one Lua VM per call, and expires keys
// only when told time passed: see Server.Sleep).
package embedded

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/internal/redact"
)

// Server is a Redis server to connect to.
type Server struct {
	// Option is the rueidis client option for the server. For miniredis it
	// sets DisableCache (no CLIENT TRACKING), AlwaysRESP2 (miniredis refuses
	// commands on a RESP3 connection with a subscription) and
	// ForceSingleClient (miniredis answers CLUSTER SLOTS).
	Option rueidis.ClientOption
	// Mini is the in-process server, nil when REDIS_URL named one.
	Mini *miniredis.Miniredis
	// Description says which server it is, for a program's output.
	Description string
}

// Start returns the server named by REDIS_URL (any URL rueidis.ParseURL
// accepts, rediss:// for TLS), or starts a miniredis on a free loopback
// port. TLS files come from the environment (TLSFilesFromEnv:
// REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE,
// REDIS_TLS_INSECURE_SKIP_VERIFY). It returns an error for a URL that does
// not parse, and one matching ErrTLSConfig for unusable TLS settings.
func Start() (*Server, error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		opt, err := rueidis.ParseURL(url)
		if err != nil {
			// The parse error quotes the URL and the characters it
			// rejected, which may be the password's.
			return nil, fmt.Errorf("embedded: REDIS_URL %s: not a redis URL rueidis.ParseURL accepts: %s", RedactURL(url), redact.ParseError(url, err))
		}
		if err := TLSFilesFromEnv(nil).Apply(&opt); err != nil {
			return nil, fmt.Errorf("embedded: REDIS_URL %s: %w", RedactURL(url), err)
		}
		desc := "Redis at " + RedactURL(url)
		if opt.TLSConfig != nil {
			desc += " over TLS"
			if opt.TLSConfig.InsecureSkipVerify {
				desc += " (certificate NOT verified)"
			}
		}
		return &Server{Option: opt, Description: desc}, nil
	}
	return StartMini()
}

// RedactURL returns u for output with its credentials hidden: the
// password replaced by "xxxxx" when u parses cleanly, else everything
// between "//" (or the start) and the last '@' (a URL that does not parse,
// or whose password went elsewhere because of an unescaped '@', '/', '#'
// or '%', or a scheme typo, cannot say where its password ends).
func RedactURL(u string) string {
	return redact.URL(u)
}

// StartMini starts a miniredis on a free loopback port, whatever REDIS_URL says.
func StartMini() (*Server, error) {
	m, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("embedded: start miniredis: %w", err)
	}
	return &Server{Option: MiniOption(m.Addr()), Mini: m, Description: "embedded miniredis (set REDIS_URL for a real server)"}, nil
}

// MiniOption returns the rueidis client option for a miniredis at addr.
func MiniOption(addr string) rueidis.ClientOption {
	return rueidis.ClientOption{
		InitAddress:       []string{addr},
		DisableCache:      true,
		AlwaysRESP2:       true,
		ForceSingleClient: true,
	}
}

// NewClient returns a new client of the server; close it when done.
// rueidis connects at once; over TLS NewClient also sends a PING, so that
// a refused client certificate shows here too. A TLS failure matches
// ErrTLSUnknownAuthority, ErrTLSExpired, ErrTLSHostname or
// ErrTLSClientCertRequired (see DiagnoseTLS).
func (s *Server) NewClient() (rueidis.Client, error) {
	c, err := rueidis.NewClient(s.Option)
	if err == nil && s.Option.TLSConfig != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
			c.Close()
			c = nil
		}
	}
	if err != nil {
		return nil, DiagnoseTLS(context.Background(), s.Option, err)
	}
	return c, nil
}

// Sleep pauses the caller for d. miniredis only expires keys when told that
// time passed, so on miniredis it moves the server's clock along too.
func (s *Server) Sleep(d time.Duration) {
	time.Sleep(d)
	if s.Mini != nil {
		s.Mini.FastForward(d)
	}
}

// Close stops the in-process server, if there is one. It is nil-safe.
func (s *Server) Close() {
	if s != nil && s.Mini != nil {
		s.Mini.Close()
	}
}

// MustClient starts a miniredis and returns a client of it and a function
// that closes both. It panics if either fails: it is meant for examples and
// tests.
func MustClient() (rueidis.Client, func()) {
	s, err := StartMini()
	if err != nil {
		panic(err)
	}
	c, err := s.NewClient()
	if err != nil {
		s.Close()
		panic(err)
	}
	return c, func() { c.Close(); s.Close() }
}
