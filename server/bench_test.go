package server_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// benchEndpoints returns n of ec2sim's generated endpoints (every field of
// the contract in use, as the load benchmarks serve).
func benchEndpoints(b *testing.B, n int) []*clientvpnv1.ClientVpnEndpoint {
	b.Helper()
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: n, Seed: 42, Regions: []string{"eu-west-1", "us-east-1"}})
	if err != nil {
		b.Fatal(err)
	}
	return eps
}

// benchPage is a ListClientVpnEndpoints response of 100 endpoints.
func benchPage(b *testing.B) *clientvpnv1.ListClientVpnEndpointsResponse {
	return &clientvpnv1.ListClientVpnEndpointsResponse{
		ClientVpnEndpoints: benchEndpoints(b, 100),
		NextToken:          "AQAAAAAAAAAAH2N2cG4tZW5kcG9pbnQtMDEyMzQ1Njc4OWFiY2RlZjAJZXUtd2VzdC0xDDExMTExMTExMTExMQ",
		Snapshot:           &clientvpnv1.SnapshotInfo{Version: 1, RefreshedAt: timestamppb.Now()},
	}
}

// BenchmarkMarshalGetResponse encodes one endpoint as Get answers it.
func BenchmarkMarshalGetResponse(b *testing.B) {
	res := &clientvpnv1.GetClientVpnEndpointResponse{
		ClientVpnEndpoint: benchEndpoints(b, 1)[0],
		Snapshot:          &clientvpnv1.SnapshotInfo{Version: 1, RefreshedAt: timestamppb.Now()},
	}
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], res); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkMarshalPage100 encodes a page of 100 endpoints in binary
// protobuf, as gRPC and Connect (proto) send it.
func BenchmarkMarshalPage100(b *testing.B) {
	page := benchPage(b)
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], page); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkMarshalPage100JSON encodes the same page as Connect JSON does.
func BenchmarkMarshalPage100JSON(b *testing.B) {
	page := benchPage(b)
	var n int
	for b.Loop() {
		buf, err := protojson.Marshal(page)
		if err != nil {
			b.Fatal(err)
		}
		n = len(buf)
	}
	b.SetBytes(int64(n))
}

// BenchmarkGzipPage100 compresses the binary page as connect-go does for
// every client that accepts gzip (default level, pooled writer), and at
// gzip.BestSpeed for comparison.
func BenchmarkGzipPage100(b *testing.B) {
	raw, err := proto.Marshal(benchPage(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, level := range []struct {
		name  string
		level int
	}{{"default", gzip.DefaultCompression}, {"best-speed", gzip.BestSpeed}} {
		b.Run(level.name, func(b *testing.B) {
			zw, err := gzip.NewWriterLevel(io.Discard, level.level)
			if err != nil {
				b.Fatal(err)
			}
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				zw.Reset(&out)
				if _, err := zw.Write(raw); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(raw)))
			b.ReportMetric(float64(out.Len())/float64(len(raw)), "ratio")
		})
	}
}

// benchHandler is the service's whole HTTP handler (metrics included) over
// an in-process store of n endpoints.
func benchHandler(b *testing.B, n int) (http.Handler, []*clientvpnv1.ClientVpnEndpoint) {
	b.Helper()
	eps := benchEndpoints(b, n)
	st := store.NewMemory()
	if _, err := st.Publish(b.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: append([]*clientvpnv1.ClientVpnEndpoint(nil), eps...)}); err != nil {
		b.Fatal(err)
	}
	return server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Registerer: prometheus.NewRegistry()}), eps
}

// serveConnect makes one Connect unary call (binary protobuf) in process,
// without a network, and fails unless it succeeds.
func serveConnect(b *testing.B, h http.Handler, procedure string, body []byte, acceptGzip bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, procedure, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Connect-Protocol-Version", "1")
	if acceptGzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: HTTP %d: %s", procedure, rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkHandlerGet serves GetClientVpnEndpoint out of 10,000 endpoints
// through the whole handler (Connect protocol, metrics), without a network.
func BenchmarkHandlerGet(b *testing.B) {
	h, eps := benchHandler(b, 10_000)
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i], _ = proto.Marshal(&clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: eps[i*151].GetClientVpnEndpointId()})
	}
	i := 0
	for b.Loop() {
		serveConnect(b, h, clientvpnv1connect.ClientVpnServiceGetClientVpnEndpointProcedure, bodies[i%len(bodies)], false)
		i++
	}
}

func benchListBody(b *testing.B) []byte {
	body, err := proto.Marshal(&clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 100, Filters: []*clientvpnv1.Filter{
		{Name: "tag:Environment", Values: []string{"production"}},
		{Name: "transport-protocol", Values: []string{"udp"}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkHandlerList serves the first page of 100 of a two-filter
// listing of 10,000 endpoints through the whole handler, without a network.
func BenchmarkHandlerList(b *testing.B) {
	h, _ := benchHandler(b, 10_000)
	body := benchListBody(b)
	for b.Loop() {
		serveConnect(b, h, clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, body, false)
	}
}

// BenchmarkHandlerListGzip is BenchmarkHandlerList for a client that
// accepts gzip, as connect-go clients do by default.
func BenchmarkHandlerListGzip(b *testing.B) {
	h, _ := benchHandler(b, 10_000)
	body := benchListBody(b)
	for b.Loop() {
		if rec := serveConnect(b, h, clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, body, true); rec.Header().Get("Content-Encoding") != "gzip" {
			b.Fatal("the response was not gzipped")
		}
	}
}

// BenchmarkMarshalPages10k encodes successive pages of 100 out of 10,000
// endpoints, as a facade serving many clients does: unlike
// BenchmarkMarshalPage100, the endpoints are rarely in the CPU's caches.
func BenchmarkMarshalPages10k(b *testing.B) {
	eps := benchEndpoints(b, 10_000)
	page := benchPage(b)
	var buf []byte
	i, n := 0, 0
	for b.Loop() {
		page.ClientVpnEndpoints = eps[i*100 : i*100+100]
		i = (i + 1) % 100
		var err error
		if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], page); err != nil {
			b.Fatal(err)
		}
		n += len(buf)
	}
	b.SetBytes(int64(n / b.N))
}

// BenchmarkHandlerListJSON is BenchmarkHandlerList over Connect JSON, as
// browsers and curl call it.
func BenchmarkHandlerListJSON(b *testing.B) {
	h, _ := benchHandler(b, 10_000)
	body := []byte(`{"maxResults":100,"filters":[{"name":"tag:Environment","values":["production"]},{"name":"transport-protocol","values":["udp"]}]}`)
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.Len() < 10_000 {
			b.Fatalf("HTTP %d, %d bytes", rec.Code, rec.Body.Len())
		}
	}
}

// BenchmarkHandlerEC2 serves the EC2 Query API's DescribeClientVpnEndpoints
// for the page of 100 of the two-filter listing of 10,000 endpoints,
// through the whole handler, in process: the SDKs' and the AWS CLI's
// List.
func BenchmarkHandlerEC2(b *testing.B) {
	h, _ := benchHandler(b, 10_000)
	body := "Action=DescribeClientVpnEndpoints&Version=2016-11-15&MaxResults=100" +
		"&Filter.1.Name=tag:Environment&Filter.1.Value.1=production&Filter.2.Name=transport-protocol&Filter.2.Value.1=udp"
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.Len() < 10_000 {
			b.Fatalf("HTTP %d, %d bytes: %.200s", rec.Code, rec.Body.Len(), rec.Body)
		}
	}
}

// BenchmarkHandlerListGetRevalidation serves a Connect GET of the first
// page of 100 of a two-filter listing of 10,000 endpoints through the
// whole handler, in process: in full (200, as binary protobuf, and as JSON
// gzipped as browsers ask) and revalidated (304: the client's If-None-Match
// still names the current snapshot).
func BenchmarkHandlerListGetRevalidation(b *testing.B) {
	h, _ := benchHandler(b, 10_000)
	message := `{"maxResults":100,"filters":[{"name":"tag:Environment","values":["production"]},{"name":"transport-protocol","values":["udp"]}]}`
	target := clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure + "?connect=v1&encoding=json&message=" + url.QueryEscape(message)
	serve := func(b *testing.B, header map[string]string, status int) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != status {
			b.Fatalf("HTTP %d, want %d: %s", rec.Code, status, rec.Body)
		}
		return rec
	}
	tag := serve(b, nil, http.StatusOK).Header().Get("ETag")
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"200-json", nil, http.StatusOK},
		{"200-json-gzip", map[string]string{"Accept-Encoding": "gzip"}, http.StatusOK},
		{"304", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": tag}, http.StatusNotModified},
	} {
		b.Run(tc.name, func(b *testing.B) {
			n := 0
			cpu := processCPU(b)
			for b.Loop() {
				n += serve(b, tc.header, tc.status).Body.Len()
			}
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(n)/float64(b.N), "body-B/op")
		})
	}
}

// processCPU is the CPU time the process has used (user and system, GC
// included), which on a shared machine tells the cost of a call better
// than the wall time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
