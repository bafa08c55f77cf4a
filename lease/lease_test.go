package lease_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
	"github.com/vpnfacade/vpnfacade/internal/storetest"
	"github.com/vpnfacade/vpnfacade/lease"
	"github.com/vpnfacade/vpnfacade/store"
)

// newLease returns a lease on st's namespace.
func newLease(t *testing.T, st *store.Redis, owner string, ttl time.Duration) *lease.Lease {
	t.Helper()
	l, err := lease.New(st, lease.Options{Owner: owner, TTL: ttl, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("lease.New: %v", err)
	}
	return l
}

// runLease runs l.Run with lead in the background until the returned stop
// is called (or the test ends); stop returns what Run returned.
func runLease(t *testing.T, l *lease.Lease, lead func(context.Context, uint64) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx, lead) }()
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10s of its context being cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run = %v, want nil once its context is done", err)
		}
	})
	return stop
}

// term is what one term of leadership saw, reported by termLead.
type term struct {
	owner   string
	epoch   uint64
	version uint64 // the snapshot the term published
	size    int    // how many endpoints it holds
	err     error  // why it could not publish
	endedAt time.Time
	cause   error // context.Cause of the term's context
}

// termLead returns a lead function that publishes n endpoints with its
// epoch, reports the term on began, waits until its context ends and
// reports that on ended.
func termLead(st *store.Redis, owner string, n int, began, ended chan<- term) func(context.Context, uint64) error {
	return func(ctx context.Context, epoch uint64) error {
		tm := term{owner: owner, epoch: epoch, size: n}
		snap, err := st.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(n, epoch, owner), Epoch: epoch})
		if err != nil {
			tm.err = err
		} else {
			tm.version = snap.Version
		}
		began <- tm
		<-ctx.Done()
		tm.endedAt, tm.cause = time.Now(), context.Cause(ctx)
		ended <- tm
		return nil
	}
}

// receive waits for the next term reported on ch.
func receive(t *testing.T, ch <-chan term, what string) term {
	t.Helper()
	select {
	case tm := <-ch:
		return tm
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return term{}
	}
}

// assertFenced checks that a publication at the deposed epoch is refused
// and that readers see the snapshot of the current leader.
func assertFenced(t *testing.T, ctx context.Context, url, namespace string, old *store.Redis, deposed term, current term) {
	t.Helper()
	_, err := old.Publish(ctx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(7, 99, "late"), Epoch: deposed.epoch})
	if vpnfacade.ErrorCodeOf(err) != vpnfacade.ECONFLICT {
		t.Fatalf("publish by the deposed leader at epoch %d (current epoch %d) = %v, want ECONFLICT", deposed.epoch, current.epoch, err)
	}
	reader := storetest.Redis(t, url, namespace)
	v, err := reader.Current(ctx)
	if err != nil || v.Version != current.version || v.Len() != current.size {
		t.Fatalf("a new reader sees version %d with %d endpoints (%v); want the new leader's version %d with %d", v.Version, v.Len(), err, current.version, current.size)
	}
}

func TestLeaseOneLeaderAtATime(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	const ttl = time.Second
	var (
		active     atomic.Int32 // replicas inside lead
		overlaps   atomic.Int32 // times a replica began leading while another led
		mu         sync.Mutex
		epochs     []uint64 // in the order the terms began
		publishErr []error
	)
	leases := make([]*lease.Lease, 3)
	leads := make([]func(context.Context, uint64) error, 3)
	stops := make([]func() error, 3)
	for i := range leases {
		st := storetest.Redis(t, srv.URL(), "one-leader")
		leases[i] = newLease(t, st, "replica-"+strconv.Itoa(i), ttl)
		leads[i] = func(leadCtx context.Context, epoch uint64) error {
			if active.Add(1) != 1 {
				overlaps.Add(1)
			}
			defer active.Add(-1)
			mu.Lock()
			epochs = append(epochs, epoch)
			mu.Unlock()
			// The leader's publications are accepted: nobody fenced it.
			if _, err := st.Publish(leadCtx, store.Publication{RefreshedAt: time.Now(), Endpoints: endpointtest.Rich(3, epoch, "x"), Epoch: epoch}); err != nil && leadCtx.Err() == nil {
				mu.Lock()
				publishErr = append(publishErr, fmt.Errorf("replica %d at epoch %d: %w", i, epoch, err))
				mu.Unlock()
			}
			// Step down after a while, so that leadership moves around.
			select {
			case <-leadCtx.Done():
			case <-time.After(50*time.Millisecond + rand.N(150*time.Millisecond)):
			}
			return nil
		}
		stops[i] = runLease(t, leases[i], leads[i])
	}

	// Sample Leader() while terms come and go; one replica's Run is stopped
	// and started again on the way.
	maxLeaders := 0
	sample := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
			n := 0
			for _, l := range leases {
				if l.Leader() {
					n++
				}
			}
			maxLeaders = max(maxLeaders, n)
		}
	}
	sample(time.Second)
	if err := stops[0](); err != nil {
		t.Errorf("Run of replica 0 = %v, want nil after its context was cancelled", err)
	}
	if leases[0].Leader() {
		t.Errorf("replica 0 reports Leader() after its Run returned")
	}
	sample(500 * time.Millisecond)
	stops[0] = runLease(t, leases[0], leads[0])
	sample(time.Second)
	for i, stop := range stops {
		if err := stop(); err != nil {
			t.Errorf("Run of replica %d = %v, want nil after its context was cancelled", i, err)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if n := overlaps.Load(); n != 0 || maxLeaders > 1 {
		t.Errorf("two replicas led at once: %d overlapping terms, at most %d reported Leader() together", n, maxLeaders)
	}
	if len(epochs) < 4 {
		t.Fatalf("only %d terms in 2.5s with leaders stepping down every 50-200ms: %v", len(epochs), epochs)
	}
	for i := 1; i < len(epochs); i++ {
		if epochs[i] <= epochs[i-1] {
			t.Errorf("term %d has epoch %d, not above the previous term's %d: %v", i, epochs[i], epochs[i-1], epochs)
		}
	}
	for _, err := range publishErr {
		t.Errorf("a leader's publish was refused: %v", err)
	}
	raw := storetest.RawClient(t, srv.URL())
	if stored, err := raw.Get(ctx, "vpnfacade:{one-leader}:epoch").Uint64(); err != nil || stored != epochs[len(epochs)-1] {
		t.Errorf("stored epoch = %d (%v), want the last term's %d", stored, err, epochs[len(epochs)-1])
	}
	if v, err := raw.Get(ctx, "vpnfacade:{one-leader}:lease").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("lease key after every Run returned = %q (%v), want it released", v, err)
	}
}

func TestLeaseReleasedOnCancelIsTakenOverAtOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	// A long TTL: taking over within it shows the lease was released, not
	// left to expire.
	const ttl = 3 * time.Second
	a, b := storetest.Redis(t, srv.URL(), "handover"), storetest.Redis(t, srv.URL(), "handover")
	began, ended := make(chan term, 10), make(chan term, 10)
	leaseA, leaseB := newLease(t, a, "a", ttl), newLease(t, b, "b", ttl)
	stopA := runLease(t, leaseA, termLead(a, "a", 3, began, ended))
	first := receive(t, began, "a to lead")
	if first.err != nil || !leaseA.Leader() || leaseA.Epoch() != first.epoch {
		t.Fatalf("a's term: publish error %v, Leader() %v, Epoch() %d, term epoch %d", first.err, leaseA.Leader(), leaseA.Epoch(), first.epoch)
	}
	runLease(t, leaseB, termLead(b, "b", 5, began, ended))
	time.Sleep(ttl / 3) // b has campaigned and found the lease held
	if leaseB.Leader() {
		t.Fatal("b leads while a holds the lease")
	}

	stoppedAt := time.Now()
	if err := stopA(); err != nil {
		t.Fatalf("a's Run = %v, want nil after its context was cancelled", err)
	}
	if end := receive(t, ended, "a's term to end"); !errors.Is(end.cause, context.Canceled) {
		t.Errorf("a's term ended with cause %v, want context.Canceled", end.cause)
	}
	if leaseA.Leader() {
		t.Error("a reports Leader() after its Run returned")
	}
	second := receive(t, began, "b to take over")
	if took := time.Since(stoppedAt); took >= ttl {
		t.Errorf("b took over %s after a stopped, not before the %s TTL: a did not release the lease", took, ttl)
	}
	if second.owner != "b" || second.err != nil || second.epoch <= first.epoch {
		t.Fatalf("second term: owner %s, epoch %d (first %d), publish error %v", second.owner, second.epoch, first.epoch, second.err)
	}
	holder, err := storetest.RawClient(t, srv.URL()).Get(ctx, a.Key("lease")).Result()
	if err != nil || !strings.HasPrefix(holder, "b/") {
		t.Errorf("lease key holds %q (%v), want b's token (owner b and a random suffix)", holder, err)
	}
	assertFenced(t, ctx, srv.URL(), "handover", a, first, second)
}

func TestLeaseLostLeaderStepsDownAndIsFenced(t *testing.T) {
	t.Parallel()
	const ttl = 900 * time.Millisecond
	for _, tc := range []struct {
		name      string
		interfere func(t *testing.T, srv *redistest.Server, leaseKey string)
		cause     string
	}{{
		name: "lease taken over",
		interfere: func(t *testing.T, srv *redistest.Server, leaseKey string) {
			// An intruder holds the key for a while: the leader's next
			// renewal finds someone else's token.
			if err := storetest.RawClient(t, srv.URL()).Set(t.Context(), leaseKey, "intruder", 2*ttl).Err(); err != nil {
				t.Fatal(err)
			}
		},
		cause: "taken by another holder",
	}, {
		name: "epoch superseded",
		interfere: func(t *testing.T, srv *redistest.Server, leaseKey string) {
			raw := storetest.RawClient(t, srv.URL())
			epochKey := strings.TrimSuffix(leaseKey, "lease") + "epoch"
			if err := raw.Incr(t.Context(), epochKey).Err(); err != nil {
				t.Fatal(err)
			}
		},
		cause: "newer epoch",
	}, {
		name: "redis paused",
		interfere: func(t *testing.T, srv *redistest.Server, leaseKey string) {
			srv.Pause()
			// Past the TTL, so that Redis expires the lease when it resumes.
			time.AfterFunc(ttl+300*time.Millisecond, srv.Resume)
		},
		cause: "not renewed",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			ctx := t.Context()
			ns := "lost-" + strings.ReplaceAll(tc.name, " ", "-")
			a, b := storetest.Redis(t, srv.URL(), ns), storetest.Redis(t, srv.URL(), ns)
			began, ended := make(chan term, 10), make(chan term, 10)
			stopA := runLease(t, newLease(t, a, "a", ttl), termLead(a, "a", 3, began, ended))
			old := receive(t, began, "a to lead")
			if old.err != nil {
				t.Fatalf("a's publish at epoch %d: %v", old.epoch, old.err)
			}
			time.Sleep(ttl / 2) // a few renewals

			interferedAt := time.Now()
			tc.interfere(t, srv, a.Key("lease"))
			end := receive(t, ended, "a to step down")
			if lasted := end.endedAt.Sub(interferedAt); lasted > ttl {
				t.Errorf("a still believed it led %s after its lease stopped being renewed; the TTL is %s", lasted, ttl)
			}
			if !errors.Is(end.cause, lease.ErrLeaseLost) || !strings.Contains(end.cause.Error(), tc.cause) {
				t.Errorf("a's term ended with cause %v, want ErrLeaseLost (%s)", end.cause, tc.cause)
			}
			// a is gone for good (it paused or died); b takes over.
			if err := stopA(); err != nil {
				t.Fatalf("a's Run = %v", err)
			}
			runLease(t, newLease(t, b, "b", ttl), termLead(b, "b", 5, began, ended))
			current := receive(t, began, "b to take over")
			if current.owner != "b" || current.err != nil || current.epoch <= old.epoch {
				t.Fatalf("new term: owner %s, epoch %d (old %d), publish error %v", current.owner, current.epoch, old.epoch, current.err)
			}
			assertFenced(t, ctx, srv.URL(), ns, a, old, current)
		})
	}
}

func TestLeaseOnRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	ctx := t.Context()
	const ttl = 900 * time.Millisecond
	a, b := storetest.Redis(t, cluster.URL(), "lease-cluster"), storetest.Redis(t, cluster.URL(), "lease-cluster")
	began, ended := make(chan term, 10), make(chan term, 10)
	stopA := runLease(t, newLease(t, a, "a", ttl), termLead(a, "a", 3, began, ended))
	first := receive(t, began, "a to lead on Redis Cluster")
	if first.err != nil {
		t.Fatalf("a's publish on Redis Cluster: %v", first.err)
	}
	runLease(t, newLease(t, b, "b", ttl), termLead(b, "b", 5, began, ended))
	time.Sleep(ttl) // b campaigns against a's renewals
	if err := stopA(); err != nil {
		t.Fatalf("a's Run = %v", err)
	}
	second := receive(t, began, "b to take over on Redis Cluster")
	if second.owner != "b" || second.err != nil || second.epoch <= first.epoch {
		t.Fatalf("second term: owner %s, epoch %d (first %d), publish error %v", second.owner, second.epoch, first.epoch, second.err)
	}
	assertFenced(t, ctx, cluster.URL(), "lease-cluster", a, first, second)
}

func TestLeaseEpochNeverGoesBackwards(t *testing.T) {
	t.Parallel()
	const ttl = 600 * time.Millisecond
	t.Run("redis restarted empty", func(t *testing.T) {
		srv := redistest.Start(t)
		ctx := t.Context()
		a := storetest.Redis(t, srv.URL(), "restart")
		began, ended := make(chan term, 10), make(chan term, 10)
		runLease(t, newLease(t, a, "a", ttl), termLead(a, "a", 3, began, ended))
		before := receive(t, began, "a to lead")
		srv.Restart() // every key is gone, the epoch too
		receive(t, ended, "a to notice that it lost the lease")
		after := receive(t, began, "a to lead again on the empty Redis")
		if after.err != nil || after.epoch <= before.epoch {
			t.Fatalf("after the restart: epoch %d (before: %d), publish error %v; want a higher epoch", after.epoch, before.epoch, after.err)
		}
		assertFenced(t, ctx, srv.URL(), "restart", a, before, after)
	})
	t.Run("stored epoch", func(t *testing.T) {
		srv := redistest.Start(t)
		ctx := t.Context()
		raw := storetest.RawClient(t, srv.URL())
		for _, stored := range []uint64{5, uint64(time.Now().Add(24 * time.Hour).UnixMilli()), 1 << 62} {
			a := storetest.Redis(t, srv.URL(), "stored")
			if err := raw.Set(ctx, a.EpochKey(), stored, 0).Err(); err != nil {
				t.Fatal(err)
			}
			began, ended := make(chan term, 10), make(chan term, 10)
			stop := runLease(t, newLease(t, a, "a", ttl), termLead(a, "a", 3, began, ended))
			got := receive(t, began, "a to lead")
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got.epoch <= stored || got.err != nil {
				t.Errorf("stored epoch %d: the lease took epoch %d (publish error %v), want a higher one", stored, got.epoch, got.err)
			}
			if now := uint64(time.Now().UnixMilli()); stored < now-60_000 && got.epoch < now-60_000 {
				t.Errorf("stored epoch %d: the lease took epoch %d, want at least the time in ms (%d) so that a Redis that lost its data never reissues an epoch", stored, got.epoch, now)
			}
		}
	})
}

func TestLeaseRun(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()
	st := storetest.Redis(t, srv.URL(), "run")
	hold := func(ctx context.Context, _ uint64) error { <-ctx.Done(); return nil }

	if _, err := lease.New(st, lease.Options{Owner: "a", TTL: 5 * time.Millisecond}); err == nil {
		t.Error("New with a 5ms TTL succeeded, want an error")
	}
	if _, err := lease.New(st, lease.Options{TTL: time.Second}); err == nil {
		t.Error("New without an owner succeeded, want an error")
	}
	if err := newLease(t, st, "a", time.Second).Run(ctx, nil); err == nil {
		t.Error("Run without a lead function succeeded, want an error")
	}

	l := newLease(t, st, "a", time.Second)
	leading := make(chan struct{})
	runLease(t, l, func(ctx context.Context, _ uint64) error { close(leading); <-ctx.Done(); return nil })
	<-leading
	if err := l.Run(ctx, hold); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second concurrent Run on one lease = %v, want an error saying it is already running", err)
	}

	// A lead function failing on its own ends Run with its error, and the
	// lease is released for another replica.
	failing := storetest.Redis(t, srv.URL(), "run-failing")
	boom := errors.New("boom")
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := newLease(t, failing, "b", time.Minute).Run(cctx, func(context.Context, uint64) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Run with a failing lead function = %v, want its error", err)
	}
	if v, err := storetest.RawClient(t, srv.URL()).Get(ctx, failing.Key("lease")).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("lease key after the lead function failed = %q (%v), want it released", v, err)
	}
}
