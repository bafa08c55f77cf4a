package server_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// The handler answers from whatever store it reads: here an in-process
// Memory store with three endpoints, served over HTTP/2 (TLS) on a loopback
// port and read, one page at a time, with the generated connect-go client.
func ExampleNewHandler() {
	ctx := context.Background()
	st := store.NewMemory()
	var endpoints []*clientvpnv1.ClientVpnEndpoint
	for i, region := range []string{"eu-west-1", "us-east-1", "eu-west-1"} {
		endpoints = append(endpoints, &clientvpnv1.ClientVpnEndpoint{
			ClientVpnEndpointId: proto.String(fmt.Sprintf("cvpn-endpoint-%03d", i)),
			VpcId:               proto.String("vpc-example"),
			Region:              region,
			AccountId:           "111122223333",
		})
	}
	refreshed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := st.Publish(ctx, store.Publication{RefreshedAt: refreshed, Endpoints: endpoints}); err != nil {
		log.Fatal(err)
	}
	handler := server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st})})

	srv := httptest.NewUnstartedServer(handler) // listens on loopback
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	client := clientvpnv1connect.NewClientVpnServiceClient(srv.Client(), srv.URL)

	req := &clientvpnv1.ListClientVpnEndpointsRequest{
		Filters:    []*clientvpnv1.Filter{{Name: "region", Values: []string{"eu-west-1"}}},
		MaxResults: 1,
	}
	for {
		res, err := client.ListClientVpnEndpoints(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		info := res.GetSnapshot()
		for _, e := range res.GetClientVpnEndpoints() {
			fmt.Println(e.GetClientVpnEndpointId(), e.GetRegion(), e.GetVpcId(),
				"from snapshot", info.GetVersion(), "of", info.GetRefreshedAt().AsTime().Format(time.RFC3339))
		}
		if res.GetNextToken() == "" {
			break
		}
		req.NextToken = res.GetNextToken()
	}
	// Output:
	// cvpn-endpoint-000 eu-west-1 vpc-example from snapshot 1 of 2026-01-02T03:04:05Z
	// cvpn-endpoint-002 eu-west-1 vpc-example from snapshot 1 of 2026-01-02T03:04:05Z
}
