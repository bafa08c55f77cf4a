package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// probe is one hostile request (or set of connections).
type probe struct {
	name string
	// run sends the probe and says what came back.
	run func(ctx context.Context) string
}

const listPath = "/clientvpn.v1.ClientVpnService/ListClientVpnEndpoints"

// shortIDs returns n distinct ids of at most 4 characters, as an attacker
// would send to fit the most into one request.
func shortIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.FormatInt(int64(i), 36)
	}
	return out
}

// pattern returns a wildcard pattern of n bytes that matches nothing a tag
// key holds, the worst case of a backtracking matcher.
func pattern(n int) string {
	return strings.Repeat("*a", n/2)[:n-1] + "!"
}

// requestProbes are the single-request probes, their bodies built once.
func requestProbes(base string, h2c *http.Client) []probe {
	mustProto := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		return b
	}
	ids140k := mustProto(&clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: shortIDs(140_000)})
	ids100kJSON, err := protojson.Marshal(&clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: shortIDs(100_000)})
	if err != nil {
		panic(err)
	}
	pattern1M := mustProto(&clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "tag-key", Values: []string{pattern(1_000_000)}}}})
	values := make([]string, 100_000)
	for i := range values {
		values[i] = "*a?" + fmt.Sprint(i%10)
	}
	values100k := mustProto(&clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "tag-key", Values: values}}})
	ec2Pattern := url.Values{
		"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"},
		"Filter.1.Name": {"tag-key"}, "Filter.1.Value.1": {pattern(256 << 10)},
	}.Encode()
	bigID := strings.Repeat("cvpn-endpoint-", 1_000_000/14)
	// The worst a request under the 256 KiB body limit can do: as many ids
	// as fit, decoded before the id limit refuses them; and the most
	// expensive legal query, 200 wildcard patterns of 256 characters that
	// match no tag key, scanned against every endpoint.
	fitProto := mustProto(&clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: shortIDs(45_000)})
	fitJSON, err := protojson.Marshal(&clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: shortIDs(36_000)})
	if err != nil {
		panic(err)
	}
	legal := make([]string, 200)
	for i := range legal {
		legal[i] = pattern(255) + strconv.Itoa(i%10)
	}
	legalPatterns := mustProto(&clientvpnv1.ListClientVpnEndpointsRequest{Filters: []*clientvpnv1.Filter{{Name: "tag-key", Values: legal}}})
	missing := make([]string, 1000)
	for i := range missing {
		missing[i] = fmt.Sprintf("cvpn-endpoint-%017x", i)
	}
	legalMissing := mustProto(&clientvpnv1.ListClientVpnEndpointsRequest{ClientVpnEndpointIds: missing})
	grpcWeb := clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, base, connect.WithGRPCWeb())

	post := func(contentType string, body []byte) func(ctx context.Context) string {
		return func(ctx context.Context) string {
			return send(ctx, h2c, http.MethodPost, base+listPath, contentType, body)
		}
	}
	return []probe{
		{"140,000 ids over application/proto (" + kib(len(ids140k)) + ")", post("application/proto", ids140k)},
		{"100,000 ids over application/json (" + kib(len(ids100kJSON)) + ")", post("application/json", ids100kJSON)},
		{"1 MB wildcard tag-key pattern (" + kib(len(pattern1M)) + ")", post("application/proto", pattern1M)},
		{"100,000 wildcard values (" + kib(len(values100k)) + ")", post("application/proto", values100k)},
		{"256 KiB pattern on the EC2 endpoint (" + kib(len(ec2Pattern)) + " form)", func(ctx context.Context) string {
			return send(ctx, http.DefaultClient, http.MethodPost, base+"/", "application/x-www-form-urlencoded", []byte(ec2Pattern))
		}},
		{"45,000 ids over application/proto, just under the body limit (" + kib(len(fitProto)) + ")", post("application/proto", fitProto)},
		{"36,000 ids over application/json, just under the body limit (" + kib(len(fitJSON)) + ")", post("application/json", fitJSON)},
		{"legal: 200 wildcard tag-key patterns of 256 characters (" + kib(len(legalPatterns)) + ")", post("application/proto", legalPatterns)},
		{"legal: 1,000 ids, none of them known", post("application/proto", legalMissing)},
		{"1 MB id, Get over gRPC-Web", func(ctx context.Context) string {
			_, err := grpcWeb.GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: bigID})
			var ce *connect.Error
			if !asConnect(err, &ce) {
				return fmt.Sprintf("error %v", err)
			}
			return fmt.Sprintf("%s, grpc-message of %d bytes", ce.Code(), len(ce.Message()))
		}},
	}
}

func asConnect(err error, ce **connect.Error) bool {
	e, ok := err.(*connect.Error)
	*ce = e
	return ok
}

func kib(n int) string { return fmt.Sprintf("%d KiB", n>>10) }

// send posts body and summarises the answer: status, error code and the
// size of the error message.
func send(ctx context.Context, c *http.Client, method, target, contentType string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", contentType)
	res, err := c.Do(req)
	if err != nil {
		return "client gave up: " + err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	var e struct{ Code, Message string }
	if json.Unmarshal(b, &e) == nil && e.Code != "" {
		return fmt.Sprintf("%d %s: %q", res.StatusCode, e.Code, e.Message)
	}
	if i := bytes.Index(b, []byte("<Code>")); i >= 0 {
		return fmt.Sprintf("%d %s", res.StatusCode, strings.TrimSpace(string(b[i:min(len(b), i+300)])))
	}
	return fmt.Sprintf("%d, %d bytes", res.StatusCode, len(b))
}

// smallReceiveBuffer dials with a 4 KiB receive buffer, so that a client
// that does not read holds the server's writes back quickly.
var smallReceiveBuffer = net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	}); err != nil {
		return err
	}
	return serr
}}

// neverReaders opens n connections that each ask for a 1,000-endpoint page
// and never read it, holds them until ctx is done, and returns how many
// were tried and how many of those the server refused, closed or reset by
// then (a connection over its per-address bound is reset when accepted).
func neverReaders(ctx context.Context, addr string, n int) (tried, closedByServer int) {
	body, _ := proto.Marshal(&clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000})
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/proto\r\nContent-Length: %d\r\n\r\n%s", listPath, addr, len(body), body)
	var conns []net.Conn
	for range n {
		if ctx.Err() != nil {
			break
		}
		c, err := smallReceiveBuffer.DialContext(ctx, "tcp", addr)
		if err != nil {
			closedByServer++
			continue
		}
		conns = append(conns, c)
		_, _ = io.WriteString(c, req) // a failure shows in the read below
	}
	<-ctx.Done()
	var one [1]byte
	for _, c := range conns {
		// A held connection has its answer waiting, or nothing yet; one
		// the server ended reads EOF or a reset.
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(one[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closedByServer++
		}
		c.Close()
	}
	return n, closedByServer
}

// slowBodies opens n connections that announce a 1,000-byte body and send
// one byte of it every two seconds, until the server closes them or ctx is
// done. It returns how many the server closed and the longest any stayed
// open.
func slowBodies(ctx context.Context, addr string, n int) (closed int, longest time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			start := time.Now()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/proto\r\nContent-Length: 1000\r\n\r\n", listPath, addr)
			gone := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, c); close(gone) }()
			tick := time.NewTicker(2 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-gone:
					mu.Lock()
					closed++
					longest = max(longest, time.Since(start))
					mu.Unlock()
					return
				case <-ctx.Done():
					return
				case <-tick.C:
					if _, err := c.Write([]byte{0}); err != nil {
						<-gone
					}
				}
			}
		})
	}
	wg.Wait()
	return closed, longest
}
