package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// TestLimits checks each per-query limit: the code, the field, the limit
// and the count in the message, and that nothing long is echoed back.
func TestLimits(t *testing.T) {
	snap := endpointtest.Snapshot(t, 1, endpointtest.Varied(50, 9))
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	long := strings.Repeat("x", snapshot.MaxValueLength+1)
	filters := make([]snapshot.Filter, snapshot.MaxFilters+1)
	for i := range filters {
		filters[i] = snapshot.Filter{Name: "vpc-id", Values: []string{"v"}}
	}
	cases := []struct {
		name  string
		q     snapshot.Query
		field string
		want  []string
	}{
		{"ids", snapshot.Query{Limit: 5, IDs: many(snapshot.MaxIDs+1, "cvpn-endpoint-1")}, "client_vpn_endpoint_ids", []string{"1001 ids", "limit of 1000"}},
		{"filters", snapshot.Query{Limit: 5, Filters: filters}, "filters", []string{"51 filters", "limit of 50"}},
		{"values", snapshot.Query{Limit: 5, Filters: []snapshot.Filter{{Name: "vpc-id", Values: many(snapshot.MaxValuesPerFilter+1, "v")}}}, "filters", []string{"201 values", "limit of 200"}},
		{"value length", snapshot.Query{Limit: 5, Filters: []snapshot.Filter{{Name: "tag-key", Values: []string{"*" + long}}}}, "filters", []string{"258 characters", "limit of 256"}},
		{"filter name length", snapshot.Query{Limit: 5, Filters: []snapshot.Filter{{Name: "tag:" + long, Values: []string{"v"}}}}, "filters", []string{"261 characters", "limit of 256"}},
		{"id length", snapshot.Query{Limit: 5, IDs: []string{long}}, "client_vpn_endpoint_ids", []string{"257 characters", "limit of 256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := snap.List(t.Context(), tc.q)
			var verr *vpnfacade.Error
			if !errors.As(err, &verr) || verr.Code != vpnfacade.EINVALID || verr.Field != tc.field {
				t.Fatalf("List = %v; want EINVALID on field %s", err, tc.field)
			}
			msg := vpnfacade.ErrorMessageOf(err)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			if len(msg) > 200 {
				t.Errorf("message is %d bytes long: it echoes the input", len(msg))
			}
			if err := snapshot.ValidateQuery(tc.q); vpnfacade.ErrorCodeOf(err) != vpnfacade.EINVALID {
				t.Errorf("ValidateQuery = %v, want EINVALID as List", err)
			}
		})
	}
	if _, err := snap.Get(long, "", ""); vpnfacade.ErrorCodeOf(err) != vpnfacade.EINVALID {
		t.Errorf("Get of a %d-character id = %v, want EINVALID", len(long), err)
	}
}

// TestListStopsWhenCancelled runs the most expensive legal query (wildcard
// values at the length limit, matching nothing, over every endpoint) with a
// cancelled context: it ends with the context's error, not a page.
func TestListStopsWhenCancelled(t *testing.T) {
	snap := endpointtest.Snapshot(t, 1, endpointtest.Varied(5000, 10))
	pattern := "*" + strings.Repeat("a*", snapshot.MaxValueLength/2-1) + "z"
	values := make([]string, snapshot.MaxValuesPerFilter)
	for i := range values {
		values[i] = pattern
	}
	q := snapshot.Query{Limit: 1000, Filters: []snapshot.Filter{{Name: "tag-key", Values: values}}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := snap.List(ctx, q); err != context.Canceled {
		t.Fatalf("List with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestMissingIDsAreNamedBriefly asks for many ids that do not exist: the
// answer names a few, says how many more, and cuts long ones.
func TestMissingIDsAreNamedBriefly(t *testing.T) {
	snap := endpointtest.Snapshot(t, 1, endpointtest.Varied(50, 11))
	ids := make([]string, snapshot.MaxIDs)
	for i := range ids {
		ids[i] = fmt.Sprintf("cvpn-endpoint-missing-%04d-%s", i, strings.Repeat("y", i%200))
	}
	_, err := snap.List(t.Context(), snapshot.Query{Limit: 5, IDs: ids})
	msg := vpnfacade.ErrorMessageOf(err)
	if vpnfacade.ErrorCodeOf(err) != vpnfacade.ENOTFOUND || !strings.Contains(msg, "and 995 more") || len(msg) > 600 {
		t.Errorf("List of %d missing ids = %v; want ENOTFOUND naming five, cut, and 995 more", len(ids), err)
	}
}
