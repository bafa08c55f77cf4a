// Command bare serves clientvpn.v1.ClientVpnService with answers built once
// at start: Get returns one fixed endpoint and List one fixed page, whatever
// the request. It is the framework's limit in the benchmarks: connect-go,
// net/http and the encoders of the same responses vpnfacade sends, with no
// cache, query or metrics behind them. Get's endpoint is the one of median
// encoded size among the page's; the page is ec2sim's generated data.
//
//	bare --listen 127.0.0.1:0 --page 100
//
// It prints "bare listening on http://ADDR" once it accepts connections,
// and serves HTTP/1.1 and h2c on one listener, as vpnfacade does.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve HTTP/1.1 and h2c on")
	pageSize := fs.Int("page", 100, "endpoints in the fixed List page")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pageSize < 1 {
		return fmt.Errorf("--page must be at least 1, got %d", *pageSize)
	}
	svc, err := newFixedService(*pageSize)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	// The same transport settings as vpnfacade, so that only the work
	// behind the handler differs.
	opts := append([]connect.HandlerOption{connect.WithReadMaxBytes(server.MaxRequestBytes)}, server.CompressionOptions()...)
	mux.Handle(clientvpnv1connect.NewClientVpnServiceHandler(svc, opts...))
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Printf("bare listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// fixedService answers every call with a response built once. Connect
// only reads the messages it sends, so sharing them across calls is safe.
type fixedService struct {
	// Watching is not part of the framework baseline.
	clientvpnv1connect.UnimplementedClientVpnServiceHandler

	get  *clientvpnv1.GetClientVpnEndpointResponse
	list *clientvpnv1.ListClientVpnEndpointsResponse
}

var _ clientvpnv1connect.ClientVpnServiceHandler = (*fixedService)(nil)

// newFixedService builds the answers from ec2sim's generated data (the same
// generator, seed and regions the benchmark gives the facade).
func newFixedService(pageSize int) (*fixedService, error) {
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{
		Count: pageSize, Seed: 42, Regions: []string{"eu-west-1", "us-east-1"}, Accounts: []string{ec2sim.DefaultAccount},
	})
	if err != nil {
		return nil, err
	}
	// Get answers the endpoint of median encoded size, so that it costs
	// what an average Get of the facade's (varied) data costs.
	bySize := slices.Clone(eps)
	slices.SortStableFunc(bySize, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
		return cmp.Compare(proto.Size(a), proto.Size(b))
	})
	info := &clientvpnv1.SnapshotInfo{Version: 1, RefreshedAt: timestamppb.Now()}
	return &fixedService{
		get: &clientvpnv1.GetClientVpnEndpointResponse{ClientVpnEndpoint: bySize[len(bySize)/2], Snapshot: info},
		list: &clientvpnv1.ListClientVpnEndpointsResponse{
			ClientVpnEndpoints: eps,
			// As long as the facade's tokens (about 100 characters).
			NextToken: strings.Repeat("A", 100),
			Snapshot:  info,
		},
	}, nil
}

// ListClientVpnEndpoints returns the fixed page.
func (s *fixedService) ListClientVpnEndpoints(context.Context, *clientvpnv1.ListClientVpnEndpointsRequest) (*clientvpnv1.ListClientVpnEndpointsResponse, error) {
	return s.list, nil
}

// GetClientVpnEndpoint returns the fixed endpoint.
func (s *fixedService) GetClientVpnEndpoint(context.Context, *clientvpnv1.GetClientVpnEndpointRequest) (*clientvpnv1.GetClientVpnEndpointResponse, error) {
	return s.get, nil
}
