package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures an Authenticator.
type Options struct {
	// Path is the access file. Required.
	Path string
	// Logger receives reloads, rejected files and denied requests (see
	// Audit). Default: discard.
	Logger *slog.Logger
	// Now is the clock SigV4 dates are checked against. Default: time.Now.
	Now func() time.Time
	// ClockSkew is how far a SigV4 date may be from Now, either way.
	// Default: 15 minutes, as AWS allows.
	ClockSkew time.Duration
	// MaxBodyBytes bounds the body SigV4 verification reads to hash.
	// Default: 1 MiB.
	MaxBodyBytes int64
	// OnReload, when set, is called after each reload attempt with its
	// error (nil when a new file was loaded or the file did not change). It
	// lets tests and metrics wait for reloads without polling.
	OnReload func(error)
}

// Defaults of Options.
const (
	DefaultClockSkew    = 15 * time.Minute
	DefaultMaxBodyBytes = 1 << 20
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = DefaultClockSkew
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return o
}

// Authenticator turns a request's credentials into a *Principal, using the
// current access file. It is safe for concurrent use; Reload swaps the file
// atomically, so a request in flight finishes with the file it started with
// and none is dropped.
type Authenticator struct {
	opts     Options
	config   atomic.Pointer[Config]
	reloadMu sync.Mutex // one reload at a time
}

// New reads and validates the access file and returns an Authenticator
// using it. A file that cannot be read or is invalid is an error: the
// service must not start with access control silently off.
func New(opts Options) (*Authenticator, error) {
	if opts.Path == "" {
		return nil, errors.New("access: Options.Path is required")
	}
	a := &Authenticator{opts: opts.withDefaults()}
	data, err := os.ReadFile(a.opts.Path)
	if err != nil {
		return nil, fmt.Errorf("reading access file: %w", err)
	}
	cfg, err := ParseFile(data)
	if err != nil {
		return nil, err
	}
	a.config.Store(cfg)
	a.opts.Logger.Info("access file loaded", "path", a.opts.Path, "principals", len(cfg.principals))
	return a, nil
}

// Config returns the access file in use.
func (a *Authenticator) Config() *Config { return a.config.Load() }

// Reload reads the access file again and, when it is valid and changed,
// makes it the one in use. A file that cannot be read or is invalid is
// logged and returned as an error; the previous file stays in use. Main
// calls Reload on SIGHUP; Watch calls it when the file changes.
func (a *Authenticator) Reload() error {
	err := a.reload()
	if a.opts.OnReload != nil {
		a.opts.OnReload(err)
	}
	return err
}

func (a *Authenticator) reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	data, err := os.ReadFile(a.opts.Path)
	if err != nil {
		err = fmt.Errorf("reading access file: %w", err)
		a.opts.Logger.Error("access file not reloaded; keeping the previous one", "path", a.opts.Path, "error", err)
		return err
	}
	prev := a.config.Load()
	if prev.sameFile(data) {
		return nil
	}
	cfg, err := ParseFile(data)
	if err != nil {
		a.opts.Logger.Error("access file not reloaded; keeping the previous one", "path", a.opts.Path, "error", err)
		return err
	}
	cfg.inherit(prev)
	a.config.Store(cfg)
	a.opts.Logger.Info("access file reloaded", "path", a.opts.Path, "principals", len(cfg.principals))
	return nil
}

// Bearer returns the principal holding token. The token is hashed with
// SHA-256 and compared with every listed hash in constant time, so neither
// the answer's timing nor an error reveals which hash came close.
func (a *Authenticator) Bearer(token string) (*Principal, error) {
	if token == "" {
		return nil, denied(ReasonMissing, "no bearer token")
	}
	sum := sha256.Sum256([]byte(token))
	var found *Principal
	tokens := a.config.Load().tokens
	for i := range tokens {
		e := &tokens[i]
		if subtle.ConstantTimeCompare(sum[:], e.hash[:]) == 1 {
			found = e.principal
		}
	}
	if found == nil {
		return nil, denied(ReasonUnknown, "the bearer token is not valid")
	}
	return found, nil
}

// Certificate returns the principal of a verified TLS client certificate.
// Its identity is its leaf's URI SANs (such as a SPIFFE id) when it has any,
// else its subject common name: a certificate with URI SANs is never taken
// by its CN, which its holder may have had more say in. A connection
// without a verified chain carries no certificate identity (ReasonMissing);
// a verified certificate whose identity no principal lists is ReasonUnknown.
func (a *Authenticator) Certificate(state *tls.ConnectionState) (*Principal, error) {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return nil, denied(ReasonMissing, "no verified client certificate")
	}
	leaf := state.VerifiedChains[0][0]
	certs := a.config.Load().certs
	if len(leaf.URIs) > 0 {
		for _, u := range leaf.URIs {
			if p, ok := certs[u.String()]; ok {
				return p, nil
			}
		}
	} else if cn := leaf.Subject.CommonName; cn != "" {
		if p, ok := certs[cn]; ok {
			return p, nil
		}
	}
	return nil, denied(ReasonUnknown, "the client certificate's identity %s is not in the access file", clip(certIdentity(state)))
}

// certIdentity is the identity a verified certificate presents, for
// messages: its first URI SAN, else its subject CN.
func certIdentity(state *tls.ConnectionState) string {
	leaf := state.VerifiedChains[0][0]
	if len(leaf.URIs) > 0 {
		return leaf.URIs[0].String()
	}
	return leaf.Subject.CommonName
}

// HTTP authenticates a Connect, gRPC or gRPC-Web request: Credentials with
// the request's headers and TLS connection state.
func (a *Authenticator) HTTP(r *http.Request) (*Principal, error) {
	return a.Credentials(r.Header, r.TLS)
}

// Credentials authenticates a caller by its request headers and its TLS
// connection state (nil: not TLS). A bearer token, when there is an
// Authorization header, decides: it must be valid, even on a connection
// with a client certificate, so a wrong token is never covered up. Without
// one, a verified client certificate decides. Without either the caller is
// ReasonMissing.
func (a *Authenticator) Credentials(header http.Header, state *tls.ConnectionState) (*Principal, error) {
	if values := header.Values("Authorization"); len(values) > 0 {
		if len(values) > 1 {
			return nil, denied(ReasonMalformed, "more than one Authorization header")
		}
		token, err := ParseBearer(values[0])
		if err != nil {
			return nil, err
		}
		return a.Bearer(token)
	}
	if state != nil && len(state.VerifiedChains) > 0 {
		return a.Certificate(state)
	}
	return nil, denied(ReasonMissing, "no credentials: send Authorization: Bearer <token> or a client certificate")
}

// Authorize takes one request from p's rate limit: ReasonRateLimited when
// p is over it.
func Authorize(p *Principal) error {
	if !p.Allow() {
		return denied(ReasonRateLimited, "rate limit of principal %q exceeded", p.name)
	}
	return nil
}
