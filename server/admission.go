package server

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
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
// (Get), and the slots one client address may hold of them, so that one
// client cannot take them all. A call waits at most queueTimeout for a slot
// (first for a place within its address's share, then for a slot), then is
// shed with a retry hint. A slot is held from the start of the call's work
// until its response is written, so that the memory of responses held by
// slow readers is bounded too.
type admission struct {
	slots        chan struct{}
	perAddress   int // slots one address may hold; 0: no bound
	queueTimeout time.Duration
	overShare    func() // counts a call shed at its address's share; may be nil

	mu        sync.Mutex
	addresses map[netip.Prefix]*addressSlots
}

// addressSlots are the places of one client address within its share:
// held has one element per slot the address holds, and users counts the
// tickets holding or waiting for a place, so that the entry is dropped with
// the last of them.
type addressSlots struct {
	held  chan struct{}
	users int
}

// newAdmission bounds expensive calls to limit at once, and those of one
// client address to share of limit (rounded down, at least one; a share of
// 1 or more: no bound per address).
func newAdmission(limit int, share float64, queueTimeout time.Duration) *admission {
	a := &admission{slots: make(chan struct{}, limit), queueTimeout: queueTimeout, addresses: map[netip.Prefix]*addressSlots{}}
	if share < 1 {
		a.perAddress = max(1, int(share*float64(limit)))
	}
	return a
}

// ticket is a request's claim on one slot: taken by admit, given back by
// the middleware once the response is written.
type ticket struct {
	a       *admission
	address netip.Prefix
	place   *addressSlots // the address's places, when bounded
	held    bool
}

type ticketKey struct{}

// middleware gives each request a ticket and returns its slot, if it took
// one, after the whole response is written.
func (a *admission) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &ticket{a: a}
		if a.perAddress > 0 {
			t.address, _ = addressKey(r.RemoteAddr)
		}
		defer func() {
			if t.held {
				<-a.slots
				if t.place != nil {
					<-t.place.held
					a.leave(t)
				}
			}
		}()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ticketKey{}, t)))
	})
}

// shedReason says why a call was shed: busy (every slot taken) or
// overShare (its address holds its share).
type shedReason int

const (
	admitted shedReason = iota
	busy
	overShare
)

// admit takes a slot for the request of ctx, waiting at most the queue
// timeout; it reports why when the call must be shed. A request that did
// not pass the middleware is always admitted.
func admit(ctx context.Context) shedReason {
	t, _ := ctx.Value(ticketKey{}).(*ticket)
	if t == nil || t.held {
		return admitted
	}
	a := t.a
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	// take takes a place in ch, waiting until the queue timeout is over.
	take := func(ch chan struct{}) bool {
		select {
		case ch <- struct{}{}:
			return true
		default:
		}
		if timer == nil {
			timer = time.NewTimer(a.queueTimeout)
		}
		select {
		case ch <- struct{}{}:
			return true
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	if t.address.IsValid() {
		t.place = a.join(t.address)
		if !take(t.place.held) {
			a.leave(t)
			if a.overShare != nil && ctx.Err() == nil {
				a.overShare()
			}
			return overShare
		}
	}
	if !take(a.slots) {
		if t.place != nil {
			<-t.place.held
			a.leave(t)
		}
		return busy
	}
	t.held = true
	return admitted
}

// join returns the places of address, counting one more user of them.
func (a *admission) join(address netip.Prefix) *addressSlots {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.addresses[address]
	if s == nil {
		s = &addressSlots{held: make(chan struct{}, a.perAddress)}
		a.addresses[address] = s
	}
	s.users++
	return s
}

// leave gives t's place back, if it has one (the caller has taken its
// element out of held), dropping its address's entry with its last user.
func (a *admission) leave(t *ticket) {
	if t.place == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.place.users--; t.place.users == 0 {
		delete(a.addresses, t.address)
	}
	t.place = nil
}

// limitOf returns the concurrency bound the request of ctx was admitted
// under, and the bound per address (0: none), for messages.
func limitOf(ctx context.Context) (limit, perAddress int) {
	if t, _ := ctx.Value(ticketKey{}).(*ticket); t != nil {
		return cap(t.a.slots), t.a.perAddress
	}
	return 0, 0
}

// shedMessage explains a shed call and when to retry.
func shedMessage(ctx context.Context, why shedReason) string {
	limit, perAddress := limitOf(ctx)
	retry := "; retry after " + strconv.Itoa(int(retryAfter/time.Second)) + " second"
	if why == overShare {
		return "your address holds its share of this replica's expensive calls (List, DescribeClientVpnEndpoints): " +
			strconv.Itoa(perAddress) + " of " + strconv.Itoa(limit) + " in flight at once, the limit per client address" + retry
	}
	return "this replica is busy: it has its limit of " + strconv.Itoa(limit) +
		" expensive calls (List, DescribeClientVpnEndpoints) in flight" + retry
}

// shedConnect is the Connect error of a shed call: Unavailable, with a
// Retry-After header and a google.rpc.RetryInfo detail.
func shedConnect(ctx context.Context, why shedReason) *connect.Error {
	ce := connect.NewError(connect.CodeUnavailable, errorString(shedMessage(ctx, why)))
	ce.Meta().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	if detail, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
		ce.AddDetail(detail)
	}
	return ce
}

// shedEC2 is the EC2 error of a shed call: RequestLimitExceeded (503),
// which AWS SDKs retry as a throttle, with a Retry-After header.
func shedEC2(ctx context.Context, w http.ResponseWriter, why shedReason) *ec2query.APIError {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	e := ec2query.RequestLimitExceeded()
	e.Message = "Request limit exceeded: " + shedMessage(ctx, why) + "."
	return e
}

// errorString is an error with a fixed message.
type errorString string

// Error implements error.
func (e errorString) Error() string { return string(e) }
