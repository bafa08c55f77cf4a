package refresher

import (
	"testing"
	"time"
)

func TestFirstDelayWaitsUntilTheSnapshotIsDue(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		age, want time.Duration
	}{
		{0, time.Minute},
		{20 * time.Second, 40 * time.Second},
		{time.Minute, 0},
		{time.Hour, 0},
		{-time.Second, 0}, // a clock ahead of ours: refresh rather than wait long
	} {
		if got := firstDelay(now.Add(-tc.age), now, time.Minute); got != tc.want {
			t.Errorf("snapshot %s old: first refresh in %s, want %s", tc.age, got, tc.want)
		}
	}
}
