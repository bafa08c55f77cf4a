package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// TestSIGHUPReloadsTheAccessFile sends a real SIGHUP to the running binary:
// a token added to the access file then works. The file is a symbolic link
// into another directory, whose change the file watcher (which watches the
// link's directory) does not see, so only the signal can bring it in: the
// new token is refused until the signal. A SIGHUP sent as soon as the
// process started does not end it.
func TestSIGHUPReloadsTheAccessFile(t *testing.T) {
	t.Parallel()
	s := startSim(t, 20, ec2sim.Options{})
	first, second := issued(t, "new-token"), issued(t, "new-token")
	principal := func(name string, token map[string]string) string {
		return fmt.Sprintf("  - name: %s\n    tokens_sha256: [%s]\n    accounts: [\"*\"]\n    regions: [\"*\"]\n", name, token["tokens_sha256"])
	}
	real := filepath.Join(t.TempDir(), "access.yaml")
	writeAccessFile(t, real, "principals:\n"+principal("first", first))
	link := filepath.Join(t.TempDir(), "access.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	f := startFacadeProcess(t, s, "", nil, "--access-file", link)
	f.Signal(syscall.SIGHUP) // nothing changed: a no-op, not the signal's default exit
	waitServing(t, f.url)

	list := func(token map[string]string) error {
		c := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), f.url, connect.WithInterceptors(bearerInterceptor(token["token"])))
		_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1})
		return err
	}
	if err := list(first); err != nil {
		t.Fatalf("the first token: %v", err)
	}
	// Replace the target atomically, in its own directory.
	tmp := real + ".new"
	writeAccessFile(t, tmp, "principals:\n"+principal("first", first)+principal("second", second))
	if err := os.Rename(tmp, real); err != nil {
		t.Fatal(err)
	}
	if err := list(second); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("before SIGHUP the new token: %v, want Unauthenticated (the change is not to be seen without the signal)", err)
	}
	f.Signal(syscall.SIGHUP)
	waitUntil(t, 20*time.Second, "the new token to work after SIGHUP", func() bool { return list(second) == nil })
	if err := list(first); err != nil {
		t.Errorf("the first token after the reload: %v", err)
	}
	if f.Exited() {
		t.Fatalf("the process exited on SIGHUP:\n%s", f.Output())
	}
	if n := f.Count(`"msg":"access file reloaded"`); n != 1 {
		t.Errorf("the log says the access file was reloaded %d times, want once (the signal's)", n)
	}
}
