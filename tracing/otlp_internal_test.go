package tracing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A collector that refuses an export makes the upload fail with its status
// and a bounded part of its answer.
func TestRefusedExportIsABoundedError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, strings.Repeat("bad export ", 1000), http.StatusBadRequest)
	}))
	defer srv.Close()
	s, err := readSettings(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}[k]
	}, protocolHTTPProtobuf)
	if err != nil {
		t.Fatal(err)
	}
	err = newOTLPClient(s).UploadTraces(t.Context(), []*tracepb.ResourceSpans{{}})
	if err == nil || !strings.Contains(err.Error(), "400") || len(err.Error()) > 200 {
		t.Errorf("upload to a refusing collector = %v, want a short error with the status", err)
	}
}

// An upload to a collector that does not answer ends within the timeout.
func TestUploadTimesOut(t *testing.T) {
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-stall }))
	defer srv.Close()
	defer close(stall)
	for _, protocol := range []string{protocolHTTPProtobuf, protocolGRPC} {
		s, err := readSettings(func(k string) string {
			return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_TIMEOUT": "50"}[k]
		}, protocol)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // the test's own bound
		err = newOTLPClient(s).UploadTraces(ctx, []*tracepb.ResourceSpans{{}})
		bounded := ctx.Err() // nil: it ended before the test's bound
		cancel()
		if err == nil || bounded != nil {
			t.Errorf("%s: upload to a stalled collector = %v, want an error from the 50 ms timeout", protocol, err)
		}
	}
}

// flakyCollector answers an OTLP/HTTP export with each status of fail in
// turn, then 200, and counts the exports and their distinct bodies.
type flakyCollector struct {
	fail       []int
	retryAfter string

	mu     sync.Mutex
	calls  int
	bodies map[string]bool
}

func (f *flakyCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.bodies == nil {
		f.bodies = map[string]bool{}
	}
	f.bodies[string(body)] = true
	if f.calls <= len(f.fail) {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		http.Error(w, "not now", f.fail[f.calls-1])
	}
}

// settings reads the settings of an exporter sending to url, with retries
// spaced by a millisecond instead of a quarter second.
func settings(t *testing.T, protocol, url, timeoutMillis string) exporterSettings {
	t.Helper()
	s, err := readSettings(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url, "OTEL_EXPORTER_OTLP_TIMEOUT": timeoutMillis}[k]
	}, protocol)
	if err != nil {
		t.Fatal(err)
	}
	s.retryBase = time.Millisecond
	return s
}

// The failures the OTLP specification calls transient (429, 502, 503, 504)
// are sent again, the same export each time, until the collector takes it.
func TestTransientRefusalsAreRetried(t *testing.T) {
	for _, c := range []struct {
		name       string
		fail       []int
		retryAfter string
	}{
		{"502, 503, 504", []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}, ""},
		{"429 with Retry-After: 0", []int{http.StatusTooManyRequests}, "0"},
		{"429 with an unreadable Retry-After", []int{http.StatusTooManyRequests}, "soon"},
	} {
		t.Run(c.name, func(t *testing.T) {
			collector := &flakyCollector{fail: c.fail, retryAfter: c.retryAfter}
			srv := httptest.NewServer(collector)
			defer srv.Close()
			err := newOTLPClient(settings(t, protocolHTTPProtobuf, srv.URL, "10000")).UploadTraces(t.Context(), []*tracepb.ResourceSpans{{SchemaUrl: "x"}})
			if err != nil {
				t.Fatalf("upload = %v, want it taken after the refusals", err)
			}
			if collector.calls != len(c.fail)+1 || len(collector.bodies) != 1 {
				t.Errorf("collector got %d exports with %d distinct bodies, want %d of one", collector.calls, len(collector.bodies), len(c.fail)+1)
			}
		})
	}
}

// A refusal that says the export itself is wrong is not sent again.
func TestPermanentRefusalIsNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestEntityTooLarge} {
		collector := &flakyCollector{fail: []int{status}}
		srv := httptest.NewServer(collector)
		err := newOTLPClient(settings(t, protocolHTTPProtobuf, srv.URL, "10000")).UploadTraces(t.Context(), []*tracepb.ResourceSpans{{}})
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), strconv.Itoa(status)) || collector.calls != 1 {
			t.Errorf("status %d: upload = %v after %d exports, want its error after 1", status, err, collector.calls)
		}
	}
}

// A collector that stays unavailable costs one export timeout, not more:
// the retries stop when no time is left for another.
func TestRetriesStopWithinTheTimeout(t *testing.T) {
	collector := &flakyCollector{fail: make([]int, 1000)}
	for i := range collector.fail {
		collector.fail[i] = http.StatusServiceUnavailable
	}
	srv := httptest.NewServer(collector)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // the test's own bound
	defer cancel()
	err := newOTLPClient(settings(t, protocolHTTPProtobuf, srv.URL, "200")).UploadTraces(ctx, []*tracepb.ResourceSpans{{}})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "attempt") || ctx.Err() != nil {
		t.Errorf("upload to an unavailable collector = %v, want its 503 and the attempts, within the 200 ms timeout", err)
	}
	if collector.calls < 2 {
		t.Errorf("collector got %d exports, want retries within the timeout", collector.calls)
	}
	// A Retry-After longer than the time left ends the upload at once.
	collector = &flakyCollector{fail: []int{http.StatusTooManyRequests}, retryAfter: "3600"}
	srv2 := httptest.NewServer(collector)
	defer srv2.Close()
	err = newOTLPClient(settings(t, protocolHTTPProtobuf, srv2.URL, "10000")).UploadTraces(ctx, []*tracepb.ResourceSpans{{}})
	if err == nil || !strings.Contains(err.Error(), "429") || collector.calls != 1 || ctx.Err() != nil {
		t.Errorf("upload told to come back in an hour = %v after %d exports, want its 429 after 1", err, collector.calls)
	}
}

// Over gRPC, Unavailable is retried, ResourceExhausted only when the
// collector says when (RetryInfo), and other codes never.
func TestGRPCRetries(t *testing.T) {
	for _, c := range []struct {
		name      string
		fail      func() error
		wantCalls int
		wantErr   bool
	}{
		{"unavailable", func() error { return connect.NewError(connect.CodeUnavailable, errors.New("restarting")) }, 2, false},
		{"resource exhausted without RetryInfo", func() error { return connect.NewError(connect.CodeResourceExhausted, errors.New("full")) }, 1, true},
		{"resource exhausted with RetryInfo", func() error {
			err := connect.NewError(connect.CodeResourceExhausted, errors.New("full"))
			detail, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Millisecond)})
			if derr != nil {
				panic(derr)
			}
			err.AddDetail(detail)
			return err
		}, 2, false},
		{"invalid argument", func() error { return connect.NewError(connect.CodeInvalidArgument, errors.New("bad")) }, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int32
			mux := http.NewServeMux()
			mux.Handle(grpcExportPath, connect.NewUnaryHandler(grpcExportPath,
				func(ctx context.Context, req *connect.Request[coltracepb.ExportTraceServiceRequest]) (*connect.Response[coltracepb.ExportTraceServiceResponse], error) {
					if calls.Add(1) == 1 {
						return nil, c.fail()
					}
					return connect.NewResponse(&coltracepb.ExportTraceServiceResponse{}), nil
				}))
			srv := httptest.NewUnstartedServer(mux)
			srv.Config.Protocols = new(http.Protocols)
			srv.Config.Protocols.SetUnencryptedHTTP2(true)
			srv.Start()
			defer srv.Close()
			err := newOTLPClient(settings(t, protocolGRPC, srv.URL, "10000")).UploadTraces(t.Context(), []*tracepb.ResourceSpans{{}})
			if (err != nil) != c.wantErr || int(calls.Load()) != c.wantCalls {
				t.Errorf("upload = %v after %d exports, want error %v after %d", err, calls.Load(), c.wantErr, c.wantCalls)
			}
		})
	}
}
