package access

import (
	"context"
	"log/slog"
)

// Protocols named in audit records.
const (
	ProtocolConnect = "connect"
	ProtocolGRPC    = "grpc"
	ProtocolGRPCWeb = "grpcweb"
	ProtocolEC2     = "ec2"
)

// Audit logs a denied request, once, at warning level: who (the principal's
// name, or AnonymousName when the caller could not be authenticated), over
// which protocol, which procedure, and why. It never logs a credential: the
// reason and message of an *Error never hold one, and any other error is
// logged by its Reason only.
func (a *Authenticator) Audit(ctx context.Context, principal *Principal, protocol, procedure string, err error) {
	name := AnonymousName
	if principal != nil {
		name = principal.name
	}
	reason := ReasonOf(err)
	if reason == "" {
		reason = "error"
	}
	a.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "access denied",
		slog.String("principal", name),
		slog.String("protocol", protocol),
		slog.String("procedure", procedure),
		slog.String("reason", string(reason)),
	)
}
