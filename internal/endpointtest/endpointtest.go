// Package endpointtest generates Client VPN endpoints for tests: varied
// enough to exercise filters, pages and every field of the contract, and
// deterministic for a seed.
package endpointtest

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Varied returns n endpoints with a few fields set in varied ways (vpc,
// transport, status, tags, some unrecognized enum spellings), across two
// regions and two accounts, deterministic for a seed. Query tests use them.
func Varied(n int, seed uint64) []*clientvpnv1.ClientVpnEndpoint {
	r := rand.New(rand.NewPCG(seed, seed))
	regions := []string{"eu-west-1", "us-east-1"}
	accounts := []string{"111111111111", "222222222222"}
	out := make([]*clientvpnv1.ClientVpnEndpoint, 0, n)
	for i := range n {
		e := &clientvpnv1.ClientVpnEndpoint{
			ClientVpnEndpointId: proto.String(fmt.Sprintf("cvpn-endpoint-%017x", r.Uint64()>>4)),
			VpcId:               proto.String(fmt.Sprintf("vpc-%02d", r.IntN(20))),
			TransportProtocol:   clientvpnv1.TransportProtocol(1 + r.IntN(2)),
			Status:              &clientvpnv1.ClientVpnEndpointStatus{Code: clientvpnv1.ClientVpnEndpointStatusCode(1 + r.IntN(5))},
			Region:              regions[r.IntN(2)],
			AccountId:           accounts[r.IntN(2)],
			Tags: []*clientvpnv1.Tag{
				{Key: proto.String("team"), Value: proto.String([]string{"net", "sec", "web", "Net"}[r.IntN(4)])},
				{Key: proto.String("env"), Value: proto.String([]string{"prod", "staging", "dev"}[r.IntN(3)])},
			},
		}
		if i%7 == 0 {
			e.TransportProtocol = 0
			e.TransportProtocolUnrecognized = proto.String("quic")
		}
		if i%11 == 0 {
			e.Tags = append(e.Tags, &clientvpnv1.Tag{Key: proto.String("Name"), Value: proto.String("büro-" + fmt.Sprint(i))})
		}
		out = append(out, e)
	}
	return out
}

// Rich builds n endpoints with every field of the contract set in
// varied ways, as a real account would return them, across two regions and
// two accounts. Each carries the tag batch=<batch>.
func Rich(n int, seed uint64, batch string) []*clientvpnv1.ClientVpnEndpoint {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	regions := []string{"eu-west-1", "us-east-1"}
	accounts := []string{"111111111111", "222222222222"}
	seen := make(map[string]bool, n)
	out := make([]*clientvpnv1.ClientVpnEndpoint, 0, n)
	for i := 0; len(out) < n; i++ {
		id := fmt.Sprintf("cvpn-endpoint-%017x", r.Uint64()>>4)
		if seen[id] {
			continue
		}
		seen[id] = true
		region, account := regions[r.IntN(2)], accounts[r.IntN(2)]
		created := time.Date(2020+r.IntN(6), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), 0, time.UTC)
		vpc := fmt.Sprintf("vpc-%017x", r.Uint64()>>4)
		e := &clientvpnv1.ClientVpnEndpoint{
			ClientVpnEndpointId: proto.String(id),
			Description:         proto.String(fmt.Sprintf("VPN for team %d — Zugang für Büro %d", r.IntN(50), i)),
			Status: &clientvpnv1.ClientVpnEndpointStatus{
				Code:    clientvpnv1.ClientVpnEndpointStatusCode(1 + r.IntN(5)),
				Message: proto.String("status message " + strconv.Itoa(i)),
			},
			CreationTime:       proto.String(created.Format("2006-01-02 15:04:05")),
			CreationTimeParsed: timestamppb.New(created),
			DnsName:            proto.String("*." + id + ".prod.clientvpn." + region + ".amazonaws.com"),
			ClientCidrBlock:    proto.String(fmt.Sprintf("10.%d.0.0/22", r.IntN(256))),
			DnsServers:         []string{"10.0.0.2", fmt.Sprintf("10.%d.0.2", r.IntN(256))},
			SplitTunnel:        proto.Bool(r.IntN(2) == 0),
			VpnProtocol:        clientvpnv1.VpnProtocol_VPN_PROTOCOL_OPENVPN,
			TransportProtocol:  clientvpnv1.TransportProtocol(1 + r.IntN(2)),
			VpnPort:            proto.Int32([]int32{443, 1194}[r.IntN(2)]),
			ServerCertificateArn: proto.String(fmt.Sprintf("arn:aws:acm:%s:%s:certificate/%08x-%04x-%04x-%04x-%012x",
				region, account, r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Uint64()>>16)),
			AssociatedTargetNetworks: []*clientvpnv1.AssociatedTargetNetwork{
				{NetworkId: proto.String(vpc), NetworkType: clientvpnv1.AssociatedNetworkType_ASSOCIATED_NETWORK_TYPE_VPC},
			},
			AuthenticationOptions: []*clientvpnv1.ClientVpnAuthentication{{
				Type: clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_CERTIFICATE_AUTHENTICATION,
				MutualAuthentication: &clientvpnv1.CertificateAuthentication{
					ClientRootCertificateChain: proto.String(fmt.Sprintf("arn:aws:acm:%s:%s:certificate/root-%d", region, account, r.IntN(100))),
				},
			}},
			ConnectionLogOptions: &clientvpnv1.ConnectionLogResponseOptions{
				Enabled:            proto.Bool(true),
				CloudwatchLogGroup: proto.String("/aws/clientvpn/" + id),
			},
			Tags: []*clientvpnv1.Tag{
				{Key: proto.String("Name"), Value: proto.String("vpn-" + strconv.Itoa(i))},
				{Key: proto.String("team"), Value: proto.String([]string{"net", "sec", "web", "data"}[r.IntN(4)])},
				{Key: proto.String("env"), Value: proto.String([]string{"prod", "staging", "dev"}[r.IntN(3)])},
				{Key: proto.String("batch"), Value: proto.String(batch)},
			},
			SecurityGroupIds:     []string{fmt.Sprintf("sg-%017x", r.Uint64()>>4)},
			VpcId:                proto.String(vpc),
			SelfServicePortalUrl: proto.String("https://self-service.clientvpn.amazonaws.com/endpoints/" + id),
			ClientConnectOptions: &clientvpnv1.ClientConnectResponseOptions{
				Enabled: proto.Bool(false),
				Status:  &clientvpnv1.ClientVpnEndpointAttributeStatus{Code: clientvpnv1.ClientVpnEndpointAttributeStatusCode_CLIENT_VPN_ENDPOINT_ATTRIBUTE_STATUS_CODE_APPLIED},
			},
			SessionTimeoutHours: proto.Int32([]int32{8, 10, 12, 24}[r.IntN(4)]),
			ClientLoginBannerOptions: &clientvpnv1.ClientLoginBannerResponseOptions{
				Enabled: proto.Bool(i%3 == 0), BannerText: proto.String("Authorised use only. 利用規約に同意してください。"),
			},
			ClientRouteEnforcementOptions: &clientvpnv1.ClientRouteEnforcementResponseOptions{Enforced: proto.Bool(i%2 == 0)},
			DisconnectOnSessionTimeout:    proto.Bool(i%4 == 0),
			EndpointIpAddressType:         clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV4,
			TrafficIpAddressType:          clientvpnv1.IpAddressType(1 + r.IntN(3)),
			Region:                        region,
			AccountId:                     account,
		}
		switch i % 9 {
		case 0: // values AWS added after this build: kept verbatim
			e.TransportProtocol, e.TransportProtocolUnrecognized = 0, proto.String("quic")
			e.Status.Code, e.Status.CodeUnrecognized = 0, proto.String("suspended")
		case 1:
			e.AuthenticationOptions = append(e.AuthenticationOptions, &clientvpnv1.ClientVpnAuthentication{
				Type: clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_FEDERATED_AUTHENTICATION,
				FederatedAuthentication: &clientvpnv1.FederatedAuthentication{
					SamlProviderArn: proto.String("arn:aws:iam::" + account + ":saml-provider/okta"),
				},
			})
		case 2:
			deleted := created.Add(90 * 24 * time.Hour)
			e.DeletionTime, e.DeletionTimeParsed = proto.String(deleted.Format("2006-01-02T15:04:05")), timestamppb.New(deleted)
			e.TransitGatewayConfiguration = &clientvpnv1.TransitGatewayConfiguration{
				TransitGatewayId:  proto.String(fmt.Sprintf("tgw-%017x", r.Uint64()>>4)),
				AvailabilityZones: []string{region + "a", region + "b"},
			}
		case 3:
			e.DevicePostureOptions = &clientvpnv1.DevicePostureResponseOptions{
				TrustProviders: []*clientvpnv1.ClientVpnTrustProvider{{TenantId: proto.String("tenant-" + strconv.Itoa(i))}},
			}
		}
		out = append(out, e)
	}
	return out
}

// Clones deep-copies endpoints: Publish takes ownership of what it is given.
func Clones(eps []*clientvpnv1.ClientVpnEndpoint) []*clientvpnv1.ClientVpnEndpoint {
	out := make([]*clientvpnv1.ClientVpnEndpoint, len(eps))
	for i, e := range eps {
		out[i] = proto.CloneOf(e)
	}
	return out
}

// Messages decodes snapshot endpoints into messages, failing the test on a
// decoding error.
func Messages(t testing.TB, eps iter.Seq[*snapshot.Endpoint]) []*clientvpnv1.ClientVpnEndpoint {
	t.Helper()
	var out []*clientvpnv1.ClientVpnEndpoint
	for e := range eps {
		m, err := e.Message()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// Snapshot builds a snapshot of clones of eps, failing the test on an
// error.
func Snapshot(t testing.TB, version uint64, eps []*clientvpnv1.ClientVpnEndpoint) *snapshot.Snapshot {
	t.Helper()
	s, err := snapshot.New(version, time.Unix(1700000000, 0), nil, eps)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
