// Command load drives one ClientVpnService call against a running server
// (vpnfacade, bench/cmd/bare, or anything serving the contract) with the
// generated Connect clients over HTTP/2 without TLS, and prints throughput,
// latency percentiles and errors. It is the load generator of bench/run,
// on its own for ad-hoc measurements:
//
//	load --url http://127.0.0.1:8080 --call get --protocol grpc --concurrency 32 --duration 10s
//	load --url http://127.0.0.1:8080 --call list --protocol connect-json --rate 200
//
// Get reads the endpoint ids the server lists first (up to --ids of them).
// Every run stops by itself after --duration or --requests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vpnfacade/vpnfacade/bench/load"
	"github.com/vpnfacade/vpnfacade/bench/workload"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "base URL of the server (h2c)")
	call := fs.String("call", "get", "get or list")
	protocol := fs.String("protocol", workload.GRPC, "one of "+strings.Join(workload.Protocols(), ", "))
	gzip := fs.Bool("gzip", true, "accept gzipped responses (connect-go's default)")
	conns := fs.Int("conns", 4, "HTTP/2 connections shared by the workers")
	var cfg load.Config
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "calls in flight")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unrecorded warm-up")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time (at most)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop after this many recorded calls (0: run for --duration)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "calls per second, paced (0: closed loop, as fast as the workers go)")
	pageSize := fs.Int("page", 100, "List page size")
	filters := fs.Bool("filters", true, "List with the benchmark's two filters (tag:Environment=production, transport-protocol=udp)")
	maxIDs := fs.Int("ids", 10_000, "Get: how many of the server's endpoint ids to read in turn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	clients, err := workload.NewClients(*url, *protocol, *conns, *gzip)
	if err != nil {
		return err
	}
	var op load.Op
	switch *call {
	case "get":
		targets, err := listTargets(ctx, clients[0], *maxIDs)
		if err != nil {
			return err
		}
		op, err = workload.GetOp(clients, targets, cfg.Concurrency)
		if err != nil {
			return err
		}
	case "list":
		var f []workload.Filter
		if *filters {
			f = workload.ListFilters()
		}
		if op, err = workload.ListOp(clients, f, int32(*pageSize), cfg.Concurrency); err != nil {
			return err
		}
	default:
		return fmt.Errorf("--call %q: want get or list", *call)
	}
	res, err := load.Run(ctx, cfg, op)
	fmt.Printf("%s %s (%s, concurrency %d): %s\n", *call, *url, *protocol, cfg.Concurrency, res)
	return err
}

// listTargets pages through the server's endpoints for up to max ids.
func listTargets(ctx context.Context, c clientvpnv1connect.ClientVpnServiceClient, max int) ([]workload.Target, error) {
	var out []workload.Target
	req := &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1000}
	for len(out) < max {
		res, err := c.ListClientVpnEndpoints(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("listing endpoint ids: %w", err)
		}
		for _, e := range res.GetClientVpnEndpoints() {
			out = append(out, workload.Target{ID: e.GetClientVpnEndpointId(), Region: e.GetRegion()})
		}
		if req.NextToken = res.GetNextToken(); req.NextToken == "" {
			break
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the server lists no endpoints to Get")
	}
	return out[:min(len(out), max)], nil
}
