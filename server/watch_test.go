package server_test

import (
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// TestWatchInProcess follows one watcher through an initial state in
// batches, a change, a heartbeat and the hub's close, in process (so that
// the race detector sees the fan-out and the stream together).
func TestWatchInProcess(t *testing.T) {
	ctx := t.Context()
	st := store.NewMemory()
	eps := endpointtest.Varied(2500, 3)
	v1, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps)})
	if err != nil {
		t.Fatal(err)
	}
	reader := server.NewReader(server.ReaderOptions{Store: st})
	hub, err := server.NewWatchHub(server.WatchOptions{Reader: reader, Log: st, Heartbeat: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	url := startServer(t, server.NewHandler(server.Options{Reader: reader, Watch: hub}))
	c := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url, connect.WithGRPC())
	stream, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next := func() *clientvpnv1.WatchClientVpnEndpointsResponse {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("stream ended: %v", stream.Err())
		}
		return stream.Msg()
	}
	var sizes []int
	for {
		m := next()
		if !m.GetInitial() || m.GetVersion() != v1.Version || m.GetReset_() {
			t.Fatalf("initial state message %v: want initial, version %d, no reset", m, v1.Version)
		}
		if m.GetInitialComplete() {
			break
		}
		sizes = append(sizes, len(m.GetAdded()))
	}
	if len(sizes) != 3 || sizes[0] != server.WatchBatch || sizes[1] != server.WatchBatch || sizes[2] != 500 {
		t.Fatalf("initial state came in batches of %v; want 1000, 1000, 500", sizes)
	}

	all, err := v1.Messages()
	if err != nil {
		t.Fatal(err)
	}
	changed := proto.CloneOf(all[7])
	changed.VpcId = proto.String("vpc-moved")
	next2 := append(slices.Clone(all[1:7]), changed)
	next2 = append(next2, all[8:]...)
	v2, err := st.Publish(ctx, store.Publication{
		RefreshedAt: time.Now(), Endpoints: next2, Base: v1,
		Diff: snapshot.Diff{Modified: []string{snapshot.Key(changed)}, Deleted: []string{snapshot.Key(all[0])}},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := next()
	for m.GetHeartbeat() {
		if m.GetVersion() != v1.Version {
			t.Fatalf("heartbeat before the change at version %d, want %d", m.GetVersion(), v1.Version)
		}
		m = next()
	}
	if m.GetVersion() != v2.Version || len(m.GetAdded()) != 0 || len(m.GetModified()) != 1 || !proto.Equal(m.GetModified()[0], changed) ||
		len(m.GetRemoved()) != 1 || m.GetRemoved()[0].GetClientVpnEndpointId() != all[0].GetClientVpnEndpointId() {
		t.Fatalf("change message %v; want version %d modifying %s and removing %s", m, v2.Version, snapshot.Key(changed), snapshot.Key(all[0]))
	}
	if m = next(); !m.GetHeartbeat() || m.GetVersion() != v2.Version {
		t.Fatalf("message after the change %v; want a heartbeat at version %d", m, v2.Version)
	}
	hub.Close()
	for stream.Receive() {
		if !stream.Msg().GetHeartbeat() {
			t.Fatalf("after Close: %v", stream.Msg())
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream ended with %v after Close; want a normal end", err)
	}
}
