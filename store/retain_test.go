package store_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
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
