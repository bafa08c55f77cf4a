package server

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// enumFilters are the Connect API's enum-valued filters. Answers show enum
// values by the contract's names (TRANSPORT_PROTOCOL_UDP) while filters
// match AWS's spelling (udp); the Connect API accepts both in a filter, and
// refuses any other value instead of silently matching nothing. The EC2
// endpoint keeps EC2's behaviour (an unknown value matches nothing).
var enumFilters = map[string]protoreflect.EnumDescriptor{
	snapshot.FilterTransportProtocol: clientvpnv1.TransportProtocol(0).Descriptor(),
	snapshot.FilterStatus:            clientvpnv1.ClientVpnEndpointStatusCode(0).Descriptor(),
}

// normalizeEnumFilters rewrites enum names in enum-valued filters to AWS's
// spelling, in place, and refuses values that are neither. Values with
// wildcards are left as they are.
func normalizeEnumFilters(filters []snapshot.Filter) error {
	for i, f := range filters {
		ed, ok := enumFilters[f.Name]
		if !ok {
			continue
		}
		var values []string
		for j, v := range f.Values {
			if strings.ContainsAny(v, `*?\`) {
				continue
			}
			spelling, ok := enumSpelling(ed, v)
			if !ok {
				return vpnfacade.Errorf(vpnfacade.EINVALID, vpnfacade.FieldFilters,
					"the filter %s does not take the value %s; allowed: %s (or the enum names, e.g. %s), or a pattern with * and ?",
					vpnfacade.Quote(f.Name), vpnfacade.Quote(v), strings.Join(awsSpellings(ed), ", "), ed.Values().ByNumber(1).Name())
			}
			if spelling != v {
				if values == nil {
					values = append([]string(nil), f.Values...)
				}
				values[j] = spelling
			}
		}
		if values != nil {
			filters[i].Values = values
		}
	}
	return nil
}

// enumSpelling returns AWS's spelling of v, given either as AWS spells it or
// by the contract's enum value name.
func enumSpelling(ed protoreflect.EnumDescriptor, v string) (string, bool) {
	for _, s := range awsSpellings(ed) {
		if s == v {
			return s, true
		}
	}
	if vd := ed.Values().ByName(protoreflect.Name(v)); vd != nil && vd.Number() != 0 {
		return spellingOf(ed, vd.Number())
	}
	return "", false
}

func awsSpellings(ed protoreflect.EnumDescriptor) []string {
	var out []string
	for i := range ed.Values().Len() {
		if n := ed.Values().Get(i).Number(); n != 0 {
			if s, ok := spellingOf(ed, n); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func spellingOf(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) (string, bool) {
	switch ed.FullName() {
	case clientvpnv1.TransportProtocol(0).Descriptor().FullName():
		return vpnfacade.EnumString(clientvpnv1.TransportProtocol(n), nil)
	default:
		return vpnfacade.EnumString(clientvpnv1.ClientVpnEndpointStatusCode(n), nil)
	}
}
