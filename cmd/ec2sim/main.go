// Command ec2sim serves an emulated EC2 DescribeClientVpnEndpoints (and STS
// AssumeRole) over HTTP, with generated or file data and optional faults, so
// vpnfacade and its tests run without an AWS account.
//
//	ec2sim --listen 127.0.0.1:8081 --count 2000 --regions eu-west-1,us-east-1
//
// It prints "ec2sim listening on http://ADDR" once it accepts connections.
// Point an AWS SDK at it with a custom endpoint (aws-sdk-go-v2 BaseEndpoint,
// boto3 endpoint_url) and any credentials; the signing region picks the data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp): // --help or -h: the usage is printed
	case err != nil:
		fmt.Fprintln(os.Stderr, "ec2sim:", err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	listen      string
	count       int
	seed        uint64
	regions     []string
	accounts    []string
	file        string
	latency     time.Duration
	throttle    ec2sim.Throttle
	failRate    float64
	mutateEvery time.Duration
	mutateCount int
	unsupported []string
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: ec2sim [flags]\n\n"+
			"Serves an emulated EC2 DescribeClientVpnEndpoints and STS AssumeRole and\n"+
			"GetCallerIdentity over HTTP, for vpnfacade and its tests, without AWS.\n"+
			"The signing region of a request picks its data.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8081", "address to listen on (host:port; port 0 picks a free one)")
	fs.IntVar(&c.count, "count", 100, "number of endpoints to generate (ignored with --file)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the generated data, failures and mutations")
	regions := fs.String("regions", ec2sim.DefaultRegion, "comma-separated regions to spread data over; the first is the region of unsigned requests")
	accounts := fs.String("accounts", ec2sim.DefaultAccount, "comma-separated 12-digit accounts to spread data over; the first is the account of ordinary access keys")
	fs.StringVar(&c.file, "file", "", "JSON file of endpoints (a protojson array or a ListClientVpnEndpointsResponse) instead of generated data")
	fs.DurationVar(&c.latency, "latency", 0, "delay added to every DescribeClientVpnEndpoints page, e.g. 50ms")
	throttle := fs.String("throttle", "off", "rate limit per account and region: off, aws (burst 100, 20/s) or BURST/PER_SECOND, e.g. 10/5")
	fs.Float64Var(&c.failRate, "fail-rate", 0, "probability (0..1) that a request fails with InternalError")
	fs.DurationVar(&c.mutateEvery, "mutate-every", 0, "add, change or delete endpoints every interval, e.g. 10s (0: never)")
	fs.IntVar(&c.mutateCount, "mutate-count", 1, "changes per --mutate-every interval")
	unsupported := fs.String("unsupported-regions", "", "comma-separated regions answering InvalidAction, as regions without Client VPN do")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.count < 0 {
		return config{}, fmt.Errorf("--count must be 0 or more, got %d", c.count)
	}
	c.regions = splitList(*regions)
	c.accounts = splitList(*accounts)
	c.unsupported = splitList(*unsupported)
	if len(c.regions) == 0 || len(c.accounts) == 0 {
		return config{}, errors.New("--regions and --accounts need at least one value each")
	}
	var err error
	if c.throttle, err = parseThrottle(*throttle); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseThrottle reads off, aws, or BURST/PER_SECOND.
func parseThrottle(s string) (ec2sim.Throttle, error) {
	switch s {
	case "", "off":
		return ec2sim.Throttle{}, nil
	case "aws", "on":
		return ec2sim.AWSThrottle(), nil
	}
	burst, rate, ok := strings.Cut(s, "/")
	b, err1 := strconv.Atoi(burst)
	r, err2 := strconv.ParseFloat(rate, 64)
	if !ok || err1 != nil || err2 != nil || b < 1 || !(r > 0) {
		return ec2sim.Throttle{}, fmt.Errorf("--throttle %q: want off, aws, or BURST/PER_SECOND with positive numbers (e.g. 100/20)", s)
	}
	return ec2sim.Throttle{Burst: b, PerSecond: r}, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := parseFlags(args)
	if err != nil {
		return err
	}
	var endpoints []*clientvpnv1.ClientVpnEndpoint
	if c.file != "" {
		endpoints, err = ec2sim.LoadFile(c.file)
	} else {
		endpoints, err = ec2sim.Generate(ec2sim.GenerateOptions{Count: c.count, Seed: c.seed, Regions: c.regions, Accounts: c.accounts})
	}
	if err != nil {
		return err
	}
	sim, err := ec2sim.New(ec2sim.Options{
		Endpoints:          endpoints,
		DefaultRegion:      c.regions[0],
		DefaultAccount:     c.accounts[0],
		Latency:            c.latency,
		Throttle:           c.throttle,
		FailRate:           c.failRate,
		MutateEvery:        c.mutateEvery,
		MutateCount:        c.mutateCount,
		UnsupportedRegions: c.unsupported,
		Seed:               c.seed,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "ec2sim listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
