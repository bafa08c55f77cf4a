package main_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

// TestRedisTLSAndACLUser runs the binary against a redis-server that takes
// only TLS clients with a certificate of the test CA, and only an ACL user
// limited to the facade's keys and channels (the default user is off):
// with rediss://user:password@…, --redis-ca-file, --redis-cert-file and
// --redis-key-file it serves every endpoint of the emulator. Run again with
// a wrong password, it logs the refusal; neither password appears in
// anything either process printed.
func TestRedisTLSAndACLUser(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, "spiffe://test/vpnfacade")
	clientKey, err := x509.MarshalECPrivateKey(pki.clientCert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	clientCert := pki.write(t, "client.pem", "CERTIFICATE", pki.clientCert.Certificate[0])
	clientKeyFile := pki.write(t, "client-key.pem", "EC PRIVATE KEY", clientKey)

	password := randomHex(t)
	tlsAddr := freeAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	const namespace = "tlstest"
	keys := "vpnfacade:{" + namespace + "}:*"
	// redis-server takes each word of a directive as its own argument.
	args := []string{
		"--tls-port", tlsPort,
		"--tls-cert-file", pki.serverCert, "--tls-key-file", pki.serverKey,
		"--tls-ca-cert-file", pki.caFile, "--tls-auth-clients", "yes",
		"--user", "default", "off",
		"--user", "facade", "on", ">" + password, "resetchannels", "~" + keys, "&" + keys,
	}
	args = append(args, strings.Fields("+@all -@dangerous")...)
	redistest.Start(t, args...)

	s := startSim(t, 30, ec2sim.Options{})
	tlsFlags := []string{"--namespace", namespace, "--redis-ca-file", pki.caFile, "--redis-cert-file", clientCert, "--redis-key-file", clientKeyFile}
	f := startFacadeProcess(t, s, "rediss://facade:"+password+"@"+tlsAddr, nil, tlsFlags...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("facade output:\n%s", f.Output())
		}
	})
	waitServing(t, f.url)
	api := clients(f.url)["connect"]
	var got []*clientvpnv1.ClientVpnEndpoint
	waitUntil(t, 30*time.Second, "a List of every endpoint through Redis over TLS", func() bool {
		got, err = listAll(t.Context(), api, &clientvpnv1.ListClientVpnEndpointsRequest{})
		return err == nil && len(got) == len(s.data)
	})
	if keys, want := sortedKeys(got), sortedKeys(s.data); !slices.Equal(keys, want) {
		t.Errorf("the facade serves %d endpoints, want the emulator's %d", len(keys), len(want))
	}
	if !strings.Contains(f.Output(), `"store":"redis"`) {
		t.Errorf("the log does not say the store is Redis:\n%s", f.Output())
	}

	wrong := randomHex(t)
	bad := startFacadeProcess(t, s, "rediss://facade:"+wrong+"@"+tlsAddr, nil, tlsFlags...)
	waitUntil(t, 30*time.Second, "the refusal of a wrong password in the log", func() bool {
		return strings.Contains(bad.Output(), "WRONGPASS")
	})
	t.Logf("the wrong password's log:\n%s", bad.Output())
	for name, out := range map[string]string{"right password": f.Output(), "wrong password": bad.Output()} {
		for _, secret := range []string{password, wrong} {
			if strings.Contains(out, secret) {
				t.Errorf("the run with the %s printed a password:\n%s", name, out)
			}
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
