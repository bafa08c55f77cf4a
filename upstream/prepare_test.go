package upstream_test

import (
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	"github.com/vpnfacade/vpnfacade/internal/awstest"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// countingServer serves nothing but counts the HTTP requests it receives.
func countingServer(t *testing.T) (url string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "not here", http.StatusServiceUnavailable)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String(), requests
}

// TestNewCallsNothing builds Sources the way the command does, with the
// whole default credential chain (instance metadata included, pointed at a
// counting server) and no account id, and checks that nothing was called:
// neither EC2, STS nor the instance metadata service.
func TestNewCallsNothing(t *testing.T) {
	awstest.Isolate(t)
	aws, awsCalls := countingServer(t)
	imds, imdsCalls := countingServer(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds)
	t.Setenv("AWS_ENDPOINT_URL_EC2", aws)
	t.Setenv("AWS_ENDPOINT_URL_STS", aws)
	t.Setenv("AWS_REGION", "eu-west-1")

	for _, cfg := range []upstream.Options{
		{},
		{Regions: regions, RoleARNs: []string{roleARN}},
		{Regions: regions, RoleARNs: []string{roleARN}, SkipDefaultAccount: true},
	} {
		src, err := upstream.New(t.Context(), cfg)
		if err != nil {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
		for range src.Partitions() {
		}
		_ = src.Stats()
	}
	if n, m := awsCalls.Load(), imdsCalls.Load(); n != 0 || m != 0 {
		t.Errorf("New made %d calls to AWS and %d to the instance metadata service, want none", n, m)
	}
}

// TestPrepareLearnsTheDefaultAccountLazily: without an account id, the
// default account's partitions appear only once Prepare reached STS; while
// STS is unreachable Prepare fails, naming the regions it is needed for,
// and the role's partitions are readable all along. Once it succeeded,
// Prepare calls STS no more.
func TestPrepareLearnsTheDefaultAccountLazily(t *testing.T) {
	awstest.Isolate(t)
	sim, want := newSim(t, 90, ec2sim.Options{})
	// An address nothing listens on yet: calls are refused, as when STS is
	// unreachable.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	src := newSource(t, simConfig("http://"+addr))

	keys := func() []string {
		var out []string
		for account, region := range src.Partitions() {
			out = append(out, account+"/"+region)
		}
		return out
	}
	roleOnly := []string{roleAccount + "/eu-west-1", roleAccount + "/us-east-1", roleAccount + "/ap-southeast-2"}
	if got := keys(); !slices.Equal(got, roleOnly) {
		t.Errorf("partitions before Prepare = %v, want only the role's %v", got, roleOnly)
	}
	if _, err := src.Read(t.Context(), mainAccount, "eu-west-1"); vpnfacade.ErrorCodeOf(err) != vpnfacade.ENOTFOUND {
		t.Errorf("Read of the default account before Prepare = %v, want ENOTFOUND", err)
	}

	err = src.Prepare(t.Context())
	if err == nil {
		t.Fatal("Prepare succeeded with STS unreachable")
	}
	for _, s := range []string{"GetCallerIdentity", "eu-west-1, us-east-1, ap-southeast-2", "connection refused"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Prepare's error %q does not mention %q", err, s)
		}
	}
	if got := keys(); !slices.Equal(got, roleOnly) {
		t.Errorf("partitions after a failed Prepare = %v, want %v", got, roleOnly)
	}

	// STS comes back on the same address.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	for range 3 {
		if err := src.Prepare(t.Context()); err != nil {
			t.Fatalf("Prepare with STS back: %v", err)
		}
	}
	wantKeys := append([]string{mainAccount + "/eu-west-1", mainAccount + "/us-east-1", mainAccount + "/ap-southeast-2"}, roleOnly...)
	if got := keys(); !slices.Equal(got, wantKeys) {
		t.Errorf("partitions after Prepare = %v, want %v", got, wantKeys)
	}
	got, err := src.Read(t.Context(), mainAccount, "us-east-1")
	if n := len(inPartition(want, mainAccount, "us-east-1")); err != nil || len(got) != n {
		t.Errorf("Read of the default account = %d endpoints, %v; want %d", len(got), err, n)
	}
	if n := sim.Stats().ByAction[ec2sim.ActionGetCallerIdentity]; n != 1 {
		t.Errorf("GetCallerIdentity reached the sim %d times, want 1 (the first Prepare with STS up)", n)
	}
}

// TestPrepareWithTheAccountConfiguredCallsNothing: with the account id
// given, or the default account skipped, Prepare is a no-op.
func TestPrepareWithTheAccountConfiguredCallsNothing(t *testing.T) {
	awstest.Isolate(t)
	aws, calls := countingServer(t)
	for _, edit := range []func(*upstream.Options){
		func(c *upstream.Options) { c.AccountID = mainAccount },
		func(c *upstream.Options) { c.SkipDefaultAccount = true },
	} {
		cfg := simConfig(aws)
		edit(&cfg)
		src := newSource(t, cfg)
		if err := src.Prepare(t.Context()); err != nil {
			t.Errorf("Prepare: %v", err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("Prepare made %d calls, want none", n)
	}
}

// TestPrepareRefusesAnAccountThatIsAlsoARole: the default credentials'
// account, once learned, may not be one of the roles' too.
func TestPrepareRefusesAnAccountThatIsAlsoARole(t *testing.T) {
	awstest.Isolate(t)
	sim, _ := newSim(t, 0, ec2sim.Options{})
	cfg := simConfig(startSim(t, sim, nil))
	cfg.RoleARNs = []string{"arn:aws:iam::" + mainAccount + ":role/self"}
	src := newSource(t, cfg)
	err := src.Prepare(t.Context())
	if vpnfacade.ErrorCodeOf(err) != vpnfacade.EINVALID || !strings.Contains(err.Error(), "configured twice") {
		t.Errorf("Prepare = %v, want EINVALID: account configured twice", err)
	}
}

// TestConfigCheckers: the checks the command runs on its flags before
// anything else, with messages that quote at most 64 characters of input.
func TestConfigCheckers(t *testing.T) {
	for _, r := range []string{"eu-west-1", "us-gov-west-1", "cn-north-1", "eu-isoe-west-1"} {
		if err := upstream.CheckRegion(r); err != nil {
			t.Errorf("CheckRegion(%q) = %v", r, err)
		}
	}
	long := strings.Repeat("x", 300)
	for _, r := range []string{"", "Ireland", "eu-west", "EU-WEST-1", "eu_west_1", long} {
		err := upstream.CheckRegion(r)
		var verr *vpnfacade.Error
		if !errors.As(err, &verr) || verr.Field != "regions" || strings.Contains(err.Error(), strings.Repeat("x", 65)) {
			t.Errorf("CheckRegion(%.70q) = %v, want an error naming regions and quoting at most 64 characters", r, err)
		}
	}
	if err := upstream.CheckAccountID("123456789012"); err != nil {
		t.Errorf("CheckAccountID of 12 digits = %v", err)
	}
	for _, id := range []string{"", "12345678901", "1234567890123", "12345678901a", long} {
		err := upstream.CheckAccountID(id)
		var verr *vpnfacade.Error
		if !errors.As(err, &verr) || verr.Field != "account_id" || strings.Contains(err.Error(), strings.Repeat("x", 65)) {
			t.Errorf("CheckAccountID(%.70q) = %v, want an error naming account_id and quoting at most 64 characters", id, err)
		}
	}
	for _, a := range []string{"arn:aws:iam::123456789012:role/reader", "arn:aws-us-gov:iam::123456789012:role/path/to/reader"} {
		if _, err := upstream.ParseRoleARN(a); err != nil {
			t.Errorf("ParseRoleARN(%q) = %v", a, err)
		}
	}
	for _, a := range []string{
		"", "reader", "arn:aws:iam::123456789012:user/bob", "arn:aws:sts::123456789012:role/reader",
		"arn:aws:iam:eu-west-1:123456789012:role/reader", "arn:aws:iam::1234:role/reader",
		"arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:role/path/", "arn::iam::123456789012:role/r",
		"arn:aws:iam::123456789012:role/" + long,
	} {
		_, err := upstream.ParseRoleARN(a)
		var ve *vpnfacade.Error
		if !errors.As(err, &ve) || ve.Field != "role_arns" || strings.Contains(ve.Message, strings.Repeat("x", 65)) {
			t.Errorf("ParseRoleARN(%.70q) = %v, want an error naming role_arns and quoting at most 64 characters", a, err)
		}
	}
}
