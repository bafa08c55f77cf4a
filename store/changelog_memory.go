package store

import (
	"context"
	"sort"
	"sync"
	"time"
)

// memoryLog is the Memory store's change log: the last length changes, in
// version order, of which those published within age are read.
type memoryLog struct {
	mu      sync.Mutex
	length  int
	age     time.Duration
	now     func() time.Time
	changes []Change
}

func (l *memoryLog) append(c Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Changes past the age go too: the log holds no more than it serves.
	if kept := dropExpired(l.changes, l.now().Add(-l.age)); len(kept) < len(l.changes) {
		n := copy(l.changes, kept)
		clear(l.changes[n:])
		l.changes = l.changes[:n]
	}
	if len(l.changes) >= l.length {
		n := copy(l.changes, l.changes[len(l.changes)-l.length+1:])
		clear(l.changes[n:])
		l.changes = l.changes[:n]
	}
	l.changes = append(l.changes, c)
}

func (l *memoryLog) since(after uint64, limit int) []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.changes), func(i int) bool { return l.changes[i].Version > after })
	cutoff := l.now().Add(-l.age)
	for i < len(l.changes) && l.changes[i].expired(cutoff) {
		i++
	}
	end := min(len(l.changes), i+max(limit, 0))
	return append([]Change(nil), l.changes[i:end]...)
}

// Changes implements ChangeLog.
func (m *Memory) Changes(ctx context.Context, after uint64, limit int) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.log.since(after, limit), nil
}

// Published implements ChangeLog.
func (m *Memory) Published() <-chan struct{} { return m.published.Wait() }

// Announced implements ChangeLog: a publish to the memory store is
// announced when it becomes current.
func (m *Memory) Announced() <-chan struct{} { return m.published.Wait() }

var _ ChangeLog = (*Memory)(nil)
