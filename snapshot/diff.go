package snapshot

import (
	"bytes"
	"slices"
)

// Diff is the change between two consecutive snapshots, by endpoint key
// (see Key).
type Diff struct {
	// Added are keys present only in the new snapshot.
	Added []string `json:"added,omitempty"`
	// Modified are keys present in both whose endpoint changed.
	Modified []string `json:"modified,omitempty"`
	// Deleted are keys present only in the old snapshot.
	Deleted []string `json:"deleted,omitempty"`
}

// Empty reports whether the diff records no change.
func (d Diff) Empty() bool {
	return len(d.Added) == 0 && len(d.Modified) == 0 && len(d.Deleted) == 0
}

// Changes compares the snapshot about to be published with prev (nil:
// nothing was published yet), by Key; an endpoint is modified when its
// encoding differs. Both snapshots hold their endpoints encoded already
// (deterministically: equal endpoints have equal bytes), so nothing is
// encoded again. Each list is sorted.
func Changes(prev, next *Snapshot) Diff {
	old := map[string][]byte{}
	if prev != nil {
		old = make(map[string][]byte, prev.Len())
		for e := range prev.All() {
			old[e.Key()] = e.wire
		}
	}
	var d Diff
	for e := range next.All() {
		k := e.Key()
		o, ok := old[k]
		if !ok {
			d.Added = append(d.Added, k)
			continue
		}
		if !bytes.Equal(o, e.wire) {
			d.Modified = append(d.Modified, k)
		}
		delete(old, k)
	}
	for k := range old {
		d.Deleted = append(d.Deleted, k)
	}
	slices.Sort(d.Added)
	slices.Sort(d.Modified)
	slices.Sort(d.Deleted)
	return d
}
