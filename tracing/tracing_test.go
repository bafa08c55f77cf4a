package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/vpnfacade/vpnfacade/internal/otlptest"
	"github.com/vpnfacade/vpnfacade/tracing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestOffUnlessAnExporterIsConfigured(t *testing.T) {
	for _, e := range []map[string]string{
		{},
		{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"},
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
	} {
		tr, err := tracing.FromEnv(t.Context(), env(e))
		if err != nil {
			t.Fatalf("FromEnv(%v): %v", e, err)
		}
		if tr.Enabled() || tr.TracerProvider != nil {
			t.Errorf("FromEnv(%v) turned tracing on (%s)", e, tr.Exporter)
		}
		if err := tr.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown of tracing that is off: %v", err)
		}
	}
}

func TestUnsupportedSettingsNameTheVariable(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_TRACES_EXPORTER": strings.Repeat("z", 10000)}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/nonexistent/key.pem"}, "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
	} {
		_, err := tracing.FromEnv(t.Context(), env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 200 {
			t.Errorf("FromEnv(%.80v) = %v, want a short error naming %s", c.env, err, c.want)
		}
	}
}

// exportOne starts and ends a parent and a child span with tracing
// configured by e, then shuts it down (which sends them).
func exportOne(t *testing.T, e map[string]string) (parent, child trace.SpanContext) {
	t.Helper()
	tr, err := tracing.FromEnv(t.Context(), env(e))
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled() {
		t.Fatalf("FromEnv(%v) left tracing off", e)
	}
	ctx, p := tracing.Tracer(tr.TracerProvider, "test").Start(t.Context(), "parent")
	_, c := tracing.Tracer(tr.TracerProvider, "test").Start(ctx, "child")
	c.End()
	p.End()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return p.SpanContext(), c.SpanContext()
}

func checkExported(t *testing.T, r *otlptest.Receiver, service string, parent, child trace.SpanContext) {
	t.Helper()
	spans := r.Spans()
	if len(spans) != 2 {
		t.Fatalf("received %d spans, want 2: %+v", len(spans), spans)
	}
	for _, s := range spans {
		if s.TraceID != parent.TraceID().String() || s.Service != service {
			t.Errorf("span %s: trace %s, service %q; want trace %s, service %q", s.Name, s.TraceID, s.Service, parent.TraceID(), service)
		}
		if s.Name == "child" && s.ParentSpanID != parent.SpanID().String() {
			t.Errorf("child's parent = %s, want %s", s.ParentSpanID, parent.SpanID())
		}
		if s.Name == "child" && s.SpanID != child.SpanID().String() {
			t.Errorf("child's id = %s, want %s", s.SpanID, child.SpanID())
		}
	}
}

func TestOTLPOverHTTP(t *testing.T) {
	r := otlptest.NewHTTP(t)
	// The endpoint alone turns tracing on, over HTTP (the default).
	parent, child := exportOne(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL})
	checkExported(t, r, tracing.ServiceName, parent, child)
}

func TestOTLPOverHTTPTracesEndpoint(t *testing.T) {
	r := otlptest.NewHTTP(t)
	parent, child := exportOne(t, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": r.URL + "/v1/traces"})
	checkExported(t, r, tracing.ServiceName, parent, child)
}

func TestOTLPOverGRPC(t *testing.T) {
	r := otlptest.NewGRPC(t)
	t.Setenv("OTEL_SERVICE_NAME", "renamed") // read from the process, as the SDK does
	parent, child := exportOne(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://127.0.0.1:1", // overridden by the traces endpoint
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": r.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_HEADERS":     "api-key=s%3Dcret,x-tenant=a",
		"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
	})
	checkExported(t, r, "renamed", parent, child)
	if h := r.Header(); h.Get("api-key") != "s=cret" || h.Get("x-tenant") != "a" {
		t.Errorf("export metadata %v, want the configured headers", h)
	}
}

func TestOTLPOverHTTPWithHeadersAndGzip(t *testing.T) {
	r := otlptest.NewHTTP(t)
	parent, child := exportOne(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":           r.URL + "/",
		"OTEL_EXPORTER_OTLP_HEADERS":            "authorization=Bearer%20general",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "authorization=Bearer%20traces",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
		"OTEL_EXPORTER_OTLP_TIMEOUT":            "5000",
	})
	checkExported(t, r, tracing.ServiceName, parent, child)
	if h := r.Header(); h.Get("Authorization") != "Bearer traces" || h.Get("Content-Encoding") != "gzip" {
		t.Errorf("export headers %v, want the traces' authorization, gzipped", h)
	}
}

func TestLogHandlerAddsTheSpan(t *testing.T) {
	r := otlptest.NewHTTP(t)
	tr, err := tracing.FromEnv(t.Context(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL}))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(t.Context())
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	ctx, span := tracing.Tracer(tr.TracerProvider, "test").Start(t.Context(), "work")
	log.InfoContext(ctx, "within")
	span.End()
	log.InfoContext(t.Context(), "outside")
	log.Info("no context")
	var lines []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	sc := span.SpanContext()
	if lines[0]["trace_id"] != sc.TraceID().String() || lines[0]["span_id"] != sc.SpanID().String() || lines[0]["component"] != "test" {
		t.Errorf("line within the span = %v, want trace_id %s and span_id %s", lines[0], sc.TraceID(), sc.SpanID())
	}
	for _, l := range lines[1:] {
		if _, ok := l["trace_id"]; ok {
			t.Errorf("line outside any span has a trace id: %v", l)
		}
	}
}

func TestChildrenOnly(t *testing.T) {
	r := otlptest.NewHTTP(t)
	tr, err := tracing.FromEnv(t.Context(), env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL}))
	if err != nil {
		t.Fatal(err)
	}
	children := tracing.Tracer(tracing.ChildrenOnly(tr.TracerProvider), "test")
	_, alone := children.Start(t.Context(), "alone")
	alone.End()
	ctx, parent := tracing.Tracer(tr.TracerProvider, "test").Start(t.Context(), "parent")
	_, child := children.Start(ctx, "child")
	child.End()
	parent.End()
	if alone.IsRecording() || alone.SpanContext().IsValid() {
		t.Error("a span started outside any span was recorded")
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.Spans() {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "child,parent" {
		t.Errorf("exported %v, want child and parent only", names)
	}
	if tracing.ChildrenOnly(nil) != nil {
		t.Error("ChildrenOnly(nil) is not nil")
	}
}

// A header value is a secret (an API key): a malformed list is refused
// without quoting it.
func TestMalformedHeadersAreNotEchoed(t *testing.T) {
	const secret = "hunter2-%zz"
	_, err := tracing.FromEnv(t.Context(), env(map[string]string{
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=" + secret,
	}))
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("FromEnv with a malformed header = %v, want an error naming the variable, not the value", err)
	}
}
