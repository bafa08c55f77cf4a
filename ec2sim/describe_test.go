package ec2sim_test

import (
	"errors"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// Hand-made endpoints whose attributes the cases below are written against.
const (
	idA     = "cvpn-endpoint-0000000000000000a"
	idB     = "cvpn-endpoint-0000000000000000b"
	idC     = "cvpn-endpoint-0000000000000000c"
	idE     = "cvpn-endpoint-0000000000000000e"
	idOther = "cvpn-endpoint-0000000000000000f" // in us-east-1 only
)

func handMade(id, region string, transport clientvpnv1.TransportProtocol, tags ...string) *clientvpnv1.ClientVpnEndpoint {
	e := &clientvpnv1.ClientVpnEndpoint{ClientVpnEndpointId: proto.String(id), TransportProtocol: transport, Region: region}
	for i := 0; i+1 < len(tags); i += 2 {
		e.Tags = append(e.Tags, &clientvpnv1.Tag{Key: proto.String(tags[i]), Value: proto.String(tags[i+1])})
	}
	return e
}

// startHandMade serves the hand-made endpoints and returns a client for
// eu-west-1.
func startHandMade(t *testing.T) (*ec2sim.Server, *ec2.Client, string) {
	t.Helper()
	tcp, udp := clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_TCP, clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP
	quic := handMade(idE, "eu-west-1", 0, "Name", "experimental")
	quic.TransportProtocolUnrecognized = proto.String("quic")
	sim, err := ec2sim.New(ec2sim.Options{DefaultRegion: "eu-west-1", Endpoints: []*clientvpnv1.ClientVpnEndpoint{
		handMade(idC, "eu-west-1", udp, "Name", "db?", "Team", "platform"),
		handMade(idA, "eu-west-1", tcp, "Name", "web*", "Team", "platform"),
		handMade(idB, "eu-west-1", udp, "Name", "Web", "Team", "security", "Empty", ""),
		quic,
		handMade(idOther, "us-east-1", tcp, "Name", "web*", "Team", "platform"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, newClient(srv.URL, "eu-west-1"), srv.URL
}

func filters(nameValues ...[]string) []types.Filter {
	var out []types.Filter
	for _, nv := range nameValues {
		out = append(out, types.Filter{Name: aws.String(nv[0]), Values: nv[1:]})
	}
	return out
}

func TestFilterSemanticsAsEC2DocumentsThem(t *testing.T) {
	_, c, _ := startHandMade(t)
	tests := []struct {
		name string
		in   ec2.DescribeClientVpnEndpointsInput
		want []string
	}{
		{"no filter: the request's region only, in id order", ec2.DescribeClientVpnEndpointsInput{}, []string{idA, idB, idC, idE}},
		{"transport-protocol", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"transport-protocol", "udp"})}, []string{idB, idC}},
		{"values are case-sensitive", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"transport-protocol", "TCP", "Udp"})}, nil},
		{"a transport the contract does not know", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"transport-protocol", "quic"})}, []string{idE}},
		{"values are ORed", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"endpoint-id", idC, idA, "cvpn-endpoint-nope"})}, []string{idA, idC}},
		{"filters are ANDed", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:Team", "platform"}, []string{"transport-protocol", "udp"})}, []string{idC}},
		{"tag keys are case-sensitive", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:team", "platform"})}, nil},
		{"* matches any run, none included", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:Name", "web*"})}, []string{idA}},
		{"? matches exactly one character", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:Name", "?eb", "d?"})}, []string{idB}},
		{"an escaped * is literal", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:Name", `web\*`, `db\*`})}, []string{idA}},
		{"an escaped ? is literal", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:Name", `?b\?`})}, []string{idC}},
		{"* alone needs the tag, not a value", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:Empty", "*"})}, []string{idB}},
		{"an empty value matches an empty tag value", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:Empty", ""})}, []string{idB}},
		{"brackets are no character class", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"endpoint-id", "cvpn-endpoint-*[ab]"})}, nil},
		{"? before the end", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"endpoint-id", "*0?"})}, []string{idA, idB, idC, idE}},
		{"endpoint-id wildcard at the end", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"endpoint-id", "*0b", "*0e"})}, []string{idB, idE}},
		{"ids", ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{idC, idA, idC}}, []string{idA, idC}},
		{"ids and filters", ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{idA, idB}, Filters: filters([]string{"transport-protocol", "udp"})}, []string{idB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := listAll(t, c, &tt.in, 5)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("got %v, want %v", ids(got), tt.want)
			}
		})
	}
}

func TestRequestErrorsAsEC2DocumentsThem(t *testing.T) {
	_, c, _ := startHandMade(t)
	long := strings.Repeat("x", 300)
	tests := []struct {
		name     string
		in       ec2.DescribeClientVpnEndpointsInput
		wantCode string
		wantMsg  string
	}{
		{"filter names are case-sensitive", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"Transport-Protocol", "tcp"})},
			"InvalidParameterValue", "The filter 'Transport-Protocol' is invalid"},
		{"status is not an EC2 filter of this call", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"status", "available"})},
			"InvalidParameterValue", "The filter 'status' is invalid"},
		{"tag-key is not an EC2 filter of this call", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag-key", "Name"})},
			"InvalidParameterValue", "The filter 'tag-key' is invalid"},
		{"region is not an EC2 filter", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"region", "eu-west-1"})},
			"InvalidParameterValue", "The filter 'region' is invalid"},
		{"tag: without a key", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{"tag:", "x"})},
			"InvalidParameterValue", "The filter 'tag:' is invalid"},
		{"a long name is cut in the message", ec2.DescribeClientVpnEndpointsInput{Filters: filters([]string{long, "x"})},
			"InvalidParameterValue", "The filter '" + long[:64] + "…' is invalid"},
		{"an unknown id", ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{idA, "cvpn-endpoint-00000000000000000"}},
			"InvalidClientVpnEndpointId.NotFound", "cvpn-endpoint-00000000000000000"},
		{"an id of another region", ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{idOther}},
			"InvalidClientVpnEndpointId.NotFound", idOther},
		{"an id of another region, with a filter", ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{idOther}, Filters: filters([]string{"tag:Name", "*"})},
			"InvalidClientVpnEndpointId.NotFound", idOther},
		{"a token this service did not issue", ec2.DescribeClientVpnEndpointsInput{NextToken: aws.String("eyJ2IjoxfQ==")},
			"InvalidPaginationToken", "NextToken"},
		{"a dry run does not look at the data", ec2.DescribeClientVpnEndpointsInput{DryRun: aws.Bool(true), ClientVpnEndpointIds: []string{"cvpn-endpoint-00000000000000000"}},
			"DryRunOperation", "Request would have succeeded"},
		{"a dry run checks the filters", ec2.DescribeClientVpnEndpointsInput{DryRun: aws.Bool(true), Filters: filters([]string{"vpc-id", "vpc-1"})},
			"InvalidParameterValue", "The filter 'vpc-id' is invalid"},
		{"a dry run checks the token", ec2.DescribeClientVpnEndpointsInput{DryRun: aws.Bool(true), NextToken: aws.String("garbage")},
			"InvalidPaginationToken", "NextToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.DescribeClientVpnEndpoints(t.Context(), &tt.in)
			ae, ok := errors.AsType[smithy.APIError](err)
			if !ok {
				t.Fatalf("got %v, want API error %s", err, tt.wantCode)
			}
			msg := ae.ErrorMessage()
			if ae.ErrorCode() != tt.wantCode || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("got %s %q, want %s containing %q", ae.ErrorCode(), msg, tt.wantCode, tt.wantMsg)
			}
			if len(msg) > 200 {
				t.Errorf("message of %d bytes repeats too much of the request: %q", len(msg), msg)
			}
		})
	}
}

func TestPageTokens(t *testing.T) {
	sim, c, url := startHandMade(t)
	first, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5),
		Filters: filters([]string{"endpoint-id", "*"})})
	if err != nil || first.NextToken != nil || len(first.ClientVpnEndpoints) != 4 {
		t.Fatalf("one page of 4 under MaxResults 5: %d endpoints, token %v, %v", len(first.ClientVpnEndpoints), first.NextToken, err)
	}
	// Enough endpoints for three pages of 5.
	for i := range 11 {
		e := handMade("cvpn-endpoint-1000000000000000"+string(rune('a'+i)), "eu-west-1", clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_TCP)
		if err := sim.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	in := &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5)}
	page1, err := c.DescribeClientVpnEndpoints(t.Context(), in)
	if err != nil || page1.NextToken == nil || len(page1.ClientVpnEndpoints) != 5 {
		t.Fatalf("page 1: %d endpoints, token %v, %v", len(page1.ClientVpnEndpoints), page1.NextToken, err)
	}
	token := aws.ToString(page1.NextToken)

	// A token continues after the last endpoint it returned, whatever
	// changed since: deleting that endpoint and the next one loses nothing else.
	want := ids(page1.ClientVpnEndpoints)
	all := protoIDs(sim.Endpoints(accountA, "eu-west-1"))
	sim.Delete(accountA, "eu-west-1", want[4], all[5])
	rest, _, err := listAll(t, c, &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5), NextToken: aws.String(token)}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if wantRest := all[6:]; !slices.Equal(ids(rest), wantRest) {
		t.Errorf("after the token: %v, want %v", ids(rest), wantRest)
	}

	// A token is refused with other ids or filters, in another region, or
	// changed by one character.
	other := newClient(url, "us-east-1")
	edited := []byte(token)
	edited[len(edited)/2] ^= 1
	for name, call := range map[string]func() error{
		"other filters": func() error {
			_, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{NextToken: aws.String(token), Filters: filters([]string{"transport-protocol", "tcp"})})
			return err
		},
		"other ids": func() error {
			_, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{NextToken: aws.String(token), ClientVpnEndpointIds: []string{idA}})
			return err
		},
		"other region": func() error {
			_, err := other.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{NextToken: aws.String(token)})
			return err
		},
		"edited": func() error {
			_, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{NextToken: aws.String(string(edited))})
			return err
		},
	} {
		if err := call(); apiCode(err) != "InvalidPaginationToken" {
			t.Errorf("token with %s: %v, want InvalidPaginationToken", name, err)
		}
	}
	// The same filters in another order are the same request.
	f1 := filters([]string{"transport-protocol", "tcp", "udp"}, []string{"endpoint-id", "*"})
	f2 := filters([]string{"endpoint-id", "*"}, []string{"transport-protocol", "udp", "tcp"})
	p, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5), Filters: f1})
	if err != nil || p.NextToken == nil {
		t.Fatalf("filtered page: %v", err)
	}
	if _, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5), Filters: f2, NextToken: p.NextToken}); err != nil {
		t.Errorf("token with the same filters reordered: %v", err)
	}
}

// TestIndependentOfTheFacade guards what makes the emulator an oracle: it
// links no package of the facade's query engine or store, so a comparison
// with the facade compares two implementations.
func TestIndependentOfTheFacade(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(pkg, "github.com/vpnfacade/vpnfacade")
		if !ok {
			continue
		}
		switch rest {
		case "", "/ec2sim", "/ec2query", "/gen/clientvpn/v1":
		default:
			t.Errorf("ec2sim depends on %s; it may share only the wire format (ec2query), the contract and the root package", pkg)
		}
	}
}
