package access

import (
	"context"

	"golang.org/x/time/rate"
)

// AnonymousName is the name of the caller when access control is off, and
// the name audit logs give a caller that could not be authenticated.
const AnonymousName = "anonymous"

// Principal is an authenticated caller: its name from the access file, what
// it may read and its rate limit. A Principal is immutable and safe for
// concurrent use.
type Principal struct {
	name    string
	scope   *Scope
	admin   bool
	limiter *rate.Limiter // nil: unlimited
}

// Name is the principal's name in the access file, or AnonymousName.
func (p *Principal) Name() string { return p.name }

// Scope is what the principal may read.
func (p *Principal) Scope() *Scope { return p.scope }

// Admin reports whether the principal may use the admin service.
func (p *Principal) Admin() bool { return p.admin }

// Allow takes one request from the principal's rate limit and reports
// whether it may proceed. A principal without a limit is always allowed.
func (p *Principal) Allow() bool {
	return p.limiter == nil || p.limiter.Allow()
}

// Anonymous returns the principal of every caller when access control is
// off: named AnonymousName, allowed to read everything, not an admin, not
// rate limited.
func Anonymous() *Principal {
	return &Principal{name: AnonymousName, scope: AllScope()}
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries, if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
