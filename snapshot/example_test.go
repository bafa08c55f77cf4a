package snapshot_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// exampleEndpoints returns five endpoints of one account in two regions,
// tagged with the team that owns them.
func exampleEndpoints() []*clientvpnv1.ClientVpnEndpoint {
	endpoint := func(id, region, team, vpc string) *clientvpnv1.ClientVpnEndpoint {
		return &clientvpnv1.ClientVpnEndpoint{
			ClientVpnEndpointId: proto.String(id),
			Description:         proto.String("VPN of team " + team),
			VpcId:               proto.String(vpc),
			Tags:                []*clientvpnv1.Tag{{Key: proto.String("team"), Value: proto.String(team)}},
			Region:              region,
			AccountId:           "111122223333",
		}
	}
	return []*clientvpnv1.ClientVpnEndpoint{
		endpoint("cvpn-endpoint-0e1", "eu-west-1", "net", "vpc-0a"),
		endpoint("cvpn-endpoint-0a4", "us-east-1", "net", "vpc-0b"),
		endpoint("cvpn-endpoint-0c2", "eu-west-1", "sec", "vpc-0a"),
		endpoint("cvpn-endpoint-0b3", "eu-west-1", "net", "vpc-0c"),
		endpoint("cvpn-endpoint-0d5", "us-east-1", "sec", "vpc-0b"),
	}
}

// List returns one page at a time, in endpoint-id order; a page's
// NextToken, set on the same Query, continues the listing.
func ExampleSnapshot_List() {
	snap, err := snapshot.New(1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), nil, exampleEndpoints())
	if err != nil {
		log.Fatal(err)
	}
	q := snapshot.Query{
		Filters: []snapshot.Filter{{Name: "tag:team", Values: []string{"net"}}},
		Limit:   2,
	}
	for page := 1; ; page++ {
		res, err := snap.List(context.Background(), q)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range res.Endpoints {
			fmt.Printf("page %d: %s in %s\n", page, e.ID(), e.Region())
		}
		if res.NextToken == "" {
			break
		}
		q.NextToken = res.NextToken
	}
	// Output:
	// page 1: cvpn-endpoint-0a4 in us-east-1
	// page 1: cvpn-endpoint-0b3 in eu-west-1
	// page 2: cvpn-endpoint-0e1 in eu-west-1
}

// Filters are ANDed across names and ORed across values, and take EC2's
// wildcards.
func ExampleSnapshot_List_filters() {
	snap, err := snapshot.New(1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), nil, exampleEndpoints())
	if err != nil {
		log.Fatal(err)
	}
	res, err := snap.List(context.Background(), snapshot.Query{
		Filters: []snapshot.Filter{
			{Name: snapshot.FilterVpcID, Values: []string{"vpc-0a", "vpc-0b"}},
			{Name: snapshot.FilterRegion, Values: []string{"us-*"}},
		},
		Limit: 100,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range res.Endpoints {
		fmt.Println(e.ID(), e.Region())
	}
	fmt.Printf("next token: %q\n", res.NextToken)
	// Output:
	// cvpn-endpoint-0a4 us-east-1
	// cvpn-endpoint-0d5 us-east-1
	// next token: ""
}

// Get finds one endpoint by id; the region and account, when given, narrow
// the match. The snapshot keeps endpoints encoded: Message decodes one.
func ExampleSnapshot_Get() {
	snap, err := snapshot.New(1, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), nil, exampleEndpoints())
	if err != nil {
		log.Fatal(err)
	}
	e, err := snap.Get("cvpn-endpoint-0c2", "", "")
	if err != nil {
		log.Fatal(err)
	}
	m, err := e.Message()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Key(), m.GetDescription())

	_, err = snap.Get("cvpn-endpoint-0c2", "us-east-1", "")
	fmt.Println(err)
	// Output:
	// 111122223333/eu-west-1/cvpn-endpoint-0c2 VPN of team sec
	// not_found: client_vpn_endpoint_id: the Client VPN endpoint "cvpn-endpoint-0c2" cannot be found in region "us-east-1"
}
