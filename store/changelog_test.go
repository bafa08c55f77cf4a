package store_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// logStore is a store with a change log, as both backends are.
type logStore interface {
	store.Store
	store.ChangeLog
}

func TestChangeLogMemory(t *testing.T) {
	testChangeLog(t, func(length int) (logStore, logStore) {
		m := store.NewMemoryOptions(store.MemoryOptions{ChangeLogLength: length})
		return m, m
	})
}

func TestChangeLogRedis(t *testing.T) {
	srv := redistest.Start(t)
	n := 0
	testChangeLog(t, func(length int) (logStore, logStore) {
		n++
		ns := "changelog" + string(rune('a'+n))
		opts := store.RedisOptions{URL: srv.URL(), Namespace: ns, PollInterval: 50 * time.Millisecond, CommandTimeout: time.Second, ChangeLogLength: length}
		// The reader is another replica: it sees the writer's log.
		return storetest.Open(t, opts), storetest.Open(t, opts)
	})
}

// testChangeLog checks the log of the stores open returns (a writer and a
// reader, which may be the same): each publish records what it changed,
// with old and new values, a diff computed against an older version is a
// gap, and the log keeps only its length.
func testChangeLog(t *testing.T, open func(length int) (w, r logStore)) {
	ctx := t.Context()
	eps := endpointtest.Varied(6, 7)
	publish := func(st logStore, base *snapshot.Snapshot, d snapshot.Diff, endpoints []*clientvpnv1.ClientVpnEndpoint) *snapshot.Snapshot {
		t.Helper()
		snap, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(endpoints), Diff: d, Base: base})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		return snap
	}
	changes := func(st logStore, after uint64) []store.Change {
		t.Helper()
		cs, err := st.Changes(ctx, after, 100)
		if err != nil {
			t.Fatalf("Changes(%d): %v", after, err)
		}
		return cs
	}

	w, r := open(2)
	published := r.Published()
	v1 := publish(w, nil, snapshot.Diff{}, eps[:5])
	<-published // the reader's current version moved

	modified := proto.Clone(eps[1]).(*clientvpnv1.ClientVpnEndpoint)
	modified.VpcId = proto.String("vpc-changed")
	next := []*clientvpnv1.ClientVpnEndpoint{eps[0], modified, eps[3], eps[4], eps[5]}
	published = r.Published()
	v2 := publish(w, v1, snapshot.Diff{
		Added:    []string{snapshot.Key(eps[5])},
		Modified: []string{snapshot.Key(eps[1])},
		Deleted:  []string{snapshot.Key(eps[2])},
	}, next)
	<-published

	got := changes(r, 0)
	if len(got) != 2 {
		t.Fatalf("Changes(0) returned %d changes, want 2 (versions %d and %d)", len(got), v1.Version, v2.Version)
	}
	if first := got[0]; first.Version != v1.Version || !first.Gap {
		t.Errorf("first change = version %d gap %v; want version %d recorded as a gap (no diff against an earlier version)", first.Version, first.Gap, v1.Version)
	}
	c := got[1]
	if c.Version != v2.Version || c.Base != v1.Version || c.Gap {
		t.Fatalf("second change = version %d base %d gap %v; want version %d base %d, no gap", c.Version, c.Base, c.Gap, v2.Version, v1.Version)
	}
	same := func(what string, got []*snapshot.Endpoint, want []*clientvpnv1.ClientVpnEndpoint) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d endpoints, want %d", what, len(got), len(want))
			return
		}
		for i := range got {
			if m, err := got[i].Message(); err != nil || !proto.Equal(m, want[i]) {
				t.Errorf("%s[%d] = %v, want %v", what, i, got[i], want[i])
			}
		}
	}
	same("added", c.Added, eps[5:6])
	same("modified", c.Modified, []*clientvpnv1.ClientVpnEndpoint{modified})
	same("previous", c.Previous, eps[1:2])
	same("removed", c.Removed, eps[2:3])
	if after := changes(r, v2.Version); len(after) != 0 {
		t.Errorf("Changes(current version) = %d changes, want none", len(after))
	}

	// A diff computed against v1 while v2 is current does not describe
	// v2 → v3: the log records a gap from v2.
	v3 := publish(w, v1, snapshot.Diff{Added: []string{snapshot.Key(eps[2])}}, append(next, eps[2]))
	got = changes(w, v2.Version)
	if len(got) != 1 || got[0].Version != v3.Version || got[0].Base != v2.Version || !got[0].Gap {
		t.Fatalf("change after a stale base = %+v; want one gap from version %d to %d", got, v2.Version, v3.Version)
	}

	// The log keeps two versions: after a fourth publish, v2's change is
	// gone, so the first change after v1 no longer starts at v1.
	v4 := publish(w, v3, snapshot.Diff{}, append(next, eps[2]))
	got = changes(w, v1.Version)
	if len(got) != 2 || got[0].Version != v3.Version || got[1].Version != v4.Version || got[1].Base != v3.Version || got[1].Gap {
		t.Fatalf("changes after version %d with a log of 2 = %+v; want the changes to %d and %d", v1.Version, got, v3.Version, v4.Version)
	}
}
