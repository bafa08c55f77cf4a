package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
	"github.com/vpnfacade/vpnfacade/store"
)

// gatedStore is a memory store whose Current, while the gate is shut,
// reports the call on entered and waits for release: it holds calls in
// flight for as long as a test needs.
type gatedStore struct {
	store.Store
	shut    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gatedStore) Current(ctx context.Context) (store.View, error) {
	if g.shut.Load() {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Store.Current(ctx)
}

func TestExpensiveCallsAreShedBeyondTheLimitWhileGetsFlow(t *testing.T) {
	t.Parallel()
	const limit = 2
	mem := store.NewMemory()
	eps := fixture(20)
	if _, err := mem.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Endpoints: eps}); err != nil {
		t.Fatal(err)
	}
	gate := &gatedStore{Store: mem, entered: make(chan struct{}), release: make(chan struct{})}
	url := startServer(t, server.NewHandler(server.Options{
		Reader:             server.NewReader(server.ReaderOptions{Store: gate}),
		Registerer:         prometheus.NewRegistry(),
		MaxConcurrentLists: limit,
		// The held calls come from one address: no share per address.
		ListSharePerAddress: 1,
		ListQueueTimeout:    time.Millisecond,
	}))
	h2c := h2cClient()
	clients := map[string]clientvpnv1connect.ClientVpnServiceClient{
		"connect":  clientvpnv1connect.NewClientVpnServiceClient(h2c, url),
		"grpc":     clientvpnv1connect.NewClientVpnServiceClient(h2c, url, connect.WithGRPC()),
		"grpc-web": clientvpnv1connect.NewClientVpnServiceClient(http.DefaultClient, url, connect.WithGRPCWeb()),
	}

	// Hold limit expensive calls in flight: a List and an EC2 call.
	gate.shut.Store(true)
	var wg sync.WaitGroup
	held := make(chan error, limit)
	wg.Go(func() {
		_, err := clients["connect"].ListClientVpnEndpoints(context.Background(), &clientvpnv1.ListClientVpnEndpointsRequest{})
		held <- err
	})
	wg.Go(func() {
		res, err := http.PostForm(url+"/", ec2Form())
		if err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				err = errors.New(res.Status)
			}
		}
		held <- err
	})
	for range limit {
		<-gate.entered
	}
	gate.shut.Store(false)

	for name, c := range clients {
		_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{})
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatalf("%s: List beyond the limit: %v, want unavailable", name, err)
		}
		ce := err.(*connect.Error)
		if !strings.Contains(ce.Message(), "retry after 1 second") || !strings.Contains(ce.Message(), "limit of 2 expensive calls") {
			t.Errorf("%s: message %q gives no retry hint or limit", name, ce.Message())
		}
		if ce.Meta().Get("Retry-After") != "1" {
			t.Errorf("%s: Retry-After = %q, want 1", name, ce.Meta().Get("Retry-After"))
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
			t.Errorf("%s: RetryInfo detail %v, want a retry delay of 1s", name, retry)
		}
		// Gets keep flowing.
		got, err := c.GetClientVpnEndpoint(t.Context(), &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: eps[3].GetClientVpnEndpointId()})
		if err != nil || got.GetClientVpnEndpoint().GetClientVpnEndpointId() != eps[3].GetClientVpnEndpointId() {
			t.Fatalf("%s: Get while Lists are shed: %v", name, err)
		}
	}
	res, ee := ec2Post(t, url, ec2Form())
	if res.StatusCode != http.StatusServiceUnavailable || ee.Code != "RequestLimitExceeded" ||
		res.Header.Get("Retry-After") != "1" || !strings.Contains(ee.Message, "retry after 1 second") {
		t.Errorf("EC2 beyond the limit: %d %s %q, Retry-After %q; want 503 RequestLimitExceeded with a retry hint",
			res.StatusCode, ee.Code, ee.Message, res.Header.Get("Retry-After"))
	}

	close(gate.release)
	wg.Wait()
	for range limit {
		if err := <-held; err != nil {
			t.Errorf("held call: %v", err)
		}
	}
	if _, err := clients["grpc"].ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{}); err != nil {
		t.Errorf("List once the held calls are done: %v", err)
	}
	if res, ee := ec2Post(t, url, ec2Form()); res.StatusCode != http.StatusOK {
		t.Errorf("EC2 once the held calls are done: %d %s", res.StatusCode, ee.Code)
	}
}

func ec2Form() url.Values {
	return url.Values{"Action": {"DescribeClientVpnEndpoints"}, "Version": {"2016-11-15"}, "MaxResults": {"5"}}
}
