package snapshot

import "time"

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
