package upstream_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/internal/awstest"
	"github.com/vpnfacade/vpnfacade/upstream"
)

func TestRegionsDefaultToTheAWSConfiguration(t *testing.T) {
	awstest.Isolate(t)
	creds := config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKID", "secret", ""))
	t.Setenv("AWS_REGION", "ap-southeast-2")
	src, err := upstream.New(t.Context(), upstream.Options{AccountID: "123456789012", LoadOptions: []func(*config.LoadOptions) error{creds}})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Regions(); !slices.Equal(got, []string{"ap-southeast-2"}) {
		t.Errorf("regions = %v, want the AWS configuration's [ap-southeast-2]", got)
	}

	src, err = upstream.New(t.Context(), upstream.Options{Regions: []string{"eu-west-1", "us-east-1"}, AccountID: "123456789012", LoadOptions: []func(*config.LoadOptions) error{creds}})
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Regions(); !slices.Equal(got, []string{"eu-west-1", "us-east-1"}) {
		t.Errorf("configured regions = %v", got)
	}

	t.Setenv("AWS_REGION", "")
	_, err = upstream.New(t.Context(), upstream.Options{AccountID: "123456789012", LoadOptions: []func(*config.LoadOptions) error{creds}})
	var verr *vpnfacade.Error
	if !errors.As(err, &verr) || verr.Code != vpnfacade.EINVALID || verr.Field != "regions" {
		t.Errorf("no region anywhere: %v, want EINVALID naming regions", err)
	}
}
