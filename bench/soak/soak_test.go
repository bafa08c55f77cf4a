package main

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
)

func TestSlope(t *testing.T) {
	xs := []float64{0, 1, 2, 3}
	if got := slope(xs, []float64{5, 5, 5, 5}); got != 0 {
		t.Errorf("flat: slope %v, want 0", got)
	}
	if got := slope(xs, []float64{1, 3, 5, 7}); math.Abs(got-2) > 1e-9 {
		t.Errorf("2 per unit: slope %v", got)
	}
	if got := slope([]float64{1}, []float64{1}); got != 0 {
		t.Errorf("one sample: slope %v, want 0", got)
	}
}

// The mix spreads calls over the operations by weight.
func TestMixProportions(t *testing.T) {
	const workers = 4
	m := &mix{}
	counts := make([]int, 4)
	for i, w := range []int{40, 25, 15, 20} {
		m.ops = append(m.ops, weighted{weight: w, op: func(context.Context, int) error { counts[i]++; return nil }})
		m.total += w
	}
	m.n = make([]atomic.Int64, len(m.ops))
	for worker := range workers {
		for range 1000 {
			if err := m.op(t.Context(), worker); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, w := range []int{40, 25, 15, 20} {
		// 4,000 draws: the binomial's standard deviation is under 32.
		if want := w * workers * 10; math.Abs(float64(counts[i]-want)) > 160 {
			t.Errorf("op %d: %d calls of %d, want %d", i, counts[i], workers*1000, w*workers*10)
		}
	}
}
