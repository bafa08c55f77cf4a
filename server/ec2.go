package server

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/ec2query"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
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
	reader        *Reader
	defaultRegion string
	logger        *slog.Logger
	metrics       *requestMetrics // nil: not recorded
}

// NewEC2Handler returns the EC2-compatible handler. Requests whose SigV4
// credential scope names no region are answered for defaultRegion; when that
// is empty too, for every region.
func NewEC2Handler(reader *Reader, defaultRegion string, logger *slog.Logger) *EC2Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &EC2Handler{reader: reader, defaultRegion: defaultRegion, logger: logger}
}

// ServeHTTP implements http.Handler.
func (h *EC2Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := newRequestID()
	action, err := h.serve(w, r, requestID)
	if err != nil {
		apiErr := ec2query.ToAPIError(err)
		if apiErr.Code == ec2query.InternalError().Code {
			h.logger.ErrorContext(r.Context(), "ec2 request failed", "request_id", requestID, "action", action, "error", err)
		}
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
	if region := h.region(r); region != "" {
		q.Filters = append(q.Filters, snapshot.Filter{Name: snapshot.FilterRegion, Values: []string{region}})
	}
	if req.DryRun {
		if err := snapshot.ValidateQuery(q); err != nil {
			return action, err
		}
		return action, vpnfacade.Errorf(vpnfacade.EDRYRUN, "DryRun", "Request would have succeeded, but DryRun flag is set.")
	}
	if !admit(r.Context()) {
		return action, shedEC2(r.Context(), w)
	}
	view, err := h.reader.View(r.Context())
	if err != nil {
		return action, err
	}
	page, err := view.List(r.Context(), q)
	if err != nil {
		return action, err
	}
	endpoints := make([]*clientvpnv1.ClientVpnEndpoint, len(page.Endpoints))
	for i, e := range page.Endpoints {
		if endpoints[i], err = e.Message(); err != nil {
			return action, err
		}
	}
	w.Header().Set("Age", ageSeconds(view.RefreshedAt))
	if err := ec2query.WriteDescribeClientVpnEndpoints(w, requestID, endpoints, page.NextToken); err != nil {
		h.logger.DebugContext(r.Context(), "writing ec2 response", "error", err)
	}
	return action, nil
}

// region returns the region a request is for: its SigV4 credential scope's,
// else the default.
func (h *EC2Handler) region(r *http.Request) string {
	if region := ec2query.SigningRegion(r); region != "" {
		return region
	}
	return h.defaultRegion
}

// newRequestID returns a random id in the UUID layout AWS uses.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
