// Package ec2query is the server side of the EC2 Query protocol for the
// DescribeClientVpnEndpoints action: it reads the form-encoded request into a
// typed value, writes endpoints as the exact XML EC2 answers with, and writes
// EC2's error XML.
//
// The format follows what the real service sends, element for element
// (including the capitalised children of connectionLogOptions), so that
// aws-sdk-go-v2, boto3 and the AWS CLI read our answers as they read EC2's.
// Both the EC2 emulator (package ec2sim) and vpnfacade's EC2-compatible
// endpoint use it.
package ec2query

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vpnfacade/vpnfacade"
)

// Page size bounds of DescribeClientVpnEndpoints, as EC2 enforces them.
const (
	// MinMaxResults is the smallest MaxResults EC2 accepts.
	MinMaxResults = 5
	// MaxMaxResults is the largest MaxResults EC2 accepts.
	MaxMaxResults = 1000
	// PageSizeWhenAbsent is the page size EC2 uses when a request has no
	// MaxResults: every result, up to the largest page.
	PageSizeWhenAbsent = 1000
)

// ActionDescribeClientVpnEndpoints is the Action value of the one EC2 call
// this package decodes.
const ActionDescribeClientVpnEndpoints = "DescribeClientVpnEndpoints"

// DefaultMaxFormBytes bounds the request body ReadForm accepts by default.
const DefaultMaxFormBytes = 1 << 20

// CodeFilterLimitExceeded is EC2's error for a request with too many filters
// or too many values in one filter (HTTP 400).
const CodeFilterLimitExceeded = "FilterLimitExceeded"

// Limits bounds what one DescribeClientVpnEndpoints request may carry, so
// that a request's cost is known before it is decoded. A zero field is
// unlimited, except MaxBytes, which is then DefaultMaxFormBytes.
type Limits struct {
	// MaxBytes bounds the request body.
	MaxBytes int64
	// IDs bounds the ClientVpnEndpointId.N parameters.
	IDs int
	// Filters bounds the Filter.N filters.
	Filters int
	// ValuesPerFilter bounds the Filter.N.Value.M values of one filter.
	ValuesPerFilter int
	// ValueLength bounds a filter name or value, in characters.
	ValueLength int
}

// maxFormParameters is the most parameters Go's net/url decodes from one
// form (its urlmaxqueryparams default); a larger form is refused whatever
// the limits.
const maxFormParameters = 10000

// maxParameters is the most parameters a request within l can need (every
// id, every filter with every value, and a margin for the scalar and
// authentication parameters), capped at what net/url decodes. 0 means
// unlimited.
func (l Limits) maxParameters() int {
	if l.IDs == 0 || l.Filters == 0 || l.ValuesPerFilter == 0 {
		return 0
	}
	return min(l.IDs+l.Filters*(1+l.ValuesPerFilter)+64, maxFormParameters)
}

// maxIndexDigits bounds the digits of an N or M index; the form size limit
// makes larger lists impossible anyway.
const maxIndexDigits = 6

// Filter is one EC2 filter of a request: Filter.N.Name and its
// Filter.N.Value.M values, in M order.
type Filter struct {
	// Name is the filter name, e.g. "endpoint-id" or "tag:team".
	Name string
	// Values are the values to match, at least one.
	Values []string
}

// DescribeClientVpnEndpointsRequest is a decoded DescribeClientVpnEndpoints
// request.
type DescribeClientVpnEndpointsRequest struct {
	// ClientVpnEndpointIDs are the ClientVpnEndpointId.N parameters, in N
	// order; empty means every endpoint.
	ClientVpnEndpointIDs []string
	// Filters are the Filter.N parameters, in N order.
	Filters []Filter
	// MaxResults is the requested page size, MinMaxResults..MaxMaxResults,
	// or 0 when the request does not set it (see PageSize).
	MaxResults int
	// NextToken is the token of the page to continue from; empty for the
	// first page.
	NextToken string
	// DryRun asks to check the request without performing it.
	DryRun bool
}

// PageSize returns MaxResults, or PageSizeWhenAbsent when it is not set.
func (r *DescribeClientVpnEndpointsRequest) PageSize() int {
	if r.MaxResults == 0 {
		return PageSizeWhenAbsent
	}
	return r.MaxResults
}

// ReadForm reads the parameters of an EC2 Query request: the URL query, and
// for POST the application/x-www-form-urlencoded body, which may hold at
// most maxBytes bytes (DefaultMaxFormBytes when maxBytes ≤ 0). Methods other
// than GET and POST are refused. Errors are *APIError.
func ReadForm(w http.ResponseWriter, r *http.Request, maxBytes int64) (url.Values, error) {
	return ReadFormWithin(w, r, Limits{MaxBytes: maxBytes})
}

// ReadFormWithin is ReadForm with limits: besides the body size, a request
// with more parameters than a DescribeClientVpnEndpoints call within limits
// can need is refused while the body streams in, before any of it is
// decoded. Errors are *APIError.
func ReadFormWithin(w http.ResponseWriter, r *http.Request, limits Limits) (url.Values, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, NewAPIError("InvalidRequest", http.StatusMethodNotAllowed,
			"The HTTP method %s is not supported; send the parameters with POST or GET.", bare(r.Method))
	}
	maxBytes := limits.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFormBytes
	}
	if r.ContentLength > maxBytes {
		return nil, NewAPIError("InvalidRequest", http.StatusRequestEntityTooLarge,
			"The request body is larger than %d bytes.", maxBytes)
	}
	maxParams := limits.maxParameters()
	tooMany := func() *APIError {
		return InvalidParameterValue(
			"The request has more than %d parameters; at most %d ClientVpnEndpointId.N, %d Filter.N and %d Filter.N.Value.M per filter are allowed.",
			maxParams, limits.IDs, limits.Filters, limits.ValuesPerFilter)
	}
	if maxParams > 0 && strings.Count(r.URL.RawQuery, "&") >= maxParams {
		return nil, tooMany()
	}
	var counter *paramCounter
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxBytes)
		if maxParams > 0 {
			counter = &paramCounter{ReadCloser: r.Body, left: maxParams - 1}
			r.Body = counter
		}
	}
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, NewAPIError("InvalidRequest", http.StatusRequestEntityTooLarge,
				"The request body is larger than %d bytes.", maxBytes)
		}
		if counter != nil && counter.exceeded {
			return nil, tooMany()
		}
		return nil, NewAPIError("InvalidRequest", http.StatusBadRequest,
			"The request parameters are not valid form encoding.")
	}
	return r.Form, nil
}

// errTooManyParameters stops a body read that has more separators than
// parameters allowed.
var errTooManyParameters = errors.New("too many parameters")

var ampersand = []byte{'&'}

// paramCounter fails a body read once it has seen more '&' separators than
// left, so that an oversized form is refused before it is decoded.
type paramCounter struct {
	io.ReadCloser
	left     int
	exceeded bool
}

// Read implements io.Reader.
func (c *paramCounter) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.left -= bytes.Count(p[:n], ampersand)
	if c.left < 0 {
		c.exceeded = true
		return n, errTooManyParameters
	}
	return n, err
}

// ParseAction returns the Action and Version parameters of a request. A
// missing or empty Action is MissingParameter; Version may be empty. Errors
// are *APIError.
func ParseAction(form url.Values) (action, version string, err error) {
	action, err = single(form, "Action")
	if err != nil {
		return "", "", err
	}
	if action == "" {
		return "", "", MissingParameter("Action")
	}
	version, err = single(form, "Version")
	if err != nil {
		return "", "", err
	}
	return action, version, nil
}

// ParseDescribeClientVpnEndpoints decodes the parameters of a
// DescribeClientVpnEndpoints request. Action and Version are not checked
// (see ParseAction); the signature parameters of query authentication are
// ignored; any other parameter is an error. ClientVpnEndpointId.N,
// Filter.N.Name and Filter.N.Value.M indexes count from 1 without gaps.
// Filter names are not checked here: which names are valid is the query
// engine's decision. Errors are *APIError.
func ParseDescribeClientVpnEndpoints(form url.Values) (*DescribeClientVpnEndpointsRequest, error) {
	return ParseDescribeClientVpnEndpointsWithin(form, Limits{})
}

// ParseDescribeClientVpnEndpointsWithin is ParseDescribeClientVpnEndpoints
// with limits, answered as EC2 answers them: too many filters, or too many
// values in one filter, is FilterLimitExceeded; too many ids or too long a
// filter name or value is InvalidParameterValue. Each message names the
// parameter, the limit and what the request sent.
func ParseDescribeClientVpnEndpointsWithin(form url.Values, limits Limits) (*DescribeClientVpnEndpointsRequest, error) {
	if err := checkCounts(form, limits); err != nil {
		return nil, err
	}
	req := &DescribeClientVpnEndpointsRequest{}
	ids := map[int]string{}
	filters := map[int]*rawFilter{}
	for _, key := range slices.Sorted(maps.Keys(form)) {
		if isIgnoredParameter(key) {
			continue
		}
		value, err := single(form, key)
		if err != nil {
			return nil, err
		}
		switch {
		case key == "MaxResults":
			n, err := strconv.Atoi(value)
			if err != nil || n < MinMaxResults || n > MaxMaxResults {
				return nil, InvalidParameterValue(
					"Value (%s) for parameter MaxResults is invalid. Parameter must be between %d and %d.",
					vpnfacade.Quote(value), MinMaxResults, MaxMaxResults)
			}
			req.MaxResults = n
		case key == "NextToken":
			req.NextToken = value
		case key == "DryRun":
			switch strings.ToLower(value) {
			case "true":
				req.DryRun = true
			case "false":
				req.DryRun = false
			default:
				return nil, InvalidParameterValue(
					"Value (%s) for parameter DryRun is invalid. Expected 'true' or 'false'.", vpnfacade.Quote(value))
			}
		case strings.HasPrefix(key, "ClientVpnEndpointId."):
			n, ok := parseIndex(key[len("ClientVpnEndpointId."):])
			if !ok {
				return nil, badIndex(key, "ClientVpnEndpointId.N")
			}
			ids[n] = value
		case strings.HasPrefix(key, "Filter."):
			if err := addFilterParameter(filters, key, value); err != nil {
				return nil, err
			}
		default:
			return nil, unknownParameter(key)
		}
	}

	var err error
	if req.ClientVpnEndpointIDs, err = dense(ids, "ClientVpnEndpointId.%d"); err != nil {
		return nil, err
	}
	fs, err := dense(filters, "Filter.%d.Name")
	if err != nil {
		return nil, err
	}
	for i, f := range fs {
		n := i + 1
		if f.name == nil {
			return nil, MissingParameter(fmt.Sprintf("Filter.%d.Name", n))
		}
		if len(f.values) == 0 {
			return nil, InvalidParameterValue(
				"The filter %s (Filter.%d) has no values: Filter.%d.Value.1 is required.", vpnfacade.Quote(*f.name), n, n)
		}
		if limits.ValuesPerFilter > 0 && len(f.values) > limits.ValuesPerFilter {
			return nil, NewAPIError(CodeFilterLimitExceeded, http.StatusBadRequest,
				"The filter %s (Filter.%d) has %d values; at most %d values are allowed per filter.",
				vpnfacade.Quote(*f.name), n, len(f.values), limits.ValuesPerFilter)
		}
		if err := checkLength(fmt.Sprintf("Filter.%d.Name", n), *f.name, limits.ValueLength); err != nil {
			return nil, err
		}
		values, err := dense(f.values, fmt.Sprintf("Filter.%d.Value.%%d", n))
		if err != nil {
			return nil, err
		}
		for m, v := range values {
			if err := checkLength(fmt.Sprintf("Filter.%d.Value.%d", n, m+1), v, limits.ValueLength); err != nil {
				return nil, err
			}
		}
		req.Filters = append(req.Filters, Filter{Name: *f.name, Values: values})
	}
	return req, nil
}

// checkCounts refuses a form with more ids or filters than limits allow,
// counting parameter names before any list is built.
func checkCounts(form url.Values, limits Limits) error {
	if limits.IDs == 0 && limits.Filters == 0 {
		return nil
	}
	ids, filters := 0, 0
	for key := range form {
		switch {
		case strings.HasPrefix(key, "ClientVpnEndpointId."):
			ids++
		case strings.HasPrefix(key, "Filter.") && strings.HasSuffix(key, ".Name"):
			filters++
		}
	}
	if limits.IDs > 0 && ids > limits.IDs {
		return InvalidParameterValue(
			"The request names %d endpoints in ClientVpnEndpointId.N; at most %d are allowed per request.", ids, limits.IDs)
	}
	if limits.Filters > 0 && filters > limits.Filters {
		return NewAPIError(CodeFilterLimitExceeded, http.StatusBadRequest,
			"The request uses %d filters (Filter.N); at most %d are allowed per request.", filters, limits.Filters)
	}
	return nil
}

// checkLength refuses a filter name or value longer than max characters
// (0: unlimited).
func checkLength(param, value string, max int) error {
	if max <= 0 || len(value) <= max {
		return nil
	}
	if n := utf8.RuneCountInString(value); n > max {
		return InvalidParameterValue(
			"The value of %s is %d characters long; at most %d are allowed.", param, n, max)
	}
	return nil
}

// rawFilter collects the parameters of one Filter.N before their indexes
// are checked.
type rawFilter struct {
	name   *string
	values map[int]string
}

// addFilterParameter records one Filter.N.Name or Filter.N.Value.M
// parameter.
func addFilterParameter(filters map[int]*rawFilter, key, value string) error {
	rest := key[len("Filter."):]
	dot := strings.IndexByte(rest, '.')
	if dot < 0 {
		return unknownParameter(key)
	}
	n, ok := parseIndex(rest[:dot])
	if !ok {
		return badIndex(key, "Filter.N.Name")
	}
	f := filters[n]
	if f == nil {
		f = &rawFilter{values: map[int]string{}}
		filters[n] = f
	}
	switch field := rest[dot+1:]; {
	case field == "Name":
		f.name = &value
	case strings.HasPrefix(field, "Value."):
		m, ok := parseIndex(field[len("Value."):])
		if !ok {
			return badIndex(key, "Filter.N.Value.M")
		}
		f.values[m] = value
	default:
		return unknownParameter(key)
	}
	return nil
}

// dense turns a map indexed from 1 into a slice, failing when an index in
// 1..len(m) is missing (which is also the case when one is beyond it).
// format names the parameter, with %d for the missing index.
func dense[V any](m map[int]V, format string) ([]V, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]V, len(m))
	for i := range out {
		v, ok := m[i+1]
		if !ok {
			return nil, InvalidParameterValue(
				"Parameter %s is missing: list indexes must count from 1 without gaps.",
				fmt.Sprintf(format, i+1))
		}
		out[i] = v
	}
	return out, nil
}

// parseIndex parses a list index: decimal digits, no sign, no leading zero,
// at least 1.
func parseIndex(s string) (int, bool) {
	if s == "" || len(s) > maxIndexDigits || s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// single returns the one value of a parameter ("" when absent), failing
// when the parameter is given more than once.
func single(form url.Values, key string) (string, error) {
	vs := form[key]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", InvalidParameterValue("The parameter %s is given %d times; give it once.", bare(key), len(vs))
	}
}

// isIgnoredParameter reports whether key is Action, Version or a parameter
// of query-string authentication (signature version 2 or 4), which carry no
// request data.
func isIgnoredParameter(key string) bool {
	switch key {
	case "Action", "Version", "AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
		"Timestamp", "Expires", "SecurityToken":
		return true
	}
	return strings.HasPrefix(key, "X-Amz-")
}

func unknownParameter(key string) *APIError {
	return NewAPIError(CodeUnknownParameter, http.StatusBadRequest, "The parameter %s is not recognized", bare(key))
}

func badIndex(key, shape string) *APIError {
	return InvalidParameterValue(
		"The parameter %s is invalid: expected %s with indexes counting from 1 (1, 2, 3, ...).", bare(key), shape)
}

// bare is vpnfacade.Quote without the quotes, for the messages whose wording
// follows EC2's, which names parameters and actions bare: at most
// vpnfacade.MaxEchoedInput characters of s, then "…", with invalid UTF-8
// replaced.
func bare(s string) string {
	n := 0
	for i := range s {
		if n == vpnfacade.MaxEchoedInput {
			return strings.ToValidUTF8(s[:i], "\uFFFD") + "…"
		}
		n++
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
