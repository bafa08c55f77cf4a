package main_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/otlptest"
	"github.com/vpnfacade/vpnfacade/internal/proctest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

// TestTraces runs the binary with an OTLP/HTTP exporter pointed at a
// receiver on loopback, and finds the spans of the first refresh (its
// partitions, their pages and its Redis commands), of a List call and of an
// EC2-compatible call, each continuing the traceparent its client sent;
// log lines written within a span carry its ids.
func TestTraces(t *testing.T) {
	t.Parallel()
	recv := otlptest.NewHTTP(t)
	const password = "trace-secret-3f9a"
	redis := redistest.Start(t, "--requirepass", password)
	s := startSim(t, 2500, ec2sim.Options{}) // two pages in each region
	args := []string{
		"--listen", "127.0.0.1:0",
		"--regions", strings.Join(e2eRegions, ","),
		"--account-id", e2eAccount,
		"--refresh-interval", "1h",
		"--log-format", "json",
		"--redis-url", "redis://:" + password + "@" + redis.Addr(),
	}
	env := []string{
		"AWS_ENDPOINT_URL_EC2=" + s.url,
		"AWS_ENDPOINT_URL_STS=" + s.url,
		"AWS_ACCESS_KEY_ID=e2e", "AWS_SECRET_ACCESS_KEY=e2e", "AWS_REGION=" + e2eRegions[0],
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + recv.URL,
		"OTEL_BSP_SCHEDULE_DELAY=50", // milliseconds: spans reach the receiver at once
	}
	p, m := proctest.Start(t, facadeBinary(t), args, env, listeningLine, 30*time.Second)
	f := &facade{proc: p, url: m[1]}
	waitServing(t, f.url)

	const (
		listTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		listSpan  = "00f067aa0ba902b7"
		ec2Trace  = "0af7651916cd43dd8448eb211c80319c"
		ec2Span   = "b7ad6b7169203331"
	)
	client := clientvpnv1connect.NewClientVpnServiceClient(
		&http.Client{Transport: traceparent{"00-" + listTrace + "-" + listSpan + "-01", h2cClient().Transport}}, f.url, connect.WithGRPC())
	if _, err := client.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 10}); err != nil {
		t.Fatal(err)
	}
	// A hostile traceparent (malformed, 16 KiB) is ignored: the call
	// succeeds in a trace of its own.
	hostile := clientvpnv1connect.NewClientVpnServiceClient(
		&http.Client{Transport: traceparent{"00-" + strings.Repeat("f", 16<<10) + "-01", h2cClient().Transport}}, f.url, connect.WithGRPC())
	if _, err := hostile.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 10}); err != nil {
		t.Fatalf("List with a malformed traceparent: %v", err)
	}
	form := url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("traceparent", "00-"+ec2Trace+"-"+ec2Span+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()

	var refresh otlptest.Span
	find := func(spans []otlptest.Span, ok func(otlptest.Span) bool) (found []otlptest.Span) {
		for _, s := range spans {
			if ok(s) {
				found = append(found, s)
			}
		}
		return found
	}
	isList := func(s otlptest.Span) bool {
		return strings.HasSuffix(s.Name, "/ListClientVpnEndpoints") && s.Kind == "SPAN_KIND_SERVER"
	}
	isEC2 := func(s otlptest.Span) bool {
		return s.Name == "EC2/DescribeClientVpnEndpoints" && s.Kind == "SPAN_KIND_SERVER"
	}
	spans := recv.WaitFor(t, "the spans of a refresh, a List and an EC2 call", time.Minute, func(spans []otlptest.Span) bool {
		refreshes := find(spans, func(s otlptest.Span) bool { return s.Name == "refresh" })
		if len(refreshes) == 0 {
			return false
		}
		refresh = refreshes[0]
		pages := find(spans, func(s otlptest.Span) bool {
			return s.Name == "EC2/DescribeClientVpnEndpoints" && s.Kind == "SPAN_KIND_CLIENT" && s.TraceID == refresh.TraceID
		})
		return len(pages) >= 4 && len(find(spans, isList)) >= 2 && len(find(spans, isEC2)) > 0
	})
	if err := f.Stop(15 * time.Second); err != nil {
		t.Errorf("vpnfacade did not shut down cleanly: %v", err)
	}
	spans = append(spans[:0:0], recv.Spans()...) // with those sent at shutdown

	// The refresh: a root span, one child per partition, the pages below
	// them, the Redis commands of the publish in the same trace.
	if refresh.ParentSpanID != "" || refresh.Service != "vpnfacade" || refresh.Error {
		t.Errorf("refresh span = %+v, want a successful root span of service vpnfacade", refresh)
	}
	partitions := find(spans, func(s otlptest.Span) bool { return s.Name == "read partition" && s.TraceID == refresh.TraceID })
	if len(partitions) != len(e2eRegions) {
		t.Fatalf("%d partition spans in the refresh's trace, want %d", len(partitions), len(e2eRegions))
	}
	partitionIDs := map[string]string{}
	for _, p := range partitions {
		if p.ParentSpanID != refresh.SpanID || p.Attributes["cloud.account.id"] != e2eAccount {
			t.Errorf("partition span %+v is not a child of the refresh for account %s", p, e2eAccount)
		}
		partitionIDs[p.SpanID] = p.Attributes["cloud.region"]
	}
	pagesPerRegion := map[string]int{}
	for _, pg := range find(spans, func(s otlptest.Span) bool {
		return s.Name == "EC2/DescribeClientVpnEndpoints" && s.Kind == "SPAN_KIND_CLIENT"
	}) {
		region, ok := partitionIDs[pg.ParentSpanID]
		if !ok || pg.TraceID != refresh.TraceID || pg.Attributes["cloud.region"] != region {
			t.Errorf("page span %+v is not a child of its partition's span", pg)
		}
		pagesPerRegion[region]++
	}
	served := s.Stats().ByAction["DescribeClientVpnEndpoints"]
	if total := pagesPerRegion[e2eRegions[0]] + pagesPerRegion[e2eRegions[1]]; int64(total) != served || pagesPerRegion[e2eRegions[0]] < 2 || pagesPerRegion[e2eRegions[1]] < 2 {
		t.Errorf("page spans per region %v, the emulator served %d pages; want one span per page, at least two per region", pagesPerRegion, served)
	}
	redisSpans := find(spans, func(s otlptest.Span) bool { return s.Scope == "github.com/redis/go-redis/extra/redisotel" })
	inRefresh := find(redisSpans, func(s otlptest.Span) bool { return s.TraceID == refresh.TraceID })
	if len(inRefresh) == 0 {
		t.Errorf("no Redis command span in the refresh's trace (%d Redis spans in all)", len(redisSpans))
	}
	for _, r := range redisSpans {
		if r.ParentSpanID == "" {
			t.Errorf("Redis command %s traced outside any span", r.Name)
		}
	}

	// The calls continue their clients' traces.
	for _, c := range []struct {
		what, trace, parent string
		spans               []otlptest.Span
	}{
		{"List", listTrace, listSpan, find(spans, func(s otlptest.Span) bool { return isList(s) && s.ParentSpanID != "" })},
		{"EC2", ec2Trace, ec2Span, find(spans, isEC2)},
	} {
		if len(c.spans) != 1 || c.spans[0].TraceID != c.trace || c.spans[0].ParentSpanID != c.parent {
			t.Errorf("%s server spans %+v, want one in trace %s with parent %s", c.what, c.spans, c.trace, c.parent)
		}
	}

	if roots := find(spans, func(s otlptest.Span) bool { return isList(s) && s.ParentSpanID == "" }); len(roots) != 1 || roots[0].TraceID == listTrace {
		t.Errorf("List spans without a parent %+v, want the one of the malformed traceparent's call, in a new trace", roots)
	}

	// Nothing secret in any span.
	for _, s := range spans {
		for k, v := range s.Attributes {
			if strings.Contains(v, password) {
				t.Errorf("span %s attribute %s holds the Redis password", s.Name, k)
			}
		}
	}

	// Log lines within a span carry its ids.
	published := false
	for line := range strings.Lines(f.Output()) {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Errorf("a log line is not JSON (%v): %s", err, line)
			continue
		}
		if l["msg"] == "snapshot published" {
			published = true
			if l["trace_id"] != refresh.TraceID || l["span_id"] != refresh.SpanID {
				t.Errorf("log line %q has trace_id %v span_id %v, want the refresh's %s %s", l["msg"], l["trace_id"], l["span_id"], refresh.TraceID, refresh.SpanID)
			}
		}
		if l["msg"] == "vpnfacade listening" {
			if _, ok := l["trace_id"]; ok {
				t.Errorf("log line outside any span has a trace id: %s", line)
			}
		}
	}
	if !published {
		t.Errorf("no snapshot published line in:\n%s", f.Output())
	}
}

// traceparent is a transport sending a fixed W3C traceparent, as a traced
// client does.
type traceparent struct {
	value string
	next  http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (tp traceparent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", tp.value)
	return tp.next.RoundTrip(r)
}
