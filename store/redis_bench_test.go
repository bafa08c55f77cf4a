package store_test

import (
	"slices"
	"testing"
	"time"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// benchStore returns a Redis store holding a published snapshot of n
// endpoints, and those endpoints.
func benchStore(b *testing.B, n int) (*store.Redis, []*clientvpnv1.ClientVpnEndpoint) {
	b.Helper()
	srv := redistest.Start(b)
	r := storetest.Open(b, store.RedisOptions{URL: srv.URL(), Namespace: "bench", Grace: time.Millisecond})
	eps := endpointtest.Rich(n, 42, "1")
	if _, err := r.Publish(b.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps), Epoch: 1}); err != nil {
		b.Fatal(err)
	}
	return r, eps
}

// BenchmarkList reads one page of 100 of 10,000 endpoints with two filters,
// as a request does: Current (from the mirror), then List.
func BenchmarkList(b *testing.B) {
	r, _ := benchStore(b, 10_000)
	q := snapshot.Query{Limit: 100, Filters: []snapshot.Filter{
		{Name: "tag:env", Values: []string{"prod"}},
		{Name: "transport-protocol", Values: []string{"udp"}},
	}}
	for b.Loop() {
		view, err := r.Current(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		page, err := view.List(b.Context(), q)
		if err != nil || len(page.Endpoints) != 100 {
			b.Fatalf("List: %d endpoints, %v", len(page.Endpoints), err)
		}
	}
}

// BenchmarkGet reads one endpoint by id out of 10,000: Current, then Get.
func BenchmarkGet(b *testing.B) {
	r, eps := benchStore(b, 10_000)
	i := 0
	for b.Loop() {
		view, err := r.Current(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		e := eps[i%len(eps)]
		if _, err := view.Get(e.GetClientVpnEndpointId(), e.GetRegion(), e.GetAccountId()); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// BenchmarkPublish10k publishes 10,000 endpoints to Redis: sort and index,
// encode, write in pipelined chunks, flip the pointer.
func BenchmarkPublish10k(b *testing.B) {
	r, eps := benchStore(b, 10_000)
	for b.Loop() {
		// Publish owns and sorts the slice it is given; the messages are
		// only read, so sharing them between snapshots is safe.
		if _, err := r.Publish(b.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: slices.Clone(eps), Epoch: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWarmStart10k measures what a new process (or a follower after an
// announcement) pays to load a snapshot of 10,000 endpoints from Redis.
func BenchmarkWarmStart10k(b *testing.B) { benchWarmStart(b, 10_000) }

// BenchmarkWarmStart100k is BenchmarkWarmStart10k at 100,000 endpoints, the
// size of the warm-start goal (first List within 300 ms of exec).
func BenchmarkWarmStart100k(b *testing.B) { benchWarmStart(b, 100_000) }

// benchWarmStart publishes n endpoints, then measures opening a new store on
// the same Redis until its Current returns the snapshot (ns/op). The
// snapshot's indexes are built in the background after that; the time
// until they are built too is reported as indexed-ms/op, and building them
// is kept out of the next iteration.
func benchWarmStart(b *testing.B, n int) {
	srv := redistest.Start(b)
	w := storetest.Open(b, store.RedisOptions{URL: srv.URL(), Namespace: "bench"})
	if _, err := w.Publish(b.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(n, 42, "1"), Epoch: 1}); err != nil {
		b.Fatal(err)
	}
	var indexed time.Duration
	for b.Loop() {
		start := time.Now()
		r, err := store.NewRedis(b.Context(), store.RedisOptions{URL: srv.URL(), Namespace: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		view, err := r.Current(b.Context())
		if err != nil || view.Len() != n {
			b.Fatalf("warm start: %d endpoints, %v", view.Len(), err)
		}
		b.StopTimer()
		view.BuildIndexes() // waits for the build in progress
		indexed += time.Since(start)
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(indexed.Milliseconds())/float64(b.N), "indexed-ms/op")
}
