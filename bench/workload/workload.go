// Package workload builds the calls the benchmarks make: ClientVpnService
// Get and List over the generated Connect clients (gRPC or Connect JSON, on
// HTTP/2 without TLS), and the same reads made directly against EC2 with
// aws-sdk-go-v2, as a service without the facade would make them. Each
// returns a load.Op.
package workload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/vpnfacade/vpnfacade/bench/load"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/upstream"
)

// Protocols a client can speak.
const (
	// GRPC is gRPC over HTTP/2 (binary protobuf).
	GRPC = "grpc"
	// ConnectJSON is the Connect protocol with JSON bodies.
	ConnectJSON = "connect-json"
	// ConnectProto is the Connect protocol with binary protobuf bodies.
	ConnectProto = "connect-proto"
)

// Protocols lists every protocol NewClients accepts.
func Protocols() []string { return []string{GRPC, ConnectJSON, ConnectProto} }

// Filter is a filter of a List call, as both APIs spell it.
type Filter struct {
	// Name is the filter name, e.g. "transport-protocol".
	Name string
	// Values are ORed.
	Values []string
}

// ListFilters are the two filters every List benchmark uses: a tag and the
// transport protocol, which about one endpoint in seven of ec2sim's
// generated data matches.
func ListFilters() []Filter {
	return []Filter{
		{Name: "tag:Environment", Values: []string{"production"}},
		{Name: "transport-protocol", Values: []string{"udp"}},
	}
}

// H2CClient returns an HTTP client speaking only HTTP/2 without TLS (h2c,
// prior knowledge), with its own connection pool.
func H2CClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// NewClients returns conns ClientVpnService clients of baseURL speaking
// protocol, each on its own HTTP/2 connection. Workers share them round
// robin. The clients keep connect-go's defaults otherwise (they ask for
// gzipped responses) unless gzip is false.
func NewClients(baseURL, protocol string, conns int, gzip bool) ([]clientvpnv1connect.ClientVpnServiceClient, error) {
	var opts []connect.ClientOption
	switch protocol {
	case GRPC:
		opts = append(opts, connect.WithGRPC())
	case ConnectJSON:
		opts = append(opts, connect.WithProtoJSON())
	case ConnectProto:
	default:
		return nil, fmt.Errorf("workload: unknown protocol %q; use one of %s", protocol, strings.Join(Protocols(), ", "))
	}
	if !gzip {
		opts = append(opts, connect.WithAcceptCompression("gzip", nil, nil))
	}
	if conns < 1 {
		return nil, fmt.Errorf("workload: conns must be at least 1, got %d", conns)
	}
	out := make([]clientvpnv1connect.ClientVpnServiceClient, conns)
	for i := range out {
		out[i] = clientvpnv1connect.NewClientVpnServiceClient(H2CClient(), baseURL, opts...)
	}
	return out, nil
}

// Target names one endpoint to read.
type Target struct {
	// ID is the endpoint id.
	ID string
	// Region holds the endpoint; direct reads need it to pick the regional
	// API, the facade does not.
	Region string
}

// pick returns the target of a worker's n-th call: each worker walks the
// targets with a large stride from its own offset, so that consecutive
// calls (and workers) read unrelated endpoints.
func pick(targets []Target, worker, n int) Target {
	const stride = 7919 // prime, coprime with any realistic count
	return targets[(worker*len(targets)/64+n*stride)%len(targets)]
}

// counters is per-worker state: each worker touches only its own slot.
type counters struct {
	n     int
	token string
	_     [40]byte // keep slots on separate cache lines
}

// GetOp returns an Op calling GetClientVpnEndpoint with the id of one of
// targets (by id only, as a caller who knows an id does). It fails when the
// answer is not the endpoint asked for.
func GetOp(clients []clientvpnv1connect.ClientVpnServiceClient, targets []Target, concurrency int) (load.Op, error) {
	if len(targets) == 0 || len(clients) == 0 {
		return nil, errors.New("workload: Get needs at least one target and one client")
	}
	state := make([]counters, concurrency)
	return func(ctx context.Context, worker int) error {
		st := &state[worker]
		t := pick(targets, worker, st.n)
		st.n++
		res, err := clients[worker%len(clients)].GetClientVpnEndpoint(ctx, &clientvpnv1.GetClientVpnEndpointRequest{ClientVpnEndpointId: t.ID})
		if err != nil {
			return err
		}
		if got := res.GetClientVpnEndpoint().GetClientVpnEndpointId(); got != t.ID {
			return fmt.Errorf("asked for %s, got %q", t.ID, got)
		}
		return nil
	}, nil
}

// ListOp returns an Op calling ListClientVpnEndpoints with filters and
// pageSize. Each worker pages through the whole listing with the tokens it
// is given and starts over at the end, so page tokens are decoded as in
// real use. It fails on an empty page that claims a next one.
func ListOp(clients []clientvpnv1connect.ClientVpnServiceClient, filters []Filter, pageSize int32, concurrency int) (load.Op, error) {
	if len(clients) == 0 {
		return nil, errors.New("workload: List needs a client")
	}
	var pf []*clientvpnv1.Filter
	for _, f := range filters {
		pf = append(pf, &clientvpnv1.Filter{Name: f.Name, Values: f.Values})
	}
	state := make([]counters, concurrency)
	return func(ctx context.Context, worker int) error {
		st := &state[worker]
		req := &clientvpnv1.ListClientVpnEndpointsRequest{Filters: pf, MaxResults: pageSize, NextToken: st.token}
		res, err := clients[worker%len(clients)].ListClientVpnEndpoints(ctx, req)
		if err != nil {
			st.token = ""
			return err
		}
		if len(res.GetClientVpnEndpoints()) == 0 && res.GetNextToken() != "" {
			st.token = ""
			return errors.New("empty page with a next token")
		}
		st.token = res.GetNextToken()
		return nil
	}, nil
}

// DirectClients returns an aws-sdk-go-v2 EC2 client per region, calling
// endpointURL (an ec2sim, or the facade's EC2 endpoint) with static
// credentials and otherwise the SDK's defaults: the standard retryer (3
// attempts, exponential backoff, retry quota) and its default HTTP client.
// Shared config files are not read. The one change is the work-around for
// smithy-go's request-body race (upstream.WithoutRequestBodyWriteTo),
// which the facade's own clients use too: without it, a server that
// answers as fast as one on loopback makes the client close its connection
// under the response now and then, and the SDK retry the call (see
// TestDirectClientsKeepTheirConnection). optFns adjust each client's
// options after that.
func DirectClients(ctx context.Context, endpointURL string, regions []string, optFns ...func(*ec2.Options)) (map[string]*ec2.Client, error) {
	out := map[string]*ec2.Client{}
	for _, r := range regions {
		cfg, err := config.LoadDefaultConfig(ctx,
			config.WithRegion(r),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("bench", "bench", "")),
			config.WithSharedConfigFiles([]string{}),
			config.WithSharedCredentialsFiles([]string{}),
			config.WithAPIOptions([]func(*middleware.Stack) error{upstream.WithoutRequestBodyWriteTo}),
		)
		if err != nil {
			return nil, fmt.Errorf("workload: AWS configuration: %w", err)
		}
		cfg.BaseEndpoint = aws.String(endpointURL)
		out[r] = ec2.NewFromConfig(cfg, optFns...)
	}
	return out, nil
}

// DirectGetOp returns an Op calling DescribeClientVpnEndpoints for one id in
// its region, as a service without the facade reads one endpoint.
func DirectGetOp(clients map[string]*ec2.Client, targets []Target, concurrency int) (load.Op, error) {
	if len(targets) == 0 {
		return nil, errors.New("workload: Get needs at least one target")
	}
	for _, t := range targets {
		if clients[t.Region] == nil {
			return nil, fmt.Errorf("workload: no client for region %q of %s", t.Region, t.ID)
		}
	}
	state := make([]counters, concurrency)
	return func(ctx context.Context, worker int) error {
		st := &state[worker]
		t := pick(targets, worker, st.n)
		st.n++
		out, err := clients[t.Region].DescribeClientVpnEndpoints(ctx, &ec2.DescribeClientVpnEndpointsInput{ClientVpnEndpointIds: []string{t.ID}})
		if err != nil {
			return shortAWSError(err)
		}
		if len(out.ClientVpnEndpoints) != 1 || aws.ToString(out.ClientVpnEndpoints[0].ClientVpnEndpointId) != t.ID {
			return fmt.Errorf("asked for %s, got %d endpoints", t.ID, len(out.ClientVpnEndpoints))
		}
		return nil
	}, nil
}

// DirectListOp returns an Op calling DescribeClientVpnEndpoints with filters
// and pageSize, paging with its tokens like ListOp. Worker w reads
// regions[w % len(regions)]: EC2 answers one region per call.
func DirectListOp(clients map[string]*ec2.Client, regions []string, filters []Filter, pageSize int32, concurrency int) (load.Op, error) {
	if len(regions) == 0 {
		return nil, errors.New("workload: List needs a region")
	}
	for _, r := range regions {
		if clients[r] == nil {
			return nil, fmt.Errorf("workload: no client for region %q", r)
		}
	}
	var ef []ec2types.Filter
	for _, f := range filters {
		ef = append(ef, ec2types.Filter{Name: aws.String(f.Name), Values: f.Values})
	}
	state := make([]counters, concurrency)
	return func(ctx context.Context, worker int) error {
		st := &state[worker]
		in := &ec2.DescribeClientVpnEndpointsInput{Filters: ef, MaxResults: aws.Int32(pageSize)}
		if st.token != "" {
			in.NextToken = aws.String(st.token)
		}
		out, err := clients[regions[worker%len(regions)]].DescribeClientVpnEndpoints(ctx, in)
		if err != nil {
			st.token = ""
			return shortAWSError(err)
		}
		st.token = aws.ToString(out.NextToken)
		return nil
	}, nil
}

// shortAWSError keeps the SDK's error but drops its per-request details
// (request ids, attempt timings), so that errors group by kind: the API
// error code, and whether the retryer gave up on attempts or on its quota.
func shortAWSError(err error) error {
	msg := "error"
	var code interface{ ErrorCode() string }
	if errors.As(err, &code) {
		msg = "api error " + code.ErrorCode()
	} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		msg = "canceled"
	} else {
		msg = err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	var attempts *retry.MaxAttemptsError
	var quota ratelimit.QuotaExceededError
	switch {
	case errors.As(err, &quota):
		msg += " (retry quota exhausted)"
	case errors.As(err, &attempts):
		msg += fmt.Sprintf(" (after %d attempts)", attempts.Attempt)
	}
	return errors.New(msg)
}

// WaitServing calls List until it succeeds or timeout passes; it returns how
// long that took.
func WaitServing(ctx context.Context, client clientvpnv1connect.ClientVpnServiceClient, timeout, every time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := client.ListClientVpnEndpoints(cctx, &clientvpnv1.ListClientVpnEndpointsRequest{MaxResults: 1})
		cancel()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("no successful List within %s: %w", timeout, err)
		}
		time.Sleep(every)
	}
}
