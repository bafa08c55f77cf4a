package snapshot_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/internal/endpointtest"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

func newSnapshot(t testing.TB, version uint64, eps []*clientvpnv1.ClientVpnEndpoint) *snapshot.Snapshot {
	return endpointtest.Snapshot(t, version, eps)
}

// listAll pages through q with the given page size.
func listAll(t *testing.T, snap func(page int) *snapshot.Snapshot, q snapshot.Query) []*clientvpnv1.ClientVpnEndpoint {
	t.Helper()
	var all []*clientvpnv1.ClientVpnEndpoint
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatal("pagination does not end")
		}
		p, err := snap(page).List(t.Context(), q)
		if err != nil {
			t.Fatalf("List page %d: %v", page, err)
		}
		if len(p.Endpoints) > q.Limit {
			t.Fatalf("page %d has %d endpoints, limit %d", page, len(p.Endpoints), q.Limit)
		}
		all = append(all, endpointtest.Messages(t, slices.Values(p.Endpoints))...)
		if p.NextToken == "" {
			return all
		}
		if len(p.Endpoints) == 0 {
			t.Fatalf("page %d is empty but has a next token", page)
		}
		q.NextToken = p.NextToken
	}
}

// oracle is an independent, naive implementation of the filter semantics.
func oracle(eps []*clientvpnv1.ClientVpnEndpoint, ids []string, filters []snapshot.Filter) []string {
	var out []string
	for _, e := range eps {
		if len(ids) > 0 && !slices.Contains(ids, e.GetClientVpnEndpointId()) {
			continue
		}
		ok := true
		for _, f := range filters {
			var attrs []string
			switch {
			case strings.HasPrefix(f.Name, "tag:"):
				for _, t := range e.Tags {
					if t.GetKey() == f.Name[4:] {
						attrs = append(attrs, t.GetValue())
					}
				}
			case f.Name == "tag-key":
				for _, t := range e.Tags {
					attrs = append(attrs, t.GetKey())
				}
			case f.Name == "endpoint-id":
				attrs = []string{e.GetClientVpnEndpointId()}
			case f.Name == "vpc-id":
				attrs = []string{e.GetVpcId()}
			case f.Name == "region":
				attrs = []string{e.Region}
			case f.Name == "account-id":
				attrs = []string{e.AccountId}
			case f.Name == "transport-protocol":
				s, _ := vpnfacade.EnumString(e.GetTransportProtocol(), e.TransportProtocolUnrecognized)
				attrs = []string{s}
			case f.Name == "status":
				s, _ := vpnfacade.EnumString(e.GetStatus().GetCode(), e.GetStatus().CodeUnrecognized)
				attrs = []string{s}
			}
			any := false
			for _, a := range attrs {
				for _, v := range f.Values {
					re := "^" + strings.NewReplacer(`\\\*`, `\*`, `\\\?`, `\?`, `\*`, `.*`, `\?`, `.`).Replace(regexp.QuoteMeta(v)) + "$"
					if regexp.MustCompile("(?s)" + re).MatchString(a) {
						any = true
					}
				}
			}
			ok = ok && any
		}
		if ok {
			out = append(out, snapshot.Key(e))
		}
	}
	slices.Sort(out)
	return out
}

func keys(eps []*clientvpnv1.ClientVpnEndpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = snapshot.Key(e)
	}
	slices.Sort(out)
	return out
}

func TestListPagesEverythingOnceInOrder(t *testing.T) {
	eps := endpointtest.Varied(1000, 1)
	snap := newSnapshot(t, 1, eps)
	for _, limit := range []int{1, 5, 7, 100, 999, 1000, 5000} {
		got := listAll(t, func(int) *snapshot.Snapshot { return snap }, snapshot.Query{Limit: limit})
		if len(got) != len(eps) {
			t.Fatalf("limit %d: listed %d endpoints, want %d", limit, len(got), len(eps))
		}
		if !slices.IsSortedFunc(got, func(a, b *clientvpnv1.ClientVpnEndpoint) int {
			return strings.Compare(a.GetClientVpnEndpointId(), b.GetClientVpnEndpointId())
		}) {
			t.Errorf("limit %d: endpoints not in id order", limit)
		}
		if !slices.Equal(keys(got), keys(eps)) {
			t.Errorf("limit %d: listed set differs from published set", limit)
		}
	}
}

func TestListFiltersMatchOracle(t *testing.T) {
	eps := endpointtest.Varied(600, 2)
	snap := newSnapshot(t, 1, eps)
	cases := []struct {
		name    string
		ids     []string
		filters []snapshot.Filter
	}{
		{name: "transport tcp", filters: []snapshot.Filter{{Name: "transport-protocol", Values: []string{"tcp"}}}},
		{name: "unrecognized transport kept", filters: []snapshot.Filter{{Name: "transport-protocol", Values: []string{"quic"}}}},
		{name: "case-sensitive values", filters: []snapshot.Filter{{Name: "tag:team", Values: []string{"net"}}}},
		{name: "OR across values", filters: []snapshot.Filter{{Name: "tag:team", Values: []string{"net", "sec"}}}},
		{name: "AND across names", filters: []snapshot.Filter{{Name: "tag:team", Values: []string{"net"}}, {Name: "vpc-id", Values: []string{"vpc-03", "vpc-04"}}}},
		{name: "wildcard star", filters: []snapshot.Filter{{Name: "tag:Name", Values: []string{"büro-1*"}}}},
		{name: "wildcard question", filters: []snapshot.Filter{{Name: "vpc-id", Values: []string{"vpc-1?"}}}},
		{name: "tag-key", filters: []snapshot.Filter{{Name: "tag-key", Values: []string{"Name"}}}},
		{name: "status", filters: []snapshot.Filter{{Name: "status", Values: []string{"available", "deleted"}}}},
		{name: "region and account", filters: []snapshot.Filter{{Name: "region", Values: []string{"eu-west-1"}}, {Name: "account-id", Values: []string{"2222*"}}}},
		{name: "endpoint-id wildcard", filters: []snapshot.Filter{{Name: "endpoint-id", Values: []string{"cvpn-endpoint-00?a*"}}}},
		{name: "no match", filters: []snapshot.Filter{{Name: "tag:team", Values: []string{"nobody"}}}},
		{name: "ids and filter", ids: []string{eps[0].GetClientVpnEndpointId(), eps[1].GetClientVpnEndpointId(), eps[2].GetClientVpnEndpointId()}, filters: []snapshot.Filter{{Name: "tag:env", Values: []string{"*"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := oracle(eps, tc.ids, tc.filters)
			for _, limit := range []int{3, 1000} {
				got := keys(listAll(t, func(int) *snapshot.Snapshot { return snap }, snapshot.Query{IDs: tc.ids, Filters: tc.filters, Limit: limit}))
				if !slices.Equal(got, want) {
					t.Errorf("limit %d: got %d endpoints, oracle says %d", limit, len(got), len(want))
				}
			}
			if tc.name != "no match" && len(want) == 0 {
				t.Errorf("case matches nothing; it tests nothing")
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	eps := endpointtest.Varied(50, 3)
	snap := newSnapshot(t, 1, eps)
	first, err := snap.List(t.Context(), snapshot.Query{Limit: 5, Filters: []snapshot.Filter{{Name: "tag:env", Values: []string{"prod", "dev"}}}})
	if err != nil || first.NextToken == "" {
		t.Fatalf("first page: %v, token %q", err, first.NextToken)
	}
	tampered := []byte(first.NextToken)
	tampered[len(tampered)/2] ^= 1
	cases := []struct {
		name  string
		q     snapshot.Query
		code  vpnfacade.ErrorCode
		field string
		msg   string
	}{
		{"unknown filter", snapshot.Query{Limit: 5, Filters: []snapshot.Filter{{Name: "colour", Values: []string{"x"}}}}, vpnfacade.EINVALID, vpnfacade.FieldFilters, "The filter 'colour' is invalid; supported filters: endpoint-id"},
		{"filter without values", snapshot.Query{Limit: 5, Filters: []snapshot.Filter{{Name: "vpc-id"}}}, vpnfacade.EINVALID, vpnfacade.FieldFilters, "no values"},
		{"empty tag key", snapshot.Query{Limit: 5, Filters: []snapshot.Filter{{Name: "tag:", Values: []string{"x"}}}}, vpnfacade.EINVALID, vpnfacade.FieldFilters, "tag:"},
		{"zero limit", snapshot.Query{}, vpnfacade.EINVALID, "max_results", "at least 1"},
		{"garbage token", snapshot.Query{Limit: 5, NextToken: "not a token!"}, vpnfacade.EINVALID, "next_token", "not a token this service issued"},
		{"tampered token", snapshot.Query{Limit: 5, NextToken: string(tampered), Filters: []snapshot.Filter{{Name: "tag:env", Values: []string{"prod", "dev"}}}}, vpnfacade.EINVALID, "next_token", "invalid"},
		{"token with other filters", snapshot.Query{Limit: 5, NextToken: first.NextToken, Filters: []snapshot.Filter{{Name: "tag:env", Values: []string{"prod"}}}}, vpnfacade.EINVALID, "next_token", "different ids or filters"},
		{"missing ids", snapshot.Query{Limit: 5, IDs: []string{eps[0].GetClientVpnEndpointId(), "cvpn-endpoint-00000000000000000", "cvpn-endpoint-nope"}}, vpnfacade.ENOTFOUND, "client_vpn_endpoint_ids", `"cvpn-endpoint-00000000000000000", "cvpn-endpoint-nope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := snap.List(t.Context(), tc.q)
			var verr *vpnfacade.Error
			if !errors.As(err, &verr) || verr.Code != tc.code || verr.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("List = %v; want code %s, field %s, message containing %q", err, tc.code, tc.field, tc.msg)
			}
		})
	}
	// Filter order and value order do not matter to the binding.
	q := snapshot.Query{Limit: 5, NextToken: first.NextToken, Filters: []snapshot.Filter{{Name: "tag:env", Values: []string{"dev", "prod"}}}}
	if _, err := snap.List(t.Context(), q); err != nil {
		t.Errorf("token refused for the same filters in another order: %v", err)
	}
}

// TestTokenSurvivesRefresh pages through a snapshot that is replaced between
// pages: every id present in both snapshots is returned exactly once.
func TestTokenSurvivesRefresh(t *testing.T) {
	old := endpointtest.Varied(500, 4)
	var next []*clientvpnv1.ClientVpnEndpoint
	for i, e := range old {
		if i%5 != 0 { // delete a fifth
			next = append(next, e)
		}
	}
	next = append(next, endpointtest.Varied(100, 5)...) // add new ones
	snaps := []*snapshot.Snapshot{newSnapshot(t, 1, old), newSnapshot(t, 2, next)}
	got := listAll(t, func(page int) *snapshot.Snapshot { return snaps[min(page/3, 1)] }, snapshot.Query{Limit: 40})
	seen := map[string]int{}
	for _, e := range got {
		seen[snapshot.Key(e)]++
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s returned %d times", k, n)
		}
	}
	for _, e := range next {
		for _, o := range old {
			if snapshot.Key(o) == snapshot.Key(e) && seen[snapshot.Key(e)] != 1 {
				t.Errorf("surviving endpoint %s was not returned", snapshot.Key(e))
			}
		}
	}
}

func TestGet(t *testing.T) {
	eps := endpointtest.Varied(20, 6)
	dup := proto.CloneOf(eps[3])
	dup.Region = "ap-south-1"
	eps = append(eps, dup)
	snap := newSnapshot(t, 1, eps)
	id := eps[3].GetClientVpnEndpointId()
	got, err := snap.Get(id, "ap-south-1", "")
	if err != nil || got.Region() != "ap-south-1" {
		t.Fatalf("Get(%s, ap-south-1) = %v, %v", id, got, err)
	}
	if got, err := snap.Get(id, "", ""); err != nil || got.ID() != id {
		t.Errorf("Get(%s) = %v, %v", id, got, err)
	}
	if _, err := snap.Get(id, "sa-east-1", ""); vpnfacade.ErrorCodeOf(err) != vpnfacade.ENOTFOUND || !strings.Contains(err.Error(), "sa-east-1") {
		t.Errorf("Get in another region = %v, want ENOTFOUND naming the region", err)
	}
	if _, err := snap.Get("", "", ""); vpnfacade.ErrorCodeOf(err) != vpnfacade.EINVALID {
		t.Errorf("Get(\"\") = %v, want EINVALID", err)
	}
}

func FuzzListQuery(f *testing.F) {
	snap := newSnapshot(f, 1, endpointtest.Varied(200, 7))
	first, _ := snap.List(f.Context(), snapshot.Query{Limit: 5})
	f.Add("tag:team", "n*t", first.NextToken, 5)
	f.Add("endpoint-id", `cvpn-\*?`, "AQ", 0)
	f.Add("colour", "", "", -3)
	f.Fuzz(func(t *testing.T, name, value, token string, limit int) {
		q := snapshot.Query{Limit: limit, NextToken: token, Filters: []snapshot.Filter{{Name: name, Values: []string{value}}}}
		p, err := snap.List(t.Context(), q)
		if err != nil {
			if c := vpnfacade.ErrorCodeOf(err); c != vpnfacade.EINVALID {
				t.Fatalf("List returned %v (code %s); want EINVALID or success", err, c)
			}
			return
		}
		if len(p.Endpoints) > limit {
			t.Fatalf("page of %d over limit %d", len(p.Endpoints), limit)
		}
	})
}
