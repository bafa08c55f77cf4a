// Package snapshot is one immutable, indexed copy of every cached endpoint
// and its query engine: ids, EC2 filters with wildcards, keyset pagination
// and the page tokens that carry it across snapshots.
package snapshot

import (
	"slices"
	"strings"
	"time"

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

	endpoints []*clientvpnv1.ClientVpnEndpoint
	keys      []sortKey
	// index maps an indexed attribute ("endpoint-id\x00cvpn-…",
	// "tag:Name\x00web", …) to the ascending positions holding it.
	index map[string][]int32
}

// sortKey is the order of endpoints in a snapshot and the position a page
// token records.
type sortKey struct {
	id, region, account string
}

func (k sortKey) compare(o sortKey) int {
	if c := strings.Compare(k.id, o.id); c != 0 {
		return c
	}
	if c := strings.Compare(k.region, o.region); c != 0 {
		return c
	}
	return strings.Compare(k.account, o.account)
}

// Key returns the identity of an endpoint across partitions,
// "account/region/id"; Diff lists these keys.
func Key(e *clientvpnv1.ClientVpnEndpoint) string {
	return e.GetAccountId() + "/" + e.GetRegion() + "/" + e.GetClientVpnEndpointId()
}

func keyOf(e *clientvpnv1.ClientVpnEndpoint) sortKey {
	return sortKey{id: e.GetClientVpnEndpointId(), region: e.GetRegion(), account: e.GetAccountId()}
}

// New sorts endpoints and indexes them. It takes ownership of the
// slice and the messages: the caller must not modify them afterwards.
func New(version uint64, refreshedAt time.Time, partitions []Partition, endpoints []*clientvpnv1.ClientVpnEndpoint) *Snapshot {
	slices.SortStableFunc(endpoints, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
		return keyOf(a).compare(keyOf(b))
	})
	s := &Snapshot{
		Version:     version,
		RefreshedAt: refreshedAt,
		Partitions:  partitions,
		endpoints:   endpoints,
		keys:        make([]sortKey, len(endpoints)),
		index:       make(map[string][]int32),
	}
	for i, e := range endpoints {
		s.keys[i] = keyOf(e)
		add := func(name, value string) {
			k := indexKey(name, value)
			s.index[k] = append(s.index[k], int32(i))
		}
		for _, name := range indexedFilters {
			if v, ok := attributeValue(e, name); ok {
				add(name, v)
			}
		}
		for _, t := range e.GetTags() {
			add(FilterTagKey, t.GetKey())
			add("tag:"+t.GetKey(), t.GetValue())
		}
	}
	return s
}

func indexKey(name, value string) string { return name + "\x00" + value }

// Endpoints returns every endpoint in snapshot order. The slice and the
// messages are shared: callers must not modify them.
func (s *Snapshot) Endpoints() []*clientvpnv1.ClientVpnEndpoint { return s.endpoints }

// Len returns the number of endpoints.
func (s *Snapshot) Len() int { return len(s.endpoints) }

// PartitionsStale reports whether any partition kept older data after a
// failed refresh.
func (s *Snapshot) PartitionsStale() bool {
	return slices.ContainsFunc(s.Partitions, func(p Partition) bool { return p.Stale })
}

// Get returns the endpoint with the given id. region and accountID, when
// not empty, narrow the match; when several partitions hold the id and the
// call does not narrow it to one, the first in snapshot order is returned.
func (s *Snapshot) Get(id, region, accountID string) (*clientvpnv1.ClientVpnEndpoint, error) {
	if id == "" {
		return nil, vpnfacade.Errorf(vpnfacade.EINVALID, "client_vpn_endpoint_id", "client_vpn_endpoint_id is required")
	}
	i, _ := slices.BinarySearchFunc(s.keys, sortKey{id: id}, sortKey.compare)
	for ; i < len(s.keys) && s.keys[i].id == id; i++ {
		k := s.keys[i]
		if (region == "" || k.region == region) && (accountID == "" || k.account == accountID) {
			return s.endpoints[i], nil
		}
	}
	return nil, vpnfacade.Errorf(vpnfacade.ENOTFOUND, "client_vpn_endpoint_id",
		"the Client VPN endpoint %q cannot be found%s", id, where(region, accountID))
}

func where(region, accountID string) string {
	switch {
	case region != "" && accountID != "":
		return " in region " + region + " of account " + accountID
	case region != "":
		return " in region " + region
	case accountID != "":
		return " in account " + accountID
	}
	return ""
}
