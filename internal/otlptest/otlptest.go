// Package otlptest receives OTLP trace exports on loopback, over HTTP or
// gRPC, for tests to look at the spans a program sent.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // as collectors accept it
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// Span is what a test checks of one received span.
type Span struct {
	Name                          string
	TraceID, SpanID, ParentSpanID string // hex; ParentSpanID "" for a root
	Kind                          string // e.g. "SPAN_KIND_SERVER"
	Service                       string // the resource's service.name
	Scope                         string // the instrumentation scope's name
	Attributes                    map[string]string
	Error                         bool // status code ERROR
}

// Receiver collects the spans exported to it.
type Receiver struct {
	// URL is where to send: the base URL over HTTP (set
	// OTEL_EXPORTER_OTLP_ENDPOINT to it), "http://host:port" over gRPC.
	URL string

	mu      sync.Mutex
	spans   []Span
	header  http.Header   // of the last export
	changed chan struct{} // closed and replaced on each export
}

func newReceiver() *Receiver { return &Receiver{changed: make(chan struct{})} }

// NewHTTP starts a receiver of OTLP/HTTP protobuf exports (POST
// /v1/traces) on loopback, until the test ends.
func NewHTTP(t testing.TB) *Receiver {
	r := newReceiver()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		var in io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			in = zr
		}
		body, err := io.ReadAll(io.LimitReader(in, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var export coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &export); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&export, req.Header)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// NewGRPC starts a receiver of OTLP/gRPC exports on loopback, until the
// test ends.
func NewGRPC(t testing.TB) *Receiver {
	r := newReceiver()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcService{r: r})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	r.URL = "http://" + ln.Addr().String()
	return r
}

type grpcService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

// Export implements coltracepb.TraceServiceServer.
func (s grpcService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	header := http.Header{}
	for k, vs := range md {
		for _, v := range vs {
			header.Add(k, v)
		}
	}
	s.r.add(req, header)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) add(export *coltracepb.ExportTraceServiceRequest, header http.Header) {
	var got []Span
	for _, rs := range export.GetResourceSpans() {
		service := attributes(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{
					Name:         s.GetName(),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Kind:         s.GetKind().String(),
					Service:      service,
					Scope:        ss.GetScope().GetName(),
					Attributes:   attributes(s.GetAttributes()),
					Error:        s.GetStatus().GetCode().String() == "STATUS_CODE_ERROR",
				})
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, got...)
	r.header = header
	close(r.changed)
	r.changed = make(chan struct{})
}

func attributes(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		default:
			m[kv.GetKey()] = protoText(v)
		}
	}
	return m
}

// protoText renders a non-string attribute value (int, bool, array...).
func protoText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	default:
		b, _ := proto.Marshal(v)
		return string(b)
	}
}

// Header returns the request headers (gRPC metadata) of the last export.
func (r *Receiver) Header() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header.Clone()
}

// Spans returns every span received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// WaitFor waits until cond holds for the spans received, failing the test
// after timeout. It wakes on each export, not on a clock.
func (r *Receiver) WaitFor(t testing.TB, what string, timeout time.Duration, cond func([]Span) bool) []Span {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		spans, changed := append([]Span(nil), r.spans...), r.changed
		r.mu.Unlock()
		if cond(spans) {
			return spans
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; received %d spans", what, len(spans))
			return nil
		}
	}
}
