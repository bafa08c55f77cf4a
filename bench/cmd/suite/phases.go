package main

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/child"
	"github.com/vpnfacade/vpnfacade/bench/load"
	"github.com/vpnfacade/vpnfacade/bench/procstat"
	"github.com/vpnfacade/vpnfacade/bench/workload"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// run runs every phase in order and returns the report, partial when a
// phase failed.
func (s *suite) run(ctx context.Context) (*report, error) {
	s.rep = newReport(s.cfg)
	s.progress("generating %d endpoints", s.cfg.count)
	data, err := generate(s.cfg.count)
	if err != nil {
		return nil, err
	}
	redisURL, err := s.startRedis(ctx)
	if err != nil {
		return s.rep, err
	}
	bareURL, barePID, err := s.startBare(ctx)
	if err != nil {
		return s.rep, err
	}
	upstream, err := s.startSim(data)
	if err != nil {
		return s.rep, err
	}
	port, err := child.FreePort()
	if err != nil {
		return s.rep, err
	}

	s.rep.pagesPerRefresh = pagesPerRefresh(data)
	// Cold start with count endpoints: refresh time and memory.
	f, size, err := s.coldStart(ctx, upstream, redisURL, "bench", port, s.cfg.count, s.rep.pagesPerRefresh, "vpnfacade-cold.log")
	if err != nil {
		return s.rep, err
	}
	if err := s.loadPhases(ctx, f, upstream, bareURL, barePID, targetsOf(data)); err != nil {
		return s.rep, err
	}
	f, err = s.warmStart(ctx, f, upstream, redisURL, "bench", port, &size, "vpnfacade-warm.log")
	if err != nil {
		return s.rep, err
	}
	_ = f.stop(15 * time.Second)
	s.rep.Sizes = append(s.rep.Sizes, size)

	if err := s.direct(ctx, data); err != nil {
		return s.rep, err
	}

	if s.cfg.largeCount > 0 {
		s.progress("generating %d endpoints", s.cfg.largeCount)
		large, err := generate(s.cfg.largeCount)
		if err != nil {
			return s.rep, err
		}
		if err := upstream.Replace(clones(large)); err != nil {
			return s.rep, err
		}
		perRefresh := pagesPerRefresh(large)
		large = nil // let the generator's copy go; the sim keeps its own
		f, size, err := s.coldStart(ctx, upstream, redisURL, "large", port, s.cfg.largeCount, perRefresh, "vpnfacade-large-cold.log")
		if err != nil {
			return s.rep, err
		}
		f, err = s.warmStart(ctx, f, upstream, redisURL, "large", port, &size, "vpnfacade-large-warm.log")
		if err != nil {
			return s.rep, err
		}
		_ = f.stop(15 * time.Second)
		s.rep.Sizes = append(s.rep.Sizes, size)
	}
	s.rep.finish()
	return s.rep, nil
}

// coldStart starts vpnfacade on an empty namespace and measures its first
// refresh and its memory once serving.
func (s *suite) coldStart(ctx context.Context, upstream *sim, redisURL, namespace string, port, count int, perRefresh int64, logName string) (*facade, sizeResult, error) {
	s.progress("cold start with %d endpoints", count)
	size := sizeResult{Count: count, PerRefresh: perRefresh}
	callsBefore, _ := upstream.describeCalls()
	f, err := s.startFacade(upstream, redisURL, namespace, port, logName)
	if err != nil {
		return nil, size, err
	}
	if _, err := f.awaitReady(ctx); err != nil {
		return nil, size, err
	}
	if m, err := procstat.ReadMemory(f.pid()); err == nil {
		size.BaseRSS = m.RSS
	}
	cpu0, _ := cpuTime(f.pid())
	pub, err := f.awaitPublished(ctx, 0, 5*time.Minute)
	if err != nil {
		return nil, size, err
	}
	cpu1, _ := cpuTime(f.pid())
	size.RefreshCPU = cpu1 - cpu0
	if pub.Endpoints != count {
		return nil, size, fmt.Errorf("the first snapshot holds %d endpoints, want %d", pub.Endpoints, count)
	}
	size.Refresh = pub.Duration
	size.RefreshCalls, _ = upstream.describeCalls()
	size.RefreshCalls -= callsBefore
	client := clientvpnv1connectClient(f.url)
	if _, err := workload.WaitServing(ctx, client, 30*time.Second, 5*time.Millisecond); err != nil {
		return nil, size, err
	}
	// RSS after a GC: the collection pprof's gc=1 runs, then time for Go's
	// background scavenger to return what it would return on its own.
	if size.Heap, err = f.liveHeap(ctx); err != nil {
		return nil, size, err
	}
	time.Sleep(5 * time.Second)
	m, err := procstat.ReadMemory(f.pid())
	if err != nil {
		return nil, size, err
	}
	size.RSS, size.HWM = m.RSS, m.HWM
	s.progress("  refresh %s (%s of CPU, %d upstream calls), RSS %s at start, %s serving, peak %s; live heap %s",
		size.Refresh.Round(time.Millisecond), size.RefreshCPU, size.RefreshCalls, mib(size.BaseRSS), mib(size.RSS), mib(size.HWM), mib(size.Heap))
	return f, size, nil
}

// warmStart stops f gracefully (so it gives up its lease), starts a new
// vpnfacade on the same, populated, namespace, and measures the time from
// exec to the first successful List and the upstream calls made by then.
func (s *suite) warmStart(ctx context.Context, f *facade, upstream *sim, redisURL, namespace string, port int, size *sizeResult, logName string) (*facade, error) {
	s.progress("warm start with %d endpoints in Redis", size.Count)
	if err := f.stop(15 * time.Second); err != nil {
		return nil, err
	}
	callsBefore, _ := upstream.describeCalls()
	nf, err := s.startFacade(upstream, redisURL, namespace, port, logName)
	if err != nil {
		return nil, err
	}
	client := clientvpnv1connectClient(nf.url)
	if _, err := workload.WaitServing(ctx, client, 60*time.Second, time.Millisecond); err != nil {
		return nil, err
	}
	size.WarmStart = time.Since(nf.started)
	calls, _ := upstream.describeCalls()
	size.WarmCallsBefore = calls - callsBefore
	if m, err := procstat.ReadMemory(nf.pid()); err == nil {
		size.WarmRSS = m.RSS
	}
	if i, _, err := nf.await(ctx, 0, listeningLine, time.Second); err == nil {
		size.WarmListening = nf.lineTime(i).Sub(nf.started)
	}
	// The new process also leads the refresher: its first refresh reads
	// upstream at once. Count what that costs, separately.
	if _, _, err := nf.await(ctx, 0, refreshedLine, 5*time.Minute); err == nil {
		calls, _ = upstream.describeCalls()
		size.WarmCallsRefresh = calls - callsBefore - size.WarmCallsBefore
		size.WarmRefreshed = true
	}
	s.progress("  first List %s after exec (listening after %s), %d upstream calls by then, %d more by its first refresh",
		size.WarmStart.Round(time.Millisecond), size.WarmListening.Round(time.Millisecond), size.WarmCallsBefore, size.WarmCallsRefresh)
	return nf, nil
}

// loadPhases measures the bare server and the facade, saturated and paced,
// and profiles the facade, counting the upstream calls made meanwhile.
func (s *suite) loadPhases(ctx context.Context, f *facade, upstream *sim, bareURL string, barePID int, targets []workload.Target) error {
	bt, err := bareTarget(ctx, bareURL)
	if err != nil {
		return fmt.Errorf("asking the bare server: %w", err)
	}
	urls := map[string]string{"bare": bareURL, "facade": f.url}
	pids := map[string]int{"bare": barePID, "facade": f.pid()}
	targetsOf := map[string][]workload.Target{"bare": {bt}, "facade": targets}
	ops := map[scenario]load.Op{}
	var order []scenario
	for _, enc := range s.cfg.encodings {
		for _, proc := range []string{"Get", "List"} {
			for _, protocol := range []string{workload.GRPC, workload.ConnectJSON} {
				for _, target := range []string{"bare", "facade"} {
					sc := scenario{Target: target, Proc: proc, Protocol: protocol, Encoding: enc}
					op, err := s.connectOp(sc, urls[target], targetsOf[target])
					if err != nil {
						return err
					}
					ops[sc] = op
					order = append(order, sc)
				}
			}
		}
	}

	win := window{logFrom: f.count(), perRefresh: s.rep.pagesPerRefresh}
	callsBefore, throttledBefore := upstream.describeCalls()
	start := time.Now()
	served := func(r load.Result) { win.reads += r.OK }
	for round := 1; round <= s.cfg.rounds; round++ {
		s.progress("saturation round %d of %d (concurrency %d on %d connections)", round, s.cfg.rounds, s.cfg.concurrency, s.cfg.conns)
		for _, sc := range order {
			res, err := s.measure(ctx, sc, 0, ops[sc], pids[sc.Target])
			if err != nil {
				return err
			}
			s.rep.Saturated[sc] = append(s.rep.Saturated[sc], res)
			if sc.Target == "facade" {
				served(res.Result)
			}
		}
	}

	// List at half of its saturated throughput: the latency target.
	for _, enc := range s.cfg.encodings {
		for _, protocol := range []string{workload.GRPC, workload.ConnectJSON} {
			sc := scenario{Target: "facade", Proc: "List", Protocol: protocol, Encoding: enc}
			rate := median(s.rep.Saturated[sc]).Throughput() / 2
			res, err := s.measure(ctx, sc, rate, ops[sc], f.pid())
			if err != nil {
				return err
			}
			s.rep.Paced[sc] = res
			served(res.Result)
		}
	}

	// One call at a time: the latency floor.
	for _, enc := range s.cfg.encodings {
		sc := scenario{Target: "facade", Proc: "List", Protocol: workload.GRPC, Encoding: enc}
		cfg := s.loadConfig(0)
		cfg.Concurrency = 1
		res, err := s.measureWith(ctx, sc, cfg, ops[sc], f.pid())
		if err != nil {
			return err
		}
		s.rep.Single[sc] = res
		served(res.Result)
	}

	if s.cfg.profile {
		for _, enc := range s.cfg.encodings {
			for _, proc := range []string{"Get", "List"} {
				sc := scenario{Target: "facade", Proc: proc, Protocol: workload.GRPC, Encoding: enc}
				res, err := s.profile(ctx, f, sc, ops[sc])
				if err != nil {
					return err
				}
				served(res)
			}
		}
	}

	// A refresh may be reading upstream as the load ends: let it finish, so
	// that every call counted belongs to a published refresh or to none.
	win.duration = time.Since(start)
	calls, _ := upstream.describeCalls()
	if published := int64(f.countPublished(win.logFrom)); calls-callsBefore > published*win.perRefresh {
		if _, err := f.awaitPublished(ctx, f.count(), 2*time.Minute); err != nil {
			return err
		}
	}
	calls, throttled := upstream.describeCalls()
	win.calls, win.throttled = calls-callsBefore, throttled-throttledBefore
	win.refreshes = f.countPublished(win.logFrom)
	s.rep.Upstream = win

	// Flag the runs a refresh overlapped.
	spans := f.refreshes(win.logFrom)
	overlaps := func(m *measured) {
		for _, sp := range spans {
			if sp[0].Before(m.End) && sp[1].After(m.Start) {
				m.DuringRefresh = true
			}
		}
	}
	for _, rounds := range s.rep.Saturated {
		for i := range rounds {
			overlaps(&rounds[i])
		}
	}
	for _, set := range []map[scenario]measured{s.rep.Paced, s.rep.Single} {
		for sc, m := range set {
			overlaps(&m)
			set[sc] = m
		}
	}
	s.progress("upstream calls during the facade runs (%s, %d reads served): %d (%d throttled), %d refreshes published",
		win.duration.Round(time.Second), win.reads, win.calls, win.throttled, win.refreshes)
	return nil
}

// profile runs sc once more while taking a CPU profile and an allocation
// profile of the facade over the measured time.
func (s *suite) profile(ctx context.Context, f *facade, sc scenario, op load.Op) (load.Result, error) {
	seconds := max(1, int(s.cfg.duration.Seconds()))
	name := "facade-" + sc.Proc + "-" + sc.Encoding
	errc := make(chan error, 2)
	go func() {
		select {
		case <-time.After(s.cfg.warmup):
		case <-ctx.Done():
		}
		base := f.pprofURL + "/debug/pprof/"
		q := "?seconds=" + strconv.Itoa(seconds)
		done := make(chan error, 1)
		go func() { done <- fetch(ctx, base+"allocs"+q, filepath.Join(s.cfg.outDir, name+".allocs.pprof")) }()
		errc <- fetch(ctx, base+"profile"+q, filepath.Join(s.cfg.outDir, name+".cpu.pprof"))
		errc <- <-done
	}()
	cfg := s.loadConfig(0)
	cfg.Duration = time.Duration(seconds)*time.Second + 500*time.Millisecond // cover the profile
	res, err := load.Run(ctx, cfg, op)
	if err != nil {
		return res, err
	}
	s.progress("%-36s %s (profiled)", sc, res)
	for range 2 {
		if err := <-errc; err != nil {
			return res, fmt.Errorf("profiling: %w", err)
		}
	}
	s.rep.Profiles = append(s.rep.Profiles, name+".cpu.pprof", name+".allocs.pprof")
	return res, nil
}

// direct runs the Get and List reads straight against an emulated EC2 with
// AWS's latency and throttle, each on a fresh emulator and fresh SDK
// clients, and counts the calls that reached it.
func (s *suite) direct(ctx context.Context, data []*clientvpnv1.ClientVpnEndpoint) error {
	s.progress("direct reads with aws-sdk-go-v2 against ec2sim (%s a page, throttle %s)", s.cfg.latency, "100 burst, 20/s")
	for _, proc := range []string{"Get", "List"} {
		m, err := s.startSim(data)
		if err != nil {
			return err
		}
		clients, err := workload.DirectClients(ctx, m.url, regions())
		if err != nil {
			return err
		}
		var op load.Op
		if proc == "Get" {
			op, err = workload.DirectGetOp(clients, targetsOf(data), s.cfg.concurrency)
		} else {
			op, err = workload.DirectListOp(clients, regions(), workload.ListFilters(), pageSize, s.cfg.concurrency)
		}
		if err != nil {
			return err
		}
		sc := scenario{Target: "direct", Proc: proc, Protocol: "aws-sdk-go-v2"}
		cfg := s.loadConfig(0)
		cfg.Warmup = max(cfg.Warmup, s.cfg.directWarmup)
		res, err := load.Run(ctx, cfg, op)
		if err != nil {
			return err
		}
		s.progress("%-36s %s", sc, res)
		calls, throttled := m.describeCalls()
		s.rep.Direct[sc] = directResult{Result: res, Calls: calls, Throttled: throttled}
		s.progress("  the emulator received %d calls, %d of them throttled (warm-up included)", calls, throttled)
	}
	return nil
}

// median returns the round with the median throughput (the lower middle
// for an even count).
func median(rounds []measured) measured {
	if len(rounds) == 0 {
		return measured{}
	}
	sorted := slices.Clone(rounds)
	slices.SortFunc(sorted, func(a, b measured) int {
		return cmp.Compare(a.Throughput(), b.Throughput())
	})
	return sorted[(len(sorted)-1)/2]
}

// pagesPerRefresh is how many DescribeClientVpnEndpoints calls one refresh
// of data makes: one per 1000 endpoints (the refresher's page size) per
// region, and at least one per region.
func pagesPerRefresh(data []*clientvpnv1.ClientVpnEndpoint) int64 {
	perRegion := map[string]int64{}
	for _, r := range regions() {
		perRegion[r] = 0
	}
	for _, e := range data {
		perRegion[e.GetRegion()]++
	}
	var pages int64
	for _, n := range perRegion {
		pages += max(1, (n+999)/1000)
	}
	return pages
}
