package admin

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterLeaderMetric registers vpnfacade_lease_leader: 1 while this
// replica refreshes (it holds the writer lease, or is alone with an
// in-memory store), else 0. Summed over the replicas it is 1 when all is
// well, 0 when none leads.
func RegisterLeaderMetric(reg prometheus.Registerer, c Coordinator) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vpnfacade_lease_leader",
		Help: "1 while this replica refreshes the cache (holds the writer lease, or is alone with an in-memory store), else 0.",
	}, func() float64 {
		if r := c.Role(); r == RoleLeader || r == RoleSolo {
			return 1
		}
		return 0
	})
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("admin: register vpnfacade_lease_leader: %w", err)
	}
	return nil
}
