package store_test

import (
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/store"
)

func TestMemoryPublishAndRead(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory()
	if _, err := m.Current(ctx); vpnfacade.ErrorCodeOf(err) != vpnfacade.EUNAVAILABLE {
		t.Fatalf("Current before any publish = %v, want EUNAVAILABLE", err)
	}
	for want := uint64(1); want <= 3; want++ {
		snap, err := m.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Varied(10*int(want), want), Epoch: 7})
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		view, err := m.Current(ctx)
		if err != nil || view.Version != want || snap.Version != want || view.Len() != 10*int(want) {
			t.Fatalf("after publish %d: view version %d len %d, err %v", want, view.Version, view.Len(), err)
		}
	}
	if _, err := m.Publish(ctx, store.Publication{Epoch: 6}); vpnfacade.ErrorCodeOf(err) != vpnfacade.ECONFLICT {
		t.Errorf("Publish with an older epoch = %v, want ECONFLICT", err)
	}
	if view, _ := m.Current(ctx); view.Version != 3 {
		t.Errorf("a refused publish changed the current version to %d", view.Version)
	}
}
