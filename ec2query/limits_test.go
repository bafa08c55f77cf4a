package ec2query_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vpnfacade/vpnfacade/ec2query"
)

var testLimits = ec2query.Limits{IDs: 1000, Filters: 50, ValuesPerFilter: 200, ValueLength: 256}

// form builds a DescribeClientVpnEndpoints form with ids ids, filters
// filters of values values each, every value valueLen characters long.
func form(ids, filters, values, valueLen int) url.Values {
	f := url.Values{"Action": {"DescribeClientVpnEndpoints"}}
	for i := 1; i <= ids; i++ {
		f.Set(fmt.Sprintf("ClientVpnEndpointId.%d", i), fmt.Sprintf("cvpn-endpoint-%017x", i))
	}
	for n := 1; n <= filters; n++ {
		f.Set(fmt.Sprintf("Filter.%d.Name", n), "tag:team")
		for m := 1; m <= values; m++ {
			f.Set(fmt.Sprintf("Filter.%d.Value.%d", n, m), strings.Repeat("é", valueLen))
		}
	}
	return f
}

func TestParseWithinLimits(t *testing.T) {
	long := url.Values{"Filter.1.Name": {"tag:" + strings.Repeat("k", 253)}, "Filter.1.Value.1": {"v"}}
	cases := []struct {
		name  string
		form  url.Values
		code  string // "" when the request is within the limits
		parts []string
	}{
		{"every limit reached", form(1000, 50, 2, 256), "", nil},
		{"200 values", form(0, 1, 200, 1), "", nil},
		{"1001 ids", form(1001, 0, 0, 0), "InvalidParameterValue", []string{"ClientVpnEndpointId.N", "1001", "at most 1000"}},
		{"51 filters", form(0, 51, 1, 1), "FilterLimitExceeded", []string{"Filter.N", "51 filters", "at most 50"}},
		{"201 values", form(0, 1, 201, 1), "FilterLimitExceeded", []string{`"tag:team" (Filter.1)`, "201 values", "at most 200"}},
		{"257-character value", form(0, 1, 1, 257), "InvalidParameterValue", []string{"Filter.1.Value.1", "257 characters", "at most 256"}},
		{"257-character name", long, "InvalidParameterValue", []string{"Filter.1.Name", "257 characters", "at most 256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ec2query.ParseDescribeClientVpnEndpointsWithin(tc.form, testLimits)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused within the limits: %v", err)
				}
				if len(req.Filters) == 0 && len(req.ClientVpnEndpointIDs) == 0 {
					t.Fatal("parsed nothing")
				}
				return
			}
			ae, ok := errors.AsType[*ec2query.APIError](err)
			if !ok || ae.Code != tc.code || ae.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("got %v, want %s (400)", err, tc.code)
			}
			for _, p := range tc.parts {
				if !strings.Contains(ae.Message, p) {
					t.Errorf("message %q does not contain %q", ae.Message, p)
				}
			}
		})
	}
	// Without limits, the parser still takes any count (ec2sim's use).
	if _, err := ec2query.ParseDescribeClientVpnEndpoints(form(1001, 51, 201, 300)); err != nil {
		t.Errorf("unlimited parse: %v", err)
	}
}

func TestReadFormWithinRefusesTooManyParameters(t *testing.T) {
	const maxParams = 10000 // net/url decodes no more, whatever the limits
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		body := "Action=DescribeClientVpnEndpoints" + strings.Repeat("&Filter.1.Value.1=x", maxParams)
		var r *http.Request
		if method == http.MethodPost {
			r = httptest.NewRequest(method, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(method, "/?"+body, nil)
		}
		_, err := ec2query.ReadFormWithin(httptest.NewRecorder(), r, testLimits)
		ae, ok := errors.AsType[*ec2query.APIError](err)
		if !ok || ae.Code != "InvalidParameterValue" || !strings.Contains(ae.Message, fmt.Sprintf("more than %d parameters", maxParams)) {
			t.Errorf("%s with %d parameters: %v, want InvalidParameterValue naming the limit", method, maxParams+1, err)
		}
	}
	// A request of 9,000 parameters still reads.
	legal := form(1000, 50, 159, 1)
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(legal.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := ec2query.ReadFormWithin(httptest.NewRecorder(), r, ec2query.Limits{MaxBytes: 4 << 20, IDs: 1000, Filters: 50, ValuesPerFilter: 200}); err != nil {
		t.Errorf("largest legal request: %v", err)
	}
}

// TestErrorsEchoAtMost64Characters sends 1 MiB inputs wherever a message
// quotes the request.
func TestErrorsEchoAtMost64Characters(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	forms := []url.Values{
		{huge: {"1"}},
		{"MaxResults": {huge}},
		{"DryRun": {huge}},
		{"NextToken": {"a", huge}},
		{"ClientVpnEndpointId." + huge: {"a"}},
		{"Filter.1.Name": {huge}},
		{"Filter.1.Name": {huge}, "Filter.1.Value.1": {"v"}},
	}
	for _, f := range forms {
		_, err := ec2query.ParseDescribeClientVpnEndpointsWithin(f, testLimits)
		checkEcho(t, err)
	}
	_, _, err := ec2query.ParseAction(url.Values{"Action": {huge, huge}})
	checkEcho(t, err)
	checkEcho(t, ec2query.InvalidAction(huge))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Method = huge
	_, err = ec2query.ReadFormWithin(httptest.NewRecorder(), r, testLimits)
	checkEcho(t, err)
}

func checkEcho(t *testing.T, err error) {
	t.Helper()
	ae, ok := errors.AsType[*ec2query.APIError](err)
	if !ok {
		t.Fatalf("got %v, want an *APIError", err)
	}
	if n := utf8.RuneCountInString(ae.Message); n > 300 || strings.Contains(ae.Message, strings.Repeat("x", 65)) ||
		(strings.Contains(ae.Message, strings.Repeat("x", 40)) && !strings.Contains(ae.Message, `x"…`) && !strings.Contains(ae.Message, "x…")) {
		t.Errorf("%s message of %d characters does not cut the input to 64 with …: %.200q", ae.Code, n, ae.Message)
	}
}
