package ec2query_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2query"
)

func TestParseWhatTheSDKSends(t *testing.T) {
	var got *ec2query.DescribeClientVpnEndpointsRequest
	var parseErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, err := ec2query.ReadForm(w, r, 0)
		if err == nil {
			var action string
			if action, _, err = ec2query.ParseAction(form); err == nil && action != ec2query.ActionDescribeClientVpnEndpoints {
				t.Errorf("action %q", action)
			}
		}
		if err == nil {
			got, err = ec2query.ParseDescribeClientVpnEndpoints(form)
		}
		parseErr = err
		_ = ec2query.WriteDescribeClientVpnEndpoints(w, "r", nil, "")
	}))
	defer srv.Close()

	in := &ec2.DescribeClientVpnEndpointsInput{
		ClientVpnEndpointIds: []string{"cvpn-endpoint-1", "cvpn-endpoint-2"},
		Filters: []types.Filter{
			{Name: aws.String("transport-protocol"), Values: []string{"udp", "tcp"}},
			{Name: aws.String("tag:équipe"), Values: []string{"r&d *", "a=b?"}},
		},
		MaxResults: aws.Int32(25),
		NextToken:  aws.String("tok+/="),
		DryRun:     aws.Bool(true),
	}
	if _, err := newEC2Client(srv.URL).DescribeClientVpnEndpoints(t.Context(), in); err != nil {
		t.Fatalf("DescribeClientVpnEndpoints: %v", err)
	}
	if parseErr != nil {
		t.Fatalf("parse: %v", parseErr)
	}
	want := &ec2query.DescribeClientVpnEndpointsRequest{
		ClientVpnEndpointIDs: []string{"cvpn-endpoint-1", "cvpn-endpoint-2"},
		Filters: []ec2query.Filter{
			{Name: "transport-protocol", Values: []string{"udp", "tcp"}},
			{Name: "tag:équipe", Values: []string{"r&d *", "a=b?"}},
		},
		MaxResults: 25,
		NextToken:  "tok+/=",
		DryRun:     true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed %+v\nwant %+v", got, want)
	}
}

func TestParseDescribeClientVpnEndpoints(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		want     *ec2query.DescribeClientVpnEndpointsRequest
		wantCode string
		wantMsg  string // substring of the error message
	}{
		{name: "empty", query: "Action=DescribeClientVpnEndpoints&Version=2016-11-15",
			want: &ec2query.DescribeClientVpnEndpointsRequest{}},
		{name: "ids out of order in the form", query: "ClientVpnEndpointId.2=b&ClientVpnEndpointId.1=a&ClientVpnEndpointId.10=j&" +
			"ClientVpnEndpointId.3=c&ClientVpnEndpointId.4=d&ClientVpnEndpointId.5=e&ClientVpnEndpointId.6=f&" +
			"ClientVpnEndpointId.7=g&ClientVpnEndpointId.8=h&ClientVpnEndpointId.9=i",
			want: &ec2query.DescribeClientVpnEndpointsRequest{ClientVpnEndpointIDs: strings.Split("a,b,c,d,e,f,g,h,i,j", ",")}},
		{name: "bounds of MaxResults", query: "MaxResults=5",
			want: &ec2query.DescribeClientVpnEndpointsRequest{MaxResults: 5}},
		{name: "upper bound of MaxResults", query: "MaxResults=1000",
			want: &ec2query.DescribeClientVpnEndpointsRequest{MaxResults: 1000}},
		{name: "DryRun false", query: "DryRun=false",
			want: &ec2query.DescribeClientVpnEndpointsRequest{}},
		{name: "signature parameters ignored", query: "X-Amz-Signature=x&AWSAccessKeyId=y&SignatureVersion=2",
			want: &ec2query.DescribeClientVpnEndpointsRequest{}},
		{name: "MaxResults too small", query: "MaxResults=4", wantCode: "InvalidParameterValue", wantMsg: "MaxResults is invalid. Parameter must be between 5 and 1000"},
		{name: "MaxResults too large", query: "MaxResults=1001", wantCode: "InvalidParameterValue", wantMsg: "between 5 and 1000"},
		{name: "MaxResults not a number", query: "MaxResults=ten", wantCode: "InvalidParameterValue", wantMsg: "MaxResults"},
		{name: "MaxResults twice", query: "MaxResults=5&MaxResults=6", wantCode: "InvalidParameterValue", wantMsg: "MaxResults is given 2 times"},
		{name: "DryRun not a boolean", query: "DryRun=yes", wantCode: "InvalidParameterValue", wantMsg: "DryRun"},
		{name: "id index gap", query: "ClientVpnEndpointId.1=a&ClientVpnEndpointId.3=c", wantCode: "InvalidParameterValue", wantMsg: "ClientVpnEndpointId.2 is missing"},
		{name: "id index zero", query: "ClientVpnEndpointId.0=a", wantCode: "InvalidParameterValue", wantMsg: "ClientVpnEndpointId.0"},
		{name: "id index leading zero", query: "ClientVpnEndpointId.01=a", wantCode: "InvalidParameterValue", wantMsg: "ClientVpnEndpointId.01"},
		{name: "id index not numeric", query: "ClientVpnEndpointId.x=a", wantCode: "InvalidParameterValue", wantMsg: "ClientVpnEndpointId.x"},
		{name: "filter without name", query: "Filter.1.Value.1=x", wantCode: "MissingParameter", wantMsg: "Filter.1.Name"},
		{name: "filter without values", query: "Filter.1.Name=endpoint-id", wantCode: "InvalidParameterValue", wantMsg: "Filter.1.Value.1 is required"},
		{name: "filter value gap", query: "Filter.1.Name=endpoint-id&Filter.1.Value.2=x", wantCode: "InvalidParameterValue", wantMsg: "Filter.1.Value.1 is missing"},
		{name: "filter index gap", query: "Filter.2.Name=endpoint-id&Filter.2.Value.1=x", wantCode: "InvalidParameterValue", wantMsg: "Filter.1.Name is missing"},
		{name: "filter unknown member", query: "Filter.1.Name=a&Filter.1.Value.1=b&Filter.1.Values.1=c", wantCode: "UnknownParameter", wantMsg: "Filter.1.Values.1"},
		{name: "unknown parameter", query: "MaxResult=5", wantCode: "UnknownParameter", wantMsg: "The parameter MaxResult is not recognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ec2query.ParseDescribeClientVpnEndpoints(form)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			ae, ok := errors.AsType[*ec2query.APIError](err)
			if !ok {
				t.Fatalf("got %v (request %+v), want an *APIError %s", err, got, tt.wantCode)
			}
			if ae.Code != tt.wantCode || ae.HTTPStatus != http.StatusBadRequest || !strings.Contains(ae.Message, tt.wantMsg) {
				t.Errorf("got %s %d %q, want %s 400 containing %q", ae.Code, ae.HTTPStatus, ae.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestParseFilterValues(t *testing.T) {
	form := url.Values{
		"Filter.1.Name":    {"tag:Name"},
		"Filter.1.Value.2": {"b"},
		"Filter.1.Value.1": {"a"},
		"Filter.2.Name":    {"endpoint-id"},
		"Filter.2.Value.1": {"cvpn-endpoint-*"},
	}
	got, err := ec2query.ParseDescribeClientVpnEndpoints(form)
	if err != nil {
		t.Fatal(err)
	}
	want := []ec2query.Filter{{Name: "tag:Name", Values: []string{"a", "b"}}, {Name: "endpoint-id", Values: []string{"cvpn-endpoint-*"}}}
	if !reflect.DeepEqual(got.Filters, want) {
		t.Errorf("filters %+v, want %+v", got.Filters, want)
	}
	if got.PageSize() != ec2query.PageSizeWhenAbsent {
		t.Errorf("PageSize() = %d without MaxResults, want %d", got.PageSize(), ec2query.PageSizeWhenAbsent)
	}
}

func TestParseAction(t *testing.T) {
	action, version, err := ec2query.ParseAction(url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}})
	if err != nil || action != "DescribeClientVpnEndpoints" || version != "2016-11-15" {
		t.Errorf("got %q %q %v", action, version, err)
	}
	for _, form := range []url.Values{{}, {"Action": {""}}, {"Version": {"2016-11-15"}}} {
		_, _, err := ec2query.ParseAction(form)
		if ae, ok := errors.AsType[*ec2query.APIError](err); !ok || ae.Code != "MissingParameter" || !strings.Contains(ae.Message, "Action") {
			t.Errorf("ParseAction(%v) = %v, want MissingParameter naming Action", form, err)
		}
	}
}

func TestReadFormRefusesLargeBodiesAndOtherMethods(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("Action="+strings.Repeat("x", 200)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err := ec2query.ReadForm(httptest.NewRecorder(), r, 100)
	if ae, ok := errors.AsType[*ec2query.APIError](err); !ok || ae.HTTPStatus != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %v, want a 413 APIError", err)
	}
	r = httptest.NewRequest(http.MethodDelete, "/", nil)
	_, err = ec2query.ReadForm(httptest.NewRecorder(), r, 0)
	if ae, ok := errors.AsType[*ec2query.APIError](err); !ok || ae.HTTPStatus != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %v, want a 405 APIError", err)
	}
}

func TestToAPIError(t *testing.T) {
	tests := []struct {
		err        error
		wantCode   string
		wantStatus int
		wantMsg    string
	}{
		{vpnfacade.Errorf(vpnfacade.EINVALID, "next_token", "bad token"), "InvalidPaginationToken", 400, "NextToken: bad token"},
		{vpnfacade.Errorf(vpnfacade.EINVALID, "max_results", "too big"), "InvalidParameterValue", 400, "MaxResults: too big"},
		{vpnfacade.Errorf(vpnfacade.EINVALID, "filters", "The filter 'x' is invalid"), "InvalidParameterValue", 400, "The filter 'x' is invalid"},
		{vpnfacade.Errorf(vpnfacade.ENOTFOUND, "client_vpn_endpoint_ids", "gone"), "InvalidClientVpnEndpointId.NotFound", 400, "gone"},
		{vpnfacade.Errorf(vpnfacade.EUNAVAILABLE, "", "no snapshot yet"), "Unavailable", 503, "no snapshot yet"},
		{vpnfacade.Errorf(vpnfacade.EDRYRUN, "", "x"), "DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set."},
		{vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "redis at 10.1.2.3 refused"), "InternalError", 500, "An internal error has occurred"},
		{errors.New("secret detail"), "InternalError", 500, "An internal error has occurred"},
		{nil, "InternalError", 500, "An internal error has occurred"},
		{errors.Join(errors.New("context"), ec2query.RequestLimitExceeded()), "RequestLimitExceeded", 503, "Request limit exceeded."},
	}
	for _, tt := range tests {
		got := ec2query.ToAPIError(tt.err)
		if got.Code != tt.wantCode || got.HTTPStatus != tt.wantStatus || got.Message != tt.wantMsg {
			t.Errorf("ToAPIError(%v) = %s %d %q, want %s %d %q", tt.err, got.Code, got.HTTPStatus, got.Message, tt.wantCode, tt.wantStatus, tt.wantMsg)
		}
	}
}

// FuzzParseDescribeClientVpnEndpoints checks that any form yields either a
// request or an *APIError with a 4xx status, never a panic, and that a
// request keeps every value the form sent.
func FuzzParseDescribeClientVpnEndpoints(f *testing.F) {
	for _, seed := range []string{
		"Action=DescribeClientVpnEndpoints&Version=2016-11-15",
		"ClientVpnEndpointId.1=cvpn-endpoint-0123456789abcdef0&MaxResults=5&NextToken=abc&DryRun=true",
		"Filter.1.Name=tag:Name&Filter.1.Value.1=a*&Filter.1.Value.2=b?&Filter.2.Name=transport-protocol&Filter.2.Value.1=udp",
		"Filter.1.Value.1=x", "ClientVpnEndpointId.0=x", "Filter.999999.Name=x", "MaxResults=-1", "Filter..Name=x",
		"Filter.1.Name=%ff&Filter.1.Value.1=%00", "ClientVpnEndpointId.1=a&ClientVpnEndpointId.1=b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		form, _ := url.ParseQuery(query) // keeps what parsed; the parser must cope with anything
		req, err := ec2query.ParseDescribeClientVpnEndpoints(form)
		if err != nil {
			if req != nil {
				t.Fatalf("both a request and an error: %+v, %v", req, err)
			}
			ae, ok := errors.AsType[*ec2query.APIError](err)
			if !ok {
				t.Fatalf("error %T %v is not an *APIError", err, err)
			}
			if ae.HTTPStatus < 400 || ae.HTTPStatus > 499 || ae.Code == "" || ae.Message == "" {
				t.Fatalf("malformed APIError %+v", ae)
			}
			return
		}
		if req == nil {
			t.Fatal("neither a request nor an error")
		}
		if req.MaxResults != 0 && (req.MaxResults < ec2query.MinMaxResults || req.MaxResults > ec2query.MaxMaxResults) {
			t.Fatalf("MaxResults %d accepted", req.MaxResults)
		}
		ids, values := 0, 0
		for k := range form {
			switch {
			case strings.HasPrefix(k, "ClientVpnEndpointId."):
				ids++
			case strings.HasPrefix(k, "Filter.") && strings.Contains(k, ".Value."):
				values++
			}
		}
		gotValues := 0
		for _, f := range req.Filters {
			if len(f.Values) == 0 {
				t.Fatalf("filter %q without values accepted", f.Name)
			}
			gotValues += len(f.Values)
		}
		if len(req.ClientVpnEndpointIDs) != ids || gotValues != values {
			t.Fatalf("lost parameters: %d/%d ids, %d/%d filter values", len(req.ClientVpnEndpointIDs), ids, gotValues, values)
		}
	})
}
