package snapshot

import (
	"slices"
	"strings"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// Filter names the query engine supports. "tag:<key>" stands for any name
// "tag:" followed by a tag key.
const (
	FilterEndpointID        = "endpoint-id"
	FilterTransportProtocol = "transport-protocol"
	FilterVpcID             = "vpc-id"
	FilterStatus            = "status"
	FilterTag               = "tag:<key>"
	FilterTagKey            = "tag-key"
	FilterRegion            = "region"
	FilterAccountID         = "account-id"
)

// FilterNames lists every filter the query engine supports.
var FilterNames = []string{FilterEndpointID, FilterTransportProtocol, FilterVpcID, FilterStatus, FilterTag, FilterTagKey, FilterRegion, FilterAccountID}

// EC2FilterNames lists the filters the real EC2 DescribeClientVpnEndpoints
// accepts; the EC2 emulator restricts itself to them.
var EC2FilterNames = []string{FilterEndpointID, FilterTransportProtocol, FilterTag}

// indexedFilters are the single-valued filter names with an index (tag-key
// and tag:<key> are indexed too, from each tag).
var indexedFilters = []string{FilterEndpointID, FilterTransportProtocol, FilterVpcID, FilterStatus, FilterRegion, FilterAccountID}

// Filter is one EC2 filter: an endpoint matches when its attribute Name
// matches any of Values. Values may use the wildcards * and ?; a backslash
// makes the next character literal.
type Filter struct {
	// Name is one of the supported filter names.
	Name string
	// Values are ORed; at least one is required.
	Values []string
}

// Query asks a snapshot for one page of endpoints.
type Query struct {
	// IDs restricts the result to these endpoint ids; every one must exist.
	IDs []string
	// Filters are ANDed.
	Filters []Filter
	// Limit is the page size, at least 1. Transports map their own
	// max_results rules onto it.
	Limit int
	// NextToken continues a listing from a previous Page.
	NextToken string
	// FilterNames restricts the accepted filter names (nil: FilterNames).
	FilterNames []string
}

// Page is one page of a listing.
type Page struct {
	// Endpoints of the page, in snapshot order.
	Endpoints []*clientvpnv1.ClientVpnEndpoint
	// NextToken continues the listing; empty on the last page.
	NextToken string
}

// compiledFilter is a validated filter ready to match.
type compiledFilter struct {
	name     string // the filter name as sent ("tag:Owner" stays "tag:Owner")
	tagKey   string // for tag:<key>
	exact    []string
	patterns []string
}

func (f *compiledFilter) matchValue(v string) bool {
	if slices.Contains(f.exact, v) {
		return true
	}
	for _, p := range f.patterns {
		if wildcardMatch(p, v) {
			return true
		}
	}
	return false
}

// matches reports whether e has an attribute value matching f.
func (f *compiledFilter) matches(e *clientvpnv1.ClientVpnEndpoint) bool {
	switch {
	case f.tagKey != "":
		for _, t := range e.GetTags() {
			if t.GetKey() == f.tagKey && f.matchValue(t.GetValue()) {
				return true
			}
		}
		return false
	case f.name == FilterTagKey:
		for _, t := range e.GetTags() {
			if f.matchValue(t.GetKey()) {
				return true
			}
		}
		return false
	}
	v, ok := attributeValue(e, f.name)
	return ok && f.matchValue(v)
}

// attributeValue returns the one value a single-valued filter name sees on
// e; ok is false when e has none.
func attributeValue(e *clientvpnv1.ClientVpnEndpoint, name string) (string, bool) {
	switch name {
	case FilterEndpointID:
		return e.GetClientVpnEndpointId(), e.ClientVpnEndpointId != nil
	case FilterTransportProtocol:
		return vpnfacade.EnumString(e.GetTransportProtocol(), e.TransportProtocolUnrecognized)
	case FilterVpcID:
		return e.GetVpcId(), e.VpcId != nil
	case FilterStatus:
		if e.GetStatus() == nil {
			return "", false
		}
		return vpnfacade.EnumString(e.GetStatus().GetCode(), e.GetStatus().CodeUnrecognized)
	case FilterRegion:
		return e.GetRegion(), true
	case FilterAccountID:
		return e.GetAccountId(), true
	}
	return "", false
}

// compileFilters validates filters against the allowed names.
func compileFilters(filters []Filter, allowed []string) ([]compiledFilter, error) {
	if allowed == nil {
		allowed = FilterNames
	}
	out := make([]compiledFilter, 0, len(filters))
	for _, f := range filters {
		cf := compiledFilter{name: f.Name}
		switch {
		case strings.HasPrefix(f.Name, "tag:") && slices.Contains(allowed, FilterTag):
			cf.tagKey = strings.TrimPrefix(f.Name, "tag:")
			if cf.tagKey == "" {
				return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "filters",
					"the filter 'tag:' is invalid: a tag filter is 'tag:' followed by the tag key")
			}
		case f.Name != FilterTag && slices.Contains(allowed, f.Name):
		default:
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "filters",
				"The filter '%s' is invalid; supported filters: %s", f.Name, strings.Join(allowed, ", "))
		}
		if len(f.Values) == 0 {
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "filters",
				"the filter '%s' has no values; give at least one", f.Name)
		}
		for _, v := range f.Values {
			if strings.ContainsAny(v, `*?\`) {
				cf.patterns = append(cf.patterns, v)
			} else {
				cf.exact = append(cf.exact, v)
			}
		}
		out = append(out, cf)
	}
	return out, nil
}

// preparedQuery is a validated Query.
type preparedQuery struct {
	filters []compiledFilter
	binding [8]byte
	after   *sortKey // position after which the page starts; nil: the start
}

func prepare(q Query) (preparedQuery, error) {
	if q.Limit < 1 {
		return preparedQuery{}, vpnfacade.Errorf(vpnfacade.EINVALID, "max_results", "the page size must be at least 1, got %d", q.Limit)
	}
	for _, id := range q.IDs {
		if id == "" {
			return preparedQuery{}, vpnfacade.Errorf(vpnfacade.EINVALID, "client_vpn_endpoint_ids", "an endpoint id is empty")
		}
	}
	filters, err := compileFilters(q.Filters, q.FilterNames)
	if err != nil {
		return preparedQuery{}, err
	}
	p := preparedQuery{filters: filters, binding: queryBinding(q.IDs, q.Filters)}
	if q.NextToken != "" {
		after, err := decodeToken(q.NextToken, p.binding)
		if err != nil {
			return preparedQuery{}, err
		}
		p.after = &after
	}
	return p, nil
}

// ValidateQuery checks q as List would (page size, ids, filters, token)
// without reading any snapshot; dry runs use it.
func ValidateQuery(q Query) error {
	_, err := prepare(q)
	return err
}

// List returns one page of the endpoints matching q, in snapshot order. Errors
// are *vpnfacade.Error: EINVALID (field "max_results", "filters",
// "next_token") or ENOTFOUND (field "client_vpn_endpoint_ids").
func (s *Snapshot) List(q Query) (Page, error) {
	p, err := prepare(q)
	if err != nil {
		return Page{}, err
	}
	filters, binding := p.filters, p.binding
	var start int
	if p.after != nil {
		start, _ = slices.BinarySearchFunc(s.keys, *p.after, sortKey.compare)
		if start < len(s.keys) && s.keys[start] == *p.after {
			start++
		}
	}

	var candidates []int32 // positions that can match, when narrowed
	narrowed := false
	if len(q.IDs) > 0 {
		narrowed = true
		var missing []string
		candidates, missing = s.positionsOfIDs(q.IDs)
		if len(missing) > 0 {
			return Page{}, vpnfacade.Errorf(vpnfacade.ENOTFOUND, "client_vpn_endpoint_ids",
				"the Client VPN endpoint(s) %s cannot be found", strings.Join(missing, ", "))
		}
	}
	chosen := -1 // the filter whose index gave the candidates: they all match it
	for i := range filters {
		if c, ok := s.indexed(&filters[i]); ok && (!narrowed || len(c) < len(candidates)) {
			candidates, chosen, narrowed = c, i, true
		}
	}

	page := Page{Endpoints: make([]*clientvpnv1.ClientVpnEndpoint, 0, min(q.Limit, 128))}
	var ids map[string]bool
	if len(q.IDs) > 0 {
		ids = make(map[string]bool, len(q.IDs))
		for _, id := range q.IDs {
			ids[id] = true
		}
	}
	match := func(i int) bool {
		e := s.endpoints[i]
		if ids != nil && !ids[e.GetClientVpnEndpointId()] {
			return false
		}
		for j := range filters {
			if j != chosen && !filters[j].matches(e) {
				return false
			}
		}
		return true
	}
	// emit adds a match; it reports false once the page is full and a
	// further match proves there is a next page.
	last := -1
	emit := func(i int) bool {
		if !match(i) {
			return true
		}
		if len(page.Endpoints) == q.Limit {
			page.NextToken = encodeToken(binding, s.keys[last])
			return false
		}
		page.Endpoints = append(page.Endpoints, s.endpoints[i])
		last = i
		return true
	}
	if !narrowed {
		for i := start; i < len(s.endpoints) && emit(i); i++ {
		}
	} else {
		j, _ := slices.BinarySearch(candidates, int32(start))
		for ; j < len(candidates) && emit(int(candidates[j])); j++ {
		}
	}
	return page, nil
}

// positionsOfIDs returns the ascending positions holding any of ids, and the
// ids held nowhere.
func (s *Snapshot) positionsOfIDs(ids []string) (positions []int32, missing []string) {
	for _, id := range ids {
		p := s.index[indexKey(FilterEndpointID, id)]
		if len(p) == 0 {
			if !slices.Contains(missing, id) {
				missing = append(missing, id)
			}
			continue
		}
		positions = append(positions, p...)
	}
	slices.Sort(positions)
	return slices.Compact(positions), missing
}

// indexed returns the ascending positions that can match f, when an index
// answers f (no wildcard values, an indexed name).
func (s *Snapshot) indexed(f *compiledFilter) ([]int32, bool) {
	if len(f.patterns) > 0 {
		return nil, false
	}
	name := f.name
	if f.tagKey == "" && name != FilterTagKey && !slices.Contains(indexedFilters, name) {
		return nil, false
	}
	if len(f.exact) == 1 {
		return s.index[indexKey(name, f.exact[0])], true
	}
	var out []int32
	for _, v := range f.exact {
		out = append(out, s.index[indexKey(name, v)]...)
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

// wildcardMatch reports whether s matches pattern, where * matches any run
// of characters (including none), ? exactly one, and \ makes the next
// character literal.
func wildcardMatch(pattern, s string) bool {
	p := []rune(pattern)
	t := []rune(s)
	var pi, ti int
	starP, starT := -1, 0
	for ti < len(t) {
		if pi < len(p) {
			switch c := p[pi]; {
			case c == '*':
				starP, starT = pi, ti
				pi++
				continue
			case c == '?':
				pi++
				ti++
				continue
			case c == '\\' && pi+1 < len(p):
				if p[pi+1] == t[ti] {
					pi += 2
					ti++
					continue
				}
			case c == t[ti]:
				pi++
				ti++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starT++
		pi, ti = starP+1, starT
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
