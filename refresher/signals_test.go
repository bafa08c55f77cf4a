package refresher_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	"github.com/vpnfacade/vpnfacade/internal/logtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// metricValue sums the samples of the counter name whose labels include
// every label=value pair of want.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// signalFixture is a refresher reading ec2sim through the real SDK (with
// wrap around the sim) and publishing to a real Redis, its logs and
// metrics kept.
type signalFixture struct {
	redis *redistest.Server
	reg   *prometheus.Registry
	logs  *logtest.Buffer
	r     *refresher.Refresher
}

func newSignalFixture(t *testing.T, wrap func(http.Handler) http.Handler) *signalFixture {
	t.Helper()
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 200, Seed: 7, Regions: []string{ec2sim.DefaultRegion}, Accounts: []string{mainAccount}})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ec2sim.New(ec2sim.Options{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = sim
	if wrap != nil {
		h = wrap(h)
	}
	hs := startHTTP(t, h)
	f := &signalFixture{redis: redistest.Start(t), reg: prometheus.NewRegistry(), logs: &logtest.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(f.logs, nil))
	src, err := upstream.New(t.Context(), upstream.Options{
		Regions:      []string{ec2sim.DefaultRegion},
		AccountID:    mainAccount,
		BaseEndpoint: hs,
		MaxAttempts:  1,
		Logger:       logger.With("component", "upstream"),
		Registerer:   f.reg,
		LoadOptions: []func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		},
	})
	if err != nil {
		t.Fatalf("upstream.New: %v", err)
	}
	st := storetest.Redis(t, f.redis.URL(), "signals")
	f.r, err = refresher.New(src, st, refresher.Options{
		Registerer: f.reg,
		Logger:     logger.With("component", "refresher"),
		Interval:   50 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRefreshOnOutOfMemoryRedisNamesIt: a publish refused by Redis at
// maxmemory is logged and counted as an out-of-memory store, not as an
// unreachable one, nor as an upstream failure.
func TestRefreshOnOutOfMemoryRedisNamesIt(t *testing.T) {
	f := newSignalFixture(t, nil)
	if err := f.r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if err := storetest.RawClient(t, f.redis.URL()).ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(t, f.reg, "vpnfacade_refresh_failures_total", map[string]string{"cause": "store_out_of_memory"}) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no out-of-memory refresh failure counted within 20s; log:\n%s", f.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	out := f.logs.String()
	if !strings.Contains(out, `"cause":"store_out_of_memory"`) || !strings.Contains(out, "out of memory") || strings.Contains(out, "cannot be reached") {
		t.Errorf("log while Redis is out of memory:\n%s\nwant refresh failures naming out of memory, not an unreachable store", out)
	}
	for _, cause := range []string{refresher.CauseStore, refresher.CauseUpstream} {
		if n := metricValue(t, f.reg, "vpnfacade_refresh_failures_total", map[string]string{"cause": cause}); n != 0 {
			t.Errorf("refresh failures with cause %s = %v, want 0", cause, n)
		}
	}
}

// TestLeaseLostMidReadIsNoEC2Failure: the refresher's context is cancelled
// (cause: the lease was lost) while EC2 is sending a page. That is not an
// EC2 failure: nothing is logged as one, nor counted in
// vpnfacade_upstream_errors_total or as a failed refresh.
func TestLeaseLostMidReadIsNoEC2Failure(t *testing.T) {
	inBody := make(chan struct{}, 1)
	f := newSignalFixture(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Send the start of a page, then stall until the caller leaves.
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><DescribeClientVpnEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>x</requestId><clientVpnEndpoint>`))
			w.(http.Flusher).Flush()
			select {
			case inBody <- struct{}{}:
			default:
			}
			<-r.Context().Done()
		})
	})
	errLeaseLost := errors.New("lease: the writer lease was lost: taken by another holder")
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	select {
	case <-inBody:
	case <-time.After(20 * time.Second):
		t.Fatal("no EC2 call within 20s")
	}
	cancel(errLeaseLost)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of losing the lease")
	}
	if n := metricValue(t, f.reg, "vpnfacade_upstream_errors_total", nil); n != 0 {
		t.Errorf("vpnfacade_upstream_errors_total = %v after a cancelled read, want 0; log:\n%s", n, f.logs.String())
	}
	if n := metricValue(t, f.reg, "vpnfacade_refresh_failures_total", nil); n != 0 {
		t.Errorf("vpnfacade_refresh_failures_total = %v after a cancelled read, want 0", n)
	}
	if out := f.logs.String(); strings.Contains(out, "EC2 call failed") || strings.Contains(out, "refresh failed") || strings.Contains(out, "partition read failed") {
		t.Errorf("a cancelled read was logged as a failure:\n%s", out)
	}
}

// startHTTP serves h on a loopback port until the test ends and returns
// its URL.
func startHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
