package refresher

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/vpnfacade/vpnfacade/store"
)

func TestMetricsCountRefreshesByResult(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	src := threePartitions()
	r := mustNew(t, src, store.NewMemory(), Options{Registerer: reg})
	m := r.opts.metrics
	if err := r.RefreshNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.parts = append(src.parts, [2]string{acctB, "ap-south-1"})
	src.mu.Unlock()
	src.setFail(acctB, "ap-south-1", errors.New("UnauthorizedOperation"))
	if err := r.RefreshNow(t.Context()); err == nil {
		t.Fatal("a refresh with a partition that never read succeeded")
	}
	for _, result := range []string{"ok", "failed"} {
		var metric dto.Metric
		if err := m.refreshes.WithLabelValues(result).(prometheus.Metric).Write(&metric); err != nil {
			t.Fatal(err)
		}
		if n := metric.GetHistogram().GetSampleCount(); n != 1 {
			t.Errorf("refreshes with result %s: %d, want 1", result, n)
		}
	}
	if v := testutil.ToFloat64(m.lastSuccess); v <= 0 {
		t.Errorf("last success timestamp = %v, want the time of the successful refresh", v)
	}
	if _, err := New(src, store.NewMemory(), Options{Registerer: reg}); err == nil || !strings.Contains(err.Error(), "registering") {
		t.Errorf("registering twice = %v, want an error", err)
	}
}
