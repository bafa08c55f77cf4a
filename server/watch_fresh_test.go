package server_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/server"
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

// serveWatch serves st with a watch hub sending heartbeats every heartbeat.
func serveWatch(t *testing.T, st watchStore, heartbeat time.Duration) string {
	t.Helper()
	reader := server.NewReader(server.ReaderOptions{Store: st})
	hub, err := server.NewWatchHub(server.WatchOptions{Reader: reader, Log: st, Heartbeat: heartbeat})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	return startServer(t, server.NewHandler(server.Options{Reader: reader, Watch: hub}))
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
			url := serveWatch(t, follower, 20*time.Millisecond)
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
