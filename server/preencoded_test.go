package server_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// generated returns the emulator's endpoints: every field of the contract,
// unicode and XML-special text, unrecognized enum values.
func generated(t *testing.T, n int) []*clientvpnv1.ClientVpnEndpoint {
	t.Helper()
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: n, Seed: 15, Regions: []string{"eu-west-1", "us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

// TestPreEncodedEqualsMarshalled lists and gets the emulator's endpoints
// over every protocol and encoding, with a filter and page tokens: what a
// standard client decodes equals the endpoint that was published.
func TestPreEncodedEqualsMarshalled(t *testing.T) {
	t.Parallel()
	eps := generated(t, 400)
	want := map[string]*clientvpnv1.ClientVpnEndpoint{}
	for _, e := range eps {
		want[snapshot.Key(e)] = proto.CloneOf(e)
	}
	env := newEnv(t, eps, 0)
	clients := map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect-get-json": clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, env.url, connect.WithHTTPGet(), connect.WithProtoJSON()),
		"grpc-json":        clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), env.url, connect.WithGRPC(), connect.WithProtoJSON()),
		"grpc-web-json":    clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, env.url, connect.WithGRPCWeb(), connect.WithProtoJSON()),
	}
	for name, c := range env.clients {
		clients[name] = c
	}
	filter := []*clientvpnv1.Filter{{Name: "transport-protocol", Values: []string{"udp", "tcp"}}}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			seen := 0
			req := &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 37, Filters: filter}
			for {
				res, err := c.ListClientVpnEndpoints(t.Context(), req)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range res.GetClientVpnEndpoints() {
					w, ok := want[snapshot.Key(e)]
					if !ok || !proto.Equal(e, w) {
						t.Fatalf("listed endpoint %s differs from the published one:\ngot  %v\nwant %v", snapshot.Key(e), e, w)
					}
					seen++
				}
				if res.GetSnapshot().GetVersion() == 0 {
					t.Fatal("the response lost its snapshot info")
				}
				if res.GetNextToken() == "" {
					break
				}
				req.NextToken = res.GetNextToken()
			}
			if seen == 0 {
				t.Fatal("the filter matched nothing: the test tests nothing")
			}
			for _, e := range eps[:20] {
				res, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{
					ClientVpnEndpointId: e.GetClientVpnEndpointId(), Region: e.GetRegion(), AccountId: e.GetAccountId()})
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(res.GetClientVpnEndpoint(), want[snapshot.Key(e)]) || res.GetSnapshot().GetVersion() == 0 {
					t.Fatalf("Get %s = %v, want %v", snapshot.Key(e), res, want[snapshot.Key(e)])
				}
			}
		})
	}
}

// TestPreEncodedJSONMatchesProtojson compares the spliced JSON of a page,
// as parsed JSON values, with protojson's encoding of each endpoint: the
// same field names, enum names, int64 and timestamp forms and omissions.
func TestPreEncodedJSONMatchesProtojson(t *testing.T) {
	t.Parallel()
	eps := generated(t, 300)
	byKey := map[string]*clientvpnv1.ClientVpnEndpoint{}
	for _, e := range eps {
		byKey[snapshot.Key(e)] = proto.CloneOf(e)
	}
	env := newEnv(t, eps, 0)
	res, err := http.Post(env.url+clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure, "application/json", bytes.NewReader([]byte(`{"maxResults":1000}`)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v: %s", res.StatusCode, err, body)
	}
	var page struct {
		ClientVpnEndpoints []json.RawMessage `json:"clientVpnEndpoints"`
		Snapshot           map[string]any    `json:"snapshot"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("the response is not JSON: %v", err)
	}
	if len(page.ClientVpnEndpoints) != len(eps) || page.Snapshot["version"] == nil {
		t.Fatalf("page has %d endpoints and snapshot %v; want %d and a version", len(page.ClientVpnEndpoints), page.Snapshot, len(eps))
	}
	for _, raw := range page.ClientVpnEndpoints {
		got := &clientvpnv1.ClientVpnEndpoint{}
		if err := protojson.Unmarshal(raw, got); err != nil {
			t.Fatalf("endpoint JSON does not parse: %v", err)
		}
		want := byKey[snapshot.Key(got)]
		wantJSON, err := protojson.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(wantJSON, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("endpoint %s:\ngot  %s\nwant %s", snapshot.Key(got), raw, wantJSON)
		}
	}
	// A whole response parses as the message, as clients parse it.
	var whole clientvpnv1.ListClientVpnEndpointsResponse
	if err := protojson.Unmarshal(body, &whole); err != nil || len(whole.GetClientVpnEndpoints()) != len(eps) {
		t.Fatalf("protojson.Unmarshal of the response: %v, %d endpoints", err, len(whole.GetClientVpnEndpoints()))
	}
}

// TestPreEncodedEC2XMLEqualsEncoder pages through the emulator's endpoints
// over the EC2 Query API, with a filter and page tokens, twice (the second
// time every endpoint's XML comes from its snapshot's cache): each answer
// is byte for byte what the EC2 encoder writes for the published
// endpoints of the page.
func TestPreEncodedEC2XMLEqualsEncoder(t *testing.T) {
	t.Parallel()
	eps := generated(t, 300)
	byKey := map[string]*clientvpnv1.ClientVpnEndpoint{}
	matching := 0
	for _, e := range eps {
		byKey[e.GetRegion()+"/"+e.GetClientVpnEndpointId()] = proto.CloneOf(e)
		if p, _ := vpnfacade.EnumString(e.GetTransportProtocol(), e.TransportProtocolUnrecognized); p == "udp" || p == "tcp" {
			matching++
		}
	}
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: eps}); err != nil {
		t.Fatal(err)
	}
	regions := []string{"eu-west-1", "us-east-1"}
	h := server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Regions: regions})
	for pass := 1; pass <= 2; pass++ {
		seen := 0
		for _, region := range regions {
			token := ""
			for {
				body := "Action=DescribeClientVpnEndpoints&Version=2016-11-15&MaxResults=37&Filter.1.Name=transport-protocol&Filter.1.Value.1=udp&Filter.1.Value.2=tcp"
				if token != "" {
					body += "&NextToken=" + url.QueryEscape(token)
				}
				req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				// Unverified without an access file; it names the region.
				req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/"+region+"/ec2/aws4_request, SignedHeaders=host, Signature=00")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("pass %d, %s: status %d: %s", pass, region, rec.Code, rec.Body)
				}
				var page struct {
					Items []struct {
						ID string `xml:"clientVpnEndpointId"`
					} `xml:"clientVpnEndpoint>item"`
					NextToken string `xml:"nextToken"`
				}
				if err := xml.Unmarshal(rec.Body.Bytes(), &page); err != nil {
					t.Fatalf("pass %d: the answer is not XML: %v", pass, err)
				}
				var published []*clientvpnv1.ClientVpnEndpoint
				for _, item := range page.Items {
					e, ok := byKey[region+"/"+item.ID]
					if !ok {
						t.Fatalf("pass %d: answer names %s in %s, which was not published", pass, item.ID, region)
					}
					published = append(published, e)
				}
				want := ec2query.AppendDescribeClientVpnEndpoints(nil, rec.Header().Get(ec2query.RequestIDHeader), published, page.NextToken)
				if !bytes.Equal(rec.Body.Bytes(), want) {
					t.Fatalf("pass %d, %s: the answer differs from the encoder's:\ngot  %s\nwant %s", pass, region, rec.Body, want)
				}
				seen += len(page.Items)
				if token = page.NextToken; token == "" {
					break
				}
			}
		}
		if seen != matching || matching < len(eps)/2 {
			t.Fatalf("pass %d: %d endpoints listed, want the %d of %d over udp or tcp", pass, seen, matching, len(eps))
		}
	}
}
