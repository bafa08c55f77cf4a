package ec2sim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2query"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// This file answers DescribeClientVpnEndpoints as EC2 documents it, on its
// own: the emulator is the oracle the facade is compared with, so it shares
// no query, paging or token code with the facade (only the wire format of
// package ec2query). It is a plain scan of one partition's endpoints in id
// order, kept small so that it is obviously right:
//
//   - filters endpoint-id, transport-protocol and tag:<key> only; any other
//     name is InvalidParameterValue "The filter 'X' is invalid";
//   - names and values are case-sensitive; filters are ANDed, the values of
//     one filter ORed; in values * matches any run of characters, ? exactly
//     one, and a backslash makes the next character literal;
//   - every ClientVpnEndpointId.N must exist in the partition, else
//     InvalidClientVpnEndpointId.NotFound;
//   - NextToken is this emulator's own opaque format (below); one it did
//     not issue, or issued for other ids, filters or another partition, is
//     InvalidPaginationToken.

// Filter names EC2 accepts for DescribeClientVpnEndpoints. The API
// reference documents the first two; tag:<key> works as on every EC2
// resource (Terraform's data source relies on it).
const (
	filterEndpointID        = "endpoint-id"
	filterTransportProtocol = "transport-protocol"
	filterTagPrefix         = "tag:"
)

// maxEcho bounds how much of a caller's input an error message repeats.
const maxEcho = 64

// tokenVersion is the version of the page token format.
const tokenVersion = 1

// describeQuery is a validated DescribeClientVpnEndpoints request.
type describeQuery struct {
	ids     []string
	filters []filter
	limit   int
	after   string // the id after which the page starts; "" for the first page
	binding string // what a token of this query is bound to
}

// filter is one validated filter: an endpoint matches when the attribute
// it names matches any value.
type filter struct {
	name   string // as sent, e.g. "tag:Team"
	tagKey string // for tag:<key>
	values []value
}

// value is one filter value: an exact string, or a wildcard pattern.
type value struct {
	exact   string
	pattern *regexp.Regexp // nil for an exact value
}

func (v value) matches(s string) bool {
	if v.pattern != nil {
		return v.pattern.MatchString(s)
	}
	return v.exact == s
}

// pageToken is the content of a NextToken, as JSON then standard base64
// (which has '+', '/' and '=', as EC2's tokens do, so clients must encode
// it). Check is a checksum of the other fields: an edited token is refused.
type pageToken struct {
	Version   int    `json:"v"`
	Partition string `json:"p"`
	Binding   string `json:"q"`
	After     string `json:"after"`
	Check     string `json:"c"`
}

func (t pageToken) checksum() string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s\x00%s", t.Version, t.Partition, t.Binding, t.After))
	return hex.EncodeToString(sum[:8])
}

// newDescribeQuery validates req for partition key. It does not look at the
// data: a dry run uses it as is.
func newDescribeQuery(req *ec2query.DescribeClientVpnEndpointsRequest, key PartitionKey) (*describeQuery, error) {
	q := &describeQuery{ids: req.ClientVpnEndpointIDs, limit: req.PageSize()}
	for _, f := range req.Filters {
		cf := filter{name: f.Name}
		switch {
		case f.Name == filterEndpointID, f.Name == filterTransportProtocol:
		case strings.HasPrefix(f.Name, filterTagPrefix) && len(f.Name) > len(filterTagPrefix):
			cf.tagKey = f.Name[len(filterTagPrefix):]
		default:
			return nil, ec2query.InvalidParameterValue("The filter '%s' is invalid", clip(f.Name))
		}
		for _, v := range f.Values {
			cv, err := compileValue(v)
			if err != nil {
				return nil, err
			}
			cf.values = append(cf.values, cv)
		}
		q.filters = append(q.filters, cf)
	}
	q.binding = binding(req)
	if req.NextToken != "" {
		after, ok := decodeToken(req.NextToken, key, q.binding)
		if !ok {
			return nil, ec2query.NewAPIError(ec2query.CodeInvalidPaginationToken, http.StatusBadRequest,
				"The value of NextToken is not a token this service issued for this request; "+
					"pass the nextToken of the previous response unchanged, with the same ids and filters.")
		}
		q.after = after
	}
	return q, nil
}

// compileValue turns a filter value into an exact value or, when it has a
// wildcard or an escape, into an anchored regular expression.
func compileValue(v string) (value, error) {
	if !strings.ContainsAny(v, `*?\`) {
		return value{exact: v}, nil
	}
	var re strings.Builder
	re.WriteString(`\A(?s:`)
	escaped := false
	for _, r := range v {
		switch {
		case escaped:
			re.WriteString(regexp.QuoteMeta(string(r)))
			escaped = false
		case r == '\\':
			escaped = true
		case r == '*':
			re.WriteString(`.*`)
		case r == '?':
			re.WriteString(`.`)
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if escaped { // a trailing backslash stands for itself
		re.WriteString(`\\`)
	}
	re.WriteString(`)\z`)
	p, err := regexp.Compile(re.String())
	if err != nil {
		return value{}, ec2query.InvalidParameterValue("The filter value '%s' is invalid", clip(v))
	}
	return value{pattern: p}, nil
}

// page returns the endpoints of one page and the token of the next one.
// sorted is the partition's endpoints in id order.
func (q *describeQuery) page(sorted []*clientvpnv1.ClientVpnEndpoint, key PartitionKey) ([]*clientvpnv1.ClientVpnEndpoint, string, error) {
	var asked map[string]bool // requested id → whether it exists
	if len(q.ids) > 0 {
		asked = make(map[string]bool, len(q.ids))
		for _, id := range q.ids {
			asked[id] = false
		}
		for _, e := range sorted {
			if _, ok := asked[e.GetClientVpnEndpointId()]; ok {
				asked[e.GetClientVpnEndpointId()] = true
			}
		}
		for _, id := range q.ids {
			if !asked[id] {
				return nil, "", ec2query.NewAPIError(ec2query.CodeEndpointNotFound, http.StatusBadRequest,
					"Endpoint %s does not exist", clip(id))
			}
		}
	}
	var out []*clientvpnv1.ClientVpnEndpoint
	for _, e := range sorted {
		id := e.GetClientVpnEndpointId()
		if q.after != "" && id <= q.after {
			continue // on an earlier page
		}
		if _, ok := asked[id]; asked != nil && !ok {
			continue
		}
		if !q.matches(e) {
			continue
		}
		if len(out) == q.limit {
			return out, encodeToken(key, q.binding, out[len(out)-1].GetClientVpnEndpointId()), nil
		}
		out = append(out, e)
	}
	return out, "", nil
}

// matches reports whether e passes every filter.
func (q *describeQuery) matches(e *clientvpnv1.ClientVpnEndpoint) bool {
	for _, f := range q.filters {
		if !f.matches(e) {
			return false
		}
	}
	return true
}

func (f *filter) matches(e *clientvpnv1.ClientVpnEndpoint) bool {
	var attrs []string
	switch {
	case f.name == filterEndpointID:
		attrs = []string{e.GetClientVpnEndpointId()}
	case f.name == filterTransportProtocol:
		if s, ok := vpnfacade.EnumString(e.GetTransportProtocol(), e.TransportProtocolUnrecognized); ok {
			attrs = []string{s}
		}
	default:
		for _, t := range e.GetTags() {
			if t.GetKey() == f.tagKey {
				attrs = append(attrs, t.GetValue())
			}
		}
	}
	for _, a := range attrs {
		for _, v := range f.values {
			if v.matches(a) {
				return true
			}
		}
	}
	return false
}

// binding fingerprints the ids and filters of a request, independently of
// their order, so that a token is only accepted with the request it
// continues.
func binding(req *ec2query.DescribeClientVpnEndpointsRequest) string {
	ids := slices.Compact(slices.Sorted(slices.Values(req.ClientVpnEndpointIDs)))
	filters := make([][]string, 0, len(req.Filters))
	for _, f := range req.Filters {
		values := slices.Compact(slices.Sorted(slices.Values(f.Values)))
		filters = append(filters, append([]string{f.Name}, values...))
	}
	slices.SortFunc(filters, slices.Compare)
	b, _ := json.Marshal(struct { // marshalling strings cannot fail
		IDs     []string   `json:"ids"`
		Filters [][]string `json:"filters"`
	}{ids, filters})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func encodeToken(key PartitionKey, binding, after string) string {
	t := pageToken{Version: tokenVersion, Partition: key.String(), Binding: binding, After: after}
	t.Check = t.checksum()
	b, _ := json.Marshal(t) // marshalling strings cannot fail
	return base64.StdEncoding.EncodeToString(b)
}

// decodeToken returns the id a token continues after, when the token is one
// this emulator issued for the same partition and binding.
func decodeToken(s string, key PartitionKey, binding string) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", false
	}
	var t pageToken
	if err := json.Unmarshal(b, &t); err != nil {
		return "", false
	}
	ok := t.Version == tokenVersion && t.Check == t.checksum() && t.After != "" &&
		t.Partition == key.String() && t.Binding == binding
	return t.After, ok
}

// clip shortens caller input that an error message repeats.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxEcho {
		return s
	}
	return string([]rune(s)[:maxEcho]) + "…"
}
