package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a watcher is reset (sent a fresh initial state), the values of
// the reason label of vpnfacade_watch_resets_total.
const (
	// resetLagging: the watcher's queue was full (it read too slowly).
	resetLagging = "lagging"
	// resetTooOld: the version it resumed from, or was at, is no longer in
	// the change log (beyond the retention by count or age).
	resetTooOld = "too_old"
	// resetLogGap: the change log records a gap (a change it could not
	// describe), or a change could not be decoded; every watcher relists.
	resetLogGap = "log_gap"
)

// Kinds of watch messages, the values of the kind label of
// vpnfacade_watch_messages_sent_total.
const (
	messageInitial   = "initial"   // initial state, with its completion marker
	messageChange    = "change"    // a version's changes, live or replayed
	messageHeartbeat = "heartbeat" // a heartbeat
)

// watchMetrics describes the watch streams: how many are open, what they
// are sent, how often a watcher is reset and why, and how long a change
// takes from its publish to a watcher.
type watchMetrics struct {
	messages  *prometheus.CounterVec
	endpoints *prometheus.CounterVec
	resets    *prometheus.CounterVec
	delay     prometheus.Histogram
}

// newWatchMetrics registers the watch metrics on reg (none when reg is
// nil); streams reads the number of open streams at scrape time.
func newWatchMetrics(reg prometheus.Registerer, streams func() int) (*watchMetrics, error) {
	m := &watchMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpnfacade_watch_messages_sent_total",
			Help: "Messages written to watch streams, by kind (initial, change or heartbeat).",
		}, []string{"kind"}),
		endpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpnfacade_watch_endpoints_sent_total",
			Help: "Endpoints carried by watch messages, by change (initial, added, modified or removed).",
		}, []string{"change"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpnfacade_watch_resets_total",
			Help: "Watchers sent a fresh initial state instead of changes, by reason (lagging: its queue was full; too_old: its version is past the change log's retention; log_gap: the log could not describe a change).",
		}, []string{"reason"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vpnfacade_watch_delivery_delay_seconds",
			Help:    "Time from a version's publish (by the publishing replica's clock) to its change message being written to a watch stream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}),
	}
	for _, r := range []string{resetLagging, resetTooOld, resetLogGap} {
		m.resets.WithLabelValues(r)
	}
	for _, k := range []string{messageInitial, messageChange, messageHeartbeat} {
		m.messages.WithLabelValues(k)
	}
	if reg == nil {
		return m, nil
	}
	watchers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vpnfacade_watchers",
		Help: "Watch streams open in this process.",
	}, func() float64 { return float64(streams()) })
	for _, c := range []prometheus.Collector{watchers, m.messages, m.endpoints, m.resets, m.delay} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// sent counts one message written to a stream with its endpoints.
func (m *watchMetrics) sent(kind string, initial, added, modified, removed int) {
	m.messages.WithLabelValues(kind).Inc()
	for _, c := range []struct {
		change string
		n      int
	}{{"initial", initial}, {"added", added}, {"modified", modified}, {"removed", removed}} {
		if c.n > 0 {
			m.endpoints.WithLabelValues(c.change).Add(float64(c.n))
		}
	}
}

// delivered records the delay of a live change written at now.
func (m *watchMetrics) delivered(published, now time.Time) {
	if !published.IsZero() {
		m.delay.Observe(max(now.Sub(published), 0).Seconds())
	}
}
