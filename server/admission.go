package server

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
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
// client cannot take them all. A call that finds no slot it may take waits
// at most queueTimeout, then is shed with a retry hint.
//
// Waiting calls are not served in arrival order: a freed slot goes to the
// waiting call whose address holds the fewest slots (then the earliest), so
// that a client that holds none is served next however many calls other
// addresses keep queued. Several addresses together can still fill every
// slot, but not make a newcomer wait behind their queue: it waits for one
// call to end.
//
// A slot is held from the start of the call's work until its response is
// written, so that the memory of responses held by slow readers is bounded
// too.
type admission struct {
	limit        int
	perAddress   int // slots one address may hold; 0: no bound
	queueTimeout time.Duration
	overShare    func() // counts a call shed at its address's share; may be nil

	mu        sync.Mutex
	inFlight  int
	addresses map[netip.Prefix]*addressSlots
	waiting   []*waiter // in arrival order
}

// addressSlots counts the slots one client address holds, and the tickets
// holding or waiting for one (users), so that the entry is dropped with the
// last of them.
type addressSlots struct {
	address netip.Prefix // invalid: unknown, not bounded per address
	held    int
	users   int
}

// waiter is a call waiting for a slot; granted is closed when it has one.
type waiter struct {
	slots   *addressSlots
	granted chan struct{}
}

// newAdmission bounds expensive calls to limit at once, and those of one
// client address to share of limit (rounded down, at least one; a share of
// 1 or more: no bound per address).
func newAdmission(limit int, share float64, queueTimeout time.Duration) *admission {
	a := &admission{limit: limit, queueTimeout: queueTimeout, addresses: map[netip.Prefix]*addressSlots{}}
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
	slots   *addressSlots // the address's count while the ticket holds a slot
}

type ticketKey struct{}

// middleware gives each request a ticket and returns its slot, if it took
// one, after the whole response is written.
func (a *admission) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &ticket{a: a}
		t.address, _ = addressKey(r.RemoteAddr)
		defer func() {
			if t.slots != nil {
				a.release(t.slots)
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
	if t == nil || t.slots != nil {
		return admitted
	}
	a := t.a
	a.mu.Lock()
	slots := a.join(t.address)
	// After every change the free slots have gone to the eligible waiters,
	// so a free slot here is one nobody waiting may take.
	if a.inFlight < a.limit && a.eligible(slots) {
		a.take(slots)
		a.mu.Unlock()
		t.slots = slots
		return admitted
	}
	w := &waiter{slots: slots, granted: make(chan struct{})}
	a.waiting = append(a.waiting, w)
	a.mu.Unlock()

	timer := time.NewTimer(a.queueTimeout)
	defer timer.Stop()
	select {
	case <-w.granted:
		t.slots = slots
		return admitted
	case <-timer.C:
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-w.granted: // granted as the wait ended
		t.slots = slots
		return admitted
	default:
	}
	a.waiting = slices.DeleteFunc(a.waiting, func(o *waiter) bool { return o == w })
	why := busy
	if !a.eligible(slots) {
		why = overShare
		if a.overShare != nil && ctx.Err() == nil {
			a.overShare()
		}
	}
	a.leave(slots)
	return why
}

// eligible reports whether an address holding slots may take one more.
// a.mu is held.
func (a *admission) eligible(slots *addressSlots) bool {
	return a.perAddress == 0 || !slots.address.IsValid() || slots.held < a.perAddress
}

// take gives a slot to an address. a.mu is held.
func (a *admission) take(slots *addressSlots) {
	a.inFlight++
	slots.held++
}

// release gives back a slot of the address whose count is slots, and hands
// the free slots to the waiting calls: each to the one whose address holds
// the fewest, the earliest among equals.
func (a *admission) release(slots *addressSlots) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight--
	slots.held--
	a.leave(slots)
	for a.inFlight < a.limit {
		next := -1
		for i, w := range a.waiting {
			if a.eligible(w.slots) && (next < 0 || w.slots.held < a.waiting[next].slots.held) {
				next = i
			}
		}
		if next < 0 {
			return
		}
		w := a.waiting[next]
		a.waiting = slices.Delete(a.waiting, next, next+1)
		a.take(w.slots)
		close(w.granted)
	}
}

// join returns the count of address, with one more user. a.mu is held.
func (a *admission) join(address netip.Prefix) *addressSlots {
	s := a.addresses[address]
	if s == nil {
		s = &addressSlots{address: address}
		a.addresses[address] = s
	}
	s.users++
	return s
}

// leave drops a user of an address (which gave back or never took its
// slot), and the address's entry with its last user. a.mu is held.
func (a *admission) leave(slots *addressSlots) {
	if slots.users--; slots.users == 0 {
		delete(a.addresses, slots.address)
	}
}

// limitOf returns the concurrency bound the request of ctx was admitted
// under, and the bound per address (0: none), for messages.
func limitOf(ctx context.Context) (limit, perAddress int) {
	if t, _ := ctx.Value(ticketKey{}).(*ticket); t != nil {
		return t.a.limit, t.a.perAddress
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
