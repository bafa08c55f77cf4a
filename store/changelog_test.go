package store_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

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

// clock is a settable clock for the stores' Now option.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestChangeLogAgeMemory(t *testing.T) {
	// The bubble's clock moves only when every goroutine in it waits, so
	// time.Sleep below jumps past the age without taking any time.
	synctest.Test(t, func(t *testing.T) {
		testChangeLogAge(t, func(age time.Duration) (logStore, logStore, func(time.Duration)) {
			m := store.NewMemoryOptions(store.MemoryOptions{ChangeLogAge: age})
			return m, m, time.Sleep
		})
	})
}

func TestChangeLogAgeRedis(t *testing.T) {
	srv := redistest.Start(t)
	testChangeLogAge(t, func(age time.Duration) (logStore, logStore, func(time.Duration)) {
		// Writer and reader are two replicas, each with its own clock,
		// both moved together.
		wc, rc := &clock{now: time.Now()}, &clock{now: time.Now()}
		opts := store.RedisOptions{URL: srv.URL(), Namespace: "changelogage", PollInterval: 50 * time.Millisecond, CommandTimeout: time.Second, ChangeLogAge: age}
		wo, ro := opts, opts
		wo.Now, ro.Now = wc.Now, rc.Now
		advance := func(d time.Duration) { wc.Advance(d); rc.Advance(d) }
		return storetest.Open(t, wo), storetest.Open(t, ro), advance
	})
	// What the last publish trimmed is gone from Redis itself, not only
	// hidden from readers: of four entries, only the newest is left.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if n, err := rdb.XLen(t.Context(), "vpnfacade:{changelogage}:changes").Result(); err != nil || n != 1 {
		t.Errorf("change log stream length = %d (%v), want 1: the entries past the age trimmed by the last publish", n, err)
	}
}

// testChangeLogAge checks that changes published longer ago than the log's
// age are gone: a reader resuming from before them sees the first change
// kept start after its version (a reset, never a silent gap), and one
// resuming from after them is served.
func testChangeLogAge(t *testing.T, open func(age time.Duration) (w, r logStore, advance func(time.Duration))) {
	ctx := t.Context()
	const age = 10 * time.Minute
	w, r, advance := open(age)
	eps := endpointtest.Varied(4, 11)
	var prev *snapshot.Snapshot
	publish := func(n int) *snapshot.Snapshot {
		t.Helper()
		d := snapshot.Diff{}
		if prev != nil {
			d.Added = []string{snapshot.Key(eps[n-1])}
		}
		published := r.Published()
		snap, err := w.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps[:n]), Diff: d, Base: prev})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		<-published
		prev = snap
		return snap
	}
	changes := func(after uint64) []store.Change {
		t.Helper()
		cs, err := r.Changes(ctx, after, 100)
		if err != nil {
			t.Fatalf("Changes(%d): %v", after, err)
		}
		return cs
	}

	v1 := publish(1)
	v2 := publish(2)
	advance(age / 2)
	v3 := publish(3)
	if got := changes(v1.Version); len(got) != 2 || got[0].Base != v1.Version || got[0].PublishedAt.IsZero() {
		t.Fatalf("within the age: Changes(%d) = %+v; want the changes to %d and %d, from %d, with publish times", v1.Version, got, v2.Version, v3.Version, v1.Version)
	}

	// v2's change is now older than the age, v3's is not.
	advance(age/2 + time.Second)
	got := changes(v1.Version)
	if len(got) != 1 || got[0].Version != v3.Version || got[0].Base != v2.Version {
		t.Fatalf("past the age: Changes(%d) = %+v; want only the change to %d, based on %d (the reader at %d must relist)", v1.Version, got, v3.Version, v2.Version, v1.Version)
	}
	if got := changes(v2.Version); len(got) != 1 || got[0].Base != v2.Version {
		t.Fatalf("Changes(%d) = %+v; want the change to %d, still within the age", v2.Version, got, v3.Version)
	}

	// Once every change is past the age, none is served; the next publish
	// trims them and its own change is served.
	advance(age)
	if got := changes(v2.Version); len(got) != 0 {
		t.Fatalf("every change past the age: Changes(%d) = %+v; want none", v2.Version, got)
	}
	v4 := publish(4)
	if got := changes(v1.Version); len(got) != 1 || got[0].Version != v4.Version || got[0].Base != v3.Version {
		t.Fatalf("after a publish: Changes(%d) = %+v; want only the change to %d", v1.Version, got, v4.Version)
	}
}
