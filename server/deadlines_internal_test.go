package server

import (
	"testing"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

func TestStreamingProceduresComeFromTheDescriptors(t *testing.T) {
	t.Parallel()
	got := streamingProcedures(clientvpnv1connect.ClientVpnServiceName, "no.such.Service")
	for _, p := range []string{
		"/" + grpchealth.HealthV1ServiceName + "/Watch",
		"/" + grpcreflect.ReflectV1ServiceName + "/ServerReflectionInfo",
		"/" + grpcreflect.ReflectV1AlphaServiceName + "/ServerReflectionInfo",
	} {
		if !got[p] {
			t.Errorf("%s is not listed as streaming: %v", p, got)
		}
	}
	// Streaming methods are read from registered descriptors: grpchealth
	// registers its own under a connectext. prefix.
	if !streamingProcedures("connectext.grpc.health.v1.Health")["/connectext.grpc.health.v1.Health/Watch"] {
		t.Error("a streaming method of a registered service is not listed")
	}
	for _, p := range []string{clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, "/grpc.health.v1.Health/Check"} {
		if got[p] {
			t.Errorf("unary %s is listed as streaming", p)
		}
	}
}
