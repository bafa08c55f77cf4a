package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
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

// watchStore is a store that watch hubs can follow.
type watchStore interface {
	store.Store
	store.ChangeLog
}

// watchClients are a real client of each protocol.
func watchClients(url string) map[string]clientvpnv1connect.ClientVpnServiceClient {
	h2c := h2cClient()
	return map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect":  clientvpnv1connect.NewClientVpnServiceClient(h2c, url),
		"grpc":     clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPC()),
		"grpc-web": clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPCWeb()),
	}
}

// serveWatch serves st, reads and watches, over HTTP on loopback, with a
// watch hub configured by opts (its Reader and Log are st's), and returns
// the server's URL and the hub.
func serveWatch(t testing.TB, st watchStore, opts server.WatchOptions) (string, *server.WatchHub) {
	t.Helper()
	reader := server.NewReader(server.ReaderOptions{Store: st})
	opts.Reader, opts.Log = reader, st
	hub, err := server.NewWatchHub(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	return startServer(t, server.NewHandler(server.Options{Reader: reader, Watch: hub})), hub
}

// receiver reads a watch stream's messages, failing the test when it ends.
func receiver(t *testing.T, name string, stream *connect.ServerStreamForClient[clientvpnv1.WatchClientVpnEndpointsResponse]) func() *clientvpnv1.WatchClientVpnEndpointsResponse {
	return func() *clientvpnv1.WatchClientVpnEndpointsResponse {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("%s: stream ended: %v", name, stream.Err())
		}
		return stream.Msg()
	}
}

// TestWatchHeartbeatCarriesConfirmedRefresh confirms the current snapshot
// (a refresh that found nothing changed: no new version) while a watcher of
// each protocol is connected: its heartbeats carry the snapshot's refresh
// time, then the confirmation's, at the same version. With Redis the
// watchers are served by a replica that only follows what another one
// writes.
func TestWatchHeartbeatCarriesConfirmedRefresh(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	for name, stores := range map[string]func(*testing.T) (writer, follower watchStore){
		"memory": func(*testing.T) (watchStore, watchStore) { st := store.NewMemory(); return st, st },
		"redis follower": func(t *testing.T) (watchStore, watchStore) {
			return storetest.Redis(t, rds.URL(), t.Name()), storetest.Redis(t, rds.URL(), t.Name())
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			writer, follower := stores(t)
			published := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
			v1, err := writer.Publish(ctx, store.Publication{RefreshedAt: published, Endpoints: endpointtest.Varied(3, 11)})
			if err != nil {
				t.Fatal(err)
			}
			url, _ := serveWatch(t, follower, server.WatchOptions{Heartbeat: 20 * time.Millisecond})
			next := map[string]func() *clientvpnv1.WatchClientVpnEndpointsResponse{}
			for protocol, c := range watchClients(url) {
				stream, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				next[protocol] = receiver(t, protocol, stream)
				for m := next[protocol](); !m.GetInitialComplete(); m = next[protocol]() {
				}
			}
			// Heartbeats before the confirmation: the publish's time.
			for protocol, receive := range next {
				m := receive()
				if !m.GetHeartbeat() || m.GetVersion() != v1.Version || !m.GetRefreshedAt().AsTime().Equal(published) {
					t.Fatalf("%s: %v; want a heartbeat at version %d refreshed at %s", protocol, m, v1.Version, published)
				}
			}

			confirmed := published.Add(30 * time.Second)
			if _, err := writer.Confirm(ctx, store.Confirmation{Version: v1.Version, RefreshedAt: confirmed, Partitions: v1.Partitions}); err != nil {
				t.Fatal(err)
			}
			for protocol, receive := range next {
				for {
					m := receive()
					if !m.GetHeartbeat() || m.GetVersion() != v1.Version {
						t.Fatalf("%s: after a confirmation of version %d: %v; want heartbeats at that version", protocol, v1.Version, m)
					}
					at := m.GetRefreshedAt().AsTime()
					if at.Equal(confirmed) {
						break
					}
					if !at.Equal(published) {
						t.Fatalf("%s: heartbeat refreshed at %s; want %s, then the confirmation's %s", protocol, at, published, confirmed)
					}
				}
			}
		})
	}
}

// TestWatchResumeEndsWithHeartbeat resumes watchers of each protocol from
// versions the log holds: after the changes they missed (none when they
// resume from the current version) each gets a heartbeat at the current
// version, with its latest refresh time, at once (the heartbeat interval is
// an hour). A resume that cannot be honoured gets a reset and no extra
// heartbeat.
func TestWatchResumeEndsWithHeartbeat(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	st := store.NewMemory()
	eps := endpointtest.Varied(5, 7)
	refreshed := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	var versions []*snapshot.Snapshot
	publish := func(n int) {
		t.Helper()
		pub := store.Publication{RefreshedAt: refreshed.Add(time.Duration(n) * time.Minute), Endpoints: endpointtest.Clones(eps[:n])}
		if len(versions) > 0 {
			pub.Base = versions[len(versions)-1]
			pub.Diff = snapshot.Diff{Added: []string{snapshot.Key(eps[n-1])}}
		}
		v, err := st.Publish(ctx, pub)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	publish(1)
	publish(2)
	publish(3)
	current := versions[2]
	confirmed := refreshed.Add(time.Hour)
	if _, err := st.Confirm(ctx, store.Confirmation{Version: current.Version, RefreshedAt: confirmed, Partitions: current.Partitions}); err != nil {
		t.Fatal(err)
	}
	url, _ := serveWatch(t, st, server.WatchOptions{Heartbeat: time.Hour})

	for protocol, c := range watchClients(url) {
		for missed := range 3 {
			from := versions[2-missed].Version
			name := fmt.Sprintf("%s resuming from version %d", protocol, from)
			stream, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{ResumeFromVersion: proto.Uint64(from)})
			if err != nil {
				t.Fatal(err)
			}
			receive := receiver(t, name, stream)
			for i := range missed {
				v := versions[3-missed+i]
				added := eps[3-missed+i]
				m := receive()
				want := &clientvpnv1.WatchClientVpnEndpointsResponse{Version: v.Version, Added: []*clientvpnv1.ClientVpnEndpoint{added}, RefreshedAt: m.GetRefreshedAt()}
				if !proto.Equal(m, want) {
					t.Fatalf("%s: replayed %v; want the change to version %d adding %s", name, m, v.Version, snapshot.Key(added))
				}
				wantAt := v.RefreshedAt
				if v == current {
					wantAt = confirmed // the current version's latest refresh, not its publish's
				}
				if !m.GetRefreshedAt().AsTime().Equal(wantAt) {
					t.Fatalf("%s: the change to version %d is refreshed at %s; want %s", name, v.Version, m.GetRefreshedAt().AsTime(), wantAt)
				}
			}
			if m := receive(); !m.GetHeartbeat() || m.GetVersion() != current.Version || !m.GetRefreshedAt().AsTime().Equal(confirmed) || m.GetInitial() {
				t.Fatalf("%s: after the replay %v; want a heartbeat at version %d refreshed at %s", name, m, current.Version, confirmed)
			}
			stream.Close()
		}
	}

	// Not honoured (a version this data set never had): a reset initial
	// state, then the next change, without a heartbeat in between.
	stream, err := watchClients(url)["connect"].WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{ResumeFromVersion: proto.Uint64(current.Version + 100)})
	if err != nil {
		t.Fatal(err)
	}
	receive := receiver(t, "reset", stream)
	for m := receive(); !m.GetInitialComplete(); m = receive() {
		if !m.GetReset_() {
			t.Fatalf("resume from an unknown version: %v; want a reset initial state", m)
		}
	}
	publish(4)
	if m := receive(); m.GetHeartbeat() || m.GetVersion() != versions[3].Version {
		t.Fatalf("after the reset initial state: %v; want the change to version %d", m, versions[3].Version)
	}
}
