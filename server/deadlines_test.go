package server_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// guard bounds a wait that the server must end: the test fails rather than
// hangs when it does not.
const guard = 3 * time.Second

func serveWith(t *testing.T, eps []*clientvpnv1.ClientVpnEndpoint, opts server.Options) string {
	t.Helper()
	st := store.NewMemory()
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: eps}); err != nil {
		t.Fatal(err)
	}
	opts.Reader = server.NewReader(server.ReaderOptions{Store: st})
	opts.Registerer = prometheus.NewRegistry()
	return startServer(t, server.NewHandler(opts))
}

// TestSlowBodiesAreCutAtTheReadTimeout sends a tenth of a body and then
// nothing, over HTTP/1.1 and HTTP/2, to a Connect procedure and to the EC2
// endpoint: the server gives up on each.
func TestSlowBodiesAreCutAtTheReadTimeout(t *testing.T) {
	t.Parallel()
	url := serveWith(t, fixture(10), server.Options{ReadTimeout: 100 * time.Millisecond})
	addr := strings.TrimPrefix(url, "http://")
	targets := map[string]string{
		"connect": "POST /clientvpn.v1.ClientVpnService/ListClientVpnEndpoints HTTP/1.1\r\nContent-Type: application/proto\r\n",
		"ec2":     "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
	}
	for name, head := range targets {
		t.Run(name+"/http1", func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "%sHost: %s\r\nContent-Length: 100\r\n\r\n0123456789", head, addr)
			_ = conn.SetReadDeadline(time.Now().Add(guard))
			// The server answers with an error, then closes the connection.
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("the server did not close the slow connection: %v; received %q", err, got)
			}
		})
		t.Run(name+"/http2", func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			method, path, _ := strings.Cut(strings.SplitN(head, " HTTP", 2)[0], " ")
			req, err := http.NewRequestWithContext(t.Context(), method, url+path, pr)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", strings.TrimSpace(strings.SplitN(head, "Content-Type: ", 2)[1]))
			go func() { _, _ = pw.Write([]byte("0123456789")) }()
			done := make(chan error, 1)
			go func() {
				res, err := h2cClient().Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				done <- err
			}()
			select {
			case <-done: // an error response or a reset stream: either way, the server gave up
			case <-time.After(guard):
				t.Fatal("the server did not end the slow stream")
			}
		})
	}
}

// TestSlowReaderIsCutAtTheWriteTimeout asks for an 8 MB page and never
// reads it. The call holds its admission slot, so other Lists are shed,
// until the write timeout cuts it off; then Lists are served again.
func TestSlowReaderIsCutAtTheWriteTimeout(t *testing.T) {
	t.Parallel()
	eps := fixture(1000)
	for _, e := range eps {
		e.Description = proto.String(strings.Repeat("d", 8<<10))
	}
	url := serveWith(t, eps, server.Options{
		MaxConcurrentLists: 1,
		ListQueueTimeout:   time.Millisecond,
		WriteTimeout:       time.Second,
	})
	addr := strings.TrimPrefix(url, "http://")
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	body, _ := proto.Marshal(&clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
	// The slow reader's List must hold the slot before the others start:
	// the head of its answer says it does. A call shed at once, or cut off
	// by the write timeout before its head left (a loaded machine), is sent
	// again on a new connection.
	var (
		conn net.Conn
		br   *bufio.Reader
		res  *http.Response
	)
	for start := time.Now(); ; {
		var err error
		if conn, err = dialer.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(guard))
		fmt.Fprintf(conn, "POST /clientvpn.v1.ClientVpnService/ListClientVpnEndpoints HTTP/1.1\r\nHost: %s\r\nContent-Type: application/proto\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
		br = bufio.NewReader(conn)
		res, err = http.ReadResponse(br, nil)
		if err == nil && res.StatusCode == http.StatusOK {
			break
		}
		if time.Since(start) > guard {
			t.Fatalf("the slow reader's List never got the head of a page: %v", err)
		}
		conn.Close()
	}

	c := clientvpnv1connect.NewClientVpnServiceClient(h2cClient(), url)
	small := &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5}
	waitFor := func(what string, want connect.Code) {
		t.Helper()
		deadline := time.Now().Add(guard)
		for {
			_, err := c.ListClientVpnEndpoints(t.Context(), small)
			if connect.CodeOf(err) == want || (err == nil && want == 0) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last List got %v", what, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("the slow reader's List never held the only slot", connect.CodeUnavailable)
	waitFor("the write timeout never freed the slot", 0)

	// The slow reader gets less than the page: the server cut it off.
	n, err := io.Copy(io.Discard, res.Body)
	if err == nil {
		t.Errorf("the slow reader received the whole page (%d bytes): the server did not cut it off", n)
	}
}

func TestConnectGETWithBadBase64IsInvalidArgument(t *testing.T) {
	t.Parallel()
	url := serveWith(t, fixture(10), server.Options{})
	msg, _ := proto.Marshal(&clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 5})
	path := url + "/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints?connect=v1&encoding=proto&base64=1&message="
	for _, tc := range []struct {
		message string
		status  int
	}{
		{base64.RawURLEncoding.EncodeToString(msg), http.StatusOK},
		{base64.URLEncoding.EncodeToString(msg), http.StatusOK},
		{"%21%21%21", http.StatusBadRequest},
		{"AAAA%2B%2F", http.StatusBadRequest}, // standard, not URL-safe, base64
		{"A", http.StatusBadRequest},
	} {
		res, err := http.Get(path + tc.message)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("message=%s: status %d (%s), want %d", tc.message, res.StatusCode, b, tc.status)
			continue
		}
		if tc.status == http.StatusOK {
			continue
		}
		var e struct{ Code, Message string }
		if err := json.Unmarshal(b, &e); err != nil || e.Code != "invalid_argument" || !strings.Contains(e.Message, "message query parameter") {
			t.Errorf("message=%s: body %s, want invalid_argument naming the message parameter", tc.message, b)
		}
	}
}
