package admin_test

import (
	"context"
	"errors"
	"iter"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade/admin"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/refresher"
)

// oneRegion is a refresher.Source of one endpoint, counting its reads.
type oneRegion struct{ reads atomic.Int64 }

func (s *oneRegion) Partitions() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) { yield("111111111111", "eu-west-1") }
}

func (s *oneRegion) Read(_ context.Context, account, region string) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	s.reads.Add(1)
	return []*clientvpnv1.ClientVpnEndpoint{{
		ClientVpnEndpointId: proto.String("cvpn-endpoint-0123456789abcdef0"), AccountId: account, Region: region,
	}}, nil
}

// flag is a LeaderFlag the test sets.
type flag struct{ atomic.Bool }

func (f *flag) Leader() bool { return f.Load() }

func TestRedisRefreshNowNeedsALeaderAndIsTakenByTheNextOne(t *testing.T) {
	t.Parallel()
	url := redistest.Start(t).URL()
	st := storetest.Redis(t, url, "admin")
	raw := storetest.RawClient(t, url)
	src := &oneRegion{}
	ref, err := refresher.New(src, st, refresher.Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var leads flag
	c, err := admin.NewRedis(admin.RedisOptions{
		Options: admin.Options{Refresher: ref, Replica: "host/1", MinInterval: time.Hour},
		Client:  st.Client(), Key: st.Key, LeaseKey: st.Key("lease"), EpochKey: st.EpochKey(), Lease: &leads,
	})
	if err != nil {
		t.Fatal(err)
	}

	// Nobody holds the lease: refused at once, no read.
	if _, err := c.RefreshNow(t.Context()); !errors.Is(err, admin.ErrNoLeader) {
		t.Fatalf("RefreshNow without a lease holder: %v, want ErrNoLeader", err)
	}
	if l, ok, err := c.Lease(t.Context()); err != nil || !ok || l.Holder != "" {
		t.Errorf("Lease without a holder = %+v, %v, %v", l, ok, err)
	}
	if c.Role() != admin.RoleFollower {
		t.Errorf("role %v, want follower", c.Role())
	}

	// A holder that does not serve (dead, or not yet noticed): the request
	// waits for the caller's deadline, and stays pending.
	if err := raw.Set(t.Context(), st.Key("lease"), "host/1/random", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = c.RefreshNow(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RefreshNow with a silent leader: %v, want the caller's deadline", err)
	}
	if l, _, _ := c.Lease(t.Context()); l.Holder != "host/1" {
		t.Errorf("lease holder %q, want the token's owner part host/1", l.Holder)
	}

	// A caller joins the pending request; then the leader starts serving
	// (a new term): it takes the request, and the caller gets the outcome.
	type answer struct {
		out admin.Outcome
		err error
	}
	// Fifty callers share this replica's one request and subscription: a
	// crowd of waiting callers does not open a Redis connection each.
	const callers = 50
	connsBefore := connectionsReceived(t, raw)
	joined := make(chan answer, callers)
	for range callers {
		go func() {
			out, err := c.RefreshNow(t.Context())
			joined <- answer{out, err}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		subs, err := raw.PubSubNumSub(t.Context(), st.Key("refresh_now:done")).Result()
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("the caller never subscribed: %v", err)
		}
		if subs[st.Key("refresh_now:done")] > 0 {
			break
		}
	}
	leads.Store(true)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	go func() { _ = ref.Run(ctx); done <- struct{}{} }()
	go func() { _ = c.Serve(ctx); done <- struct{}{} }()
	t.Cleanup(func() { stop(); <-done; <-done })
	var out admin.Outcome
	for i := range callers {
		a := <-joined
		if a.err != nil || a.out.Version == 0 || a.out.Leader != "host/1" || len(a.out.Partitions) != 1 {
			t.Fatalf("RefreshNow %d once served = %+v, %v", i, a.out, a.err)
		}
		if i > 0 && a.out.Version != out.Version {
			t.Errorf("caller %d got version %d, another %d", i, a.out.Version, out.Version)
		}
		out = a.out
	}
	if opened := connectionsReceived(t, raw) - connsBefore; opened >= callers/2 {
		t.Errorf("%d callers opened %d Redis connections, want them to share one subscription", callers, opened)
	}
	if got := src.reads.Load(); got != 2 {
		t.Errorf("the source was read %d times, want 2 (Run's first refresh, then one forced)", got)
	}
	if c.Role() != admin.RoleLeader {
		t.Errorf("role %v, want leader", c.Role())
	}
	// The minimum interval applies from the request that was served.
	var limited *admin.RateLimitedError
	if _, err := c.RefreshNow(t.Context()); !errors.As(err, &limited) || limited.RetryAfter <= 0 || limited.RetryAfter > time.Hour {
		t.Errorf("RefreshNow within the interval: %v, want RateLimitedError with a retry hint up to 1h", err)
	}
}

// connectionsReceived is Redis's count of connections accepted so far.
func connectionsReceived(t *testing.T, raw redis.UniversalClient) int {
	t.Helper()
	info, err := raw.Info(t.Context(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_connections_received:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("INFO stats has no total_connections_received:\n%s", info)
	return 0
}
