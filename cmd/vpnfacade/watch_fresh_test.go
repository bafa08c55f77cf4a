package main_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

// TestWatchHeartbeatFreshnessEveryReplica watches two replicas sharing
// Redis, one of which refreshes, while the emulator changes nothing: the
// refreshes confirm the snapshot without a new version, and the heartbeats
// of both replicas, over each protocol, carry the later refresh times at
// the same version.
func TestWatchHeartbeatFreshnessEveryReplica(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s := startSim(t, 20, ec2sim.Options{})
	rds := redistest.Start(t)
	fs := startReplicas(t, s, rds.URL(), 2, "--watch-heartbeat", "200ms")
	for i, f := range fs {
		for protocol, c := range clients(f.url) {
			name := fmt.Sprintf("replica %d %s", i, protocol)
			stream, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var initial *clientvpnv1.WatchClientVpnEndpointsResponse
			for stream.Receive() {
				m := stream.Msg()
				if initial == nil && m.GetInitialComplete() {
					initial = m
					continue
				}
				if initial == nil {
					continue
				}
				if m.GetVersion() != initial.GetVersion() || !m.GetHeartbeat() {
					t.Fatalf("%s: %v after the initial state at version %d; the emulator changed nothing: want heartbeats at that version", name, m, initial.GetVersion())
				}
				if m.GetRefreshedAt() == nil {
					t.Fatalf("%s: heartbeat %v carries no refresh time", name, m)
				}
				if at := m.GetRefreshedAt().AsTime(); at.After(initial.GetRefreshedAt().AsTime()) {
					t.Logf("%s: version %d refreshed at %s, then at %s", name, m.GetVersion(), initial.GetRefreshedAt().AsTime(), at)
					break
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			stream.Close()
		}
	}
}
