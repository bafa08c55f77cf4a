// Command soak runs the vpnfacade binary for a long time (10 minutes by
// default) at half of its saturation under a mix of reads, while its EC2
// emulator changes endpoints and the facade refreshes every 10 s, and
// reports errors, latency per minute and the process's RSS, heap and
// goroutines over time with their least-squares slope: what grows without
// bound shows up as a slope that is not flat. Heap in use includes the
// garbage of the cycle in progress, so it swings with each snapshot; the
// heap goal the last collection set (go_memstats_next_gc_bytes, the live
// heap it marked plus GOGC's share) follows what is kept.
//
// The mix (by weight): Get over gRPC, List pages of 100 with two filters
// over gRPC (binary) and over Connect JSON, DescribeClientVpnEndpoints on
// the EC2 Query endpoint; plus watchers holding WatchClientVpnEndpoints
// streams for the whole run, resuming when a stream ends.
//
//	go build -o /tmp/vpnfacade ./cmd/vpnfacade
//	go run ./bench/soak --bin /tmp/vpnfacade                  # 10 minutes
//	go run ./bench/soak --bin /tmp/vpnfacade --duration 20s   # smoke check
//
// It exits non-zero when any call failed. Everything is on loopback.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/bench/child"
	"github.com/vpnfacade/vpnfacade/bench/load"
	"github.com/vpnfacade/vpnfacade/bench/procstat"
	"github.com/vpnfacade/vpnfacade/bench/workload"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// Options are the soak's settings; zero fields take the defaults main's
// flags document.
type Options struct {
	Bin             string        // the vpnfacade binary
	Duration        time.Duration // measured time
	Window          time.Duration // latency percentiles are reported per window
	Sample          time.Duration // how often RSS, heap and goroutines are read
	Rate            float64       // calls per second; 0: half of the measured saturation
	Probe           time.Duration // how long saturation is measured
	Concurrency     int           // workers
	Watchers        int           // watch streams held open
	Count           int           // endpoints the emulator generates
	RefreshInterval time.Duration // the facade's --refresh-interval
	MutateEvery     time.Duration // how often the emulator changes endpoints
	MutateCount     int           // endpoints changed each time
}

func main() {
	var o Options
	flag.StringVar(&o.Bin, "bin", "", "vpnfacade binary (go build -o /tmp/vpnfacade ./cmd/vpnfacade); required")
	flag.DurationVar(&o.Duration, "duration", 10*time.Minute, "measured time (after the saturation probe)")
	flag.DurationVar(&o.Window, "window", time.Minute, "latency percentiles and errors are reported per window")
	flag.DurationVar(&o.Sample, "sample", 10*time.Second, "how often RSS, heap and goroutines are read")
	flag.Float64Var(&o.Rate, "rate", 0, "calls per second of the mix; 0: half of the saturation measured first")
	flag.DurationVar(&o.Probe, "probe", 15*time.Second, "how long saturation is measured (closed loop) when --rate is 0")
	flag.IntVar(&o.Concurrency, "concurrency", 32, "workers (calls in flight at most)")
	flag.IntVar(&o.Watchers, "watchers", 8, "WatchClientVpnEndpoints streams held open during the run")
	flag.IntVar(&o.Count, "count", 10_000, "endpoints the emulator generates")
	flag.DurationVar(&o.RefreshInterval, "refresh-interval", 10*time.Second, "the facade's refresh interval")
	flag.DurationVar(&o.MutateEvery, "mutate-every", 5*time.Second, "how often the emulator adds, modifies or deletes endpoints")
	flag.IntVar(&o.MutateCount, "mutate-count", 20, "endpoints the emulator changes each time")
	flag.Parse()
	if o.Bin == "" {
		fmt.Fprintln(os.Stderr, "soak: --bin is required (go build -o /tmp/vpnfacade ./cmd/vpnfacade)")
		os.Exit(2)
	}
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

const (
	account  = ec2sim.DefaultAccount
	pageSize = 100
)

var regions = []string{"eu-west-1", "us-east-1"}

func run(ctx context.Context, o Options, out io.Writer) error {
	sim, simURL, stopSim, err := startSim(o)
	if err != nil {
		return err
	}
	defer stopSim()
	f, err := startFacade(o, simURL)
	if err != nil {
		return err
	}
	defer func() { _ = f.stop() }()

	admin := clientvpnv1connect.NewClientVpnServiceClient(workload.H2CClient(), f.url, connect.WithGRPC())
	targets, err := awaitData(ctx, admin)
	if err != nil {
		return err
	}
	ids := make([]string, len(targets))
	for i, t := range targets {
		ids[i] = t.ID
	}
	sim.KeepEndpoints(ids...) // Get's targets stay; everything else churns
	mix, err := newMix(f.url, targets, o.Concurrency)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "# soak: %d endpoints, refresh every %s, emulator changes %d endpoints every %s, %d workers, %d watchers\n\n",
		o.Count, o.RefreshInterval, o.MutateCount, o.MutateEvery, o.Concurrency, o.Watchers)
	// The watchers hold their streams from before the saturation probe,
	// so that saturation is measured with them.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	watch := &watchStats{}
	for w := range o.Watchers {
		c := clientvpnv1connect.NewClientVpnServiceClient(workload.H2CClient(), f.url, connect.WithGRPC())
		wg.Go(func() { watch.hold(runCtx, c, w) })
	}
	rate := o.Rate
	if rate <= 0 {
		res, err := load.Run(ctx, load.Config{Concurrency: o.Concurrency, Warmup: 2 * time.Second, Duration: o.Probe}, mix.op)
		if err != nil {
			return err
		}
		rate = math.Max(1, res.Throughput()/2)
		fmt.Fprintf(out, "saturation (closed loop, %d in flight, %s): %.0f calls/s, p99 %s, %d errors; soak rate %.0f/s\n\n",
			o.Concurrency, o.Probe, res.Throughput(), res.P99.Round(time.Microsecond), res.Errors, rate)
	}
	mix.reset()

	var samples []sample
	var samplesMu sync.Mutex
	start := time.Now()
	take := func() {
		s := readSample(f, start)
		samplesMu.Lock()
		samples = append(samples, s)
		samplesMu.Unlock()
	}
	take()
	wg.Go(func() {
		t := time.NewTicker(o.Sample)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				take()
			}
		}
	})

	fmt.Fprintf(out, "| window | calls | errors | calls/s | p50 | p99 | max | RSS at end | heap in use | heap goal | goroutines | snapshot versions seen |\n")
	fmt.Fprintf(out, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var total, failed int64
	errorSamples := map[string]int64{}
	for i := 1; time.Since(start) < o.Duration; i++ {
		d := min(o.Window, o.Duration-time.Since(start))
		res, err := load.Run(runCtx, load.Config{Concurrency: o.Concurrency, Duration: d, Rate: rate}, mix.op)
		if err != nil {
			return err
		}
		total += res.OK + res.Errors + res.Abandoned
		failed += res.Errors + res.Abandoned
		for k, v := range res.ErrorSamples {
			errorSamples[k] += v
		}
		s := readSample(f, start)
		fmt.Fprintf(out, "| %d | %d | %d | %.0f | %s | %s | %s | %.1f MiB | %.1f MiB | %.1f MiB | %d | %d |\n",
			i, res.OK+res.Errors, res.Errors+res.Abandoned, res.Throughput(), ms(res.P50), ms(res.P99), ms(res.Max),
			mib(s.rss), mib(s.heap), mib(s.heapGoal), s.goroutines, mix.versions())
	}
	cancel()
	wg.Wait()
	take()

	fmt.Fprintf(out, "\nmix: %s\n", mix.counts())
	fmt.Fprintf(out, "watch: %d messages (%d carrying changes), %d streams ended with an error, %d resumed\n",
		watch.messages.Load(), watch.changes.Load(), watch.errors.Load(), watch.resumes.Load())
	fmt.Fprintf(out, "facade refreshes published during the run: %d (%d snapshot versions seen by List)\n\n", f.published.Load(), mix.versions())
	fmt.Fprintf(out, "| over %d samples, every %s | first | last | min | max | least-squares slope |\n| --- | ---: | ---: | ---: | ---: | ---: |\n", len(samples), o.Sample)
	for _, m := range []struct {
		name  string
		value func(sample) float64
		unit  string
		scale float64
	}{
		{"RSS", func(s sample) float64 { return float64(s.rss) }, "MiB", 1 << 20},
		{"heap in use", func(s sample) float64 { return float64(s.heap) }, "MiB", 1 << 20},
		{"heap goal of the last GC", func(s sample) float64 { return float64(s.heapGoal) }, "MiB", 1 << 20},
		{"goroutines", func(s sample) float64 { return float64(s.goroutines) }, "", 1},
	} {
		xs, ys := make([]float64, len(samples)), make([]float64, len(samples))
		for i, s := range samples {
			xs[i], ys[i] = s.at.Minutes(), m.value(s)/m.scale
		}
		lo, hi := minMax(ys)
		fmt.Fprintf(out, "| %s | %.1f %s | %.1f %s | %.1f %s | %.1f %s | %+.2f %s/min |\n", m.name,
			ys[0], m.unit, ys[len(ys)-1], m.unit, lo, m.unit, hi, m.unit, slope(xs, ys), m.unit)
	}
	errs := failed + watch.errors.Load()
	fmt.Fprintf(out, "\ncalls: %d, failed: %d; watch streams failed: %d\n", total, failed, watch.errors.Load())
	for k, v := range errorSamples {
		fmt.Fprintf(out, "  %d× %s\n", v, k)
	}
	if errs > 0 {
		return fmt.Errorf("%d errors", errs)
	}
	return nil
}

// slope is the least-squares slope of ys over xs (0 with fewer than two
// distinct xs).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

func minMax(ys []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, y := range ys {
		lo, hi = math.Min(lo, y), math.Max(hi, y)
	}
	return lo, hi
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func mib(b int64) float64       { return float64(b) / (1 << 20) }

// startSim serves ec2sim's generated endpoints on loopback, changing some
// every o.MutateEvery.
func startSim(o Options) (*ec2sim.Server, string, func(), error) {
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: o.Count, Seed: 7, Regions: regions})
	if err != nil {
		return nil, "", nil, err
	}
	sim, err := ec2sim.New(ec2sim.Options{Endpoints: eps, DefaultRegion: regions[0], MutateEvery: o.MutateEvery, MutateCount: o.MutateCount})
	if err != nil {
		return nil, "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return sim, "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// facade is the vpnfacade process under test.
type facade struct {
	cmd       *exec.Cmd
	url       string
	published atomic.Int64 // "snapshot published" log lines
}

var listeningLine = regexp.MustCompile(`"msg":"vpnfacade listening","addr":"(https?://[^"]+)"`)

func startFacade(o Options, simURL string) (*facade, error) {
	cmd := exec.Command(o.Bin,
		"--listen", "127.0.0.1:0",
		"--regions", strings.Join(regions, ","),
		"--account-id", account,
		"--refresh-interval", o.RefreshInterval.String(),
		"--log-format", "json",
		// The soak is one address standing in for many clients: the
		// per-address limits on expensive calls would refuse its own mix.
		"--list-rate-per-address", "0",
		"--list-share-per-address", "1",
	)
	cmd.Env = append(os.Environ(), child.EmulatorEnv(simURL, regions[0])...)
	logs, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Bin, err)
	}
	f := &facade{cmd: cmd}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
			if strings.Contains(line, `"msg":"snapshot published"`) {
				f.published.Add(1)
			}
			if strings.Contains(line, `"level":"ERROR"`) {
				fmt.Fprintln(os.Stderr, "facade:", line)
			}
		}
	}()
	select {
	case f.url = <-found:
		return f, nil
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.New("the facade did not listen within 60s")
	}
}

// stop sends SIGTERM and waits for the exit.
func (f *facade) stop() error { return child.Stop(f.cmd, 30*time.Second) }

// awaitData waits until the facade serves endpoints and returns up to 1,000
// of them as Get's targets.
func awaitData(ctx context.Context, c clientvpnv1connect.ClientVpnServiceClient) ([]workload.Target, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := c.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
		if err == nil && len(res.GetClientVpnEndpoints()) > 0 {
			var out []workload.Target
			for _, e := range res.GetClientVpnEndpoints() {
				out = append(out, workload.Target{ID: e.GetClientVpnEndpointId(), Region: e.GetRegion()})
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no endpoints served within 2 minutes: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sample is the facade's memory and goroutines at one time.
type sample struct {
	at         time.Duration // since the soak started
	rss        int64
	heap       int64 // go_memstats_heap_inuse_bytes
	heapGoal   int64 // go_memstats_next_gc_bytes
	goroutines int64
}

func readSample(f *facade, start time.Time) sample {
	s := sample{at: time.Since(start), rss: rss(f.cmd.Process.Pid)}
	res, err := http.Get(f.url + "/metrics")
	if err != nil {
		return s
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			s.heap = int64(v)
		case "go_memstats_next_gc_bytes":
			s.heapGoal = int64(v)
		case "go_goroutines":
			s.goroutines = int64(v)
		}
	}
	return s
}

// mix is the soak's Op: each call is one of the reads, in fixed
// proportions.
type mix struct {
	ops   []weighted
	total int
	n     []atomic.Int64 // calls made of each op
	seen  sync.Map       // snapshot versions List answered from
	nSeen atomic.Int64
	calls []atomic.Int64 // per worker: its next call
}

type weighted struct {
	name   string
	weight int
	op     load.Op
}

func newMix(baseURL string, targets []workload.Target, concurrency int) (*mix, error) {
	grpc, err := workload.NewClients(baseURL, workload.GRPC, 4, true)
	if err != nil {
		return nil, err
	}
	jsonClients, err := workload.NewClients(baseURL, workload.ConnectJSON, 2, true)
	if err != nil {
		return nil, err
	}
	get, err := workload.GetOp(grpc, targets, concurrency)
	if err != nil {
		return nil, err
	}
	m := &mix{}
	listProto, err := m.listOp(grpc, concurrency)
	if err != nil {
		return nil, err
	}
	listJSON, err := m.listOp(jsonClients, concurrency)
	if err != nil {
		return nil, err
	}
	// The EC2 endpoint as AWS's own SDK calls it (SigV4-signed for its
	// region, the standard retryer), paging with its tokens.
	ec2Clients, err := workload.DirectClients(context.Background(), baseURL, regions)
	if err != nil {
		return nil, err
	}
	ec2, err := workload.DirectListOp(ec2Clients, regions, workload.ListFilters(), pageSize, concurrency)
	if err != nil {
		return nil, err
	}
	m.ops = []weighted{
		{"Get gRPC", 40, get},
		{"List gRPC", 25, listProto},
		{"List Connect JSON", 15, listJSON},
		{"EC2 DescribeClientVpnEndpoints", 20, ec2},
	}
	for _, w := range m.ops {
		m.total += w.weight
	}
	m.n = make([]atomic.Int64, len(m.ops))
	return m, nil
}

// listOp pages through the two-filter listing, following tokens, and
// records the snapshot versions it is answered from.
func (m *mix) listOp(clients []clientvpnv1connect.ClientVpnServiceClient, concurrency int) (load.Op, error) {
	var filters []*clientvpnv1.Filter
	for _, f := range workload.ListFilters() {
		filters = append(filters, &clientvpnv1.Filter{Name: f.Name, Values: f.Values})
	}
	tokens := make([]string, concurrency)
	return func(ctx context.Context, worker int) error {
		res, err := clients[worker%len(clients)].ListClientVpnEndpoints(ctx,
			&clientvpnv1.ListClientVpnEndpointsRequest{Filters: filters, MaxResults: pageSize, NextToken: tokens[worker]})
		if err != nil {
			tokens[worker] = ""
			return err
		}
		if len(res.GetClientVpnEndpoints()) == 0 && res.GetNextToken() != "" {
			tokens[worker] = ""
			return errors.New("empty page with a next token")
		}
		tokens[worker] = res.GetNextToken()
		if _, loaded := m.seen.LoadOrStore(res.GetSnapshot().GetVersion(), true); !loaded {
			m.nSeen.Add(1)
		}
		return nil
	}, nil
}

// op picks one of the mix's operations at random, by weight.
func (m *mix) op(ctx context.Context, worker int) error {
	k := rand.IntN(m.total)
	for i, w := range m.ops {
		if k < w.weight {
			m.n[i].Add(1)
			return w.op(ctx, worker)
		}
		k -= w.weight
	}
	return nil
}

// reset forgets the calls counted so far (the saturation probe's).
func (m *mix) reset() {
	for i := range m.n {
		m.n[i].Store(0)
	}
}

func (m *mix) versions() int64 { return m.nSeen.Load() }

func (m *mix) counts() string {
	var parts []string
	for i, w := range m.ops {
		parts = append(parts, fmt.Sprintf("%s %d", w.name, m.n[i].Load()))
	}
	return strings.Join(parts, ", ")
}

// watchStats counts what the watchers received.
type watchStats struct {
	messages, changes, errors, resumes atomic.Int64
}

// hold keeps a watch stream open until ctx ends, resuming from the last
// version seen when a stream ends; a stream ending with an error counts.
// Watcher w watches every endpoint (even w) or one tag's (odd w).
func (s *watchStats) hold(ctx context.Context, c clientvpnv1connect.ClientVpnServiceClient, w int) {
	req := &clientvpnv1.WatchClientVpnEndpointsRequest{}
	if w%2 == 1 {
		req.Filters = []*clientvpnv1.Filter{{Name: "tag:Environment", Values: []string{"production"}}}
	}
	for ctx.Err() == nil {
		stream, err := c.WatchClientVpnEndpoints(ctx, req)
		if err != nil {
			if ctx.Err() == nil {
				s.errors.Add(1)
				fmt.Fprintln(os.Stderr, "watch:", err)
			}
			continue
		}
		for stream.Receive() {
			msg := stream.Msg()
			s.messages.Add(1)
			if !msg.GetInitial() && !msg.GetHeartbeat() && !msg.GetInitialComplete() {
				s.changes.Add(1)
			}
			if msg.GetInitialComplete() || !msg.GetInitial() {
				v := msg.GetVersion()
				req.ResumeFromVersion = &v
			}
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			s.errors.Add(1)
			fmt.Fprintln(os.Stderr, "watch:", err)
		}
		_ = stream.Close()
		if ctx.Err() == nil {
			s.resumes.Add(1)
		}
	}
}

// rss returns VmRSS of pid in bytes (0 if it cannot be read).
func rss(pid int) int64 { m, _ := procstat.ReadMemory(pid); return m.RSS }
