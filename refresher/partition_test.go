package refresher

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vpnfacade/vpnfacade/internal/logtest"
	"github.com/vpnfacade/vpnfacade/store"
)

func newLog() (*logtest.Buffer, *slog.Logger) {
	b := &logtest.Buffer{}
	return b, slog.New(slog.NewJSONHandler(b, nil))
}

// preparingSource is a fixedSource that knows some of its partitions only
// once Prepare succeeded, as upstream.Source knows the default credentials'
// account only once STS answered. Prepare fails while failing is set.
type preparingSource struct {
	*fixedSource
	mu       sync.Mutex
	calls    int
	failing  error
	hidden   [][2]string // partitions Prepare reveals
	prepared bool
}

func (s *preparingSource) Prepare(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failing != nil {
		return s.failing
	}
	if !s.prepared {
		s.prepared = true
		s.fixedSource.mu.Lock()
		s.fixedSource.parts = append(slices.Clone(s.hidden), s.fixedSource.parts...)
		s.fixedSource.mu.Unlock()
	}
	return nil
}

func (s *preparingSource) setFailing(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = err
}

func (s *preparingSource) prepareCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// TestPrepareFailureIsRetriedWithTheBackoff: a source that cannot prepare
// (STS unreachable) fails the refresh before any read; Run logs each
// attempt and retries after its backoff, and once Prepare succeeds the
// partitions it revealed are read and published. Prepare is called before
// every refresh.
func TestPrepareFailureIsRetriedWithTheBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fixed := threePartitions()
		fixed.parts = [][2]string{pB1} // the role's partition, known from the start
		src := &preparingSource{fixedSource: fixed, hidden: [][2]string{pA1, pA2}, failing: errors.New("STS: connection refused")}
		logs, logger := newLog()
		reg := prometheus.NewRegistry()
		st := store.NewMemory()
		r := mustNew(t, src, st, Options{Interval: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Logger: logger, Registerer: reg})
		m := r.opts.metrics
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()

		waitFor(t, "three failed attempts", func() bool { return len(logs.JSONLines(t, "refresh failed; retrying after a backoff")) >= 3 })
		if v := testutil.ToFloat64(m.consecutiveFailures); v < 2 {
			t.Errorf("consecutive failures gauge = %v while Prepare fails, want at least 2", v)
		}
		fixed.mu.Lock()
		reads := fixed.reads
		fixed.mu.Unlock()
		if reads != 0 {
			t.Errorf("%d partition reads while Prepare failed, want none", reads)
		}
		for i, l := range logs.JSONLines(t, "refresh failed; retrying after a backoff") {
			if e, _ := l["error"].(string); e != "refresh: prepare the source: STS: connection refused" {
				t.Errorf("failure %d logged error %q", i, e)
			}
			if n, _ := l["consecutive_failures"].(float64); int(n) != i+1 {
				t.Errorf("failure %d logged consecutive_failures %v", i, l["consecutive_failures"])
			}
		}
		if _, err := st.Current(t.Context()); err == nil {
			t.Fatal("a snapshot was published while Prepare failed")
		}

		src.setFailing(nil)
		waitFor(t, "a snapshot once Prepare succeeds", func() bool { _, err := st.Current(t.Context()); return err == nil })
		v := current(t, st)
		if got := keys(v.Snapshot); len(got) != 3 {
			t.Errorf("published %v, want the 3 endpoints of the revealed and the known partitions", got)
		}
		if n := len(v.Snapshot.Partitions); n != 3 {
			t.Errorf("published %d partitions, want 3", n)
		}
		calls := src.prepareCalls()
		if err := r.RefreshNow(t.Context()); err != nil {
			t.Fatal(err)
		}
		if src.prepareCalls() != calls+1 {
			t.Errorf("Prepare was not called before a later refresh")
		}
		cancel()
		<-done
		if v := testutil.ToFloat64(m.consecutiveFailures); v != 0 {
			t.Errorf("consecutive failures gauge = %v after Run ended, want 0", v)
		}
	})
}

// TestPartitionStateInLogAndMetrics: each failed read of a partition is
// one log line naming it, with its consecutive failures; the per-partition
// gauges say the same, and a success resets them. When Run ends (the
// process no longer refreshes), the per-partition series go away.
func TestPartitionStateInLogAndMetrics(t *testing.T) {
	t.Parallel()
	logs, logger := newLog()
	src, st := threePartitions(), store.NewMemory()
	r := mustNew(t, src, st, Options{Logger: logger, Registerer: prometheus.NewRegistry()})
	m := r.opts.metrics
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	firstRead := partition(t, current(t, st).Snapshot, acctA, "eu-west-1").RefreshedAt

	src.setFail(acctA, "eu-west-1", errors.New("UnauthorizedOperation: not allowed"))
	for range 2 {
		if err := r.RefreshNow(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	failed := logs.JSONLines(t, "partition read failed")
	if len(failed) != 2 {
		t.Fatalf("%d partition failure lines, want 2 (one per failed read)", len(failed))
	}
	for i, l := range failed {
		if l["account"] != acctA || l["region"] != "eu-west-1" || l["error"] != "UnauthorizedOperation: not allowed" ||
			l["consecutive_failures"] != float64(i+1) || l["serving_last_good"] != true {
			t.Errorf("failure line %d = %v", i, l)
		}
	}
	gauge := func(v *prometheus.GaugeVec, p [2]string) float64 {
		return testutil.ToFloat64(v.WithLabelValues(p[0], p[1]))
	}
	if f, s := gauge(m.partitionFailures, pA1), gauge(m.partitionStale, pA1); f != 2 || s != 1 {
		t.Errorf("failing partition: consecutive failures %v, stale %v; want 2 and 1", f, s)
	}
	if got, want := gauge(m.partitionLastSuccess, pA1), float64(firstRead.UnixNano())/1e9; got != want {
		t.Errorf("failing partition's last success = %v, want its last good read %v", got, want)
	}
	if f, s := gauge(m.partitionFailures, pA2), gauge(m.partitionStale, pA2); f != 0 || s != 0 {
		t.Errorf("healthy partition: consecutive failures %v, stale %v; want 0 and 0", f, s)
	}
	if last := gauge(m.partitionLastSuccess, pA2); last <= float64(firstRead.UnixNano())/1e9 {
		t.Errorf("healthy partition's last success %v is not after the first refresh", last)
	}

	src.setFail(acctA, "eu-west-1", nil)
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f, s := gauge(m.partitionFailures, pA1), gauge(m.partitionStale, pA1); f != 0 || s != 0 {
		t.Errorf("recovered partition: consecutive failures %v, stale %v; want 0 and 0", f, s)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*prometheus.GaugeVec{m.partitionFailures, m.partitionLastSuccess, m.partitionStale} {
		if n := testutil.CollectAndCount(v); n != 0 {
			t.Errorf("%d per-partition series left after Run ended, want none", n)
		}
	}
}
