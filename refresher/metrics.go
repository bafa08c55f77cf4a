package refresher

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports what refreshes do: how long they take, how many fail, and
// when one last succeeded.
type Metrics struct {
	refreshes   *prometheus.HistogramVec
	lastSuccess prometheus.Gauge
}

// NewMetrics registers the refresh metrics on reg (the service's registry).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		refreshes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpnfacade_refresh_duration_seconds",
			Help:    "Time a refresh took, from the first read to the publish, by result (ok or failed).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12),
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpnfacade_refresh_last_success_timestamp_seconds",
			Help: "Unix time of the last refresh that published a snapshot.",
		}),
	}
	for _, c := range []prometheus.Collector{m.refreshes, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("refresher: registering metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one refresh.
func (m *Metrics) observe(took time.Duration, err error) {
	if err != nil {
		m.refreshes.WithLabelValues("failed").Observe(took.Seconds())
		return
	}
	m.refreshes.WithLabelValues("ok").Observe(took.Seconds())
	m.lastSuccess.SetToCurrentTime()
}

// WithMetrics records every refresh in m.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }
