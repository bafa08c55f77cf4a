package ec2query

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Namespace is the XML namespace of EC2 API version 2016-11-15 responses.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// ContentType is the Content-Type of EC2 responses, success or error.
const ContentType = "text/xml;charset=UTF-8"

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// approxEndpointBytes sizes the buffer of a response: a fully populated
// endpoint is up to about 3 KB of XML.
const approxEndpointBytes = 3072

// AppendDescribeClientVpnEndpoints appends the XML of a successful
// DescribeClientVpnEndpoints response to dst and returns the extended slice.
//
// Every endpoint becomes one <item> of <clientVpnEndpoint>, with EC2's
// element names and order. Unset optional fields are omitted; set empty
// strings are written as empty elements; lists are always written (empty
// when they have no items) when their parent is; enums are written with
// AWS's spelling, known or unrecognized; creationTime and deletionTime are
// written verbatim. The facade-only fields region and account_id are not
// written. <nextToken> is written only when nextToken is not empty. Nil
// endpoints are skipped.
func AppendDescribeClientVpnEndpoints(dst []byte, requestID string, endpoints []*clientvpnv1.ClientVpnEndpoint, nextToken string) []byte {
	return appendDescribeResponse(dst, requestID, nextToken, func(x *xmlBuffer) {
		for _, e := range endpoints {
			if e != nil {
				x.endpoint(e)
			}
		}
	})
}

// AppendEndpoint appends one endpoint's <item> element, exactly as
// AppendDescribeClientVpnEndpoints writes it, so that a server can encode
// each endpoint once and answer with AppendDescribeClientVpnEndpointsItems.
func AppendEndpoint(dst []byte, e *clientvpnv1.ClientVpnEndpoint) []byte {
	x := xmlBuffer{b: dst}
	x.endpoint(e)
	return x.b
}

// AppendDescribeClientVpnEndpointsItems is AppendDescribeClientVpnEndpoints
// for endpoints already encoded by AppendEndpoint: the items are copied in
// order, unchanged.
func AppendDescribeClientVpnEndpointsItems(dst []byte, requestID string, items [][]byte, nextToken string) []byte {
	return appendDescribeResponse(dst, requestID, nextToken, func(x *xmlBuffer) {
		for _, item := range items {
			x.b = append(x.b, item...)
		}
	})
}

// appendDescribeResponse appends a DescribeClientVpnEndpoints response
// whose <clientVpnEndpoint> list items writes.
func appendDescribeResponse(dst []byte, requestID, nextToken string, items func(*xmlBuffer)) []byte {
	x := xmlBuffer{b: dst}
	x.b = append(x.b, xmlHeader...)
	x.b = append(x.b, `<DescribeClientVpnEndpointsResponse xmlns="`+Namespace+`">`...)
	x.text("requestId", requestID)
	x.open("clientVpnEndpoint")
	items(&x)
	x.close("clientVpnEndpoint")
	if nextToken != "" {
		x.text("nextToken", nextToken)
	}
	x.close("DescribeClientVpnEndpointsResponse")
	return x.b
}

// WriteDescribeClientVpnEndpoints writes a successful
// DescribeClientVpnEndpoints response (HTTP 200, see
// AppendDescribeClientVpnEndpoints for the body).
func WriteDescribeClientVpnEndpoints(w http.ResponseWriter, requestID string, endpoints []*clientvpnv1.ClientVpnEndpoint, nextToken string) error {
	body := AppendDescribeClientVpnEndpoints(make([]byte, 0, 512+len(endpoints)*approxEndpointBytes),
		requestID, endpoints, nextToken)
	return writeXML(w, http.StatusOK, requestID, body)
}

// WriteDescribeClientVpnEndpointsItems is WriteDescribeClientVpnEndpoints
// for endpoints already encoded by AppendEndpoint.
func WriteDescribeClientVpnEndpointsItems(w http.ResponseWriter, requestID string, items [][]byte, nextToken string) error {
	size := 512 + len(nextToken)
	for _, item := range items {
		size += len(item)
	}
	body := AppendDescribeClientVpnEndpointsItems(make([]byte, 0, size), requestID, items, nextToken)
	return writeXML(w, http.StatusOK, requestID, body)
}

// AppendError appends EC2's error XML for e:
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>.
func AppendError(dst []byte, requestID string, e *APIError) []byte {
	x := xmlBuffer{b: dst}
	x.b = append(x.b, xmlHeader...)
	x.open("Response")
	x.open("Errors")
	x.open("Error")
	x.text("Code", e.Code)
	x.text("Message", e.Message)
	x.close("Error")
	x.close("Errors")
	x.text("RequestID", requestID)
	x.close("Response")
	return x.b
}

// WriteError writes err as EC2's error XML with its HTTP status, after
// translating it with ToAPIError (so an unexpected error is sent only as
// InternalError).
func WriteError(w http.ResponseWriter, requestID string, err error) error {
	ae := ToAPIError(err)
	return writeXML(w, ae.HTTPStatus, requestID, AppendError(make([]byte, 0, 256), requestID, ae))
}

// RequestIDHeader is the header the AWS SDKs read a request id from
// (the SDK for JavaScript v3's $metadata.requestId); it carries the same id
// as the body's RequestId.
const RequestIDHeader = "X-Amzn-Requestid"

// writeXML sends an XML body with its status and request id.
func writeXML(w http.ResponseWriter, status int, requestID string, body []byte) error {
	h := w.Header()
	h.Set(RequestIDHeader, requestID)
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("ec2query: write response body: %w", err)
	}
	return nil
}

// enum appends <name>spelling</name> when the enum field is set, known or
// not.
func (x *xmlBuffer) enum(name string, v protoreflect.Enum, unrecognized *string) {
	if s, ok := vpnfacade.EnumString(v, unrecognized); ok {
		x.text(name, s)
	}
}

// endpoint appends one <item> of <clientVpnEndpoint>.
func (x *xmlBuffer) endpoint(e *clientvpnv1.ClientVpnEndpoint) {
	x.open("item")
	x.optText("clientVpnEndpointId", e.ClientVpnEndpointId)
	x.optText("description", e.Description)
	if s := e.Status; s != nil {
		x.open("status")
		x.enum("code", s.Code, s.CodeUnrecognized)
		x.optText("message", s.Message)
		x.close("status")
	}
	x.optText("creationTime", e.CreationTime)
	x.optText("deletionTime", e.DeletionTime)
	x.optText("dnsName", e.DnsName)
	x.optText("clientCidrBlock", e.ClientCidrBlock)
	x.stringList("dnsServer", e.DnsServers)
	x.optBool("splitTunnel", e.SplitTunnel)
	x.enum("vpnProtocol", e.VpnProtocol, e.VpnProtocolUnrecognized)
	x.enum("transportProtocol", e.TransportProtocol, e.TransportProtocolUnrecognized)
	x.optInt("vpnPort", e.VpnPort)

	x.open("associatedTargetNetwork")
	for _, n := range e.AssociatedTargetNetworks {
		if n == nil {
			continue
		}
		x.open("item")
		x.optText("networkId", n.NetworkId)
		x.enum("networkType", n.NetworkType, n.NetworkTypeUnrecognized)
		x.close("item")
	}
	x.close("associatedTargetNetwork")

	x.optText("serverCertificateArn", e.ServerCertificateArn)

	x.open("authenticationOptions")
	for _, a := range e.AuthenticationOptions {
		if a != nil {
			x.authentication(a)
		}
	}
	x.close("authenticationOptions")

	if c := e.ConnectionLogOptions; c != nil {
		// Capitalised on EC2's wire; botocore matches names exactly.
		x.open("connectionLogOptions")
		x.optBool("Enabled", c.Enabled)
		x.optText("CloudwatchLogGroup", c.CloudwatchLogGroup)
		x.optText("CloudwatchLogStream", c.CloudwatchLogStream)
		x.optBool("IncludeAuthorizationPolicyContext", c.IncludeAuthorizationPolicyContext)
		x.close("connectionLogOptions")
	}

	x.open("tagSet")
	for _, t := range e.Tags {
		if t == nil {
			continue
		}
		x.open("item")
		x.optText("key", t.Key)
		x.optText("value", t.Value)
		x.close("item")
	}
	x.close("tagSet")

	x.stringList("securityGroupIdSet", e.SecurityGroupIds)
	x.optText("vpcId", e.VpcId)
	x.optText("selfServicePortalUrl", e.SelfServicePortalUrl)

	if c := e.ClientConnectOptions; c != nil {
		x.open("clientConnectOptions")
		x.optBool("enabled", c.Enabled)
		x.optText("lambdaFunctionArn", c.LambdaFunctionArn)
		if s := c.Status; s != nil {
			x.open("status")
			x.enum("code", s.Code, s.CodeUnrecognized)
			x.optText("message", s.Message)
			x.close("status")
		}
		x.close("clientConnectOptions")
	}

	x.optInt("sessionTimeoutHours", e.SessionTimeoutHours)

	if b := e.ClientLoginBannerOptions; b != nil {
		x.open("clientLoginBannerOptions")
		x.optBool("enabled", b.Enabled)
		x.optText("bannerText", b.BannerText)
		x.close("clientLoginBannerOptions")
	}
	if r := e.ClientRouteEnforcementOptions; r != nil {
		x.open("clientRouteEnforcementOptions")
		x.optBool("enforced", r.Enforced)
		x.close("clientRouteEnforcementOptions")
	}

	x.optBool("disconnectOnSessionTimeout", e.DisconnectOnSessionTimeout)
	x.enum("endpointIpAddressType", e.EndpointIpAddressType, e.EndpointIpAddressTypeUnrecognized)
	x.enum("trafficIpAddressType", e.TrafficIpAddressType, e.TrafficIpAddressTypeUnrecognized)

	if t := e.TransitGatewayConfiguration; t != nil {
		x.open("transitGatewayConfiguration")
		x.optText("transitGatewayId", t.TransitGatewayId)
		x.optText("transitGatewayAttachmentId", t.TransitGatewayAttachmentId)
		x.stringList("availabilityZoneSet", t.AvailabilityZones)
		x.stringList("availabilityZoneIdSet", t.AvailabilityZoneIds)
		x.close("transitGatewayConfiguration")
	}
	if d := e.DevicePostureOptions; d != nil {
		x.open("devicePostureOptions")
		x.open("trustProviderSet")
		for _, p := range d.TrustProviders {
			if p == nil {
				continue
			}
			x.open("item")
			x.enum("trustProviderType", p.TrustProviderType, p.TrustProviderTypeUnrecognized)
			x.optText("tenantId", p.TenantId)
			x.optText("publicSigningKeyUrl", p.PublicSigningKeyUrl)
			x.close("item")
		}
		x.close("trustProviderSet")
		x.close("devicePostureOptions")
	}
	x.close("item")
}

// authentication appends one <item> of <authenticationOptions>.
func (x *xmlBuffer) authentication(a *clientvpnv1.ClientVpnAuthentication) {
	x.open("item")
	x.enum("type", a.Type, a.TypeUnrecognized)
	if d := a.ActiveDirectory; d != nil {
		x.open("activeDirectory")
		x.optText("directoryId", d.DirectoryId)
		x.close("activeDirectory")
	}
	if m := a.MutualAuthentication; m != nil {
		x.open("mutualAuthentication")
		x.optText("clientRootCertificateChain", m.ClientRootCertificateChain)
		x.close("mutualAuthentication")
	}
	if f := a.FederatedAuthentication; f != nil {
		x.open("federatedAuthentication")
		x.optText("samlProviderArn", f.SamlProviderArn)
		x.optText("selfServiceSamlProviderArn", f.SelfServiceSamlProviderArn)
		x.close("federatedAuthentication")
	}
	x.close("item")
}
