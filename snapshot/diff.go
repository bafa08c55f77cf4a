package snapshot

import (
	"bytes"
	"fmt"
	"slices"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
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

// Changes compares the endpoints about to be published with prev's (nil:
// nothing was published yet), by Key; an endpoint is modified when its
// deterministic encoding differs. Each list is sorted.
func Changes(prev *Snapshot, next []*clientvpnv1.ClientVpnEndpoint) (Diff, error) {
	old := map[string][]byte{}
	if prev != nil {
		for e := range prev.All() {
			old[e.Key()] = e.wire
		}
	}
	var d Diff
	var buf []byte
	for _, e := range next {
		k := Key(e)
		o, ok := old[k]
		if !ok {
			d.Added = append(d.Added, k)
			continue
		}
		var err error
		if buf, err = marshalOptions.MarshalAppend(buf[:0], e); err != nil {
			return Diff{}, fmt.Errorf("snapshot: encode endpoint %s: %w", k, err)
		}
		if !bytes.Equal(o, buf) {
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
	return d, nil
}
