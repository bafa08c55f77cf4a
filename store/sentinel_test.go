package store_test

import (
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/store"
)

// TestRedisSentinel reaches the data through a Sentinel: the URL names the
// sentinel and SentinelMaster the monitored master, as --redis-url and
// --redis-sentinel-master do.
func TestRedisSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "vpnfacade-master")
	ctx := t.Context()
	open := func() *store.Redis {
		return storetest.Open(t, store.RedisOptions{URL: sentinel.URL(), SentinelMaster: "vpnfacade-master", Namespace: "sentinel"})
	}
	a := open()
	published, err := a.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(300, 21, "1"), Epoch: 1})
	if err != nil {
		t.Fatalf("Publish through a sentinel: %v", err)
	}
	if v, err := open().Current(ctx); err != nil || v.Version != published.Version || v.Len() != 300 {
		t.Fatalf("a second process through the sentinel: version %d len %d, %v; want version %d len 300", v.Version, v.Len(), err, published.Version)
	}
	// The data really is on the monitored master.
	direct := storetest.Redis(t, master.URL(), "sentinel")
	if v, err := direct.Current(ctx); err != nil || v.Version != published.Version {
		t.Errorf("reading the master directly: version %d, %v; want %d", v.Version, err, published.Version)
	}
}
