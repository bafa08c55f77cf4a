package server

import (
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

func pendingSize(p *pendingEndpoints) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byID)
}

// A response whose endpoints a codec wrote once cannot be written again
// without them: the second write fails instead of sending an empty page.
func TestPreEncodedWrittenOnce(t *testing.T) {
	snap := endpointtest.Snapshot(t, 1, endpointtest.Rich(3, 1, "once"))
	var endpoints []*snapshot.Endpoint
	for e := range snap.All() {
		endpoints = append(endpoints, e)
	}
	for name, codec := range map[string]interface {
		MarshalAppend([]byte, any) ([]byte, error)
		Unmarshal([]byte, any) error
	}{"proto": protoCodec{}, "json": jsonCodec{}} {
		t.Run(name, func(t *testing.T) {
			p := newPendingEndpoints()
			switch c := codec.(type) {
			case protoCodec:
				c.pending = p
				codec = c
			case jsonCodec:
				c.pending = p
				codec = c
			}
			res := &clientvpnv1.ListClientVpnEndpointsResponse{NextToken: "tok"}
			attachEndpoints(p, res, endpoints)
			out, err := codec.MarshalAppend([]byte("kept:"), res)
			if err != nil {
				t.Fatal(err)
			}
			if string(out[:5]) != "kept:" {
				t.Fatalf("the codec overwrote what the buffer held: %q", out[:5])
			}
			got := &clientvpnv1.ListClientVpnEndpointsResponse{}
			if err := codec.Unmarshal(out[5:], got); err != nil {
				t.Fatalf("decode %s: %v", out[5:], err)
			}
			want := &clientvpnv1.ListClientVpnEndpointsResponse{NextToken: "tok", ClientVpnEndpoints: endpointtest.Messages(t, snap.All())}
			if !proto.Equal(got, want) {
				t.Fatalf("decoded %v\nwant %v", protojson.Format(got), protojson.Format(want))
			}
			if pendingSize(p) != 0 {
				t.Errorf("%d entries left after the write", pendingSize(p))
			}
			if out, err := codec.MarshalAppend(nil, res); err == nil {
				t.Errorf("second write succeeded: %q", out)
			}
		})
	}
}

// Responses a handler returned but no codec wrote (an interceptor replaced
// them) do not keep their endpoints, and so their snapshot, alive.
func TestPreEncodedUnwrittenResponsesAreForgotten(t *testing.T) {
	snap := endpointtest.Snapshot(t, 1, endpointtest.Rich(2, 1, "gone"))
	var endpoints []*snapshot.Endpoint
	for e := range snap.All() {
		endpoints = append(endpoints, e)
	}
	p := newPendingEndpoints()
	for range 100 {
		attachEndpoints(p, &clientvpnv1.GetClientVpnEndpointResponse{}, endpoints[:1])
	}
	if n := pendingSize(p); n != 100 {
		t.Fatalf("%d entries pending, want 100", n)
	}
	// Cleanups run on their own goroutine after a collection.
	deadline := time.Now().Add(10 * time.Second)
	for pendingSize(p) > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if n := pendingSize(p); n != 0 {
		t.Errorf("%d entries still pending after the responses were collected", n)
	}
}
