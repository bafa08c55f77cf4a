// Command watchers measures WatchClientVpnEndpoints at scale (issue 13),
// on loopback: how long a published change takes to reach a thousand
// watchers spread over two replicas sharing Redis, what the watchers cost
// the servers in CPU and memory, and what they do to read throughput.
//
// It starts the EC2 emulator (in this process, on a loopback port), a
// redis-server and two replicas of the vpnfacade binary (one holds the
// refresher lease, the other follows through Redis). A round changes
// --changes endpoints in the emulator and has the change read and
// published: by default with the admin service's RefreshNow, the replicas
// refreshing on the service's default interval, as an operator or a
// deployment hook would; with --refresh-now=false by waiting for the next
// scheduled refresh, every --refresh-interval, so that the refresher reads
// the emulator all the time, deliveries included. Then:
//
//  1. without watchers: each replica's RSS and idle CPU; --rounds rounds,
//     each waited for until both replicas serve it (server CPU per
//     round); and --phase of
//     closed-loop Gets and Lists (100 per page) with a round of changes
//     every 2 s (throughput);
//  2. --watchers watchers, half on each replica, --per-conn streams per
//     HTTP/2 connection (as a proxy or a few client processes hold them);
//     the same rounds, each waited for until every watcher has the change:
//     delivery delay from the version's publish time, which the publishing
//     replica records with the change in Redis (stream field "pub"), to the
//     watcher's receipt, p50/p99/max; server CPU per round; RSS and idle
//     CPU; and the same throughput phase.
//
// The watchers decode only each message's version and flags, and by default
// do not accept gzip: a thousand clients in one process on the servers'
// two cores would otherwise spend the machine decoding and decompressing.
// The servers send the whole messages. Clients and servers share the
// machine all the same.
//
// Usage: go run ./bench/watchers --bin ./vpnfacade
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade/bench/child"
	"github.com/vpnfacade/vpnfacade/bench/procstat"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	adminv1 "github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1"
	"github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1/adminv1connect"
)

// options are the command's flags.
type options struct {
	bin, redisServer string
	endpoints        int
	watchers         int
	perConn          int
	rounds           int
	changes          int
	phase            time.Duration
	refreshInterval  time.Duration
	refreshNow       bool
	readers          int
	logPath          string
	gzip             bool
	profile          string
	maxReadFrame     int
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "./vpnfacade", "the vpnfacade binary")
	flag.StringVar(&o.redisServer, "redis-server", "redis-server", "the redis-server binary")
	flag.IntVar(&o.endpoints, "endpoints", 2000, "endpoints the emulator holds")
	flag.IntVar(&o.watchers, "watchers", 1000, "watch streams, half on each replica")
	flag.IntVar(&o.perConn, "per-conn", 50, "watch streams per HTTP/2 connection")
	flag.IntVar(&o.rounds, "rounds", 30, "rounds of changes measured")
	flag.IntVar(&o.changes, "changes", 100, "endpoints the emulator changes per round")
	flag.DurationVar(&o.phase, "phase", 10*time.Second, "length of each read throughput phase")
	flag.BoolVar(&o.refreshNow, "refresh-now", true, "each round asks for a refresh with the admin service's RefreshNow; false: it waits for the next scheduled one")
	flag.DurationVar(&o.refreshInterval, "refresh-interval", 0, "the replicas' refresh interval; 0: the service's default (60s) with --refresh-now, else 1s (a round waits for the next refresh, and the refresher's reads of the emulator share the machine with the deliveries)")
	flag.IntVar(&o.readers, "readers", 4, "closed-loop read workers (half Get, half List)")
	flag.StringVar(&o.logPath, "log", os.DevNull, "file for the servers' logs")
	flag.StringVar(&o.profile, "profile", "", "directory for CPU profiles of both replicas and of this process, taken during the rounds with watchers (replica0.pprof, replica1.pprof, bench.pprof), and an execution trace of replica 1 over two rounds (replica1.trace); empty: none")
	flag.IntVar(&o.maxReadFrame, "max-read-frame", 0, "the watchers' HTTP/2 SETTINGS_MAX_FRAME_SIZE (http.HTTP2Config.MaxReadFrameSize), 16384 to 16777215: the largest DATA frame the servers may send them; 0: Go's default, 16 KiB, what grpc-go and connect-go clients use unless told otherwise")
	flag.BoolVar(&o.gzip, "gzip", false, "watchers accept gzip (the servers compress each change once; every watcher in this process decompresses it)")
	flag.Parse()
	if o.refreshInterval == 0 {
		o.refreshInterval = time.Second
		if o.refreshNow {
			o.refreshInterval = time.Minute
		}
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "watchers:", err)
		os.Exit(1)
	}
}

var (
	regions   = []string{"us-east-1", "eu-west-1"}
	account   = "123456789012"
	listening = regexp.MustCompile(`"msg":"vpnfacade listening","addr":"(https?://[^"]+)"`)
)

// replica is one running vpnfacade.
type replica struct {
	*process
	url   string
	pprof string
}

// memory collects the replica's garbage, then returns its RSS and the Go
// heap in use (go_memstats_heap_inuse_bytes from its /metrics).
func (r *replica) memory() (rss, heap float64) {
	if res, err := http.Get(r.pprof + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	time.Sleep(time.Second)
	rss = float64(rssOf(r.pid()))
	res, err := http.Get(r.url + "/metrics")
	if err != nil {
		return rss, 0
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			heap, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return rss, heap
}

func run(o options) error {
	ctx := context.Background()
	logf, err := os.Create(o.logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Printf("load average at start: %s\n", procstat.LoadAverage())

	// The emulator, in this process.
	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: o.endpoints, Seed: 13, Regions: regions, Accounts: []string{account}})
	if err != nil {
		return err
	}
	sim, err := ec2sim.New(ec2sim.Options{Endpoints: data, DefaultRegion: regions[0], DefaultAccount: account})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simServer := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simServer.Serve(ln) }()
	defer simServer.Close()
	simURL := "http://" + ln.Addr().String()

	port, err := child.FreePort()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-watchers-redis")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rds, _, err := startProcess("redis", o.redisServer, []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir}, nil, nil, logf)
	if err != nil {
		return err
	}
	defer rds.stop()
	redisAddr := "127.0.0.1:" + strconv.Itoa(port)
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = waitTCP(waitCtx, redisAddr)
	cancel()
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()

	var replicas []*replica
	for i := range 2 {
		args := []string{
			"--listen", "127.0.0.1:0", "--regions", strings.Join(regions, ","), "--account-id", account,
			"--refresh-interval", o.refreshInterval.String(), "--log-format", "json", "--redis-url", "redis://" + redisAddr,
			"--max-watchers-per-address", strconv.Itoa(o.watchers), "--max-watchers", strconv.Itoa(o.watchers),
			// Every client of the benchmark is 127.0.0.1.
			"--list-rate-per-address", "0",
			"--refresh-now-min-interval", "1ms",
		}
		pprofPort, err := child.FreePort()
		if err != nil {
			return err
		}
		// pprof, to collect garbage before memory is measured.
		args = append(args, "--pprof-listen", "127.0.0.1:"+strconv.Itoa(pprofPort))
		p, m, err := startProcess(fmt.Sprintf("replica%d", i), o.bin, args, child.EmulatorEnv(simURL, regions[0]), listening, logf)
		if err != nil {
			return err
		}
		defer p.stop()
		replicas = append(replicas, &replica{process: p, url: m[1], pprof: "http://127.0.0.1:" + strconv.Itoa(pprofPort)})
	}
	readers := make([]clientvpnv1connect.ClientVpnServiceClient, len(replicas))
	pollers := make([]clientvpnv1connect.ClientVpnServiceClient, len(replicas))
	for i, r := range replicas {
		readers[i] = clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), r.url, connect.WithGRPC())
		pollers[i] = clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), r.url, connect.WithGRPC(), connect.WithAcceptCompression("gzip", nil, nil))
	}
	ids, err := waitServing(ctx, readers)
	if err != nil {
		return err
	}
	how := "each round waits for the next scheduled refresh"
	if o.refreshNow {
		how = "each round forces a refresh with RefreshNow"
	}
	fmt.Printf("emulator: %d endpoints in %d regions; 2 replicas (refresh every %v; %s) sharing one redis-server\n\n", o.endpoints, len(regions), o.refreshInterval, how)

	b := &bench{o: o, sim: sim, readers: readers, pollers: pollers, replicas: replicas, ids: ids, rdb: rdb,
		admin: adminv1connect.NewAdminServiceClient(h2cClient(), replicas[0].url, connect.WithGRPC())}
	without := b.measure(ctx, nil)

	perReplica := o.watchers / len(replicas)
	var watchers []*watcher
	start := time.Now()
	for i, r := range replicas {
		ws, err := openWatchers(ctx, r.url, i, perReplica, o.perConn, o.gzip, o.maxReadFrame)
		if err != nil {
			return err
		}
		watchers = append(watchers, ws...)
	}
	opened := time.Since(start)
	with := b.measure(ctx, watchers)

	b.report(without, with, watchers, opened)
	fmt.Printf("\nload average at the end: %s\n", procstat.LoadAverage())
	return nil
}

// bench holds what the phases share.
type bench struct {
	o        options
	sim      *ec2sim.Server
	readers  []clientvpnv1connect.ClientVpnServiceClient
	pollers  []clientvpnv1connect.ClientVpnServiceClient // for versions: no gzip
	replicas []*replica
	ids      []*clientvpnv1.GetClientVpnEndpointRequest
	rdb      *redis.Client
	admin    adminv1connect.AdminServiceClient
}

// change changes the emulator's endpoints and, with --refresh-now, has
// the leader read and publish them; it returns once published. Without,
// the next scheduled refresh reads them.
func (b *bench) change(ctx context.Context) error {
	b.sim.Mutate(b.o.changes)
	if !b.o.refreshNow {
		return nil
	}
	if _, err := b.admin.RefreshNow(ctx, &adminv1.RefreshNowRequest{}); err != nil {
		return fmt.Errorf("RefreshNow: %w", err)
	}
	return nil
}

// phase is what one pass (without or with watchers) measured.
type phase struct {
	rss, heap, idleCPU   []float64 // per replica: bytes, bytes, CPU seconds per second
	roundCPU             []time.Duration
	rounds               int
	versions             []uint64 // published in the rounds
	gets, lists, failed  int64
	throughputCPU        []time.Duration
	throughputWall       time.Duration
	delays               [][]time.Duration // per replica, per delivery
	lastDelivery         []time.Duration   // per version in publish order, its slowest delivery
	afterWarmUp          []time.Duration   // every delivery of the versions after the first warmUpVersions, sorted
	errors               map[string]int    // failed reads by code
	missing, watcherSeen int
}

// measure runs one pass; watchers are nil for the pass without.
func (b *bench) measure(ctx context.Context, watchers []*watcher) phase {
	var p phase
	time.Sleep(3 * time.Second) // let start-up or connection work settle
	for _, r := range b.replicas {
		rss, heap := r.memory()
		p.rss, p.heap = append(p.rss, rss), append(p.heap, heap)
	}
	c0 := b.cpu()
	const idle = 5 * time.Second
	time.Sleep(idle)
	for i, c := range b.cpu() {
		p.idleCPU = append(p.idleCPU, (c-c0[i]).Seconds()/idle.Seconds())
	}

	// Rounds of changes.
	var stopProfiles func()
	if watchers != nil && b.o.profile != "" {
		stopProfiles = b.startProfiles()
	}
	c0 = b.cpu()
	for range b.o.rounds {
		v, err := b.round(ctx, watchers)
		if err != nil {
			fmt.Printf("round: %v\n", err)
			continue
		}
		p.rounds++
		p.versions = append(p.versions, v...)
	}
	for i, c := range b.cpu() {
		p.roundCPU = append(p.roundCPU, c-c0[i])
	}
	if stopProfiles != nil {
		stopProfiles()
	}
	if watchers != nil {
		p.delays, p.lastDelivery, p.afterWarmUp, p.missing = b.delays(ctx, watchers, p.versions)
	}

	// Read throughput, with a round of changes every 2 s.
	c0 = b.cpu()
	phaseCtx, cancel := context.WithTimeout(ctx, b.o.phase)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-phaseCtx.Done():
				return
			case <-t.C:
				// Not phaseCtx: a refresh asked for completes.
				if err := b.change(ctx); err != nil {
					fmt.Printf("throughput phase: %v\n", err)
				}
			}
		}
	})
	var gets, lists, failed atomic.Int64
	var errMu sync.Mutex
	p.errors = map[string]int{}
	start := time.Now()
	for w := range b.o.readers {
		wg.Go(func() {
			c := b.readers[w%len(b.readers)]
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for phaseCtx.Err() == nil {
				var err error
				if w%2 == 0 {
					_, err = c.GetClientVpnEndpoint(phaseCtx, b.ids[rng.IntN(len(b.ids))])
					if err == nil || connect.CodeOf(err) == connect.CodeNotFound {
						// The emulator deletes endpoints: NotFound is an answer.
						err = nil
						gets.Add(1)
					}
				} else {
					_, err = c.ListClientVpnEndpoints(phaseCtx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 100})
					if err == nil {
						lists.Add(1)
					}
				}
				if err != nil && phaseCtx.Err() == nil {
					failed.Add(1)
					errMu.Lock()
					p.errors[connect.CodeOf(err).String()]++
					errMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	p.throughputWall = time.Since(start)
	cancel()
	for i, c := range b.cpu() {
		p.throughputCPU = append(p.throughputCPU, c-c0[i])
	}
	p.gets, p.lists, p.failed = gets.Load(), lists.Load(), failed.Load()
	return p
}

// cpu returns each replica's CPU time used so far.
func (b *bench) cpu() []time.Duration {
	out := make([]time.Duration, len(b.replicas))
	for i, r := range b.replicas {
		out[i] = cpuTime(r.pid())
	}
	return out
}

// round changes the emulator's endpoints and waits until a newer version
// is published and then, when there are watchers, until every watcher has
// received it, and until both replicas serve it. It returns the versions
// published meanwhile.
//
// The new version is read from Redis's current pointer, not by polling the
// replicas: polls every 10 ms during the deliveries would be load on the
// servers under test that no deployment puts there in step with each
// publish (before, such polls were gzip-compressed Lists and took a sixth
// of the follower's CPU during the rounds). The replicas are asked only
// once the watchers have the version (the same with or without watchers).
func (b *bench) round(ctx context.Context, watchers []*watcher) ([]uint64, error) {
	before, err := b.published(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.change(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	var now uint64
	for {
		if now, err = b.published(ctx); err == nil && now > before {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no new version within 30s (%v)", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, w := range watchers {
		for w.latest() < now {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("a watcher on replica %d is at version %d, not %d, after 30s", w.replica, w.latest(), now)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for {
		if v, err := b.version(ctx); err == nil && v >= now {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the replicas do not serve version %d after 30s", now)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The log's versions after before, up to now (a refresh that read the
	// emulator in the middle of the change publishes two).
	entries, err := b.rdb.XRange(ctx, changesKey, strconv.FormatUint(before+1, 10)+"-0", strconv.FormatUint(now, 10)+"-0").Result()
	if err != nil {
		return nil, err
	}
	var versions []uint64
	for _, e := range entries {
		v, _, _ := strings.Cut(e.ID, "-")
		n, _ := strconv.ParseUint(v, 10, 64)
		versions = append(versions, n)
	}
	return versions, nil
}

// The change log and the current pointer of the default namespace.
const (
	changesKey = "vpnfacade:{default}:changes"
	currentKey = "vpnfacade:{default}:current"
)

// published returns the version Redis's current pointer names.
func (b *bench) published(ctx context.Context) (uint64, error) {
	s, err := b.rdb.Get(ctx, currentKey).Result()
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// version returns the lower of the replicas' current versions.
func (b *bench) version(ctx context.Context) (uint64, error) {
	var lowest uint64
	for i, c := range b.pollers {
		res, err := c.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1})
		if err != nil {
			return 0, err
		}
		if v := res.GetSnapshot().GetVersion(); i == 0 || v < lowest {
			lowest = v
		}
	}
	return lowest, nil
}

// delays returns, for every watcher and every version of versions, the
// time from the version's publish to the watcher's receipt, and for each
// version in publish order the slowest of them, and the deliveries of the
// versions after the first warmUpVersions; missing counts versions a
// watcher did not receive (none when no change is lost).
func (b *bench) delays(ctx context.Context, watchers []*watcher, versions []uint64) (delays [][]time.Duration, last, afterWarmUp []time.Duration, missing int) {
	published := map[uint64]time.Time{}
	for _, v := range versions {
		id := strconv.FormatUint(v, 10) + "-0"
		entries, err := b.rdb.XRange(ctx, changesKey, id, id).Result()
		if err != nil || len(entries) != 1 {
			continue
		}
		us, err := strconv.ParseInt(fmt.Sprint(entries[0].Values["pub"]), 10, 64)
		if err == nil {
			published[v] = time.UnixMicro(us)
		}
	}
	out := make([][]time.Duration, len(b.replicas))
	slowest := map[uint64]time.Duration{}
	warm := map[uint64]bool{}
	for _, v := range slices.Sorted(maps.Keys(published))[:min(warmUpVersions, len(published))] {
		warm[v] = true
	}
	for _, w := range watchers {
		w.mu.Lock()
		got := map[uint64]time.Time{}
		for _, d := range w.deliveries {
			got[d.version] = d.at
		}
		w.mu.Unlock()
		for v, pub := range published {
			at, ok := got[v]
			if !ok {
				missing++ // every watcher watches every endpoint: none should miss a version
				continue
			}
			out[w.replica] = append(out[w.replica], at.Sub(pub))
			slowest[v] = max(slowest[v], at.Sub(pub))
			if !warm[v] {
				afterWarmUp = append(afterWarmUp, at.Sub(pub))
			}
		}
	}
	for _, d := range out {
		slices.Sort(d)
	}
	for _, v := range slices.Sorted(maps.Keys(slowest)) {
		last = append(last, slowest[v])
	}
	slices.Sort(afterWarmUp)
	return out, last, afterWarmUp, missing
}

// warmUpVersions is how many versions after the watchers connect are
// reported apart: the first changes to a thousand new streams are slower
// (every stream's buffers and pools are still to be grown).
const warmUpVersions = 2

func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report prints the figures as Markdown.
func (b *bench) report(without, with phase, watchers []*watcher, opened time.Duration) {
	n := len(watchers)
	perReplica := n / len(b.replicas)
	frame := "16384 (Go's default)"
	if b.o.maxReadFrame != 0 {
		frame = strconv.Itoa(b.o.maxReadFrame)
	}
	fmt.Printf("%d watchers (%d per replica, %d streams per HTTP/2 connection, gzip accepted: %v, max read frame size %s) opened with their initial state of %d endpoints in %.1f s\n\n",
		n, perReplica, b.o.perConn, b.o.gzip, frame, b.o.endpoints, opened.Seconds())

	var all []time.Duration
	for _, d := range with.delays {
		all = append(all, d...)
	}
	slices.Sort(all)
	fmt.Printf("| delivery delay from publish (%d rounds of %d changes, %d versions, %d deliveries) | p50 | p99 | max |\n|---|---:|---:|---:|\n",
		with.rounds, b.o.changes, len(with.versions), len(all))
	fmt.Printf("| all watchers | %.1f ms | %.1f ms | %.1f ms |\n", ms(quantile(all, .5)), ms(quantile(all, .99)), ms(quantile(all, 1)))
	for i, d := range with.delays {
		fmt.Printf("| watchers of replica %d | %.1f ms | %.1f ms | %.1f ms |\n", i, ms(quantile(d, .5)), ms(quantile(d, .99)), ms(quantile(d, 1)))
	}
	d := with.afterWarmUp
	fmt.Printf("| all watchers, versions after the first %d | %.1f ms | %.1f ms | %.1f ms |\n", warmUpVersions, ms(quantile(d, .5)), ms(quantile(d, .99)), ms(quantile(d, 1)))
	fmt.Printf("\nthe slowest delivery of each version, in publish order (ms):")
	for _, d := range with.lastDelivery {
		fmt.Printf(" %.0f", ms(d))
	}
	fmt.Println()
	resets := 0
	for _, w := range watchers {
		resets += w.resets
	}
	fmt.Printf("\nchanges not received: %d; resets: %d\n\n", with.missing, resets)

	fmt.Println("| per replica (after a GC) | RSS without | RSS with | RSS per watcher | heap without | heap with | heap per watcher | idle CPU without | idle CPU with | CPU per round without | CPU per round with |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i := range b.replicas {
		role := "replica " + strconv.Itoa(i)
		fmt.Printf("| %s | %.1f MiB | %.1f MiB | %.1f KiB | %.1f MiB | %.1f MiB | %.1f KiB | %.1f%% | %.1f%% | %.0f ms | %.0f ms |\n", role,
			without.rss[i]/(1<<20), with.rss[i]/(1<<20), (with.rss[i]-without.rss[i])/float64(perReplica)/1024,
			without.heap[i]/(1<<20), with.heap[i]/(1<<20), (with.heap[i]-without.heap[i])/float64(perReplica)/1024,
			100*without.idleCPU[i], 100*with.idleCPU[i],
			ms(without.roundCPU[i])/float64(max(without.rounds, 1)), ms(with.roundCPU[i])/float64(max(with.rounds, 1)))
	}
	// A replica that also refreshes spends most of a round reading the
	// emulator; the follower's figure is the watchers' own.
	perRound := float64(len(with.versions)) / float64(max(with.rounds, 1))
	for i := range b.replicas {
		cpuWithout := ms(without.roundCPU[i]) / float64(max(without.rounds, 1))
		cpuWith := ms(with.roundCPU[i]) / float64(max(with.rounds, 1))
		fmt.Printf("\nreplica %d, CPU per round of %d changes: %.0f ms without watchers, %.0f ms with %d: %.1f µs more per watcher per version",
			i, b.o.changes, cpuWithout, cpuWith, perReplica, 1000*(cpuWith-cpuWithout)/max(perRound, 1)/float64(perReplica))
	}
	fmt.Println()
	fmt.Printf("\n| reads (%d closed-loop workers, %s, a round of %d changes every 2 s) | Gets/s | Lists (100)/s | failed | server CPU |\n|---|---:|---:|---:|---:|\n",
		b.o.readers, b.o.phase, b.o.changes)
	for _, r := range []struct {
		name string
		p    phase
	}{{"without watchers", without}, {fmt.Sprintf("with %d watchers", n), with}} {
		var cpu time.Duration
		for _, c := range r.p.throughputCPU {
			cpu += c
		}
		s := r.p.throughputWall.Seconds()
		fmt.Printf("| %s | %.0f | %.0f | %d %v | %.1f s |\n", r.name, float64(r.p.gets)/s, float64(r.p.lists)/s, r.p.failed, r.p.errors, cpu.Seconds())
	}
	ratio := func(a, b int64, wa, wb time.Duration) float64 {
		if b == 0 || wa == 0 {
			return 0
		}
		return (float64(a) / wa.Seconds()) / (float64(b) / wb.Seconds())
	}
	fmt.Printf("| ratio with / without | %.2f× | %.2f× | | |\n",
		ratio(with.gets, without.gets, with.throughputWall, without.throughputWall),
		ratio(with.lists, without.lists, with.throughputWall, without.throughputWall))
}

// waitServing waits until every replica lists endpoints, and
// returns requests for the first thousand.
func waitServing(ctx context.Context, clients []clientvpnv1connect.ClientVpnServiceClient) ([]*clientvpnv1.GetClientVpnEndpointRequest, error) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		var ids []*clientvpnv1.GetClientVpnEndpointRequest
		var err error
		ok := true
		for _, c := range clients {
			var res *clientvpnv1.ListClientVpnEndpointsResponse
			res, err = c.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
			if err != nil || len(res.GetClientVpnEndpoints()) == 0 {
				ok = false
				break
			}
			ids = ids[:0]
			for _, e := range res.GetClientVpnEndpoints() {
				ids = append(ids, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: e.GetClientVpnEndpointId(), Region: e.GetRegion(), AccountId: e.GetAccountId()})
			}
		}
		if ok {
			return ids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the replicas did not serve within 90s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
