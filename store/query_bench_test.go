package store_test

import (
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/store"
)

// memoryView returns the current view of an in-process store holding n
// endpoints (no Redis needed).
func memoryView(b *testing.B, n int) store.View {
	b.Helper()
	m := store.NewMemory()
	if _, err := m.Publish(b.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: richEndpoints(n, 42, "1")}); err != nil {
		b.Fatal(err)
	}
	view, err := m.Current(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return view
}

// BenchmarkListPages reads every page of 100 of a two-filter listing of
// 10,000 endpoints, following the tokens: one op is one page, token
// decoding and encoding included.
func BenchmarkListPages(b *testing.B) {
	view := memoryView(b, 10_000)
	q := store.Query{Limit: 100, Filters: []store.Filter{
		{Name: "tag:env", Values: []string{"prod"}},
		{Name: "transport-protocol", Values: []string{"udp"}},
	}}
	pages, endpoints := 0, 0
	for b.Loop() {
		page, err := view.List(q)
		if err != nil {
			b.Fatal(err)
		}
		pages++
		endpoints += len(page.Endpoints)
		q.NextToken = page.NextToken
	}
	b.ReportMetric(float64(endpoints)/float64(pages), "endpoints/page")
}

// BenchmarkListWildcard reads the first page of 100 of a wildcard tag
// filter, which no index answers: every endpoint is a candidate.
func BenchmarkListWildcard(b *testing.B) {
	view := memoryView(b, 10_000)
	q := store.Query{Limit: 100, Filters: []store.Filter{{Name: "tag:Name", Values: []string{"vpn-9*"}}}}
	for b.Loop() {
		if page, err := view.List(q); err != nil || len(page.Endpoints) == 0 {
			b.Fatalf("List: %d endpoints, %v", len(page.Endpoints), err)
		}
	}
}

// BenchmarkListByIDs reads 10 endpoints by id out of 10,000.
func BenchmarkListByIDs(b *testing.B) {
	view := memoryView(b, 10_000)
	var ids []string
	for i, e := range view.Endpoints() {
		if i%997 == 0 && len(ids) < 10 {
			ids = append(ids, e.GetClientVpnEndpointId())
		}
	}
	q := store.Query{Limit: 100, IDs: ids}
	for b.Loop() {
		if page, err := view.List(q); err != nil || len(page.Endpoints) < len(ids) {
			b.Fatalf("List: %d endpoints, %v", len(page.Endpoints), err)
		}
	}
}
