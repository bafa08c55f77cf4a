package workload_test

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpnfacade/vpnfacade/bench/workload"
	"github.com/vpnfacade/vpnfacade/internal/awstest"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// TestDirectClientsKeepTheirConnection makes the soak's EC2 calls (the SDK
// client DirectClients builds) against the facade's EC2 endpoint, served
// over HTTP/1.1 by a real net/http server on loopback, one after the other.
// The calls succeed at their first attempt and keep their connection for
// the next call.
//
// What it guards against: smithy-go (v1.28) closes the request body as soon
// as the response's headers are in, and the WriteTo of its body then
// returns io.EOF. net/http, after sending a body of known length, copies
// what is left of it once more; when that copy comes after the SDK's close,
// net/http takes the EOF for a failed write and closes the connection under
// the response being read ("use of closed network connection", retried by
// the SDK, and after three such attempts a failed call: two calls of the
// 10-minute soak). On a loaded machine that order happens by chance; the
// client here makes it certain, by holding net/http's second copy until the
// SDK has closed the body.
func TestDirectClientsKeepTheirConnection(t *testing.T) {
	awstest.Isolate(t)
	t.Setenv("AWS_CA_BUNDLE", "")
	regions := []string{"eu-west-1", "us-east-1"}
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Varied(400, 7)}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	srv := &http.Server{
		Handler:           server.NewHandler(server.Options{Reader: server.NewReader(server.ReaderOptions{Store: st}), Regions: regions}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var attempts atomic.Int64
	clients, err := workload.DirectClients(t.Context(), "http://"+ln.Addr().String(), regions, func(o *ec2.Options) {
		o.HTTPClient = &lateCheckClient{next: o.HTTPClient, attempts: &attempts}
	})
	if err != nil {
		t.Fatal(err)
	}
	const calls = 10
	for i := range calls {
		out, err := clients[regions[i%2]].DescribeClientVpnEndpoints(t.Context(), &ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(100)})
		if err != nil {
			t.Errorf("call %d: %v", i+1, err)
			continue
		}
		if len(out.ClientVpnEndpoints) == 0 {
			t.Errorf("call %d: no endpoints", i+1)
		}
	}
	if got := attempts.Load(); got != calls {
		t.Errorf("%d calls took %d attempts, want one each", calls, got)
	}
	// Each region's client has its own pool, so two connections at least.
	// A connection the client closes after each call makes one per call.
	if got := conns.Load(); got >= calls {
		t.Errorf("%d calls opened %d connections: none was kept for the next call", calls, got)
	}
}

// lateCheckClient is the SDK's HTTP client with one order of events made
// certain: net/http's second copy of a request body (after the body's
// Content-Length bytes were sent, the check that nothing is left) waits
// until the body has been closed, as it does when the SDK has its answer
// first. It also counts attempts: one request each.
type lateCheckClient struct {
	next     ec2.HTTPClient
	attempts *atomic.Int64
}

// Do implements ec2.HTTPClient.
func (c *lateCheckClient) Do(req *http.Request) (*http.Response, error) {
	c.attempts.Add(1)
	if req.Body != nil && req.ContentLength > 0 {
		b := &lateCheckBody{body: req.Body, left: req.ContentLength, closed: make(chan struct{}), gone: req.Context().Done()}
		if wt, ok := req.Body.(io.WriterTo); ok {
			// As it was: net/http's second copy calls WriteTo.
			req.Body = &lateCheckBodyWriterTo{lateCheckBody: b, wt: wt}
		} else {
			req.Body = b
		}
	}
	return c.next.Do(req)
}

// lateCheckBody holds every read after the whole body until it is closed
// (or the request is gone).
type lateCheckBody struct {
	body   io.ReadCloser
	left   int64 // bytes not read yet; only net/http's writer reads
	once   sync.Once
	closed chan struct{}
	gone   <-chan struct{}
}

func (b *lateCheckBody) wait() {
	select {
	case <-b.closed:
	case <-b.gone:
	}
}

// Read implements io.Reader.
func (b *lateCheckBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.wait()
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	return n, err
}

// Close implements io.Closer.
func (b *lateCheckBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.body.Close()
}

// lateCheckBodyWriterTo is a lateCheckBody over a body with WriteTo.
type lateCheckBodyWriterTo struct {
	*lateCheckBody
	wt io.WriterTo
}

// WriteTo implements io.WriterTo. net/http's first copy reads through an
// io.LimitedReader, which has no WriteTo: only the check after the body
// comes here.
func (b *lateCheckBodyWriterTo) WriteTo(w io.Writer) (int64, error) {
	b.wait()
	return b.wt.WriteTo(w)
}
