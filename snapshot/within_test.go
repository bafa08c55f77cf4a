package snapshot_test

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// TestWithinHidesOtherAccounts: with Within limited to one account, as an
// access scope is, List pages through exactly that account's endpoints, ids
// outside it are not found, and GetWithin does not find them either, even
// when the same id exists inside too.
func TestWithinHidesOtherAccounts(t *testing.T) {
	eps := endpointtest.Varied(300, 7)
	// The same id in both accounts: the scope must pick its own copy.
	shared := proto.CloneOf(eps[0])
	shared.AccountId = map[string]string{"111111111111": "222222222222", "222222222222": "111111111111"}[eps[0].GetAccountId()]
	eps = append(eps, shared)
	snap := newSnapshot(t, 1, eps)
	scope := func(p vpnfacade.PartitionKey) bool { return p.AccountID == "111111111111" }

	var want []string
	var outside string
	for e := range snap.All() {
		if e.AccountID() == "111111111111" {
			want = append(want, e.Key())
		} else if e.ID() != shared.GetClientVpnEndpointId() {
			outside = e.ID()
		}
	}
	for _, limit := range []int{1, 7, 1000} {
		keys := make([]string, 0, len(want))
		for _, e := range listAll(t, func(int) *snapshot.Snapshot { return snap }, snapshot.Query{Limit: limit, Within: scope}) {
			keys = append(keys, snapshot.Key(e))
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("page size %d: %d endpoints in scope listed, want %d", limit, len(keys), len(want))
		}
	}

	_, err := snap.List(t.Context(), snapshot.Query{Limit: 10, IDs: []string{outside}, Within: scope})
	if vpnfacade.ErrorCodeOf(err) != vpnfacade.ENOTFOUND {
		t.Errorf("List of an id outside the scope: %v, want not found", err)
	}
	if _, err := snap.GetWithin(scope, outside, "", ""); vpnfacade.ErrorCodeOf(err) != vpnfacade.ENOTFOUND {
		t.Errorf("GetWithin of an id outside the scope: %v, want not found", err)
	}
	if _, err := snap.Get(outside, "", ""); err != nil {
		t.Errorf("Get without a scope: %v", err)
	}
	if e, err := snap.GetWithin(scope, shared.GetClientVpnEndpointId(), "", ""); err != nil || e.AccountID() != "111111111111" {
		t.Errorf("GetWithin of an id in both accounts: %v, %v; want the scope's copy", e, err)
	}
	page, err := snap.List(t.Context(), snapshot.Query{Limit: 10, IDs: []string{shared.GetClientVpnEndpointId()}, Within: scope})
	if err != nil || len(page.Endpoints) != 1 || page.Endpoints[0].AccountID() != "111111111111" {
		t.Errorf("List of an id in both accounts: %v, %v; want only the scope's copy", page.Endpoints, err)
	}
}

// A detached endpoint equals its original but shares none of its
// snapshot's buffer, so a holder of it does not keep the snapshot alive.
func TestDetachedSharesNoMemory(t *testing.T) {
	s := endpointtest.Snapshot(t, 1, endpointtest.Rich(3, 1, "detach"))
	for e := range s.All() {
		d := e.Detached()
		if !bytes.Equal(d.Wire(), e.Wire()) || d.Key() != e.Key() {
			t.Fatalf("%s: the copy differs", e.Key())
		}
		if &d.Wire()[0] == &e.Wire()[0] {
			t.Fatalf("%s: the copy's bytes are the snapshot's", e.Key())
		}
	}
}
