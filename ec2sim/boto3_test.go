package ec2sim_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/prereq"
)

// requireBoto3 returns a python3 with boto3, or fails the test with the
// command that installs it.
func requireBoto3(t *testing.T) string {
	t.Helper()
	return prereq.Python3WithBoto3(t)
}

// boto3Result is what testdata/boto3_paginate.py prints.
type boto3Result struct {
	Pages     int              `json:"pages"`
	Endpoints []map[string]any `json:"endpoints"`
	Filtered  []string         `json:"filtered"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Status  int    `json:"status"`
	} `json:"error"`
	// Model is the installed botocore's ClientVpnEndpoint shape: member
	// name to its own members, nil for a scalar.
	Model    map[string]any `json:"model"`
	Botocore string         `json:"botocore"`
}

func TestBoto3ReadsEveryField(t *testing.T) {
	python := requireBoto3(t)
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 120, Seed: 21, Regions: []string{"eu-west-1", "us-east-1"}}, ec2sim.Options{})
	const region = "eu-west-1"

	cmd := exec.CommandContext(t.Context(), python, "testdata/boto3_paginate.py", url, region, "20")
	// Only loopback: never let a proxy from the environment see the traffic.
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("boto3 script: %v\n%s", err, stderr.String())
	}
	var got boto3Result
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("boto3 script output: %v\n%s", err, out)
	}

	want := sim.Endpoints(accountA, region)
	if got.Pages != (len(want)+19)/20 {
		t.Errorf("boto3 read %d pages of 20 for %d endpoints", got.Pages, len(want))
	}
	if len(got.Endpoints) != len(want) {
		t.Fatalf("boto3 read %d endpoints, want %d", len(got.Endpoints), len(want))
	}
	// botocore parses what its model knows; older ones (Debian 12 ships
	// 1.29) know fewer members, so the expectation keeps only those. The
	// members every version since 2022 knows must be among them.
	for _, m := range []string{"ClientVpnEndpointId", "Status", "DnsServers", "AuthenticationOptions", "Tags", "SessionTimeoutHours", "ClientLoginBannerOptions"} {
		if _, ok := got.Model[m]; !ok {
			t.Fatalf("botocore %s's ClientVpnEndpoint has no %s: the model printed is %v", got.Botocore, m, got.Model)
		}
	}
	for i, e := range want {
		exp := normalizeJSON(t, boto3Shape(e))
		pruneToModel(exp, got.Model)
		if !reflect.DeepEqual(got.Endpoints[i], exp) {
			g, _ := json.MarshalIndent(got.Endpoints[i], "", " ")
			w, _ := json.MarshalIndent(exp, "", " ")
			t.Errorf("endpoint %s differs through boto3:\n got %s\nwant %s", e.GetClientVpnEndpointId(), g, w)
		}
	}
	// Spot checks of what botocore matches case-sensitively.
	enabled := 0
	for _, e := range got.Endpoints {
		if logs, ok := e["ConnectionLogOptions"].(map[string]any); ok && logs["Enabled"] == true {
			enabled++
		}
	}
	if enabled == 0 {
		t.Error("no endpoint has ConnectionLogOptions.Enabled = true through boto3")
	}

	var wantFiltered []string
	for _, e := range want {
		env := ""
		for _, tag := range e.GetTags() {
			if tag.GetKey() == "Environment" {
				env = tag.GetValue()
			}
		}
		if e.GetTransportProtocol() == clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_TCP && (strings.HasPrefix(env, "prod") || env == "staging") {
			wantFiltered = append(wantFiltered, e.GetClientVpnEndpointId())
		}
	}
	if len(wantFiltered) == 0 || !slices.Equal(got.Filtered, wantFiltered) {
		t.Errorf("filtered call returned %v, want %v", got.Filtered, wantFiltered)
	}
	if got.Error == nil || got.Error.Code != "InvalidClientVpnEndpointId.NotFound" || got.Error.Status != 400 {
		t.Errorf("unknown id through boto3: %+v, want InvalidClientVpnEndpointId.NotFound 400", got.Error)
	}
}

// pruneToModel deletes from v, recursively, the members model (a botocore
// member tree) does not have.
func pruneToModel(v any, model map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			m, known := model[k]
			if !known {
				delete(v, k)
				continue
			}
			if mm, ok := m.(map[string]any); ok {
				pruneToModel(sub, mm)
			}
		}
	case []any:
		for _, item := range v {
			pruneToModel(item, model)
		}
	}
}

// normalizeJSON passes v through JSON so it compares with decoded output.
func normalizeJSON(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// boto3Shape is the dict boto3 (botocore 1.43) builds from the XML of e:
// AWS's member names, lists always present, absent fields absent. botocore
// 1.43's model has no DevicePostureOptions nor
// ConnectionLogOptions.IncludeAuthorizationPolicyContext, so it drops them;
// pruneToModel drops what an older botocore does not know either.
func boto3Shape(e *clientvpnv1.ClientVpnEndpoint) map[string]any {
	m := map[string]any{}
	putStr(m, "ClientVpnEndpointId", e.ClientVpnEndpointId)
	putStr(m, "Description", e.Description)
	if s := e.Status; s != nil {
		st := map[string]any{}
		putEnum(st, "Code", s.Code, s.CodeUnrecognized)
		putStr(st, "Message", s.Message)
		m["Status"] = st
	}
	putStr(m, "CreationTime", e.CreationTime)
	putStr(m, "DeletionTime", e.DeletionTime)
	putStr(m, "DnsName", e.DnsName)
	putStr(m, "ClientCidrBlock", e.ClientCidrBlock)
	m["DnsServers"] = strs(e.DnsServers)
	putBool(m, "SplitTunnel", e.SplitTunnel)
	putEnum(m, "VpnProtocol", e.VpnProtocol, e.VpnProtocolUnrecognized)
	putEnum(m, "TransportProtocol", e.TransportProtocol, e.TransportProtocolUnrecognized)
	putInt(m, "VpnPort", e.VpnPort)
	nets := []any{}
	for _, n := range e.AssociatedTargetNetworks {
		nm := map[string]any{}
		putStr(nm, "NetworkId", n.NetworkId)
		putEnum(nm, "NetworkType", n.NetworkType, n.NetworkTypeUnrecognized)
		nets = append(nets, nm)
	}
	m["AssociatedTargetNetworks"] = nets
	putStr(m, "ServerCertificateArn", e.ServerCertificateArn)
	auths := []any{}
	for _, a := range e.AuthenticationOptions {
		am := map[string]any{}
		putEnum(am, "Type", a.Type, a.TypeUnrecognized)
		if d := a.ActiveDirectory; d != nil {
			dm := map[string]any{}
			putStr(dm, "DirectoryId", d.DirectoryId)
			am["ActiveDirectory"] = dm
		}
		if c := a.MutualAuthentication; c != nil {
			cm := map[string]any{}
			putStr(cm, "ClientRootCertificateChain", c.ClientRootCertificateChain)
			am["MutualAuthentication"] = cm
		}
		if f := a.FederatedAuthentication; f != nil {
			fm := map[string]any{}
			putStr(fm, "SamlProviderArn", f.SamlProviderArn)
			putStr(fm, "SelfServiceSamlProviderArn", f.SelfServiceSamlProviderArn)
			am["FederatedAuthentication"] = fm
		}
		auths = append(auths, am)
	}
	m["AuthenticationOptions"] = auths
	if c := e.ConnectionLogOptions; c != nil {
		cm := map[string]any{}
		putBool(cm, "Enabled", c.Enabled)
		putStr(cm, "CloudwatchLogGroup", c.CloudwatchLogGroup)
		putStr(cm, "CloudwatchLogStream", c.CloudwatchLogStream)
		m["ConnectionLogOptions"] = cm
	}
	tags := []any{}
	for _, tag := range e.Tags {
		tm := map[string]any{}
		putStr(tm, "Key", tag.Key)
		putStr(tm, "Value", tag.Value)
		tags = append(tags, tm)
	}
	m["Tags"] = tags
	m["SecurityGroupIds"] = strs(e.SecurityGroupIds)
	putStr(m, "VpcId", e.VpcId)
	putStr(m, "SelfServicePortalUrl", e.SelfServicePortalUrl)
	if c := e.ClientConnectOptions; c != nil {
		cm := map[string]any{}
		putBool(cm, "Enabled", c.Enabled)
		putStr(cm, "LambdaFunctionArn", c.LambdaFunctionArn)
		if s := c.Status; s != nil {
			sm := map[string]any{}
			putEnum(sm, "Code", s.Code, s.CodeUnrecognized)
			putStr(sm, "Message", s.Message)
			cm["Status"] = sm
		}
		m["ClientConnectOptions"] = cm
	}
	putInt(m, "SessionTimeoutHours", e.SessionTimeoutHours)
	if b := e.ClientLoginBannerOptions; b != nil {
		bm := map[string]any{}
		putBool(bm, "Enabled", b.Enabled)
		putStr(bm, "BannerText", b.BannerText)
		m["ClientLoginBannerOptions"] = bm
	}
	if r := e.ClientRouteEnforcementOptions; r != nil {
		rm := map[string]any{}
		putBool(rm, "Enforced", r.Enforced)
		m["ClientRouteEnforcementOptions"] = rm
	}
	putBool(m, "DisconnectOnSessionTimeout", e.DisconnectOnSessionTimeout)
	putEnum(m, "EndpointIpAddressType", e.EndpointIpAddressType, e.EndpointIpAddressTypeUnrecognized)
	putEnum(m, "TrafficIpAddressType", e.TrafficIpAddressType, e.TrafficIpAddressTypeUnrecognized)
	if tg := e.TransitGatewayConfiguration; tg != nil {
		tm := map[string]any{}
		putStr(tm, "TransitGatewayId", tg.TransitGatewayId)
		putStr(tm, "TransitGatewayAttachmentId", tg.TransitGatewayAttachmentId)
		tm["AvailabilityZones"] = strs(tg.AvailabilityZones)
		tm["AvailabilityZoneIds"] = strs(tg.AvailabilityZoneIds)
		m["TransitGatewayConfiguration"] = tm
	}
	return m
}

func putStr(m map[string]any, k string, v *string) {
	if v != nil {
		m[k] = *v
	}
}

func putBool(m map[string]any, k string, v *bool) {
	if v != nil {
		m[k] = *v
	}
}

func putInt(m map[string]any, k string, v *int32) {
	if v != nil {
		m[k] = *v
	}
}

func putEnum(m map[string]any, k string, v protoreflect.Enum, unrecognized *string) {
	if s, ok := vpnfacade.EnumString(v, unrecognized); ok {
		m[k] = s
	}
}

func strs(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}
