package lease

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade/store"
)

// The writer lease elects one writer (the refresher) among the replicas
// sharing a Redis namespace, and hands each term of leadership a fencing
// epoch that Publish checks.
//
// Keys (both carry the namespace's hash tag, so the scripts below run on
// Redis Cluster):
//
//	vpnfacade:{N}:lease   the holder's token, with a TTL; absent when nobody leads
//	vpnfacade:{N}:epoch   the fencing epoch (see EpochKey), raised by every win
//
// Why epochs are floored at Redis's clock: a Redis that restarted empty,
// or was restored from an older RDB/AOF, forgets or rolls back the epoch
// key while a deposed leader may still hold a higher epoch. Were the
// counter simply incremented from what Redis holds, a new leader could get
// an epoch equal to or below the old leader's, and the old leader could
// then publish over it. So a win sets the epoch to max(stored, now in
// Unix milliseconds by Redis's TIME) + 1: every epoch is at least the time
// of its win, an epoch issued before the data loss is below the current
// time, and increments are exact (INCR). Epochs only compare with each
// other, so their size does not matter. The residual risk is a Redis host
// clock set back by more than the time since the last win.
//
// The flip script of Publish reads a missing epoch key as 0: after an
// empty restart an old leader's publication is accepted until some writer
// wins the lease again, and then the stored epoch is raised past it (the
// max above includes whatever a publication stored).

// minLeaseTTL is the shortest TTL Run accepts: renewals run every ttl/3.
const minLeaseTTL = 10 * time.Millisecond

// leaseReleaseTimeout bounds the release of the lease (on shutdown too);
// if it fails, the key expires on its own within the TTL.
const leaseReleaseTimeout = time.Second

// ErrLeaseLost is the cause (context.Cause) of a leadership context
// cancelled because the lease was lost: another holder took it, a newer
// epoch superseded this holder's, or it could not be renewed before it
// expired.
var ErrLeaseLost = errors.New("lease: the writer lease was lost")

// errLeadReturned is the cause of a leadership context cancelled because
// the lead function returned.
var errLeadReturned = errors.New("lease: the lead function returned")

// leaseAcquireScript takes the lease when it is free (or already ours: a
// retry after a lost reply) and raises the fencing epoch in the same step.
//
//	KEYS[1] lease, KEYS[2] epoch; ARGV[1] token, ARGV[2] TTL in ms
//
// Returns {"ok", new epoch} or {"held", the holder's token}.
var leaseAcquireScript = redis.NewScript(store.LuaDecimalLess + `
if redis.replicate_commands then redis.replicate_commands() end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {'held', holder}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local stored = redis.call('GET', KEYS[2])
if not stored or less(stored, now) then
  redis.call('SET', KEYS[2], now)
end
redis.call('INCR', KEYS[2])
return {'ok', redis.call('GET', KEYS[2])}
`)

// leaseRenewScript extends the lease if it still holds this holder's token
// and no newer epoch has been issued.
//
//	KEYS[1] lease, KEYS[2] epoch; ARGV[1] token, ARGV[2] TTL in ms, ARGV[3] the holder's epoch
//
// Returns 1 when renewed, 0 when another token holds the lease, -1 when
// the stored epoch is above the holder's, -2 when the lease key is gone
// (expired, or the keys were flushed).
var leaseRenewScript = redis.NewScript(store.LuaDecimalLess + `
local holder = redis.call('GET', KEYS[1])
if not holder then
  return -2
end
if holder ~= ARGV[1] then
  return 0
end
local stored = redis.call('GET', KEYS[2])
if stored and less(ARGV[3], stored) then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// leaseReleaseScript deletes the lease if it holds this holder's token.
//
//	KEYS[1] lease; ARGV[1] token
var leaseReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Lease is a writer lease in Redis: among all the Leases of one namespace
// (one per replica), at most one leads at a time, and each term of
// leadership carries a fencing epoch greater than every earlier one. Pass
// the epoch with every Publication: once another writer has taken over,
// Publish refuses the old epoch, so a deposed leader that has not noticed
// yet (paused, partitioned) cannot overwrite newer data.
//
// Create one with New and call Run.
type Lease struct {
	client   redis.UniversalClient
	key      string
	epochKey string
	token    string // owner + "/" + random: unique per Lease
	ttl      time.Duration
	log      *slog.Logger

	running atomic.Bool   // Run is in progress
	leader  atomic.Bool   // a term is in progress and its context is live
	epoch   atomic.Uint64 // the epoch of the current or last term
}

// DefaultTTL is the lease's time to live when Options.TTL is zero.
const DefaultTTL = 15 * time.Second

// Options configures New.
type Options struct {
	// Owner names the holder in the lease's value and in logs (e.g.
	// "host/pid"); a random suffix makes each Lease's token unique even for
	// equal owners. Required.
	Owner string
	// TTL is how long the lease lives without renewal: a holder that dies
	// is replaced within about TTL. It is rounded down to whole
	// milliseconds and must be at least 10ms. Default DefaultTTL.
	TTL time.Duration
	// Logger receives campaign and term events; nil discards them.
	Logger *slog.Logger
}

// New returns a writer lease on the namespace of st: its key is
// st.Key("lease") and its fencing epoch is st.EpochKey(), the epoch
// st.Publish checks.
func New(st *store.Redis, opts Options) (*Lease, error) {
	if opts.Owner == "" {
		return nil, errors.New("lease: Options.Owner is empty")
	}
	ttl := cmp.Or(opts.TTL, DefaultTTL).Truncate(time.Millisecond)
	if ttl < minLeaseTTL {
		return nil, fmt.Errorf("lease: ttl %s is below the minimum %s", ttl, minLeaseTTL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lease{
		client:   st.Client(),
		key:      st.Key("lease"),
		epochKey: st.EpochKey(),
		token:    opts.Owner + "/" + rand.Text(),
		ttl:      ttl,
		log:      log.With("lease_owner", opts.Owner),
	}, nil
}

// Leader reports whether this Lease leads now: a term has begun and its
// leadership context has not been cancelled.
func (l *Lease) Leader() bool { return l.leader.Load() }

// Epoch returns the fencing epoch of the current term, or of the last one
// when not leading; 0 before the first.
func (l *Lease) Epoch() uint64 { return l.epoch.Load() }

// Run campaigns for the lease and leads whenever it holds it, until ctx is
// done; it then returns nil.
//
// While not leading it tries to take the lease at once and then every
// ttl/6 to ttl/3 (jittered). Each win raises the fencing epoch in the same
// atomic step and calls lead with a context and the new epoch. The
// context is cancelled, with cause ErrLeaseLost, as soon as the lease is
// found taken or superseded, or when it could not be renewed in time: the
// lease is renewed every ttl/3, and leadCtx ends no later than ttl after
// the start of the last successful renewal (less 1% and 2ms for clock-rate
// drift), before Redis can expire it. It is also cancelled when ctx is
// done. lead must return promptly once its context is done; Run waits for
// it, then releases the lease (only if it still holds this Lease's token)
// so that another replica can take over at once, and campaigns again.
//
// If lead returns on its own, the term ends the same way: with a nil error
// Run campaigns again after a jittered delay; with an error Run releases
// the lease and returns that error. An error lead returns after its
// context was cancelled is ignored.
//
// Run fails at once when lead is nil or Run is already running on this
// Lease. Redis failures never end Run: they are logged and
// retried.
func (l *Lease) Run(ctx context.Context, lead func(leadCtx context.Context, epoch uint64) error) error {
	if lead == nil {
		return fmt.Errorf("lease: %s: lead function is nil", l.key)
	}
	if !l.running.CompareAndSwap(false, true) {
		return fmt.Errorf("lease: %s: Run is already running on this lease", l.key)
	}
	defer l.running.Store(false)

	mayHold := false // the lease key may hold our token
	defer func() {
		if mayHold {
			l.release(ctx)
		}
	}()
	failing := false // the last attempt failed on Redis; log only the first
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wait.C:
		}
		mayHold = true
		epoch, start, holder, err := l.acquire(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil:
			if !failing {
				l.log.WarnContext(ctx, "cannot campaign for the writer lease; retrying", "error", err)
			}
			failing = true
		case epoch == 0:
			mayHold, failing = false, false
			l.log.DebugContext(ctx, "the writer lease is held by another", "holder", holder)
		default:
			failing = false
			leadErr := l.hold(ctx, epoch, start, lead)
			mayHold = !l.release(ctx)
			if leadErr != nil {
				return leadErr
			}
			if ctx.Err() != nil {
				return nil
			}
		}
		wait.Reset(l.retryDelay())
	}
}

// renewal is the outcome of one renewal attempt.
type renewal struct {
	start  time.Time // when the attempt was sent
	result int64     // 1 renewed, 0 taken, -1 superseded, -2 gone (see leaseRenewScript)
	err    error
}

// hold runs one term: it calls lead and renews the lease until lead
// returns, the lease is lost or expires, or ctx is done. It returns lead's
// error only when lead returned on its own.
func (l *Lease) hold(ctx context.Context, epoch uint64, start time.Time, lead func(context.Context, uint64) error) error {
	leadCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.epoch.Store(epoch)
	l.leader.Store(true)
	log := l.log.With("epoch", epoch)
	log.InfoContext(ctx, "took the writer lease")

	done := make(chan error, 1)
	go func() { done <- lead(leadCtx, epoch) }()

	expiry := l.validUntil(start)
	expire := time.NewTimer(time.Until(expiry))
	defer expire.Stop()
	renew := time.NewTimer(time.Until(start.Add(l.ttl / 3)))
	defer renew.Stop()
	renewed := make(chan renewal, 1) // at most one attempt in flight
	renewing := false

	stop := func(cause error) {
		l.leader.Store(false)
		cancel(cause)
	}
	var (
		leadErr      error
		leadReturned bool
	)
term:
	for {
		select {
		case <-ctx.Done():
			stop(context.Cause(ctx))
			break term
		case leadErr = <-done:
			leadReturned = true
			stop(errLeadReturned)
			break term
		case <-expire.C:
			log.WarnContext(ctx, "the writer lease could not be renewed before it expired; stepping down", "ttl", l.ttl)
			stop(fmt.Errorf("%w: not renewed within the %s TTL", ErrLeaseLost, l.ttl))
			break term
		case <-renew.C:
			if renewing {
				continue // the expiry timer bounds a stuck attempt
			}
			renewing = true
			go func(deadline time.Time) {
				r := renewal{start: time.Now()}
				rctx, cancel := context.WithDeadline(ctx, deadline)
				defer cancel()
				r.result, r.err = l.renew(rctx, epoch)
				renewed <- r
			}(expiry)
		case r := <-renewed:
			renewing = false
			switch {
			case r.err != nil:
				log.WarnContext(ctx, "cannot renew the writer lease; retrying until it expires", "error", r.err, "expires_in", time.Until(expiry).Round(time.Millisecond))
				renew.Reset(l.ttl / 10)
			case r.result == 1:
				expiry = l.validUntil(r.start)
				expire.Reset(time.Until(expiry))
				renew.Reset(time.Until(r.start.Add(l.ttl / 3)))
			case r.result == -2:
				log.WarnContext(ctx, "the writer lease key is gone from Redis (it expired, or the keys were flushed or lost in a restart); stepping down")
				stop(fmt.Errorf("%w: the lease key is gone", ErrLeaseLost))
				break term
			case r.result == -1:
				log.WarnContext(ctx, "a newer fencing epoch was issued; stepping down")
				stop(fmt.Errorf("%w: a newer epoch was issued", ErrLeaseLost))
				break term
			default:
				log.WarnContext(ctx, "the writer lease was taken by another holder; stepping down")
				stop(fmt.Errorf("%w: taken by another holder", ErrLeaseLost))
				break term
			}
		}
	}
	if !leadReturned {
		if err := <-done; err != nil {
			log.DebugContext(ctx, "the lead function returned an error after its term ended", "error", err)
		}
	}
	log.InfoContext(ctx, "the writer term ended", "cause", context.Cause(leadCtx))
	if leadReturned && leadErr != nil {
		return fmt.Errorf("lease: %s: leading at epoch %d: %w", l.key, epoch, leadErr)
	}
	return nil
}

// acquire tries to take the lease. It returns the new epoch and the time
// the attempt was sent on success, the holder's token when another holds
// it. An attempt is abandoned when its answer could no longer leave any
// validity.
func (l *Lease) acquire(ctx context.Context) (epoch uint64, start time.Time, holder string, err error) {
	start = time.Now()
	ctx, cancel := context.WithDeadline(ctx, l.validUntil(start))
	defer cancel()
	res, err := leaseAcquireScript.Run(ctx, l.client, []string{l.key, l.epochKey}, l.token, l.ttl.Milliseconds()).StringSlice()
	if err != nil {
		return 0, start, "", fmt.Errorf("lease: %s: acquire: %w", l.key, err)
	}
	if len(res) != 2 {
		return 0, start, "", fmt.Errorf("lease: %s: acquire script returned %q", l.key, res)
	}
	switch res[0] {
	case "ok":
		epoch, err := strconv.ParseUint(res[1], 10, 64)
		if err != nil || epoch == 0 {
			return 0, start, "", fmt.Errorf("lease: %s: acquire script returned epoch %q: %w", l.key, res[1], err)
		}
		return epoch, start, "", nil
	case "held":
		return 0, start, res[1], nil
	default:
		return 0, start, "", fmt.Errorf("lease: %s: acquire script returned %q", l.key, res)
	}
}

// renew extends the lease of the term at epoch (see leaseRenewScript).
func (l *Lease) renew(ctx context.Context, epoch uint64) (int64, error) {
	res, err := leaseRenewScript.Run(ctx, l.client, []string{l.key, l.epochKey},
		l.token, l.ttl.Milliseconds(), strconv.FormatUint(epoch, 10)).Int64()
	if err != nil {
		return 0, fmt.Errorf("lease: %s: renew at epoch %d: %w", l.key, epoch, err)
	}
	return res, nil
}

// release deletes the lease if it still holds this Lease's token, even
// when ctx is done. It reports whether Redis answered; if not, the lease
// expires on its own.
func (l *Lease) release(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(l.ttl, leaseReleaseTimeout))
	defer cancel()
	_, err := leaseReleaseScript.Run(ctx, l.client, []string{l.key}, l.token).Int64()
	if err != nil {
		l.log.WarnContext(ctx, "cannot release the writer lease; it expires on its own", "ttl", l.ttl, "error", err)
		return false
	}
	return true
}

// validUntil is when a lease taken or renewed by a command sent at start
// stops being safe to rely on: Redis counts the TTL from when it runs the
// command, later than start, and a margin covers clocks running at
// slightly different rates.
func (l *Lease) validUntil(start time.Time) time.Time {
	return start.Add(l.ttl - l.ttl/100 - 2*time.Millisecond)
}

// retryDelay is the jittered wait between campaign attempts: ttl/6 to ttl/3.
func (l *Lease) retryDelay() time.Duration {
	return l.ttl/6 + mrand.N(l.ttl/6+1)
}
