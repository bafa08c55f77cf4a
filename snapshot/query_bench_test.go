package snapshot_test

import (
	"testing"

	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// memoryView returns a snapshot of n rich endpoints.
func memoryView(b *testing.B, n int) *snapshot.Snapshot {
	b.Helper()
	return endpointtest.Snapshot(b, 1, endpointtest.Rich(n, 42, "1"))
}

// BenchmarkListPages reads every page of 100 of a two-filter listing of
// 10,000 endpoints, following the tokens: one op is one page, token
// decoding and encoding included.
func BenchmarkListPages(b *testing.B) {
	view := memoryView(b, 10_000)
	q := snapshot.Query{Limit: 100, Filters: []snapshot.Filter{
		{Name: "tag:env", Values: []string{"prod"}},
		{Name: "transport-protocol", Values: []string{"udp"}},
	}}
	pages, endpoints := 0, 0
	for b.Loop() {
		page, err := view.List(b.Context(), q)
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
	q := snapshot.Query{Limit: 100, Filters: []snapshot.Filter{{Name: "tag:Name", Values: []string{"vpn-9*"}}}}
	for b.Loop() {
		if page, err := view.List(b.Context(), q); err != nil || len(page.Endpoints) == 0 {
			b.Fatalf("List: %d endpoints, %v", len(page.Endpoints), err)
		}
	}
}

// BenchmarkListByIDs reads 10 endpoints by id out of 10,000.
func BenchmarkListByIDs(b *testing.B) {
	view := memoryView(b, 10_000)
	var ids []string
	i := 0
	for e := range view.All() {
		if i%997 == 0 && len(ids) < 10 {
			ids = append(ids, e.ID())
		}
		i++
	}
	q := snapshot.Query{Limit: 100, IDs: ids}
	for b.Loop() {
		if page, err := view.List(b.Context(), q); err != nil || len(page.Endpoints) < len(ids) {
			b.Fatalf("List: %d endpoints, %v", len(page.Endpoints), err)
		}
	}
}
