package main_test

import (
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// TestBrowserPage loads the page in headless Chromium, which reads the API
// through Connect-Web, and checks the endpoints it renders.
func TestBrowserPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (.ci/run installs it)")
	}
	s := startSim(t, 400, ec2sim.Options{})
	f := startFacade(t, s, "")
	waitServing(t, f.url)

	var want []string
	for _, e := range s.data {
		if e.GetTransportProtocol() == clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP {
			want = append(want, e.GetClientVpnEndpointId())
		}
	}
	slices.Sort(want)
	want = want[:min(len(want), 100)] // the page shows one page of 100

	page := f.url + "/?filter=" + url.QueryEscape("transport-protocol=udp")
	cmd := exec.CommandContext(t.Context(), chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000", "--dump-dom", page)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	got := regexp.MustCompile(`<td class="id">(cvpn-endpoint-[0-9a-f]+)</td>`).FindAllStringSubmatch(dom, -1)
	var ids []string
	for _, m := range got {
		ids = append(ids, m[1])
	}
	if !slices.Equal(ids, want) {
		t.Errorf("the page shows %d endpoints, want the first %d udp endpoints in id order", len(ids), len(want))
	}
	if !strings.Contains(dom, "snapshot version 1") {
		t.Errorf("the page does not show the snapshot version:\n%.2000s", dom)
	}
	if !strings.Contains(dom, `id="error"></div>`) {
		t.Errorf("the page shows an error:\n%.2000s", dom)
	}
}
