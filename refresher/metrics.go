package refresher

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics export what refreshes do: how long they take, how many fail, and
// when one last succeeded, overall and per partition (account, region).
// Only the process that refreshes (the lease holder) has per-partition
// series; they are removed when it stops refreshing.
type metrics struct {
	refreshes           *prometheus.HistogramVec
	failures            *prometheus.CounterVec
	lastSuccess         prometheus.Gauge
	consecutiveFailures prometheus.Gauge

	partitionFailures    *prometheus.GaugeVec
	partitionLastSuccess *prometheus.GaugeVec
	partitionStale       *prometheus.GaugeVec
}

// newMetrics registers the refresh metrics on reg (Options.Registerer).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refreshes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpnfacade_refresh_duration_seconds",
			Help:    "Time a refresh took, from the first read to the publish, by result (ok or failed).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12),
		}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpnfacade_refresh_failures_total",
			Help: "Refreshes that published nothing, by cause: upstream (EC2, STS), store (Redis unreachable), store_out_of_memory (Redis maxmemory), superseded (another writer took over).",
		}, []string{"cause"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpnfacade_refresh_last_success_timestamp_seconds",
			Help: "Unix time of the last refresh that published a snapshot.",
		}),
		consecutiveFailures: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpnfacade_refresh_consecutive_failures",
			Help: "Refreshes in a row that failed or read no partition (finding the AWS account included); 0 after a success.",
		}),
		partitionFailures: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpnfacade_partition_consecutive_failures",
			Help: "Reads of the partition in a row that failed; 0 after a success.",
		}, []string{"account", "region"}),
		partitionLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpnfacade_partition_last_success_timestamp_seconds",
			Help: "Unix time of the partition's last successful read (from the snapshot when this process has not read it yet).",
		}, []string{"account", "region"}),
		partitionStale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vpnfacade_partition_stale",
			Help: "1 when the partition's last read failed, so that what is served of it is its last good data (or nothing).",
		}, []string{"account", "region"}),
	}
	for _, c := range []prometheus.Collector{m.refreshes, m.failures, m.lastSuccess, m.consecutiveFailures,
		m.partitionFailures, m.partitionLastSuccess, m.partitionStale} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("refresher: registering metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one refresh.
func (m *metrics) observe(took time.Duration, err error) {
	if err != nil {
		m.refreshes.WithLabelValues("failed").Observe(took.Seconds())
		m.failures.WithLabelValues(failureCause(err)).Inc()
		return
	}
	m.refreshes.WithLabelValues("ok").Observe(took.Seconds())
	m.lastSuccess.SetToCurrentTime()
}

// partition records the outcome of one partition's read: its consecutive
// failures, its last successful read (zero: unknown) and whether it is stale.
func (m *metrics) partition(account, region string, failures int, lastSuccess time.Time, stale bool) {
	m.partitionFailures.WithLabelValues(account, region).Set(float64(failures))
	if !lastSuccess.IsZero() {
		m.partitionLastSuccess.WithLabelValues(account, region).Set(float64(lastSuccess.UnixNano()) / 1e9)
	}
	s := 0.0
	if stale {
		s = 1
	}
	m.partitionStale.WithLabelValues(account, region).Set(s)
}

// forget drops the per-partition series and the failure count, when this
// process stops refreshing.
func (m *metrics) forget() {
	m.consecutiveFailures.Set(0)
	m.partitionFailures.Reset()
	m.partitionLastSuccess.Reset()
	m.partitionStale.Reset()
}
