package upstream

import "github.com/prometheus/client_golang/prometheus"

var (
	callsDesc = prometheus.NewDesc("vpnfacade_upstream_calls_total",
		"HTTP attempts sent to EC2, retries included, by partition.", []string{"account", "region"}, nil)
	throttlesDesc = prometheus.NewDesc("vpnfacade_upstream_throttles_total",
		"EC2 attempts refused with a throttling error (RequestLimitExceeded, ...), by partition.", []string{"account", "region"}, nil)
	errorsDesc = prometheus.NewDesc("vpnfacade_upstream_errors_total",
		"EC2 attempts failed with an error other than throttling, by partition.", []string{"account", "region"}, nil)
	pagesDesc = prometheus.NewDesc("vpnfacade_upstream_pages_total",
		"DescribeClientVpnEndpoints pages read successfully, by partition.", []string{"account", "region"}, nil)
)

// collector exposes every partition's Stats as counters; New registers it
// on Options.Registerer.
type collector struct{ s *Source }

// Describe implements prometheus.Collector.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- callsDesc
	ch <- throttlesDesc
	ch <- errorsDesc
	ch <- pagesDesc
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Stats() {
		for _, m := range []struct {
			d *prometheus.Desc
			v uint64
		}{{callsDesc, st.Calls}, {throttlesDesc, st.Throttles}, {errorsDesc, st.Errors}, {pagesDesc, st.Pages}} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), st.AccountID, st.Region)
		}
	}
}
