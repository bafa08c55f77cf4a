package ec2query_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/vpnfacade/vpnfacade/ec2query"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/prereq"
)

// The golden responses in testdata/golden are EC2 DescribeClientVpnEndpoints
// answers in the shapes AWS documents:
//
//   - cli_example.xml: the example of the AWS CLI reference for
//     describe-client-vpn-endpoints, whose documented output (the CLI's JSON
//     view) is cli_example.json, written here as the EC2 XML behind it;
//   - api_reference_example.xml: the sample response of the EC2 API
//     reference for DescribeClientVpnEndpoints (made well-formed; the page's
//     copy has stray quotes in its tags), elements in the page's order;
//   - page_with_next_token.xml: a middle page of a listing with the other
//     members of the API reference's ClientVpnEndpoint type (other
//     authentication kinds, client connect, banner, ip address types,
//     empty lists) and a nextToken with characters that need escaping;
//   - empty_page.xml: a listing that matches nothing;
//   - error_not_found.xml: EC2's error document for an unknown endpoint id.

// goldenResponse is the name and reading of one golden success response.
type goldenResponse struct {
	file string
	// wantIDs are the endpoint ids the SDK must read from the file, so that
	// a fixture the SDK silently drops cannot pass.
	wantIDs []string
	// wantToken is the nextToken the SDK must read.
	wantToken string
}

var goldenResponses = []goldenResponse{
	{file: "cli_example.xml", wantIDs: []string{"cvpn-endpoint-123456789123abcde"}},
	{file: "api_reference_example.xml", wantIDs: []string{"cvpn-endpoint-0043a94c5c27c7997"}},
	{file: "page_with_next_token.xml", wantIDs: []string{"cvpn-endpoint-0a1b2c3d4e5f67890", "cvpn-endpoint-0f9e8d7c6b5a43210"},
		wantToken: "eyJ2IjoxLCJjIjoiQTJiM0M0ZDVFNmY3RzhoOUkwaiJ9+/aGVsbG8="},
	{file: "empty_page.xml"},
}

// serveBody answers every request with body and status, as EC2 would.
func serveBody(t *testing.T, status int, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ec2query.ContentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenResponsesSurviveOurEncoder reads each golden EC2 response with
// aws-sdk-go-v2, maps what it read to the contract's type, encodes that with
// ec2query, reads the result with the SDK again, and requires the SDK to see
// the same endpoints and token both times: our encoder says what AWS's own
// response says, as far as the SDK can tell.
func TestGoldenResponsesSurviveOurEncoder(t *testing.T) {
	for _, g := range goldenResponses {
		t.Run(g.file, func(t *testing.T) {
			theirs, ours := reencode(t, g)
			again, err := newEC2Client(serveBody(t, http.StatusOK, ours)).
				DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
			if err != nil {
				t.Fatalf("the SDK cannot read our encoding: %v\n%s", err, ours)
			}
			if aws.ToString(again.NextToken) != aws.ToString(theirs.NextToken) {
				t.Errorf("nextToken: ours reads %q, AWS's %q", aws.ToString(again.NextToken), aws.ToString(theirs.NextToken))
			}
			want, got := withoutEmptySlices(theirs.ClientVpnEndpoints), withoutEmptySlices(again.ClientVpnEndpoints)
			if !reflect.DeepEqual(got, want) {
				wj, _ := json.MarshalIndent(want, "", "  ")
				gj, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("the SDK reads our encoding differently from AWS's response:\n ours: %s\nAWS's: %s\nour XML:\n%s", gj, wj, ours)
			}
		})
	}
}

// reencode reads a golden response with the SDK, checks that it read the
// ids and token the file holds (so that a fixture the SDK silently drops
// cannot pass), and returns what it read and ec2query's encoding of it.
func reencode(t *testing.T, g goldenResponse) (*ec2.DescribeClientVpnEndpointsOutput, []byte) {
	t.Helper()
	theirs, err := newEC2Client(serveBody(t, http.StatusOK, readGolden(t, g.file))).
		DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
	if err != nil {
		t.Fatalf("the SDK cannot read AWS's response: %v", err)
	}
	var gotIDs []string
	for _, e := range theirs.ClientVpnEndpoints {
		gotIDs = append(gotIDs, aws.ToString(e.ClientVpnEndpointId))
	}
	if !reflect.DeepEqual(gotIDs, g.wantIDs) || aws.ToString(theirs.NextToken) != g.wantToken {
		t.Fatalf("the SDK read ids %q and token %q from the golden file, want %q and %q",
			gotIDs, aws.ToString(theirs.NextToken), g.wantIDs, g.wantToken)
	}
	endpoints := make([]*clientvpnv1.ClientVpnEndpoint, len(theirs.ClientVpnEndpoints))
	for i, e := range theirs.ClientVpnEndpoints {
		endpoints[i] = endpointFromSDK(e)
	}
	return theirs, ec2query.AppendDescribeClientVpnEndpoints(nil, "req-golden", endpoints, aws.ToString(theirs.NextToken))
}

// TestGoldenResponsesReadAlikeByBoto3 has boto3 read each golden response
// and ec2query's encoding of it, and compare the two. botocore matches
// element names case-sensitively (the Go SDK does not), so this catches an
// element our encoder spells differently from AWS.
func TestGoldenResponsesReadAlikeByBoto3(t *testing.T) {
	python := prereq.Python3WithBoto3(t)
	args := []string{filepath.Join("testdata", "boto3_read_alike.py")}
	encodings := make([][]byte, len(goldenResponses))
	for i, g := range goldenResponses {
		_, encodings[i] = reencode(t, g)
		args = append(args, serveBody(t, http.StatusOK, readGolden(t, g.file)), serveBody(t, http.StatusOK, encodings[i]))
	}
	cmd := exec.CommandContext(t.Context(), python, args...)
	// Only loopback, and no credentials or settings of the machine.
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("boto3_read_alike.py: %v\n%s", err, stderr.String())
	}
	var results []struct {
		Equal     bool
		Endpoints int
		Detail    string
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(goldenResponses) {
		t.Fatalf("boto3_read_alike.py printed %q (%v), want %d results", out, err, len(goldenResponses))
	}
	for i, g := range goldenResponses {
		if got := results[i]; got.Endpoints != len(g.wantIDs) {
			t.Errorf("%s: boto3 read %d endpoints from the golden file, want %d", g.file, got.Endpoints, len(g.wantIDs))
		} else if !got.Equal {
			t.Errorf("%s: boto3 reads our encoding differently from AWS's response: %s\nour XML:\n%s", g.file, got.Detail, encodings[i])
		}
	}
}

// withoutEmptySlices returns a deep copy of v (SDK output types: structs,
// pointers, slices, strings, numbers) in which empty slices are nil. The
// contract cannot tell an absent list from an empty one (protobuf repeated
// fields have no presence), so our encoding writes every list of an
// endpoint; that AWS omitted one is not a difference a client can act on.
func withoutEmptySlices[T any](v T) T {
	out := reflect.New(reflect.TypeOf(v)).Elem()
	copyWithoutEmptySlices(out, reflect.ValueOf(v))
	return out.Interface().(T)
}

func copyWithoutEmptySlices(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if !src.IsNil() {
			dst.Set(reflect.New(src.Type().Elem()))
			copyWithoutEmptySlices(dst.Elem(), src.Elem())
		}
	case reflect.Slice:
		if src.Len() > 0 {
			dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
			for i := range src.Len() {
				copyWithoutEmptySlices(dst.Index(i), src.Index(i))
			}
		}
	case reflect.Struct:
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				copyWithoutEmptySlices(dst.Field(i), src.Field(i))
			}
		}
	default:
		dst.Set(src)
	}
}

// TestGoldenCLIExampleReadsAsDocumented checks the XML transcription of the
// AWS CLI reference example against the example's documented output: the
// SDK's reading of it, as JSON without the members it left unset, is the
// CLI's.
func TestGoldenCLIExampleReadsAsDocumented(t *testing.T) {
	out, err := newEC2Client(serveBody(t, http.StatusOK, readGolden(t, "cli_example.xml"))).
		DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct{ ClientVpnEndpoints []types.ClientVpnEndpoint }{out.ClientVpnEndpoints})
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(readGolden(t, "cli_example.json"), &want); err != nil {
		t.Fatal(err)
	}
	if got = withoutNulls(got); !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("the SDK reads the CLI example's XML as\n%s\nwhich is not the documented output", gj)
	}
}

// withoutNulls drops the members of JSON objects that the SDK left unset, as
// the CLI does: null, or "" for enum-typed members (the SDK's enums are
// strings). The CLI example has no empty string.
func withoutNulls(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if x == nil || x == "" {
				delete(v, k)
			} else {
				v[k] = withoutNulls(x)
			}
		}
	case []any:
		for i, x := range v {
			v[i] = withoutNulls(x)
		}
	}
	return v
}

// TestGoldenErrorSurvivesOurEncoder does for EC2's error document what
// TestGoldenResponsesSurviveOurEncoder does for answers: the SDK reads the
// same code, message, HTTP status and request id from AWS's document and
// from ec2query's encoding of what it read.
func TestGoldenErrorSurvivesOurEncoder(t *testing.T) {
	type reading struct {
		code, message, requestID string
		status                   int
	}
	read := func(url string) reading {
		t.Helper()
		_, err := newEC2Client(url).DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
		var r reading
		apiErr, ok := errors.AsType[smithy.APIError](err)
		if !ok {
			t.Fatalf("got %v, want an API error", err)
		}
		r.code, r.message = apiErr.ErrorCode(), apiErr.ErrorMessage()
		var withStatus interface{ HTTPStatusCode() int }
		if errors.As(err, &withStatus) {
			r.status = withStatus.HTTPStatusCode()
		}
		var withID interface{ ServiceRequestID() string }
		if errors.As(err, &withID) {
			r.requestID = withID.ServiceRequestID()
		}
		return r
	}
	theirs := read(serveBody(t, http.StatusBadRequest, readGolden(t, "error_not_found.xml")))
	want := reading{"InvalidClientVpnEndpointId.NotFound", "Endpoint cvpn-endpoint-00000000000000000 does not exist",
		"9d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09", http.StatusBadRequest}
	if theirs != want {
		t.Fatalf("the SDK reads the golden error as %+v, want %+v", theirs, want)
	}
	ours := ec2query.AppendError(nil, theirs.requestID, ec2query.NewAPIError(theirs.code, theirs.status, "%s", theirs.message))
	if got := read(serveBody(t, theirs.status, ours)); got != theirs {
		t.Errorf("the SDK reads our error as %+v, AWS's as %+v\nour XML:\n%s", got, theirs, ours)
	}
}
