package main_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	"github.com/vpnfacade/vpnfacade/internal/prereq"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// TestEC2CompatibleBoto3 asks the emulator (standing in for AWS) and
// vpnfacade the same DescribeClientVpnEndpoints questions with boto3 and
// requires the same parsed answers, field for field, and the same errors.
func TestEC2CompatibleBoto3(t *testing.T) {
	t.Parallel()
	python := prereq.Python3WithBoto3(t)
	s := startSim(t, 400, ec2sim.Options{})
	f := startFacade(t, s, "")
	waitServing(t, f.url)

	for i, region := range e2eRegions {
		other := e2eRegions[(i+1)%len(e2eRegions)]
		out, err := exec.CommandContext(t.Context(), python, "testdata/boto3_compare.py", s.url, f.url, region, other).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("boto3_compare.py: %v\n%s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var report struct {
			Cases []struct {
				Name   string
				Equal  bool
				Count  int
				Detail string
			}
		}
		if err := json.Unmarshal(out, &report); err != nil {
			t.Fatalf("boto3_compare.py printed %q: %v", out, err)
		}
		if len(report.Cases) < 12 {
			t.Fatalf("only %d cases ran", len(report.Cases))
		}
		for _, c := range report.Cases {
			if !c.Equal {
				t.Errorf("%s, %s: vpnfacade differs from the emulator: %s", region, c.Name, c.Detail)
			}
			if c.Name == "all, pages of 50" && c.Count < 150 {
				t.Errorf("%s: only %d endpoints compared", region, c.Count)
			}
		}
	}
}

// ec2Client is the SDK's EC2 client as a Go user of the facade configures
// it: with the work-around for smithy-go's request-body race with net/http
// (upstream.WithoutRequestBodyWriteTo, see README), which otherwise fails an
// attempt with "use of closed network connection" now and then over
// loopback, and three in a row under load.
func ec2Client(url, region string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		APIOptions:   []func(*middleware.Stack) error{upstream.WithoutRequestBodyWriteTo},
	})
}

func paginateSDK(t *testing.T, c *ec2.Client, in *ec2.DescribeClientVpnEndpointsInput) []types.ClientVpnEndpoint {
	t.Helper()
	var out []types.ClientVpnEndpoint
	p := ec2.NewDescribeClientVpnEndpointsPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("NextPage: %v", err)
		}
		out = append(out, page.ClientVpnEndpoints...)
	}
	return out
}

// TestEC2CompatibleGoSDK does the same with aws-sdk-go-v2's paginator.
func TestEC2CompatibleGoSDK(t *testing.T) {
	t.Parallel()
	s := startSim(t, 400, ec2sim.Options{})
	f := startFacade(t, s, "")
	waitServing(t, f.url)
	for _, region := range e2eRegions {
		sim, facade := ec2Client(s.url, region), ec2Client(f.url, region)
		inputs := map[string]*ec2.DescribeClientVpnEndpointsInput{
			"all":     {MaxResults: aws.Int32(37)},
			"filters": {Filters: []types.Filter{{Name: aws.String("transport-protocol"), Values: []string{"tcp"}}, {Name: aws.String("tag:Environment"), Values: []string{"prod*", "stag?ng"}}}, MaxResults: aws.Int32(5)},
		}
		for name, in := range inputs {
			want := paginateSDK(t, sim, in)
			got := paginateSDK(t, facade, in)
			if len(want) == 0 {
				t.Fatalf("%s %s: the emulator returned nothing; the case tests nothing", region, name)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: vpnfacade returned %d endpoints that differ from the emulator's %d", region, name, len(got), len(want))
			}
		}
		for name, in := range map[string]*ec2.DescribeClientVpnEndpointsInput{
			"InvalidParameterValue":               {Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"x"}}}},
			"InvalidClientVpnEndpointId.NotFound": {ClientVpnEndpointIds: []string{"cvpn-endpoint-00000000000000000"}},
			"InvalidPaginationToken":              {NextToken: aws.String("garbage")},
			"DryRunOperation":                     {DryRun: aws.Bool(true)},
		} {
			_, err := facade.DescribeClientVpnEndpoints(t.Context(), in)
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != name {
				t.Errorf("%s: vpnfacade answered %v, want API error %s", region, err, name)
			}
		}
	}
}
