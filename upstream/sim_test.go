package upstream_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/awstest"
	"github.com/vpnfacade/vpnfacade/upstream"
)

const (
	// mainAccount is the account of the static test credentials (the sim's
	// default account); roleAccount is reached through AssumeRole.
	mainAccount = ec2sim.DefaultAccount
	roleAccount = "222222222222"
	roleARN     = "arn:aws:iam::" + roleAccount + ":role/vpnfacade-reader"
)

var regions = []string{"eu-west-1", "us-east-1", "ap-southeast-2"}

// startSim serves sim on a loopback port, through wrap when it is not nil.
func startSim(t *testing.T, sim *ec2sim.Server, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(sim)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newSim returns a sim holding n generated endpoints spread over both
// accounts and every region, and the generated data.
func newSim(t *testing.T, n int, opts ec2sim.Options) (*ec2sim.Server, []*clientvpnv1.ClientVpnEndpoint) {
	t.Helper()
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: n, Seed: 42, Regions: regions, Accounts: []string{mainAccount, roleAccount}})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	want := make([]*clientvpnv1.ClientVpnEndpoint, len(eps))
	for i, e := range eps {
		want[i] = proto.CloneOf(e)
	}
	opts.Endpoints = eps
	sim, err := ec2sim.New(opts)
	if err != nil {
		t.Fatalf("ec2sim.New: %v", err)
	}
	return sim, want
}

// simConfig returns an Options reading every region of both accounts from the
// sim at url with static credentials; fast retries keep fault tests short.
func simConfig(url string) upstream.Options {
	return upstream.Options{
		Regions:      regions,
		RoleARNs:     []string{roleARN},
		BaseEndpoint: url,
		MaxAttempts:  3,
		MaxBackoff:   20 * time.Millisecond,
		LoadOptions: []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		},
	}
}

func newSource(t *testing.T, cfg upstream.Options) *upstream.Source {
	t.Helper()
	src, err := upstream.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	return src
}

func byID(eps []*clientvpnv1.ClientVpnEndpoint) []*clientvpnv1.ClientVpnEndpoint {
	eps = slices.Clone(eps)
	slices.SortFunc(eps, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
		return cmp.Compare(a.GetClientVpnEndpointId(), b.GetClientVpnEndpointId())
	})
	return eps
}

func inPartition(eps []*clientvpnv1.ClientVpnEndpoint, account, region string) []*clientvpnv1.ClientVpnEndpoint {
	var out []*clientvpnv1.ClientVpnEndpoint
	for _, e := range eps {
		if e.GetAccountId() == account && e.GetRegion() == region {
			out = append(out, e)
		}
	}
	return out
}

// TestReadsEveryEndpointFieldForField reads 2,500 generated endpoints over
// 3 regions and 2 accounts, one reached by assuming a role through the
// sim's STS, and compares each with the generator's with proto.Equal.
// Nothing is normalised: the EC2 wire carries every field the contract has
// (absent and empty lists are one state in proto3 already, and the parsed
// times are recomputed from the verbatim strings on both sides).
func TestReadsEveryEndpointFieldForField(t *testing.T) {
	awstest.Isolate(t)
	sim, want := newSim(t, 2500, ec2sim.Options{})
	url := startSim(t, sim, nil)
	src := newSource(t, simConfig(url))
	if err := src.Prepare(t.Context()); err != nil {
		t.Fatalf("Prepare: %v", err)
	}

	var parts []string
	total := 0
	for account, region := range src.Partitions() {
		parts = append(parts, account+"/"+region)
		got, err := src.Read(t.Context(), account, region)
		if err != nil {
			t.Fatalf("Read(%s, %s): %v", account, region, err)
		}
		exp := byID(inPartition(want, account, region))
		got = byID(got)
		if len(got) != len(exp) {
			t.Errorf("%s/%s: read %d endpoints, generated %d", account, region, len(got), len(exp))
			continue
		}
		for i := range got {
			if !proto.Equal(got[i], exp[i]) {
				t.Errorf("%s/%s: endpoint %s differs:\n got %v\nwant %v", account, region, exp[i].GetClientVpnEndpointId(), got[i], exp[i])
			}
		}
		total += len(got)
	}
	if total != 2500 {
		t.Errorf("read %d endpoints in all, want 2500", total)
	}
	if len(parts) != 6 || parts[0] != mainAccount+"/eu-west-1" || parts[3] != roleAccount+"/eu-west-1" {
		t.Errorf("partitions = %v, want both accounts (default first) in every region", parts)
	}
	st := sim.Stats()
	if st.ByAction[ec2sim.ActionAssumeRole] != 1 {
		t.Errorf("AssumeRole calls = %d, want 1 (credentials cached across the role's regions)", st.ByAction[ec2sim.ActionAssumeRole])
	}
	if st.ByAction[ec2sim.ActionGetCallerIdentity] != 1 {
		t.Errorf("GetCallerIdentity calls = %d, want 1 (to learn the default account)", st.ByAction[ec2sim.ActionGetCallerIdentity])
	}
}

// TestCallsPerReadAreThePages checks, with the sim's own counters, that a
// read costs one DescribeClientVpnEndpoints call per page and nothing else.
func TestCallsPerReadAreThePages(t *testing.T) {
	awstest.Isolate(t)
	sim, want := newSim(t, 2500, ec2sim.Options{})
	url := startSim(t, sim, nil)
	cfg := simConfig(url)
	cfg.AccountID = mainAccount // no GetCallerIdentity
	cfg.PageSize = 100
	src := newSource(t, cfg)

	for account, region := range src.Partitions() {
		sim.ResetStats()
		eps, err := src.Read(t.Context(), account, region)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		n := len(inPartition(want, account, region))
		pages := int64((n + 99) / 100)
		key := ec2sim.PartitionKey{AccountID: account, Region: region}
		if len(eps) != n || sim.Stats().ByPartition[key] != pages {
			t.Errorf("%s: read %d endpoints in %d calls, want %d in %d", key, len(eps), sim.Stats().ByPartition[key], n, pages)
		}
		if st := src.Partition(account, region).Stats(); st.Pages != uint64(pages) || st.Calls != uint64(pages) || st.Errors != 0 || st.Throttles != 0 {
			t.Errorf("%s: source stats %+v, want %d pages and calls, no errors", key, st, pages)
		}
	}
	if got := sim.Stats().ByAction[ec2sim.ActionGetCallerIdentity]; got != 0 {
		t.Errorf("GetCallerIdentity called %d times with the account id configured", got)
	}
}

// useBurst spends the throttle bucket of the sim's default partition
// (DefaultAccount in us-east-1, which unsigned requests address) with 100
// concurrent calls, as other clients of the same account and region do in
// AWS, where the bucket is shared by every caller. It then resets the sim's
// counters. Spending the burst this way keeps throttling certain however
// slowly the test runs (-race), and the test short.
func useBurst(t *testing.T, sim *ec2sim.Server, url string) {
	t.Helper()
	awstest.SpendBurst(t, url, 100)
	sim.ResetStats()
}

// TestThrottledReadCompletesWithRetries reads a partition whose throttle
// bucket (EC2's burst of 100, refilled at 2/s) other callers have spent: the
// retryer waits out the throttle, and the throttles show in the counters and
// the Prometheus registry.
func TestThrottledReadCompletesWithRetries(t *testing.T) {
	for _, mode := range []aws.RetryMode{aws.RetryModeStandard, aws.RetryModeAdaptive} {
		t.Run(string(mode), func(t *testing.T) {
			awstest.Isolate(t)
			const region = ec2sim.DefaultRegion
			eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 75, Seed: 7, Regions: []string{region}})
			if err != nil {
				t.Fatal(err)
			}
			// EC2's burst, refilled slower than EC2's 20/s: on a loaded
			// machine pages may come slower than 20/s and never be throttled.
			sim, err := ec2sim.New(ec2sim.Options{Endpoints: eps, Throttle: ec2sim.Throttle{Burst: 100, PerSecond: 2}})
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			url := startSim(t, sim, nil)
			cfg := simConfig(url)
			cfg.Regions, cfg.RoleARNs, cfg.AccountID = []string{region}, nil, mainAccount
			cfg.PageSize = 15 // 5 pages
			cfg.RetryMode, cfg.MaxAttempts, cfg.MaxBackoff = mode, 10, time.Second
			cfg.Registerer = reg
			src := newSource(t, cfg)
			useBurst(t, sim, url)

			got, err := src.Read(t.Context(), mainAccount, region)
			if err != nil {
				t.Fatalf("Read under throttling: %v", err)
			}
			if len(got) != 75 {
				t.Errorf("read %d endpoints, want 75", len(got))
			}
			simStats := sim.Stats()
			st := src.Partition(mainAccount, region).Stats()
			if simStats.Throttled == 0 {
				t.Fatal("the sim throttled nothing: the test did not exercise throttling")
			}
			if st.Throttles != uint64(simStats.Throttled) || st.Pages != 5 || st.Calls != uint64(simStats.ByAction[ec2query.ActionDescribeClientVpnEndpoints]) {
				t.Errorf("source stats %+v; sim throttled %d of %d calls; want them to agree, with 5 pages",
					st, simStats.Throttled, simStats.ByAction[ec2query.ActionDescribeClientVpnEndpoints])
			}
			metric := `
# HELP vpnfacade_upstream_throttles_total EC2 attempts refused with a throttling error (RequestLimitExceeded, ...), by partition.
# TYPE vpnfacade_upstream_throttles_total counter
vpnfacade_upstream_throttles_total{account="` + mainAccount + `",region="` + region + `"} ` + itoa(simStats.Throttled) + "\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(metric), "vpnfacade_upstream_throttles_total"); err != nil {
				t.Errorf("metrics: %v", err)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRegionWithoutClientVPNReadsEmpty: InvalidAction from a region means
// Client VPN is not offered there; the partition is empty, not failed.
func TestRegionWithoutClientVPNReadsEmpty(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 60, ec2sim.Options{UnsupportedRegions: []string{"ap-southeast-2"}})
	cfg := simConfig(startSim(t, sim, nil))
	cfg.AccountID = mainAccount
	src := newSource(t, cfg)

	got, err := src.Read(t.Context(), roleAccount, "ap-southeast-2")
	if err != nil || len(got) != 0 {
		t.Errorf("Read in a region without Client VPN = %d endpoints, %v; want none and no error", len(got), err)
	}
	if st := src.Partition(roleAccount, "ap-southeast-2").Stats(); st.Errors != 0 || st.Calls != 1 {
		t.Errorf("stats = %+v, want 1 call and no error", st)
	}
	if got, err := src.Read(t.Context(), roleAccount, "eu-west-1"); err != nil || len(got) != 10 {
		t.Errorf("Read in a region with Client VPN = %d endpoints, %v; want 10", len(got), err)
	}
}

// failLaterPages answers every DescribeClientVpnEndpoints request that
// carries a NextToken (every page but the first) in region with
// InternalError, as a service failing mid-listing would.
func failLaterPages(region string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			form, err := awstest.PeekForm(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if ec2query.SigningRegion(r) == region && form.Get("NextToken") != "" {
				_ = ec2query.WriteError(w, "test-request", ec2query.InternalError())
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestPageFailingMidListingFailsTheRead: when a later page fails after the
// retries, the read fails as a whole; the pages before it are discarded.
func TestPageFailingMidListingFailsTheRead(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 600, ec2sim.Options{})
	cfg := simConfig(startSim(t, sim, failLaterPages("us-east-1")))
	cfg.AccountID, cfg.PageSize = mainAccount, 50
	src := newSource(t, cfg)

	got, err := src.Read(t.Context(), mainAccount, "us-east-1")
	if err == nil || got != nil {
		t.Fatalf("Read with a failing second page = %d endpoints, %v; want nothing and an error", len(got), err)
	}
	if !strings.Contains(err.Error(), "page 2") || !strings.Contains(err.Error(), "InternalError") {
		t.Errorf("error %q does not say which page failed and why", err)
	}
	if st := src.Partition(mainAccount, "us-east-1").Stats(); st.Pages != 1 || st.Errors != 3 || st.Calls != 4 {
		t.Errorf("stats = %+v, want 1 page, then 3 failed attempts (of 4 calls)", st)
	}
	if got, err := src.Read(t.Context(), mainAccount, "eu-west-1"); err != nil || len(got) != 100 {
		t.Errorf("another region: %d endpoints, %v; want 100", len(got), err)
	}
}

// TestStandardEnvironmentConfiguresTheSource: with no option of ours but
// the regions, keys and endpoint come from the SDK's standard environment
// variables (AWS_ENDPOINT_URL_EC2 and _STS, AWS_ACCESS_KEY_ID, ...).
func TestStandardEnvironmentConfiguresTheSource(t *testing.T) {
	awstest.Isolate(t)
	sim, want := newSim(t, 120, ec2sim.Options{})
	url := startSim(t, sim, nil)
	t.Setenv("AWS_ENDPOINT_URL_EC2", url)
	t.Setenv("AWS_ENDPOINT_URL_STS", url)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	src := newSource(t, upstream.Options{Regions: []string{"us-east-1"}, RoleARNs: []string{roleARN}})
	if err := src.Prepare(t.Context()); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	n := 0
	for range src.Partitions() {
		n++
	}
	if n != 2 {
		t.Errorf("%d partitions, want the default account's and the role's", n)
	}
	for account, region := range src.Partitions() {
		got, err := src.Read(t.Context(), account, region)
		if n := len(inPartition(want, account, region)); err != nil || len(got) != n {
			t.Errorf("Read(%s, %s) = %d endpoints, %v; want %d", account, region, len(got), err, n)
		}
	}
}

// TestDownRegionFailsAfterRetries: a region answering 503 Unavailable is
// retried by the SDK, then the read fails; the attempts count as errors.
func TestDownRegionFailsAfterRetries(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 60, ec2sim.Options{})
	sim.SetRegionDown("eu-west-1", true)
	cfg := simConfig(startSim(t, sim, nil))
	cfg.AccountID = mainAccount
	src := newSource(t, cfg)

	_, err := src.Read(t.Context(), mainAccount, "eu-west-1")
	if err == nil {
		t.Fatal("Read in a down region succeeded")
	}
	if st := src.Partition(mainAccount, "eu-west-1").Stats(); st.Calls != 3 || st.Errors+st.Throttles != 3 || st.Pages != 0 {
		t.Errorf("stats = %+v, want 3 failed attempts", st)
	}
}

func TestReadUnknownPartition(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 0, ec2sim.Options{})
	cfg := simConfig(startSim(t, sim, nil))
	cfg.AccountID = mainAccount
	src := newSource(t, cfg)
	if _, err := src.Read(t.Context(), "999999999999", "eu-west-1"); vpnfacade.ErrorCodeOf(err) != vpnfacade.ENOTFOUND {
		t.Errorf("Read of an unconfigured partition = %v, want ENOTFOUND", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	awstest.Isolate(t)
	ok := upstream.Options{Regions: []string{"eu-west-1"}, AccountID: mainAccount}
	for _, c := range []struct {
		field string
		edit  func(*upstream.Options)
	}{
		{"regions", func(c *upstream.Options) { c.Regions = nil }},
		{"regions", func(c *upstream.Options) { c.Regions = []string{"Ireland"} }},
		{"regions", func(c *upstream.Options) { c.Regions = []string{"eu-west-1", "eu-west-1"} }},
		{"account_id", func(c *upstream.Options) { c.AccountID = "12345" }},
		{"role_arns", func(c *upstream.Options) { c.RoleARNs = []string{"arn:aws:iam::123456789012:user/bob"} }},
		{"role_arns", func(c *upstream.Options) { c.RoleARNs = []string{"not an arn"} }},
		{"role_arns", func(c *upstream.Options) { c.RoleARNs = []string{"arn:aws:iam::" + mainAccount + ":role/x"} }},
		{"role_arns", func(c *upstream.Options) { c.SkipDefaultAccount = true }},
		{"retry_mode", func(c *upstream.Options) { c.RetryMode = "eager" }},
		{"max_attempts", func(c *upstream.Options) { c.MaxAttempts = -1 }},
		{"max_backoff", func(c *upstream.Options) { c.MaxBackoff = -time.Second }},
		{"page_size", func(c *upstream.Options) { c.PageSize = 4 }},
		{"page_size", func(c *upstream.Options) { c.PageSize = 1001 }},
	} {
		cfg := ok
		c.edit(&cfg)
		_, err := upstream.New(t.Context(), cfg)
		var verr *vpnfacade.Error
		if !errors.As(err, &verr) || verr.Code != vpnfacade.EINVALID || verr.Field != c.field {
			t.Errorf("New(%+v) = %v, want EINVALID naming %s", cfg, err, c.field)
		}
	}
}

// TestSkipDefaultAccountReadsOnlyRoles.
func TestSkipDefaultAccountReadsOnlyRoles(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 0, ec2sim.Options{})
	cfg := simConfig(startSim(t, sim, nil))
	cfg.SkipDefaultAccount = true
	src := newSource(t, cfg)
	for account := range src.Partitions() {
		if account != roleAccount {
			t.Errorf("partition of account %s read with the default account skipped", account)
		}
	}
	if n := sim.Stats().ByAction[ec2sim.ActionGetCallerIdentity]; n != 0 {
		t.Errorf("GetCallerIdentity called %d times for a skipped account", n)
	}
}

// TestCancelStopsRead: a cancelled context ends a read at once, even in the
// middle of the sim's latency.
func TestCancelStopsRead(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 60, ec2sim.Options{Latency: time.Hour})
	cfg := simConfig(startSim(t, sim, nil))
	cfg.AccountID = mainAccount
	src := newSource(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := src.Read(ctx, mainAccount, "eu-west-1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read with an expiring context = %v, want DeadlineExceeded", err)
	}
}

// repeatToken makes the sim answer every continuation request with the
// token it was sent, as a broken service paging in a loop would.
func repeatToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, err := awstest.PeekForm(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sent := form.Get("NextToken")
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		out := rec.Body.Bytes()
		if sent != "" {
			start, end := bytes.Index(out, []byte("<nextToken>")), bytes.Index(out, []byte("</nextToken>"))
			if start >= 0 && end > start {
				out = slices.Concat(out[:start+len("<nextToken>")], []byte(sent), out[end:])
			}
		}
		maps.Copy(w.Header(), rec.Header())
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(out)
	})
}

// TestRepeatedNextTokenFailsTheRead: the paginator stops on a repeated
// token; the read must then fail rather than return a truncated listing.
func TestRepeatedNextTokenFailsTheRead(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 600, ec2sim.Options{})
	cfg := simConfig(startSim(t, sim, repeatToken))
	cfg.AccountID, cfg.PageSize = mainAccount, 20
	src := newSource(t, cfg)

	got, err := src.Read(t.Context(), mainAccount, "eu-west-1")
	if err == nil || got != nil || !strings.Contains(err.Error(), "same next token") {
		t.Fatalf("Read with a repeating token = %d endpoints, %v; want nothing and an error about the token", len(got), err)
	}
	if n := sim.Stats().ByAction[ec2query.ActionDescribeClientVpnEndpoints]; n != 2 {
		t.Errorf("%d calls, want 2 (the first page and the one repeating its token)", n)
	}
}
