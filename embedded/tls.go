package embedded

import (
	"context"

	"github.com/redis/rueidis"

	"github.com/fencekit/fencekit/tlsconf"
)

// The TLS failures ClassifyTLS and DiagnoseTLS recognize. Errors returned
// by Server.NewClient match them with errors.Is; each comes wrapped in a
// *TLSError that keeps the crypto/tls or crypto/x509 error too.
var (
	// ErrTLSUnknownAuthority: the server's certificate is not signed by a
	// CA the client trusts (a wrong or missing CA file).
	ErrTLSUnknownAuthority = tlsconf.ErrUnknownAuthority
	// ErrTLSExpired: the server's certificate has expired or is not valid
	// yet.
	ErrTLSExpired = tlsconf.ErrExpired
	// ErrTLSHostname: the server's certificate does not name the host the
	// client dialed.
	ErrTLSHostname = tlsconf.ErrHostname
	// ErrTLSClientCertRequired: the server asks for a client certificate
	// (tls-auth-clients yes) and none was given, or it refused the one
	// given.
	ErrTLSClientCertRequired = tlsconf.ErrClientCertRequired
	// ErrTLSConfig: the TLS settings cannot be used (an unreadable or
	// invalid CA, certificate or key file, a certificate without its key,
	// or a skip_verify URL without the explicit opt-in).
	ErrTLSConfig = tlsconf.ErrConfig
)

// TLSError is a TLS failure of a known kind: Kind is one of the ErrTLS*
// sentinels, Err the underlying error, whose text names no key or
// password. errors.Is matches both.
type TLSError = tlsconf.Error

// TLSFiles are the TLS settings users have next to a rediss:// URL: CAFile,
// CertFile and KeyFile (PEM), and InsecureSkipVerify, the only way to turn
// verification off. Its Apply method adds them to a rueidis.ClientOption
// and returns an error matching ErrTLSConfig when they cannot be used.
type TLSFiles = tlsconf.Files

// TLSFilesFromEnv reads REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE,
// REDIS_TLS_KEY_FILE and REDIS_TLS_INSECURE_SKIP_VERIFY ("1" or "true")
// through getenv (os.Getenv when nil).
func TLSFilesFromEnv(getenv func(string) string) TLSFiles {
	return tlsconf.FilesFromEnv(getenv)
}

// ClassifyTLS returns err wrapped in a *TLSError when it is a TLS failure
// of a known kind, and err unchanged otherwise (nil stays nil).
func ClassifyTLS(err error) error {
	return tlsconf.Classify(err)
}

// DiagnoseTLS is ClassifyTLS, and for an error it does not recognize on a
// TLS connection, one more TLS connection to opt's first address that
// waits up to a second for the server's verdict on the client certificate
// (under TLS 1.3 a refusal arrives after the handshake, and the client
// sees only a reset connection). It returns err unchanged when it finds
// no known cause.
func DiagnoseTLS(ctx context.Context, opt rueidis.ClientOption, err error) error {
	return tlsconf.Diagnose(ctx, opt, err)
}
