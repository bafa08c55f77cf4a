package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/logtest"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// fixture returns n endpoints in two regions with tags and protocols varied.
func fixture(n int) []*clientvpnv1.ClientVpnEndpoint {
	out := make([]*clientvpnv1.ClientVpnEndpoint, n)
	for i := range n {
		out[i] = &clientvpnv1.ClientVpnEndpoint{
			ClientVpnEndpointId: proto.String(fmt.Sprintf("cvpn-endpoint-%017x", 0x1000+i*7919)),
			Description:         proto.String(fmt.Sprintf("endpoint <%d> & ✓", i)),
			TransportProtocol:   clientvpnv1.TransportProtocol(1 + i%2),
			VpcId:               proto.String(fmt.Sprintf("vpc-%d", i%3)),
			Status:              &clientvpnv1.ClientVpnEndpointStatus{Code: clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_AVAILABLE},
			Tags:                []*clientvpnv1.Tag{{Key: proto.String("team"), Value: proto.String([]string{"net", "sec"}[i%2])}},
			Region:              []string{"eu-west-1", "us-east-1"}[i%2],
			AccountId:           "111111111111",
		}
	}
	return out
}

// startServer serves handler over h2c and HTTP/1.1 on a loopback port.
func startServer(t testing.TB, h http.Handler) string {
	t.Helper()
	url, _ := startServerLogging(t, h)
	return url
}

// startServerLogging is startServer, also returning what net/http's server
// logs (its ErrorLog: dropped headers, TLS and protocol errors).
func startServerLogging(t testing.TB, h http.Handler) (url string, serverLog *logtest.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	serverLog = new(logtest.Buffer)
	srv := &http.Server{Handler: h, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(serverLog, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), serverLog
}

// h2cClient speaks HTTP/2 without TLS (prior knowledge), as gRPC clients do.
func h2cClient() *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protocols, TLSClientConfig: &tls.Config{}}}
}

type env struct {
	url     string
	store   *store.Memory
	clients map[string]clientvpnv1connect.ClientVpnServiceClient
}

func newEnv(t *testing.T, endpoints []*clientvpnv1.ClientVpnEndpoint, maxStaleness time.Duration) *env {
	t.Helper()
	st := store.NewMemory()
	if endpoints != nil {
		if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now().Add(-3 * time.Second), Endpoints: endpoints}); err != nil {
			t.Fatal(err)
		}
	}
	reader := server.NewReader(server.ReaderOptions{Store: st, MaxStaleness: maxStaleness})
	url := startServer(t, server.NewHandler(server.Options{Reader: reader, Registerer: prometheus.NewRegistry(), AllowedOrigins: []string{"https://console.example.test"}}))
	h2c := h2cClient()
	return &env{url: url, store: st, clients: map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect":      clientvpnv1connect.NewClientVpnServiceClient(h2c, url),
		"connect-get":  clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url, connect.WithHTTPGet()),
		"connect-json": clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url, connect.WithProtoJSON()),
		"grpc":         clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPC()),
		"grpc-web":     clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url, connect.WithGRPCWeb()),
	}}
}

func TestListEveryPageOnEveryProtocol(t *testing.T) {
	t.Parallel()
	eps := fixture(257)
	e := newEnv(t, slices.Clone(eps), 0)
	for name, c := range e.clients {
		t.Run(name, func(t *testing.T) {
			var got []string
			req := &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 50}
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatal("paging does not end")
				}
				res, err := c.ListClientVpnEndpoints(t.Context(), req)
				if err != nil {
					t.Fatalf("List: %v", err)
				}
				if res.GetSnapshot().GetVersion() != 1 || res.GetSnapshot().GetRefreshedAt() == nil {
					t.Errorf("snapshot info = %v", res.GetSnapshot())
				}
				for _, ep := range res.GetClientVpnEndpoints() {
					got = append(got, ep.GetClientVpnEndpointId())
				}
				if res.GetNextToken() == "" {
					break
				}
				req.NextToken = res.GetNextToken()
			}
			var want []string
			for _, ep := range eps {
				want = append(want, ep.GetClientVpnEndpointId())
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("listed %d ids, want %d in id order", len(got), len(want))
			}
		})
	}
}

func TestListDefaultsAndFilters(t *testing.T) {
	t.Parallel()
	eps := fixture(1200)
	e := newEnv(t, slices.Clone(eps), 0)
	c := e.clients["connect"]
	res, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{})
	if err != nil || len(res.GetClientVpnEndpoints()) != server.DefaultPageSize || res.GetNextToken() == "" {
		t.Fatalf("max_results 0: %d endpoints, token %q, err %v; want %d and a token", len(res.GetClientVpnEndpoints()), res.GetNextToken(), err, server.DefaultPageSize)
	}
	res, err = c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5000})
	if err != nil || len(res.GetClientVpnEndpoints()) != server.MaxPageSize {
		t.Fatalf("max_results 5000: %d endpoints, err %v; want %d", len(res.GetClientVpnEndpoints()), err, server.MaxPageSize)
	}
	res, err = c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{
		MaxResults: 1000,
		Filters: []*clientvpnv1.Filter{
			{Name: "tag:team", Values: []string{"net"}},
			{Name: "vpc-id", Values: []string{"vpc-1", "vpc-2"}},
			{Name: "transport-protocol", Values: []string{"t?p"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range eps {
		if i%2 == 0 && i%3 != 0 {
			want++
		}
	}
	if len(res.GetClientVpnEndpoints()) != want {
		t.Errorf("filtered list has %d endpoints, want %d", len(res.GetClientVpnEndpoints()), want)
	}
	for _, ep := range res.GetClientVpnEndpoints() {
		if ep.GetTags()[0].GetValue() != "net" || ep.GetVpcId() == "vpc-0" || ep.GetTransportProtocol() != clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_TCP {
			t.Errorf("endpoint %s does not match the filters", ep.GetClientVpnEndpointId())
		}
	}
	ids := []string{eps[3].GetClientVpnEndpointId(), eps[7].GetClientVpnEndpointId()}
	res, err = c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: ids})
	if err != nil || len(res.GetClientVpnEndpoints()) != 2 {
		t.Errorf("list by ids: %v, %v", res, err)
	}
}

func TestGetAndAgeHeader(t *testing.T) {
	t.Parallel()
	eps := fixture(10)
	e := newEnv(t, slices.Clone(eps), 0)
	for name, c := range e.clients {
		res, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: eps[4].GetClientVpnEndpointId()})
		if err != nil {
			t.Fatalf("%s: Get: %v", name, err)
		}
		if !proto.Equal(res.GetClientVpnEndpoint(), eps[4]) {
			t.Errorf("%s: Get returned %v, want %v", name, res.GetClientVpnEndpoint(), eps[4])
		}
	}
	// Snapshot-Age counts seconds since the refresh (published 3 s ago).
	ctx, info := connect.NewClientContext(t.Context())
	if _, err := e.clients["connect"].GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: eps[1].GetClientVpnEndpointId()}); err != nil {
		t.Fatal(err)
	}
	if age, err := strconv.Atoi(info.ResponseHeader().Get("Snapshot-Age")); err != nil || age < 3 {
		t.Errorf("Snapshot-Age header = %q, want at least 3 seconds", info.ResponseHeader().Get("Snapshot-Age"))
	}
	if got := info.ResponseHeader().Get("Age"); got != "" {
		t.Errorf("Age = %q: an origin must not send it (RFC 9111, 5.1)", got)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	eps := fixture(30)
	e := newEnv(t, slices.Clone(eps), 0)
	page, err := e.clients["connect"].ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5, Filters: []*clientvpnv1.Filter{{Name: "tag:team", Values: []string{"net"}}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func(c clientvpnv1connect.ClientVpnServiceClient) error
		code connect.Code
		msg  string
	}{
		{"negative max_results", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: -1})
			return err
		}, connect.CodeInvalidArgument, "max_results: must be between 0 and 1000"},
		{"unknown filter", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "colour", Values: []string{"red"}}}})
			return err
		}, connect.CodeInvalidArgument, "The filter 'colour' is invalid; supported filters: endpoint-id, transport-protocol, vpc-id, status, tag:<key>, tag-key, region, account-id"},
		{"filter without values", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "vpc-id"}}})
			return err
		}, connect.CodeInvalidArgument, `the filter "vpc-id" has no values`},
		{"bad token", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{NextToken: "garbage"})
			return err
		}, connect.CodeInvalidArgument, "next_token: invalid"},
		{"token with changed filters", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{NextToken: page.GetNextToken()})
			return err
		}, connect.CodeInvalidArgument, "different ids or filters"},
		{"unknown ids", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: []string{eps[0].GetClientVpnEndpointId(), "cvpn-endpoint-0000000000000dead"}})
			return err
		}, connect.CodeNotFound, `"cvpn-endpoint-0000000000000dead" cannot be found`},
		{"get unknown", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: "cvpn-endpoint-0000000000000beef"})
			return err
		}, connect.CodeNotFound, `"cvpn-endpoint-0000000000000beef" cannot be found`},
		{"get wrong region", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: eps[0].GetClientVpnEndpointId(), Region: "us-east-1"})
			return err
		}, connect.CodeNotFound, `in region "us-east-1"`},
		{"get without id", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{})
			return err
		}, connect.CodeInvalidArgument, "client_vpn_endpoint_id: required"},
		{"dry run of a valid request", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{DryRun: true})
			return err
		}, connect.CodeFailedPrecondition, "DryRunOperation"},
		{"dry run of an invalid request", func(c clientvpnv1connect.ClientVpnServiceClient) error {
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{DryRun: true, Filters: []*clientvpnv1.Filter{{Name: "colour", Values: []string{"x"}}}})
			return err
		}, connect.CodeInvalidArgument, "The filter 'colour' is invalid"},
	}
	for _, tc := range cases {
		for name, c := range e.clients {
			err := tc.call(c)
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s over %s: got %v; want code %v and a message containing %q", tc.name, name, err, tc.code, tc.msg)
			}
		}
	}
	// A successful dry run says so in a machine-readable detail.
	_, err = e.clients["grpc"].ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{DryRun: true})
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("dry run: %v", err)
	}
	found := false
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok && info.GetReason() == "DryRunOperation" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("dry run error has no ErrorInfo with reason DryRunOperation: %v", ce.Details())
	}
}

func TestUnavailableBeforeFirstSnapshotAndWhenTooOld(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, time.Second)
	health := grpchealth.NewClient(h2cClient(), e.url, connect.WithGRPC())
	for name, c := range e.clients {
		_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{})
		if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "first refresh is pending") {
			t.Errorf("%s: List before any snapshot = %v; want Unavailable saying the first refresh is pending", name, err)
		}
	}
	if res, err := health.Check(t.Context(), &grpchealth.CheckRequest{}); err != nil || res.Status != grpchealth.StatusNotServing {
		t.Errorf("health before any snapshot = %v, %v; want NOT_SERVING", res, err)
	}
	// Published 3 s ago with a 1 s limit: too old to serve.
	if _, err := e.store.Publish(context.Background(), store.Publication{RefreshedAt: time.Now().Add(-3 * time.Second), Endpoints: fixture(3)}); err != nil {
		t.Fatal(err)
	}
	_, err := e.clients["connect"].ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{})
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "old, more than the 1s") {
		t.Errorf("List of a too-old snapshot = %v; want Unavailable naming its age", err)
	}
	if _, err := e.store.Publish(context.Background(), store.Publication{RefreshedAt: time.Now(), Endpoints: fixture(3)}); err != nil {
		t.Fatal(err)
	}
	if res, err := health.Check(t.Context(), &grpchealth.CheckRequest{}); err != nil || res.Status != grpchealth.StatusServing {
		t.Errorf("health with a fresh snapshot = %v, %v; want SERVING", res, err)
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fixture(1), 0)
	req, _ := http.NewRequest(http.MethodOptions, e.url+clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, nil)
	req.Header.Set("Origin", "https://console.example.test")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "connect-protocol-version,content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://console.example.test" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	req.Header.Set("Origin", "https://evil.example.test")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("a foreign origin was allowed: %q", got)
	}
}
