package access

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseBearer: any header value parses or is denied, never panics,
// and a parsed token is what followed the scheme.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  a-b.c_d~e+f/g==", "Bearer ", "Basic x", "", "Bearer =", "Bearer a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, err := ParseBearer(header)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("ParseBearer(%q): error without a reason: %v", header, err)
			}
			if len(token) != 0 {
				t.Fatalf("ParseBearer(%q) returned a token with an error", header)
			}
			return
		}
		if token == "" || len(token) > MaxTokenLength || !isToken68(token) || !strings.HasSuffix(header, token) {
			t.Fatalf("ParseBearer(%q) = %q", header, token)
		}
	})
}

// FuzzParseSigV4: any Authorization value parses or is denied, never
// panics; a parsed one has the shape SigV4 verification relies on.
func FuzzParseSigV4(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLESYNC00001/20260101/eu-west-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + strings.Repeat("ab", 32))
	f.Add("AWS4-HMAC-SHA256 Signature=" + strings.Repeat("0", 64) + ",Credential=A/20260101/r/ec2/aws4_request,SignedHeaders=host")
	f.Add("AWS4-ECDSA-P256-SHA256 Credential=x")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Credential=a")
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseSigV4(header)
		if err != nil {
			if ReasonOf(err) != ReasonMalformed {
				t.Fatalf("ParseSigV4(%q): %v, want ReasonMalformed", header, err)
			}
			return
		}
		if a.AccessKeyID == "" || len(a.Date) != 8 || a.Region == "" || a.Service == "" || len(a.SignedHeaders) == 0 || len(a.Signature) != 64 {
			t.Fatalf("ParseSigV4(%q) = %+v", header, a)
		}
	})
}

// FuzzSigV4: a whole verification with a fuzzed Authorization header and
// X-Amz-Date never panics and never authenticates.
func FuzzSigV4(f *testing.F) {
	a, err := New(Options{Path: writeTemp(f, exampleYAML())})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now().UTC()
	f.Add("AWS4-HMAC-SHA256 Credential="+syncKeyID+"/"+now.Format("20060102")+"/eu-west-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("ab", 32), now.Format(amzDateLayout), "Action=DescribeClientVpnEndpoints")
	f.Fuzz(func(t *testing.T, authorization, amzDate, body string) {
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", authorization)
		req.Header.Set("X-Amz-Date", amzDate)
		if got, err := a.SigV4(req); err == nil {
			t.Fatalf("a fuzzed signature authenticated as %s", got.Principal.Name())
		}
	})
}
