package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// headerCodec decodes only the scalar fields of watch messages (version
// and flags), skipping the endpoints: a thousand watchers in the
// benchmark's process, on the server's two cores, would otherwise spend
// the machine decoding endpoints the benchmark does not look at. The server
// sends the full messages all the same.
type headerCodec struct{}

var watchFields = func() map[protowire.Number]protoreflect.Name {
	fields := (&clientvpnv1.WatchClientVpnEndpointsResponse{}).ProtoReflect().Descriptor().Fields()
	out := map[protowire.Number]protoreflect.Name{}
	for _, name := range []protoreflect.Name{"version", "initial", "initial_complete", "reset", "heartbeat"} {
		out[fields.ByName(name).Number()] = name
	}
	return out
}()

func (headerCodec) Name() string { return "proto" }

func (headerCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }

func (headerCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*clientvpnv1.WatchClientVpnEndpointsResponse)
	if !ok {
		return proto.Unmarshal(data, v.(proto.Message))
	}
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		name, scalar := watchFields[num]
		if scalar && typ == protowire.VarintType {
			x, n := protowire.ConsumeVarint(data)
			if n < 0 {
				return protowire.ParseError(n)
			}
			data = data[n:]
			switch name {
			case "version":
				m.Version = x
			case "initial":
				m.Initial = x != 0
			case "initial_complete":
				m.InitialComplete = x != 0
			case "reset":
				m.Reset_ = x != 0
			case "heartbeat":
				m.Heartbeat = x != 0
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
	}
	return nil
}

// delivery is one change message a watcher received.
type delivery struct {
	version uint64
	at      time.Time
}

// watcher is one watch stream and what it received.
type watcher struct {
	replica int

	mu         sync.Mutex
	deliveries []delivery
	resets     int
	initial    chan struct{} // closed when the first initial state is complete
	err        error
}

// latest returns the version of the last change received.
func (w *watcher) latest() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.deliveries) == 0 {
		return 0
	}
	return w.deliveries[len(w.deliveries)-1].version
}

// openWatchers opens n watch streams on url, perConn per HTTP/2
// connection (each connection its own transport), and returns them once
// every initial state is complete (within 5 minutes). The streams last as
// long as ctx.
func openWatchers(ctx context.Context, url string, replica, n, perConn int, gzip bool, maxReadFrame int) ([]*watcher, error) {
	var out []*watcher
	var client clientvpnv1connect.ClientVpnServiceClient
	opts := []connect.ClientOption{connect.WithGRPC(), connect.WithCodec(headerCodec{})}
	if !gzip {
		opts = append(opts, connect.WithAcceptCompression("gzip", nil, nil)) // not offered
	}
	for i := range n {
		if i%perConn == 0 {
			hc := h2cClient()
			if maxReadFrame != 0 {
				hc.Transport.(*http.Transport).HTTP2 = &http.HTTP2Config{MaxReadFrameSize: maxReadFrame}
			}
			client = clientvpnv1connect.NewClientVpnServiceClient(hc, url, opts...)
		}
		w := &watcher{replica: replica, initial: make(chan struct{})}
		stream, err := client.WatchClientVpnEndpoints(ctx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
		if err != nil {
			return nil, fmt.Errorf("watch %d on %s: %w", i, url, err)
		}
		go w.receive(stream)
		out = append(out, w)
	}
	timeout := time.After(5 * time.Minute)
	for _, w := range out {
		select {
		case <-w.initial:
		case <-timeout:
			return nil, errors.New("the initial states did not complete within 5 minutes")
		}
		if w.err != nil {
			return nil, w.err
		}
	}
	return out, nil
}

func (w *watcher) receive(stream *connect.ServerStreamForClient[clientvpnv1.WatchClientVpnEndpointsResponse]) {
	initialDone := false
	for stream.Receive() {
		m := stream.Msg()
		now := time.Now()
		switch {
		case m.GetInitial():
			if m.GetReset_() && m.GetInitialComplete() {
				w.mu.Lock()
				w.resets++
				w.mu.Unlock()
			}
			if m.GetInitialComplete() && !initialDone {
				initialDone = true
				close(w.initial)
			}
		case m.GetHeartbeat():
		default:
			w.mu.Lock()
			w.deliveries = append(w.deliveries, delivery{m.GetVersion(), now})
			w.mu.Unlock()
		}
	}
	if !initialDone {
		w.err = fmt.Errorf("stream ended before its initial state: %w", stream.Err())
		close(w.initial)
	}
}

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}
