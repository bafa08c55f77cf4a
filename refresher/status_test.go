package refresher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vpnfacade/vpnfacade/store"
)

func TestKickRefreshesAtOnceAndReportsTheOutcome(t *testing.T) {
	src, st := threePartitions(), store.NewMemory()
	reports := make(chan Status, 16)
	next := func() Status {
		t.Helper()
		select {
		case s := <-reports:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no report within 10 s")
			return Status{}
		}
	}
	r := mustNew(t, src, st, Options{Interval: time.Hour, Report: func(_ context.Context, s Status) { reports <- s }})
	if _, err := r.Kick(t.Context()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Kick before Run: %v, want ErrNotRunning", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	if start := next(); !start.Running || time.Until(start.NextAttempt) > time.Minute {
		t.Errorf("report at the start of Run = %+v, want running, refreshing at once (no snapshot yet)", start)
	}
	first := next()
	if first.ConsecutiveFailures != 0 || len(first.Partitions) != 3 || !first.Running {
		t.Fatalf("first report = %+v, want 3 partitions, running, no failures", first)
	}
	if until := time.Until(first.NextAttempt); until < 50*time.Minute {
		t.Errorf("next attempt in %v after a success, want about the 1h interval", until)
	}
	v1 := current(t, st).Version

	// Unchanged upstream: the kick confirms the current version.
	res, err := r.Kick(t.Context())
	if err != nil || res.Err != nil || res.Changed || res.Snapshot.Version != v1 {
		t.Fatalf("Kick (unchanged) = %+v, %v; want version %d confirmed", res, err, v1)
	}
	// A change and a failing partition: published, the failure reported.
	src.set(acctA, "us-east-1", endpoint(acctA, "us-east-1", "cvpn-endpoint-a9", "new"))
	src.setFail(acctB, "eu-west-1", errors.New("throttled: "+strings.Repeat("é", 400)))
	res, err = r.Kick(t.Context())
	if err != nil || res.Err != nil || !res.Changed || res.Snapshot.Version <= v1 {
		t.Fatalf("Kick (changed) = %+v, %v; want a version above %d", res, err, v1)
	}
	if got := partition(t, res.Snapshot, acctB, "eu-west-1"); !got.Stale {
		t.Errorf("failed partition in the kicked snapshot = %+v, want stale", got)
	}
	var s Status
	for range 2 { // one per kick
		s = next()
	}
	if s.Partitions[0].AccountID != acctA || s.Partitions[2].AccountID != acctB {
		t.Errorf("partitions not in account, region order: %+v", s.Partitions)
	}
	failed := s.Partitions[2]
	if failed.ConsecutiveFailures != 1 || failed.LastSuccess.IsZero() || !strings.HasPrefix(failed.LastError, "throttled: é") {
		t.Errorf("failed partition status = %+v, want 1 failure, its error, the earlier success", failed)
	}
	if len(failed.LastError) > MaxErrorBytes || !utf8.ValidString(failed.LastError) {
		t.Errorf("last error is %d bytes (max %d), valid UTF-8 %v", len(failed.LastError), MaxErrorBytes, utf8.ValidString(failed.LastError))
	}
	if s.Partitions[0].ConsecutiveFailures != 0 || s.Partitions[0].LastError != "" {
		t.Errorf("healthy partition status = %+v", s.Partitions[0])
	}

	// Every partition failing and no last good data for a new one: the
	// kick returns the refresh's error.
	src.mu.Lock()
	src.parts = append(src.parts, [2]string{acctB, "us-west-2"})
	src.mu.Unlock()
	src.setFail(acctB, "us-west-2", errors.New("no such region"))
	res, err = r.Kick(t.Context())
	if err != nil || res.Err == nil || !strings.Contains(res.Err.Error(), "no such region") {
		t.Fatalf("Kick (nothing published) = %+v, %v; want the refresh's error", res, err)
	}
	if s := next(); s.ConsecutiveFailures != 1 {
		t.Errorf("after a failed kick the refresher reports %d consecutive failures, want 1", s.ConsecutiveFailures)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := r.Status(); s.Running || !s.NextAttempt.IsZero() {
		t.Errorf("status after Run returned = running %v, next attempt %v; want neither", s.Running, s.NextAttempt)
	}
	if _, err := r.Kick(t.Context()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Kick after Run: %v, want ErrNotRunning", err)
	}
}
