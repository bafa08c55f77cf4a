package server_test

import (
	"fmt"
	"runtime"
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

// countingCodec is a client codec that does not decode: the benchmark
// counts messages, so the client's cost stays out of the figures.
type countingCodec struct{ name string }

func (c countingCodec) Name() string                     { return c.name }
func (countingCodec) Marshal(v any) ([]byte, error)      { return proto.Marshal(v.(proto.Message)) }
func (countingCodec) Unmarshal(data []byte, _ any) error { return nil }

// BenchmarkWatchFanOut publishes a change of 100 modified endpoints to
// watchers of one selection over HTTP/2 (in process, many streams per
// connection), compressed (connect-go clients accept gzip by default) or
// not (clients that do not offer it), and waits until every watcher has
// received it. allocs/msg
// and B/msg are per message delivered to one watcher, client and server
// together (the client does not decode); the fan-out encodes each change
// once per codec, so they should not grow with the change's size.
func BenchmarkWatchFanOut(b *testing.B) {
	for _, watchers := range []int{10, 100} {
		for _, codec := range []string{"proto", "json"} {
			for _, gzip := range []bool{true, false} {
				encoding := "gzip"
				if !gzip {
					encoding = "identity"
				}
				b.Run(fmt.Sprintf("watchers=%d/%s/%s", watchers, codec, encoding), func(b *testing.B) {
					benchmarkWatchFanOut(b, watchers, codec, gzip)
				})
			}
		}
	}
}

func benchmarkWatchFanOut(b *testing.B, watchers int, codec string, gzip bool) {
	ctx := b.Context()
	st := store.NewMemory()
	eps := endpointtest.Varied(100, 29)
	prev, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Clones(eps)})
	if err != nil {
		b.Fatal(err)
	}
	url, hub := serveWatch(b, st, server.WatchOptions{Heartbeat: time.Hour, MaxWatchersPerAddress: watchers})
	opts := []connect.ClientOption{connect.WithGRPC(), connect.WithCodec(countingCodec{codec})}
	if !gzip {
		opts = append(opts, connect.WithAcceptCompression("gzip", nil, nil)) // not offered
	}
	c := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url, opts...)

	// Each watcher's goroutine counts one message per published version.
	var received sync.WaitGroup
	next := make([]chan struct{}, watchers)
	for i := range watchers {
		s, err := c.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
		if err != nil {
			b.Fatal(err)
		}
		// The initial state: one message with the endpoints, the marker.
		for range 2 {
			if !s.Receive() {
				b.Fatal(s.Err())
			}
		}
		next[i] = make(chan struct{})
		go func() {
			for range next[i] {
				if !s.Receive() {
					return
				}
				received.Done()
			}
		}()
	}
	for hub.Streams() < watchers {
		time.Sleep(time.Millisecond)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		endpoints := endpointtest.Clones(eps)
		d := snapshot.Diff{}
		for _, e := range endpoints {
			e.VpcId = proto.String(fmt.Sprintf("vpc-%d", i))
			d.Modified = append(d.Modified, snapshot.Key(e))
		}
		received.Add(watchers)
		for _, ch := range next {
			ch <- struct{}{}
		}
		if prev, err = st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpoints, Base: prev, Diff: d}); err != nil {
			b.Fatal(err)
		}
		received.Wait()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	for _, ch := range next {
		close(ch)
	}
	delivered := float64(b.N * watchers)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/delivered, "allocs/msg")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/delivered, "B/msg")
}
