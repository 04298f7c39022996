package hosts

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
	"strings"
	"testing"
	"time"
)

// writeFiles creates files (relative path → content) under root.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// summary renders endpoints compactly for table comparisons.
func summary(eps []Endpoint) []string {
	out := make([]string, 0, len(eps))
	for _, ep := range eps {
		role := "upstream"
		if ep.Mirror {
			role = "mirror"
		}
		s := ep.URL.String() + " " + ep.Capabilities.String() + " " + role
		if ep.Namespace != "" {
			s += " ns=" + ep.Namespace
		}
		out = append(out, s)
	}
	return out
}

// testPKI is a CA with a server certificate (for 127.0.0.1 and
// mirror.example) and a client certificate, all as PEM.
type testPKI struct {
	ca                  *x509.Certificate
	caPEM               []byte
	serverPEM, serverKe []byte
	server              *x509.Certificate
	clientPEM, clientKe []byte
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cri-rt test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &testPKI{ca: ca, caPEM: pemOf("CERTIFICATE", caDER)}

	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, []byte, *x509.Certificate) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "leaf"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     []string{"mirror.example"},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", kder), c
	}
	p.serverPEM, p.serverKe, p.server = leaf(2, x509.ExtKeyUsageServerAuth)
	p.clientPEM, p.clientKe, _ = leaf(3, x509.ExtKeyUsageClientAuth)
	return p
}

func (p *testPKI) serverTLS(t *testing.T) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(p.serverPEM, p.serverKe)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// trusts reports whether pool verifies the test server certificate.
func trusts(pool *x509.CertPool, p *testPKI) bool {
	if pool == nil {
		return false
	}
	_, err := p.server.Verify(x509.VerifyOptions{Roots: pool, DNSName: "mirror.example"})
	return err == nil
}

func containsAll(s string, subs ...string) (missing []string) {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			missing = append(missing, sub)
		}
	}
	return missing
}
