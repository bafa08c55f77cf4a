package access

import (
	"errors"
	"fmt"
	"net/http"
)

// Reason is why a request was denied. It is logged (see Audit) and decides
// the code each protocol answers with.
type Reason string

// Reasons a request is denied.
const (
	// ReasonMissing: the request carries no credentials.
	ReasonMissing Reason = "missing_credentials"
	// ReasonMalformed: the credentials are not in a form this server reads
	// (a bad Authorization header, an unsupported SigV4 algorithm or scope).
	ReasonMalformed Reason = "malformed_credentials"
	// ReasonUnknown: a token, access key id or certificate identity that no
	// principal has.
	ReasonUnknown Reason = "unknown_credentials"
	// ReasonSignature: a SigV4 signature that does not match the request
	// (a wrong secret or a changed request).
	ReasonSignature Reason = "signature_mismatch"
	// ReasonExpired: a SigV4 date outside the allowed clock skew.
	ReasonExpired Reason = "request_expired"
	// ReasonPresigned: a presigned (query-string) SigV4 request, which this
	// server does not accept.
	ReasonPresigned Reason = "presigned_not_accepted"
	// ReasonRateLimited: the principal is over its rate limit.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonOutOfScope: the principal may not read what it asked for.
	ReasonOutOfScope Reason = "out_of_scope"
)

// EC2 error codes of denied requests. The codes are EC2's common client
// errors (the "Error codes for the Amazon EC2 API" reference). Their HTTP
// statuses follow what EC2 is seen to send: AuthFailure 401,
// SignatureDoesNotMatch 403; RequestExpired and IncompleteSignature 400 as
// AWS's common errors list them; MissingAuthenticationToken gets 401 like
// AuthFailure (EC2 documents no status per code, and SDKs go by the code).
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeIncompleteSignature        = "IncompleteSignature"
	CodeAuthFailure                = "AuthFailure"
	CodeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	CodeRequestExpired             = "RequestExpired"
	CodeRequestLimitExceeded       = "RequestLimitExceeded"
	CodeUnauthorizedOperation      = "UnauthorizedOperation"
)

// Error is a denied request: why, and a message fit to show the caller. It
// never holds a credential.
type Error struct {
	// Reason is why the request was denied.
	Reason Reason
	// Message explains the denial to the caller.
	Message string
}

// Error implements error.
func (e *Error) Error() string { return string(e.Reason) + ": " + e.Message }

// EC2Code is the EC2 error code the EC2-compatible endpoint answers with.
func (e *Error) EC2Code() string {
	switch e.Reason {
	case ReasonMissing:
		return CodeMissingAuthenticationToken
	case ReasonMalformed:
		return CodeIncompleteSignature
	case ReasonSignature:
		return CodeSignatureDoesNotMatch
	case ReasonExpired:
		return CodeRequestExpired
	case ReasonRateLimited:
		return CodeRequestLimitExceeded
	case ReasonOutOfScope:
		return CodeUnauthorizedOperation
	default: // ReasonUnknown, ReasonPresigned
		return CodeAuthFailure
	}
}

// HTTPStatus is the HTTP status the EC2-compatible endpoint answers with.
func (e *Error) HTTPStatus() int {
	switch e.Reason {
	case ReasonMalformed, ReasonExpired:
		return http.StatusBadRequest
	case ReasonSignature, ReasonOutOfScope:
		return http.StatusForbidden
	case ReasonRateLimited:
		return http.StatusServiceUnavailable
	default: // ReasonMissing, ReasonUnknown, ReasonPresigned
		return http.StatusUnauthorized
	}
}

// Unauthenticated reports whether the denial is about who the caller is
// (Connect's Unauthenticated) rather than what it may do.
func (e *Error) Unauthenticated() bool {
	switch e.Reason {
	case ReasonRateLimited, ReasonOutOfScope:
		return false
	}
	return true
}

// ReasonOf returns the Reason of the first *Error in err's chain, or "" when
// there is none.
func ReasonOf(err error) Reason {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return ""
}

func denied(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// maxEcho is the most characters of caller input a message repeats.
const maxEcho = 64

// clip returns s cut to maxEcho characters, quoted, for a message.
func clip(s string) string {
	n := 0
	for i := range s {
		if n == maxEcho {
			return fmt.Sprintf("%q…", s[:i])
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}
