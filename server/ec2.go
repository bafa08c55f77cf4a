package server

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/access"
	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/tracing"
)

// ec2Limits are the query engine's limits, as the EC2 endpoint enforces them
// while it reads a request.
var ec2Limits = ec2query.Limits{
	MaxBytes:        MaxRequestBytes,
	IDs:             snapshot.MaxIDs,
	Filters:         snapshot.MaxFilters,
	ValuesPerFilter: snapshot.MaxValuesPerFilter,
	ValueLength:     snapshot.MaxValueLength,
}

// EC2Handler answers the EC2 Query API's DescribeClientVpnEndpoints from the
// cache, so that boto3, the AWS CLI and the AWS SDKs pointed at vpnfacade
// (AWS_ENDPOINT_URL_EC2) read it unchanged. Every other action is answered
// with InvalidAction.
type EC2Handler struct {
	reader  *Reader
	regions []string
	logger  *slog.Logger
	metrics *requestMetrics       // nil: not recorded
	auth    *access.Authenticator // nil: access control off
	cache   *httpCache            // caching headers of answers
	tracer  trace.Tracer          // nil: no spans
}

// newEC2Handler returns the EC2-compatible handler of a handler with opts
// (defaults applied), recording in metrics (nil: nothing) and setting
// caching headers with cache. As EC2 answers for the region its endpoint
// serves, a request is answered for the region of its SigV4 credential
// scope, which must be one of opts.Regions; an unsigned request for the
// only region, or with an error when there are several. With no regions,
// requests are not scoped.
func newEC2Handler(opts Options, metrics *requestMetrics, cache *httpCache) *EC2Handler {
	h := &EC2Handler{reader: opts.Reader, regions: slices.Clone(opts.Regions), logger: opts.Logger,
		metrics: metrics, auth: opts.Access, cache: cache}
	if opts.TracerProvider != nil {
		h.tracer = opts.TracerProvider.Tracer(scope)
	}
	return h
}

// noopSpan records nothing.
var noopSpan = trace.SpanFromContext(context.Background())

// ServeHTTP implements http.Handler.
func (h *EC2Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := ec2query.NewRequestID()
	span := noopSpan // without tracing, never the span of an outer handler
	if h.tracer != nil {
		// A server span continuing the caller's W3C trace context.
		ctx := tracing.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span = h.tracer.Start(ctx, "EC2", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("rpc.system", "aws-api"),
			attribute.String("rpc.service", "EC2"),
			attribute.String("aws.request_id", requestID)))
		defer span.End()
		r = r.WithContext(ctx)
	}
	action, err := h.serve(w, r, requestID)
	if action != "" {
		// One of a few names, never the caller's text.
		span.SetName("EC2/" + action)
		span.SetAttributes(attribute.String("rpc.method", action))
	}
	if err != nil {
		apiErr := ec2query.ToAPIError(err)
		span.SetAttributes(attribute.String("aws.error.code", apiErr.Code))
		if apiErr.Code == ec2query.InternalError().Code {
			span.SetStatus(codes.Error, apiErr.Code)
		}
		if apiErr.Code == ec2query.InternalError().Code {
			h.logger.ErrorContext(r.Context(), "ec2 request failed", "request_id", requestID, "action", action, "error", err)
		}
		w.Header().Set("Cache-Control", "no-store")
		if werr := ec2query.WriteError(w, requestID, apiErr); werr != nil {
			h.logger.DebugContext(r.Context(), "writing ec2 error", "error", werr)
		}
		h.observe(action, apiErr.Code, start)
		return
	}
	h.observe(action, "ok", start)
}

func (h *EC2Handler) observe(action, code string, start time.Time) {
	if h.metrics != nil {
		if action == "" {
			action = "unknown"
		}
		h.metrics.observe("ec2", action, code, time.Since(start))
	}
}

// serve answers one request; an error is written by ServeHTTP.
func (h *EC2Handler) serve(w http.ResponseWriter, r *http.Request, requestID string) (action string, err error) {
	var principal *access.Principal
	if h.auth != nil {
		// Verified before the form is read: verification reads the body
		// and puts it back.
		signed, err := h.auth.SigV4(r)
		principal = signed.Principal
		if err == nil {
			err = access.Authorize(principal)
		}
		if err != nil {
			h.auth.Audit(r.Context(), principal, access.ProtocolEC2, h.auditAction(w, r), err)
			return "", accessEC2Error(err)
		}
	}
	form, err := ec2query.ReadFormWithin(w, r, ec2Limits)
	if err != nil {
		return "", err
	}
	action, _, err = ec2query.ParseAction(form)
	if err != nil {
		return "", err
	}
	if action != ec2query.ActionDescribeClientVpnEndpoints {
		return "unsupported", ec2query.InvalidAction(action)
	}
	req, err := ec2query.ParseDescribeClientVpnEndpointsWithin(form, ec2Limits)
	if err != nil {
		return action, err
	}
	q := snapshot.Query{
		IDs:       req.ClientVpnEndpointIDs,
		Limit:     req.PageSize(),
		NextToken: req.NextToken,
	}
	for _, f := range req.Filters {
		q.Filters = append(q.Filters, snapshot.Filter{Name: f.Name, Values: f.Values})
	}
	region, err := h.region(r)
	if err != nil {
		return action, err
	}
	if region != "" {
		// Endpoints of other regions are invisible, as on EC2: an id held
		// only there is not found.
		q.Within = func(p vpnfacade.PartitionKey) bool { return p.Region == region }
	}
	if principal != nil && !principal.Scope().All() {
		// And so are those of accounts and regions the caller may not read.
		scope := principal.Scope()
		q.Within = func(p vpnfacade.PartitionKey) bool {
			return (region == "" || p.Region == region) && scope.Allows(p.AccountID, p.Region)
		}
	}
	if req.DryRun {
		if err := snapshot.ValidateQuery(q); err != nil {
			return action, err
		}
		if principal != nil && !principal.Scope().AllowsRegion(region) {
			err := &access.Error{Reason: access.ReasonOutOfScope, Message: "You are not authorized to perform this operation."}
			h.auth.Audit(r.Context(), principal, access.ProtocolEC2, action, err)
			return action, accessEC2Error(err)
		}
		return action, vpnfacade.Errorf(vpnfacade.EDRYRUN, vpnfacade.FieldDryRun, "Request would have succeeded, but DryRun flag is set.")
	}
	if why := admit(r.Context()); why != admitted {
		return action, shedEC2(r.Context(), w, why)
	}
	view, err := h.reader.View(r.Context())
	if err != nil {
		return action, err
	}
	page, err := view.List(r.Context(), q)
	if err != nil {
		return action, err
	}
	// Each endpoint's XML is encoded once per snapshot, by the first
	// request that shows it; the rest copy it.
	items := make([][]byte, len(page.Endpoints))
	for i, e := range page.Endpoints {
		if items[i], err = e.EC2XML(); err != nil {
			return action, err
		}
	}
	h.cache.setHeaders(w.Header(), view, "")
	if err := ec2query.WriteDescribeClientVpnEndpointsItems(w, requestID, items, page.NextToken); err != nil {
		h.logger.DebugContext(r.Context(), "writing ec2 response", "error", err)
	}
	return action, nil
}

// auditAction names the action of a denied request for the audit log: the
// form's Action when it is one this handler serves, else "unknown", so
// that nothing a caller chose reaches the log.
func (h *EC2Handler) auditAction(w http.ResponseWriter, r *http.Request) string {
	form, err := ec2query.ReadForm(w, r, MaxRequestBytes)
	if err == nil && form.Get("Action") == ec2query.ActionDescribeClientVpnEndpoints {
		return ec2query.ActionDescribeClientVpnEndpoints
	}
	return "unknown"
}

// region returns the region a request is for: its SigV4 credential scope's,
// or for an unsigned request the cache's only region; "" when the handler
// knows no regions.
func (h *EC2Handler) region(r *http.Request) (string, error) {
	if len(h.regions) == 0 {
		return ec2query.SigningRegion(r), nil
	}
	region := ec2query.SigningRegion(r)
	switch {
	case region == "" && len(h.regions) == 1:
		return h.regions[0], nil
	case region == "":
		return "", ec2query.NewAPIError(ec2query.CodeInvalidParameterValue, http.StatusBadRequest,
			"The request is not signed, so it names no region, and this endpoint caches several (%s). Sign it for one of them, e.g. AWS_REGION=%s or --region %s.",
			strings.Join(h.regions, ", "), h.regions[0], h.regions[0])
	case !slices.Contains(h.regions, region):
		return "", ec2query.NewAPIError(ec2query.CodeInvalidParameterValue, http.StatusBadRequest,
			"This endpoint does not cache region %s; it caches %s.", vpnfacade.Quote(region), strings.Join(h.regions, ", "))
	}
	return region, nil
}
