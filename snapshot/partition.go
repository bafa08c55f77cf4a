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
