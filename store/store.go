// Package store owns snapshots of the cached Client VPN endpoints: it
// publishes them whole (a reader sees a snapshot entirely or not at all),
// hands the current one to readers, and answers queries over it (ids,
// filters, keyset pagination with page tokens).
//
// Two backends implement Store: Memory, for a single process, and Redis,
// shared by many replicas and surviving restarts, each with an in-process
// mirror so that reads do not wait on the network.
package store

import (
	"context"
	"time"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// Store is a place snapshots are published to and read from.
type Store interface {
	// Publish makes the publication the current snapshot, with a version
	// greater than any published before, and returns that snapshot. It fails
	// with vpnfacade.ECONFLICT when the writer's epoch has been superseded.
	Publish(ctx context.Context, pub Publication) (*Snapshot, error)
	// Current returns the newest snapshot this process can read. Before the
	// first publish it fails with vpnfacade.EUNAVAILABLE.
	Current(ctx context.Context) (View, error)
	// Close releases the store's resources.
	Close() error
}

// Publication is what a writer hands to Publish: the complete content of a
// snapshot, without its version (the store assigns it).
type Publication struct {
	// RefreshedAt is when the refresh that read the content completed.
	RefreshedAt time.Time
	// Partitions describes each (account, region) the content was read from.
	Partitions []Partition
	// Endpoints is every endpoint of every partition, in any order. The store
	// takes ownership: the caller must not modify them afterwards.
	Endpoints []*clientvpnv1.ClientVpnEndpoint
	// Diff is the change against the previous snapshot.
	Diff Diff
	// Epoch is the writer's fencing epoch (see Lease). A store refuses a
	// publication whose epoch is lower than the highest it has seen; 0 is
	// accepted only until some writer has published with a lease.
	Epoch uint64
}

// View is a snapshot as one reader sees it.
type View struct {
	*Snapshot
	// BackendStale is true when the shared backend could not be reached and
	// the snapshot came from this process's mirror: a newer one may exist.
	BackendStale bool
}

// Stale reports whether the answer may be out of date: the backend was
// unreachable or a partition kept older data after a failed refresh.
func (v View) Stale() bool {
	return v.BackendStale || v.Snapshot.PartitionsStale()
}

// Partition is the state of one (account, region) in a snapshot.
type Partition struct {
	// AccountID is the AWS account, 12 digits.
	AccountID string `json:"account_id"`
	// Region is the AWS region, e.g. "eu-west-1".
	Region string `json:"region"`
	// RefreshedAt is when this partition's data was last read successfully;
	// zero when it never was.
	RefreshedAt time.Time `json:"refreshed_at"`
	// Stale is true when the last refresh of this partition failed and its
	// data is the last good copy (from RefreshedAt).
	Stale bool `json:"stale,omitempty"`
	// Error is the last refresh failure, for operators; empty when fresh.
	Error string `json:"error,omitempty"`
	// Endpoints is how many endpoints the partition holds.
	Endpoints int `json:"endpoints"`
}

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
