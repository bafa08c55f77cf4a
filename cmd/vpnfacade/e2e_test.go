package main_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/proctest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// facadeBin is the vpnfacade binary built once for every test here.
var facadeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vpnfacade-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	facadeBin, err = proctest.Build(dir, "github.com/vpnfacade/vpnfacade/cmd/vpnfacade")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// e2eRegions and e2eAccount describe the emulated AWS the tests read.
var e2eRegions = []string{"eu-west-1", "us-east-1"}

const e2eAccount = "111111111111"

// sim is an in-process EC2 emulator serving on a loopback port, so tests can
// read its request counters.
type sim struct {
	*ec2sim.Server
	url  string
	data []*clientvpnv1.ClientVpnEndpoint
}

func startSim(t *testing.T, count int, opts ec2sim.Options) *sim {
	t.Helper()
	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: count, Seed: 42, Regions: e2eRegions, Accounts: []string{e2eAccount}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := serveSim(t, data, opts)
	return s
}

// serveSim serves data from an in-process emulator with opts on a loopback
// port, until the test ends; it returns the emulator and its HTTP server.
func serveSim(t *testing.T, data []*clientvpnv1.ClientVpnEndpoint, opts ec2sim.Options) (*sim, *http.Server) {
	t.Helper()
	opts.Endpoints = make([]*clientvpnv1.ClientVpnEndpoint, len(data))
	for i, e := range data {
		opts.Endpoints[i] = proto.CloneOf(e)
	}
	opts.DefaultRegion = e2eRegions[0]
	srv, err := ec2sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return &sim{Server: srv, url: "http://" + ln.Addr().String(), data: data}, hs
}

var listeningLine = regexp.MustCompile(`"msg":"vpnfacade listening","addr":"(https?://[^"]+)"`)

// facade is a running vpnfacade binary.
type facade struct {
	*proctest.Process
	url string
}

// startFacade runs the binary against the sim (and Redis when redisURL is
// set) and waits until it listens.
func startFacade(t *testing.T, s *sim, redisURL string, extraArgs ...string) *facade {
	t.Helper()
	args := append([]string{
		"--listen", "127.0.0.1:0",
		"--regions", strings.Join(e2eRegions, ","),
		"--account-id", e2eAccount,
		"--refresh-interval", "1h",
		"--log-format", "json",
	}, extraArgs...)
	if redisURL != "" {
		args = append(args, "--redis-url", redisURL)
	}
	env := []string{
		"AWS_ENDPOINT_URL_EC2=" + s.url,
		"AWS_ENDPOINT_URL_STS=" + s.url,
		"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e", "AWS_REGION=" + e2eRegions[0],
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
	p, m := proctest.Start(t, facadeBin, args, env, listeningLine, 30*time.Second)
	return &facade{Process: p, url: m[1]}
}

// waitServing polls the health service until it reports SERVING.
func waitServing(t *testing.T, url string) {
	t.Helper()
	health := grpchealth.NewClient(http.DefaultClient, url)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := health.Check(t.Context(), &grpchealth.CheckRequest{})
		if err == nil && res.Status == grpchealth.StatusServing {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became SERVING", url)
}

func h2cClient() *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protocols}}
}

func clients(url string) map[string]clientvpnv1connect.ClientVpnServiceClient {
	return map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect":  clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url),
		"grpc":     clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url, connect.WithGRPC()),
		"grpc-web": clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url, connect.WithGRPCWeb()),
	}
}

func listAll(ctx context.Context, c clientvpnv1connect.ClientVpnServiceClient, req *clientvpnv1.ListClientVpnEndpointsRequest) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	var all []*clientvpnv1.ClientVpnEndpoint
	req = proto.CloneOf(req)
	for range 10000 {
		res, err := c.ListClientVpnEndpoints(ctx, req)
		if err != nil {
			return nil, err
		}
		all = append(all, res.GetClientVpnEndpoints()...)
		if res.GetNextToken() == "" {
			return all, nil
		}
		req.NextToken = res.GetNextToken()
	}
	return nil, errors.New("paging did not end")
}

// TestEndToEnd runs the binary with Redis and the emulator and reads
// everything back over every protocol.
func TestEndToEnd(t *testing.T) {
	redis := redistest.Start(t)
	s := startSim(t, 1500, ec2sim.Options{})
	f := startFacade(t, s, redis.URL())
	waitServing(t, f.url)

	want := slices.Clone(s.data)
	slices.SortFunc(want, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
		return strings.Compare(snapshot.Key(a), snapshot.Key(b))
	})
	for name, c := range clients(f.url) {
		t.Run(name, func(t *testing.T) {
			got, err := listAll(t.Context(), c, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 400})
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
				return strings.Compare(snapshot.Key(a), snapshot.Key(b))
			})
			if len(got) != len(want) {
				t.Fatalf("listed %d endpoints, the emulator has %d", len(got), len(want))
			}
			for i := range want {
				if !proto.Equal(got[i], want[i]) {
					t.Fatalf("endpoint %s differs from the emulator's:\n got %v\nwant %v", snapshot.Key(want[i]), got[i], want[i])
				}
			}
			// Filters, ids and Get answer what the data says.
			filtered, err := listAll(t.Context(), c, &clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{
				{Name: "transport-protocol", Values: []string{"udp"}},
				{Name: "region", Values: []string{"us-east-1"}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range want {
				if e.GetTransportProtocol() == clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP && e.GetRegion() == "us-east-1" {
					n++
				}
			}
			if len(filtered) != n || n == 0 {
				t.Errorf("filtered list has %d endpoints, the data has %d", len(filtered), n)
			}
			res, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: want[7].GetClientVpnEndpointId(), Region: want[7].GetRegion()})
			if err != nil || !proto.Equal(res.GetClientVpnEndpoint(), want[7]) {
				t.Errorf("Get = %v, %v", res, err)
			}
			_, err = c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: "cvpn-endpoint-00000000000000000"})
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Errorf("Get of an unknown id = %v, want NotFound", err)
			}
			_, err = c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: -5})
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "max_results") {
				t.Errorf("List with max_results -5 = %v, want InvalidArgument naming max_results", err)
			}
		})
	}

	// Readers never reach AWS: only the refresher's pages were requested.
	pages := s.Stats().ByAction["DescribeClientVpnEndpoints"]
	if pages != int64(len(e2eRegions)) {
		t.Errorf("the emulator served %d DescribeClientVpnEndpoints pages, want %d (one per region, the refresher's only)", pages, len(e2eRegions))
	}

	// A SIGTERM drains and exits cleanly.
	if err := f.Stop(15 * time.Second); err != nil {
		t.Errorf("vpnfacade did not shut down cleanly: %v\n%s", err, f.Output())
	}
}

// TestWarmStart starts a second process on a populated Redis: it serves at
// once, and it does not call upstream for data that is still fresh.
func TestWarmStart(t *testing.T) {
	redis := redistest.Start(t)
	s := startSim(t, 300, ec2sim.Options{})
	first := startFacade(t, s, redis.URL())
	waitServing(t, first.url)
	if err := first.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.ResetStats()
	second := startFacade(t, s, redis.URL())
	waitServing(t, second.url)
	got, err := listAll(t.Context(), clients(second.url)["connect"], &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
	if err != nil || len(got) != len(s.data) {
		t.Fatalf("warm start listed %d endpoints (err %v), want %d", len(got), err, len(s.data))
	}
	if calls := s.Stats().ByAction["DescribeClientVpnEndpoints"]; calls != 0 {
		t.Errorf("the warm process called DescribeClientVpnEndpoints %d times for a snapshot refreshed moments ago, want 0", calls)
	}
	if !strings.Contains(second.Output(), "current snapshot is fresh") {
		t.Errorf("the warm process did not say why it waited:\n%s", second.Output())
	}
}
