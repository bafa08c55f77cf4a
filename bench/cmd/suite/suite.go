package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/bench/child"
	"github.com/vpnfacade/vpnfacade/bench/load"
	"github.com/vpnfacade/vpnfacade/bench/workload"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// The emulated AWS: one account, two regions.
const account = "111111111111"

func regions() []string { return []string{"eu-west-1", "us-east-1"} }

// pageSize is the List page of every List scenario.
const pageSize = 100

var (
	listeningLine = regexp.MustCompile(`"msg":"vpnfacade listening","addr":"(http://[^"]+)"`)
	pprofLine     = regexp.MustCompile(`"msg":"pprof listening","addr":"(http://[^"]+)"`)
	publishedLine = regexp.MustCompile(`"msg":"snapshot published"`)
	// refreshedLine ends a refresh that published or, finding the data
	// unchanged, confirmed the current snapshot.
	refreshedLine = regexp.MustCompile(`"msg":"snapshot (published|confirmed unchanged)"`)
	bareLine      = regexp.MustCompile(`bare listening on (http://\S+)`)
	redisReady    = regexp.MustCompile(`Ready to accept connections`)
	heapAllocLine = regexp.MustCompile(`(?m)^# HeapAlloc = (\d+)`)
)

// suite holds what the phases share.
type suite struct {
	cfg      config
	cleanups []func()
	rep      *report
}

func (s *suite) cleanup() {
	for _, f := range slices.Backward(s.cleanups) {
		f()
	}
}

// progress reports what is happening on stderr.
func (s *suite) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// sim is an in-process EC2 emulator on a loopback port.
type sim struct {
	*ec2sim.Server
	url string
}

// startSim serves endpoints (cloned) with AWS's latency and throttle.
func (s *suite) startSim(data []*clientvpnv1.ClientVpnEndpoint) (*sim, error) {
	srv, err := ec2sim.New(ec2sim.Options{
		Endpoints:     clones(data),
		DefaultRegion: regions()[0],
		Latency:       s.cfg.latency,
		Throttle:      ec2sim.AWSThrottle(),
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	s.cleanups = append(s.cleanups, func() { _ = hs.Close() })
	return &sim{Server: srv, url: "http://" + ln.Addr().String()}, nil
}

// describeCalls is how many DescribeClientVpnEndpoints requests the sim
// received, and how many of them it throttled.
func (m *sim) describeCalls() (calls, throttled int64) {
	st := m.Stats()
	return st.ByAction["DescribeClientVpnEndpoints"], st.Throttled
}

func clones(eps []*clientvpnv1.ClientVpnEndpoint) []*clientvpnv1.ClientVpnEndpoint {
	out := make([]*clientvpnv1.ClientVpnEndpoint, len(eps))
	for i, e := range eps {
		out[i] = proto.CloneOf(e)
	}
	return out
}

func generate(n int) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	return ec2sim.Generate(ec2sim.GenerateOptions{Count: n, Seed: 42, Regions: regions(), Accounts: []string{account}})
}

// startRedis starts a redis-server without persistence on a free loopback
// port and returns its URL.
func (s *suite) startRedis(ctx context.Context) (string, error) {
	port, err := child.FreePort()
	if err != nil {
		return "", err
	}
	p, err := startProc("redis-server", s.cfg.redisServer, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.cfg.outDir,
	}, nil, filepath.Join(s.cfg.outDir, "redis.log"))
	if err != nil {
		return "", err
	}
	s.cleanups = append(s.cleanups, p.kill)
	if _, _, err := p.await(ctx, 0, redisReady, 10*time.Second); err != nil {
		return "", err
	}
	return fmt.Sprintf("redis://127.0.0.1:%d", port), nil
}

// startBare runs bench/cmd/bare and returns its URL and process id.
func (s *suite) startBare(ctx context.Context) (string, int, error) {
	p, err := startProc("bare", s.cfg.bare, []string{"--listen", "127.0.0.1:0", "--page", strconv.Itoa(pageSize)}, nil,
		filepath.Join(s.cfg.outDir, "bare.log"))
	if err != nil {
		return "", 0, err
	}
	s.cleanups = append(s.cleanups, p.kill)
	_, m, err := p.await(ctx, 0, bareLine, 30*time.Second)
	if err != nil {
		return "", 0, err
	}
	return m[1], p.pid(), nil
}

// facade is a running vpnfacade process.
type facade struct {
	*proc
	url      string
	pprofURL string
}

// startFacade runs vpnfacade against the sim and Redis on port. It returns
// once the process has started; await its lines for more.
func (s *suite) startFacade(m *sim, redisURL, namespace string, port int, logName string) (*facade, error) {
	args := []string{
		"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--regions", strings.Join(regions(), ","),
		"--account-id", account,
		"--refresh-interval", s.cfg.refreshInterval.String(),
		"--log-format", "json",
		"--redis-url", redisURL,
		"--namespace", namespace,
		"--pprof-listen", "127.0.0.1:0",
		// The load comes from one address, loopback, as no real client
		// would: the per-address limits are not what is measured here.
		"--list-rate-per-address", "0",
		"--list-share-per-address", "1",
		"--max-connections-per-address", "0",
	}
	env := child.EmulatorEnv(m.url, regions()[0])
	p, err := startProc("vpnfacade", s.cfg.vpnfacade, args, env, filepath.Join(s.cfg.outDir, logName))
	if err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, p.kill)
	return &facade{proc: p, url: "http://127.0.0.1:" + strconv.Itoa(port)}, nil
}

// awaitReady waits for the facade's pprof and listening lines.
func (f *facade) awaitReady(ctx context.Context) (listenedAt time.Time, err error) {
	_, m, err := f.await(ctx, 0, pprofLine, 30*time.Second)
	if err != nil {
		return time.Time{}, err
	}
	f.pprofURL = m[1]
	i, _, err := f.await(ctx, 0, listeningLine, 30*time.Second)
	if err != nil {
		return time.Time{}, err
	}
	return f.lineTime(i), nil
}

// publication is one "snapshot published" log line.
type publication struct {
	Endpoints int           `json:"endpoints"`
	Duration  time.Duration `json:"duration"` // see UnmarshalJSON
	index     int
	at        time.Time
}

// UnmarshalJSON reads a "snapshot published" line whose duration the
// service's JSON log writes as a string ("4.32s") or, with slog's own JSON
// handler, as nanoseconds.
func (p *publication) UnmarshalJSON(b []byte) error {
	var raw struct {
		Endpoints int             `json:"endpoints"`
		Duration  json.RawMessage `json:"duration"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Endpoints = raw.Endpoints
	var s string
	if json.Unmarshal(raw.Duration, &s) == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		p.Duration = d
		return nil
	}
	var ns int64
	if err := json.Unmarshal(raw.Duration, &ns); err != nil {
		return fmt.Errorf("duration %s: %w", raw.Duration, err)
	}
	p.Duration = time.Duration(ns)
	return nil
}

// awaitPublished waits for the next snapshot published from line from on.
func (f *facade) awaitPublished(ctx context.Context, from int, timeout time.Duration) (publication, error) {
	i, _, err := f.await(ctx, from, publishedLine, timeout)
	if err != nil {
		return publication{}, err
	}
	var p publication
	if err := json.Unmarshal([]byte(f.linesFrom(i)[0]), &p); err != nil {
		return publication{}, fmt.Errorf("reading %q: %w", f.linesFrom(i)[0], err)
	}
	p.index, p.at = i, f.lineTime(i)
	return p, nil
}

// refreshes returns the time spans of the refreshes published from line
// from on (each ends when it was logged and lasted its logged duration).
func (f *facade) refreshes(from int) [][2]time.Time {
	var out [][2]time.Time
	for i, l := range f.linesFrom(from) {
		if !publishedLine.MatchString(l) {
			continue
		}
		var p publication
		if json.Unmarshal([]byte(l), &p) != nil {
			continue
		}
		end := f.lineTime(from + i)
		out = append(out, [2]time.Time{end.Add(-p.Duration), end})
	}
	return out
}

// countPublished counts the snapshots published from line from on.
func (f *facade) countPublished(from int) int {
	n := 0
	for _, l := range f.linesFrom(from) {
		if publishedLine.MatchString(l) {
			n++
		}
	}
	return n
}

// scenario names one measured load.
type scenario struct {
	Target   string // "bare", "facade" or "direct"
	Proc     string // "Get" or "List"
	Protocol string // workload protocol, or "aws-sdk-go-v2"
	Encoding string // "gzip" or "identity" for Connect and gRPC; "" for direct
}

func (sc scenario) String() string {
	s := sc.Target + " " + sc.Proc + " " + sc.Protocol
	if sc.Encoding != "" {
		s += " " + sc.Encoding
	}
	return s
}

// loadConfig is the load every scenario gets, paced at rate when positive.
func (s *suite) loadConfig(rate float64) load.Config {
	return load.Config{Concurrency: s.cfg.concurrency, Warmup: s.cfg.warmup, Duration: s.cfg.duration, Rate: rate}
}

// measured is a load result with the CPU time spent per call, over the
// measured time, by the server process and by this process (the load
// generator; also the home of the EC2 emulators, idle but for refreshes).
// CPU per call does not depend on how much CPU others left us, so it
// compares runs on a shared machine better than throughput does.
type measured struct {
	load.Result
	ServerCPU, ClientCPU time.Duration
	// Start and End bound the measured time.
	Start, End time.Time
	// DuringRefresh is set when a refresh of the facade ran during the
	// measured time: it takes CPU from whatever runs then, bare included.
	DuringRefresh bool
}

// measure runs one scenario against the process serverPID and logs its
// result.
func (s *suite) measure(ctx context.Context, sc scenario, rate float64, op load.Op, serverPID int) (measured, error) {
	return s.measureWith(ctx, sc, s.loadConfig(rate), op, serverPID)
}

// measureWith is measure with a load configuration of its own.
func (s *suite) measureWith(ctx context.Context, sc scenario, cfg load.Config, op load.Op, serverPID int) (measured, error) {
	rate := cfg.Rate
	var server0, server1, self0, self1 time.Duration
	var start, end time.Time
	cfg.OnMeasureStart = func() { server0, _ = cpuTime(serverPID); self0 = selfCPU(); start = time.Now() }
	cfg.OnMeasureEnd = func() { server1, _ = cpuTime(serverPID); self1 = selfCPU(); end = time.Now() }
	res, err := load.Run(ctx, cfg, op)
	if err != nil {
		return measured{Result: res}, fmt.Errorf("%s: %w", sc, err)
	}
	m := measured{Result: res, Start: start, End: end}
	if calls := res.OK + res.Errors; calls > 0 {
		m.ServerCPU = (server1 - server0) / time.Duration(calls)
		m.ClientCPU = (self1 - self0) / time.Duration(calls)
	}
	pace := ""
	if rate > 0 {
		pace = fmt.Sprintf(" (paced at %.0f/s)", rate)
	}
	if cfg.Concurrency != s.cfg.concurrency {
		pace += fmt.Sprintf(" (concurrency %d)", cfg.Concurrency)
	}
	s.progress("%-36s %s cpu/call server=%s client=%s%s", sc, res, fmtMicros(m.ServerCPU), fmtMicros(m.ClientCPU), pace)
	return m, nil
}

func fmtMicros(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

// connectOps builds the Get and List ops of one target and protocol.
func (s *suite) connectOp(sc scenario, url string, targets []workload.Target) (load.Op, error) {
	clients, err := workload.NewClients(url, sc.Protocol, s.cfg.conns, sc.Encoding == "gzip")
	if err != nil {
		return nil, err
	}
	if sc.Proc == "Get" {
		return workload.GetOp(clients, targets, s.cfg.concurrency)
	}
	return workload.ListOp(clients, workload.ListFilters(), pageSize, s.cfg.concurrency)
}

// fetch GETs url into path.
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		return fmt.Errorf("GET %s: %s: %s", url, res.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// liveHeap forces a garbage collection in the facade (through pprof) and
// returns the heap then in use (runtime.MemStats.HeapAlloc).
func (f *facade) liveHeap(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.pprofURL+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	m := heapAllocLine.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("no HeapAlloc in the heap profile of %s", f.pprofURL)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// bareTarget asks the bare server which endpoint it returns.
func bareTarget(ctx context.Context, url string) (workload.Target, error) {
	c := clientvpnv1connect.NewClientVpnServiceClient(workload.H2CClient(), url)
	res, err := c.GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: "any"})
	if err != nil {
		return workload.Target{}, err
	}
	e := res.GetClientVpnEndpoint()
	return workload.Target{ID: e.GetClientVpnEndpointId(), Region: e.GetRegion()}, nil
}

func targetsOf(data []*clientvpnv1.ClientVpnEndpoint) []workload.Target {
	out := make([]workload.Target, len(data))
	for i, e := range data {
		out[i] = workload.Target{ID: e.GetClientVpnEndpointId(), Region: e.GetRegion()}
	}
	return out
}

// clientvpnv1connectClient is a Connect (binary) client of url over h2c.
func clientvpnv1connectClient(url string) clientvpnv1connect.ClientVpnServiceClient {
	return clientvpnv1connect.NewClientVpnServiceClient(workload.H2CClient(), url)
}
