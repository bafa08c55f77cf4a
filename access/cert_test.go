package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// client issues a client certificate with the given CN and URI SANs.
func (ca *testCA) client(t *testing.T, cn string, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestCertificate runs a real mTLS server on loopback that accepts (but
// does not require) client certificates from one CA, as --tls-client-ca
// does, and authenticates each request with HTTP.
func TestCertificate(t *testing.T) {
	a := newAuthenticator(t, exampleYAML(), Options{})
	ca := newTestCA(t, "test client CA")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.HTTP(r)
		if err != nil {
			http.Error(w, string(ReasonOf(err))+": "+err.Error(), http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(p.Name()))
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool}
	srv.StartTLS()
	defer srv.Close()

	get := func(cert *tls.Certificate, bearer string) (string, error) {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			// Send the certificate even when the server's CA list does not
			// name its issuer (Go's client would otherwise send none).
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return cert, nil
			}
		}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return "", err
		}
		return res.Status[:3] + " " + strings.TrimSpace(readAll(t, res)), nil
	}

	spiffe := ca.client(t, "anything", "spiffe://corp/ns/ops/sa/sync")
	cnOnly := ca.client(t, "ops-cli")
	unknownURI := ca.client(t, "ops-cli", "spiffe://corp/ns/ops/sa/other")
	unknownCN := ca.client(t, "nobody")
	cases := []struct {
		name   string
		cert   *tls.Certificate
		bearer string
		want   string // prefix of "status body"
	}{
		{"URI SAN", &spiffe, "", "200 inventory-sync"},
		{"CN without URI SAN", &cnOnly, "", "200 ops"},
		{"unknown URI SAN is not taken by its CN", &unknownURI, "", `401 unknown_credentials: unknown_credentials: the client certificate's identity "spiffe://corp/ns/ops/sa/other" is not in the access file`},
		{"unknown CN", &unknownCN, "", "401 unknown_credentials"},
		{"no certificate, no token", nil, "", "401 missing_credentials"},
		{"no certificate, token", nil, "token-ops", "200 ops"},
		{"certificate and a valid token: the token decides", &spiffe, "token-ops", "200 ops"},
		{"certificate and a wrong token: denied", &spiffe, "wrong", "401 unknown_credentials"},
	}
	for _, c := range cases {
		got, err := get(c.cert, c.bearer)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}

	// A certificate from another CA fails the TLS handshake: it never
	// reaches the authenticator.
	other := newTestCA(t, "other CA").client(t, "ops-cli")
	if got, err := get(&other, ""); err == nil {
		t.Errorf("certificate from an untrusted CA: got %q, want a TLS error", got)
	}
}

func TestCertificateWithoutVerifiedChain(t *testing.T) {
	a := newAuthenticator(t, exampleYAML(), Options{})
	if _, err := a.Certificate(nil); ReasonOf(err) != ReasonMissing {
		t.Errorf("Certificate(nil): %v, want ReasonMissing", err)
	}
	// Peer certificates that were not verified (tls.RequestClientCert)
	// carry no identity.
	ca := newTestCA(t, "ca")
	cert := ca.client(t, "ops-cli")
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	if _, err := a.Certificate(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}); ReasonOf(err) != ReasonMissing {
		t.Errorf("unverified peer certificate: %v, want ReasonMissing", err)
	}
}
