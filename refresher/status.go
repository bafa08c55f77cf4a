package refresher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// ErrNotRunning is Kick's error when Run is not running: this process does
// not lead, or has stopped.
var ErrNotRunning = errors.New("refresher: not running (this process does not refresh)")

// Status is what a Refresher knows of its own work, for operators.
type Status struct {
	// Running is true while Run runs (this process refreshes).
	Running bool `json:"running"`
	// ConsecutiveFailures counts the refreshes in a row that failed or
	// published only last good data.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastAttempt is when the last refresh started; zero before the first.
	LastAttempt time.Time `json:"last_attempt"`
	// NextAttempt is when Run's next refresh is due; zero when Run is not
	// running.
	NextAttempt time.Time `json:"next_attempt"`
	// Partitions is each partition this Refresher has read, in account then
	// region order.
	Partitions []PartitionStatus `json:"partitions"`
}

// PartitionStatus is what a Refresher knows of one partition's reads.
type PartitionStatus struct {
	AccountID string `json:"account_id"`
	Region    string `json:"region"`
	// ConsecutiveFailures counts the reads in a row that failed.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastError is the last read's error, at most MaxErrorBytes long; empty
	// when it succeeded.
	LastError string `json:"last_error,omitempty"`
	// LastSuccess is when a read last succeeded in this process; zero if
	// none did.
	LastSuccess time.Time `json:"last_success"`
	// LastAttempt is when the last read completed.
	LastAttempt time.Time `json:"last_attempt"`
}

// MaxErrorBytes bounds an error kept in a Status: upstream errors carry
// request ids and messages of any length.
const MaxErrorBytes = 512

// Status returns a copy of the refresher's state.
func (r *Refresher) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Running = r.active.Load()
	if !s.Running {
		s.NextAttempt = time.Time{}
	}
	s.Partitions = slices.Clone(s.Partitions)
	return s
}

// Result is the outcome of a refresh made by Kick.
type Result struct {
	// Snapshot is what the refresh published, or the current snapshot it
	// confirmed unchanged; nil when Err is set.
	Snapshot *snapshot.Snapshot
	// Changed is true when the refresh published a new version.
	Changed bool
	// Err is why nothing was published.
	Err error
}

// kick is one Kick request, answered on done (buffered: Run never waits
// for a caller that left).
type kick struct {
	done chan Result
}

// Kick asks Run to refresh at once, after a refresh in progress (so that
// the refresh it waits for starts after the call), and returns its
// outcome. Run then schedules its next refresh from this one. Kick fails
// with ErrNotRunning when Run is not running, and with ctx's error when ctx
// ends first (the refresh, once started, still completes).
func (r *Refresher) Kick(ctx context.Context) (Result, error) {
	if !r.active.Load() {
		return Result{}, ErrNotRunning
	}
	k := kick{done: make(chan Result, 1)}
	select {
	case r.kicks <- k:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("refresher: waiting for the refresh in progress: %w", context.Cause(ctx))
	}
	select {
	case res := <-k.done:
		return res, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("refresher: waiting for the refresh: %w", context.Cause(ctx))
	}
}

// outcomeResult is the Result of a refresh that returned out and err.
func outcomeResult(out outcome, err error) Result {
	if err != nil {
		return Result{Err: err}
	}
	return Result{Snapshot: out.snap, Changed: out.changed}
}

// setSchedule records the refresher's failure count and next attempt.
func (r *Refresher) setSchedule(failures int, next time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.ConsecutiveFailures = failures
	r.status.NextAttempt = next
}

// setAttempt records the start of a refresh.
func (r *Refresher) setAttempt(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.LastAttempt = at
}

// setPartition records one partition's read, completed at at with err.
func (r *Refresher) setPartition(key vpnfacade.PartitionKey, err error, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, found := slices.BinarySearchFunc(r.status.Partitions, key, func(p PartitionStatus, k vpnfacade.PartitionKey) int {
		return cmp.Or(cmp.Compare(p.AccountID, k.AccountID), cmp.Compare(p.Region, k.Region))
	})
	if !found {
		r.status.Partitions = slices.Insert(r.status.Partitions, i, PartitionStatus{AccountID: key.AccountID, Region: key.Region})
	}
	p := &r.status.Partitions[i]
	p.LastAttempt = at
	if err == nil {
		p.ConsecutiveFailures, p.LastError, p.LastSuccess = 0, "", at
		return
	}
	p.ConsecutiveFailures++
	p.LastError = ClipError(err.Error())
}

// ClipError bounds an error message to MaxErrorBytes, on a UTF-8 boundary,
// marking the cut with "…".
func ClipError(s string) string {
	if len(s) <= MaxErrorBytes {
		return s
	}
	cut := MaxErrorBytes - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
