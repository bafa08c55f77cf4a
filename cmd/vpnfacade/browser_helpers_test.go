package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/prereq"
)

// artifactsEnv names a directory where the browser tests keep their
// screenshots; without it they go to the test's temporary directory.
const artifactsEnv = "VPNFACADE_BROWSER_ARTIFACTS"

// browser is one headless Chromium for a test; each tab is a page.
type browser struct {
	ctx       context.Context
	artifacts string
}

// newBrowser starts headless Chromium (the Debian package's binary) for the
// test. Without Chromium the test fails, naming the command that installs
// it (./test installs it).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := prereq.Chromium(t)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", "en-US"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{ctx: ctx, artifacts: dir}
}

// tab opens a new tab, closed with the test; every action in it is bounded.
func (b *browser) tab(t *testing.T) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx)
	tab, cancelTimeout := context.WithTimeout(tab, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	return tab
}

// open loads a page and waits until it has answered its first read (rows,
// an empty state or an error), not just until the HTML loaded.
func (b *browser) open(t *testing.T, tab context.Context, url string) {
	t.Helper()
	run(t, tab, chromedp.Navigate(url))
	b.waitLoadedAfter(t, tab, 0)
}

// waitLoadedAfter waits until the page completed a read after the count before.
func (b *browser) waitLoadedAfter(t *testing.T, tab context.Context, before int) {
	t.Helper()
	_, err := chromedp.Run(tab, chromedp.Poll[int](fmt.Sprintf(`(Number(document.body.dataset.loads) || 0) > %d && document.body.dataset.state !== 'loading' ? Number(document.body.dataset.loads) : 0`, before),
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("the page did not finish reading: %v", err)
	}
}

// clickAndWait clicks and waits for the read the click starts.
func (b *browser) clickAndWait(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	before := loads(t, tab)
	click(t, tab, sel)
	b.waitLoadedAfter(t, tab, before)
}

// submitFilter types a filter and Enter into the filter box and waits for the read.
func (b *browser) submitFilter(t *testing.T, tab context.Context, text string) {
	t.Helper()
	before := loads(t, tab)
	typeIn(t, tab, "#filter", text+"\r")
	b.waitLoadedAfter(t, tab, before)
}

// screenshot saves the whole page as <name>.png among the artifacts.
func (b *browser) screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.artifacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func run(t *testing.T, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("browser: %s: %v", js, err)
	}
	return v
}

func evalStrings(t *testing.T, tab context.Context, js string) []string {
	t.Helper()
	return eval[[]string](t, tab, js)
}

func click(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	run(t, tab, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func typeIn(t *testing.T, tab context.Context, sel, text string) {
	t.Helper()
	run(t, tab, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

func loads(t *testing.T, tab context.Context) int {
	t.Helper()
	return int(eval[float64](t, tab, `Number(document.body.dataset.loads) || 0`))
}

// rowKeys lists the table's rows as account/region/id, top to bottom.
func rowKeys(t *testing.T, tab context.Context) []string {
	t.Helper()
	return evalStrings(t, tab, `[...document.querySelectorAll('#endpoints tbody tr')].map(r => r.dataset.key)`)
}

func visible(t *testing.T, tab context.Context, sel string) bool {
	t.Helper()
	return eval[bool](t, tab, fmt.Sprintf(`(e => !!e && e.checkVisibility())(document.querySelector(%q))`, sel))
}

func enabled(t *testing.T, tab context.Context, sel string) bool {
	t.Helper()
	return eval[bool](t, tab, fmt.Sprintf(`!document.querySelector(%q).disabled`, sel))
}

// visibleText is the rendered text of an element, as a user reads it.
func visibleText(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	return eval[string](t, tab, fmt.Sprintf(`(e => e ? e.innerText.trim() : '')(document.querySelector(%q))`, sel))
}

// waitText waits until an element's text matches re (and every extra
// condition), and returns it.
func waitText(t *testing.T, tab context.Context, sel string, re interface{ MatchString(string) bool }, extra ...func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		text := visibleText(t, tab, sel)
		ok := re.MatchString(text)
		for _, f := range extra {
			ok = ok && f(text)
		}
		if ok {
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s reads %q, want a match of %v", sel, text, re)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lines splits text into its non-blank lines.
func lines(text string) []string {
	var out []string
	for l := range strings.Lines(text) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func query(t *testing.T, tab context.Context) url.Values {
	t.Helper()
	q, err := url.ParseQuery(strings.TrimPrefix(eval[string](t, tab, `location.search`), "?"))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// apiAnswer is one page of the API, as the page keys its rows.
type apiAnswer struct {
	keys     []string
	next     string
	snapshot *clientvpnv1.SnapshotInfo
}

func apiPage(t *testing.T, c clientvpnv1connect.ClientVpnServiceClient, filters []*clientvpnv1.Filter, size int32, token string) apiAnswer {
	t.Helper()
	res, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{Filters: filters, MaxResults: size, NextToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return apiAnswer{keys: keysOf(res.GetClientVpnEndpoints()), next: res.GetNextToken(), snapshot: res.GetSnapshot()}
}

func keyOf(e *clientvpnv1.ClientVpnEndpoint) string {
	return e.GetAccountId() + "/" + e.GetRegion() + "/" + e.GetClientVpnEndpointId()
}

func keysOf(es []*clientvpnv1.ClientVpnEndpoint) []string {
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = keyOf(e)
	}
	return keys
}

// head shortens a list for a failure message.
func head(s []string) []string { return s[:min(len(s), 3)] }

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func tagValue(e *clientvpnv1.ClientVpnEndpoint, key string) string {
	for _, tag := range e.GetTags() {
		if tag.GetKey() == key {
			return tag.GetValue()
		}
	}
	return ""
}

func statusSpelling(e *clientvpnv1.ClientVpnEndpoint) string {
	s, _ := vpnfacade.EnumString(e.GetStatus().GetCode(), e.GetStatus().CodeUnrecognized)
	return s
}

func asConnectError(err error, target **connect.Error) bool { return errors.As(err, target) }

func (s *sim) byKey(key string) *clientvpnv1.ClientVpnEndpoint {
	for _, e := range s.data {
		if keyOf(e) == key {
			return e
		}
	}
	return nil
}

// stoppableSim is an emulator the test can take down, as an AWS outage would.
type stoppableSim struct {
	*sim
	hs *http.Server
}

func (s *stoppableSim) stop() { _ = s.hs.Close() }

// startSimWith serves the given endpoints from an in-process emulator.
func startSimWith(t *testing.T, data []*clientvpnv1.ClientVpnEndpoint) *stoppableSim {
	t.Helper()
	s, hs := serveSim(t, data, ec2sim.Options{})
	return &stoppableSim{sim: s, hs: hs}
}

// everyFieldSet returns base with every field of the contract set, the way
// AWS could send it: three authentication methods, two target networks, a
// transit gateway and device posture, and values the contract does not know
// for some enums (whose known field then stays unset).
func everyFieldSet(base *clientvpnv1.ClientVpnEndpoint) *clientvpnv1.ClientVpnEndpoint {
	s := proto.String
	e := proto.CloneOf(base)
	id, region, account := e.GetClientVpnEndpointId(), e.GetRegion(), e.GetAccountId()
	e.Description = s("Payments (PCI) & audit <full>")
	e.Status = &clientvpnv1.ClientVpnEndpointStatus{
		Code:    clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_DELETING,
		Message: s("Deleting: requested by o'brien"),
	}
	e.CreationTime = s("2021-03-04 05:06:07")
	e.DeletionTime = s("2025-06-07T08:09:10")
	e.DnsServers = []string{"10.0.0.2", "1.1.1.1"}
	e.SplitTunnel = proto.Bool(true)
	e.VpnProtocol = clientvpnv1.VpnProtocol_VPN_PROTOCOL_OPENVPN
	e.TransportProtocol = clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP
	e.VpnPort = proto.Int32(1194)
	e.VpcId = s("vpc-0123456789abcdef0")
	e.AssociatedTargetNetworks = []*clientvpnv1.AssociatedTargetNetwork{
		{NetworkId: s("vpc-0123456789abcdef0"), NetworkType: clientvpnv1.AssociatedNetworkType_ASSOCIATED_NETWORK_TYPE_VPC},
		{NetworkId: s("subnet-0123456789abcdef1"), NetworkTypeUnrecognized: s("subnet")},
	}
	e.AuthenticationOptions = []*clientvpnv1.ClientVpnAuthentication{
		{
			Type:                 clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_CERTIFICATE_AUTHENTICATION,
			MutualAuthentication: &clientvpnv1.CertificateAuthentication{ClientRootCertificateChain: s("arn:aws:acm:" + region + ":" + account + ":certificate/root")},
		},
		{
			Type:            clientvpnv1.ClientVpnAuthenticationType_CLIENT_VPN_AUTHENTICATION_TYPE_DIRECTORY_SERVICE_AUTHENTICATION,
			ActiveDirectory: &clientvpnv1.DirectoryServiceAuthentication{DirectoryId: s("d-0123456789")},
		},
		{
			TypeUnrecognized: s("oidc-authentication"),
			FederatedAuthentication: &clientvpnv1.FederatedAuthentication{
				SamlProviderArn:            s("arn:aws:iam::" + account + ":saml-provider/Okta"),
				SelfServiceSamlProviderArn: s("arn:aws:iam::" + account + ":saml-provider/SelfService"),
			},
		},
	}
	e.SelfServicePortalUrl = s("https://self-service.clientvpn.amazonaws.com/endpoints/" + id)
	e.ConnectionLogOptions = &clientvpnv1.ConnectionLogResponseOptions{
		Enabled: proto.Bool(true), CloudwatchLogGroup: s("/aws/clientvpn/production"),
		CloudwatchLogStream: s("connections-abc123"), IncludeAuthorizationPolicyContext: proto.Bool(false),
	}
	e.Tags = []*clientvpnv1.Tag{
		{Key: s("Name"), Value: s("payments-vpn")},
		{Key: s("Environment"), Value: s("production")},
		{Key: s("équipe & coût"), Value: s("<réseau> \"α\" 'β'")},
		{Key: s("empty-value"), Value: s("")},
	}
	e.SecurityGroupIds = []string{"sg-0123456789abcdef0", "sg-0123456789abcdef1"}
	e.ClientConnectOptions = &clientvpnv1.ClientConnectResponseOptions{
		Enabled:           proto.Bool(true),
		LambdaFunctionArn: s("arn:aws:lambda:" + region + ":" + account + ":function:AWSClientVPN-check"),
		Status: &clientvpnv1.ClientVpnEndpointAttributeStatus{
			Code:    clientvpnv1.ClientVpnEndpointAttributeStatusCode_CLIENT_VPN_ENDPOINT_ATTRIBUTE_STATUS_CODE_APPLYING,
			Message: s("Applying the client connect handler"),
		},
	}
	e.SessionTimeoutHours = proto.Int32(12)
	e.ClientLoginBannerOptions = &clientvpnv1.ClientLoginBannerResponseOptions{Enabled: proto.Bool(true), BannerText: s("<b>Authorized</b> use only & monitored")}
	e.ClientRouteEnforcementOptions = &clientvpnv1.ClientRouteEnforcementResponseOptions{Enforced: proto.Bool(true)}
	e.DisconnectOnSessionTimeout = proto.Bool(false)
	e.EndpointIpAddressType = clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_DUAL_STACK
	e.TrafficIpAddressTypeUnrecognized = s("ipv6-only")
	e.TrafficIpAddressType = 0
	e.TransitGatewayConfiguration = &clientvpnv1.TransitGatewayConfiguration{
		TransitGatewayId: s("tgw-0123456789abcdef0"), TransitGatewayAttachmentId: s("tgw-attach-0123456789abcdef0"),
		AvailabilityZones: []string{region + "a", region + "b"}, AvailabilityZoneIds: []string{"az-1", "az-2"},
	}
	e.DevicePostureOptions = &clientvpnv1.DevicePostureResponseOptions{TrustProviders: []*clientvpnv1.ClientVpnTrustProvider{
		{TrustProviderType: clientvpnv1.ClientVpnDeviceTrustProviderType_CLIENT_VPN_DEVICE_TRUST_PROVIDER_TYPE_CROWDSTRIKE, TenantId: s("tenant-1"), PublicSigningKeyUrl: s("https://posture.example.com/keys/1")},
		{TrustProviderTypeUnrecognized: s("acme-posture"), TenantId: s(""), PublicSigningKeyUrl: s("https://posture.example.com/keys/2")},
	}}
	e.CreationTimeParsed = vpnfacade.ParsedTime(e.CreationTime)
	e.DeletionTimeParsed = vpnfacade.ParsedTime(e.DeletionTime)
	return e
}

// unsetFields lists the fields of the contract that e leaves unset, by path.
// A field of a repeated message counts as set when any element sets it, and
// an enum counts as set when it or its <name>_unrecognized sibling is.
func unsetFields(e *clientvpnv1.ClientVpnEndpoint) []string {
	var unset []string
	var walk func(md protoreflect.MessageDescriptor, msgs []protoreflect.Message, prefix string)
	walk = func(md protoreflect.MessageDescriptor, msgs []protoreflect.Message, prefix string) {
		fields := md.Fields()
		has := func(fd protoreflect.FieldDescriptor) bool {
			return fd != nil && slices.ContainsFunc(msgs, func(m protoreflect.Message) bool { return m.Has(fd) })
		}
		for i := range fields.Len() {
			fd := fields.Get(i)
			name := string(fd.Name())
			sibling := fields.ByName(protoreflect.Name(name + "_unrecognized"))
			if base, ok := strings.CutSuffix(name, "_unrecognized"); ok {
				sibling = fields.ByName(protoreflect.Name(base))
			}
			if !has(fd) && !has(sibling) {
				unset = append(unset, prefix+name)
				continue
			}
			if fd.Kind() != protoreflect.MessageKind || fd.Message().FullName() == "google.protobuf.Timestamp" {
				continue
			}
			var subs []protoreflect.Message
			for _, m := range msgs {
				switch {
				case !m.Has(fd):
				case fd.IsList():
					for j := range m.Get(fd).List().Len() {
						subs = append(subs, m.Get(fd).List().Get(j).Message())
					}
				default:
					subs = append(subs, m.Get(fd).Message())
				}
			}
			walk(fd.Message(), subs, prefix+name+".")
		}
	}
	walk(e.ProtoReflect().Descriptor(), []protoreflect.Message{e.ProtoReflect()}, "")
	return unset
}

// displayed is what the detail view must show for e: every set field, by its
// path in the JSON form (tags.0.key), as the page words values (AWS's enum
// spellings, Enabled/Disabled, RFC 3339 UTC times, "(empty)").
func displayed(e *clientvpnv1.ClientVpnEndpoint) map[string]string {
	out := map[string]string{}
	var walk func(m protoreflect.Message, prefix string)
	leaf := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
		switch fd.Kind() {
		case protoreflect.BoolKind:
			if v.Bool() {
				return "Enabled"
			}
			return "Disabled"
		case protoreflect.EnumKind:
			et, err := protoregistry.GlobalTypes.FindEnumByName(fd.Enum().FullName())
			if err != nil {
				return "unknown enum " + string(fd.Enum().FullName())
			}
			s, _ := vpnfacade.EnumString(et.New(v.Enum()), nil)
			return s
		case protoreflect.StringKind:
			if v.String() == "" {
				return "(empty)"
			}
			return v.String()
		default:
			return v.String()
		}
	}
	walk = func(m protoreflect.Message, prefix string) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			path := prefix + fd.JSONName()
			isTime := fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == "google.protobuf.Timestamp"
			switch {
			case fd.IsList():
				for i := range v.List().Len() {
					p := path + "." + strconv.Itoa(i)
					if fd.Kind() == protoreflect.MessageKind {
						walk(v.List().Get(i).Message(), p+".")
					} else {
						out[p] = leaf(fd, v.List().Get(i))
					}
				}
			case isTime:
				ts := v.Message().Interface().(*timestamppb.Timestamp)
				out[path] = ts.AsTime().UTC().Format(time.RFC3339)
			case fd.Kind() == protoreflect.MessageKind:
				walk(v.Message(), path+".")
			default:
				out[path] = leaf(fd, v)
			}
			return true
		})
	}
	walk(e.ProtoReflect(), "")
	return out
}

// checkDetails compares the open detail view with the API's endpoint: every
// value shown, nothing more, and the JSON it copies.
func checkDetails(t *testing.T, tab context.Context, want *clientvpnv1.ClientVpnEndpoint) {
	t.Helper()
	shown := eval[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll('#details [data-field]')].map(e => [e.dataset.field, e.textContent]))`)
	expected := displayed(want)
	if len(expected) < 60 {
		t.Fatalf("the API's endpoint has only %d values: the fixture lost fields on the way", len(expected))
	}
	for path, w := range expected {
		if got, ok := shown[path]; !ok {
			t.Errorf("the detail view does not show %s (want %q)", path, w)
		} else if got != w {
			t.Errorf("the detail view shows %s = %q, the API %q", path, got, w)
		}
	}
	for path, got := range shown {
		if _, ok := expected[path]; !ok {
			t.Errorf("the detail view shows %s = %q, which the API's endpoint does not have", path, got)
		}
	}
	var fromPage clientvpnv1.ClientVpnEndpoint
	js := eval[string](t, tab, `document.getElementById('details-json').textContent`)
	if err := protojson.Unmarshal([]byte(js), &fromPage); err != nil {
		t.Errorf("the detail view's JSON does not parse: %v\n%s", err, js)
	} else if !proto.Equal(&fromPage, want) {
		t.Errorf("the detail view's JSON differs from the API's endpoint:\n%s", js)
	}
}

// bufOnPath returns an environment whose PATH has a `buf` running the buf CLI
// pinned in tools/go.mod, so that the page's command runs as written, and
// builds it first.
func bufOnPath(t *testing.T) []string {
	t.Helper()
	modfile, err := filepath.Abs("../../tools/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\nexec go tool -modfile=" + strconv.Quote(modfile) + " buf \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "buf"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}
	// The first run on a machine compiles buf (minutes on a small one):
	// do it now, not inside a caller's timed step.
	runShell(t, "buf --version", env)
	return env
}

// runShell runs a command line copied from the page in sh, with env added.
func runShell(t *testing.T, line string, env []string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "sh", "-c", line)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", line, err, out, stderr.String())
	}
	return string(out)
}

// checkAWSOutput compares the AWS CLI's JSON answer with the API's endpoint.
func checkAWSOutput(t *testing.T, out string, want *clientvpnv1.ClientVpnEndpoint) {
	t.Helper()
	var res struct {
		ClientVpnEndpoints []struct {
			ClientVpnEndpointID string `json:"ClientVpnEndpointId"`
			DNSName             string `json:"DnsName"`
			ClientCidrBlock     string `json:"ClientCidrBlock"`
			Description         string `json:"Description"`
			Status              struct{ Code string }
			Tags                []struct{ Key, Value string }
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("the AWS CLI printed %v:\n%s", err, out)
	}
	if len(res.ClientVpnEndpoints) != 1 {
		t.Fatalf("the AWS CLI command lists %d endpoints, want 1:\n%s", len(res.ClientVpnEndpoints), out)
	}
	got := res.ClientVpnEndpoints[0]
	if got.ClientVpnEndpointID != want.GetClientVpnEndpointId() || got.DNSName != want.GetDnsName() ||
		got.ClientCidrBlock != want.GetClientCidrBlock() || got.Description != want.GetDescription() ||
		got.Status.Code != statusSpelling(want) || len(got.Tags) != len(want.GetTags()) {
		t.Errorf("the AWS CLI command fetches a different endpoint:\n%s", out)
	}
}
