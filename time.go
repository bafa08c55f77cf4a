package vpnfacade

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// timeLayouts are the shapes AWS sends creationTime and deletionTime in
// (the model types them as free strings): a date and a time separated by a
// space or a 'T', then optionally a zone ('Z' or ±hh:mm). time.Parse accepts
// fractional seconds after the seconds field without the layout naming them.
var timeLayouts = [...]string{
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02T15:04:05Z07:00",
}

// ParseTime parses an EC2 creation or deletion time: `2020-11-13 11:37:27`,
// `2018-12-11T13:14:10`, either with optional fractional seconds and an
// optional `Z` or ±hh:mm offset. A time without a zone is taken as UTC. The
// result is in UTC; ok is false when s has none of these shapes.
func ParseTime(s string) (t time.Time, ok bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// ParsedTime returns the timestamp for an AWS time string, or nil when the
// string is absent, does not parse, or falls outside the range a protobuf
// Timestamp can hold: the value of the contract's *_time_parsed fields.
func ParsedTime(s *string) *timestamppb.Timestamp {
	if s == nil {
		return nil
	}
	t, ok := ParseTime(*s)
	if !ok {
		return nil
	}
	ts := timestamppb.New(t)
	if ts.CheckValid() != nil {
		return nil
	}
	return ts
}
