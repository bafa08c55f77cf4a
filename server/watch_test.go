package server_test

import (
	"context"
	"slices"
	"strings"
	"sync"
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
	t.Parallel()
	ctx := t.Context()
	st := store.NewMemory()
	eps := endpointtest.Varied(2500, 3)
	v1, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps)})
	if err != nil {
		t.Fatal(err)
	}
	url, hub := serveWatch(t, st, server.WatchOptions{Heartbeat: 20 * time.Millisecond})
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

// TestWatchResumePastTheRetentionAge resumes watchers from versions whose
// changes the log kept for less than its age: the one from before the
// oldest kept change gets a fresh initial state flagged as a reset, the
// one after it gets the change it missed.
func TestWatchResumePastTheRetentionAge(t *testing.T) {
	ctx := t.Context()
	const age = time.Hour
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st := store.NewMemoryOptions(store.MemoryOptions{ChangeLogAge: age, Now: clock})
	eps := endpointtest.Varied(3, 5)
	var prev *snapshot.Snapshot
	publish := func(n int) *snapshot.Snapshot {
		t.Helper()
		d := snapshot.Diff{}
		if prev != nil {
			d.Added = []string{snapshot.Key(eps[n-1])}
		}
		snap, err := st.Publish(ctx, store.Publication{RefreshedAt: clock(), Endpoints: endpointtest.Clones(eps[:n]), Diff: d, Base: prev})
		if err != nil {
			t.Fatal(err)
		}
		prev = snap
		return snap
	}
	v1 := publish(1)
	v2 := publish(2)
	mu.Lock()
	now = now.Add(age + time.Second) // v2's change is past the age
	mu.Unlock()
	v3 := publish(3)

	url, _ := serveWatch(t, st, server.WatchOptions{})
	c := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url)
	first := func(from uint64) (*clientvpnv1.WatchClientVpnEndpointsResponse, []*clientvpnv1.WatchClientVpnEndpointsResponse) {
		t.Helper()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{ResumeFromVersion: proto.Uint64(from)})
		if err != nil {
			t.Fatal(err)
		}
		var initial []*clientvpnv1.WatchClientVpnEndpointsResponse
		for stream.Receive() {
			m := stream.Msg()
			if !m.GetInitial() {
				return m, initial
			}
			if initial = append(initial, m); m.GetInitialComplete() {
				return nil, initial
			}
		}
		t.Fatalf("stream ended: %v", stream.Err())
		return nil, nil
	}

	change, initial := first(v2.Version)
	if len(initial) != 0 || change.GetVersion() != v3.Version || len(change.GetAdded()) != 1 || !proto.Equal(change.GetAdded()[0], eps[2]) {
		t.Fatalf("resume from %d (its change within the age): initial %v, then %v; want the change to %d adding %s", v2.Version, initial, change, v3.Version, snapshot.Key(eps[2]))
	}
	_, initial = first(v1.Version)
	if len(initial) != 2 || !initial[0].GetReset_() || len(initial[0].GetAdded()) != 3 || !initial[1].GetReset_() || initial[1].GetVersion() != v3.Version {
		t.Fatalf("resume from %d (the change after it past the age): %v; want a reset initial state of 3 endpoints at version %d", v1.Version, initial, v3.Version)
	}
}

// TestWatchEncodedOnceEveryCodec has watchers of every protocol and codec,
// two of each, share one change (encoded once per codec by the fan-out)
// and each decode it to the same message.
func TestWatchEncodedOnceEveryCodec(t *testing.T) {
	ctx := t.Context()
	st := store.NewMemory()
	eps := endpointtest.Varied(5, 23)
	v1, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps[:4])})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := serveWatch(t, st, server.WatchOptions{})
	h2c := h2cClient()
	clients := map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect":       clientvpnv1connect.NewClientVpnServiceClient(h2c, url),
		"connect-json":  clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithProtoJSON()),
		"grpc":          clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPC()),
		"grpc-json":     clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPC(), connect.WithProtoJSON()),
		"grpc-web":      clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPCWeb()),
		"grpc-web-json": clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPCWeb(), connect.WithProtoJSON()),
	}
	type watch struct {
		name   string
		stream *connect.ServerStreamForClient[clientvpnv1.WatchClientVpnEndpointsResponse]
	}
	var watches []watch
	for name, c := range clients {
		for range 2 {
			// Filtered on the VPC of endpoint 1, so that the change below
			// is one removal and one modification for these watchers.
			s, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{
				Filters: []*clientvpnv1.Filter{{Name: "vpc-id", Values: []string{eps[1].GetVpcId(), "vpc-moved"}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			// The initial state, from the snapshot's encodings in either
			// codec: the endpoints matching the filter.
			var initial []*clientvpnv1.ClientVpnEndpoint
			for s.Receive() && !s.Msg().GetInitialComplete() {
				initial = append(initial, s.Msg().GetAdded()...)
			}
			if s.Err() != nil {
				t.Fatalf("%s: %v", name, s.Err())
			}
			var want []*clientvpnv1.ClientVpnEndpoint
			for _, e := range eps[:4] {
				if e.GetVpcId() == eps[1].GetVpcId() {
					want = append(want, e)
				}
			}
			slices.SortFunc(initial, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
				return strings.Compare(snapshot.Key(a), snapshot.Key(b))
			})
			slices.SortFunc(want, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
				return strings.Compare(snapshot.Key(a), snapshot.Key(b))
			})
			if !slices.EqualFunc(initial, want, func(a, b *clientvpnv1.ClientVpnEndpoint) bool { return proto.Equal(a, b) }) {
				t.Fatalf("%s: initial state %v, want %v", name, initial, want)
			}
			watches = append(watches, watch{name, s})
		}
	}
	// Every stream is registered once its initial state is complete and
	// the fan-out is at v1 (it is: nothing else was published).
	all, err := v1.Messages()
	if err != nil {
		t.Fatal(err)
	}
	moved := proto.CloneOf(all[2])
	moved.VpcId = proto.String("vpc-moved")
	next := []*clientvpnv1.ClientVpnEndpoint{all[0], moved, all[3], eps[4]}
	v2, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: next, Base: v1, Diff: snapshot.Diff{
		Added: []string{snapshot.Key(eps[4])}, Modified: []string{snapshot.Key(moved)}, Deleted: []string{snapshot.Key(all[1])},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var want *clientvpnv1.WatchClientVpnEndpointsResponse
	for _, w := range watches {
		if !w.stream.Receive() {
			t.Fatalf("%s: stream ended: %v", w.name, w.stream.Err())
		}
		got := w.stream.Msg()
		if got.GetVersion() != v2.Version {
			t.Fatalf("%s: message %v, want the change to version %d", w.name, got, v2.Version)
		}
		if want == nil {
			want = got
			continue
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: %v\nwant (as another watcher got it) %v", w.name, got, want)
		}
	}
	// What the change is for the filter, worked out from the endpoints.
	in := func(e *clientvpnv1.ClientVpnEndpoint) bool {
		return e.GetVpcId() == eps[1].GetVpcId() || e.GetVpcId() == "vpc-moved"
	}
	exact := &clientvpnv1.WatchClientVpnEndpointsResponse{Version: v2.Version, RefreshedAt: want.GetRefreshedAt()}
	if in(eps[4]) {
		exact.Added = append(exact.Added, eps[4])
	}
	if in(all[2]) {
		exact.Modified = append(exact.Modified, moved)
	} else {
		exact.Added = append(exact.Added, moved)
	}
	if in(all[1]) {
		exact.Removed = append(exact.Removed, &clientvpnv1.ClientVpnEndpointKey{ClientVpnEndpointId: all[1].GetClientVpnEndpointId(), Region: all[1].GetRegion(), AccountId: all[1].GetAccountId()})
	}
	if !proto.Equal(want, exact) {
		t.Fatalf("the change every watcher got: %v\nwant %v", want, exact)
	}
}
