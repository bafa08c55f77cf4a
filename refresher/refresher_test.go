package refresher

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// fixedSource is a Source over fixed, editable data, recording how it is
// read. It stands in for upstream.Source in the tests that need no EC2.
type fixedSource struct {
	mu      sync.Mutex
	parts   [][2]string                                 // account, region
	data    map[string][]*clientvpnv1.ClientVpnEndpoint // by "account/region"
	fail    map[string]error                            // by "account/region"
	delay   time.Duration                               // each read takes this long (or until ctx is done)
	reads   int
	active  int            // reads in progress
	maxAct  int            // most reads in progress at once
	perPart map[string]int // reads in progress per partition
	overlap bool           // a partition was read twice at once
}

func newFixedSource(parts ...[2]string) *fixedSource {
	return &fixedSource{parts: parts, data: map[string][]*clientvpnv1.ClientVpnEndpoint{}, fail: map[string]error{}, perPart: map[string]int{}}
}

func (s *fixedSource) Partitions() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		s.mu.Lock()
		parts := slices.Clone(s.parts)
		s.mu.Unlock()
		for _, p := range parts {
			if !yield(p[0], p[1]) {
				return
			}
		}
	}
}

func (s *fixedSource) Read(ctx context.Context, account, region string) ([]*clientvpnv1.ClientVpnEndpoint, error) {
	k := account + "/" + region
	s.mu.Lock()
	s.reads++
	s.active++
	s.maxAct = max(s.maxAct, s.active)
	s.perPart[k]++
	if s.perPart[k] > 1 {
		s.overlap = true
	}
	delay := s.delay
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.active--
		s.perPart[k]--
		s.mu.Unlock()
	}()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[k]; err != nil {
		return nil, err
	}
	var out []*clientvpnv1.ClientVpnEndpoint
	for _, e := range s.data[k] {
		out = append(out, proto.Clone(e).(*clientvpnv1.ClientVpnEndpoint))
	}
	return out, nil
}

func (s *fixedSource) set(account, region string, eps ...*clientvpnv1.ClientVpnEndpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[account+"/"+region] = eps
}

func (s *fixedSource) setFail(account, region string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[account+"/"+region] = err
}

func endpoint(account, region, id, description string) *clientvpnv1.ClientVpnEndpoint {
	return &clientvpnv1.ClientVpnEndpoint{
		ClientVpnEndpointId: proto.String(id),
		Description:         proto.String(description),
		AccountId:           account,
		Region:              region,
	}
}

const (
	acctA = "111111111111"
	acctB = "222222222222"
)

var (
	pA1 = [2]string{acctA, "eu-west-1"}
	pA2 = [2]string{acctA, "us-east-1"}
	pB1 = [2]string{acctB, "eu-west-1"}
)

// threePartitions returns a source with 2, 1 and 0 endpoints in pA1, pA2, pB1.
func threePartitions() *fixedSource {
	src := newFixedSource(pA1, pA2, pB1)
	src.set(acctA, "eu-west-1", endpoint(acctA, "eu-west-1", "cvpn-endpoint-a1", "one"), endpoint(acctA, "eu-west-1", "cvpn-endpoint-a2", "two"))
	src.set(acctA, "us-east-1", endpoint(acctA, "us-east-1", "cvpn-endpoint-a1", "same id, other region"))
	return src
}

func mustNew(t *testing.T, src Source, st store.Store, opts Options) *Refresher {
	t.Helper()
	r, err := New(src, st, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func current(t *testing.T, st store.Store) store.View {
	t.Helper()
	v, err := st.Current(t.Context())
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	return v
}

func keys(s *snapshot.Snapshot) []string {
	var out []string
	for e := range s.All() {
		out = append(out, e.Key())
	}
	slices.Sort(out)
	return out
}

func partition(t *testing.T, s *snapshot.Snapshot, account, region string) snapshot.Partition {
	t.Helper()
	i := slices.IndexFunc(s.Partitions, func(p snapshot.Partition) bool { return p.AccountID == account && p.Region == region })
	if i < 0 {
		t.Fatalf("snapshot has no partition %s/%s: %+v", account, region, s.Partitions)
	}
	return s.Partitions[i]
}

func TestRefreshPublishesEveryPartition(t *testing.T) {
	t.Parallel()
	src, st := threePartitions(), store.NewMemory()
	r := mustNew(t, src, st, Options{})
	before := time.Now()

	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}

	v := current(t, st)
	want := []string{acctA + "/eu-west-1/cvpn-endpoint-a1", acctA + "/eu-west-1/cvpn-endpoint-a2", acctA + "/us-east-1/cvpn-endpoint-a1"}
	if got := keys(v.Snapshot); !slices.Equal(got, want) {
		t.Errorf("snapshot keys = %v, want %v", got, want)
	}
	if v.Stale() {
		t.Errorf("snapshot is stale after a fully successful refresh: %+v", v.Partitions)
	}
	for _, c := range []struct {
		p [2]string
		n int
	}{{pA1, 2}, {pA2, 1}, {pB1, 0}} {
		p := partition(t, v.Snapshot, c.p[0], c.p[1])
		if p.Endpoints != c.n || p.Stale || p.Error != "" || p.RefreshedAt.Before(before) {
			t.Errorf("partition %v = %+v, want %d endpoints, fresh, refreshed after %v", c.p, p, c.n, before)
		}
	}
	if v.RefreshedAt.Before(before) {
		t.Errorf("snapshot refreshed_at %v is before the refresh started (%v)", v.RefreshedAt, before)
	}
}

func TestFailedPartitionKeepsLastGoodDataMarkedStale(t *testing.T) {
	t.Parallel()
	src, st := threePartitions(), store.NewMemory()
	r := mustNew(t, src, st, Options{})
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("first RefreshNow: %v", err)
	}
	first := current(t, st)
	firstA1 := partition(t, first.Snapshot, acctA, "eu-west-1")

	// eu-west-1 of account A fails; the other partitions change.
	src.setFail(acctA, "eu-west-1", errors.New("RequestLimitExceeded after 3 attempts"))
	src.set(acctA, "eu-west-1") // would empty the partition, were it read
	src.set(acctA, "us-east-1", endpoint(acctA, "us-east-1", "cvpn-endpoint-a1", "changed"))
	src.set(acctB, "eu-west-1", endpoint(acctB, "eu-west-1", "cvpn-endpoint-b1", "new"))
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("second RefreshNow: %v", err)
	}

	v := current(t, st)
	if v.Version <= first.Version {
		t.Fatalf("version %d not after %d", v.Version, first.Version)
	}
	want := []string{
		acctA + "/eu-west-1/cvpn-endpoint-a1", acctA + "/eu-west-1/cvpn-endpoint-a2",
		acctA + "/us-east-1/cvpn-endpoint-a1", acctB + "/eu-west-1/cvpn-endpoint-b1",
	}
	if got := keys(v.Snapshot); !slices.Equal(got, want) {
		t.Errorf("snapshot keys = %v, want %v", got, want)
	}
	a1 := partition(t, v.Snapshot, acctA, "eu-west-1")
	if !a1.Stale || a1.Error == "" || !a1.RefreshedAt.Equal(firstA1.RefreshedAt) || a1.Endpoints != 2 {
		t.Errorf("failed partition = %+v; want stale, with the error, 2 endpoints, refreshed_at %v", a1, firstA1.RefreshedAt)
	}
	if p := partition(t, v.Snapshot, acctA, "us-east-1"); p.Stale || !p.RefreshedAt.After(firstA1.RefreshedAt) {
		t.Errorf("healthy partition = %+v, want fresh and refreshed again", p)
	}
	if !v.Stale() {
		t.Error("View.Stale() = false with a stale partition")
	}
	rec, err := v.Get("cvpn-endpoint-a1", "us-east-1", acctA)
	var e *clientvpnv1.ClientVpnEndpoint
	if err == nil {
		e, err = rec.Message()
	}
	if err != nil || e.GetDescription() != "changed" {
		t.Errorf("healthy partition's endpoint = %v, %v; want the new description", e, err)
	}

	// The partition recovers: fresh again, and its new content is published.
	src.setFail(acctA, "eu-west-1", nil)
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("third RefreshNow: %v", err)
	}
	v = current(t, st)
	if p := partition(t, v.Snapshot, acctA, "eu-west-1"); p.Stale || p.Error != "" || p.Endpoints != 0 {
		t.Errorf("recovered partition = %+v, want fresh and empty", p)
	}
	if v.Stale() {
		t.Error("snapshot still stale after every partition recovered")
	}
}

func TestFailedPartitionWithoutEarlierDataPublishesNothing(t *testing.T) {
	t.Parallel()
	src, st := threePartitions(), store.NewMemory()
	src.setFail(acctB, "eu-west-1", errors.New("AuthFailure"))
	r := mustNew(t, src, st, Options{})

	err := r.RefreshNow(t.Context())
	if err == nil {
		t.Fatal("RefreshNow succeeded with a partition that never read")
	}
	if _, cerr := st.Current(t.Context()); vpnfacade.ErrorCodeOf(cerr) != vpnfacade.EUNAVAILABLE {
		t.Errorf("after a failed first refresh, Current() error = %v, want EUNAVAILABLE (nothing published)", cerr)
	}

	// Once published, a newly configured partition that fails cannot be
	// published without data either: the previous snapshot stays.
	src.setFail(acctB, "eu-west-1", nil)
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
	published := current(t, st).Version
	src.mu.Lock()
	src.parts = append(src.parts, [2]string{acctB, "ap-south-1"})
	src.mu.Unlock()
	src.setFail(acctB, "ap-south-1", errors.New("UnauthorizedOperation"))
	src.set(acctA, "us-east-1") // a change that must not be published alone
	if err := r.RefreshNow(t.Context()); err == nil {
		t.Fatal("RefreshNow succeeded with a new partition that never read")
	}
	if v := current(t, st); v.Version != published || v.Len() != 3 {
		t.Errorf("current snapshot = version %d with %d endpoints, want version %d with 3 kept", v.Version, v.Len(), published)
	}
}

func TestDiffAgainstPreviousSnapshot(t *testing.T) {
	t.Parallel()
	src, st := threePartitions(), store.NewMemory()
	r := mustNew(t, src, st, Options{})
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
	// a2 deleted, a1 (eu-west-1) modified, us-east-1's a1 unchanged, b1 added.
	src.set(acctA, "eu-west-1", endpoint(acctA, "eu-west-1", "cvpn-endpoint-a1", "one, edited"))
	src.set(acctB, "eu-west-1", endpoint(acctB, "eu-west-1", "cvpn-endpoint-b1", "new"))

	recorder := &recordingStore{Store: st}
	r = mustNew(t, src, recorder, Options{})
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
	got := recorder.last.Diff
	want := snapshot.Diff{
		Added:    []string{acctB + "/eu-west-1/cvpn-endpoint-b1"},
		Modified: []string{acctA + "/eu-west-1/cvpn-endpoint-a1"},
		Deleted:  []string{acctA + "/eu-west-1/cvpn-endpoint-a2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("diff = %+v, want %+v", got, want)
	}

	// Nothing changed: the snapshot is confirmed, not published again; its
	// version stays and its refreshed_at moves on.
	before := current(t, st)
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
	if recorder.publishes != 1 {
		t.Errorf("publishes = %d, want 1: an unchanged refresh confirms", recorder.publishes)
	}
	if after := current(t, st); after.Version != before.Version || !after.RefreshedAt.After(before.RefreshedAt) {
		t.Errorf("after an unchanged refresh: version %d → %d, refreshed %v → %v; want the same version, refreshed later",
			before.Version, after.Version, before.RefreshedAt, after.RefreshedAt)
	}
}

// recordingStore is a real Memory store that remembers the last publication.
type recordingStore struct {
	store.Store
	last      store.Publication
	publishes int
}

func (s *recordingStore) Publish(ctx context.Context, pub store.Publication) (*snapshot.Snapshot, error) {
	s.last = pub
	s.last.Diff = snapshot.Diff{
		Added:    slices.Clone(pub.Diff.Added),
		Modified: slices.Clone(pub.Diff.Modified),
		Deleted:  slices.Clone(pub.Diff.Deleted),
	}
	s.publishes++
	return s.Store.Publish(ctx, pub)
}

func TestInconsistentReadCountsAsFailure(t *testing.T) {
	t.Parallel()
	for name, eps := range map[string][]*clientvpnv1.ClientVpnEndpoint{
		"other partition": {endpoint(acctB, "eu-west-1", "cvpn-endpoint-x", "")},
		"duplicate id":    {endpoint(acctA, "eu-west-1", "cvpn-endpoint-x", ""), endpoint(acctA, "eu-west-1", "cvpn-endpoint-x", "")},
		"no id":           {{AccountId: acctA, Region: "eu-west-1"}},
		"nil endpoint":    {nil},
	} {
		t.Run(name, func(t *testing.T) {
			src, st := newFixedSource(pA1), store.NewMemory()
			src.set(acctA, "eu-west-1", eps...)
			if err := mustNew(t, src, st, Options{}).RefreshNow(t.Context()); err == nil {
				t.Errorf("RefreshNow published a read with %s", name)
			}
		})
	}
}

func TestRefreshesNeverOverlapAndConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	var parts [][2]string
	for i := range 8 {
		parts = append(parts, [2]string{acctA, fmt.Sprintf("eu-test-%d", i+1)})
	}
	src, st := newFixedSource(parts...), store.NewMemory()
	src.delay = 5 * time.Millisecond
	r := mustNew(t, src, st, Options{Concurrency: 3})

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- r.RefreshNow(t.Context()) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("RefreshNow: %v", err)
		}
	}
	if src.overlap {
		t.Error("a partition was read by two refreshes at once")
	}
	if src.maxAct > 3 {
		t.Errorf("%d partitions read at once, want at most 3", src.maxAct)
	}
	if src.reads != 4*8 {
		t.Errorf("reads = %d, want 32 (4 refreshes of 8 partitions)", src.reads)
	}
	if v := current(t, st); v.Version != 1 {
		t.Errorf("version = %d, want 1 (the first refresh publishes, the others confirm the unchanged data)", v.Version)
	}
}

func TestRunRefreshesOnInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		src, st := threePartitions(), store.NewMemory()
		r := mustNew(t, src, st, Options{Interval: 10 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		var refreshedAt []time.Time // distinct refresh times seen
		waitFor(t, "three refreshes", func() bool {
			v, err := st.Current(t.Context())
			if err == nil && (len(refreshedAt) == 0 || !v.RefreshedAt.Equal(refreshedAt[len(refreshedAt)-1])) {
				refreshedAt = append(refreshedAt, v.RefreshedAt)
			}
			return len(refreshedAt) >= 3
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	})
}

func TestRunBacksOffAfterFailuresThenRecovers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		src, st := threePartitions(), store.NewMemory()
		src.setFail(acctA, "eu-west-1", errors.New("region down"))
		r := mustNew(t, src, st, Options{Interval: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		waitFor(t, "several failed attempts", func() bool {
			src.mu.Lock()
			defer src.mu.Unlock()
			return src.reads >= 3*5
		})
		if _, err := st.Current(t.Context()); err == nil {
			t.Fatal("a snapshot was published while a partition with no earlier data failed")
		}
		src.setFail(acctA, "eu-west-1", nil)
		waitFor(t, "a snapshot after recovery", func() bool {
			_, err := st.Current(t.Context())
			return err == nil
		})
		cancel()
		<-done
	})
}

func TestRunStopsPromptlyOnCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		src, st := threePartitions(), store.NewMemory()
		src.delay = time.Hour // every read blocks until its context ends
		r := mustNew(t, src, st, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		waitFor(t, "reads in progress", func() bool {
			src.mu.Lock()
			defer src.mu.Unlock()
			return src.active > 0
		})
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10 s of its context being cancelled")
		}
		if _, err := st.Current(t.Context()); err == nil {
			t.Error("a cancelled refresh published a snapshot")
		}
	})
}

func TestRefreshNowWaitsForRunningRefreshUntilContextEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		src, st := threePartitions(), store.NewMemory()
		src.delay = time.Hour
		r := mustNew(t, src, st, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go r.RefreshNow(ctx) //nolint:errcheck // cancelled below
		waitFor(t, "a refresh in progress", func() bool {
			src.mu.Lock()
			defer src.mu.Unlock()
			return src.active > 0
		})
		short, cancelShort := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancelShort()
		if err := r.RefreshNow(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RefreshNow during another refresh = %v, want it to wait and then fail with its deadline", err)
		}
	})
}

func TestEpochIsPublishedAndFencingRefusals(t *testing.T) {
	t.Parallel()
	src, st := threePartitions(), store.NewMemory()
	// Another writer published with epoch 7.
	if _, err := st.Publish(t.Context(), store.Publication{RefreshedAt: time.Now(), Epoch: 7}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	stale := mustNew(t, src, st, Options{Epoch: func() uint64 { return 5 }})
	if err := stale.RefreshNow(t.Context()); vpnfacade.ErrorCodeOf(err) != vpnfacade.ECONFLICT {
		t.Errorf("RefreshNow with a superseded epoch = %v, want ECONFLICT", err)
	}
	fresh := mustNew(t, src, st, Options{Epoch: func() uint64 { return 8 }})
	if err := fresh.RefreshNow(t.Context()); err != nil {
		t.Errorf("RefreshNow with the newest epoch: %v", err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	src, st := threePartitions(), store.NewMemory()
	for _, c := range []struct {
		field string
		opts  Options
	}{
		{"interval", Options{Interval: -time.Second}},
		{"jitter", Options{Jitter: 1.5}},
		{"concurrency", Options{Concurrency: -1}},
		{"read_timeout", Options{ReadTimeout: -time.Second}},
		{"backoff", Options{MinBackoff: time.Minute, MaxBackoff: time.Second}},
		{"backoff", Options{MinBackoff: -time.Second}},
	} {
		_, err := New(src, st, c.opts)
		var verr *vpnfacade.Error
		if !errors.As(err, &verr) || verr.Code != vpnfacade.EINVALID || verr.Field != c.field {
			t.Errorf("New with a bad %s = %v, want EINVALID naming %s", c.field, err, c.field)
		}
	}
	if _, err := New(nil, st, Options{}); err == nil {
		t.Error("New without a source succeeded")
	}
}

func TestBackoffAndIntervalStayInBounds(t *testing.T) {
	t.Parallel()
	o, err := Options{MinBackoff: time.Second, MaxBackoff: time.Minute}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 80; n++ {
		ceiling := time.Minute
		if n <= 6 { // 1 s, 2 s, 4 s, ..., 32 s
			ceiling = time.Second << (n - 1)
		}
		for range 20 {
			if d := o.backoff(n); d < ceiling/2 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, ceiling/2, ceiling)
			}
		}
	}
	for range 100 {
		if d := o.nextInterval(); d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("nextInterval() = %v, want 60 s ± 10%%", d)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
