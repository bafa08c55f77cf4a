package server

import (
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vpnfacade/vpnfacade/connlimit"
	"github.com/vpnfacade/vpnfacade/ec2query"
	"github.com/vpnfacade/vpnfacade/gen/clientvpn/v1/clientvpnv1connect"
)

// Defaults of the per-address rate of expensive calls.
const (
	// DefaultListRatePerAddress is the ListRatePerAddress the binary uses
	// unless told otherwise (--list-rate-per-address): expensive calls
	// (List, EC2) one client address may make per second, sustained.
	DefaultListRatePerAddress = 100
	// rateBurstSeconds is the burst an address may make at once, in seconds
	// of its rate.
	rateBurstSeconds = 2
	// bytesPerToken is the request body an expensive call may carry for one
	// token: decoding is the work a large body costs, in proportion to it.
	bytesPerToken = 16 << 10
	// maxTrackedAddresses bounds the memory of the rate limiter. When that
	// many addresses have a partly used budget, a new address is not
	// limited (the concurrency bound, --max-concurrent-lists, still is).
	maxTrackedAddresses = 1 << 16
	// maxTarpit is the longest a refused call is held before its answer,
	// and maxTarpitted how many may be held at once (beyond, the answer is
	// immediate): a held call costs a parked goroutine and no CPU, and a
	// client that retries at once is slowed to its own concurrency.
	maxTarpit    = time.Second
	maxTarpitted = 1024
)

// addressRate limits the expensive calls (List, and every EC2 call) of
// each client address, before their body is read or decoded: a token
// bucket per address filled at rate per second up to burst, from which a
// call takes one token plus one per 16 KiB of its body. A call that finds
// too few tokens is refused at once (Connect ResourceExhausted, EC2
// RequestLimitExceeded) with the wait in a retry hint, at the cost of
// writing that answer. Cheap calls (Get, health) are never limited here.
//
// The key is the IP address (the /64 network for IPv6). Behind a proxy
// every client shares the proxy's address: raise or turn the limit off.
type addressRate struct {
	next     http.Handler
	rate     float64 // tokens per second
	burst    float64
	errors   *connect.ErrorWriter
	clock    func() time.Time
	refusals func() // counts a refusal; may be nil

	tarpitted atomic.Int64

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

// bucket is one address's tokens as of last.
type bucket struct {
	tokens float64
	last   time.Time
}

func newAddressRate(next http.Handler, rate float64, errors *connect.ErrorWriter) *addressRate {
	return &addressRate{
		next:    next,
		rate:    rate,
		burst:   max(1, math.Round(rate*rateBurstSeconds)),
		errors:  errors,
		clock:   time.Now,
		buckets: map[netip.Prefix]*bucket{},
	}
}

// expensive reports whether r is a call the limit applies to: a List over
// Connect, gRPC or gRPC-Web, or an EC2 Query API call.
func expensive(r *http.Request) bool {
	switch r.URL.Path {
	case clientvpnv1connect.ClientVpnServiceListClientVpnEndpointsProcedure:
		return true
	case "/":
		// GET / without a query is the browser page.
		return r.Method == http.MethodPost || (r.Method == http.MethodGet && r.URL.RawQuery != "")
	}
	return false
}

// ServeHTTP implements http.Handler.
func (a *addressRate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !expensive(r) {
		a.next.ServeHTTP(w, r)
		return
	}
	key, ok := addressKey(r.RemoteAddr)
	if !ok {
		a.next.ServeHTTP(w, r)
		return
	}
	cost := 1.0
	if r.ContentLength > 0 {
		cost += float64(r.ContentLength / bytesPerToken)
	}
	if wait := a.take(key, min(cost, a.burst)); wait > 0 {
		if a.refusals != nil {
			a.refusals()
		}
		a.hold(r, wait)
		a.refuse(w, r, wait)
		return
	}
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// A body of unknown length (gRPC clients send none) is charged as
		// it turned out to be, after the call: the address's next calls
		// wait for it.
		counted := &countingBody{ReadCloser: r.Body}
		r.Body = counted
		defer func() { a.charge(key, float64(counted.n/bytesPerToken)) }()
	}
	a.next.ServeHTTP(w, r)
}

// addressKey is the bucket of a peer address "ip:port" (see
// connlimit.AddressKey).
func addressKey(remote string) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Prefix{}, false
	}
	return connlimit.AddressKey(ap.Addr()), true
}

// take takes cost tokens from key's bucket, or reports how long until the
// bucket holds them.
func (a *addressRate) take(key netip.Prefix, cost float64) (wait time.Duration) {
	now := a.clock()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.buckets[key]
	if b == nil {
		if len(a.buckets) >= maxTrackedAddresses && !a.sweep(now) {
			return 0
		}
		b = &bucket{tokens: a.burst, last: now}
		a.buckets[key] = b
	}
	a.refill(b, now)
	if b.tokens < cost {
		return time.Duration((cost - b.tokens) / a.rate * float64(time.Second))
	}
	b.tokens -= cost
	return 0
}

// charge takes cost more tokens from key's bucket, into debt down to
// -burst.
func (a *addressRate) charge(key netip.Prefix, cost float64) {
	if cost <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.buckets[key]; b != nil {
		a.refill(b, a.clock())
		b.tokens = max(b.tokens-cost, -a.burst)
	}
}

func (a *addressRate) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(a.burst, b.tokens+elapsed.Seconds()*a.rate)
		b.last = now
	}
}

// sweep forgets the addresses whose bucket has filled up again (an unknown
// address starts full anyway) and reports whether room was made.
func (a *addressRate) sweep(now time.Time) bool {
	for key, b := range a.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*a.rate >= a.burst {
			delete(a.buckets, key)
		}
	}
	return len(a.buckets) < maxTrackedAddresses
}

// hold waits until wait is over (at most maxTarpit) or the client leaves,
// unless maxTarpitted calls are waiting already.
func (a *addressRate) hold(r *http.Request, wait time.Duration) {
	if a.tarpitted.Add(1) > maxTarpitted {
		a.tarpitted.Add(-1)
		return
	}
	defer a.tarpitted.Add(-1)
	t := time.NewTimer(min(wait, maxTarpit))
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// refuse answers a call over its address's rate, in the protocol it came
// in, with the wait (whole seconds, at least one) as a retry hint.
func (a *addressRate) refuse(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	seconds := max(1, int(math.Ceil(wait.Seconds())))
	msg := "your address has made more than " + strconv.FormatFloat(a.rate, 'f', -1, 64) +
		" expensive calls (List, DescribeClientVpnEndpoints) per second, the limit per client address" +
		" (a call counts one, plus one per 16 KiB of its request); retry after " + strconv.Itoa(seconds) + " second(s)"
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/" {
		e := ec2query.RequestLimitExceeded()
		e.Message = "Request limit exceeded: " + msg + "."
		_ = ec2query.WriteError(w, ec2query.NewRequestID(), e)
		return
	}
	ce := connect.NewError(connect.CodeResourceExhausted, errorString(msg))
	if detail, err := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(seconds) * time.Second)}); err == nil {
		ce.AddDetail(detail)
	}
	if a.errors.IsSupported(r) {
		_ = a.errors.Write(w, r, ce)
		return
	}
	http.Error(w, msg, http.StatusTooManyRequests)
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

// Read implements io.Reader.
func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}
