package server_test

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"connectrpc.com/connect"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// ids returns the ids of eps.
func ids(eps []*clientvpnv1.ClientVpnEndpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.GetClientVpnEndpointId()
	}
	return out
}

func repeatValues(n int, v string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestListLimitsOnEveryProtocol(t *testing.T) {
	t.Parallel()
	eps := fixture(snapshot.MaxIDs + 1)
	e := newEnv(t, eps, 0)
	long := strings.Repeat("é", snapshot.MaxValueLength+1)
	cases := []struct {
		name  string
		req   *clientvpnv1.ListClientVpnEndpointsRequest
		parts []string // "" code: within the limits
	}{
		{"1000 ids, 50 filters, 200 values of 256 characters", &clientvpnv1.ListClientVpnEndpointsRequest{
			ClientVpnEndpointIds: ids(eps[:snapshot.MaxIDs]),
			Filters: append(repeatFilters(snapshot.MaxFilters-1),
				&clientvpnv1.Filter{Name: "tag:team", Values: append(repeatValues(snapshot.MaxValuesPerFilter-1, strings.Repeat("é", 256)), "*")}),
		}, nil},
		{"1001 ids", &clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: ids(eps)},
			[]string{"client_vpn_endpoint_ids", "1001", "limit of 1000"}},
		{"51 filters", &clientvpnv1.ListClientVpnEndpointsRequest{Filters: repeatFilters(snapshot.MaxFilters + 1)},
			[]string{"filters", "51", "limit of 50"}},
		{"201 values", &clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "vpc-id", Values: repeatValues(201, "vpc-1")}}},
			[]string{`"vpc-id"`, "201 values", "limit of 200"}},
		{"257-character value", &clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "vpc-id", Values: []string{"vpc-1", long}}}},
			[]string{"filters", "257 characters", "limit of 256"}},
		{"257-character name", &clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "tag:" + long[:2*253], Values: []string{"x"}}}},
			[]string{"filters", "257 characters", "limit of 256"}},
	}
	for proto, c := range e.clients {
		for _, tc := range cases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				for _, dryRun := range []bool{false, true} {
					tc.req.DryRun = dryRun
					_, err := c.ListClientVpnEndpoints(t.Context(), tc.req)
					if tc.parts == nil {
						want := connect.CodeOf(nil)
						if dryRun {
							want = connect.CodeFailedPrecondition // DryRunOperation: it would have succeeded
						}
						if connect.CodeOf(err) != want && !(err == nil && !dryRun) {
							t.Fatalf("dry run %v: within the limits, got %v", dryRun, err)
						}
						continue
					}
					if connect.CodeOf(err) != connect.CodeInvalidArgument {
						t.Fatalf("dry run %v: got %v, want invalid_argument", dryRun, err)
					}
					msg := err.(*connect.Error).Message()
					for _, p := range tc.parts {
						if !strings.Contains(msg, p) {
							t.Errorf("dry run %v: message %q does not contain %q", dryRun, msg, p)
						}
					}
				}
			})
		}
	}
}

// repeatFilters returns n filters every fixture endpoint matches.
func repeatFilters(n int) []*clientvpnv1.Filter {
	out := make([]*clientvpnv1.Filter, n)
	for i := range out {
		out[i] = &clientvpnv1.Filter{Name: "account-id", Values: []string{"111111111111"}}
	}
	return out
}

// ec2Post sends a form to the EC2 endpoint over HTTP and decodes its error,
// if any.
func ec2Post(t *testing.T, base string, form url.Values) (*http.Response, ec2Error) {
	t.Helper()
	res, err := http.PostForm(base+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e ec2Error
	if res.StatusCode != http.StatusOK {
		if err := xml.NewDecoder(res.Body).Decode(&e); err != nil {
			t.Fatalf("status %d without EC2 error XML: %v", res.StatusCode, err)
		}
	}
	return res, e
}

func TestEC2Limits(t *testing.T) {
	t.Parallel()
	eps := fixture(snapshot.MaxIDs + 1)
	e := newEnv(t, eps, 0)
	describe := func() url.Values {
		return url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}}
	}
	withIDs := func(n int) url.Values {
		f := describe()
		for i, id := range ids(eps[:n]) {
			f.Set(fmt.Sprintf("ClientVpnEndpointId.%d", i+1), id)
		}
		return f
	}
	withFilters := func(filters, values, length int) url.Values {
		f := describe()
		for n := 1; n <= filters; n++ {
			f.Set(fmt.Sprintf("Filter.%d.Name", n), "tag:team")
			for m := 1; m <= values; m++ {
				f.Set(fmt.Sprintf("Filter.%d.Value.%d", n, m), strings.Repeat("n", length))
			}
		}
		return f
	}
	cases := []struct {
		name  string
		form  url.Values
		code  string
		parts []string
	}{
		{"1000 ids", withIDs(1000), "", nil},
		{"50 filters of 10 values of 256 characters", withFilters(50, 10, 256), "", nil},
		{"1 filter of 200 values", withFilters(1, 200, 1), "", nil},
		{"1001 ids", withIDs(1001), "InvalidParameterValue", []string{"ClientVpnEndpointId.N", "1001", "at most 1000"}},
		{"51 filters", withFilters(51, 1, 1), "FilterLimitExceeded", []string{"Filter.N", "51", "at most 50"}},
		{"201 values", withFilters(1, 201, 1), "FilterLimitExceeded", []string{"Filter.1", "201 values", "at most 200"}},
		{"257-character value", withFilters(1, 1, 257), "InvalidParameterValue", []string{"Filter.1.Value.1", "257", "at most 256"}},
		{"10,500 values", withFilters(1, 10500, 1), "InvalidParameterValue", []string{"more than 10000 parameters"}},
		{"a 300 KiB body", withFilters(1, 10, 30000), "InvalidRequest", []string{"larger than 262144 bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, ee := ec2Post(t, e.url, tc.form)
			if tc.code == "" {
				if res.StatusCode != http.StatusOK {
					t.Fatalf("within the limits: %d %s %q", res.StatusCode, ee.Code, ee.Message)
				}
				return
			}
			if (res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusRequestEntityTooLarge) || ee.Code != tc.code {
				t.Fatalf("got %d %s %q, want 400 %s", res.StatusCode, ee.Code, ee.Message, tc.code)
			}
			for _, p := range tc.parts {
				if !strings.Contains(ee.Message, p) {
					t.Errorf("message %q does not contain %q", ee.Message, p)
				}
			}
		})
	}
}

// TestErrorsEchoAtMost64Characters sends huge ids and filter names on every
// protocol: the error quotes at most 64 characters of each, and the whole
// message stays small.
func TestErrorsEchoAtMost64Characters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fixture(10), 0)
	huge := strings.Repeat("z", 200<<10)
	badName := "colour" + strings.Repeat("z", 250) // within the length limit, not a supported name
	check := func(t *testing.T, msg string) {
		t.Helper()
		if n := utf8.RuneCountInString(msg); n > 600 || strings.Contains(msg, strings.Repeat("z", 65)) || !strings.Contains(msg, strings.Repeat("z", 30)) {
			t.Errorf("message of %d characters does not quote the input cut to 64: %.300q", n, msg)
		}
	}
	missing := []string{"a" + huge[:255]} // the longest id the limits allow, listed first
	for i := range 20 {
		missing = append(missing, fmt.Sprintf("cvpn-endpoint-zz%015d", i))
	}
	for proto, c := range e.clients {
		t.Run(proto, func(t *testing.T) {
			if proto != "connect-get" { // a 200 KiB id does not fit in a GET's URL
				_, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: huge, Region: huge[:50<<10]})
				if connect.CodeOf(err) != connect.CodeInvalidArgument {
					t.Fatalf("Get of a 200 KiB id: %v, want invalid_argument", err)
				}
				check(t, err.(*connect.Error).Message())
				_, err = c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: missing})
				if connect.CodeOf(err) != connect.CodeNotFound {
					t.Fatalf("List of missing ids: %v, want not_found", err)
				}
				check(t, err.(*connect.Error).Message())
				if !strings.Contains(err.Error(), "and 16 more") {
					t.Errorf("List of 21 missing ids: %q does not say how many more it does not list", err)
				}
			}
			_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{
				Filters: []*clientvpnv1.Filter{{Name: badName, Values: []string{"x"}}},
			})
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("List with an unknown filter: %v, want invalid_argument", err)
			}
			check(t, err.(*connect.Error).Message())
		})
	}
	t.Run("ec2", func(t *testing.T) {
		_, ee := ec2Post(t, e.url, url.Values{"Action": {"DescribeClientVpnEndpoints"}, "ClientVpnEndpointId.1": {huge}})
		if ee.Code != "InvalidParameterValue" {
			t.Fatalf("got %s %q", ee.Code, ee.Message)
		}
		check(t, ee.Message)
		_, ee = ec2Post(t, e.url, url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Filter.1.Name": {badName}, "Filter.1.Value.1": {"x"}})
		if ee.Code != "InvalidParameterValue" {
			t.Fatalf("got %s %q", ee.Code, ee.Message)
		}
		check(t, ee.Message)
		_, ee = ec2Post(t, e.url, url.Values{"Action": {huge}})
		if ee.Code != "InvalidAction" {
			t.Fatalf("got %s %q", ee.Code, ee.Message)
		}
		check(t, ee.Message)
	})
}

func TestBodiesOverTheLimitAreRefusedOnEveryProtocol(t *testing.T) {
	e := newEnv(t, fixture(10), 0)
	big := &clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: repeatValues(10_000, strings.Repeat("i", 30))} // 320 KB
	for proto, c := range e.clients {
		if proto == "connect-get" {
			continue // no body: the URL is bounded by the server's header limit
		}
		t.Run(proto, func(t *testing.T) {
			_, err := c.ListClientVpnEndpoints(t.Context(), big)
			if connect.CodeOf(err) != connect.CodeResourceExhausted {
				t.Fatalf("a 320 KB request: %v, want resource_exhausted", err)
			}
			// The connection still serves.
			if _, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{}); err != nil {
				t.Fatalf("List after the refused request: %v", err)
			}
		})
	}
}
