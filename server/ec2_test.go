package server_test

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// ec2Error is the error document EC2 sends.
type ec2Error struct {
	Code      string `xml:"Errors>Error>Code"`
	Message   string `xml:"Errors>Error>Message"`
	RequestID string `xml:"RequestID"`
}

func newEC2Handler(t testing.TB) http.Handler {
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: fixture(40)}); err != nil {
		t.Fatal(err)
	}
	return server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Regions: []string{"eu-west-1"}})
}

func postForm(h http.Handler, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestEC2Errors(t *testing.T) {
	t.Parallel()
	h := newEC2Handler(t)
	cases := []struct {
		body   string
		status int
		code   string
		msg    string
	}{
		{"Action=RunInstances&Version=2016-11-15", 400, "InvalidAction", "RunInstances"},
		{"Version=2016-11-15", 400, "MissingParameter", "Action"},
		{"Action=DescribeClientVpnEndpoints&MaxResults=4", 400, "InvalidParameterValue", "MaxResults"},
		{"Action=DescribeClientVpnEndpoints&Filter.1.Name=colour&Filter.1.Value.1=red", 400, "InvalidParameterValue", "The filter 'colour' is invalid"},
		{"Action=DescribeClientVpnEndpoints&NextToken=abc", 400, "InvalidPaginationToken", "NextToken: invalid"},
		{"Action=DescribeClientVpnEndpoints&ClientVpnEndpointId.1=cvpn-endpoint-00000000000000000", 400, "InvalidClientVpnEndpointId.NotFound", "cvpn-endpoint-00000000000000000"},
		{"Action=DescribeClientVpnEndpoints&DryRun=true", 412, "DryRunOperation", "DryRun flag is set"},
		{"Action=DescribeClientVpnEndpoints&DryRun=true&Filter.1.Name=colour&Filter.1.Value.1=red", 400, "InvalidParameterValue", "colour"},
	}
	for _, tc := range cases {
		rec := postForm(h, tc.body)
		var e ec2Error
		if err := xml.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Errorf("%s: body is not EC2 error XML: %v\n%s", tc.body, err, rec.Body)
			continue
		}
		if rec.Code != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) || e.RequestID == "" {
			t.Errorf("%s: got %d %s %q (request id %q); want %d %s with a message containing %q", tc.body, rec.Code, e.Code, e.Message, e.RequestID, tc.status, tc.code, tc.msg)
		}
	}
}

// FuzzEC2Handler sends arbitrary form bodies: the handler never panics and
// answers either a DescribeClientVpnEndpointsResponse or AWS error XML.
func FuzzEC2Handler(f *testing.F) {
	f.Add("Action=DescribeClientVpnEndpoints&MaxResults=5")
	f.Add("Action=DescribeClientVpnEndpoints&Filter.1.Name=tag:team&Filter.1.Value.1=n*t&Filter.2.Name=vpc-id&Filter.2.Value.1=vpc-1")
	f.Add("Action=DescribeClientVpnEndpoints&ClientVpnEndpointId.1=x&ClientVpnEndpointId.3=y")
	f.Add("Action=DescribeClientVpnEndpoints&NextToken=AQAAAAAAAAAA&DryRun=false")
	f.Add("Action=%ZZ&&==&Filter.0.Name=")
	h := newEC2Handler(f)
	f.Fuzz(func(t *testing.T, body string) {
		rec := postForm(h, body)
		out := rec.Body.String()
		switch {
		case rec.Code == http.StatusOK:
			if !strings.Contains(out, "<DescribeClientVpnEndpointsResponse") {
				t.Fatalf("200 without a DescribeClientVpnEndpointsResponse: %q", out)
			}
		case slices.Contains([]int{400, 403, 412, 413, 503}, rec.Code):
			var e ec2Error
			if err := xml.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" {
				t.Fatalf("status %d without EC2 error XML: %q", rec.Code, out)
			}
		default:
			t.Fatalf("unexpected status %d for %q: %q", rec.Code, body, out)
		}
	})
}
