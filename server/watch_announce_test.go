package server_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// TestWatchDeliversBeforeTheSnapshotLoads follows a watcher on a replica
// that is not the writer and cannot load the writer's new snapshot (Redis's
// ACL refuses it the snapshot keys, as a slow load would keep it waiting):
// the change still reaches the watcher, from the change log, as soon as
// the version is announced; reads on that replica keep serving the older
// version meanwhile. A watcher the change does not concern is told of the
// new version by its heartbeats, with the version's refresh time.
func TestWatchDeliversBeforeTheSnapshotLoads(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	const ns = "watchannounce"
	if err := admin.Do(ctx, "ACL", "SETUSER", "follower", "on", ">follower-pass", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	writer := storetest.Redis(t, srv.URL(), ns)
	follower := storetest.Redis(t, "redis://follower:follower-pass@"+srv.Addr(), ns)

	eps := endpointtest.Varied(20, 5)
	v1, err := writer.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps)})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if view, err := follower.Current(ctx); err == nil && view.Version == v1.Version {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the follower never served version %d", v1.Version)
		case <-time.After(10 * time.Millisecond):
		}
	}

	url, _ := serveWatch(t, follower, server.WatchOptions{Heartbeat: 50 * time.Millisecond})
	c := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url, connect.WithGRPC())
	stream, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next := func() *clientvpnv1.WatchClientVpnEndpointsResponse {
		t.Helper()
		for stream.Receive() {
			if m := stream.Msg(); !m.GetHeartbeat() {
				return m
			}
		}
		t.Fatalf("stream ended: %v", stream.Err())
		return nil
	}
	for m := next(); !m.GetInitialComplete(); m = next() {
	}
	// A watcher of endpoint 0 only, which the change leaves alone.
	other, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{ClientVpnEndpointIds: []string{eps[0].GetClientVpnEndpointId()}})
	if err != nil {
		t.Fatal(err)
	}
	for other.Receive() && !other.Msg().GetInitialComplete() {
	}
	if err := other.Err(); err != nil {
		t.Fatal(err)
	}

	// From now on the follower may read the pointer, the confirmation and
	// the change log, but no snapshot.
	if err := admin.Do(ctx, "ACL", "SETUSER", "follower", "resetkeys", "~vpnfacade:{"+ns+"}:c*").Err(); err != nil {
		t.Fatal(err)
	}
	all, err := v1.Messages()
	if err != nil {
		t.Fatal(err)
	}
	changed := proto.CloneOf(all[3])
	changed.VpcId = proto.String("vpc-announced")
	next2 := endpointtest.Clones(all)
	next2[3] = changed
	v2, err := writer.Publish(ctx, store.Publication{
		RefreshedAt: time.Now(), Endpoints: next2, Base: v1,
		Diff: snapshot.Diff{Modified: []string{snapshot.Key(changed)}},
	})
	if err != nil {
		t.Fatal(err)
	}

	m := next()
	if m.GetVersion() != v2.Version || len(m.GetModified()) != 1 || !proto.Equal(m.GetModified()[0], changed) || len(m.GetAdded())+len(m.GetRemoved()) != 0 {
		t.Fatalf("change message %v; want version %d modifying %s", m, v2.Version, snapshot.Key(changed))
	}
	view, err := follower.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if view.Version != v1.Version {
		t.Fatalf("the follower serves version %d; want %d, the snapshot it could load (else this test does not show the delivery came first)", view.Version, v1.Version)
	}
	for other.Receive() {
		hb := other.Msg()
		if !hb.GetHeartbeat() {
			t.Fatalf("the watcher of endpoint 0 got %v; want only heartbeats", hb)
		}
		if hb.GetVersion() < v2.Version {
			continue
		}
		if got := hb.GetRefreshedAt().AsTime(); !got.Equal(v2.RefreshedAt) {
			t.Fatalf("heartbeat at version %d says refreshed at %v; want %v, the version's refresh time", hb.GetVersion(), got, v2.RefreshedAt)
		}
		break
	}
	if err := other.Err(); err != nil {
		t.Fatal(err)
	}
	if view, err := follower.Current(ctx); err != nil || view.Version != v1.Version {
		t.Fatalf("the follower serves %v (%v) after the heartbeat; want version %d still", view, err, v1.Version)
	}
}
