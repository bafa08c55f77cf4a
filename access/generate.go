package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// TokenPrefix starts every token NewToken makes, so secret scanners and
// people can tell a vpnfacade token at a glance.
const TokenPrefix = "vpft_"

// NewToken returns a new random bearer token (256 bits from crypto/rand,
// URL-safe base64 after TokenPrefix) and the hex SHA-256 that goes in the
// access file's tokens_sha256. Only the hash belongs in the file; the token
// goes to the caller, once.
func NewToken() (token, sha256Hex string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("reading random bytes: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, TokenSHA256(token), nil
}

// TokenSHA256 returns the hex SHA-256 of token, as tokens_sha256 lists it.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewAccessKey returns a new access key pair in AWS's shapes: a 20-character
// id, "AKIA" and 16 characters of A–Z and 2–7, and a 40-character secret of
// base64 characters (240 random bits). Both go in the access file's
// access_keys, and to the caller as AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY.
func NewAccessKey() (id, secret string, err error) {
	var idBytes [10]byte // 80 bits → 16 base32 characters
	var secretBytes [30]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		return "", "", fmt.Errorf("reading random bytes: %w", err)
	}
	if _, err := rand.Read(secretBytes[:]); err != nil {
		return "", "", fmt.Errorf("reading random bytes: %w", err)
	}
	id = "AKIA" + base32.StdEncoding.EncodeToString(idBytes[:])
	secret = base64.StdEncoding.EncodeToString(secretBytes[:])
	return id, secret, nil
}
