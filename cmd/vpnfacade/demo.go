package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// demoRegions are the regions the --demo emulator fills.
var demoRegions = []string{"eu-west-1", "us-east-1"}

// demoExampleID is the endpoint README.md's examples read. The demo's data
// is deterministic, so it is generated with the default --demo-count, and
// the demo's mutations never delete it.
const demoExampleID = "cvpn-endpoint-0021e97ee416bbce6"

// demo is the in-process EC2 emulator --demo reads from.
type demo struct {
	url string
	srv *http.Server
}

// startDemo serves generated endpoints from ec2sim on a loopback port.
func startDemo(ctx context.Context, count int, logger *slog.Logger) (*demo, error) {
	sim, err := newDemoSim(count)
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listening: %w", err)
	}
	d := &demo{url: "http://" + ln.Addr().String(), srv: &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("demo EC2 emulator stopped", "error", err)
		}
	}()
	logger.Info("demo: EC2 emulator serving generated endpoints", "url", d.url, "endpoints", count, "regions", demoRegions)
	return d, nil
}

// newDemoSim is the demo's emulator: count generated endpoints, a few of
// which change every 30 s, never deleting demoExampleID.
func newDemoSim(count int) (*ec2sim.Server, error) {
	endpoints, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: count, Seed: 1, Regions: demoRegions})
	if err != nil {
		return nil, fmt.Errorf("demo: generating endpoints: %w", err)
	}
	sim, err := ec2sim.New(ec2sim.Options{Endpoints: endpoints, DefaultRegion: demoRegions[0], MutateEvery: 30 * time.Second, MutateCount: 3})
	if err != nil {
		return nil, fmt.Errorf("demo: starting the EC2 emulator: %w", err)
	}
	sim.KeepEndpoints(demoExampleID)
	return sim, nil
}

// configure points the upstream at the emulator, with throwaway credentials
// (the emulator does not check signatures).
func (d *demo) configure(cfg *upstream.Options) {
	cfg.BaseEndpoint = d.url
	if len(cfg.Regions) == 0 {
		cfg.Regions = demoRegions
	}
	cfg.LoadOptions = append(cfg.LoadOptions,
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("demo", "demo", "")),
		config.WithRegion(cfg.Regions[0]),
	)
}

// Close stops the emulator.
func (d *demo) Close() error { return d.srv.Close() }
