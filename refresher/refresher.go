// Package refresher keeps the store's snapshot up to date. On a jittered
// interval it reads every partition (account, region) of a Source, with
// bounded concurrency, and publishes what it read as one whole snapshot,
// with the diff against the previous one.
//
// A partition whose read fails keeps its last good endpoints, taken from the
// store's current snapshot and marked stale; it never empties the others. A
// snapshot is published only when every partition either read successfully
// or has such last good data; otherwise the refresh fails as a whole and the
// next one is attempted after an exponential, jittered backoff. A refresh in
// which every partition failed (EC2 down or throttling everything) publishes
// the last good data marked stale, dated by its newest last good read (not
// now: it read nothing), and also backs off, never sooner than the
// interval, so that the refresher does not keep calling a failing EC2 at
// the full rate.
package refresher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
	"github.com/vpnfacade/vpnfacade/tracing"
)

// scope is the instrumentation scope of the refresher's spans.
const scope = "github.com/vpnfacade/vpnfacade/refresher"

// Source is where endpoints are read from, one partition at a time
// (upstream.Source implements it against EC2).
type Source interface {
	// Partitions yields the (account id, region) of every partition to read.
	Partitions() iter.Seq2[string, string]
	// Read returns every endpoint of one partition, each with its account id,
	// region and client_vpn_endpoint_id set, or an error; never a partial
	// list. An empty list is a valid, successful read.
	Read(ctx context.Context, accountID, region string) ([]*clientvpnv1.ClientVpnEndpoint, error)
}

// Preparer is a Source with work to do before it knows its partitions, work
// that may call upstream and fail: upstream.Source learns the default
// credentials' account from STS. The refresher calls Prepare at the start
// of every refresh, within the read timeout; when it fails, the refresh
// fails and is retried after the backoff. Once it has succeeded, Prepare
// should return nil at once.
type Preparer interface {
	// Prepare makes every partition known to Partitions.
	Prepare(ctx context.Context) error
}

// Refresher reads a Source into a Store, one whole snapshot at a time. Its
// refreshes never overlap, whether started by Run or by RefreshNow.
type Refresher struct {
	source Source
	store  store.Store
	opts   options
	// running holds a token while a refresh is in progress.
	running chan struct{}
	// failures counts each partition's consecutive failed reads; only a
	// refresh, holding running, touches it.
	failures map[vpnfacade.PartitionKey]int
	// kicks carries Kick's requests to Run; active is true while Run runs.
	kicks  chan kick
	active atomic.Bool
	// mu guards status, which Status copies (see status.go).
	mu     sync.Mutex
	status Status
}

// New returns a Refresher that reads source and publishes to st. It fails
// on an invalid option, or when its metrics cannot be registered.
func New(source Source, st store.Store, opts Options) (*Refresher, error) {
	if source == nil || st == nil {
		return nil, errors.New("refresher: a source and a store are required")
	}
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return &Refresher{source: source, store: st, opts: o, running: make(chan struct{}, 1),
		failures: map[vpnfacade.PartitionKey]int{}, kicks: make(chan kick)}, nil
}

// Run refreshes when the store's snapshot is due (at once when there is
// none, or when it is older than the interval: a process restarted on a warm
// Redis, or a new leader, does not call upstream for data that is still
// fresh), then again every interval (jittered) after each success, or after
// an exponential, jittered backoff after each failure (after a refresh in
// which every partition failed and only last good data was published, the
// backoff doubles from the interval rather than from the minimum backoff),
// until ctx is done. It returns nil when ctx is done: failures are logged,
// never returned. When it returns, the per-partition metrics are cleared:
// they describe the refreshes of a process while it runs them.
//
// While Run runs, Kick makes it refresh at once (after a refresh in
// progress), and the schedule starts again from that refresh.
func (r *Refresher) Run(ctx context.Context) error {
	failures := 0
	if m := r.opts.metrics; m != nil {
		defer m.forget()
	}
	r.active.Store(true)
	defer r.active.Store(false)
	var first time.Duration
	if view, err := r.store.Current(ctx); err == nil {
		first = firstDelay(view.RefreshedAt, time.Now(), r.opts.interval)
		if first > 0 {
			r.opts.logger.InfoContext(ctx, "current snapshot is fresh; first refresh when it is due",
				"version", view.Version, "refreshed_at", view.RefreshedAt, "refresh_in", first)
		}
	}
	timer := time.NewTimer(first)
	defer timer.Stop()
	// Memory is returned halfway to the next refresh, not as the new
	// version goes out: the forced collection and the release would take
	// CPU (and the heap lock) from the readers and watchers it is served to.
	memory := time.NewTimer(0)
	memory.Stop()
	defer memory.Stop()
	r.setSchedule(failures, time.Now().Add(first))
	if report := r.opts.report; report != nil {
		report(ctx, r.Status())
	}
	for {
		var kicked *kick
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case k := <-r.kicks:
			kicked = &k
		case <-memory.C:
			debug.FreeOSMemory()
			continue
		}
		out, err := r.refreshNow(ctx)
		allFailed := out.allFailed
		if kicked != nil {
			kicked.done <- outcomeResult(out, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		switch {
		case err != nil:
			failures++
			delay = r.opts.backoff(failures)
			r.opts.logger.ErrorContext(ctx, "refresh failed; retrying after a backoff",
				"cause", failureCause(err), "error", err, "consecutive_failures", failures, "retry_in", delay)
		case allFailed:
			// Readers have the last good data; calling EC2 again at the
			// full rate would only add to its throttling.
			failures++
			delay = max(r.opts.nextInterval(), r.opts.backoffFrom(max(r.opts.minBackoff, r.opts.interval), failures))
			r.opts.logger.WarnContext(ctx, "every partition failed; serving the last good data, retrying after a backoff",
				"consecutive_failures", failures, "retry_in", delay)
		default:
			failures = 0
			delay = r.opts.nextInterval()
		}
		if m := r.opts.metrics; m != nil {
			m.consecutiveFailures.Set(float64(failures))
		}
		timer.Reset(delay)
		if r.opts.returnMem {
			memory.Reset(delay / 2)
		}
		r.setSchedule(failures, time.Now().Add(delay))
		if report := r.opts.report; report != nil {
			report(ctx, r.Status())
		}
	}
}

// RefreshNow runs one refresh synchronously: it waits for a refresh in
// progress to finish, then reads every partition and publishes the result.
// It returns an error when nothing was published; a refresh that published
// with some partitions kept stale succeeds (the snapshot's Partitions say
// which).
func (r *Refresher) RefreshNow(ctx context.Context) error {
	_, err := r.refreshNow(ctx)
	return err
}

// outcome is what one refresh left: the snapshot it published or confirmed,
// whether that was a new version, and whether every partition's read
// failed (what it published was only last good data).
type outcome struct {
	snap      *snapshot.Snapshot
	changed   bool
	allFailed bool
}

// refreshNow is RefreshNow, also returning the outcome.
func (r *Refresher) refreshNow(ctx context.Context) (out outcome, err error) {
	select {
	case r.running <- struct{}{}:
	case <-ctx.Done():
		return outcome{}, fmt.Errorf("refresh: waiting for the refresh in progress: %w", context.Cause(ctx))
	}
	defer func() { <-r.running }()
	ctx, span := r.opts.tracer.Start(ctx, "refresh")
	defer span.End()
	start := time.Now()
	out, err = r.refresh(ctx)
	if err != nil {
		span.SetStatus(codes.Error, failureCause(err))
		span.RecordError(err)
	}
	span.SetAttributes(attribute.Bool("vpnfacade.refresh.all_partitions_failed", out.allFailed))
	if r.opts.metrics != nil && ctx.Err() == nil {
		// A refresh cut short by ctx (shutdown, or the lease lost) is
		// not a failure of its own.
		r.opts.metrics.observe(time.Since(start), err)
	}
	return out, err
}

// firstDelay is how long to wait before the first refresh when the current
// snapshot was refreshed at refreshedAt: until it is interval old.
func firstDelay(refreshedAt, now time.Time, interval time.Duration) time.Duration {
	age := now.Sub(refreshedAt)
	if age < 0 || age >= interval {
		return 0
	}
	return interval - age
}

// readResult is the outcome of reading one partition.
type readResult struct {
	accountID, region string
	endpoints         []*clientvpnv1.ClientVpnEndpoint
	err               error
	at                time.Time // when the read completed
}

func (r *Refresher) refresh(ctx context.Context) (outcome, error) {
	start := time.Now()
	r.setAttempt(start)
	if p, ok := r.source.(Preparer); ok {
		pctx, cancel := context.WithTimeout(ctx, r.opts.readTimeout)
		err := p.Prepare(pctx)
		cancel()
		if err != nil {
			return outcome{}, fmt.Errorf("refresh: prepare the source: %w", err)
		}
	}
	results := r.readAll(ctx)
	if err := ctx.Err(); err != nil {
		return outcome{}, fmt.Errorf("refresh: %w", context.Cause(ctx))
	}

	var prev *snapshot.Snapshot
	view, err := r.store.Current(ctx)
	switch {
	case err == nil:
		prev = view.Snapshot
	case vpnfacade.ErrorCodeOf(err) == vpnfacade.EUNAVAILABLE:
		// Nothing published yet: every partition must read successfully.
	default:
		r.record(ctx, results, nil) // the reads' outcomes, without their last good data
		return outcome{}, storeError{fmt.Errorf("refresh: read the current snapshot: %w", err)}
	}

	r.record(ctx, results, prev)
	pub, err := build(results, prev)
	if err != nil {
		return outcome{}, err
	}
	// The content was read by the end of the last successful partition
	// read, not by the end of the refresh, which on a busy machine comes
	// later (and after a change upstream the snapshot cannot know of).
	for _, res := range results {
		if res.err == nil && res.at.After(pub.RefreshedAt) {
			pub.RefreshedAt = res.at
		}
	}
	stale := 0
	var newest time.Time // the newest last good read among stale partitions
	for _, p := range pub.Partitions {
		if p.Stale {
			stale++
			if p.RefreshedAt.After(newest) {
				newest = p.RefreshedAt
			}
		}
	}
	if stale > 0 && stale == len(pub.Partitions) {
		// Nothing was read: the content is as old as its newest last good
		// read, and says so, so that readers' maximum staleness, the Age
		// header and the age metric count from there.
		pub.RefreshedAt = newest
	}
	pub.Epoch = r.opts.epoch()
	if prev != nil && pub.Diff.Empty() && samePartitions(prev.Partitions, pub.Partitions) {
		// Nothing changed: confirm the current snapshot instead of writing
		// it again, unless another writer moved it on meanwhile.
		snap, err := r.store.Confirm(ctx, store.Confirmation{Version: prev.Version, RefreshedAt: pub.RefreshedAt, Partitions: pub.Partitions, Epoch: pub.Epoch})
		if err == nil {
			trace.SpanFromContext(ctx).SetAttributes(attribute.Int64("vpnfacade.snapshot.version", int64(snap.Version)),
				attribute.Int("vpnfacade.snapshot.endpoints", snap.Len()), attribute.Bool("vpnfacade.snapshot.confirmed", true))
			r.opts.logger.InfoContext(ctx, "snapshot confirmed unchanged",
				"version", snap.Version, "endpoints", snap.Len(), "partitions", len(pub.Partitions), "stale_partitions", stale,
				"duration", time.Since(start))
			return outcome{snap: snap, allFailed: stale > 0 && stale == len(pub.Partitions)}, nil
		}
		if vpnfacade.ErrorCodeOf(err) != vpnfacade.ECONFLICT {
			return outcome{}, storeError{fmt.Errorf("refresh: confirm: %w", err)}
		}
		r.opts.logger.DebugContext(ctx, "the snapshot moved on; publishing instead of confirming", "error", err)
	}
	snap, err := r.store.Publish(ctx, pub)
	if err != nil {
		return outcome{}, storeError{fmt.Errorf("refresh: publish: %w", err)}
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Int64("vpnfacade.snapshot.version", int64(snap.Version)),
		attribute.Int("vpnfacade.snapshot.endpoints", snap.Len()), attribute.Int("vpnfacade.snapshot.stale_partitions", stale))
	r.opts.logger.InfoContext(ctx, "snapshot published",
		"version", snap.Version, "endpoints", snap.Len(), "partitions", len(pub.Partitions), "stale_partitions", stale,
		"added", len(pub.Diff.Added), "modified", len(pub.Diff.Modified), "deleted", len(pub.Diff.Deleted),
		"duration", time.Since(start))
	return outcome{snap: snap, changed: true, allFailed: stale > 0 && stale == len(pub.Partitions)}, nil
}

// readAll reads every partition, at most opts.concurrency at a time, each
// within opts.readTimeout.
func (r *Refresher) readAll(ctx context.Context) []readResult {
	var results []readResult
	for account, region := range r.source.Partitions() {
		results = append(results, readResult{accountID: account, region: region})
	}
	var g errgroup.Group
	g.SetLimit(r.opts.concurrency)
	for i := range results {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			res := &results[i]
			rctx, span := r.opts.tracer.Start(ctx, "read partition", trace.WithAttributes(
				attribute.String("cloud.account.id", res.accountID), attribute.String("cloud.region", res.region)))
			defer span.End()
			rctx, cancel := context.WithTimeout(rctx, r.opts.readTimeout)
			defer cancel()
			eps, err := r.source.Read(rctx, res.accountID, res.region)
			if err == nil {
				err = checkPartition(res.accountID, res.region, eps)
			}
			res.at = time.Now()
			if err != nil {
				span.SetStatus(codes.Error, "read failed")
				span.RecordError(err)
				res.err = err
				return nil
			}
			span.SetAttributes(attribute.Int("vpnfacade.partition.endpoints", len(eps)))
			res.endpoints = eps
			return nil
		})
	}
	_ = g.Wait() // goroutines record their errors in results
	return results
}

// record counts each partition's consecutive failures, logs one line per
// failed read, and updates the per-partition metrics. prev, the current
// snapshot (nil when there is none), dates the last good read of a
// partition that failed.
func (r *Refresher) record(ctx context.Context, results []readResult, prev *snapshot.Snapshot) {
	m := r.opts.metrics
	for _, res := range results {
		key := vpnfacade.PartitionKey{AccountID: res.accountID, Region: res.region}
		r.setPartition(key, res.err, res.at)
		if res.err == nil {
			delete(r.failures, key)
			if m != nil {
				m.partition(res.accountID, res.region, 0, res.at, false)
			}
			continue
		}
		r.failures[key]++
		n := r.failures[key]
		last, kept := lastGood(prev, res.accountID, res.region)
		r.opts.logger.WarnContext(ctx, "partition read failed",
			"account", res.accountID, "region", res.region, "error", res.err,
			"consecutive_failures", n, "last_success", last.RefreshedAt, "serving_last_good", kept)
		if m != nil {
			m.partition(res.accountID, res.region, n, last.RefreshedAt, true)
		}
	}
}

// checkPartition verifies that a partition's read holds only endpoints of
// that partition, each with an id, each once: the snapshot's keys and the
// last-good lookups rely on it.
func checkPartition(accountID, region string, eps []*clientvpnv1.ClientVpnEndpoint) error {
	seen := make(map[string]bool, len(eps))
	for i, e := range eps {
		switch {
		case e == nil:
			return fmt.Errorf("source returned no endpoint at position %d", i)
		case e.GetClientVpnEndpointId() == "":
			return fmt.Errorf("source returned an endpoint without an id at position %d", i)
		case e.GetAccountId() != accountID || e.GetRegion() != region:
			return fmt.Errorf("source returned endpoint %s of partition %s/%s", e.GetClientVpnEndpointId(), e.GetAccountId(), e.GetRegion())
		case seen[e.GetClientVpnEndpointId()]:
			return fmt.Errorf("source returned endpoint %s twice", e.GetClientVpnEndpointId())
		}
		seen[e.GetClientVpnEndpointId()] = true
	}
	return nil
}

// build assembles the publication from the partitions' reads: a partition
// that failed keeps its endpoints of prev, marked stale. It fails when a
// failed partition has no last good data.
func build(results []readResult, prev *snapshot.Snapshot) (store.Publication, error) {
	var (
		pub     store.Publication
		missing []error
	)
	for _, res := range results {
		p := snapshot.Partition{AccountID: res.accountID, Region: res.region}
		if res.err == nil {
			p.RefreshedAt = res.at
			p.Endpoints = len(res.endpoints)
			pub.Partitions = append(pub.Partitions, p)
			pub.Endpoints = append(pub.Endpoints, res.endpoints...)
			continue
		}
		last, ok := lastGood(prev, res.accountID, res.region)
		if !ok {
			missing = append(missing, fmt.Errorf("%s/%s: %w", res.accountID, res.region, res.err))
			continue
		}
		eps, err := partitionOf(prev, vpnfacade.PartitionKey{AccountID: res.accountID, Region: res.region})
		if err != nil {
			return store.Publication{}, fmt.Errorf("refresh: keep the last good data: %w", err)
		}
		p.RefreshedAt = last.RefreshedAt
		p.Stale = true
		p.Error = res.err.Error()
		p.Endpoints = len(eps)
		pub.Partitions = append(pub.Partitions, p)
		pub.Endpoints = append(pub.Endpoints, eps...)
	}
	if len(missing) > 0 {
		return store.Publication{}, fmt.Errorf("refresh: %d of %d partitions failed with no earlier data to keep: %w",
			len(missing), len(results), errors.Join(missing...))
	}
	// Encode once: the diff compares the encodings the store then serves.
	next, err := snapshot.New(0, time.Time{}, nil, pub.Endpoints)
	if err != nil {
		return store.Publication{}, fmt.Errorf("refresh: %w", err)
	}
	pub.Snapshot = next
	pub.Diff = snapshot.Changes(prev, next)
	pub.Base = prev
	return pub, nil
}

// lastGood returns prev's record of a partition when it holds data that was
// once read successfully.
func lastGood(prev *snapshot.Snapshot, accountID, region string) (snapshot.Partition, bool) {
	if prev == nil {
		return snapshot.Partition{}, false
	}
	i := slices.IndexFunc(prev.Partitions, func(p snapshot.Partition) bool {
		return p.AccountID == accountID && p.Region == region
	})
	if i < 0 || prev.Partitions[i].RefreshedAt.IsZero() {
		return snapshot.Partition{}, false
	}
	return prev.Partitions[i], true
}

// samePartitions reports whether two snapshots hold the same partitions, in
// any order (their states may differ).
func samePartitions(a, b []snapshot.Partition) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make(map[vpnfacade.PartitionKey]bool, len(a))
	for _, p := range a {
		keys[vpnfacade.PartitionKey{AccountID: p.AccountID, Region: p.Region}] = true
	}
	for _, p := range b {
		if !keys[vpnfacade.PartitionKey{AccountID: p.AccountID, Region: p.Region}] {
			return false
		}
	}
	return true
}

// partitionOf decodes the endpoints of one partition of a snapshot: only a
// failed partition's last good data is decoded, not the whole snapshot.
func partitionOf(s *snapshot.Snapshot, key vpnfacade.PartitionKey) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	var out []*clientvpnv1.ClientVpnEndpoint
	for e := range s.All() {
		if e.Partition() != key {
			continue
		}
		msg, err := e.Message()
		if err != nil {
			return nil, err
		}
		out = append(out, msg)
	}
	return out, nil
}

// Options configure a Refresher. The zero value is valid: each zero field
// means the default its comment names.
type Options struct {
	// Interval is the time between successful refreshes, before jitter.
	// 0 means DefaultInterval.
	Interval time.Duration
	// Jitter spreads each interval uniformly by ± this fraction of it, so
	// that replicas do not refresh in step; it must be below 1. 0 means
	// DefaultJitter; a negative value means no jitter.
	Jitter float64
	// Concurrency is how many partitions are read at once. 0 means
	// DefaultConcurrency.
	Concurrency int
	// ReadTimeout bounds the read of one partition, retries included; a
	// read that exceeds it fails like any other. 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// MinBackoff is the delay after the first failed refresh; it doubles
	// with each further one up to MaxBackoff, each jittered. 0 means
	// DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the delay after failed refreshes; it must be at least
	// MinBackoff. 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// Epoch returns the writer's fencing epoch for each publish. Nil means
	// always 0, which only the memory store accepts.
	Epoch func() uint64
	// Logger receives refreshes and failed reads; nil discards them.
	Logger *slog.Logger
	// Registerer receives the refresh metrics (vpnfacade_refresh_* and
	// vpnfacade_partition_*); nil means no metrics. Pass the service's own
	// registry, not the global one.
	Registerer prometheus.Registerer
	// TracerProvider receives a span for each refresh, with a child for
	// each partition read (the source's own spans, such as upstream's per
	// page, and the store's below them); nil means no spans.
	TracerProvider trace.TracerProvider
	// Report, when set, is called with the refresher's Status when Run
	// starts and after each refresh Run makes, on Run's goroutine: it
	// should return promptly. The leader uses it to share its state with
	// the other replicas. Nil: not reported.
	Report func(ctx context.Context, s Status)
	// ReturnMemory, when set, makes Run return the memory a refresh left
	// behind to the operating system halfway between that refresh and the
	// next (runtime/debug.FreeOSMemory: one forced collection per refresh).
	// Decoding the upstream's answers allocates several times what the
	// snapshot keeps; without it, Go's runtime may keep that garbage's
	// pages resident until the heap grows into them again. It waits so as
	// not to compete with serving the version just published: the forced
	// collection takes CPU, and releasing the pages holds the heap lock,
	// which stalls every allocation in the process while it lasts.
	ReturnMemory bool
}

// Defaults of Options.
const (
	DefaultInterval    = 60 * time.Second
	DefaultJitter      = 0.1
	DefaultConcurrency = 4
	DefaultReadTimeout = 5 * time.Minute
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
)

// options are a Refresher's settings, resolved from Options.
type options struct {
	interval    time.Duration
	jitter      float64
	concurrency int
	readTimeout time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
	epoch       func() uint64
	logger      *slog.Logger
	metrics     *metrics // nil: not recorded
	tracer      trace.Tracer
	report      func(context.Context, Status) // nil: not reported
	returnMem   bool
}

// resolve checks o and returns it with every default applied. It registers
// the metrics, so it is called once per Refresher.
func (o Options) resolve() (options, error) {
	r := options{
		interval:    cmp.Or(o.Interval, DefaultInterval),
		jitter:      cmp.Or(o.Jitter, DefaultJitter),
		concurrency: cmp.Or(o.Concurrency, DefaultConcurrency),
		readTimeout: cmp.Or(o.ReadTimeout, DefaultReadTimeout),
		minBackoff:  cmp.Or(o.MinBackoff, DefaultMinBackoff),
		maxBackoff:  cmp.Or(o.MaxBackoff, DefaultMaxBackoff),
		epoch:       o.Epoch,
		logger:      o.Logger,
		tracer:      tracing.Tracer(o.TracerProvider, scope),
		report:      o.Report,
		returnMem:   o.ReturnMemory,
	}
	if r.jitter < 0 {
		r.jitter = 0
	}
	if r.epoch == nil {
		r.epoch = func() uint64 { return 0 }
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case r.interval < 0:
		return options{}, vpnfacade.Errorf(vpnfacade.EINVALID, "interval", "%v is not a positive duration", o.Interval)
	case r.jitter >= 1:
		return options{}, vpnfacade.Errorf(vpnfacade.EINVALID, "jitter", "%v is out of range: use a fraction below 1 (negative: none)", o.Jitter)
	case r.concurrency < 0:
		return options{}, vpnfacade.Errorf(vpnfacade.EINVALID, "concurrency", "%d is out of range: use 1 or more", o.Concurrency)
	case r.readTimeout < 0:
		return options{}, vpnfacade.Errorf(vpnfacade.EINVALID, "read_timeout", "%v is not a positive duration", o.ReadTimeout)
	case r.minBackoff < 0 || r.maxBackoff < r.minBackoff:
		return options{}, vpnfacade.Errorf(vpnfacade.EINVALID, "backoff",
			"min %v and max %v are invalid: use a positive min and a max at least as long", r.minBackoff, r.maxBackoff)
	}
	if o.Registerer != nil {
		m, err := newMetrics(o.Registerer)
		if err != nil {
			return options{}, err
		}
		r.metrics = m
	}
	return r, nil
}

// nextInterval is the interval with ±jitter applied.
func (o options) nextInterval() time.Duration {
	spread := time.Duration(float64(o.interval) * o.jitter)
	if spread <= 0 {
		return o.interval
	}
	return o.interval - spread + rand.N(2*spread+1)
}

// backoff is the delay after the n-th consecutive failure (n ≥ 1): min
// doubled n-1 times, capped at max, then jittered to between half and all of
// it.
func (o options) backoff(n int) time.Duration {
	return o.backoffFrom(o.minBackoff, n)
}

// backoffFrom is backoff starting from base instead of the minimum.
func (o options) backoffFrom(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < o.maxBackoff; i++ {
		d = min(d, o.maxBackoff/2) * 2 // never overflows
	}
	d = min(d, o.maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// storeError marks a refresh failure on the store's side (reading the
// current snapshot or publishing), as opposed to reading upstream.
type storeError struct{ err error }

func (e storeError) Error() string { return e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// Causes of a failed refresh, as logged ("cause") and counted
// (vpnfacade_refresh_failures_total{cause}).
const (
	// CauseUpstream: the source could not be read (EC2, STS, role).
	CauseUpstream = "upstream"
	// CauseStoreOutOfMemory: Redis refused the publish for lack of memory.
	CauseStoreOutOfMemory = "store_out_of_memory"
	// CauseSuperseded: another writer took over (a newer fencing epoch or
	// version); this process's data was not published.
	CauseSuperseded = "superseded"
	// CauseStore: the store could not be read or written (unreachable,
	// timed out, ...).
	CauseStore = "store"
)

// failureCause names the cause of a failed refresh.
func failureCause(err error) string {
	var se storeError
	switch {
	case !errors.As(err, &se):
		return CauseUpstream
	case errors.Is(err, store.ErrOutOfMemory):
		return CauseStoreOutOfMemory
	case vpnfacade.ErrorCodeOf(err) == vpnfacade.ECONFLICT:
		return CauseSuperseded
	default:
		return CauseStore
	}
}
