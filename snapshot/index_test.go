package snapshot_test

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// TestFromWireLargeQueriedConcurrently loads a snapshot large enough to be
// read on several goroutines, stored in chunks as a store keeps it, and
// queries it from many goroutines at once before any index exists: each
// index is built by whichever query needs it first, and every answer must
// still equal the oracle's. (Run with -race, it also checks that the lazy
// indexes are published safely.)
func TestFromWireLargeQueriedConcurrently(t *testing.T) {
	eps := endpointtest.Varied(10_000, 9)
	built := newSnapshot(t, 1, eps)
	var chunks [][]byte
	for from := 0; from < built.Len(); {
		var c []byte
		c, from = built.AppendWire(nil, from, 64<<10)
		chunks = append(chunks, c)
	}
	snap, err := snapshot.FromWire(2, time.Now(), nil, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Len() != len(eps) {
		t.Fatalf("FromWire read %d endpoints, want %d", snap.Len(), len(eps))
	}
	some := eps[8765].GetClientVpnEndpointId()
	cases := [][]snapshot.Filter{
		{{Name: "transport-protocol", Values: []string{"udp"}}},
		{{Name: "vpc-id", Values: []string{"vpc-03", "vpc-17"}}, {Name: "status", Values: []string{"available"}}},
		{{Name: "region", Values: []string{"eu-west-1"}}, {Name: "account-id", Values: []string{"222222222222"}}},
		{{Name: "tag:team", Values: []string{"web"}}, {Name: "tag:env", Values: []string{"prod"}}},
		{{Name: "tag-key", Values: []string{"Name"}}},
		{{Name: "tag:Name", Values: []string{"büro-110"}}},
		{{Name: "tag:nobody", Values: []string{"x"}}},
		{{Name: "endpoint-id", Values: []string{some}}},
		{{Name: "transport-protocol", Values: []string{"quic"}}, {Name: "tag:team", Values: []string{"Net"}}},
	}
	wants := make([][]string, len(cases))
	for i, filters := range cases {
		wants[i] = oracle(eps, nil, filters)
	}
	var wg sync.WaitGroup
	for round := range 3 {
		for i, filters := range cases {
			wg.Go(func() {
				got := listAll(t, func(int) *snapshot.Snapshot { return snap }, snapshot.Query{Limit: 500 + round, Filters: filters})
				if want := wants[i]; !slices.Equal(keys(got), want) {
					t.Errorf("case %d (%v): %d endpoints listed, the oracle has %d", i, filters, len(got), len(want))
				}
			})
		}
	}
	wg.Go(snap.BuildIndexes)
	wg.Wait()
	got := listAll(t, func(int) *snapshot.Snapshot { return snap }, snapshot.Query{Limit: 100, IDs: []string{some, eps[7].GetClientVpnEndpointId()}})
	if want := keys([]*clientvpnv1.ClientVpnEndpoint{eps[8765], eps[7]}); !slices.Equal(keys(got), want) {
		t.Errorf("by ids: %v, want %v", keys(got), want)
	}
}

// TestDetachedOutlivesItsSnapshot checks that a detached endpoint reads the
// same as the original and shares none of its bytes.
func TestDetachedOutlivesItsSnapshot(t *testing.T) {
	eps := endpointtest.Rich(3, 5, "d")
	snap := newSnapshot(t, 1, eps)
	for e := range snap.All() {
		d := e.Detached()
		if d.Key() != e.Key() || d.ID() != e.ID() || d.Partition() != e.Partition() {
			t.Errorf("detached %s reads as %s", e.Key(), d.Key())
		}
		if &d.Wire()[0] == &e.Wire()[0] {
			t.Errorf("detached %s shares its bytes with the snapshot", e.Key())
		}
		// A change log keeps thousands of detached endpoints: each must
		// cost about its own size, not a share of a snapshot's blocks.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const calls = 100
		for range calls {
			runtime.KeepAlive(e.Detached())
		}
		runtime.ReadMemStats(&after)
		if per, most := (after.TotalAlloc-before.TotalAlloc)/calls, uint64(len(e.Wire())+2048); per > most {
			t.Errorf("Detached allocates %d bytes for an endpoint of %d, want at most %d", per, len(e.Wire()), most)
		}
		m, err := d.Message()
		if err != nil || snapshot.Key(m) != e.Key() {
			t.Errorf("detached %s decodes to %v, %v", e.Key(), m, err)
		}
		for _, f := range []snapshot.Filter{{Name: "tag:batch", Values: []string{"d"}}, {Name: "tag-key", Values: []string{"env"}}} {
			dm, err := snapshot.NewMatcher(snapshot.Query{Filters: []snapshot.Filter{f}})
			if err != nil {
				t.Fatal(err)
			}
			if !dm.Match(d) {
				t.Errorf("detached %s does not match %v", e.Key(), f)
			}
		}
	}
}
