package snapshot

import "github.com/vpnfacade/vpnfacade"

// Matcher tells whether one endpoint is selected by a query's ids and
// filters, as List selects it; watchers use it on each change. It is safe
// for concurrent use.
type Matcher struct {
	ids     map[string]bool // nil: any id
	filters []compiledFilter
	within  func(vpnfacade.PartitionKey) bool
}

// NewMatcher validates q's ids and filters as List does (its Limit and
// NextToken are ignored) and returns their matcher. Errors are
// *vpnfacade.Error with code EINVALID.
func NewMatcher(q Query) (*Matcher, error) {
	p, err := prepare(Query{IDs: q.IDs, Filters: q.Filters, Limit: 1})
	if err != nil {
		return nil, err
	}
	m := &Matcher{filters: p.filters, within: q.Within}
	for i := range m.filters {
		// The per-value memo is for one query on one goroutine.
		m.filters[i].matched = nil
	}
	if len(p.ids) > 0 {
		m.ids = make(map[string]bool, len(p.ids))
		for _, id := range p.ids {
			m.ids[id] = true
		}
	}
	return m, nil
}

// Match reports whether e is selected.
func (m *Matcher) Match(e *Endpoint) bool {
	if m.within != nil && !m.within(e.Partition()) {
		return false
	}
	if m.ids != nil && !m.ids[e.id] {
		return false
	}
	for i := range m.filters {
		if !m.filters[i].matches(e) {
			return false
		}
	}
	return true
}
