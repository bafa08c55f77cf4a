package server_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// TestEnumFiltersTakeBothSpellings: an enum-valued filter matches the same
// endpoints whether it names AWS's spelling or the contract's enum name, and
// refuses anything else with the allowed values, on every protocol.
func TestEnumFiltersTakeBothSpellings(t *testing.T) {
	t.Parallel()
	env := newEnv(t, generated(t, 200), 0)
	cases := []struct{ name, aws, enum string }{
		{"transport-protocol", "udp", "TRANSPORT_PROTOCOL_UDP"},
		{"status", "available", "CLIENT_VPN_ENDPOINT_STATUS_CODE_AVAILABLE"},
	}
	for client, c := range env.clients {
		for _, tc := range cases {
			list := func(v string) (int, error) {
				res, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{
					MaxResults: 1000, Filters: []*clientvpnv1.Filter{{Name: tc.name, Values: []string{v}}}})
				return len(res.GetClientVpnEndpoints()), err
			}
			byAWS, err1 := list(tc.aws)
			byEnum, err2 := list(tc.enum)
			if err1 != nil || err2 != nil || byAWS == 0 || byAWS != byEnum {
				t.Errorf("%s %s: %d endpoints by %q (%v), %d by %q (%v); want the same, more than none",
					client, tc.name, byAWS, tc.aws, err1, byEnum, tc.enum, err2)
			}
			_, err := list("UDP-ish")
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument || !strings.Contains(ce.Message(), tc.aws) || !strings.Contains(ce.Message(), tc.name) {
				t.Errorf("%s %s with an unknown value = %v; want InvalidArgument naming the filter and the allowed values", client, tc.name, err)
			}
		}
	}
}

// TestInvalidArgumentCarriesBadRequest: an invalid field comes with the
// ecosystem's machine-readable google.rpc.BadRequest detail naming it.
func TestInvalidArgumentCarriesBadRequest(t *testing.T) {
	t.Parallel()
	env := newEnv(t, generated(t, 20), 0)
	for client, c := range env.clients {
		_, err := c.ListClientVpnEndpoints(t.Context(), &clientvpnv1.ListClientVpnEndpointsRequest{NextToken: "garbage"})
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInvalidArgument {
			t.Fatalf("%s: %v, want InvalidArgument", client, err)
		}
		var fields []string
		for _, d := range ce.Details() {
			v, derr := d.Value()
			if br, ok := v.(*errdetails.BadRequest); derr == nil && ok {
				for _, fv := range br.GetFieldViolations() {
					fields = append(fields, fv.GetField())
				}
			}
		}
		if !slices.Equal(fields, []string{"next_token"}) {
			t.Errorf("%s: BadRequest field violations %v, want [next_token]", client, fields)
		}
	}
}
