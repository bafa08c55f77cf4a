package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/vpnfacade/vpnfacade/ec2query"
)

const (
	syncKeyID  = "AKIAEXAMPLESYNC00001"
	syncSecret = "sync-secret-0123456789abcdefghij"
)

// ec2Server is a loopback EC2-compatible server that verifies every
// request with a.SigV4 and answers as the EC2 handler will: EC2's error XML
// on denial, an empty DescribeClientVpnEndpoints page otherwise, with the
// caller in X-Principal and the region in X-Region. It also checks that the
// handler still reads the whole form after verification.
func ec2Server(t *testing.T, a *Authenticator) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := a.SigV4(r)
		if err != nil {
			var denial *Error
			if !errors.As(err, &denial) {
				t.Errorf("SigV4: an error that is not a denial: %v", err)
				_ = ec2query.WriteError(w, "test", err)
				return
			}
			_ = ec2query.WriteError(w, "test", ec2query.NewAPIError(denial.EC2Code(), denial.HTTPStatus(), "%s", denial.Message))
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != ec2query.ActionDescribeClientVpnEndpoints {
			t.Errorf("after SigV4 the handler reads form %v, %v", r.PostForm, err)
		}
		w.Header().Set("X-Principal", got.Principal.Name())
		w.Header().Set("X-Region", got.Region)
		_ = ec2query.WriteDescribeClientVpnEndpoints(w, "test", nil, "")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// signedRequest returns a POST of body to url signed by aws-sdk-go-v2's
// signer, the way the SDK's EC2 client signs.
func signedRequest(t *testing.T, url, keyID, secret, region string, at time.Time, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ec2", region, at); err != nil {
		t.Fatal(err)
	}
	return req
}

// ec2Code sends req and returns "<status> <EC2 code or principal/region>".
func ec2Code(t *testing.T, req *http.Request) string {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	if res.StatusCode == http.StatusOK {
		return "200 " + res.Header.Get("X-Principal") + "/" + res.Header.Get("X-Region")
	}
	code, _, _ := strings.Cut(body[strings.Index(body, "<Code>")+len("<Code>"):], "</Code>")
	return res.Status[:3] + " " + code
}

const describeBody = "Action=DescribeClientVpnEndpoints&Version=2016-11-15&MaxResults=5"

func TestSigV4WithTheGoSigner(t *testing.T) {
	a := newAuthenticator(t, exampleYAML(), Options{})
	srv := ec2Server(t, a)
	now := time.Now()

	t.Run("right key", func(t *testing.T) {
		req := signedRequest(t, srv.URL, syncKeyID, syncSecret, "eu-west-1", now, describeBody)
		if got := ec2Code(t, req); got != "200 inventory-sync/eu-west-1" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		req := signedRequest(t, srv.URL, syncKeyID, "another-secret-0123456789abcdefgh", "eu-west-1", now, describeBody)
		if got := ec2Code(t, req); got != "403 SignatureDoesNotMatch" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		req := signedRequest(t, srv.URL, "AKIAUNKNOWN000000000", syncSecret, "eu-west-1", now, describeBody)
		if got := ec2Code(t, req); got != "401 AuthFailure" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("body changed after signing", func(t *testing.T) {
		req := signedRequest(t, srv.URL, syncKeyID, syncSecret, "eu-west-1", now, describeBody)
		changed := strings.Replace(describeBody, "MaxResults=5", "MaxResults=9", 1)
		req.Body, req.ContentLength = ioNopCloser(changed), int64(len(changed))
		if got := ec2Code(t, req); got != "403 SignatureDoesNotMatch" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("signed header changed", func(t *testing.T) {
		req := signedRequest(t, srv.URL, syncKeyID, syncSecret, "eu-west-1", now, describeBody)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := ec2Code(t, req); got != "403 SignatureDoesNotMatch" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("region changed in the scope", func(t *testing.T) {
		req := signedRequest(t, srv.URL, syncKeyID, syncSecret, "eu-west-1", now, describeBody)
		req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "/eu-west-1/", "/us-east-1/", 1))
		if got := ec2Code(t, req); got != "403 SignatureDoesNotMatch" {
			t.Errorf("got %s", got)
		}
	})
	for _, skew := range []time.Duration{-16 * time.Minute, 16 * time.Minute} {
		t.Run("date "+skew.String()+" off", func(t *testing.T) {
			req := signedRequest(t, srv.URL, syncKeyID, syncSecret, "eu-west-1", now.Add(skew), describeBody)
			if got := ec2Code(t, req); got != "400 RequestExpired" {
				t.Errorf("got %s", got)
			}
		})
	}
	for _, skew := range []time.Duration{-14 * time.Minute, 14 * time.Minute} {
		t.Run("date "+skew.String()+" off is within the window", func(t *testing.T) {
			req := signedRequest(t, srv.URL, syncKeyID, syncSecret, "eu-west-1", now.Add(skew), describeBody)
			if got := ec2Code(t, req); got != "200 inventory-sync/eu-west-1" {
				t.Errorf("got %s", got)
			}
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(describeBody))
		if got := ec2Code(t, req); got != "401 MissingAuthenticationToken" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("bearer token", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(describeBody))
		req.Header.Set("Authorization", "Bearer token-sync")
		if got := ec2Code(t, req); got != "400 IncompleteSignature" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		req := signedRequest(t, srv.URL, syncKeyID, syncSecret, "eu-west-1", now, describeBody)
		req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), "SignedHeaders=", "Signed=", 1))
		if got := ec2Code(t, req); got != "400 IncompleteSignature" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("presigned", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/?"+describeBody, nil)
		sum := sha256.Sum256(nil)
		creds := aws.Credentials{AccessKeyID: syncKeyID, SecretAccessKey: syncSecret}
		url, _, err := v4.NewSigner().PresignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "ec2", "eu-west-1", now)
		if err != nil {
			t.Fatal(err)
		}
		pre, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, nil)
		if got := ec2Code(t, pre); got != "401 AuthFailure" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("body over the limit", func(t *testing.T) {
		small := newAuthenticator(t, exampleYAML(), Options{MaxBodyBytes: 16})
		req := signedRequest(t, ec2Server(t, small).URL, syncKeyID, syncSecret, "eu-west-1", now, describeBody)
		if got := ec2Code(t, req); got != "400 IncompleteSignature" {
			t.Errorf("got %s", got)
		}
	})
}

func ioNopCloser(s string) *nopCloser { return &nopCloser{bytes.NewReader([]byte(s))} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestSigV4WithBoto3 signs with boto3's own signer, keys issued by
// NewAccessKey, against loopback servers running the verifier.
func TestSigV4WithBoto3(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 with boto3 is needed for this test: %v", err)
	}
	id, secret, err := NewAccessKey()
	if err != nil {
		t.Fatal(err)
	}
	file := "principals:\n  - name: boto\n    access_keys: [{id: " + id + ", secret: '" + secret + "'}]\n    accounts: ['*']\n    regions: ['*']\n"
	srv := ec2Server(t, newAuthenticator(t, file, Options{}))
	// The same keys against a server whose clock is 20 minutes ahead: the
	// request's date is then outside AWS's 15-minute window.
	ahead := ec2Server(t, newAuthenticator(t, file, Options{Now: func() time.Time { return time.Now().Add(20 * time.Minute) }}))
	otherID, otherSecret, _ := NewAccessKey()

	type result struct {
		Name   string `json:"name"`
		OK     bool   `json:"ok"`
		Code   string `json:"code"`
		Status int    `json:"status"`
	}
	cases := []map[string]any{
		{"name": "right key", "url": srv.URL, "region": "eu-west-1", "key": id, "secret": secret},
		{"name": "wrong secret", "url": srv.URL, "region": "eu-west-1", "key": id, "secret": otherSecret},
		{"name": "tampered body", "url": srv.URL, "region": "eu-west-1", "key": id, "secret": secret, "tamper": true},
		{"name": "skewed date", "url": ahead.URL, "region": "eu-west-1", "key": id, "secret": secret},
		{"name": "unknown key", "url": srv.URL, "region": "eu-west-1", "key": otherID, "secret": secret},
		{"name": "unsigned", "url": srv.URL, "region": "eu-west-1", "key": id, "secret": secret, "unsigned": true},
	}
	want := map[string]result{
		"right key":     {OK: true},
		"wrong secret":  {Code: "SignatureDoesNotMatch", Status: 403},
		"tampered body": {Code: "SignatureDoesNotMatch", Status: 403},
		"skewed date":   {Code: "RequestExpired", Status: 400},
		"unknown key":   {Code: "AuthFailure", Status: 401},
		"unsigned":      {Code: "MissingAuthenticationToken", Status: 401},
	}
	in, _ := json.Marshal(cases)
	cmd := exec.CommandContext(t.Context(), python, "testdata/boto3_sigv4.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("boto3_sigv4.py: %v\n%s", err, stderr.String())
	}
	var results []result
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("boto3_sigv4.py printed %q: %v", out, err)
	}
	if len(results) != len(cases) {
		t.Fatalf("%d results for %d cases: %s", len(results), len(cases), out)
	}
	for _, r := range results {
		w := want[r.Name]
		w.Name = r.Name
		if r != w {
			t.Errorf("%s: got %+v, want %+v", r.Name, r, w)
		}
	}
}
