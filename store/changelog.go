package store

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Defaults of the change log.
const (
	// DefaultChangeLogLength is how many versions the change log keeps.
	DefaultChangeLogLength = 1000
	// DefaultChangeLogAge is how long the change log keeps a version's
	// change: a watcher resuming from a version published longer ago gets a
	// fresh initial state, as one resuming from a version beyond the log's
	// length does. An hour covers a client's restart or a network outage;
	// a client gone longer relists, which costs one initial state instead
	// of an hour of replayed changes.
	DefaultChangeLogAge = time.Hour
	// MaxChangeBytes bounds the encoded size of one change: a larger one is
	// recorded as a gap, which sends watchers a fresh initial state.
	MaxChangeBytes = 8 << 20
)

// Change is what publishing one version changed, as the change log records
// it. Watchers replay changes to follow the snapshots without relisting.
// The endpoints are shared: callers must not modify them.
type Change struct {
	// Version is the version the change leads to.
	Version uint64
	// Base is the version it applies to: the version that was current when
	// Version was published; 0 for the first.
	Base uint64
	// RefreshedAt is Version's refresh time.
	RefreshedAt time.Time
	// PublishedAt is when Version became current, by the writer's clock
	// (the log's retention by age and watchers' delivery delay count from
	// it). Zero in changes recorded before the log kept it.
	PublishedAt time.Time
	// Gap is true when the change could not be recorded: its diff was not
	// computed against Base (another writer published in between) or was
	// too large. A watcher at Base must relist.
	Gap bool
	// Added are the endpoints only Version holds.
	Added []*snapshot.Endpoint
	// Modified are the new values of the endpoints that changed.
	Modified []*snapshot.Endpoint
	// Previous are the old values of Modified, in the same order.
	Previous []*snapshot.Endpoint
	// Removed are the old values of the endpoints only Base holds.
	Removed []*snapshot.Endpoint
}

// ChangeLog is a store's record of the changes each publish made, and a
// signal when one is published. Memory and Redis implement it.
type ChangeLog interface {
	// Changes returns, oldest first, at most limit recorded changes with a
	// version greater than after. The log keeps a bounded number of versions
	// for a bounded time: the first change returned has a Base greater than
	// after when the changes right after it are no longer kept (beyond the
	// log's length, or published longer ago than its age), and none are
	// returned when every change after it is gone.
	Changes(ctx context.Context, after uint64, limit int) ([]Change, error)
	// Published returns a channel that is closed once a version newer than
	// the one Current returns now becomes current in this process.
	Published() <-chan struct{}
	// Announced returns a channel that is closed once this process learns
	// that a newer version was published: at the latest when Published's
	// channel closes, and with Redis as soon as the announcement arrives,
	// before the mirror has loaded the new snapshot. The log holds the
	// change by then (it is written in the same step as the announcement),
	// so the watch fan-out can deliver it while the snapshot loads.
	Announced() <-chan struct{}
}

// newChange builds the change that publishing next makes to base, from the
// diff the writer computed against base (nil when none).
func newChange(base, next *snapshot.Snapshot, d snapshot.Diff) Change {
	c := Change{Version: next.Version, RefreshedAt: next.RefreshedAt}
	if base == nil {
		c.Gap = next.Len() > 0 || !d.Empty()
		return c
	}
	c.Base = base.Version
	size := 0
	add := func(to *[]*snapshot.Endpoint, s *snapshot.Snapshot, key string) bool {
		account, rest, _ := strings.Cut(key, "/")
		region, id, _ := strings.Cut(rest, "/")
		e, err := s.Get(id, region, account)
		if err != nil || e.Key() != key {
			return false
		}
		size += len(e.Wire())
		// A copy: the log outlives the snapshots, and a snapshot's
		// endpoint would keep all of that snapshot alive.
		*to = append(*to, e.Detached())
		return size <= MaxChangeBytes
	}
	ok := true
	for _, k := range d.Added {
		ok = ok && add(&c.Added, next, k)
	}
	for _, k := range d.Modified {
		ok = ok && add(&c.Modified, next, k) && add(&c.Previous, base, k)
	}
	for _, k := range d.Deleted {
		ok = ok && add(&c.Removed, base, k)
	}
	if !ok || len(c.Added)-len(c.Removed) != next.Len()-base.Len() {
		// The diff does not describe base → next: record a gap.
		return Change{Version: c.Version, Base: c.Base, RefreshedAt: c.RefreshedAt, Gap: true}
	}
	return c
}

// expired reports whether c was published before cutoff and so is past the
// log's retention by age. A change recorded without its publish time counts
// from its refresh time, which comes before the publish.
func (c Change) expired(cutoff time.Time) bool {
	at := c.PublishedAt
	if at.IsZero() {
		at = c.RefreshedAt
	}
	return at.Before(cutoff)
}

// dropExpired returns changes without the leading ones published before
// cutoff. Only leading ones go: the log is in version order, and a gap in
// its middle would be silent.
func dropExpired(changes []Change, cutoff time.Time) []Change {
	i := 0
	for i < len(changes) && changes[i].expired(cutoff) {
		i++
	}
	return changes[i:]
}

// broadcast is a signal many goroutines wait on: each Fire closes the
// channel Wait returned before it and starts a new one.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns the channel the next Fire closes.
func (b *broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Fire wakes every waiter.
func (b *broadcast) Fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
