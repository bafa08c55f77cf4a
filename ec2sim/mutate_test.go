package ec2sim_test

import (
	"testing"

	"github.com/vpnfacade/vpnfacade/ec2sim"
)

// TestKeepEndpointsSurvivesMutations: an endpoint named by KeepEndpoints is
// still there after enough mutations to delete every other original
// endpoint many times over, while the others do get deleted.
func TestKeepEndpointsSurvivesMutations(t *testing.T) {
	const region = "eu-west-1"
	endpoints, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 20, Seed: 3, Regions: []string{region}})
	if err != nil {
		t.Fatal(err)
	}
	kept := endpoints[7].GetClientVpnEndpointId()
	sim, err := ec2sim.New(ec2sim.Options{Endpoints: endpoints, DefaultRegion: region, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	sim.KeepEndpoints(kept)

	deleted := map[string]bool{}
	for range 50 {
		for _, ref := range sim.Mutate(100).Deleted {
			deleted[ref] = true
		}
		found := false
		for _, e := range sim.Endpoints(accountA, region) {
			found = found || e.GetClientVpnEndpointId() == kept
		}
		if !found {
			t.Fatalf("the kept endpoint %s was deleted", kept)
		}
	}
	if deleted[accountA+"/"+region+"/"+kept] {
		t.Errorf("Mutate reported the kept endpoint %s as deleted", kept)
	}
	// The mutations did delete: the others from the start are all gone.
	var originalsLeft int
	for _, e := range endpoints {
		id := e.GetClientVpnEndpointId()
		if id != kept && !deleted[accountA+"/"+region+"/"+id] {
			originalsLeft++
		}
	}
	if originalsLeft > 0 || len(deleted) == 0 {
		t.Errorf("%d deletions, %d unkept original endpoints never deleted: the test shows nothing", len(deleted), originalsLeft)
	}
}
