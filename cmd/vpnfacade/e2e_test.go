package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/proto"

	facadecmd "github.com/vpnfacade/vpnfacade/cmd/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/proctest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// commandName is the name under which this test binary is the vpnfacade
// command itself rather than its tests (see TestMain).
const commandName = "vpnfacade"

// facadeBin is the vpnfacade command the process tests run: this test
// binary, linked under the command's name. It runs the command's main,
// signals, exit codes and stderr included, and needs no second build.
// Under the race detector, which slows the command several times and so
// shifts the timing of leases and refreshes that the process tests rely on,
// it is the command built apart, without the detector, in the background.
var (
	facadeBin      string
	facadeBuilt    = make(chan struct{})
	facadeBuildErr error
)

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == commandName {
		facadecmd.RunCommand()
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "vpnfacade-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if raceEnabled {
		go func() {
			defer close(facadeBuilt)
			facadeBin, facadeBuildErr = proctest.Build(dir, "github.com/vpnfacade/vpnfacade/cmd/vpnfacade")
		}()
	} else {
		exe, err := os.Executable()
		if err == nil {
			facadeBin = filepath.Join(dir, commandName)
			err = os.Symlink(exe, facadeBin)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		close(facadeBuilt)
	}
	code := m.Run()
	<-facadeBuilt
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// facadeBinary returns the vpnfacade command, once it is built.
func facadeBinary(t testing.TB) string {
	t.Helper()
	<-facadeBuilt
	if facadeBuildErr != nil {
		t.Fatal(facadeBuildErr)
	}
	return facadeBin
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

// facade is a running vpnfacade: the binary in its own process, or Main in
// this one. Tests use the process only where it is the point (signals,
// crashes, exit codes, replicas, the binary's own stderr).
type facade struct {
	url  string
	proc *proctest.Process // the binary, or nil

	// In process:
	t       testing.TB
	main    *facadecmd.Main
	log     *logBuffer
	once    sync.Once
	done    chan struct{} // closed once Main is closed
	exitErr error
	release func() // called once Main is closed
}

// inProcessRedis serializes in-process services that use Redis: go-redis
// logs through one process-wide logger, which each sets (see openStore).
// redisTurn names the test whose service holds it.
var (
	inProcessRedis sync.Mutex
	redisTurnMu    sync.Mutex
	redisTurn      string
)

// takeRedisTurn waits until no other in-process service uses Redis. A test
// that needs two at once must run them as processes.
func takeRedisTurn(t *testing.T) (release func()) {
	t.Helper()
	redisTurnMu.Lock()
	holder := redisTurn
	redisTurnMu.Unlock()
	if holder == t.Name() {
		t.Fatal("two in-process services on Redis at once: start them with startFacadeProcess")
	}
	inProcessRedis.Lock()
	redisTurnMu.Lock()
	redisTurn = t.Name()
	redisTurnMu.Unlock()
	return func() {
		redisTurnMu.Lock()
		redisTurn = ""
		redisTurnMu.Unlock()
		inProcessRedis.Unlock()
	}
}

// startFacade runs vpnfacade in process against the sim (and Redis when
// redisURL is set), as the binary would with the arguments and the
// environment of startFacadeProcess, and returns once it listens.
func startFacade(t *testing.T, s *sim, redisURL string, extraArgs ...string) *facade {
	t.Helper()
	return startInProcess(t, s.url, "e2e", append(facadeArgs(redisURL), extraArgs...))
}

// facadeArgs are the arguments every test facade of the e2e account runs with.
func facadeArgs(redisURL string) []string {
	args := []string{
		"--listen", "127.0.0.1:0",
		"--regions", strings.Join(e2eRegions, ","),
		"--account-id", e2eAccount,
		"--refresh-interval", "1h",
		"--log-format", "json",
	}
	if redisURL != "" {
		args = append(args, "--redis-url", redisURL)
	}
	return args
}

// startInProcess runs Main with args (and no VPNFACADE_ variable) against
// the EC2 and STS emulator at awsURL with the static access key accessKey,
// and returns once it listens. It is closed when the test ends.
func startInProcess(t *testing.T, awsURL, accessKey string, args []string, configure ...func(*upstream.Options)) *facade {
	t.Helper()
	f := &facade{t: t, log: &logBuffer{}, done: make(chan struct{}), release: func() {}}
	if slices.Contains(args, "--redis-url") {
		f.release = takeRedisTurn(t)
	}
	f.main = facadecmd.NewMain(f.log, func(string) string { return "" })
	f.main.ConfigureUpstream(func(c *upstream.Options) {
		c.BaseEndpoint = awsURL
		c.LoadOptions = append(c.LoadOptions,
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, "e2e", "")),
			config.WithRegion(e2eRegions[0]),
			config.WithSharedConfigFiles([]string{}), config.WithSharedCredentialsFiles([]string{}),
		)
		for _, f := range configure {
			f(c)
		}
	})
	t.Cleanup(func() { _ = f.closeMain(nil) })
	if err := f.main.ParseFlags(args); err != nil {
		t.Fatalf("vpnfacade %s: %v", strings.Join(args, " "), err)
	}
	if err := f.main.Run(context.Background()); err != nil {
		t.Fatalf("vpnfacade did not start: %v\n%s", err, f.Output())
	}
	f.url = f.main.Addr()
	go func() {
		// As main does: a failure of the running service stops it.
		select {
		case err := <-f.main.Failed():
			_, _ = fmt.Fprintln(f.log, "vpnfacade:", err)
			_ = f.closeMain(err)
		case <-f.done:
		}
	}()
	return f
}

// startFacadeProcess runs the binary against the sim (and Redis when
// redisURL is set), with env added to the environment, and waits until it
// listens.
func startFacadeProcess(t *testing.T, s *sim, redisURL string, env []string, extraArgs ...string) *facade {
	t.Helper()
	env = append([]string{
		"AWS_ENDPOINT_URL_EC2=" + s.url,
		"AWS_ENDPOINT_URL_STS=" + s.url,
		"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e", "AWS_REGION=" + e2eRegions[0],
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}, env...)
	p, m := proctest.Start(t, facadeBinary(t), append(facadeArgs(redisURL), extraArgs...), env, listeningLine, 30*time.Second)
	return &facade{proc: p, url: m[1]}
}

// closeMain closes the in-process service once; cause is why it stopped on
// its own, if it did.
func (f *facade) closeMain(cause error) error {
	f.once.Do(func() {
		err := f.main.Close()
		f.exitErr = errors.Join(cause, err)
		f.release()
		close(f.done)
	})
	<-f.done
	return f.exitErr
}

// Output returns everything the service logged so far.
func (f *facade) Output() string {
	if f.proc != nil {
		return f.proc.Output()
	}
	return f.log.String()
}

// Count returns how many lines logged so far contain s.
func (f *facade) Count(s string) int { return strings.Count(f.Output(), s) }

// Stop shuts the service down as SIGTERM does and waits up to timeout; it
// returns the error that a process would exit with (nil for a clean exit).
func (f *facade) Stop(timeout time.Duration) error {
	if f.proc != nil {
		return f.proc.Stop(timeout)
	}
	closed := make(chan error, 1)
	go func() { closed <- f.closeMain(nil) }()
	select {
	case err := <-closed:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("did not shut down within %s", timeout)
	}
}

// Kill ends the process at once (SIGKILL).
func (f *facade) Kill() { f.mustBeProcess("Kill").Kill() }

// Signal sends sig to the process.
func (f *facade) Signal(sig syscall.Signal) { f.mustBeProcess("Signal").Signal(sig) }

// Exited reports whether the service has stopped.
func (f *facade) Exited() bool {
	if f.proc != nil {
		return f.proc.Exited()
	}
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (f *facade) mustBeProcess(what string) *proctest.Process {
	if f.proc == nil {
		f.t.Fatalf("%s needs the binary: start it with startFacadeProcess", what)
	}
	return f.proc
}

// logBuffer keeps what an in-process service logs, for the test to read
// while it writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
	t.Parallel()
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

	// Shutting down (what SIGTERM does; TestSIGTERMWithStuckClientsExitsZeroWithinTheGrace
	// sends the signal to the binary) drains and ends cleanly.
	if err := f.Stop(15 * time.Second); err != nil {
		t.Errorf("vpnfacade did not shut down cleanly: %v\n%s", err, f.Output())
	}
}

// TestWarmStart starts a second process on a populated Redis: it serves at
// once, and it does not call upstream for data that is still fresh.
func TestWarmStart(t *testing.T) {
	t.Parallel()
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
