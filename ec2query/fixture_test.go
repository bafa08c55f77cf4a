package ec2query_test

import (
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"google.golang.org/protobuf/proto"
)

// fullEndpoint returns an endpoint with every field of the contract set,
// XML-special and non-ASCII characters in its free text, and one
// authentication option of each kind.
func fullEndpoint() *clientvpnv1.ClientVpnEndpoint {
	s := proto.String
	return &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId: s("cvpn-endpoint-0123456789abcdef0"),
		Description:         s("R&D <lab> \"main\" it's ünïcødé ✓ 🚀\tcol\r\nline2"),
		Status: &clientvpnv1.ClientVpnEndpointStatus{
			Code:    clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_AVAILABLE,
			Message: s("all good & ready"),
		},
		CreationTime:         s("2020-11-13 11:37:27"),
		DeletionTime:         s("2018-12-11T13:14:10"),
		DnsName:              s("*.cvpn-endpoint-0123456789abcdef0.prod.clientvpn.eu-west-1.amazonaws.com"),
		ClientCidrBlock:      s("10.100.0.0/22"),
		DnsServers:           []string{"10.0.0.2", "1.1.1.1"},
		SplitTunnel:          proto.Bool(true),
		VpnProtocol:          clientvpnv1.VpnProtocol_VPN_PROTOCOL_OPENVPN,
		TransportProtocol:    clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP,
		VpnPort:              proto.Int32(1194),
		ServerCertificateArn: s("arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"),
		AssociatedTargetNetworks: []*clientvpnv1.AssociatedTargetNetwork{
			{NetworkId: s("vpc-0a1b2c3d4e5f60718"), NetworkType: clientvpnv1.AssociatedNetworkType_ASSOCIATED_NETWORK_TYPE_VPC},
			{NetworkId: s("vpc-0fedcba9876543210"), NetworkTypeUnrecognized: s("subnet")},
		},
		AuthenticationOptions: []*clientvpnv1.ClientVpnAuthentication{
			{
				Type:                 clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_CERTIFICATE_AUTHENTICATION,
				MutualAuthentication: &clientvpnv1.CertificateAuthentication{ClientRootCertificateChain: s("arn:aws:acm:eu-west-1:123456789012:certificate/root")},
			},
			{
				Type:            clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_DIRECTORY_SERVICE_AUTHENTICATION,
				ActiveDirectory: &clientvpnv1.DirectoryServiceAuthentication{DirectoryId: s("d-1234567890")},
			},
			{
				Type: clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_FEDERATED_AUTHENTICATION,
				FederatedAuthentication: &clientvpnv1.FederatedAuthentication{
					SamlProviderArn:            s("arn:aws:iam::123456789012:saml-provider/Okta"),
					SelfServiceSamlProviderArn: s("arn:aws:iam::123456789012:saml-provider/OktaSelfService"),
				},
			},
		},
		ConnectionLogOptions: &clientvpnv1.ConnectionLogResponseOptions{
			Enabled:                           proto.Bool(true),
			CloudwatchLogGroup:                s("/aws/clientvpn"),
			CloudwatchLogStream:               s("connections"),
			IncludeAuthorizationPolicyContext: proto.Bool(true),
		},
		Tags: []*clientvpnv1.Tag{
			{Key: s("Name"), Value: s("prod <vpn> & \"more\"")},
			{Key: s("équipe"), Value: s("réseau 網絡")},
			{Key: s("empty"), Value: s("")},
		},
		SecurityGroupIds:     []string{"sg-0123456789abcdef0", "sg-0fedcba9876543210"},
		VpcId:                s("vpc-0a1b2c3d4e5f60718"),
		SelfServicePortalUrl: s("https://self-service.clientvpn.amazonaws.com/endpoints/cvpn-endpoint-0123456789abcdef0"),
		ClientConnectOptions: &clientvpnv1.ClientConnectResponseOptions{
			Enabled:           proto.Bool(true),
			LambdaFunctionArn: s("arn:aws:lambda:eu-west-1:123456789012:function:AWSClientVPN-authorize"),
			Status: &clientvpnv1.ClientVpnEndpointAttributeStatus{
				Code:    clientvpnv1.ClientVpnEndpointAttributeStatusCode_CLIENT_VPN_ENDPOINT_ATTRIBUTE_STATUS_CODE_APPLIED,
				Message: s("applied"),
			},
		},
		SessionTimeoutHours: proto.Int32(24),
		ClientLoginBannerOptions: &clientvpnv1.ClientLoginBannerResponseOptions{
			Enabled:    proto.Bool(true),
			BannerText: s("Authorized use only — <b>monitored</b> & logged"),
		},
		ClientRouteEnforcementOptions: &clientvpnv1.ClientRouteEnforcementResponseOptions{Enforced: proto.Bool(false)},
		DisconnectOnSessionTimeout:    proto.Bool(true),
		EndpointIpAddressType:         clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_DUAL_STACK,
		TrafficIpAddressType:          clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV6,
		TransitGatewayConfiguration: &clientvpnv1.TransitGatewayConfiguration{
			TransitGatewayId:           s("tgw-0123456789abcdef0"),
			TransitGatewayAttachmentId: s("tgw-attach-0123456789abcdef0"),
			AvailabilityZones:          []string{"eu-west-1a", "eu-west-1b"},
			AvailabilityZoneIds:        []string{"euw1-az1", "euw1-az2"},
		},
		DevicePostureOptions: &clientvpnv1.DevicePostureResponseOptions{
			TrustProviders: []*clientvpnv1.ClientVpnTrustProvider{
				{
					TrustProviderType:   clientvpnv1.ClientVpnDeviceTrustProviderType_CLIENT_VPN_DEVICE_TRUST_PROVIDER_TYPE_CROWDSTRIKE,
					TenantId:            s("tenant-1"),
					PublicSigningKeyUrl: s("https://keys.example.com/crowdstrike"),
				},
				{
					TrustProviderTypeUnrecognized: s("acme-posture"),
					TenantId:                      s(""),
				},
			},
		},
		Region:    "eu-west-1",
		AccountId: "123456789012",
	}
}

// sparseEndpoint returns an endpoint AWS could also send: enum values the
// contract does not know, set-but-empty strings, empty lists, nested
// messages with nothing set, and most optional fields absent.
func sparseEndpoint() *clientvpnv1.ClientVpnEndpoint {
	s := proto.String
	return &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId: s("cvpn-endpoint-00000000000000001"),
		Description:         s(""),
		Status: &clientvpnv1.ClientVpnEndpointStatus{
			CodeUnrecognized: s("suspended"),
		},
		CreationTime:                  s("not a time"),
		TransportProtocolUnrecognized: s("quic"),
		VpnProtocolUnrecognized:       s("wireguard"),
		SplitTunnel:                   proto.Bool(false),
		VpnPort:                       proto.Int32(0),
		ConnectionLogOptions:          &clientvpnv1.ConnectionLogResponseOptions{Enabled: proto.Bool(false)},
		ClientConnectOptions:          &clientvpnv1.ClientConnectResponseOptions{},
		AuthenticationOptions: []*clientvpnv1.ClientVpnAuthentication{
			{TypeUnrecognized: s("passkey-authentication")},
		},
		EndpointIpAddressTypeUnrecognized: s("ipv5"),
		TransitGatewayConfiguration:       &clientvpnv1.TransitGatewayConfiguration{},
		DevicePostureOptions:              &clientvpnv1.DevicePostureResponseOptions{},
		Region:                            "us-east-1",
		AccountId:                         "111111111111",
	}
}
