package load

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	p50, p90, p99, maxLat, mean := Summarize(lat)
	want := []time.Duration{50, 90, 99, 100}
	for i, got := range []time.Duration{p50, p90, p99, maxLat} {
		if got != want[i]*time.Millisecond {
			t.Errorf("percentile %d: got %v, want %v", i, got, want[i]*time.Millisecond)
		}
	}
	if mean != 50500*time.Microsecond {
		t.Errorf("mean: got %v, want 50.5ms", mean)
	}
	if a, b, c, d, e := Summarize(nil); a+b+c+d+e != 0 {
		t.Error("no samples should summarize to zeros")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Concurrency: 0, Duration: time.Second},
		{Concurrency: 1},
		{Concurrency: 1, Duration: time.Second, Rate: -1},
	} {
		if err := c.validate(); err == nil {
			t.Errorf("%+v: want an error", c)
		}
	}
}
