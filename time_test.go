package vpnfacade_test

import (
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade"
)

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2020-11-13 11:37:27", time.Date(2020, 11, 13, 11, 37, 27, 0, time.UTC), true},
		{"2018-12-11T13:14:10", time.Date(2018, 12, 11, 13, 14, 10, 0, time.UTC), true},
		{"2018-12-11T13:14:10Z", time.Date(2018, 12, 11, 13, 14, 10, 0, time.UTC), true},
		{"2018-12-11T13:14:10.123Z", time.Date(2018, 12, 11, 13, 14, 10, 123e6, time.UTC), true},
		{"2018-12-11 13:14:10.5", time.Date(2018, 12, 11, 13, 14, 10, 5e8, time.UTC), true},
		{"2018-12-11T13:14:10-05:00", time.Date(2018, 12, 11, 18, 14, 10, 0, time.UTC), true},
		{"2018-12-11 13:14:10+01:00", time.Date(2018, 12, 11, 12, 14, 10, 0, time.UTC), true},
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2018-12-11", time.Time{}, false},
		{"2018-13-11 13:14:10", time.Time{}, false},
		{"11/12/2018 13:14:10", time.Time{}, false},
	} {
		got, ok := vpnfacade.ParseTime(tc.in)
		if ok != tc.ok || !got.Equal(tc.want) || (ok && got.Location() != time.UTC) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
