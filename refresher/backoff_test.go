package refresher

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vpnfacade/vpnfacade/store"
)

// TestRunBacksOffWhenEveryPartitionFails: once every partition fails (EC2
// down or throttling everything), each refresh still publishes the last good
// data marked stale, dated by its newest last good read, but the next one
// waits a backoff that doubles from the interval, instead of calling EC2
// again every interval. One partition failing alone keeps the interval.
// Recovery publishes fresh data.
func TestRunBacksOffWhenEveryPartitionFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const interval = 20 * time.Millisecond
		src, st := threePartitions(), store.NewMemory()
		r := mustNew(t, src, st, Options{Interval: interval, Jitter: -1, MinBackoff: time.Millisecond, MaxBackoff: 160 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		defer func() { cancel(); <-done }()
		reads := func() int {
			src.mu.Lock()
			defer src.mu.Unlock()
			return src.reads
		}
		waitFor(t, "a first snapshot", func() bool { _, err := st.Current(t.Context()); return err == nil })

		// One partition down: the others are still refreshed every interval.
		src.setFail(acctA, "eu-west-1", errors.New("region down"))
		before := reads()
		waitFor(t, "refreshes at the interval while one partition fails", func() bool { return reads()-before >= 3*5 })

		// Every partition down: refreshes back off from the interval.
		for _, p := range [][2]string{pA1, pA2, pB1} {
			src.setFail(p[0], p[1], errors.New("RequestLimitExceeded"))
		}
		waitFor(t, "a snapshot of last good data only", func() bool {
			v := current(t, st)
			return v.Stale() && !v.Snapshot.Partitions[0].RefreshedAt.IsZero() &&
				v.Snapshot.Partitions[0].Stale && v.Snapshot.Partitions[1].Stale && v.Snapshot.Partitions[2].Stale
		})
		// It read nothing: it is dated by the newest last good read, so that
		// readers' maximum staleness counts from there.
		v := current(t, st)
		var newest time.Time
		for _, p := range v.Snapshot.Partitions {
			if p.RefreshedAt.After(newest) {
				newest = p.RefreshedAt
			}
		}
		if !v.RefreshedAt.Equal(newest) {
			t.Errorf("a snapshot of last good data only is dated %s, want its newest last good read, %s", v.RefreshedAt, newest)
		}
		const window = 600 * time.Millisecond
		before = reads()
		time.Sleep(window)
		refreshes := (reads() - before) / 3
		// Delays of at least 20, 20, 40, 80, 80, 80… ms (each backoff jittered
		// to between half and all of 20·2ⁿ⁻¹ ms, capped at 160 ms, never below
		// the interval): at most 10 refreshes start within 600 ms, one more may
		// be in flight. At the interval there would be about 30.
		if refreshes > 11 || refreshes < 2 {
			t.Errorf("%d refreshes in %s while every partition failed; want 2 to 11 (backing off from the %s interval)", refreshes, window, interval)
		}
		t.Logf("%d refreshes in %s while every partition failed", refreshes, window)

		for _, p := range [][2]string{pA1, pA2, pB1} {
			src.setFail(p[0], p[1], nil)
		}
		waitFor(t, "fresh data after recovery", func() bool { return !current(t, st).Stale() })
	})
}
