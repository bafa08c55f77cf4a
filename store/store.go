// Package store keeps the current snapshot where every replica can read it:
// Publish replaces it whole (a reader sees a snapshot entirely or not at
// all), and Current hands it to readers, who query it (package snapshot).
//
// Two backends implement Store: Memory, for a single process, and Redis,
// shared by many replicas and surviving restarts, with an in-process mirror
// so that reads do not wait on the network.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// Store is a place snapshots are published to and read from.
type Store interface {
	// Publish makes the publication the current snapshot, with a version
	// greater than any published before, and returns that snapshot. It fails
	// with vpnfacade.ECONFLICT when the writer's epoch has been superseded.
	Publish(ctx context.Context, pub Publication) (*snapshot.Snapshot, error)
	// Confirm records that a refresh read the current snapshot's data again
	// unchanged: the snapshot keeps its version and endpoints (nothing is
	// rewritten), and takes the confirmation's time and partition states.
	// It fails with vpnfacade.ECONFLICT when the current snapshot is no
	// longer c.Version (publish instead) or the writer's epoch has been
	// superseded.
	Confirm(ctx context.Context, c Confirmation) (*snapshot.Snapshot, error)
	// Current returns the newest snapshot this process can read. Before the
	// first publish it fails with vpnfacade.EUNAVAILABLE.
	Current(ctx context.Context) (View, error)
	// Close releases the store's resources.
	Close() error
}

// Publication is what a writer hands to Publish: the complete content of a
// snapshot, without its version (the store assigns it).
type Publication struct {
	// RefreshedAt is when the content was read: the end of the last
	// successful partition read of the refresh.
	RefreshedAt time.Time
	// Partitions describes each (account, region) the content was read from.
	Partitions []snapshot.Partition
	// Endpoints is every endpoint of every partition, in any order. The store
	// takes ownership: the caller must not modify them afterwards.
	Endpoints []*clientvpnv1.ClientVpnEndpoint
	// Snapshot, when not nil, is Endpoints already encoded and indexed by
	// snapshot.New (its version, time and partitions are ignored): the store
	// serves it instead of encoding Endpoints again. The writer that
	// computed Diff from it sets it, so that publishing encodes each
	// endpoint once.
	Snapshot *snapshot.Snapshot
	// Diff is the change against Base. The store records it in its change
	// log, for watchers.
	Diff snapshot.Diff
	// Base is the snapshot Diff was computed against; nil when none. When
	// it is not the current snapshot at publish time, or nil, the change
	// log records a gap (watchers relist) instead of the diff.
	Base *snapshot.Snapshot
	// Epoch is the writer's fencing epoch (see Lease). A store refuses a
	// publication whose epoch is lower than the highest it has seen; 0 is
	// accepted only until some writer has published with a lease.
	Epoch uint64
}

// Confirmation is what a writer hands to Confirm when a refresh found the
// current snapshot's data unchanged.
type Confirmation struct {
	// Version is the snapshot the refresh compared its reads with.
	Version uint64
	// RefreshedAt is when the data was read (see Publication).
	RefreshedAt time.Time
	// Partitions describes each (account, region) as this refresh left it.
	Partitions []snapshot.Partition
	// Epoch is the writer's fencing epoch, as in Publication.
	Epoch uint64
}

// View is a snapshot as one reader sees it.
type View struct {
	*snapshot.Snapshot
	// BackendStale is true when the shared backend could not be reached and
	// the snapshot came from this process's mirror (a newer one may exist),
	// or when this process's last publish failed and no newer snapshot has
	// arrived since (what it read upstream is newer than what it serves).
	BackendStale bool
}

// Stale reports whether the answer may be out of date: the backend was
// unreachable or a partition kept older data after a failed refresh.
func (v View) Stale() bool {
	return v.BackendStale || v.Snapshot.PartitionsStale()
}

// snapshot returns the publication's endpoints as a new snapshot of version
// 0 read at refreshedAt from partitions: pub.Snapshot's endpoints, shared,
// or Endpoints encoded now.
func (pub Publication) snapshot(refreshedAt time.Time, partitions []snapshot.Partition) (*snapshot.Snapshot, error) {
	if pub.Snapshot != nil {
		s := pub.Snapshot.Refreshed(refreshedAt, partitions)
		s.Version = 0
		return s, nil
	}
	s, err := snapshot.New(0, refreshedAt, partitions, pub.Endpoints)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "the snapshot cannot be encoded"), err)
	}
	return s, nil
}
