package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// TestWatchMetrics follows the watch metrics as a watcher connects, takes
// its initial state, receives changes and heartbeats, as another never
// reads and is reset for lagging, and as a third resumes from a version
// past the log's retention.
func TestWatchMetrics(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	st := store.NewMemoryOptions(store.MemoryOptions{ChangeLogLength: 3})
	// Changes of 200 endpoints fill a stalled stream's HTTP/2 window, and
	// then its one-message queue, within a few versions. The initial state
	// is one endpoint, so that the stalled watcher gets past it.
	eps := endpointtest.Varied(200, 17)
	prev, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps[:1])})
	if err != nil {
		t.Fatal(err)
	}
	first := prev.Version
	url, _ := serveWatch(t, st, server.WatchOptions{Queue: 1, Heartbeat: 50 * time.Millisecond, Registerer: reg})
	c := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url, connect.WithGRPC())
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		v, ok := counterValue(t, reg, name, labels)
		if !ok {
			t.Fatalf("no series %s%v", name, labels)
		}
		return v
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	watchers := func() float64 { return value("vpnfacade_watchers", nil) }
	kind := func(k string) float64 {
		return value("vpnfacade_watch_messages_sent_total", map[string]string{"kind": k})
	}
	resets := func(r string) float64 { return value("vpnfacade_watch_resets_total", map[string]string{"reason": r}) }
	delays := func() float64 { return value("vpnfacade_watch_delivery_delay_seconds", nil) }
	if watchers() != 0 || kind("initial") != 0 || resets("lagging") != 0 {
		t.Fatalf("before any watcher: %v watchers, %v initial messages, %v resets", watchers(), kind("initial"), resets("lagging"))
	}

	readerCtx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	reading, err := c.WatchClientVpnEndpoints(readerCtx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for reading.Receive() && !reading.Msg().GetInitialComplete() {
	}
	// One message with the endpoint, then the marker (counted once sent:
	// the client may read it first).
	eventually("the initial state counted", func() bool { return kind("initial") == 2 })
	if w, k, n := watchers(), kind("initial"), value("vpnfacade_watch_endpoints_sent_total", map[string]string{"change": "initial"}); w != 1 || k != 2 || n != 1 {
		t.Fatalf("after one initial state: %v watchers, %v initial messages, %v initial endpoints; want 1, 2, 1", w, k, n)
	}
	received := make(chan *clientvpnv1.WatchClientVpnEndpointsResponse, 100)
	go func() {
		for reading.Receive() {
			received <- reading.Msg()
		}
		close(received)
	}()

	stalledCtx, stopStalled := context.WithCancel(ctx)
	defer stopStalled()
	// Its own connection, with a small window and uncompressed messages,
	// so that few messages fill the window.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	small := &http.Client{Transport: &http.Transport{Protocols: &protocols, HTTP2: &http.HTTP2Config{
		MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10,
	}}}
	stalled, err := clientvpnv1connect.NewClientVpnServiceClient(small, url, connect.WithGRPC(), connect.WithAcceptCompression("gzip", nil, nil)).
		WatchClientVpnEndpoints(stalledCtx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_ = stalled // never read
	eventually("the second watcher counted", func() bool { return watchers() == 2 })

	for i := 0; resets("lagging") == 0; i++ {
		if i == 50 {
			t.Fatal("a watcher that never reads was not reset after 50 versions of 200 changes")
		}
		next := endpointtest.Clones(eps)
		d := snapshot.Diff{}
		for j, e := range next {
			e.VpcId = proto.String("vpc-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
			if i == 0 && j > 0 {
				d.Added = append(d.Added, snapshot.Key(e)) // the first version adds all but one
			} else {
				d.Modified = append(d.Modified, snapshot.Key(e))
			}
		}
		if prev, err = st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: next, Base: prev, Diff: d}); err != nil {
			t.Fatal(err)
		}
		// The reading watcher gets every version's change (then the
		// fan-out is done with it: the short log never gaps).
		for m := range received {
			if m.GetVersion() == prev.Version && !m.GetHeartbeat() {
				break
			}
		}
	}
	if r := resets("log_gap"); r != 0 {
		t.Fatalf("%v log_gap resets, want none", r)
	}
	changes := float64(prev.Version - first)
	if k, n, d := kind("change"), value("vpnfacade_watch_endpoints_sent_total", map[string]string{"change": "modified"}), delays(); k < changes || n < 200*(changes-1) || d < changes {
		t.Fatalf("after %v changes of 200 endpoints: %v change messages, %v modified endpoints, %v delays observed; want at least %v, %v, %v", changes, k, n, d, changes, 200*(changes-1), changes)
	}
	for m := range received {
		if m.GetHeartbeat() {
			break
		}
	}
	// The stream counts a message once it is sent: the client may read it
	// first.
	eventually("the heartbeat that arrived counted", func() bool { return kind("heartbeat") >= 1 })

	// Resuming from the first version, past the log's 3 versions.
	if resets("too_old") != 0 {
		t.Fatalf("%v too_old resets before any resume", resets("too_old"))
	}
	resumed, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{ResumeFromVersion: proto.Uint64(first)})
	if err != nil {
		t.Fatal(err)
	}
	if !resumed.Receive() || !resumed.Msg().GetReset_() {
		t.Fatalf("resume from version %d past the retention: %v (%v); want a reset", first, resumed.Msg(), resumed.Err())
	}
	if resets("too_old") != 1 {
		t.Fatalf("%v too_old resets after one resume past the retention, want 1", resets("too_old"))
	}
	resumed.Close()
	stopReader()
	stopStalled()
	eventually("every watcher gone", func() bool { return watchers() == 0 })
}
