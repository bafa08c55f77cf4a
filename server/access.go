package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"

	"connectrpc.com/connect"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/access"
	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// tlsStateKey carries a request's TLS connection state from the HTTP layer
// to the access interceptor, which connect-go does not hand it.
type tlsStateKey struct{}

// withTLSState puts r.TLS in the request context for accessInterceptor.
func withTLSState(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			r = r.WithContext(context.WithValue(r.Context(), tlsStateKey{}, r.TLS))
		}
		next.ServeHTTP(w, r)
	})
}

// accessInterceptor authenticates every ClientVpnService call (unary and
// streaming, over Connect, gRPC and gRPC-Web), takes it from the caller's
// rate limit and puts the caller in the context, where the handlers find
// the scope they answer within. Denials are audited once and answered with
// Unauthenticated or ResourceExhausted.
type accessInterceptor struct {
	auth *access.Authenticator
}

var _ connect.Interceptor = (*accessInterceptor)(nil)

func (i *accessInterceptor) authenticate(ctx context.Context, spec connect.Spec, peer connect.Peer, header http.Header) (context.Context, error) {
	state, _ := ctx.Value(tlsStateKey{}).(*tls.ConnectionState)
	p, err := i.auth.Credentials(header, state)
	if err == nil {
		err = access.Authorize(p)
	}
	if err != nil {
		i.auth.Audit(ctx, p, peer.Protocol, spec.Procedure, err)
		ce := accessConnectError(err)
		// The challenge is an HTTP header. gRPC sends an error's metadata
		// as HTTP trailers, where WWW-Authenticate is not allowed (net/http
		// drops it and logs "ignoring invalid trailer").
		if connect.CodeOf(ce) == connect.CodeUnauthenticated && peer.Protocol != connect.ProtocolGRPC {
			ce.(*connect.Error).Meta().Set("WWW-Authenticate", `Bearer realm="vpnfacade"`)
		}
		return nil, ce
	}
	return access.NewContext(ctx, p), nil
}

// WrapUnary implements connect.Interceptor.
func (i *accessInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.authenticate(ctx, req.Spec(), req.Peer(), req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor.
func (i *accessInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *accessInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authenticate(ctx, conn.Spec(), conn.Peer(), conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// accessConnectError translates a denial into a Connect error.
func accessConnectError(err error) error {
	var denial *access.Error
	if !errors.As(err, &denial) {
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	switch {
	case denial.Reason == access.ReasonRateLimited:
		return connect.NewError(connect.CodeResourceExhausted, errors.New(denial.Message))
	case denial.Reason == access.ReasonOutOfScope:
		return connect.NewError(connect.CodePermissionDenied, errors.New(denial.Message))
	default:
		return connect.NewError(connect.CodeUnauthenticated, errors.New(denial.Message))
	}
}

// accessEC2Error translates a denial into the EC2 error to send.
func accessEC2Error(err error) error {
	var denial *access.Error
	if !errors.As(err, &denial) {
		return err // logged and answered as InternalError
	}
	return ec2query.NewAPIError(denial.EC2Code(), denial.HTTPStatus(), "%s", denial.Message)
}

// withinScope returns which partitions the caller in ctx may read, for
// Query.Within and GetWithin, or nil when it may read everything (no access
// control, or an unlimited principal).
func withinScope(ctx context.Context) func(vpnfacade.PartitionKey) bool {
	p, ok := access.FromContext(ctx)
	if !ok || p.Scope().All() {
		return nil
	}
	scope := p.Scope()
	return func(k vpnfacade.PartitionKey) bool { return scope.Allows(k.AccountID, k.Region) }
}

// dryRunScope checks a dry run's region and account-id filters against the
// caller's scope: a dry run naming only regions (or accounts) the caller may
// not read would fail, so it answers that instead of DryRunOperation.
func dryRunScope(ctx context.Context, q snapshot.Query) error {
	p, ok := access.FromContext(ctx)
	if !ok || p.Scope().All() {
		return nil
	}
	for _, f := range q.Filters {
		var allows func(string) bool
		switch f.Name {
		case snapshot.FilterRegion:
			allows = p.Scope().AllowsRegion
		case snapshot.FilterAccountID:
			allows = p.Scope().AllowsAccount
		default:
			continue
		}
		any := false
		for _, v := range f.Values {
			if allows(v) || containsWildcard(v) {
				any = true
			}
		}
		if !any {
			return &access.Error{Reason: access.ReasonOutOfScope, Message: "You are not authorized to perform this operation: the " + f.Name + " filter names only values outside your access."}
		}
	}
	return nil
}

func containsWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}
