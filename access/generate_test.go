package access

import (
	"regexp"
	"testing"
	"time"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		token, hash, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^vpft_[A-Za-z0-9_-]{43}$`).MatchString(token) {
			t.Fatalf("token %q is not vpft_ and 43 URL-safe base64 characters", token)
		}
		if _, err := ParseBearer("Bearer " + token); err != nil {
			t.Fatalf("a new token is not a valid bearer token: %v", err)
		}
		if hash != TokenSHA256(token) || len(hash) != 64 {
			t.Fatalf("hash %q is not the SHA-256 of the token", hash)
		}
		if seen[token] {
			t.Fatal("NewToken repeated a token")
		}
		seen[token] = true
	}
}

func TestNewAccessKey(t *testing.T) {
	idShape := regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	secretShape := regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
	seen := map[string]bool{}
	for range 100 {
		id, secret, err := NewAccessKey()
		if err != nil {
			t.Fatal(err)
		}
		if !idShape.MatchString(id) || !secretShape.MatchString(secret) {
			t.Fatalf("access key %q / secret of %d characters is not in AWS's shapes", id, len(secret))
		}
		if seen[id] || seen[secret] {
			t.Fatal("NewAccessKey repeated a value")
		}
		seen[id], seen[secret] = true, true
	}
}

// TestGeneratedCredentialsWork puts a generated token and key pair in an
// access file and authenticates with them.
func TestGeneratedCredentialsWork(t *testing.T) {
	token, hash, _ := NewToken()
	id, secret, _ := NewAccessKey()
	file := "principals:\n  - name: gen\n    tokens_sha256: [" + hash + "]\n    access_keys: [{id: " + id + ", secret: '" + secret + "'}]\n    accounts: ['*']\n    regions: ['*']\n"
	a := newAuthenticator(t, file, Options{})
	if p, err := a.Bearer(token); err != nil || p.Name() != "gen" {
		t.Errorf("Bearer(new token) = %s, %v", principalName(p), err)
	}
	req := signedRequest(t, "http://127.0.0.1:1/", id, secret, "us-east-1", time.Now(), describeBody)
	if got, err := a.SigV4(req); err != nil || got.Principal.Name() != "gen" || got.Region != "us-east-1" {
		t.Errorf("SigV4 with the new key pair = %+v, %v", got, err)
	}
}
