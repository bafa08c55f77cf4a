package ec2query

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/vpnfacade/vpnfacade"
)

// AWS error codes this package produces. They are the codes EC2 itself sends,
// so SDKs classify them as they would classify EC2's (for example the
// standard retryer treats RequestLimitExceeded as a throttle).
const (
	CodeInvalidParameterValue  = "InvalidParameterValue"
	CodeInvalidPaginationToken = "InvalidPaginationToken"
	CodeEndpointNotFound       = "InvalidClientVpnEndpointId.NotFound"
	CodeMissingParameter       = "MissingParameter"
	CodeUnknownParameter       = "UnknownParameter"
	CodeInvalidAction          = "InvalidAction"
	CodeDryRunOperation        = "DryRunOperation"
	CodeUnauthorizedOperation  = "UnauthorizedOperation"
	CodeRequestLimitExceeded   = "RequestLimitExceeded"
	CodeUnavailable            = "Unavailable"
	CodeInternalError          = "InternalError"
)

// internalErrorMessage is the only message an unexpected error shows.
const internalErrorMessage = "An internal error has occurred"

// APIError is an error as EC2 reports it: an AWS error code, a message fit
// for the caller, and the HTTP status it travels with.
type APIError struct {
	// Code is AWS's error code, e.g. "InvalidParameterValue".
	Code string
	// Message is the human-readable explanation sent to the caller.
	Message string
	// HTTPStatus is the status of the HTTP response carrying the error.
	HTTPStatus int
}

// Error implements the error interface.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.HTTPStatus, e.Message)
}

// NewAPIError returns an *APIError with a formatted message.
func NewAPIError(code string, status int, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), HTTPStatus: status}
}

// InvalidParameterValue reports a parameter whose value is not allowed (400).
func InvalidParameterValue(format string, args ...any) *APIError {
	return NewAPIError(CodeInvalidParameterValue, http.StatusBadRequest, format, args...)
}

// MissingParameter reports a required parameter the request lacks (400).
func MissingParameter(name string) *APIError {
	return NewAPIError(CodeMissingParameter, http.StatusBadRequest,
		"The request must contain the parameter %s", name)
}

// InvalidAction reports an action this server does not implement (400).
func InvalidAction(action string) *APIError {
	return NewAPIError(CodeInvalidAction, http.StatusBadRequest,
		"The action %s is not valid for this web service.", bare(action))
}

// DryRunOperation is the answer to a dry run that would have succeeded
// (HTTP 412, as EC2 sends it).
func DryRunOperation() *APIError {
	return NewAPIError(CodeDryRunOperation, http.StatusPreconditionFailed,
		"Request would have succeeded, but DryRun flag is set.")
}

// UnauthorizedOperation reports a caller not allowed to perform the action
// (403); EC2 also answers a dry run that would fail this way.
func UnauthorizedOperation() *APIError {
	return NewAPIError(CodeUnauthorizedOperation, http.StatusForbidden,
		"You are not authorized to perform this operation.")
}

// RequestLimitExceeded reports a throttled request (HTTP 503).
func RequestLimitExceeded() *APIError {
	return NewAPIError(CodeRequestLimitExceeded, http.StatusServiceUnavailable, "Request limit exceeded.")
}

// Unavailable reports that the service cannot answer right now (HTTP 503).
func Unavailable(format string, args ...any) *APIError {
	return NewAPIError(CodeUnavailable, http.StatusServiceUnavailable, format, args...)
}

// InternalError is the answer to any unexpected failure (HTTP 500). Its
// message never carries the failure's detail.
func InternalError() *APIError {
	return NewAPIError(CodeInternalError, http.StatusInternalServerError, internalErrorMessage)
}

// parameterNames spells the contract's request fields as the EC2 Query API
// names its parameters.
var parameterNames = map[string]string{
	vpnfacade.FieldIDs:        "ClientVpnEndpointId.N",
	vpnfacade.FieldID:         "ClientVpnEndpointId",
	vpnfacade.FieldFilters:    "Filter.N",
	vpnfacade.FieldMaxResults: "MaxResults",
	vpnfacade.FieldNextToken:  "NextToken",
	vpnfacade.FieldDryRun:     "DryRun",
}

// ParameterName returns the EC2 Query parameter of a contract field, e.g.
// NextToken for next_token; a field EC2 does not have is returned as is.
func ParameterName(field string) string {
	if name, ok := parameterNames[field]; ok {
		return name
	}
	return field
}

// ToAPIError translates any error into the EC2 error to send:
//
//   - an *APIError in err's chain is returned as is;
//   - a *vpnfacade.Error is mapped by its code, its message naming the
//     field as EC2 does (ParameterName): EINVALID on field next_token →
//     InvalidPaginationToken, other EINVALID →
//     InvalidParameterValue, ENOTFOUND → InvalidClientVpnEndpointId.NotFound,
//     EUNAVAILABLE → Unavailable (503), EDRYRUN → DryRunOperation (412),
//     keeping the error's client-safe message;
//   - anything else (including a nil error) becomes InternalError with a
//     fixed message, so internal detail never reaches the caller.
func ToAPIError(err error) *APIError {
	if err == nil {
		return InternalError()
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		return ae
	}
	fe, ok := errors.AsType[*vpnfacade.Error](err)
	if !ok {
		return InternalError()
	}
	msg := fe.Describe(ParameterName)
	switch fe.Code {
	case vpnfacade.EINVALID:
		if fe.Field == vpnfacade.FieldNextToken {
			return &APIError{Code: CodeInvalidPaginationToken, Message: msg, HTTPStatus: http.StatusBadRequest}
		}
		return &APIError{Code: CodeInvalidParameterValue, Message: msg, HTTPStatus: http.StatusBadRequest}
	case vpnfacade.ENOTFOUND:
		return &APIError{Code: CodeEndpointNotFound, Message: msg, HTTPStatus: http.StatusBadRequest}
	case vpnfacade.EUNAVAILABLE:
		return &APIError{Code: CodeUnavailable, Message: msg, HTTPStatus: http.StatusServiceUnavailable}
	case vpnfacade.EDRYRUN:
		return DryRunOperation()
	default:
		return InternalError()
	}
}
