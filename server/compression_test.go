package server_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// TestCompressionPolicy: a single endpoint is sent as is; a page is gzipped
// for clients that accept it, and decodes to the same answer.
func TestCompressionPolicy(t *testing.T) {
	t.Parallel()
	eps := fixture(150)
	e := newEnv(t, slices.Clone(eps), 0)
	call := func(procedure string, req proto.Message) (*http.Response, []byte) {
		body, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest(http.MethodPost, e.url+procedure, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/proto")
		r.Header.Set("Accept-Encoding", "gzip")
		// A transport that leaves Content-Encoding to the test.
		res, err := (&http.Transport{DisableCompression: true}).RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, out
	}

	res, _ := call(clientvpnv1connect.ClientVpnServiceGetClientVpnEndpointProcedure, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: eps[0].GetClientVpnEndpointId()})
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "" {
		t.Errorf("Get: status %d, Content-Encoding %q; want 200 and no compression for one endpoint", res.StatusCode, res.Header.Get("Content-Encoding"))
	}

	res, body := call(clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 100})
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("List: status %d, Content-Encoding %q; want 200 and gzip for a page", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var page clientvpnv1.ListClientVpnEndpointsResponse
	if err := proto.Unmarshal(raw, &page); err != nil || len(page.GetClientVpnEndpoints()) != 100 {
		t.Errorf("gzipped page decodes to %d endpoints (err %v), want 100", len(page.GetClientVpnEndpoints()), err)
	}
}
