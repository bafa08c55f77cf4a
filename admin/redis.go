package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade/refresher"
)

// Replicas sharing a Redis coordinate through these keys and channels of
// the store's namespace N (one hash tag, so the scripts run on Redis
// Cluster):
//
//	vpnfacade:{N}:refresh_now:pending     the id of the forced refresh asked for and not yet done, with a TTL
//	vpnfacade:{N}:refresh_now:limit       the id of the last forced refresh, living for the minimum interval
//	vpnfacade:{N}:refresh_now:id          counter the ids are taken from
//	vpnfacade:{N}:refresh_now:result:<id> the outcome (JSON), kept a few minutes
//	vpnfacade:{N}:refresh_now:requests    channel: a new id, for the leader
//	vpnfacade:{N}:refresh_now:done        channel: an id whose outcome is stored, for the waiters
//	vpnfacade:{N}:refresher_status        the leader's last Report (JSON)
//
// A caller (any replica) runs requestScript: with no lease holder it is
// refused; with a request pending it joins it (coalescing); within the
// minimum interval of the last one it is refused with the time left;
// otherwise it creates one and announces it. The leader takes pending
// requests from the channel (and by polling, in case a message was lost,
// or the request predates its term), kicks its refresher, stores the
// outcome and announces it. Callers wait for the announcement (or poll)
// and read the outcome. A request the leader never takes (it died, lost its
// lease) expires with its TTL, or is taken by the next leader.

// requestScript asks for a forced refresh.
//
//	KEYS[1] lease, KEYS[2] pending, KEYS[3] limit, KEYS[4] id counter
//	ARGV[1] minimum interval (ms), ARGV[2] pending TTL (ms), ARGV[3] requests channel
//
// Returns {"noleader", ""}, {"join", id}, {"limited", ms left} or {"new", id}.
var requestScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'noleader', ''}
end
local pending = redis.call('GET', KEYS[2])
if pending then
  return {'join', pending}
end
local left = redis.call('PTTL', KEYS[3])
if left > 0 then
  return {'limited', tostring(left)}
end
local id = tostring(redis.call('INCR', KEYS[4]))
redis.call('SET', KEYS[2], id, 'PX', ARGV[2])
redis.call('SET', KEYS[3], id, 'PX', ARGV[1])
redis.call('PUBLISH', ARGV[3], id)
return {'new', id}
`)

// finishScript stores a request's outcome, ends the request and announces
// it.
//
//	KEYS[1] pending, KEYS[2] result
//	ARGV[1] id, ARGV[2] outcome JSON, ARGV[3] result TTL (ms), ARGV[4] done channel
var finishScript = redis.NewScript(`
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
`)

// resultTTL is how long an outcome stays readable for its waiters.
const resultTTL = 5 * time.Minute

// reportTTL is how long a leader's report lives without a newer one.
const reportTTL = 24 * time.Hour

// pollEvery is how often waiters and the leader look for what a lost
// pub/sub message would have told them.
const pollEvery = 500 * time.Millisecond

// LeaderFlag tells whether this replica leads now (lease.Lease does).
type LeaderFlag interface {
	Leader() bool
}

// RedisOptions configures NewRedis.
type RedisOptions struct {
	Options
	// Client is the store's Redis client.
	Client redis.UniversalClient
	// Key names a key of the store's namespace (store.Redis.Key).
	Key func(name string) string
	// LeaseKey and EpochKey are the writer lease's keys.
	LeaseKey, EpochKey string
	// Lease tells whether this replica leads.
	Lease LeaderFlag
}

// Redis is the Coordinator of replicas sharing a Redis. Every replica
// calls RefreshNow; the leader also runs Serve during its term.
type Redis struct {
	opts RedisOptions
	keys redisKeys
	// served is the id of the last request Serve answered.
	served string

	mu     sync.Mutex
	flight *flight // this replica's request in progress; nil when none
}

type redisKeys struct {
	lease, epoch, pending, limit, id, resultPrefix, requests, done, report string
}

// NewRedis returns the Coordinator of replicas sharing a Redis.
func NewRedis(opts RedisOptions) (*Redis, error) {
	switch {
	case opts.Refresher == nil:
		return nil, errors.New("admin: Options.Refresher is nil")
	case opts.Client == nil || opts.Key == nil || opts.Lease == nil:
		return nil, errors.New("admin: RedisOptions needs Client, Key and Lease")
	case opts.LeaseKey == "" || opts.EpochKey == "":
		return nil, errors.New("admin: RedisOptions needs LeaseKey and EpochKey")
	}
	opts.Options = opts.Options.withDefaults()
	k := opts.Key
	return &Redis{opts: opts, keys: redisKeys{
		lease:        opts.LeaseKey,
		epoch:        opts.EpochKey,
		pending:      k("refresh_now:pending"),
		limit:        k("refresh_now:limit"),
		id:           k("refresh_now:id"),
		resultPrefix: k("refresh_now:result:"),
		requests:     k("refresh_now:requests"),
		done:         k("refresh_now:done"),
		report:       k("refresher_status"),
	}}, nil
}

// result is an outcome as stored for the waiters.
type result struct {
	Outcome *Outcome `json:"outcome,omitempty"`
	// Failed is the message of a RefreshFailedError.
	Failed string `json:"failed,omitempty"`
	// NoLeader: the leader stopped leading before it could refresh.
	NoLeader bool `json:"no_leader,omitempty"`
}

// RefreshNow implements Coordinator. Concurrent calls on this replica share
// one request (and one subscription), which goes on when its callers leave,
// until the refresh timeout.
func (c *Redis) RefreshNow(ctx context.Context) (Outcome, error) {
	c.mu.Lock()
	f := c.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flight = f
		go func() {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.RefreshTimeout+c.opts.MinInterval)
			defer cancel()
			f.out, f.err = c.ask(actx)
			c.mu.Lock()
			c.flight = nil
			c.mu.Unlock()
			close(f.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.out, f.err
	case <-ctx.Done():
		return Outcome{}, context.Cause(ctx)
	}
}

// ask asks the leader for a forced refresh and waits for its outcome.
func (c *Redis) ask(ctx context.Context) (Outcome, error) {
	pendingTTL := c.opts.RefreshTimeout + c.opts.MinInterval
	res, err := requestScript.Run(ctx, c.opts.Client,
		[]string{c.keys.lease, c.keys.pending, c.keys.limit, c.keys.id},
		c.opts.MinInterval.Milliseconds(), pendingTTL.Milliseconds(), c.keys.requests).StringSlice()
	if err != nil {
		return Outcome{}, fmt.Errorf("admin: ask for a refresh: %w", err)
	}
	if len(res) != 2 {
		return Outcome{}, fmt.Errorf("admin: the request script returned %q", res)
	}
	switch res[0] {
	case "noleader":
		return Outcome{}, ErrNoLeader
	case "limited":
		ms, _ := strconv.ParseInt(res[1], 10, 64)
		return Outcome{}, &RateLimitedError{RetryAfter: time.Duration(ms) * time.Millisecond, Interval: c.opts.MinInterval}
	case "join", "new":
	default:
		return Outcome{}, fmt.Errorf("admin: the request script returned %q", res)
	}
	id := res[1]
	// Listen, then look: an outcome stored before the subscription took
	// effect is found by the first look.
	sub := c.opts.Client.Subscribe(ctx, c.keys.done)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		return Outcome{}, fmt.Errorf("admin: subscribe to refresh outcomes: %w", err)
	}
	announced := sub.Channel()
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	for {
		out, err, done := c.outcome(ctx, id)
		if done {
			return out, err
		}
		select {
		case <-ctx.Done():
			return Outcome{}, context.Cause(ctx)
		case <-announced:
		case <-poll.C:
		}
	}
}

// outcome reads request id's outcome; done is false while it is pending.
func (c *Redis) outcome(ctx context.Context, id string) (out Outcome, err error, done bool) {
	vals, err := c.opts.Client.MGet(ctx, c.keys.resultPrefix+id, c.keys.pending).Result()
	if err != nil {
		return Outcome{}, fmt.Errorf("admin: read the refresh outcome: %w", err), true
	}
	stored, _ := vals[0].(string)
	if stored == "" {
		if pending, _ := vals[1].(string); pending == id {
			return Outcome{}, nil, false
		}
		// Neither done nor pending: it expired untaken.
		return Outcome{}, ErrNoLeader, true
	}
	var r result
	if err := json.Unmarshal([]byte(stored), &r); err != nil {
		return Outcome{}, fmt.Errorf("admin: decode the refresh outcome: %w", err), true
	}
	switch {
	case r.Outcome != nil:
		return *r.Outcome, nil, true
	case r.Failed != "":
		return Outcome{}, &RefreshFailedError{Message: r.Failed}, true
	default:
		return Outcome{}, ErrNoLeader, true
	}
}

// Serve answers forced refresh requests while ctx lives: the leader runs it
// for its term, beside its refresher's Run. It returns nil when ctx ends.
func (c *Redis) Serve(ctx context.Context) error {
	sub := c.opts.Client.Subscribe(ctx, c.keys.requests)
	defer sub.Close()
	requests := sub.Channel()
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	for {
		c.serveOne(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-requests:
		case <-poll.C:
		}
	}
}

// serveOne answers the pending request, if any.
func (c *Redis) serveOne(ctx context.Context) {
	id, err := c.opts.Client.Get(ctx, c.keys.pending).Result()
	if err != nil || id == c.served {
		// None, Redis unreachable (the next poll retries), or answered
		// already and the pending key not yet gone.
		return
	}
	out, err := kick(ctx, c.opts.Options)
	if ctx.Err() != nil {
		return // no longer leading: the next leader takes the request
	}
	var r result
	var failed *RefreshFailedError
	switch {
	case err == nil:
		r.Outcome = &out
	case errors.As(err, &failed):
		r.Failed = failed.Message
	default:
		r.NoLeader = true
	}
	body, err := json.Marshal(r)
	if err != nil {
		return
	}
	err = finishScript.Run(ctx, c.opts.Client, []string{c.keys.pending, c.keys.resultPrefix + id},
		id, body, resultTTL.Milliseconds(), c.keys.done).Err()
	if err == nil {
		c.served = id
	}
}

// Lease implements Coordinator.
func (c *Redis) Lease(ctx context.Context) (Lease, bool, error) {
	vals, err := c.opts.Client.MGet(ctx, c.keys.lease, c.keys.epoch).Result()
	if err != nil {
		return Lease{}, true, fmt.Errorf("admin: read the writer lease: %w", err)
	}
	var l Lease
	if token, ok := vals[0].(string); ok {
		l.Holder = ownerOf(token)
	}
	if s, ok := vals[1].(string); ok {
		l.Epoch, _ = strconv.ParseUint(s, 10, 64)
	}
	return l, true, nil
}

// ownerOf returns the owner part of a lease token ("owner/random"): the
// random part only tells Leases of one owner apart.
func ownerOf(token string) string {
	if i := strings.LastIndexByte(token, '/'); i > 0 {
		return token[:i]
	}
	return token
}

// Role implements Coordinator.
func (c *Redis) Role() Role {
	if c.opts.Lease.Leader() {
		return RoleLeader
	}
	return RoleFollower
}

// Replica implements Coordinator.
func (c *Redis) Replica() string { return c.opts.Replica }

// Publish shares the refresher's status with the other replicas: pass it to
// refresher.WithReport. Failures are ignored (the next report retries).
func (c *Redis) Publish(ctx context.Context, s refresher.Status) {
	body, err := json.Marshal(Report{Replica: c.opts.Replica, ReportedAt: time.Now(), Status: s})
	if err != nil {
		return
	}
	_ = c.opts.Client.Set(ctx, c.keys.report, body, reportTTL).Err()
}

// Report implements Coordinator.
func (c *Redis) Report(ctx context.Context) (Report, bool, error) {
	body, err := c.opts.Client.Get(ctx, c.keys.report).Bytes()
	if errors.Is(err, redis.Nil) {
		return Report{}, false, nil
	}
	if err != nil {
		return Report{}, false, fmt.Errorf("admin: read the refresher's report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(body, &r); err != nil {
		return Report{}, false, fmt.Errorf("admin: decode the refresher's report: %w", err)
	}
	return r, true, nil
}
