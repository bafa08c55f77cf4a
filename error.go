// Package vpnfacade holds the domain types shared by every layer of the
// service: the application error model. Transports (the Connect handler and
// the EC2-compatible handler) translate these errors at the edge; nothing
// below them knows about Connect codes or AWS error XML.
package vpnfacade

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrorCode is the kind of an application error.
type ErrorCode string

// Error codes. Each transport maps every code to its own vocabulary.
const (
	// EINVALID: the request is malformed (bad filter, page size, token, id).
	EINVALID ErrorCode = "invalid"
	// ENOTFOUND: a named endpoint is not in the snapshot.
	ENOTFOUND ErrorCode = "not_found"
	// EUNAVAILABLE: no snapshot can answer yet, or the snapshot is too old.
	EUNAVAILABLE ErrorCode = "unavailable"
	// EDRYRUN: a dry run that would have succeeded (EC2's DryRunOperation).
	EDRYRUN ErrorCode = "dry_run"
	// ECONFLICT: a write lost a race (an older version or a fenced writer).
	ECONFLICT ErrorCode = "conflict"
	// EINTERNAL: anything unexpected; its detail is logged, never shown.
	EINTERNAL ErrorCode = "internal"
)

// Request fields that errors name, in the contract's (proto) spelling. Each
// API names them in its own spelling at its edge: the Connect API as they
// are, the EC2 API as EC2 does (ec2query).
const (
	FieldIDs        = "client_vpn_endpoint_ids"
	FieldID         = "client_vpn_endpoint_id"
	FieldFilters    = "filters"
	FieldMaxResults = "max_results"
	FieldNextToken  = "next_token"
	FieldDryRun     = "dry_run"
)

// Error is an application error: a kind, the request field at fault (when
// there is one) and a message fit to show to the caller.
type Error struct {
	// Code is the kind of error.
	Code ErrorCode
	// Field names the request field at fault, in the proto's snake_case
	// (e.g. FieldNextToken); empty when no single field is.
	Field string
	// Message is a human-readable explanation, safe to return to clients.
	// It does not repeat the field's name, which each API spells its own
	// way: see Describe.
	Message string
}

// Describe returns the message a caller sees: the field's name in the
// caller's API (spell(Field)) before the message, unless the message
// names what it is about itself (a filter, the missing ids, a dry run).
func (e *Error) Describe(spell func(field string) string) string {
	if e.Field == "" || e.Code == ENOTFOUND || e.Code == EDRYRUN ||
		strings.HasPrefix(e.Message, "the filter") || strings.HasPrefix(e.Message, "The filter") {
		return e.Message
	}
	return spell(e.Field) + ": " + e.Message
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
}

// Errorf returns an *Error with the given code, field and formatted message.
func Errorf(code ErrorCode, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCodeOf returns the code of the first *Error in err's chain, or
// EINTERNAL when there is none (and "" for a nil error).
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessageOf returns the client-safe message of the first *Error in err's
// chain, or "internal error" when there is none.
func ErrorMessageOf(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// MaxEchoedInput is how many characters of a caller's input a message
// quotes at most.
const MaxEchoedInput = 64

// Quote returns s quoted for an error message, cut to MaxEchoedInput
// characters with "…" when longer, so that messages never echo unbounded
// input.
func Quote(s string) string {
	n := 0
	for i := range s {
		if n == MaxEchoedInput {
			return strconv.Quote(s[:i]) + "…"
		}
		n++
	}
	return strconv.Quote(s)
}
