package ec2query_test

import (
	"net/http"
	"testing"

	"github.com/vpnfacade/vpnfacade/ec2query"
)

func TestSigningRegion(t *testing.T) {
	cases := []struct{ auth, key, region string }{
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/eu-west-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", "AKIDEXAMPLE", "eu-west-1"},
		{"AWS4-HMAC-SHA256 Credential=ASIA123/20261128/us-east-1/sts/aws4_request,SignedHeaders=host", "ASIA123", "us-east-1"},
		{"AWS4-HMAC-SHA256 Credential=broken", "", ""},
		{"Bearer token", "", ""},
		{"", "", ""},
	}
	for _, tc := range cases {
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := ec2query.SigningRegion(r); got != tc.region {
			t.Errorf("SigningRegion(%q) = %q, want %q", tc.auth, got, tc.region)
		}
		if got := ec2query.SigningAccessKey(r); got != tc.key {
			t.Errorf("SigningAccessKey(%q) = %q, want %q", tc.auth, got, tc.key)
		}
	}
}
