package server

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/access"
	"github.com/vpnfacade/vpnfacade/admin"
	adminv1 "github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1"
	"github.com/vpnfacade/vpnfacade/gen/vpnfacade/admin/v1/adminv1connect"
	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// AdminService implements vpnfacade.admin.v1.AdminService: GetStatus from
// this replica's snapshot and the coordinator's lease and report, and
// RefreshNow through the coordinator. With access control, only admin
// principals reach it (adminInterceptor) and each sees the partitions its
// scope allows.
type AdminService struct {
	reader *Reader
	coord  admin.Coordinator
	logger *slog.Logger
	// wait bounds how long RefreshNow waits for the refresh: the response
	// must be written before the connection's write deadline.
	wait time.Duration
}

var _ adminv1connect.AdminServiceHandler = (*AdminService)(nil)

// GetStatus implements adminv1connect.AdminServiceHandler.
func (s *AdminService) GetStatus(ctx context.Context, _ *adminv1.GetStatusRequest) (*adminv1.GetStatusResponse, error) {
	res := &adminv1.GetStatusResponse{Role: roleOf(s.coord.Role()), Replica: s.coord.Replica()}
	within := withinScope(ctx)
	report, reported, err := s.coord.Report(ctx)
	if err != nil {
		return nil, s.unavailable(ctx, err)
	}
	view, err := s.reader.store.Current(ctx)
	switch {
	case err == nil:
		res.Snapshot = &adminv1.SnapshotStatus{
			Version:     view.Version,
			RefreshedAt: timestamppb.New(view.RefreshedAt),
			Age:         durationpb.New(max(0, time.Since(view.RefreshedAt))),
			Stale:       view.Stale(),
			Endpoints:   uint32(view.Len()),
		}
		if within != nil {
			// Say nothing of the partitions outside the caller's scope.
			res.Snapshot.Endpoints, res.Snapshot.Stale = 0, view.BackendStale
		}
		for _, p := range view.Partitions {
			if within != nil && !within(vpnfacade.PartitionKey{AccountID: p.AccountID, Region: p.Region}) {
				continue
			}
			if within != nil {
				res.Snapshot.Endpoints += uint32(p.Endpoints)
				res.Snapshot.Stale = res.Snapshot.Stale || p.Stale
			}
			res.Partitions = append(res.Partitions, partitionStatus(p, report, reported))
		}
		slices.SortFunc(res.Partitions, func(a, b *adminv1.PartitionStatus) int {
			return cmp.Or(cmp.Compare(a.AccountId, b.AccountId), cmp.Compare(a.Region, b.Region))
		})
	case vpnfacade.ErrorCodeOf(err) == vpnfacade.EUNAVAILABLE:
		// Nothing published yet: the rest of the status still helps.
	default:
		return nil, s.unavailable(ctx, err)
	}
	if reported {
		res.Refresher = &adminv1.RefresherStatus{
			Replica:             report.Replica,
			ReportedAt:          timestamppb.New(report.ReportedAt),
			ConsecutiveFailures: uint32(report.ConsecutiveFailures),
		}
		if !report.NextAttempt.IsZero() {
			res.Refresher.NextAttempt = timestamppb.New(report.NextAttempt)
		}
	}
	l, hasLease, err := s.coord.Lease(ctx)
	if err != nil {
		return nil, s.unavailable(ctx, err)
	}
	if hasLease {
		res.Lease = &adminv1.LeaseStatus{Holder: l.Holder, Epoch: l.Epoch}
	}
	return res, nil
}

// partitionStatus describes p, with the leader's counters when its report
// covers p.
func partitionStatus(p snapshot.Partition, report admin.Report, reported bool) *adminv1.PartitionStatus {
	out := &adminv1.PartitionStatus{
		AccountId: p.AccountID,
		Region:    p.Region,
		Endpoints: uint32(p.Endpoints),
		LastError: refresher.ClipError(p.Error),
		Stale:     p.Stale,
	}
	if !p.RefreshedAt.IsZero() {
		out.LastSuccess = timestamppb.New(p.RefreshedAt)
	}
	if !reported {
		return out
	}
	if !report.NextAttempt.IsZero() {
		out.NextAttempt = timestamppb.New(report.NextAttempt)
	}
	i := slices.IndexFunc(report.Partitions, func(r refresher.PartitionStatus) bool {
		return r.AccountID == p.AccountID && r.Region == p.Region
	})
	if i >= 0 {
		out.ConsecutiveFailures = uint32(report.Partitions[i].ConsecutiveFailures)
	}
	return out
}

// RefreshNow implements adminv1connect.AdminServiceHandler.
func (s *AdminService) RefreshNow(ctx context.Context, _ *adminv1.RefreshNowRequest) (*adminv1.RefreshNowResponse, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.wait, errRefreshWait)
	defer cancel()
	out, err := s.coord.RefreshNow(ctx)
	if err != nil {
		return nil, s.refreshError(ctx, err)
	}
	res := &adminv1.RefreshNowResponse{
		Version:     out.Version,
		Changed:     out.Changed,
		RefreshedAt: timestamppb.New(out.RefreshedAt),
		Leader:      out.Leader,
	}
	within := withinScope(ctx)
	for _, p := range out.Partitions {
		if !p.Stale || (within != nil && !within(vpnfacade.PartitionKey{AccountID: p.AccountID, Region: p.Region})) {
			continue
		}
		res.FailedPartitions = append(res.FailedPartitions, partitionStatus(p, admin.Report{}, false))
	}
	return res, nil
}

var errRefreshWait = errors.New("the refresh did not complete in time for this call; it goes on, and GetStatus shows its result")

// refreshError translates RefreshNow's errors.
func (s *AdminService) refreshError(ctx context.Context, err error) error {
	var limited *admin.RateLimitedError
	var failed *admin.RefreshFailedError
	switch {
	case errors.As(err, &limited):
		ce := connect.NewError(connect.CodeResourceExhausted, err)
		secs := int((limited.RetryAfter + time.Second - 1) / time.Second)
		ce.Meta().Set("Retry-After", strconv.Itoa(max(1, secs)))
		if detail, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(limited.RetryAfter)}); derr == nil {
			ce.AddDetail(detail)
		}
		return ce
	case errors.Is(err, admin.ErrNoLeader):
		return connect.NewError(connect.CodeUnavailable, err)
	case errors.As(err, &failed):
		if p, ok := access.FromContext(ctx); ok && !p.Scope().All() {
			// The message names partitions outside the caller's scope.
			return connect.NewError(connect.CodeAborted, errors.New("the forced refresh published nothing: a partition without earlier data failed to read"))
		}
		return connect.NewError(connect.CodeAborted, err)
	case errors.Is(err, errRefreshWait):
		return connect.NewError(connect.CodeDeadlineExceeded, errRefreshWait)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("the caller's deadline passed; the refresh goes on"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("the call was canceled; the refresh goes on"))
	}
	return s.unavailable(ctx, err)
}

// unavailable logs err (it may name Redis hosts) and answers Unavailable
// without it.
func (s *AdminService) unavailable(ctx context.Context, err error) error {
	s.logger.WarnContext(ctx, "admin service: the shared store cannot be read", "error", err)
	return connect.NewError(connect.CodeUnavailable, errors.New("the shared store cannot be reached; retry later"))
}

func roleOf(r admin.Role) adminv1.Role {
	switch r {
	case admin.RoleLeader:
		return adminv1.Role_ROLE_LEADER
	case admin.RoleFollower:
		return adminv1.Role_ROLE_FOLLOWER
	case admin.RoleSolo:
		return adminv1.Role_ROLE_SOLO
	}
	return adminv1.Role_ROLE_UNSPECIFIED
}

// adminInterceptor admits only admin principals to the admin service, after
// accessInterceptor authenticated them.
type adminInterceptor struct {
	auth *access.Authenticator
}

var _ connect.Interceptor = (*adminInterceptor)(nil)

// WrapUnary implements connect.Interceptor.
func (i *adminInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		p, ok := access.FromContext(ctx)
		if !ok || !p.Admin() {
			denial := &access.Error{Reason: access.ReasonOutOfScope, Message: "the admin service is for principals with admin: true in the access file"}
			i.auth.Audit(ctx, p, req.Peer().Protocol, req.Spec().Procedure, denial)
			return nil, connect.NewError(connect.CodePermissionDenied, errors.New(denial.Message))
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *adminInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor: the service has no
// streams; refuse any.
func (i *adminInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return connect.NewError(connect.CodeUnimplemented, errors.New("the admin service has no streams"))
	}
}
