package access

import "strings"

// MaxTokenLength bounds a bearer token; a longer one is malformed.
const MaxTokenLength = 4096

// ParseBearer returns the token of an Authorization header value of the
// form "Bearer <token>" (RFC 6750: the scheme is case-insensitive, the token
// is token68 characters). The error never repeats the token.
func ParseBearer(header string) (string, error) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		if strings.HasPrefix(header, "AWS4-") {
			return "", denied(ReasonMalformed, "a SigV4 Authorization header is only accepted by the EC2-compatible endpoint; send Authorization: Bearer <token>")
		}
		return "", denied(ReasonMalformed, "the Authorization header must be \"Bearer <token>\"")
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", denied(ReasonMissing, "the Authorization header has no bearer token")
	}
	if len(token) > MaxTokenLength {
		return "", denied(ReasonMalformed, "the bearer token is longer than %d characters", MaxTokenLength)
	}
	if !isToken68(token) {
		return "", denied(ReasonMalformed, "the bearer token has characters other than letters, digits and - . _ ~ + / =")
	}
	return token, nil
}

// isToken68 reports whether s is RFC 7235's token68: 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
