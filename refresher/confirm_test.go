package refresher

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
)

// usedMemory returns Redis's used_memory in bytes.
func usedMemory(t *testing.T, url string) int64 {
	t.Helper()
	info, err := storetest.RawClient(t, url).Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no used_memory in %q", info)
	return 0
}

// TestUnchangedRefreshesDoNotRewriteTheSnapshot refreshes unchanged data
// 200 times into Redis: the snapshot keeps its version, its refresh time
// moves on (also for another replica's mirror), and Redis holds about one
// copy of it, not one per refresh.
func TestUnchangedRefreshesDoNotRewriteTheSnapshot(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	empty := usedMemory(t, srv.URL())
	st := storetest.Redis(t, srv.URL(), "confirm")
	reader := storetest.Redis(t, srv.URL(), "confirm")
	src := newFixedSource(pA1, pA2)
	// 600 rich endpoints: one snapshot is over a megabyte, so that a copy
	// kept per refresh, or anything above some 14 KB kept per refresh, shows
	// in the bound below; more endpoints only make each refresh slower.
	eps := endpointtest.Rich(600, 5, "1")
	var a1, a2 = eps[:0:0], eps[:0:0]
	for _, e := range eps {
		e.AccountId = acctA
		if e.Region == "eu-west-1" {
			a1 = append(a1, e)
		} else {
			e.Region = "us-east-1"
			a2 = append(a2, e)
		}
	}
	src.set(acctA, "eu-west-1", a1...)
	src.set(acctA, "us-east-1", a2...)
	r := mustNew(t, src, st, Options{})

	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := current(t, st)
	one := usedMemory(t, srv.URL()) - empty
	for range 200 {
		if err := r.RefreshNow(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	last := current(t, st)
	if last.Version != first.Version || !last.RefreshedAt.After(first.RefreshedAt) {
		t.Errorf("after 200 unchanged refreshes: version %d → %d, refreshed %v → %v; want the same version, refreshed later",
			first.Version, last.Version, first.RefreshedAt, last.RefreshedAt)
	}
	if used := usedMemory(t, srv.URL()) - empty; used > 3*one {
		t.Errorf("Redis uses %d bytes after 200 unchanged refreshes, one snapshot took %d: want at most 3 times that", used, one)
	} else {
		t.Logf("one snapshot of %d endpoints: %d bytes in Redis; after 200 unchanged refreshes: %d", len(eps), one, used)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := reader.Current(t.Context())
		if err == nil && v.Version == last.Version && v.RefreshedAt.Equal(last.RefreshedAt) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("another replica's mirror = %+v, %v; want version %d refreshed at %v", v.Snapshot, err, last.Version, last.RefreshedAt)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A change publishes a new version again.
	src.set(acctA, "us-east-1", a2[1:]...)
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := current(t, st); v.Version == last.Version || v.Len() != len(eps)-1 {
		t.Errorf("after a deletion: version %d with %d endpoints; want a new version with %d", v.Version, v.Len(), len(eps)-1)
	}
}
