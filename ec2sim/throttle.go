package ec2sim

import (
	"fmt"
	"time"
)

// Throttle configures the request rate limit, a token bucket per (account,
// region) as EC2 applies to its Describe calls. The zero value turns
// throttling off.
type Throttle struct {
	// Burst is the bucket size: how many requests may arrive at once.
	// 0 turns throttling off.
	Burst int
	// PerSecond is how many tokens the bucket regains per second.
	PerSecond float64
}

// AWSThrottle returns the limit EC2 applies to Describe calls: a burst of
// 100, refilled at 20 per second.
func AWSThrottle() Throttle { return Throttle{Burst: 100, PerSecond: 20} }

// Enabled reports whether the throttle limits anything.
func (t Throttle) Enabled() bool { return t.Burst > 0 }

// validate checks the values of an enabled throttle.
func (t Throttle) validate() error {
	if t.Burst < 0 {
		return fmt.Errorf("throttle burst must be 0 (off) or positive, got %d", t.Burst)
	}
	if t.Burst > 0 && !(t.PerSecond > 0) {
		return fmt.Errorf("throttle refill rate must be positive when the burst is set, got %v", t.PerSecond)
	}
	return nil
}

// String formats the throttle as the --throttle flag reads it.
func (t Throttle) String() string {
	if !t.Enabled() {
		return "off"
	}
	return fmt.Sprintf("%d/%g", t.Burst, t.PerSecond)
}

// tokenBucket is one partition's bucket. It is not safe for concurrent use;
// the server guards it.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// take refills the bucket for the time elapsed since the last call and
// takes one token, reporting false when none is left. A zero bucket starts
// full.
func (b *tokenBucket) take(t Throttle, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = float64(t.Burst)
	} else if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(t.Burst), b.tokens+elapsed.Seconds()*t.PerSecond)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
