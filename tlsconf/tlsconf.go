// Package tlsconf turns the TLS settings users have (a CA file, a client
// certificate and key, an explicit opt-out of verification) into a
// rueidis.ClientOption, and the failures of a TLS handshake into typed
// errors:
//
//	opt, err := rueidis.ParseURL("rediss://redis.internal:6380")
//	files := tlsconf.FilesFromEnv(nil) // REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE, ...
//	if err := files.Apply(&opt); err != nil { ... } // errors.Is(err, tlsconf.ErrConfig)
//	client, err := rueidis.NewClient(opt)
//	if err != nil {
//		err = tlsconf.Diagnose(ctx, opt, err) // errors.Is(err, tlsconf.ErrUnknownAuthority), ...
//	}
//
// Package embedded re-exports it for programs (embedded.TLSFiles and the
// ErrTLS* errors are these); the fencekit CLI uses it without embedded's
// miniredis.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// The TLS failures Classify recognizes. Errors returned by embedded's Server.NewClient
// and the fencekit CLI match them with errors.Is; each comes wrapped in a
// *Error that keeps the crypto/tls or crypto/x509 error too.
var (
	// ErrUnknownAuthority: the server's certificate is not signed by a
	// CA the client trusts (a wrong or missing CA file).
	ErrUnknownAuthority = errors.New("tls: server certificate signed by an unknown authority (check the CA file)")
	// ErrExpired: the server's certificate has expired or is not valid
	// yet.
	ErrExpired = errors.New("tls: server certificate expired or not yet valid")
	// ErrHostname: the server's certificate does not name the host
	// the client dialed.
	ErrHostname = errors.New("tls: server certificate does not match the host name")
	// ErrClientCertRequired: the server asks for a client certificate
	// (tls-auth-clients yes) and none was given, or it refused the one
	// given.
	ErrClientCertRequired = errors.New("tls: server refused the connection without a valid client certificate")
	// ErrConfig: the TLS settings cannot be used (an unreadable or
	// invalid CA, certificate or key file, a certificate without its key,
	// or a skip_verify URL without the explicit opt-in).
	ErrConfig = errors.New("tls: invalid TLS settings")
)

// Error is a TLS failure of one of the kinds above. Kind is one of the
// Err* sentinels; Err is the underlying error, whose text names no key
// or password (certificate subjects, host names and times only).
type Error struct {
	Kind error
	Err  error
}

// Error returns Kind's text, then Err's.
func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Err.Error() }

// Unwrap returns Kind and Err, so errors.Is matches both.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Files are the TLS settings users have next to a rediss:// URL.
// The zero value changes nothing.
type Files struct {
	// CAFile is a PEM file of the CAs to trust instead of the system's.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and its private
	// key, for servers with tls-auth-clients yes (or optional). Both or
	// neither.
	CertFile, KeyFile string
	// InsecureSkipVerify turns off the verification of the server's
	// certificate: anyone on the path can read and change the traffic.
	// It is the only way to allow it: a URL with skip_verify is refused
	// without it. fencekit doctor reports it as a warning.
	InsecureSkipVerify bool
}

// Enabled reports whether f asks for TLS.
func (f Files) Enabled() bool {
	return f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.InsecureSkipVerify
}

// FilesFromEnv reads REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE,
// REDIS_TLS_KEY_FILE and REDIS_TLS_INSECURE_SKIP_VERIFY ("1" or "true")
// through getenv (os.Getenv when nil).
func FilesFromEnv(getenv func(string) string) Files {
	if getenv == nil {
		getenv = os.Getenv
	}
	skip := getenv("REDIS_TLS_INSECURE_SKIP_VERIFY")
	return Files{
		CAFile:             getenv("REDIS_TLS_CA_FILE"),
		CertFile:           getenv("REDIS_TLS_CERT_FILE"),
		KeyFile:            getenv("REDIS_TLS_KEY_FILE"),
		InsecureSkipVerify: skip == "1" || skip == "true",
	}
}

// Apply adds f to opt (from rueidis.ParseURL). With any TLS file set, opt
// uses TLS even for a redis:// URL (TLS 1.2 or later, server name from
// the first address). With TLS and ?master_set=, the Sentinels are
// reached over TLS too, with the same files. It returns an error matching ErrConfig when a
// file cannot be read or parsed (the error names the file, never its
// contents), when only one of CertFile and KeyFile is set, or when the URL
// asked for skip_verify and f.InsecureSkipVerify is false.
func (f Files) Apply(opt *rueidis.ClientOption) error {
	if opt.TLSConfig != nil && opt.TLSConfig.InsecureSkipVerify && !f.InsecureSkipVerify {
		return &Error{Kind: ErrConfig, Err: errors.New("the URL asks for skip_verify: certificate verification can only be turned off explicitly (REDIS_TLS_INSECURE_SKIP_VERIFY=1, fencekit --tls-insecure-skip-verify)")}
	}
	if !f.Enabled() {
		sentinelTLS(opt)
		return nil
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return &Error{Kind: ErrConfig, Err: errors.New("a client certificate needs both the certificate file and the key file")}
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opt.TLSConfig != nil {
		cfg = opt.TLSConfig.Clone()
	}
	if cfg.ServerName == "" && len(opt.InitAddress) > 0 {
		cfg.ServerName = hostOf(opt.InitAddress[0])
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return &Error{Kind: ErrConfig, Err: fmt.Errorf("CA file: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return &Error{Kind: ErrConfig, Err: fmt.Errorf("CA file %s: no PEM certificate in it", f.CAFile)}
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			// crypto/tls names the files and the problem, not the key.
			return &Error{Kind: ErrConfig, Err: fmt.Errorf("client certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	cfg.InsecureSkipVerify = f.InsecureSkipVerify
	opt.TLSConfig = cfg
	sentinelTLS(opt)
	return nil
}

// sentinelTLS makes a Sentinel URL (?master_set=) use TLS for the
// Sentinels too: rueidis takes their settings from Sentinel.TLSConfig,
// which ParseURL leaves nil, and would verify the primary the Sentinels
// name against the Sentinel's host name. The Sentinels get opt's
// configuration; the primary's connections get it without a server name,
// so that crypto/tls checks the primary's certificate against the address
// dialed.
func sentinelTLS(opt *rueidis.ClientOption) {
	if opt.Sentinel.MasterSet == "" || opt.TLSConfig == nil || opt.Sentinel.TLSConfig != nil {
		return
	}
	opt.Sentinel.TLSConfig = opt.TLSConfig.Clone()
	opt.TLSConfig = opt.TLSConfig.Clone()
	opt.TLSConfig.ServerName = ""
}

// hostOf returns the host of a host:port address.
func hostOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			h := addr[:i]
			if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
				h = h[1 : len(h)-1]
			}
			return h
		}
	}
	return addr
}

// Classify returns err wrapped in a *Error when it is a TLS failure
// of a known kind (a certificate from an unknown authority, an expired
// certificate, a host name mismatch, a client certificate the server
// required or refused), and err unchanged otherwise (nil stays nil).
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		remote   *net.OpError
	)
	switch {
	case errors.As(err, &unknown):
		return &Error{Kind: ErrUnknownAuthority, Err: err}
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return &Error{Kind: ErrExpired, Err: err}
	case errors.As(err, &hostname):
		return &Error{Kind: ErrHostname, Err: err}
	case errors.As(err, &remote) && remote.Op == "remote error" && isClientCertAlert(remote.Err):
		return &Error{Kind: ErrClientCertRequired, Err: err}
	}
	return err
}

// clientCertAlerts are the texts of the TLS alerts a server sends about
// the client's certificate (crypto/tls does not export its alert type).
var clientCertAlerts = []string{
	"certificate required", // TLS 1.3: none sent
	"bad certificate",
	"unknown certificate authority",
	"expired certificate",
	"handshake failure", // OpenSSL's answer to a missing certificate in TLS 1.2
}

// isClientCertAlert reports whether a remote alert is about the client's
// certificate.
func isClientCertAlert(err error) bool {
	msg := err.Error()
	for _, a := range clientCertAlerts {
		if strings.Contains(msg, a) {
			return true
		}
	}
	return false
}

// Diagnose returns err classified by Classify. When that finds no
// known TLS cause and opt uses TLS, it opens one TLS connection to opt's
// first address and waits up to a second for the server's verdict on the
// client certificate: under TLS 1.3 a server refuses it only after the
// client's handshake ended, so the client sees a reset connection instead
// of the reason. A recognized verdict comes back as a *Error that
// wraps err too; otherwise err is returned unchanged (nil stays nil).
func Diagnose(ctx context.Context, opt rueidis.ClientOption, err error) error {
	err = Classify(err)
	var te *Error
	if err == nil || opt.TLSConfig == nil || len(opt.InitAddress) == 0 || errors.As(err, &te) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: opt.TLSConfig}
	conn, derr := d.DialContext(ctx, "tcp", opt.InitAddress[0])
	if derr != nil {
		if c := Classify(derr); errors.As(c, &te) {
			return &Error{Kind: te.Kind, Err: fmt.Errorf("%w (%w)", err, derr)}
		}
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, rerr := conn.Read(make([]byte, 1))
	if c := Classify(rerr); errors.As(c, &te) {
		return &Error{Kind: te.Kind, Err: fmt.Errorf("%w (%w)", err, rerr)}
	}
	return err
}
