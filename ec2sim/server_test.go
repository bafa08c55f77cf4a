package ec2sim_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/upstream"
)

const (
	accountA = "111111111111"
	accountB = "222222222222"
)

// startSim serves a Server with generated data on a loopback port.
func startSim(t *testing.T, gen ec2sim.GenerateOptions, opts ec2sim.Options) (*ec2sim.Server, string) {
	t.Helper()
	eps, err := ec2sim.Generate(gen)
	if err != nil {
		t.Fatal(err)
	}
	opts.Endpoints = eps
	sim, err := ec2sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// newClient returns a real EC2 client for url signing for region. It
// retries only connection errors, so tests see every API error: over
// loopback the SDK can close its own connection while reading a large
// answer (aws-sdk-go-v2 issue 2737), which its standard retryer retries.
func newClient(url, region string, optFns ...func(*ec2.Options)) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      connectionRetries(),
	}, optFns...)
}

// connectionRetries is a retryer for connection errors only.
func connectionRetries() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		o.MaxAttempts = 5
		o.MaxBackoff = 10 * time.Millisecond
		o.RateLimiter = ratelimit.None
	})
}

// listAll pages through DescribeClientVpnEndpoints with the SDK paginator.
func listAll(t *testing.T, c *ec2.Client, in *ec2.DescribeClientVpnEndpointsInput, pageSize int32) ([]types.ClientVpnEndpoint, int, error) {
	t.Helper()
	p := ec2.NewDescribeClientVpnEndpointsPaginator(c, in, func(o *ec2.DescribeClientVpnEndpointsPaginatorOptions) {
		o.Limit = pageSize
	})
	var out []types.ClientVpnEndpoint
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			return out, pages, err
		}
		pages++
		out = append(out, page.ClientVpnEndpoints...)
	}
	return out, pages, nil
}

func ids(eps []types.ClientVpnEndpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = aws.ToString(e.ClientVpnEndpointId)
	}
	return out
}

func protoIDs(eps []*clientvpnv1.ClientVpnEndpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.GetClientVpnEndpointId()
	}
	return out
}

// apiCode returns the AWS error code of err, or "" when it is not an API
// error.
func apiCode(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}

func TestPaginatorReadsEveryEndpointOfItsPartition(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 123, Seed: 7, Regions: []string{"eu-west-1", "us-east-1"}, Accounts: []string{accountA}}, ec2sim.Options{})
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		t.Run(region, func(t *testing.T) {
			got, pages, err := listAll(t, newClient(url, region), &ec2.DescribeClientVpnEndpointsInput{}, 5)
			if err != nil {
				t.Fatal(err)
			}
			want := sim.Endpoints(accountA, region)
			if len(want) < 60 {
				t.Fatalf("only %d endpoints generated in %s", len(want), region)
			}
			if wantPages := (len(want) + 4) / 5; pages != wantPages {
				t.Errorf("%d pages of 5 for %d endpoints, want %d", pages, len(want), wantPages)
			}
			if !slices.Equal(ids(got), protoIDs(want)) {
				t.Fatalf("ids differ:\n got %v\nwant %v", ids(got), protoIDs(want))
			}
			// Every field survives the wire and the facade's own SDK mapping.
			for i, e := range got {
				if g := upstream.EndpointFromSDK(e, accountA, region); !proto.Equal(g, want[i]) {
					t.Errorf("endpoint %s changed on the wire:\n got %s\nwant %s", want[i].GetClientVpnEndpointId(),
						prototext.Format(g), prototext.Format(want[i]))
				}
			}
		})
	}
	// A partition without data lists nothing.
	got, _, err := listAll(t, newClient(url, "ap-southeast-2"), &ec2.DescribeClientVpnEndpointsInput{}, 5)
	if err != nil || len(got) != 0 {
		t.Errorf("empty region: %d endpoints, %v", len(got), err)
	}
}

func TestDefaultPageSizeIsAThousand(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 1001, Seed: 1}, ec2sim.Options{})
	out, err := newClient(url, ec2sim.DefaultRegion).DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ClientVpnEndpoints) != 1000 || aws.ToString(out.NextToken) == "" {
		t.Errorf("first page: %d endpoints, next token %q; want 1000 and a token", len(out.ClientVpnEndpoints), aws.ToString(out.NextToken))
	}
	if st := sim.Stats(); st.ByAction["DescribeClientVpnEndpoints"] != 1 || st.ByPartition[ec2sim.PartitionKey{AccountID: accountA, Region: ec2sim.DefaultRegion}] != 1 {
		t.Errorf("stats %+v, want one DescribeClientVpnEndpoints in %s/%s", st, accountA, ec2sim.DefaultRegion)
	}
}

func TestIDsAndFilters(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 200, Seed: 3}, ec2sim.Options{})
	all := sim.Endpoints(accountA, ec2sim.DefaultRegion)
	c := newClient(url, ec2sim.DefaultRegion)

	match := func(pred func(e *clientvpnv1.ClientVpnEndpoint) bool) []string {
		var out []string
		for _, e := range all {
			if pred(e) {
				out = append(out, e.GetClientVpnEndpointId())
			}
		}
		return out
	}
	tag := func(e *clientvpnv1.ClientVpnEndpoint, key string) (string, bool) {
		for _, t := range e.GetTags() {
			if t.GetKey() == key {
				return t.GetValue(), true
			}
		}
		return "", false
	}
	first, second := all[0].GetClientVpnEndpointId(), all[1].GetClientVpnEndpointId()
	prefix := first[:len("cvpn-endpoint-")+1]

	tests := []struct {
		name string
		in   ec2.DescribeClientVpnEndpointsInput
		want []string
	}{
		{"ids", ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{second, first}}, []string{first, second}},
		{"endpoint-id", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("endpoint-id"), Values: []string{first}}}}, []string{first}},
		{"endpoint-id wildcard *", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("endpoint-id"), Values: []string{prefix + "*"}}}},
			match(func(e *clientvpnv1.ClientVpnEndpoint) bool {
				return strings.HasPrefix(e.GetClientVpnEndpointId(), prefix)
			})},
		{"endpoint-id wildcard ?", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("endpoint-id"), Values: []string{first[:len(first)-1] + "?"}}}},
			match(func(e *clientvpnv1.ClientVpnEndpoint) bool {
				return e.GetClientVpnEndpointId()[:len(first)-1] == first[:len(first)-1]
			})},
		{"transport-protocol", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("transport-protocol"), Values: []string{"tcp"}}}},
			match(func(e *clientvpnv1.ClientVpnEndpoint) bool {
				return e.GetTransportProtocol() == clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_TCP
			})},
		{"values are ORed", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("transport-protocol"), Values: []string{"tcp", "udp"}}}},
			match(func(e *clientvpnv1.ClientVpnEndpoint) bool { return e.GetTransportProtocol() != 0 })},
		{"tag with special characters", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("tag:équipe & coût"), Values: []string{"<réseau> \"α\" 'β'"}}}},
			match(func(e *clientvpnv1.ClientVpnEndpoint) bool { _, ok := tag(e, "équipe & coût"); return ok })},
		{"tag wildcard", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("tag:Environment"), Values: []string{"*ion"}}}},
			match(func(e *clientvpnv1.ClientVpnEndpoint) bool { v, _ := tag(e, "Environment"); return v == "production" })},
		{"filters are ANDed", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{
			{Name: aws.String("transport-protocol"), Values: []string{"udp"}},
			{Name: aws.String("tag:Team"), Values: []string{"platform", "security"}},
		}}, match(func(e *clientvpnv1.ClientVpnEndpoint) bool {
			v, _ := tag(e, "Team")
			return e.GetTransportProtocol() == clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UDP && (v == "platform" || v == "security")
		})},
		{"no match", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"no such vpn"}}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "no match" && tt.name != "ids" && len(tt.want) < 1 {
				t.Fatalf("the generated data has no endpoint for this case")
			}
			got, _, err := listAll(t, c, &tt.in, 7)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("got %v\nwant %v", ids(got), tt.want)
			}
		})
	}
}

func TestErrorsAsTheSDKSeesThem(t *testing.T) {
	_, url := startSim(t, ec2sim.GenerateOptions{Count: 20, Seed: 3}, ec2sim.Options{})
	c := newClient(url, ec2sim.DefaultRegion)
	tests := []struct {
		name     string
		in       ec2.DescribeClientVpnEndpointsInput
		wantCode string
		wantMsg  string
	}{
		{"unknown id", ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{"cvpn-endpoint-00000000000000000"}}, "InvalidClientVpnEndpointId.NotFound", "cvpn-endpoint-00000000000000000"},
		{"unknown filter", ec2.DescribeClientVpnEndpointsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{"x"}}}}, "InvalidParameterValue", "The filter 'vpc-id' is invalid"},
		{"MaxResults too small", ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(4)}, "InvalidParameterValue", "between 5 and 1000"},
		{"MaxResults too large", ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(1001)}, "InvalidParameterValue", "MaxResults"},
		{"bad token", ec2.DescribeClientVpnEndpointsInput{NextToken: aws.String("not-a-token")}, "InvalidPaginationToken", ""},
		{"dry run", ec2.DescribeClientVpnEndpointsInput{DryRun: aws.Bool(true)}, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."},
		{"dry run of a bad request", ec2.DescribeClientVpnEndpointsInput{DryRun: aws.Bool(true), MaxResults: aws.Int32(2)}, "InvalidParameterValue", "MaxResults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.DescribeClientVpnEndpoints(t.Context(), &tt.in)
			ae, ok := errors.AsType[smithy.APIError](err)
			if !ok {
				t.Fatalf("got %v, want API error %s", err, tt.wantCode)
			}
			if ae.ErrorCode() != tt.wantCode || !strings.Contains(ae.ErrorMessage(), tt.wantMsg) {
				t.Errorf("got %s %q, want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), tt.wantCode, tt.wantMsg)
			}
		})
	}
	// A token stays bound to its filters.
	in := &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(5)}
	page, err := c.DescribeClientVpnEndpoints(t.Context(), in)
	if err != nil || page.NextToken == nil {
		t.Fatalf("first page: %v, token %v", err, page.NextToken)
	}
	_, err = c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{
		NextToken: page.NextToken, Filters: []types.Filter{{Name: aws.String("transport-protocol"), Values: []string{"udp"}}},
	})
	if apiCode(err) != "InvalidPaginationToken" {
		t.Errorf("token reused with other filters: %v, want InvalidPaginationToken", err)
	}
	// Actions other than DescribeClientVpnEndpoints are not offered.
	_, err = c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	if apiCode(err) != "InvalidAction" {
		t.Errorf("DescribeVpcs: %v, want InvalidAction", err)
	}
}

func TestRawRequests(t *testing.T) {
	_, base := startSim(t, ec2sim.GenerateOptions{Count: 10, Seed: 3}, ec2sim.Options{})
	post := func(form url.Values, auth string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	// Unsigned requests read the default region.
	code, body := post(url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}}, "")
	if code != 200 || strings.Count(body, "<clientVpnEndpointId>") != 10 {
		t.Errorf("unsigned: %d, %d endpoints", code, strings.Count(body, "<clientVpnEndpointId>"))
	}
	code, body = post(url.Values{"Version": {"2016-11-15"}}, "")
	if code != 400 || !strings.Contains(body, "<Code>MissingParameter</Code>") {
		t.Errorf("no Action: %d %s", code, body)
	}
	code, body = post(url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Filter.1.Value.1": {"x"}}, "")
	if code != 400 || !strings.Contains(body, "<Code>MissingParameter</Code>") || !strings.Contains(body, "Filter.1.Name") {
		t.Errorf("filter without name: %d %s", code, body)
	}
	code, body = post(url.Values{"Action": {"DescribeClientVpnEndpoints"}},
		"AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-north-1/ec2/aws4_request, SignedHeaders=host, Signature=0")
	if code != 200 || strings.Contains(body, "<item>") {
		t.Errorf("signed for an empty region: %d %s", code, body)
	}
}

func TestRegionsDownAndWithoutClientVPN(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 10, Seed: 3, Regions: []string{"eu-west-1", "us-east-1"}},
		ec2sim.Options{UnsupportedRegions: []string{"ap-east-1"}})
	if _, err := newClient(url, "ap-east-1").DescribeClientVpnEndpoints(t.Context(), nil); apiCode(err) != "InvalidAction" {
		t.Errorf("unsupported region: %v, want InvalidAction", err)
	}
	sim.SetRegionDown("eu-west-1", true)
	_, err := newClient(url, "eu-west-1").DescribeClientVpnEndpoints(t.Context(), nil)
	var re interface{ HTTPStatusCode() int }
	if apiCode(err) != "Unavailable" || !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Errorf("down region: %v, want Unavailable 503", err)
	}
	if _, err := newClient(url, "us-east-1").DescribeClientVpnEndpoints(t.Context(), nil); err != nil {
		t.Errorf("other region affected: %v", err)
	}
	sim.SetRegionDown("eu-west-1", false)
	if _, err := newClient(url, "eu-west-1").DescribeClientVpnEndpoints(t.Context(), nil); err != nil {
		t.Errorf("region back up: %v", err)
	}
}

// fastRetries is the SDK's standard retryer (which classifies throttling
// and 5xx answers) with short backoffs and more attempts, so tests stay fast.
func fastRetries(o *ec2.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 20
		so.MaxBackoff = 20 * time.Millisecond
		// Without the client-side retry quota, which a deliberately
		// failing server would exhaust.
		so.RateLimiter = ratelimit.None
	})
}

func TestThrottlingIsRetriedByTheSDK(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 60, Seed: 3},
		ec2sim.Options{Throttle: ec2sim.Throttle{Burst: 2, PerSecond: 0.5}})
	// Without retries the third quick call is refused.
	c := newClient(url, ec2sim.DefaultRegion)
	var codes []string
	for range 3 {
		_, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{})
		codes = append(codes, apiCode(err))
	}
	if codes[2] != "RequestLimitExceeded" {
		t.Errorf("third call of a burst of 2: %q, want RequestLimitExceeded", codes)
	}
	if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(&smithy.GenericAPIError{Code: "RequestLimitExceeded"}).Bool() {
		t.Fatal("the SDK does not classify RequestLimitExceeded as a throttle")
	}

	// With the standard retryer every page eventually succeeds. The bucket
	// refills at 5/s, slower than even a loaded machine pages, so that the
	// pages after the burst are throttled for certain.
	if err := sim.SetThrottle(ec2sim.Throttle{Burst: 2, PerSecond: 5}); err != nil {
		t.Fatal(err)
	}
	patient := func(o *ec2.Options) {
		fastRetries(o)
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 60)
	}
	got, _, err := listAll(t, newClient(url, ec2sim.DefaultRegion, patient), &ec2.DescribeClientVpnEndpointsInput{}, 5)
	if err != nil {
		t.Fatalf("paginating under throttling: %v", err)
	}
	if len(got) != 60 {
		t.Errorf("read %d endpoints, want 60", len(got))
	}
	if st := sim.Stats(); st.Throttled < 5 {
		t.Errorf("only %d requests throttled: the test did not exercise throttling", st.Throttled)
	}
	// Turning throttling off lifts it.
	if err := sim.SetThrottle(ec2sim.Throttle{}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := c.DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{}); err != nil {
			t.Fatalf("throttle off: %v", err)
		}
	}
}

func TestInjectedFailures(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 40, Seed: 3}, ec2sim.Options{FailRate: 1, Seed: 9})
	_, err := newClient(url, ec2sim.DefaultRegion).DescribeClientVpnEndpoints(t.Context(), nil)
	if apiCode(err) != "InternalError" || !strings.Contains(err.Error(), "An internal error has occurred") {
		t.Errorf("fail rate 1: %v, want InternalError", err)
	}
	if err := sim.SetFailRate(0.3); err != nil {
		t.Fatal(err)
	}
	got, _, err := listAll(t, newClient(url, ec2sim.DefaultRegion, fastRetries), &ec2.DescribeClientVpnEndpointsInput{}, 5)
	if err != nil || len(got) != 40 {
		t.Fatalf("paginating with 30%% failures and retries: %d endpoints, %v", len(got), err)
	}
	if st := sim.Stats(); st.InjectedFailures < 2 {
		t.Errorf("%d injected failures, want several", st.InjectedFailures)
	}
	if err := sim.SetFailRate(1.5); err == nil {
		t.Error("fail rate 1.5 accepted")
	}
}

func TestLatencyDelaysEveryPage(t *testing.T) {
	_, url := startSim(t, ec2sim.GenerateOptions{Count: 10, Seed: 3}, ec2sim.Options{Latency: 30 * time.Millisecond})
	start := time.Now()
	_, pages, err := listAll(t, newClient(url, ec2sim.DefaultRegion), &ec2.DescribeClientVpnEndpointsInput{}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < time.Duration(pages)*30*time.Millisecond {
		t.Errorf("%d pages took %v, less than the injected latency", pages, elapsed)
	}
}

func TestMutationsAreSeenByTheNextListing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 50, Seed: 3}, ec2sim.Options{
		MutateEvery: 10 * time.Second, MutateCount: 6, Seed: 5,
		Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now },
	})
	c := newClient(url, ec2sim.DefaultRegion)
	before, _, err := listAll(t, c, &ec2.DescribeClientVpnEndpointsInput{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	again, _, _ := listAll(t, c, &ec2.DescribeClientVpnEndpointsInput{}, 1000)
	if !slices.Equal(ids(before), ids(again)) {
		t.Fatal("data changed before the mutation interval elapsed")
	}

	clock.Lock()
	now = now.Add(25 * time.Second) // two intervals: 12 changes
	clock.Unlock()
	after, _, err := listAll(t, c, &ec2.DescribeClientVpnEndpointsInput{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := sim.Endpoints(accountA, ec2sim.DefaultRegion)
	if !slices.Equal(ids(after), protoIDs(want)) {
		t.Fatalf("listing after mutation differs from the server's data")
	}
	changed := 0
	old := map[string]*clientvpnv1.ClientVpnEndpoint{}
	for _, e := range before {
		old[aws.ToString(e.ClientVpnEndpointId)] = upstream.EndpointFromSDK(e, accountA, ec2sim.DefaultRegion)
	}
	for _, e := range after {
		id := aws.ToString(e.ClientVpnEndpointId)
		if o, ok := old[id]; !ok || !proto.Equal(o, upstream.EndpointFromSDK(e, accountA, ec2sim.DefaultRegion)) {
			changed++
		}
		delete(old, id)
	}
	changed += len(old) // deleted
	if changed == 0 || changed > 12 {
		t.Errorf("%d endpoints changed after two intervals of 6 changes, want 1..12", changed)
	}

	m := sim.Mutate(30)
	if len(m.Added)+len(m.Modified)+len(m.Deleted) != 30 || len(m.Added) == 0 || len(m.Modified) == 0 || len(m.Deleted) == 0 {
		t.Errorf("Mutate(30) = %d added, %d modified, %d deleted", len(m.Added), len(m.Modified), len(m.Deleted))
	}
}

func TestPutAndDelete(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 5, Seed: 3}, ec2sim.Options{})
	c := newClient(url, "eu-west-3")
	e := &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId: proto.String("cvpn-endpoint-0000000000000abcd"),
		CreationTime:        proto.String("2018-12-11T13:14:10"),
		Region:              "eu-west-3",
	}
	if err := sim.Put(e); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeClientVpnEndpoints(t.Context(), nil)
	if err != nil || len(out.ClientVpnEndpoints) != 1 || aws.ToString(out.ClientVpnEndpoints[0].CreationTime) != "2018-12-11T13:14:10" {
		t.Fatalf("after Put: %v, %+v", err, out)
	}
	stored := sim.Endpoints(accountA, "eu-west-3")[0]
	if got := stored.GetCreationTimeParsed().AsTime(); !got.Equal(time.Date(2018, 12, 11, 13, 14, 10, 0, time.UTC)) {
		t.Errorf("creation_time_parsed = %v", got)
	}
	if n := sim.Delete(accountA, "eu-west-3", "cvpn-endpoint-0000000000000abcd", "cvpn-endpoint-nope"); n != 1 {
		t.Errorf("Delete removed %d, want 1", n)
	}
	if out, _ := c.DescribeClientVpnEndpoints(t.Context(), nil); len(out.ClientVpnEndpoints) != 0 {
		t.Errorf("after Delete: %d endpoints", len(out.ClientVpnEndpoints))
	}
	if err := sim.Put(&clientvpnv1.ClientVpnEndpoint{}); err == nil {
		t.Error("endpoint without id accepted")
	}
}

func TestConcurrentReadersAndChanges(t *testing.T) {
	sim, url := startSim(t, ec2sim.GenerateOptions{Count: 300, Seed: 3, Regions: []string{"eu-west-1", "us-east-1"}}, ec2sim.Options{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			region := []string{"eu-west-1", "us-east-1"}[i%2]
			for range 3 {
				if _, _, err := listAll(t, newClient(url, region), &ec2.DescribeClientVpnEndpointsInput{}, 50); err != nil {
					// A page token can outlive a deleted endpoint: the
					// listing continues after its key, so no error is expected.
					t.Errorf("listing during changes: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			sim.Mutate(5)
			_ = sim.SetFailRate(0)
			_ = sim.Stats()
		}
	})
	wg.Wait()
	if st := sim.Stats(); st.Requests < 4*3*3 {
		t.Errorf("%d requests counted, want at least %d", st.Requests, 4*3*3)
	}
}
