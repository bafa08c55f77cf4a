package server_test

import (
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// counterValue returns the value of the vpnfacade_requests_total series with
// exactly labels, and whether it exists.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if sameLabels(m.GetLabel(), labels) {
				switch {
				case m.GetCounter() != nil:
					return m.GetCounter().GetValue(), true
				case m.GetGauge() != nil:
					return m.GetGauge().GetValue(), true
				case m.GetHistogram() != nil:
					return float64(m.GetHistogram().GetSampleCount()), true
				}
			}
		}
	}
	return 0, false
}

func sameLabels(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
			return false
		}
	}
	return true
}

// TestRequestMetricsByProtocol calls the service once over each protocol
// with real clients and checks that each call is counted under its own
// protocol label, with its procedure and code.
func TestRequestMetricsByProtocol(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{Endpoints: fixture(10)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	url := startServer(t, server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Registerer: reg, Regions: []string{"eu-west-1"}}))
	h2c := h2cClient()
	const list = clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure
	const get = clientvpnv1connect.ClientVpnServiceGetClientVpnEndpointProcedure

	clients := []struct {
		protocol string
		client   clientvpnv1connect.ClientVpnServiceClient
	}{
		{"connect", clientvpnv1connect.NewClientVpnServiceClient(h2c, url)},
		{"grpc", clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPC())},
		{"grpcweb", clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url, connect.WithGRPCWeb())},
	}
	for i, c := range clients {
		// Protocol i makes i+1 List calls, so that a count landing under
		// the wrong label cannot match by chance.
		for range i + 1 {
			if _, err := c.client.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5}); err != nil {
				t.Fatalf("%s List: %v", c.protocol, err)
			}
		}
		_, err := c.client.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: "cvpn-endpoint-00000000000000000"})
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("%s Get of a missing id: %v, want NotFound", c.protocol, err)
		}
	}
	health := grpchealth.NewClient(h2c, url, connect.WithGRPC())
	if _, err := health.Check(t.Context(), &grpchealth.CheckRequest{}); err != nil {
		t.Fatalf("health Check: %v", err)
	}
	ec2Client := ec2.New(ec2.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		// Else smithy-go's request-body race can fail an attempt over
		// loopback, and its retry is one more request than counted below.
		APIOptions: []func(*middleware.Stack) error{upstream.WithoutRequestBodyWriteTo},
	})
	if _, err := ec2Client.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5)}); err != nil {
		t.Fatalf("EC2 DescribeClientVpnEndpoints: %v", err)
	}

	for i, c := range clients {
		want := float64(i + 1)
		labels := map[string]string{"protocol": c.protocol, "procedure": list, "code": "ok"}
		if got, _ := counterValue(t, reg, "vpnfacade_requests_total", labels); got != want {
			t.Errorf("requests_total%v = %v, want %v", labels, got, want)
		}
		if got, _ := counterValue(t, reg, "vpnfacade_request_duration_seconds", map[string]string{"protocol": c.protocol, "procedure": list}); got != want {
			t.Errorf("request_duration_seconds count for %s List = %v, want %v", c.protocol, got, want)
		}
		labels = map[string]string{"protocol": c.protocol, "procedure": get, "code": "not_found"}
		if got, _ := counterValue(t, reg, "vpnfacade_requests_total", labels); got != 1 {
			t.Errorf("requests_total%v = %v, want 1", labels, got)
		}
	}
	labels := map[string]string{"protocol": "grpc", "procedure": "/" + grpchealth.HealthV1ServiceName + "/Check", "code": "ok"}
	if got, _ := counterValue(t, reg, "vpnfacade_requests_total", labels); got != 1 {
		t.Errorf("requests_total%v = %v, want 1", labels, got)
	}
	labels = map[string]string{"protocol": "ec2", "procedure": "DescribeClientVpnEndpoints", "code": "ok"}
	if got, _ := counterValue(t, reg, "vpnfacade_requests_total", labels); got != 1 {
		t.Errorf("requests_total%v = %v, want 1", labels, got)
	}

	// Nothing else was counted: the sum over every series is the calls made.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != "vpnfacade_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "protocol" && !strings.Contains(" connect grpc grpcweb ec2 ", " "+l.GetValue()+" ") {
					t.Errorf("unexpected protocol label %q", l.GetValue())
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	if want := float64(1+2+3) + 3 + 1 + 1; total != want {
		t.Errorf("requests counted = %v, want %v", total, want)
	}
}
