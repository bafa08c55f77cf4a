package main_test

// Failure drills of issue 8 with real processes on loopback: several
// vpnfacade replicas share one Redis (or Redis Cluster), exactly one of them
// refreshes, another takes over when it dies, a paused one cannot publish
// over its successor, and reads never fail while Redis or AWS misbehave.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Short settings so that several refreshes, terms and takeovers fit in a
// few seconds.
const (
	replicaInterval = time.Second
	replicaTTL      = 2 * time.Second
	// replicaSlack is added to every liveness bound: process scheduling on a
	// loaded two-core machine, the refresh itself, log delivery.
	replicaSlack = 3 * time.Second
)

func replicaArgs() []string {
	return []string{"--refresh-interval", replicaInterval.String(), "--lease-ttl", replicaTTL.String()}
}

// pagesPerRefresh is how many DescribeClientVpnEndpoints pages one refresh
// reads from the sim when it holds fewer than 1000 endpoints per region.
var pagesPerRefresh = int64(len(e2eRegions))

// startReplicas starts n processes on one Redis URL and waits until each
// serves.
func startReplicas(t *testing.T, s *sim, redisURL string, n int, extraArgs ...string) []*facade {
	t.Helper()
	return startReplicasEnv(t, s, redisURL, nil, n, extraArgs...)
}

// startReplicasEnv is startReplicas with env added to each process's environment.
func startReplicasEnv(t *testing.T, s *sim, redisURL string, env []string, n int, extraArgs ...string) []*facade {
	t.Helper()
	fs := make([]*facade, n)
	for i := range fs {
		fs[i] = startFacadeProcess(t, s, redisURL, env, append(replicaArgs(), extraArgs...)...)
	}
	for _, f := range fs {
		waitServing(t, f.url)
	}
	return fs
}

// logLine is the part of a JSON log line these tests read.
type logLine struct {
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"`
	Level   string    `json:"level"`
	Version uint64    `json:"version"`
	Epoch   uint64    `json:"epoch"`
	Error   string    `json:"error"`
}

// logLines parses everything f printed so far (non-JSON lines are skipped).
func logLines(f *facade) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(f.Output()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg != "" {
			out = append(out, l)
		}
	}
	return out
}

// published returns the versions f logged as published, in order.
func published(f *facade) []uint64 {
	var vs []uint64
	for _, l := range logLines(f) {
		// A refresh that finds the data unchanged confirms the current
		// version instead of publishing a new one: both are a refresh.
		if l.Msg == "snapshot published" || l.Msg == "snapshot confirmed unchanged" {
			vs = append(vs, l.Version)
		}
	}
	return vs
}

// elections returns the epochs f was elected refresher with, in order.
func elections(f *facade) []uint64 {
	var es []uint64
	for _, l := range logLines(f) {
		if l.Msg == "elected refresher" {
			es = append(es, l.Epoch)
		}
	}
	return es
}

func totalPublished(fs []*facade) int {
	n := 0
	for _, f := range fs {
		n += len(published(f))
	}
	return n
}

// publishers returns the indexes of the facades that published anything.
func publishers(fs []*facade) []int {
	var out []int
	for i, f := range fs {
		if len(published(f)) > 0 {
			out = append(out, i)
		}
	}
	return out
}

// waitUntil polls cond every 50ms until it holds, failing the test when
// within passes first; it returns how long that took.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// snapshotOf answers one small List and returns its snapshot info.
func snapshotOf(t *testing.T, url string) (*clientvpnv1.SnapshotInfo, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	// Its own connection, closed after: callers poll, and the server
	// refuses an address's connections beyond --max-connections-per-address.
	hc := h2cClient()
	defer hc.CloseIdleConnections()
	res, err := clientvpnv1connect.NewClientVpnServiceClient(hc, url).ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5})
	if err != nil {
		return nil, err
	}
	return res.GetSnapshot(), nil
}

// servedVersions returns the snapshot version each facade answers with.
func servedVersions(t *testing.T, fs []*facade) []uint64 {
	t.Helper()
	vs := make([]uint64, len(fs))
	for i, f := range fs {
		if f.Exited() {
			continue
		}
		info, err := snapshotOf(t, f.url)
		if err != nil {
			t.Fatalf("replica %d: List: %v", i, err)
		}
		vs[i] = info.GetVersion()
	}
	return vs
}

// dumpLogs logs every replica's output when the test failed.
func dumpLogs(t *testing.T, fs []*facade) {
	t.Cleanup(func() {
		if t.Failed() {
			for i, f := range fs {
				t.Logf("replica %d output:\n%s", i, f.Output())
			}
		}
	})
}

// TestReplicasOneRefresher runs three replicas on one Redis, then on a
// three-master Redis Cluster: over several refresh intervals exactly one of
// them refreshes (the sim sees one refresher's pages, not three), all serve
// the same snapshot, and when the refresher is SIGKILLed another one
// publishes within the lease TTL plus an interval.
func TestReplicasOneRefresher(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		oneRefresherThenTakeover(t, redistest.Start(t).URL())
	})
	t.Run("cluster", func(t *testing.T) {
		oneRefresherThenTakeover(t, redistest.StartCluster(t, 3).URL())
	})
}

func oneRefresherThenTakeover(t *testing.T, redisURL string) {
	s := startSim(t, 300, ec2sim.Options{})
	fs := startReplicas(t, s, redisURL, 3)
	dumpLogs(t, fs)

	// Several intervals' worth of refreshes.
	const refreshes = 4
	waitUntil(t, refreshes*replicaInterval*2+replicaSlack, fmt.Sprintf("%d snapshots published", refreshes),
		func() bool { return totalPublished(fs) >= refreshes })

	who := publishers(fs)
	if len(who) != 1 {
		t.Fatalf("replicas %v published snapshots, want exactly one refresher", who)
	}
	leader := who[0]
	for i, f := range fs {
		if n := len(elections(f)); (i == leader) != (n > 0) || n > 1 {
			t.Errorf("replica %d was elected refresher %d times (the publisher is replica %d)", i, n, leader)
		}
	}

	// The sim served exactly one refresher's pages: compare at a moment
	// between refreshes, when the counter and the log agree.
	var calls int64
	var pubs int
	waitUntil(t, 5*time.Second, "the sim's counter and the published snapshots to agree", func() bool {
		before := totalPublished(fs)
		calls = s.Stats().ByAction["DescribeClientVpnEndpoints"]
		pubs = totalPublished(fs)
		return before == pubs && calls == pagesPerRefresh*int64(pubs)
	})
	t.Logf("%d refreshes by replica %d, %d DescribeClientVpnEndpoints calls", pubs, leader, calls)

	// Every replica serves the refresher's latest snapshot.
	waitUntil(t, 5*time.Second, "all replicas to serve the latest published version", func() bool {
		latest := slices.Max(published(fs[leader]))
		vs := servedVersions(t, fs)
		return vs[0] == latest && vs[1] == latest && vs[2] == latest
	})

	// SIGKILL the refresher: it cannot release the lease, so a survivor
	// takes over once the lease expires, and publishes at once.
	last := slices.Max(published(fs[leader]))
	fs[leader].Kill()
	survivors := slices.Delete(slices.Clone(fs), leader, leader+1)
	var next int
	var nextVersion uint64
	took := waitUntil(t, replicaTTL+replicaInterval+replicaSlack, "a survivor to publish after the refresher was killed", func() bool {
		for i, f := range survivors {
			if vs := published(f); len(vs) > 0 {
				next, nextVersion = i, vs[0]
				return true
			}
		}
		return false
	})
	t.Logf("takeover: a survivor published version %d %s after the SIGKILL (TTL %s, interval %s)", nextVersion, took.Round(10*time.Millisecond), replicaTTL, replicaInterval)
	if nextVersion < last {
		t.Errorf("the new refresher's first refresh is at version %d, below the killed one's %d", nextVersion, last)
	}
	if e, old := elections(survivors[next]), elections(fs[leader]); len(e) != 1 || e[0] <= old[0] {
		t.Errorf("the new refresher's epochs %v, the killed one's %v: want one election at a higher epoch", e, old)
	}
	if n := len(published(survivors[1-next])); n != 0 {
		t.Errorf("the other survivor published %d snapshots too", n)
	}
	waitUntil(t, 5*time.Second, "both survivors to serve the new refresher's snapshot", func() bool {
		vs := servedVersions(t, survivors)
		return vs[0] >= nextVersion && vs[1] >= nextVersion
	})
}

// TestReplicasPausedRefresherCannotPublish SIGSTOPs the refresher past its
// lease TTL: another replica takes over and publishes the sim's changed
// data; after SIGCONT the old refresher publishes nothing (it steps down, or
// the store refuses its stale epoch), versions only increase and every
// replica ends up serving the new refresher's data.
func TestReplicasPausedRefresherCannotPublish(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	s := startSim(t, 300, ec2sim.Options{})
	fs := startReplicas(t, s, redis.URL(), 3)
	dumpLogs(t, fs)

	waitUntil(t, replicaInterval*2+replicaSlack, "a first snapshot", func() bool { return totalPublished(fs) >= 2 })
	who := publishers(fs)
	if len(who) != 1 {
		t.Fatalf("replicas %v published, want one", who)
	}
	old := fs[who[0]]
	others := slices.Delete(slices.Clone(fs), who[0], who[0]+1)

	// Watch the versions every replica serves throughout: they only grow.
	var (
		mu      sync.Mutex
		served  = make([][]uint64, len(fs))
		readErr []error
	)
	watchDone := make(chan struct{})
	stopWatch := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for i, f := range fs {
				if f == old && paused(old) {
					continue
				}
				info, err := snapshotOf(t, f.url)
				if err != nil && f == old && paused(old) {
					continue // the call raced the SIGSTOP
				}
				mu.Lock()
				if err != nil {
					readErr = append(readErr, fmt.Errorf("replica %d: %w", i, err))
				} else {
					served[i] = append(served[i], info.GetVersion())
				}
				mu.Unlock()
			}
		}
	}()

	pausedAt := time.Now()
	setPaused(old, true)
	time.Sleep(200 * time.Millisecond) // what it printed before the stop is read
	publishedBefore := len(published(old))
	lastOld := slices.Max(published(old))
	// Change the data: whatever is published from now on shows its source.
	mutation := s.Mutate(5)
	t.Logf("sim mutation after the pause: %d added, %d modified, %d deleted", len(mutation.Added), len(mutation.Modified), len(mutation.Deleted))

	var successor *facade
	var first uint64
	waitUntil(t, replicaTTL+replicaInterval+replicaSlack, "another replica to publish while the refresher is paused", func() bool {
		for _, f := range others {
			if vs := published(f); len(vs) > 0 {
				successor, first = f, vs[0]
				return true
			}
		}
		return false
	})
	t.Logf("takeover after SIGSTOP: version %d published %s after the pause", first, time.Since(pausedAt).Round(10*time.Millisecond))
	if first <= lastOld {
		t.Errorf("the successor's first version %d is not above the paused refresher's last %d", first, lastOld)
	}
	// Keep the old refresher stopped well past its TTL, then wake it up.
	if d := time.Until(pausedAt.Add(replicaTTL + time.Second)); d > 0 {
		time.Sleep(d)
	}
	setPaused(old, false)

	// Give it several intervals to try whatever it was about to do.
	time.Sleep(3 * replicaInterval)
	// A publish that completed in Redis just before the SIGSTOP may be
	// logged only after SIGCONT; it is below the successor's versions.
	// Nothing else may be published by the old refresher.
	for _, v := range published(old)[publishedBefore:] {
		if v >= first {
			t.Errorf("the paused refresher published version %d after SIGCONT, over the successor's %d", v, first)
		} else {
			t.Logf("the paused refresher logged version %d after SIGCONT, published before the takeover", v)
		}
	}
	var stepped, refused bool
	for _, l := range logLines(old) {
		stepped = stepped || l.Msg == "no longer the refresher"
		refused = refused || (l.Msg == "refresh failed; retrying after a backoff" &&
			(strings.Contains(l.Error, "taken over") || strings.Contains(l.Error, "overtaken")))
	}
	if !stepped && !refused {
		t.Errorf("the resumed refresher's log shows neither that it stepped down nor that its publish was refused")
	}
	t.Logf("after SIGCONT the old refresher stepped down: %v, had a publish refused: %v", stepped, refused)
	if e := elections(successor); len(e) != 1 || e[0] <= elections(old)[0] {
		t.Errorf("successor's epochs %v, old refresher's %v", e, elections(old))
	}

	// The successor keeps refreshing; everyone serves its lineage, with
	// the sim's changed data.
	latest := slices.Max(published(successor))
	waitUntil(t, 5*time.Second, "every replica, the resumed one too, to serve the successor's snapshot", func() bool {
		for _, v := range servedVersions(t, fs) {
			if v < latest {
				return false
			}
		}
		return true
	})
	close(stopWatch)
	<-watchDone
	mu.Lock()
	defer mu.Unlock()
	for _, err := range readErr {
		t.Errorf("read failed during the drill: %v", err)
	}
	for i, vs := range served {
		for j := 1; j < len(vs); j++ {
			if vs[j] < vs[j-1] {
				t.Errorf("replica %d went back from version %d to %d", i, vs[j-1], vs[j])
				break
			}
		}
	}
	// The resumed replica serves the sim's changed data: the successor's.
	got, err := listAll(t.Context(), clients(old.url)["connect"], &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*clientvpnv1.ClientVpnEndpoint{}
	for _, region := range e2eRegions {
		for _, e := range s.Endpoints(e2eAccount, region) {
			want[snapshot.Key(e)] = e
		}
	}
	if len(got) != len(want) {
		t.Errorf("the resumed replica lists %d endpoints, the changed sim has %d", len(got), len(want))
	}
	for _, e := range got {
		if w, ok := want[snapshot.Key(e)]; !ok || !proto.Equal(e, w) {
			t.Errorf("the resumed replica serves %s as before the change, not as the successor read it", snapshot.Key(e))
			break
		}
	}
}

var pausedMu sync.Mutex
var pausedSet = map[*facade]bool{}

func setPaused(f *facade, p bool) {
	pausedMu.Lock()
	defer pausedMu.Unlock()
	if p {
		f.Signal(syscall.SIGSTOP)
	} else {
		f.Signal(syscall.SIGCONT)
	}
	pausedSet[f] = p
}

func paused(f *facade) bool {
	pausedMu.Lock()
	defer pausedMu.Unlock()
	return pausedSet[f]
}

// readSample is one answer (or failure) of the read load.
type readSample struct {
	at        time.Time
	replica   int
	stale     bool
	version   uint64
	refreshed time.Time // SnapshotInfo.refreshed_at
	err       error
}

// readLoadArgs are the facade flags a readLoad needs: it calls List from
// one address as fast as it can, faster than --list-rate-per-address allows
// one client by default, and with more calls in flight than one client's
// share of the slots on a small machine.
var readLoadArgs = []string{"--list-rate-per-address", "0", "--list-share-per-address", "1"}

// readLoad is a few goroutines calling List and Get continuously, over
// Connect, round-robin against several replicas.
type readLoad struct {
	mu      sync.Mutex
	samples []readSample
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startReadLoad(t *testing.T, urls []string, known *clientvpnv1.ClientVpnEndpoint, workers int) *readLoad {
	t.Helper()
	l := &readLoad{stop: make(chan struct{})}
	cs := make([]clientvpnv1connect.ClientVpnServiceClient, len(urls))
	for i, u := range urls {
		cs[i] = clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), u)
	}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := w; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				r := n % len(cs)
				var info *clientvpnv1.SnapshotInfo
				var err error
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				if n%2 == 0 {
					var res *clientvpnv1.ListClientVpnEndpointsResponse
					res, err = cs[r].ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 50})
					if err == nil && len(res.GetClientVpnEndpoints()) == 0 {
						err = fmt.Errorf("List answered no endpoints")
					}
					info = res.GetSnapshot()
				} else {
					var res *clientvpnv1.GetClientVpnEndpointResponse
					res, err = cs[r].GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{
						ClientVpnEndpointId: known.GetClientVpnEndpointId(), Region: known.GetRegion(),
					})
					info = res.GetSnapshot()
				}
				cancel()
				l.mu.Lock()
				l.samples = append(l.samples, readSample{at: time.Now(), replica: r, stale: info.GetStale(), version: info.GetVersion(), refreshed: info.GetRefreshedAt().AsTime(), err: err})
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(l.Stop)
	return l
}

// Stop ends the load and waits for the workers.
func (l *readLoad) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// since returns the samples taken at or after from.
func (l *readLoad) since(from time.Time) []readSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := slices.BinarySearchFunc(l.samples, from, func(s readSample, t time.Time) int { return s.at.Compare(t) })
	return slices.Clone(l.samples[i:])
}

// failures returns every failed read.
func (l *readLoad) failures() []readSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []readSample
	for _, s := range l.samples {
		if s.err != nil {
			out = append(out, s)
		}
	}
	return out
}

// staleByReplica reports, per replica, whether any of samples was stale and
// whether the last one was fresh.
func staleByReplica(samples []readSample, replicas int) (anyStale, lastFresh []bool) {
	anyStale, lastFresh = make([]bool, replicas), make([]bool, replicas)
	for _, s := range samples {
		if s.err != nil {
			continue
		}
		anyStale[s.replica] = anyStale[s.replica] || s.stale
		lastFresh[s.replica] = !s.stale
	}
	return anyStale, lastFresh
}

// TestReplicasRedisPausedReadsStayUp SIGSTOPs Redis for 10 s under a read
// load on two replicas: no read fails, answers are marked stale while Redis
// is frozen and fresh again after SIGCONT.
func TestReplicasRedisPausedReadsStayUp(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	s := startSim(t, 300, ec2sim.Options{})
	fs := startReplicas(t, s, redis.URL(), 2, readLoadArgs...)
	dumpLogs(t, fs)
	waitUntil(t, replicaInterval+replicaSlack, "a first snapshot", func() bool { return totalPublished(fs) >= 1 })

	load := startReadLoad(t, []string{fs[0].url, fs[1].url}, s.data[3], 4)
	time.Sleep(time.Second)
	warm := load.since(time.Time{})
	if anyStale, _ := staleByReplica(warm, 2); anyStale[0] || anyStale[1] {
		t.Errorf("answers were marked stale before Redis was paused (per replica: %v)", anyStale)
	}

	const pause = 10 * time.Second
	pausedAt := time.Now()
	redis.Pause()
	time.Sleep(pause)
	redis.Resume()
	during := load.since(pausedAt)
	anyStale, _ := staleByReplica(during, 2)
	for i, stale := range anyStale {
		if !stale {
			t.Errorf("replica %d never marked its answers stale while Redis was paused for %s", i, pause)
		}
	}
	firstStale := make([]time.Duration, 2)
	for _, s := range during {
		if s.stale && s.err == nil && firstStale[s.replica] == 0 {
			firstStale[s.replica] = s.at.Sub(pausedAt)
		}
	}

	took := waitUntil(t, 15*time.Second, "both replicas to answer fresh (stale=false) after SIGCONT", func() bool {
		_, lastFresh := staleByReplica(load.since(time.Now().Add(-300*time.Millisecond)), 2)
		return lastFresh[0] && lastFresh[1]
	})
	load.Stop()
	total := len(load.since(time.Time{}))
	for _, f := range load.failures() {
		t.Errorf("read on replica %d failed at +%s of the pause: %v", f.replica, f.at.Sub(pausedAt).Round(time.Millisecond), f.err)
	}
	t.Logf("%d reads, %d during the pause; stale after %v; fresh again %s after SIGCONT", total, len(during), firstStale, took.Round(10*time.Millisecond))
}

// TestReplicasThrottledUpstream throttles every DescribeClientVpnEndpoints
// call for 6 s under a read load on two replicas: no read fails, answers
// are marked stale, the refresher backs off (the sim sees a few refreshes'
// calls, not one refresh per interval), and once throttling stops a fresh
// snapshot is published.
func TestReplicasThrottledUpstream(t *testing.T) {
	// Not in parallel: the refresher's backoff is counted in calls over a
	// few seconds, which the other tests' load stretches.
	// One attempt per call (AWS_MAX_ATTEMPTS, as a user would set it): the
	// SDK's own retries, with their own backoff, would otherwise multiply
	// the calls and space the refreshes out, hiding the refresher's backoff
	// that this test is about.
	const interval = 250 * time.Millisecond
	redis := redistest.Start(t)
	s := startSim(t, 300, ec2sim.Options{})
	fs := startReplicasEnv(t, s, redis.URL(), []string{"AWS_MAX_ATTEMPTS=1"}, 2, append(readLoadArgs, "--refresh-interval", interval.String())...)
	dumpLogs(t, fs)
	// A refresh of 300 endpoints takes over a second on a loaded machine:
	// this bound is for the warm-up only, not the check.
	waitUntil(t, 30*time.Second, "a few snapshots", func() bool { return totalPublished(fs) >= 4 })
	load := startReadLoad(t, []string{fs[0].url, fs[1].url}, s.data[3], 4)

	// The normal rate, for the log only.
	normalFrom := s.Stats().ByAction["DescribeClientVpnEndpoints"]
	time.Sleep(time.Second)
	normal := s.Stats().ByAction["DescribeClientVpnEndpoints"] - normalFrom

	throttleAll(t, s)
	const period = 6 * time.Second
	throttledAt := time.Now()
	before := s.Stats()
	time.Sleep(period)
	during := s.Stats()
	if err := s.SetThrottle(ec2sim.Throttle{}); err != nil {
		t.Fatal(err)
	}
	liftedAt := time.Now()
	calls := during.ByAction["DescribeClientVpnEndpoints"] - before.ByAction["DescribeClientVpnEndpoints"]
	throttled := during.Throttled - before.Throttled
	t.Logf("throttled for %s: %d calls (%d refused); unthrottled, %d calls in 1 s (refresh interval %s)", period, calls, throttled, normal, interval)
	if throttled < calls-pagesPerRefresh {
		t.Errorf("only %d of %d calls were throttled: the test did not throttle everything", throttled, calls)
	}
	// The refresher's default backoff (1 s doubling to 5 min, each delay
	// jittered to between half and all of it, never below the interval)
	// lets refreshes start at the earliest at 0, 0.5, 1.5 and 3.5 s of the
	// period, the next not before 7.5 s: at most 4, and one more may have
	// been in flight when it began (6 allowed). Refreshing every interval
	// would make about 22.
	if maxCalls := 6 * pagesPerRefresh; calls > maxCalls {
		t.Errorf("%d calls while every call was throttled for %s, want at most %d (6 refreshes): the refresher does not back off", calls, period, maxCalls)
	}
	if calls < 2*pagesPerRefresh {
		t.Errorf("%d calls while throttled for %s: the refresher stopped trying", calls, period)
	}
	var delays []string
	for _, f := range fs {
		for _, l := range strings.Split(f.Output(), "\n") {
			if strings.Contains(l, "every partition failed") {
				var v struct {
					RetryIn string `json:"retry_in"` // a duration, as the log writes it
				}
				_ = json.Unmarshal([]byte(l), &v)
				delays = append(delays, v.RetryIn)
			}
		}
	}
	t.Logf("the refresher's backoff while throttled: %v", delays)
	throttledReads := load.since(throttledAt.Add(2 * time.Second))
	throttledReads = slices.DeleteFunc(throttledReads, func(s readSample) bool { return s.at.After(liftedAt) })
	anyStale, _ := staleByReplica(throttledReads, 2)
	if !anyStale[0] || !anyStale[1] {
		t.Errorf("answers marked stale while EC2 throttled everything, per replica: %v; want both", anyStale)
	}
	// Snapshots that read nothing do not claim to be fresh: refreshed_at
	// (and so the age that --max-staleness checks) stays before the
	// throttling. The refresh in flight when it began may still have read
	// a partition (the refresher's clock says when its read completed,
	// which on a loaded machine is well after the emulator answered): no
	// answer may say later than the end of that refresh, the first one
	// logged after the throttling began. A refresh that started after it
	// read nothing.
	firstEnd := time.Time{}
	for _, f := range fs {
		for _, l := range logLines(f) {
			if (l.Msg == "snapshot published" || l.Msg == "snapshot confirmed unchanged" || strings.HasPrefix(l.Msg, "refresh failed")) &&
				l.Time.After(throttledAt) && (firstEnd.IsZero() || l.Time.Before(firstEnd)) {
				firstEnd = l.Time
			}
		}
	}
	if firstEnd.IsZero() {
		t.Fatalf("no refresh ended in the %s of throttling", period)
	}
	var latest time.Time
	for _, s := range throttledReads {
		if s.err == nil && s.refreshed.After(latest) {
			latest = s.refreshed
		}
	}
	t.Logf("the first refresh of the throttling ended at +%s; answers from +2 s on say refreshed at +%s at the latest",
		firstEnd.Sub(throttledAt).Round(time.Millisecond), latest.Sub(throttledAt).Round(time.Millisecond))
	for _, s := range throttledReads {
		if s.err == nil && s.refreshed.After(firstEnd) {
			t.Errorf("an answer at +%s of the throttling says the data was refreshed at +%s, after the first refresh of the throttling ended (+%s), when nothing could be read",
				s.at.Sub(throttledAt).Round(time.Millisecond), s.refreshed.Sub(throttledAt).Round(time.Millisecond), firstEnd.Sub(throttledAt).Round(time.Millisecond))
			break
		}
	}

	// Recovery: the next refresh (at most the last backoff, 16 s, away)
	// publishes fresh data, which both replicas serve.
	pubsBefore := totalPublished(fs)
	took := waitUntil(t, 16*time.Second+replicaSlack, "a fresh snapshot after throttling stopped", func() bool {
		if totalPublished(fs) <= pubsBefore {
			return false
		}
		for _, f := range fs {
			info, err := snapshotOf(t, f.url)
			if err != nil || info.GetStale() {
				return false
			}
		}
		return true
	})
	t.Logf("fresh again %s after throttling stopped", took.Round(10*time.Millisecond))
	load.Stop()
	for _, f := range load.failures() {
		t.Errorf("read on replica %d failed at +%s of the throttling: %v", f.replica, f.at.Sub(throttledAt).Round(time.Millisecond), f.err)
	}
}

// throttleAll makes the sim refuse every DescribeClientVpnEndpoints call
// with RequestLimitExceeded: a bucket of one token that refills once a
// year, whose token the test spends itself in each region.
func throttleAll(t *testing.T, s *sim) {
	t.Helper()
	if err := s.SetThrottle(ec2sim.Throttle{Burst: 1, PerSecond: 1.0 / (365 * 24 * 3600)}); err != nil {
		t.Fatal(err)
	}
	for _, region := range e2eRegions {
		req, err := http.NewRequest(http.MethodPost, s.url, strings.NewReader("Action=DescribeClientVpnEndpoints&Version=2016-11-15"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=e2e/20250101/"+region+"/ec2/aws4_request, SignedHeaders=host, Signature=0")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
}
