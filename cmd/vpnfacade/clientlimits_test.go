package main_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// fromAddress returns an HTTP client whose connections come from ip, a
// loopback address other than 127.0.0.1 (Linux routes all of 127/8 to
// loopback): to the server, another client host. With h2c it speaks
// HTTP/2 without TLS, else HTTP/1.1.
func fromAddress(ip string, h2c bool) *http.Client {
	var protocols http.Protocols
	if h2c {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{Protocols: &protocols, DialContext: dialer.DialContext}}
}

// TestPerAddressLimits probes the binary as a client that opens more
// connections than its share and one that repeats expensive calls: the
// first has its extra connections reset, the second is refused with a
// retry hint on every protocol and on the EC2 endpoint, and neither
// touches another address, nor the first address's Gets.
func TestPerAddressLimits(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := startSim(t, 10, ec2sim.Options{})
	// 0.01 calls per second: a burst of one, and no new token within the test.
	f := startFacade(t, s, "", "--max-connections-per-address", "3", "--list-rate-per-address", "0.01")
	waitServing(t, f.url)
	id := s.data[0].GetClientVpnEndpointId()

	// Connections: clients on 127.0.0.1, each with its own HTTP/2
	// connection kept open (idle), take its share of three (the health
	// checks above may hold one more); the next one is reset.
	var held []*http.Client
	for {
		hc := fromAddress("127.0.0.1", true)
		c := clientvpnv1connect.NewClientVpnServiceClient(hc, f.url)
		_, err := c.GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: id})
		if err != nil {
			// connect-go reports the reset as unavailable or canceled.
			if !strings.Contains(err.Error(), "connection reset") && connect.CodeOf(err) != connect.CodeUnavailable {
				t.Fatalf("a connection from 127.0.0.1 over its limit: %v, want it reset", err)
			}
			break
		}
		held = append(held, hc)
		if len(held) > 3 {
			t.Fatal("a fourth connection from 127.0.0.1 with --max-connections-per-address 3 was served")
		}
	}
	if len(held) == 0 {
		t.Fatal("no connection from 127.0.0.1 was served")
	}
	same := clientvpnv1connect.NewClientVpnServiceClient(fromAddress("127.0.0.1", true), f.url)
	other := fromAddress("127.0.0.2", true)
	connectOther := clientvpnv1connect.NewClientVpnServiceClient(other, f.url)
	if _, err := connectOther.GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: id}); err != nil {
		t.Fatalf("Get from 127.0.0.2 while 127.0.0.1 is at its connection limit: %v", err)
	}
	for _, hc := range held {
		hc.CloseIdleConnections()
	}
	http.DefaultClient.CloseIdleConnections()
	// The server sees the closes when it reads them: the place is back soon.
	for {
		_, err := same.GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: id})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("127.0.0.1 was never served again after closing its connections: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Expensive calls: 127.0.0.2 spends its burst of one on a List ...
	if _, err := connectOther.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{}); err != nil {
		t.Fatalf("first List from 127.0.0.2: %v", err)
	}
	// ... and is then refused on every protocol, at once (each is held up
	// to a second before its answer, so they go in parallel).
	refused := map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect":  connectOther,
		"grpc":     clientvpnv1connect.NewClientVpnServiceClient(other, f.url, connect.WithGRPC()),
		"grpc-web": clientvpnv1connect.NewClientVpnServiceClient(fromAddress("127.0.0.2", false), f.url, connect.WithGRPCWeb()),
	}
	var wg sync.WaitGroup
	for name, c := range refused {
		wg.Go(func() {
			_, err := c.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{})
			if connect.CodeOf(err) != connect.CodeResourceExhausted {
				t.Errorf("%s: List over the address's rate: %v, want resource_exhausted", name, err)
				return
			}
			ce := err.(*connect.Error)
			wait := retryAfter(t, ce.Meta().Get("Retry-After"))
			if !strings.Contains(ce.Message(), "0.01 expensive calls") || !strings.Contains(ce.Message(), "per client address") ||
				!strings.Contains(ce.Message(), fmt.Sprintf("retry after %d second(s)", wait)) {
				t.Errorf("%s: message %q does not name the limit and the wait", name, ce.Message())
			}
			var retry *errdetails.RetryInfo
			for _, d := range ce.Details() {
				if v, err := d.Value(); err == nil {
					if r, ok := v.(*errdetails.RetryInfo); ok {
						retry = r
					}
				}
			}
			if retry.GetRetryDelay().AsDuration() != time.Duration(wait)*time.Second {
				t.Errorf("%s: RetryInfo %v, want a delay of %ds", name, retry, wait)
			}
		})
	}
	wg.Go(func() {
		form := url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}}
		res, err := fromAddress("127.0.0.2", false).PostForm(f.url+"/", form)
		if err != nil {
			t.Errorf("EC2: %v", err)
			return
		}
		defer res.Body.Close()
		var e struct {
			Code    string `xml:"Errors>Error>Code"`
			Message string `xml:"Errors>Error>Message"`
		}
		if err := xml.NewDecoder(res.Body).Decode(&e); err != nil {
			t.Errorf("EC2: %d without error XML: %v", res.StatusCode, err)
		}
		retryAfter(t, res.Header.Get("Retry-After"))
		if res.StatusCode != http.StatusServiceUnavailable || e.Code != "RequestLimitExceeded" || !strings.Contains(e.Message, "per client address") {
			t.Errorf("EC2 over the address's rate: %d %s %q, Retry-After %q; want 503 RequestLimitExceeded naming the limit",
				res.StatusCode, e.Code, e.Message, res.Header.Get("Retry-After"))
		}
	})
	wg.Wait()
	// Gets from that address, and Lists from another, are not limited.
	if _, err := connectOther.GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: id}); err != nil {
		t.Errorf("Get from the address over its List rate: %v", err)
	}
	third := clientvpnv1connect.NewClientVpnServiceClient(fromAddress("127.0.0.3", true), f.url)
	if _, err := third.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{}); err != nil {
		t.Errorf("List from 127.0.0.3 while 127.0.0.2 is over its rate: %v", err)
	}

	// An operator sees both kinds of refusal counted.
	res, err := fromAddress("127.0.0.3", false).Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	metrics, _ := io.ReadAll(res.Body)
	for _, reason := range []string{"connections_per_address", "list_rate_per_address"} {
		m := regexp.MustCompile(`(?m)^vpnfacade_refused_total\{reason="` + reason + `"\} (\d+)$`).FindSubmatch(metrics)
		if m == nil || string(m[1]) == "0" {
			t.Errorf("vpnfacade_refused_total{reason=%q}: %q, want at least one", reason, m)
		}
	}
}

// retryAfter parses a Retry-After header: the wait for the next token at
// 0.01 per second, about 100 seconds.
func retryAfter(t *testing.T, h string) int {
	t.Helper()
	n, err := strconv.Atoi(h)
	if err != nil || n < 60 || n > 100 {
		t.Errorf("Retry-After %q, want about 100 (seconds)", h)
	}
	return n
}

// neverReading returns an HTTP/2 client on ip whose streams take one byte
// of response body until their reader asks for more: a response that is
// not read holds its call on the server, stuck in writing it, as a client
// that never reads does on a real network.
func neverReading(ip string) *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{
		Protocols:   &protocols,
		DialContext: dialer.DialContext,
		HTTP2:       &http.HTTP2Config{MaxReceiveBufferPerStream: 1},
	}}
}

// TestListSharePerAddress probes the binary as a client that sends
// expensive calls (List, EC2) and never reads their responses, to hold
// every slot of --max-concurrent-lists: it holds its share (half, by
// default) and its further calls are shed, on Connect and on the EC2
// endpoint, while another address's calls are served; its slots come back
// when it leaves.
func TestListSharePerAddress(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s := startSim(t, 30, ec2sim.Options{})
	// One region, so that unsigned EC2 calls are answered for it.
	f := startFacade(t, s, "", "--regions", "eu-west-1", "--max-concurrent-lists", "4")
	waitServing(t, f.url)

	listURL := f.url + clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure
	ec2Body := url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}}.Encode()
	attacker := neverReading("127.0.0.1")
	send := func(ctx context.Context, target, contentType, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		res, err := attacker.Do(req)
		if err != nil {
			t.Fatalf("POST %s from 127.0.0.1: %v", target, err)
		}
		return res
	}

	// The attacker's first two calls (its share of 2 of the 4 slots) are
	// answered, and never read: they hold their slots. The response head
	// arrives once the server writes the body, which it is stuck in.
	holdCtx, release := context.WithCancel(ctx)
	defer release()
	for _, call := range []struct{ target, contentType, body string }{
		{listURL, "application/json", "{}"},
		{f.url + "/", "application/x-www-form-urlencoded", ec2Body},
	} {
		if res := send(holdCtx, call.target, call.contentType, call.body); res.StatusCode != http.StatusOK {
			t.Fatalf("held call %s from 127.0.0.1: %s, want 200", call.target, res.Status)
		}
	}

	// Its further calls are shed, on both protocols, though two slots are
	// free: the attacker cannot take them.
	res := send(ctx, listURL, "application/json", "{}")
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"unavailable"`) || res.Header.Get("Retry-After") != "1" {
		t.Errorf("third call from 127.0.0.1 (Connect): %s %s, Retry-After %q; want 503 unavailable, Retry-After 1", res.Status, body, res.Header.Get("Retry-After"))
	}
	res = send(ctx, f.url+"/", "application/x-www-form-urlencoded", ec2Body)
	var e struct {
		Code    string `xml:"Errors>Error>Code"`
		Message string `xml:"Errors>Error>Message"`
	}
	if err := xml.NewDecoder(res.Body).Decode(&e); err != nil {
		t.Errorf("EC2 from 127.0.0.1 over its share: %s without error XML: %v", res.Status, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || e.Code != "RequestLimitExceeded" || res.Header.Get("Retry-After") != "1" ||
		!strings.Contains(e.Message, "2 of 4 in flight at once, the limit per client address") {
		t.Errorf("EC2 from 127.0.0.1 over its share: %s %s %q, Retry-After %q; want 503 RequestLimitExceeded naming the share",
			res.Status, e.Code, e.Message, res.Header.Get("Retry-After"))
	}
	// A well-behaved client on the same address is shed too, with a hint.
	same := clientvpnv1connect.NewClientVpnServiceClient(fromAddress("127.0.0.1", true), f.url)
	_, err := same.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{})
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("List from 127.0.0.1 over its share: %v, want unavailable", err)
	}
	ce := err.(*connect.Error)
	if !strings.Contains(ce.Message(), "your address holds its share") || !strings.Contains(ce.Message(), "retry after 1 second") {
		t.Errorf("message %q does not say why and when to retry", ce.Message())
	}
	var retry *errdetails.RetryInfo
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if r, ok := v.(*errdetails.RetryInfo); ok {
				retry = r
			}
		}
	}
	if retry.GetRetryDelay().AsDuration() != time.Second {
		t.Errorf("RetryInfo %v, want a delay of 1s", retry)
	}
	// Its Gets flow.
	id := s.data[0].GetClientVpnEndpointId()
	if _, err := same.GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: id}); err != nil {
		t.Errorf("Get from 127.0.0.1 while it holds its share: %v", err)
	}

	// Another address finds the slots the attacker could not take, on both.
	otherHTTP := fromAddress("127.0.0.2", true)
	other := clientvpnv1connect.NewClientVpnServiceClient(otherHTTP, f.url)
	if got, err := other.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{}); err != nil || len(got.GetClientVpnEndpoints()) == 0 {
		t.Errorf("List from 127.0.0.2 while 127.0.0.1 holds its share: %v", err)
	}
	if res, err := otherHTTP.PostForm(f.url+"/", url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}}); err != nil {
		t.Errorf("EC2 from 127.0.0.2: %v", err)
	} else {
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("EC2 from 127.0.0.2 while 127.0.0.1 holds its share: %s", res.Status)
		}
	}

	// An operator sees each shed call counted.
	mres, err := otherHTTP.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mres.Body)
	mres.Body.Close()
	if m := regexp.MustCompile(`(?m)^vpnfacade_refused_total\{reason="list_share_per_address"\} (\d+)$`).FindSubmatch(metrics); m == nil || string(m[1]) != "3" {
		t.Errorf("vpnfacade_refused_total{reason=\"list_share_per_address\"}: %q, want 3", m)
	}

	// When the attacker leaves (its streams reset), its slots come back at
	// once, not at the write timeout.
	release()
	for {
		_, err := same.ListClientVpnEndpoints(ctx, &clientvpnv1.ListClientVpnEndpointsRequest{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("127.0.0.1 never got a slot back after its held calls left: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
