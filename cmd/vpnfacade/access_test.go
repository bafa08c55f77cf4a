package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	facadecmd "github.com/vpnfacade/vpnfacade/cmd/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// testPKI is a CA with the server and client certificates it issued, as
// PEM files.
type testPKI struct {
	dir                   string
	caFile                string
	serverCert, serverKey string
	pool                  *x509.CertPool
	clientCert            tls.Certificate
	caCert                *x509.Certificate
	caKey                 *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T, clientURI string) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	var err error
	if p.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vpnfacade test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(caDER)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", caDER)

	serverDER, serverKey := p.issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "vpnfacade"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.serverCert = p.write(t, "server.pem", "CERTIFICATE", serverDER)
	keyDER, _ := x509.MarshalECPrivateKey(serverKey)
	p.serverKey = p.write(t, "server-key.pem", "EC PRIVATE KEY", keyDER)

	u, _ := url.Parse(clientURI)
	clientDER, clientKey := p.issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "sync"}, URIs: []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.clientCert = tls.Certificate{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}
	return p
}

func (p *testPKI) issue(t *testing.T, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// httpClient is an HTTP/2 client over TLS trusting the test CA, adding
// header to every request and presenting cert when given.
func (p *testPKI) httpClient(header http.Header, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: p.pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: headerTransport{header, &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}}
}

type headerTransport struct {
	header http.Header
	base   http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

// issued runs "vpnfacade access <command>" (in process; TestREADMEProductionExample
// runs it through the binary) and returns its key: value lines.
func issued(t *testing.T, command string) map[string]string {
	t.Helper()
	var out, stderr bytes.Buffer
	if err := facadecmd.RunAccessCommand([]string{command}, &out, &stderr); err != nil {
		t.Fatalf("vpnfacade access %s: %v\n%s", command, err, stderr.String())
	}
	kv := map[string]string{}
	for line := range strings.Lines(out.String()) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok {
			kv[k] = v
		}
	}
	return kv
}

const otherAccount = "222222222222"

// TestAccessEndToEnd runs the binary with an access file, mTLS and two
// accounts in the emulator, and reads over Connect, gRPC, gRPC-Web and the
// EC2-compatible endpoint (boto3) without credentials, with wrong ones and
// with right ones. A principal limited to one account sees exactly that
// account's endpoints, compared with the emulator's data.
func TestAccessEndToEnd(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 with boto3 is needed for this test: %v", err)
	}
	const spiffe = "spiffe://corp/ns/ops/sa/sync"
	pki := newTestPKI(t, spiffe)

	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 120, Seed: 9, Regions: e2eRegions, Accounts: []string{e2eAccount, otherAccount}})
	if err != nil {
		t.Fatal(err)
	}
	sim := startSimWith(t, data).sim // the emulator's default account is e2eAccount

	oneToken, limitedToken, euToken := issued(t, "new-token"), issued(t, "new-token"), issued(t, "new-token")
	oneKey, euKey := issued(t, "new-access-key"), issued(t, "new-access-key")
	accessFile := filepath.Join(t.TempDir(), "access.yaml")
	writeAccessFile(t, accessFile, fmt.Sprintf(`principals:
  - name: one-account
    tokens_sha256: [%s]
    access_keys: [{id: %s, secret: "%s"}]
    accounts: ["%s"]
    regions: ["*"]
  - name: everything-over-mtls
    cert_identities: ["%s"]
    accounts: ["*"]
    regions: ["*"]
  - name: eu-only
    tokens_sha256: [%s]
    access_keys: [{id: %s, secret: "%s"}]
    accounts: ["*"]
    regions: ["eu-*"]
  - name: limited
    tokens_sha256: [%s]
    accounts: ["*"]
    regions: ["*"]
    rate_limit: {per_second: 0.001, burst: 1}
`, oneToken["tokens_sha256"], oneKey["access_key_id"], oneKey["secret_access_key"], e2eAccount,
		spiffe, euToken["tokens_sha256"], euKey["access_key_id"], euKey["secret_access_key"], limitedToken["tokens_sha256"]))

	f := startFacade(t, sim, "",
		"--assume-roles", "arn:aws:iam::"+otherAccount+":role/reader",
		"--access-file", accessFile,
		"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", pki.caFile,
		"--metrics-listen", "127.0.0.1:0")

	// Health stays open: no credentials needed.
	health := grpchealth.NewClient(pki.httpClient(nil, nil), f.url, connect.WithGRPC())
	waitUntil(t, 30*time.Second, "SERVING", func() bool {
		res, err := health.Check(t.Context(), &grpchealth.CheckRequest{})
		return err == nil && res.Status == grpchealth.StatusServing
	})

	var oneAccountKeys, allKeys []string
	for _, e := range data {
		allKeys = append(allKeys, snapshot.Key(e))
		if e.GetAccountId() == e2eAccount {
			oneAccountKeys = append(oneAccountKeys, snapshot.Key(e))
		}
	}
	slices.Sort(oneAccountKeys)
	slices.Sort(allKeys)
	var outsideID string // an endpoint of the other account only
	for _, e := range sim.Endpoints(otherAccount, e2eRegions[0]) {
		outsideID = e.GetClientVpnEndpointId()
		break
	}
	insideID := sim.Endpoints(e2eAccount, e2eRegions[0])[0].GetClientVpnEndpointId()

	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
	protocols := map[string][]connect.ClientOption{
		"connect":  nil,
		"grpc":     {connect.WithGRPC()},
		"grpc-web": {connect.WithGRPCWeb()},
	}
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			client := func(h http.Header, cert *tls.Certificate) clientvpnv1connect.ClientVpnServiceClient {
				return clientvpnv1connect.NewClientVpnServiceClient(pki.httpClient(h, cert), f.url, opts...)
			}
			req := &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 25}

			_, err := client(nil, nil).ListClientVpnEndpoints(t.Context(), req)
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("no credentials: %v, want Unauthenticated", err)
			}
			_, err = client(bearer("vpft_wrong"), nil).ListClientVpnEndpoints(t.Context(), req)
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("wrong token: %v, want Unauthenticated", err)
			}

			one := client(bearer(oneToken["token"]), nil)
			got, err := listAll(t.Context(), one, req)
			if err != nil {
				t.Fatalf("one-account List: %v", err)
			}
			if keys := sortedKeys(got); !slices.Equal(keys, oneAccountKeys) {
				t.Errorf("one-account List: %d endpoints, want exactly the emulator's %d of account %s", len(keys), len(oneAccountKeys), e2eAccount)
			}
			if _, err := one.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: outsideID}); connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("one-account Get of the other account's endpoint: %v, want NotFound", err)
			}
			if res, err := one.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: insideID}); err != nil || res.GetClientVpnEndpoint().GetAccountId() != e2eAccount {
				t.Errorf("one-account Get of its own endpoint: %v", err)
			}
			_, err = one.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: []string{outsideID}})
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("one-account List of the other account's id: %v, want NotFound", err)
			}

			eu := client(bearer(euToken["token"]), nil)
			_, err = eu.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{DryRun: true, Filters: []*clientvpnv1.Filter{{Name: "region", Values: []string{"us-east-1"}}}})
			if connect.CodeOf(err) != connect.CodePermissionDenied {
				t.Errorf("eu-only DryRun in us-east-1: %v, want PermissionDenied", err)
			}
			_, err = eu.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{DryRun: true, Filters: []*clientvpnv1.Filter{{Name: "region", Values: []string{"eu-west-1"}}}})
			if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Errorf("eu-only DryRun in eu-west-1: %v, want FailedPrecondition (DryRunOperation)", err)
			}

			// A client certificate alone, no token.
			all, err := listAll(t.Context(), client(nil, &pki.clientCert), req)
			if err != nil {
				t.Fatalf("mTLS List: %v", err)
			}
			if keys := sortedKeys(all); !slices.Equal(keys, allKeys) {
				t.Errorf("mTLS List: %d endpoints, want all %d", len(keys), len(allKeys))
			}
		})
	}

	t.Run("rate limit", func(t *testing.T) {
		c := clientvpnv1connect.NewClientVpnServiceClient(pki.httpClient(bearer(limitedToken["token"]), nil), f.url)
		req := &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5}
		if _, err := c.ListClientVpnEndpoints(t.Context(), req); err != nil {
			t.Fatalf("first call within the burst: %v", err)
		}
		if _, err := c.ListClientVpnEndpoints(t.Context(), req); connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("second call over the limit: %v, want ResourceExhausted", err)
		}
	})

	t.Run("ec2 with boto3", func(t *testing.T) {
		type result struct {
			Name   string   `json:"name"`
			OK     bool     `json:"ok"`
			IDs    []string `json:"ids"`
			Code   string   `json:"code"`
			Status int      `json:"status"`
		}
		cases := []map[string]any{
			{"name": "unsigned", "region": "eu-west-1", "key": "x", "secret": "y", "unsigned": true},
			{"name": "wrong secret", "region": "eu-west-1", "key": oneKey["access_key_id"], "secret": euKey["secret_access_key"]},
			{"name": "unknown key", "region": "eu-west-1", "key": "AKIAUNKNOWN000000000", "secret": oneKey["secret_access_key"]},
			{"name": "eu-west-1", "region": "eu-west-1", "key": oneKey["access_key_id"], "secret": oneKey["secret_access_key"]},
			{"name": "us-east-1", "region": "us-east-1", "key": oneKey["access_key_id"], "secret": oneKey["secret_access_key"]},
			{"name": "eu-only dry run in us-east-1", "region": "us-east-1", "key": euKey["access_key_id"], "secret": euKey["secret_access_key"], "dry_run": true},
			{"name": "eu-only dry run in eu-west-1", "region": "eu-west-1", "key": euKey["access_key_id"], "secret": euKey["secret_access_key"], "dry_run": true},
			{"name": "eu-only in us-east-1", "region": "us-east-1", "key": euKey["access_key_id"], "secret": euKey["secret_access_key"]},
		}
		in, _ := json.Marshal(cases)
		cmd := exec.CommandContext(t.Context(), python, "testdata/boto3_access.py", f.url, pki.caFile)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("boto3_access.py: %v\n%s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var results []result
		if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
			t.Fatalf("boto3_access.py printed %q: %v", out, err)
		}
		idsOf := func(account, region string) []string {
			var ids []string
			for _, e := range sim.Endpoints(account, region) {
				ids = append(ids, e.GetClientVpnEndpointId())
			}
			slices.Sort(ids)
			return ids
		}
		for _, r := range results {
			slices.Sort(r.IDs)
			var want result
			switch r.Name {
			case "unsigned":
				want = result{Code: "MissingAuthenticationToken", Status: 401}
			case "wrong secret":
				want = result{Code: "SignatureDoesNotMatch", Status: 403}
			case "unknown key":
				want = result{Code: "AuthFailure", Status: 401}
			case "eu-west-1", "us-east-1":
				want = result{OK: true, IDs: idsOf(e2eAccount, r.Name)}
			case "eu-only dry run in us-east-1":
				want = result{Code: "UnauthorizedOperation", Status: 403}
			case "eu-only dry run in eu-west-1":
				want = result{Code: "DryRunOperation", Status: 412}
			case "eu-only in us-east-1":
				want = result{OK: true} // the region is outside its scope: nothing to see
			}
			want.Name = r.Name
			if r.OK != want.OK || r.Code != want.Code || r.Status != want.Status || !slices.Equal(r.IDs, want.IDs) {
				t.Errorf("%s: got ok=%v %d ids %s %d, want ok=%v %d ids %s %d", r.Name, r.OK, len(r.IDs), r.Code, r.Status, want.OK, len(want.IDs), want.Code, want.Status)
			}
			if (r.Name == "eu-west-1" || r.Name == "us-east-1") && len(r.IDs) == 0 {
				t.Errorf("%s: no endpoint compared", r.Name)
			}
		}
	})

	t.Run("metrics on their own listener", func(t *testing.T) {
		res, err := pki.httpClient(nil, nil).Get(f.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("/metrics is served on the API listener although --metrics-listen is set")
		}
		m := regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`).FindStringSubmatch(f.Output())
		if m == nil {
			t.Fatal("no \"metrics listening\" log line")
		}
		for _, path := range []string{"/metrics", "/debug/pprof/"} {
			res, err := http.Get(m[1] + path)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s on --metrics-listen: %s", path, res.Status)
			}
		}
	})

	t.Run("audit log", func(t *testing.T) {
		logs := f.Output()
		denials := map[string]int{}
		for line := range strings.Lines(logs) {
			var rec struct{ Msg, Principal, Protocol, Procedure, Reason string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "access denied" {
				denials[rec.Principal+" "+rec.Protocol+" "+rec.Procedure+" "+rec.Reason]++
			}
		}
		for _, want := range []string{
			"anonymous grpc /clientvpn.v1.ClientVpnService/ListClientVpnEndpoints unknown_credentials",
			"anonymous grpcweb /clientvpn.v1.ClientVpnService/ListClientVpnEndpoints missing_credentials",
			"limited connect /clientvpn.v1.ClientVpnService/ListClientVpnEndpoints rate_limited",
			"eu-only connect /clientvpn.v1.ClientVpnService/ListClientVpnEndpoints out_of_scope",
			"anonymous ec2 DescribeClientVpnEndpoints signature_mismatch",
			"eu-only ec2 DescribeClientVpnEndpoints out_of_scope",
		} {
			if denials[want] != 1 {
				t.Errorf("audit lines %q: %d, want exactly 1 (all: %v)", want, denials[want], denials)
			}
		}
		for _, secret := range []string{oneToken["token"], euToken["token"], limitedToken["token"], oneKey["secret_access_key"], euKey["secret_access_key"], "vpft_wrong"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds a credential (%.10s…)", secret)
			}
		}
	})
}

func sortedKeys(eps []*clientvpnv1.ClientVpnEndpoint) []string {
	keys := make([]string, len(eps))
	for i, e := range eps {
		keys[i] = snapshot.Key(e)
	}
	slices.Sort(keys)
	return keys
}

func writeAccessFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
