package ec2query_test

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/vpnfacade/vpnfacade/ec2query"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// newEC2Client returns a real EC2 client talking to url. It retries only
// connection errors, so tests see every API error: over loopback the SDK can
// close its own connection while reading a large answer (aws-sdk-go-v2 issue
// 2737), which its standard retryer retries.
func newEC2Client(url string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
			o.MaxBackoff = 10 * time.Millisecond
			o.RateLimiter = ratelimit.None
		}),
	})
}

// withoutFacadeFields returns a copy of e without what the EC2 wire does not
// carry: region, account and the parsed times.
func withoutFacadeFields(e *clientvpnv1.ClientVpnEndpoint) *clientvpnv1.ClientVpnEndpoint {
	c := proto.CloneOf(e)
	c.Region, c.AccountId = "", ""
	c.CreationTimeParsed, c.DeletionTimeParsed = nil, nil
	return c
}

func TestSDKReadsEveryFieldBack(t *testing.T) {
	endpoints := []*clientvpnv1.ClientVpnEndpoint{fullEndpoint(), sparseEndpoint()}
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if form, err = ec2query.ReadForm(w, r, 0); err != nil {
			t.Errorf("ReadForm: %v", err)
		}
		if err := ec2query.WriteDescribeClientVpnEndpoints(w, "req-1", endpoints, "token/with+special=chars&"); err != nil {
			t.Errorf("WriteDescribeClientVpnEndpoints: %v", err)
		}
	}))
	defer srv.Close()

	out, err := newEC2Client(srv.URL).DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
	if err != nil {
		t.Fatalf("DescribeClientVpnEndpoints: %v", err)
	}
	if got := form.Get("Action"); got != "DescribeClientVpnEndpoints" {
		t.Errorf("the SDK sent Action %q", got)
	}
	if got := aws.ToString(out.NextToken); got != "token/with+special=chars&" {
		t.Errorf("NextToken = %q, want the token verbatim", got)
	}
	if len(out.ClientVpnEndpoints) != len(endpoints) {
		t.Fatalf("the SDK read %d endpoints, want %d", len(out.ClientVpnEndpoints), len(endpoints))
	}
	for i, want := range endpoints {
		got := endpointFromSDK(out.ClientVpnEndpoints[i])
		if want := withoutFacadeFields(want); !proto.Equal(got, want) {
			t.Errorf("endpoint %d did not survive the SDK:\n got: %s\nwant: %s", i, prototext.Format(got), prototext.Format(want))
		}
	}
	// Presence the proto comparison cannot see: an empty list element must
	// reach the SDK as an empty list, and a set empty string as "".
	sparse := out.ClientVpnEndpoints[1]
	if sparse.Description == nil || *sparse.Description != "" {
		t.Errorf("empty description came back as %v, want a pointer to \"\"", sparse.Description)
	}
	if sparse.DnsServers == nil || sparse.Tags == nil || sparse.SecurityGroupIds == nil {
		t.Errorf("empty lists came back nil: dnsServer %v, tagSet %v, securityGroupIdSet %v",
			sparse.DnsServers, sparse.Tags, sparse.SecurityGroupIds)
	}
	if out.ClientVpnEndpoints[0].ConnectionLogOptions.Enabled == nil || !*out.ClientVpnEndpoints[0].ConnectionLogOptions.Enabled {
		t.Errorf("connectionLogOptions/Enabled = %v, want true", out.ClientVpnEndpoints[0].ConnectionLogOptions.Enabled)
	}
}

func TestSDKReadsErrors(t *testing.T) {
	tests := []struct {
		err        error
		wantCode   string
		wantStatus int
		wantMsg    string
	}{
		{ec2query.InvalidParameterValue("The filter 'x' is invalid"), "InvalidParameterValue", 400, "The filter 'x' is invalid"},
		{ec2query.DryRunOperation(), "DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set."},
		{ec2query.RequestLimitExceeded(), "RequestLimitExceeded", 503, "Request limit exceeded."},
		{errors.New("redis: connection refused at 10.0.0.1"), "InternalError", 500, "An internal error has occurred"},
		{ec2query.NewAPIError("Custom", 418, "<b>&'\"</b>"), "Custom", 418, "<b>&'\"</b>"},
	}
	for _, tt := range tests {
		t.Run(tt.wantCode, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := ec2query.WriteError(w, "req-err", tt.err); err != nil {
					t.Errorf("WriteError: %v", err)
				}
			}))
			defer srv.Close()
			_, err := newEC2Client(srv.URL).DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
			apiErr, ok := errors.AsType[smithy.APIError](err)
			if !ok {
				t.Fatalf("error %v is not a smithy.APIError", err)
			}
			if apiErr.ErrorCode() != tt.wantCode || apiErr.ErrorMessage() != tt.wantMsg {
				t.Errorf("got %s %q, want %s %q", apiErr.ErrorCode(), apiErr.ErrorMessage(), tt.wantCode, tt.wantMsg)
			}
			var re interface{ HTTPStatusCode() int }
			if errors.As(err, &re) && re.HTTPStatusCode() != tt.wantStatus {
				t.Errorf("HTTP status %d, want %d", re.HTTPStatusCode(), tt.wantStatus)
			}
			var rid interface{ ServiceRequestID() string }
			if errors.As(err, &rid) && rid.ServiceRequestID() != "req-err" {
				t.Errorf("request id %q, want req-err", rid.ServiceRequestID())
			}
		})
	}
}

// xmlNode is a generic XML element, to look at the document's shape.
type xmlNode struct {
	XMLName  xml.Name
	Text     string    `xml:",chardata"`
	Children []xmlNode `xml:",any"`
}

func (n *xmlNode) child(name string) *xmlNode {
	for i := range n.Children {
		if n.Children[i].XMLName.Local == name {
			return &n.Children[i]
		}
	}
	return nil
}

func (n *xmlNode) path(names ...string) *xmlNode {
	for _, name := range names {
		if n = n.child(name); n == nil {
			return nil
		}
	}
	return n
}

func parseXML(t *testing.T, b []byte) xmlNode {
	t.Helper()
	var root xmlNode
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatalf("response is not well-formed XML: %v\n%s", err, b)
	}
	return root
}

func TestResponseShape(t *testing.T) {
	body := ec2query.AppendDescribeClientVpnEndpoints(nil, "req-1",
		[]*clientvpnv1.ClientVpnEndpoint{fullEndpoint(), sparseEndpoint()}, "")
	root := parseXML(t, body)
	if root.XMLName.Local != "DescribeClientVpnEndpointsResponse" || root.XMLName.Space != ec2query.Namespace {
		t.Fatalf("root element %v", root.XMLName)
	}
	if root.child("nextToken") != nil {
		t.Errorf("nextToken written for the last page")
	}
	if got := root.path("requestId").Text; got != "req-1" {
		t.Errorf("requestId %q", got)
	}
	items := root.child("clientVpnEndpoint").Children
	if len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	full, sparse := items[0], items[1]
	for _, p := range [][]string{
		{"connectionLogOptions", "Enabled"},
		{"connectionLogOptions", "CloudwatchLogGroup"},
		{"connectionLogOptions", "CloudwatchLogStream"},
		{"connectionLogOptions", "IncludeAuthorizationPolicyContext"},
		{"devicePostureOptions", "trustProviderSet", "item", "trustProviderType"},
		{"transitGatewayConfiguration", "availabilityZoneIdSet", "item"},
	} {
		if full.path(p...) == nil {
			t.Errorf("full endpoint lacks %s", strings.Join(p, "/"))
		}
	}
	if got := full.path("description").Text; got != fullEndpoint().GetDescription() {
		t.Errorf("description read back as %q", got)
	}
	for _, name := range []string{"region", "accountId", "account_id", "creationTimeParsed"} {
		if full.child(name) != nil {
			t.Errorf("facade-only field %s written", name)
		}
	}
	// Lists are written even when empty; absent scalars and messages are not.
	for _, p := range [][]string{
		{"dnsServer"}, {"tagSet"}, {"securityGroupIdSet"}, {"associatedTargetNetwork"},
		{"transitGatewayConfiguration", "availabilityZoneSet"},
		{"transitGatewayConfiguration", "availabilityZoneIdSet"},
		{"devicePostureOptions", "trustProviderSet"},
	} {
		if n := sparse.path(p...); n == nil || len(n.Children) != 0 {
			t.Errorf("sparse endpoint: %s missing or not empty", strings.Join(p, "/"))
		}
	}
	for _, name := range []string{"deletionTime", "dnsName", "vpcId", "clientLoginBannerOptions", "sessionTimeoutHours", "trafficIpAddressType"} {
		if sparse.child(name) != nil {
			t.Errorf("sparse endpoint: absent %s written", name)
		}
	}
	if n := sparse.child("description"); n == nil || n.Text != "" {
		t.Errorf("sparse endpoint: set empty description not written as an empty element")
	}
	if got := sparse.path("status", "code").Text; got != "suspended" {
		t.Errorf("unrecognized status written as %q, want suspended", got)
	}
	if got := sparse.path("clientConnectOptions"); got == nil || len(got.Children) != 0 {
		t.Errorf("empty clientConnectOptions not written as an empty element")
	}
}

func TestExactMinimalResponse(t *testing.T) {
	e := &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId: proto.String("cvpn-endpoint-0123456789abcdef0"),
		Status:              &clientvpnv1.ClientVpnEndpointStatus{Code: clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_PENDING_ASSOCIATE},
		ConnectionLogOptions: &clientvpnv1.ConnectionLogResponseOptions{
			Enabled: proto.Bool(false),
		},
		Tags:      []*clientvpnv1.Tag{{Key: proto.String("a&b"), Value: proto.String("<\"'>\r")}},
		VpnPort:   proto.Int32(443),
		Region:    "eu-west-1",
		AccountId: "123456789012",
	}
	got := string(ec2query.AppendDescribeClientVpnEndpoints(nil, "r", []*clientvpnv1.ClientVpnEndpoint{e}, "nt"))
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<DescribeClientVpnEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
		`<requestId>r</requestId><clientVpnEndpoint><item>` +
		`<clientVpnEndpointId>cvpn-endpoint-0123456789abcdef0</clientVpnEndpointId>` +
		`<status><code>pending-associate</code></status>` +
		`<dnsServer></dnsServer><vpnPort>443</vpnPort><associatedTargetNetwork></associatedTargetNetwork>` +
		`<authenticationOptions></authenticationOptions>` +
		`<connectionLogOptions><Enabled>false</Enabled></connectionLogOptions>` +
		`<tagSet><item><key>a&amp;b</key><value>&lt;&quot;&apos;&gt;&#xD;</value></item></tagSet>` +
		`<securityGroupIdSet></securityGroupIdSet>` +
		`</item></clientVpnEndpoint><nextToken>nt</nextToken></DescribeClientVpnEndpointsResponse>`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTextThatXMLCannotCarryIsReplaced(t *testing.T) {
	e := &clientvpnv1.ClientVpnEndpoint{Description: proto.String("a\x00b\x1fc\xffd\uFFFEe\tf\ng")}
	root := parseXML(t, ec2query.AppendDescribeClientVpnEndpoints(nil, "r", []*clientvpnv1.ClientVpnEndpoint{e}, ""))
	got := root.path("clientVpnEndpoint", "item", "description").Text
	if want := "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\tf\ng"; got != want {
		t.Errorf("description read back as %q, want %q", got, want)
	}
}

func TestErrorXML(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := ec2query.WriteError(rec, "rid-<1>", ec2query.InvalidAction("Nope")); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != ec2query.ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	body, _ := io.ReadAll(rec.Body)
	root := parseXML(t, body)
	if root.XMLName.Local != "Response" {
		t.Fatalf("root %s, want Response", root.XMLName.Local)
	}
	if got := root.path("Errors", "Error", "Code").Text; got != "InvalidAction" {
		t.Errorf("Code %q", got)
	}
	if got := root.path("Errors", "Error", "Message").Text; got != "The action Nope is not valid for this web service." {
		t.Errorf("Message %q", got)
	}
	if got := root.path("RequestID").Text; got != "rid-<1>" {
		t.Errorf("RequestID %q", got)
	}
}

// discardResponseWriter is an http.ResponseWriter that drops the body.
type discardResponseWriter struct{ h http.Header }

func (d *discardResponseWriter) Header() http.Header         { return d.h }
func (d *discardResponseWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardResponseWriter) WriteHeader(int)             {}

func hundredEndpoints() []*clientvpnv1.ClientVpnEndpoint {
	eps := make([]*clientvpnv1.ClientVpnEndpoint, 100)
	for i := range eps {
		if i%4 == 3 {
			eps[i] = sparseEndpoint()
		} else {
			eps[i] = fullEndpoint()
		}
	}
	return eps
}

func BenchmarkAppendDescribeClientVpnEndpoints100(b *testing.B) {
	eps := hundredEndpoints()
	buf := ec2query.AppendDescribeClientVpnEndpoints(nil, "req", eps, "next")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = ec2query.AppendDescribeClientVpnEndpoints(buf[:0], "req", eps, "next")
	}
}

func BenchmarkWriteDescribeClientVpnEndpoints100(b *testing.B) {
	eps := hundredEndpoints()
	w := &discardResponseWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if err := ec2query.WriteDescribeClientVpnEndpoints(w, "req", eps, "next"); err != nil {
			b.Fatal(err)
		}
	}
}
