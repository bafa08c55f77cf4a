package refresher_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/awstest"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// These tests run the refresher over the real upstream source: the real
// aws-sdk-go-v2 client, over HTTP on loopback, against ec2sim.

const (
	mainAccount = ec2sim.DefaultAccount // the static test credentials' account
	roleAccount = "222222222222"        // reached by assuming a role through the sim's STS
	roleARN     = "arn:aws:iam::" + roleAccount + ":role/vpnfacade-reader"
)

var regions = []string{"eu-west-1", "us-east-1", "ap-southeast-2"}

// fixture is a sim with generated data, an upstream source reading it and a
// refresher publishing to a memory store.
type fixture struct {
	sim  *ec2sim.Server
	url  string                           // the sim's address
	want []*clientvpnv1.ClientVpnEndpoint // the generated data
	src  *upstream.Source
	st   *store.Memory
	rec  *diffRecorder // wraps st: the refresher publishes through it
	r    *refresher.Refresher
}

// diffRecorder is a store that remembers the diff of the last publication.
type diffRecorder struct {
	store.Store
	mu   sync.Mutex
	last snapshot.Diff
}

func (d *diffRecorder) Publish(ctx context.Context, pub store.Publication) (*snapshot.Snapshot, error) {
	d.mu.Lock()
	d.last = pub.Diff
	d.mu.Unlock()
	return d.Store.Publish(ctx, pub)
}

func (d *diffRecorder) lastDiff() snapshot.Diff {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

type fixtureOptions struct {
	count    int
	regions  []string
	accounts int // 1: the main account only; 2: also the role's
	sim      ec2sim.Options
	wrap     func(http.Handler) http.Handler
	edit     func(*upstream.Options)
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	awstest.Isolate(t)
	accounts := []string{mainAccount, roleAccount}[:o.accounts]
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: o.count, Seed: 99, Regions: o.regions, Accounts: accounts})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	f := &fixture{st: store.NewMemory()}
	for _, e := range eps {
		f.want = append(f.want, proto.CloneOf(e))
	}
	o.sim.Endpoints = eps
	if f.sim, err = ec2sim.New(o.sim); err != nil {
		t.Fatalf("ec2sim.New: %v", err)
	}
	var h http.Handler = f.sim
	if o.wrap != nil {
		h = o.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	cfg := upstream.Options{
		Regions:      o.regions,
		AccountID:    mainAccount,
		BaseEndpoint: srv.URL,
		MaxAttempts:  3,
		MaxBackoff:   20 * time.Millisecond,
		LoadOptions: []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		},
	}
	if o.accounts > 1 {
		cfg.RoleARNs = []string{roleARN}
	}
	if o.edit != nil {
		o.edit(&cfg)
	}
	if f.src, err = upstream.New(t.Context(), cfg); err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	f.rec = &diffRecorder{Store: f.st}
	if f.r, err = refresher.New(f.src, f.rec, refresher.Options{Concurrency: 6}); err != nil {
		t.Fatalf("refresher.New: %v", err)
	}
	return f
}

func (f *fixture) refresh(t testing.TB) store.View {
	t.Helper()
	if err := f.r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
	v, err := f.st.Current(t.Context())
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	return v
}

// describeCalls is how many DescribeClientVpnEndpoints requests reached the sim.
func (f *fixture) describeCalls() int64 {
	return f.sim.Stats().ByAction[ec2query.ActionDescribeClientVpnEndpoints]
}

// partitionOf returns the endpoints of one partition in s, in id order.
func partitionOf(t *testing.T, s *snapshot.Snapshot, account, region string) []*clientvpnv1.ClientVpnEndpoint {
	var out []*clientvpnv1.ClientVpnEndpoint
	for _, e := range endpointtest.Messages(t, s.All()) {
		if e.GetAccountId() == account && e.GetRegion() == region {
			out = append(out, e)
		}
	}
	return out
}

func sameEndpoints(t *testing.T, what string, got, want []*clientvpnv1.ClientVpnEndpoint) {
	t.Helper()
	sortByKey := func(eps []*clientvpnv1.ClientVpnEndpoint) []*clientvpnv1.ClientVpnEndpoint {
		eps = slices.Clone(eps)
		slices.SortFunc(eps, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
			return strings.Compare(snapshot.Key(a), snapshot.Key(b))
		})
		return eps
	}
	got, want = sortByKey(got), sortByKey(want)
	if len(got) != len(want) {
		t.Errorf("%s: %d endpoints, want %d", what, len(got), len(want))
		return
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("%s: endpoint %s differs:\n got %v\nwant %v", what, snapshot.Key(want[i]), got[i], want[i])
			return
		}
	}
}

func partitionState(t *testing.T, s *snapshot.Snapshot, account, region string) snapshot.Partition {
	t.Helper()
	i := slices.IndexFunc(s.Partitions, func(p snapshot.Partition) bool { return p.AccountID == account && p.Region == region })
	if i < 0 {
		t.Fatalf("no partition %s/%s in %+v", account, region, s.Partitions)
	}
	return s.Partitions[i]
}

// TestRefreshPublishesEverythingFromEC2: 2,500 endpoints over 3 regions and
// 2 accounts land in the store as one snapshot, field for field.
func TestRefreshPublishesEverythingFromEC2(t *testing.T) {
	f := newFixture(t, fixtureOptions{count: 2500, regions: regions, accounts: 2})
	v := f.refresh(t)

	sameEndpoints(t, "snapshot", endpointtest.Messages(t, v.All()), f.want)
	if len(v.Partitions) != 6 || v.Stale() {
		t.Errorf("partitions = %+v, want 6, all fresh", v.Partitions)
	}
	for _, p := range v.Partitions {
		if p.Endpoints < 416 || p.Endpoints > 417 {
			t.Errorf("partition %s/%s holds %d endpoints, want 2500/6", p.AccountID, p.Region, p.Endpoints)
		}
	}
}

// pagesPerRefresh is the number of DescribeClientVpnEndpoints pages a full
// read of the data costs with the given page size.
func pagesPerRefresh(eps []*clientvpnv1.ClientVpnEndpoint, pageSize int) int64 {
	per := map[string]int{}
	for _, e := range eps {
		per[e.GetAccountId()+"/"+e.GetRegion()]++
	}
	var pages int64
	for _, n := range per {
		pages += int64((n + pageSize - 1) / pageSize)
	}
	return pages
}

// TestUpstreamCallsPerRefreshAreThePagesWhateverTheReaders: a refresh costs
// one call per page, counted by the sim, with or without readers hammering
// the store.
func TestUpstreamCallsPerRefreshAreThePagesWhateverTheReaders(t *testing.T) {
	f := newFixture(t, fixtureOptions{count: 2500, regions: regions, accounts: 2,
		edit: func(c *upstream.Options) { c.PageSize = 100 }})
	pages := pagesPerRefresh(f.want, 100) // 6 partitions of 416-417: 5 pages each
	if pages != 30 {
		t.Fatalf("expected 30 pages, computed %d", pages)
	}

	f.refresh(t)
	if got := f.describeCalls(); got != pages {
		t.Errorf("quiet refresh: %d upstream calls, want %d (one per page)", got, pages)
	}

	// Readers list, page and look up endpoints as fast as they can.
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				v, err := f.st.Current(ctx)
				if err != nil {
					t.Errorf("Current: %v", err)
					return
				}
				page, err := v.List(ctx, snapshot.Query{Limit: 50, Filters: []snapshot.Filter{{Name: "transport-protocol", Values: []string{"udp"}}}})
				if err != nil {
					t.Errorf("List: %v", err)
					return
				}
				if len(page.Endpoints) > 0 {
					if _, err := v.Get(page.Endpoints[0].ID(), "", ""); err != nil {
						t.Errorf("Get: %v", err)
						return
					}
				}
				reads.Add(1)
			}
		})
	}
	f.sim.ResetStats()
	for range 2 {
		f.refresh(t)
	}
	stop()
	wg.Wait()
	if got := f.describeCalls(); got != 2*pages {
		t.Errorf("2 refreshes under %d reads: %d upstream calls, want %d", reads.Load(), got, 2*pages)
	}
	if reads.Load() == 0 {
		t.Error("the readers read nothing: the test did not load the store")
	}
}

// flag is a switchable fault.
type flag struct{ on atomic.Bool }

// failLaterPages answers, while on, every DescribeClientVpnEndpoints request
// of region that continues a listing (carries a NextToken) with
// InternalError: the listing fails mid-way, after its first page.
func (fl *flag) failLaterPages(region string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			form, err := awstest.PeekForm(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if fl.on.Load() && ec2query.SigningRegion(r) == region && form.Get("NextToken") != "" {
				_ = ec2query.WriteError(w, "test-request", ec2query.InternalError())
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// changeOne modifies the first endpoint (in id order) of a partition in the
// sim and returns its new version.
func changeOne(t *testing.T, sim *ec2sim.Server, account, region, description string) *clientvpnv1.ClientVpnEndpoint {
	t.Helper()
	eps := sim.Endpoints(account, region)
	if len(eps) == 0 {
		t.Fatalf("no endpoint in %s/%s", account, region)
	}
	e := eps[0]
	e.Description = proto.String(description)
	if err := sim.Put(proto.CloneOf(e)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return e
}

// TestPageFailingMidListingKeepsThePartitionsPreviousData: the first page
// of a partition reads (with a change in it), the second fails; the
// partition keeps exactly its previous data, marked stale, and the change
// seen on the first page is not published.
func TestPageFailingMidListingKeepsThePartitionsPreviousData(t *testing.T) {
	var fault flag
	f := newFixture(t, fixtureOptions{count: 600, regions: regions[:2], accounts: 1,
		wrap: fault.failLaterPages("us-east-1"),
		edit: func(c *upstream.Options) { c.PageSize = 50 }})
	first := f.refresh(t)
	before := partitionOf(t, first.Snapshot, mainAccount, "us-east-1")

	fault.on.Store(true)
	changeOne(t, f.sim, mainAccount, "us-east-1", "changed; on the first page")
	fresh := changeOne(t, f.sim, mainAccount, "eu-west-1", "changed in a healthy region")
	v := f.refresh(t)

	sameEndpoints(t, "failed partition", partitionOf(t, v.Snapshot, mainAccount, "us-east-1"), before)
	p := partitionState(t, v.Snapshot, mainAccount, "us-east-1")
	if !p.Stale || !strings.Contains(p.Error, "InternalError") || !p.RefreshedAt.Equal(partitionState(t, first.Snapshot, mainAccount, "us-east-1").RefreshedAt) {
		t.Errorf("failed partition = %+v, want stale with the InternalError and the first refresh's time", p)
	}
	if got, err := v.Get(fresh.GetClientVpnEndpointId(), "eu-west-1", mainAccount); err != nil || !proto.Equal(endpointtest.Messages(t, slices.Values([]*snapshot.Endpoint{got}))[0], fresh) {
		t.Errorf("healthy region's change not published: %v, %v", got, err)
	}
	if p := partitionState(t, v.Snapshot, mainAccount, "eu-west-1"); p.Stale {
		t.Errorf("healthy partition marked stale: %+v", p)
	}

	fault.on.Store(false)
	v = f.refresh(t)
	sameEndpoints(t, "recovered partition", partitionOf(t, v.Snapshot, mainAccount, "us-east-1"), f.sim.Endpoints(mainAccount, "us-east-1"))
	if v.Stale() {
		t.Errorf("still stale after recovery: %+v", v.Partitions)
	}
}

// TestPageFailingMidListingOnFirstRefreshPublishesNothing: with no earlier
// data to keep, a partial read is never published.
func TestPageFailingMidListingOnFirstRefreshPublishesNothing(t *testing.T) {
	var fault flag
	fault.on.Store(true)
	f := newFixture(t, fixtureOptions{count: 300, regions: regions[:2], accounts: 1,
		wrap: fault.failLaterPages("us-east-1"),
		edit: func(c *upstream.Options) { c.PageSize = 50 }})
	if err := f.r.RefreshNow(t.Context()); err == nil || !strings.Contains(err.Error(), mainAccount+"/us-east-1") {
		t.Errorf("RefreshNow = %v, want an error naming the partition", err)
	}
	if _, err := f.st.Current(t.Context()); err == nil {
		t.Error("a snapshot was published from a partial read")
	}
}

// useBurst spends the throttle bucket of the sim's default partition
// (DefaultAccount in us-east-1, which unsigned requests address) with 100
// concurrent calls, as other clients of the same account and region do in
// AWS, where the bucket is shared by every caller; then it resets the sim's
// counters. This keeps throttling certain however slowly the test runs.
func useBurst(t *testing.T, f *fixture) {
	t.Helper()
	awstest.SpendBurst(t, f.url, 100)
	f.sim.ResetStats()
}

// TestThrottledRefreshCompletes: with EC2's throttle burst (100) spent by
// other callers, part of the refresh's calls are refused; the SDK's retries
// still complete it. The refill is a quarter of EC2's (5/s, not 20/s): at
// 20/s, a refresh slowed by a busy machine to 0.75 s got all its 15 calls
// from the refill and was never throttled.
func TestThrottledRefreshCompletes(t *testing.T) {
	throttle := ec2sim.AWSThrottle()
	throttle.PerSecond = 5
	f := newFixture(t, fixtureOptions{count: 75, regions: []string{ec2sim.DefaultRegion}, accounts: 1,
		sim: ec2sim.Options{Throttle: throttle},
		edit: func(c *upstream.Options) {
			c.PageSize = 5 // 15 pages
			c.MaxAttempts, c.MaxBackoff = 10, time.Second
		}})
	useBurst(t, f)
	v := f.refresh(t)
	sameEndpoints(t, "throttled refresh", endpointtest.Messages(t, v.All()), f.want)
	st := f.sim.Stats()
	if st.Throttled == 0 {
		t.Fatal("the sim throttled nothing: the test did not exercise throttling")
	}
	if ps := f.src.Stats()[0]; ps.Throttles != uint64(st.Throttled) || ps.Pages != 15 {
		t.Errorf("source stats %+v, want %d throttles (as the sim counted) and 15 pages", ps, st.Throttled)
	}
}

// TestRegionDownKeepsOthersFresh: a region answering 503 keeps its last
// good data, marked stale, in both accounts; every other partition
// publishes its new data.
func TestRegionDownKeepsOthersFresh(t *testing.T) {
	f := newFixture(t, fixtureOptions{count: 600, regions: regions, accounts: 2})
	first := f.refresh(t)
	down := "ap-southeast-2"
	before := map[string][]*clientvpnv1.ClientVpnEndpoint{}
	for _, a := range []string{mainAccount, roleAccount} {
		before[a] = partitionOf(t, first.Snapshot, a, down)
	}

	f.sim.SetRegionDown(down, true)
	var changed []string
	for _, a := range []string{mainAccount, roleAccount} {
		for _, r := range regions {
			e := changeOne(t, f.sim, a, r, "changed while "+down+" is down")
			if r != down {
				changed = append(changed, snapshot.Key(e))
			}
		}
	}
	v := f.refresh(t)

	for _, a := range []string{mainAccount, roleAccount} {
		sameEndpoints(t, a+"/"+down+" (down)", partitionOf(t, v.Snapshot, a, down), before[a])
		p := partitionState(t, v.Snapshot, a, down)
		if !p.Stale || !strings.Contains(p.Error, "Unavailable") || p.Endpoints != len(before[a]) {
			t.Errorf("down partition = %+v, want stale, the Unavailable error, %d endpoints", p, len(before[a]))
		}
		for _, r := range regions[:2] {
			sameEndpoints(t, a+"/"+r, partitionOf(t, v.Snapshot, a, r), f.sim.Endpoints(a, r))
			if p := partitionState(t, v.Snapshot, a, r); p.Stale || p.Error != "" {
				t.Errorf("healthy partition = %+v, want fresh", p)
			}
		}
	}
	if !v.Stale() {
		t.Error("View.Stale() = false with a region down")
	}
	// The diff handed to the store names exactly the healthy changes.
	slices.Sort(changed)
	if d := f.rec.lastDiff(); !slices.Equal(d.Modified, changed) || len(d.Added) != 0 || len(d.Deleted) != 0 {
		t.Errorf("diff = %+v, want modified %v only", d, changed)
	}

	f.sim.SetRegionDown(down, false)
	v = f.refresh(t)
	sameEndpoints(t, "after recovery", endpointtest.Messages(t, v.All()), allOf(f.sim))
	if v.Stale() {
		t.Errorf("still stale after the region came back: %+v", v.Partitions)
	}
}

func allOf(sim *ec2sim.Server) []*clientvpnv1.ClientVpnEndpoint {
	var out []*clientvpnv1.ClientVpnEndpoint
	for _, k := range sim.Partitions() {
		out = append(out, sim.Endpoints(k.AccountID, k.Region)...)
	}
	return out
}

// TestRegionWithoutClientVPNIsEmptyNotFailed.
func TestRegionWithoutClientVPNIsEmptyNotFailed(t *testing.T) {
	f := newFixture(t, fixtureOptions{count: 90, regions: regions, accounts: 1,
		sim: ec2sim.Options{UnsupportedRegions: []string{"ap-southeast-2"}}})
	v := f.refresh(t)
	p := partitionState(t, v.Snapshot, mainAccount, "ap-southeast-2")
	if p.Stale || p.Error != "" || p.Endpoints != 0 || p.RefreshedAt.IsZero() {
		t.Errorf("partition without Client VPN = %+v, want fresh and empty", p)
	}
	if v.Len() != 60 {
		t.Errorf("snapshot holds %d endpoints, want the other regions' 60", v.Len())
	}
}
