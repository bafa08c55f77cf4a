package ec2query

import (
	"net/http"
	"strings"
)

// SigningRegion returns the region of a request's AWS Signature Version 4
// credential scope (Authorization: AWS4-HMAC-SHA256
// Credential=AKID/20260101/eu-west-1/ec2/aws4_request, ...), or "" when the
// request is not signed that way. It does not verify the signature.
func SigningRegion(r *http.Request) string {
	_, region := credentialScope(r)
	return region
}

// SigningAccessKey returns the access key id of a request's SigV4 credential
// scope, or "" when the request is not signed that way.
func SigningAccessKey(r *http.Request) string {
	key, _ := credentialScope(r)
	return key
}

// credentialScope extracts the access key id and region from the
// Authorization header, or from X-Amz-Credential for presigned requests.
func credentialScope(r *http.Request) (accessKey, region string) {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "AWS4-") {
		_, after, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return "", ""
		}
		cred, _, _ = strings.Cut(after, ",")
	}
	// AKID/date/region/service/aws4_request
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return "", ""
	}
	return parts[0], parts[2]
}
