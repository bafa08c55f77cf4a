// Package server answers clients from the store: the ClientVpnService
// Connect handler (Connect, gRPC and gRPC-Web) and the EC2-compatible Query
// handler, plus the HTTP wiring that serves both on one listener.
package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/access"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// Page sizes of ListClientVpnEndpoints.
const (
	// DefaultPageSize is the page size when a request's max_results is 0
	// (unset). EC2's default differs: see ec2query.PageSizeWhenAbsent.
	DefaultPageSize = 100
	// MaxPageSize is the largest page; a larger max_results is served this
	// many.
	MaxPageSize = 1000
)

// ClientVpnService implements clientvpnv1connect.ClientVpnServiceHandler over
// a store.
type ClientVpnService struct {
	reader *Reader
	watch  *WatchHub             // nil: WatchClientVpnEndpoints is unimplemented
	auth   *access.Authenticator // nil: access control off; audits denials
	cache  *httpCache
	// pending hands responses' endpoints to the codecs (see
	// attachEndpoints): the service answers only through the codecs
	// NewHandler installs.
	pending *pendingEndpoints
}

var _ clientvpnv1connect.ClientVpnServiceHandler = (*ClientVpnService)(nil)

// newClientVpnService returns the Connect service of a handler with opts,
// setting caching headers with cache and handing the endpoints of its
// answers to the codecs through pending.
func newClientVpnService(opts Options, cache *httpCache, pending *pendingEndpoints) *ClientVpnService {
	return &ClientVpnService{reader: opts.Reader, watch: opts.Watch, auth: opts.Access, cache: cache, pending: pending}
}

// ListClientVpnEndpoints implements clientvpnv1connect.ClientVpnServiceHandler.
func (s *ClientVpnService) ListClientVpnEndpoints(ctx context.Context, req *clientvpnv1.ListClientVpnEndpointsRequest) (*clientvpnv1.ListClientVpnEndpointsResponse, error) {
	limit := int(req.GetMaxResults())
	switch {
	case limit < 0:
		return nil, s.reader.connectError(ctx, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldMaxResults,
			"must be between 0 and %d (0 means %d), got %d", MaxPageSize, DefaultPageSize, limit))
	case limit == 0:
		limit = DefaultPageSize
	case limit > MaxPageSize:
		limit = MaxPageSize
	}
	q := snapshot.Query{
		IDs:       req.GetClientVpnEndpointIds(),
		Filters:   make([]snapshot.Filter, len(req.GetFilters())),
		Limit:     limit,
		NextToken: req.GetNextToken(),
		Within:    withinScope(ctx),
	}
	for i, f := range req.GetFilters() {
		q.Filters[i] = snapshot.Filter{Name: f.GetName(), Values: f.GetValues()}
	}
	if err := normalizeEnumFilters(q.Filters); err != nil {
		return nil, s.reader.connectError(ctx, err)
	}
	// The query's limits and validity are checked before it may take an
	// admission slot: a request refused anyway is never shed.
	if err := snapshot.ValidateQuery(q); err != nil {
		return nil, s.reader.connectError(ctx, err)
	}
	if req.GetDryRun() {
		if err := dryRunScope(ctx, q); err != nil {
			s.audit(ctx, err)
			return nil, accessConnectError(err)
		}
		return nil, s.reader.connectError(ctx, errDryRun())
	}
	if why := admit(ctx); why != admitted {
		return nil, shedConnect(ctx, why)
	}
	view, err := s.reader.View(ctx)
	if err != nil {
		return nil, s.reader.connectError(ctx, err)
	}
	page, err := view.List(ctx, q)
	if err != nil {
		return nil, s.cache.notFound(ctx, s.reader.connectError(ctx, err), view)
	}
	s.setReadHeaders(ctx, view)
	res := &clientvpnv1.ListClientVpnEndpointsResponse{
		NextToken: page.NextToken,
		Snapshot:  snapshotInfo(view),
	}
	attachEndpoints(s.pending, res, page.Endpoints)
	return res, nil
}

// GetClientVpnEndpoint implements clientvpnv1connect.ClientVpnServiceHandler.
func (s *ClientVpnService) GetClientVpnEndpoint(ctx context.Context, req *clientvpnv1.GetClientVpnEndpointRequest) (*clientvpnv1.GetClientVpnEndpointResponse, error) {
	if req.GetClientVpnEndpointId() == "" {
		return nil, s.reader.connectError(ctx, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldID,
			"required, e.g. cvpn-endpoint-0123456789abcdef0"))
	}
	view, err := s.reader.View(ctx)
	if err != nil {
		return nil, s.reader.connectError(ctx, err)
	}
	e, err := view.GetWithin(withinScope(ctx), req.GetClientVpnEndpointId(), req.GetRegion(), req.GetAccountId())
	if err != nil {
		return nil, s.cache.notFound(ctx, s.reader.connectError(ctx, err), view)
	}
	s.setReadHeaders(ctx, view)
	res := &clientvpnv1.GetClientVpnEndpointResponse{Snapshot: snapshotInfo(view)}
	attachEndpoints(s.pending, res, []*snapshot.Endpoint{e})
	return res, nil
}

// audit logs a denial made after authentication.
func (s *ClientVpnService) audit(ctx context.Context, err error) {
	if s.auth == nil {
		return
	}
	p, _ := access.FromContext(ctx)
	procedure, protocol := "", ""
	if info, ok := connect.CallInfoForHandlerContext(ctx); ok {
		procedure, protocol = info.Spec().Procedure, info.Peer().Protocol
	}
	s.auth.Audit(ctx, p, protocol, procedure, err)
}

func errDryRun() error {
	return vpnfacade.Errorf(vpnfacade.EDRYRUN, vpnfacade.FieldDryRun, "DryRunOperation: Request would have succeeded, but DryRun flag is set.")
}

func snapshotInfo(v store.View) *clientvpnv1.SnapshotInfo {
	return &clientvpnv1.SnapshotInfo{
		Version:     v.Version,
		RefreshedAt: timestamppb.New(v.RefreshedAt),
		Stale:       v.Stale(),
	}
}

// setReadHeaders sets the HTTP caching headers of a read answered from v
// (see httpCache).
func (s *ClientVpnService) setReadHeaders(ctx context.Context, v store.View) {
	if info, ok := connect.CallInfoForHandlerContext(ctx); ok {
		s.cache.setReadHeaders(ctx, info, v)
	}
}

func ageSeconds(refreshedAt time.Time) string {
	return strconv.FormatInt(int64(max(time.Since(refreshedAt), 0)/time.Second), 10)
}

// Reader hands both transports the snapshot to answer from, applying the
// serve-stale policy, and logs what must not reach clients.
type Reader struct {
	store        store.Store
	maxStaleness time.Duration
	logger       *slog.Logger
}

// ReaderOptions configure a Reader. Store is required; every other zero
// field means the default its comment names.
type ReaderOptions struct {
	// Store holds the snapshots to answer from.
	Store store.Store
	// MaxStaleness is the age beyond which a snapshot is refused with
	// EUNAVAILABLE. 0 serves snapshots of any age.
	MaxStaleness time.Duration
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
}

// NewReader returns a Reader with opts.
func NewReader(opts ReaderOptions) *Reader {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reader{store: opts.Store, maxStaleness: opts.MaxStaleness, logger: logger}
}

// View returns the current snapshot, or EUNAVAILABLE when there is none or it
// is older than the configured maximum staleness.
func (r *Reader) View(ctx context.Context) (store.View, error) {
	view, err := r.store.Current(ctx)
	if err != nil {
		return store.View{}, err
	}
	if age := time.Since(view.RefreshedAt); r.maxStaleness > 0 && age > r.maxStaleness {
		return store.View{}, vpnfacade.Errorf(vpnfacade.EUNAVAILABLE, "",
			"the cached snapshot is %s old, more than the %s this service may serve; refreshes are failing",
			age.Round(time.Second), r.maxStaleness)
	}
	return view, nil
}

// connectError translates an application error into a Connect error. An
// error that is not a *vpnfacade.Error is logged and reported as "internal
// error".
func (r *Reader) connectError(ctx context.Context, err error) error {
	code := vpnfacade.ErrorCodeOf(err)
	// A caller that left or ran out of time is no fault of the service:
	// it is answered Canceled or DeadlineExceeded below, not logged.
	if code == vpnfacade.EINTERNAL && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		r.logger.ErrorContext(ctx, "internal error", "error", err)
	}
	var ce *connect.Error
	fe, _ := errors.AsType[*vpnfacade.Error](err)
	switch code {
	case vpnfacade.EINVALID:
		ce = connect.NewError(connect.CodeInvalidArgument, errors.New(describe(fe)))
		if fe.Field != "" {
			// The ecosystem's machine-readable form of "which field is wrong".
			if detail, derr := connect.NewErrorDetail(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{
				Field: fe.Field, Description: fe.Message,
			}}}); derr == nil {
				ce.AddDetail(detail)
			}
		}
	case vpnfacade.ENOTFOUND:
		ce = connect.NewError(connect.CodeNotFound, errors.New(describe(fe)))
	case vpnfacade.EUNAVAILABLE:
		ce = connect.NewError(connect.CodeUnavailable, errors.New(describe(fe)))
	case vpnfacade.EDRYRUN:
		ce = connect.NewError(connect.CodeFailedPrecondition, errors.New(describe(fe)))
		if detail, derr := connect.NewErrorDetail(dryRunInfo()); derr == nil {
			ce.AddDetail(detail)
		}
	case vpnfacade.ECONFLICT:
		ce = connect.NewError(connect.CodeAborted, errors.New(describe(fe)))
	default:
		switch {
		case errors.Is(err, context.Canceled):
			ce = connect.NewError(connect.CodeCanceled, err)
		case errors.Is(err, context.DeadlineExceeded):
			ce = connect.NewError(connect.CodeDeadlineExceeded, err)
		default:
			ce = connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}
	}
	return ce
}

// describe is the message of a Connect error: the contract's field names
// are the Connect API's own.
func describe(e *vpnfacade.Error) string {
	return e.Describe(func(field string) string { return field })
}

// dryRunInfo is the error detail of a successful dry run: the reason is EC2's
// error code, so clients can tell it from other FAILED_PRECONDITION errors.
func dryRunInfo() *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: "DryRunOperation", Domain: "vpnfacade.clientvpn.v1"}
}
