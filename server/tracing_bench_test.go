package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// BenchmarkHandlerGetTracing is BenchmarkHandlerGet with traces off (no
// TracerProvider: no interceptor) and on: every call sampled, its span
// going through the batch processor to an exporter that drops it, so that
// "on" costs what tracing costs in the process, without the network.
// cpu-ns/op is the process's CPU per call, the batch processor's included.
func BenchmarkHandlerGetTracing(b *testing.B) {
	eps := benchEndpoints(b, 10_000)
	st := store.NewMemory()
	if _, err := st.Publish(b.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: append([]*clientvpnv1.ClientVpnEndpoint(nil), eps...)}); err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 64)
	for i := range bodies {
		bodies[i], _ = proto.Marshal(&clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: eps[i*151].GetClientVpnEndpointId()})
	}
	for _, traced := range []bool{false, true} {
		name := "off"
		opts := server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Registerer: prometheus.NewRegistry()}
		if traced {
			name = "on"
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			opts.TracerProvider = tp
		}
		h := server.NewHandler(opts)
		b.Run(name, func(b *testing.B) {
			i := 0
			cpu := processCPU(b)
			for b.Loop() {
				serveConnect(b, h, clientvpnv1connect.ClientVpnServiceGetClientVpnEndpointProcedure, bodies[i%len(bodies)], false)
				i++
			}
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
