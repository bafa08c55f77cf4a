package ec2sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// Defaults of the generator and of the server.
const (
	// DefaultRegion is the region of unsigned requests and of generated
	// data when no region is given.
	DefaultRegion = "us-east-1"
	// DefaultAccount is the account of requests whose access key does not
	// name one, and of generated data when no account is given.
	DefaultAccount = "111111111111"
)

// The two creationTime shapes EC2 is seen to send.
const (
	timeLayoutSpace = "2006-01-02 15:04:05"
	timeLayoutT     = "2006-01-02T15:04:05"
)

// GenerateOptions controls Generate.
type GenerateOptions struct {
	// Count is how many endpoints to generate in total.
	Count int
	// Seed makes the output reproducible: the same options give the same
	// endpoints.
	Seed uint64
	// Regions the endpoints are spread over; default [DefaultRegion].
	Regions []string
	// Accounts the endpoints are spread over; default [DefaultAccount].
	Accounts []string
}

// Generate returns Count realistic, varied endpoints spread over every
// (account, region) pair, deterministically for a given seed.
//
// Across a set of a few dozen endpoints every field and nested option of the
// contract is used, and left unset on others: all authentication types,
// deleted and deleting endpoints, both creationTime shapes, unicode and XML
// special characters in descriptions, tags and banners, set-but-empty
// strings, and enum values the contract does not know (status "suspended",
// as AWS adds values over time). Ids are "cvpn-endpoint-" and 17 lowercase
// hex digits, unique within the set; region, account_id and the parsed times
// are filled consistently.
func Generate(opts GenerateOptions) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	if opts.Count < 0 {
		return nil, fmt.Errorf("generate: count must be 0 or more, got %d", opts.Count)
	}
	regions, accounts, err := generateScope(opts)
	if err != nil {
		return nil, err
	}
	g := newGenerator(opts.Seed)
	out := make([]*clientvpnv1.ClientVpnEndpoint, opts.Count)
	for i := range out {
		// Spread round-robin so every pair gets its share even for small counts.
		pair := i % (len(regions) * len(accounts))
		out[i] = g.endpoint(i, accounts[pair/len(regions)], regions[pair%len(regions)])
	}
	return out, nil
}

// generateScope validates and defaults the regions and accounts.
func generateScope(opts GenerateOptions) (regions, accounts []string, err error) {
	regions, accounts = opts.Regions, opts.Accounts
	if len(regions) == 0 {
		regions = []string{DefaultRegion}
	}
	if len(accounts) == 0 {
		accounts = []string{DefaultAccount}
	}
	for _, r := range regions {
		if !validRegion(r) {
			return nil, nil, fmt.Errorf("generate: region %q is not a region name like eu-west-1", r)
		}
	}
	for _, a := range accounts {
		if !validAccount(a) {
			return nil, nil, fmt.Errorf("generate: account %q is not 12 digits", a)
		}
	}
	return regions, accounts, nil
}

// validRegion reports whether r looks like a region name: lowercase
// letters, digits and dashes, starting with a letter.
func validRegion(r string) bool {
	if r == "" || len(r) > 32 || r[0] < 'a' || r[0] > 'z' {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validAccount reports whether a is an AWS account id: 12 digits.
func validAccount(a string) bool {
	if len(a) != 12 {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < '0' || a[i] > '9' {
			return false
		}
	}
	return true
}

// generator makes endpoints from one random stream. It is not safe for
// concurrent use.
type generator struct {
	rng  *rand.Rand
	used map[string]bool // ids handed out
}

func newGenerator(seed uint64) *generator {
	return &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), used: map[string]bool{}}
}

// hex returns n random lowercase hex digits.
func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

// id returns an endpoint id not handed out before.
func (g *generator) id() string {
	for {
		id := "cvpn-endpoint-" + g.hex(17)
		if !g.used[id] {
			g.used[id] = true
			return id
		}
	}
}

func (g *generator) pick(items []string) string { return items[g.rng.IntN(len(items))] }

func (g *generator) chance(p float64) bool { return g.rng.Float64() < p }

// Text pools. They include XML special characters and non-ASCII text on
// purpose: every encoder on the way must escape them.
var (
	descriptions = []string{
		"Corporate VPN", "Engineering access", "R&D lab <staging>", "Contractors — read only",
		"Équipe réseau", "開発チーム VPN", "\"Break-glass\" access", "It's the on-call VPN",
		"Payments (PCI) & audit", "VPN for 🚀 launch team", "Remote office: São Paulo", "Legacy <v1> endpoint",
	}
	tagNames = []string{
		"prod-vpn", "staging-vpn", "dev <sandbox>", "R&D", "équipe-réseau", "東京", "on-call \"primary\"", "o'brien-test",
	}
	teams       = []string{"platform", "security", "data", "réseau", "payments & risk", "SRE <24/7>", "インフラ"}
	environment = []string{"production", "staging", "development", "sandbox"}
	owners      = []string{"alice@example.com", "bob@example.com", "ops-team@example.com", "zoë@example.com"}
	banners     = []string{
		"Authorized use only. Activity is monitored & logged.",
		"Accès réservé — toute activité est journalisée.",
		"<b>Warning</b>: this system is for authorized users only.",
		"許可された利用者のみ",
	}
	posture = []string{"crowdstrike", "jamf", "jumpcloud"}
)

// endpoint generates the i-th endpoint of a set. Feature choices that must
// appear in any reasonably sized set cycle with i; values are random.
func (g *generator) endpoint(i int, account, region string) *clientvpnv1.ClientVpnEndpoint {
	s := proto.String
	id := g.id()
	e := &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId: s(id),
		Region:              region,
		AccountId:           account,
	}

	switch i % 20 {
	case 5: // absent
	case 11:
		e.Description = s("") // set but empty
	default:
		e.Description = s(g.pick(descriptions))
	}

	// Status, with deleted and deleting endpoints and one AWS added later.
	status := &clientvpnv1.ClientVpnEndpointStatus{}
	switch i % 23 {
	case 3:
		status.Code = clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_DELETED
	case 7:
		status.Code = clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_DELETING
	case 10, 17:
		status.Code = clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_PENDING_ASSOCIATE
		status.Message = s("Associate a target network to make the endpoint available")
	case 13:
		status.Code = clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_PENDING
	case 19:
		status.CodeUnrecognized = s("suspended")
		status.Message = s("Suspended: billing <hold> & review")
	default:
		status.Code = clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_AVAILABLE
	}
	e.Status = status

	created := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.rng.Int64N(int64(7 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	layout := timeLayoutSpace
	if i%2 == 1 {
		layout = timeLayoutT
	}
	e.CreationTime = s(created.Format(layout))
	deleted := status.Code == clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_DELETED ||
		status.Code == clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_DELETING
	if deleted {
		e.DeletionTime = s(created.Add(time.Duration(1+g.rng.IntN(900)) * 24 * time.Hour).Format(layout))
	}

	e.DnsName = s(fmt.Sprintf("*.%s.prod.clientvpn.%s.amazonaws.com", id, region))
	if g.chance(0.5) {
		e.ClientCidrBlock = s(fmt.Sprintf("10.%d.%d.0/22", g.rng.IntN(256), 4*g.rng.IntN(64)))
	} else {
		e.ClientCidrBlock = s(fmt.Sprintf("172.%d.%d.0/22", 16+g.rng.IntN(16), 4*g.rng.IntN(64)))
	}
	switch i % 3 {
	case 1:
		e.DnsServers = []string{fmt.Sprintf("10.%d.0.2", g.rng.IntN(256))}
	case 2:
		e.DnsServers = []string{fmt.Sprintf("10.%d.0.2", g.rng.IntN(256)), "1.1.1.1"}
	}
	e.SplitTunnel = proto.Bool(g.chance(0.6))
	if i%29 == 9 {
		e.VpnProtocolUnrecognized = s("wireguard")
	} else {
		e.VpnProtocol = clientvpnv1.VpnProtocol_VPN_PROTOCOL_OPENVPN
	}
	switch {
	case i%37 == 12:
		e.TransportProtocolUnrecognized = s("quic")
	case i%5 < 3:
		e.TransportProtocol = clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP
	default:
		e.TransportProtocol = clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_TCP
	}
	if g.chance(0.5) {
		e.VpnPort = proto.Int32(443)
	} else {
		e.VpnPort = proto.Int32(1194)
	}

	vpc := "vpc-" + g.hex(17)
	if !deleted {
		e.VpcId = s(vpc)
		e.SecurityGroupIds = []string{"sg-" + g.hex(17)}
		if i%4 == 0 {
			e.SecurityGroupIds = append(e.SecurityGroupIds, "sg-"+g.hex(17))
		}
		if status.Code == clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_AVAILABLE {
			e.AssociatedTargetNetworks = []*clientvpnv1.AssociatedTargetNetwork{{
				NetworkId: s(vpc), NetworkType: clientvpnv1.AssociatedNetworkType_ASSOCIATED_NETWORK_TYPE_VPC,
			}}
			if i%31 == 4 {
				e.AssociatedTargetNetworks = append(e.AssociatedTargetNetworks, &clientvpnv1.AssociatedTargetNetwork{
					NetworkId: s("subnet-" + g.hex(17)), NetworkTypeUnrecognized: s("subnet"),
				})
			}
		}
	}
	e.ServerCertificateArn = s(g.acmArn(account, region))
	e.AuthenticationOptions = g.authentication(i, account, region)
	for _, a := range e.AuthenticationOptions {
		if f := a.FederatedAuthentication; f != nil && f.SelfServiceSamlProviderArn != nil {
			e.SelfServicePortalUrl = s("https://self-service.clientvpn.amazonaws.com/endpoints/" + id)
		}
	}

	logs := &clientvpnv1.ConnectionLogResponseOptions{Enabled: proto.Bool(i%3 != 0)}
	if logs.GetEnabled() {
		logs.CloudwatchLogGroup = s("/aws/clientvpn/" + g.pick(environment))
		logs.CloudwatchLogStream = s("connections-" + g.hex(6))
		if i%6 == 1 {
			logs.IncludeAuthorizationPolicyContext = proto.Bool(g.chance(0.5))
		}
	}
	e.ConnectionLogOptions = logs

	e.Tags = g.tags(i)

	cc := &clientvpnv1.ClientConnectResponseOptions{Enabled: proto.Bool(i%8 == 2)}
	if cc.GetEnabled() {
		cc.LambdaFunctionArn = s(fmt.Sprintf("arn:aws:lambda:%s:%s:function:AWSClientVPN-%s", region, account, g.hex(8)))
		cc.Status = &clientvpnv1.ClientVpnEndpointAttributeStatus{
			Code: clientvpnv1.ClientVpnEndpointAttributeStatusCode_CLIENT_VPN_ENDPOINT_ATTRIBUTE_STATUS_CODE_APPLIED,
		}
		switch {
		case i%48 == 26:
			cc.Status.Code = 0
			cc.Status.CodeUnrecognized = s("rolling-back")
		case i%16 == 10:
			cc.Status.Code = clientvpnv1.ClientVpnEndpointAttributeStatusCode_CLIENT_VPN_ENDPOINT_ATTRIBUTE_STATUS_CODE_APPLYING
			cc.Status.Message = s("Applying the client connect handler")
		}
	}
	e.ClientConnectOptions = cc

	// Options AWS added over the years are absent on the oldest endpoints.
	legacy := i%9 == 8
	if !legacy {
		e.SessionTimeoutHours = proto.Int32([]int32{8, 10, 12, 24}[g.rng.IntN(4)])
		banner := &clientvpnv1.ClientLoginBannerResponseOptions{Enabled: proto.Bool(i%4 == 1)}
		if banner.GetEnabled() {
			banner.BannerText = s(g.pick(banners))
		}
		e.ClientLoginBannerOptions = banner
		e.ClientRouteEnforcementOptions = &clientvpnv1.ClientRouteEnforcementResponseOptions{Enforced: proto.Bool(i%7 == 3)}
		e.DisconnectOnSessionTimeout = proto.Bool(i%2 == 0)
		switch i % 11 {
		case 4:
			e.EndpointIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_DUAL_STACK
			e.TrafficIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_DUAL_STACK
		case 6:
			e.EndpointIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV6
			e.TrafficIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV6
		case 9:
			e.EndpointIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV4
			e.TrafficIpAddressTypeUnrecognized = s("ipv6-only")
		case 10:
			e.EndpointIpAddressTypeUnrecognized = s("ipv6-only")
			e.TrafficIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV6
		default:
			e.EndpointIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV4
			e.TrafficIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_IPV4
		}
	}
	if i%10 == 6 {
		e.TransitGatewayConfiguration = &clientvpnv1.TransitGatewayConfiguration{
			TransitGatewayId:           s("tgw-" + g.hex(17)),
			TransitGatewayAttachmentId: s("tgw-attach-" + g.hex(17)),
			AvailabilityZones:          []string{region + "a", region + "b"},
			AvailabilityZoneIds:        []string{azID(region, 1), azID(region, 2)},
		}
	}
	if i%10 == 7 {
		dp := &clientvpnv1.DevicePostureResponseOptions{}
		for k := range 1 + i%3 {
			tp := &clientvpnv1.ClientVpnTrustProvider{
				TenantId:            s("tenant-" + g.hex(8)),
				PublicSigningKeyUrl: s("https://posture.example.com/keys/" + g.hex(8)),
			}
			if k == 2 {
				tp.TrustProviderTypeUnrecognized = s("acme-posture")
				tp.TenantId = s("")
			} else {
				tp.TrustProviderType = clientvpnv1.ClientVpnDeviceTrustProviderType(1 + g.rng.IntN(len(posture)))
			}
			dp.TrustProviders = append(dp.TrustProviders, tp)
		}
		e.DevicePostureOptions = dp
	}
	fillParsedTimes(e)
	return e
}

// authentication returns the authentication options of the i-th endpoint:
// each type alone, and the combinations AWS allows (certificate plus
// directory or federated).
func (g *generator) authentication(i int, account, region string) []*clientvpnv1.ClientVpnAuthentication {
	cert := func() *clientvpnv1.ClientVpnAuthentication {
		return &clientvpnv1.ClientVpnAuthentication{
			Type:                 clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_CERTIFICATE_AUTHENTICATION,
			MutualAuthentication: &clientvpnv1.CertificateAuthentication{ClientRootCertificateChain: proto.String(g.acmArn(account, region))},
		}
	}
	dir := func() *clientvpnv1.ClientVpnAuthentication {
		return &clientvpnv1.ClientVpnAuthentication{
			Type:            clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_DIRECTORY_SERVICE_AUTHENTICATION,
			ActiveDirectory: &clientvpnv1.DirectoryServiceAuthentication{DirectoryId: proto.String("d-" + g.hex(10))},
		}
	}
	fed := func(selfService bool) *clientvpnv1.ClientVpnAuthentication {
		f := &clientvpnv1.FederatedAuthentication{
			SamlProviderArn: proto.String(fmt.Sprintf("arn:aws:iam::%s:saml-provider/%s", account, g.pick([]string{"Okta", "AzureAD", "OneLogin"}))),
		}
		if selfService {
			f.SelfServiceSamlProviderArn = proto.String(fmt.Sprintf("arn:aws:iam::%s:saml-provider/SelfService", account))
		}
		return &clientvpnv1.ClientVpnAuthentication{
			Type:                    clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_FEDERATED_AUTHENTICATION,
			FederatedAuthentication: f,
		}
	}
	switch i % 6 {
	case 0:
		return []*clientvpnv1.ClientVpnAuthentication{cert()}
	case 1:
		return []*clientvpnv1.ClientVpnAuthentication{dir()}
	case 2:
		return []*clientvpnv1.ClientVpnAuthentication{fed(true)}
	case 3:
		return []*clientvpnv1.ClientVpnAuthentication{cert(), dir()}
	case 4:
		return []*clientvpnv1.ClientVpnAuthentication{cert(), fed(false)}
	default:
		if i%12 == 11 {
			// A method AWS might add one day: kept verbatim.
			return []*clientvpnv1.ClientVpnAuthentication{{TypeUnrecognized: proto.String("passkey-authentication")}}
		}
		return []*clientvpnv1.ClientVpnAuthentication{fed(false)}
	}
}

// tags returns the tags of the i-th endpoint: none on some, several with
// special characters and empty values on others.
func (g *generator) tags(i int) []*clientvpnv1.Tag {
	if i%7 == 6 {
		return nil
	}
	s := proto.String
	tags := []*clientvpnv1.Tag{{Key: s("Name"), Value: s(g.pick(tagNames))}}
	tags = append(tags, &clientvpnv1.Tag{Key: s("Environment"), Value: s(g.pick(environment))})
	if i%2 == 0 {
		tags = append(tags, &clientvpnv1.Tag{Key: s("Team"), Value: s(g.pick(teams))})
	}
	if i%3 == 0 {
		tags = append(tags, &clientvpnv1.Tag{Key: s("Owner"), Value: s(g.pick(owners))})
	}
	if i%5 == 2 {
		tags = append(tags, &clientvpnv1.Tag{Key: s("équipe & coût"), Value: s("<réseau> \"α\" 'β'")})
	}
	if i%13 == 1 {
		tags = append(tags, &clientvpnv1.Tag{Key: s("empty-value"), Value: s("")})
	}
	return tags
}

func (g *generator) acmArn(account, region string) string {
	return fmt.Sprintf("arn:aws:acm:%s:%s:certificate/%s-%s-%s-%s-%s", region, account,
		g.hex(8), g.hex(4), g.hex(4), g.hex(4), g.hex(12))
}

// azID returns an availability zone id like "euw1-az2" for a region
// ("eu-west-1").
func azID(region string, n int) string {
	var short strings.Builder
	parts := strings.Split(region, "-")
	for i, p := range parts {
		switch {
		case p == "":
		case i == len(parts)-1:
			short.WriteString(p)
		default:
			short.WriteByte(p[0])
		}
	}
	return fmt.Sprintf("%s-az%d", short.String(), n)
}

// fillParsedTimes sets creation_time_parsed and deletion_time_parsed from
// their strings when they parse, and clears them when they do not.
func fillParsedTimes(e *clientvpnv1.ClientVpnEndpoint) {
	e.CreationTimeParsed = vpnfacade.ParsedTime(e.CreationTime)
	e.DeletionTimeParsed = vpnfacade.ParsedTime(e.DeletionTime)
}
