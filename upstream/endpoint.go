package upstream

import (
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// EndpointFromSDK maps an endpoint as the SDK decoded it to the API
// contract's message, field for field, and stamps it with the partition
// (accountID, region) it was read from.
//
// Nothing is dropped: an absent field stays absent (pointers stay pointers),
// lists keep AWS's order, an enum value the contract does not know leaves the
// enum unset and its AWS spelling in the sibling _unrecognized field, and
// creation/deletion times are kept verbatim with a parsed timestamp beside
// them when they parse (see vpnfacade.ParseTime). The result shares no memory with e.
func EndpointFromSDK(e types.ClientVpnEndpoint, accountID, region string) *clientvpnv1.ClientVpnEndpoint {
	out := &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId:           clone(e.ClientVpnEndpointId),
		Description:                   clone(e.Description),
		Status:                        endpointStatus(e.Status),
		CreationTime:                  clone(e.CreationTime),
		CreationTimeParsed:            vpnfacade.ParsedTime(e.CreationTime),
		DeletionTime:                  clone(e.DeletionTime),
		DeletionTimeParsed:            vpnfacade.ParsedTime(e.DeletionTime),
		DnsName:                       clone(e.DnsName),
		ClientCidrBlock:               clone(e.ClientCidrBlock),
		DnsServers:                    cloneStrings(e.DnsServers),
		SplitTunnel:                   clone(e.SplitTunnel),
		VpnPort:                       clone(e.VpnPort),
		AssociatedTargetNetworks:      mapSlice(e.AssociatedTargetNetworks, targetNetwork),
		ServerCertificateArn:          clone(e.ServerCertificateArn),
		AuthenticationOptions:         mapSlice(e.AuthenticationOptions, authentication),
		ConnectionLogOptions:          connectionLog(e.ConnectionLogOptions),
		Tags:                          mapSlice(e.Tags, tag),
		SecurityGroupIds:              cloneStrings(e.SecurityGroupIds),
		VpcId:                         clone(e.VpcId),
		SelfServicePortalUrl:          clone(e.SelfServicePortalUrl),
		ClientConnectOptions:          clientConnect(e.ClientConnectOptions),
		SessionTimeoutHours:           clone(e.SessionTimeoutHours),
		ClientLoginBannerOptions:      loginBanner(e.ClientLoginBannerOptions),
		ClientRouteEnforcementOptions: routeEnforcement(e.ClientRouteEnforcementOptions),
		DisconnectOnSessionTimeout:    clone(e.DisconnectOnSessionTimeout),
		TransitGatewayConfiguration:   transitGateway(e.TransitGatewayConfiguration),
		DevicePostureOptions:          devicePosture(e.DevicePostureOptions),
		Region:                        region,
		AccountId:                     accountID,
	}
	out.VpnProtocol, out.VpnProtocolUnrecognized = parseEnum[clientvpnv1.VpnProtocol](e.VpnProtocol)
	out.TransportProtocol, out.TransportProtocolUnrecognized = parseEnum[clientvpnv1.TransportProtocol](e.TransportProtocol)
	out.EndpointIpAddressType, out.EndpointIpAddressTypeUnrecognized = parseEnum[clientvpnv1.IpAddressType](e.EndpointIpAddressType)
	out.TrafficIpAddressType, out.TrafficIpAddressTypeUnrecognized = parseEnum[clientvpnv1.IpAddressType](e.TrafficIpAddressType)
	return out
}

func endpointStatus(s *types.ClientVpnEndpointStatus) *clientvpnv1.ClientVpnEndpointStatus {
	if s == nil {
		return nil
	}
	out := &clientvpnv1.ClientVpnEndpointStatus{Message: clone(s.Message)}
	out.Code, out.CodeUnrecognized = parseEnum[clientvpnv1.ClientVpnEndpointStatusCode](s.Code)
	return out
}

func targetNetwork(n types.AssociatedTargetNetwork) *clientvpnv1.AssociatedTargetNetwork {
	out := &clientvpnv1.AssociatedTargetNetwork{NetworkId: clone(n.NetworkId)}
	out.NetworkType, out.NetworkTypeUnrecognized = parseEnum[clientvpnv1.AssociatedNetworkType](n.NetworkType)
	return out
}

func authentication(a types.ClientVpnAuthentication) *clientvpnv1.ClientVpnAuthentication {
	out := &clientvpnv1.ClientVpnAuthentication{}
	out.Type, out.TypeUnrecognized = parseEnum[clientvpnv1.ClientVpnAuthenticationType](a.Type)
	if d := a.ActiveDirectory; d != nil {
		out.ActiveDirectory = &clientvpnv1.DirectoryServiceAuthentication{DirectoryId: clone(d.DirectoryId)}
	}
	if m := a.MutualAuthentication; m != nil {
		out.MutualAuthentication = &clientvpnv1.CertificateAuthentication{
			ClientRootCertificateChain: clone(m.ClientRootCertificateChain),
		}
	}
	if f := a.FederatedAuthentication; f != nil {
		out.FederatedAuthentication = &clientvpnv1.FederatedAuthentication{
			SamlProviderArn:            clone(f.SamlProviderArn),
			SelfServiceSamlProviderArn: clone(f.SelfServiceSamlProviderArn),
		}
	}
	return out
}

func connectionLog(o *types.ConnectionLogResponseOptions) *clientvpnv1.ConnectionLogResponseOptions {
	if o == nil {
		return nil
	}
	return &clientvpnv1.ConnectionLogResponseOptions{
		Enabled:                           clone(o.Enabled),
		CloudwatchLogGroup:                clone(o.CloudwatchLogGroup),
		CloudwatchLogStream:               clone(o.CloudwatchLogStream),
		IncludeAuthorizationPolicyContext: clone(o.IncludeAuthorizationPolicyContext),
	}
}

func tag(t types.Tag) *clientvpnv1.Tag {
	return &clientvpnv1.Tag{Key: clone(t.Key), Value: clone(t.Value)}
}

func clientConnect(o *types.ClientConnectResponseOptions) *clientvpnv1.ClientConnectResponseOptions {
	if o == nil {
		return nil
	}
	out := &clientvpnv1.ClientConnectResponseOptions{
		Enabled:           clone(o.Enabled),
		LambdaFunctionArn: clone(o.LambdaFunctionArn),
	}
	if s := o.Status; s != nil {
		out.Status = &clientvpnv1.ClientVpnEndpointAttributeStatus{Message: clone(s.Message)}
		out.Status.Code, out.Status.CodeUnrecognized = parseEnum[clientvpnv1.ClientVpnEndpointAttributeStatusCode](s.Code)
	}
	return out
}

func loginBanner(o *types.ClientLoginBannerResponseOptions) *clientvpnv1.ClientLoginBannerResponseOptions {
	if o == nil {
		return nil
	}
	return &clientvpnv1.ClientLoginBannerResponseOptions{
		Enabled:    clone(o.Enabled),
		BannerText: clone(o.BannerText),
	}
}

func routeEnforcement(o *types.ClientRouteEnforcementResponseOptions) *clientvpnv1.ClientRouteEnforcementResponseOptions {
	if o == nil {
		return nil
	}
	return &clientvpnv1.ClientRouteEnforcementResponseOptions{Enforced: clone(o.Enforced)}
}

func transitGateway(c *types.TransitGatewayConfigurationDescribeEndpointStructure) *clientvpnv1.TransitGatewayConfiguration {
	if c == nil {
		return nil
	}
	return &clientvpnv1.TransitGatewayConfiguration{
		TransitGatewayId:           clone(c.TransitGatewayId),
		TransitGatewayAttachmentId: clone(c.TransitGatewayAttachmentId),
		AvailabilityZones:          cloneStrings(c.AvailabilityZones),
		AvailabilityZoneIds:        cloneStrings(c.AvailabilityZoneIds),
	}
}

func devicePosture(o *types.DevicePostureResponseOptions) *clientvpnv1.DevicePostureResponseOptions {
	if o == nil {
		return nil
	}
	return &clientvpnv1.DevicePostureResponseOptions{TrustProviders: mapSlice(o.TrustProviders, trustProvider)}
}

func trustProvider(p types.ClientVpnTrustProvider) *clientvpnv1.ClientVpnTrustProvider {
	out := &clientvpnv1.ClientVpnTrustProvider{
		TenantId:            clone(p.TenantId),
		PublicSigningKeyUrl: clone(p.PublicSigningKeyUrl),
	}
	out.TrustProviderType, out.TrustProviderTypeUnrecognized = parseEnum[clientvpnv1.ClientVpnDeviceTrustProviderType](p.TrustProviderType)
	return out
}

// parseEnum maps an SDK enum value (a string type whose empty value means
// AWS sent nothing) to the contract's enum and _unrecognized sibling.
func parseEnum[E interface {
	~int32
	protoreflect.Enum
}, S ~string](s S) (E, *string) {
	if s == "" {
		var zero E
		return zero, nil
	}
	return vpnfacade.ParseEnum[E](string(s))
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func mapSlice[S, D any](in []S, f func(S) D) []D {
	if len(in) == 0 {
		return nil
	}
	out := make([]D, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
