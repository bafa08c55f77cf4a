package store_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// TestSupersededVersionsAreBoundedByCount publishes ten versions in quick
// succession, well within the grace period: Redis keeps the current one
// and at most Retain superseded ones, the newest.
func TestSupersededVersionsAreBoundedByCount(t *testing.T) {
	srv := redistest.Start(t)
	st := storetest.Open(t, store.RedisOptions{URL: srv.URL(), Namespace: "retain", Grace: time.Hour, Retain: 2})
	var versions []uint64
	for i := range 10 {
		snap, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(20, uint64(i), "r")})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, snap.Version)
	}
	keys, err := storetest.RawClient(t, srv.URL()).Keys(t.Context(), "vpnfacade:{retain}:snapshot:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("snapshot keys after 10 versions: %v; want the current and 2 superseded", keys)
	}
	for _, v := range versions[len(versions)-3:] {
		want := st.Key("snapshot:" + strconv.FormatUint(v, 10))
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("version %d is not kept; keys %v", v, keys)
		}
	}
}

// TestConfirmationReachesOtherMirrors confirms the current version twice:
// once later, once with the same refresh time but a partition gone stale
// (every partition failed keeps the data's time). Another process's mirror
// takes both, without a new version.
func TestConfirmationReachesOtherMirrors(t *testing.T) {
	srv := redistest.Start(t)
	writer := storetest.Redis(t, srv.URL(), "confirm-mirror")
	reader := storetest.Redis(t, srv.URL(), "confirm-mirror")
	at := time.Now().Add(-time.Minute).Round(0).UTC()
	part := []snapshot.Partition{{AccountID: "111111111111", Region: "eu-west-1", RefreshedAt: at, Endpoints: 20}}
	snap, err := writer.Publish(t.Context(), store.Publication{RefreshedAt: at, Partitions: part, Endpoints: endpointtest.Rich(20, 1, "c")})
	if err != nil {
		t.Fatal(err)
	}
	later := at.Add(30 * time.Second)
	if _, err := writer.Confirm(t.Context(), store.Confirmation{Version: snap.Version, RefreshedAt: later, Partitions: part}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader takes the later refresh time", func() bool {
		v, err := reader.Current(t.Context())
		return err == nil && v.Version == snap.Version && v.RefreshedAt.Equal(later) && !v.Stale()
	})
	stale := []snapshot.Partition{{AccountID: "111111111111", Region: "eu-west-1", RefreshedAt: later, Stale: true, Error: "throttled", Endpoints: 20}}
	if _, err := writer.Confirm(t.Context(), store.Confirmation{Version: snap.Version, RefreshedAt: later, Partitions: stale}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader sees the partition stale, same version and time", func() bool {
		v, err := reader.Current(t.Context())
		return err == nil && v.Version == snap.Version && v.RefreshedAt.Equal(later) && v.Stale()
	})
}
