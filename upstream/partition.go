package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// unsupportedCodes are the errors a region answers with when it does not
// offer Client VPN: the partition is then empty, not failed.
var unsupportedCodes = map[string]bool{
	"InvalidAction":        true,
	"UnsupportedOperation": true,
}

// Partition reads one account in one region.
type Partition struct {
	accountID, region string
	client            *ec2.Client
	pageSize          int32
	log               *slog.Logger
	tracer            trace.Tracer
	counters          counters
	unsupportedLogged atomic.Bool
}

// counters are a partition's attempt counters (see Stats).
type counters struct {
	calls, throttles, errors, pages atomic.Uint64
}

// Stats are a partition's counters since the Source was built.
type Stats struct {
	// AccountID and Region name the partition.
	AccountID, Region string
	// Calls counts HTTP attempts sent to EC2, retries included.
	Calls uint64
	// Throttles counts attempts refused with a throttling error
	// (RequestLimitExceeded and the SDK's other throttle codes).
	Throttles uint64
	// Errors counts attempts that failed otherwise (other API errors,
	// transport errors), not counting "Client VPN not offered here".
	Errors uint64
	// Pages counts pages read successfully.
	Pages uint64
}

func newPartition(base aws.Config, accountID, region string, creds aws.CredentialsProvider, pageSize int32, log *slog.Logger, tracer trace.Tracer) *Partition {
	p := &Partition{
		accountID: accountID,
		region:    region,
		pageSize:  pageSize,
		log:       log.With("account", accountID, "region", region),
		tracer:    tracer,
	}
	p.client = ec2.NewFromConfig(base, func(o *ec2.Options) {
		o.Region = region
		o.Credentials = creds
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			// After the retry middleware: runs once per attempt.
			return stack.Finalize.Insert(attemptCounter{p}, "Retry", middleware.After)
		})
	})
	return p
}

// AccountID returns the partition's account.
func (p *Partition) AccountID() string { return p.accountID }

// Region returns the partition's region.
func (p *Partition) Region() string { return p.region }

// Stats returns the partition's counters.
func (p *Partition) Stats() Stats {
	return Stats{
		AccountID: p.accountID,
		Region:    p.region,
		Calls:     p.counters.calls.Load(),
		Throttles: p.counters.throttles.Load(),
		Errors:    p.counters.errors.Load(),
		Pages:     p.counters.pages.Load(),
	}
}

// Read lists every endpoint of the partition, page by page, and maps each to
// the contract's type. It returns all of them or an error, never a partial
// list: a page that fails (after the SDK's retries) discards the pages read
// before it. A region that does not offer Client VPN (InvalidAction,
// UnsupportedOperation) reads as empty.
func (p *Partition) Read(ctx context.Context) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	pager := ec2.NewDescribeClientVpnEndpointsPaginator(p.client,
		&ec2.DescribeClientVpnEndpointsInput{MaxResults: aws.Int32(p.pageSize)},
		func(o *ec2.DescribeClientVpnEndpointsPaginatorOptions) { o.StopOnDuplicateToken = true })
	var (
		out  []*clientvpnv1.ClientVpnEndpoint
		sent *string // the token of the page being read; nil for the first
		seen = map[string]int{}
	)
	for page := 1; pager.HasMorePages(); page++ {
		res, err := p.nextPage(ctx, pager, page)
		if err != nil {
			if code := apiErrorCode(err); unsupportedCodes[code] {
				if !p.unsupportedLogged.Swap(true) {
					p.log.InfoContext(ctx, "Client VPN is not offered in this region; reading it as empty", "code", code)
				}
				return nil, nil
			}
			return nil, fmt.Errorf("read %s/%s: page %d: %w", p.accountID, p.region, page, err)
		}
		p.counters.pages.Add(1)
		if next := aws.ToString(res.NextToken); next != "" && next == aws.ToString(sent) {
			// The paginator stops on a repeated token; the listing would be
			// incomplete, so the read fails instead of returning it.
			return nil, fmt.Errorf("read %s/%s: page %d: EC2 returned the same next token twice", p.accountID, p.region, page)
		}
		sent = res.NextToken
		for _, e := range res.ClientVpnEndpoints {
			m := EndpointFromSDK(e, p.accountID, p.region)
			id := m.GetClientVpnEndpointId()
			if i, dup := seen[id]; dup {
				// The listing moved under the pager: keep the newest copy.
				p.log.WarnContext(ctx, "endpoint listed twice in one read; keeping the later copy", "endpoint", id, "page", page)
				out[i] = m
				continue
			}
			seen[id] = len(out)
			out = append(out, m)
		}
	}
	return out, nil
}

// nextPage reads one page within a client span.
func (p *Partition) nextPage(ctx context.Context, pager *ec2.DescribeClientVpnEndpointsPaginator, page int) (*ec2.DescribeClientVpnEndpointsOutput, error) {
	ctx, span := p.tracer.Start(ctx, "EC2/DescribeClientVpnEndpoints", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("rpc.system", "aws-api"),
			attribute.String("rpc.service", "EC2"),
			attribute.String("rpc.method", "DescribeClientVpnEndpoints"),
			attribute.String("cloud.account.id", p.accountID),
			attribute.String("cloud.region", p.region),
			attribute.Int("vpnfacade.page", page),
		))
	defer span.End()
	res, err := pager.NextPage(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "DescribeClientVpnEndpoints failed")
		span.RecordError(err)
		if code := apiErrorCode(err); code != "" {
			span.SetAttributes(attribute.String("aws.error.code", code))
		}
		return nil, err
	}
	span.SetAttributes(attribute.Int("vpnfacade.page.endpoints", len(res.ClientVpnEndpoints)))
	if id, ok := awsmiddleware.GetRequestIDMetadata(res.ResultMetadata); ok {
		span.SetAttributes(attribute.String("aws.request_id", id))
	}
	return res, nil
}

// apiErrorCode returns the AWS error code in err's chain, or "".
func apiErrorCode(err error) string {
	if ae, ok := errors.AsType[smithy.APIError](err); ok {
		return ae.ErrorCode()
	}
	return ""
}

// isThrottle reports whether err is one the SDK's retryer treats as
// throttling (RequestLimitExceeded, Throttling, HTTP 429, ...).
var isThrottle = retry.IsErrorThrottles(retry.DefaultThrottles)

// attemptCounter is a finalize-step middleware placed after the retry
// middleware, so that it sees every attempt: it counts calls, throttles and
// errors and logs throttling.
type attemptCounter struct{ p *Partition }

// ID implements middleware.FinalizeMiddleware.
func (attemptCounter) ID() string { return "vpnfacade/upstream/attemptCounter" }

// HandleFinalize implements middleware.FinalizeMiddleware.
func (m attemptCounter) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	c := &m.p.counters
	c.calls.Add(1)
	out, md, err := next.HandleFinalize(ctx, in)
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(ctx.Err(), context.Canceled):
		// A cancelled call (the refresher stopped, e.g. on losing its
		// lease) is no EC2 failure, whatever error it ends with (a
		// cancellation cause, "deserialization failed", ...).
	case isThrottle.IsErrorThrottle(err).Bool():
		c.throttles.Add(1)
		m.p.log.WarnContext(ctx, "EC2 throttled a call; the SDK retries it", "code", apiErrorCode(err), "throttles", c.throttles.Load())
	case unsupportedCodes[apiErrorCode(err)]:
	default:
		c.errors.Add(1)
		m.p.log.WarnContext(ctx, "EC2 call failed", "error", err)
	}
	return out, md, err
}
