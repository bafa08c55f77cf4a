package main_test

// Issue 12, item 1, with real processes on loopback: a vpnfacade process
// starts and serves what Redis holds while EC2 and STS are unreachable,
// keeps trying to refresh, and recovers when they come back; with several
// replicas only the lease holder calls AWS (STS included); configuration
// that is wrong for sure still fails at start, naming the flag.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/awstest"
	"github.com/vpnfacade/vpnfacade/internal/proctest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

// outageSim is the EC2 and STS emulator on a fixed loopback address that
// can be stopped entirely (nothing listens, connections are refused) and
// started again on the same address. It counts the requests it receives by
// the access key that signed them and their Action.
type outageSim struct {
	*ec2sim.Server
	addr string
	data []*clientvpnv1.ClientVpnEndpoint

	mu     sync.Mutex
	srv    *http.Server
	byKey  map[string]map[string]int // access key → Action → requests
	errors []error
}

func startOutageSim(t *testing.T, count int) *outageSim {
	t.Helper()
	data, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: count, Seed: 12, Regions: e2eRegions, Accounts: []string{e2eAccount}})
	if err != nil {
		t.Fatal(err)
	}
	eps := make([]*clientvpnv1.ClientVpnEndpoint, len(data))
	for i, e := range data {
		eps[i] = proto.CloneOf(e)
	}
	srv, err := ec2sim.New(ec2sim.Options{Endpoints: eps, DefaultRegion: e2eRegions[0]})
	if err != nil {
		t.Fatal(err)
	}
	s := &outageSim{Server: srv, data: data, byKey: map[string]map[string]int{}}
	s.start(t, "127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

// ServeHTTP counts the request, then hands it to the emulator.
func (s *outageSim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	form, err := awstest.PeekForm(r)
	s.mu.Lock()
	if err != nil {
		s.errors = append(s.errors, err)
	}
	key := ec2query.SigningAccessKey(r)
	if s.byKey[key] == nil {
		s.byKey[key] = map[string]int{}
	}
	s.byKey[key][form.Get("Action")]++
	s.mu.Unlock()
	s.Server.ServeHTTP(w, r)
}

// start listens on addr (":0" picks a port, remembered for restarts).
func (s *outageSim) start(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("emulator: listening on %s: %v", addr, err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	s.mu.Lock()
	s.addr, s.srv = ln.Addr().String(), hs
	s.mu.Unlock()
}

// stop closes the listener and every connection: AWS is unreachable.
func (s *outageSim) stop() {
	s.mu.Lock()
	hs := s.srv
	s.srv = nil
	s.mu.Unlock()
	if hs != nil {
		_ = hs.Close()
	}
}

func (s *outageSim) url() string { return "http://" + s.addr }

// calls returns a copy of the request counts by access key and Action.
func (s *outageSim) calls() map[string]map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]int{}
	for k, m := range s.byKey {
		out[k] = map[string]int{}
		for a, n := range m {
			out[k][a] = n
		}
	}
	return out
}

// startUnconfiguredFacade runs the binary against s with the access key
// accessKey and without --account-id, so that it needs STS to learn its
// account; it returns once the process listens.
func startUnconfiguredFacade(t *testing.T, s *outageSim, redisURL, accessKey string, extraArgs ...string) *facade {
	t.Helper()
	args := append([]string{
		"--listen", "127.0.0.1:0",
		"--regions", strings.Join(e2eRegions, ","),
		"--log-format", "json",
		"--redis-url", redisURL,
	}, extraArgs...)
	env := []string{
		"AWS_ENDPOINT_URL_EC2=" + s.url(),
		"AWS_ENDPOINT_URL_STS=" + s.url(),
		"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=outage-test", "AWS_REGION=" + e2eRegions[0],
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"VPNFACADE_ACCOUNT_ID=",
		// One attempt per call: each refresh attempt is then one call, and
		// the test sees several refresh attempts in a few seconds.
		"AWS_MAX_ATTEMPTS=1",
	}
	p, m := proctest.Start(t, facadeBinary(t), args, env, listeningLine, 30*time.Second)
	return &facade{proc: p, url: m[1]}
}

// jsonLines returns f's JSON log lines whose msg is msg.
func jsonLines(t *testing.T, f *facade, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(f.Output()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// publishedVersions returns the versions f published, with how many stale
// partitions each had.
func publishedVersions(t *testing.T, f *facade) (versions []uint64, stale []int) {
	// A refresh that finds the data unchanged confirms the current version
	// (with its partitions' states) instead of publishing a new one.
	lines := append(jsonLines(t, f, "snapshot published"), jsonLines(t, f, "snapshot confirmed unchanged")...)
	slices.SortStableFunc(lines, func(a, b map[string]any) int { return strings.Compare(a["time"].(string), b["time"].(string)) })
	for _, l := range lines {
		v, _ := l["version"].(float64)
		s, _ := l["stale_partitions"].(float64)
		versions, stale = append(versions, uint64(v)), append(stale, int(s))
	}
	return versions, stale
}

// boto3Count lists every endpoint of region from url with boto3's
// paginator, as a script would, and returns how many there were.
func boto3Count(t *testing.T, url, region string) int {
	t.Helper()
	const script = `
import sys, boto3
c = boto3.client("ec2", endpoint_url=sys.argv[1], region_name=sys.argv[2],
                 aws_access_key_id="reader", aws_secret_access_key="reader")
n = 0
for page in c.get_paginator("describe_client_vpn_endpoints").paginate(PaginationConfig={"PageSize": 200}):
    n += len(page["ClientVpnEndpoints"])
print(n)
`
	out, err := exec.CommandContext(t.Context(), "python3", "-c", script, url, region).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("boto3: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("boto3: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("boto3 printed %q", out)
	}
	return n
}

// metricValue returns the value of the first sample of name in url's
// /metrics whose labels contain every one of labels, and whether there was one.
func scrapeMetric(t *testing.T, url, name string, labels ...string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	for _, m := range line.FindAllStringSubmatch(string(body), -1) {
		if slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(m[1], l) }) {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatalf("%s: %v", m[0], err)
		}
		return v, true
	}
	return 0, false
}

// TestServesFromRedisWhileAWSIsDown: a first process publishes to Redis and
// stops; EC2 and STS then stop entirely. A second process on the same
// Redis, without --account-id (so it needs STS), starts and serves the
// snapshot over Connect and the EC2 API, healthy, while its refresher keeps
// failing and says so; when the emulator comes back on the same address the
// refresher recovers, without a restart: first with one region still down
// (that partition is kept stale and named in the log), then fully.
func TestServesFromRedisWhileAWSIsDown(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	s := startOutageSim(t, 300)
	first := startUnconfiguredFacade(t, s, redis.URL(), "AKIDFIRSTPROCESS", "--refresh-interval", "1h")
	waitUntil(t, 30*time.Second, "the first process to publish", func() bool { v, _ := publishedVersions(t, first); return len(v) > 0 })
	firstVersions, _ := publishedVersions(t, first)
	if err := first.Stop(15 * time.Second); err != nil {
		t.Fatalf("first process: %v\n%s", err, first.Output())
	}

	s.stop()
	before := s.calls()
	started := time.Now()
	second := startUnconfiguredFacade(t, s, redis.URL(), "AKIDSECONDPROCESS", "--refresh-interval", "1s", "--lease-ttl", "2s")
	dumpLogs(t, []*facade{second})
	health := grpchealth.NewClient(http.DefaultClient, second.url)
	connect := clients(second.url)["connect"]
	listening := time.Since(started)
	var (
		listed      []*clientvpnv1.ClientVpnEndpoint
		servedAfter time.Duration
	)
	waitUntil(t, 30*time.Second, "the second process to answer List and health SERVING", func() bool {
		res, err := health.Check(t.Context(), &grpchealth.CheckRequest{})
		if err != nil || res.Status != grpchealth.StatusServing {
			return false
		}
		listed, err = listAll(t.Context(), connect, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
		servedAfter = time.Since(started)
		return err == nil
	})
	t.Logf("with EC2 and STS down, the second process logged that it listens %s after it was started, and had answered health SERVING and a full List %s after",
		listening.Round(time.Millisecond), servedAfter.Round(time.Millisecond))
	// A sanity bound only: the figure is reported, not asserted.
	if servedAfter > 20*time.Second {
		t.Errorf("the second process took %s to serve", servedAfter)
	}
	if len(listed) != len(s.data) {
		t.Errorf("the second process listed %d endpoints, Redis holds %d", len(listed), len(s.data))
	}
	for _, region := range e2eRegions {
		want := 0
		for _, e := range s.data {
			if e.GetRegion() == region {
				want++
			}
		}
		if got := boto3Count(t, second.url, region); got != want {
			t.Errorf("boto3 in %s listed %d endpoints, want %d", region, got, want)
		}
	}

	// The refresher keeps trying, and each failed attempt is a log line
	// saying what it could not read and why.
	failures := func() []map[string]any { return jsonLines(t, second, "refresh failed; retrying after a backoff") }
	waitUntil(t, 30*time.Second, "three failed refresh attempts", func() bool { return len(failures()) >= 3 })
	for i, l := range failures() {
		e, _ := l["error"].(string)
		for _, want := range []string{"GetCallerIdentity", strings.Join(e2eRegions, ", "), "connection refused"} {
			if !strings.Contains(e, want) {
				t.Errorf("failed attempt %d: error %q does not mention %q", i, e, want)
			}
		}
		if strings.Contains(e, "outage-test") {
			t.Errorf("failed attempt %d logs the secret access key: %q", i, e)
		}
	}
	if v, ok := scrapeMetric(t, second.url, "vpnfacade_refresh_consecutive_failures"); !ok || v < 1 {
		t.Errorf("vpnfacade_refresh_consecutive_failures = %v (present %v), want at least 1", v, ok)
	}
	res, err := health.Check(t.Context(), &grpchealth.CheckRequest{})
	if err != nil || res.Status != grpchealth.StatusServing {
		t.Errorf("health while the refresher fails = %v, %v; want SERVING", res, err)
	}
	if after := s.calls(); !maps.EqualFunc(before, after, maps.Equal) {
		t.Errorf("the stopped emulator received requests: %v, then %v", before, after)
	}

	// The emulator comes back on the same address, one region still down:
	// the refresher learns its account and publishes, keeping that
	// partition's last good data, marked stale and named in the log.
	s.SetRegionDown("eu-west-1", true)
	s.start(t, s.addr)
	last := slices.Max(firstVersions)
	// The next attempt comes after the backoff the last failure announced
	// (it doubles with each failure, and a loaded machine may have let
	// several pass by now).
	var retryIn time.Duration
	if fs := failures(); len(fs) > 0 {
		// Durations are logged as Go spells them ("1.5s").
		if v, ok := fs[len(fs)-1]["retry_in"].(string); ok {
			if d, err := time.ParseDuration(v); err == nil {
				retryIn = d
			}
		}
	}
	waitUntil(t, retryIn+30*time.Second, "a snapshot with eu-west-1 kept stale", func() bool {
		vs, stale := publishedVersions(t, second)
		return len(vs) > 0 && vs[len(vs)-1] >= last && stale[len(vs)-1] == 1
	})
	partitionFailures := jsonLines(t, second, "partition read failed")
	if len(partitionFailures) == 0 {
		t.Fatal("no partition failure was logged")
	}
	if l := partitionFailures[0]; l["account"] != e2eAccount || l["region"] != "eu-west-1" || !strings.Contains(l["error"].(string), "Unavailable") {
		t.Errorf("partition failure line = %v, want account %s, region eu-west-1 and EC2's error", l, e2eAccount)
	}
	if v, ok := scrapeMetric(t, second.url, "vpnfacade_partition_stale", `account="`+e2eAccount+`"`, `region="eu-west-1"`); !ok || v != 1 {
		t.Errorf("vpnfacade_partition_stale for eu-west-1 = %v (present %v), want 1", v, ok)
	}

	// The region recovers: a fully fresh snapshot follows.
	s.SetRegionDown("eu-west-1", false)
	waitUntil(t, 30*time.Second, "a fresh snapshot after recovery", func() bool {
		vs, stale := publishedVersions(t, second)
		return len(vs) > 0 && vs[len(vs)-1] >= last && stale[len(vs)-1] == 0
	})
	if v, ok := scrapeMetric(t, second.url, "vpnfacade_partition_stale", `account="`+e2eAccount+`"`, `region="eu-west-1"`); !ok || v != 0 {
		t.Errorf("vpnfacade_partition_stale for eu-west-1 after recovery = %v (present %v), want 0", v, ok)
	}
	info, err := snapshotOf(t, second.url)
	// The data did not change: the refreshes confirmed the version they
	// found (or published a new one), and the answer is fresh again.
	if err != nil || info.GetVersion() < last || info.GetStale() {
		t.Errorf("after recovery the second process serves %v (err %v), want a fresh version, at least %d", info, err, last)
	}
	if n := s.calls()["AKIDSECONDPROCESS"][ec2sim.ActionGetCallerIdentity]; n != 1 {
		t.Errorf("the second process called GetCallerIdentity %d times once STS was back, want 1", n)
	}
}

// TestOnlyTheLeaseHolderCallsAWS runs three replicas on one Redis, each
// with its own access key and no --account-id: over several refreshes,
// every request the emulator receives, STS included, is signed with the
// lease holder's key.
func TestOnlyTheLeaseHolderCallsAWS(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	s := startOutageSim(t, 300)
	keys := []string{"AKIDREPLICAZERO", "AKIDREPLICAONE", "AKIDREPLICATWO"}
	fs := make([]*facade, len(keys))
	for i, k := range keys {
		fs[i] = startUnconfiguredFacade(t, s, redis.URL(), k, replicaArgs()...)
	}
	dumpLogs(t, fs)
	for _, f := range fs {
		waitServing(t, f.url)
	}
	const refreshes = 3
	waitUntil(t, refreshes*replicaInterval*2+replicaSlack+10*time.Second, "three snapshots published", func() bool { return totalPublished(fs) >= refreshes })
	who := publishers(fs)
	if len(who) != 1 {
		t.Fatalf("replicas %v published, want exactly one", who)
	}
	leader := who[0]
	// Stop the others first, so that the lease does not pass to one of them.
	for i := range fs {
		if i != leader {
			if err := fs[i].Stop(15 * time.Second); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
	}
	if err := fs[leader].Stop(15 * time.Second); err != nil {
		t.Errorf("replica %d: %v", leader, err)
	}

	calls := s.calls()
	t.Logf("requests by access key and action: %v", calls)
	for i, k := range keys {
		if i == leader {
			continue
		}
		if len(calls[k]) != 0 || len(elections(fs[i])) != 0 {
			t.Errorf("replica %d (not the lease holder) sent %v and was elected %d times", i, calls[k], len(elections(fs[i])))
		}
	}
	lead := calls[keys[leader]]
	if lead[ec2sim.ActionGetCallerIdentity] != 1 {
		t.Errorf("the lease holder called GetCallerIdentity %d times, want 1", lead[ec2sim.ActionGetCallerIdentity])
	}
	if n := lead[ec2query.ActionDescribeClientVpnEndpoints]; n < refreshes*len(e2eRegions) {
		t.Errorf("the lease holder called DescribeClientVpnEndpoints %d times for %d+ refreshes", n, refreshes)
	}
	// Nothing reached the emulator unsigned or under another key, and its
	// own counters agree with the per-key ones.
	if len(calls) != 1 {
		t.Errorf("requests came under %d access keys, want only the lease holder's", len(calls))
	}
	st := s.Stats()
	for _, a := range []string{ec2sim.ActionGetCallerIdentity, ec2query.ActionDescribeClientVpnEndpoints} {
		if st.ByAction[a] != int64(lead[a]) {
			t.Errorf("the emulator counted %d %s requests, the lease holder's key %d", st.ByAction[a], a, lead[a])
		}
	}
	if st.Requests != int64(lead[ec2sim.ActionGetCallerIdentity]+lead[ec2query.ActionDescribeClientVpnEndpoints]) {
		t.Errorf("the emulator received %d requests in all, %v from the lease holder", st.Requests, lead)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errors) > 0 {
		t.Errorf("reading request bodies: %v", s.errors)
	}
}

// TestWrongAWSSettingsFailAtStart: settings that cannot be right stop the
// process at once, as configuration errors (exit status 2), with a message
// naming the flag and its environment variable, whether they came from the
// one or the other; nothing is called.
func TestWrongAWSSettingsFailAtStart(t *testing.T) {
	t.Parallel()
	s := startOutageSim(t, 0)
	for _, c := range []struct {
		args, env []string
		want      []string
	}{
		{[]string{"--assume-roles", "arn:aws:iam::123456789012:user/bob"}, nil, []string{"--assume-roles", "VPNFACADE_ASSUME_ROLES", "IAM role ARN"}},
		{nil, []string{"VPNFACADE_ASSUME_ROLES=arn:aws:iam::123456789012:role/ok,not-an-arn"}, []string{"--assume-roles", "VPNFACADE_ASSUME_ROLES", `"not-an-arn"`}},
		{[]string{"--regions", "eu-west-1,Ireland"}, nil, []string{"--regions", "VPNFACADE_REGIONS", `"Ireland"`}},
		{nil, []string{"VPNFACADE_REGIONS=eu_west_1"}, []string{"--regions", "VPNFACADE_REGIONS", "region name"}},
		{[]string{"--account-id", "12345"}, nil, []string{"--account-id", "VPNFACADE_ACCOUNT_ID", "12-digit"}},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, facadeBinary(t), append([]string{"--listen", "127.0.0.1:0"}, c.args...)...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "AWS_ENDPOINT_URL_EC2=" + s.url(), "AWS_ENDPOINT_URL_STS=" + s.url(),
			"AWS_ACCESS_KEY_ID=AKIDWRONG", "AWS_SECRET_ACCESS_KEY=x", "AWS_REGION=eu-west-1",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}, c.env...)
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v %v: exit %v, want status 2 (a configuration error); output:\n%s", c.args, c.env, err, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%v %v: output does not name %q:\n%s", c.args, c.env, w, out)
			}
		}
	}
	if n := len(s.calls()); n != 0 {
		t.Errorf("wrong settings still called AWS: %v", s.calls())
	}
}
