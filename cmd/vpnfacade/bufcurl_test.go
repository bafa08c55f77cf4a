package main_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/vpnfacade/vpnfacade/ec2sim"
)

// bufCurl runs the buf CLI pinned in tools/go.mod.
func bufCurl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", append([]string{"tool", "-modfile=../../tools/go.mod", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("buf curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestBufCurl discovers the API through server reflection, with no proto
// files, and calls both RPCs over gRPC, as a user debugging the service would.
func TestBufCurl(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the buf CLI; skipped with -short")
	}
	s := startSim(t, 50, ec2sim.Options{})
	f := startFacade(t, s, "")
	waitServing(t, f.url)

	methods := bufCurl(t, "--list-methods", f.url)
	for _, m := range []string{
		"clientvpn.v1.ClientVpnService/ListClientVpnEndpoints",
		"clientvpn.v1.ClientVpnService/GetClientVpnEndpoint",
		"grpc.health.v1.Health/Check",
	} {
		if !strings.Contains(methods, m) {
			t.Errorf("reflection does not list %s:\n%s", m, methods)
		}
	}

	var list struct {
		ClientVpnEndpoints []struct {
			ClientVpnEndpointID string `json:"clientVpnEndpointId"`
			Region              string `json:"region"`
		} `json:"clientVpnEndpoints"`
		NextToken string `json:"nextToken"`
	}
	out := bufCurl(t, "-d", `{"maxResults": 3, "filters": [{"name": "region", "values": ["eu-west-1"]}]}`,
		f.url+"/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("List output is not JSON: %v\n%s", err, out)
	}
	if len(list.ClientVpnEndpoints) != 3 || list.NextToken == "" || list.ClientVpnEndpoints[0].Region != "eu-west-1" {
		t.Fatalf("List via buf curl = %s", out)
	}

	id := list.ClientVpnEndpoints[0].ClientVpnEndpointID
	out = bufCurl(t, "-d", `{"clientVpnEndpointId": "`+id+`"}`, f.url+"/clientvpn.v1.ClientVpnService/GetClientVpnEndpoint")
	if !strings.Contains(out, `"clientVpnEndpointId": "`+id+`"`) {
		t.Errorf("Get via buf curl did not return %s:\n%s", id, out)
	}
}
