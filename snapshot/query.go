package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vpnfacade/vpnfacade"
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
	// Within, when set, is the part of the snapshot the caller may see:
	// endpoints of partitions it rejects are invisible, as if absent (an id
	// held only there is not found). The EC2 API answers for one region;
	// access rules limit a caller to some accounts and regions.
	Within func(vpnfacade.PartitionKey) bool
}

// Page is one page of a listing.
type Page struct {
	// Endpoints of the page, in snapshot order. They are shared: callers
	// must not modify them.
	Endpoints []*Endpoint
	// NextToken continues the listing; empty on the last page.
	NextToken string
}

// compiledFilter is a validated filter ready to match.
type compiledFilter struct {
	name     string // the filter name as sent ("tag:Owner" stays "tag:Owner")
	tagKey   string // for tag:<key>
	exact    []string
	patterns []string
	// matched remembers, for patterns, the outcome per attribute value:
	// most attributes (tags, VPCs, regions) repeat across endpoints, so a
	// query matches each distinct value once. nil for endpoint ids, which
	// never repeat.
	matched map[string]bool
}

func (f *compiledFilter) matchValue(v string) bool {
	if slices.Contains(f.exact, v) {
		return true
	}
	if len(f.patterns) == 0 {
		return false
	}
	if m, ok := f.matched[v]; ok {
		return m
	}
	m := slices.ContainsFunc(f.patterns, func(p string) bool { return wildcardMatch(p, v) })
	if f.matched != nil {
		f.matched[v] = m
	}
	return m
}

// matches reports whether e has an attribute value matching f.
func (f *compiledFilter) matches(e *Endpoint) bool {
	switch {
	case f.tagKey != "":
		for _, t := range e.tags {
			if t.key == f.tagKey && f.matchValue(t.value) {
				return true
			}
		}
		return false
	case f.name == FilterTagKey:
		for _, t := range e.tags {
			if f.matchValue(t.key) {
				return true
			}
		}
		return false
	}
	v, ok := e.attribute(f.name)
	return ok && f.matchValue(v)
}

// compileFilters validates filters: names, values and limits.
func compileFilters(filters []Filter) ([]compiledFilter, error) {
	allowed := FilterNames
	if len(filters) > MaxFilters {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldFilters,
			"%d filters given, more than the limit of %d", len(filters), MaxFilters)
	}
	out := make([]compiledFilter, 0, len(filters))
	for _, f := range filters {
		if err := checkLength("filters", f.Name); err != nil {
			return nil, err
		}
		cf := compiledFilter{name: f.Name}
		switch {
		case strings.HasPrefix(f.Name, "tag:") && slices.Contains(allowed, FilterTag):
			cf.tagKey = strings.TrimPrefix(f.Name, "tag:")
			if cf.tagKey == "" {
				return nil, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldFilters,
					"the filter 'tag:' is invalid: a tag filter is 'tag:' followed by the tag key")
			}
		case f.Name != FilterTag && slices.Contains(allowed, f.Name):
		default:
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldFilters,
				"The filter '%s' is invalid; supported filters: %s", strings.Trim(vpnfacade.Quote(f.Name), `"`), strings.Join(allowed, ", "))
		}
		if len(f.Values) == 0 {
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldFilters,
				"the filter %s has no values; give at least one", vpnfacade.Quote(f.Name))
		}
		if len(f.Values) > MaxValuesPerFilter {
			return nil, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldFilters,
				"the filter %s has %d values, more than the limit of %d", vpnfacade.Quote(f.Name), len(f.Values), MaxValuesPerFilter)
		}
		for _, v := range f.Values {
			if err := checkLength("filters", v); err != nil {
				return nil, err
			}
			if strings.ContainsAny(v, `*?\`) {
				cf.patterns = append(cf.patterns, v)
			} else {
				cf.exact = append(cf.exact, v)
			}
		}
		if len(cf.patterns) > 0 && cf.name != FilterEndpointID {
			cf.matched = map[string]bool{}
		}
		out = append(out, cf)
	}
	return out, nil
}

// preparedQuery is a validated Query.
type preparedQuery struct {
	ids     []string // sorted, without duplicates
	filters []compiledFilter
	binding [8]byte
	after   *sortKey // position after which the page starts; nil: the start
}

func prepare(q Query) (preparedQuery, error) {
	if q.Limit < 1 {
		return preparedQuery{}, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldMaxResults, "the page size must be at least 1, got %d", q.Limit)
	}
	if len(q.IDs) > MaxIDs {
		return preparedQuery{}, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldIDs,
			"%d ids given, more than the limit of %d", len(q.IDs), MaxIDs)
	}
	for _, id := range q.IDs {
		if id == "" {
			return preparedQuery{}, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldIDs, "an endpoint id is empty")
		}
		if err := checkLength("client_vpn_endpoint_ids", id); err != nil {
			return preparedQuery{}, err
		}
	}
	filters, err := compileFilters(q.Filters)
	if err != nil {
		return preparedQuery{}, err
	}
	ids := slices.Clone(q.IDs)
	slices.Sort(ids)
	p := preparedQuery{ids: slices.Compact(ids), filters: filters, binding: queryBinding(q.IDs, q.Filters)}
	if q.NextToken != "" {
		after, err := decodeToken(q.NextToken, p.binding)
		if err != nil {
			return preparedQuery{}, err
		}
		p.after = &after
	}
	return p, nil
}

// ValidateQuery checks q as List would (page size, limits, ids, filters,
// token) without reading any snapshot; dry runs use it.
func ValidateQuery(q Query) error {
	_, err := prepare(q)
	return err
}

// checkEvery is how many positions List examines between two looks at its
// context: a cancelled query stops within a few microseconds of work.
const checkEvery = 1024

// List returns one page of the endpoints matching q, in snapshot order. Its
// cost is bounded by the limits (see MaxIDs) and by the snapshot's size, and
// it stops early with ctx's error when ctx is done. Errors are
// *vpnfacade.Error: EINVALID (field "max_results", "filters", "next_token",
// "client_vpn_endpoint_ids") or ENOTFOUND (field "client_vpn_endpoint_ids").
func (s *Snapshot) List(ctx context.Context, q Query) (Page, error) {
	p, err := prepare(q)
	if err != nil {
		return Page{}, err
	}
	filters, binding := p.filters, p.binding
	var start int
	if p.after != nil {
		start = s.search(*p.after)
		if start < len(s.endpoints) && s.endpoints[start].sortKey() == *p.after {
			start++
		}
	}

	var candidates []int32 // positions that can match, when narrowed
	narrowed := false
	if len(p.ids) > 0 {
		narrowed = true
		var missing []string
		candidates, missing = s.positionsOfIDs(p.ids, q.Within)
		if len(missing) > 0 {
			return Page{}, errMissing(missing)
		}
	}
	chosen := -1 // the filter whose index gave the candidates: they all match it
	for i := range filters {
		if c, ok := s.indexed(&filters[i]); ok && (!narrowed || len(c) < len(candidates)) {
			candidates, chosen, narrowed = c, i, true
		}
	}

	page := Page{Endpoints: make([]*Endpoint, 0, min(q.Limit, 128))}
	match := func(i int) bool {
		e := &s.endpoints[i]
		if q.Within != nil && !q.Within(e.Partition()) {
			return false
		}
		if len(p.ids) > 0 && chosen >= 0 {
			if _, found := slices.BinarySearch(p.ids, e.id); !found {
				return false
			}
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
			page.NextToken = encodeToken(binding, s.endpoints[last].sortKey())
			return false
		}
		page.Endpoints = append(page.Endpoints, &s.endpoints[i])
		last = i
		return true
	}
	if !narrowed {
		for i := start; i < len(s.endpoints); i++ {
			if (i-start)%checkEvery == checkEvery-1 && ctx.Err() != nil {
				return Page{}, ctx.Err()
			}
			if !emit(i) {
				break
			}
		}
	} else {
		j, _ := slices.BinarySearch(candidates, int32(start))
		for n := 0; j < len(candidates); j, n = j+1, n+1 {
			if n%checkEvery == checkEvery-1 && ctx.Err() != nil {
				return Page{}, ctx.Err()
			}
			if !emit(int(candidates[j])) {
				break
			}
		}
	}
	return page, nil
}

// errMissing reports ids that no endpoint has, naming at most a few.
func errMissing(missing []string) error {
	const most = 5
	names := make([]string, 0, most)
	for _, id := range missing[:min(len(missing), most)] {
		names = append(names, vpnfacade.Quote(id))
	}
	more := ""
	if len(missing) > most {
		more = fmt.Sprintf(" and %d more", len(missing)-most)
	}
	return vpnfacade.Errorf(vpnfacade.ENOTFOUND, vpnfacade.FieldIDs,
		"the Client VPN endpoint(s) %s%s cannot be found", strings.Join(names, ", "), more)
}

// positionsOfIDs returns the ascending positions holding any of ids (sorted,
// without duplicates) within the partitions within accepts (nil: all), and
// the ids held nowhere there.
func (s *Snapshot) positionsOfIDs(ids []string, within func(vpnfacade.PartitionKey) bool) (positions []int32, missing []string) {
	for _, id := range ids {
		found := false
		for _, i := range s.positionsOfID(id) {
			if within == nil || within(s.endpoints[i].Partition()) {
				positions = append(positions, i)
				found = true
			}
		}
		if !found {
			missing = append(missing, id)
		}
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
	if f.tagKey == "" && name != FilterTagKey && name != FilterEndpointID && !slices.Contains(indexedAttributes[:], name) {
		return nil, false
	}
	if len(f.exact) == 1 {
		return s.lookup(f, f.exact[0]), true
	}
	var out []int32
	for _, v := range f.exact {
		out = append(out, s.lookup(f, v)...)
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

// wildcardMatch reports whether s matches pattern, where * matches any run
// of characters (including none), ? exactly one character, and \ makes the
// next character literal. It allocates nothing and takes at most
// len(pattern) × len(s) steps: on a mismatch it resumes after the last *
// only, one character further into s each time.
func wildcardMatch(pattern, s string) bool {
	var pi, si int
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(pattern) {
			switch c := pattern[pi]; {
			case c == '*':
				starP, starS = pi, si
				pi++
				continue
			case c == '?':
				_, n := utf8.DecodeRuneInString(s[si:])
				pi++
				si += n
				continue
			case c == '\\' && pi+1 < len(pattern):
				if pattern[pi+1] == s[si] {
					pi += 2
					si++
					continue
				}
			case c == s[si]:
				pi++
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		pi, si = starP+1, starS
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}
