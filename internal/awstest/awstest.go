// Package awstest keeps the machine's AWS configuration out of tests, so
// that every SDK client a test builds talks only to what the test starts.
package awstest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Isolate clears, for the duration of t, every environment variable and
// file through which aws-sdk-go-v2 would find credentials, regions,
// endpoints, retry settings or instance metadata.
func Isolate(t testing.TB) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{
		"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2",
		"AWS_ENDPOINT_URL_STS", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_ROLE_ARN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		t.Setenv(k, "")
	}
}

// SpendBurst sends n unsigned DescribeClientVpnEndpoints calls to the EC2
// endpoint at url, 10 at a time, as other callers in the same account and
// region would, then more, one at a time, until one is throttled (at most n
// more): against a throttling emulator it leaves the shared bucket empty,
// however long the first n took (the bucket refills meanwhile), so that a
// test then meets the steady rate.
func SpendBurst(t testing.TB, url string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < n; i += 10 {
				if _, err := describe(url); err != nil {
					t.Errorf("spending the burst: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for range n {
		throttled, err := describe(url)
		if err != nil {
			t.Errorf("spending the burst: %v", err)
			return
		}
		if throttled {
			return
		}
	}
	t.Errorf("spending the burst: none of %d calls to %s was throttled", 2*n, url)
}

// describe sends one unsigned DescribeClientVpnEndpoints call to url and
// reports whether it was throttled.
func describe(url string) (throttled bool, err error) {
	resp, err := http.Post(url, "application/x-www-form-urlencoded",
		strings.NewReader("Action=DescribeClientVpnEndpoints&Version=2016-11-15&MaxResults=5"))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return strings.Contains(string(body), "<Code>RequestLimitExceeded</Code>"), err
}

// PeekForm returns the form parameters of an EC2 Query request body and
// puts the body back, so a test middleware can look at a request before the
// emulator handles it.
func PeekForm(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return url.ParseQuery(string(body))
}
