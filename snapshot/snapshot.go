// Package snapshot is one immutable, indexed copy of every cached endpoint
// and its query engine: ids, EC2 filters with wildcards, keyset pagination
// and the page tokens that carry it across snapshots.
//
// A snapshot keeps each endpoint as its protobuf wire bytes, encoded once
// when the snapshot is built, and a compact record of what sorting,
// filtering and tokens need; transports assemble responses from the bytes.
package snapshot

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// Snapshot is one complete, immutable copy of every cached endpoint, sorted
// by (client_vpn_endpoint_id, region, account_id), with indexes for the
// filters that can use them. Readers share it; nobody modifies it.
type Snapshot struct {
	// Version identifies the snapshot; later snapshots have larger versions.
	Version uint64
	// RefreshedAt is when the refresh that produced the snapshot completed.
	RefreshedAt time.Time
	// Partitions describes each (account, region) the snapshot holds.
	Partitions []Partition

	endpoints []Endpoint
	idx       *indexes // built on first use, shared with Refreshed copies
}

// sortKey is the order of endpoints in a snapshot and the position a page
// token records.
type sortKey struct {
	id, region, account string
}

func (k sortKey) compare(o sortKey) int {
	return cmp.Or(strings.Compare(k.id, o.id), strings.Compare(k.region, o.region), strings.Compare(k.account, o.account))
}

// Key returns the identity of an endpoint across partitions,
// "account/region/id"; Diff lists these keys.
func Key(e *clientvpnv1.ClientVpnEndpoint) string {
	return e.GetAccountId() + "/" + e.GetRegion() + "/" + e.GetClientVpnEndpointId()
}

func keyOf(e *clientvpnv1.ClientVpnEndpoint) sortKey {
	return sortKey{id: e.GetClientVpnEndpointId(), region: e.GetRegion(), account: e.GetAccountId()}
}

// marshalOptions encode endpoints deterministically, so that equal endpoints
// have equal bytes (diffs and entity tags compare bytes). New sizes every
// endpoint first (proto.Size records each message's size in it), so the
// encoding reuses those sizes instead of computing them again.
var marshalOptions = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// New sorts endpoints, encodes each once and indexes them. It does not keep
// the messages: the caller may reuse them.
func New(version uint64, refreshedAt time.Time, partitions []Partition, endpoints []*clientvpnv1.ClientVpnEndpoint) (*Snapshot, error) {
	sorted := slices.Clone(endpoints)
	slices.SortStableFunc(sorted, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
		return keyOf(a).compare(keyOf(b))
	})
	size := 0
	for _, e := range sorted {
		size += proto.Size(e) // and caches the sizes marshalOptions use
	}
	arena := make([]byte, 0, size)
	wires := make([][]byte, len(sorted))
	for i, e := range sorted {
		start := len(arena)
		var err error
		if arena, err = marshalOptions.MarshalAppend(arena, e); err != nil {
			return nil, fmt.Errorf("snapshot: encode endpoint %s: %w", Key(e), err)
		}
		wires[i] = arena[start:len(arena):len(arena)]
	}
	s, err := build(version, refreshedAt, partitions, wires, true)
	if err != nil {
		return nil, err
	}
	s.BuildIndexes()
	return s, nil
}

// FromWire builds a snapshot from endpoints already encoded (as Wire
// returns them), in chunks of length-prefixed encodings (a uvarint length,
// then the bytes) as AppendWire writes them. It takes ownership of the
// chunks, which must never be modified afterwards (the snapshot's strings
// point into them), and reads only the attributes it indexes, not whole
// messages. Its indexes are built on first use, or by BuildIndexes.
func FromWire(version uint64, refreshedAt time.Time, partitions []Partition, chunks [][]byte) (*Snapshot, error) {
	var wires [][]byte
	for _, chunk := range chunks {
		for len(chunk) > 0 {
			v, n := protowire.ConsumeBytes(chunk)
			if n < 0 {
				return nil, errCorrupt
			}
			wires = append(wires, v[:len(v):len(v)])
			chunk = chunk[n:]
		}
	}
	return build(version, refreshedAt, partitions, wires, false)
}

// AppendWire appends the endpoint encodings of s, from position from on, to
// dst as FromWire reads them, until dst reaches limit bytes (at least one
// endpoint is appended). It returns dst and the position to continue from.
func (s *Snapshot) AppendWire(dst []byte, from, limit int) ([]byte, int) {
	i := from
	for ; i < len(s.endpoints) && (i == from || len(dst) < limit); i++ {
		dst = protowire.AppendBytes(dst, s.endpoints[i].wire)
	}
	return dst, i
}

func build(version uint64, refreshedAt time.Time, partitions []Partition, wires [][]byte, sorted bool) (*Snapshot, error) {
	s := &Snapshot{
		Version:     version,
		RefreshedAt: refreshedAt,
		Partitions:  partitions,
		endpoints:   make([]Endpoint, len(wires)),
		idx:         &indexes{},
	}
	if err := readEndpoints(s.endpoints, wires); err != nil {
		return nil, err
	}
	if !sorted && !s.sorted() {
		// Not in snapshot order (written by something else than
		// AppendWire): order the encodings and read them again.
		perm := make([]int, len(wires))
		for i := range perm {
			perm[i] = i
		}
		slices.SortStableFunc(perm, func(a, b int) int {
			return s.endpoints[a].sortKey().compare(s.endpoints[b].sortKey())
		})
		ordered := make([][]byte, len(wires))
		for i, j := range perm {
			ordered[i] = wires[j]
		}
		return build(version, refreshedAt, partitions, ordered, true)
	}
	return s, nil
}

// parallelMin is the fewest endpoints worth reading on more than one
// goroutine.
const parallelMin = 4096

// readEndpoints reads each endpoint's attributes from its encoding, on as
// many goroutines as the process may run at once for a large snapshot.
func readEndpoints(dst []Endpoint, wires [][]byte) error {
	workers := min(runtime.GOMAXPROCS(0), len(wires)/parallelMin)
	if workers <= 1 {
		return readRange(dst, wires, 0)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	per := (len(wires) + workers - 1) / workers
	for w := range workers {
		from, to := w*per, min((w+1)*per, len(wires))
		wg.Go(func() { errs[w] = readRange(dst[from:to], wires[from:to], from) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func readRange(dst []Endpoint, wires [][]byte, offset int) error {
	// Blocks of up to tagBlock tags, smaller for a few endpoints (a change
	// log reads a change's endpoints alone): a block's unused tail is waste.
	tags := tagSlab{size: min(tagBlock, max(16, 4*len(wires)))}
	for i, w := range wires {
		if err := readEndpoint(&dst[i], w, &tags); err != nil {
			return fmt.Errorf("snapshot: endpoint %d: %w", offset+i, err)
		}
	}
	return nil
}

func (s *Snapshot) sorted() bool {
	for i := 1; i < len(s.endpoints); i++ {
		if s.endpoints[i-1].sortKey().compare(s.endpoints[i].sortKey()) > 0 {
			return false
		}
	}
	return true
}

// search returns the first position whose key is not below k.
func (s *Snapshot) search(k sortKey) int {
	return sort.Search(len(s.endpoints), func(i int) bool { return s.endpoints[i].sortKey().compare(k) >= 0 })
}

// Len returns the number of endpoints.
func (s *Snapshot) Len() int { return len(s.endpoints) }

// All returns every endpoint in snapshot order. The endpoints are shared:
// callers must not modify them.
func (s *Snapshot) All() iter.Seq[*Endpoint] {
	return func(yield func(*Endpoint) bool) {
		for i := range s.endpoints {
			if !yield(&s.endpoints[i]) {
				return
			}
		}
	}
}

// Messages decodes every endpoint, in snapshot order, into new messages the
// caller owns. It costs a full decode: readers use All or List instead.
func (s *Snapshot) Messages() ([]*clientvpnv1.ClientVpnEndpoint, error) {
	out := make([]*clientvpnv1.ClientVpnEndpoint, len(s.endpoints))
	for i := range s.endpoints {
		m, err := s.endpoints[i].Message()
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// PartitionsStale reports whether any partition kept older data after a
// failed refresh.
func (s *Snapshot) PartitionsStale() bool {
	return slices.ContainsFunc(s.Partitions, func(p Partition) bool { return p.Stale })
}

// Get returns the endpoint with the given id. region and accountID, when
// not empty, narrow the match; when several partitions hold the id and the
// call does not narrow it to one, the first in snapshot order is returned.
func (s *Snapshot) Get(id, region, accountID string) (*Endpoint, error) {
	return s.GetWithin(nil, id, region, accountID)
}

// GetWithin is Get seeing only the partitions within accepts (nil: all),
// as Query.Within does for List: an endpoint outside them is not found, so
// its existence does not leak.
func (s *Snapshot) GetWithin(within func(vpnfacade.PartitionKey) bool, id, region, accountID string) (*Endpoint, error) {
	if id == "" {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldID, "required")
	}
	if err := checkLength("client_vpn_endpoint_id", id); err != nil {
		return nil, err
	}
	for i := s.search(sortKey{id: id}); i < len(s.endpoints) && s.endpoints[i].id == id; i++ {
		e := &s.endpoints[i]
		if (region == "" || e.region == region) && (accountID == "" || e.account == accountID) &&
			(within == nil || within(e.Partition())) {
			return e, nil
		}
	}
	return nil, vpnfacade.Errorf(vpnfacade.ENOTFOUND, "client_vpn_endpoint_id",
		"the Client VPN endpoint %s cannot be found%s", vpnfacade.Quote(id), where(region, accountID))
}

func where(region, accountID string) string {
	switch {
	case region != "" && accountID != "":
		return " in region " + vpnfacade.Quote(region) + " of account " + vpnfacade.Quote(accountID)
	case region != "":
		return " in region " + vpnfacade.Quote(region)
	case accountID != "":
		return " in account " + vpnfacade.Quote(accountID)
	}
	return ""
}

// Refreshed returns a snapshot with the same version and endpoints (shared,
// not copied) whose data was confirmed unchanged by a later refresh at at,
// with the partitions' states of that refresh.
func (s *Snapshot) Refreshed(at time.Time, partitions []Partition) *Snapshot {
	return &Snapshot{Version: s.Version, RefreshedAt: at, Partitions: partitions, endpoints: s.endpoints, idx: s.idx}
}
