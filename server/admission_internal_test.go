package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// call is a request through the admission middleware that holds its slot,
// if admitted, until release is closed.
type call struct {
	admitted chan shedReason
	release  chan struct{}
	done     chan struct{}
}

// startCall sends a request from the address from through a's middleware.
func startCall(a *admission, from string) *call {
	c := &call{admitted: make(chan shedReason, 1), release: make(chan struct{}), done: make(chan struct{})}
	h := a.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.admitted <- admit(r.Context())
		<-c.release
	}))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = from
	go func() {
		defer close(c.done)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	return c
}

// TestAdmissionSharePerAddress drives the admission middleware with calls
// held in flight: one address (or IPv6 /64) holds at most its share of the
// slots, and waits for a place of its own within the queue timeout; other
// addresses find the slots left; every place is given back.
func TestAdmissionSharePerAddress(t *testing.T) {
	a := newAdmission(5, 0.5, 50*time.Millisecond) // 2 per address
	counted := 0
	a.overShare = func() { counted++ }
	start := func(from string) *call { return startCall(a, from) }
	admitNow := func(from string) *call {
		t.Helper()
		c := start(from)
		if why := <-c.admitted; why != admitted {
			t.Fatalf("call from %s: shed (%d), want admitted", from, why)
		}
		return c
	}
	shed := func(from string, want shedReason) {
		t.Helper()
		c := start(from)
		if why := <-c.admitted; why != want {
			t.Errorf("call from %s: %d, want shed as %d", from, why, want)
		}
		close(c.release)
		<-c.done
	}

	a1, a2 := admitNow("192.0.2.1:1"), admitNow("192.0.2.1:2")
	shed("192.0.2.1:3", overShare)
	// Two hosts of one IPv6 /64 are one address.
	v1, v2 := admitNow("[2001:db8::1]:1"), admitNow("[2001:db8::2]:1")
	shed("[2001:db8::3]:1", overShare)
	// One slot is left, for anyone not at their share; then none.
	b1 := admitNow("192.0.2.2:1")
	shed("192.0.2.3:1", busy)
	if counted != 2 {
		t.Errorf("%d calls counted as over their address's share, want 2", counted)
	}

	// A call over its share waits for its address's own place: it is
	// admitted when the address's call ends within the queue timeout.
	a.queueTimeout = time.Hour
	waiting := start("192.0.2.1:4")
	for a.users(netip.MustParsePrefix("192.0.2.1/32")) < 3 {
		runtime.Gosched() // until it waits
	}
	close(a1.release)
	<-a1.done
	if why := <-waiting.admitted; why != admitted {
		t.Fatalf("call waiting for its address's place: %d, want admitted", why)
	}
	// A call that leaves while waiting is shed.
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodPost, "/", nil).WithContext(ctx)
	r.RemoteAddr = "192.0.2.1:5"
	cancel()
	var why shedReason
	a.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { why = admit(r.Context()) })).ServeHTTP(httptest.NewRecorder(), r)
	if why != overShare {
		t.Errorf("a call that left while waiting: %d, want shed", why)
	}
	if counted != 2 {
		t.Errorf("a call that left was counted as refused")
	}

	for _, c := range []*call{a2, v1, v2, b1, waiting} {
		close(c.release)
		<-c.done
	}
	if n := a.inFlight; n != 0 {
		t.Errorf("%d slots held after every call ended", n)
	}
	if n := len(a.addresses); n != 0 {
		t.Errorf("%d addresses still tracked after every call ended", n)
	}
	// Each address may hold its share again.
	for _, from := range []string{"192.0.2.1:6", "192.0.2.1:7"} {
		c := admitNow(from)
		close(c.release)
		<-c.done
	}
}

// TestAdmissionShareRounding: the share is rounded down, at least one
// slot; 1 or more turns the bound off.
func TestAdmissionShareRounding(t *testing.T) {
	for _, tc := range []struct {
		limit int
		share float64
		want  int
	}{
		{8, 0.5, 4}, {5, 0.5, 2}, {1, 0.5, 1}, {3, 0.1, 1}, {8, 1, 0}, {8, 2, 0},
	} {
		if got := newAdmission(tc.limit, tc.share, time.Millisecond).perAddress; got != tc.want {
			t.Errorf("%d slots, share %v: %d per address, want %d", tc.limit, tc.share, got, tc.want)
		}
	}
}

// users returns the calls of address that hold or wait for a place.
func (a *admission) users(address netip.Prefix) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.addresses[address]; s != nil {
		return s.users
	}
	return 0
}

// TestAdmissionServesTheLeastServedAddressFirst: addresses that together
// hold every slot and keep calls queued do not make a newcomer wait behind
// their queue: the next freed slot is the newcomer's.
func TestAdmissionServesTheLeastServedAddressFirst(t *testing.T) {
	for _, tc := range []struct {
		name      string
		share     float64
		attackers []string
	}{
		{"one address, no share per address", 1, []string{"192.0.2.1"}},
		{"two addresses at their share", 0.5, []string{"192.0.2.1", "192.0.2.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmission(4, tc.share, time.Hour)
			start := func(from string) *call { return startCall(a, from) }
			waitUntil := func(what string, cond func() bool) {
				t.Helper()
				deadline := time.Now().Add(time.Minute) // the test's own bound
				for {
					a.mu.Lock()
					ok := cond()
					a.mu.Unlock()
					if ok {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("never: %s", what)
					}
					runtime.Gosched()
				}
			}
			// The attackers take every slot, then queue as many calls again.
			var holding, queued []*call
			for i := range 4 {
				c := start(fmt.Sprintf("%s:%d", tc.attackers[i%len(tc.attackers)], i+1))
				if why := <-c.admitted; why != admitted {
					t.Fatalf("attacker call %d: shed (%d), want admitted", i, why)
				}
				holding = append(holding, c)
			}
			for i := range 4 {
				queued = append(queued, start(fmt.Sprintf("%s:%d", tc.attackers[i%len(tc.attackers)], i+100)))
			}
			waitUntil("the attackers' calls queue", func() bool { return len(a.waiting) == 4 })
			newcomer := start("198.51.100.7:1")
			waitUntil("the newcomer queues", func() bool { return len(a.waiting) == 5 })

			// One attacker call ends: its slot is the newcomer's.
			close(holding[0].release)
			<-holding[0].done
			waitUntil("the freed slot is taken", func() bool { return a.inFlight == 4 })
			a.mu.Lock()
			for _, w := range a.waiting {
				if w.slots.address == netip.MustParsePrefix("198.51.100.7/32") {
					a.mu.Unlock()
					t.Fatal("an attacker's queued call took the freed slot; the newcomer still waits")
				}
			}
			a.mu.Unlock()
			if why := <-newcomer.admitted; why != admitted {
				t.Fatalf("newcomer: %d, want admitted", why)
			}
			// The attackers' queue is served as slots free up, and every
			// slot comes back.
			close(newcomer.release)
			<-newcomer.done
			for _, c := range holding[1:] {
				close(c.release)
				<-c.done
			}
			for _, c := range queued {
				if why := <-c.admitted; why != admitted {
					t.Errorf("queued attacker call: %d, want admitted once slots freed", why)
				}
				close(c.release)
				<-c.done
			}
			if a.inFlight != 0 || len(a.addresses) != 0 || len(a.waiting) != 0 {
				t.Errorf("after every call: %d in flight, %d addresses, %d waiting; want none", a.inFlight, len(a.addresses), len(a.waiting))
			}
		})
	}
}
