package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Memory is a Store held in this process only: for --demo and single-process
// runs. Publishing swaps one pointer, so a reader sees a whole snapshot or
// the previous one, never a mix.
type Memory struct {
	mu        sync.Mutex // serialises Publish
	epoch     uint64     // highest writer epoch seen
	current   atomic.Pointer[snapshot.Snapshot]
	log       memoryLog
	published broadcast
}

// MemoryOptions configures NewMemoryOptions.
type MemoryOptions struct {
	// ChangeLogLength is how many versions the change log keeps. Default
	// DefaultChangeLogLength.
	ChangeLogLength int
	// ChangeLogAge is how long the change log keeps a version's change.
	// Default DefaultChangeLogAge.
	ChangeLogAge time.Duration
	// Now is the clock publish times are taken from and the log's age is
	// measured with. Default time.Now.
	Now func() time.Time
}

// NewMemory returns an empty Memory store with default options.
func NewMemory() *Memory { return NewMemoryOptions(MemoryOptions{}) }

// NewMemoryOptions returns an empty Memory store.
func NewMemoryOptions(opts MemoryOptions) *Memory {
	if opts.ChangeLogLength <= 0 {
		opts.ChangeLogLength = DefaultChangeLogLength
	}
	if opts.ChangeLogAge <= 0 {
		opts.ChangeLogAge = DefaultChangeLogAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Memory{log: memoryLog{length: opts.ChangeLogLength, age: opts.ChangeLogAge, now: opts.Now}}
}

// Publish implements Store. A writer whose epoch is lower than one already
// seen is refused with ECONFLICT.
func (m *Memory) Publish(ctx context.Context, pub Publication) (*snapshot.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pub.Epoch < m.epoch {
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "", "writer epoch %d is older than epoch %d", pub.Epoch, m.epoch)
	}
	m.epoch = pub.Epoch
	var version uint64 = 1
	prev := m.current.Load()
	if prev != nil {
		version = prev.Version + 1
	}
	snap, err := pub.snapshot(pub.RefreshedAt, pub.Partitions)
	if err != nil {
		return nil, err
	}
	snap.Version = version
	base := pub.Base
	if base != prev {
		base = nil // the diff is not against the current snapshot
	}
	change := newChange(base, snap, pub.Diff)
	if prev != nil {
		change.Base = prev.Version
	}
	change.PublishedAt = m.log.now()
	m.log.append(change)
	m.current.Store(snap)
	m.published.Fire()
	return snap, nil
}

// Confirm implements Store.
func (m *Memory) Confirm(ctx context.Context, c Confirmation) (*snapshot.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.Epoch < m.epoch {
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "", "writer epoch %d is older than epoch %d", c.Epoch, m.epoch)
	}
	cur := m.current.Load()
	if cur == nil || cur.Version != c.Version {
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "", "version %d is no longer current", c.Version)
	}
	m.epoch = c.Epoch
	snap := cur.Refreshed(c.RefreshedAt, c.Partitions)
	m.current.Store(snap)
	return snap, nil
}

// Current implements Store.
func (m *Memory) Current(ctx context.Context) (View, error) {
	snap := m.current.Load()
	if snap == nil {
		return View{}, errNoSnapshot()
	}
	return View{Snapshot: snap}, nil
}

// Close implements Store; it has nothing to release.
func (m *Memory) Close() error { return nil }

func errNoSnapshot() error {
	return vpnfacade.Errorf(vpnfacade.EUNAVAILABLE, "", "no snapshot is available yet: the first refresh is pending")
}
