package store_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func currentVersion(ctx context.Context, s store.Store) uint64 {
	v, err := s.Current(ctx)
	if err != nil {
		return 0
	}
	return v.Version
}

func TestRedisRoundTrip10k(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := storetest.Redis(t, srv.URL(), "roundtrip")
	if _, err := a.Current(ctx); vpnfacade.ErrorCodeOf(err) != vpnfacade.EUNAVAILABLE {
		t.Fatalf("Current before any publish = %v, want EUNAVAILABLE", err)
	}

	want := endpointtest.Rich(10_000, 1, "1")
	refreshed := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	partitions := []snapshot.Partition{
		{AccountID: "111111111111", Region: "eu-west-1", RefreshedAt: refreshed, Endpoints: 2500},
		{AccountID: "222222222222", Region: "us-east-1", RefreshedAt: refreshed.Add(-time.Hour), Stale: true, Error: "throttled", Endpoints: 2500},
	}
	snap, err := a.Publish(ctx, store.Publication{RefreshedAt: refreshed, Partitions: partitions, Endpoints: endpointtest.Clones(want), Epoch: 1})
	if err != nil {
		t.Fatalf("Publish 10k: %v", err)
	}
	if snap.Len() != len(want) || snap.Version == 0 {
		t.Fatalf("Publish returned version %d with %d endpoints, want %d", snap.Version, snap.Len(), len(want))
	}
	view, err := a.Current(ctx)
	if err != nil || view.Snapshot != snap || view.Stale() != true {
		t.Fatalf("publisher's Current = %v (stale %v), %v; want the published snapshot itself, stale through its partition", view.Snapshot, view.Stale(), err)
	}

	// A second process with the same namespace serves the same snapshot at
	// once, from Redis alone.
	b := storetest.Redis(t, srv.URL(), "roundtrip")
	got, err := b.Current(ctx)
	if err != nil {
		t.Fatalf("warm start Current: %v", err)
	}
	if got.Version != snap.Version || got.Len() != len(want) || got.BackendStale {
		t.Fatalf("warm start: version %d len %d backend stale %v; want version %d len %d fresh", got.Version, got.Len(), got.BackendStale, snap.Version, len(want))
	}
	if !got.RefreshedAt.Equal(refreshed) || got.RefreshedAt != snap.RefreshedAt {
		t.Errorf("RefreshedAt: loaded %v, published %v, given %v", got.RefreshedAt, snap.RefreshedAt, refreshed)
	}
	if len(got.Partitions) != 2 {
		t.Fatalf("partitions: loaded %+v", got.Partitions)
	}
	for i, p := range got.Partitions {
		w := partitions[i]
		if p.AccountID != w.AccountID || p.Region != w.Region || !p.RefreshedAt.Equal(w.RefreshedAt) || p.Stale != w.Stale || p.Error != w.Error || p.Endpoints != w.Endpoints {
			t.Errorf("partition %d: loaded %+v, published %+v", i, p, w)
		}
	}
	byKey := make(map[string]*clientvpnv1.ClientVpnEndpoint, len(want))
	for _, e := range want {
		byKey[snapshot.Key(e)] = e
	}
	gotEndpoints, snapEndpoints := endpointtest.Messages(t, got.All()), endpointtest.Messages(t, snap.All())
	for i, e := range gotEndpoints {
		w, ok := byKey[snapshot.Key(e)]
		if !ok {
			t.Fatalf("loaded endpoint %s was never published", snapshot.Key(e))
		}
		if !proto.Equal(e, w) {
			t.Fatalf("endpoint %s differs after the round trip:\nloaded    %v\npublished %v", snapshot.Key(e), e, w)
		}
		if !proto.Equal(e, snapEndpoints[i]) {
			t.Fatalf("position %d: the loaded snapshot's order differs from the publisher's", i)
		}
		delete(byKey, snapshot.Key(e))
	}
	if len(byKey) != 0 {
		t.Errorf("%d published endpoints were not loaded", len(byKey))
	}
	// The loaded snapshot answers queries like the published one.
	q := snapshot.Query{Limit: 100, Filters: []snapshot.Filter{{Name: "tag:team", Values: []string{"net"}}, {Name: "transport-protocol", Values: []string{"udp"}}}}
	p1, err1 := snap.List(t.Context(), q)
	p2, err2 := got.List(t.Context(), q)
	if err1 != nil || err2 != nil || len(p1.Endpoints) != 100 || p1.NextToken != p2.NextToken {
		t.Errorf("List on the published and the loaded snapshot disagree: %d/%v vs %d/%v", len(p1.Endpoints), err1, len(p2.Endpoints), err2)
	}
}

func TestRedisKeysAndGrace(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := storetest.Redis(t, srv.URL(), "team-a")
	other := storetest.Redis(t, srv.URL(), "team-b")
	first, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(300, 2, "1"), Epoch: 1})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	second, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(200, 3, "2"), Epoch: 1})
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	if second.Version <= first.Version {
		t.Fatalf("versions did not increase: %d then %d", first.Version, second.Version)
	}
	raw := storetest.RawClient(t, srv.URL())
	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "vpnfacade:{team-a}:") {
			t.Errorf("key %q lacks the namespace's hash tag prefix vpnfacade:{team-a}:", k)
		}
	}
	if cur, _ := raw.Get(ctx, "vpnfacade:{team-a}:current").Uint64(); cur != second.Version {
		t.Errorf("current pointer = %d, want %d", cur, second.Version)
	}
	oldTTL := raw.PTTL(ctx, fmt.Sprintf("vpnfacade:{team-a}:snapshot:%d", first.Version)).Val()
	if oldTTL <= 0 || oldTTL > time.Minute {
		t.Errorf("superseded version TTL = %v, want within the grace period (0, 1m]", oldTTL)
	}
	if ttl := raw.PTTL(ctx, fmt.Sprintf("vpnfacade:{team-a}:snapshot:%d", second.Version)).Val(); ttl != -1 {
		t.Errorf("current version TTL = %v, want none (-1)", ttl)
	}
	if a.EpochKey() != "vpnfacade:{team-a}:epoch" || a.Key("lease") != "vpnfacade:{team-a}:lease" {
		t.Errorf("EpochKey %q, Key(lease) %q", a.EpochKey(), a.Key("lease"))
	}
	// Another namespace on the same Redis sees none of it.
	if _, err := other.Current(ctx); vpnfacade.ErrorCodeOf(err) != vpnfacade.EUNAVAILABLE {
		t.Errorf("Current in an empty namespace = %v, want EUNAVAILABLE", err)
	}
}

// TestRedisAnnouncementReachesFollowers checks the pub/sub path alone: a
// follower that polls only once an hour still picks up each new version.
func TestRedisAnnouncementReachesFollowers(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := storetest.Redis(t, srv.URL(), "announce")
	follower := storetest.Open(t, store.RedisOptions{URL: srv.URL(), Namespace: "announce", PollInterval: time.Hour})
	eventually(t, "the follower has subscribed", func() bool {
		n, err := storetest.RawClient(t, srv.URL()).PubSubNumSub(ctx, "vpnfacade:{announce}:announce").Result()
		return err == nil && n["vpnfacade:{announce}:announce"] >= 2
	})
	for i := range 3 {
		snap, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(100+i, uint64(20+i), "1"), Epoch: 1})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the follower loads the announced version", func() bool { return currentVersion(ctx, follower) == snap.Version })
	}
}

func TestRedisEmptySnapshot(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := storetest.Redis(t, srv.URL(), "empty")
	if _, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(20, 30, "1"), Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	// Every endpoint was deleted upstream: an empty snapshot is a real answer.
	empty, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Epoch: 1})
	if err != nil {
		t.Fatalf("Publish of no endpoints: %v", err)
	}
	b := storetest.Redis(t, srv.URL(), "empty")
	v, err := b.Current(ctx)
	if err != nil || v.Version != empty.Version || v.Len() != 0 {
		t.Fatalf("warm start on an empty snapshot: version %d len %d, %v; want version %d, no endpoints", v.Version, v.Len(), err, empty.Version)
	}
	if p, err := v.List(t.Context(), snapshot.Query{Limit: 5}); err != nil || len(p.Endpoints) != 0 || p.NextToken != "" {
		t.Errorf("List on an empty snapshot = %d endpoints, token %q, %v", len(p.Endpoints), p.NextToken, err)
	}
}

func TestRedisStaleWriterRefused(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := storetest.Redis(t, srv.URL(), "fencing")
	raw := storetest.RawClient(t, srv.URL())
	snapshotKeys := func() []string {
		k, err := raw.Keys(ctx, "vpnfacade:{fencing}:snapshot:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	good, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(100, 4, "1"), Epoch: 5})
	if err != nil {
		t.Fatalf("Publish at epoch 5: %v", err)
	}
	if e, _ := raw.Get(ctx, a.EpochKey()).Uint64(); e != 5 {
		t.Errorf("stored epoch = %d after a publish at epoch 5", e)
	}
	_, err = a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(50, 5, "2"), Epoch: 4})
	if vpnfacade.ErrorCodeOf(err) != vpnfacade.ECONFLICT || !strings.Contains(vpnfacade.ErrorMessageOf(err), "epoch 4 is older than epoch 5") {
		t.Fatalf("Publish at an older epoch = %v, want ECONFLICT naming both epochs", err)
	}
	// The lease hands the data set to a new writer: the old one is fenced.
	if err := raw.Set(ctx, a.EpochKey(), 9, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(50, 6, "3"), Epoch: 5}); vpnfacade.ErrorCodeOf(err) != vpnfacade.ECONFLICT {
		t.Fatalf("Publish by a fenced writer = %v, want ECONFLICT", err)
	}
	b := storetest.Redis(t, srv.URL(), "fencing")
	for name, s := range map[string]store.Store{"publisher": a, "reader": b} {
		if v, err := s.Current(ctx); err != nil || v.Version != good.Version || v.Len() != 100 {
			t.Errorf("%s after refused publishes: version %d len %d (%v); want version %d unchanged", name, v.Version, v.Len(), err, good.Version)
		}
	}
	if k := snapshotKeys(); len(k) != 1 {
		t.Errorf("refused publishes left keys behind: %v", k)
	}
	next, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(70, 7, "4"), Epoch: 9})
	if err != nil || next.Version <= good.Version {
		t.Fatalf("Publish by the new writer = %v, %v", next, err)
	}
	eventually(t, "the reader follows the new writer", func() bool { return currentVersion(ctx, b) == next.Version })
}

func TestRedisConcurrentWritersNeverRegress(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	writers := []*store.Redis{storetest.Redis(t, srv.URL(), "race"), storetest.Redis(t, srv.URL(), "race")}
	var (
		mu        sync.Mutex
		published []uint64
		wg        sync.WaitGroup
	)
	for w, s := range writers {
		wg.Go(func() {
			for i := range 8 {
				snap, err := s.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(40, uint64(100*w+i), "x"), Epoch: 1})
				switch vpnfacade.ErrorCodeOf(err) {
				case "":
					mu.Lock()
					published = append(published, snap.Version)
					mu.Unlock()
				case vpnfacade.ECONFLICT: // overtaken by the other writer: fine
				default:
					t.Errorf("writer %d publish %d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	if len(published) < 8 {
		t.Fatalf("only %d of 16 publishes succeeded", len(published))
	}
	last := slices.Max(published)
	raw := storetest.RawClient(t, srv.URL())
	if cur, _ := raw.Get(ctx, "vpnfacade:{race}:current").Uint64(); cur != last {
		t.Errorf("current pointer = %d, want the newest published version %d", cur, last)
	}
	for _, s := range writers {
		eventually(t, "each writer's mirror reaches the newest version", func() bool { return currentVersion(ctx, s) == last })
	}
	keys, _ := raw.Keys(ctx, "vpnfacade:{race}:snapshot:*").Result()
	if want := min(len(published), store.DefaultRedisRetain+1); len(keys) != want {
		t.Errorf("%d snapshot keys for %d successful publishes, want %d (the current and at most %d superseded): refused versions were left behind",
			len(keys), len(published), want, store.DefaultRedisRetain)
	}
}

// TestRedisReadersNeverMixVersions hammers List on two processes while a
// third publishes snapshots of different sizes: every listing, page after
// page of one view, holds endpoints of one snapshot only, all of them.
func TestRedisReadersNeverMixVersions(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	writer := storetest.Redis(t, srv.URL(), "mix")
	readers := []*store.Redis{writer, storetest.Redis(t, srv.URL(), "mix")}
	sizes := []int{50, 2500, 700, 1800, 10, 1200, 3000, 90, 1500, 400}
	if _, err := writer.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(sizes[0], 0, "0"), Epoch: 1}); err != nil {
		t.Fatal(err)
	}

	var (
		done      atomic.Bool
		versionOf sync.Map // version → batch
		listings  atomic.Int64
		wg        sync.WaitGroup
	)
	seen := make([]map[uint64]bool, 4)
	for g := range 4 {
		seen[g] = map[uint64]bool{}
		s := readers[g%2]
		wg.Go(func() {
			for !done.Load() {
				view, err := s.Current(ctx)
				if err != nil {
					t.Errorf("reader %d: Current: %v", g, err)
					return
				}
				seen[g][view.Version] = true
				q := snapshot.Query{Limit: 97, Filters: []snapshot.Filter{{Name: "tag-key", Values: []string{"batch"}}, {Name: "tag:env", Values: []string{"prod", "staging", "dev"}}}}
				batch, n := "", 0
				for {
					page, err := view.List(t.Context(), q)
					if err != nil {
						t.Errorf("reader %d: List: %v", g, err)
						return
					}
					for _, rec := range page.Endpoints {
						e, err := rec.Message()
						if err != nil {
							t.Errorf("reader %d: %v", g, err)
							return
						}
						b := e.GetTags()[3].GetValue()
						if batch == "" {
							batch = b
						}
						if b != batch {
							t.Errorf("reader %d: version %d mixes batches %s and %s", g, view.Version, batch, b)
							return
						}
					}
					n += len(page.Endpoints)
					if page.NextToken == "" {
						break
					}
					q.NextToken = page.NextToken
				}
				i, _ := strconv.Atoi(batch)
				if n != sizes[i] || n != view.Len() {
					t.Errorf("reader %d: version %d (batch %s) listed %d endpoints, snapshot has %d, published %d", g, view.Version, batch, n, view.Len(), sizes[i])
				}
				if prev, loaded := versionOf.LoadOrStore(view.Version, batch); loaded && prev != batch {
					t.Errorf("version %d seen as batch %s and batch %s", view.Version, prev, batch)
				}
				listings.Add(1)
			}
		})
	}
	var last uint64
	for i := 1; i < len(sizes); i++ {
		snap, err := writer.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(sizes[i], uint64(i), strconv.Itoa(i)), Epoch: 1})
		if err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		last = snap.Version
		if b, ok := versionOf.Load(snap.Version); ok && b != strconv.Itoa(i) {
			t.Errorf("version %d was listed as batch %s, published as batch %d", snap.Version, b, i)
		}
		time.Sleep(30 * time.Millisecond)
	}
	eventually(t, "the second process reaches the last version", func() bool { return currentVersion(ctx, readers[1]) == last })
	time.Sleep(50 * time.Millisecond)
	done.Store(true)
	wg.Wait()
	if len(seen[1]) < 2 || len(seen[3]) < 2 {
		t.Errorf("the second process's readers saw %d and %d versions; the test needs them to see several", len(seen[1]), len(seen[3]))
	}
	t.Logf("%d complete listings checked", listings.Load())
}

func TestRedisOutageServesMirror(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := storetest.Redis(t, srv.URL(), "outage")
	b := storetest.Redis(t, srv.URL(), "outage")
	first, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(500, 8, "1"), Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader loads the first version", func() bool { return currentVersion(ctx, b) == first.Version })

	backendStale := func(s store.Store) bool {
		v, err := s.Current(ctx)
		return err == nil && v.BackendStale && v.Version == first.Version && v.Len() == 500
	}
	fresh := func(s store.Store) bool {
		v, err := s.Current(ctx)
		return err == nil && !v.BackendStale
	}

	// A frozen Redis: reads keep coming from the mirror, marked stale.
	srv.Pause()
	for _, s := range []store.Store{a, b} {
		eventually(t, "the mirror reports the backend stale while Redis is paused", func() bool { return backendStale(s) })
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = a.Publish(pctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(10, 9, "x"), Epoch: 1})
	cancel()
	if vpnfacade.ErrorCodeOf(err) != vpnfacade.EUNAVAILABLE {
		t.Errorf("Publish to a paused Redis = %v, want EUNAVAILABLE", err)
	}
	srv.Resume()
	for _, s := range []store.Store{a, b} {
		eventually(t, "the mirror recovers after Redis resumes", func() bool { return fresh(s) })
	}

	// A killed Redis: the same, and a process that never loaded anything
	// cannot answer, without leaking the connection error.
	srv.Kill()
	for _, s := range []store.Store{a, b} {
		eventually(t, "the mirror reports the backend stale while Redis is down", func() bool { return backendStale(s) })
	}
	c := storetest.Redis(t, srv.URL(), "outage")
	_, err = c.Current(ctx)
	if vpnfacade.ErrorCodeOf(err) != vpnfacade.EUNAVAILABLE {
		t.Errorf("Current with no mirror and no Redis = %v, want EUNAVAILABLE", err)
	}
	if msg := vpnfacade.ErrorMessageOf(err); strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "refused") {
		t.Errorf("client-facing message leaks the Redis error: %q", msg)
	}

	// Restarted empty on the same port: reads are fresh again (nothing
	// newer exists), and the next publish carries a newer version that
	// every process follows.
	srv.Restart()
	for _, s := range []store.Store{a, b} {
		eventually(t, "the mirror recovers after Redis restarts", func() bool { return fresh(s) })
	}
	if v, _ := b.Current(ctx); v.Version != first.Version {
		t.Errorf("after restart the reader serves version %d, want the mirrored %d", v.Version, first.Version)
	}
	next, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(300, 10, "2"), Epoch: 1})
	if err != nil {
		t.Fatalf("Publish after restart: %v", err)
	}
	if next.Version <= first.Version {
		t.Errorf("version after Redis lost its data = %d, not above %d: mirrors would ignore it", next.Version, first.Version)
	}
	for _, s := range []store.Store{b, c} {
		eventually(t, "every process follows the publish after restart", func() bool {
			v, err := s.Current(ctx)
			return err == nil && v.Version == next.Version && v.Len() == 300 && !v.BackendStale
		})
	}
}

// TestRedisPagingAcrossRefreshAndProcesses pages through a listing whose
// snapshot is replaced half way, asking a different process for the later
// pages: every endpoint present in both snapshots is listed exactly once.
func TestRedisPagingAcrossRefreshAndProcesses(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	a := storetest.Redis(t, srv.URL(), "paging")
	b := storetest.Redis(t, srv.URL(), "paging")
	old := endpointtest.Rich(600, 11, "1")
	var next []*clientvpnv1.ClientVpnEndpoint
	for i, e := range old {
		if i%4 != 0 { // a quarter is deleted
			next = append(next, proto.CloneOf(e))
		}
	}
	next = append(next, endpointtest.Rich(150, 12, "2")...) // and new ones appear
	if _, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(old), Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	q := snapshot.Query{Limit: 45}
	count := map[string]int{}
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("pagination does not end")
		}
		s := store.Store(a)
		if page == 3 {
			snap, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(next), Epoch: 1})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "the second process sees the new snapshot", func() bool { return currentVersion(ctx, b) == snap.Version })
		}
		if page >= 3 {
			s = b
		}
		view, err := s.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := view.List(t.Context(), q)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, e := range p.Endpoints {
			count[e.Key()]++
		}
		if p.NextToken == "" {
			break
		}
		q.NextToken = p.NextToken
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("%s listed %d times", k, n)
		}
	}
	oldKeys := map[string]bool{}
	for _, e := range old {
		oldKeys[snapshot.Key(e)] = true
	}
	survivors := 0
	for _, e := range next {
		if oldKeys[snapshot.Key(e)] {
			survivors++
			if count[snapshot.Key(e)] != 1 {
				t.Errorf("surviving endpoint %s was not listed", snapshot.Key(e))
			}
		}
	}
	if survivors != 450 {
		t.Fatalf("test setup: %d survivors, want 450", survivors)
	}
}

func TestRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	ctx := t.Context()
	a := storetest.Redis(t, cluster.URL(), "clustered")
	first, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(2000, 13, "1"), Epoch: 2})
	if err != nil {
		t.Fatalf("Publish on Redis Cluster: %v", err)
	}
	b := storetest.Redis(t, cluster.URL(), "clustered")
	if v, err := b.Current(ctx); err != nil {
		t.Fatalf("warm start on Redis Cluster: %v", err)
	} else if v.Version != first.Version || v.Len() != 2000 {
		t.Fatalf("warm start on Redis Cluster: version %d len %d, want %d len 2000", v.Version, v.Len(), first.Version)
	}
	if _, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(10, 14, "2"), Epoch: 1}); vpnfacade.ErrorCodeOf(err) != vpnfacade.ECONFLICT {
		t.Errorf("stale writer on Redis Cluster = %v, want ECONFLICT", err)
	}
	second, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(100, 15, "3"), Epoch: 2})
	if err != nil {
		t.Fatalf("second Publish on Redis Cluster: %v", err)
	}
	eventually(t, "the second process follows on Redis Cluster", func() bool { return currentVersion(ctx, b) == second.Version })
}

func TestNewRedisRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]store.RedisOptions{
		"empty URL":           {},
		"unknown scheme":      {URL: "http://127.0.0.1:6379"},
		"unix socket":         {URL: "unix:///tmp/redis.sock"},
		"braces in namespace": {URL: "redis://127.0.0.1:1", Namespace: "a{b}"},
		"negative grace":      {URL: "redis://127.0.0.1:1", Grace: -time.Second},
		"bad second address":  {URL: "redis://127.0.0.1:1,nonsense"},
		"db on cluster":       {URL: "redis://127.0.0.1:1/2,127.0.0.1:2"},
	} {
		r, err := store.NewRedis(t.Context(), opts)
		if err == nil {
			r.Close()
			t.Errorf("%s: NewRedis accepted %+v", name, opts)
		}
	}
	_, err := store.NewRedis(t.Context(), store.RedisOptions{URL: "redis://user:hunter2@127.0.0.1:1/x"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("NewRedis with a bad URL = %v; want an error that hides the password", err)
	}
}
