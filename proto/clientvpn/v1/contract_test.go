// Package clientvpnv1_test checks the API contract itself: that the messages
// model every field aws-sdk-go-v2 returns and survive both wire encodings.
package clientvpnv1_test

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// fullEndpoint returns an endpoint with every field of every message set.
func fullEndpoint() *clientvpnv1.ClientVpnEndpoint {
	ts := timestamppb.New(mustTime("2020-11-13T11:37:27Z"))
	return &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId: proto.String("cvpn-endpoint-0123456789abcdef0"),
		Description:         proto.String("Büro <Berlin> & \"friends\" ✓"),
		Status: &clientvpnv1.ClientVpnEndpointStatus{
			Code:             clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_AVAILABLE,
			CodeUnrecognized: proto.String("suspended"),
			Message:          proto.String("ok"),
		},
		CreationTime:                  proto.String("2020-11-13 11:37:27"),
		CreationTimeParsed:            ts,
		DeletionTime:                  proto.String("2020-11-13T11:37:27"),
		DeletionTimeParsed:            ts,
		DnsName:                       proto.String("*.cvpn-endpoint-0123456789abcdef0.prod.clientvpn.eu-west-1.amazonaws.com"),
		ClientCidrBlock:               proto.String("10.0.0.0/22"),
		DnsServers:                    []string{"10.0.0.2", "1.1.1.1"},
		SplitTunnel:                   proto.Bool(false),
		VpnProtocol:                   clientvpnv1.VpnProtocol_VPN_PROTOCOL_OPENVPN,
		VpnProtocolUnrecognized:       proto.String("wireguard"),
		TransportProtocol:             clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP,
		TransportProtocolUnrecognized: proto.String("quic"),
		VpnPort:                       proto.Int32(0),
		AssociatedTargetNetworks: []*clientvpnv1.AssociatedTargetNetwork{{
			NetworkId:               proto.String("vpc-0a1b2c3d"),
			NetworkType:             clientvpnv1.AssociatedNetworkType_ASSOCIATED_NETWORK_TYPE_VPC,
			NetworkTypeUnrecognized: proto.String("subnet"),
		}},
		ServerCertificateArn: proto.String("arn:aws:acm:eu-west-1:123456789012:certificate/abc"),
		AuthenticationOptions: []*clientvpnv1.ClientVpnAuthentication{{
			Type:                    clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_FEDERATED_AUTHENTICATION,
			TypeUnrecognized:        proto.String("passkey-authentication"),
			ActiveDirectory:         &clientvpnv1.DirectoryServiceAuthentication{DirectoryId: proto.String("d-1234567890")},
			MutualAuthentication:    &clientvpnv1.CertificateAuthentication{ClientRootCertificateChain: proto.String("arn:aws:acm:eu-west-1:123456789012:certificate/root")},
			FederatedAuthentication: &clientvpnv1.FederatedAuthentication{SamlProviderArn: proto.String("arn:aws:iam::123456789012:saml-provider/okta"), SelfServiceSamlProviderArn: proto.String("arn:aws:iam::123456789012:saml-provider/okta-ss")},
		}},
		ConnectionLogOptions: &clientvpnv1.ConnectionLogResponseOptions{
			Enabled:                           proto.Bool(true),
			CloudwatchLogGroup:                proto.String("vpn"),
			CloudwatchLogStream:               proto.String("conn"),
			IncludeAuthorizationPolicyContext: proto.Bool(false),
		},
		Tags:                 []*clientvpnv1.Tag{{Key: proto.String("Name"), Value: proto.String("")}, {Key: proto.String("team"), Value: proto.String("net & sec")}},
		SecurityGroupIds:     []string{"sg-1", "sg-2"},
		VpcId:                proto.String("vpc-0a1b2c3d"),
		SelfServicePortalUrl: proto.String("https://self-service.clientvpn.amazonaws.com/endpoints/cvpn-endpoint-0123456789abcdef0"),
		ClientConnectOptions: &clientvpnv1.ClientConnectResponseOptions{
			Enabled:           proto.Bool(true),
			LambdaFunctionArn: proto.String("arn:aws:lambda:eu-west-1:123456789012:function:AWSClientVPN-check"),
			Status: &clientvpnv1.ClientVpnEndpointAttributeStatus{
				Code:             clientvpnv1.ClientVpnEndpointAttributeStatusCode_CLIENT_VPN_ENDPOINT_ATTRIBUTE_STATUS_CODE_APPLIED,
				CodeUnrecognized: proto.String("failed"),
				Message:          proto.String(""),
			},
		},
		SessionTimeoutHours:               proto.Int32(24),
		ClientLoginBannerOptions:          &clientvpnv1.ClientLoginBannerResponseOptions{Enabled: proto.Bool(true), BannerText: proto.String("Authorised users only")},
		ClientRouteEnforcementOptions:     &clientvpnv1.ClientRouteEnforcementResponseOptions{Enforced: proto.Bool(true)},
		DisconnectOnSessionTimeout:        proto.Bool(true),
		EndpointIpAddressType:             clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_DUAL_STACK,
		EndpointIpAddressTypeUnrecognized: proto.String("ipv8"),
		TrafficIpAddressType:              clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV6,
		TrafficIpAddressTypeUnrecognized:  proto.String("ipv9"),
		TransitGatewayConfiguration: &clientvpnv1.TransitGatewayConfiguration{
			TransitGatewayId:           proto.String("tgw-1"),
			TransitGatewayAttachmentId: proto.String("tgw-attach-1"),
			AvailabilityZones:          []string{"eu-west-1a", "eu-west-1b"},
			AvailabilityZoneIds:        []string{"euw1-az1", "euw1-az2"},
		},
		DevicePostureOptions: &clientvpnv1.DevicePostureResponseOptions{
			TrustProviders: []*clientvpnv1.ClientVpnTrustProvider{{
				TrustProviderType:             clientvpnv1.ClientVpnDeviceTrustProviderType_CLIENT_VPN_DEVICE_TRUST_PROVIDER_TYPE_JAMF,
				TrustProviderTypeUnrecognized: proto.String("intune"),
				TenantId:                      proto.String("tenant-1"),
				PublicSigningKeyUrl:           proto.String("https://example.invalid/key"),
			}},
		},
		Region:    "eu-west-1",
		AccountId: "123456789012",
	}
}

// assertFullyPopulated fails for every field of m (recursively) that is unset,
// so that fullEndpoint cannot silently fall behind the contract.
func assertFullyPopulated(t *testing.T, m protoreflect.Message, path string) {
	t.Helper()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := path + "." + string(fd.Name())
		if !m.Has(fd) {
			t.Errorf("%s is not set in the fixture", name)
			continue
		}
		switch {
		case fd.Message() == nil || fd.Message().FullName() == "google.protobuf.Timestamp":
		case fd.IsList():
			list := m.Get(fd).List()
			for j := range list.Len() {
				assertFullyPopulated(t, list.Get(j).Message(), name)
			}
		default:
			assertFullyPopulated(t, m.Get(fd).Message(), name)
		}
	}
}

func TestClientVpnEndpointRoundTrip(t *testing.T) {
	want := fullEndpoint()
	assertFullyPopulated(t, want.ProtoReflect(), "ClientVpnEndpoint")

	bin, err := proto.Marshal(want)
	if err != nil {
		t.Fatalf("proto.Marshal: %v", err)
	}
	gotBin := &clientvpnv1.ClientVpnEndpoint{}
	if err := proto.Unmarshal(bin, gotBin); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if !proto.Equal(want, gotBin) {
		t.Errorf("binary round trip changed the endpoint:\nwant %v\ngot  %v", want, gotBin)
	}

	js, err := protojson.Marshal(want)
	if err != nil {
		t.Fatalf("protojson.Marshal: %v", err)
	}
	gotJSON := &clientvpnv1.ClientVpnEndpoint{}
	if err := protojson.Unmarshal(js, gotJSON); err != nil {
		t.Fatalf("protojson.Unmarshal: %v", err)
	}
	if !proto.Equal(want, gotJSON) {
		t.Errorf("protojson round trip changed the endpoint:\nwant %v\ngot  %v", want, gotJSON)
	}
	// Explicit false/0/"" must survive (presence), not collapse to "absent".
	if gotJSON.SplitTunnel == nil || gotJSON.VpnPort == nil || gotJSON.Tags[0].Value == nil {
		t.Errorf("protojson lost presence of zero values: %s", js)
	}
}

// sdkToProtoName turns an SDK Go field name into the proto field name.
func sdkToProtoName(goName string) string {
	var b strings.Builder
	runes := []rune(goName)
	for i, r := range runes {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && unicode.IsLower(runes[i-1])
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			prevUpper := i > 0 && unicode.IsUpper(runes[i-1])
			if prevLower || (prevUpper && nextLower) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestEverySDKFieldModelled walks types.ClientVpnEndpoint and every struct it
// contains, and requires a proto field for each exported SDK field, of a
// matching kind. A field added to the SDK fails this test until modelled.
func TestEverySDKFieldModelled(t *testing.T) {
	var count int
	var walk func(rt reflect.Type, md protoreflect.MessageDescriptor)
	walk = func(rt reflect.Type, md protoreflect.MessageDescriptor) {
		for i := range rt.NumField() {
			sf := rt.Field(i)
			if !sf.IsExported() {
				continue
			}
			if rt == reflect.TypeFor[types.ClientVpnEndpoint]() {
				count++
			}
			name := sdkToProtoName(sf.Name)
			fd := md.Fields().ByName(protoreflect.Name(name))
			if fd == nil {
				t.Errorf("SDK field %s.%s has no proto field %s.%s", rt.Name(), sf.Name, md.Name(), name)
				continue
			}
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
				if ft.Kind() != reflect.Struct && !fd.HasPresence() {
					t.Errorf("%s.%s is optional in the SDK but %s has no presence", rt.Name(), sf.Name, fd.FullName())
				}
			}
			if ft.Kind() == reflect.Slice {
				if !fd.IsList() {
					t.Errorf("SDK field %s.%s is a list, %s is not", rt.Name(), sf.Name, fd.FullName())
				}
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct:
				if fd.Message() == nil {
					t.Errorf("SDK field %s.%s is a struct, %s is not a message", rt.Name(), sf.Name, fd.FullName())
					continue
				}
				walk(ft, fd.Message())
			case ft.Kind() == reflect.String && ft.PkgPath() != "":
				// An SDK enum: a proto enum plus the verbatim spelling of values
				// the contract does not know yet.
				if fd.Enum() == nil {
					t.Errorf("SDK enum %s.%s is not a proto enum (%s)", rt.Name(), sf.Name, fd.FullName())
				}
				if md.Fields().ByName(protoreflect.Name(name+"_unrecognized")) == nil {
					t.Errorf("SDK enum %s.%s has no %s_unrecognized field", rt.Name(), sf.Name, name)
				}
				checkEnumValues(t, ft, fd.Enum())
			}
		}
	}
	walk(reflect.TypeFor[types.ClientVpnEndpoint](), (&clientvpnv1.ClientVpnEndpoint{}).ProtoReflect().Descriptor())
	if count < 29 {
		t.Errorf("walked %d ClientVpnEndpoint fields, want at least 29", count)
	}
}

// checkEnumValues requires a proto enum value for each value the SDK enum
// type lists today (its Values method).
func checkEnumValues(t *testing.T, sdkEnum reflect.Type, ed protoreflect.EnumDescriptor) {
	t.Helper()
	values := reflect.Zero(sdkEnum).MethodByName("Values")
	if !values.IsValid() {
		t.Errorf("SDK enum %s has no Values method", sdkEnum)
		return
	}
	prefix := string(ed.Values().ByNumber(0).Name())
	prefix = strings.TrimSuffix(prefix, "UNSPECIFIED")
	list := values.Call(nil)[0]
	for i := range list.Len() {
		v := list.Index(i).String()
		want := prefix + strings.ToUpper(strings.ReplaceAll(v, "-", "_"))
		if ed.Values().ByName(protoreflect.Name(want)) == nil {
			t.Errorf("SDK enum %s value %q has no proto value %s", sdkEnum.Name(), v, want)
		}
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
