package vpnfacade_test

import (
	"testing"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

func TestEnumRoundTrip(t *testing.T) {
	for _, s := range []string{"pending-associate", "available", "deleting", "deleted", "pending"} {
		v, unrec := vpnfacade.ParseEnum[clientvpnv1.ClientVpnEndpointStatusCode](s)
		if unrec != nil || v == 0 {
			t.Errorf("ParseEnum(%q) = %v, %v; want a known value", s, v, unrec)
			continue
		}
		if got, ok := vpnfacade.EnumString(v, nil); !ok || got != s {
			t.Errorf("EnumString(%v) = %q, %v; want %q", v, got, ok, s)
		}
	}
	if v, _ := vpnfacade.ParseEnum[clientvpnv1.IpAddressType]("dual-stack"); v != clientvpnv1.IpAddressType_IP_ADDRESS_TYPE_DUAL_STACK {
		t.Errorf("dual-stack parsed as %v", v)
	}
}

func TestEnumUnrecognizedKeptVerbatim(t *testing.T) {
	for _, s := range []string{"suspended", "TCP", "pending_associate", "unspecified", ""} {
		v, unrec := vpnfacade.ParseEnum[clientvpnv1.TransportProtocol](s)
		if v != 0 || unrec == nil || *unrec != s {
			t.Errorf("ParseEnum(%q) = %v, %v; want zero and the verbatim string", s, v, unrec)
			continue
		}
		if got, ok := vpnfacade.EnumString(v, unrec); !ok || got != s {
			t.Errorf("EnumString(0, %q) = %q, %v", s, got, ok)
		}
	}
	if _, ok := vpnfacade.EnumString(clientvpnv1.TransportProtocol(0), nil); ok {
		t.Error("EnumString of an absent value reported ok")
	}
}
