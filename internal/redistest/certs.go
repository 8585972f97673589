package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PEMPair is a certificate and its private key, as PEM files.
type PEMPair struct {
	// CertFile and KeyFile are the paths of the PEM certificate and of
	// its PKCS#8 key (mode 0600).
	CertFile, KeyFile string
	// KeyPEM is the key file's content, for tests that check it is never
	// printed.
	KeyPEM []byte
}

// Certs is a test PKI generated in a temporary directory: a CA, a server
// certificate for 127.0.0.1, ::1 and localhost, and a client certificate,
// all valid from an hour ago for a year, with ECDSA P-256 keys.
type Certs struct {
	// CAFile is the CA certificate (PEM).
	CAFile string
	// Server and Client are signed by the CA.
	Server, Client PEMPair

	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

// CertSpec describes a certificate for Certs.Issue.
type CertSpec struct {
	// Name is the common name and the file name stem.
	Name string
	// DNSNames and IPs are the subject alternative names.
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter default to an hour ago and a year from now.
	NotBefore, NotAfter time.Time
	// Client makes a client certificate (ExtKeyUsageClientAuth) instead of
	// a server certificate (ServerAuth and ClientAuth).
	Client bool
}

// NewCerts generates a CA and the server and client certificates in a
// directory removed at the end of the test. It calls t.Fatal on failure.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	c := &Certs{dir: t.TempDir()}
	var err error
	c.ca, c.caKey, c.CAFile, err = newCA(c.dir, "fencekit test CA")
	if err != nil {
		t.Fatalf("redistest: CA: %v", err)
	}
	c.Server = c.Issue(t, CertSpec{Name: "server", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}})
	c.Client = c.Issue(t, CertSpec{Name: "client", Client: true})
	return c
}

// OtherCA generates a second, unrelated CA and returns its certificate
// file: a client that trusts only it rejects the servers of c.
func (c *Certs) OtherCA(t testing.TB) string {
	t.Helper()
	_, _, file, err := newCA(filepath.Join(c.dir, "other"), "another test CA")
	if err != nil {
		t.Fatalf("redistest: other CA: %v", err)
	}
	return file
}

// Issue signs a certificate with c's CA and writes it and its key to
// <Name>.crt and <Name>.key. It calls t.Fatal on failure.
func (c *Certs) Issue(t testing.TB, spec CertSpec) PEMPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("redistest: key: %v", err)
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = time.Now().Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	c.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(c.serial + 1),
		Subject:      pkix.Name{CommonName: spec.Name, Organization: []string{"fencekit tests"}},
		NotBefore:    spec.NotBefore,
		NotAfter:     spec.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     spec.DNSNames,
		IPAddresses:  spec.IPs,
	}
	if spec.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		// redis-server presents its certificate as a client too, on the
		// cluster bus and to its primary, where tls-auth-clients applies.
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca, &key.PublicKey, c.caKey)
	if err != nil {
		t.Fatalf("redistest: certificate %s: %v", spec.Name, err)
	}
	p := PEMPair{CertFile: filepath.Join(c.dir, spec.Name+".crt"), KeyFile: filepath.Join(c.dir, spec.Name+".key")}
	if p.KeyPEM, err = writePEM(p.CertFile, p.KeyFile, der, key); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return p
}

// ClientTLS returns a client configuration that trusts c's CA and presents
// the client certificate, with ServerName left empty (crypto/tls takes the
// dialed host).
func (c *Certs) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := c.clientTLS()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	return cfg
}

func (c *Certs) clientTLS() (*tls.Config, error) {
	pool := x509.NewCertPool()
	pool.AddCert(c.ca)
	cert, err := tls.LoadX509KeyPair(c.Client.CertFile, c.Client.KeyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}

// newCA makes a self-signed CA in dir and writes ca.crt (and ca.key).
func newCA(dir, name string) (*x509.Certificate, *ecdsa.PrivateKey, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"fencekit tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(2 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, "", err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, "", err
	}
	file := filepath.Join(dir, "ca.crt")
	if _, err := writePEM(file, filepath.Join(dir, "ca.key"), der, key); err != nil {
		return nil, nil, "", err
	}
	return ca, key, file, nil
}

// writePEM writes a certificate and its key (mode 0600) and returns the
// key's PEM.
func writePEM(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) ([]byte, error) {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return keyPEM, nil
}
