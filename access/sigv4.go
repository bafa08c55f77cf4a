package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigV4 constants.
const (
	// SigV4Algorithm is the only signing algorithm accepted.
	SigV4Algorithm = "AWS4-HMAC-SHA256"
	// SigV4Service is the service a credential scope must name.
	SigV4Service = "ec2"
	// amzDateLayout is X-Amz-Date's ISO 8601 basic format.
	amzDateLayout = "20060102T150405Z"
)

// SigV4Authorization is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/<service>/aws4_request,
//	SignedHeaders=<h1;h2;…>, Signature=<64 hex digits>
type SigV4Authorization struct {
	// AccessKeyID is the key id of the credential scope.
	AccessKeyID string
	// Date is the credential scope's date, yyyymmdd.
	Date string
	// Region is the credential scope's region.
	Region string
	// Service is the credential scope's service.
	Service string
	// SignedHeaders are the signed header names, lowercase and sorted.
	SignedHeaders []string
	// Signature is the signature, 64 lowercase hex digits.
	Signature string
}

// ParseSigV4 parses a SigV4 Authorization header value. The three parts may
// come in any order, separated by commas and optional spaces; each must be
// there exactly once. Errors are ReasonMalformed and never repeat the
// signature.
func ParseSigV4(header string) (SigV4Authorization, error) {
	var a SigV4Authorization
	algorithm, rest, ok := strings.Cut(header, " ")
	if !ok || algorithm != SigV4Algorithm {
		if ok && strings.HasPrefix(algorithm, "AWS4-") {
			return a, denied(ReasonMalformed, "signing algorithm %s is not supported; use %s", clip(algorithm), SigV4Algorithm)
		}
		return a, denied(ReasonMalformed, "the Authorization header must be a SigV4 signature (%s Credential=…, SignedHeaders=…, Signature=…)", SigV4Algorithm)
	}
	var credential, signedHeaders, signature string
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		var slot int
		switch {
		case !ok:
			return a, denied(ReasonMalformed, "Authorization header part %s is not key=value", clip(strings.TrimSpace(part)))
		case key == "Credential":
			slot, credential = 0, value
		case key == "SignedHeaders":
			slot, signedHeaders = 1, value
		case key == "Signature":
			slot, signature = 2, value
		default:
			return a, denied(ReasonMalformed, "Authorization header part %s is not one of Credential, SignedHeaders, Signature", clip(key))
		}
		if seen[slot] {
			return a, denied(ReasonMalformed, "Authorization header has %s twice", key)
		}
		seen[slot] = true
	}
	for i, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return a, denied(ReasonMalformed, "Authorization header lacks %s", name)
		}
	}

	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return a, denied(ReasonMalformed, "Credential must be <access key id>/<yyyymmdd>/<region>/<service>/aws4_request")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
	if a.AccessKeyID == "" || len(a.AccessKeyID) > 128 || !isAlnum(a.AccessKeyID) {
		return a, denied(ReasonMalformed, "Credential's access key id must be 1 to 128 letters and digits")
	}
	if len(a.Date) != 8 || !isDigits(a.Date) {
		return a, denied(ReasonMalformed, "Credential's date %s is not yyyymmdd", clip(a.Date))
	}
	if a.Region == "" || len(a.Region) > 64 || !regionPattern.MatchString(a.Region) {
		return a, denied(ReasonMalformed, "Credential's region %s is not a region name like eu-west-1", clip(a.Region))
	}
	if a.Service == "" {
		return a, denied(ReasonMalformed, "Credential's service is empty; it must be %s", SigV4Service)
	}

	if signedHeaders == "" {
		return a, denied(ReasonMalformed, "SignedHeaders is empty")
	}
	a.SignedHeaders = strings.Split(signedHeaders, ";")
	for i, h := range a.SignedHeaders {
		if h == "" || !isHeaderName(h) {
			return a, denied(ReasonMalformed, "SignedHeaders must be lowercase header names separated by ';'")
		}
		if i > 0 && a.SignedHeaders[i-1] >= h {
			return a, denied(ReasonMalformed, "SignedHeaders must be sorted and without repeats")
		}
	}

	if len(signature) != 2*sha256.Size || !isLowerHex(signature) {
		return a, denied(ReasonMalformed, "Signature must be 64 lowercase hex digits")
	}
	a.Signature = signature
	return a, nil
}

// SigV4Request is a request whose SigV4 signature was verified.
type SigV4Request struct {
	// Principal owns the access key that signed the request.
	Principal *Principal
	// Region is the credential scope's region: the region the caller asks
	// about, as EC2 answers only for the region it is called in.
	Region string
}

// SigV4 verifies a request to the EC2-compatible endpoint signed with
// AWS Signature Version 4 in its Authorization header, as the AWS SDKs, the
// AWS CLI and boto3 sign it. It recomputes the signature with aws-sdk-go-v2's
// v4 signer over a copy of the request holding exactly the signed headers,
// the request's X-Amz-Date and the SHA-256 of the body it read, using the
// secret of the access key the request names, and compares the signatures in
// constant time.
//
// It reads the body (up to Options.MaxBodyBytes) and puts it back on r, so
// the handler reads it as if untouched.
//
// Presigned (query-string) requests are rejected (ReasonPresigned): the
// SDKs sign EC2 calls in the header, and a presigned URL travels through
// logs and proxies that a header does not.
//
// Denials, as EC2 answers them (see Error.EC2Code): no Authorization header
// → MissingAuthenticationToken; a malformed one → IncompleteSignature; an
// unknown access key or a presigned request → AuthFailure; a date more than
// Options.ClockSkew from now → RequestExpired; any other mismatch (wrong
// secret, changed body, changed signed header) → SignatureDoesNotMatch.
func (a *Authenticator) SigV4(r *http.Request) (SigV4Request, error) {
	var out SigV4Request
	if isPresigned(r.URL) {
		return out, denied(ReasonPresigned, "presigned (query-string) requests are not accepted; sign the Authorization header, as the AWS SDKs do")
	}
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return out, denied(ReasonMissing, "the request is not signed: sign it with SigV4 and an access key from the access file")
	case len(values) > 1:
		return out, denied(ReasonMalformed, "more than one Authorization header")
	}
	if strings.HasPrefix(values[0], "Bearer ") {
		return out, denied(ReasonMalformed, "the EC2-compatible endpoint takes SigV4 signatures, not bearer tokens")
	}
	auth, err := ParseSigV4(values[0])
	if err != nil {
		return out, err
	}
	if auth.Service != SigV4Service {
		return out, denied(ReasonMalformed, "Credential's service %s must be %s", clip(auth.Service), SigV4Service)
	}
	if !contains(auth.SignedHeaders, "host") || !contains(auth.SignedHeaders, "x-amz-date") {
		return out, denied(ReasonMalformed, "SignedHeaders must include host and x-amz-date")
	}
	key, ok := a.config.Load().keys[auth.AccessKeyID]
	if !ok {
		return out, denied(ReasonUnknown, "AWS was not able to validate the provided access credentials")
	}

	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse(amzDateLayout, amzDate)
	if err != nil {
		return out, denied(ReasonMalformed, "X-Amz-Date must be yyyymmddThhmmssZ")
	}
	if now := a.opts.Now(); signedAt.Before(now.Add(-a.opts.ClockSkew)) || signedAt.After(now.Add(a.opts.ClockSkew)) {
		return out, denied(ReasonExpired, "Request has expired: X-Amz-Date %s is more than %s from the server's time %s",
			amzDate, a.opts.ClockSkew, now.UTC().Format(amzDateLayout))
	}
	if amzDate[:8] != auth.Date {
		return out, denied(ReasonSignature, "Credential's date %s is not the date of X-Amz-Date %s", auth.Date, amzDate)
	}

	body, err := readBody(r, a.opts.MaxBodyBytes)
	if err != nil {
		return out, err
	}
	sum := sha256.Sum256(body)

	signed, err := signedCopy(r.Context(), r, auth.SignedHeaders, int64(len(body)))
	if err != nil {
		return out, err
	}
	creds := aws.Credentials{AccessKeyID: auth.AccessKeyID, SecretAccessKey: key.secret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, signed, hex.EncodeToString(sum[:]), auth.Service, auth.Region, signedAt); err != nil {
		return out, fmt.Errorf("recomputing the SigV4 signature: %w", err)
	}
	want, err := ParseSigV4(signed.Header.Get("Authorization"))
	if err != nil {
		return out, fmt.Errorf("reading the recomputed SigV4 signature: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(want.Signature), []byte(auth.Signature)) != 1 ||
		strings.Join(want.SignedHeaders, ";") != strings.Join(auth.SignedHeaders, ";") {
		return out, denied(ReasonSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return SigV4Request{Principal: key.principal, Region: auth.Region}, nil
}

// signedCopy returns a request with r's method, path, query and host and
// exactly the headers in signedHeaders, which is what the signer needs to
// rebuild the canonical request. The signer always signs host and, for a
// non-empty body, content-length; a signed content-length is carried as the
// body's length.
func signedCopy(ctx context.Context, r *http.Request, signedHeaders []string, bodyLen int64) (*http.Request, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	c, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return nil, denied(ReasonMalformed, "the request's URL cannot be rebuilt for verification")
	}
	c.Host = r.Host
	for _, h := range signedHeaders {
		switch h {
		case "host":
		case "content-length":
			c.ContentLength = bodyLen
		default:
			vs := r.Header.Values(h)
			if len(vs) == 0 {
				return nil, denied(ReasonSignature, "signed header %s is not in the request", clip(h))
			}
			c.Header[http.CanonicalHeaderKey(h)] = vs
		}
	}
	return c, nil
}

// readBody reads r's body, at most limit bytes, and puts it back.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body to verify its signature: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, denied(ReasonMalformed, "the request body is larger than %d bytes", limit)
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// isPresigned reports whether u carries SigV4 query-string authentication.
func isPresigned(u *url.URL) bool {
	if u.RawQuery == "" {
		return false
	}
	q := u.Query()
	return q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Algorithm")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isHeaderName reports whether s is a lowercase HTTP header name.
func isHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
