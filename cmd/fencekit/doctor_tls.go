package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// certExpiryWarn is how close to its expiry a server certificate makes the
// tls check warn.
const certExpiryWarn = 30 * 24 * time.Hour

// tlsProbe is what one TLS handshake with the server showed.
type tlsProbe struct {
	version      uint16
	notAfter     time.Time
	subject      string
	askedForCert bool // the server sent a CertificateRequest
}

// probeTLS makes one TLS connection to addr with the client's
// configuration and records the protocol version, the server's leaf
// certificate and whether the server asked for a client certificate.
func (d *doctor) probeTLS(ctx context.Context, addr string) (tlsProbe, error) {
	var p tlsProbe
	cfg := d.a.opt.TLSConfig.Clone()
	certs := cfg.Certificates
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		p.askedForCert = true
		if len(certs) > 0 {
			return &certs[0], nil
		}
		return &tls.Certificate{}, nil
	}
	ctx, cancel := d.a.reqCtx(ctx)
	defer cancel()
	dialer := tls.Dialer{NetDialer: &net.Dialer{Timeout: d.a.timeout}, Config: cfg}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return p, err
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	p.version = st.Version
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		p.notAfter = leaf.NotAfter
		p.subject = leaf.Subject.CommonName
	}
	return p, nil
}

// isLoopback reports whether host:port names this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTLS reports whether the connection is encrypted: the protocol
// version, whether the server asked for a client certificate, and when its
// certificate expires. Plaintext to another machine, an unverified
// certificate and one that expires within 30 days are warnings.
func (d *doctor) checkTLS(ctx context.Context) checkResult {
	r := checkResult{Name: "tls", Facts: map[string]string{}}
	opt := d.a.opt
	addr := ""
	if len(opt.InitAddress) > 0 {
		addr = opt.InitAddress[0]
	}
	if opt.TLSConfig == nil {
		r.Facts["enabled"] = "false"
		if isLoopback(addr) {
			r.Status = statusOK
			r.Detail = "off: plaintext to a loopback address"
			return r
		}
		r.Status = statusWarn
		r.Detail = "off: passwords, tokens and data cross the network in plaintext; use rediss:// (and --tls-ca for a private CA)"
		return r
	}
	r.Facts["enabled"] = "true"
	r.Facts["verified"] = strconv.FormatBool(!opt.TLSConfig.InsecureSkipVerify)
	r.Facts["client_cert_presented"] = strconv.FormatBool(len(opt.TLSConfig.Certificates) > 0)
	// Every master of a cluster, the primary a Sentinel names, else the
	// URL's address; the report is of the certificate that expires first.
	targets := []string{addr}
	switch d.c.Mode() {
	case rueidis.ClientModeCluster:
		targets = targets[:0]
		for _, n := range d.nodes {
			targets = append(targets, n.addr)
		}
	case rueidis.ClientModeSentinel:
		targets = targets[:0]
		for a := range d.c.Nodes() {
			targets = append(targets, a)
		}
		slices.Sort(targets)
	}
	var p tlsProbe
	for i, t := range targets {
		q, err := d.probeTLS(ctx, t)
		if err != nil {
			r.Status = statusUnknown
			r.Detail = "TLS handshake with " + t + ": " + why(err)
			return r
		}
		if i == 0 || q.notAfter.Before(p.notAfter) {
			p, addr = q, t
		}
	}
	if len(targets) > 1 {
		r.Facts["nodes"] = strconv.Itoa(len(targets))
		r.Facts["earliest_expiry_node"] = addr
	}
	version := tls.VersionName(p.version)
	left := time.Until(p.notAfter)
	r.Facts["version"] = version
	r.Facts["client_cert_requested"] = strconv.FormatBool(p.askedForCert)
	r.Facts["server_cert_not_after"] = p.notAfter.UTC().Format(time.RFC3339)
	r.Facts["server_cert_days_left"] = strconv.Itoa(int(left.Hours() / 24))

	var b strings.Builder
	fmt.Fprintf(&b, "%s; ", version)
	switch {
	case p.askedForCert && len(opt.TLSConfig.Certificates) > 0:
		b.WriteString("the server asks for a client certificate and got one (mutual TLS)")
	case p.askedForCert:
		b.WriteString("the server asks for a client certificate, none presented (tls-auth-clients optional)")
	default:
		b.WriteString("the server does not ask for a client certificate")
	}
	fmt.Fprintf(&b, "; server certificate %q valid until %s", p.subject, p.notAfter.UTC().Format("2006-01-02"))
	if len(targets) > 1 {
		fmt.Fprintf(&b, " (the earliest of %d nodes, on %s)", len(targets), addr)
	}

	var warns []string
	if opt.TLSConfig.InsecureSkipVerify {
		warns = append(warns, "the server's certificate is NOT verified (--tls-insecure-skip-verify): anyone on the path can impersonate the server")
	}
	switch {
	case left <= 0:
		warns = append(warns, "the server certificate has EXPIRED")
	case left < certExpiryWarn:
		warns = append(warns, fmt.Sprintf("the server certificate expires in %d day(s)", int(left.Hours()/24)))
	}
	if p.version < tls.VersionTLS12 {
		warns = append(warns, "a protocol older than TLS 1.2")
	}
	r.Status = statusOK
	if len(warns) > 0 {
		r.Status = statusWarn
		b.WriteString(": " + strings.Join(warns, "; "))
	}
	r.Detail = b.String()
	return r
}

// checkACLUser reports the user the connection authenticated as (the
// URL's, or "default"), and whether a password was given, never the
// password itself. The default user without a password is a warning
// beyond loopback.
func (d *doctor) checkACLUser() checkResult {
	opt := d.a.opt
	user := opt.Username
	if user == "" {
		user = "default"
	}
	pw := "none"
	if opt.Password != "" {
		pw = "set"
	}
	if user != "default" && !strings.Contains(d.a.redacted, "//"+user+":") && !strings.Contains(d.a.redacted, "//"+user+"@") {
		// A URL that does not parse cleanly is printed with its whole
		// userinfo hidden: the user name may hold a piece of the password.
		user = "(hidden: the URL does not parse cleanly)"
	}
	r := checkResult{Name: "acl-user", Facts: facts("user", user, "password", pw)}
	addr := ""
	if len(opt.InitAddress) > 0 {
		addr = opt.InitAddress[0]
	}
	switch {
	case user == "default" && pw == "none" && isLoopback(addr):
		r.Status = statusOK
		r.Detail = "the default user without a password, on a loopback address"
	case user == "default" && pw == "none":
		r.Status = statusWarn
		r.Detail = "the default user without a password: whoever reaches the server may run any command; create restricted users (docs/ACL.md)"
	case user == "default":
		r.Status = statusOK
		r.Detail = "the default user, authenticated with a password (not shown); restricted users are safer (docs/ACL.md)"
	default:
		r.Status = statusOK
		r.Detail = fmt.Sprintf("ACL user %q, authenticated with a password (not shown)", user)
		if pw == "none" {
			r.Detail = fmt.Sprintf("ACL user %q without a password (nopass)", user)
		}
	}
	return r
}
