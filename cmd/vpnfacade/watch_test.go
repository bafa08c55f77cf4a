package main_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// watchTimeout bounds how long a watcher may wait for one change to arrive:
// a refresh (every 200 ms here) plus scheduling on a loaded machine.
const watchTimeout = 30 * time.Second

// watchState is what a watch client holds, built only from the stream's
// messages, checking each against what it holds already: an addition of an
// endpoint held, or a modification or removal of one not held, is a
// duplicate or a gap.
type watchState struct {
	t         *testing.T
	name      string
	stream    *connect.ServerStreamForClient[clientvpnv1.WatchClientVpnEndpointsResponse]
	held      map[string]*clientvpnv1.ClientVpnEndpoint
	version   uint64
	initial   bool // an initial state is being received
	resets    int
	log       []*clientvpnv1.WatchClientVpnEndpointsResponse // changes since the last take
	heartbeat int
}

func keyOfKey(k *clientvpnv1.ClientVpnEndpointKey) string {
	return k.GetAccountId() + "/" + k.GetRegion() + "/" + k.GetClientVpnEndpointId()
}

func openWatch(ctx context.Context, t *testing.T, name string, c clientvpnv1connect.ClientVpnServiceClient, req *clientvpnv1.WatchClientVpnEndpointsRequest) *watchState {
	t.Helper()
	stream, err := c.WatchClientVpnEndpoints(ctx, req)
	if err != nil {
		t.Fatalf("%s: WatchClientVpnEndpoints: %v", name, err)
	}
	return &watchState{t: t, name: name, stream: stream, held: map[string]*clientvpnv1.ClientVpnEndpoint{}, version: req.GetResumeFromVersion()}
}

// receive reads one message and applies it.
func (w *watchState) receive() {
	w.t.Helper()
	if !w.stream.Receive() {
		w.t.Fatalf("%s: stream ended: %v", w.name, w.stream.Err())
	}
	msg := w.stream.Msg()
	if msg.GetVersion() < w.version {
		w.t.Fatalf("%s: version went back from %d to %d", w.name, w.version, msg.GetVersion())
	}
	switch {
	case msg.GetHeartbeat():
		w.heartbeat++
		w.version = msg.GetVersion()
		return
	case msg.GetInitial():
		if !w.initial {
			w.initial = true
			w.held = map[string]*clientvpnv1.ClientVpnEndpoint{}
			if msg.GetReset_() {
				w.resets++
			}
		}
		for _, e := range msg.GetAdded() {
			w.held[snapshot.Key(e)] = e
		}
		if msg.GetInitialComplete() {
			w.initial = false
			w.version = msg.GetVersion()
		}
		return
	}
	if w.initial {
		w.t.Fatalf("%s: a change arrived inside an initial state", w.name)
	}
	if msg.GetVersion() == w.version {
		w.t.Fatalf("%s: two changes bring the client to version %d", w.name, w.version)
	}
	for _, e := range msg.GetAdded() {
		if _, ok := w.held[snapshot.Key(e)]; ok {
			w.t.Fatalf("%s: version %d adds %s, which the client holds", w.name, msg.GetVersion(), snapshot.Key(e))
		}
		w.held[snapshot.Key(e)] = e
	}
	for _, e := range msg.GetModified() {
		if _, ok := w.held[snapshot.Key(e)]; !ok {
			w.t.Fatalf("%s: version %d modifies %s, which the client does not hold", w.name, msg.GetVersion(), snapshot.Key(e))
		}
		w.held[snapshot.Key(e)] = e
	}
	for _, k := range msg.GetRemoved() {
		if _, ok := w.held[keyOfKey(k)]; !ok {
			w.t.Fatalf("%s: version %d removes %s, which the client does not hold", w.name, msg.GetVersion(), keyOfKey(k))
		}
		delete(w.held, keyOfKey(k))
	}
	w.version = msg.GetVersion()
	w.log = append(w.log, msg)
}

// until receives until the held set equals want.
func (w *watchState) until(want map[string]*clientvpnv1.ClientVpnEndpoint) {
	w.t.Helper()
	for w.initial || !sameEndpoints(w.held, want) {
		w.receive()
	}
}

// takeChanges returns the keys added, modified and removed by the changes
// received since the last call.
func (w *watchState) takeChanges() (added, modified, removed []string) {
	for _, msg := range w.log {
		for _, e := range msg.GetAdded() {
			added = append(added, snapshot.Key(e))
		}
		for _, e := range msg.GetModified() {
			modified = append(modified, snapshot.Key(e))
		}
		for _, k := range msg.GetRemoved() {
			removed = append(removed, keyOfKey(k))
		}
	}
	w.log = nil
	slices.Sort(added)
	slices.Sort(modified)
	slices.Sort(removed)
	return added, modified, removed
}

func sameEndpoints(a, b map[string]*clientvpnv1.ClientVpnEndpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for k, e := range a {
		if !proto.Equal(e, b[k]) {
			return false
		}
	}
	return true
}

// simState is the emulator's data by key, optionally narrowed.
func simState(s *sim, keep func(*clientvpnv1.ClientVpnEndpoint) bool) map[string]*clientvpnv1.ClientVpnEndpoint {
	out := map[string]*clientvpnv1.ClientVpnEndpoint{}
	for _, p := range s.Partitions() {
		for _, e := range s.Endpoints(p.AccountID, p.Region) {
			if keep == nil || keep(e) {
				out[snapshot.Key(e)] = e
			}
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// netMutation is what one round of the emulator's changes did to its data
// as a whole: an endpoint changed twice is modified once, one added and
// changed is added, one added and deleted is not there. Lists are sorted.
func netMutation(m ec2sim.Mutation) ec2sim.Mutation {
	in := func(list []string, k string) bool { return slices.Contains(list, k) }
	var out ec2sim.Mutation
	for _, k := range m.Added {
		if !in(m.Deleted, k) {
			out.Added = append(out.Added, k)
		}
	}
	for _, k := range m.Modified {
		if !in(m.Added, k) && !in(m.Deleted, k) {
			out.Modified = append(out.Modified, k)
		}
	}
	for _, k := range m.Deleted {
		if !in(m.Added, k) {
			out.Deleted = append(out.Deleted, k)
		}
	}
	out.Added, out.Modified, out.Deleted = slices.Compact(sorted(out.Added)), slices.Compact(sorted(out.Modified)), slices.Compact(sorted(out.Deleted))
	return out
}

// TestWatchEveryProtocolEveryReplica watches two replicas sharing Redis,
// one of which refreshes, over Connect, gRPC and gRPC-Web: each watcher
// sees exactly the emulator's additions, modifications and deletions.
func TestWatchEveryProtocolEveryReplica(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	s := startSim(t, 60, ec2sim.Options{})
	rds := redistest.Start(t)
	fs := startReplicas(t, s, rds.URL(), 2)

	var watchers []*watchState
	for i, f := range fs {
		for proto, c := range clients(f.url) {
			watchers = append(watchers, openWatch(ctx, t, fmt.Sprintf("replica %d %s", i, proto), c, &clientvpnv1.WatchClientVpnEndpointsRequest{}))
		}
	}
	want := simState(s, nil)
	for _, w := range watchers {
		w.until(want)
	}
	for round := range 3 {
		mut := netMutation(s.Mutate(6))
		want = simState(s, nil)
		for _, w := range watchers {
			w.until(want)
			added, modified, removed := w.takeChanges()
			if !slices.Equal(added, mut.Added) || !slices.Equal(modified, mut.Modified) || !slices.Equal(removed, mut.Deleted) {
				t.Errorf("round %d, %s: saw added %v modified %v removed %v; the emulator added %v modified %v deleted %v",
					round, w.name, added, modified, removed, mut.Added, mut.Modified, mut.Deleted)
			}
		}
	}
}

// TestWatchFilterAppearDisappear watches a tag filter: an endpoint tagged
// to match is an addition, untagged a removal, though it still exists.
func TestWatchFilterAppearDisappear(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	s := startSim(t, 30, ec2sim.Options{})
	f := startFacade(t, s, "", "--refresh-interval", "200ms")
	waitServing(t, f.url)
	watched := func(e *clientvpnv1.ClientVpnEndpoint) bool {
		return slices.ContainsFunc(e.GetTags(), func(tg *clientvpnv1.Tag) bool { return tg.GetKey() == "watch" && tg.GetValue() == "yes" })
	}
	for name, c := range clients(f.url) {
		w := openWatch(ctx, t, name, c, &clientvpnv1.WatchClientVpnEndpointsRequest{
			Filters: []*clientvpnv1.Filter{{Name: "tag:watch", Values: []string{"yes"}}},
		})
		w.until(simState(s, watched))
		if len(w.held) != 0 {
			t.Fatalf("%s: initial state holds %d endpoints; none is tagged watch=yes", name, len(w.held))
		}
		target := proto.CloneOf(s.data[len(s.data)-1])
		if name == "grpc" {
			target = proto.CloneOf(s.data[len(s.data)-2])
		}
		key := snapshot.Key(target)
		target = simState(s, nil)[key]
		tagged := proto.CloneOf(target)
		tagged.Tags = append(tagged.Tags, &clientvpnv1.Tag{Key: proto.String("watch"), Value: proto.String("yes")})
		if err := s.Put(tagged); err != nil {
			t.Fatal(err)
		}
		w.until(simState(s, watched))
		if added, modified, removed := w.takeChanges(); !slices.Equal(added, []string{key}) || len(modified)+len(removed) != 0 {
			t.Errorf("%s: tagging %s showed added %v modified %v removed %v; want it added", name, key, added, modified, removed)
		}
		if err := s.Put(target); err != nil {
			t.Fatal(err)
		}
		w.until(simState(s, watched))
		if added, modified, removed := w.takeChanges(); !slices.Equal(removed, []string{key}) || len(added)+len(modified) != 0 {
			t.Errorf("%s: untagging %s showed added %v modified %v removed %v; want it removed", name, key, added, modified, removed)
		}
		if _, ok := simState(s, nil)[key]; !ok {
			t.Fatalf("%s: %s no longer exists in the emulator", name, key)
		}
	}
}

// TestWatchResume disconnects a watcher, changes the data over two
// refreshes and resumes: the missed versions are replayed, nothing twice,
// nothing missing. A version older than the log's retention gets a reset.
func TestWatchResume(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	s := startSim(t, 40, ec2sim.Options{})
	rds := redistest.Start(t)
	f := startFacade(t, s, rds.URL(), "--refresh-interval", "200ms", "--watch-retention", "5")
	waitServing(t, f.url)
	c := clients(f.url)["connect"]

	first := openWatch(ctx, t, "first", c, &clientvpnv1.WatchClientVpnEndpointsRequest{})
	first.until(simState(s, nil))
	held, at := first.held, first.version
	first.stream.Close()

	// Two rounds of changes, each seen by a second watcher, so that the
	// first misses at least two versions that change something.
	probe := openWatch(ctx, t, "probe", c, &clientvpnv1.WatchClientVpnEndpointsRequest{})
	probe.until(simState(s, nil))
	var missedAdded, missedModified, missedRemoved []string
	for range 2 {
		mut := netMutation(s.Mutate(4))
		probe.until(simState(s, nil))
		missedAdded = append(missedAdded, mut.Added...)
		missedModified = append(missedModified, mut.Modified...)
		missedRemoved = append(missedRemoved, mut.Deleted...)
	}
	probe.stream.Close()

	resumed := openWatch(ctx, t, "resumed", c, &clientvpnv1.WatchClientVpnEndpointsRequest{ResumeFromVersion: proto.Uint64(at)})
	resumed.held = held
	resumed.until(simState(s, nil))
	if resumed.resets != 0 {
		t.Fatalf("resuming from version %d within retention sent a reset", at)
	}
	added, modified, removed := resumed.takeChanges()
	if len(added)+len(removed)+len(modified) == 0 || !slices.Equal(added, sorted(missedAdded)) ||
		!slices.Equal(modified, sorted(missedModified)) || !slices.Equal(removed, sorted(missedRemoved)) {
		t.Errorf("resume replayed added %v modified %v removed %v; the emulator added %v modified %v deleted %v",
			added, modified, removed, missedAdded, missedModified, missedRemoved)
	}
	resumed.stream.Close()

	// Refreshes publish a version when something changed; once more than
	// 5 versions are published, version at is out of the log.
	waitUntil(t, 60*time.Second, "6 more versions", func() bool {
		s.Mutate(1)
		info, err := snapshotOf(t, f.url)
		return err == nil && info.GetVersion() > resumed.version+6
	})
	old := openWatch(ctx, t, "too old", c, &clientvpnv1.WatchClientVpnEndpointsRequest{ResumeFromVersion: proto.Uint64(at)})
	old.held = maps.Clone(held)
	old.receive()
	if !old.initial && old.resets == 0 {
		t.Fatalf("resuming from version %d, out of a log of 5 versions, did not start with a reset", at)
	}
	old.until(simState(s, nil))
	if old.resets != 1 {
		t.Fatalf("resuming from a version older than retention: %d resets, want 1", old.resets)
	}
}

// TestWatchStalledWatcher opens a watcher that never reads, with a small
// flow-control window and queue: the other watchers keep receiving every
// change, and the stalled one, once it reads, is reset.
func TestWatchStalledWatcher(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	s := startSim(t, 400, ec2sim.Options{})
	f := startFacade(t, s, "", "--refresh-interval", "200ms", "--watch-queue", "1")
	waitServing(t, f.url)

	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	small := &http.Client{Transport: &http.Transport{Protocols: &protocols, HTTP2: &http.HTTP2Config{
		MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10,
	}}}
	stalled := openWatch(ctx, t, "stalled", clientvpnv1connect.NewClientVpnServiceClient(small, f.url, connect.WithGRPC(),
		connect.WithAcceptCompression("gzip", nil, nil), // uncompressed, so that few messages fill the window
	), &clientvpnv1.WatchClientVpnEndpointsRequest{})
	other := openWatch(ctx, t, "other", clients(f.url)["grpc"], &clientvpnv1.WatchClientVpnEndpointsRequest{})
	other.until(simState(s, nil))
	stalled.until(simState(s, nil))
	// From here on, stalled reads nothing until the end.
	for range 4 {
		s.Mutate(150)
		other.until(simState(s, nil))
	}
	stalled.until(simState(s, nil))
	if stalled.resets == 0 {
		t.Fatalf("a watcher that did not read through 4 versions of 150 changes with a queue of 1 was not reset")
	}
}

// TestWatchSIGTERM ends a watch stream normally on SIGTERM.
func TestWatchSIGTERM(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := startSim(t, 10, ec2sim.Options{})
	f := startFacadeProcess(t, s, "", nil)
	waitServing(t, f.url)
	for name, c := range clients(f.url) {
		w := openWatch(ctx, t, name, c, &clientvpnv1.WatchClientVpnEndpointsRequest{})
		w.until(simState(s, nil))
		defer func() {
			if w.stream.Receive() {
				t.Errorf("%s: a message after SIGTERM: %v", name, w.stream.Msg())
			}
			if err := w.stream.Err(); err != nil {
				t.Errorf("%s: stream ended with %v on SIGTERM, want a normal end", name, err)
			}
		}()
	}
	f.Signal(syscall.SIGTERM)
	defer func() {
		if err := f.Stop(15 * time.Second); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("stop: %v", err)
		}
	}()
}

// TestWatchErrors checks the request as List does and bounds the streams
// of one client address.
func TestWatchErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := startSim(t, 10, ec2sim.Options{})
	f := startFacade(t, s, "", "--max-watchers-per-address", "2")
	waitServing(t, f.url)
	for name, c := range clients(f.url) {
		for _, tc := range []struct {
			req  *clientvpnv1.WatchClientVpnEndpointsRequest
			code connect.Code
			says string
		}{
			{&clientvpnv1.WatchClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "colour", Values: []string{"red"}}}}, connect.CodeInvalidArgument, "colour"},
			{&clientvpnv1.WatchClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "vpc-id"}}}, connect.CodeInvalidArgument, "no values"},
			{&clientvpnv1.WatchClientVpnEndpointsRequest{ClientVpnEndpointIds: []string{"cvpn-endpoint-00000000000000000"}}, connect.CodeNotFound, "cvpn-endpoint-00000000000000000"},
		} {
			stream, err := c.WatchClientVpnEndpoints(ctx, tc.req)
			if err == nil {
				if stream.Receive() {
					t.Fatalf("%s: %v: got a message, want %v", name, tc.req, tc.code)
				}
				err = stream.Err()
			}
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%s: %v: error %v; want %v saying %q", name, tc.req, err, tc.code, tc.says)
			}
		}
	}
	c := clients(f.url)["grpc"]
	for i := range 2 {
		openWatch(ctx, t, fmt.Sprint("stream ", i), c, &clientvpnv1.WatchClientVpnEndpointsRequest{}).until(simState(s, nil))
	}
	stream, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
	if err == nil {
		stream.Receive()
		err = stream.Err()
	}
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("a third stream from one address with --max-watchers-per-address 2: %v, want ResourceExhausted", err)
	}
}
