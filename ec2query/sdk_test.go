package ec2query_test

import (
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The functions below turn what aws-sdk-go-v2 decoded back into the
// contract's type, field by field, so a test can compare it with what was
// encoded. (Production code does this in package upstream; the tests keep
// their own copy so that the wire format is checked independently of it.)

func enumFromSDK[E interface {
	~int32
	protoreflect.Enum
}](s string) (E, *string) {
	if s == "" {
		return 0, nil
	}
	return vpnfacade.ParseEnum[E](s)
}

func endpointFromSDK(e types.ClientVpnEndpoint) *clientvpnv1.ClientVpnEndpoint {
	out := &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId:        e.ClientVpnEndpointId,
		Description:                e.Description,
		CreationTime:               e.CreationTime,
		DeletionTime:               e.DeletionTime,
		DnsName:                    e.DnsName,
		ClientCidrBlock:            e.ClientCidrBlock,
		DnsServers:                 e.DnsServers,
		SplitTunnel:                e.SplitTunnel,
		VpnPort:                    e.VpnPort,
		ServerCertificateArn:       e.ServerCertificateArn,
		SecurityGroupIds:           e.SecurityGroupIds,
		VpcId:                      e.VpcId,
		SelfServicePortalUrl:       e.SelfServicePortalUrl,
		SessionTimeoutHours:        e.SessionTimeoutHours,
		DisconnectOnSessionTimeout: e.DisconnectOnSessionTimeout,
	}
	out.VpnProtocol, out.VpnProtocolUnrecognized = enumFromSDK[clientvpnv1.VpnProtocol](string(e.VpnProtocol))
	out.TransportProtocol, out.TransportProtocolUnrecognized = enumFromSDK[clientvpnv1.TransportProtocol](string(e.TransportProtocol))
	out.EndpointIpAddressType, out.EndpointIpAddressTypeUnrecognized = enumFromSDK[clientvpnv1.IpAddressType](string(e.EndpointIpAddressType))
	out.TrafficIpAddressType, out.TrafficIpAddressTypeUnrecognized = enumFromSDK[clientvpnv1.IpAddressType](string(e.TrafficIpAddressType))
	if s := e.Status; s != nil {
		st := &clientvpnv1.ClientVpnEndpointStatus{Message: s.Message}
		st.Code, st.CodeUnrecognized = enumFromSDK[clientvpnv1.ClientVpnEndpointStatusCode](string(s.Code))
		out.Status = st
	}
	for _, n := range e.AssociatedTargetNetworks {
		an := &clientvpnv1.AssociatedTargetNetwork{NetworkId: n.NetworkId}
		an.NetworkType, an.NetworkTypeUnrecognized = enumFromSDK[clientvpnv1.AssociatedNetworkType](string(n.NetworkType))
		out.AssociatedTargetNetworks = append(out.AssociatedTargetNetworks, an)
	}
	for _, a := range e.AuthenticationOptions {
		ca := &clientvpnv1.ClientVpnAuthentication{}
		ca.Type, ca.TypeUnrecognized = enumFromSDK[clientvpnv1.ClientVpnAuthenticationType](string(a.Type))
		if d := a.ActiveDirectory; d != nil {
			ca.ActiveDirectory = &clientvpnv1.DirectoryServiceAuthentication{DirectoryId: d.DirectoryId}
		}
		if m := a.MutualAuthentication; m != nil {
			ca.MutualAuthentication = &clientvpnv1.CertificateAuthentication{ClientRootCertificateChain: m.ClientRootCertificateChain}
		}
		if f := a.FederatedAuthentication; f != nil {
			ca.FederatedAuthentication = &clientvpnv1.FederatedAuthentication{
				SamlProviderArn: f.SamlProviderArn, SelfServiceSamlProviderArn: f.SelfServiceSamlProviderArn,
			}
		}
		out.AuthenticationOptions = append(out.AuthenticationOptions, ca)
	}
	if c := e.ConnectionLogOptions; c != nil {
		out.ConnectionLogOptions = &clientvpnv1.ConnectionLogResponseOptions{
			Enabled:                           c.Enabled,
			CloudwatchLogGroup:                c.CloudwatchLogGroup,
			CloudwatchLogStream:               c.CloudwatchLogStream,
			IncludeAuthorizationPolicyContext: c.IncludeAuthorizationPolicyContext,
		}
	}
	for _, t := range e.Tags {
		out.Tags = append(out.Tags, &clientvpnv1.Tag{Key: t.Key, Value: t.Value})
	}
	if c := e.ClientConnectOptions; c != nil {
		cc := &clientvpnv1.ClientConnectResponseOptions{Enabled: c.Enabled, LambdaFunctionArn: c.LambdaFunctionArn}
		if s := c.Status; s != nil {
			cc.Status = &clientvpnv1.ClientVpnEndpointAttributeStatus{Message: s.Message}
			cc.Status.Code, cc.Status.CodeUnrecognized = enumFromSDK[clientvpnv1.ClientVpnEndpointAttributeStatusCode](string(s.Code))
		}
		out.ClientConnectOptions = cc
	}
	if b := e.ClientLoginBannerOptions; b != nil {
		out.ClientLoginBannerOptions = &clientvpnv1.ClientLoginBannerResponseOptions{Enabled: b.Enabled, BannerText: b.BannerText}
	}
	if r := e.ClientRouteEnforcementOptions; r != nil {
		out.ClientRouteEnforcementOptions = &clientvpnv1.ClientRouteEnforcementResponseOptions{Enforced: r.Enforced}
	}
	if t := e.TransitGatewayConfiguration; t != nil {
		out.TransitGatewayConfiguration = &clientvpnv1.TransitGatewayConfiguration{
			TransitGatewayId:           t.TransitGatewayId,
			TransitGatewayAttachmentId: t.TransitGatewayAttachmentId,
			AvailabilityZones:          t.AvailabilityZones,
			AvailabilityZoneIds:        t.AvailabilityZoneIds,
		}
	}
	if d := e.DevicePostureOptions; d != nil {
		dp := &clientvpnv1.DevicePostureResponseOptions{}
		for _, p := range d.TrustProviders {
			tp := &clientvpnv1.ClientVpnTrustProvider{TenantId: p.TenantId, PublicSigningKeyUrl: p.PublicSigningKeyUrl}
			tp.TrustProviderType, tp.TrustProviderTypeUnrecognized = enumFromSDK[clientvpnv1.ClientVpnDeviceTrustProviderType](string(p.TrustProviderType))
			dp.TrustProviders = append(dp.TrustProviders, tp)
		}
		out.DevicePostureOptions = dp
	}
	return out
}
