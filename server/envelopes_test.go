package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// recordingConn keeps a copy of what the server sends.
type recordingConn struct {
	net.Conn
	mu   sync.Mutex
	read bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// TestStreamMessagesGoOutInFullFrames reads the HTTP/2 frames a watch
// stream's messages arrive in, over each enveloped protocol: every DATA
// frame of a message but its last is as large as the client allows (16
// KiB), the envelope's 5-byte prefix going out with the message's head
// rather than in a 4 KiB frame of its own, as net/http's buffering of
// connect-go's separate prefix write would have it.
func TestStreamMessagesGoOutInFullFrames(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := store.NewMemory()
	if _, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Varied(300, 5)}); err != nil {
		t.Fatal(err)
	}
	url, _ := serveWatch(t, st, server.WatchOptions{Heartbeat: time.Hour})

	for name, opt := range map[string]connect.ClientOption{"grpc": connect.WithGRPC(), "grpc-web": connect.WithGRPCWeb(), "connect": connect.WithProtoJSON()} {
		t.Run(name, func(t *testing.T) {
			conn := &recordingConn{}
			var protocols http.Protocols
			protocols.SetUnencryptedHTTP2(true)
			hc := &http.Client{Transport: &http.Transport{Protocols: &protocols, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				conn.Conn = c
				return conn, err
			}}}
			c := clientvpnv1connect.NewClientVpnServiceClient(hc, url, opt, connect.WithAcceptCompression("gzip", nil, nil))
			streamCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			stream, err := c.WatchClientVpnEndpoints(streamCtx, &clientvpnv1.WatchClientVpnEndpointsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			// The initial state: one message of 300 endpoints, then the
			// marker.
			for range 2 {
				if !stream.Receive() {
					t.Fatal(stream.Err())
				}
			}
			if !stream.Msg().GetInitialComplete() {
				t.Fatalf("second message %v: want the initial state's marker", stream.Msg())
			}

			conn.mu.Lock()
			fr := http2.NewFramer(nil, bytes.NewReader(conn.read.Bytes()))
			conn.mu.Unlock()
			var sizes []int
			for {
				f, err := fr.ReadFrame()
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if d, ok := f.(*http2.DataFrame); ok && len(d.Data()) > 0 {
					sizes = append(sizes, len(d.Data()))
				}
			}
			// The endpoints' message, then the marker's frame.
			if len(sizes) < 3 {
				t.Fatalf("DATA frames %v: want the endpoints in several, then the marker", sizes)
			}
			for i, n := range sizes[:len(sizes)-2] {
				if n != 16384 {
					t.Errorf("DATA frame %d of the initial state is %d bytes, want 16384 (frames %v)", i, n, sizes)
				}
			}
		})
	}
}
