// Package ec2sim emulates the part of AWS that vpnfacade reads: EC2's
// DescribeClientVpnEndpoints over the EC2 Query protocol, with AWS's
// semantics (MaxResults 5..1000, opaque page tokens, id lookups, filters
// endpoint-id, transport-protocol and tag:<key> with wildcards, dry runs,
// AWS error codes), plus STS AssumeRole and GetCallerIdentity so that
// cross-account credentials work end to end. Neither moto nor LocalStack
// implements Client VPN, and no test here reaches AWS.
//
// One Server serves many (account, region) partitions: the region comes
// from the request's SigV4 credential scope, the account from the access
// key (keys issued by the emulated AssumeRole name their role's account).
// Data comes from Generate or LoadFile. Faults can be injected for tests and
// benchmarks, at start or at run time: per-page latency, an AWS-like token
// bucket throttle, random internal errors, regions that are down or do not
// offer Client VPN, and endpoints that change over time.
//
// The wire format is package ec2query's. Ids, filters, paging and page
// tokens are implemented here, independently of the facade (describe.go):
// the emulator is the oracle the facade's EC2-compatible endpoint is
// compared with, so it must not share the code under test.
package ec2sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/ec2query"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// maxTrackedPartitions bounds the per-partition maps fed by request input
// (throttle buckets, request counts) against clients inventing regions.
const maxTrackedPartitions = 10000

// maxMutationsPerRequest bounds the changes one overdue mutation catch-up
// applies.
const maxMutationsPerRequest = 10000

// Options configures a Server. The zero value serves no data with no
// faults, in DefaultAccount and DefaultRegion.
type Options struct {
	// Endpoints is the initial data. Each endpoint belongs to the partition
	// named by its account_id and region; empty ones are set to
	// DefaultAccount and DefaultRegion. Parsed times are recomputed from the
	// time strings. The server takes ownership of the messages.
	Endpoints []*clientvpnv1.ClientVpnEndpoint
	// DefaultRegion is the region of unsigned requests and of endpoints
	// without one (default "us-east-1").
	DefaultRegion string
	// DefaultAccount is the account of requests whose access key was not
	// issued by the emulated AssumeRole, and of endpoints without one
	// (default "111111111111").
	DefaultAccount string
	// Latency is added to every DescribeClientVpnEndpoints page.
	Latency time.Duration
	// Throttle limits DescribeClientVpnEndpoints requests per (account,
	// region); the zero value is off. AWSThrottle is EC2's limit.
	Throttle Throttle
	// FailRate is the probability (0..1) that a DescribeClientVpnEndpoints
	// request fails with InternalError (HTTP 500).
	FailRate float64
	// MutateEvery, when positive, changes MutateCount endpoints (added,
	// modified or deleted) every interval, so that successive reads see
	// changes. Changes are applied when a request arrives after they are due.
	MutateEvery time.Duration
	// MutateCount is how many changes each MutateEvery interval makes
	// (default 1).
	MutateCount int
	// UnsupportedRegions answer DescribeClientVpnEndpoints with InvalidAction,
	// as regions that do not offer Client VPN do.
	UnsupportedRegions []string
	// Seed drives injected failures, mutations and issued credentials.
	Seed uint64
	// Now is the clock (default time.Now); tests may replace it.
	Now func() time.Time
}

// PartitionKey names one (account, region) of data.
type PartitionKey struct {
	// AccountID is the 12-digit AWS account.
	AccountID string
	// Region is the AWS region, e.g. "eu-west-1".
	Region string
}

// String formats the key as "account/region".
func (k PartitionKey) String() string { return k.AccountID + "/" + k.Region }

// Stats counts the requests a Server received.
type Stats struct {
	// Requests is every HTTP request, valid or not.
	Requests int64
	// ByAction counts requests by Action; requests without a valid
	// Action count under "", unknown actions under "(unknown)".
	ByAction map[string]int64
	// ByPartition counts DescribeClientVpnEndpoints requests by the
	// partition they addressed.
	ByPartition map[PartitionKey]int64
	// Throttled counts requests refused with RequestLimitExceeded.
	Throttled int64
	// InjectedFailures counts requests failed on purpose with InternalError.
	InjectedFailures int64
}

// Mutation lists what one round of changes did, by endpoint key
// ("account/region/id").
type Mutation struct {
	// Added are endpoints that did not exist before.
	Added []string
	// Modified are endpoints whose content changed.
	Modified []string
	// Deleted are endpoints that no longer exist.
	Deleted []string
}

// Server is the emulator, an http.Handler. It is safe for concurrent use;
// its data and faults can be changed while it serves.
type Server struct {
	defaultRegion  string
	defaultAccount string
	now            func() time.Time

	mu           sync.Mutex
	rng          *mathrand.Rand
	gen          *generator
	genIndex     int
	parts        map[PartitionKey]*partition
	buckets      map[PartitionKey]*tokenBucket
	latency      time.Duration
	failRate     float64
	throttle     Throttle
	unsupported  map[string]bool
	down         map[string]bool
	mutateEvery  time.Duration
	mutateCount  int
	lastMutation time.Time
	kept         map[string]bool // ids mutations never delete (KeepEndpoints)
	stats        Stats
	issued       map[string]issuedKey
}

// partition is the data of one (account, region).
type partition struct {
	endpoints map[string]*clientvpnv1.ClientVpnEndpoint // by id; never modified in place
	sorted    []*clientvpnv1.ClientVpnEndpoint          // in id order; nil when endpoints changed since
}

// New returns a Server with opts. It fails when an option is out of range
// or the data has an endpoint without an id or two with the same id in one
// partition.
func New(opts Options) (*Server, error) {
	s := &Server{
		defaultRegion:  cmp.Or(opts.DefaultRegion, DefaultRegion),
		defaultAccount: cmp.Or(opts.DefaultAccount, DefaultAccount),
		now:            opts.Now,
		rng:            mathrand.New(mathrand.NewPCG(opts.Seed, opts.Seed^0x5851f42d4c957f2d)),
		gen:            newGenerator(opts.Seed ^ 0xda3e39cb94b95bdb),
		genIndex:       len(opts.Endpoints),
		parts:          map[PartitionKey]*partition{},
		buckets:        map[PartitionKey]*tokenBucket{},
		unsupported:    map[string]bool{},
		down:           map[string]bool{},
		issued:         map[string]issuedKey{},
		mutateCount:    cmp.Or(opts.MutateCount, 1),
		stats:          Stats{ByAction: map[string]int64{}, ByPartition: map[PartitionKey]int64{}},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if !validRegion(s.defaultRegion) {
		return nil, fmt.Errorf("ec2sim: default region %q is not a region name like eu-west-1", s.defaultRegion)
	}
	if !validAccount(s.defaultAccount) {
		return nil, fmt.Errorf("ec2sim: default account %q is not 12 digits", s.defaultAccount)
	}
	if err := s.SetLatency(opts.Latency); err != nil {
		return nil, err
	}
	if err := s.SetThrottle(opts.Throttle); err != nil {
		return nil, err
	}
	if err := s.SetFailRate(opts.FailRate); err != nil {
		return nil, err
	}
	if err := s.SetMutation(opts.MutateEvery, s.mutateCount); err != nil {
		return nil, err
	}
	for _, r := range opts.UnsupportedRegions {
		s.SetRegionUnsupported(r, true)
	}
	if err := s.Replace(opts.Endpoints); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP answers one EC2 or STS Query request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := ec2query.NewRequestID()
	form, err := ec2query.ReadForm(w, r, 0)
	if err != nil {
		s.countRequest("")
		_ = ec2query.WriteError(w, requestID, err)
		return
	}
	action, _, err := ec2query.ParseAction(form)
	s.countRequest(action)
	if err != nil {
		_ = ec2query.WriteError(w, requestID, err)
		return
	}
	accessKey := ec2query.SigningAccessKey(r)
	key := PartitionKey{AccountID: s.defaultAccount, Region: cmp.Or(ec2query.SigningRegion(r), s.defaultRegion)}
	if account, ok := accountOfAccessKey(accessKey); ok {
		key.AccountID = account
	}
	switch action {
	case ec2query.ActionDescribeClientVpnEndpoints:
		s.describe(w, r, form, key, requestID)
	case ActionAssumeRole:
		s.assumeRole(w, form, requestID)
	case ActionGetCallerIdentity:
		s.getCallerIdentity(w, accessKey, key.AccountID, requestID)
	default:
		_ = ec2query.WriteError(w, requestID, ec2query.InvalidAction(action))
	}
}

// describe answers DescribeClientVpnEndpoints for one partition.
func (s *Server) describe(w http.ResponseWriter, r *http.Request, form map[string][]string, key PartitionKey, requestID string) {
	s.mu.Lock()
	now := s.now()
	s.mutateIfDueLocked(now)
	if len(s.stats.ByPartition) < maxTrackedPartitions || s.stats.ByPartition[key] > 0 {
		s.stats.ByPartition[key]++
	}
	var fault *ec2query.APIError
	switch {
	case s.unsupported[key.Region]:
		fault = ec2query.InvalidAction(ec2query.ActionDescribeClientVpnEndpoints)
	case s.down[key.Region]:
		fault = ec2query.Unavailable("The service is unavailable. Please try again shortly.")
	case s.throttle.Enabled() && !s.bucketLocked(key).take(s.throttle, now):
		s.stats.Throttled++
		fault = ec2query.RequestLimitExceeded()
	case s.failRate > 0 && s.rng.Float64() < s.failRate:
		s.stats.InjectedFailures++
		fault = ec2query.InternalError()
	}
	latency := s.latency
	s.mu.Unlock()
	if fault != nil {
		_ = ec2query.WriteError(w, requestID, fault)
		return
	}

	req, err := ec2query.ParseDescribeClientVpnEndpoints(form)
	if err != nil {
		_ = ec2query.WriteError(w, requestID, err)
		return
	}
	q, err := newDescribeQuery(req, key)
	if err != nil {
		_ = ec2query.WriteError(w, requestID, err)
		return
	}
	if req.DryRun {
		// EC2 checks the request and the caller's permissions, not the data.
		_ = ec2query.WriteError(w, requestID, ec2query.DryRunOperation())
		return
	}
	if err := sleep(r.Context(), latency); err != nil {
		return // the client went away
	}
	endpoints, next, err := q.page(s.sortedEndpoints(key), key)
	if err != nil {
		_ = ec2query.WriteError(w, requestID, err)
		return
	}
	_ = ec2query.WriteDescribeClientVpnEndpoints(w, requestID, endpoints, next)
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// countRequest counts one request and its action.
func (s *Server) countRequest(action string) {
	switch action {
	case "", ec2query.ActionDescribeClientVpnEndpoints, ActionAssumeRole, ActionGetCallerIdentity:
	default:
		action = "(unknown)"
	}
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByAction[action]++
	s.mu.Unlock()
}

// bucketLocked returns the throttle bucket of a partition. The caller holds
// s.mu.
func (s *Server) bucketLocked(key PartitionKey) *tokenBucket {
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= maxTrackedPartitions {
			clear(s.buckets)
		}
		b = &tokenBucket{}
		s.buckets[key] = b
	}
	return b
}

// sortedEndpoints returns the endpoints of a partition in id order. The
// slice is shared and must not be modified; it is rebuilt after a change.
func (s *Server) sortedEndpoints(key PartitionKey) []*clientvpnv1.ClientVpnEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[key]
	if p == nil {
		return nil
	}
	if p.sorted == nil {
		p.sorted = slices.SortedFunc(maps.Values(p.endpoints), func(a, b *clientvpnv1.ClientVpnEndpoint) int {
			return strings.Compare(a.GetClientVpnEndpointId(), b.GetClientVpnEndpointId())
		})
	}
	return p.sorted
}

// SetLatency sets the delay added to every DescribeClientVpnEndpoints page.
func (s *Server) SetLatency(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("ec2sim: latency must not be negative, got %v", d)
	}
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
	return nil
}

// SetFailRate sets the probability, 0..1, that a DescribeClientVpnEndpoints
// request fails with InternalError.
func (s *Server) SetFailRate(p float64) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("ec2sim: fail rate must be between 0 and 1, got %v", p)
	}
	s.mu.Lock()
	s.failRate = p
	s.mu.Unlock()
	return nil
}

// SetThrottle sets the request rate limit (the zero Throttle turns it off)
// and refills every bucket.
func (s *Server) SetThrottle(t Throttle) error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("ec2sim: %w", err)
	}
	s.mu.Lock()
	s.throttle = t
	clear(s.buckets)
	s.mu.Unlock()
	return nil
}

// SetMutation sets how often the data changes by itself (every ≤ 0 stops
// it) and how many changes each interval makes.
func (s *Server) SetMutation(every time.Duration, count int) error {
	if count < 1 {
		return fmt.Errorf("ec2sim: mutate count must be at least 1, got %d", count)
	}
	s.mu.Lock()
	s.mutateEvery = max(every, 0)
	s.mutateCount = count
	s.lastMutation = s.now()
	s.mu.Unlock()
	return nil
}

// SetRegionDown makes DescribeClientVpnEndpoints in region fail with
// Unavailable (HTTP 503, which SDKs retry) while down is true.
func (s *Server) SetRegionDown(region string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down {
		s.down[region] = true
	} else {
		delete(s.down, region)
	}
}

// SetRegionUnsupported makes DescribeClientVpnEndpoints in region fail with
// InvalidAction, as in a region that does not offer Client VPN, while
// unsupported is true.
func (s *Server) SetRegionUnsupported(region string, unsupported bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if unsupported {
		s.unsupported[region] = true
	} else {
		delete(s.unsupported, region)
	}
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByAction = cloneMap(s.stats.ByAction)
	st.ByPartition = cloneMap(s.stats.ByPartition)
	return st
}

// ResetStats sets every request counter to zero.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{ByAction: map[string]int64{}, ByPartition: map[PartitionKey]int64{}}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Replace replaces all data with endpoints (see Options.Endpoints). On
// error the data is unchanged.
func (s *Server) Replace(endpoints []*clientvpnv1.ClientVpnEndpoint) error {
	parts := map[PartitionKey]*partition{}
	for i, e := range endpoints {
		key, err := s.normalize(e)
		if err != nil {
			return fmt.Errorf("ec2sim: endpoint %d: %w", i, err)
		}
		p := parts[key]
		if p == nil {
			p = &partition{endpoints: map[string]*clientvpnv1.ClientVpnEndpoint{}}
			parts[key] = p
		}
		id := e.GetClientVpnEndpointId()
		if p.endpoints[id] != nil {
			return fmt.Errorf("ec2sim: endpoint %d: id %s appears twice in %s", i, id, key)
		}
		p.endpoints[id] = e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = parts
	return nil
}

// Put adds endpoints, replacing any with the same (account, region, id).
// The server takes ownership of the messages. On error nothing is changed.
func (s *Server) Put(endpoints ...*clientvpnv1.ClientVpnEndpoint) error {
	keys := make([]PartitionKey, len(endpoints))
	for i, e := range endpoints {
		key, err := s.normalize(e)
		if err != nil {
			return fmt.Errorf("ec2sim: endpoint %d: %w", i, err)
		}
		keys[i] = key
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range endpoints {
		s.putLocked(keys[i], e)
	}
	return nil
}

// Delete removes the endpoints with the given ids from one partition and
// returns how many existed.
func (s *Server) Delete(accountID, region string, ids ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[PartitionKey{AccountID: accountID, Region: region}]
	if p == nil {
		return 0
	}
	n := 0
	for _, id := range ids {
		if p.endpoints[id] != nil {
			delete(p.endpoints, id)
			n++
		}
	}
	if n > 0 {
		p.changed()
	}
	return n
}

// Endpoints returns copies of the endpoints of one partition, in id order.
func (s *Server) Endpoints(accountID, region string) []*clientvpnv1.ClientVpnEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parts[PartitionKey{AccountID: accountID, Region: region}]
	if p == nil {
		return nil
	}
	out := make([]*clientvpnv1.ClientVpnEndpoint, 0, len(p.endpoints))
	for _, e := range p.endpoints {
		out = append(out, proto.CloneOf(e))
	}
	slices.SortFunc(out, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
		return strings.Compare(a.GetClientVpnEndpointId(), b.GetClientVpnEndpointId())
	})
	return out
}

// Partitions returns the partitions holding data, sorted.
func (s *Server) Partitions() []PartitionKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedPartitionsLocked()
}

func (s *Server) sortedPartitionsLocked() []PartitionKey {
	keys := make([]PartitionKey, 0, len(s.parts))
	for k, p := range s.parts {
		if len(p.endpoints) > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b PartitionKey) int {
		return cmp.Or(strings.Compare(a.AccountID, b.AccountID), strings.Compare(a.Region, b.Region))
	})
	return keys
}

// normalize checks an endpoint, puts it in the default partition when it
// names none, and recomputes its parsed times.
func (s *Server) normalize(e *clientvpnv1.ClientVpnEndpoint) (PartitionKey, error) {
	if e == nil {
		return PartitionKey{}, errors.New("endpoint is nil")
	}
	if e.GetClientVpnEndpointId() == "" {
		return PartitionKey{}, errors.New("client_vpn_endpoint_id is required")
	}
	if e.Region == "" {
		e.Region = s.defaultRegion
	}
	if e.AccountId == "" {
		e.AccountId = s.defaultAccount
	}
	if !validRegion(e.Region) {
		return PartitionKey{}, fmt.Errorf("region %q is not a region name like eu-west-1", e.Region)
	}
	if !validAccount(e.AccountId) {
		return PartitionKey{}, fmt.Errorf("account_id %q is not 12 digits", e.AccountId)
	}
	fillParsedTimes(e)
	return PartitionKey{AccountID: e.AccountId, Region: e.Region}, nil
}

// putLocked stores an endpoint. The caller holds s.mu.
func (s *Server) putLocked(key PartitionKey, e *clientvpnv1.ClientVpnEndpoint) {
	p := s.parts[key]
	if p == nil {
		p = &partition{endpoints: map[string]*clientvpnv1.ClientVpnEndpoint{}}
		s.parts[key] = p
	}
	p.endpoints[e.GetClientVpnEndpointId()] = e
	p.changed()
}

// changed records that the partition's data changed.
func (p *partition) changed() {
	p.sorted = nil
}
