package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// A collector that refuses an export makes the upload fail with its status
// and a bounded part of its answer.
func TestRefusedExportIsABoundedError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, strings.Repeat("quota exceeded ", 1000), http.StatusTooManyRequests)
	}))
	defer srv.Close()
	s, err := readSettings(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}[k]
	}, protocolHTTPProtobuf)
	if err != nil {
		t.Fatal(err)
	}
	err = newOTLPClient(s).UploadTraces(t.Context(), []*tracepb.ResourceSpans{{}})
	if err == nil || !strings.Contains(err.Error(), "429") || len(err.Error()) > 200 {
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
