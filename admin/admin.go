// Package admin carries the status service's work between replicas: a
// RefreshNow request, from whichever replica received it, to the replica
// that leads (refreshes), coalesced and rate limited, with the outcome
// back; and the leader's refresher status, shared so that every replica's
// GetStatus shows it. Local serves a process alone with an in-memory store;
// Redis serves replicas sharing a Redis.
package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Role is a replica's part in refreshing.
type Role int

// Roles.
const (
	// RoleSolo: alone with an in-memory store, always refreshing.
	RoleSolo Role = iota + 1
	// RoleLeader: holds the writer lease and refreshes.
	RoleLeader
	// RoleFollower: another replica leads (or nobody yet).
	RoleFollower
)

// String names the role in lower case.
func (r Role) String() string {
	switch r {
	case RoleSolo:
		return "solo"
	case RoleLeader:
		return "leader"
	case RoleFollower:
		return "follower"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// Lease is the writer lease as the store holds it.
type Lease struct {
	// Holder names the replica holding it ("host/pid"); empty when nobody
	// does.
	Holder string
	// Epoch is the fencing epoch of the current or last term.
	Epoch uint64
}

// Report is a leader's refresher status, as it last shared it.
type Report struct {
	// Replica names the replica that reported.
	Replica string `json:"replica"`
	// ReportedAt is when it reported.
	ReportedAt time.Time `json:"reported_at"`
	refresher.Status
}

// Outcome is the result of a forced refresh that published (or confirmed)
// a snapshot.
type Outcome struct {
	// Version is the snapshot's version.
	Version uint64 `json:"version"`
	// Changed is true when the refresh published a new version, false when
	// it confirmed the current one unchanged.
	Changed bool `json:"changed"`
	// RefreshedAt is when the snapshot's data was read.
	RefreshedAt time.Time `json:"refreshed_at"`
	// Partitions are the snapshot's partitions, stale ones with their error.
	Partitions []snapshot.Partition `json:"partitions"`
	// Leader names the replica that refreshed.
	Leader string `json:"leader"`
}

// Coordinator is what the status service needs from the replicas.
type Coordinator interface {
	// RefreshNow has the leader refresh at once and returns the outcome.
	// Concurrent calls share one refresh. Errors: ErrNoLeader,
	// *RateLimitedError, *RefreshFailedError, or ctx's.
	RefreshNow(ctx context.Context) (Outcome, error)
	// Lease returns the writer lease; ok is false when there is none
	// (in-memory store).
	Lease(ctx context.Context) (l Lease, ok bool, err error)
	// Role is this replica's role now.
	Role() Role
	// Replica names this replica.
	Replica() string
	// Report returns the leader's last report; ok is false before any.
	Report(ctx context.Context) (r Report, ok bool, err error)
}

// ErrNoLeader is RefreshNow's error when no replica leads, or the leader
// did not take the request.
var ErrNoLeader = errors.New("no replica leads: the refresh cannot be forced now; retry once a replica holds the writer lease")

// RateLimitedError is RefreshNow's error when a forced refresh started less
// than the minimum interval ago.
type RateLimitedError struct {
	// RetryAfter is when a new forced refresh may start.
	RetryAfter time.Duration
	// Interval is the minimum interval between forced refreshes.
	Interval time.Duration
}

// Error implements error.
func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("a refresh was forced less than %s ago: retry in %s", e.Interval, e.RetryAfter.Round(time.Millisecond))
}

// RefreshFailedError is RefreshNow's error when the refresh ran but
// published nothing; Message says why (each failed partition's error).
type RefreshFailedError struct {
	Message string
}

// Error implements error.
func (e *RefreshFailedError) Error() string {
	return "the forced refresh published nothing: " + e.Message
}

// Options configures a Coordinator.
type Options struct {
	// Refresher is this process's refresher; the leader kicks it.
	Refresher *refresher.Refresher
	// Replica names this replica ("host/pid").
	Replica string
	// MinInterval is the minimum time between the starts of two forced
	// refreshes; calls within it are refused with RateLimitedError. Default
	// DefaultMinInterval.
	MinInterval time.Duration
	// RefreshTimeout bounds one forced refresh, which runs on after the
	// callers that asked for it leave (others may share it). Default
	// DefaultRefreshTimeout.
	RefreshTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultMinInterval    = 10 * time.Second
	DefaultRefreshTimeout = 5 * time.Minute
)

func (o Options) withDefaults() Options {
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = DefaultRefreshTimeout
	}
	return o
}

// kick has the refresher refresh at once, within the refresh timeout, and
// turns its result into an Outcome.
func kick(ctx context.Context, opts Options) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.RefreshTimeout)
	defer cancel()
	res, err := opts.Refresher.Kick(ctx)
	if errors.Is(err, refresher.ErrNotRunning) {
		return Outcome{}, ErrNoLeader
	}
	if err != nil {
		return Outcome{}, err
	}
	if res.Err != nil {
		return Outcome{}, &RefreshFailedError{Message: refresher.ClipError(res.Err.Error())}
	}
	out := Outcome{
		Version:     res.Snapshot.Version,
		Changed:     res.Changed,
		RefreshedAt: res.Snapshot.RefreshedAt,
		Partitions:  res.Snapshot.Partitions,
		Leader:      opts.Replica,
	}
	return out, nil
}

// Local is the Coordinator of a process alone with an in-memory store: it
// always leads and kicks its own refresher.
type Local struct {
	opts Options

	mu        sync.Mutex
	flight    *flight   // the forced refresh in progress; nil when none
	lastStart time.Time // when the last forced refresh started
}

// flight is one forced refresh that callers share.
type flight struct {
	done chan struct{} // closed when out and err are set
	out  Outcome
	err  error
}

// NewLocal returns the Coordinator of a process alone with its store.
func NewLocal(opts Options) (*Local, error) {
	if opts.Refresher == nil {
		return nil, errors.New("admin: Options.Refresher is nil")
	}
	return &Local{opts: opts.withDefaults()}, nil
}

// RefreshNow implements Coordinator. The refresh runs on when ctx ends.
func (l *Local) RefreshNow(ctx context.Context) (Outcome, error) {
	l.mu.Lock()
	f := l.flight
	if f == nil {
		if wait := l.opts.MinInterval - time.Since(l.lastStart); !l.lastStart.IsZero() && wait > 0 {
			l.mu.Unlock()
			return Outcome{}, &RateLimitedError{RetryAfter: wait, Interval: l.opts.MinInterval}
		}
		f = &flight{done: make(chan struct{})}
		l.flight, l.lastStart = f, time.Now()
		go func() {
			f.out, f.err = kick(context.WithoutCancel(ctx), l.opts)
			l.mu.Lock()
			l.flight = nil
			l.mu.Unlock()
			close(f.done)
		}()
	}
	l.mu.Unlock()
	select {
	case <-f.done:
		return f.out, f.err
	case <-ctx.Done():
		return Outcome{}, context.Cause(ctx)
	}
}

// Lease implements Coordinator: there is none.
func (l *Local) Lease(context.Context) (Lease, bool, error) { return Lease{}, false, nil }

// Role implements Coordinator.
func (l *Local) Role() Role { return RoleSolo }

// Replica implements Coordinator.
func (l *Local) Replica() string { return l.opts.Replica }

// Report implements Coordinator: the refresher's own status.
func (l *Local) Report(context.Context) (Report, bool, error) {
	return Report{Replica: l.opts.Replica, ReportedAt: time.Now(), Status: l.opts.Refresher.Status()}, true, nil
}
