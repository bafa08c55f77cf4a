// Command suite runs the vpnfacade benchmarks side by side, in one run on
// one machine, with one load generator (package load) at one concurrency:
//
//  1. the framework's limit: bench/cmd/bare, a connect-go handler answering
//     a fixed endpoint (and a fixed page);
//  2. vpnfacade Get over gRPC and Connect JSON, 10,000 endpoints cached;
//  3. vpnfacade List, a page of 100 of 10,000 with two filters, saturated
//     and then paced at half of saturation;
//  4. the same reads made directly with aws-sdk-go-v2 against ec2sim with
//     AWS's latency and throttle, as a service without the facade does;
//
// then refresh time and resident memory for 10,000 and 100,000 endpoints,
// and the time from process start to the first successful List with a warm
// Redis. The EC2 emulators run inside this process, so their request
// counters say exactly what reached "AWS" during each phase. Every address
// is loopback; every load stops by itself.
//
// bench/run builds the binaries and runs it; see BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	vpnfacade       string
	bare            string
	redisServer     string
	outDir          string
	concurrency     int
	conns           int
	warmup          time.Duration
	duration        time.Duration
	rounds          int
	count           int
	largeCount      int
	latency         time.Duration
	refreshInterval time.Duration
	directWarmup    time.Duration
	profile         bool
	encodings       []string
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.StringVar(&c.vpnfacade, "vpnfacade", "", "path of the built vpnfacade binary (required)")
	fs.StringVar(&c.bare, "bare", "", "path of the built bench/cmd/bare binary (required)")
	fs.StringVar(&c.redisServer, "redis-server", "redis-server", "redis-server binary; the suite starts its own on a loopback port")
	fs.StringVar(&c.outDir, "out", "", "directory for logs, profiles and the report (required)")
	fs.IntVar(&c.concurrency, "concurrency", 32, "calls in flight, for every scenario")
	fs.IntVar(&c.conns, "conns", 4, "HTTP/2 connections the workers share, for every Connect and gRPC scenario")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unrecorded warm-up before each scenario")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured time of each scenario")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds of the saturated facade and bare scenarios (the median round is reported)")
	fs.IntVar(&c.count, "count", 10_000, "endpoints cached for the load scenarios")
	fs.IntVar(&c.largeCount, "large-count", 100_000, "endpoints of the large refresh, memory and warm-start measurement (0: skip)")
	fs.DurationVar(&c.latency, "latency", 80*time.Millisecond, "emulated EC2 latency per page")
	fs.DurationVar(&c.refreshInterval, "refresh-interval", time.Minute, "vpnfacade --refresh-interval during the load (its default)")
	fs.BoolVar(&c.profile, "profile", true, "take CPU and allocation profiles of vpnfacade under Get and List load")
	fs.DurationVar(&c.directWarmup, "direct-warmup", 5*time.Second, "warm-up of the direct scenarios, long enough to spend EC2's throttle burst so that the steady rate is measured")
	encodings := fs.String("encodings", "gzip,identity", "response encodings to measure, comma-separated: gzip (clients accept gzip, connect-go's default) and/or identity (they do not)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	for _, e := range strings.Split(*encodings, ",") {
		switch e = strings.TrimSpace(e); e {
		case "gzip", "identity":
			if !slices.Contains(c.encodings, e) {
				c.encodings = append(c.encodings, e)
			}
		case "":
		default:
			return config{}, fmt.Errorf("--encodings: %q is neither gzip nor identity", e)
		}
	}
	switch {
	case len(c.encodings) == 0:
		return config{}, errors.New("--encodings names no encoding")
	case fs.NArg() > 0:
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.vpnfacade == "" || c.bare == "" || c.outDir == "":
		return config{}, errors.New("--vpnfacade, --bare and --out are required (bench/run sets them)")
	case c.concurrency < 1 || c.conns < 1 || c.rounds < 1 || c.count < 1000 || c.largeCount < 0:
		return config{}, errors.New("--concurrency, --conns and --rounds must be positive, --count at least 1000")
	case c.duration <= 0 || c.warmup < 0:
		return config{}, errors.New("--duration must be positive and --warmup not negative")
	}
	return c, nil
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	s := &suite{cfg: cfg}
	defer s.cleanup()
	rep, err := s.run(ctx)
	if rep != nil {
		text := rep.String()
		fmt.Print(text)
		if werr := os.WriteFile(cfg.outDir+"/report.md", []byte(text), 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}
