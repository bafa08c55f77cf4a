package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vpnfacade/vpnfacade/ec2query"
)

// retryAfter is the wait a shed call is told to take before retrying.
const retryAfter = time.Second

// admission bounds the expensive calls (List, EC2 Describe) a replica
// works on at once, so that a burst of them cannot starve the cheap ones
// (Get). A call waits at most queueTimeout for a slot, then is shed with a
// retry hint. A slot is held from the start of the call's work until its
// response is written, so that the memory of responses held by slow readers
// is bounded too.
type admission struct {
	slots        chan struct{}
	queueTimeout time.Duration
}

func newAdmission(limit int, queueTimeout time.Duration) *admission {
	return &admission{slots: make(chan struct{}, limit), queueTimeout: queueTimeout}
}

// ticket is a request's claim on one slot: taken by admit, given back by
// the middleware once the response is written.
type ticket struct {
	a    *admission
	held bool
}

type ticketKey struct{}

// middleware gives each request a ticket and returns its slot, if it took
// one, after the whole response is written.
func (a *admission) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &ticket{a: a}
		defer func() {
			if t.held {
				<-a.slots
			}
		}()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ticketKey{}, t)))
	})
}

// admit takes a slot for the request of ctx, waiting at most the queue
// timeout; it reports false when the call must be shed. A request that did
// not pass the middleware is always admitted.
func admit(ctx context.Context) bool {
	t, _ := ctx.Value(ticketKey{}).(*ticket)
	if t == nil || t.held {
		return true
	}
	select {
	case t.a.slots <- struct{}{}:
		t.held = true
		return true
	default:
	}
	timer := time.NewTimer(t.a.queueTimeout)
	defer timer.Stop()
	select {
	case t.a.slots <- struct{}{}:
		t.held = true
		return true
	case <-timer.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// limitOf returns the concurrency bound the request of ctx was admitted
// under, for messages.
func limitOf(ctx context.Context) int {
	if t, _ := ctx.Value(ticketKey{}).(*ticket); t != nil {
		return cap(t.a.slots)
	}
	return 0
}

// shedMessage explains a shed call and when to retry.
func shedMessage(ctx context.Context) string {
	return "this replica is busy: it has its limit of " + strconv.Itoa(limitOf(ctx)) +
		" expensive calls (List, DescribeClientVpnEndpoints) in flight; retry after " +
		strconv.Itoa(int(retryAfter/time.Second)) + " second"
}

// shedConnect is the Connect error of a shed call: Unavailable, with a
// Retry-After header and a google.rpc.RetryInfo detail.
func shedConnect(ctx context.Context) *connect.Error {
	ce := connect.NewError(connect.CodeUnavailable, errorString(shedMessage(ctx)))
	ce.Meta().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	if detail, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
		ce.AddDetail(detail)
	}
	return ce
}

// shedEC2 is the EC2 error of a shed call: RequestLimitExceeded (503),
// which AWS SDKs retry as a throttle, with a Retry-After header.
func shedEC2(ctx context.Context, w http.ResponseWriter) *ec2query.APIError {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	e := ec2query.RequestLimitExceeded()
	e.Message = "Request limit exceeded: " + shedMessage(ctx) + "."
	return e
}

// errorString is an error with a fixed message.
type errorString string

// Error implements error.
func (e errorString) Error() string { return string(e) }
