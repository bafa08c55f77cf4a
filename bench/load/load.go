// Package load drives a fixed number of concurrent workers against an
// operation for a warm-up and then a fixed duration (or a fixed count), and
// reports throughput, latency percentiles and errors.
//
// Two modes: closed loop (each worker starts its next call as soon as the
// last one returns: the rate the system under test can sustain at that
// concurrency) and paced (calls are scheduled at a fixed rate and handed to
// the workers; latency is measured from the scheduled time, so a system that
// falls behind is charged for the queueing it causes rather than hiding it).
//
// It knows nothing of the service: an operation is a function.
package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one call to the system under test. worker is the calling worker's
// index (0..Concurrency-1), so that an Op can keep per-worker state such as
// a page cursor without locking. A non-nil error counts as a failed call.
type Op func(ctx context.Context, worker int) error

// Config says how hard and how long to drive an Op.
type Config struct {
	// Concurrency is the number of workers, each making one call at a time.
	Concurrency int
	// Warmup is run before measuring; its calls are not recorded.
	Warmup time.Duration
	// Duration is the measured time. Workers start no call after it; calls in
	// flight are waited for (up to Grace).
	Duration time.Duration
	// Requests, when positive, ends the measurement after this many recorded
	// calls, even before Duration.
	Requests int64
	// Rate, when positive, paces calls at this many per second (across all
	// workers) instead of running a closed loop.
	Rate float64
	// Grace bounds how long calls in flight at the end are waited for
	// (default 5 s); calls cut off by it are counted as Abandoned.
	Grace time.Duration
	// OnMeasureStart and OnMeasureEnd, when set, are called as the measured
	// time begins (after the warm-up) and ends (before calls in flight are
	// waited for), e.g. to read CPU counters over exactly that time.
	OnMeasureStart, OnMeasureEnd func()
}

// validate checks c.
func (c Config) validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("load: concurrency must be at least 1, got %d", c.Concurrency)
	case c.Duration <= 0:
		return fmt.Errorf("load: duration must be positive, got %v", c.Duration)
	case c.Warmup < 0 || c.Requests < 0 || c.Rate < 0 || c.Grace < 0:
		return errors.New("load: warmup, requests, rate and grace must not be negative")
	}
	return nil
}

// Result is what one Run measured.
type Result struct {
	// Concurrency and Rate repeat the Config (Rate 0: closed loop).
	Concurrency int
	Rate        float64
	// Elapsed is the measured time: from the end of the warm-up until the
	// last recorded call returned.
	Elapsed time.Duration
	// OK and Errors count recorded calls that succeeded and failed.
	OK, Errors int64
	// Abandoned counts calls still in flight when the grace period ended;
	// they are neither OK nor Errors.
	Abandoned int64
	// ErrorSamples counts failed calls by error message (at most
	// maxErrorKinds distinct messages; the rest under "(other)").
	ErrorSamples map[string]int64
	// Latency percentiles of successful calls. In paced mode they are
	// measured from the time each call was scheduled.
	P50, P90, P99, Max time.Duration
	// Mean is the mean latency of successful calls.
	Mean time.Duration
}

// Throughput is successful calls per second of measured time.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// String formats r on one line.
func (r Result) String() string {
	s := fmt.Sprintf("%.0f/s ok=%d err=%d p50=%s p90=%s p99=%s max=%s",
		r.Throughput(), r.OK, r.Errors, fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.Max))
	if r.Abandoned > 0 {
		s += fmt.Sprintf(" abandoned=%d", r.Abandoned)
	}
	for _, msg := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
		s += fmt.Sprintf("\n  %d× %s", r.ErrorSamples[msg], msg)
	}
	return s
}

// fmtDur prints a latency with three significant digits in a fitting unit.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

// maxErrorKinds bounds the distinct error messages a worker keeps.
const maxErrorKinds = 8

// worker is one worker's record, merged after the run.
type worker struct {
	lat       []time.Duration
	errors    int64
	abandoned int64
	samples   map[string]int64
}

func (w *worker) fail(err error) {
	w.errors++
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if _, ok := w.samples[msg]; !ok && len(w.samples) >= maxErrorKinds {
		msg = "(other)"
	}
	w.samples[msg]++
}

// phase says what a call's outcome counts for.
const (
	phaseWarmup = iota
	phaseMeasure
	phaseDone
)

// Run drives op as cfg says and returns what it measured. It returns early,
// with what was measured so far, when ctx is done.
func Run(ctx context.Context, cfg Config, op Op) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	grace := cmp.Or(cfg.Grace, 5*time.Second)
	// Calls get a context that ends Grace after the measurement, so that
	// no call outlives the run by much.
	callCtx, cancelCalls := context.WithCancel(ctx)
	defer cancelCalls()

	var (
		phase    atomic.Int32
		recorded atomic.Int64
		start    = time.Now()
		measure  = start.Add(cfg.Warmup)
		end      = measure.Add(cfg.Duration)
		workers  = make([]*worker, cfg.Concurrency)
		lastDone atomic.Int64 // UnixNano of the last recorded completion
		finished = make(chan struct{})
	)
	stop := func() bool { // reports whether the measurement is over
		return phase.Load() == phaseDone || ctx.Err() != nil ||
			(cfg.Requests > 0 && recorded.Load() >= cfg.Requests)
	}
	// record files one call's outcome; scheduled is when the call was due
	// (paced) or started (closed loop).
	record := func(w *worker, scheduled time.Time, err error) {
		done := time.Now()
		if scheduled.Before(measure) {
			return // warm-up
		}
		if err != nil && callCtx.Err() != nil {
			w.abandoned++
			return
		}
		recorded.Add(1)
		for {
			last := lastDone.Load()
			if done.UnixNano() <= last || lastDone.CompareAndSwap(last, done.UnixNano()) {
				break
			}
		}
		if err != nil {
			w.fail(err)
			return
		}
		w.lat = append(w.lat, done.Sub(scheduled))
	}

	var schedule chan time.Time
	if cfg.Rate > 0 {
		schedule = make(chan time.Time, cfg.Concurrency)
		go pace(ctx, schedule, cfg.Rate, stop, start)
	}
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{samples: map[string]int64{}}
		workers[i] = w
		wg.Go(func() {
			for {
				var at time.Time
				if schedule != nil {
					var ok bool
					if at, ok = <-schedule; !ok {
						return
					}
				} else {
					if stop() {
						return
					}
					at = time.Now()
				}
				record(w, at, op(callCtx, i))
			}
		})
	}

	go func() { wg.Wait(); close(finished) }()
	timer := time.NewTimer(time.Until(measure))
	defer timer.Stop()
	select {
	case <-timer.C:
		phase.Store(phaseMeasure)
	case <-finished:
	case <-ctx.Done():
	}
	if cfg.OnMeasureStart != nil {
		cfg.OnMeasureStart()
	}
	timer.Reset(time.Until(end))
	select {
	case <-timer.C:
	case <-finished:
	case <-ctx.Done():
	}
	phase.Store(phaseDone)
	if cfg.OnMeasureEnd != nil {
		cfg.OnMeasureEnd()
	}
	select {
	case <-finished:
	case <-time.After(grace):
		cancelCalls()
		<-finished
	}

	res := Result{Concurrency: cfg.Concurrency, Rate: cfg.Rate, ErrorSamples: map[string]int64{}}
	var lat []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
		res.Errors += w.errors
		res.Abandoned += w.abandoned
		for msg, n := range w.samples {
			res.ErrorSamples[msg] += n
		}
	}
	res.OK = int64(len(lat))
	if last := lastDone.Load(); last > 0 {
		res.Elapsed = time.Unix(0, last).Sub(measure)
	}
	res.P50, res.P90, res.P99, res.Max, res.Mean = Summarize(lat)
	return res, ctx.Err()
}

// pace sends the due time of each call at rate per second until stop says
// the measurement is over, then closes ch. Due times follow the schedule
// even when the workers fall behind (the channel is full): the latency of a
// late call includes its wait.
func pace(ctx context.Context, ch chan<- time.Time, rate float64, stop func() bool, start time.Time) {
	defer close(ch)
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(min(interval, time.Millisecond))
	defer tick.Stop()
	next := start
	for !stop() {
		for now := time.Now(); !next.After(now); next = next.Add(interval) {
			select {
			case ch <- next:
			case <-ctx.Done():
				return
			}
			if stop() {
				return
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// Summarize returns the 50th, 90th and 99th percentiles, the maximum and
// the mean of lat (nearest-rank percentiles; lat is sorted in place). All
// are zero for no samples.
func Summarize(lat []time.Duration) (p50, p90, p99, maxLat, mean time.Duration) {
	if len(lat) == 0 {
		return 0, 0, 0, 0, 0
	}
	slices.Sort(lat)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return lat[max(0, min(i, len(lat)-1))]
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return rank(0.50), rank(0.90), rank(0.99), lat[len(lat)-1], sum / time.Duration(len(lat))
}
