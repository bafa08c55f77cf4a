package main

import (
	"testing"
)

// TestDemoKeepsTheREADMEExample: the endpoint README.md's examples read is
// in the demo's data with the default --demo-count, and is still there
// after far more changes than a long demo makes (3 every 30 s is 8640 a
// day), while other endpoints come and go.
func TestDemoKeepsTheREADMEExample(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(nil, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := newDemoSim(c.demoCount)
	if err != nil {
		t.Fatal(err)
	}
	where := func() string {
		for _, key := range sim.Partitions() {
			for _, e := range sim.Endpoints(key.AccountID, key.Region) {
				if e.GetClientVpnEndpointId() == demoExampleID {
					return key.Region
				}
			}
		}
		return ""
	}
	region := where()
	if region == "" {
		t.Fatalf("the demo does not generate %s, which README.md's examples read", demoExampleID)
	}
	deleted := 0
	for range 10 {
		deleted += len(sim.Mutate(3000).Deleted)
		if got := where(); got != region {
			t.Fatalf("after %d deletions, %s is in region %q, want %q", deleted, demoExampleID, got, region)
		}
	}
	if deleted < 5000 {
		t.Errorf("only %d endpoints deleted by 30000 changes", deleted)
	}
}
