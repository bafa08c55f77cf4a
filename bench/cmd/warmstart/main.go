// Command warmstart measures, for one or more builds of vpnfacade in the same
// run, what a replica pays to start against a Redis that already holds a
// large snapshot, and what a serving process keeps resident afterwards:
//
//   - exec → first successful List (MaxResults 1, polled every millisecond),
//     and the CPU the replica used by then (/proc/PID/stat), which the
//     machine's load moves less than the time;
//   - RSS per endpoint after a garbage collection, as an operator would see
//     it: the process is asked for a heap profile with gc=1 (a
//     runtime.GC), then left alone for --settle so that Go's background
//     scavenger returns what it would return; RSS is read from
//     /proc/PID/status. The live heap (HeapAlloc after that GC) is reported
//     beside it. Measured twice: once the replica served a few filtered
//     proto Lists, and again after it listed every endpoint over Connect
//     JSON (which builds and keeps each endpoint's JSON).
//
// With --refresher, each round first starts a process on an empty namespace
// reading --count endpoints from an in-process EC2 emulator, and measures
// its RSS after its first refresh and a GC the same way (the SDK's XML
// decoding is the garbage there); the warm start then loads what it
// published. Without it, the snapshot is written to Redis directly. While
// the replica runs, this command holds the namespace's writer lease: the
// replica only follows, as a replica whose leader runs elsewhere (its
// upstream is a closed loopback port besides).
//
// Every build named by --bin is run each round, in turn, so that before and
// after meet the same machine load. --env adds a variant of each run with
// extra environment (for example GOMEMLIMIT=200MiB).
//
//	go build -o /tmp/vf-after ./cmd/vpnfacade
//	go run ./bench/cmd/warmstart --bin before=/tmp/vf-before --bin after=/tmp/vf-after
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/bench/child"
	"github.com/vpnfacade/vpnfacade/bench/procstat"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/lease"
	"github.com/vpnfacade/vpnfacade/store"
)

const account = "111111111111"

var regions = []string{"eu-west-1", "us-east-1"}

type build struct{ name, path string }

type config struct {
	builds    []build
	envs      []string // "" is the plain run
	count     int
	rounds    int
	settle    time.Duration
	refresher bool
	redis     string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "warmstart:", err)
		os.Exit(1)
	}
}

func run() error {
	var c config
	fs := flag.NewFlagSet("warmstart", flag.ContinueOnError)
	fs.Func("bin", "name=path of a vpnfacade build (repeat; run in turn each round)", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok {
			return errors.New("want name=path")
		}
		c.builds = append(c.builds, build{name, path})
		return nil
	})
	var envs string
	fs.StringVar(&envs, "env", "", "extra environment of a second variant of each run, space-separated (e.g. GOMEMLIMIT=200MiB)")
	fs.IntVar(&c.count, "count", 100_000, "endpoints in the snapshot")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every build")
	fs.DurationVar(&c.settle, "settle", 5*time.Second, "wait after the forced GC before RSS is read")
	fs.BoolVar(&c.refresher, "refresher", false, "each round, also cold-start a refresher reading the emulator and measure its RSS")
	fs.StringVar(&c.redis, "redis-server", "redis-server", "redis-server binary")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if len(c.builds) == 0 {
		return errors.New("give at least one --bin name=path")
	}
	c.envs = []string{""}
	if envs != "" {
		c.envs = append(c.envs, envs)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return measure(ctx, c)
}

type result struct {
	build, env                  string
	listening, firstList        time.Duration
	cpuFirst                    time.Duration // the replica's CPU by its first List
	rssFirst                    int64
	rssProto, heapProto         int64
	rssJSON, heapJSON           int64
	rssRefresher, heapRefresher int64
	rssStart                    int64
}

func measure(ctx context.Context, c config) error {
	tmp, err := os.MkdirTemp("", "warmstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	redisURL, stopRedis, err := startRedis(ctx, c.redis, tmp)
	if err != nil {
		return err
	}
	defer stopRedis()

	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: c.count, Seed: 42, Regions: regions, Accounts: []string{account}})
	if err != nil {
		return err
	}
	// Nobody listens at deadURL, the replicas' upstream: they never lead
	// (see warmStart), and would read nothing if they did.
	port, err := child.FreePort()
	if err != nil {
		return err
	}
	deadURL := "http://127.0.0.1:" + strconv.Itoa(port)
	var simURL string
	if c.refresher {
		sim, err := ec2sim.New(ec2sim.Options{Endpoints: data, DefaultRegion: regions[0]})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		simURL = "http://" + ln.Addr().String()
	} else {
		if err := publish(ctx, redisURL, "warm", data); err != nil {
			return err
		}
	}
	data = nil

	fmt.Printf("warmstart: %d endpoints, %d rounds, load average %s\n", c.count, c.rounds, procstat.LoadAverage())
	var results []result
	for round := 1; round <= c.rounds; round++ {
		for _, env := range c.envs {
			for _, b := range c.builds {
				ns := "warm"
				r := result{build: b.name, env: env}
				if c.refresher {
					ns = fmt.Sprintf("r%d-%s-%d", round, b.name, len(results))
					if err := coldStart(ctx, c, b, env, redisURL, ns, simURL, &r); err != nil {
						return fmt.Errorf("%s: cold start: %w", b.name, err)
					}
				}
				if err := warmStart(ctx, c, b, env, redisURL, ns, deadURL, &r); err != nil {
					return fmt.Errorf("%s: warm start: %w", b.name, err)
				}
				results = append(results, r)
				fmt.Printf("round %d %-8s %-18s listening %6.0f ms  first List %6.0f ms (CPU %4.0f ms)  RSS/endpoint at first List %s, after GC: proto %s (heap %s), after JSON of all %s (heap %s)%s  [load %s]\n",
					round, b.name, envLabel(env), ms(r.listening), ms(r.firstList), ms(r.cpuFirst),
					perEP(r.rssFirst-r.rssStart, c.count), perEP(r.rssProto, c.count), perEP(r.heapProto, c.count),
					perEP(r.rssJSON, c.count), perEP(r.heapJSON, c.count), refresherText(r, c.count), procstat.LoadAverage())
			}
		}
	}
	summary(results, c)
	return nil
}

func refresherText(r result, n int) string {
	if r.rssRefresher == 0 {
		return ""
	}
	return fmt.Sprintf("; refresher after GC %s (heap %s)", perEP(r.rssRefresher, n), perEP(r.heapRefresher, n))
}

func envLabel(env string) string {
	if env == "" {
		return "(default)"
	}
	return env
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func perEP(b int64, n int) string { return fmt.Sprintf("%.2f KiB", float64(b)/1024/float64(n)) }

// summary prints, per build and variant, the median and range of each
// figure, as Markdown.
func summary(rs []result, c config) {
	fmt.Printf("\n| build | environment | exec → first List (median, range) | replica CPU by then (median, range) | RSS/endpoint after GC, proto Lists | after JSON of all | live heap/endpoint (proto, JSON)%s |\n",
		map[bool]string{true: " | refresher RSS/endpoint after GC (heap)", false: ""}[c.refresher])
	fmt.Printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |%s\n", map[bool]string{true: " ---: |", false: ""}[c.refresher])
	for _, env := range c.envs {
		for _, b := range c.builds {
			var first, cpu []time.Duration
			var rp, rj, hp, hj, rr, hr []int64
			for _, r := range rs {
				if r.build == b.name && r.env == env {
					first, cpu = append(first, r.firstList), append(cpu, r.cpuFirst)
					rp, rj, hp, hj = append(rp, r.rssProto), append(rj, r.rssJSON), append(hp, r.heapProto), append(hj, r.heapJSON)
					rr, hr = append(rr, r.rssRefresher), append(hr, r.heapRefresher)
				}
			}
			slices.Sort(first)
			slices.Sort(cpu)
			line := fmt.Sprintf("| %s | %s | %.0f ms (%.0f–%.0f) | %.0f ms (%.0f–%.0f) | %s | %s | %s, %s |", b.name, envLabel(env),
				ms(first[len(first)/2]), ms(first[0]), ms(first[len(first)-1]),
				ms(cpu[len(cpu)/2]), ms(cpu[0]), ms(cpu[len(cpu)-1]),
				span(rp, c.count), span(rj, c.count), span(hp, c.count), span(hj, c.count))
			if c.refresher {
				line += fmt.Sprintf(" %s (%s) |", span(rr, c.count), span(hr, c.count))
			}
			fmt.Println(line)
		}
	}
}

func span(v []int64, n int) string {
	slices.Sort(v)
	lo, hi := float64(v[0])/1024/float64(n), float64(v[len(v)-1])/1024/float64(n)
	if fmt.Sprintf("%.2f", lo) == fmt.Sprintf("%.2f", hi) {
		return fmt.Sprintf("%.2f KiB", lo)
	}
	return fmt.Sprintf("%.2f–%.2f KiB", lo, hi)
}

// publish writes the endpoints to Redis as the refresher would.
func publish(ctx context.Context, redisURL, ns string, data []*clientvpnv1.ClientVpnEndpoint) error {
	s, err := store.NewRedis(ctx, store.RedisOptions{URL: redisURL, Namespace: ns})
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = s.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: data, Epoch: 1})
	return err
}

// coldStart runs a refresher on an empty namespace until its first
// snapshot is published, and measures its RSS after a GC.
func coldStart(ctx context.Context, c config, b build, env, redisURL, ns, simURL string, r *result) error {
	p, err := startFacade(ctx, b, env, redisURL, ns, simURL)
	if err != nil {
		return err
	}
	defer p.stop()
	if err := p.awaitLine(ctx, `"msg":"snapshot published"`, 10*time.Minute); err != nil {
		return err
	}
	if err := waitList(ctx, p.client(), 60*time.Second); err != nil {
		return err
	}
	r.rssRefresher, r.heapRefresher, err = p.afterGC(ctx, c.settle)
	r.rssRefresher -= p.rssStart
	return err
}

// holdLease takes the namespace's writer lease and holds it until the
// returned function is called: a replica started meanwhile only follows.
func holdLease(ctx context.Context, redisURL, ns string) (func(), error) {
	st, err := store.NewRedis(ctx, store.RedisOptions{URL: redisURL, Namespace: ns})
	if err != nil {
		return nil, err
	}
	l, err := lease.New(st, lease.Options{Owner: "warmstart"})
	if err != nil {
		st.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	won := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Run(lctx, func(leadCtx context.Context, _ uint64) error {
			close(won)
			<-leadCtx.Done()
			return nil
		})
	}()
	stop := func() { cancel(); <-done; st.Close() }
	select {
	case <-won:
		return stop, nil
	case <-ctx.Done():
		stop()
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		// A process killed while leading holds it until its TTL ends.
		stop()
		return nil, errors.New("the lease was not won within a minute")
	}
}

// warmStart starts a replica on a namespace holding a snapshot and measures
// its first List and its memory. The lease is held meanwhile, so the replica
// does not refresh: it serves what Redis holds, as a replica whose leader
// runs elsewhere.
func warmStart(ctx context.Context, c config, b build, env, redisURL, ns, simURL string, r *result) error {
	release, err := holdLease(ctx, redisURL, ns)
	if err != nil {
		return err
	}
	defer release()
	p, err := startFacade(ctx, b, env, redisURL, ns, simURL)
	if err != nil {
		return err
	}
	defer p.stop()
	client := p.client()
	if err := waitList(ctx, client, 60*time.Second); err != nil {
		return err
	}
	r.firstList = time.Since(p.started)
	if t, err := procstat.CPU(p.cmd.Process.Pid); err == nil {
		r.cpuFirst = t.Total()
	}
	if m, err := procstat.ReadMemory(p.cmd.Process.Pid); err == nil {
		r.rssFirst = m.RSS
	}
	r.listening = p.listeningAfter()
	r.rssStart = p.rssStart
	// A few filtered proto Lists, as a replica serves them.
	for _, f := range [][]*clientvpnv1.Filter{
		{{Name: "tag:Environment", Values: []string{"production"}}, {Name: "transport-protocol", Values: []string{"udp"}}},
		{{Name: "vpc-id", Values: []string{"vpc-*"}}},
		{{Name: "status", Values: []string{"available"}}},
	} {
		if _, err := client.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 100, Filters: f}); err != nil {
			return err
		}
	}
	if r.rssProto, r.heapProto, err = p.afterGC(ctx, c.settle); err != nil {
		return err
	}
	r.rssProto -= p.rssStart
	// Every endpoint over Connect JSON: each endpoint's JSON is built and
	// kept for the snapshot's lifetime.
	jc := clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, p.url, connect.WithProtoJSON())
	token := ""
	for {
		res, err := jc.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000, NextToken: token})
		if err != nil {
			return err
		}
		if token = res.GetNextToken(); token == "" {
			break
		}
	}
	if r.rssJSON, r.heapJSON, err = p.afterGC(ctx, c.settle); err != nil {
		return err
	}
	r.rssJSON -= p.rssStart
	return nil
}

func waitList(ctx context.Context, client clientvpnv1connect.ClientVpnServiceClient, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := client.ListClientVpnEndpoints(cctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no successful List within %s: %w", timeout, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// proc is one running vpnfacade.
type proc struct {
	cmd      *exec.Cmd
	started  time.Time
	url      string
	pprof    string
	rssStart int64

	mu       sync.Mutex
	lines    []string
	times    []time.Time
	newLines chan struct{}
}

var (
	listeningLine = regexp.MustCompile(`"msg":"vpnfacade listening","addr":"(http://[^"]+)"`)
	pprofLine     = regexp.MustCompile(`"msg":"pprof listening","addr":"(http://[^"]+)"`)
	heapAllocLine = regexp.MustCompile(`(?m)^# HeapAlloc = (\d+)`)
)

func startFacade(ctx context.Context, b build, env, redisURL, ns, simURL string) (*proc, error) {
	port, err := child.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.path,
		"--listen", "127.0.0.1:"+strconv.Itoa(port),
		"--regions", strings.Join(regions, ","),
		"--account-id", account,
		"--refresh-interval", "1h",
		"--log-format", "json",
		"--redis-url", redisURL,
		"--namespace", ns,
		"--pprof-listen", "127.0.0.1:0",
		"--list-rate-per-address", "0",
		"--max-connections-per-address", "0",
	)
	cmd.Env = append(os.Environ(), child.EmulatorEnv(simURL, regions[0])...)
	if env != "" {
		cmd.Env = append(cmd.Env, strings.Fields(env)...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	p := &proc{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), newLines: make(chan struct{}, 1)}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go p.read(stderr)
	if m, err := procstat.ReadMemory(cmd.Process.Pid); err == nil {
		p.rssStart = m.RSS
	}
	if err := p.awaitLine(ctx, pprofLine.String(), 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	p.mu.Lock()
	for _, l := range p.lines {
		if m := pprofLine.FindStringSubmatch(l); m != nil {
			p.pprof = m[1]
		}
	}
	p.mu.Unlock()
	return p, nil
}

func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		p.times = append(p.times, time.Now())
		p.mu.Unlock()
		select {
		case p.newLines <- struct{}{}:
		default:
		}
	}
}

func (p *proc) awaitLine(ctx context.Context, pattern string, timeout time.Duration) error {
	re := regexp.MustCompile(pattern)
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		found := slices.ContainsFunc(p.lines, re.MatchString)
		p.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("no log line %q within %s", pattern, timeout)
		case <-p.newLines:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *proc) listeningAfter() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.lines {
		if listeningLine.MatchString(l) {
			return p.times[i].Sub(p.started)
		}
	}
	return 0
}

func (p *proc) client() clientvpnv1connect.ClientVpnServiceClient {
	return clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, p.url)
}

// afterGC forces a collection through pprof (runtime.GC), waits settle,
// and returns the RSS then and the heap live after the collection.
func (p *proc) afterGC(ctx context.Context, settle time.Duration) (rss, heap int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.pprof+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return 0, 0, err
	}
	m := heapAllocLine.FindSubmatch(body)
	if m == nil {
		return 0, 0, errors.New("no HeapAlloc in the heap profile")
	}
	heap, _ = strconv.ParseInt(string(m[1]), 10, 64)
	time.Sleep(settle)
	mem, err := procstat.ReadMemory(p.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	return mem.RSS, heap, nil
}

func (p *proc) stop() { _ = child.Stop(p.cmd, 15*time.Second) }

func startRedis(ctx context.Context, bin, dir string) (string, func(), error) {
	port, err := child.FreePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "redis://" + addr, stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, errors.New("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
