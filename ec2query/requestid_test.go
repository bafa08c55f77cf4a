package ec2query_test

import (
	"regexp"
	"testing"

	"github.com/vpnfacade/vpnfacade/ec2query"
)

// uuidV4 is the layout of EC2's request ids: lower-case hex in 8-4-4-4-12
// groups, version 4, RFC 4122 variant.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewRequestIDHasTheUUIDLayout(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := ec2query.NewRequestID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("NewRequestID() = %q, want a lower-case version 4 UUID (8-4-4-4-12)", id)
		}
		if seen[id] {
			t.Fatalf("NewRequestID() returned %q twice in 100 calls", id)
		}
		seen[id] = true
	}
}
